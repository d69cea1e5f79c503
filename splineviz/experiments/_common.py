"""Shared plumbing for experiments: progress/cancel, output files (figures, tables), small statistics.

Every experiment writes the same kinds of artefacts (plotly figures as HTML + PNG, tables as Markdown + CSV) and
reports progress the same way, so this lives here once instead of in each experiment module.
"""
from __future__ import annotations

import csv
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from splineviz.experiments._plots import write_png
from splineviz.partition.errors import Cancelled

ProgressFn = Callable[[float, str], None]
CancelFn = Callable[[], bool]


@dataclass
class ExperimentResult:
    """What an experiment run produced: file paths plus its main table and a one-paragraph verdict."""

    name: str
    out_dir: Path
    figures: list[Path] = field(default_factory=list)
    tables: list[Path] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    summary: str = ""
    seconds: float = 0.0


def _print_progress(name: str, every: float = 0.01) -> ProgressFn:
    """Print a line when progress advanced by ``every`` (and at start/end): readable logs for 1000-epoch fits."""
    last = [-1.0]

    def report(fraction: float, message: str) -> None:
        if fraction - last[0] >= every or fraction in (0.0, 1.0):
            last[0] = fraction
            print(f"[{name}] {100 * fraction:5.1f}%  {message}", file=sys.stdout, flush=True)

    return report


class Context:
    """Handed to each experiment: its settings, progress/cancel hooks and writers that record what was written."""

    def __init__(self, name: str, out_dir: Path, quick: bool, seed: int, options: Mapping[str, Any],
                 progress: ProgressFn | None, cancel: CancelFn | None) -> None:
        self.name = name
        self.out_dir = out_dir
        self.quick = quick
        self.seed = seed
        self.options = dict(options)
        self._progress = progress or _print_progress(name)
        self._cancel = cancel
        self.result = ExperimentResult(name=name, out_dir=out_dir)

    def step(self, fraction: float, message: str) -> None:
        """Report progress and stop (raise Cancelled) if the caller asked to; call between units of work."""
        self.check_cancel()
        self._progress(min(max(fraction, 0.0), 1.0), message)

    def check_cancel(self) -> None:
        if self._cancel is not None and self._cancel():
            raise Cancelled(f"experiment {self.name!r} cancelled")

    def sub(self, start: float, stop: float, prefix: str = "") -> ProgressFn:
        """A progress callback for a nested call (e.g. train.fit) mapped into [start, stop] of this run."""
        def report(fraction: float, message: str) -> None:
            self.step(start + (stop - start) * fraction, f"{prefix}{message}")

        return report

    def cancel_fn(self) -> CancelFn | None:
        return self._cancel

    def figure(self, fig: Any, stem: str) -> None:
        """Write a plotly figure as interactive HTML (plotly.js saved once beside it: works offline) and a PNG."""
        html = self.out_dir / f"{stem}.html"
        fig.write_html(html, include_plotlyjs="directory")
        self.result.figures.append(html)
        png = self.out_dir / f"{stem}.png"
        write_png(fig, png)  # kaleido, or matplotlib where no browser works; never hangs
        self.result.figures.append(png)

    def table(self, rows: Sequence[Mapping[str, Any]], stem: str, columns: Sequence[str] | None = None,
              main: bool = True) -> None:
        """Write rows as CSV and a Markdown table; the main table is also kept on the result for tests and callers."""
        cols = list(columns or (rows[0].keys() if rows else []))
        csv_path = self.out_dir / f"{stem}.csv"
        with csv_path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        md_path = self.out_dir / f"{stem}.md"
        md_path.write_text(markdown_table(rows, cols))
        self.result.tables += [csv_path, md_path]
        if main:
            self.result.rows = [dict(r) for r in rows]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4g}"
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / max(n - 1, 1)
    return mean, math.sqrt(var)

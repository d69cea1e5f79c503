"""Shared plumbing for experiments: progress/cancel, fanning seeds out, output files, small statistics.

Every experiment writes the same kinds of artefacts (plotly figures as HTML + PNG, tables as Markdown + CSV) and
reports progress the same way, so this lives here once instead of in each experiment module.

**Fan-out.** An experiment splits its work into tasks (usually one per seed, or per seed and setting): a
module-level function called with plain keyword arguments that returns JSON-able data. ``Context.map`` runs them
in this process (``jobs=1``), in ``jobs`` local worker processes, or on Celery workers (``executor="celery"``,
see ``celery_app``), reporting progress as tasks finish and stopping on cancel. Results are passed through JSON in
every mode, so all three give identical values.
"""
from __future__ import annotations

import csv
import json
import math
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from splineviz.png import write_png
from splineviz.partition.errors import Cancelled

EXECUTORS = ("local", "celery")
_POLL_S = 0.2

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
    """Handed to each experiment: its settings, progress/cancel hooks, the fan-out, and writers that record what
    was written."""

    def __init__(self, name: str, out_dir: Path, quick: bool, seed: int, options: Mapping[str, Any],
                 progress: ProgressFn | None, cancel: CancelFn | None, jobs: int = 1, executor: str = "local",
                 n_seeds: int | None = None) -> None:
        if jobs < 1:
            raise ValueError(f"jobs must be >= 1, got {jobs}")
        if executor not in EXECUTORS:
            raise ValueError(f"unknown executor {executor!r}; choose one of {EXECUTORS}")
        if n_seeds is not None and n_seeds < 1:
            raise ValueError(f"the number of seeds must be >= 1, got {n_seeds}")
        self.name = name
        self.out_dir = out_dir
        self.quick = quick
        self.seed = seed
        self.options = dict(options)
        self.jobs, self.executor, self.n_seeds = jobs, executor, n_seeds
        self._progress = progress or _print_progress(name)
        self._cancel = cancel
        self.result = ExperimentResult(name=name, out_dir=out_dir)

    def seeds(self, full: int, quick: int) -> list[int]:
        """The seeds to run: ``full`` (or ``quick`` in quick mode, or the caller's count) from ``self.seed`` on."""
        n = self.n_seeds or (quick if self.quick else full)
        return list(range(self.seed, self.seed + n))

    def per_seed(self, fn: Callable[..., Any], full: int = 5, quick: int = 2,
                 span: tuple[float, float] = (0.0, 1.0)) -> tuple[list[Any], list[dict[str, Any]]]:
        """``fn(seed=s, quick=...)`` for every seed (see ``seeds``); returns the outputs and all their ``"rows"``,
        which are also written as the ``NAME_runs`` table (one row per seed and setting)."""
        tasks = [dict(seed=s, quick=self.quick) for s in self.seeds(full, quick)]
        out = self.map(fn, tasks, lambda t: f"seed {t['seed']}", span)
        raw = [row for o in out for row in o["rows"]]
        self.table(raw, f"{self.name}_runs", main=False)
        return out, raw

    def map(self, fn: Callable[..., Any], tasks: Sequence[Mapping[str, Any]], describe: Callable[[Mapping], str],
            span: tuple[float, float] = (0.0, 1.0)) -> list[Any]:
        """``fn(**task)`` for every task, in order, on the configured executor (see the module docstring).

        In this process ``fn`` also receives ``progress`` and ``cancel``; elsewhere they are None and cancelling
        stops the tasks not yet finished. ``span`` is the share of this run's progress the tasks cover.
        """
        start, stop = span
        done = 0

        def finished(task: Mapping[str, Any]) -> None:
            nonlocal done
            done += 1
            self.step(start + (stop - start) * done / len(tasks), f"{describe(task)} done ({done}/{len(tasks)})")

        if self.executor == "celery":
            return _on_celery(fn, tasks, self.check_cancel, finished)
        if self.jobs == 1 or len(tasks) == 1:
            results = []
            for i, task in enumerate(tasks):
                width = (stop - start) / len(tasks)
                sub = self.sub(start + i * width, start + (i + 1) * width, f"{describe(task)}: ")
                results.append(_through_json(fn(**task, progress=sub, cancel=self._cancel)))
                finished(task)
            return results
        return _in_processes(fn, tasks, min(self.jobs, len(tasks)), self.check_cancel, finished)

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
        """Write a plotly figure as interactive HTML (plotly.js saved once beside it: works offline), as plotly JSON
        (what the app's Experiments page draws, interactive) and as a PNG."""
        html = self.out_dir / f"{stem}.html"
        fig.write_html(html, include_plotlyjs="directory")
        self.result.figures.append(html)
        spec = self.out_dir / f"{stem}.json"
        fig.write_json(spec)
        self.result.figures.append(spec)
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


def _through_json(value: Any) -> Any:
    """The value as JSON would carry it (tuples become lists): what every executor returns."""
    return json.loads(json.dumps(value))


def _limit_threads() -> None:
    """Worker processes share the cores: one BLAS/OpenMP thread each (set before torch is imported there)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"


def _in_processes(fn: Callable[..., Any], tasks: Sequence[Mapping[str, Any]], jobs: int,
                  check_cancel: Callable[[], None], finished: Callable[[Mapping[str, Any]], None]) -> list[Any]:
    """Run tasks in ``jobs`` spawned processes (fork would copy torch's thread pools), finishing in any order."""
    pool = multiprocessing.get_context("spawn").Pool(jobs, initializer=_limit_threads)
    try:
        pending = {i: pool.apply_async(fn, (), dict(task)) for i, task in enumerate(tasks)}
        results: dict[int, Any] = {}
        while pending:
            check_cancel()
            for i in [i for i, r in pending.items() if r.ready()]:
                results[i] = _through_json(pending.pop(i).get())
                finished(tasks[i])
            time.sleep(_POLL_S if pending else 0)
        pool.close()
        return [results[i] for i in range(len(tasks))]
    finally:
        pool.terminate()  # on cancel or error: stop the tasks still running
        pool.join()


def _on_celery(fn: Callable[..., Any], tasks: Sequence[Mapping[str, Any]], check_cancel: Callable[[], None],
               finished: Callable[[Mapping[str, Any]], None]) -> list[Any]:
    """Send the tasks to Celery workers (``celery_app``) and collect their results as they finish."""
    from splineviz.experiments.celery_app import run_task

    pending = {i: run_task.delay(fn.__module__, fn.__name__, dict(task)) for i, task in enumerate(tasks)}
    results: dict[int, Any] = {}
    try:
        while pending:
            check_cancel()
            for i in [i for i, r in pending.items() if r.ready()]:
                done = pending.pop(i)
                results[i] = done.get()
                done.forget()  # read once: free the result store and the subscription
                finished(tasks[i])
            time.sleep(_POLL_S if pending else 0)
    finally:
        for r in pending.values():  # cancelled or failed: withdraw what has not run
            r.revoke()
    return [results[i] for i in range(len(tasks))]


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
    """Mean and sample standard deviation (0 for a single value).

    Examples
    --------
    >>> mean_std([1.0, 2.0, 3.0])
    (2.0, 1.0)
    """
    n = len(values)
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / max(n - 1, 1)
    return mean, math.sqrt(var)


def summarise(rows: Sequence[Mapping[str, Any]], by: Sequence[str], values: Sequence[str] = (),
              flags: Sequence[str] = ()) -> list[dict[str, Any]]:
    """One row per distinct ``by`` key (first-seen order) with ``n``, mean and sd of each value column and
    "k/n" for each boolean flag column (e.g. "X kept in 4/5 seeds").

    Examples
    --------
    >>> rows = [dict(m="a", acc=0.9, ok=True), dict(m="a", acc=1.0, ok=False), dict(m="b", acc=0.5, ok=True)]
    >>> summarise(rows, ["m"], ["acc"], ["ok"])[0]
    {'m': 'a', 'n': 2, 'acc_mean': 0.95, 'acc_sd': 0.07071067811865474, 'ok': '1/2'}
    """
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in by), []).append(row)
    out = []
    for key, members in groups.items():
        entry: dict[str, Any] = dict(zip(by, key))
        entry["n"] = len(members)
        for v in values:
            entry[f"{v}_mean"], entry[f"{v}_sd"] = mean_std([float(m[v]) for m in members])
        for f in flags:
            entry[f] = f"{sum(bool(m[f]) for m in members)}/{len(members)}"
        out.append(entry)
    return out


def pm(values: Sequence[float], digits: int = 3) -> str:
    """"mean ± sd (n)" for a table cell.

    Examples
    --------
    >>> pm([0.9, 1.0, 0.95])
    '0.950 ± 0.050 (n=3)'
    """
    m, s = mean_std(values)
    return f"{m:.{digits}f} ± {s:.{digits}f} (n={len(values)})"


def binomial_se(p: float, n: int) -> float:
    """Standard error of an accuracy p measured on n test points: sqrt(p (1 - p) / n).

    Examples
    --------
    >>> round(binomial_se(0.94, 1000), 4)
    0.0075
    """
    return math.sqrt(max(p * (1 - p), 0.0) / n)

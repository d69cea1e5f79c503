"""PNG export that never hangs: kaleido in a child process with a time limit, matplotlib where no browser works.

kaleido renders plotly figures with a headless Chromium. Where none is installed (the Docker image) or where it
starts but never answers, kaleido raises in its own thread and write_image waits forever. So it runs in a child
process that can be killed after a time limit, and PNGs fall back to matplotlib, drawn from the figure's data.
Used by the experiments (which fall back) and the command line (which refuses up front, naming the formats that
need no browser).
"""
from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

PNG_TIMEOUT_S = 15.0  # a warm kaleido export takes 0.2-0.7 s here
PNG_START_TIMEOUT_S = 60.0  # the first one also starts Chromium: 2-10 s on two busy cores

_KALEIDO_CHILD = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
import kaleido, plotly.io as pio
kaleido.start_sync_server(silence_warnings=True)
for line in sys.stdin:
    job = json.loads(line)
    try:
        pio.from_json(job["figure"]).write_image(job["path"], width=job["width"], height=job["height"],
                                                 scale=job["scale"])
        print("ok", flush=True)
    except Exception as exc:
        print("error " + " ".join(repr(exc).split()), flush=True)
"""


class ExportError(RuntimeError):
    """kaleido could not write a PNG (no browser, it failed, or it did not answer in time)."""


def find_browser() -> str | None:
    """The Chromium kaleido would start (BROWSER_PATH, PATH, the usual places), if it is an executable file."""
    try:
        from choreographer.browsers.chromium import Chromium
    except ImportError:
        return None
    path = Chromium.find_browser(skip_local=False)
    return path if path and os.path.isfile(path) and os.access(path, os.X_OK) else None


class KaleidoProcess:
    """One kaleido (and Chromium) in a child process for the whole run, killed if an export overruns."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None

    def write(self, fig: Any, path: Path, width: int, height: int, scale: float = 1.0) -> None:
        first = self.proc is None
        if first:
            self.proc = subprocess.Popen([sys.executable, "-c", _KALEIDO_CHILD], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                         start_new_session=True)
            atexit.register(self.close)
        limit = _seconds("SPLINEVIZ_PNG_START_TIMEOUT", PNG_START_TIMEOUT_S) if first else \
            _seconds("SPLINEVIZ_PNG_TIMEOUT", PNG_TIMEOUT_S)
        job = {"figure": fig.to_json(), "path": str(path), "width": width, "height": height, "scale": scale}
        try:
            self.proc.stdin.write(json.dumps(job) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            self.close()
            raise ExportError("kaleido exited") from None
        if not select.select([self.proc.stdout], [], [], limit)[0]:
            self.close()
            raise ExportError(f"kaleido did not answer within {limit:g} s")
        answer = self.proc.stdout.readline().strip()
        if answer != "ok":
            self.close()
            raise ExportError(answer.removeprefix("error ") or "kaleido exited")

    def close(self) -> None:
        """Stop kaleido and the browser it started (in a session of its own, so a group kill would miss it)."""
        import psutil

        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        with contextlib.suppress(psutil.NoSuchProcess):
            for child in psutil.Process(proc.pid).children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _seconds(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


_export: dict[str, Any] = {"kaleido": None, "reason": None}


def write_png(fig: Any, path: Path) -> str:
    """Write ``fig`` as a PNG; returns the renderer used ("kaleido" or "matplotlib"). Never hangs.

    kaleido is tried while it works; after the first failure (no browser, an error, a timeout) every PNG of the
    run is drawn with matplotlib instead, and one warning says why.
    """
    width, height = int(fig.layout.width or 900), int(fig.layout.height or 600)
    if _export["reason"] is None:
        if _export["kaleido"] is None:
            if find_browser() is None:
                _fall_back("no Chromium found for kaleido")
            else:
                _export["kaleido"] = KaleidoProcess()
        if _export["kaleido"] is not None:
            try:
                _export["kaleido"].write(fig, path, width, height)
                return "kaleido"
            except ExportError as exc:
                _export["kaleido"] = None
                _fall_back(f"kaleido failed: {exc}")
    matplotlib_png(fig, path, width, height)
    return "matplotlib"


def _fall_back(reason: str) -> None:
    _export["reason"] = reason
    warnings.warn(f"PNG figures are drawn with matplotlib from now on ({reason}); the HTML figures are exact",
                  stacklevel=3)


def matplotlib_png(fig: Any, path: Path, width: int, height: int) -> None:
    """Draw a plotly figure's scatter, line and heatmap traces with matplotlib (no browser needed).

    An approximation of plotly's rendering, enough for the experiments' figures: subplots by axis domain, axis
    titles and ranges, equal aspect where plotly anchors the scales, subplot titles, the legend.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    canvas = Figure(figsize=(width / 100, height / 100), dpi=100)
    FigureCanvasAgg(canvas)
    layout = fig.layout
    axes: dict[tuple[str, str], Any] = {}
    for trace in fig.data:
        key = (getattr(trace, "xaxis", None) or "x", getattr(trace, "yaxis", None) or "y")
        if key not in axes:
            axes[key] = _axes(canvas, layout, *key)
        _draw(axes[key], trace)
    for annotation in layout.annotations or ():
        if annotation.xref == "paper" and annotation.text:
            canvas.text(0.06 + 0.9 * annotation.x, 0.08 + 0.84 * annotation.y, _plain(annotation.text),
                        ha="center", va="bottom", fontsize=9)
    if layout.title and layout.title.text:
        canvas.suptitle(_plain(layout.title.text), fontsize=11)
    labelled = [ax for ax in axes.values() if ax.get_legend_handles_labels()[1]]
    if labelled:
        labelled[0].legend(fontsize=7, loc="best")
    canvas.savefig(path)


def _axes(canvas: Any, layout: Any, xref: str, yref: str) -> Any:
    xaxis, yaxis = layout["xaxis" + xref[1:]], layout["yaxis" + yref[1:]]
    x0, x1 = xaxis.domain or (0, 1)
    y0, y1 = yaxis.domain or (0, 1)
    # the figure's margins, then plotly's domains inside them
    ax = canvas.add_axes((0.08 + 0.88 * x0, 0.1 + 0.8 * y0, 0.88 * (x1 - x0) * 0.92, 0.8 * (y1 - y0) * 0.88))
    ax.tick_params(labelsize=7)
    for axis, setter_range, setter_label in ((xaxis, ax.set_xlim, ax.set_xlabel), (yaxis, ax.set_ylim, ax.set_ylabel)):
        if axis.range is not None:
            setter_range(*axis.range)
        if axis.title and axis.title.text:
            setter_label(_plain(axis.title.text), fontsize=8)
        if axis.type == "log":
            (ax.set_xscale if axis is xaxis else ax.set_yscale)("log")
    if yaxis.scaleanchor or xaxis.scaleanchor:
        ax.set_aspect("equal", adjustable="datalim")
    return ax


def _draw(ax: Any, trace: Any) -> None:
    import numpy as np

    label = trace.name if trace.name and trace.showlegend is not False else None
    if trace.type == "heatmap":
        z = np.asarray(trace.z, dtype=float)
        x = np.asarray(trace.x, dtype=float) if trace.x is not None else np.arange(z.shape[1])
        y = np.asarray(trace.y, dtype=float) if trace.y is not None else np.arange(z.shape[0])
        ax.pcolormesh(x, y, z, shading="auto", cmap="viridis")
        return
    if trace.type not in ("scatter", "scattergl"):
        return  # not used by the experiments; the HTML figure has it
    y = np.asarray(trace.y, dtype=float)
    x = np.asarray(trace.x, dtype=float) if trace.x is not None else np.arange(len(y))
    mode = trace.mode or "lines+markers"
    if "lines" in mode:
        dash = {"dash": "--", "dot": ":", "dashdot": "-."}.get(trace.line.dash or "", "-")
        ax.plot(x, y, color=_colour(trace.line.color), linewidth=0.75 * (trace.line.width or 2), linestyle=dash,
                label=label)
        label = None
    if "markers" in mode:
        colour = trace.marker.color
        numeric = colour is not None and not isinstance(colour, str) and all(
            isinstance(c, (int, float)) for c in colour)
        size = trace.marker.size if isinstance(trace.marker.size, (int, float)) else 6
        ax.scatter(x, y, s=(0.75 * size) ** 2, label=label, linewidths=0,
                   c=colour if numeric else None, cmap="coolwarm" if numeric else None,
                   color=None if numeric else _colour(colour))


def _colour(colour: Any) -> Any:
    """A plotly colour as matplotlib takes it ("rgba(r, g, b, a)" becomes a tuple); None keeps the default."""
    if isinstance(colour, str) and colour.startswith("rgb"):
        parts = [float(v) for v in colour[colour.index("(") + 1:colour.index(")")].split(",")]
        return tuple(v / 255 for v in parts[:3]) + (tuple(parts[3:4]) or (1.0,))
    if isinstance(colour, (list, tuple)):
        return [_colour(c) for c in colour]
    return colour


def _plain(text: str) -> str:
    return re.sub(r"<[^>]+>", "", text)

"""How experiments draw figures: plotly building blocks (the experiments sit below ``splineviz.figures`` in the
layering, so they draw their own simple figures); ``splineviz.png`` writes them as PNG.

Partitions are drawn from plain segment lists, so that tasks running in other processes can send them back as JSON.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from splineviz.partition.geometry import nan_separated

LAYER_COLOURS = ("#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")
DECISION_COLOUR = "#d62728"
METHOD_COLOURS = {"node": "#1f77b4", "weight": "#2ca02c", "random": "#7f7f7f", "spline": "#d62728",
                  "spline (no tolerance)": "#ff9896", "dense": "#000000"}


def drawing(partition: Any, layers: int | None = None) -> dict[str, Any]:
    """A partition's per-layer boundary segments and decision boundary as JSON-able lists."""
    n = partition.n_layers if layers is None else min(layers, partition.n_layers)
    return {"layers": [partition.segments(layer=k).round(6).tolist() for k in range(n)],
            "decision": np.asarray(partition.decision_boundary).round(6).tolist()}


def add_drawing(fig: Any, picture: dict[str, Any], row: int, col: int, legend: bool,
                layer_names: Sequence[str] | None = None, colours: Sequence[str] = LAYER_COLOURS) -> None:
    """Each layer's subdivision lines in its colour, then the decision boundary in red, into one subplot."""
    import plotly.graph_objects as go

    for k, segments in enumerate(picture["layers"]):
        xs, ys = nan_separated(np.asarray(segments, dtype=float).reshape(-1, 2, 2))
        name = layer_names[k] if layer_names else f"layer {k + 1}"
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=name, legendgroup=f"l{k}", showlegend=legend,
                                 line=dict(width=1, color=colours[k % len(colours)])), row=row, col=col)
    xs, ys = nan_separated(np.asarray(picture["decision"], dtype=float).reshape(-1, 2, 2))
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="decision boundary", legendgroup="decision",
                             showlegend=legend, line=dict(width=2.5, color=DECISION_COLOUR)), row=row, col=col)


def square_panels(fig: Any, n_rows: int, n_cols: int, bounds: Sequence[float], x_title: str = "x",
                  y_title: str = "y", count: int | None = None) -> None:
    """Equal aspect, the same range and labelled axes on the first ``count`` subplots of a grid."""
    for k in range(count if count is not None else n_rows * n_cols):
        row, col = k // n_cols + 1, k % n_cols + 1
        suffix = "" if k == 0 else str(k + 1)
        fig.update_xaxes(range=list(bounds[:2]), title_text=x_title, constrain="domain", row=row, col=col)
        fig.update_yaxes(range=list(bounds[2:]), title_text=y_title, scaleanchor=f"x{suffix}", scaleratio=1,
                         constrain="domain", row=row, col=col)


def grid_shape(n: int, max_cols: int = 4) -> tuple[int, int]:
    cols = min(n, max_cols)
    return -(-n // cols), cols


def mean_sd_trace(x: Sequence[float], runs: Sequence[Sequence[float]], name: str, colour: str,
                  dash: str | None = None, legendgroup: str | None = None, showlegend: bool = True) -> Any:
    """A line through the per-x means with +-1 sd error bars (runs[i] are the seeds' values at x[i])."""
    import plotly.graph_objects as go

    means = [float(np.mean(r)) for r in runs]
    sds = [float(np.std(r, ddof=1)) if len(r) > 1 else 0.0 for r in runs]
    return go.Scatter(x=list(x), y=means, error_y=dict(type="data", array=sds, thickness=1, width=3),
                      mode="lines+markers", name=name, line=dict(color=colour, dash=dash),
                      legendgroup=legendgroup or name, showlegend=showlegend)

"""Plotly building blocks shared by the experiments that draw traced partitions.

The experiments sit below ``splineviz.figures`` in the layering, so they draw their own (simple) figures here.
"""
from __future__ import annotations

from typing import Any

import numpy as np

LAYER_COLOURS = ("#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")
DECISION_COLOUR = "#d62728"


def segment_xy(segments: np.ndarray) -> tuple[list[float | None], list[float | None]]:
    """(k, 2, 2) segments as one polyline with None gaps: one plotly trace instead of k."""
    xs: list[float | None] = []
    ys: list[float | None] = []
    for (x0, y0), (x1, y1) in np.asarray(segments, dtype=float).reshape(-1, 2, 2):
        xs += [x0, x1, None]
        ys += [y0, y1, None]
    return xs, ys


def add_partition(fig: Any, partition: Any, row: int, col: int, legend: bool, layers: int | None = None) -> None:
    """Each layer's subdivision lines in its colour, then the decision boundary in red, into one subplot."""
    import plotly.graph_objects as go

    for layer in range(partition.n_layers if layers is None else layers):
        xs, ys = segment_xy(partition.segments(layer=layer))
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=f"layer {layer + 1}", legendgroup=f"l{layer}",
                                 showlegend=legend, line=dict(width=1, color=LAYER_COLOURS[layer % 5])),
                      row=row, col=col)
    xs, ys = segment_xy(partition.decision_boundary)
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="decision boundary", legendgroup="decision",
                             showlegend=legend, line=dict(width=2.5, color=DECISION_COLOUR)), row=row, col=col)


def grid_shape(n: int, max_cols: int = 4) -> tuple[int, int]:
    cols = min(n, max_cols)
    return -(-n // cols), cols

"""Plotly building blocks shared by the experiments that draw traced partitions.

The experiments sit below ``splineviz.figures`` in the layering, so they draw their own (simple) figures here.
"""
from __future__ import annotations

from typing import Any

from splineviz.partition.geometry import nan_separated

LAYER_COLOURS = ("#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")
DECISION_COLOUR = "#d62728"


def add_partition(fig: Any, partition: Any, row: int, col: int, legend: bool, layers: int | None = None) -> None:
    """Each layer's subdivision lines in its colour, then the decision boundary in red, into one subplot."""
    import plotly.graph_objects as go

    for layer in range(partition.n_layers if layers is None else layers):
        xs, ys = nan_separated(partition.segments(layer=layer))
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=f"layer {layer + 1}", legendgroup=f"l{layer}",
                                 showlegend=legend, line=dict(width=1, color=LAYER_COLOURS[layer % 5])),
                      row=row, col=col)
    xs, ys = nan_separated(partition.decision_boundary)
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="decision boundary", legendgroup="decision",
                             showlegend=legend, line=dict(width=2.5, color=DECISION_COLOUR)), row=row, col=col)


def grid_shape(n: int, max_cols: int = 4) -> tuple[int, int]:
    cols = min(n, max_cols)
    return -(-n // cols), cols

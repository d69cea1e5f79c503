"""Notebook plots: traced partitions and sequences of them as plotly Figures.

Pure functions from results to figures, built only from the results' public arrays (``class_cells()``,
``segments(layer)``, ``decision_boundary``; ``knots(layer)``, ``values`` in 1-D), so they work on any
``Partition`` or ``IntervalPartition``. ``Partition.plot`` and ``IntervalPartition.plot`` import this module on
first use, so the numeric core never loads plotly. Every figure is self-contained: animations play from their
own frames and slider in Jupyter and in exported HTML, without a server.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

from .partition import Partition
from .partition.interval import IntervalPartition
from .svg import CLASS_COLORS, LAYER_COLORS  # one palette for figures and SVG files

POINT_COLORS = qualitative.Set1
Result = Partition | IntervalPartition


def plot_partition(p: Partition, layers: Sequence[int] | None = None, decision: bool = True, cells: bool = True,
                   points: np.ndarray | None = None, labels: np.ndarray | None = None,
                   title: str | None = None) -> go.Figure:
    """A 2-D partition: class cells, each layer's boundary in its own colour, the decision boundary, points.

    Parameters
    ----------
    p
        A traced `Partition`.
    layers
        Nonlinear layers whose boundaries to draw; default all.
    decision, cells
        Draw the decision boundary; shade the exact class cells (``p.class_cells()``).
    points, labels
        Optional ``(k, 2)`` points in plane coordinates (e.g. training data) and their integer classes.
    title
        Figure title; default the region count.

    Returns
    -------
    plotly.graph_objects.Figure

    Examples
    --------
    >>> import splineviz
    >>> from splineviz.nets import mlp
    >>> fig = splineviz.trace(mlp(2, hidden=(8,), out_features=2)).plot(layers=[0])
    >>> [trace.name for trace in fig.data]
    ['class 0', 'class 1', 'layer 0', 'decision boundary']
    """
    classes = _classes(p)
    fig = go.Figure(_partition_traces(p, _layers(p, layers), classes, decision, cells),
                    layout=_layout_2d(p, title))
    if points is not None:
        fig.add_traces(_point_traces(np.asarray(points, dtype=np.float64).reshape(-1, 2), labels))
    return fig


def plot_interval(p: IntervalPartition, layers: Sequence[int] | None = None, decision: bool = True,
                  cells: bool = True, points: tuple[np.ndarray, np.ndarray] | None = None,
                  title: str | None = None) -> go.Figure:
    """A one-input network: its outputs as exact piecewise-linear curves, knots per layer, class cells.

    Parameters
    ----------
    p
        A traced `splineviz.partition.interval.IntervalPartition`.
    layers
        Nonlinear layers whose knots to draw (vertical lines in the layer's colour); default all.
    decision, cells
        Draw the decision points; shade the pieces by predicted class (classifiers only: nets with
        several outputs or ``decision_classes``; a single output is drawn as a regression curve).
    points
        Optional ``(x, y)`` data to draw over the curves (e.g. regression targets).
    title
        Figure title; default the piece count.

    Examples
    --------
    >>> import splineviz
    >>> from splineviz.nets import mlp
    >>> fig = splineviz.trace(mlp(1, hidden=(4,), out_features=1), bounds=(-1, 1)).plot()
    >>> fig.data[0].name
    'output 0'
    """
    y_range = _y_range([p])
    fig = go.Figure(_interval_traces(p, _layers(p, layers), _classes(p), decision, cells, y_range),
                    layout=_layout_1d(p, title, y_range))
    if points is not None:
        x, y = (np.asarray(a, dtype=np.float64).reshape(-1) for a in points)
        fig.add_trace(go.Scatter(x=x, y=y, mode="markers", name="data", marker=dict(size=5, color="#444")))
    return fig


def animate(models_or_snapshots: Any, bounds: Sequence[float] | None = None, plane: Any = None,
            input_shape: Sequence[int] | None = None, model: Any = None, names: Sequence[str] | None = None,
            points: Any = None, labels: np.ndarray | None = None, layers: Sequence[int] | None = None,
            decision: bool = True, cells: bool = True, duration: int = 300, **trace_options: Any) -> go.Figure:
    """One frame per model or training snapshot, with a slider and play button (no server needed).

    Parameters
    ----------
    models_or_snapshots
        A sequence of torch models, op lists, traced partitions, state dicts or `splineviz.train.Snapshot`s,
        or a `splineviz.train.TrainResult` (its snapshots, loaded into its model).
    bounds, plane, input_shape, **trace_options
        As for `splineviz.trace`, used for every frame.
    model
        The architecture that state dicts and snapshots are loaded into (any model of that shape).
    names
        Frame labels on the slider; default the snapshots' epochs, else 0, 1, ...
    points, labels, layers, decision, cells
        As for `plot_partition` (2-D) or `plot_interval` (1-D, ``points=(x, y)``); points stay fixed.
    duration
        Milliseconds per frame when playing.

    Returns
    -------
    plotly.graph_objects.Figure
        With ``frames`` and a slider; ``fig.write_html(path)`` gives a page that plays offline.

    Examples
    --------
    >>> import splineviz
    >>> from splineviz.nets import mlp
    >>> fig = splineviz.animate([mlp(2, hidden=(6,), seed=s) for s in range(3)], bounds=(-2, 2, -2, 2))
    >>> len(fig.frames), len(fig.layout.sliders[0].steps)
    (3, 3)
    """
    results, labels_ = _results(models_or_snapshots, bounds, plane, input_shape, model, trace_options)
    if not results:
        raise ValueError("nothing to animate: give at least one model, snapshot or partition")
    names = [str(n) for n in names] if names is not None else labels_
    if len(names) != len(results):
        raise ValueError(f"{len(names)} names for {len(results)} frames")
    one_d = isinstance(results[0], IntervalPartition)
    if any(isinstance(r, IntervalPartition) != one_d for r in results):
        raise ValueError("cannot animate 1-D and 2-D partitions together")
    n_layers = max(r.n_layers for r in results)
    shown = list(range(n_layers)) if layers is None else list(layers)
    classes = sorted(set().union(*(_classes(r) for r in results)))
    if one_d:
        y_range = _y_range(results)
        frame_data = [_interval_traces(r, shown, classes, decision, cells, y_range) for r in results]
        layout = _layout_1d(results[0], None, y_range)
    else:
        frame_data = [_partition_traces(r, shown, classes, decision, cells) for r in results]
        layout = _layout_2d(results[0], None)
    fig = go.Figure(frame_data[0], layout=layout)
    fig.update_layout(title=_title(results[0], names[0]))
    fig.frames = [go.Frame(data=data, name=name, traces=list(range(len(data))),
                           layout=go.Layout(title=_title(r, name)))
                  for data, name, r in zip(frame_data, names, results)]
    if points is not None:
        if one_d:
            x, y = (np.asarray(a, dtype=np.float64).reshape(-1) for a in points)
            fig.add_trace(go.Scatter(x=x, y=y, mode="markers", name="data", marker=dict(size=5, color="#444")))
        else:
            fig.add_traces(_point_traces(np.asarray(points, dtype=np.float64).reshape(-1, 2), labels))
    fig.update_layout(sliders=[_slider(names, duration)], updatemenus=[_play_buttons(duration)])
    return fig


# ------------------------------------------------------------------------------------------- traces

def _layers(p: Result, layers: Sequence[int] | None) -> list[int]:
    if layers is None:
        return list(range(p.n_layers))
    bad = [layer for layer in layers if not 0 <= layer < p.n_layers]
    if bad:
        raise IndexError(f"layers {bad} out of range: the network has {p.n_layers} nonlinear layers")
    return list(layers)


def _classes(p: Result) -> list[int]:
    return sorted(int(c) for c in np.unique(p.class_cells()[1]))


def _nan_joined(pieces: Sequence[np.ndarray], close: bool) -> tuple[np.ndarray, np.ndarray]:
    """Polylines (or closed polygons) as one x and one y array with NaN between them: one trace draws them all."""
    if not len(pieces):
        return np.empty(0), np.empty(0)
    rows = [np.vstack([q, q[:1], [[np.nan, np.nan]]]) if close else np.vstack([q, [[np.nan, np.nan]]])
            for q in pieces]
    xy = np.vstack(rows)
    return xy[:, 0], xy[:, 1]


def _partition_traces(p: Partition, layers: Sequence[int], classes: Sequence[int], decision: bool,
                      cells: bool) -> list[go.Scatter]:
    """A fixed list of traces (class cells per class, one per layer, decision) so that frames line up."""
    traces = []
    if cells:
        polygons, cell_class = p.class_cells()
        for c in classes:
            x, y = _nan_joined([q for q, k in zip(polygons, cell_class) if k == c], close=True)
            traces.append(go.Scatter(x=x, y=y, mode="lines", fill="toself", name=f"class {c}", line=dict(width=0),
                                     fillcolor=CLASS_COLORS[c % len(CLASS_COLORS)], hoverinfo="skip"))
    for layer in layers:
        segments = p.segments(layer) if layer < p.n_layers else np.empty((0, 2, 2))
        x, y = _nan_joined(list(segments), close=False)
        traces.append(go.Scatter(x=x, y=y, mode="lines", name=f"layer {layer}", hoverinfo="skip",
                                 line=dict(width=1, color=LAYER_COLORS[layer % len(LAYER_COLORS)])))
    if decision:
        x, y = _nan_joined(list(p.decision_boundary), close=False)
        traces.append(go.Scatter(x=x, y=y, mode="lines", name="decision boundary", hoverinfo="skip",
                                 line=dict(width=3, color="black")))
    return traces


def _interval_traces(p: IntervalPartition, layers: Sequence[int], classes: Sequence[int], decision: bool,
                     cells: bool, y_range: tuple[float, float]) -> list[go.Scatter]:
    """Class bands, one curve per output, knots per layer and decision points as vertical lines."""
    lo, hi = y_range
    traces = []
    classifier = p.values.shape[1] > 1 or p.decision_classes is not None
    if cells and classifier:
        spans, span_class = p.class_cells()
        for c in classes:
            bands = [np.array([[a, lo], [b, lo], [b, hi], [a, hi]]) for (a, b), k in zip(spans, span_class) if k == c]
            x, y = _nan_joined(bands, close=True)
            traces.append(go.Scatter(x=x, y=y, mode="lines", fill="toself", name=f"class {c}", line=dict(width=0),
                                     fillcolor=CLASS_COLORS[c % len(CLASS_COLORS)], hoverinfo="skip"))
    for j in range(p.values.shape[1]):
        traces.append(go.Scatter(x=p.breakpoints, y=p.values[:, j], mode="lines", name=f"output {j}",
                                 line=dict(width=2)))
    for layer in layers:
        knots = p.knots(layer) if layer < p.n_layers else np.empty(0)
        x, y = _nan_joined([np.array([[k, lo], [k, hi]]) for k in knots], close=False)
        traces.append(go.Scatter(x=x, y=y, mode="lines", name=f"layer {layer} knots", hoverinfo="skip",
                                 line=dict(width=1, dash="dot", color=LAYER_COLORS[layer % len(LAYER_COLORS)])))
    if decision and classifier:
        x, y = _nan_joined([np.array([[k, lo], [k, hi]]) for k in p.decision_boundary], close=False)
        traces.append(go.Scatter(x=x, y=y, mode="lines", name="decision points", line=dict(width=3, color="black")))
    return traces


def _point_traces(points: np.ndarray, labels: np.ndarray | None) -> list[go.Scatter]:
    if labels is None:
        return [go.Scatter(x=points[:, 0], y=points[:, 1], mode="markers", name="points",
                           marker=dict(size=5, color="#444"))]
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != len(points):
        raise ValueError(f"{len(labels)} labels for {len(points)} points")
    return [go.Scatter(x=points[labels == c, 0], y=points[labels == c, 1], mode="markers", name=f"points {c}",
                       marker=dict(size=6, color=POINT_COLORS[int(c) % len(POINT_COLORS)],
                                   line=dict(width=0.5, color="white")))
            for c in np.unique(labels)]


def _y_range(results: Sequence[IntervalPartition]) -> tuple[float, float]:
    lo = min(float(r.values.min()) for r in results)
    hi = max(float(r.values.max()) for r in results)
    pad = 0.05 * (hi - lo) if hi > lo else 1.0
    return lo - pad, hi + pad


# ------------------------------------------------------------------------------------------- layout

def _title(p: Result, name: str | None = None) -> str:
    count = f"{p.n_regions:,} pieces" if isinstance(p, IntervalPartition) else f"{p.n_regions:,} regions"
    return count if name is None else f"{name}: {count}"


def _layout_2d(p: Partition, title: str | None) -> go.Layout:
    xs, ys = p.vertices[:, 0], p.vertices[:, 1]
    axis = ("a", "b") if p.plane is not None else ("x1", "x2")
    return go.Layout(title=title or _title(p), template="plotly_white", width=640, height=640,
                     xaxis=dict(title=axis[0], range=[xs.min(), xs.max()], constrain="domain"),
                     yaxis=dict(title=axis[1], range=[ys.min(), ys.max()], scaleanchor="x", constrain="domain"))


def _layout_1d(p: IntervalPartition, title: str | None, y_range: tuple[float, float]) -> go.Layout:
    return go.Layout(title=title or _title(p), template="plotly_white", width=720, height=420,
                     xaxis=dict(title="x", range=list(p.bounds)), yaxis=dict(title="output", range=list(y_range)))


def _slider(names: Sequence[str], duration: int) -> dict:
    return dict(active=0, currentvalue=dict(prefix=""), x=0.2, len=0.8, y=0, yanchor="top", pad=dict(t=50), steps=[
        dict(label=name, method="animate",
             args=[[name], dict(mode="immediate", frame=dict(duration=duration, redraw=True),
                                transition=dict(duration=0))])
        for name in names])


def _play_buttons(duration: int) -> dict:
    play = dict(frame=dict(duration=duration, redraw=True), fromcurrent=True, transition=dict(duration=0))
    pause = dict(mode="immediate", frame=dict(duration=0, redraw=False), transition=dict(duration=0))
    return dict(type="buttons", direction="left", x=0.2, y=0, xanchor="right", yanchor="top", pad=dict(t=80, r=10),
                buttons=[dict(label="▶ Play", method="animate", args=[None, play]),
                         dict(label="❚❚ Pause", method="animate", args=[[None], pause])])


# ------------------------------------------------------------------------------------------- inputs

def _results(items: Any, bounds: Any, plane: Any, input_shape: Any, model: Any,
             options: Mapping[str, Any]) -> tuple[list[Result], list[str]]:
    """Trace every item; frame labels from snapshot epochs where there are any."""
    if hasattr(items, "snapshots") and hasattr(items, "model"):  # a TrainResult
        items, model = items.snapshots, items.model if model is None else model
    from . import trace

    results, labels = [], []
    for i, item in enumerate(items):
        epoch = getattr(item, "epoch", None)
        if isinstance(item, (Partition, IntervalPartition)):
            results.append(item)
        else:
            state = item.state if hasattr(item, "state") and hasattr(item, "epoch") else item
            if isinstance(state, Mapping):
                if model is None:
                    raise ValueError("state dicts and snapshots need model= (the architecture to load them into)")
                from .nets import model_from_state

                state = model_from_state(state, model)
            results.append(trace(state, bounds=bounds, plane=plane, input_shape=input_shape, **options))
        labels.append(f"epoch {epoch}" if epoch is not None else str(i))
    return results, labels


__all__ = ["animate", "plot_interval", "plot_partition"]

"""Pure functions from results to plotly figures (no Dash, no torch).

The partition view is drawn from a `splineviz.frame.Frame`: packed class cells (regions cut along
the decision boundary, so fills follow it exactly), a colour key per region and layer, boundary
segments per layer and the decision boundary. ``partition_figure``, ``partition_traces`` and
``side_by_side`` take a Frame or its JSON. The app's browser painter (``assets/splineviz-2-gl.js``)
draws the same Frame JSON with the same ``STYLE`` (handed to it through a store) on the axes that
``partition_layout`` / ``side_by_side_layout`` make, so colours and axes live in one place; a browser
test checks that both draw the same pixels.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.basedatatypes import BaseTraceType
from plotly.subplots import make_subplots

from splineviz.frame import N_CODE_COLOURS, Frame
from splineviz.partition.interval import IntervalPartition
from splineviz.partition.geometry import nan_separated

# 11 code colours: a prime count makes neighbouring regions (codes differing in one unit) always differ,
# because each unit adds a weight in 1..10 to the colour key modulo 11 (see splineviz.frame.colour_keys).
STYLE: dict[str, Any] = {
    "class_fill": ["#fcd9b8", "#c6dbef", "#c7e9c0", "#dadaeb", "#f7c6c7", "#d9d9d9", "#f2c4de", "#fff3b0",
                   "#b8e2e0", "#dfe9b5"],
    "class_point": ["#e6550d", "#3182bd", "#31a354", "#756bb1", "#c0392b", "#636363", "#c51b8a", "#b59f00",
                    "#238b8a", "#7a9a01"],
    "code_fill": ["#8dd3c7", "#ffffb3", "#bebada", "#fb8072", "#80b1d3", "#fdb462", "#b3de69", "#fccde5",
                  "#d9d9d9", "#bc80bd", "#ccebc5"],
    "layer_line": ["#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"],
    "layer_width": 1.2,
    "decision_line": "#d62728",
    "decision_width": 3.5,
    # under software GL the painter draws the layers shown as 1-px lines when they hold more segments than this, and
    # fills the cells of a frame of more cells than dense_cells by scanlines, into one image (splineviz-2-gl.js)
    "dense_segments": 5_000,
    "dense_cells": 2_000,
    "border_line": "#444444",
    "fill_opacity": 0.75,
    "background": "#ffffff",
    "point_size": 5,
    "point_line": 0.6,
}
assert len(STYLE["code_fill"]) == N_CODE_COLOURS
# A tiny template instead of "plotly_white": plotly deep-copies templates on every figure, and the stock ones
# cost ~50 ms, which would dominate building a partition figure.
TEMPLATE = go.layout.Template(layout={
    "font": {"family": "Inter, system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12, "color": "#2a3f5f"},
    "paper_bgcolor": "white", "plot_bgcolor": "white", "colorway": STYLE["layer_line"],
    "xaxis": {"gridcolor": "#ebf0f8", "linecolor": "#c8d4e3", "zerolinecolor": "#ebf0f8", "ticks": ""},
    "yaxis": {"gridcolor": "#ebf0f8", "linecolor": "#c8d4e3", "zerolinecolor": "#ebf0f8", "ticks": ""},
    "hoverlabel": {"align": "left"}})


# --------------------------------------------------------------------------------------------------------------
# frames
# --------------------------------------------------------------------------------------------------------------
def as_frame(frame: Frame | Mapping[str, Any]) -> Frame:
    """A Frame from a Frame or its JSON (``Frame.to_json``; extra keys such as the app's ``weights`` are ignored)."""
    return frame if isinstance(frame, Frame) else Frame.from_json(frame)


# --------------------------------------------------------------------------------------------------------------
# partition figure
# --------------------------------------------------------------------------------------------------------------
def closed_outlines(px: np.ndarray, py: np.ndarray, offsets: np.ndarray, select: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The selected polygons as one x/y pair: each closed on its first vertex and followed by a NaN gap.

    One filled scatter trace can then draw any number of polygons (fill="toself" fills each closed piece).
    """
    starts, ends = offsets[select], offsets[select + 1]
    lens = ends - starts + 2
    slot_start = np.cumsum(lens) - lens
    local = np.arange(lens.sum()) - np.repeat(slot_start, lens)
    n_vertices = np.repeat(lens - 2, lens)
    first = np.repeat(starts, lens)
    idx = np.where(local < n_vertices, first + local, first)
    gap = local == n_vertices + 1
    x = px[idx].astype(np.float64)
    y = py[idx].astype(np.float64)
    x[gap] = np.nan
    y[gap] = np.nan
    return x, y


def _fill_traces(frame: Frame, shade: str, layer: int) -> list[dict]:
    """Class cells filled by class, or by the colour key of their region (shade="code")."""
    if shade == "none" or frame.n_cells == 0:
        return []
    if shade == "code" and frame.keys:
        keys, palette = frame.keys[layer][frame.cell_region], STYLE["code_fill"]
    else:
        keys, palette = frame.cell_class, STYLE["class_fill"]
    traces = []
    for key in np.unique(keys):
        x, y = closed_outlines(frame.cell_x, frame.cell_y, frame.cell_offsets, np.flatnonzero(keys == key))
        traces.append({"type": "scatter", "x": x, "y": y, "mode": "lines", "fill": "toself", "line": {"width": 0},
                       "fillcolor": palette[int(key) % len(palette)], "opacity": STYLE["fill_opacity"],
                       "hoverinfo": "skip", "showlegend": False, "name": f"{shade} {key}"})
    return traces


def _segment_xy(segments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return nan_separated(np.asarray(segments, dtype=np.float64).reshape(-1, 2, 2))


def _boundary_traces(frame: Frame, up_to_layer: int, decision: bool) -> list[dict]:
    traces = []
    for layer, segments in enumerate(frame.segments[: up_to_layer + 1]):
        x, y = _segment_xy(segments)
        traces.append({"type": "scatter", "x": x, "y": y, "mode": "lines", "hoverinfo": "skip",
                       "name": f"layer {layer + 1}",
                       "line": {"color": STYLE["layer_line"][layer % len(STYLE["layer_line"])],
                                "width": STYLE["layer_width"]}})
    if decision:
        x, y = _segment_xy(frame.decision)
        traces.append({"type": "scatter", "x": x, "y": y, "mode": "lines", "hoverinfo": "skip", "name": "decision",
                       "line": {"color": STYLE["decision_line"], "width": STYLE["decision_width"]}})
    return traces


def point_traces(x: np.ndarray, y: np.ndarray) -> list[dict]:
    """Labelled 2-D points, one trace per class so the legend reads as the data's classes."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    return [{"type": "scatter", "x": x[y == c, 0], "y": x[y == c, 1], "mode": "markers", "name": f"class {c}",
             "hoverinfo": "skip", "marker": {"size": STYLE["point_size"],
                                             "color": STYLE["class_point"][c % len(STYLE["class_point"])],
                                             "line": {"width": STYLE["point_line"], "color": "white"}}}
            for c in np.unique(y).astype(int)]


def partition_traces(frame: Frame | Mapping[str, Any], up_to_layer: int | None = None, shade: str = "class",
                     decision: bool = True) -> list[dict]:
    """Shaded cells, boundaries per layer and the decision boundary as plain trace dicts.

    ``up_to_layer`` shows the partition built by layers 0..L only (codes and boundaries of deeper layers hidden,
    and the decision boundary only with the last layer); ``shade`` is "class" (predicted class, exact along the
    decision boundary), "code" (activation pattern up to L) or "none".
    """
    frame = as_frame(frame)
    n_layers = frame.n_layers
    layer = n_layers - 1 if up_to_layer is None else max(0, min(int(up_to_layer), n_layers - 1))
    return _fill_traces(frame, shade, layer) + _boundary_traces(frame, layer, decision and layer == n_layers - 1)


def _axes(bounds: Sequence[float], titles: tuple[str, str], anchor: str = "x") -> tuple[dict, dict]:
    xmin, xmax, ymin, ymax = bounds
    common = {"showgrid": False, "zeroline": False, "mirror": True, "showline": True,
              "linecolor": STYLE["border_line"]}
    return ({"range": [xmin, xmax], "title": {"text": titles[0]}, "constrain": "domain", **common},
            {"range": [ymin, ymax], "title": {"text": titles[1]}, "scaleanchor": anchor, "constrain": "domain",
             **common})


_PARTITION_LAYOUT = {"template": TEMPLATE, "margin": {"l": 50, "r": 10, "t": 30, "b": 45}, "uirevision": "partition",
                     "legend": {"orientation": "h", "y": -0.14, "x": 0}, "hovermode": "closest"}


def partition_layout(bounds: Sequence[float], title: str | None = None,
                     axis_titles: tuple[str, str] = ("x₁", "x₂")) -> dict[str, Any]:
    """The axes, margins and title of a partition figure: what ``partition_figure`` draws on, and what the
    browser's painter is handed to lay its canvas under (the same axes, so both put every point at the same pixel)."""
    xaxis, yaxis = _axes(bounds, axis_titles)
    layout = {**_PARTITION_LAYOUT, "xaxis": xaxis, "yaxis": yaxis}
    if title:
        layout["title"] = {"text": title, "x": 0.02, "font": {"size": 14}}
    return layout


def partition_figure(frame: Frame | Mapping[str, Any], up_to_layer: int | None = None, shade: str = "class", decision: bool = True,
                     extra: Iterable[Mapping | BaseTraceType] = (), title: str | None = None,
                     axis_titles: tuple[str, str] = ("x₁", "x₂")) -> go.Figure:
    """The partition as drawn everywhere in the app (see partition_traces); ``extra`` traces go on top.

    Built from plain dicts without plotly's per-property validation (``_validate=False``), which would
    otherwise cost ~30 ms per figure; tests check the result validates.
    """
    frame = as_frame(frame)
    data = partition_traces(frame, up_to_layer, shade, decision) + [_as_dict(t) for t in extra]
    return go.Figure(data=data, layout=partition_layout(frame.bounds, title, axis_titles), _validate=False)


def _as_dict(trace: Mapping | BaseTraceType) -> dict:
    return trace.to_plotly_json() if isinstance(trace, BaseTraceType) else dict(trace)


def panel_axes(i: int) -> tuple[str, str]:
    """Plotly's names of panel i's axes in ``side_by_side_layout``: ("x", "y"), ("x2", "y2"), ..."""
    suffix = "" if i == 0 else str(i + 1)
    return f"x{suffix}", f"y{suffix}"


def side_by_side_layout(bounds: Sequence[Sequence[float]], titles: Sequence[str]) -> dict[str, Any]:
    """Axes for several partitions in one row (see ``panel_axes``); zooming one panel zooms all (matched axes)."""
    n = len(bounds)
    gap = 0.04
    width = (1 - gap * (n - 1)) / n
    layout: dict[str, Any] = {**_PARTITION_LAYOUT, "margin": {"l": 50, "r": 10, "t": 36, "b": 45}, "annotations": []}
    for i, (box, title) in enumerate(zip(bounds, titles)):
        x, y = panel_axes(i)
        xaxis, yaxis = _axes(box, ("x₁", "x₂" if i == 0 else ""), anchor=x)
        lo = i * (width + gap)
        layout["xaxis" + x[1:]] = {**xaxis, "domain": [lo, lo + width], "anchor": y, **({"matches": "x"} if i else {})}
        layout["yaxis" + y[1:]] = {**yaxis, "anchor": x, **({"matches": "y"} if i else {})}
        layout["annotations"].append({"text": f"<b>{title}</b>", "x": lo + width / 2, "y": 1.0, "xref": "paper",
                                      "yref": "paper", "yanchor": "bottom", "showarrow": False,
                                      "font": {"size": 13}})
    return layout


def side_by_side(frames: Sequence[Frame | Mapping[str, Any]], titles: Sequence[str], extra: Iterable[Mapping] = (),
                 shade: str = "class") -> go.Figure:
    """Several partitions in one row (before/after pruning) on ``side_by_side_layout``'s matched axes."""
    frames = [as_frame(f) for f in frames]
    data: list[dict] = []
    for i, frame in enumerate(frames):
        x, y = panel_axes(i)
        for trace in partition_traces(frame, shade=shade) + [dict(t) for t in extra]:
            data.append({**trace, "xaxis": x, "yaxis": y, "showlegend": i == 0 and trace.get("showlegend", True)})
    return go.Figure(data=data, layout=side_by_side_layout([f.bounds for f in frames], titles), _validate=False)


def regression_figure(partition: IntervalPartition, data: Any = None, *, up_to_layer: int | None = None,
                      target: Callable[[np.ndarray], np.ndarray] | None = None, output: int = 0,
                      title: str | None = None) -> go.Figure:
    """A one-input network's fit as it is: the exact piecewise-linear curve through its breakpoints, and its knots,
    per layer (numbered from 1), as markers on the curve and dotted verticals; hovering a knot names its unit.

    ``data``: a Dataset (or anything with x_train, y_train, x_test, y_test), drawn as train and test points;
    ``target``: the function the net should fit, drawn dashed; ``up_to_layer`` (0-based) hides deeper layers' knots.

    Examples
    --------
    >>> from splineviz.partition import Affine, ReLU
    >>> from splineviz.partition.interval import trace_interval
    >>> p = trace_interval([Affine([[1.0], [-1.0]], [0.0, 0.5]), ReLU(), Affine([[1.0, 1.0]], [0.0])], (-1, 1))
    >>> [t.name for t in regression_figure(p).data]
    ['fit', 'layer 1 knots', 'layer 1']
    """
    x, y = partition.breakpoints, partition.values[:, output]
    lo, hi = float(y.min()), float(y.max())
    traces: list[dict] = []
    if data is not None:
        for split, symbol in (("train", "circle"), ("test", "circle-open")):
            px = np.asarray(getattr(data, f"x_{split}"), dtype=np.float64).reshape(-1)
            if len(px):
                py = np.asarray(getattr(data, f"y_{split}"), dtype=np.float64).reshape(len(px), -1)[:, output]
                lo, hi = min(lo, float(py.min())), max(hi, float(py.max()))
                traces.append({"type": "scatter", "x": px, "y": py, "mode": "markers", "name": f"{split} data",
                               "hoverinfo": "skip", "marker": {"size": 5, "symbol": symbol, "color": "#777777"}})
    if target is not None:
        grid = np.linspace(*partition.bounds, 1001)
        traces.append({"type": "scatter", "x": grid, "y": np.asarray(target(grid), dtype=np.float64).reshape(-1),
                       "mode": "lines", "name": "target", "hoverinfo": "skip",
                       "line": {"color": "#444444", "dash": "dash", "width": 1.5}})
    traces.append({"type": "scatter", "x": x, "y": y, "mode": "lines", "name": "fit",
                   "hovertemplate": "x = %{x:.4g}<br>f(x) = %{y:.4g}<extra>fit</extra>",
                   "line": {"color": STYLE["decision_line"], "width": 2.5}})
    pad = 0.06 * (hi - lo) if hi > lo else 1.0
    lo, hi = lo - pad, hi + pad
    last = partition.n_layers - 1 if up_to_layer is None else min(int(up_to_layer), partition.n_layers - 1)
    for layer in range(last + 1):
        at = partition.breakpoint_layer == layer
        colour = STYLE["layer_line"][layer % len(STYLE["layer_line"])]
        kx = x[at]
        traces.append({"type": "scatter", "x": kx, "y": y[at], "mode": "markers", "name": f"layer {layer + 1} knots",
                       "legendgroup": f"layer{layer}", "customdata": partition.breakpoint_unit[at] + 1,
                       "hovertemplate": f"layer {layer + 1}, unit %{{customdata}}<br>knot at x = %{{x:.4g}}<extra></extra>",
                       "marker": {"size": 8, "color": colour, "line": {"width": 1, "color": "white"}}})
        vx = np.repeat(kx, 3)
        vy = np.tile([lo, hi, np.nan], len(kx))
        vx[2::3] = np.nan
        traces.append({"type": "scatter", "x": vx, "y": vy, "mode": "lines", "name": f"layer {layer + 1}",
                       "legendgroup": f"layer{layer}", "showlegend": False, "hoverinfo": "skip",
                       "line": {"color": colour, "width": 1, "dash": "dot"}})
    layout = {**_PARTITION_LAYOUT, "uirevision": "regression",
              "title": {"text": title or f"{partition.n_regions:,} linear pieces", "x": 0.02, "font": {"size": 14}},
              "xaxis": {"range": list(partition.bounds), "title": {"text": "x"}, "zeroline": False},
              "yaxis": {"range": [lo, hi], "title": {"text": f"output {output}" if partition.values.shape[1] > 1
                                                     else "f(x)"}, "zeroline": False}}
    return go.Figure(data=traces, layout=layout, _validate=False)


def empty_figure(message: str = "") -> go.Figure:
    """A blank, axis-free figure carrying a centred hint (e.g. 'train a model first')."""
    fig = go.Figure()
    fig.update_layout(template=TEMPLATE, xaxis={"visible": False}, yaxis={"visible": False},
                      margin={"l": 10, "r": 10, "t": 10, "b": 10},
                      annotations=[{"text": message, "showarrow": False, "font": {"size": 15, "color": "#777"},
                                    "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}] if message else [])
    return fig


# --------------------------------------------------------------------------------------------------------------
# curves
# --------------------------------------------------------------------------------------------------------------
def training_curves(history: Sequence[Mapping[str, Any]], current_epoch: int | None = None) -> go.Figure:
    """Loss, accuracy (train/test) and region count against epoch, stacked so they fit a side panel."""
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=["train loss", "accuracy", "regions"])
    epochs = [h["epoch"] for h in history]
    series = [("loss", 1, STYLE["class_point"][0], "train loss"),
              ("train_metric", 2, STYLE["class_point"][1], "train"),
              ("test_metric", 2, STYLE["class_point"][2], "test"),
              ("n_regions", 3, STYLE["class_point"][3], "regions")]
    for key, row, colour, name in series:
        values = [h.get(key) for h in history]
        if any(v is not None for v in values):
            fig.add_trace(go.Scatter(x=epochs, y=values, mode="lines", name=name, line={"color": colour, "width": 2},
                                     showlegend=row == 2), row=row, col=1)
    if current_epoch is not None:
        for row in (1, 2, 3):
            fig.add_vline(x=current_epoch, line={"color": "#999", "width": 1, "dash": "dot"}, row=row, col=1)
    fig.update_xaxes(title_text="epoch", title_standoff=2, row=3, col=1)
    fig.update_layout(template=TEMPLATE, margin={"l": 45, "r": 10, "t": 24, "b": 36}, uirevision="curves",
                      legend={"orientation": "h", "x": 1, "xanchor": "right", "y": 0.66, "font": {"size": 11},
                              "bgcolor": "rgba(255,255,255,0.7)"})
    fig.update_annotations(font_size=12, x=0, xanchor="left")
    return fig


def sparsity_curves(curves: Mapping[str, Sequence[tuple[float, float]]], current: float | None = None) -> go.Figure:
    """Test accuracy against sparsity, one line per pruning method (node vs weight vs spline)."""
    fig = go.Figure()
    for i, (method, points) in enumerate(curves.items()):
        xs = [100 * s for s, _ in points]
        ys = [100 * a for _, a in points]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=method,
                                 line={"color": STYLE["layer_line"][i % len(STYLE["layer_line"])], "width": 2}))
    if current is not None:
        fig.add_vline(x=100 * current, line={"color": "#999", "dash": "dot"})
    fig.update_layout(template=TEMPLATE, xaxis_title="sparsity (%)", yaxis_title="test accuracy (%)",
                      margin={"l": 50, "r": 10, "t": 20, "b": 45}, legend={"orientation": "h", "y": 1.1},
                      yaxis_range=[0, 101])
    return fig


def earlybird_heatmap(distances: np.ndarray, epochs: Sequence[int], ticket: int | None,
                      threshold: float | None = None) -> go.Figure:
    """Epoch x epoch partition distance, with the detected early-bird ticket marked by a star and cross-hairs."""
    d = np.asarray(distances, dtype=np.float64)
    fig = go.Figure(go.Heatmap(z=d, x=list(epochs), y=list(epochs), colorscale="Viridis", zmin=0,
                               colorbar={"title": {"text": "distance", "side": "right"}},
                               hovertemplate="epoch %{x} vs %{y}: %{z:.3f}<extra></extra>"))
    if ticket is not None:
        fig.add_trace(go.Scatter(x=[ticket], y=[ticket], mode="markers+text", text=[f"ticket @ {ticket}"],
                                 textposition="top right", textfont={"color": "white", "size": 13},
                                 marker={"symbol": "star", "size": 18, "color": "#d62728",
                                         "line": {"color": "white", "width": 1.5}},
                                 name="early-bird ticket", hoverinfo="name"))
        fig.add_vline(x=ticket, line={"color": "#d62728", "width": 1, "dash": "dash"})
        fig.add_hline(y=ticket, line={"color": "#d62728", "width": 1, "dash": "dash"})
    title = "no ticket detected" if ticket is None else f"early-bird ticket at epoch {ticket}"
    if threshold is not None:
        title += f" (threshold {threshold:g})"
    fig.update_layout(template=TEMPLATE, xaxis_title="epoch", yaxis_title="epoch",
                      yaxis={"scaleanchor": "x", "autorange": "reversed"}, title={"text": title, "x": 0.02},
                      margin={"l": 50, "r": 10, "t": 40, "b": 45}, showlegend=False)
    return fig


def distance_to_previous(epochs: Sequence[int], distances: Sequence[float], ticket: int | None,
                         threshold: float, rule_ticket: int | None = None, pruned_from: int | None = None,
                         marker: int | None = None) -> go.Figure:
    """The largest distance to the previous epochs: the curve the early-bird rule compares with ``threshold``.

    ``ticket`` is where the run pruned; ``rule_ticket`` where the rule fires at ``threshold`` on these distances
    (drawn when it differs, e.g. after the threshold was moved); epochs from ``pruned_from`` on are the pruned
    ticket's own training, shaded. ``marker``: the epoch shown in the animation (see ``REPLAY_MARKER``).
    """
    ys = [None if d is None or not np.isfinite(d) else d for d in distances]
    below = [d is not None and d < threshold for d in ys]
    fig = go.Figure(go.Scatter(x=list(epochs), y=ys, mode="lines+markers", name="window maximum",
                               line={"color": STYLE["layer_line"][0], "width": 2},
                               marker={"color": [STYLE["class_point"][2] if b else STYLE["layer_line"][0]
                                                 for b in below], "size": 6},
                               hovertemplate="epoch %{x}: %{y:.4f}<extra></extra>"))
    fig.add_hline(y=threshold, line={"color": "#555", "dash": "dot"}, annotation_text=f"threshold {threshold:g}",
                  annotation_position="top left", name="threshold")
    if pruned_from is not None and epochs:
        fig.add_vrect(x0=pruned_from, x1=max(epochs), fillcolor="#d62728", opacity=0.06, line_width=0,
                      annotation_text="pruned ticket", annotation_position="top right")
    if ticket is not None:
        fig.add_vline(x=ticket, line={"color": "#d62728", "dash": "dash"}, annotation_text=f"ticket {ticket}",
                      annotation_position="top left")
    if rule_ticket is not None and rule_ticket != ticket:
        fig.add_vline(x=rule_ticket, line={"color": STYLE["class_point"][2], "dash": "dot"},
                      annotation_text=f"rule fires at {rule_ticket}", annotation_position="bottom right")
    if marker is not None:
        _replay_marker(fig, marker)
    fig.update_layout(template=TEMPLATE, xaxis_title="epoch", yaxis_title="max distance to previous epochs",
                      margin={"l": 55, "r": 10, "t": 20, "b": 45}, showlegend=False, uirevision="eb-curve",
                      yaxis={"rangemode": "tozero"})
    return fig


REPLAY_MARKER = "replay-marker"  # the shape a page moves to the epoch its animation shows (splineviz-5m-marker.js)


def _replay_marker(fig: go.Figure, epoch: float) -> None:
    fig.add_shape(type="line", x0=epoch, x1=epoch, xref="x", y0=0, y1=1, yref="paper", name=REPLAY_MARKER,
                  line={"color": "#222", "width": 1.5})


def schedule_curves(runs: Sequence[Mapping[str, Any]], marker: float | None = None) -> go.Figure:
    """Test accuracy, train loss, regions and sparsity against epoch for scheduled pruning runs (one colour per
    run), with each pruning event (dotted) and early-bird ticket (dashed, red) marked, and ``REPLAY_MARKER``.

    A run is ``{"label", "history": [{"epoch", "loss", "train_metric", "test_metric", "n_regions", "sparsity"}],
    "events": [{"epoch", "achieved", "change"}], "ticket"}`` (``web.jobs.pruning.Recorder.payload``).
    """
    rows = [("test_metric", "test accuracy (%)", 100.0), ("loss", "train loss", 1.0), ("n_regions", "regions", 1.0),
            ("sparsity", "sparsity (%)", 100.0)]
    fig = make_subplots(rows=len(rows), cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=[title for _, title, _ in rows])
    fig.update_annotations(font_size=12, x=0, xanchor="left")
    for k, run in enumerate(runs):
        colour = STYLE["layer_line"][k % len(STYLE["layer_line"])]
        history = run.get("history") or []
        epochs = [h["epoch"] for h in history]
        for row, (key, _, scale) in enumerate(rows, start=1):
            values = [None if h.get(key) is None else scale * h[key] for h in history]
            fig.add_trace(go.Scatter(x=epochs, y=values, mode="lines", connectgaps=True, name=run.get("label", ""),
                                     legendgroup=str(k), showlegend=row == 1 and len(runs) > 1,
                                     line={"color": colour, "width": 2, "shape": "hv" if key == "sparsity" else
                                           "linear"}), row=row, col=1)
        for event in run.get("events") or []:
            change = "" if event.get("change") is None else f", boundary moved on {100 * event['change']:.1f} %"
            fig.add_vline(x=event["epoch"], line={"color": colour, "width": 1, "dash": "dot"})
            fig.add_trace(go.Scatter(x=[event["epoch"]], y=[100 * event["achieved"]], mode="markers",
                                     marker={"color": colour, "size": 8, "symbol": "triangle-down"},
                                     showlegend=False, legendgroup=str(k),
                                     hovertemplate=f"pruned to %{{y:.0f}} % at epoch %{{x}}{change}<extra></extra>"),
                          row=len(rows), col=1)
        if run.get("ticket") is not None:
            fig.add_vline(x=run["ticket"], line={"color": STYLE["decision_line"], "width": 1.5, "dash": "dash"},
                          annotation_text="ticket", annotation_position="top left", row=1, col=1)
    if marker is not None:
        _replay_marker(fig, marker)
    fig.update_xaxes(title_text="epoch", title_standoff=2, row=len(rows), col=1)
    fig.update_yaxes(rangemode="tozero", row=len(rows), col=1)
    fig.update_layout(template=TEMPLATE, margin={"l": 50, "r": 10, "t": 24, "b": 36}, uirevision="schedule",
                      legend={"orientation": "h", "x": 0, "y": -0.12, "font": {"size": 11}})
    return fig


# --------------------------------------------------------------------------------------------------------------
# MNIST slice (the slice itself is a partition; the browser paints it, see assets/splineviz-8-pages.js)
# --------------------------------------------------------------------------------------------------------------
def image_figure(image: np.ndarray, title: str = "") -> go.Figure:
    """A grey-scale image (e.g. the MNIST input at a point of the plane)."""
    fig = go.Figure(go.Heatmap(z=np.asarray(image)[::-1], colorscale="gray_r", showscale=False, hoverinfo="skip"))
    fig.update_layout(template=TEMPLATE, margin={"l": 4, "r": 4, "t": 30 if title else 4, "b": 4},
                      xaxis={"visible": False}, yaxis={"visible": False, "scaleanchor": "x"},
                      title={"text": title, "x": 0.5, "font": {"size": 14}})
    return fig


_ARROWS = {(1, 0): "→", (-1, 0): "←", (0, 1): "↑", (0, -1): "↓", (1, 1): "↗", (-1, 1): "↖", (1, -1): "↘",
           (-1, -1): "↙"}  # (sign of x beyond the view, sign of y beyond it) -> the way to the point


def plane_marks(points: Mapping[str, tuple[float, float]], bounds: Sequence[float]) -> dict[str, list[dict]]:
    """Layout ``annotations`` and ``shapes`` marking named points of a plane (the MNIST images A at (1, 0) and B at
    (0, 1)): a ring and a label at each point inside ``bounds``; a point outside gets its label at the nearest
    edge, saying where it is, so a zoomed-in slice still tells which way each image lies."""
    xmin, xmax, ymin, ymax = bounds
    r = 0.012 * max(xmax - xmin, ymax - ymin)
    colour = STYLE["decision_line"]
    annotations, shapes = [], []
    for name, (x, y) in points.items():
        cx, cy = min(max(x, xmin), xmax), min(max(y, ymin), ymax)
        label = {"x": cx, "y": cy, "name": f"mark {name}", "font": {"size": 13, "color": colour},
                 "bgcolor": "rgba(255,255,255,.85)"}
        if (cx, cy) == (x, y):
            shapes.append({"type": "circle", "name": f"mark {name}", "x0": x - r, "x1": x + r, "y0": y - r,
                           "y1": y + r, "line": {"color": colour, "width": 2}, "layer": "above"})
            # the label points in from the corner, towards the middle of the view
            annotations.append({**label, "text": f"<b>{name}</b>", "showarrow": True, "arrowhead": 0,
                                "arrowcolor": colour, "ax": 24 if x < (xmin + xmax) / 2 else -24,
                                "ay": -24 if y < (ymin + ymax) / 2 else 24})
        else:
            arrow = _ARROWS[(x > xmax) - (x < xmin), (y > ymax) - (y < ymin)]
            annotations.append({**label, "text": f"{name} at ({x:g}, {y:g}) {arrow}",
                                "showarrow": False, "xanchor": "right" if cx >= xmax else "left",
                                "yanchor": "bottom" if cy <= ymin else "top"})
    return {"annotations": annotations, "shapes": shapes}

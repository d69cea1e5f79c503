"""figures.py: figures of a Frame validate, build fast, respect the layer filter and shade exact class cells.

That the browser's painter draws the same pixels as these figures is tested in test_browser_painter.py.
"""
from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest

from splineviz import figures as F
from splineviz.frame import Frame, pack, unpack
from splineviz.partition import Affine, Partition, ReLU, trace


SQUARES = [(0.5, 0.5), (1.5, 0.5), (0.5, 1.5), (1.5, 1.5)]  # centres of the four unit squares of [0, 2]^2


def four_squares() -> Partition:
    """A 2-layer partition of [0, 2]^2: layer 0 cuts at x=1, layer 1 at y=1 -> four unit squares."""
    ops = [Affine(np.eye(2), np.array([-1.0, 10.0])), ReLU(),        # x - 1 (a line), y + 10 (none in the box)
           Affine(np.array([[0.0, 1.0]]), np.array([-11.0])), ReLU(),  # y - 1
           Affine(np.array([[1.0], [-1.0]]), np.array([-0.25, 0.25]))]  # class 1 below y = 1.25, class 0 above
    return trace(ops, bounds=(0, 2, 0, 2))


@pytest.fixture
def frame() -> dict:
    """The app's form of a frame: Frame JSON."""
    return Frame.from_partition(four_squares(), (0, 2, 0, 2), epoch=3, loss=0.5).to_json()


def cell_at(frame: Frame, x: float, y: float) -> int:
    """The class cell containing (x, y), by shapely (an oracle independent of the painter's own test)."""
    from shapely.geometry import Point, Polygon

    off = frame.cell_offsets
    hits = [i for i in range(frame.n_cells)
            if Polygon(np.c_[frame.cell_x[off[i]:off[i + 1]], frame.cell_y[off[i]:off[i + 1]]]).contains(Point(x, y))]
    assert len(hits) == 1, (x, y, hits)
    return hits[0]


def test_pack_roundtrip() -> None:
    a = np.array([1.5, np.nan, -2.25])
    np.testing.assert_array_equal(unpack(pack(a, "f4")), a.astype(np.float32))


def test_frame_json_keeps_stats_and_shades_class_cells(frame: dict) -> None:
    assert json.loads(json.dumps(frame))["stats"] == {"epoch": 3, "loss": 0.5}
    typed = F.as_frame(frame)
    assert typed.n_regions == 4 and typed.layer_regions == [2, 4]
    assert typed.n_cells == 6  # the decision line y = 1.25 cuts both upper squares
    # the lower squares' centres lie below 1.25 (class 1); above the line the upper squares are class 0
    assert [typed.cell_class[cell_at(typed, x, y)] for x, y in SQUARES] == [1, 1, 0, 0]
    assert [typed.cell_class[cell_at(typed, x, 1.1)] for x in (0.5, 1.5)] == [1, 1]  # below the line, upper squares


def test_code_colours_differ_between_neighbours(frame: dict) -> None:
    # regions differing in one unit never share a colour (prime palette, unit weights in 1..K-1)
    typed = F.as_frame(frame)
    lower_left, lower_right, upper_left, upper_right = four_squares().locate(np.array(SQUARES))
    final = typed.keys[1]
    for a, b in [(lower_left, lower_right), (lower_left, upper_left), (lower_right, upper_right),
                 (upper_left, upper_right)]:
        assert final[a] != final[b]
    first = typed.keys[0]
    assert first[lower_left] == first[upper_left] and first[lower_right] == first[upper_right]
    assert first[lower_left] != first[lower_right]


def test_closed_outlines_close_each_polygon_and_separate_with_nan() -> None:
    px = np.array([0, 1, 1, 5, 6, 6], np.float32)
    py = np.array([0, 0, 1, 5, 5, 6], np.float32)
    x, _ = F.closed_outlines(px, py, np.array([0, 3, 6]), np.array([1, 0]))
    np.testing.assert_array_equal(x[:4], [5, 6, 6, 5])
    assert np.isnan(x[4]) and np.isnan(x[-1]) and len(x) == 10


def test_partition_figure_validates_and_filters_layers(frame: dict) -> None:
    full = F.partition_figure(frame, shade="class")
    go.Figure(full.to_dict())  # raises if any property is invalid (the fast path skips validation)
    names = [t.name for t in full.data]
    assert names == ["class 0", "class 1", "layer 1", "layer 2", "decision"]
    first = F.partition_figure(frame, up_to_layer=0, shade="code")
    names = [t.name for t in first.data]
    assert "layer 2" not in names and "decision" not in names and names[-1] == "layer 1"
    assert len([n for n in names if n.startswith("code")]) == 2  # layer-0 partition has two colours
    assert [t.name for t in F.partition_figure(frame, shade="none").data][0] == "layer 1"


def test_a_frame_and_its_json_draw_the_same_lines() -> None:
    """Timing lives in bench/frames.py; here: both forms of a realistic frame draw the same boundaries."""
    rng = np.random.default_rng(0)
    ops = [Affine(rng.normal(size=(16, 2)), rng.normal(size=16)), ReLU(), Affine(rng.normal(size=(16, 16)) / 4, rng.normal(size=16)),
           ReLU(), Affine(rng.normal(size=(2, 16)), rng.normal(size=2))]
    p = trace(ops, bounds=(-3, 3, -3, 3))
    typed = F.Frame.from_partition(p, (-3, 3, -3, 3))
    figures = [F.partition_figure(f, shade="code") for f in (typed, json.loads(json.dumps(typed.to_json())))]
    for fig in figures:
        go.Figure(fig.to_dict())
    lines = [{t.name: np.asarray(t.x, dtype=float) for t in fig.data if not t.name.startswith("code")} for fig in figures]
    for other in lines[1:]:
        assert other.keys() == lines[0].keys() == {"layer 1", "layer 2", "decision"}
        for name in other:
            np.testing.assert_array_equal(other[name], lines[0][name])


def test_side_by_side_has_one_panel_per_frame(frame: dict) -> None:
    fig = F.side_by_side([frame, frame], ["before", "after"])
    go.Figure(fig.to_dict())
    assert {t.xaxis for t in fig.data} == {"x", "x2"} and F.panel_axes(1) == ("x2", "y2")
    assert fig.layout.xaxis2.matches == "x" and fig.layout.xaxis2.anchor == "y2"
    # the browser paints on these axes alone: the layout is the figure's, whatever the traces
    assert go.Figure(layout=F.side_by_side_layout([(0, 2, 0, 2)] * 2, ["before", "after"])).layout == fig.layout


def test_partition_layout_is_the_figures_axes(frame: dict) -> None:
    fig = F.partition_figure(frame, title="t", axis_titles=("a", "b"))
    assert go.Figure(layout=F.partition_layout((0, 2, 0, 2), "t", ("a", "b"))).layout == fig.layout
    assert list(fig.layout.xaxis.range) == [0, 2] and fig.layout.yaxis.scaleanchor == "x"


def test_curves_and_other_figures_validate() -> None:
    history = [{"epoch": e, "loss": 1 / (e + 1), "train_metric": 0.5, "test_metric": None, "n_regions": 10 + e}
               for e in range(5)]
    fig = F.training_curves(history, current_epoch=2)
    assert {t.name for t in fig.data} == {"train loss", "train", "regions"}  # test metric all None: no trace
    assert len(F.sparsity_curves({"node": [(0, 0.9), (0.5, 0.8)], "weight": [(0, 0.9)]}, current=0.5).data) == 2
    d = np.abs(np.subtract.outer(np.arange(6), np.arange(6))) / 6
    eb = F.earlybird_heatmap(d, list(range(6)), ticket=3, threshold=0.16)
    assert eb.data[1].x == (3,) and "epoch 3" in eb.layout.title.text
    assert "no ticket" in F.earlybird_heatmap(d, list(range(6)), ticket=None).layout.title.text
    curve = F.distance_to_previous(range(6), d[:, 0], ticket=3, threshold=0.16)
    assert list(curve.data[0].y) == pytest.approx(d[:, 0].tolist())
    shapes = {(s.type, s.x0, s.y0) for s in curve.layout.shapes}
    assert ("line", 3, 0) in shapes and any(s.y0 == 0.16 == s.y1 for s in curve.layout.shapes)  # ticket, threshold
    image = np.zeros((28, 28))
    image[0, 0] = 1.0  # the top-left pixel: a heatmap's row 0 is drawn at the bottom, so the figure flips the rows
    heat = F.image_figure(image, "digit").data[0]
    assert np.asarray(heat.z)[-1, 0] == 1.0 and np.asarray(heat.z).sum() == 1.0
    assert F.empty_figure("hi").layout.annotations[0].text == "hi"

"""figures.py: frames are compact and faithful, figures validate, build fast, and respect the layer filter."""
from __future__ import annotations

import json
import time

import numpy as np
import plotly.graph_objects as go
import pytest

from splineviz import figures as F


class FakePartition:
    """A 2-layer partition of [0, 2]^2: layer 0 cuts at x=1, layer 1 at y=1 -> four unit squares."""

    n_layers = 2
    layer_region_counts = [2, 4]

    def __init__(self) -> None:
        squares = [(0, 0), (1, 0), (0, 1), (1, 1)]
        self.regions = [np.array([[x, y], [x + 1, y], [x + 1, y + 1], [x, y + 1]], float) for x, y in squares]
        self.n_regions = 4
        self.region_classes = np.array([0, 1, 1, 0])
        self.decision_boundary = np.array([[[1, 0], [1, 2]], [[0, 1], [2, 1]]], float)

    def codes(self, layer: int) -> np.ndarray:
        centres = np.array([r.mean(axis=0) for r in self.regions])
        return (centres[:, [layer]] > 1)

    def segments(self, layer: int | None = None, unit: int | None = None) -> np.ndarray:
        return np.array([[[1, 0], [1, 2]]] if layer == 0 else [[[0, 1], [2, 1]]], float)


@pytest.fixture
def frame() -> F.Frame:
    return F.partition_frame(FakePartition(), (0, 2, 0, 2), epoch=3, loss=0.5)


def test_pack_roundtrip() -> None:
    a = np.array([1.5, np.nan, -2.25])
    np.testing.assert_array_equal(F.unpack(F.pack(a, "f4")), a.astype(np.float32))


def test_frame_is_json_and_keeps_stats(frame: F.Frame) -> None:
    assert json.loads(json.dumps(frame))["epoch"] == 3
    assert frame["n_regions"] == 4 and frame["layer_regions"] == [2, 4]
    assert F.unpack(frame["off"]).tolist() == [0, 4, 8, 12, 16]
    assert F.unpack(frame["cls"]).tolist() == [0, 1, 1, 0]


def test_code_colours_differ_between_neighbours(frame: F.Frame) -> None:
    # regions differing in one unit never share a colour (prime palette, unit weights in 1..K-1)
    final = F.unpack(frame["code"][1])
    for a, b in [(0, 1), (0, 2), (1, 3), (2, 3)]:
        assert final[a] != final[b]
    first = F.unpack(frame["code"][0])
    assert first[0] == first[2] and first[1] == first[3] and first[0] != first[1]


def test_closed_outlines_close_each_polygon_and_separate_with_nan() -> None:
    px = np.array([0, 1, 1, 5, 6, 6], np.float32)
    py = np.array([0, 0, 1, 5, 5, 6], np.float32)
    x, _ = F.closed_outlines(px, py, np.array([0, 3, 6]), np.array([1, 0]))
    np.testing.assert_array_equal(x[:4], [5, 6, 6, 5])
    assert np.isnan(x[4]) and np.isnan(x[-1]) and len(x) == 10


def test_partition_figure_validates_and_filters_layers(frame: F.Frame) -> None:
    full = F.partition_figure(frame, shade="class")
    go.Figure(full.to_dict())  # raises if any property is invalid (the fast path skips validation)
    names = [t.name for t in full.data]
    assert names == ["class 0", "class 1", "layer 1", "layer 2", "decision"]
    first = F.partition_figure(frame, up_to_layer=0, shade="code")
    names = [t.name for t in first.data]
    assert "layer 2" not in names and "decision" not in names and names[-1] == "layer 1"
    assert len([n for n in names if n.startswith("code")]) == 2  # layer-0 partition has two colours
    assert [t.name for t in F.partition_figure(frame, shade="none").data][0] == "layer 1"


def test_partition_figure_is_fast_for_a_realistic_frame() -> None:
    rng = np.random.default_rng(0)

    class Big(FakePartition):  # ~700 regions, like a 2-16-16-16-2 net
        n_layers = 3
        layer_region_counts = [100, 400, 700]

        def __init__(self) -> None:
            centres = rng.uniform(-3, 3, size=(700, 2))
            self.regions = [c + 0.05 * np.array([[0, 0], [1, 0], [1, 1], [0, 1]]) for c in centres]
            self.n_regions = 700
            self.region_classes = rng.integers(0, 2, 700)
            self.decision_boundary = rng.uniform(-3, 3, size=(60, 2, 2))

        def codes(self, layer: int) -> np.ndarray:
            return rng.integers(0, 2, size=(700, 16)).astype(bool)

        def segments(self, layer=None, unit=None) -> np.ndarray:
            return rng.uniform(-3, 3, size=(500, 2, 2))

    frame = F.partition_frame(Big(), (-3, 3, -3, 3))
    F.partition_figure(frame, shade="code")
    start = time.perf_counter()
    for _ in range(10):
        F.partition_figure(frame, shade="code", extra=F.point_traces(rng.normal(size=(200, 2)), rng.integers(0, 2, 200)))
    assert (time.perf_counter() - start) / 10 < 0.015


def test_side_by_side_has_one_panel_per_frame(frame: F.Frame) -> None:
    fig = F.side_by_side([frame, frame], ["before", "after"])
    go.Figure(fig.to_dict())
    assert {t.xaxis for t in fig.data} == {"x", "x2"}
    assert fig.layout.xaxis2.matches == "x"


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
    F.distance_to_previous(range(6), d[:, 0], ticket=3, threshold=0.16)
    F.image_figure(np.eye(28), "digit")
    assert F.empty_figure("hi").layout.annotations[0].text == "hi"

"""Taking a whole layer at once must give exactly the partition that unit-by-unit splitting gives,
and must step aside (graph untouched) wherever the geometry is not in generic position."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from splineviz.partition import Affine, LeakyReLU, ReLU, arrangement, box, trace, tracer
from splineviz.partition.arrangement import refine_by_layer
from splineviz.partition.graph import PlanarGraph
from tests.oracles import assert_consistent, grid

BOUNDS = (-2.0, 2.0, -1.5, 2.5)


def random_net(seed: int, depth: int, width: int, kind: str) -> list:
    """Gaussian nets are generic; integer ones put many lines through common points and corners."""
    rng = np.random.default_rng(seed)
    ops, fan_in = [], 2
    for _ in range(depth):
        if kind == "integer":
            w, b = rng.integers(-2, 3, (width, fan_in)).astype(float), rng.integers(-2, 3, width).astype(float)
        else:
            w, b = rng.normal(size=(width, fan_in)), rng.normal(size=width)
        ops += [Affine(w, b), LeakyReLU(0.1) if kind == "leaky" else ReLU()]
        fan_in = width
    return ops + [Affine(rng.normal(size=(3, fan_in)), rng.normal(size=3))]


def both_ways(ops, monkeypatch, domain=BOUNDS):
    monkeypatch.setattr(tracer, "LAYER_AT_ONCE_CELLS", 10**12)
    at_once = trace(ops, domain=domain)
    monkeypatch.setattr(tracer, "LAYER_AT_ONCE_CELLS", 0)
    return at_once, trace(ops, domain=domain)


def segment_length(segments: np.ndarray) -> float:
    return float(np.linalg.norm(segments[:, 0] - segments[:, 1], axis=1).sum())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.integers(0, 10_000), st.integers(1, 3), st.integers(1, 14), st.sampled_from(["gauss", "leaky", "integer"]))
def test_layer_at_once_equals_unit_by_unit(monkeypatch, seed, depth, width, kind):
    fast, slow = both_ways(random_net(seed, depth, width, kind), monkeypatch)
    assert fast.n_regions == slow.n_regions == fast.euler_regions
    assert fast.layer_region_counts == slow.layer_region_counts
    np.testing.assert_allclose(np.sort(fast.areas), np.sort(slow.areas), atol=1e-9)
    for layer in range(fast.n_layers):
        np.testing.assert_array_equal(np.unique(fast.codes(layer), axis=0), np.unique(slow.codes(layer), axis=0))
        assert segment_length(fast.segments(layer)) == pytest.approx(segment_length(slow.segments(layer)), rel=1e-9)
    assert segment_length(fast.decision_boundary) == pytest.approx(segment_length(slow.decision_boundary), rel=1e-9)


def test_layer_at_once_passes_the_brute_force_oracle(monkeypatch):
    monkeypatch.setattr(tracer, "LAYER_AT_ONCE_CELLS", 10**12)
    taken = []
    monkeypatch.setattr(tracer, "refine_by_layer", lambda *a: taken.append(refine_by_layer(*a)) or taken[-1])
    p = trace(random_net(3, 3, 12, "gauss"), domain=BOUNDS)
    assert taken == [True, True, True]  # generic layers really take the fast path
    assert_consistent(p, 16.0, grid(BOUNDS, 300))


@pytest.mark.parametrize("make_degenerate", [
    lambda w, b: (np.vstack([w, w[:1]]), np.append(b, b[0])),            # a duplicate unit
    lambda w, b: (np.vstack([w, np.zeros((1, 2))]), np.append(b, 0.0)),  # a zero unit: zero everywhere
    lambda w, b: (np.vstack([w, [[1.0, 0.0]]]), np.append(b, 2.0)),     # a line through two corners
    # two lines meeting on the bottom edge (y = -1.5) at x = 0.3, exactly and 1e-13 apart
    lambda w, b: (np.vstack([w, [[1.0, 0.5], [1.0, -0.5]]]), np.append(b, [0.45, -1.05])),
    lambda w, b: (np.vstack([w, [[1.0, 0.5], [1.0, -0.5]]]), np.append(b, [0.45, -1.05 + 1e-13])),
])
def test_degenerate_layers_leave_the_graph_untouched(make_degenerate):
    rng = np.random.default_rng(0)
    graph = first_layer_graph(*make_degenerate(rng.normal(size=(5, 2)), rng.normal(size=5) * 0.3))
    before = snapshot(graph)
    assert not refine_by_layer(graph, tolerances(graph), layer=0)
    assert_same(graph, before)


def test_a_face_count_that_does_not_add_up_leaves_the_graph_untouched(monkeypatch):
    """The last check, after the new tables are in place: its failure must undo the face names."""
    rng = np.random.default_rng(1)
    graph = first_layer_graph(rng.normal(size=(6, 2)), rng.normal(size=6) * 0.3)
    before = snapshot(graph)
    monkeypatch.setattr(arrangement, "_number_faces", lambda names, bits, expected: False)
    assert not refine_by_layer(graph, tolerances(graph), layer=0)
    assert_same(graph, before)
    monkeypatch.undo()
    assert refine_by_layer(graph, tolerances(graph), layer=0)  # and the graph is still good to refine
    assert graph.n_faces > 1 and graph.n - graph.m + graph.n_faces == 1


def test_a_live_view_of_the_vertex_table_is_not_left_dangling():
    """The table grows in place only when nothing else holds it; otherwise it is copied."""
    rng = np.random.default_rng(2)
    w, b = rng.normal(size=(6, 2)), rng.normal(size=6) * 0.3
    free, held = first_layer_graph(w, b), first_layer_graph(w, b)
    view = held.vals[: held.n]
    corners = view[:, :2].copy()
    assert refine_by_layer(free, tolerances(free), layer=0) and refine_by_layer(held, tolerances(held), layer=0)
    np.testing.assert_array_equal(view[:, :2], corners)
    np.testing.assert_array_equal(held.vals[: held.n], free.vals[: free.n])
    np.testing.assert_array_equal(held.edges[:, : held.m], free.edges[:, : free.m])


@pytest.mark.parametrize("limit", ["edges", "chords"])
def test_graphs_past_the_index_limit_go_unit_by_unit(monkeypatch, limit):
    """Positions along edges and chords are sorted as one float, exact enough only up to _MAX_INDEX of them."""
    angles = np.linspace(0.1, 3.0, 6)
    graph = first_layer_graph(np.stack([np.cos(angles), np.sin(angles)], axis=1), np.linspace(-0.3, 0.4, 6))
    assert graph.m == 4  # the box; its 6 lines through the middle make 6 chords
    monkeypatch.setattr(arrangement, "_MAX_INDEX", 3 if limit == "edges" else 5)
    assert not refine_by_layer(graph, tolerances(graph), layer=0)
    monkeypatch.setattr(arrangement, "_MAX_INDEX", 6)
    assert refine_by_layer(graph, tolerances(graph), layer=0)


@given(st.lists(st.integers(-1, 2**40 - 1), max_size=300), st.integers(0, 22))
def test_radix_order_is_a_stable_sort_with_minus_one_last(keys, spare_bits):
    keys = np.array(keys, dtype=np.int64)
    bits = max(int(keys.max(initial=0)).bit_length(), 1) + spare_bits
    as_sorted = np.where(keys < 0, 2**62, keys)
    np.testing.assert_array_equal(arrangement._radix_order(keys, bits), np.argsort(as_sorted, kind="stable"))


def first_layer_graph(w: np.ndarray, b: np.ndarray) -> PlanarGraph:
    corners = box(*BOUNDS)
    return PlanarGraph(corners, corners @ w.T + b)


def tolerances(graph: PlanarGraph) -> np.ndarray:
    return 1e-10 * np.abs(graph.values).max(axis=0)


def snapshot(graph: PlanarGraph) -> tuple:
    return graph.vals[: graph.n].copy(), graph.edges[:, : graph.m].copy(), graph.n, graph.m, graph.n_faces


def assert_same(graph: PlanarGraph, before: tuple) -> None:
    """Rows and columns past the counts are spare: only what the counts cover must be as it was."""
    assert (graph.n, graph.m, graph.n_faces) == before[2:]
    np.testing.assert_array_equal(graph.vals[: graph.n], before[0])
    np.testing.assert_array_equal(graph.edges[:, : graph.m], before[1])

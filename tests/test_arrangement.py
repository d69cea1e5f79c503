"""Taking a whole layer at once must give exactly the partition that unit-by-unit splitting gives,
and must step aside (graph untouched) wherever the geometry is not in generic position."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from splineviz.partition import Affine, LeakyReLU, ReLU, arrangement, box, trace, tracer
from splineviz.partition.arrangement import refine_by_layer
from splineviz.partition.graph import PlanarGraph, radix_order
from tests.oracles import assert_consistent, grid

BOUNDS = (-2.0, 2.0, -1.5, 2.5)
pytestmark = pytest.mark.usefixtures("numpy_alone")  # numpy's one-pass arrangement, which the kernels bypass


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


def both_ways(ops, refine="auto", bounds=BOUNDS):
    return trace(ops, bounds=bounds, refine=refine), trace(ops, bounds=bounds, refine="unit")


def segment_length(segments: np.ndarray) -> float:
    return float(np.linalg.norm(segments[:, 0] - segments[:, 1], axis=1).sum())


def assert_same_partition(fast, slow) -> None:
    """Same regions, codes, boundaries and decision boundary, whatever the order they were made in."""
    assert fast.n_regions == slow.n_regions == fast.euler_regions
    assert fast.layer_region_counts == slow.layer_region_counts
    np.testing.assert_allclose(np.sort(fast.areas), np.sort(slow.areas), atol=1e-9)
    for layer in range(fast.n_layers):
        np.testing.assert_array_equal(np.unique(fast.codes(layer), axis=0), np.unique(slow.codes(layer), axis=0))
        assert segment_length(fast.segments(layer)) == pytest.approx(segment_length(slow.segments(layer)), rel=1e-9)
    assert segment_length(fast.decision_boundary) == pytest.approx(segment_length(slow.decision_boundary), rel=1e-9)
    # codes per region: the same set, and each region's code is the one at its interior point
    match = slow.locate(fast.interior_points)  # the same region, traced the other way
    np.testing.assert_array_equal(np.sort(match), np.arange(slow.n_regions))
    np.testing.assert_allclose(fast.interior_points, slow.interior_points[match], atol=1e-9)
    for layer in range(fast.n_layers):
        np.testing.assert_array_equal(fast.codes(layer), slow.codes(layer)[match])
    np.testing.assert_array_equal(fast.region_classes, slow.region_classes[match])
    fast._graph.check()
    fast._overlay.check()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000), st.integers(1, 3), st.integers(1, 14), st.sampled_from(["gauss", "leaky", "integer"]))
def test_layer_at_once_equals_unit_by_unit(seed, depth, width, kind):
    assert_same_partition(*both_ways(random_net(seed, depth, width, kind)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000), st.integers(1, 3), st.integers(20, 80), st.sampled_from(["gauss", "leaky", "integer"]),
       st.sampled_from([3, 8, 16, "auto"]))
def test_chunks_equal_unit_by_unit_on_wide_layers(seed, depth, width, kind, chunk):
    """Wide layers go in several chunks (halved where degenerate): the same partition as unit by unit."""
    ops = random_net(seed, depth, width, kind)
    assert_same_partition(*both_ways(ops, refine=chunk))


def test_layer_at_once_passes_the_brute_force_oracle(monkeypatch):
    taken = []
    monkeypatch.setattr(tracer, "refine_by_layer", lambda *a, **k: taken.append(refine_by_layer(*a, **k)) or taken[-1])
    p = trace(random_net(3, 3, 12, "gauss"), bounds=BOUNDS)
    assert [t is not None for t in taken] == [True, True, True]  # generic layers really take the fast path
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
    assert refine_by_layer(graph, tolerances(graph), layer=0) is None
    assert_same(graph, before)


@pytest.mark.parametrize("name,fault", [
    ("radix_order", lambda keys, bits: np.arange(keys.size)[::-1]),  # names ordered wrongly: too many faces
    ("_sign_codes", lambda positive: np.zeros(len(positive), dtype=np.int64)),  # codes lost: names collide, too few
], ids=["too-many", "too-few"])
def test_a_face_count_that_does_not_add_up_leaves_the_graph_untouched(monkeypatch, name, fault):
    """The last check, after the new tables are in place: its failure, either way, must undo the face names."""
    rng = np.random.default_rng(1)
    graph = first_layer_graph(rng.normal(size=(6, 2)), rng.normal(size=6) * 0.3)
    before = snapshot(graph)
    monkeypatch.setattr(arrangement, name, fault)  # a fault that only this check can see
    assert refine_by_layer(graph, tolerances(graph), layer=0) is None
    assert_same(graph, before)
    monkeypatch.undo()
    assert refine_by_layer(graph, tolerances(graph), layer=0) is not None  # and the graph is still good to refine
    assert graph.n_faces > 1 and graph.n - graph.m + graph.n_faces == 1
    graph.check()


def test_a_live_view_of_the_vertex_table_is_not_left_dangling():
    """The table grows in place only when nothing else holds it; otherwise it is copied."""
    rng = np.random.default_rng(2)
    w, b = rng.normal(size=(6, 2)), rng.normal(size=6) * 0.3
    free, held = first_layer_graph(w, b), first_layer_graph(w, b)
    view = held.vals[: held.n]
    corners = view[:, :2].copy()
    assert refine_by_layer(free, tolerances(free), layer=0) is not None
    assert refine_by_layer(held, tolerances(held), layer=0) is not None
    np.testing.assert_array_equal(view[:, :2], corners)
    np.testing.assert_array_equal(held.vals[: held.n], free.vals[: free.n])
    np.testing.assert_array_equal(held.edges[:, : held.m], free.edges[:, : free.m])


def test_points_along_edges_are_ordered_exactly_past_float_precision():
    """One float (index + half the way) orders points; where rounding would swap two, the exact sort steps in."""
    owner = np.array([2**40, 2**40, 5, 5, 5])
    way = np.array([0.5 + 2**-30, 0.5, 0.75, 0.25, 0.5])  # 2**40 + 0.25 + 2**-31 rounds onto its neighbour
    assert (owner[:2] + 0.5 * way[:2])[0] == (owner[:2] + 0.5 * way[:2])[1]
    np.testing.assert_array_equal(arrangement._order_along(owner, way, 2**40 + 1), [3, 4, 2, 1, 0])
    for n_owners in (2, 2**20):
        np.testing.assert_array_equal(arrangement._order_along(np.array([0, 0, 1]), np.array([0.9, 0.1, 0.0]), n_owners),
                                      [1, 0, 2])


@pytest.mark.parametrize("units", [[0, 2, 4], [1, 2, 3, 4, 5]])
def test_a_chunk_of_units_cuts_only_along_its_own_lines(units):
    """refine_by_layer on some value columns: the unit labels, codes and parents name those columns."""
    rng = np.random.default_rng(3)
    w, b = rng.normal(size=(6, 2)), rng.normal(size=6) * 0.3
    graph = first_layer_graph(w, b)
    units = np.array(units)
    graph.reset_origin()
    signs = refine_by_layer(graph, tolerances(graph)[units], layer=0, units=units)
    assert signs is not None
    graph.check()
    inner = graph.edges[:, : graph.m]
    assert set(np.unique(inner[5][inner[4] == 0])) == set(units)
    reference = first_layer_graph(w[units], b[units])
    assert graph.n_faces == (refine_by_layer(reference, tolerances(reference), layer=0) is not None) * reference.n_faces
    # each face's code is the sign of its units at the face's centre (affine values: the corner mean)
    means = graph.face_means(units)
    bits = (signs[:, None] >> np.arange(units.size)) & 1
    np.testing.assert_array_equal(bits.astype(bool), means > 0)
    assert (graph.origin == 0).all()  # every face was cut from the one face before


@settings(max_examples=200, deadline=None)  # no timing: a loaded machine must not fail it
@given(st.lists(st.integers(-1, 2**40 - 1), max_size=300), st.integers(0, 22))
@example([-1, 2**16 - 1, 2**16 - 1, -1], 0)  # -1 is all ones in its low 16 bits, like 2**16 - 1
@example([2**16 - 1, -1, 2**16, 2**17 + 5, 0], 0)  # keys of more than 16 bits
@example([2**40 - 1, -1, 2**32 + 2**16 - 1, 2**32], 0)  # three digits, and -1 next to an all-ones digit
def test_radix_order_is_a_stable_sort_with_minus_one_last(keys, spare_bits):
    keys = np.array(keys, dtype=np.int64)
    bits = max(int(keys.max(initial=0)).bit_length(), 1) + spare_bits
    as_sorted = np.where(keys < 0, 2**62, keys)
    np.testing.assert_array_equal(radix_order(keys, bits), np.argsort(as_sorted, kind="stable"))


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

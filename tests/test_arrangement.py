"""Taking a whole layer at once must give exactly the partition that unit-by-unit splitting gives,
and must step aside (graph untouched) wherever the geometry is not in generic position."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from splineviz.partition import Affine, LeakyReLU, ReLU, box, trace, tracer
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
])
def test_degenerate_layers_leave_the_graph_untouched(make_degenerate):
    rng = np.random.default_rng(0)
    w, b = make_degenerate(rng.normal(size=(5, 2)), rng.normal(size=5) * 0.3)
    corners = box(*BOUNDS)
    graph = PlanarGraph(corners, corners @ w.T + b)
    before = graph.vals[: graph.n].copy(), graph.edges[:, : graph.m].copy(), graph.n_faces
    assert not refine_by_layer(graph, 1e-10 * np.abs(graph.values).max(axis=0), layer=0)
    np.testing.assert_array_equal(graph.vals[: graph.n], before[0])
    np.testing.assert_array_equal(graph.edges[:, : graph.m], before[1])
    assert graph.n_faces == before[2]

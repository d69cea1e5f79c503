"""A wide hinge layer folded into the next affine map as it is cut (kernels.fold, Tracer._fold_plan).

Folding must change nothing but rounding: the same graph (vertices bit for bit), codes and parents as the
layer cut unfolded (itself the numpy reference's graph: test_kernels), outputs equal to a few ulps, and
the brute-force oracle passes. kernels.fold is checked on its own against numpy, rows moved in place."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from splineviz.partition import Affine, LeakyReLU, PartitionBudgetError, ReLU, kernels, trace, tracer
from splineviz.partition.graph import VALUES, PlanarGraph
from tests.oracles import assert_consistent, grid
from tests.test_arrangement import random_net

pytestmark = [pytest.mark.skipif(not kernels.available(), reason="numba is not installed or SPLINEVIZ_NUMBA=0"),
              pytest.mark.usefixtures("compiled")]
BOUNDS = (-2.0, 2.0, -1.5, 2.5)
AREA = 16.0


def traced(monkeypatch, ops, fold: bool, bounds=BOUNDS, **options):
    """The trace with folding on or off, and the blocks folded."""
    folds = []
    original = PlanarGraph.fold

    def spy(self, column, lo, hi, *rest):
        folds.append((lo, hi))
        return original(self, column, lo, hi, *rest)
    with monkeypatch.context() as patch:
        patch.setattr(tracer, "FOLD", fold)
        patch.setattr(PlanarGraph, "fold", spy)
        return trace(ops, bounds=bounds, **options), folds


def assert_same_but_rounding(folded, unfolded) -> None:
    """The very graph, codes and parents; outputs and decision boundary equal up to rounding."""
    mine, theirs = folded._graph, unfolded._graph
    assert (mine.n, mine.m, mine.n_faces, mine.n_unresolved) == \
        (theirs.n, theirs.m, theirs.n_faces, theirs.n_unresolved)
    np.testing.assert_array_equal(mine.coords, theirs.coords)
    np.testing.assert_array_equal(mine.edges[:, : mine.m], theirs.edges[:, : theirs.m])
    assert len(folded._layers) == len(unfolded._layers)
    for a, b in zip(folded._layers, unfolded._layers):
        np.testing.assert_array_equal(a.codes, b.codes)
        np.testing.assert_array_equal(a.parent, b.parent)
    scale = np.abs(theirs.values).max()
    np.testing.assert_allclose(mine.values, theirs.values, rtol=0, atol=1e-12 * scale)
    assert folded.decision_boundary.shape == unfolded.decision_boundary.shape
    np.testing.assert_allclose(folded.decision_boundary, unfolded.decision_boundary, rtol=0, atol=1e-9)
    mine.check()


@pytest.mark.parametrize("seed, width, kind", [(1, 129, "gauss"), (2, 300, "leaky"), (3, 260, "integer"),
                                               (4, 256, "gauss")])
def test_a_wide_layer_folded_block_by_block_is_the_layer_unfolded(monkeypatch, seed, width, kind):
    """Blocks of kernels.BLOCK units, the last one partial or full; LeakyReLU's slope; integer weights, whose
    lines meet at shared points (sign-bit reads at vertices on several lines)."""
    ops = random_net(seed, 2, width, kind)
    folded, folds = traced(monkeypatch, ops, fold=True)
    unfolded, none = traced(monkeypatch, ops, fold=False)
    blocks = [(lo, min(lo + kernels.BLOCK, width)) for lo in range(0, width, kernels.BLOCK)]
    assert folds == blocks and none == []
    assert folded.n_regions > 5000
    assert_same_but_rounding(folded, unfolded)
    assert folded._graph.vals.flags.owndata  # the outputs' own table: not a view that keeps the wide layer's alive
    assert_consistent(folded, AREA, grid(BOUNDS, 200), margin=1e-6)  # codes read back through the blocks' faces


def test_only_a_layer_whose_next_map_fits_in_a_block_is_folded(monkeypatch):
    """2-150-150-150-3: the first hinge layer is not stored, the second feeds 150 > BLOCK sums (no room for them in
    place), the third feeds 3: only it is folded."""
    rng = np.random.default_rng(5)
    ops = [Affine(rng.normal(size=(150, 2)), rng.normal(size=150)), ReLU(),
           Affine(rng.normal(size=(150, 150)) / 12, rng.normal(size=150) / 2), ReLU(),
           Affine(rng.normal(size=(150, 150)) / 12, rng.normal(size=150) / 2), ReLU(),
           Affine(rng.normal(size=(3, 150)), rng.normal(size=3))]
    small = (-0.3, 0.3, -0.3, 0.3)
    folded, folds = traced(monkeypatch, ops, fold=True, bounds=small)
    unfolded, _ = traced(monkeypatch, ops, fold=False, bounds=small)
    assert folds == [(0, 128), (128, 150)]
    assert_same_but_rounding(folded, unfolded)


def test_a_folded_layer_cut_in_many_calls_equals_one_call(monkeypatch):
    """Calls stopped for progress inside a block, and the faces followed across the blocks' origins."""
    ops = random_net(6, 2, 200, "gauss")
    whole, _ = traced(monkeypatch, ops, fold=True)
    monkeypatch.setattr(tracer, "_WORK", 3000)
    reports = []
    pieces, folds = traced(monkeypatch, ops, fold=True, progress=lambda fraction, message: reports.append(fraction))
    assert folds == [(0, 128), (128, 200)] and len(reports) > 10
    np.testing.assert_array_equal(pieces._graph.vals[: pieces._graph.n], whole._graph.vals[: whole._graph.n])
    for a, b in zip(pieces._layers, whole._layers):
        np.testing.assert_array_equal(a.codes, b.codes)
        np.testing.assert_array_equal(a.parent, b.parent)


def test_the_budget_stops_a_folded_layer(monkeypatch):
    with pytest.raises(PartitionBudgetError, match="budget of 20,000 regions at layer 1"):
        traced(monkeypatch, random_net(6, 2, 200, "gauss"), fold=True, budget=20_000)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(1, 40), st.integers(0, 30), st.integers(2, 9), st.integers(1, 4), st.sampled_from([0.0, 0.1]),
       st.integers(0, 2**32 - 1))
def test_fold_moves_the_rows_down_in_place_and_sums_as_numpy(n, spare, units, k, slope, seed):
    """Two folds of a random table: coordinates and the units left move bit for bit, the sums are numpy's up to
    rounding, all in the table's own memory; what the table held before stays counted (PlanarGraph.allot)."""
    rng = np.random.default_rng(seed)
    hinge = LeakyReLU(slope) if slope else ReLU()
    kind = kernels.LEAKY_RELU if slope else kernels.RELU
    block = units // 2 + 1
    k = min(k, block)  # the sums must fit where the first block was
    table = rng.normal(size=(n + spare, VALUES + units))
    table[rng.random(table.shape) < 0.2] = 0.0
    before = table[:n].copy()
    weight = rng.normal(size=(k, units))
    folded, column = kernels.fold(table, n, VALUES, 0, block, np.ascontiguousarray(weight.T), kind, slope, False)
    assert np.shares_memory(folded, table) and column == VALUES + k - block
    assert folded.shape == (table.size // folded.shape[1], VALUES + k + units - block)
    np.testing.assert_array_equal(folded[:n, :VALUES], before[:, :VALUES])
    np.testing.assert_array_equal(folded[:n, VALUES + k:], before[:, VALUES + block:])
    z = before[:, VALUES:]
    np.testing.assert_allclose(folded[:n, VALUES: VALUES + k], hinge.forward(z[:, :block]) @ weight[:, :block].T,
                               rtol=1e-12, atol=1e-12)
    twice, column = kernels.fold(folded, n, column, block, units, np.ascontiguousarray(weight.T), kind, slope, True)
    assert twice.shape[1] == VALUES + k and column == VALUES + k - units
    np.testing.assert_array_equal(twice[:n, :VALUES], before[:, :VALUES])
    np.testing.assert_allclose(twice[:n, VALUES:], hinge.forward(z) @ weight.T, rtol=1e-12, atol=1e-12)


def test_a_folded_table_still_counts_what_it_held():
    """The table keeps its memory when it is folded: max_bytes goes on counting it until it is replaced."""
    corners = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    graph = PlanarGraph(corners, np.random.default_rng(0).normal(size=(4, 10)))
    held = 8 * graph.n * graph.vals.shape[1] + graph.edges.nbytes
    graph.fold(VALUES, 0, 10, np.ones((10, 1)), kernels.RELU, 0.0)
    assert graph.vals.shape[1] == VALUES + 1
    graph.max_bytes = held
    graph.allot(0)
    graph.max_bytes = held - 1
    with pytest.raises(PartitionBudgetError, match="memory limit"):
        graph.allot(0)
    graph.max_bytes = None
    graph.vals = graph.value_table(1)  # replaced: only what the new table holds counts
    graph.max_bytes = held - 1
    graph.allot(0)

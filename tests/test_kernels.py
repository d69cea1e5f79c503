"""The compiled kernels (numba) must build exactly the graph that numpy's unit-by-unit split builds:
the same vertices (bit for bit), edges, faces, codes, parents and decision overlay, also where the
geometry is degenerate. numpy is the reference; brute force checks both (test_partition, test_degenerate)."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from splineviz.partition import Affine, LeakyReLU, MaxPool, PartitionBudgetError, ReLU, kernels, trace, tracer
from tests.oracles import assert_consistent, grid
from tests.test_arrangement import random_net
from tests.test_degenerate import BOUNDS as SQUARE, arrangement_regions, line, one_layer

pytestmark = [pytest.mark.skipif(not kernels.available(), reason="numba is not installed or SPLINEVIZ_NUMBA=0"),
              pytest.mark.usefixtures("compiled")]
BOUNDS = (-2.0, 2.0, -1.5, 2.5)


def both_engines(ops, bounds=BOUNDS, **options):
    """The same trace with the kernels on and off (numpy alone, the reference)."""
    previous = kernels.use(True)
    try:
        compiled = trace(ops, bounds=bounds, refine="unit", **options)
        kernels.use(False)
        reference = trace(ops, bounds=bounds, refine="unit", **options)
    finally:
        kernels.use(previous)
    return compiled, reference


def assert_identical(compiled, reference) -> None:
    """Bit-for-bit the same graph, overlay, codes and parents: not merely the same partition."""
    for mine, theirs in ((compiled._graph, reference._graph), (compiled._overlay, reference._overlay)):
        assert (mine.n, mine.m, mine.n_faces, mine.n_unresolved) == \
            (theirs.n, theirs.m, theirs.n_faces, theirs.n_unresolved)
        np.testing.assert_array_equal(mine.vals[: mine.n], theirs.vals[: theirs.n])
        np.testing.assert_array_equal(mine.edges[:, : mine.m], theirs.edges[:, : theirs.m])
        np.testing.assert_array_equal(mine.origin, theirs.origin)
    assert len(compiled._layers) == len(reference._layers)
    for mine, theirs in zip(compiled._layers, reference._layers):
        assert mine.n_faces == theirs.n_faces
        np.testing.assert_array_equal(mine.codes, theirs.codes)
        np.testing.assert_array_equal(mine.parent, theirs.parent)
    np.testing.assert_array_equal(compiled.decision_boundary, reference.decision_boundary)
    compiled._graph.check()


def pooled_net(seed: int, width: int) -> list:
    """ReLU, then max-pooling (a tournament: PlanarGraph.split, compiled as split_level), then ReLU."""
    rng = np.random.default_rng(seed)
    cut = int(rng.integers(1, width))
    return [Affine(rng.normal(size=(width, 2)), rng.normal(size=width)), ReLU(),
            MaxPool((tuple(range(cut)), tuple(range(cut, width)))),
            Affine(rng.normal(size=(4, 2)), rng.normal(size=4)), ReLU(), Affine(rng.normal(size=(3, 4)), np.zeros(3))]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000), st.integers(1, 3), st.integers(1, 40), st.sampled_from(["gauss", "leaky", "integer"]))
def test_random_nets_give_the_very_graph_of_numpy(seed, depth, width, kind):
    assert_identical(*both_engines(random_net(seed, depth, width, kind)))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000), st.integers(2, 9))
def test_max_pooling_and_its_tournament_give_the_very_graph_of_numpy(seed, width):
    assert_identical(*both_engines(pooled_net(seed, width)))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(line, min_size=1, max_size=12), st.lists(st.lists(st.integers(-3, 3), min_size=13, max_size=13),
                                                          min_size=1, max_size=5))
@example([(1, 0, 0), (2, 0, 0), (-1, 0, 0)], [[1] * 13])  # one line three times (duplicate and flipped units)
@example([(0, 0, 0), (0, 0, 5), (1, 1, 0)], [[1] * 13])  # zero weights: zero everywhere, positive everywhere
@example([(1, -1, 0), (1, 1, 0), (1, 0, 0), (0, 1, 0)], [[1, -1, 1, 1] + [0] * 9])  # four lines through one point
@example([(1, 0, 3), (0, 1, -3), (1, -1, 0)], [[1] * 13])  # along the border; through two corners
@example([(1, 0, 1), (0, 1, 1), (1, 0, -1)], [[1, 1, -1] + [0] * 9 + [1]])  # axis-aligned through the crossings
def test_degenerate_integer_nets_give_the_very_graph_of_numpy(lines, rows):
    """Lines through vertices and corners, duplicates, zero and axis-aligned units, in both layers."""
    w1 = np.array([r[: len(lines)] for r in rows], dtype=float)
    b1 = np.array([r[-1] for r in rows], dtype=float)
    ops = one_layer(lines)[:2] + [Affine(w1, b1), ReLU(), Affine(np.ones((2, len(b1))), np.zeros(2))]
    compiled, reference = both_engines(ops, bounds=SQUARE)
    assert_identical(compiled, reference)
    assert compiled.layer_region_counts[0] == arrangement_regions(lines)  # and the first layer is exactly right


def test_wide_layers_grow_the_tables_and_come_back_for_more_room():
    """A layer too big to reserve for at once: the kernel stops for room (NEED_ROOM) many times."""
    compiled, reference = both_engines(random_net(7, 2, 70, "gauss"))
    assert compiled.n_regions > 1000
    assert_identical(compiled, reference)


@pytest.mark.parametrize("kind", ["gauss", "integer"])
def test_a_layer_wider_than_a_block_gives_the_very_graph_of_numpy(kind):
    """Past BLOCK units a layer is cut a block at a time, and its codes are read off the values alone (the sign
    masks then hold the last block only); below, off the masks where they are set."""
    width = kernels.BLOCK + 12
    compiled, reference = both_engines(random_net(5, 1, width, kind))
    assert compiled.n_regions > 300  # integer weights: many lines coincide
    assert_identical(compiled, reference)


@pytest.mark.parametrize("work", [1, 40, 500])
def test_a_layer_cut_in_many_calls_equals_one_call(monkeypatch, work):
    """Between calls (for progress and cancel) the kernel keeps its state; stopping often changes nothing."""
    ops = random_net(11, 3, 12, "integer")
    reports = []
    whole = trace(ops, bounds=BOUNDS)
    monkeypatch.setattr(tracer, "_WORK", work)
    pieces = trace(ops, bounds=BOUNDS, progress=lambda fraction, message: reports.append(fraction))
    assert_identical(pieces, whole)
    assert len(reports) > 3 and reports == sorted(reports) and reports[-1] == 1.0


def test_a_small_network_is_traced_in_one_compiled_call(monkeypatch):
    """kernels.trace_net takes a small MLP from its first hinge to its outputs: no op is left to the op-by-op path."""
    left = []
    cut_layers = tracer._cut_layers
    monkeypatch.setattr(tracer, "_cut_layers", lambda graph, width, ops, *rest: (left.append(len(ops)),
                                                                                 cut_layers(graph, width, ops, *rest)))
    for kind in ("gauss", "leaky"):
        p = trace(random_net(4, 3, 12, kind), bounds=BOUNDS)
        assert p.n_regions > 50 and left[-1] == 0


NARROW = [random_net(1, 3, 11, "gauss"), random_net(2, 3, 11, "leaky"), random_net(3, 3, 11, "integer")]


@pytest.mark.parametrize("limits, nets, inside", [
    ({"_DRIVER_EDGES": 1}, NARROW, False),  # before the first layer
    ({"_DRIVER_EDGES": 60}, NARROW, False),  # at the second hinge layer
    ({"SMALL_MACS": 900}, NARROW, False),  # at an affine map too big for the driver's sums
    ({"_DRIVER_ROOM": 60_000}, NARROW, False),  # at a table past its room
    ({"_WORK": 25}, NARROW, True),  # inside a layer, for a progress report
    ({"_DRIVER_ROOM": 800_000}, [random_net(3, 2, 40, "integer")], True)])  # inside a layer, out of room
def test_the_compiled_driver_hands_over_and_the_graph_is_the_same(monkeypatch, limits, nets, inside):
    """Wherever kernels.trace_net stops, the op-by-op path goes on (resuming a layer it began) to the very graph
    that numpy builds."""
    for name, value in limits.items():
        monkeypatch.setattr(tracer, name, value)
    stops = []
    trace_compiled = tracer.Tracer.trace_compiled

    def spy(self, graph, ops, width):
        layers, done, width = trace_compiled(self, graph, ops, width)
        stops.append((done < len(ops), self.resume is not None))
        return layers, done, width
    monkeypatch.setattr(tracer.Tracer, "trace_compiled", spy)
    for ops in nets:
        assert_identical(*both_engines(ops))
    assert stops == [(True, inside)] * len(nets)


def test_budget_and_memory_limits_stop_the_compiled_path_too():
    ops = random_net(3, 2, 30, "gauss")
    with pytest.raises(PartitionBudgetError, match="budget of 50 regions"):
        trace(ops, bounds=BOUNDS, budget=50)
    with pytest.raises(PartitionBudgetError, match="memory limit"):
        trace(ops, bounds=BOUNDS, max_bytes=2**15)


def test_an_edge_table_past_the_kernels_int32_ids_is_refused(monkeypatch):
    """Ids in the kernels' work arrays are int32: a table that would outgrow them is an error, not a wrap-around."""
    monkeypatch.setattr(kernels, "MAX_EDGES", 500)
    with pytest.raises(PartitionBudgetError, match="more than the compiled kernels index"):
        trace(random_net(3, 2, 30, "gauss"), bounds=BOUNDS)


def test_the_compiled_path_passes_the_brute_force_oracle():
    p = trace(random_net(5, 3, 14, "integer"), bounds=BOUNDS)
    assert_consistent(p, 16.0, grid(BOUNDS, 300), margin=1e-6)
    p = trace([Affine(np.eye(2), np.zeros(2)), LeakyReLU(0.1), *random_net(6, 2, 10, "gauss")], bounds=BOUNDS)
    assert_consistent(p, 16.0, grid(BOUNDS, 300), margin=1e-6)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(3, 12), st.integers(1, 4), st.integers(0, 2**32 - 1), st.sampled_from(["gauss", "near", "edge"]))
def test_the_compiled_one_class_test_is_numpys(n, k, seed, kind):
    """kernels.one_class gives the tolerance and the answer of the tracer's numpy test, also where one class
    leads by about the tolerance (near) or by exactly the tolerance at one vertex (edge: not one class)."""
    rng = np.random.default_rng(seed)
    outputs, winner = rng.normal(size=(n, k)), rng.integers(k)
    if kind == "near":
        lead = tracer.REL_TOL * (np.abs(outputs).max() + 1.0) * rng.uniform(0.5, 1.5)
        outputs[:, winner] = outputs.max(axis=1) + lead
    elif kind == "edge":
        outputs[:, winner] = outputs.max(axis=1) + 20.0
        outputs[0, winner] = 100.0  # the largest output: the tolerance is REL_TOL * 100
        tol = tracer.REL_TOL * 100.0
        row = rng.integers(1, n)
        outputs[row] = -tol  # every rival exactly tol behind, or (one output) exactly tol above zero
        outputs[row, winner] = 0.0 if k > 1 else tol
    table = np.hstack([rng.normal(size=(n + 2, tracer.VALUES)), np.vstack([outputs, rng.normal(size=(2, k))])])
    tol = tracer.REL_TOL * max(float(np.abs(outputs).max()), 1e-300)
    expected = tracer._one_class_everywhere(outputs, tol)
    assert kernels.one_class(table, n, tracer.VALUES, tracer.REL_TOL) == (tol, expected)
    assert kind != "edge" or not expected


def test_switched_off_by_the_environment_numba_is_not_even_imported():
    code = ("import sys; from splineviz.partition import kernels, trace; "
            "print(kernels.available(), 'numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "SPLINEVIZ_NUMBA": "0"}, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.stdout.split() == ["False", "False"]


def test_load_kernels_loads_every_entry_point():
    """What a server calls before forking its jobs: the kernels a trace calls are then compiled or loaded."""
    entry_points = ("trace_net", "cut_layer", "fresh_state", "split_level", "layer_room", "value_rows", "one_class",
                    "fold")
    code = ("from splineviz.partition import kernels, tracer; tracer.load_kernels(); "
            f"print(*(len(getattr(kernels, name).signatures) for name in {entry_points}))")
    for _ in range(2):  # compiled (if numba's cache is cold), then read from the cache
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             cwd=os.path.dirname(os.path.dirname(__file__)))
        assert out.stdout.split() == ["1"] * len(entry_points)

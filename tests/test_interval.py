"""The 1-D tracer against brute force: dense sampling of activation patterns, interpolation, exact rational knots."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import splineviz
from splineviz.nets import mlp
from splineviz.partition import Affine, Cancelled, LeakyReLU, MaxPool, PartitionBudgetError, ReLU, forward
from splineviz.partition.interval import IntervalPartition, trace_interval
from tests.oracles import point_codes, pre_activations


def random_ops(widths, seed, activation=ReLU(), scale=1.0):
    rng = np.random.default_rng(seed)
    ops = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        ops.append(Affine(rng.normal(size=(b, a)) * scale, rng.normal(size=b) * scale))
        if i < len(widths) - 2:
            ops.append(activation)
    return ops


def assert_matches_brute_force(p: IntervalPartition, ops, n: int = 20001) -> None:
    lo, hi = p.bounds
    x = np.linspace(lo, hi, n)
    bp = p.breakpoints
    assert bp[0] == lo and bp[-1] == hi and (np.diff(bp) > 0).all()
    assert p.n_regions == len(bp) - 1 == len(p.knots()) + 1
    assert p.layer_region_counts == [int((p.breakpoint_layer[1:-1] <= l).sum()) + 1 for l in range(p.n_layers)]
    # the outputs are the piecewise-linear interpolation of the values at the breakpoints
    want = forward(ops, x[:, None])
    scale = max(1.0, np.abs(want).max())
    for j in range(want.shape[1]):
        np.testing.assert_allclose(np.interp(x, bp, p.values[:, j]), want[:, j], rtol=0, atol=1e-9 * scale)
    mid = p.interior_points
    np.testing.assert_allclose(p.slopes * mid[:, None] + p.offsets, forward(ops, mid[:, None]), atol=1e-9 * scale)
    # every sampled activation pattern is constant on each piece and equals the piece's codes
    codes, margins = point_codes(ops, x[:, None])
    clear = margins > 1e-7
    piece = p.locate(x)
    assert (piece >= 0).all()
    region = np.hstack([p.codes(layer) for layer in range(p.n_layers)]).astype(np.int64) if p.n_layers else \
        np.zeros((p.n_regions, 0), np.int64)
    np.testing.assert_array_equal(region[piece[clear]], codes[clear])
    # where the sampled pattern of layers <= l changes, a knot of those layers lies in between
    layer_of = np.concatenate([np.full(w, l) for l, w in enumerate(p.layer_widths)]) if p.n_layers else []
    for l in range(p.n_layers):
        cols = np.asarray(layer_of) <= l
        change = np.flatnonzero((codes[1:, cols] != codes[:-1, cols]).any(axis=1) & clear[1:] & clear[:-1])
        knots = np.sort(p.breakpoints[(p.breakpoint_layer >= 0) & (p.breakpoint_layer <= l)])
        at = np.searchsorted(knots, x[change], side="left")
        assert (at < len(knots)).all() and (knots[np.minimum(at, len(knots) - 1)] <= x[change + 1]).all()
    # every knot is a genuine sign change of the unit that made it
    step = 1e-3 * np.diff(bp).min()
    for layer in range(p.n_layers):
        ks, units = p.knots(layer), p.knot_units(layer)
        before, after = (pre_activations(ops, (ks + side)[:, None])[layer][np.arange(len(ks)), units]
                         for side in (-step, step))
        assert (np.sign(before) * np.sign(after) < 0).all()


@pytest.mark.parametrize("widths,seed", [((1, 8, 1), 0), ((1, 16, 16, 3), 1), ((1, 32, 32, 32, 2), 2),
                                         ((1, 5, 5, 5, 5, 5, 1), 3)])
def test_random_nets_match_brute_force(widths, seed):
    ops = random_ops(widths, seed)
    p = trace_interval(ops, (-3, 3))
    assert p.layer_widths == list(widths[1:-1])
    assert_matches_brute_force(p, ops)


def test_leaky_relu_and_non_default_interval():
    ops = random_ops((1, 12, 12, 2), 4, activation=LeakyReLU(0.2))
    p = trace_interval(ops, (-0.5, 7.25))
    assert_matches_brute_force(p, ops)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(-3, 3), st.sampled_from([-2, -1, 0, 1, 2, 3])), min_size=1, max_size=12),
       st.integers(0, 2**16), st.booleans())
def test_degenerate_first_layers_give_the_exact_rational_knots(units, seed, duplicate):
    """Integer weights (zeros included) and roots on the grid: knots at the ends, duplicate and dead units.

    Knots of the first layer are exactly the distinct roots -b/w strictly inside the interval (Fractions);
    the deeper random layer must still match brute force.
    """
    if duplicate:
        units = units + units[:3]  # duplicate units (same line twice)
    w = np.array([[float(a)] for a, _ in units])
    b = np.array([-float(a) * r for a, r in units])  # unit i is zero at r (for a != 0): often at an end or 0
    rng = np.random.default_rng(seed)
    ops = [Affine(w, b), ReLU(), Affine(rng.normal(size=(4, len(units))), rng.normal(size=4)), ReLU(),
           Affine(rng.normal(size=(2, 4)), rng.normal(size=2))]
    p = trace_interval(ops, (-2, 3))
    roots = {Fraction(r) for a, r in units if a != 0 and -2 < r < 3}
    assert sorted(p.knots(0).tolist()) == sorted(float(r) for r in roots)
    assert_matches_brute_force(p, ops)


def test_zero_network_has_one_piece():
    ops = [Affine(np.zeros((3, 1)), np.zeros(3)), ReLU(), Affine(np.zeros((2, 3)), np.zeros(2))]
    p = trace_interval(ops, (-1, 1))
    assert p.n_regions == 1 and p.layer_region_counts == [1]
    assert len(p.decision_boundary) == 0  # the two outputs tie everywhere: no class change
    assert p.codes(0).shape == (1, 3) and not p.codes(0).any()


def test_duplicate_scaled_units_make_one_knot():
    """Unit 2 = 3 x unit 1 (different float roundings of the same root) and unit 3 = -unit 1."""
    ops = [Affine([[0.7], [2.1], [-0.7]], [0.1, 0.3, -0.1]), ReLU(), Affine(np.ones((1, 3)), [0.0])]
    p = trace_interval(ops, (-3, 3))
    assert len(p.knots()) == 1 and p.knot_units(0).tolist() == [0]
    assert_matches_brute_force(p, ops)


@pytest.mark.parametrize("side", ["left", "right"])
def test_a_zero_closer_to_an_end_than_half_a_float_step_reuses_that_end(side):
    """The interval is 1e-7 long at x = +-1; the second unit is u - 5e-10 with u = relu(+-1e7 x - 1e7) rising from 0
    at x = +-1 to ~1 at the far end. Its zero lies 5e-17 inside the interval (by hand: u = 5e-10 at |x| = 1 + 5e-17),
    less than half the float spacing at 1 (2.2e-16 / 2), and 5e-10 is above the unit's tolerance (1e-10 x ~1): a
    genuine crossing whose interpolated knot rounds onto the end. The end must take the zero (one piece, no
    duplicate knot) and keep the other end's value."""
    sign = 1.0 if side == "left" else -1.0
    bounds = (1.0, 1.0 + 1e-7) if side == "left" else (-1.0 - 1e-7, -1.0)
    ops = [Affine([[sign * 1e7]], [-1e7]), ReLU(), Affine([[1.0]], [-5e-10]), ReLU(), Affine([[1.0]], [0.0])]
    p = trace_interval(ops, bounds)
    assert p.breakpoints.tolist() == list(bounds) and p.n_regions == 1 and p.layer_region_counts == [1, 1]
    ends = np.array(bounds)
    want = np.maximum(np.maximum(sign * 1e7 * ends - 1e7, 0.0) - 5e-10, 0.0)  # by hand: 0 at |x| = 1, ~1 at the other
    assert want[ends == sign].item() == 0.0 and abs(want[ends != sign].item() - 1.0) < 1e-8
    np.testing.assert_allclose(p.values[:, 0], want, rtol=0, atol=1e-9)


def test_units_on_scales_1e9_apart_each_keep_their_own_tolerance():
    """By hand: the first unit is 1e-9 (x - 0.5), the second 1e6 (x + 0.5): knots at 0.5 and -0.5. A tolerance shared
    by the layer (1e-10 x 1.5e6) would take every value of the small unit for zero and drop its knot."""
    ops = [Affine([[1e-9], [1e6]], [-0.5e-9, 0.5e6]), ReLU(), Affine([[1.0, 1.0]], [0.0])]
    p = trace_interval(ops, (-1, 1))
    assert p.knots().tolist() == pytest.approx([-0.5, 0.5], abs=1e-12) and p.knot_units(0).tolist() == [1, 0]


def test_decision_points_of_classifiers():
    ops = random_ops((1, 16, 16, 4), 10)  # four classes, four changes; (0, 2) alone changes three times
    p = trace_interval(ops, (-3, 3))
    x = np.linspace(-3, 3, 200001)
    cls = forward(ops, x[:, None]).argmax(axis=1)
    changes = x[np.flatnonzero(np.diff(cls)) + 1]
    assert len(changes) == len(p.decision_boundary) > 0
    np.testing.assert_allclose(p.decision_boundary, changes, atol=2 * (x[1] - x[0]))
    cells, classes = p.class_cells()
    assert cells[0, 0] == -3 and cells[-1, 1] == 3 and (classes[1:] != classes[:-1]).all()
    np.testing.assert_array_equal(classes, forward(ops, cells.mean(axis=1)[:, None]).argmax(axis=1))
    # a pair of classes, and the sign of a single output
    q = trace_interval(ops, (-3, 3), decision_classes=(0, 2))
    pair = np.array([0, 2])[forward(ops, x[:, None])[:, [0, 2]].argmax(axis=1)]
    assert len(q.decision_boundary) == np.count_nonzero(np.diff(pair)) > 0
    single = trace_interval(ops[:-1] + [Affine(ops[-1].weight[:1], ops[-1].bias[:1])], (-3, 3))
    sign = forward(single.ops, x[:, None])[:, 0] > 0
    assert len(single.decision_boundary) == np.count_nonzero(np.diff(sign))


def test_locate_and_outputs_at():
    ops = random_ops((1, 10, 2), 3)
    p = trace_interval(ops, (-1, 2))
    pts = np.array([-5.0, -1.0, *p.knots(), 0.123, 2.0, 2.5, np.nan])
    found = p.locate(pts)
    assert found[0] == -1 and found[-1] == -1 and found[-2] == -1 and found[1] == 0
    assert found[-3] == p.n_regions - 1  # the right end (2.0) is inside: the last piece
    inside = found >= 0
    assert (p.regions[found[inside], 0] <= pts[inside]).all() and (pts[inside] <= p.regions[found[inside], 1]).all()
    np.testing.assert_allclose(p.outputs_at([0.5, 1.5]), forward(ops, np.array([[0.5], [1.5]])))


def test_torch_model_through_top_level_trace():
    model = mlp(1, hidden=(12, 12), out_features=1, seed=5)
    p = splineviz.trace(model, bounds=(-2, 2))
    assert isinstance(p, IntervalPartition)
    x = np.linspace(-2, 2, 101)
    with torch.no_grad():
        want = model(torch.tensor(x[:, None], dtype=torch.float32)).numpy()
    np.testing.assert_allclose(p.outputs_at(x), want, atol=1e-5)
    np.testing.assert_allclose(np.interp(x, p.breakpoints, p.values[:, 0]), want[:, 0], atol=1e-5)
    assert splineviz.trace(model).bounds == (-3.0, 3.0)  # the x-range of DEFAULT_BOUNDS


def test_errors_budget_progress_and_cancel():
    ops = random_ops((1, 20, 20, 1), 0)
    with pytest.raises(ValueError, match="interval"):
        trace_interval(ops, (-1, 1, -1, 1))
    for empty in [(1, -1), (1, 1)]:
        with pytest.raises(ValueError, match="lo < hi"):
            trace_interval(ops, empty)
    with pytest.raises(ValueError, match="one input"):
        trace_interval(random_ops((2, 4, 1), 0), (-1, 1))
    with pytest.raises(ValueError, match="max pooling"):
        trace_interval([Affine(np.ones((2, 1)), np.zeros(2)), MaxPool(((0, 1),)), Affine([[1.0]], [0.0])])
    with pytest.raises(ValueError, match="decision_classes"):
        trace_interval(ops, (-1, 1), decision_classes=(0, 0))
    with pytest.raises(PartitionBudgetError, match="budget of 3 pieces"):
        trace_interval(ops, (-3, 3), budget=3)
    pieces = trace_interval(ops, (-3, 3)).n_regions  # the budget counts pieces: exactly enough is enough
    assert trace_interval(ops, (-3, 3), budget=pieces).n_regions == pieces
    with pytest.raises(PartitionBudgetError, match=f"budget of {pieces - 1:,} pieces"):
        trace_interval(ops, (-3, 3), budget=pieces - 1)
    with pytest.raises(PartitionBudgetError, match="or 0 MiB"):
        trace_interval(ops, (-3, 3), max_bytes=1000)
    seen = []
    trace_interval(ops, (-3, 3), progress=lambda f, m: seen.append(f))
    assert len(seen) == 40 and seen[-1] == 1.0 and seen == sorted(seen)
    with pytest.raises(Cancelled):
        trace_interval(ops, (-3, 3), cancel=lambda: True)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**16), st.lists(st.sampled_from(["copy", "negate", "scale", "zero", "end"]), max_size=6))
def test_degenerate_deeper_layers_match_brute_force(seed, changes):
    """Second-layer units copied, negated, scaled, zeroed, or with a knot pinned to an end of the interval."""
    rng = np.random.default_rng(seed)
    first = Affine(rng.normal(size=(6, 1)), rng.normal(size=6))
    w, b = rng.normal(size=(6, 6)), rng.normal(size=6)
    for i, change in enumerate(changes):
        if change == "copy":
            w[i], b[i] = w[-1], b[-1]
        elif change == "negate":
            w[i], b[i] = -w[-1], -b[-1]
        elif change == "scale":
            w[i], b[i] = 3.0 * w[-1], 3.0 * b[-1]
        elif change == "zero":
            w[i], b[i] = 0.0, 0.0
        else:  # unit i is exactly zero at the left end of the interval
            b[i] = -w[i] @ np.maximum(first.weight[:, 0] * -2.0 + first.bias, 0.0)
    ops = [first, ReLU(), Affine(w, b), ReLU(), Affine(rng.normal(size=(2, 6)), rng.normal(size=2))]
    p = trace_interval(ops, (-2, 2))
    assert_matches_brute_force(p, ops)

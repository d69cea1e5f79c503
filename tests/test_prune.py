"""Pruning seen in the exact partition: node, weight, random and spline pruning, the decision-change measure, masks
and fine-tuning. Counts, rankings, kept units and fold factors are checked against hand-computed values."""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiLineString
from torch import nn

from splineviz.data import make_dataset
from splineviz.nets import mlp, paper_cnn, to_ops
from splineviz.partition import box, trace
from splineviz.probe import grid_probe, preactivations
from splineviz.prune import (DecisionChange, hidden_layers, node_prune, prune, prune_and_finetune, random_prune,
                             reinitialise, removed_units, silent_units, spline_prune, unit_groups, unit_similarity,
                             unit_sparsity, weight_prune, weight_sparsity)
from splineviz.train import TrainConfig, evaluate, fit

torch.set_num_threads(1)  # tiny nets: threads only add contention
DOMAIN = box(-3, 3, -3, 3)
FAST = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
sparsities = st.floats(0.0, 0.95, allow_nan=False)


def half_up(x: float) -> int:
    """Round half up, by decimal arithmetic (an oracle independent of the code's floor(x + 0.5))."""
    return int(Decimal(repr(x)).to_integral_value(ROUND_HALF_UP))


def set_weights(model: nn.Sequential, **tensors: list) -> nn.Sequential:
    """model[i].weight / .bias from keyword names w0, b0, w2, ... (index = position in the Sequential)."""
    with torch.no_grad():
        for key, value in tensors.items():
            param = model[int(key[1:])].weight if key[0] == "w" else model[int(key[1:])].bias
            param.copy_(torch.tensor(value, dtype=param.dtype))
    return model


def first_layer_lines(model: nn.Module) -> dict[int, MultiLineString]:
    """Each first-layer unit's traced boundary as one geometry (empty when it draws nothing)."""
    p = trace(to_ops(model), DOMAIN)
    return {u: MultiLineString([tuple(map(tuple, s)) for s in p.segments(layer=0, unit=u)])
            for u in range(p.layer_widths[0])}


def outputs(model: nn.Module, points: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(torch.as_tensor(points, dtype=torch.float32)).double().numpy()


# ---------------------------------------------------------------- counts and rankings, by hand


@pytest.mark.parametrize("sparsity,width,expected", [(0.5, 5, 3), (0.3, 5, 2), (0.1, 5, 1), (0.25, 6, 2),
                                                      (0.1, 4, 0), (0.95, 20, 19)])
def test_round_half_up_counts(sparsity: float, width: int, expected: int) -> None:
    model = mlp(2, (width,), 2, seed=1)
    _, masks = node_prune(model, sparsity)
    assert len(removed_units(model, masks)[0]) == expected == half_up(sparsity * width)


def test_node_pruning_removes_the_smallest_rows_by_hand() -> None:
    # incoming row norms: 5, 1, sqrt(2), 10, 0.5
    model = set_weights(mlp(2, (5,), 2), w0=[[3, 4], [0, 1], [1, 1], [6, 8], [0.5, 0]])
    for sparsity, expected in ((0.5, [1, 2, 4]), (0.3, [1, 4]), (0.1, [4]), (0.0, [])):
        pruned, masks = node_prune(model, sparsity)
        assert removed_units(model, masks) == [expected]
        w = pruned[0].weight.detach()
        assert torch.all(w[expected] == 0) and torch.all(pruned[2].weight[:, expected] == 0)
        kept = [u for u in range(5) if u not in expected]
        assert torch.equal(w[kept], model[0].weight.detach()[kept])
        assert torch.all(masks["2.bias"] == 1)  # the output layer is never node-pruned


def test_global_node_pruning_ranks_raw_norms_across_layers_by_hand() -> None:
    # layer 0 row norms 1, 5, 2; layer 1 row norms 0.5, 4, 3
    model = set_weights(mlp(2, (3, 3), 2), w0=[[1, 0], [3, 4], [0, 2]],
                        w2=[[0.5, 0, 0], [0, 4, 0], [0, 0, 3]])
    _, masks = node_prune(model, 0.5, scope="global")          # 3 of 6: 0.5 (l1 u0), 1 (l0 u0), 2 (l0 u2)
    assert removed_units(model, masks) == [[0, 2], [0]]
    _, masks = node_prune(model, 0.9, scope="global")          # 5 asked, 4 allowed: every layer keeps one
    assert removed_units(model, masks) == [[0, 2], [0, 2]]
    _, masks = node_prune(model, 0.5, scope="layerwise")       # 2 of 3 per layer (1.5 rounds up)
    assert removed_units(model, masks) == [[0, 2], [0, 2]]
    # layer 0's three rows are all smaller than layer 1's: the ranking alone would empty layer 0
    model = set_weights(mlp(2, (3, 3), 2), w0=[[1, 0], [2, 0], [3, 0]], w2=[[10, 0, 0], [0, 20, 0], [0, 0, 30]])
    _, masks = node_prune(model, 0.9, scope="global")          # 4 allowed: two of layer 0, then layer 1's smallest
    assert removed_units(model, masks) == [[0, 1], [0, 1]]


def test_weight_pruning_removes_the_smallest_weights_by_hand() -> None:
    model = set_weights(mlp(2, (2,), 2), w0=[[0.1, -2.0], [0.5, 0.3]], w2=[[-0.05, 0.07], [0.4, -0.02]])
    _, masks = weight_prune(model, 0.5, scope="layerwise")     # 2 per tensor
    assert masks["0.weight"].tolist() == [[0, 1], [1, 0]] and masks["2.weight"].tolist() == [[0, 1], [1, 0]]
    pruned, masks = weight_prune(model, 0.5, scope="global")   # 4 of 8: 0.02, 0.05, 0.07, 0.1
    assert masks["0.weight"].tolist() == [[0, 1], [1, 1]] and masks["2.weight"].tolist() == [[0, 0], [1, 0]]
    assert masks["0.bias"].tolist() == [1, 1] and weight_sparsity(model, masks) == 0.5
    assert torch.allclose(pruned[0].weight, torch.tensor([[0, -2.0], [0.5, 0.3]]))


def test_random_pruning_counts_and_seeds() -> None:
    model = mlp(2, (10, 6), 2, seed=0)
    a = removed_units(model, random_prune(model, 0.5, seed=1)[1])
    assert [len(u) for u in a] == [5, 3]
    assert a == removed_units(model, random_prune(model, 0.5, seed=1)[1])
    assert any(removed_units(model, random_prune(model, 0.5, seed=s)[1]) != a for s in range(2, 6))
    assert sum(map(len, removed_units(model, random_prune(model, 0.5, "global", seed=3)[1]))) == 8


@FAST
@given(widths=st.lists(st.integers(1, 20), min_size=1, max_size=3), sparsity=sparsities, seed=st.integers(0, 99))
@example(widths=[4, 1], sparsity=0.9, seed=0)  # 0.9 x 4 and 0.9 x 1 round up to the whole layer: one unit must stay
def test_unit_methods_remove_the_rounded_share(widths: list[int], sparsity: float, seed: int) -> None:
    model = mlp(3, widths, 2, seed=seed)
    for method in ("node", "random"):
        _, masks, _ = prune(model, method, sparsity, "layerwise")
        assert [len(u) for u in removed_units(model, masks)] == [min(half_up(sparsity * w), w - 1) for w in widths]
        _, masks, _ = prune(model, method, sparsity, "global")
        total = sum(widths)
        assert sum(map(len, removed_units(model, masks))) == min(half_up(sparsity * total), total - len(widths))


@FAST
@given(widths=st.lists(st.integers(1, 12), min_size=1, max_size=3), sparsity=sparsities, seed=st.integers(0, 99))
def test_weight_pruning_cuts_below_what_it_keeps(widths: list[int], sparsity: float, seed: int) -> None:
    model = mlp(2, widths, 2, seed=seed)
    names = [n for n, _ in model.named_parameters() if n.endswith("weight")]
    for scope in ("layerwise", "global"):
        pruned, masks = weight_prune(model, sparsity, scope=scope)
        groups = [[n] for n in names] if scope == "layerwise" else [names]
        for group in groups:
            kept = torch.cat([model.get_parameter(n).detach().abs()[masks[n] == 1] for n in group])
            cut = torch.cat([model.get_parameter(n).detach().abs()[masks[n] == 0] for n in group])
            assert len(cut) == half_up(sparsity * (len(kept) + len(cut)))
            if len(kept) and len(cut):
                assert cut.max() <= kept.min()
        for name in names:
            assert torch.all(pruned.get_parameter(name)[masks[name] == 0] == 0)


# ---------------------------------------------------------------- node and weight pruning in the partition


@FAST
@given(seed=st.integers(0, 10_000), width=st.integers(2, 12), sparsity=sparsities)
def test_node_pruning_removes_exactly_the_pruned_units_lines(seed: int, width: int, sparsity: float) -> None:
    model = mlp(2, (width,), 2, seed=seed)
    pruned, masks = node_prune(model, sparsity)
    gone = set(removed_units(model, masks)[0])
    before, after = first_layer_lines(model), first_layer_lines(pruned)
    for unit in range(width):
        if unit in gone:
            assert after[unit].is_empty
        else:  # the same line, only split at fewer crossings
            assert after[unit].length == pytest.approx(before[unit].length, abs=1e-9)
            if not before[unit].is_empty:
                assert after[unit].hausdorff_distance(before[unit]) < 1e-9


def test_pruned_units_are_silent_at_every_probe_point() -> None:
    model = mlp(2, (8, 8), 2, seed=3)
    pruned, masks = node_prune(model, 0.5)
    z = preactivations(pruned, grid_probe(n=20))
    for layer, units in zip(hidden_layers(model), removed_units(model, masks)):
        assert len(units) == 4 and torch.all(z[layer.act_index][:, units] == 0)


def test_zeroed_first_layer_weight_makes_the_line_axis_aligned() -> None:
    model = mlp(2, (12,), 2, seed=5)
    pruned, _ = weight_prune(model, 0.3, scope="layerwise")
    w = pruned[0].weight.detach()
    p = trace(to_ops(pruned), DOMAIN)
    aligned = 0
    for unit in range(12):
        d = np.diff(p.segments(layer=0, unit=unit), axis=1)[:, 0]
        if w[unit, 0] == 0 and w[unit, 1] != 0:      # b + w1*y = 0: horizontal
            assert np.allclose(d[:, 1], 0)
            aligned += len(d) > 0
        elif w[unit, 1] == 0 and w[unit, 0] != 0:    # vertical
            assert np.allclose(d[:, 0], 0)
            aligned += len(d) > 0
    assert aligned > 0


# ---------------------------------------------------------------- the decision-change measure


def threshold_net(shift: float) -> nn.Sequential:
    """Class 1 exactly where x > shift on [-1, 1]^2 (the hidden unit relu(x + 10) is active there)."""
    return set_weights(mlp(2, (1,), 2), w0=[[1, 0]], b0=[10], w2=[[0], [1]], b2=[0, -10 - shift])


def test_decision_change_is_the_exact_changed_area() -> None:
    reference = threshold_net(0.0)
    probe = grid_probe((-1, 1, -1, 1), 21)  # x in steps of 0.1
    area = DecisionChange(reference, probe)
    assert area.measure == "area" and area.bounds == (-1, 1, -1, 1)
    assert area(threshold_net(0.5)) == pytest.approx(0.25, abs=1e-12)   # the strip 0 < x < 0.5: 1 of 4
    assert area(threshold_net(-0.25)) == pytest.approx(0.125, abs=1e-12)
    assert area(reference) == 0.0
    points = DecisionChange(reference, probe, measure="probe")
    assert points(threshold_net(0.5)) == pytest.approx(5 * 21 / 441)      # x = 0.1 .. 0.5 on the grid
    with pytest.raises(ValueError, match="2 inputs"):
        DecisionChange(mlp(3, (2,), 2), np.zeros((4, 3)), measure="area")


def test_decision_change_agrees_with_a_dense_grid_on_trained_nets() -> None:
    data = make_dataset("moons", n=200, seed=0)
    a = fit(mlp(2, (12, 12), 2, seed=0), data, TrainConfig(epochs=15, lr=0.05, momentum=0.9, batch_size=32)).model
    bounds = data.bounds
    grid = grid_probe(bounds, 400)
    for sparsity in (0.3, 0.6):
        b = node_prune(a, sparsity)[0]
        exact = DecisionChange(a, grid_probe(bounds, 10))(b)
        sampled = np.mean(outputs(a, grid).argmax(1) != outputs(b, grid).argmax(1))
        assert exact > 0.002 and exact == pytest.approx(sampled, rel=0.05, abs=5e-4), sparsity


def test_regression_change_is_the_relative_rms() -> None:
    probe = np.linspace(-1, 1, 11, dtype=np.float32)[:, None]
    a = set_weights(mlp(1, (1,), 1), w0=[[1]], b0=[5], w2=[[1]], b2=[-5])       # f(x) = x
    b = set_weights(mlp(1, (1,), 1), w0=[[1]], b0=[5], w2=[[1.5]], b2=[-7.5])   # g(x) = 1.5 x
    change = DecisionChange(a, probe)
    assert change.measure == "rmse" and change(b) == pytest.approx(0.5, rel=1e-6)


# ---------------------------------------------------------------- spline pruning


def x_net() -> nn.Sequential:
    """The smallest exact X classifier: logit difference relu(y) + relu(-y) - relu(x) - relu(-x)."""
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2))
    return set_weights(model, w0=[[0, 1], [0, -1], [1, 0], [-1, 0]], b0=[0, 0, 0, 0],
                       w2=[[0, 0, 0, 0], [1, 1, -1, -1]], b2=[0, 0])


@pytest.mark.parametrize("probe_bounds", [(-3, 3, -3, 3), (-2, 3, -1, 3)])
def test_the_four_unit_x_survives_every_p(probe_bounds: tuple) -> None:
    model = x_net()
    probe = grid_probe(probe_bounds, 50)
    points = np.random.default_rng(0).uniform(-3, 3, (500, 2))
    for kwargs in [dict(P=p) for p in (0.01, 0.2, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0)] + [dict(sparsity=0.75)]:
        pruned, _, report = spline_prune(model, probe=probe, **kwargs)
        assert report.removed == [[]], kwargs
        assert np.array_equal(outputs(pruned, points), outputs(model, points))


def test_without_the_tolerance_a_similar_but_needed_pair_is_merged() -> None:
    # on an off-centre probe x and y correlate (S = 0.21): only the boundary check keeps the X
    model, probe = x_net(), grid_probe((-2, 3, -1, 3), 50)
    guarded = spline_prune(model, P=0.1, probe=probe)[2]
    assert guarded.removed == [[]] and {(m.removed, m.kept) for m in guarded.rejected} == {(0, 2), (1, 3)}
    assert all(m.change > 0.05 for m in guarded.rejected)
    unguarded = spline_prune(model, P=0.1, probe=probe, tolerance=None)[2]
    assert unguarded.removed == [[0, 1]]


def duplicate_net(out_w0: list[float], out_w2: list[float]) -> nn.Sequential:
    """Unit 2 := 4 x unit 0 (a power of two, so float32 keeps z_2 = 4 z_0 exactly); unit 1 is generic."""
    model = mlp(2, (3,), 2, seed=0)
    with torch.no_grad():
        model[0].weight[2], model[0].bias[2] = 4 * model[0].weight[0], 4 * model[0].bias[0]
        model[2].weight[:, 0], model[2].weight[:, 2] = torch.tensor(out_w0), torch.tensor(out_w2)
        model[2].weight[:, 1] = torch.tensor([0.3, -0.7])
    return model


@pytest.mark.parametrize("out_w0,out_w2,removed,kept,fold", [
    ([1.0, -1.0], [0.1, 0.1], 2, 0, 4.0),     # contributions: |(1,-1)| |z0| = 1.41 vs |(.1,.1)| 4|z0| = 0.57
    ([0.1, 0.1], [1.0, -1.0], 0, 2, 0.25),    # 0.14 vs 5.66: the other one goes, folded by 1/4
])
def test_a_positive_duplicate_is_folded_losslessly(out_w0, out_w2, removed, kept, fold) -> None:
    model = duplicate_net(out_w0, out_w2)
    pruned, masks, report = spline_prune(model, P=0.999)
    assert [(m.removed, m.kept, m.fold) for m in report.merges] == [(removed, kept, fold)]
    assert report.removed == [[removed]] and report.groups == [[[kept, removed]]]
    expected = torch.tensor(out_w0) * (fold if kept == 2 else 1) + torch.tensor(out_w2) * (fold if kept == 0 else 1)
    assert torch.allclose(pruned[2].weight[:, kept], expected)
    points = np.random.default_rng(1).uniform(-50, 50, (2000, 2))  # far outside the probe: the fold is exact
    assert np.abs(outputs(pruned, points) - outputs(model, points)).max() < 1e-6 * np.abs(outputs(model, points)).max()
    assert report.change == 0.0 and unit_sparsity(model, masks) == pytest.approx(1 / 3)
    strict = spline_prune(model, P=0.999, tolerance=0.0)[2]  # "differ by at most 0": a lossless merge still passes
    assert strict.removed == [[removed]] and strict.rejected == []


def test_a_flipped_unit_is_a_different_function_and_stays() -> None:
    model = mlp(2, (6,), 2, seed=2)
    with torch.no_grad():
        model[0].weight[5], model[0].bias[5] = -model[0].weight[1], -model[0].bias[1]
    s = unit_similarity(preactivations(model, grid_probe())[0])
    assert s[1, 5] == pytest.approx(-1.0)
    _, _, report = spline_prune(model, P=0.5, tolerance=None)
    assert all({m.removed, m.kept} != {1, 5} for m in report.merges)


def test_dead_relu_units_go_first_and_leaky_ones_stay() -> None:
    for activation, dead_removed in (("relu", True), ("leaky_relu", False)):
        model = mlp(2, (5,), 2, seed=3, activation=activation)
        with torch.no_grad():
            model[0].bias[3] = -100.0  # z < 0 on all of [-3, 3]^2: no boundary there, relu(z) = 0
        _, _, report = spline_prune(model, P=0.9999)
        assert report.removed == ([[3]] if dead_removed else [[]])
        if dead_removed:
            assert report.merges[0].kept is None and report.merges[0].fold == 0.0
        else:  # the leaky unit (0.01 z there) is no candidate at all: none refused, none taken without the check
            assert report.rejected == []
            assert spline_prune(model, P=0.9999, tolerance=None)[2].removed == [[]]


def test_a_layer_of_dead_units_keeps_its_last_one() -> None:
    """All three units are negative on the whole probe (bias -100): the first two go as dead, the last stays."""
    model = mlp(2, (3,), 2, seed=0)
    with torch.no_grad():
        model[0].bias[:] = -100.0
    _, masks, report = spline_prune(model, P=0.9999)
    assert report.removed == [[0, 1]] and [m.kept for m in report.merges] == [None, None]
    assert masks["0.weight"].sum(dim=1).tolist() == [0.0, 0.0, 2.0]


def test_pruning_counts_units_already_pruned() -> None:
    model = duplicate_net([1.0, -1.0], [0.1, 0.1])
    widened = mlp(2, (4,), 2, seed=0)   # units 0-2 as in duplicate_net, unit 3 already pruned
    with torch.no_grad():
        widened[0].weight[:3], widened[0].bias[:3] = model[0].weight, model[0].bias
        widened[0].weight[3], widened[0].bias[3] = 0.0, 0.0
        widened[2].weight[:, :3], widened[2].weight[:, 3] = model[2].weight, 0.0
    _, masks, report = spline_prune(widened, sparsity=0.25, P=0.999)
    assert report.removed == [[]] and removed_units(widened, masks) == [[3]]   # 1 of 4 already gone
    _, masks, report = spline_prune(widened, sparsity=0.5, P=0.999)
    assert report.removed == [[2]] and removed_units(widened, masks) == [[2, 3]] and report.sparsity == 0.5


@FAST
@given(seed=st.integers(0, 1000), units=st.integers(1, 8), scale=st.floats(0.1, 10))
def test_similarity_is_the_cosine_and_ignores_positive_scale(seed: int, units: int, scale: float) -> None:
    z = torch.as_tensor(np.random.default_rng(seed).normal(size=(40, units, 2)))
    s = unit_similarity(z)
    flat = z.numpy().transpose(1, 0, 2).reshape(units, -1)
    for i in range(units):
        for j in range(units):
            cos = flat[i] @ flat[j] / np.linalg.norm(flat[i]) / np.linalg.norm(flat[j])
            assert s[i, j] == pytest.approx(1.0 if i == j else cos, abs=1e-12)
    scaled = z.clone()
    scaled[:, 0] *= scale
    assert np.allclose(unit_similarity(scaled), s, atol=1e-12)
    scaled[:, 0] *= -1
    assert np.allclose(unit_similarity(scaled)[0, 1:], -s[0, 1:], atol=1e-12)


def test_unit_groups_are_single_linkage() -> None:
    s = np.eye(5)
    s[0, 1] = s[1, 0] = 0.95
    s[1, 2] = s[2, 1] = 0.91   # 0 and 2 are linked through 1 only
    s[3, 4] = s[4, 3] = 0.89
    assert unit_groups(s, 0.9) == [[0, 1, 2]]
    assert unit_groups(s, 0.85) == [[0, 1, 2], [3, 4]]
    assert unit_groups(s, 0.99) == []
    assert unit_groups(s, 0.95) == [[0, 1]]  # S = P links: the threshold is inclusive
    s[3, 4] = s[4, 3] = 1 - 1e-16  # the cosine of two proportional units, rounded
    assert [3, 4] in unit_groups(s, 1.0)


def test_spline_threshold_orders_merges_by_similarity() -> None:
    model = mlp(2, (16,), 2, seed=7)
    _, _, report = spline_prune(model, P=0.3, tolerance=None)
    pairs = [m.similarity for m in report.merges if m.kept is not None]
    assert pairs == sorted(pairs, reverse=True) and min(pairs) >= 0.3
    sims = report.similarity[0]
    for m in report.merges:
        assert m.similarity == pytest.approx(sims[m.removed, m.kept])


@pytest.fixture(scope="module")
def trained_toys():
    """Five seeds each of a 2-20-2 net on the X-shape and a 2-16-16-2 net on two moons, briefly trained."""
    nets = []
    for seed in range(5):
        for name, hidden in (("xshape", (20,)), ("moons", (16, 16))):
            data = make_dataset(name, n=600, seed=seed)
            model = mlp(2, hidden, 2, seed=seed)
            fit(model, data, TrainConfig(epochs=40, lr=0.05, momentum=0.9, batch_size=64, seed=seed))
            nets.append((name, data, model))
    return nets


def test_spline_pruning_keeps_node_prunings_accuracy_at_equal_sparsity(trained_toys) -> None:
    gaps = {"xshape": [], "moons": []}
    for name, data, model in trained_toys:
        pruned, masks, report = spline_prune(model, P=0.9, probe=grid_probe(data.bounds, 60))
        assert report.change <= 0.01
        node = node_prune(model, report.sparsity, "global")[0]
        assert unit_sparsity(model, masks) == pytest.approx(report.sparsity)
        gaps[name].append((report.sparsity, evaluate(pruned, data) - evaluate(node, data)))
    for name, runs in gaps.items():
        assert np.mean([s for s, _ in runs]) >= 0.1, (name, runs)  # it does prune
        assert np.mean([g for _, g in runs]) >= 0.0, (name, runs)


def test_cnn_pruning_removes_channels() -> None:
    model = paper_cnn(seed=0)
    pruned, masks = node_prune(model, 0.25)
    layers = hidden_layers(model)
    assert [(layer.name, layer.bn, layer.consumer) for layer in layers] == [("0", "1", "3"), ("3", "4", "7")]
    for layer, gone in zip(layers, removed_units(model, masks)):
        assert len(gone) == 4 and all(torch.all(masks[f"{layer.bn}.weight"][u] == 0) for u in gone)
    for unit in removed_units(model, masks)[1]:  # flattened 16 x 4 x 4: one block of 16 columns per channel
        assert torch.all(pruned[7].weight[:, unit * 16:(unit + 1) * 16] == 0)
    probe = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    for unit in removed_units(model, masks)[0]:
        assert torch.all(preactivations(pruned, probe)[0][:, unit] == 0)
    with torch.no_grad():  # channel 5 of the first conv := 2 x channel 2 (BatchNorm is the identity at init)
        model[0].weight[5], model[0].bias[5] = 2 * model[0].weight[2], 2 * model[0].bias[2]
    spline, _, report = spline_prune(model, P=0.999, probe=probe)
    assert report.measure == "probe" and [(m.layer, {m.removed, m.kept}) for m in report.merges] == [(0, {2, 5})]
    assert torch.allclose(spline.eval()(probe), model.eval()(probe), atol=1e-5)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("bad", [1.0, -0.1, float("nan"), 1.5, "0.5", True, None])
def test_bad_sparsity_is_rejected(bad: object) -> None:
    model = mlp(2, (4,), 2)
    for fn in (node_prune, weight_prune, random_prune):
        with pytest.raises(ValueError, match="sparsity"):
            fn(model, bad)


def test_unknown_method_scope_and_bad_spline_arguments() -> None:
    model = mlp(2, (4,), 2)
    with pytest.raises(ValueError, match="method"):
        prune(model, "magic", 0.5)
    with pytest.raises(ValueError, match="scope"):
        node_prune(model, 0.5, scope="everywhere")
    with pytest.raises(ValueError, match="sparsity, a similarity threshold P"):
        spline_prune(model)
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError, match="P must be"):
            spline_prune(model, P=bad)
    with pytest.raises(ValueError, match="tolerance"):
        spline_prune(model, P=0.9, tolerance=-1)
    with pytest.raises(ValueError, match="probe"):
        spline_prune(mlp(3, (4,), 2), P=0.9)
    with pytest.raises(ValueError, match="Tanh"):
        node_prune(nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 2)), 0.5)
    with pytest.raises(ValueError, match="no hidden layer"):
        node_prune(nn.Sequential(nn.Linear(2, 2)), 0.5)


# ---------------------------------------------------------------- fine-tuning


@pytest.fixture(scope="module")
def xshape():
    data = make_dataset("xshape", n=400, seed=0)
    model = mlp(2, (20,), 2, seed=0)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    fit(model, data, TrainConfig(epochs=10, lr=0.1, batch_size=64))
    return data, model, init


@pytest.mark.parametrize("method", ["node", "weight", "spline", "random"])
def test_masks_keep_zeros_after_fine_tuning(xshape, method: str) -> None:
    data, model, _ = xshape
    kwargs = {"P": 0.5, "tolerance": None} if method == "spline" else {}
    result = prune_and_finetune(model, data, method, 0.5, TrainConfig(epochs=5, lr=0.1, batch_size=64), **kwargs)
    params = dict(result.model.named_parameters())
    changed = False
    for name, mask in result.masks.items():
        assert torch.all(params[name][mask == 0] == 0)
        changed |= not torch.equal(params[name], result.pruned_model.get_parameter(name))
    assert changed, "fine-tuning should move the surviving weights"
    expected = 0.5 if method != "spline" else result.report.sparsity
    assert result.achieved_sparsity == pytest.approx(expected) and 0 < result.achieved_sparsity <= 0.5
    assert result.metric_name == "accuracy" and result.accuracy == result.metric == evaluate(result.model, data)
    assert result.accuracy_pruned == evaluate(result.pruned_model, data)
    assert (result.report is not None) == (method == "spline")


def test_retrain_from_original_init_starts_at_masked_init(xshape) -> None:
    data, model, init = xshape
    result = prune_and_finetune(model, data, "node", 0.4, TrainConfig(epochs=2, lr=0.05, batch_size=64),
                                init_state=init)
    start = result.train_result.snapshots[0].state
    for name, mask in result.masks.items():
        assert torch.equal(start[name], init[name] * mask)
    assert result.retrained_from_init
    reset = reinitialise(result.pruned_model, init, result.masks)  # on its own, before fit re-applies any mask
    for name, mask in result.masks.items():
        assert torch.equal(reset.get_parameter(name), init[name] * mask)


def test_a_regression_result_reports_rmse_not_accuracy() -> None:
    data = make_dataset("sawtooth", n=100)
    model = fit(mlp(1, (8,), 1), data, TrainConfig(epochs=3, lr=0.01, optimizer="adam")).model
    result = prune_and_finetune(model, data, "node", 0.5, TrainConfig(epochs=2, lr=0.01, optimizer="adam"))
    assert result.metric_name == "rmse" and result.metric == evaluate(result.model, data)
    with pytest.raises(AttributeError, match="rmse"):
        result.accuracy  # noqa: B018 - the property raises


def test_an_unchecked_run_still_measures_where_it_ended() -> None:
    model, probe = x_net(), grid_probe((-2, 3, -1, 3), 50)
    report = spline_prune(model, P=0.1, probe=probe, tolerance=None)[2]
    pruned = spline_prune(model, P=0.1, probe=probe, tolerance=None)[0]
    assert report.measure == "area" and all(np.isnan(m.change) for m in report.merges)
    assert report.change == pytest.approx(DecisionChange(model, probe)(pruned)) and report.change > 0.05


# ---------------------------------------------------------------- corner cases (each found by bench/mutation.py)


def test_a_batchnorm_belongs_to_the_units_only_before_their_nonlinearity() -> None:
    before = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    after = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.BatchNorm1d(4), nn.Linear(4, 2))
    assert [(h.name, h.bn, h.consumer) for h in hidden_layers(before)] == [("0", "1", "3")]
    assert [(h.name, h.bn, h.consumer) for h in hidden_layers(after)] == [("0", None, "3")]


def test_a_unit_driven_by_its_batchnorm_shift_is_not_silent() -> None:
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2))
    with torch.no_grad():
        model[0].weight[1], model[0].bias[1] = 0.0, 0.0    # unit 1: no weights, no bias...
        model[0].weight[2], model[0].bias[2] = 0.0, 0.0    # unit 2 too
        model[1].bias[1] = 0.7                             # ...but unit 1's BatchNorm shift still drives it
        model[1].bias[2] = 0.0
    assert silent_units(model, hidden_layers(model)[0]).tolist() == [False, False, True]


def test_a_row_cut_by_weight_pruning_keeps_its_unit_alive_through_the_bias() -> None:
    model = set_weights(mlp(2, (2,), 2), w0=[[0.01, 0.02], [1.0, 2.0]], b0=[0.5, 0.5])
    _, masks = weight_prune(model, 0.5)                    # the 2 smallest of 4: unit 0's whole row
    assert masks["0.weight"].tolist() == [[0, 0], [1, 1]] and masks["0.bias"].tolist() == [1, 1]
    assert removed_units(model, masks) == [[]] and unit_sparsity(model, masks) == 0.0


def test_the_change_measure_keeps_units_that_only_have_a_bias() -> None:
    # unit 1 has no weights but a bias: a constant 1 that moves the threshold from x > 0 to x > 0.5
    shifted = set_weights(mlp(2, (2,), 2), w0=[[1, 0], [0, 0]], b0=[10, 1], w2=[[0, 0], [1, -0.5]], b2=[0, -10])
    change = DecisionChange(threshold_net(0.0), grid_probe((-1, 1, -1, 1), 21))
    assert change(shifted) == pytest.approx(0.25, abs=1e-12)  # the strip 0 < x < 0.5 of [-1, 1]^2


def test_without_p_orthogonal_units_are_no_candidates() -> None:
    # on these four points x * y = 0 everywhere, so S(x, y) = 0 exactly: not similar, never tried
    probe = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]], dtype=np.float32)
    _, _, report = spline_prune(x_net(), sparsity=0.75, probe=probe)
    assert report.merges == [] and report.rejected == []


def test_random_pruning_takes_already_pruned_units_first() -> None:
    for seed in range(5):
        model = mlp(2, (4,), 2, seed=seed)
        with torch.no_grad():
            model[0].weight[3], model[0].bias[3] = 0.0, 0.0
        assert removed_units(model, random_prune(model, 0.25, seed=seed)[1]) == [[3]]

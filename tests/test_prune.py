"""Pruning seen in the exact partition: node, weight and spline pruning, masks and fine-tuning."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiLineString
from torch import nn

from splineviz.data import make_dataset
from splineviz.earlybird import grid_probe, preactivations
from splineviz.nets import mlp, paper_cnn, to_ops
from splineviz.partition import box, trace
from splineviz.prune import (count, hidden_layers, incoming_norms, node_prune, prune, prune_and_finetune,
                             sparsity_curve, spline_prune, unit_similarity, unit_sparsity, weight_prune,
                             weight_sparsity)
from splineviz.train import TrainConfig, fit

DOMAIN = box(-3, 3, -3, 3)
FAST = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
sparsities = st.floats(0.0, 0.95, allow_nan=False)


def first_layer_lines(model: nn.Module) -> dict[int, MultiLineString]:
    """Each first-layer unit's traced boundary as one geometry (empty when it draws nothing)."""
    p = trace(to_ops(model), domain=DOMAIN)
    return {u: MultiLineString([tuple(map(tuple, s)) for s in p.segments(layer=0, unit=u)])
            for u in range(p.layer_widths[0])}


def removed_units(masks: dict, name: str) -> set[int]:
    return {int(u) for u in torch.nonzero(masks[f"{name}.weight"].reshape(len(masks[f"{name}.bias"]), -1)
                                          .sum(dim=1) == 0).flatten()}


# ---------------------------------------------------------------- node pruning in the partition


@FAST
@given(seed=st.integers(0, 10_000), width=st.integers(2, 12), sparsity=sparsities)
def test_node_pruning_removes_exactly_the_pruned_units_lines(seed: int, width: int, sparsity: float) -> None:
    model = mlp(2, (width,), 2, seed=seed)
    pruned, masks = node_prune(model, sparsity)
    gone = removed_units(masks, "0")
    assert len(gone) == min(count(sparsity, width), width - 1)
    before, after = first_layer_lines(model), first_layer_lines(pruned)
    for unit in range(width):
        if unit in gone:
            assert after[unit].is_empty
        else:  # the same line, only split at fewer crossings
            assert after[unit].length == pytest.approx(before[unit].length, abs=1e-9)
            if not before[unit].is_empty:
                assert after[unit].hausdorff_distance(before[unit]) < 1e-9
    total = sum(before[u].length for u in range(width) if u not in gone)
    assert sum(g.length for g in after.values()) == pytest.approx(total, abs=1e-9)


@FAST
@given(seed=st.integers(0, 10_000), sparsity=st.floats(0.1, 0.9))
def test_deep_net_first_layer_segments_lie_on_surviving_units_lines(seed: int, sparsity: float) -> None:
    model = mlp(2, (10, 8), 2, seed=seed)
    pruned, masks = node_prune(model, sparsity, scope="global")
    gone = removed_units(masks, "0")
    p = trace(to_ops(pruned), domain=DOMAIN)
    for unit in removed_units(masks, "2"):
        assert len(p.segments(layer=1, unit=unit)) == 0
    w, b = model[0].weight.detach().double().numpy(), model[0].bias.detach().double().numpy()
    for unit in range(10):
        segs = p.segments(layer=0, unit=unit)
        if unit in gone:
            assert len(segs) == 0
        else:
            residual = segs.reshape(-1, 2) @ w[unit] + b[unit]
            assert np.allclose(residual, 0, atol=1e-9)


def test_node_pruning_never_touches_the_output_layer_and_keeps_a_unit_per_layer() -> None:
    model = mlp(2, (6, 5, 4), 3, seed=1)
    for scope in ("layerwise", "global"):
        pruned, masks = node_prune(model, 0.95, scope=scope)
        assert torch.all(masks["6.bias"] == 1)
        assert torch.all(pruned[6].weight.abs().sum(dim=1) > 0)
        for name, width in (("0", 6), ("2", 5), ("4", 4)):
            assert len(removed_units(masks, name)) <= width - 1


@FAST
@given(widths=st.lists(st.integers(1, 20), min_size=1, max_size=3), sparsity=sparsities, seed=st.integers(0, 99))
def test_node_sparsity_counts_and_norm_order(widths: list[int], sparsity: float, seed: int) -> None:
    model = mlp(3, widths, 2, seed=seed)
    layers = hidden_layers(model)
    _, masks = node_prune(model, sparsity, scope="layerwise")
    for layer in layers:
        gone = removed_units(masks, layer.name)
        assert len(gone) == min(count(sparsity, layer.width), layer.width - 1)
        norms = incoming_norms(model, layer)
        if gone and len(gone) < layer.width:
            kept = [u for u in range(layer.width) if u not in gone]
            assert max(norms[list(gone)]) <= min(norms[kept])
    _, masks = node_prune(model, sparsity, scope="global")
    total = sum(widths)
    removed = sum(len(removed_units(masks, layer.name)) for layer in layers)
    assert removed == min(count(sparsity, total), total - len(widths))
    assert unit_sparsity(model, masks) == pytest.approx(removed / total)


def test_global_node_pruning_ranks_units_across_layers() -> None:
    model = mlp(2, (4, 4), 2, seed=0)
    with torch.no_grad():
        model[2].weight.mul_(100)  # second layer's rows are now far larger than the first's
    _, masks = node_prune(model, 0.25, scope="global")
    assert len(removed_units(masks, "0")) == 2 and not removed_units(masks, "2")


def test_pruned_units_are_silent_at_every_probe_point() -> None:
    model = mlp(2, (8, 8), 2, seed=3)
    pruned, masks = node_prune(model, 0.5)
    probe = grid_probe(n=20)
    z = preactivations(pruned, probe)
    for layer, name in zip(hidden_layers(model), ("0", "2")):
        for unit in removed_units(masks, name):
            assert torch.all(z[layer.act_index][:, unit] == 0)


# ---------------------------------------------------------------- weight pruning


def test_zeroed_first_layer_weight_makes_the_line_axis_aligned() -> None:
    model = mlp(2, (12,), 2, seed=5)
    pruned, masks = weight_prune(model, 0.3, scope="layerwise")
    w = pruned[0].weight.detach()
    p = trace(to_ops(pruned), domain=DOMAIN)
    aligned = 0
    for unit in range(12):
        segs = p.segments(layer=0, unit=unit)
        d = segs[:, 1] - segs[:, 0]
        if w[unit, 0] == 0 and w[unit, 1] != 0:      # b + w1*y = 0: horizontal
            assert np.allclose(d[:, 1], 0)
            aligned += len(segs) > 0
        elif w[unit, 1] == 0 and w[unit, 0] != 0:    # vertical
            assert np.allclose(d[:, 0], 0)
            aligned += len(segs) > 0
        elif len(segs):                              # an unpruned generic line is neither
            assert not np.allclose(d[:, 0], 0) and not np.allclose(d[:, 1], 0)
    assert aligned > 0


@FAST
@given(widths=st.lists(st.integers(1, 12), min_size=1, max_size=3), sparsity=sparsities, seed=st.integers(0, 99))
def test_weight_sparsity_counts(widths: list[int], sparsity: float, seed: int) -> None:
    model = mlp(2, widths, 2, seed=seed)
    names = [n for n, p in model.named_parameters() if n.endswith("weight")]
    _, masks = weight_prune(model, sparsity, scope="layerwise")
    for name in names:
        assert int((masks[name] == 0).sum()) == count(sparsity, masks[name].numel())
        assert torch.all(masks[name.replace("weight", "bias")] == 1)
    pruned, masks = weight_prune(model, sparsity, scope="global")
    total = sum(masks[n].numel() for n in names)
    assert sum(int((masks[n] == 0).sum()) for n in names) == count(sparsity, total)
    assert weight_sparsity(model, masks) == pytest.approx(count(sparsity, total) / total)
    kept = torch.cat([model.get_parameter(n).detach().abs()[masks[n] == 1] for n in names])
    cut = torch.cat([model.get_parameter(n).detach().abs()[masks[n] == 0] for n in names])
    if len(kept) and len(cut):
        assert cut.max() <= kept.min()
    for name in names:
        assert torch.all(pruned.get_parameter(name)[masks[name] == 0] == 0)


# ---------------------------------------------------------------- spline pruning


def with_duplicates(model: nn.Sequential) -> nn.Sequential:
    """Unit 3 := 2 * unit 0 (same line, same orientation); unit 5 := -unit 1 (same line, flipped)."""
    with torch.no_grad():
        model[0].weight[3], model[0].bias[3] = 2 * model[0].weight[0], 2 * model[0].bias[0]
        model[0].weight[5], model[0].bias[5] = -model[0].weight[1], -model[0].bias[1]
    return model


def test_spline_pruning_groups_duplicated_and_flipped_units() -> None:
    model = with_duplicates(mlp(2, (8, 6), 2, seed=2))
    pruned, masks, report = spline_prune(model, P=0.999)
    assert [sorted(g) for g in report.groups[0]] == [[0, 3], [1, 5]]
    assert report.groups[1] == [] and report.removed[1] == []
    assert len(report.removed[0]) == 2
    assert report.similarity[0][0, 3] == 1.0 and report.similarity[0][1, 5] == 1.0
    assert unit_sparsity(model, masks) == pytest.approx(2 / 14)
    folds = {frozenset((m.removed, m.kept)): m.fold for m in report.merges}
    assert folds[frozenset((1, 5))] is None  # a flipped unit cannot hand its weights over
    assert folds[frozenset((0, 3))] in (pytest.approx(2.0), pytest.approx(0.5))


def test_spline_pruning_a_duplicate_leaves_the_first_layer_partition_unchanged() -> None:
    model = with_duplicates(mlp(2, (8,), 2, seed=6))
    pruned, _, report = spline_prune(model, P=0.999)
    assert len(report.removed[0]) == 2
    before, after = trace(to_ops(model), domain=DOMAIN), trace(to_ops(pruned), domain=DOMAIN)
    lines = [MultiLineString([tuple(map(tuple, s)) for s in p.segments(layer=0)]) for p in (before, after)]
    assert lines[1].length == pytest.approx(lines[0].length, abs=1e-9)
    assert lines[1].hausdorff_distance(lines[0]) < 1e-9
    assert after.n_regions == before.n_regions


def test_spline_pruning_of_a_positive_duplicate_folds_exactly() -> None:
    model = mlp(2, (8,), 2, seed=4)
    with torch.no_grad():
        model[0].weight[6], model[0].bias[6] = 3 * model[0].weight[2], 3 * model[0].bias[2]
    pruned, _, report = spline_prune(model, P=0.999)
    assert report.removed == [[2]] or report.removed == [[6]]
    x = torch.as_tensor(grid_probe(n=30))
    assert torch.allclose(pruned(x), model(x), atol=1e-5)
    _, _, unfolded = spline_prune(model, P=0.999, fold=False)
    assert unfolded.removed == report.removed and unfolded.merges[0].fold is None


@pytest.mark.parametrize("seed", range(5))
def test_spline_pruning_leaves_random_units_alone(seed: int) -> None:
    model = mlp(2, (16, 16), 2, seed=seed)
    _, masks, report = spline_prune(model, P=0.999)
    assert report.removed == [[], []] and unit_sparsity(model, masks) == 0


@FAST
@given(seed=st.integers(0, 1000), units=st.integers(1, 8), flip=st.integers(0, 7))
def test_similarity_matches_definition_and_ignores_sign_flips(seed: int, units: int, flip: int) -> None:
    z = torch.as_tensor(np.random.default_rng(seed).normal(size=(50, units)))
    s = unit_similarity(z)
    pos = (z > 0).numpy()
    for i in range(units):
        for j in range(units):
            agree = np.mean(pos[:, i] == pos[:, j])
            assert s[i, j] == pytest.approx(max(agree, 1 - agree))
    flipped = z.clone()
    flipped[:, flip % units] *= -1
    flipped[flipped == 0] = 1  # a flip maps > 0 to < 0 only away from exact zeros
    assert np.allclose(unit_similarity(flipped), unit_similarity(torch.where(z == 0, 1.0, z.double())))
    assert np.allclose(s, s.T) and np.all(np.diag(s) == 1) and s.min() >= 0.5


def test_boundary_free_units_are_not_similar_to_anything() -> None:
    z = torch.tensor([[1.0, 2.0, -1.0, -3.0, 0.5], [2.0, 1.0, -2.0, -1.0, -0.5], [3.0, 5.0, -1.0, 0.0, 0.1]])
    s = unit_similarity(z)  # units 0, 1 always active, 2, 3 never: no boundary on this probe
    expected = np.full((5, 5), 0.5)
    np.fill_diagonal(expected, 1.0)
    assert np.array_equal(s, expected)


@FAST
@given(widths=st.lists(st.integers(2, 10), min_size=1, max_size=2), sparsity=sparsities, seed=st.integers(0, 99))
def test_spline_sparsity_counts(widths: list[int], sparsity: float, seed: int) -> None:
    model = mlp(2, widths, 2, seed=seed)
    probe = grid_probe(n=20)
    _, masks, report = spline_prune(model, sparsity=sparsity, probe=probe, scope="layerwise")
    for removed, width in zip(report.removed, widths):
        assert len(removed) == min(count(sparsity, width), width - 1)
    _, masks, report = spline_prune(model, sparsity=sparsity, probe=probe, scope="global")
    total = sum(widths)
    assert sum(map(len, report.removed)) == min(count(sparsity, total), total - len(widths))
    assert report.sparsity == pytest.approx(unit_sparsity(model, masks))
    for layer_groups, removed in zip(report.groups, report.removed):
        assert sorted(u for g in layer_groups for u in g[1:]) == removed


def test_spline_pruning_with_threshold_removes_most_similar_first() -> None:
    model = mlp(2, (12,), 2, seed=7)
    _, _, report = spline_prune(model, P=0.5)
    sims = [m.similarity for m in report.merges]
    assert sims == sorted(sims, reverse=True) and len(report.removed[0]) == 11
    _, _, strict = spline_prune(model, P=0.9)
    assert all(m.similarity >= 0.9 for m in strict.merges)
    assert len(strict.removed[0]) < 11


# ---------------------------------------------------------------- conv nets: channels as units


def test_cnn_node_and_spline_pruning_remove_channels() -> None:
    model = paper_cnn(seed=0)
    pruned, masks = node_prune(model, 0.25)
    layers = hidden_layers(model)
    assert [(layer.name, layer.bn, layer.consumer) for layer in layers] == [("0", "1", "3"), ("3", "4", "7")]
    for layer in layers:
        gone = removed_units(masks, layer.name)
        assert len(gone) == 4
        for unit in gone:
            assert torch.all(masks[f"{layer.bn}.weight"][unit] == 0)
    for unit in removed_units(masks, "3"):  # flattened 16 x 4 x 4: one block of 16 columns per channel
        assert torch.all(pruned[7].weight[:, unit * 16:(unit + 1) * 16] == 0)
    probe = torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    z = preactivations(pruned, probe)
    for unit in removed_units(masks, "0"):
        assert torch.all(z[0][:, unit] == 0)
    _, _, report = spline_prune(model, sparsity=0.25, probe=probe)
    assert [len(r) for r in report.removed] == [4, 4]


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("bad", [1.0, -0.1, float("nan"), 1.5, "0.5", True, None])
def test_bad_sparsity_is_rejected(bad: object) -> None:
    model = mlp(2, (4,), 2)
    for fn in (node_prune, weight_prune):
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
    with pytest.raises(ValueError, match="P must be"):
        spline_prune(model, P=0.2)
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


@pytest.mark.parametrize("method", ["node", "weight", "spline"])
def test_masks_keep_zeros_after_fine_tuning(xshape, method: str) -> None:
    data, model, _ = xshape
    result = prune_and_finetune(model, data, method, 0.5, TrainConfig(epochs=5, lr=0.1, batch_size=64))
    params = dict(result.model.named_parameters())
    changed = False
    for name, mask in result.masks.items():
        assert torch.all(params[name][mask == 0] == 0)
        changed |= not torch.equal(params[name], result.pruned_model.get_parameter(name))
    assert changed, "fine-tuning should move the surviving weights"
    assert result.achieved_sparsity == pytest.approx(0.5)
    assert 0.0 <= result.accuracy <= 1.0 and result.method == method
    assert (result.report is not None) == (method == "spline")
    if method == "spline":  # by default it probes a grid over the data's bounds
        assert result.report.removed == spline_prune(model, 0.5, probe=grid_probe(data.bounds))[2].removed


def test_retrain_from_original_init_starts_at_masked_init(xshape) -> None:
    data, model, init = xshape
    result = prune_and_finetune(model, data, "node", 0.4, TrainConfig(epochs=2, lr=0.05, batch_size=64),
                                init_state=init)
    start = result.train_result.snapshots[0].state
    for name, mask in result.masks.items():
        assert torch.equal(start[name], init[name] * mask)
    assert result.retrained_from_init


def test_sparsity_curve_reports_each_requested_sparsity(xshape) -> None:
    data, model, init = xshape
    curve = sparsity_curve(model, data, "node", [0.0, 0.5, 0.9], TrainConfig(epochs=2, lr=0.05, batch_size=64),
                           init_state=init)
    assert [s for s, _ in curve] == [0.0, 0.5, 0.9]
    assert all(0.0 <= acc <= 1.0 and not math.isnan(acc) for _, acc in curve)

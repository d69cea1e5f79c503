"""Pruning seen through the input-space partition: node, weight and spline pruning, then fine-tuning.

Models are ``nn.Sequential`` stacks of Linear/Conv2d (+ BatchNorm) and ReLU/LeakyReLU, with
Flatten, Dropout, Identity and pooling in between. A *hidden layer* is a Linear/Conv2d whose output
goes through a nonlinearity and then into another Linear/Conv2d; its *units* are output rows
(Linear) or output channels (Conv2d). The output layer is never node-pruned.

Every pruning function returns a pruned **copy** and masks ``{parameter name: 0/1 tensor}`` (same
dtype as the parameter) that ``train.fit(masks=...)`` re-applies after each step.

* Node pruning removes whole units: incoming weight row + bias (and BatchNorm gamma/beta) and the
  outgoing weights are zeroed, so the unit's subdivision line disappears from the partition.
  Units with the smallest incoming weight-row L2 norm go first (scope="global" ranks the raw norms
  of all hidden layers together).
* Weight pruning zeroes the individual weights of smallest magnitude (all Linear/Conv2d weight
  tensors, output layer included; biases are kept). A first-layer unit that loses one of its two
  input weights draws an axis-aligned line.
* Spline pruning removes units whose boundaries nearly coincide with another unit's boundary.

Spline-pruning similarity (our definition; the paper's exact formula was not recoverable).
For two units i, j of the same hidden layer, with pre-activations z_i, z_j (the input of the
nonlinearity) evaluated at the N probe points (for conv channels: at every probe point and spatial
position), let

    agree(i, j) = (1/N) * #{probe points p : [z_i(p) > 0] == [z_j(p) > 0]}
    S(i, j)     = max(agree(i, j), 1 - agree(i, j))          (in [0.5, 1], S(i, i) = 1)

``agree`` is one minus the early-bird sign distance restricted to the two units; the max makes a
sign-flipped unit (w -> -w, which draws the same line) count as identical. On a dense grid probe,
1 - S is the fraction of the probed area lying between the two boundaries (for the better of the
two orientations), so S -> 1 exactly when the boundaries coincide inside the probed region. A unit
whose pre-activation has one sign on every probe point draws no boundary there, so it has nothing to
coincide with: S(i, j) = 0.5 (the minimum) whenever i != j and unit i or j is such a
*boundary-free* unit. Without this rule all boundary-free units would look identical (agree = 1)
and be merged, losing the affine contribution of always-active units.

Grouping. All within-layer pairs are visited in order of decreasing S. A pair of surviving units
with S >= P is merged: the unit with the smaller outgoing weight norm is removed and joins the group
of the other. Groups are thus single-linkage clusters (linked by merges with S >= P; two members of
one group need not be that similar to each other), each kept unit has the largest outgoing norm of
its group, and every layer keeps at least one unit. If ``sparsity`` is given, merging also stops
once round(sparsity * units) units are removed (per layer for scope="layerwise", over all hidden
layers for "global"); with a sparsity and no P, pairs are merged in that order regardless of S
until the count is met. With only P the two scopes coincide. Optionally (``fold=True``) a removed
unit j whose pre-activation is a positive multiple of the kept unit k's on the probe (z_j ~= c z_k,
c > 0, relative least-squares residual <= ``fold_tol``) hands its outgoing weights to k:
W_next[:, k] += c W_next[:, j], which is exact for ReLU and LeakyReLU when z_j = c z_k.
Similarities are computed once, on the unpruned network.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from numbers import Real
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from splineviz.data import Dataset
from splineviz.earlybird import (NONLINEARITIES, grid_probe, hamming_fractions, leaf_modules,
                                 preactivations)
from splineviz.train import TrainConfig, TrainResult, evaluate, fit, tensors

METHODS = ("node", "weight", "spline")
SCOPES = ("layerwise", "global")
Masks = dict[str, torch.Tensor]

_PRODUCERS = (nn.Linear, nn.Conv2d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
_PASSIVE = (nn.Flatten, nn.Dropout, nn.Identity, nn.MaxPool2d, nn.AvgPool2d)


@dataclass(frozen=True)
class HiddenLayer:
    """A prunable layer: the module producing the units and the modules its units feed."""

    name: str                 # Linear/Conv2d producing the units
    bn: str | None            # BatchNorm between it and its nonlinearity
    consumer: str             # Linear/Conv2d reading the units
    act_index: int            # position among the model's nonlinearities (preactivations order)
    width: int


def hidden_layers(model: nn.Module) -> list[HiddenLayer]:
    """The prunable layers of a Sequential model, in order; raises on layers pruning cannot follow."""
    layers: list[HiddenLayer] = []
    producer: str | None = None
    bn: str | None = None
    pending: tuple[str, str | None, int] | None = None
    n_acts = 0
    for name, module in leaf_modules(model):
        if isinstance(module, _PRODUCERS):
            if pending is not None:
                layers.append(HiddenLayer(pending[0], pending[1], name, pending[2], _width(model, pending[0])))
            producer, bn, pending = name, None, None
        elif isinstance(module, _NORMS):
            if producer is not None and pending is None:  # normalises the units before they bend
                bn = name
        elif isinstance(module, NONLINEARITIES):
            if producer is None:
                raise ValueError(f"nonlinearity {name!r} comes before any Linear/Conv2d layer")
            if pending is None:
                pending = (producer, bn, n_acts)
            n_acts += 1
        elif not isinstance(module, _PASSIVE):
            raise ValueError(f"pruning does not support layer {name!r} ({type(module).__name__})")
    if not layers:
        raise ValueError("the model has no hidden layer (Linear/Conv2d followed by ReLU and another layer)")
    return layers


def _width(model: nn.Module, name: str) -> int:
    return int(model.get_submodule(name).weight.shape[0])


def incoming_norms(model: nn.Module, layer: HiddenLayer) -> np.ndarray:
    """L2 norm of each unit's incoming weights (row, or whole output-channel kernel)."""
    w = model.get_submodule(layer.name).weight.detach()
    return w.reshape(layer.width, -1).norm(dim=1).double().numpy()


def outgoing_slice(model: nn.Module, layer: HiddenLayer, unit: int) -> tuple[slice | int, ...]:
    """Index of the consumer's weights reading ``unit`` (a column, a channel, or a flattened block)."""
    consumer = model.get_submodule(layer.consumer)
    if isinstance(consumer, nn.Conv2d):
        if consumer.in_channels != layer.width or consumer.groups != 1:
            raise ValueError(f"{layer.consumer!r} does not read the {layer.width} channels of {layer.name!r} densely")
        return (slice(None), unit)
    n_in = consumer.in_features
    if n_in % layer.width:
        raise ValueError(f"{layer.consumer!r} reads {n_in} values, not a multiple of {layer.width} units")
    block = n_in // layer.width  # channel-major flatten of a conv output: one block per channel
    return (slice(None), slice(unit * block, (unit + 1) * block))


def outgoing_norms(model: nn.Module, layer: HiddenLayer) -> np.ndarray:
    """L2 norm of the weights through which each unit reaches the next layer."""
    w = model.get_submodule(layer.consumer).weight.detach()
    return np.array([float(w[outgoing_slice(model, layer, u)].norm()) for u in range(layer.width)])


# ---------------------------------------------------------------- masks


def ones_masks(model: nn.Module) -> Masks:
    """All-ones masks for every parameter of the Linear/Conv2d/BatchNorm layers."""
    masks: Masks = {}
    for name, module in leaf_modules(model):
        if isinstance(module, _PRODUCERS + _NORMS):
            for pname, param in module.named_parameters():
                masks[f"{name}.{pname}"] = torch.ones_like(param.detach())
    return masks


def unit_masks(model: nn.Module, layers: Sequence[HiddenLayer], removed: Sequence[Sequence[int]]) -> Masks:
    """Masks that cut the listed units out: incoming weights, bias, BatchNorm affine, outgoing weights."""
    masks = ones_masks(model)
    for layer, units in zip(layers, removed):
        for unit in units:
            for key in (f"{layer.name}.weight", f"{layer.name}.bias", f"{layer.bn}.weight", f"{layer.bn}.bias"):
                if key in masks:
                    masks[key][unit] = 0
            masks[f"{layer.consumer}.weight"][outgoing_slice(model, layer, unit)] = 0
    return masks


def apply_masks(model: nn.Module, masks: Masks) -> nn.Module:
    """Zero the masked parameters in place (returns the model for chaining)."""
    params = dict(model.named_parameters())
    unknown = set(masks) - set(params)
    if unknown:
        raise KeyError(f"masks name parameters the model does not have: {sorted(unknown)}")
    with torch.no_grad():
        for name, mask in masks.items():
            params[name].mul_(mask.to(params[name].dtype))
    return model


# ---------------------------------------------------------------- selection helpers


def _check_sparsity(sparsity: float) -> float:
    if isinstance(sparsity, bool) or not isinstance(sparsity, Real) or not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be a number in [0, 1), got {sparsity!r}")
    return float(sparsity)


def _check_scope(scope: str) -> None:
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; expected one of {SCOPES}")


def count(sparsity: float, total: int) -> int:
    """How many of ``total`` items a sparsity removes: round half up, so 0.5 of 5 removes 3."""
    return int(math.floor(sparsity * total + 0.5))


def _smallest_units(scores: Sequence[np.ndarray], sparsity: float, scope: str) -> list[list[int]]:
    """Per layer, the units with the smallest scores; every layer keeps at least one unit."""
    if scope == "layerwise":
        return [sorted(np.argsort(s, kind="stable")[:min(count(sparsity, len(s)), len(s) - 1)].tolist())
                for s in scores]
    flat = [(float(v), layer, unit) for layer, s in enumerate(scores) for unit, v in enumerate(s)]
    budget = count(sparsity, len(flat))
    alive = [len(s) for s in scores]
    removed: list[list[int]] = [[] for _ in scores]
    for _, layer, unit in sorted(flat):
        if budget == 0:
            break
        if alive[layer] > 1:
            removed[layer].append(unit)
            alive[layer] -= 1
            budget -= 1
    return [sorted(r) for r in removed]


# ---------------------------------------------------------------- node and weight pruning


def node_prune(model: nn.Module, sparsity: float, scope: str = "layerwise") -> tuple[nn.Module, Masks]:
    """Remove the ``sparsity`` fraction of hidden units with the smallest incoming weight-row norm."""
    sparsity = _check_sparsity(sparsity)
    _check_scope(scope)
    layers = hidden_layers(model)
    removed = _smallest_units([incoming_norms(model, layer) for layer in layers], sparsity, scope)
    masks = unit_masks(model, layers, removed)
    return apply_masks(copy.deepcopy(model), masks), masks


def weight_tensors(model: nn.Module) -> list[str]:
    """Names of the weight tensors weight pruning may zero: every Linear/Conv2d weight."""
    return [f"{name}.weight" for name, m in leaf_modules(model) if isinstance(m, _PRODUCERS)]


def weight_prune(model: nn.Module, sparsity: float, scope: str = "layerwise") -> tuple[nn.Module, Masks]:
    """Zero the ``sparsity`` fraction of Linear/Conv2d weights with the smallest magnitude."""
    sparsity = _check_sparsity(sparsity)
    _check_scope(scope)
    params = dict(model.named_parameters())
    names = weight_tensors(model)
    masks = ones_masks(model)
    magnitudes = [params[n].detach().abs().reshape(-1).double().numpy() for n in names]
    if scope == "layerwise":
        for name, mag in zip(names, magnitudes):
            masks[name].view(-1)[np.argsort(mag, kind="stable")[:count(sparsity, mag.size)]] = 0
    else:
        flat = np.concatenate(magnitudes)
        chosen = np.zeros(flat.size, dtype=bool)
        chosen[np.argsort(flat, kind="stable")[:count(sparsity, flat.size)]] = True
        for name, part in zip(names, np.split(chosen, np.cumsum([m.size for m in magnitudes])[:-1])):
            masks[name].view(-1)[torch.from_numpy(part)] = 0
    return apply_masks(copy.deepcopy(model), masks), masks


# ---------------------------------------------------------------- spline pruning


@dataclass(frozen=True)
class Merge:
    """One spline-pruning step: ``removed`` joined the group of ``kept`` (fold: the scale folded, or None)."""

    layer: int
    removed: int
    kept: int
    similarity: float
    fold: float | None


@dataclass
class SplinePruneReport:
    """What spline pruning saw and did, per hidden layer (indices into ``layers``)."""

    layers: list[str]                 # module names of the hidden layers
    similarity: list[np.ndarray]      # (units, units) S per layer
    groups: list[list[list[int]]]     # per layer, groups of >= 2 units, kept unit first
    removed: list[list[int]]          # per layer, sorted
    merges: list[Merge]               # in the order they were made
    P: float | None
    sparsity: float                   # achieved: removed units / hidden units


def unit_similarity(z: torch.Tensor) -> np.ndarray:
    """Sign-agreement similarity S (see module docstring) between the units of one layer."""
    signs = (z > 0).transpose(0, 1).reshape(z.shape[1], -1).numpy()
    agree = 1.0 - hamming_fractions(signs)
    sim = np.maximum(agree, 1.0 - agree)
    boundary_free = signs.all(axis=1) | ~signs.any(axis=1)
    sim[boundary_free, :] = sim[:, boundary_free] = 0.5
    np.fill_diagonal(sim, 1.0)
    return sim


def default_probe(model: nn.Module) -> np.ndarray:
    """A 100 x 100 grid over [-3, 3]^2 for 2-input MLPs; other models need an explicit probe."""
    first = next(m for _, m in leaf_modules(model) if isinstance(m, _PRODUCERS))
    if not isinstance(first, nn.Linear) or first.in_features != 2:
        raise ValueError("spline pruning needs a probe (inputs of shape (n, ...)) for models without 2-D input")
    return grid_probe((-3.0, 3.0, -3.0, 3.0), 100)


def spline_prune(model: nn.Module, sparsity: float | None = None, P: float | None = None,
                 probe: np.ndarray | torch.Tensor | None = None, scope: str = "layerwise",
                 fold: bool = True, fold_tol: float = 0.05) -> tuple[nn.Module, Masks, SplinePruneReport]:
    """Remove units whose input-space boundaries nearly coincide with another unit's (see module docstring)."""
    if sparsity is None and P is None:
        raise ValueError("spline_prune needs a target sparsity, a similarity threshold P, or both")
    if sparsity is not None:
        sparsity = _check_sparsity(sparsity)
    if P is not None and not 0.5 <= P <= 1.0:
        raise ValueError(f"P must be in [0.5, 1] (S never goes below 0.5), got {P!r}")
    _check_scope(scope)
    layers = hidden_layers(model)
    acts = preactivations(model, default_probe(model) if probe is None else probe)
    z = [acts[layer.act_index] for layer in layers]
    sims = [unit_similarity(zl) for zl in z]
    budgets = _budgets(layers, sparsity, scope)
    merges = _greedy_merges(sims, [outgoing_norms(model, layer) for layer in layers], budgets, P)
    pruned = copy.deepcopy(model)
    merges = [_fold(pruned, layers[m.layer], z[m.layer], m, fold_tol) if fold else m for m in merges]
    removed = [sorted(m.removed for m in merges if m.layer == i) for i in range(len(layers))]
    masks = unit_masks(model, layers, removed)
    apply_masks(pruned, masks)
    total = sum(layer.width for layer in layers)
    report = SplinePruneReport([layer.name for layer in layers], sims, _groups(merges, len(layers)), removed,
                               merges, P, sum(map(len, removed)) / total)
    return pruned, masks, report


def _budgets(layers: Sequence[HiddenLayer], sparsity: float | None, scope: str) -> tuple[list[float], float]:
    """How many units may go: per layer and in total (inf where the scope sets no limit)."""
    if sparsity is None:
        return [math.inf] * len(layers), math.inf
    if scope == "layerwise":
        return [count(sparsity, layer.width) for layer in layers], math.inf
    return [math.inf] * len(layers), count(sparsity, sum(layer.width for layer in layers))


def _greedy_merges(sims: Sequence[np.ndarray], out_norms: Sequence[np.ndarray],
                   budgets: tuple[list[float], float], P: float | None) -> list[Merge]:
    """Merge surviving within-layer pairs by decreasing similarity until P or the budget stops it."""
    pairs = [(-float(s[i, j]), layer, i, j) for layer, s in enumerate(sims)
             for i, j in zip(*np.triu_indices(len(s), k=1))]
    alive = [np.ones(len(s), dtype=bool) for s in sims]
    per_layer, total = list(budgets[0]), budgets[1]
    merges: list[Merge] = []
    for neg_s, layer, i, j in sorted(pairs):
        if total == 0 or (P is not None and -neg_s < P):
            break
        if per_layer[layer] == 0 or not (alive[layer][i] and alive[layer][j]):
            continue
        per_layer[layer] -= 1
        total -= 1
        drop, keep = (j, i) if out_norms[layer][j] <= out_norms[layer][i] else (i, j)
        alive[layer][drop] = False
        merges.append(Merge(layer, int(drop), int(keep), -neg_s, None))
    return merges


def _fold(model: nn.Module, layer: HiddenLayer, z: torch.Tensor, merge: Merge, tol: float) -> Merge:
    """Hand a removed unit's outgoing weights to the kept one when z_removed ~= c z_kept with c > 0."""
    zr = z[:, merge.removed].reshape(-1).double()
    zk = z[:, merge.kept].reshape(-1).double()
    zk_sq, zr_norm = float(zk @ zk), float(zr.norm())
    if zk_sq == 0.0 or zr_norm == 0.0:
        return merge
    c = float(zr @ zk) / zk_sq
    if c <= 0 or float((zr - c * zk).norm()) > tol * zr_norm:
        return merge
    w = model.get_submodule(layer.consumer).weight
    with torch.no_grad():
        w[outgoing_slice(model, layer, merge.kept)] += c * w[outgoing_slice(model, layer, merge.removed)]
    return Merge(merge.layer, merge.removed, merge.kept, merge.similarity, c)


def _groups(merges: Sequence[Merge], n_layers: int) -> list[list[list[int]]]:
    """Follow the merges to the surviving unit of each group; kept unit first, the rest sorted."""
    parent: list[dict[int, int]] = [{} for _ in range(n_layers)]
    for m in merges:
        parent[m.layer][m.removed] = m.kept
    groups: list[list[list[int]]] = []
    for links in parent:
        members: dict[int, list[int]] = {}
        for unit in links:
            root = unit
            while root in links:
                root = links[root]
            members.setdefault(root, []).append(unit)
        groups.append([[root] + sorted(units) for root, units in sorted(members.items())])
    return groups


# ---------------------------------------------------------------- sparsity bookkeeping


def prune(model: nn.Module, method: str, sparsity: float | None, scope: str = "layerwise",
          **method_kw: Any) -> tuple[nn.Module, Masks, SplinePruneReport | None]:
    """Dispatch to node_prune / weight_prune / spline_prune by name (sparsity None: spline with P only)."""
    if method == "node":
        return (*node_prune(model, sparsity, scope, **method_kw), None)
    if method == "weight":
        return (*weight_prune(model, sparsity, scope, **method_kw), None)
    if method == "spline":
        return spline_prune(model, sparsity, scope=scope, **method_kw)
    raise ValueError(f"unknown pruning method {method!r}; expected one of {METHODS}")


def unit_sparsity(model: nn.Module, masks: Masks) -> float:
    """Fraction of hidden units whose incoming weights and bias are all masked."""
    layers = hidden_layers(model)
    dead = 0
    for layer in layers:
        rows = masks[f"{layer.name}.weight"].reshape(layer.width, -1).any(dim=1)
        bias = masks.get(f"{layer.name}.bias")
        alive = rows | bias.bool() if bias is not None else rows
        dead += int((~alive).sum())
    return dead / sum(layer.width for layer in layers)


def weight_sparsity(model: nn.Module, masks: Masks) -> float:
    """Fraction of Linear/Conv2d weights that are masked."""
    names = weight_tensors(model)
    zeros = sum(int((masks[n] == 0).sum()) for n in names)
    return zeros / sum(masks[n].numel() for n in names)


def achieved_sparsity(model: nn.Module, masks: Masks, method: str) -> float:
    """Sparsity in the method's own unit: weights for weight pruning, hidden units otherwise."""
    return weight_sparsity(model, masks) if method == "weight" else unit_sparsity(model, masks)


# ---------------------------------------------------------------- fine-tuning


@dataclass
class PruneResult:
    """A pruned network before and after fine-tuning, with its masks and scores."""

    method: str
    scope: str
    sparsity: float | None             # requested (None: spline pruning by threshold P only)
    achieved_sparsity: float
    masks: Masks
    pruned_model: nn.Module            # right after pruning, before any training
    model: nn.Module                   # after fine-tuning / retraining
    accuracy_pruned: float             # test metric of pruned_model (accuracy, or l2 error for regression)
    accuracy: float                    # test metric of model
    train_result: TrainResult
    report: SplinePruneReport | None = None
    retrained_from_init: bool = False


def reinitialise(model: nn.Module, init_state: dict[str, torch.Tensor], masks: Masks) -> nn.Module:
    """A copy of ``model`` reset to its original initial weights, keeping the pruning masks (lottery-style)."""
    reset = copy.deepcopy(model)
    reset.load_state_dict(init_state)
    return apply_masks(reset, masks)


def data_probe(model: nn.Module, data: Dataset) -> np.ndarray | torch.Tensor:
    """Where spline pruning looks by default: a 100 x 100 grid over the plotted bounds of 2-D data
    (the region the partition is drawn on), else the training inputs shaped for ``model``."""
    if data.bounds is not None and data.in_features == 2:
        return grid_probe(data.bounds, 100)
    return tensors(data, "train", model)[0]


def prune_and_finetune(model: nn.Module, data: Dataset, method: str, sparsity: float | None,
                       config: TrainConfig, *,
                       scope: str = "layerwise", init_state: dict[str, torch.Tensor] | None = None,
                       progress: Callable[[float, str], None] | None = None,
                       cancel: Callable[[], bool] | None = None, **method_kw: Any) -> PruneResult:
    """Prune a trained model, then fine-tune it (or retrain from ``init_state``) with the masks held at zero.

    ``init_state`` (e.g. ``train_result.snapshots[0].state``) reproduces the paper's X-shape protocol:
    the surviving weights restart from their original initial values. Spline pruning probes
    ``data_probe(model, data)`` unless a ``probe`` is given.
    """
    if method == "spline" and method_kw.get("probe") is None:
        method_kw["probe"] = data_probe(model, data)
    pruned, masks, report = prune(model, method, sparsity, scope, **method_kw)
    start = copy.deepcopy(pruned) if init_state is None else reinitialise(pruned, init_state, masks)
    result = fit(start, data, config, progress=progress, cancel=cancel, masks=masks)
    return PruneResult(method, scope, sparsity, achieved_sparsity(model, masks, method), masks, pruned,
                       result.model, evaluate(pruned, data), evaluate(result.model, data), result, report,
                       init_state is not None)


def sparsity_curve(model: nn.Module, data: Dataset, method: str, sparsities: Sequence[float],
                   config: TrainConfig, *,
                   scope: str = "layerwise", init_state: dict[str, torch.Tensor] | None = None,
                   **method_kw: Any) -> list[tuple[float, float]]:
    """(requested sparsity, test metric after fine-tuning) for each sparsity, each pruned from ``model``."""
    return [(float(s), prune_and_finetune(model, data, method, s, config, scope=scope, init_state=init_state,
                                          **method_kw).accuracy)
            for s in sparsities]

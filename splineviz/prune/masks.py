"""Pruning masks and the bookkeeping every method shares: how many to remove, and how sparse a net is.

Masks are ``{parameter name: 0/1 tensor}`` (same dtype and shape as the parameter) covering every Linear/Conv2d/
BatchNorm parameter; ``train.fit(masks=...)`` re-applies them after every optimiser step so pruned weights stay 0.
"""
from __future__ import annotations

import math
from numbers import Real
from typing import Sequence

import numpy as np
import torch
from torch import nn

from splineviz.probe import leaf_modules
from splineviz.prune.layers import NORMS, PRODUCERS, HiddenLayer, hidden_layers, outgoing_slice, weight_tensors

Masks = dict[str, torch.Tensor]
SCOPES = ("layerwise", "global")


def ones_masks(model: nn.Module) -> Masks:
    """All-ones masks for every parameter of the Linear/Conv2d/BatchNorm layers."""
    masks: Masks = {}
    for name, module in leaf_modules(model):
        if isinstance(module, PRODUCERS + NORMS):
            for pname, param in module.named_parameters():
                masks[f"{name}.{pname}"] = torch.ones_like(param.detach())
    return masks


def unit_masks(model: nn.Module, layers: Sequence[HiddenLayer], removed: Sequence[Sequence[int]],
               start: Masks | None = None) -> Masks:
    """Masks that cut the listed units out: incoming weights, bias, BatchNorm affine, outgoing weights.

    ``start`` (e.g. the masks of an earlier pruning step) is copied and cut further, never modified.
    """
    masks = ones_masks(model) if start is None else {k: v.clone() for k, v in start.items()}
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


def combine(first: Masks | None, second: Masks) -> Masks:
    """Masks cutting what either cuts (a later pruning step never revives a pruned weight)."""
    if not first:
        return dict(second)
    return {k: first[k] * second[k] if k in first else second[k] for k in {**first, **second}}


def check_sparsity(sparsity: float) -> float:
    if isinstance(sparsity, bool) or not isinstance(sparsity, Real) or not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be a number in [0, 1), got {sparsity!r}")
    return float(sparsity)


def check_scope(scope: str) -> None:
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; expected one of {SCOPES}")


def count(sparsity: float, total: int) -> int:
    """How many of ``total`` items a sparsity removes: round half up.

    Examples
    --------
    >>> count(0.5, 5), count(0.3, 5), count(0.25, 6)
    (3, 2, 2)
    """
    return int(math.floor(sparsity * total + 0.5))


def unit_budgets(widths: Sequence[int], sparsity: float, scope: str) -> list[int]:
    """Units to remove per layer for a unit-pruning method; every layer keeps at least one unit.

    Global scope only fixes the total (``count(sparsity, sum(widths))``); its split over layers is the method's
    choice, so the per-layer entries are the most each layer may lose.
    """
    if scope == "layerwise":
        return [min(count(sparsity, w), w - 1) for w in widths]
    return [w - 1 for w in widths]


def total_budget(widths: Sequence[int], sparsity: float, scope: str) -> int:
    """Units to remove in all: the layerwise sum, or ``count(sparsity, total)`` capped to keep a unit per layer."""
    if scope == "layerwise":
        return sum(unit_budgets(widths, sparsity, scope))
    return min(count(sparsity, sum(widths)), sum(widths) - len(widths))


def smallest_units(scores: Sequence[np.ndarray], sparsity: float, scope: str) -> list[list[int]]:
    """Per layer, the units with the smallest scores (ties: lower index first); each layer keeps a unit."""
    widths = [len(s) for s in scores]
    if scope == "layerwise":
        budgets = unit_budgets(widths, sparsity, scope)
        return [sorted(np.argsort(s, kind="stable")[:b].tolist()) for s, b in zip(scores, budgets)]
    budget = total_budget(widths, sparsity, scope)
    alive = list(widths)
    removed: list[list[int]] = [[] for _ in scores]
    for _, layer, unit in sorted((float(v), layer, unit) for layer, s in enumerate(scores) for unit, v in enumerate(s)):
        if budget == 0:
            break
        if alive[layer] > 1:
            removed[layer].append(unit)
            alive[layer] -= 1
            budget -= 1
    return [sorted(r) for r in removed]


def removed_units(model: nn.Module, masks: Masks) -> list[list[int]]:
    """Per hidden layer, the units whose incoming weights and bias are all masked."""
    out = []
    for layer in hidden_layers(model):
        alive = masks[f"{layer.name}.weight"].reshape(layer.width, -1).any(dim=1)
        bias = masks.get(f"{layer.name}.bias")
        if bias is not None:
            alive |= bias.bool()
        out.append(torch.nonzero(~alive).flatten().tolist())
    return out


def unit_sparsity(model: nn.Module, masks: Masks) -> float:
    """Fraction of hidden units whose incoming weights and bias are all masked."""
    widths = [layer.width for layer in hidden_layers(model)]
    return sum(map(len, removed_units(model, masks))) / sum(widths)


def weight_sparsity(model: nn.Module, masks: Masks) -> float:
    """Fraction of Linear/Conv2d weights that are masked."""
    names = weight_tensors(model)
    zeros = sum(int((masks[n] == 0).sum()) for n in names)
    return zeros / sum(masks[n].numel() for n in names)


def achieved_sparsity(model: nn.Module, masks: Masks, method: str) -> float:
    """Sparsity in the method's own unit: weights for weight pruning, hidden units otherwise."""
    return weight_sparsity(model, masks) if method == "weight" else unit_sparsity(model, masks)

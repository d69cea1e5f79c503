"""Random pruning: remove units chosen at random, the baseline any pruning criterion has to beat.

Units already pruned (all-zero rows) are taken first, so a pruning schedule never revives them.
"""
from __future__ import annotations

import copy

import numpy as np
from torch import nn

from splineviz.prune.layers import hidden_layers, silent_units
from splineviz.prune.masks import Masks, apply_masks, check_scope, check_sparsity, smallest_units, unit_masks


def random_prune(model: nn.Module, sparsity: float, scope: str = "layerwise", seed: int = 0) -> tuple[nn.Module, Masks]:
    """Remove a random ``sparsity`` fraction of hidden units (same counts as ``node_prune``), drawn from ``seed``.

    Examples
    --------
    >>> from splineviz.nets import mlp
    >>> from splineviz.prune import removed_units
    >>> model = mlp(2, (8, 4), 2)
    >>> _, masks = random_prune(model, 0.25, seed=1)
    >>> [len(units) for units in removed_units(model, masks)]
    [2, 1]
    """
    sparsity = check_sparsity(sparsity)
    check_scope(scope)
    layers = hidden_layers(model)
    rng = np.random.default_rng(seed)
    scores = [np.where(silent_units(model, layer), -1.0, rng.random(layer.width)) for layer in layers]
    removed = smallest_units(scores, sparsity, scope)
    masks = unit_masks(model, layers, removed)
    return apply_masks(copy.deepcopy(model), masks), masks

"""Node pruning: remove whole units, smallest incoming weight-row norm first (the paper's X-shape protocol).

Removing a unit zeroes its incoming row, bias and BatchNorm affine and its outgoing weights, so its subdivision line
disappears from the partition. Units already pruned (all-zero rows) have norm 0 and so count towards the target.
"""
from __future__ import annotations

import copy

from torch import nn

from splineviz.prune.layers import hidden_layers, incoming_norms
from splineviz.prune.masks import Masks, apply_masks, check_scope, check_sparsity, smallest_units, unit_masks


def node_prune(model: nn.Module, sparsity: float, scope: str = "layerwise") -> tuple[nn.Module, Masks]:
    """Remove the ``sparsity`` fraction of hidden units with the smallest incoming weight-row norm.

    ``scope="layerwise"`` removes ``count(sparsity, width)`` units of every hidden layer; ``"global"`` ranks the raw
    norms of all hidden layers together and removes ``count(sparsity, total)``. Every layer keeps at least one unit
    and the output layer is never touched. Returns a pruned copy and its masks.

    Examples
    --------
    >>> from splineviz.nets import mlp
    >>> from splineviz.prune import removed_units
    >>> model = mlp(2, (5,), 2, seed=0)
    >>> pruned, masks = node_prune(model, 0.5)           # 0.5 of 5 units rounds half up: 3 go
    >>> len(removed_units(model, masks)[0])
    3
    """
    sparsity = check_sparsity(sparsity)
    check_scope(scope)
    layers = hidden_layers(model)
    removed = smallest_units([incoming_norms(model, layer) for layer in layers], sparsity, scope)
    masks = unit_masks(model, layers, removed)
    return apply_masks(copy.deepcopy(model), masks), masks

"""Weight pruning: zero the individual weights of smallest magnitude (unstructured, as in magnitude pruning).

Every Linear/Conv2d weight tensor may lose weights, the output layer's included; biases are kept. In the partition a
first-layer unit that loses one of its two input weights draws an axis-aligned line.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from splineviz.prune.layers import weight_tensors
from splineviz.prune.masks import Masks, apply_masks, check_scope, check_sparsity, count, ones_masks


def weight_prune(model: nn.Module, sparsity: float, scope: str = "layerwise") -> tuple[nn.Module, Masks]:
    """Zero the ``sparsity`` fraction of Linear/Conv2d weights with the smallest magnitude.

    ``scope="layerwise"`` zeroes ``count(sparsity, n)`` weights of each tensor of ``n`` weights; ``"global"`` ranks
    all weights together. Ties go in index order. Returns a pruned copy and its masks.

    Examples
    --------
    >>> import torch
    >>> from splineviz.nets import mlp
    >>> model = mlp(2, (2,), 1, seed=0)
    >>> with torch.no_grad():
    ...     _ = model[0].weight.copy_(torch.tensor([[0.1, -2.0], [0.5, 0.3]]))
    >>> _, masks = weight_prune(model, 0.5)               # 2 of the 4 first-layer weights: 0.1 and 0.3
    >>> masks["0.weight"].tolist()
    [[0.0, 1.0], [1.0, 0.0]]
    """
    sparsity = check_sparsity(sparsity)
    check_scope(scope)
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

"""One entry point for every pruning method, by name (what the app and the schedules call)."""
from __future__ import annotations

from typing import Any

from torch import nn

from splineviz.prune.masks import Masks
from splineviz.prune.node import node_prune
from splineviz.prune.random_units import random_prune
from splineviz.prune.spline import SplinePruneReport, spline_prune
from splineviz.prune.weight import weight_prune

METHODS = ("node", "weight", "spline", "random")
UNIT_METHODS = ("node", "spline", "random")  # remove whole units; their sparsity counts units, not weights


def prune(model: nn.Module, method: str, sparsity: float | None, scope: str = "layerwise",
          **method_kw: Any) -> tuple[nn.Module, Masks, SplinePruneReport | None]:
    """Prune a copy of ``model`` with the named method; returns (pruned copy, masks, spline report or None).

    ``sparsity`` None is allowed for spline pruning by threshold ``P`` only. ``method_kw`` go to the method
    (``seed`` for random; ``P``, ``probe``, ``tolerance``, ``bounds`` for spline).

    Examples
    --------
    >>> from splineviz.nets import mlp
    >>> pruned, masks, report = prune(mlp(2, (4,), 2), "node", 0.5)
    >>> masks["0.bias"].tolist(), report
    ([0.0, 1.0, 0.0, 1.0], None)
    """
    if method == "node":
        return (*node_prune(model, sparsity, scope, **method_kw), None)
    if method == "weight":
        return (*weight_prune(model, sparsity, scope, **method_kw), None)
    if method == "random":
        return (*random_prune(model, sparsity, scope, **method_kw), None)
    if method == "spline":
        return spline_prune(model, sparsity, scope=scope, **method_kw)
    raise ValueError(f"unknown pruning method {method!r}; expected one of {METHODS}")

"""Prune a trained network, then fine-tune (or retrain from its initial weights) with the pruned weights held at 0."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from splineviz.data import Dataset
from splineviz.probe import grid_probe
from splineviz.prune.dispatch import prune
from splineviz.prune.masks import Masks, achieved_sparsity, apply_masks
from splineviz.prune.spline import SplinePruneReport
from splineviz.train import TrainConfig, TrainResult, evaluate, fit, metric_name, tensors


@dataclass
class PruneResult:
    """A pruned network before and after fine-tuning, with its masks and test scores.

    ``metric`` is the test accuracy for classification and the root-mean-square error for regression;
    ``metric_name`` says which ("accuracy" or "rmse").
    """

    method: str
    scope: str
    sparsity: float | None             # requested (None: spline pruning by threshold P only)
    achieved_sparsity: float
    masks: Masks
    pruned_model: nn.Module            # right after pruning, before any training
    model: nn.Module                   # after fine-tuning / retraining
    metric_name: str                   # "accuracy" or "rmse"
    metric_pruned: float               # test metric of pruned_model
    metric: float                      # test metric of model
    train_result: TrainResult
    report: SplinePruneReport | None = None
    retrained_from_init: bool = False

    @property
    def accuracy(self) -> float:
        """Test accuracy after fine-tuning (classification only; regression has ``metric`` = rmse)."""
        return self._accuracy(self.metric)

    @property
    def accuracy_pruned(self) -> float:
        """Test accuracy right after pruning (classification only)."""
        return self._accuracy(self.metric_pruned)

    def _accuracy(self, value: float) -> float:
        if self.metric_name != "accuracy":
            raise AttributeError(f"a regression result has no accuracy; its metric is {self.metric_name}")
        return value


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

    Examples
    --------
    >>> from splineviz.data import make_dataset
    >>> from splineviz.nets import mlp
    >>> data = make_dataset("xshape", n=200)
    >>> result = prune_and_finetune(mlp(2, (8,), 2), data, "node", 0.5, TrainConfig(epochs=2))
    >>> result.metric_name, result.achieved_sparsity
    ('accuracy', 0.5)
    """
    if method == "spline" and method_kw.get("probe") is None:
        method_kw["probe"] = data_probe(model, data)
    pruned, masks, report = prune(model, method, sparsity, scope, **method_kw)
    start = copy.deepcopy(pruned) if init_state is None else reinitialise(pruned, init_state, masks)
    result = fit(start, data, config, progress=progress, cancel=cancel, masks=masks)
    return PruneResult(method, scope, sparsity, achieved_sparsity(model, masks, method), masks, pruned,
                       result.model, metric_name(data.task), evaluate(pruned, data), evaluate(result.model, data),
                       result, report, init_state is not None)


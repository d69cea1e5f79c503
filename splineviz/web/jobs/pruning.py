"""Pruning work: one-shot views (fast), fine-tuning and the accuracy-vs-sparsity sweep (background jobs)."""
from __future__ import annotations

from typing import Any, Sequence

from splineviz.data import Dataset
from splineviz.earlybird import grid_probe
from splineviz.prune import METHODS, achieved_sparsity, prune, prune_and_finetune
from splineviz.web.jobs import Cancel, Progress, quiet
from splineviz.web.state import Run, accuracy, config_dataset, train_config
from splineviz.web.tracing import trace_frame



def _prune_kw(method: str, data: Dataset) -> dict[str, Any]:
    return {"probe": grid_probe(data.bounds, 100)} if method == "spline" else {}


def prune_view(run: Run, method: str, sparsity: float, scope: str = "layerwise") -> dict[str, Any]:
    """Before/after partitions and accuracies of one-shot pruning at ``sparsity`` (fast: no training)."""
    model = run.model()
    data = config_dataset(run.config)
    pruned, masks, _ = prune(model, method, sparsity, scope, **_prune_kw(method, data))
    return {"before": trace_frame(model, data.bounds), "after": trace_frame(pruned, data.bounds),
            "acc_before": accuracy(model, data), "acc_after": accuracy(pruned, data),
            "achieved": achieved_sparsity(model, masks, method)}


def finetune(run: Run, method: str, sparsity: float, epochs: int, scope: str = "layerwise",
             progress: Progress = quiet, cancel: Cancel | None = None) -> dict[str, Any]:
    """Prune, then fine-tune with the pruned weights held at zero: the partitions before and after."""
    model = run.model()
    data = config_dataset(run.config)
    before = trace_frame(model, data.bounds, cancel=cancel)
    result = prune_and_finetune(model, data, method, sparsity, train_config(run.config, epochs), scope=scope,
                                progress=progress, cancel=cancel, **_prune_kw(method, data))
    return {"before": before, "after": trace_frame(result.model, data.bounds, cancel=cancel),
            "acc_after": result.accuracy, "acc_pruned": result.accuracy_pruned, "achieved": result.achieved_sparsity}


def sparsity_sweep(run: Run, sparsities: Sequence[float], epochs: int, methods: Sequence[str] = METHODS,
                   scope: str = "layerwise", progress: Progress = quiet,
                   cancel: Cancel | None = None) -> dict[str, list[tuple[float, float]]]:
    """Test accuracy against sparsity per method, each point pruned from the run's model then fine-tuned."""
    model = run.model()
    data = config_dataset(run.config)
    curves: dict[str, list[tuple[float, float]]] = {m: [] for m in methods}
    total = len(methods) * len(sparsities)
    for i, (method, sparsity) in enumerate((m, s) for m in methods for s in sparsities):
        progress(i / total, f"{method} pruning at {100 * sparsity:.0f} %")
        result = prune_and_finetune(model, data, method, sparsity, train_config(run.config, epochs), scope=scope,
                                    cancel=cancel, **_prune_kw(method, data))
        curves[method].append((float(sparsity), float(result.accuracy)))
    progress(1.0, "done")
    return curves


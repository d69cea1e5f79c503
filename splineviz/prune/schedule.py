"""Pruning while training: one-shot at an epoch, gradual (Zhu & Gupta's cubic schedule), or at the early-bird ticket.

``train_with_schedule`` trains one epoch at a time (``train.fit`` resumed, so the run equals one long run) and prunes
after the epochs the schedule names, with any method of ``splineviz.prune`` (node, weight, random, spline),
layerwise or global. Each pruning step targets the schedule's *cumulative* sparsity: what earlier steps pruned stays
pruned (masks only ever cut more) and counts towards the target. After a step the masks are re-applied after every
optimiser step, so pruned weights stay zero to the end.

Every snapshot carries the masks in force and the sparsity reached (in the method's unit: weights for weight
pruning, hidden units otherwise); the snapshot taken right after a pruning step also carries its ``PruneEvent``
(epoch, method, target, which units or weights went). ``on_snapshot(snapshot, run)`` sees each snapshot as it is
produced, so a page can stream the run; ``cancel()`` stops it with ``Cancelled``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Union

import numpy as np
import torch
from torch import nn

from splineviz.data import Dataset
from splineviz.earlybird import PAPER_RULE, EarlyBirdRule, TicketWatch
from splineviz.partition.errors import Cancelled
from splineviz.prune.dispatch import METHODS, UNIT_METHODS, prune
from splineviz.prune.finetune import data_probe
from splineviz.prune.layers import hidden_layers, weight_tensors
from splineviz.prune.masks import Masks, achieved_sparsity, check_scope, check_sparsity, combine, removed_units
from splineviz.train import Snapshot, TrainConfig, TrainResult, fit, snapshot


@dataclass(frozen=True)
class OneShot:
    """Prune once, to ``sparsity``, after ``epoch`` epochs (0: before training).

    Examples
    --------
    >>> OneShot(epoch=5, sparsity=0.5).targets(epochs=20)
    {5: 0.5}
    """

    epoch: int
    sparsity: float

    def targets(self, epochs: int) -> dict[int, float]:
        """Epoch -> cumulative sparsity to reach there."""
        _check_epoch(self.epoch, epochs)
        return {self.epoch: check_sparsity(self.sparsity)}


@dataclass(frozen=True)
class Gradual:
    """Zhu & Gupta (2017): prune every ``every`` epochs from ``start`` to ``end``, to the cubic target

        s(t) = s_f + (s_i - s_f) (1 - (t - start) / (end - start))^3,

    which prunes fast while the network is redundant and slowly as it approaches ``final_sparsity`` (s_f).

    Examples
    --------
    >>> {t: round(s, 4) for t, s in Gradual(0.8, start=1, end=4).targets(epochs=10).items()}
    {1: 0.0, 2: 0.563, 3: 0.7704, 4: 0.8}
    """

    final_sparsity: float
    start: int
    end: int
    every: int = 1
    initial_sparsity: float = 0.0

    def sparsity_at(self, epoch: int) -> float:
        """The cubic target at ``epoch`` (s_i before ``start``, s_f from ``end`` on)."""
        t = min(max(epoch, self.start), self.end)
        frac = (t - self.start) / (self.end - self.start) if self.end > self.start else 1.0
        return self.final_sparsity + (self.initial_sparsity - self.final_sparsity) * (1.0 - frac) ** 3

    def targets(self, epochs: int) -> dict[int, float]:
        check_sparsity(self.final_sparsity)
        check_sparsity(self.initial_sparsity)
        _check_epoch(self.start, epochs)
        _check_epoch(self.end, epochs)
        if self.every < 1 or self.end < self.start or (self.end - self.start) % self.every:
            raise ValueError(f"gradual pruning needs start <= end, every >= 1 and end - start a multiple of every; "
                             f"got start={self.start}, end={self.end}, every={self.every}")
        return {t: self.sparsity_at(t) for t in range(self.start, self.end + 1, self.every)}


@dataclass(frozen=True)
class EarlyBirdSchedule:
    """Train until the spline early-bird ``rule`` fires on ``probe`` (default: ``data_probe``), prune to
    ``sparsity`` there, then train the pruned network for the remaining epochs. No ticket: never pruned."""

    sparsity: float
    rule: EarlyBirdRule = PAPER_RULE
    probe: Any = None

    def targets(self, epochs: int) -> dict[int, float]:
        check_sparsity(self.sparsity)
        return {}  # decided while training


Schedule = Union[OneShot, Gradual, EarlyBirdSchedule]


@dataclass
class PruneEvent:
    """One pruning step of a schedule: when, how, to what sparsity, and what went."""

    epoch: int
    step: int
    method: str
    scope: str
    target: float                              # cumulative sparsity asked for
    achieved: float                            # reached, in the method's unit
    removed_units: dict[str, list[int]]        # hidden layer name -> units this step removed (unit methods)
    removed_weights: dict[str, list[int]]      # weight tensor -> flat indices this step zeroed (weight pruning)
    report: Any = None                         # SplinePruneReport for spline pruning


@dataclass
class ScheduledRun:
    """A training run with pruning, filled in as it proceeds (``on_snapshot`` sees it grow)."""

    method: str
    scope: str
    schedule: Schedule
    snapshots: list[Snapshot] = field(default_factory=list)
    events: list[PruneEvent] = field(default_factory=list)
    masks: Masks | None = None
    model: nn.Module | None = None
    ticket: int | None = None                  # early-bird: epoch the rule fired
    window_max: list[float] = field(default_factory=list)  # early-bird: per epoch, until the ticket


def train_with_schedule(model: nn.Module, data: Dataset, config: TrainConfig, schedule: Schedule,
                        method: str = "node", scope: str = "layerwise", *,
                        on_snapshot: Callable[[Snapshot, ScheduledRun], None] | None = None,
                        progress: Callable[[float, str], None] | None = None,
                        cancel: Callable[[], bool] | None = None, **method_kw: Any) -> ScheduledRun:
    """Train ``model`` in place for ``config.epochs`` epochs, pruning as ``schedule`` says (module docstring).

    ``method_kw`` go to the pruning method (spline pruning probes ``data_probe(model, data)`` by default).

    Examples
    --------
    >>> from splineviz.data import make_dataset
    >>> from splineviz.nets import mlp
    >>> run = train_with_schedule(mlp(2, (10,), 2), make_dataset("moons", n=100), TrainConfig(epochs=4),
    ...                           Gradual(0.8, start=1, end=4), method="node")
    >>> [(e.epoch, e.achieved) for e in run.events]
    [(2, 0.6), (3, 0.8)]
    >>> [(s.epoch, s.sparsity) for s in run.snapshots]
    [(0, 0.0), (1, 0.0), (2, 0.0), (2, 0.6), (3, 0.6), (3, 0.8), (4, 0.8)]
    """
    if method not in METHODS:
        raise ValueError(f"unknown pruning method {method!r}; expected one of {METHODS}")
    check_scope(scope)
    targets = schedule.targets(config.epochs)
    run = ScheduledRun(method, scope, schedule, model=model)
    if method == "spline" and method_kw.get("probe") is None:
        method_kw["probe"] = data_probe(model, data)
    watch = None
    if isinstance(schedule, EarlyBirdSchedule):
        watch = TicketWatch(data_probe(model, data) if schedule.probe is None else schedule.probe, schedule.rule)

    def record(snap: Snapshot) -> None:
        snap.masks = run.masks
        snap.sparsity = achieved_sparsity(model, run.masks, method) if run.masks else 0.0
        run.snapshots.append(snap)
        if on_snapshot is not None:
            on_snapshot(snap, run)

    result: TrainResult | None = None
    for epoch in range(config.epochs + 1):
        if cancel is not None and cancel():
            raise Cancelled(f"scheduled training cancelled after {epoch} epochs")
        step = dataclasses.replace(config, epochs=0 if epoch == 0 else 1)
        result = fit(model, data, step, cancel=cancel, masks=run.masks, resume_from=result, on_snapshot=record)
        target = targets.get(epoch)
        if watch is not None and run.ticket is None:
            run.window_max.append(watch.observe(model))
            if watch.ticket is not None:
                run.ticket, target = epoch, schedule.sparsity
        if target is not None:
            result = _prune_step(model, data, run, result, epoch, target, method_kw, record)
        if progress is not None:
            progress(epoch / max(config.epochs, 1), f"epoch {epoch}, sparsity {run.snapshots[-1].sparsity:.0%}")
    model.eval()
    return run


def _prune_step(model: nn.Module, data: Dataset, run: ScheduledRun, result: TrainResult, epoch: int, target: float,
                method_kw: dict[str, Any], record: Callable[[Snapshot], None]) -> TrainResult:
    """Prune the live model to ``target`` (masks combined with the earlier ones), record the event and its snapshot.

    A step that would cut nothing new (the target is already met) is no event.
    """
    before = run.masks
    pruned, masks, report = prune(model, run.method, target, run.scope, **method_kw)
    masks = combine(before, masks)
    if _zeros(masks) == _zeros(before):
        return result
    with torch.no_grad():
        model.load_state_dict(pruned.state_dict())
    run.masks = masks
    last = result.snapshots[-1]
    event = PruneEvent(epoch, last.step, run.method, run.scope, target, achieved_sparsity(model, masks, run.method),
                       *_what_went(model, before, masks, run.method), report)
    run.events.append(event)
    snap = snapshot(model, data, epoch, last.step)
    snap.event = event
    record(snap)
    return dataclasses.replace(result, snapshots=[*result.snapshots, snap], masks=masks)


def _what_went(model: nn.Module, before: Masks | None, after: Masks,
               method: str) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """Units (unit methods) or flat weight indices (weight pruning) that ``after`` cuts and ``before`` did not."""
    if method in UNIT_METHODS:
        old = removed_units(model, before) if before else [[] for _ in hidden_layers(model)]
        return {layer.name: sorted(set(new) - set(prev)) for layer, new, prev in
                zip(hidden_layers(model), removed_units(model, after), old)}, {}
    went = {}
    for name in weight_tensors(model):
        cut = after[name].reshape(-1) == 0
        if before:
            cut &= before[name].reshape(-1) != 0
        went[name] = np.flatnonzero(cut.numpy()).tolist()
    return {}, went


def _zeros(masks: Masks | None) -> int:
    return sum(int((m == 0).sum()) for m in masks.values()) if masks else 0


def _check_epoch(epoch: int, epochs: int) -> None:
    if int(epoch) != epoch or not 0 <= epoch <= epochs:
        raise ValueError(f"pruning epoch {epoch} is outside the run's 0..{epochs} epochs")

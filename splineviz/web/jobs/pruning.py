"""Pruning work: one-shot views (fast), fine-tuning, the accuracy-vs-sparsity sweep, and pruning schedules run
while training, streamed frame by frame (background jobs)."""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Sequence

import numpy as np

from splineviz.data import Dataset
from splineviz.earlybird import PAPER_RULE, EarlyBirdRule, grid_probe
from splineviz.figures import side_by_side_layout
from splineviz.prune import (METHODS, DecisionChange, EarlyBirdSchedule, Gradual, OneShot, ScheduledRun,
                             achieved_sparsity, hidden_layers, prune, prune_and_finetune, train_with_schedule)
from splineviz.prune.schedule import Schedule
from splineviz.train import Snapshot
from splineviz.web.jobs import Cancel, Progress, quiet
from splineviz.web.jobs.playground import frame_stride
from splineviz.web.params import LIMITS
from splineviz.web.state import Run, accuracy, build, config_dataset, train_config
from splineviz.web.tracing import AppFrame, snapshot_stats, trace_frame


PROBE_SIDE = 100  # the early-bird rule, spline pruning and the decision change look at a 100 x 100 grid


def _prune_kw(method: str, probe: np.ndarray) -> dict[str, Any]:
    """What a method needs besides the model: spline pruning compares units on the probe."""
    return {"probe": probe} if method == "spline" else {}


def prune_view(run: Run, method: str, sparsity: float, scope: str = "layerwise") -> dict[str, Any]:
    """Before/after partitions and accuracies of one-shot pruning at ``sparsity`` (fast: no training), the exact
    share of the box whose class changed, and for spline pruning the groups of similar units it merged (Fig. 4:
    per layer, numbered from 1, the kept unit first)."""
    model = run.model()
    data = config_dataset(run.config)
    probe = grid_probe(data.bounds, PROBE_SIDE)
    pruned, masks, report = prune(model, method, sparsity, scope, **_prune_kw(method, probe))
    change = DecisionChange(model, probe, bounds=data.bounds)(pruned)
    groups = [[[u + 1 for u in group] for group in layer] for layer in report.groups] if report is not None else None
    return {"before": trace_frame(model, data.bounds), "after": trace_frame(pruned, data.bounds),
            "acc_before": accuracy(model, data), "acc_after": accuracy(pruned, data),
            "achieved": achieved_sparsity(model, masks, method), "change": change, "groups": groups}


def finetune(run: Run, method: str, sparsity: float, epochs: int, scope: str = "layerwise",
             progress: Progress = quiet, cancel: Cancel | None = None) -> dict[str, Any]:
    """Prune, then fine-tune with the pruned weights held at zero: the partitions before and after."""
    model = run.model()
    data = config_dataset(run.config)
    before = trace_frame(model, data.bounds, cancel=cancel)
    result = prune_and_finetune(model, data, method, sparsity, train_config(run.config, epochs), scope=scope,
                                progress=progress, cancel=cancel,
                                **_prune_kw(method, grid_probe(data.bounds, PROBE_SIDE)))
    return {"before": before, "after": trace_frame(result.model, data.bounds, cancel=cancel),
            "acc_after": result.accuracy, "acc_pruned": result.accuracy_pruned, "achieved": result.achieved_sparsity}


def sparsity_sweep(run: Run, sparsities: Sequence[float], epochs: int, methods: Sequence[str] = METHODS,
                   scope: str = "layerwise", progress: Progress = quiet,
                   cancel: Cancel | None = None) -> dict[str, list[tuple[float, float]]]:
    """Test accuracy against sparsity per method, each point pruned from the run's model then fine-tuned."""
    model = run.model()
    data = config_dataset(run.config)
    probe = grid_probe(data.bounds, PROBE_SIDE)
    curves: dict[str, list[tuple[float, float]]] = {m: [] for m in methods}
    total = len(methods) * len(sparsities)
    for i, (method, sparsity) in enumerate((m, s) for m in methods for s in sparsities):
        progress(i / total, f"{method} pruning at {100 * sparsity:.0f} %")
        result = prune_and_finetune(model, data, method, sparsity, train_config(run.config, epochs), scope=scope,
                                    cancel=cancel, **_prune_kw(method, probe))
        curves[method].append((float(sparsity), float(result.accuracy)))
    progress(1.0, "done")
    return curves


# -- pruning while training (issue 16): a schedule run as one job, its frames streamed as they are traced ------------
TAIL = 3  # frames each streamed payload repeats: the page polls every 0.3 s and may miss one


@dataclass(frozen=True)
class ScheduleSpec:
    """A pruning schedule as the page's controls choose it (cleaned values; sparsity and threshold as fractions)."""

    kind: str = "gradual"
    method: str = "node"
    scope: str = "layerwise"
    sparsity: float = 0.5
    epochs: int = 40
    at: int = 10                 # one-shot: the epoch
    start: int = 5               # gradual: first and last pruning epochs, pruning every `every` epochs
    end: int = 25
    every: int = 5
    threshold: float = PAPER_RULE.threshold  # early-bird rule
    window: int = PAPER_RULE.window

    def schedule(self, probe: np.ndarray) -> Schedule:
        """The library's schedule; epochs outside the run are pulled inside it and a gradual ``end`` is moved
        down to the last pruning step ``every`` allows, so that any choice of the controls runs."""
        if self.kind == "oneshot":
            return OneShot(min(self.at, self.epochs), self.sparsity)
        if self.kind == "earlybird":
            return EarlyBirdSchedule(self.sparsity, EarlyBirdRule(self.threshold, self.window), probe)
        start = min(self.start, self.epochs)
        end = min(max(self.end, start), self.epochs)
        return Gradual(self.sparsity, start, start + self.every * ((end - start) // self.every), self.every)

    @property
    def label(self) -> str:
        """In words, for panel titles: "node pruning gradual to 50 %"."""
        when = {"oneshot": f"one-shot at epoch {min(self.at, self.epochs)}", "earlybird": "at the early-bird ticket",
                "gradual": "gradual"}[self.kind]
        return f"{self.method} pruning {when} to {100 * self.sparsity:.0f} %"


class Recorder:
    """What the page receives of a scheduled run, filled in snapshot by snapshot: frames (every ``stride``-th
    epoch, fewer if the first frame is so large that the run's frames would pass ``LIMITS.run_frame_bytes``, and
    both sides of every pruning event), every snapshot's numbers, the events with their decision
    change, and the ticket. ``payload()`` is the page's JSON (``web.pages.pruning``)."""

    def __init__(self, spec: ScheduleSpec, data: Dataset, arch: dict[str, Any], probe: np.ndarray,
                 cancel: Cancel | None = None) -> None:
        self.spec, self.data, self.arch, self.probe, self.cancel = spec, data, arch, probe, cancel
        self.stride = frame_stride(spec.epochs)
        self.frames: list[AppFrame] = []
        self.history: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.ticket: int | None = None
        self._traced: dict[int, int] = {}  # snapshot position -> frame index

    def _frame(self, position: int, live: ScheduledRun) -> int:
        """Trace the snapshot at ``position`` (from its stored weights) once; its frame index."""
        if position not in self._traced:
            snap = live.snapshots[position]
            model = build(self.arch)
            model.load_state_dict(snap.state)
            frame = trace_frame(model.eval(), self.data.bounds, cancel=self.cancel,
                                **snapshot_stats(snap), sparsity=snap.sparsity, position=position)
            self._traced[position] = len(self.frames)
            self.frames.append(frame)
            if len(self.frames) == 1:  # the first frame's size says how many a run can keep
                size = len(json.dumps(frame))
                self.stride = max(self.stride, math.ceil(self.spec.epochs * size / LIMITS.run_frame_bytes))
            self.history[position]["n_regions"] = frame["n_regions"]
        return self._traced[position]

    def observe(self, snap: Snapshot, live: ScheduledRun) -> bool:
        """Record a new snapshot (``train_with_schedule``'s ``on_snapshot``); True when it got a frame."""
        position = len(live.snapshots) - 1
        self.history.append({"epoch": snap.epoch, "loss": snap.train_loss, "train_metric": snap.train_metric,
                             "test_metric": snap.test_metric, "sparsity": snap.sparsity, "n_regions": None,
                             "event": snap.event is not None})
        self.ticket = live.ticket
        if snap.event is None:
            if snap.epoch % self.stride and snap.epoch != self.spec.epochs:
                return False
            self._frame(position, live)
            return True
        before = self._frame(position - 1, live)  # the partition the event cut from
        after = self._frame(position, live)
        self.events.append(self._event(snap, live.snapshots[position - 1], before, after))
        return True

    def _event(self, snap: Snapshot, previous: Snapshot, before: int, after: int) -> dict[str, Any]:
        """An event for the page: when, how much, which units went (per hidden layer, counted from 0), and the
        exact fraction of the drawn box whose predicted class changed (``DecisionChange``)."""
        event = snap.event
        reference, pruned = build(self.arch), build(self.arch)
        reference.load_state_dict(previous.state)
        pruned.load_state_dict(snap.state)
        change = None
        if self.data.task == "classification":
            change = DecisionChange(reference.eval(), self.probe, self.data.bounds, "area")(pruned.eval())
        layers = [layer.name for layer in hidden_layers(reference)]
        return {"epoch": event.epoch, "before": before, "after": after, "target": event.target,
                "achieved": event.achieved, "change": change, "ticket": event.epoch == self.ticket,
                "removed": [event.removed_units.get(name, []) for name in layers],
                "weights": sum(len(w) for w in event.removed_weights.values())}

    def payload(self, frames: Sequence[int] | None = None) -> dict[str, Any]:
        """The run so far; ``frames``: only these frame indices (a streamed payload), else all."""
        chosen = range(len(self.frames)) if frames is None else frames
        # copies: a streamed payload is re-sent by the job's heartbeat thread while this run goes on
        return {"label": self.spec.label, "spec": asdict(self.spec), "frames": {i: self.frames[i] for i in chosen},
                "n_frames": len(self.frames), "history": [dict(h) for h in self.history],
                "events": list(self.events), "ticket": self.ticket}


def scheduled_run(run: Run, specs: Sequence[ScheduleSpec], progress: Progress = quiet, cancel: Cancel | None = None,
                  stream: Callable[[list[dict[str, Any]]], None] | None = None,
                  recorder: type[Recorder] = Recorder) -> list[dict[str, Any]]:
    """Train ``run``'s architecture on its data from its initial weights under each schedule of ``specs`` (one,
    or two to compare), pruning as they say; every run's payload (``Recorder.payload``).

    Each run starts from the same initial weights (the run's seed), so two specs compare methods or schedules on
    the same net. ``stream(payloads)`` sees the runs so far after every new frame, each carrying its newest
    ``TAIL`` frames only.
    """
    data = config_dataset(run.config)
    probe = grid_probe(data.bounds, PROBE_SIDE)
    done: list[Recorder] = []
    for k, spec in enumerate(specs):
        rec = recorder(spec, data, run.arch, probe, cancel)
        share = _share(progress, k, len(specs))

        def seen(snap: Snapshot, live: ScheduledRun, rec: Recorder = rec, share: Progress = share) -> None:
            if rec.observe(snap, live) and stream is not None:
                tail = range(max(0, len(rec.frames) - TAIL), len(rec.frames))
                stream([r.payload([]) for r in done] + [rec.payload(tail)])
            share(snap.epoch / max(spec.epochs, 1), f"{spec.method} pruning: epoch {snap.epoch} of {spec.epochs}, "
                                                    f"sparsity {100 * (snap.sparsity or 0):.0f} %")

        train_with_schedule(build(run.arch), data, train_config(run.config, spec.epochs), spec.schedule(probe),
                            spec.method, spec.scope, on_snapshot=seen, cancel=cancel, **_prune_kw(spec.method, probe))
        done.append(rec)
    progress(1.0, "done")
    return [r.payload() for r in done]


def _share(progress: Progress, k: int, n: int) -> Progress:
    """The progress of part ``k`` of ``n`` equal parts of a job."""
    return lambda fraction, message: progress((k + fraction) / n, message)


def compare_specs(spec: ScheduleSpec, compare: str) -> list[ScheduleSpec]:
    """``spec``, and beside it the same run under another method (``"method:spline"``) or schedule
    (``"schedule:oneshot"``); one spec when ``compare`` is ``"none"`` or names what ``spec`` already is."""
    field_name, _, value = compare.partition(":")
    key = {"method": "method", "schedule": "kind"}.get(field_name)
    if key is None or getattr(spec, key) == value:
        return [spec]
    return [spec, replace(spec, **{key: value})]


def animation_store(run: Run, runs: Sequence[dict[str, Any]], token: str) -> dict[str, Any]:
    """What a page's animation store holds: the runs (``Recorder.payload``) and one panel per run
    (``figures.side_by_side_layout``), with the export's title and number of classes; ``token`` names the job,
    so that its streamed payloads and its result are recognised as one run."""
    bounds = config_dataset(run.config).bounds
    return {"token": token, "runs": list(runs), "title": run.title, "classes": run.arch.get("out_features", 2),
            "layout": side_by_side_layout([bounds] * len(runs), [r["label"] for r in runs])}

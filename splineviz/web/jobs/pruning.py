"""Pruning work: one-shot views (fast), fine-tuning, the accuracy-vs-sparsity sweep, and pruning schedules run
while training, streamed frame by frame (background jobs)."""
from __future__ import annotations

import functools
import json
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Sequence

import numpy as np
from torch import nn

from splineviz.data import Dataset
from splineviz.earlybird import PAPER_RULE, EarlyBirdRule, grid_probe
from splineviz.figures import side_by_side_layout
from splineviz.partition import Cancelled, Partition, PartitionBudgetError
from splineviz.prune import (METHODS, DecisionChange, EarlyBirdSchedule, Gradual, OneShot, ScheduledRun,
                             achieved_sparsity, changed_area, hidden_layers, prune, prune_and_finetune,
                             train_with_schedule)
from splineviz.prune.schedule import Schedule
from splineviz.train import Snapshot, fit
from splineviz.web.jobs import Cancel, Progress, quiet
from splineviz.web.jobs.playground import duration, frame_mib, frame_stride
from splineviz.web.params import LIMITS, Limits
from splineviz.web.state import PlaygroundConfig, Run, accuracy, build, config_dataset, train_config
from splineviz.web.tracing import AppFrame, snapshot_stats, trace_frame, traced_frame


PROBE_SIDE = 100  # the early-bird rule, spline pruning and the decision change look at a 100 x 100 grid
# spline pruning's tolerance in a preview and a run: the share of the probe grid whose class changed. The exact area
# traces the whole net once per merge, minutes per step at 6 x 64 (bench/pruning_anim.py); each step's change
# shown on the page stays exact (prune.changed_area, DecisionChange)
GUARD = "probe"


def _prune_kw(method: str, probe: np.ndarray, guard: str | None = None) -> dict[str, Any]:
    """What a method needs besides the model: spline pruning compares units on the probe, and ``guard`` is the
    measure its tolerance checks each merge with (default: the exact area, which traces the net once per merge)."""
    if method != "spline":
        return {}
    return {"probe": probe} if guard is None else {"probe": probe, "measure": guard}


def prune_view(run: Run, method: str, sparsity: float, scope: str = "layerwise") -> dict[str, Any]:
    """Before/after partitions and accuracies of one-shot pruning at ``sparsity`` (fast: no training), the exact
    share of the box whose class changed, and for spline pruning the groups of similar units it merged (Fig. 4:
    per layer, numbered from 1, the kept unit first). Spline pruning's tolerance is checked on the probe grid, as
    in a run (``GUARD``), so that the preview merges what a run's step would: the exact area traces the net once per
    merge (47 s for one 6 x 64 preview, which runs on every move of the slider); the change shown stays exact."""
    model = run.model()
    data = config_dataset(run.config)
    probe = grid_probe(data.bounds, PROBE_SIDE)
    pruned, masks, report = prune(model, method, sparsity, scope, **_prune_kw(method, probe, GUARD))
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


# -- pruning while training (issue 16): a schedule run as one job, its frames kept as they are traced ---------------
INLINE_BYTES = 4 * 2**20  # a finished run's frames ride in its result up to this; past it the page fetches each
STREAM_RESEND_S = 2.0  # a streamed payload rides along with the job's progress this long, then None (runner.stream)
Keep = Callable[[int, int, str], None]  # (run, frame index, frame JSON): where a job puts its frames (framestore)


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
    epoch, fewer when the frames are so large that the run's would pass ``frame_budget`` bytes, by default
    ``LIMITS.run_frame_bytes``, and both sides of every pruning event), every snapshot's numbers, the events with
    their decision change, and the ticket. ``payload()`` is the page's JSON (``web.pages.pruning``); ``keep(index,
    json)`` receives each frame as it is traced."""

    def __init__(self, spec: ScheduleSpec, data: Dataset, arch: dict[str, Any], probe: np.ndarray,
                 cancel: Cancel | None = None, frame_budget: int | None = None,
                 keep: Callable[[int, str], None] | None = None) -> None:
        self.spec, self.data, self.arch, self.probe, self.cancel, self.keep = spec, data, arch, probe, cancel, keep
        self.frame_budget = LIMITS.run_frame_bytes if frame_budget is None else frame_budget
        self.stride = frame_stride(spec.epochs)
        self.frames: list[AppFrame] = []
        self.frame_bytes: list[int] = []  # each frame's JSON size
        self.history: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.ticket: int | None = None
        self._traced: dict[int, int] = {}  # snapshot position -> frame index
        self._partitions: dict[int, Partition] = {}  # frame index -> partition, the newest two (a step's two sides)

    def _frame(self, position: int, live: ScheduledRun) -> int:
        """Trace the snapshot at ``position`` (from its stored weights) once; its frame index."""
        if position not in self._traced:
            snap = live.snapshots[position]
            model = build(self.arch)
            model.load_state_dict(snap.state)
            partition, frame = traced_frame(model.eval(), self.data.bounds, cancel=self.cancel,
                                            **snapshot_stats(snap), sparsity=snap.sparsity, position=position)
            self._partitions = {i: q for i, q in self._partitions.items() if i == len(self.frames) - 1}
            self._partitions[len(self.frames)] = partition
            self._traced[position] = len(self.frames)
            text = json.dumps(frame)
            if self.keep is not None:
                self.keep(len(self.frames), text)
            self.frames.append(frame)
            self.frame_bytes.append(len(text))
            self._pace(snap.epoch)
            self.history[position]["n_regions"] = frame["n_regions"]
        return self._traced[position]

    def _pace(self, epoch: int) -> None:
        """Keep the run's frames within ``frame_budget``: the stride grows (never shrinks) until the
        frames still to come, each as large as the newest, fit into what is left (pruning steps come on top)."""
        left, newest = (self.spec.epochs - epoch) // self.stride, self.frame_bytes[-1]
        room = self.frame_budget - sum(self.frame_bytes)
        if left and newest * left > room:
            self.stride = max(self.stride, math.ceil(self.stride * newest * left / max(room, newest)))

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
        self.events.append(self._event(snap, before, after))
        return True

    def _event(self, snap: Snapshot, before: int, after: int) -> dict[str, Any]:
        """An event for the page: when, how much, which units went (per hidden layer, counted from 0), and the
        exact fraction of the drawn box whose predicted class changed (``prune.changed_area`` of its frames'
        partitions: no further trace)."""
        event = snap.event
        change = None
        if self.data.task == "classification":  # the exact area, from the two partitions just drawn
            change = changed_area(self._partitions[before], self._partitions[after])
        layers = [layer.name for layer in hidden_layers(build(self.arch))]
        return {"epoch": event.epoch, "before": before, "after": after, "target": event.target,
                "achieved": event.achieved, "change": change, "ticket": event.epoch == self.ticket,
                "removed": [event.removed_units.get(name, []) for name in layers],
                "weights": sum(len(w) for w in event.removed_weights.values())}

    def payload(self, frames: bool = True) -> dict[str, Any]:
        """The run so far; without its frames (``frames=False``) when they travel apart (``keep``): the page
        fetches the ``n_frames`` it lacks."""
        # copies: a streamed payload is re-sent by the job's heartbeat thread while this run goes on
        return {"label": self.spec.label, "spec": asdict(self.spec),
                "frames": dict(enumerate(self.frames)) if frames else {}, "n_frames": len(self.frames),
                "history": [dict(h) for h in self.history], "events": list(self.events), "ticket": self.ticket}


@dataclass(frozen=True)
class RunEstimate:
    """What a scheduled run (one or two side by side) will cost, and why the app refuses it, if it does: from its
    net traced at initialisation and from a pilot, the same net trained for the run's epochs without pruning and
    without frames, traced once (training adds regions: a 6 x 64 net on Spirals goes from 12k to 97k in 40 epochs
    without pruning, and an estimate from the first frame alone was 2-8x low)."""

    regions: int               # the first frame's (at initialisation); 0 when refused before counting
    seconds_per_frame: float   # trace + frame of the first frame
    mib_per_frame: float       # the first frame's drawn parts, as sent
    frames: int                # per run: kept epochs and both sides of every pruning step
    events: int                # pruning steps per run (early-bird: at most one)
    runs: int
    seconds: float             # the whole job, runs side by side computed at the same time
    refused: str | None = None
    trained_regions: int = 0           # the pilot's: the dense net after the run's epochs
    trained_seconds_per_frame: float = 0.0
    trained_mib_per_frame: float = 0.0

    @property
    def message(self) -> str:
        """In words, for the line beside a page's Run button."""
        if self.refused:
            return self.refused
        each = (f"{self.runs} runs side by side (at the same time while the tab has a second job slot free), each"
                if self.runs > 1 else "The run:")
        total = f"about {duration(self.seconds)}" if self.seconds >= 1 else "under a second"
        sizes = "–".join(f"{mib:.1f} MiB" if mib >= 0.1 else f"{1024 * mib:.0f} KiB"
                         for mib in (self.mib_per_frame, self.trained_mib_per_frame))
        return (f"{each} {self.frames} frames, from {self.regions:,} regions at initialisation to about "
                f"{self.trained_regions:,} once trained without pruning ({self.seconds_per_frame:.2g}–"
                f"{self.trained_seconds_per_frame:.2g} s and {sizes} a frame), {self.events} pruning "
                f"step{'s' if self.events != 1 else ''}: {total} (pruning usually leaves fewer regions).")


def _frame_cost(model: nn.Module, bounds: Sequence[float], budget: int) -> tuple[int, float, float] | None:
    """Regions, seconds and MiB of ``model``'s frame; None past ``budget`` regions."""
    try:
        partition_frame = trace_frame(model.eval(), bounds, budget=budget)
    except PartitionBudgetError:
        return None
    return partition_frame["n_regions"], partition_frame["stats"]["trace_s"], frame_mib(partition_frame)


@functools.lru_cache(maxsize=64)
def _first_frame(arch: str, bounds: tuple[float, ...], budget: int) -> tuple[int, float, float] | None:
    """The frame cost (``_frame_cost``) of ``arch`` (JSON) at initialisation."""
    return _frame_cost(build(json.loads(arch)), bounds, budget)


@functools.lru_cache(maxsize=16)
def _trained_frame(arch: str, config: str, epochs: int, budget: int) -> tuple[int, float, float, float] | None:
    """The pilot: the frame cost (``_frame_cost``) of ``arch`` (JSON) trained densely for ``epochs`` with the
    Playground settings ``config`` (JSON), and the training's seconds."""
    settings = PlaygroundConfig.from_dict(json.loads(config))
    data = config_dataset(settings)
    model = build(json.loads(arch))
    start = time.perf_counter()
    fit(model, data, train_config(settings, epochs))
    train_s = time.perf_counter() - start
    cost = _frame_cost(model, data.bounds, budget)
    return None if cost is None else (*cost, train_s)


def estimate(run: Run, specs: Sequence[ScheduleSpec], limits: Limits = LIMITS) -> RunEstimate:
    """The cost of ``scheduled_run(run, specs)``, told before it starts; ``refused`` says why the app will not run
    it: a first frame over ``limits.run_regions`` (traced with that budget, so the check itself stays cheap), a
    pilot over ``limits.regions`` (a frame of the run would fail there), or an estimated time past
    ``limits.job_timeout_s``. Both traces and the pilot are cached per network and settings: the pages ask again
    at every change of their controls and of the Playground's model."""
    bounds = tuple(config_dataset(run.config).bounds)
    arch = json.dumps(run.arch, sort_keys=True)
    first = _first_frame(arch, bounds, limits.run_regions)
    if first is None:
        return RunEstimate(0, 0.0, 0.0, 0, 0, len(specs), 0.0, refused=(
            f"Too large for a pruning run: this network makes more than {limits.run_regions:,} regions at "
            f"initialisation, the most a run starts from (training multiplies them, and every frame must stay under "
            f"{limits.regions:,}). Choose fewer or narrower layers in the Playground."))
    regions, per_frame, mib = first
    epochs = max(spec.epochs for spec in specs)
    trained = _trained_frame(arch, json.dumps(run.config.to_dict(), sort_keys=True), epochs, limits.regions)
    if trained is None:
        return RunEstimate(regions, per_frame, mib, 0, 0, len(specs), 0.0, refused=(
            f"Too large for a pruning run: trained for {epochs} epochs, this network makes more than "
            f"{limits.regions:,} regions, the most a frame may have. Choose fewer epochs, or fewer or narrower "
            f"layers in the Playground."))
    end_regions, end_per_frame, end_mib, train_s = trained
    plans = [_planned_frames(spec, mib * 2**20, limits.run_frame_bytes // len(specs)) for spec in specs]
    frames, events = max(p[0] for p in plans), max(p[1] for p in plans)
    # frames grow from the first to the pilot's size as training goes; a pruning step's decision change (shapely
    # unions of both sides' class cells) costs about a trace
    seconds = train_s + frames * (per_frame + end_per_frame) / 2 + events * end_per_frame
    refused = None
    if seconds > limits.job_timeout_s:
        refused = (f"Too long for a pruning run: {frames} frames of {regions:,} to about {end_regions:,} regions "
                   f"take about {duration(seconds)}, past the limit of {duration(limits.job_timeout_s)} per job. "
                   f"Choose fewer epochs, or fewer or narrower layers in the Playground.")
    return RunEstimate(regions, per_frame, mib, frames, events, len(specs), seconds, refused, end_regions,
                       end_per_frame, end_mib)


def _planned_frames(spec: ScheduleSpec, frame_bytes: float, budget: int) -> tuple[int, int]:
    """Frames and pruning steps the Recorder will keep for ``spec`` within ``budget`` bytes if every frame is
    ``frame_bytes`` (its rule)."""
    stride = max(frame_stride(spec.epochs), math.ceil(spec.epochs * frame_bytes / max(budget - frame_bytes, 1)))
    plain = len(set(range(0, spec.epochs + 1, stride)) | {spec.epochs})
    events = 1 if spec.kind == "earlybird" else len(spec.schedule(np.zeros((1, 2))).targets(spec.epochs))
    return plain + events * (1 if stride == 1 else 2), events


def scheduled_run(run: Run, specs: Sequence[ScheduleSpec], progress: Progress = quiet, cancel: Cancel | None = None,
                  stream: Callable[[list[dict[str, Any]]], None] | None = None,
                  recorder: type[Recorder] = Recorder, parallel: bool = False,
                  keep: Keep | None = None) -> list[dict[str, Any]]:
    """Train ``run``'s architecture on its data from its initial weights under each schedule of ``specs`` (one,
    or two to compare), pruning as they say; every run's payload (``Recorder.payload``).

    Each run starts from the same initial weights (the run's seed), so two specs compare methods or schedules on
    the same net. ``parallel``: the runs are computed at the same time, one thread each (the job holds a job slot
    per run; training and tracing release the GIL for most of their work), so that two runs side by side arrive in
    step; else one after the other. ``stream(payloads)`` sees the runs started so far after every new frame,
    without frames: they go to ``keep(run, index, json)`` as they are traced. The payloads returned carry their
    frames, unless ``keep`` took them and they pass ``INLINE_BYTES`` (a page would parse them in one long task).
    """
    data = config_dataset(run.config)
    probe = grid_probe(data.bounds, PROBE_SIDE)
    failed = threading.Event()  # one run failed: the other stops at its next check

    def stop() -> bool:
        return failed.is_set() or (cancel is not None and cancel())

    budget = LIMITS.run_frame_bytes // len(specs)  # the job's frames, shared by its runs
    recs = [recorder(spec, data, run.arch, probe, stop, budget, None if keep is None else functools.partial(keep, k))
            for k, spec in enumerate(specs)]
    models = [build(run.arch) for _ in specs]  # built here: building seeds torch's global generator
    state = {"started": [False] * len(specs), "done": [False] * len(specs), "notes": [""] * len(specs),
             "fractions": [0.0] * len(specs)}
    lock = threading.Lock()

    def seen(k: int, snap: Snapshot, live: ScheduledRun) -> None:
        spec, rec = specs[k], recs[k]
        framed = rec.observe(snap, live)
        with lock:
            state["fractions"][k] = snap.epoch / max(spec.epochs, 1)
            state["notes"][k] = (f"{spec.method} pruning: epoch {snap.epoch} of {spec.epochs}, "
                                 f"sparsity {100 * (snap.sparsity or 0):.0f} %")
            if framed and stream is not None:
                stream([r.payload(frames=False) for j, r in enumerate(recs) if state["started"][j]])
            notes = [n for j, n in enumerate(state["notes"]) if state["started"][j] and not state["done"][j]]
            progress(sum(state["fractions"]) / len(specs), " · ".join(notes))

    def train(k: int) -> None:
        spec = specs[k]
        with lock:
            state["started"][k] = True  # in parallel, all were from the start
        try:
            train_with_schedule(models[k], data, train_config(run.config, spec.epochs), spec.schedule(probe),
                                spec.method, spec.scope, on_snapshot=functools.partial(seen, k), cancel=stop,
                                **_prune_kw(spec.method, probe, GUARD))
        except BaseException:
            failed.set()
            raise
        with lock:
            state["done"][k], state["fractions"][k] = True, 1.0

    if parallel and len(specs) > 1:
        state["started"] = [True] * len(specs)
        with ThreadPoolExecutor(len(specs), thread_name_prefix="splineviz-run") as pool:
            outcomes = [pool.submit(train, k) for k in range(len(specs))]
        errors = [f.exception() for f in outcomes if f.exception() is not None]
        if errors:  # the run that failed first, not the other's Cancelled that followed
            raise next((e for e in errors if not isinstance(e, Cancelled)), errors[0])
    else:
        for k in range(len(specs)):
            train(k)
    progress(1.0, "done")
    return [r.payload(keep is None or sum(r.frame_bytes) <= INLINE_BYTES) for r in recs]


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

"""Early-bird work: train the shared model's architecture from scratch until the spline early-bird ticket fires,
prune there, and train the pruned ticket on, recording the epoch-to-epoch partition distances as it goes."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from splineviz.earlybird import sign_patterns, window_maxima
from splineviz.prune import ScheduledRun
from splineviz.train import Snapshot
from splineviz.web.jobs import Cancel, Progress, quiet
from splineviz.web.jobs.pruning import Keep, Recorder, ScheduleSpec, scheduled_run
from splineviz.web.state import Run, build

WINDOW = 3


class DistanceRecorder(Recorder):
    """A scheduled run's record plus the spline distance between every two epochs' activation patterns on the
    probe, filled in one row per epoch: the dense network's up to the ticket, the pruned ticket's after it."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        # per layer, one row per epoch so far: its signs on the probe, packed into 64-bit words (zero padded), in
        # a table sized once for the run's epochs: a new row is one XOR and popcount against it, not the unpacked
        # bits of every earlier epoch (2.8 s a row at epoch 500 of a 6 x 64 net, 0.08 s now)
        self.patterns: list[np.ndarray] = []
        self.sizes: list[int] = []
        self.rows: list[list[float]] = []  # row e: distances from epoch e to epochs 0 .. e

    def observe(self, snap: Snapshot, live: ScheduledRun) -> bool:
        if snap.event is None and snap.epoch == len(self.rows):  # an epoch's first snapshot: the rule's
            self._add(snap)
        return super().observe(snap, live)

    def _add(self, snap: Snapshot) -> None:
        patterns = sign_patterns(snap.state, self.probe, lambda: build(self.arch))
        words = [_words(p) for p in patterns]
        if not self.patterns:
            self.sizes = [p.size for p in patterns]
            self.patterns = [np.zeros((self.spec.epochs + 1, len(w)), np.uint64) for w in words]
        epoch = len(self.rows)
        row = np.zeros(epoch + 1)
        for table, newest, size in zip(self.patterns, words, self.sizes):  # the fractions distance_matrix computes
            table[epoch] = newest
            row += np.bitwise_count(table[:epoch + 1] ^ newest).sum(axis=1) / size
        self.rows.append((row / len(self.sizes)).round(5).tolist())

    def payload(self, frames: bool = True) -> dict[str, Any]:
        return {**super().payload(frames), "rows": list(self.rows), "window": self.spec.window}


def _words(signs: np.ndarray) -> np.ndarray:
    """Boolean signs packed into 64-bit words, the last one zero padded (padding never differs)."""
    packed = np.packbits(signs.reshape(-1))
    return np.pad(packed, (0, -len(packed) % 8)).view(np.uint64)


def earlybird_run(run: Run, spec: ScheduleSpec, progress: Progress = quiet, cancel: Cancel | None = None,
                  stream: Callable[[dict[str, Any]], None] | None = None, keep: Keep | None = None) -> dict[str, Any]:
    """The early-bird schedule on ``run``'s architecture and data (``pruning.scheduled_run``) with the distances."""
    one = None if stream is None else lambda runs: stream(runs[0])
    return scheduled_run(run, [spec], progress, cancel, one, DistanceRecorder, keep=keep)[0]


def distance_matrix(rows: Sequence[Sequence[float]]) -> np.ndarray:
    """The symmetric (E, E) matrix from the lower-triangular rows a run records."""
    n = len(rows)
    matrix = np.zeros((n, n))
    for e, row in enumerate(rows):
        matrix[e, :len(row)] = row[:n]
    return np.maximum(matrix, matrix.T)


def ticket_at(rows: Sequence[Sequence[float]], threshold: float, window: int, last: int | None = None) -> int | None:
    """Where the rule with ``threshold`` fires on the recorded distances, looking at epochs up to ``last`` (the
    dense network's: the run pruned after it)."""
    maxima = window_maxima(distance_matrix(rows), window)[:None if last is None else last + 1]
    below = np.flatnonzero(maxima < threshold)  # NaN (before a full window) compares False
    return int(below[0]) if len(below) else None


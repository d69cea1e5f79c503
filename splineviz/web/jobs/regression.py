"""Regression work: train a 1-H...-1 ReLU net on the sawtooth and record every epoch's exact fit.

Each epoch's snapshot is traced on the data's interval (``splineviz.trace``, one input: an ``IntervalPartition``)
and kept as plain JSON (breakpoints, outputs there, the layer and unit of each knot), so the page can redraw any
epoch at any depth without the model. The nets are tiny (at most 6 layers of 64 units on one input), so a trace
is a few hundred knots at most and costs well under a millisecond per epoch.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np
from torch import nn

from splineviz import trace
from splineviz.data import Dataset, make_dataset
from splineviz.nets import mlp
from splineviz.partition.interval import IntervalPartition
from splineviz.train import Snapshot, TrainConfig, fit
from splineviz.web.jobs import Cancel, Progress, quiet

BOUNDS = (-1.0, 1.0)  # the sawtooth's domain (splineviz.data.sawtooth)
BATCH = 64  # as in the sawtooth experiment (splineviz.experiments.sawtooth)


@dataclass(frozen=True)
class RegressionSpec:
    """A run's settings, already cleaned (``params.Regression``)."""

    widths: tuple[int, ...] = (16,)
    epochs: int = 200
    lr: float = 0.01
    noise: float = 0.0
    seed: int = 0


def dataset(spec: RegressionSpec) -> Dataset:
    """The run's data: the same points for the same noise and seed, so the page can redraw them."""
    return make_dataset("sawtooth", noise=spec.noise, seed=spec.seed)


def record(model: nn.Module, snap: Snapshot) -> dict[str, Any]:
    """One epoch's exact fit on ``BOUNDS`` as JSON: breakpoints (the ends and every knot), the output there, the
    (layer, unit) that made each (-1 at the ends), the widths, the pieces after each layer, and the RMSEs."""
    p = trace(model, bounds=BOUNDS)
    return {"epoch": snap.epoch, "x": p.breakpoints.tolist(), "y": p.values[:, 0].tolist(),
            "layer": p.breakpoint_layer.tolist(), "unit": p.breakpoint_unit.tolist(), "widths": list(p.layer_widths),
            "counts": list(p.layer_region_counts), "train_rmse": snap.train_metric, "test_rmse": snap.test_metric}


def partition(rec: dict[str, Any]) -> IntervalPartition:
    """The ``IntervalPartition`` a record was taken from, for drawing (``figures.regression_figure``); it holds no
    ops, so it cannot evaluate the net between breakpoints (its pieces' slopes and offsets still say it all)."""
    x = np.asarray(rec["x"], dtype=np.float64)
    return IntervalPartition([], x, np.asarray(rec["layer"], dtype=int), np.asarray(rec["unit"], dtype=int),
                             np.asarray(rec["y"], dtype=np.float64)[:, None], list(rec["widths"]),
                             list(rec["counts"]), None)


def train(spec: RegressionSpec, progress: Progress = quiet, cancel: Cancel | None = None,
          on_record: Callable[[dict[str, Any]], None] | None = None) -> tuple[nn.Module, list[dict[str, Any]]]:
    """Train ``mlp(1, spec.widths, 1)`` with Adam (MSE) and trace every epoch's snapshot (epoch 0: the initial
    weights); ``on_record`` sees each record as it is made. Returns the trained model and the records."""
    data = dataset(spec)
    model = mlp(1, spec.widths, 1, seed=spec.seed)
    shown = mlp(1, spec.widths, 1)  # each snapshot's weights are loaded here and traced
    records: list[dict[str, Any]] = []

    def observe(snap: Snapshot) -> None:
        shown.load_state_dict(snap.state)
        records.append(record(shown, snap))
        if on_record is not None:
            on_record(records[-1])

    config = TrainConfig(epochs=spec.epochs, lr=spec.lr, batch_size=BATCH, optimizer="adam", seed=spec.seed)
    result = fit(model, data, config, progress=progress, cancel=cancel, on_snapshot=observe)
    return result.model, records


def payload(spec: RegressionSpec, records: list[dict[str, Any]]) -> dict[str, Any]:
    """What the page keeps of a run: its settings and every epoch's record."""
    return {"spec": asdict(spec), "epochs": records}

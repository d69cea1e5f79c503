"""A playground session's state as plain data: its configuration and an encoded model ("run").

Everything a browser session owns lives in its own dcc.Store as these JSON-able dicts, and every job
receives what it needs as arguments. The server keeps no per-session state, so sessions cannot mix
and any worker process (or machine) can serve any request.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
import uuid
from functools import lru_cache
from typing import Any, Callable, Mapping

import torch
from torch import nn

from splineviz.data import Dataset, make_dataset
from splineviz.figures import Frame, pack, partition_frame
from splineviz.nets import build_model, to_ops
from splineviz.partition import trace
from splineviz.train import Snapshot, TrainConfig, TrainResult, evaluate, fit
from splineviz.web.codec import decode_blob, encode_blob

BUDGET = 200_000  # regions per traced frame: keeps a frame's JSON and the browser's drawing interactive
PLAYGROUND_DATASETS = {"moons": "Two moons", "circles": "Circles", "xor": "XOR", "spirals": "Spirals",
                       "gaussians": "Gaussians", "xshape": "X-shape (paper)"}
ACTIVATIONS = {"relu": "ReLU", "leaky_relu": "Leaky ReLU"}
Run = dict[str, Any]


@dataclass(frozen=True)
class PlaygroundConfig:
    """What the playground's controls choose; also what the URL shares."""

    dataset: str = "moons"
    noise: float = 0.1
    layers: int = 3
    width: int = 16
    activation: str = "relu"
    lr: float = 0.03
    epochs: int = 100
    seed: int = 0
    batch_size: int = 32

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> "PlaygroundConfig":
        """Build from (possibly partial or stringly-typed) values, e.g. control values or URL parameters."""
        default = cls()
        kwargs = {}
        for f in fields(cls):
            value = (values or {}).get(f.name)
            if value is not None and value != "":
                kwargs[f.name] = type(getattr(default, f.name))(value)
        config = cls(**kwargs)
        if config.dataset not in PLAYGROUND_DATASETS:
            raise ValueError(f"unknown dataset {config.dataset!r}; choose one of {', '.join(PLAYGROUND_DATASETS)}")
        if config.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {config.activation!r}")
        if not (1 <= config.layers <= 6 and 1 <= config.width <= 256 and config.epochs >= 1):
            raise ValueError("choose 1-6 layers of 1-256 units and at least one epoch")
        return config

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def hidden(self) -> tuple[int, ...]:
        return (self.width,) * self.layers


@lru_cache(maxsize=32)
def dataset(name: str, noise: float, seed: int) -> Dataset:
    """Datasets are pure functions of (name, noise, seed): cached per process, never mutated."""
    return make_dataset(name, noise=noise, seed=seed)


def config_dataset(config: PlaygroundConfig) -> Dataset:
    return dataset(config.dataset, config.noise, config.seed)


def architecture(config: PlaygroundConfig, data: Dataset) -> dict[str, Any]:
    return {"type": "mlp", "in_features": data.in_features, "hidden": list(config.hidden),
            "out_features": data.n_outputs, "activation": config.activation, "seed": config.seed}


def points(data: Dataset) -> dict[str, Any]:
    """Training points, packed for the browser's renderer."""
    return {"x": pack(data.x_train[:, 0], "f4"), "y": pack(data.x_train[:, 1], "f4"),
            "c": pack(data.y_train, "i2")}


def trace_frame(model: nn.Module, bounds: tuple[float, ...], progress: Callable | None = None,
                cancel: Callable | None = None, **stats: Any) -> Frame:
    """Exact partition of a 2-input model over ``bounds`` as a frame (see figures.partition_frame).

    The frame carries its weights so that any shown frame can be exported (GeoJSON) or reused.
    """
    partition = trace(to_ops(model), domain=tuple(bounds), budget=BUDGET, progress=progress, cancel=cancel)
    return partition_frame(partition, bounds, weights=encode_blob(model.state_dict()), **stats)


def snapshot_stats(snapshot: Snapshot) -> dict[str, Any]:
    return {"epoch": snapshot.epoch, "loss": snapshot.train_loss, "train_metric": snapshot.train_metric,
            "test_metric": snapshot.test_metric}


# -- runs: a model plus what is needed to continue training it -------------------------------------------------
def encode_run(config: PlaygroundConfig, arch: Mapping[str, Any], result: TrainResult,
               run_id: str | None = None) -> Run:
    """``id`` names the run across chunks, so a late chunk of a replaced run can be recognised and dropped."""
    last = result.snapshots[-1]
    blob = {"state": {k: v.detach().clone() for k, v in result.model.state_dict().items()},
            "optimizer": result.optimizer_state, "epoch": last.epoch, "step": last.step,
            "loss": last.train_loss, "train_metric": last.train_metric, "test_metric": last.test_metric}
    return {"id": run_id or uuid.uuid4().hex, "config": config.to_dict(), "arch": dict(arch), "epoch": last.epoch,
            "blob": encode_blob(blob)}


def decode_run(run: Run) -> tuple[PlaygroundConfig, nn.Module, TrainResult]:
    """The model and a TrainResult that train.fit(resume_from=...) continues (with optimizer moments)."""
    config = PlaygroundConfig.from_dict(run["config"])
    blob = decode_blob(run["blob"])
    model = build_model(run["arch"])
    model.load_state_dict(blob["state"])
    model.eval()
    last = Snapshot(blob["epoch"], blob["step"], blob["state"], blob["loss"], blob["train_metric"],
                    blob["test_metric"])
    return config, model, TrainResult([last], model, train_config(config), blob["optimizer"])


def train_config(config: PlaygroundConfig, epochs: int | None = None, seed_offset: int = 0) -> TrainConfig:
    return TrainConfig(epochs=config.epochs if epochs is None else epochs, lr=config.lr,
                       batch_size=config.batch_size, optimizer="sgd", momentum=0.9, seed=config.seed + seed_offset)


def initial_result(model: nn.Module, data: Dataset) -> TrainResult:
    """A TrainResult for untrained weights, so that a fresh model and a trained one are handled alike."""
    return fit(model, data, TrainConfig(epochs=0))


def start_run(config: PlaygroundConfig, model: nn.Module | None = None,
              arch: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A new session (fresh weights, or an uploaded model and its architecture): run, first frame, points."""
    data = config_dataset(config)
    arch = architecture(config, data) if arch is None else arch
    model = build_model(arch) if model is None else model
    result = initial_result(model, data)
    frame = trace_frame(model, data.bounds, **snapshot_stats(result.snapshots[-1]))
    return {"run": encode_run(config, arch, result), "frames": [frame], "points": points(data)}


def accuracy(model: nn.Module, data: Dataset) -> float:
    with torch.no_grad():
        return float(evaluate(model, data))


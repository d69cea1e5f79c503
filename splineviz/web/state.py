"""A Playground session as plain data: what its controls chose (``PlaygroundConfig``) and its model (``Run``).

Everything a browser session owns lives in its own dcc.Store as JSON, and every job receives what it needs
as arguments. The server keeps no per-session state, so sessions cannot mix and any worker process (or
machine) can serve any request. Whatever comes back from the browser is cleaned (``params``) and bounded
(``LIMITS``) before use: ``Run.from_json`` is the only way from a store's JSON to a model.
"""
from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from splineviz.data import Dataset, from_points, make_dataset
from splineviz.nets import ModelLoadError, build_model, check_architecture
from splineviz.partition.domain import DEFAULT_BOUNDS
from splineviz.train import Snapshot, TrainConfig, TrainResult, evaluate
from splineviz.web.codec import decode_blob, encode_blob
from splineviz.web.params import DATASETS, LIMITS, Playground as P


@dataclass(frozen=True)
class PlaygroundConfig:
    """What the Playground's controls choose; also what the URL shares."""

    dataset: str = P.DATASET.default
    noise: float = P.NOISE.default
    layers: int = P.LAYERS.default
    width: int = P.WIDTH.default
    activation: str = P.ACTIVATION.default
    lr: float = P.LR.default
    epochs: int = P.EPOCHS.default
    seed: int = P.SEED.default
    batch_size: int = P.BATCH.default
    widths: str = P.WIDTHS.default  # "16,8,4": per-layer widths, overriding layers x width
    test: float = P.TEST.default
    l1: float = P.L1.default
    l2: float = P.L2.default
    points: str = P.OWN.default  # own data (dataset "own"), params.parse_points text

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> "PlaygroundConfig":
        """From partial, stringly-typed or out-of-range values (controls, URL, stores): each field cleaned."""
        values = values or {}
        return cls(**{f.name: _PARAMS[f.name].clean(values[f.name]) for f in fields(cls)
                      if values.get(f.name) not in (None, "")})

    @classmethod
    def from_url(cls, values: Mapping[str, Any], **overrides: Any) -> "PlaygroundConfig":
        """From values keyed by URL key (``params.parse_search``), e.g. ``act`` for ``activation``."""
        return cls.from_dict({**{name: values[p.key] for name, p in _PARAMS.items() if p.key in values}, **overrides})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def hidden(self) -> tuple[int, ...]:
        """Units per hidden layer: the typed per-layer widths, else ``layers`` layers of ``width``."""
        return tuple(int(w) for w in self.widths.split(",")) if self.widths else (self.width,) * self.layers

    def settings(self) -> dict[str, Any]:
        """The values that make a new run when they change (the rest apply from the next epoch)."""
        return {name: getattr(self, name) for name in SETTINGS}


_PARAMS = {"dataset": P.DATASET, "noise": P.NOISE, "layers": P.LAYERS, "width": P.WIDTH,
           "activation": P.ACTIVATION, "lr": P.LR, "epochs": P.EPOCHS, "seed": P.SEED, "batch_size": P.BATCH,
           "widths": P.WIDTHS, "test": P.TEST, "l1": P.L1, "l2": P.L2, "points": P.OWN}
SETTINGS = ("dataset", "noise", "layers", "width", "widths", "activation", "seed", "test", "points")
TRAINING = ("lr", "epochs", "batch_size", "l1", "l2")  # apply to a running session from its next chunk


@lru_cache(maxsize=32)
def dataset(name: str, noise: float, seed: int, test: float = P.TEST.default, points: str = "") -> Dataset:
    """Datasets are pure functions of (name, noise, seed, test share, own points): cached per process, never
    mutated. Own data ("own") is drawn over the default domain widened to its points, so that clicking points
    in does not move the axes."""
    if name != "own":
        return make_dataset(name, noise=noise, seed=seed, test_fraction=test)
    rows = [row.split() for row in points.split(";") if row]
    if not rows:
        raise ValueError("own data has no points yet: upload a CSV of x, y, label or click on the plot to add points")
    xy = np.array([[float(x), float(y)] for x, y, _ in rows])
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    pad = 0.1 * np.maximum(hi - lo, 1e-3)
    bounds = (min(DEFAULT_BOUNDS[0], lo[0] - pad[0]), max(DEFAULT_BOUNDS[1], hi[0] + pad[0]),
              min(DEFAULT_BOUNDS[2], lo[1] - pad[1]), max(DEFAULT_BOUNDS[3], hi[1] + pad[1]))
    return from_points(xy, [int(c) for _, _, c in rows], test_fraction=test, seed=seed, name="own",
                       bounds=tuple(float(b) for b in bounds))


def config_dataset(config: PlaygroundConfig) -> Dataset:
    return dataset(config.dataset, config.noise, config.seed, config.test,
                   config.points if config.dataset == "own" else "")


def architecture(config: PlaygroundConfig, data: Dataset) -> dict[str, Any]:
    return {"type": "mlp", "in_features": data.in_features, "hidden": list(config.hidden),
            "out_features": data.n_outputs, "activation": config.activation, "seed": config.seed}


def train_config(config: PlaygroundConfig, epochs: int | None = None) -> TrainConfig:
    return TrainConfig(epochs=config.epochs if epochs is None else epochs, lr=config.lr,
                       batch_size=config.batch_size, optimizer="sgd", momentum=0.9, weight_decay=config.l2, l1=config.l1,
                       seed=config.seed)


def build(arch: Mapping[str, Any]) -> nn.Sequential:
    """A model from a description that may have come from the browser: checked against the app's limits first."""
    if not isinstance(arch, Mapping):
        raise ModelLoadError(f"expected an architecture description, got {type(arch).__name__}")
    return build_model(arch, LIMITS.model)


def load_weights(arch: Mapping[str, Any], blob: str) -> nn.Module:
    """A model from a description and encoded state dict (e.g. a frame's weights), both bounded."""
    model = build(arch)
    try:
        model.load_state_dict(decode_blob(blob, LIMITS.model_bytes))
    except (RuntimeError, TypeError, AttributeError) as e:
        raise ModelLoadError(f"the weights do not fit the architecture ({type(e).__name__})") from e
    return model.eval()


@dataclass(frozen=True)
class Run:
    """A Playground model and what is needed to continue training it: the app's shared model.

    ``id`` names the run across training chunks, so that a late chunk of a replaced run is recognised and
    dropped; ``blob`` holds the weights, optimizer moments and last statistics (see ``encode``).
    """

    id: str
    config: PlaygroundConfig
    arch: dict[str, Any]
    epoch: int
    blob: str

    @classmethod
    def encode(cls, config: PlaygroundConfig, arch: Mapping[str, Any], result: TrainResult,
               run_id: str | None = None) -> "Run":
        last = result.snapshots[-1]
        blob = {"state": {k: v.detach().clone() for k, v in result.model.state_dict().items()},
                "optimizer": result.optimizer_state, "epoch": last.epoch, "step": last.step,
                "loss": last.train_loss, "train_metric": last.train_metric, "test_metric": last.test_metric}
        return cls(run_id or uuid.uuid4().hex, config, dict(arch), last.epoch, encode_blob(blob))

    def decode(self) -> tuple[nn.Module, TrainResult]:
        """The model and a TrainResult that train.fit(resume_from=...) continues (with optimizer moments)."""
        model = build(self.arch)
        blob = decode_blob(self.blob, LIMITS.model_bytes)
        try:
            model.load_state_dict(blob["state"])
            last = Snapshot(int(blob["epoch"]), int(blob["step"]), blob["state"], blob["loss"],
                            blob["train_metric"], blob["test_metric"])
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise ModelLoadError(f"the stored run cannot be read ({type(e).__name__}: {e})") from e
        model.eval()
        return model, TrainResult([last], model, train_config(self.config), blob.get("optimizer"))

    def model(self) -> nn.Module:
        return self.decode()[0]

    @property
    def title(self) -> str:
        """Data and network in words, for exported figures: "Two moons · 2-8-8-2 ReLU"."""
        sizes = [self.arch.get("in_features", 2), *self.arch.get("hidden", []), self.arch.get("out_features", 2)]
        act = "Leaky ReLU" if self.arch.get("activation") == "leaky_relu" else "ReLU"
        return f"{DATASETS.get(self.config.dataset, self.config.dataset)} · {'-'.join(map(str, sizes))} {act}"

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "config": self.config.to_dict(), "arch": self.arch, "epoch": self.epoch,
                "blob": self.blob}

    @classmethod
    def from_json(cls, data: Any) -> "Run":
        """A run read back from the browser: config cleaned, architecture within limits (the weights are
        checked when decoded)."""
        if not isinstance(data, Mapping) or not isinstance(data.get("blob"), str):
            raise ModelLoadError("there is no model yet: start one in the Playground")
        arch = data.get("arch")
        if not isinstance(arch, Mapping):
            raise ModelLoadError("the stored run has no architecture")
        check_architecture(arch, LIMITS.model)
        try:
            epoch = max(0, int(data.get("epoch", 0)))
        except (TypeError, ValueError):
            epoch = 0
        return cls(str(data.get("id", ""))[:64], PlaygroundConfig.from_dict(data.get("config")), dict(arch), epoch,
                   data["blob"])


def accuracy(model: nn.Module, data: Dataset) -> float:
    with torch.no_grad():
        return float(evaluate(model, data))

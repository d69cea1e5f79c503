"""The app's work as plain functions of JSON-able inputs, returning JSON-able results.

Background callbacks (diskcache processes, or Celery workers on other machines) call the long ones
with ``progress(fraction, message)`` and ``cancel() -> bool``; page callbacks call the fast ones
directly. Nothing here touches Dash or keeps per-session state.
"""
from __future__ import annotations

import base64
import math
import tempfile
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from splineviz.data import Dataset, mnist
from splineviz.earlybird import detect_ticket, distance_matrix, distances_to_previous, grid_probe
from splineviz.figures import partition_frame
from splineviz.nets import build_model, load_model
from splineviz.prune import METHODS, achieved_sparsity, prune, prune_and_finetune
from splineviz.slices import dataset_slice, predicted_classes
from splineviz.train import fit
from splineviz.web.codec import decode_blob, encode_blob
from splineviz.web.session import (BUDGET, PlaygroundConfig, Run, accuracy, architecture, config_dataset,
                                   decode_run, encode_run, snapshot_stats, start_run, trace_frame, train_config)

# Small nets train fastest on one thread, and sessions run side by side in separate processes: more
# intra-op threads only make them fight over the cores (10 epochs: 0.3 s on one thread, 7 s on two busy ones).
torch.set_num_threads(1)

Progress = Callable[[float, str], None]
Cancel = Callable[[], bool]
MAX_FRAMES = 150  # snapshots kept per playground run (the epoch slider's resolution)
EB_THRESHOLD = 0.16
EB_WINDOW = 3


def _quiet(fraction: float, message: str) -> None:
    """Default progress sink."""


# -- playground -------------------------------------------------------------------------------------------------
def frame_stride(epochs: int) -> int:
    """Keep one frame every this many epochs so that a run never holds more than MAX_FRAMES frames."""
    return max(1, math.ceil(epochs / MAX_FRAMES))


def train_chunk(run: Run, epochs: int, overrides: dict[str, Any] | None = None, progress: Progress = _quiet,
                cancel: Cancel | None = None) -> dict[str, Any]:
    """Continue training ``run`` for ``epochs`` epochs; return the new run and a frame per kept epoch.

    The playground plays by chaining short chunks, so pausing is just not starting the next one and
    nothing is lost; optimizer moments carry over inside the run. ``overrides`` (learning rate, target
    epochs) apply from this chunk on, as in TensorFlow Playground.
    """
    config, model, previous = decode_run(run)
    config = PlaygroundConfig.from_dict({**config.to_dict(), **(overrides or {})})
    data = config_dataset(config)
    stride = frame_stride(config.epochs)
    result = fit(model, data, train_config(config, epochs), resume_from=previous, cancel=cancel,
                 progress=lambda f, m: progress(0.7 * f, m))
    fresh = [s for s in result.snapshots[1:] if s.epoch % stride == 0 or s is result.snapshots[-1]]
    frames = []
    for i, snapshot in enumerate(fresh):
        progress(0.7 + 0.3 * i / len(fresh), f"tracing epoch {snapshot.epoch}")
        frames.append(trace_frame(_with_state(model, snapshot.state), data.bounds, cancel=cancel,
                                  **snapshot_stats(snapshot)))
    return {"run": encode_run(config, run["arch"], result, run["id"]), "frames": frames}


def _with_state(model: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    model.load_state_dict(state)
    return model.eval()


class UploadError(ValueError):
    """An uploaded model the playground cannot show; the message is meant for the user."""


def upload_run(raw: bytes, config: PlaygroundConfig) -> dict[str, Any]:
    """A playground session around an uploaded MLP state dict (see nets.load_model for accepted files)."""
    model = load_model(raw)
    first = next(m for m in model if isinstance(m, nn.Linear))
    last = [m for m in model if isinstance(m, nn.Linear)][-1]
    data = config_dataset(config)
    if first.in_features != 2:
        raise UploadError(f"the model takes {first.in_features} inputs; the playground draws 2-input networks")
    if last.out_features != data.n_outputs:
        raise UploadError(f"the model has {last.out_features} outputs but the {config.dataset} dataset has "
                          f"{data.n_outputs} classes; pick a dataset with {last.out_features} classes")
    widths = [m.out_features for m in model if isinstance(m, nn.Linear)][:-1]
    activation = "leaky_relu" if any(isinstance(m, nn.LeakyReLU) for m in model) else "relu"
    # the controls describe equal widths only; the run itself keeps the model's true architecture
    config = PlaygroundConfig.from_dict({**config.to_dict(), "layers": len(widths), "width": widths[0],
                                         "activation": activation})
    arch = {"type": "mlp", "in_features": 2, "hidden": widths, "out_features": last.out_features,
            "activation": activation}
    return start_run(config, model, arch)


# -- pruning ----------------------------------------------------------------------------------------------------
def _probe(data: Dataset) -> np.ndarray:
    return grid_probe(data.bounds, 100)


def _prune_kw(method: str, data: Dataset) -> dict[str, Any]:
    return {"probe": _probe(data)} if method == "spline" else {}


def prune_view(run: Run, method: str, sparsity: float, scope: str = "layerwise") -> dict[str, Any]:
    """Before/after partitions and accuracies of one-shot pruning at ``sparsity`` (fast: no training)."""
    config, model, _ = decode_run(run)
    data = config_dataset(config)
    pruned, masks, _ = prune(model, method, sparsity, scope, **_prune_kw(method, data))
    return {"before": trace_frame(model, data.bounds), "after": trace_frame(pruned, data.bounds),
            "acc_before": accuracy(model, data), "acc_after": accuracy(pruned, data),
            "achieved": achieved_sparsity(model, masks, method)}


def finetune(run: Run, method: str, sparsity: float, epochs: int, scope: str = "layerwise",
             progress: Progress = _quiet, cancel: Cancel | None = None) -> dict[str, Any]:
    """Prune, then fine-tune with the pruned weights held at zero; the after-view of the fine-tuned net."""
    config, model, _ = decode_run(run)
    data = config_dataset(config)
    result = prune_and_finetune(model, data, method, sparsity, train_config(config, epochs), scope=scope,
                                progress=progress, cancel=cancel, **_prune_kw(method, data))
    return {"after": trace_frame(result.model, data.bounds), "acc_after": result.accuracy,
            "acc_pruned": result.accuracy_pruned, "achieved": result.achieved_sparsity}


def sparsity_sweep(run: Run, sparsities: Sequence[float], epochs: int, methods: Sequence[str] = METHODS,
                   scope: str = "layerwise", progress: Progress = _quiet,
                   cancel: Cancel | None = None) -> dict[str, list[tuple[float, float]]]:
    """Test accuracy against sparsity per method, each point pruned from the run's model then fine-tuned."""
    config, model, _ = decode_run(run)
    data = config_dataset(config)
    curves: dict[str, list[tuple[float, float]]] = {m: [] for m in methods}
    total = len(methods) * len(sparsities)
    for i, (method, sparsity) in enumerate((m, s) for m in methods for s in sparsities):
        progress(i / total, f"{method} pruning at {100 * sparsity:.0f} %")
        result = prune_and_finetune(model, data, method, sparsity, train_config(config, epochs), scope=scope,
                                    cancel=cancel, **_prune_kw(method, data))
        curves[method].append((float(sparsity), float(result.accuracy)))
    progress(1.0, "done")
    return curves


# -- early-bird -------------------------------------------------------------------------------------------------
def earlybird(config: PlaygroundConfig, epochs: int, threshold: float = EB_THRESHOLD,
              progress: Progress = _quiet, cancel: Cancel | None = None) -> dict[str, Any]:
    """Train from scratch, compare all epochs' activation patterns on a grid, and find the early-bird ticket."""
    data = config_dataset(config)
    arch = architecture(config, data)
    model = build_model(arch)
    result = fit(model, data, train_config(config, epochs), progress=lambda f, m: progress(0.6 * f, m),
                 cancel=cancel)
    states = [s.state for s in result.snapshots]
    progress(0.6, "comparing activation patterns")
    matrix = distance_matrix(states, lambda: build_model(arch), _probe(data))
    to_previous = [float(d.max()) if len(d) else 0.0 for d in distances_to_previous(matrix, EB_WINDOW)]
    ticket = detect_ticket(matrix, threshold, EB_WINDOW)
    shown = [ticket, len(states) - 1] if ticket is not None else [len(states) - 1]
    frames = []
    for i, e in enumerate(shown):
        progress(0.8 + 0.2 * i / len(shown), f"tracing epoch {e}")
        frames.append(trace_frame(_with_state(model, states[e]), data.bounds, epoch=e))
    return {"matrix": matrix.round(4).tolist(), "epochs": [s.epoch for s in result.snapshots],
            "to_previous": to_previous, "ticket": ticket, "threshold": threshold, "frames": frames,
            "accuracy": [s.test_metric for s in result.snapshots]}


# -- MNIST slice ------------------------------------------------------------------------------------------------
MNIST_ARCHS = {"paper_cnn": {"type": "paper_cnn"},
               "mlp": {"type": "mlp", "in_features": 784, "hidden": [32, 32], "out_features": 10}}


@lru_cache(maxsize=1)
def mnist_data() -> Dataset:
    return mnist()


def mnist_train(arch_name: str, epochs: int, progress: Progress = _quiet,
                cancel: Cancel | None = None) -> dict[str, Any]:
    """Train the slice page's classifier; the weights go back to the browser like any session state."""
    data = mnist_data()
    arch = MNIST_ARCHS[arch_name]
    model = build_model(arch)
    config = train_config(PlaygroundConfig(lr=0.05, batch_size=64), epochs)
    fit(model, data, config, progress=progress, cancel=cancel)
    return {"arch": arch, "blob": encode_blob(model.state_dict()), "accuracy": accuracy(model, data)}


@lru_cache(maxsize=4)
def _mnist_model(arch_key: str, blob: str) -> nn.Module:
    """Decoded models are immutable and keyed by their own bytes, so caching them cannot mix sessions."""
    model = build_model(MNIST_ARCHS[arch_key])
    model.load_state_dict(decode_blob(blob))
    return model.eval()


def mnist_image(index: int) -> tuple[np.ndarray, int]:
    data = mnist_data()
    return data.x_test[index], int(data.y_test[index])


def mnist_slice(arch_key: str, blob: str, index0: int, index1: int, extent: float = 1.0,
                progress: Progress = _quiet, cancel: Cancel | None = None) -> dict[str, Any]:
    """Partition of the plane x = a*img0 + b*img1, (a, b) in [0, extent]^2, with a class grid for hovering."""
    model = _mnist_model(arch_key, blob)
    bounds = (0.0, extent, 0.0, extent)
    cut = dataset_slice(model, mnist_data(), [index0, index1], bounds=bounds, budget=BUDGET,
                        progress=progress, cancel=cancel)
    grid = np.linspace(0, extent, 60)
    a, b = np.meshgrid(grid, grid)
    predicted = predicted_classes(model, cut.plane, np.c_[a.ravel(), b.ravel()], cut.images[0].shape)
    return {"frame": partition_frame(cut.partition, bounds), "grid": predicted.reshape(a.shape).tolist(),
            "labels": cut.labels, "indices": [index0, index1]}


def mnist_point(arch_key: str, blob: str, index0: int, index1: int, a: float, b: float) -> dict[str, Any]:
    """The input image at plane point (a, b) and the class the model predicts for it (hover readout)."""
    model = _mnist_model(arch_key, blob)
    image = a * mnist_image(index0)[0] + b * mnist_image(index1)[0]
    with torch.no_grad():
        probs = torch.softmax(model(torch.as_tensor(image[None], dtype=torch.float32)), dim=1)[0].numpy()
    return {"image": image.reshape(28, 28), "predicted": int(probs.argmax()), "confidence": float(probs.max())}


# -- experiments ------------------------------------------------------------------------------------------------
def run_experiment(name: str, quick: bool, progress: Progress = _quiet, cancel: Cancel | None = None,
                   root: str | None = None) -> dict[str, Any]:
    """Run a paper experiment into a fresh folder and return its figures (PNG, inline) and tables (Markdown).

    Returning the files' contents rather than paths lets a Celery worker on another machine serve the page.
    """
    from splineviz.experiments import run

    out_dir = Path(root or tempfile.gettempdir()) / "splineviz-runs" / f"{name}-{uuid.uuid4().hex[:8]}"
    result = run(name, quick=quick, out_dir=out_dir, progress=progress, cancel=cancel)
    figures = [{"name": p.stem, "png": base64.b64encode(p.read_bytes()).decode("ascii")}
               for p in result.figures if p.suffix == ".png"]
    tables = [{"name": p.stem, "markdown": p.read_text()} for p in result.tables if p.suffix == ".md"]
    return {"name": name, "summary": result.summary, "seconds": result.seconds, "figures": figures,
            "tables": tables, "out_dir": str(out_dir)}


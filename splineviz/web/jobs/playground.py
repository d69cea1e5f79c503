"""Playground work: new sessions, uploads, training chunks and GeoJSON export."""
from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any, Mapping

from torch import nn

from splineviz.nets import ModelLoadError, load_model
from splineviz.train import TrainConfig, fit
from splineviz.web.jobs import Cancel, Progress, quiet
from splineviz.web.params import LIMITS, Playground as P
from splineviz.web.state import PlaygroundConfig, Run, architecture, build, config_dataset, load_weights, \
    train_config
from splineviz.web.tracing import AppFrame, snapshot_stats, trace_frame, trace_model

MAX_FRAMES = 150  # snapshots kept per run (the epoch slider's resolution)
CHUNK_FRAMES = 10  # frames per background job while playing: ~0.5 s of work for a 2-16-16-16-2 net
CHUNK_SECONDS = 2.0  # ... and fewer when frames are slow: about this much tracing per job (the page decides)
FRAME_BYTES = 400 * 2**20  # packed frames a page keeps per run; beyond it every second frame goes (sv.frame.thin)
LARGE_REGIONS = 10_000  # a first frame this large, or a run whose frames take LARGE_SECONDS, is confirmed first
LARGE_SECONDS = 60.0


def frame_stride(epochs: int) -> int:
    """Keep one frame every this many epochs so that a run never holds more than MAX_FRAMES frames."""
    return max(1, math.ceil(epochs / MAX_FRAMES))


def start_run(config: PlaygroundConfig, model: nn.Module | None = None, arch: Mapping[str, Any] | None = None,
              cancel: Cancel | None = None) -> tuple[Run, AppFrame]:
    """A new run (fresh weights, or an uploaded model and its architecture) and its first frame."""
    data = config_dataset(config)
    arch = architecture(config, data) if arch is None else dict(arch)
    model = build(arch) if model is None else model
    result = fit(model, data, TrainConfig(epochs=0))  # a TrainResult for untrained weights, like a trained one's
    frame = trace_frame(model, data.bounds, cancel=cancel, **snapshot_stats(result.snapshots[-1]))
    return Run.encode(config, arch, result), frame


def train_chunk(run: Run, epochs: int, overrides: Mapping[str, Any] | None = None, progress: Progress = quiet,
                cancel: Cancel | None = None) -> tuple[Run, list[AppFrame]]:
    """Continue training ``run`` for ``epochs`` epochs; the new run and a frame per kept epoch.

    The Playground plays by chaining short chunks, so pausing is just not starting the next one and
    nothing is lost; optimizer moments carry over inside the run. ``overrides`` (learning rate, target
    epochs) apply from this chunk on, as in TensorFlow Playground.
    """
    epochs = P.EPOCHS.clean(epochs)
    model, previous = run.decode()
    config = PlaygroundConfig.from_dict({**run.config.to_dict(), **(overrides or {})})
    data = config_dataset(config)
    stride = frame_stride(config.epochs)
    result = fit(model, data, train_config(config, epochs), resume_from=previous, cancel=cancel,
                 progress=lambda f, m: progress(0.7 * f, m))
    fresh = [s for s in result.snapshots[1:] if s.epoch % stride == 0 or s is result.snapshots[-1]]
    frames = []
    for i, snapshot in enumerate(fresh):
        progress(0.7 + 0.3 * i / len(fresh), f"tracing epoch {snapshot.epoch}")
        model.load_state_dict(snapshot.state)
        frames.append(trace_frame(model.eval(), data.bounds, cancel=cancel, **snapshot_stats(snapshot)))
    return Run.encode(config, run.arch, result, run.id), frames


def run_estimate(config: PlaygroundConfig, frame: AppFrame) -> dict[str, Any] | None:
    """What a large run will cost, told before it starts (None for a small one).

    The first frame was traced at initialisation: its regions and trace time are known. Training usually
    adds regions (a 6 x 64 net on Spirals goes from 12k to 85k in 30 epochs), so both are lower bounds.
    """
    regions = int(frame["n_regions"])
    per_frame = float(frame["stats"].get("trace_s", 0.0))
    frames = math.ceil(config.epochs / frame_stride(config.epochs))
    total = per_frame * frames
    if regions < LARGE_REGIONS and total < LARGE_SECONDS:
        return None
    mib = len(json.dumps([frame[k] for k in ("cells", "keys", "lines", "decision")])) / 2**20
    message = (f"A large run: {regions:,} regions at initialisation, and training usually adds more. Each frame "
               f"takes about {per_frame:.1f} s to trace and {mib:.1f} MiB to send, so {config.epochs} epochs "
               f"({frames} frames) take at least {_duration(total)}. Fewer layers or units make it faster.")
    return {"regions": regions, "seconds_per_frame": per_frame, "frames": frames, "seconds": total,
            "mib_per_frame": mib, "message": message}


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


class UploadError(ModelLoadError):
    """An uploaded model the Playground cannot show; the message is meant for the user."""


def read_upload(contents: Any) -> bytes:
    """The bytes of a dcc.Upload data URI, refused before decoding when over the upload limit."""
    if not isinstance(contents, str):
        raise UploadError("no file was received")
    if len(contents) > LIMITS.encoded_model_chars:
        raise UploadError(f"the file is over the limit of {LIMITS.model_bytes / 2**20:.0f} MiB")
    try:
        return base64.b64decode(contents.split(",", 1)[-1], validate=True)
    except (binascii.Error, ValueError) as e:
        raise UploadError(f"the upload is not valid base64 ({e})") from e


def upload_run(raw: bytes, config: PlaygroundConfig, cancel: Cancel | None = None) -> tuple[Run, AppFrame, str]:
    """A run around an uploaded MLP state dict (see nets.load_model for accepted files): run, first frame, and
    the architecture in words. Size, widths and parameters are checked before the model is built."""
    model = load_model(raw, limits=LIMITS.model, max_bytes=LIMITS.model_bytes)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    data = config_dataset(config)
    if linears[0].in_features != 2:
        raise UploadError(f"the model takes {linears[0].in_features} inputs; the Playground draws 2-input networks")
    if linears[-1].out_features != data.n_outputs:
        raise UploadError(f"the model has {linears[-1].out_features} outputs but the {config.dataset} dataset has "
                          f"{data.n_outputs} classes; pick a dataset with {linears[-1].out_features} classes")
    widths = [m.out_features for m in linears[:-1]]
    activation = "leaky_relu" if any(isinstance(m, nn.LeakyReLU) for m in model) else "relu"
    # the controls describe equal widths only; the run itself keeps the model's true architecture
    config = PlaygroundConfig.from_dict({**config.to_dict(), "layers": max(len(widths), 1),
                                         "width": widths[0] if widths else config.width, "activation": activation})
    arch = {"type": "mlp", "in_features": 2, "hidden": widths, "out_features": linears[-1].out_features,
            "activation": activation}
    run, frame = start_run(config, model, arch, cancel)
    shape = "-".join(str(w) for w in [2, *widths, arch["out_features"]])
    return run, frame, f"{shape} {'Leaky ReLU' if activation == 'leaky_relu' else 'ReLU'}"


def geojson(run: Run, weights: str, progress: Progress = quiet, cancel: Cancel | None = None) -> str:
    """A shown frame's partition (its weights, the run's architecture and data bounds) as GeoJSON text."""
    model = load_weights(run.arch, weights)
    partition = trace_model(model, config_dataset(run.config).bounds, progress, cancel)
    return json.dumps(partition.to_geojson())

"""Playground work: new sessions (fresh, uploaded or from a link), training chunks and GeoJSON export."""
from __future__ import annotations

import base64
import binascii
import json
import dataclasses
import math
from typing import Any, Mapping

from torch import nn

from splineviz.bundle import BundleLimits, BundleTooLargeError, decode_state, encode_state, load_bundle, save_bundle
from splineviz.nets import MODEL_FORMATS, ModelLoadError, read_model, save_model
from splineviz.train import TrainConfig, fit
from splineviz.web import ids
from splineviz.web.jobs import Cancel, Progress, quiet
from splineviz.web.params import LIMITS, Playground as P
from splineviz.web.state import TRAINING, PlaygroundConfig, Run, architecture, build, config_dataset, load_weights, \
    train_config
from splineviz.web.tracing import AppFrame, snapshot_stats, trace_frame, trace_model

MAX_FRAMES = 150  # snapshots kept per run (the epoch slider's resolution)
CHUNK_FRAMES = 10  # frames per background job while playing: ~0.5 s of work for a 2-16-16-16-2 net
CHUNK_SECONDS = 2.0  # ... and fewer when frames are slow: about this much tracing per job (the page decides)
CHUNK_BYTES = 4 * 2**20  # ... or large: about this much packed frame data per job, so frames keep arriving every
# second or two as they grow (ten frames of a 6 x 64 net at 25k-100k regions were one 115 MB reply after 9 s), and
# the page takes each reply in short tasks: with 16 MiB, single tasks of 290-620 ms, with 4 MiB none over 150 ms
# (two 60 s runs), for 11 % fewer epochs in the same time
FRAME_BYTES = 400 * 2**20  # packed frames a page keeps per run; beyond it every second frame goes (sv.frame.thin)
LARGE_REGIONS = 10_000  # a first frame this large, or a run whose frames take LARGE_SECONDS, is confirmed first
LARGE_SECONDS = 60.0


def frame_stride(epochs: int) -> int:
    """Keep one frame every this many epochs so that a run never holds more than MAX_FRAMES frames."""
    return max(1, math.ceil(epochs / MAX_FRAMES))


def start_run(config: PlaygroundConfig, model: nn.Module | None = None, arch: Mapping[str, Any] | None = None,
              cancel: Cancel | None = None, epoch: int = 0) -> tuple[Run, AppFrame]:
    """A new run (fresh weights, or given weights and their architecture) and its first frame; ``epoch``
    numbers it (a link's weights were trained for that many epochs)."""
    data = config_dataset(config)
    arch = architecture(config, data) if arch is None else dict(arch)
    model = build(arch) if model is None else model
    result = fit(model, data, TrainConfig(epochs=0))  # a TrainResult for untrained weights, like a trained one's
    if epoch:
        result.snapshots[-1] = dataclasses.replace(result.snapshots[-1], epoch=epoch)
    frame = trace_frame(model, data.bounds, cancel=cancel, **snapshot_stats(result.snapshots[-1]))
    return Run.encode(config, arch, result), frame


def link_value(model: nn.Module, epoch: Any) -> str:
    """What a link carries of the shown frame: "EPOCH.WEIGHTS" (bundle.encode_state, float32 when it fits in
    ``LIMITS.link_chars``, else float16), or "" for a net too large for a link (a session file carries those)."""
    for dtype in ("float32", "float16"):
        try:
            text = encode_state(model.state_dict(), dtype, max_chars=LIMITS.link_chars)
        except BundleTooLargeError:
            continue
        return f"{max(int(epoch or 0), 0)}.{text}"
    return ""


def link_run(config: PlaygroundConfig, link: str, cancel: Cancel | None = None) -> tuple[Run, AppFrame]:
    """The run a link describes: its settings, and the weights of the frame it showed (see link_value)."""
    epoch, _, text = link.partition(".")
    arch = architecture(config, config_dataset(config))
    model = build(arch)
    state = decode_state(text, BundleLimits(max_state_chars=LIMITS.link_chars))
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError) as e:
        raise ModelLoadError(f"the weights do not fit the network the link describes ({type(e).__name__})") from e
    return start_run(config, model.eval(), arch, cancel, epoch=epoch_number(epoch))


def epoch_number(value: Any, default: int = 0) -> int:
    """An epoch number read back from a link or a file: 0 .. the Epochs control's maximum, else ``default``."""
    try:
        return min(max(int(value), 0), int(P.EPOCHS.hi))
    except (TypeError, ValueError):
        return default


def train_chunk(run: Run, epochs: int, overrides: Mapping[str, Any] | None = None, progress: Progress = quiet,
                cancel: Cancel | None = None) -> tuple[Run, list[AppFrame]]:
    """Continue training ``run`` for ``epochs`` epochs; the new run and a frame per kept epoch.

    The Playground plays by chaining short chunks, so pausing is just not starting the next one and
    nothing is lost; optimizer moments carry over inside the run. ``overrides`` (learning rate, target
    epochs) apply from this chunk on, as in TensorFlow Playground.
    """
    epochs = P.EPOCHS.clean(epochs)
    model, previous = run.decode()
    config = PlaygroundConfig.from_dict({**run.config.to_dict(), **{k: v for k, v in (overrides or {}).items()
                                                                     if k in TRAINING}})
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
    mib = frame_mib(frame)
    message = (f"A large run: {regions:,} regions at initialisation, and training usually adds more. Each frame "
               f"takes about {per_frame:.1f} s to trace and {mib:.1f} MiB to send, so {config.epochs} epochs "
               f"({frames} frames) take at least {duration(total)}. Fewer layers or units make it faster.")
    return {"regions": regions, "seconds_per_frame": per_frame, "frames": frames, "seconds": total,
            "mib_per_frame": mib, "message": message}


def frame_mib(frame: AppFrame) -> float:
    """MiB a frame's drawn parts take to send (cells, colour keys, lines, decision boundary)."""
    return len(json.dumps([frame[k] for k in ("cells", "keys", "lines", "decision")])) / 2**20


def duration(seconds: float) -> str:
    """A duration in words for an estimate: "under 1 s", "40 s", "12 min"."""
    if seconds < 1:
        return "under 1 s"
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


class UploadError(ModelLoadError):
    """An uploaded model the Playground cannot show; the message is meant for the user."""


def read_upload(contents: Any, max_bytes: int = LIMITS.model_bytes) -> bytes:
    """The bytes of a dcc.Upload data URI, refused before decoding when over ``max_bytes``."""
    if not isinstance(contents, str):
        raise UploadError("no file was received")
    if len(contents) > LIMITS.encoded_chars(max_bytes):
        raise UploadError(f"the file is over the limit of {max_bytes / 2**20:.0f} MiB")
    try:
        return base64.b64decode(contents.split(",", 1)[-1], validate=True)
    except (binascii.Error, ValueError) as e:
        raise UploadError(f"the upload is not valid base64 ({e})") from e


def upload_run(raw: bytes, config: PlaygroundConfig, cancel: Cancel | None = None) -> tuple[Run, AppFrame, str]:
    """A run around an uploaded model (nets.read_model: a state dict of any Linear chain, or ONNX): run, first
    frame, and the real architecture in words. Size, widths and parameters are checked before the model is
    built. A state dict cannot say its activation: ``config.activation`` is used. The run's config describes
    the model's real widths (``widths``), so the controls can show them."""
    loaded = read_model(raw, activation=config.activation, limits=LIMITS.model, max_bytes=LIMITS.model_bytes)
    arch = loaded.architecture
    if arch is None or arch.get("type") != "mlp":
        raise UploadError(f"the Playground draws fully connected networks; this file holds {loaded.description}")
    data = config_dataset(config)
    if arch["in_features"] != 2:
        raise UploadError(f"the model takes {arch['in_features']} inputs; the Playground draws 2-input networks")
    if arch["out_features"] != data.n_outputs:
        raise UploadError(f"the model has {arch['out_features']} outputs but the {config.dataset} dataset has "
                          f"{data.n_outputs} classes; pick a dataset with {arch['out_features']} classes")
    widths = list(arch["hidden"])  # none: one region cut by one decision line, drawn as it is
    config = PlaygroundConfig.from_dict({**config.to_dict(), "layers": max(len(widths), 1),
                                         "widths": ",".join(map(str, widths)), "activation": arch["activation"]})
    run, frame = start_run(config, loaded.model, arch, cancel)
    return run, frame, loaded.description


def model_file(run: Run, weights: str, fmt: str) -> bytes:
    """A shown frame's model as a ``.pt`` state dict, ``.safetensors`` or ``.onnx`` file (nets.save_model)."""
    if fmt not in MODEL_FORMATS:
        raise ValueError(f"unknown model format {fmt!r}; one of {', '.join(MODEL_FORMATS)}")
    return save_model(load_weights(run.arch, weights), format=fmt)


def session_file(request: Mapping[str, Any], model: Any) -> bytes:
    """A session file (bundle.save_bundle): the run's settings and architecture, every kept frame's weights and
    statistics, the curves, the view, the address and the other pages' stores (``ids.SESSION_STORES``).

    ``request`` is what the page gathered (splineviz-7-playground.js, gather); weights are checked as they are
    decoded. Optimizer moments are not kept: training an opened session continues with fresh ones.
    """
    run = Run.from_json(model)
    frames = list(request.get("frames") or [])[:MAX_FRAMES]
    if not frames:
        raise ModelLoadError("there is nothing to save yet: start a run first")
    states = [load_weights(run.arch, f.get("weights")).state_dict() for f in frames]
    pages = {k: v for k, v in dict(request.get("pages") or {}).items() if k in ids.SESSION_STORES}
    config = {"app": "splineviz", "playground": {"config": run.config.to_dict(), "arch": run.arch,
                                                 "upload": request.get("upload"),
                                                 "stats": [dict(f.get("stats") or {}) for f in frames],
                                                 "history": list(request.get("history") or [])},
              "view": dict(request.get("view") or {}), "search": str(request.get("search") or "")[:4000],
              "pages": pages}
    return save_bundle(config, states)


def open_session(raw: bytes, progress: Progress = quiet, cancel: Cancel | None = None
                 ) -> tuple[Run, list[AppFrame], dict[str, Any]]:
    """A session file read back: the run at its last frame, every frame traced again, and what else it restores
    (``upload``, ``history``, ``view``, ``search``, ``pages``: the other pages' stores, as they were)."""
    bundle = load_bundle(raw, BundleLimits(max_bytes=LIMITS.session_bytes))
    saved = bundle.config.get("playground") if isinstance(bundle.config, dict) else None
    if not isinstance(saved, dict) or not bundle.states:
        raise ModelLoadError("this is not a Playground session file (no run in it)")
    config = PlaygroundConfig.from_dict(saved.get("config"))
    arch = saved.get("arch")
    model = build(arch)
    data = config_dataset(config)
    stats = list(saved.get("stats") or [])
    frames: list[AppFrame] = []
    states = bundle.states[:MAX_FRAMES]
    for i, state in enumerate(states):
        progress(i / len(states), f"tracing frame {i + 1} of {len(states)}")
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise ModelLoadError(f"frame {i + 1}'s weights do not fit the session's network") from e
        numbers = stats[i] if i < len(stats) and isinstance(stats[i], dict) else {}
        kept = {k: numbers.get(k) for k in ("epoch", "loss", "train_metric", "test_metric")}
        kept["epoch"] = epoch_number(kept["epoch"], i)
        frames.append(trace_frame(model.eval(), data.bounds, cancel=cancel, **kept))
    run, _ = start_run(config, model, arch, cancel, epoch=frames[-1]["stats"]["epoch"])
    extra = {"upload": saved.get("upload") if isinstance(saved.get("upload"), str) else None,
             "history": [h for h in saved.get("history") or [] if isinstance(h, dict)],
             "view": bundle.config.get("view") if isinstance(bundle.config.get("view"), dict) else {},
             "search": str(bundle.config.get("search") or ""),
             "pages": {k: v for k, v in dict(bundle.config.get("pages") or {}).items() if k in ids.SESSION_STORES}}
    return run, frames, extra


def geojson(run: Run, weights: str, progress: Progress = quiet, cancel: Cancel | None = None) -> str:
    """A shown frame's partition (its weights, the run's architecture and data bounds) as GeoJSON text."""
    model = load_weights(run.arch, weights)
    partition = trace_model(model, config_dataset(run.config).bounds, progress, cancel)
    return json.dumps(partition.to_geojson())

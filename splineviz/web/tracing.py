"""Exact partitions for the browser, always within the app's region budget and memory cap.

Every web path that traces (frames, pruning views, GeoJSON export, the MNIST slice) goes through here
or passes ``TRACE_BOUNDS``, so that no request can make the server trace with the library's defaults
(2M regions, 6 GiB).

What the browser receives for a partition is a frame: ``splineviz.frame.Frame.to_json()`` (packed cells,
colour keys, segments per layer, decision boundary, ``stats``), which the page's painter draws as is
(``assets/splineviz-2-gl.js``). The app adds one key beside the Frame's own: ``weights``, the encoded state
dict of the model it shows, so that any shown frame can be exported (GeoJSON) or reused. ``stats`` carry the
epoch's numbers and ``trace_s``, the seconds the trace and frame took, from which the page sizes its
training chunks and the Playground estimates large runs.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np
from torch import nn

from splineviz.data import Dataset
from splineviz.figures import empty_figure, side_by_side_layout
from splineviz.frame import Frame, pack
from splineviz.nets import to_ops
from splineviz.partition import Partition, trace
from splineviz.train import Snapshot
from splineviz.web.codec import encode_blob
from splineviz.web.params import LIMITS

TRACE_BOUNDS = {"budget": LIMITS.regions, "max_bytes": LIMITS.trace_bytes}
AppFrame = dict[str, Any]  # Frame.to_json() plus "weights" (see the module docstring)


def trace_model(model: nn.Module, bounds: Sequence[float], progress: Callable | None = None,
                cancel: Callable | None = None, budget: int = LIMITS.regions) -> Partition:
    """Exact partition of a 2-input model over ``bounds`` (xmin, xmax, ymin, ymax); ``budget`` (regions) may only
    be lowered below the app's."""
    options = {**TRACE_BOUNDS, "budget": min(budget, LIMITS.regions)}
    return trace(to_ops(model), bounds=tuple(bounds), progress=progress, cancel=cancel, **options)


def trace_frame(model: nn.Module, bounds: Sequence[float], progress: Callable | None = None,
                cancel: Callable | None = None, budget: int = LIMITS.regions, **stats: Any) -> AppFrame:
    """The model's partition as a frame carrying its weights, and in ``stats`` how long it took (``trace_s``)."""
    return traced_frame(model, bounds, progress, cancel, budget, **stats)[1]


def traced_frame(model: nn.Module, bounds: Sequence[float], progress: Callable | None = None,
                 cancel: Callable | None = None, budget: int = LIMITS.regions,
                 **stats: Any) -> tuple[Partition, AppFrame]:
    """``trace_frame`` with the partition it drew, for work that needs more of it (a pruning step's change)."""
    start = time.perf_counter()
    partition = trace_model(model, bounds, progress, cancel, budget)
    frame = Frame.from_partition(partition, bounds, **stats)
    frame.stats["trace_s"] = round(time.perf_counter() - start, 4)
    return partition, {**frame.to_json(), "weights": encode_blob(model.state_dict())}


def snapshot_stats(snapshot: Snapshot) -> dict[str, Any]:
    return {"epoch": snapshot.epoch, "loss": snapshot.train_loss, "train_metric": snapshot.train_metric,
            "test_metric": snapshot.test_metric}


def points(data: Dataset, split: str = "train") -> dict[str, Any]:
    """A split's points (classification: with their classes), packed for the browser's painter."""
    x, y = (data.x_train, data.y_train) if split == "train" else (data.x_test, data.y_test)
    classes = y if data.task == "classification" else np.zeros(len(x))
    return {"x": pack(x[:, 0], "f4"), "y": pack(x[:, 1], "f4"), "c": pack(classes, "i2")}


def panels(frames: Sequence[AppFrame], titles: Sequence[str], title: str, classes: int) -> dict[str, Any]:
    """Frames side by side for the browser's painters (splineviz-8-pages.js, panels): the frames, the axes of
    ``figures.side_by_side_layout``, and the export's title and number of classes."""
    return {"frames": list(frames), "layout": side_by_side_layout([f["bounds"] for f in frames], titles),
            "title": title, "classes": classes}


def message(text: str) -> dict[str, Any]:
    """What panels show instead of frames: a message on an empty figure."""
    return {"figure": empty_figure(text)}

"""Exact partitions for the browser, always within the app's region budget and memory cap.

Every web path that traces (frames, pruning views, GeoJSON export, the MNIST slice) goes through here
or passes ``TRACE_BOUNDS``, so that no request can make the server trace with the library's defaults
(2M regions, 6 GiB).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from torch import nn

from splineviz.data import Dataset
from splineviz.figures import LegacyFrame, partition_frame
from splineviz.frame import pack
from splineviz.nets import to_ops
from splineviz.partition import Partition, trace
from splineviz.train import Snapshot
from splineviz.web.codec import encode_blob
from splineviz.web.params import LIMITS

TRACE_BOUNDS = {"budget": LIMITS.regions, "max_bytes": LIMITS.trace_bytes}


def trace_model(model: nn.Module, bounds: Sequence[float], progress: Callable | None = None,
                cancel: Callable | None = None) -> Partition:
    """Exact partition of a 2-input model over ``bounds`` (xmin, xmax, ymin, ymax)."""
    return trace(to_ops(model), domain=tuple(bounds), progress=progress, cancel=cancel, **TRACE_BOUNDS)


def trace_frame(model: nn.Module, bounds: Sequence[float], progress: Callable | None = None,
                cancel: Callable | None = None, **stats: Any) -> LegacyFrame:
    """The model's partition as a frame (see figures.partition_frame).

    The frame carries its weights so that any shown frame can be exported (GeoJSON) or reused.
    """
    partition = trace_model(model, bounds, progress, cancel)
    return partition_frame(partition, bounds, weights=encode_blob(model.state_dict()), **stats)


def snapshot_stats(snapshot: Snapshot) -> dict[str, Any]:
    return {"epoch": snapshot.epoch, "loss": snapshot.train_loss, "train_metric": snapshot.train_metric,
            "test_metric": snapshot.test_metric}


def points(data: Dataset) -> dict[str, Any]:
    """Training points, packed for the browser's renderer."""
    return {"x": pack(data.x_train[:, 0], "f4"), "y": pack(data.x_train[:, 1], "f4"),
            "c": pack(data.y_train, "i2")}

"""What the Playground says about the region under the pointer and about each unit, from the exact partition.

A hovered point is located in the traced partition (not on a grid): its region's id, the activation pattern
of every layer as the tracer recorded it, the logits and probabilities at the point and the region's exact
area. The partition of a shown frame is traced once per process and kept (``_partition``), so moving the
pointer costs a lookup; frames above ``LIMITS.explain_regions`` are not traced in the web process at all.
The unit strip is a thumbnail of every hidden unit's pre-activation over the domain (a picture, like TF
Playground's), plus the unit's incoming weights; its exact line is what the painter highlights.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from splineviz.nets import to_ops
from splineviz.partition import Partition, trace
from splineviz.probe import NONLINEARITIES, grid_probe, preactivations
from splineviz.web.images import rgb_data_uri
from splineviz.web.params import LIMITS
from splineviz.web.state import load_weights

_CACHE: OrderedDict[str, Partition] = OrderedDict()
_CACHE_SIZE = 8
THUMB = 24  # pixels per side of a unit's thumbnail (before upscaling)


def _key(arch: Mapping[str, Any], weights: str, bounds: Sequence[float]) -> str:
    text = repr((sorted(arch.items()), list(map(float, bounds)))) + weights
    return hashlib.sha256(text.encode()).hexdigest()


def shown_model(view: Mapping[str, Any]) -> nn.Module:
    """The model of a shown frame (``{"arch", "weights", "bounds"}`` from the page), within the app's limits."""
    return load_weights(view["arch"], view["weights"])


def partition_of(view: Mapping[str, Any]) -> Partition:
    """The shown frame's exact partition, traced once per process (at most ``LIMITS.explain_regions``)."""
    key = _key(view["arch"], view["weights"], view["bounds"])
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    model = shown_model(view)
    partition = trace(to_ops(model), bounds=tuple(view["bounds"]), budget=LIMITS.explain_regions,
                      max_bytes=LIMITS.trace_bytes)
    _CACHE[key] = partition
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return partition


def region_info(partition: Partition, x: float, y: float) -> dict[str, Any] | None:
    """The region containing (x, y): id, activation pattern per layer, logits, probabilities, area.

    None outside the domain. ``pattern[l]`` is a string of "1"/"0" per unit (pre-activation > 0 or not),
    as recorded while tracing; logits are the network's outputs at the point itself.
    """
    point = np.array([[x, y]], dtype=np.float64)
    region = int(partition.locate(point)[0])
    if region < 0:
        return None
    logits = partition.outputs_at(point)[0]
    if len(logits) == 1:  # one output: its sign is the class
        probs = np.array([1 - _sigmoid(logits[0]), _sigmoid(logits[0])])
    else:
        shifted = np.exp(logits - logits.max())
        probs = shifted / shifted.sum()
    pattern = ["".join("1" if on else "0" for on in partition.codes(layer)[region])
               for layer in range(partition.n_layers)]
    return {"x": float(x), "y": float(y), "region": region, "n_regions": int(partition.n_regions),
            "pattern": pattern, "logits": [float(v) for v in logits], "probabilities": [float(p) for p in probs],
            "area": float(partition.areas[region])}


def _sigmoid(z: float) -> float:
    return float(1 / (1 + np.exp(-z)))


def unit_strip(model: nn.Module, bounds: Sequence[float], size: int = THUMB) -> list[list[dict[str, Any]]]:
    """Per hidden layer, per unit: a thumbnail of its pre-activation over ``bounds`` (orange < 0 < blue,
    white at its zero line) and its incoming weights and bias."""
    if not any(isinstance(m, NONLINEARITIES) for m in model.modules()):
        return []  # a linear model (an upload without hidden layers) has no hidden units to show
    probe = grid_probe(tuple(bounds), size)  # row-major from (xmin, ymin)
    with torch.no_grad():
        layers = [z.numpy() for z in preactivations(model, probe)]
    return [[{"image": rgb_data_uri(diverging(z[:, unit].reshape(size, size)[::-1]), scale=2),  # top row: ymax
              **unit_weights(model, layer, unit)} for unit in range(z.shape[1])] for layer, z in enumerate(layers)]


def unit_weights(model: nn.Module, layer: int, unit: int) -> dict[str, Any]:
    """A hidden unit's incoming weights and bias (layer and unit 0-based)."""
    linear = [m for m in model.modules() if isinstance(m, nn.Linear)][layer]
    bias = float(linear.bias[unit].detach()) if linear.bias is not None else 0.0
    return {"weights": [float(w) for w in linear.weight[unit].detach()], "bias": bias}


ORANGE = np.array([230, 85, 13], dtype=np.float64)
BLUE = np.array([49, 130, 189], dtype=np.float64)


def diverging(values: np.ndarray) -> np.ndarray:
    """(h, w) values -> (h, w, 3) uint8: white at 0, towards orange below and blue above (TF Playground's)."""
    scale = float(np.abs(values).max()) or 1.0
    t = np.clip(values / scale, -1, 1)[..., None]
    white = np.full(3, 255.0)
    colour = np.where(t < 0, white + (ORANGE - white) * -t, white + (BLUE - white) * t)
    return colour.round().astype(np.uint8)

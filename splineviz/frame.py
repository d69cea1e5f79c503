"""A typed, packed snapshot of a partition: what a WebGL or canvas painter needs, and nothing more.

A `Frame` is built from a traced `Partition` without a second forward pass (classes come from
the outputs the trace left at every vertex, colour keys from the codes it recorded) and travels
as JSON whose arrays are packed little-endian typed arrays, ``{"dtype": "f4", "bdata": base64}``,
the form plotly.js reads as is. numpy only: no torch, Dash or plotly here.

JSON layout (schema 1)::

    {"schema": 1,
     "bounds": [xmin, xmax, ymin, ymax],
     "n_regions": int,                       # linear regions
     "layer_regions": [int, ...],            # regions after each nonlinear layer (cumulative)
     "cells": {"x": f4, "y": f4,             # class cells' corners, counter-clockwise, concatenated
               "offsets": i4,                # cell i: corners offsets[i]:offsets[i+1] (n_cells + 1 entries)
               "class": i2,                  # predicted class of each cell
               "region": i4},                # the linear region each cell lies in
     "keys": [u1, ...],                      # per layer: colour key of each region (0..10)
     "lines": [{"segments": f4,              # per layer: x0, y0, x1, y1 of each boundary segment
                "unit": i4}, ...],           # the unit whose zero set each segment lies on
     "decision": f4,                         # x0, y0, x1, y1 of each decision-boundary segment
     "stats": {...}}                         # free-form: epoch, loss, accuracy, ...

Class cells are the regions cut along the decision boundary, so fills follow it exactly; shading by
activation code paints each cell with keys[layer][region]. Colour keys of regions that differ in
one unit of layers 0..l always differ (see `colour_keys`).
"""
from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from .partition import Partition

SCHEMA_VERSION = 1
N_CODE_COLOURS = 11  # prime: see colour_keys
_KEY_SEED = 12345


def pack(array: Any, dtype: str) -> dict[str, str]:
    """A numpy array as a typed-array spec {dtype, bdata}: little-endian bytes, base64 (plotly.js reads it as is).

    >>> pack([1.5, -2.0], "f4")
    {'dtype': 'f4', 'bdata': 'AADAPwAAAMA='}
    """
    a = np.ascontiguousarray(np.asarray(array).reshape(-1), dtype=np.dtype(dtype).newbyteorder("<"))
    return {"dtype": dtype, "bdata": base64.b64encode(a.tobytes()).decode("ascii")}


def unpack(spec: Mapping[str, str]) -> np.ndarray:
    """The array a typed-array spec holds (read-only, native byte order values)."""
    return np.frombuffer(base64.b64decode(spec["bdata"]), dtype=np.dtype(spec["dtype"]).newbyteorder("<"))


def colour_keys(partition: Partition) -> list[np.ndarray]:
    """Colour key (0..10) per region for the partition made by layers 0..l, for every layer l.

    Each unit adds a fixed weight in 1..10 to the key when active, modulo 11: two regions whose
    codes differ in one unit (neighbours across one line) differ by that weight, which 11, a
    prime, never divides, so neighbouring regions never share a colour.
    """
    rng = np.random.default_rng(_KEY_SEED)
    key = np.zeros(partition.n_regions, dtype=np.int64)
    keys = []
    for layer, width in enumerate(partition.layer_widths):
        weights = rng.integers(1, N_CODE_COLOURS, size=width)
        key = (key + partition.code_sums(layer, weights)) % N_CODE_COLOURS
        keys.append(key.astype(np.uint8))
    return keys


def _segments(segments: np.ndarray) -> np.ndarray:
    return np.asarray(segments, dtype=np.float32).reshape(-1, 4)


@dataclass
class Frame:
    """One partition, packed for painting (see the module docstring for the JSON form).

    Attributes
    ----------
    bounds : (xmin, xmax, ymin, ymax)
        The view's extent.
    n_regions : int
        Linear regions.
    layer_regions : list of int
        Regions after each nonlinear layer.
    cell_x, cell_y : float32 arrays
        Corners of all class cells, concatenated; cell i owns cell_offsets[i]:cell_offsets[i + 1].
    cell_offsets : int32 array, n_cells + 1 entries
    cell_class : int16 array
        Predicted class of each cell.
    cell_region : int32 array
        Linear region of each cell (indexes `keys`).
    keys : list of uint8 arrays
        Per layer, the colour key of each region (neighbouring regions always differ).
    segments : list of float32 (k, 4) arrays
        Per layer, boundary segments as x0, y0, x1, y1.
    segment_units : list of int32 arrays
        Per layer, the unit each segment belongs to (-1: unknown).
    decision : float32 (k, 4) array
        Decision-boundary segments.
    stats : dict
        Free-form numbers to label the frame with (epoch, loss, accuracy, ...).

    Examples
    --------
    >>> import numpy as np
    >>> from splineviz.partition import Affine, ReLU, trace
    >>> ops = [Affine(np.eye(2), np.zeros(2)), ReLU(), Affine(np.array([[1.0, -1.0]]), np.zeros(1))]
    >>> frame = Frame.from_partition(trace(ops, bounds=(-1, 1, -1, 1)), (-1, 1, -1, 1), epoch=3)
    >>> frame.n_regions, frame.n_cells, [len(s) for s in frame.segments], frame.stats  # x = y cuts one region
    (4, 5, [4], {'epoch': 3})
    >>> again = Frame.from_json(frame.to_json())
    >>> bool((again.cell_class == frame.cell_class).all()), again.keys[0].dtype.name
    (True, 'uint8')
    """

    bounds: tuple[float, float, float, float]
    n_regions: int
    layer_regions: list[int]
    cell_x: np.ndarray
    cell_y: np.ndarray
    cell_offsets: np.ndarray
    cell_class: np.ndarray
    cell_region: np.ndarray
    keys: list[np.ndarray]
    segments: list[np.ndarray]
    segment_units: list[np.ndarray]
    decision: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)
    schema: int = SCHEMA_VERSION

    @property
    def n_cells(self) -> int:
        return len(self.cell_offsets) - 1

    @property
    def n_layers(self) -> int:
        return len(self.segments)

    @classmethod
    def from_partition(cls, partition: Partition, bounds: Sequence[float], **stats: Any) -> Frame:
        """Everything from the partition's own arrays: no forward pass, no per-region Python objects."""
        cells = partition.cells
        return cls(
            bounds=tuple(float(b) for b in bounds),  # type: ignore[arg-type]
            n_regions=int(partition.n_regions),
            layer_regions=[int(c) for c in partition.layer_region_counts],
            cell_x=cells.xy[:, 0].astype(np.float32),
            cell_y=cells.xy[:, 1].astype(np.float32),
            cell_offsets=cells.offsets.astype(np.int32),
            cell_class=cells.classes.astype(np.int16),
            cell_region=cells.regions.astype(np.int32),
            keys=colour_keys(partition),
            segments=[_segments(partition.segments(layer)) for layer in range(partition.n_layers)],
            segment_units=[partition.segment_units(layer).astype(np.int32) for layer in range(partition.n_layers)],
            decision=_segments(partition.decision_boundary),
            stats=dict(stats),
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict: packed typed arrays plus plain numbers (json.dumps takes it as is)."""
        return {
            "schema": self.schema,
            "bounds": list(self.bounds),
            "n_regions": self.n_regions,
            "layer_regions": list(self.layer_regions),
            "cells": {"x": pack(self.cell_x, "f4"), "y": pack(self.cell_y, "f4"),
                      "offsets": pack(self.cell_offsets, "i4"), "class": pack(self.cell_class, "i2"),
                      "region": pack(self.cell_region, "i4")},
            "keys": [pack(k, "u1") for k in self.keys],
            "lines": [{"segments": pack(s, "f4"), "unit": pack(u, "i4")}
                      for s, u in zip(self.segments, self.segment_units)],
            "decision": pack(self.decision, "f4"),
            "stats": dict(self.stats),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Frame:
        """The Frame that to_json made; refuses other schema versions with a clear message."""
        if data.get("schema") != SCHEMA_VERSION:
            raise ValueError(f"frame schema {data.get('schema')!r} is not supported (this version reads {SCHEMA_VERSION})")
        cells = data["cells"]
        return cls(
            bounds=tuple(float(b) for b in data["bounds"]),  # type: ignore[arg-type]
            n_regions=int(data["n_regions"]),
            layer_regions=[int(c) for c in data["layer_regions"]],
            cell_x=unpack(cells["x"]), cell_y=unpack(cells["y"]), cell_offsets=unpack(cells["offsets"]),
            cell_class=unpack(cells["class"]), cell_region=unpack(cells["region"]),
            keys=[unpack(k) for k in data["keys"]],
            segments=[unpack(line["segments"]).reshape(-1, 4) for line in data["lines"]],
            segment_units=[unpack(line["unit"]) for line in data["lines"]],
            decision=unpack(data["decision"]).reshape(-1, 4),
            stats=dict(data.get("stats", {})),
        )


__all__ = ["Frame", "N_CODE_COLOURS", "SCHEMA_VERSION", "colour_keys", "pack", "unpack"]

"""A traced partition: its graph plus everything derived from it, computed on first use.

Tracing stores only the planar graph; polygons, codes, areas and shapely geometry are derived
lazily because most callers need only some of them, and on large nets each costs about as
much as the trace itself.
"""
from __future__ import annotations

from functools import cached_property
from typing import Any, Sequence

import numpy as np
import shapely

from . import geometry
from .domain import Plane
from .graph import BORDER, PlanarGraph
from .ops import Affine, LeakyReLU, MaxPool, Op, ReLU, apply


class Partition:
    """Regions (convex polygons), labelled boundary segments and the decision boundary."""

    def __init__(self, graph: PlanarGraph, ops: Sequence[Op], widths: list[int], counts: list[int],
                 overlay: PlanarGraph, decision: np.ndarray, decision_classes: tuple[int, int] | None,
                 plane: Plane | None) -> None:
        # views: the traced graph is not refined any further
        self.vertices = graph.coords
        table = graph.edge_table
        self.edges = table[:, :2]
        self.edge_faces = table[:, 2:4]
        self.edge_layer = table[:, 4]
        self.edge_unit = table[:, 5]
        self.n_regions = graph.n_faces
        self.n_unresolved = graph.n_unresolved
        self.ops = list(ops)  # in plane coordinates: the first affine map takes (a, b)
        self.layer_widths = widths
        self.layer_region_counts = counts
        self.decision_boundary = decision
        self._overlay = overlay
        self.decision_classes = decision_classes
        self.plane = plane

    @property
    def n_layers(self) -> int:
        return len(self.layer_widths)

    @property
    def euler_regions(self) -> int:
        """E - V + 1: the region count Euler's formula demands of a connected planar graph."""
        return len(self.edges) - len(self.vertices) + 1

    # -- boundaries --------------------------------------------------------------------------
    def segments(self, layer: int | None = None, unit: int | None = None) -> np.ndarray:
        """(k, 2, 2) boundary segments of one layer (and unit); None: every internal edge."""
        mask = self.edge_layer != BORDER
        if layer is not None:
            mask &= self.edge_layer == layer
        if unit is not None:
            mask &= self.edge_unit == unit
        e = self.edges[mask]
        return np.stack([self.vertices[e[:, 0]], self.vertices[e[:, 1]]], axis=1)

    def segment_units(self, layer: int) -> np.ndarray:
        """Unit label of each segment returned by segments(layer), in the same order."""
        return self.edge_unit[self.edge_layer == layer]

    def boundaries(self, layer: int) -> list[np.ndarray]:
        """Polylines of one layer's boundary, merged from its segments."""
        return geometry.merge_segments(self.segments(layer))

    # -- regions -----------------------------------------------------------------------------
    @cached_property
    def _polygon_index(self) -> tuple[np.ndarray, np.ndarray]:
        """(ptr, vertex ids): region r's corners are ids[ptr[r]:ptr[r+1]], counter-clockwise."""
        return geometry.face_cycles(self.vertices, self.edges, self.edge_faces, self.n_regions)

    @property
    def regions(self) -> list[np.ndarray]:
        ptr, ids = self._polygon_index
        xy = self.vertices[ids]
        return np.split(xy, ptr[1:-1])

    @cached_property
    def areas(self) -> np.ndarray:
        ptr, ids = self._polygon_index
        return geometry.polygon_areas(self.vertices, ptr, ids)

    @cached_property
    def interior_points(self) -> np.ndarray:
        """The mean of each region's corners: strictly inside, since regions are convex."""
        ptr, ids = self._polygon_index
        counts = np.diff(ptr)
        xy = self.vertices[ids]
        face = np.repeat(np.arange(self.n_regions), counts)
        return np.stack([np.bincount(face, xy[:, i], self.n_regions) for i in (0, 1)], axis=1) / counts[:, None]

    @cached_property
    def _layer_values(self) -> list[np.ndarray]:
        """Pre-activations (MaxPool: inputs) of every nonlinear layer, and the outputs, at interior points."""
        h = self.interior_points
        seen: list[np.ndarray] = []
        for op in self.ops:
            if isinstance(op, (ReLU, LeakyReLU, MaxPool)):
                seen.append(h)
            h = apply(op, h)
        seen.append(h)
        return seen

    def codes(self, layer: int) -> np.ndarray:
        """Activation code per region: (F, width) bool for ReLU layers; MaxPool: (F, groups) position of each max."""
        if not 0 <= layer < self.n_layers:
            raise IndexError(f"layer {layer} out of range: the network has {self.n_layers} nonlinear layers")
        values = self._layer_values[layer]
        op = [o for o in self.ops if not isinstance(o, Affine)][layer]
        if isinstance(op, MaxPool):
            return np.stack([values[:, list(g)].argmax(axis=1) for g in op.groups], axis=1)
        return values > 0

    def outputs_at(self, points: np.ndarray) -> np.ndarray:
        """Network outputs at plane points (k, 2)."""
        h = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        for op in self.ops:
            h = apply(op, h)
        return h

    @cached_property
    def region_classes(self) -> np.ndarray:
        """Predicted class at each region's interior point (a region may straddle the decision boundary)."""
        return self._predict(self._layer_values[-1])

    def _predict(self, out: np.ndarray) -> np.ndarray:
        """Class from outputs: sign for one output; with decision_classes, the winner of that pair."""
        if out.shape[1] == 1:
            return (out[:, 0] > 0).astype(np.int64)
        if self.decision_classes is not None:
            pair = np.asarray(self.decision_classes)
            return pair[out[:, pair].argmax(axis=1)]
        return out.argmax(axis=1)

    def class_cells(self) -> tuple[list[np.ndarray], np.ndarray]:
        """Regions cut along the decision boundary: convex cells of one predicted class each, for shading."""
        o = self._overlay
        table = o.edge_table
        ptr, ids = geometry.face_cycles(o.coords, table[:, :2], table[:, 2:4], o.n_faces)
        xy = o.coords[ids]
        centres = np.stack([np.add.reduceat(xy[:, i], ptr[:-1]) for i in (0, 1)], axis=1) / np.diff(ptr)[:, None]
        return np.split(xy, ptr[1:-1]), self._predict(self.outputs_at(centres))

    def locate(self, points: np.ndarray) -> np.ndarray:
        """Region id of each plane point, -1 outside the domain."""
        return geometry.locate(self._tree, np.asarray(points, dtype=np.float64).reshape(-1, 2))

    @cached_property
    def _tree(self) -> shapely.STRtree:
        return shapely.STRtree(geometry.region_polygons(self.vertices, *self._polygon_index))

    def to_geojson(self) -> dict:
        """Regions, per-layer boundaries and the decision boundary as a GeoJSON FeatureCollection."""
        return geometry.to_geojson(self)

    def plot(self, **options: Any) -> Any:
        """A plotly Figure of this partition: see ``splineviz.plot.plot_partition`` for the options.

        plotly is imported here, on first use, so that the numeric core loads without it (the pandas ``.plot``
        pattern): tracing in a worker or a script never pays for the plotting library.
        """
        from splineviz.plot import plot_partition

        return plot_partition(self, **options)

    def __repr__(self) -> str:
        return (f"Partition({self.n_regions} regions, layers {self.layer_widths}, "
                f"{len(self.decision_boundary)} decision segments)")


__all__ = ["Partition"]

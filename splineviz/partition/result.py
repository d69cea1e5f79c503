"""A traced partition: its graph plus everything derived from it, computed on first use.

Tracing keeps the planar graph (with the network's outputs at every vertex), the decision
overlay and, per nonlinear layer, each face's activation code and parent. Everything else
(polygons, areas, codes per region, classes, shapely geometry) is derived from those arrays
lazily, without a second forward pass: outputs are affine inside every face, so their mean over
a face's corners is their value at its centre.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple, Sequence

import numpy as np
import shapely

from . import geometry
from .domain import Plane
from .graph import BORDER, E0, E1, FA, FB, LAYER, UNIT, PlanarGraph
from .ops import Op


@dataclass(frozen=True)
class LayerRecord:
    """What tracing one nonlinear layer leaves behind, per face of the partition after it."""

    op: Op
    width: int  # units (or pooled outputs)
    n_faces: int
    codes: np.ndarray  # as op.cut returned them; op.decode turns them into op.code's form
    parent: np.ndarray  # the face before this layer that each face was cut from


class Polygons(NamedTuple):
    """Convex polygons as CSR: polygon i has corners xy[offsets[i]:offsets[i + 1]], counter-clockwise."""

    offsets: np.ndarray
    xy: np.ndarray


class Cells(NamedTuple):
    """Class cells (regions cut along the decision boundary) as CSR polygons, with class and region per cell."""

    offsets: np.ndarray
    xy: np.ndarray
    classes: np.ndarray
    regions: np.ndarray


class Partition:
    """The exact partition of a network's input plane: regions, boundaries, decision boundary.

    Made by `trace`. Regions are the faces of a planar graph: convex polygons on which the
    network is affine. Arrays (`vertices`, `edges`, ...) are views of the traced graph; derived
    quantities are computed on first use.

    Attributes
    ----------
    n_regions : int
        Number of linear regions.
    layer_region_counts : list of int
        Regions after each nonlinear layer (cumulative: the partition made by layers 0..l).
    layer_widths : list of int
        Units per nonlinear layer.
    vertices : (V, 2) array
        Corner coordinates in the plane.
    edges, edge_faces : (E, 2) int arrays
        Ends of every edge, and the regions on its two sides (-1: outside the domain).
    edge_layer, edge_unit : (E,) int arrays
        Which layer and unit made each edge (layer -1: the domain's border).
    decision_boundary : (k, 2, 2) array
        Segments where the predicted class changes.

    Examples
    --------
    >>> import numpy as np
    >>> from splineviz.partition import Affine, ReLU, trace
    >>> ops = [Affine(np.array([[1.0, 0.0], [0.0, 1.0]]), np.zeros(2)), ReLU(), Affine(np.array([[1.0, -1.0]]), np.zeros(1))]
    >>> p = trace(ops, bounds=(-1, 1, -1, 1))
    >>> p.n_regions, p.codes(0).sum(axis=1).tolist().count(2)
    (4, 1)
    >>> offsets, xy = p.polygons
    >>> np.diff(offsets).tolist(), round(float(p.areas.sum()), 9)
    ([4, 4, 4, 4], 4.0)
    >>> int(p.locate(np.array([[0.5, -0.5]]))[0]) == int(np.flatnonzero(p.region_classes == 1)[0])
    True
    """

    def __init__(self, graph: PlanarGraph, ops: Sequence[Op], layers: list[LayerRecord], overlay: PlanarGraph,
                 decision: np.ndarray, decision_classes: tuple[int, int] | None, plane: Plane | None) -> None:
        # views: the traced graph is not refined any further
        self._graph = graph
        self.vertices = graph.coords
        table = graph.edge_table
        self.edges = table[:, E0: E1 + 1]
        self.edge_faces = table[:, FA: FB + 1]
        self.edge_layer = table[:, LAYER]
        self.edge_unit = table[:, UNIT]
        self.n_regions = graph.n_faces
        self.n_unresolved = graph.n_unresolved
        self.ops = list(ops)  # in plane coordinates: the first affine map takes (a, b)
        self._layers = layers
        self.layer_widths = [record.width for record in layers]
        self.layer_region_counts = [record.n_faces for record in layers]
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
        return self._graph.cycles()

    @cached_property
    def polygons(self) -> Polygons:
        """Every region as a convex polygon, CSR (offsets, xy), corners counter-clockwise."""
        ptr, ids = self._polygon_index
        return Polygons(ptr, self.vertices[ids])

    @property
    def regions(self) -> list[np.ndarray]:
        """Every region's corners as a (k, 2) array (a list; `polygons` gives the same packed)."""
        offsets, xy = self.polygons
        return np.split(xy, offsets[1:-1])

    @cached_property
    def areas(self) -> np.ndarray:
        ptr, ids = self._polygon_index
        return geometry.polygon_areas(self.vertices, ptr, ids)

    @cached_property
    def interior_points(self) -> np.ndarray:
        """The mean of each region's corners: strictly inside, since regions are convex."""
        offsets, xy = self.polygons
        counts = np.diff(offsets)
        face = np.repeat(np.arange(self.n_regions), counts)
        return np.stack([np.bincount(face, xy[:, i], self.n_regions) for i in (0, 1)], axis=1) / counts[:, None]

    def _ancestors(self, layer: int) -> np.ndarray:
        """The face of the partition after `layer` that each region lies in."""
        face = np.arange(self.n_regions)
        for record in self._layers[:layer:-1]:
            face = record.parent[face]
        return face

    def codes(self, layer: int) -> np.ndarray:
        """Activation code per region: (F, width) bool for ReLU layers; MaxPool: (F, groups) position of each max.

        Recorded while tracing (the sign pattern of every face as it was cut), not evaluated again.
        """
        if not 0 <= layer < self.n_layers:
            raise IndexError(f"layer {layer} out of range: the network has {self.n_layers} nonlinear layers")
        record = self._layers[layer]
        return record.op.decode(record.codes, record.width)[self._ancestors(layer)]

    def code_sums(self, layer: int, weights: np.ndarray) -> np.ndarray:
        """codes(layer) @ weights per region (integer weights), without unpacking the recorded codes.

        Hinge layers keep their signs packed eight units a byte; each byte column is summed through
        a 256-entry table, once per face of that layer, and only then spread over the regions.
        """
        record = self._layers[layer]
        weights = np.asarray(weights, dtype=np.int64)
        if record.codes.dtype != np.uint8:  # max-pool positions
            return (record.op.decode(record.codes, record.width).astype(np.int64) @ weights)[self._ancestors(layer)]
        bits = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1, bitorder="little").astype(np.int64)
        padded = np.zeros(8 * record.codes.shape[1], dtype=np.int64)
        padded[: record.width] = weights
        sums = np.zeros(record.codes.shape[0], dtype=np.int64)
        for byte in range(record.codes.shape[1]):
            sums += (bits @ padded[8 * byte: 8 * byte + 8]).take(record.codes[:, byte])
        return sums[self._ancestors(layer)]

    def outputs_at(self, points: np.ndarray) -> np.ndarray:
        """Network outputs at plane points (k, 2)."""
        h = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        for op in self.ops:
            h = op.forward(h)
        return h

    @cached_property
    def region_outputs(self) -> np.ndarray:
        """Network outputs at each region's interior point, from the outputs at its corners."""
        graph = self._graph
        return graph.face_means(np.arange(graph.values.shape[1]))

    @cached_property
    def region_classes(self) -> np.ndarray:
        """Predicted class at each region's interior point (a region may straddle the decision boundary)."""
        return self._predict(self.region_outputs)

    def _predict(self, out: np.ndarray) -> np.ndarray:
        """Class from outputs: sign for one output; with decision_classes, the winner of that pair."""
        if out.shape[1] == 1:
            return (out[:, 0] > 0).astype(np.int64)
        if self.decision_classes is not None:
            pair = np.asarray(self.decision_classes)
            return pair[out[:, pair].argmax(axis=1)]
        return out.argmax(axis=1)

    @cached_property
    def cells(self) -> Cells:
        """Regions cut along the decision boundary: convex cells of one class each, as CSR.

        The class comes from the overlay's outputs at the cell's corners (affine inside the cell,
        so their mean is the value at its centre); the region from the overlay's face origins.
        """
        overlay = self._overlay
        ptr, ids = overlay.cycles()
        if overlay is self._graph:
            classes, regions = self.region_classes, np.arange(self.n_regions)
        else:
            means = overlay.face_means(np.arange(overlay.values.shape[1]))
            regions = overlay.origin
            if means.shape[1] > 1:  # the tournament's logits
                classes = means.argmax(axis=1)
            elif self.ops[-1].out_features == 1:  # type: ignore[attr-defined]
                classes = (means[:, 0] > 0).astype(np.int64)
            else:  # the difference of two outputs: second minus first
                pair = np.asarray(self.decision_classes if self.decision_classes is not None else (0, 1))
                classes = pair[(means[:, 0] > 0).astype(np.int64)]
        return Cells(ptr, overlay.coords[ids], np.asarray(classes, dtype=np.int64), np.asarray(regions, dtype=np.int64))

    def class_cells(self) -> tuple[list[np.ndarray], np.ndarray]:
        """Class cells as a list of (k, 2) polygons and their classes (see `cells` for the packed form)."""
        cells = self.cells
        return np.split(cells.xy, cells.offsets[1:-1]), cells.classes

    def locate(self, points: np.ndarray) -> np.ndarray:
        """Region id of each plane point, -1 outside the domain (on a shared edge: the lowest id)."""
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


__all__ = ["Cells", "LayerRecord", "Partition", "Polygons"]

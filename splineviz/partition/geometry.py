"""Geometry services on a traced graph: polygons, areas, merged lines, hit tests, export.

Shapely does what it is good at here (merging segments, spatial index, GeoJSON-ready
geometry); the bulk numeric work (cycles, areas) stays vectorised numpy.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import shapely
from shapely.geometry import mapping

if TYPE_CHECKING:
    from .result import Partition


def polygon_areas(vertices: np.ndarray, ptr: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Shoelace areas of CSR polygons, each taken about its own first corner.

    Relative to the origin, the shoelace sum of a region a billionth wide at x = 3 cancels to
    nothing (terms of 1e1 for an area of 1e-18); about a corner of the region itself it does not.
    """
    face = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
    xy = vertices[ids] - vertices[ids[ptr[:-1]]][face]
    nxt = np.arange(len(ids)) + 1
    ends = ptr[1:] - 1
    nxt[ends] = ptr[:-1]
    cross = xy[:, 0] * xy[nxt, 1] - xy[nxt, 0] * xy[:, 1]
    return 0.5 * np.bincount(face, cross, len(ptr) - 1)


def nan_separated(segments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(k, 2, 2) segments as x and y arrays with a NaN after each: plotters draw them all as one line."""
    segments = np.asarray(segments, dtype=np.float64).reshape(-1, 2, 2)
    xy = np.full((len(segments), 3, 2), np.nan)
    xy[:, :2] = segments
    return xy[:, :, 0].ravel(), xy[:, :, 1].ravel()


def merge_segments(segments: np.ndarray) -> list[np.ndarray]:
    """Join touching segments into polylines (fewer, longer lines draw faster and export smaller)."""
    if len(segments) == 0:
        return []
    merged = shapely.line_merge(shapely.multilinestrings(segments))
    parts = shapely.get_parts(merged)
    return [np.asarray(shapely.get_coordinates(p)) for p in parts]


def region_polygons(vertices: np.ndarray, ptr: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Shapely polygons from CSR corners, built in one vectorised call."""
    face = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
    return shapely.polygons(shapely.linearrings(vertices[ids], indices=face))


def locate(tree: shapely.STRtree, points: np.ndarray) -> np.ndarray:
    """Region id per point (the lowest id where a point sits on a shared edge), -1 when outside."""
    found = np.full(len(points), -1, dtype=np.int64)
    if len(points) == 0:
        return found
    hit_point, hit_region = tree.query(shapely.points(points), predicate="intersects")
    order = np.lexsort((hit_region, hit_point))[::-1]  # last write wins: the lowest region id
    found[hit_point[order]] = hit_region[order]
    return found


def to_geojson(partition: "Partition") -> dict:
    """FeatureCollection: one Polygon per region, one MultiLineString per layer and for the decision boundary."""
    features = []
    classes = partition.region_classes
    for rid, poly in enumerate(partition.regions):
        ring = np.vstack([poly, poly[:1]]).tolist()  # GeoJSON rings repeat their first corner
        features.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
                         "properties": {"kind": "region", "id": rid, "class": int(classes[rid])}})
    for layer in range(partition.n_layers):
        lines = partition.boundaries(layer)
        features.append({"type": "Feature", "geometry": mapping(shapely.MultiLineString(lines)) if lines else None,
                         "properties": {"kind": "boundary", "layer": layer}})
    decision = merge_segments(partition.decision_boundary)
    features.append({"type": "Feature", "geometry": mapping(shapely.MultiLineString(decision)) if decision else None,
                     "properties": {"kind": "decision_boundary"}})
    return {"type": "FeatureCollection", "features": features}

"""Independent checks of a traced partition: brute force over sampled points, Euler, areas."""
from __future__ import annotations

import numpy as np

from splineviz.partition import Partition
from splineviz.partition.ops import Affine, MaxPool, apply


def pre_activations(ops, points: np.ndarray) -> list[np.ndarray]:
    """Values entering every nonlinear op, by a plain forward pass (independent of the tracer)."""
    h, seen = points, []
    for op in ops:
        if not isinstance(op, Affine):
            seen.append(h)
        h = apply(op, h)
    return seen


def point_codes(ops, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Full activation code per point and its distance (in value) to the nearest kink."""
    codes, margins = [], []
    for op, values in zip([o for o in ops if not isinstance(o, Affine)], pre_activations(ops, points)):
        if isinstance(op, MaxPool):
            for g in op.groups:
                part = np.sort(values[:, list(g)], axis=1)
                codes.append(values[:, list(g)].argmax(axis=1)[:, None])
                margins.append((part[:, -1] - part[:, -2])[:, None] if len(g) > 1 else np.full((len(values), 1), np.inf))
        else:
            codes.append(values > 0)
            margins.append(np.abs(values))
    return np.hstack(codes).astype(np.int64), np.hstack(margins).min(axis=1)


def region_codes(p: Partition) -> np.ndarray:
    return np.hstack([p.codes(layer).astype(np.int64) for layer in range(p.n_layers)])


def assert_consistent(p: Partition, domain_area: float, samples: np.ndarray, margin: float = 1e-7) -> None:
    """Euler, area cover, and every sampled point's code equals the code of the region it falls in."""
    assert p.n_unresolved == 0
    assert p.n_regions == p.euler_regions
    assert p.layer_region_counts[-1] == p.n_regions if p.layer_region_counts else p.n_regions == 1
    areas = p.areas
    assert (areas > 0).all()
    assert np.isclose(areas.sum(), domain_area, rtol=1e-9)
    codes, margins = point_codes(p.ops, samples)
    clear = margins > margin
    rid = p.locate(samples[clear])
    assert (rid >= 0).all()
    np.testing.assert_array_equal(region_codes(p)[rid], codes[clear])
    # each region is one code: no two regions share one (regions are convex cells of the code sets)
    assert len(np.unique(region_codes(p), axis=0)) == p.n_regions


def grid(bounds, n: int = 200) -> np.ndarray:
    xmin, xmax, ymin, ymax = bounds
    xs, ys = np.meshgrid(np.linspace(xmin, xmax, n), np.linspace(ymin, ymax, n))
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def angle_sorted_cycles(vertices: np.ndarray, edges: np.ndarray, edge_faces: np.ndarray, n_faces: int):
    """Each face's corners sorted by angle around their mean (the tracer's former method): (ptr, ids)."""
    n = len(vertices)
    face = np.concatenate([edge_faces[:, 0], edge_faces[:, 0], edge_faces[:, 1], edge_faces[:, 1]])
    vert = np.concatenate([edges[:, 0], edges[:, 1], edges[:, 0], edges[:, 1]])
    keep = face >= 0
    key = np.unique(face[keep] * n + vert[keep])
    face, vert = key // n, key % n
    counts = np.bincount(face, minlength=n_faces)
    xy = vertices[vert]
    centre = np.stack([np.bincount(face, xy[:, i], n_faces) for i in (0, 1)], axis=1) / counts[:, None]
    rel = xy - centre[face]
    order = np.lexsort((np.arctan2(rel[:, 1], rel[:, 0]), face))
    ptr = np.zeros(n_faces + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    return ptr, vert[order]


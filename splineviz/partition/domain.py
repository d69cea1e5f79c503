"""Where a partition is traced: a convex polygon in the plane, and how the plane sits in input space.

One name and one default for the domain everywhere: `bounds`, either 4 numbers
(xmin, xmax, ymin, ymax) or the corners of a convex polygon, defaulting to DEFAULT_BOUNDS.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .ops import Affine

Bounds = tuple[float, float, float, float]
DEFAULT_BOUNDS: Bounds = (-3.0, 3.0, -3.0, 3.0)


def box(xmin: float, xmax: float, ymin: float, ymax: float) -> np.ndarray:
    """The rectangle [xmin, xmax] x [ymin, ymax] as counter-clockwise corners."""
    if not (all(map(math.isfinite, (xmin, xmax, ymin, ymax))) and xmin < xmax and ymin < ymax):
        raise ValueError(f"bounds must be finite with xmin < xmax and ymin < ymax, got {(xmin, xmax, ymin, ymax)}")
    return np.array([[xmin, ymin], [xmax, ymin], [xmax, ymax], [xmin, ymax]], dtype=np.float64)


def convex_domain(bounds: np.ndarray | Bounds | list) -> np.ndarray:
    """Validate bounds given as 4 numbers or convex polygon corners; return CCW corners.

    The tracer relies on convex faces, so a non-convex or degenerate domain is refused here.

    >>> convex_domain((0, 2, 0, 1)).tolist()
    [[0.0, 0.0], [2.0, 0.0], [2.0, 1.0], [0.0, 1.0]]
    """
    arr = np.asarray(bounds, dtype=np.float64)
    if arr.shape == (4,):
        return box(*arr.tolist())
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < 3:
        raise ValueError(f"bounds must be 4 numbers or a (k>=3, 2) array of polygon corners, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("domain corners must be finite")
    if np.allclose(arr[0], arr[-1]):
        arr = arr[:-1]
    edge = np.roll(arr, -1, axis=0) - arr
    cross = edge[:, 0] * np.roll(edge, -1, axis=0)[:, 1] - edge[:, 1] * np.roll(edge, -1, axis=0)[:, 0]
    scale = np.abs(edge).max() ** 2
    if (cross > 1e-12 * scale).all():
        return arr
    if (cross < -1e-12 * scale).all():
        return arr[::-1].copy()
    raise ValueError("domain polygon must be strictly convex (no repeated, collinear or reflex corners)")


@dataclass(frozen=True)
class Plane:
    """x = x0 + a*u + b*v: a 2D slice through a high-dimensional input space.

    Pass it to `trace(..., plane=plane)`: the partition is then traced in plane coordinates
    (a, b) over `bounds`, and the network's first affine map is restricted to the plane.

    Parameters
    ----------
    x0, u, v : array_like
        The origin of the plane and its two directions, all of the network's input size
        (images are flattened). u and v must not be parallel.
    image_shape : tuple of int, optional
        The shape of the images the plane was built from (e.g. (1, 28, 28)), so that a
        convolutional model can be traced on it without being told its input shape again.

    Examples
    --------
    >>> import numpy as np
    >>> plane = Plane.through_points(np.zeros(3), np.array([1., 0, 0]), np.array([0., 0, 2]))
    >>> plane.lift(np.array([[0.5, 0.5]])).tolist()
    [[0.5, 0.0, 1.0]]
    """

    x0: np.ndarray
    u: np.ndarray
    v: np.ndarray
    image_shape: tuple[int, ...] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        x0, u, v = (np.asarray(t, dtype=np.float64).reshape(-1) for t in (self.x0, self.u, self.v))
        if not (x0.shape == u.shape == v.shape):
            raise ValueError(f"plane vectors differ in size: x0 {x0.size}, u {u.size}, v {v.size}")
        if not (np.isfinite(x0).all() and np.isfinite(u).all() and np.isfinite(v).all()):
            raise ValueError("plane vectors contain NaN or inf")
        if np.linalg.matrix_rank(np.stack([u, v]), tol=1e-12 * max(np.abs(u).max(), np.abs(v).max(), 1e-300)) < 2:
            raise ValueError("plane directions u and v are parallel (or zero): they span no plane")
        for name, value in (("x0", x0), ("u", u), ("v", v)):
            object.__setattr__(self, name, value)
        if self.image_shape is not None:
            shape = tuple(int(n) for n in self.image_shape)
            if math.prod(shape) != x0.size:
                raise ValueError(f"image shape {shape} holds {math.prod(shape)} values, but the plane has {x0.size}")
            object.__setattr__(self, "image_shape", shape)

    @classmethod
    def through_images(cls, img0: np.ndarray, img1: np.ndarray) -> Plane:
        """The paper's slice: x = a*img0 + b*img1, a plane through the origin."""
        img0 = np.asarray(img0, dtype=np.float64)
        flat = img0.reshape(-1)
        return cls(np.zeros_like(flat), flat, np.asarray(img1, dtype=np.float64).reshape(-1), img0.shape)

    @classmethod
    def through_points(cls, p0: np.ndarray, p1: np.ndarray, p2: np.ndarray) -> Plane:
        """The plane through three inputs: p0 at (0,0), p1 at (1,0), p2 at (0,1)."""
        shape = np.shape(p0)
        p0, p1, p2 = (np.asarray(p, dtype=np.float64).reshape(-1) for p in (p0, p1, p2))
        return cls(p0, p1 - p0, p2 - p0, shape)

    @property
    def dim(self) -> int:
        return self.x0.size

    def lift(self, ab: np.ndarray) -> np.ndarray:
        """Plane coordinates (k, 2) -> input points (k, dim)."""
        ab = np.asarray(ab, dtype=np.float64)
        return self.x0 + ab[:, :1] * self.u + ab[:, 1:2] * self.v

    def restrict(self, first: Affine) -> Affine:
        """The first affine map seen from the plane: W (x0 + a u + b v) + c = W[u v] (a, b) + (W x0 + c)."""
        if first.in_features != self.dim:
            raise ValueError(f"the network takes {first.in_features} inputs but the plane lives in {self.dim} dimensions")
        restricted = first.weight @ self._basis  # W u, W v, W x0: one pass over W
        return Affine(restricted[:, :2], restricted[:, 2] + first.bias)

    @cached_property
    def _basis(self) -> np.ndarray:
        """[u v x0] as columns, stacked once: a plane is restricted at every trace."""
        return np.stack([self.u, self.v, self.x0], axis=1)

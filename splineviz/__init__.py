"""splineviz: exact input-space partitions of small ReLU networks, how training moves them and pruning removes them.

The entry points: `trace` (any supported model on a 2-D box, a plane through input space, or an interval for
one-input networks), `animate` (a plotly Figure with a frame per model or training snapshot) and
``python -m splineviz trace`` on the command line. `splineviz.partition` is the numpy core behind them.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from .partition import Partition, Plane, trace as trace_ops
from .partition.domain import DEFAULT_BOUNDS
from .partition.interval import IntervalPartition, trace_interval
from .partition.ops import NONLINEAR, Affine, Op, normalize


def trace(model: Any, bounds: Sequence[float] | np.ndarray | None = None, plane: Plane | None = None,
          input_shape: int | Sequence[int] | None = None, **options: Any) -> Partition | IntervalPartition:
    """Exact partition of a torch model or a list of ops, on a 2-D box, a plane or an interval.

    Parameters
    ----------
    model
        A torch ``nn.Module`` (converted by `splineviz.nets.to_ops`, imported only here so that the numeric core
        stays usable without torch) or a list of ops (`splineviz.partition.ops`).
    bounds
        ``(xmin, xmax, ymin, ymax)`` or a convex polygon's ``(k, 2)`` corners for networks with two inputs or a
        plane; ``(lo, hi)`` for networks with one input. Default `DEFAULT_BOUNDS` ``(-3, 3, -3, 3)``, or its
        x-range ``(-3, 3)`` for one input.
    plane
        A `Plane` through input space (``Plane.through_images(img0, img1)`` or ``Plane.through_points(p0, p1,
        p2)``) for networks with more than two inputs; ``bounds`` are then plane coordinates. A plane built from
        images shaped ``(C, H, W)`` tells a convolutional model its input shape.
    input_shape
        One sample's shape, e.g. ``(1, 28, 28)``, where neither the model nor the plane says it.
    **options
        ``budget``, ``decision_classes``, ``progress``, ``cancel`` (and ``max_bytes`` in 2-D): see
        `splineviz.partition.trace`.

    Returns
    -------
    Partition or IntervalPartition
        `Partition` for 2-D slices, `splineviz.partition.interval.IntervalPartition` (knots and pieces) for one
        input.

    Raises
    ------
    ValueError
        When the model, the plane, ``input_shape`` and ``bounds`` do not fit together (the message says how).
    splineviz.nets.UnsupportedLayerError
        For layers the converter cannot represent.

    Examples
    --------
    >>> import splineviz
    >>> from splineviz.nets import mlp
    >>> p = splineviz.trace(mlp(2, hidden=(8, 8), out_features=2, seed=0))
    >>> p.n_regions == p.layer_region_counts[-1], p.layer_widths
    (True, [8, 8])

    One input: the knots of a piecewise-linear function.

    >>> q = splineviz.trace(mlp(1, hidden=(6,), out_features=1), bounds=(-3, 3))
    >>> q.n_regions == len(q.knots()) + 1
    True
    """
    interval = bounds is not None and np.ndim(bounds) == 1 and len(bounds) == 2
    if interval and plane is not None:
        raise ValueError("bounds=(lo, hi) is an interval, for networks with one input; a plane is traced on "
                         "plane coordinates (amin, amax, bmin, bmax)")
    ops = _ops(model, plane, input_shape, one_input=interval)
    n_in = ops[0].in_features  # type: ignore[union-attr]
    if plane is not None:
        if plane.dim != n_in:
            raise ValueError(f"the model takes {n_in} inputs but the plane lives in {plane.dim} dimensions")
        return trace_ops(ops, DEFAULT_BOUNDS if bounds is None else bounds, plane=plane, **options)
    if n_in == 1:
        if bounds is not None and not interval:
            raise ValueError("this network takes one input: give an interval bounds=(lo, hi), not "
                             f"{np.asarray(bounds).tolist()}")
        return trace_interval(ops, DEFAULT_BOUNDS[:2] if bounds is None else bounds, **options)
    if n_in == 2:
        if interval:
            raise ValueError("bounds=(lo, hi) is an interval, for networks with one input; this one takes 2: give "
                             "(xmin, xmax, ymin, ymax) or a convex polygon's corners")
        return trace_ops(ops, DEFAULT_BOUNDS if bounds is None else bounds, **options)
    raise ValueError(f"the network takes {n_in} inputs; trace a 2-D slice of it with plane=Plane.through_images"
                     "(img0, img1) or Plane.through_points(p0, p1, p2)")


def _ops(model: Any, plane: Plane | None, input_shape: Any, one_input: bool) -> list[Op]:
    """Normalized ops for `model`, its input shape taken from `input_shape`, else the plane's images."""
    if isinstance(model, (list, tuple)) and all(isinstance(op, (Affine, *NONLINEAR)) for op in model):
        width = math.prod(np.atleast_1d(input_shape)) if input_shape is not None else None
        if width is None:  # only consulted when the ops start with a nonlinearity
            width = plane.dim if plane is not None else (1 if one_input else 2)
        return normalize(model, int(width))
    from .nets import to_ops

    if input_shape is not None or plane is None:
        size = math.prod(np.atleast_1d(input_shape)) if input_shape is not None else None
        if size is not None and plane is not None and size != plane.dim:
            raise ValueError(f"input_shape {tuple(int(n) for n in np.atleast_1d(input_shape))} holds {size} values "
                             f"but the plane has {plane.dim}")
        return to_ops(model, input_shape)
    shape = plane.image_shape or (plane.dim,)
    try:
        return to_ops(model, shape)
    except ValueError as e:
        if type(e) is not ValueError:  # UnsupportedLayerError and friends say what is wrong already
            raise
        flat = " (flat vectors: build the plane from images shaped (C, H, W) or pass input_shape=)" \
            if len(shape) == 1 else ""
        raise ValueError(f"the plane's points are shaped {'x'.join(map(str, shape))}{flat}, which does not fit "
                         f"the model: {e}") from e


def animate(models_or_snapshots: Any, **options: Any) -> Any:
    """A plotly Figure with one frame per model or snapshot and a slider: `splineviz.plot.animate`.

    plotly is imported on first use, so that ``import splineviz`` does not load it.
    """
    from .plot import animate as animate_figure

    return animate_figure(models_or_snapshots, **options)


__all__ = ["DEFAULT_BOUNDS", "IntervalPartition", "Partition", "Plane", "animate", "trace", "trace_interval"]

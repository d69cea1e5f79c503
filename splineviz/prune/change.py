"""How much a pruned network's decisions differ from the original's: the guard spline pruning merges under.

Three measures, chosen by what the network is:

* ``"area"`` — classifiers with 2-D input: the exact area of the input box on which the predicted class changed, as
  a fraction of the box. Both networks are traced exactly (``splineviz.partition``); each one's class cells
  (``Partition.class_cells()``: regions cut along the decision boundary, one class each) are merged per class with
  shapely, and the changed area is the box minus the area each class keeps (sum over classes of the intersection of
  its old and new regions). Nothing is sampled; the result is exact up to floating-point rounding (~1e-12).
* ``"probe"`` — classifiers with any other input (images, planes through them): the fraction of probe points (by
  default the training inputs, i.e. the data's support) whose predicted class changed.
* ``"rmse"`` — regression (one output): the root-mean-square output change on the probe, relative to the root mean
  square of the original output.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import shapely
import torch
from torch import nn

from splineviz.partition import Partition
from splineviz.probe import outputs

MEASURES = ("area", "probe", "rmse")


def _in_features(model: nn.Module) -> int | None:
    first = next((m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))), None)
    return first.in_features if isinstance(first, nn.Linear) else None


def _class_regions(model: nn.Module, bounds: Sequence[float]) -> dict[int, shapely.Geometry]:
    """Class -> the exact region of the input box a 2-D classifier assigns to it (a union of its class cells)."""
    from splineviz.nets import to_ops
    from splineviz.partition import box, trace

    return class_regions(trace(_without_silent_units(to_ops(model)), box(*bounds)))


def class_regions(partition: Partition) -> dict[int, shapely.Geometry]:
    """Class -> the region of a traced 2-D classifier's domain it assigns to it (a union of its class cells)."""
    cells, classes = partition.class_cells()
    sizes = np.fromiter((len(c) for c in cells), dtype=np.int64, count=len(cells))
    rings = shapely.linearrings(np.concatenate(cells), indices=np.repeat(np.arange(len(cells)), sizes))
    polygons = shapely.polygons(rings)
    classes = np.asarray(classes)
    # the cells tile the box edge to edge, so GEOS's coverage union applies (10x faster than a general union)
    return {int(c): shapely.coverage_union_all(polygons[classes == c]) for c in np.unique(classes)}


def changed_area(before: Partition, after: Partition) -> float:
    """The exact fraction of the domain whose predicted class differs between two traced 2-D classifiers (the
    ``"area"`` measure, from partitions already traced: a pruning step's frames before and after it)."""
    reference, candidate = class_regions(before), class_regions(after)
    return _changed(reference, candidate, float(before.areas.sum()))


def _changed(reference: dict[int, shapely.Geometry], candidate: dict[int, shapely.Geometry], area: float) -> float:
    kept = sum(shapely.intersection(region, reference[c]).area for c, region in candidate.items() if c in reference)
    return max(0.0, 1.0 - kept / area)


def _without_silent_units(ops: list) -> list:
    """The same function with pruned units (all-zero row and bias: they output 0) dropped from Affine-act-Affine.

    A pruned net draws the same partition either way, but all-zero units put every vertex exactly on their
    (empty) boundary, which sends the tracer down its slower degenerate-geometry path.
    """
    from splineviz.partition.ops import Affine, LeakyReLU, ReLU

    ops = list(ops)
    for k in range(len(ops) - 2):
        first, act, second = ops[k:k + 3]
        if isinstance(first, Affine) and isinstance(act, (ReLU, LeakyReLU)) and isinstance(second, Affine):
            alive = first.weight.any(axis=1) | (first.bias != 0)
            if 0 < alive.sum() < len(alive):
                ops[k] = Affine(first.weight[alive], first.bias[alive])
                ops[k + 2] = Affine(second.weight[:, alive], second.bias)
    return ops


def probe_bounds(probe: np.ndarray | torch.Tensor) -> tuple[float, float, float, float]:
    """The bounding box of 2-D probe points (a grid probe's box is its bounds)."""
    p = np.asarray(probe, dtype=np.float64).reshape(len(probe), -1)
    lo, hi = p.min(axis=0), p.max(axis=0)
    if p.shape[1] != 2 or not np.all(hi > lo):
        raise ValueError("the exact area measure needs 2-D probe points spanning a box with some area")
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


class DecisionChange:
    """Measures how far candidate networks' decisions are from ``reference``'s (see the module docstring).

    ``measure`` defaults to ``"rmse"`` for one-output networks, ``"area"`` for 2-D classifiers (over ``bounds``, or
    the probe's bounding box) and ``"probe"`` otherwise. The reference is traced or evaluated once.

    Examples
    --------
    >>> from splineviz.nets import mlp
    >>> from splineviz.probe import grid_probe
    >>> net = mlp(2, (8,), 2, seed=0)
    >>> change = DecisionChange(net, grid_probe((-1, 1, -1, 1), 20))
    >>> change.measure, change(net)
    ('area', 0.0)
    """

    def __init__(self, reference: nn.Module, probe: np.ndarray | torch.Tensor,
                 bounds: Sequence[float] | None = None, measure: str | None = None) -> None:
        self.probe = probe
        n_out = outputs(reference, probe[:1]).shape[1]
        if measure is None:
            measure = "rmse" if n_out == 1 else "area" if _in_features(reference) == 2 else "probe"
        if measure not in MEASURES:
            raise ValueError(f"unknown measure {measure!r}; expected one of {MEASURES}")
        if measure == "area" and _in_features(reference) != 2:
            raise ValueError("the exact area measure needs a model with 2 inputs; use measure='probe'")
        self.measure = measure
        if measure == "area":
            self.bounds = tuple(float(b) for b in bounds) if bounds is not None else probe_bounds(probe)
            xmin, xmax, ymin, ymax = self.bounds
            self._area = (xmax - xmin) * (ymax - ymin)
            self._regions = _class_regions(reference, self.bounds)
        else:
            self._reference = outputs(reference, probe).double()

    def __call__(self, model: nn.Module) -> float:
        """The change of ``model`` from the reference: a fraction of area or probe points, or a relative RMS."""
        if self.measure == "area":
            return _changed(self._regions, _class_regions(model, self.bounds), self._area)
        out = outputs(model, self.probe).double()
        if self.measure == "probe":
            return float((out.argmax(dim=1) != self._reference.argmax(dim=1)).double().mean())
        scale = float(self._reference.pow(2).mean().sqrt())
        return float((out - self._reference).pow(2).mean().sqrt()) / max(scale, 1e-12)

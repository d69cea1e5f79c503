"""Trace the exact partition of a piecewise-linear network on a convex 2D domain.

The network is pushed through the planar graph op by op: affine maps transform the values
stored at vertices (one matmul per layer), and every nonlinear op first cuts the faces along
the zero sets of its units, so that its output is again affine inside every face.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Optional

import numpy as np

from .arrangement import refine_by_layer
from .domain import Plane, convex_domain
from .errors import Cancelled, PartitionBudgetError
from .graph import E0, E1, FB, OUTSIDE, PlanarGraph
from .ops import Affine, LeakyReLU, MaxPool, Op, ReLU, normalize
from .result import Partition

Progress = Optional[Callable[[float, str], None]]
Cancel = Optional[Callable[[], bool]]

DEFAULT_BUDGET = 2_000_000
DEFAULT_MAX_BYTES = 6 * 2**30
REL_TOL = 1e-10  # values this close to zero, relative to the unit's range, lie on its line
_UFUNC_BUFFER = 1024  # elements: numpy buffers ufuncs on strided value columns, 8192 by default (64 KiB each)
LAYER_AT_ONCE_CELLS = 2**24  # edges x units up to which a layer is refined in one pass (bounds its temporaries)


class _Run:
    """Bookkeeping shared by the loop: budget checks, progress and cancellation."""

    def __init__(self, total_units: int, budget: int, max_bytes: int, progress: Progress, cancel: Cancel) -> None:
        self.total = max(total_units, 1)
        self.done = 0
        self.budget, self.max_bytes = budget, max_bytes
        self.progress, self.cancel = progress, cancel
        self.next_report = 0.0

    def step(self, graph: PlanarGraph, layer: int, unit: int, units: int = 1) -> None:
        """Account for `units` more units traced, up to `unit` of `layer`."""
        self.done += units
        if graph.n_faces > self.budget:
            raise PartitionBudgetError(
                f"the partition passed the budget of {self.budget:,} regions at layer {layer}, unit {unit} "
                f"({graph.n_faces:,} regions so far); trace a smaller domain or network, or raise the budget")
        if graph.vals.nbytes > self.max_bytes:
            raise PartitionBudgetError(
                f"the vertex table needs {graph.vals.nbytes / 2**30:.1f} GiB at layer {layer}, unit {unit}, over the "
                f"{self.max_bytes / 2**30:.1f} GiB limit; trace a smaller domain or network, or raise max_bytes")
        if self.cancel is not None and self.cancel():
            raise Cancelled(f"tracing cancelled at layer {layer}, unit {unit}")
        fraction = self.done / self.total
        if self.progress is not None and (fraction >= self.next_report or self.done == self.total):
            self.progress(fraction, f"layer {layer}: unit {unit + 1}, {graph.n_faces:,} regions")
            self.next_report = fraction + 0.01


def trace(ops: Sequence[Op], domain=(-1.0, 1.0, -1.0, 1.0), plane: Plane | None = None,
          budget: int = DEFAULT_BUDGET, decision_classes: tuple[int, int] | None = None,
          progress: Progress = None, cancel: Cancel = None, max_bytes: int = DEFAULT_MAX_BYTES) -> Partition:
    """Exact partition of `ops` on `domain` (bounds or convex corners), optionally on a plane slice."""
    ops = normalize(ops, in_features=plane.dim if plane is not None else 2)
    first = ops[0]
    assert isinstance(first, Affine)
    if plane is not None:
        first = plane.restrict(first)
    elif first.in_features != 2:
        raise ValueError(f"the network takes {first.in_features} inputs; give a Plane to trace a 2D slice of it")
    ops = [first, *ops[1:]]
    n_out = ops[-1].out_features  # type: ignore[union-attr]
    if decision_classes is not None:
        decision_classes = tuple(int(c) for c in decision_classes)  # type: ignore[assignment]
        if len(decision_classes) != 2 or len(set(decision_classes)) != 2 or not all(0 <= c < n_out for c in decision_classes):
            raise ValueError(f"decision_classes must be two different outputs in 0..{n_out - 1}, got {decision_classes}")

    corners = convex_domain(domain)
    graph = PlanarGraph(corners, corners @ first.weight.T + first.bias)
    run = _Run(_count_units(ops), budget, max_bytes, progress, cancel)
    with np.errstate():  # numpy scopes its ufunc buffer size to this context
        np.setbufsize(_UFUNC_BUFFER)
        widths, counts = _refine_layers(graph, ops[1:], run)
        overlay, decision = _decision_overlay(graph, len(widths), decision_classes)
    return Partition(graph, ops, widths, counts, overlay, decision, decision_classes, plane)


def _refine_layers(graph: PlanarGraph, ops: Sequence[Op], run: _Run) -> tuple[list[int], list[int]]:
    """Push the graph through the ops; the width and region count after every nonlinear layer."""
    widths: list[int] = []
    counts: list[int] = []
    for op in ops:
        if isinstance(op, Affine):
            _apply_affine(graph, op)
            continue
        layer = len(widths)
        if isinstance(op, MaxPool):
            _tournament(graph, op.groups, layer, run)
            graph.replace_values(_max_pool(graph.values, op.groups))
            widths.append(len(op.groups))
        else:
            _split_units(graph, layer, run)
            _activate_in_place(graph.values, op)
            widths.append(graph.values.shape[1])
        counts.append(graph.n_faces)
    return widths, counts


def _apply_affine(graph: PlanarGraph, op: Affine) -> None:
    """values @ W.T + b, written straight into the next vertex table."""
    table = graph.value_table(op.out_features)
    np.matmul(graph.values, op.weight.T, out=table[:, 2:])
    table[:, 2:] += op.bias
    graph.vals = table


def _count_units(ops: Sequence[Op]) -> int:
    total, width = 0, ops[0].out_features  # type: ignore[union-attr]
    for op in ops[1:]:
        if isinstance(op, Affine):
            width = op.out_features
        elif isinstance(op, MaxPool):
            total += sum(len(g) - 1 for g in op.groups)
            width = len(op.groups)
        else:
            total += width
    return total


def _tolerances(values: np.ndarray) -> np.ndarray:
    return REL_TOL * np.abs(values).max(axis=0)


def _split_units(graph: PlanarGraph, layer: int, run: _Run) -> None:
    """One cut per unit: its zero set is a line inside every face.

    Small graphs in generic position take the whole layer in one pass; the rest, and every
    degenerate case, go unit by unit.
    """
    tol = _tolerances(graph.values)
    if graph.m * tol.size <= LAYER_AT_ONCE_CELLS and refine_by_layer(graph, tol, layer):
        run.step(graph, layer, tol.size - 1, units=tol.size)
        return
    for unit in range(tol.size):
        column = 2 + unit
        level = graph.vals[: graph.n, column].copy()  # contiguous: split scans it several times
        graph.split(level, tol[unit], layer, unit, zero_column=column)
        run.step(graph, layer, unit)


def _tournament(graph: PlanarGraph, groups: Sequence[Sequence[int]], layer: int, run: _Run) -> None:
    """Cut where candidate j of a group overtakes the group's running max, for every group.

    Afterwards the arg-max of every group is constant inside every face. The running max lives
    in a scratch column so that new vertices interpolate it like any other value.
    """
    tol = REL_TOL * max(float(np.abs(graph.values).max()), 1e-300)
    graph.replace_values(np.hstack([graph.values, np.zeros((graph.n, 1))]))
    running = graph.vals.shape[1] - 1
    for unit, group in enumerate(groups):
        graph.vals[: graph.n, running] = graph.vals[: graph.n, 2 + group[0]]
        for j in group[1:]:
            level = graph.vals[: graph.n, 2 + j] - graph.vals[: graph.n, running]
            graph.split(level, tol, layer, unit)
            np.maximum(graph.vals[: graph.n, running], graph.vals[: graph.n, 2 + j], out=graph.vals[: graph.n, running])
            run.step(graph, layer, unit)
        if len(group) > 2:
            graph.remove_edges(_untied_edges(graph, group, layer, unit, tol))
    graph.replace_values(graph.values[:, :-1])


def _untied_edges(graph: PlanarGraph, group: Sequence[int], layer: int, unit: int, tol: float) -> np.ndarray:
    """Edges the tournament made for `group` along which its winner does not actually change."""
    edges = graph.edge_table
    made = ((edges[:, 4] == layer) & (edges[:, 5] == unit)).nonzero()[0]
    values = graph.vals[: graph.n, [2 + j for j in group]]
    return made[~_tied(values, edges[made, 0], edges[made, 1], tol)]


def _tied(values: np.ndarray, e0: np.ndarray, e1: np.ndarray, tol: float) -> np.ndarray:
    """Edges along which the two largest values tie (one value: is zero).

    One value is affine along an edge, so its ends decide; the gap between the top two is not,
    so it is checked at the middle too.
    """
    gap = _top_two_gap(values)
    tied = (gap[e0] <= tol) & (gap[e1] <= tol)
    if values.shape[1] > 1:
        tied &= _top_two_gap(0.5 * (values[e0] + values[e1])) <= tol
    return tied


def _max_pool(values: np.ndarray, groups: Sequence[Sequence[int]]) -> np.ndarray:
    return np.stack([values[:, list(g)].max(axis=1) for g in groups], axis=1)


def _activate_in_place(values: np.ndarray, op: Op) -> None:
    if isinstance(op, ReLU):
        np.maximum(values, 0.0, out=values)
    elif isinstance(op, LeakyReLU):
        negative = values < 0
        values[negative] *= op.negative_slope


def _decision_overlay(graph: PlanarGraph, layer: int, classes: tuple[int, int] | None) -> tuple[PlanarGraph, np.ndarray]:
    """Regions cut further where the predicted class changes, and the segments where it does.

    The argmax is not part of the network's linear regions, so the cuts it needs are made on a
    copy (its faces are the class cells used for shading). One output: its sign; two: the sign of
    their difference. Otherwise a tournament over the classes, after which an edge lies on the
    decision boundary exactly when the top two logits tie along all of it. Where one class wins
    everywhere there is nothing to cut, and the regions are the class cells.
    """
    outputs = graph.values if classes is None else graph.values[:, list(classes)]
    if outputs.shape[1] == 2:  # two classes: the boundary is the zero set of their difference
        outputs = outputs[:, 1:] - outputs[:, :1]
    tol = REL_TOL * max(float(np.abs(outputs).max()), 1e-300)
    if _one_class_everywhere(outputs, tol):
        return graph, np.empty((0, 2, 2))
    overlay = graph.with_values(outputs)
    if outputs.shape[1] == 1:
        overlay.split(overlay.vals[: overlay.n, 2], tol, layer, 0, zero_column=2)
    else:
        _tournament(overlay, [tuple(range(outputs.shape[1]))], layer, _Run(0, 2**62, 2**62, None, None))
    edges = overlay.edges[:, : overlay.m]
    ends = edges[E0: E1 + 1, edges[FB] != OUTSIDE]
    on = _tied(overlay.values, ends[0], ends[1], tol)
    return overlay, overlay.coords[ends[:, on].T]


def _one_class_everywhere(outputs: np.ndarray, tol: float) -> bool:
    """The same class wins at every vertex by more than tol, and so inside every face too.

    Logits are affine inside a face and faces are convex: a margin at all corners holds between.
    """
    if outputs.shape[1] == 1:
        return bool((outputs > tol).all() or (outputs < -tol).all())
    winner = outputs.argmax(axis=1)
    return bool((winner == winner[0]).all() and (_top_two_gap(outputs) > tol).all())


def _top_two_gap(logits: np.ndarray) -> np.ndarray:
    if logits.shape[1] == 1:
        return np.abs(logits[:, 0])
    top = -np.partition(-logits, 1, axis=1)[:, :2]
    return top[:, 0] - top[:, 1]

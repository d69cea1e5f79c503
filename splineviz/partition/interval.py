"""Exact partition of a one-input piecewise-linear network on an interval: its knots, per layer.

A network with one input is a piecewise-linear function of it; its "regions" are the pieces between
consecutive knots, the points where some unit's pre-activation changes sign. The tracer mirrors the 2-D
one: the values of the current layer are kept at every knot, each unit cuts the pieces on which it
changes sign (at the interpolated zero, exact because values are affine on a piece), and values within
a relative tolerance of zero count as zero, so duplicate units, zero weights and knots at the interval's
ends reuse existing knots instead of making slivers. New knots are appended and linked to their right
neighbour, so a unit costs one pass over the knots plus its new rows; knots are sorted once per layer.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any, Optional

import numpy as np

from .errors import Cancelled, PartitionBudgetError
from .ops import Affine, MaxPool, Op, apply, normalize

BORDER = -1  # layer label of the interval's two ends
REL_TOL = 1e-10  # as in the 2-D tracer: values this close to zero, relative to the unit's range, are zero
DEFAULT_BUDGET = 2_000_000
DEFAULT_MAX_BYTES = 6 * 2**30
DEFAULT_INTERVAL = (-3.0, 3.0)  # the x-range of splineviz.partition.domain.DEFAULT_BOUNDS

Progress = Optional[Callable[[float, str], None]]
Cancel = Optional[Callable[[], bool]]


def trace_interval(ops: Sequence[Op], bounds: Sequence[float] = DEFAULT_INTERVAL, budget: int = DEFAULT_BUDGET,
                   decision_classes: tuple[int, int] | None = None, progress: Progress = None,
                   cancel: Cancel = None, max_bytes: int = DEFAULT_MAX_BYTES) -> IntervalPartition:
    """Exact partition of a one-input network on the interval ``bounds = (lo, hi)``.

    Parameters
    ----------
    ops
        ``[Affine, ReLU | LeakyReLU, Affine, ...]`` whose first affine map takes one input.
    bounds
        The interval ``(lo, hi)`` with ``lo < hi``, both finite.
    budget, max_bytes
        Most pieces, and most bytes for the knots' value table, allowed; ``PartitionBudgetError`` beyond (the
        same options as the 2-D tracer, so callers can pass one set of limits).
    decision_classes
        Two outputs whose winner defines the decision points; default: sign of a single output, else argmax.
    progress, cancel
        ``progress(fraction, message)`` after each unit; ``cancel()`` returning True raises ``Cancelled``.

    Returns
    -------
    IntervalPartition

    Examples
    --------
    |x| - 1 as a ReLU net: knots at 0 (layer 0) and nowhere else; decision points where it crosses zero.

    >>> import numpy as np
    >>> from splineviz.partition import Affine, ReLU
    >>> ops = [Affine([[1.0], [-1.0]], [0.0, 0.0]), ReLU(), Affine([[1.0, 1.0]], [-1.0])]
    >>> p = trace_interval(ops, bounds=(-2, 2))
    >>> p.knots().tolist(), p.n_regions, p.slopes[:, 0].tolist()
    ([0.0], 2, [-1.0, 1.0])
    >>> p.decision_boundary.tolist()
    [-1.0, 1.0]
    """
    ops = normalize(ops, in_features=1)
    if ops[0].in_features != 1:  # type: ignore[union-attr]
        raise ValueError(f"the network takes {ops[0].in_features} inputs; an interval traces "  # type: ignore[union-attr]
                         "networks with one input (use 2-D bounds or a plane for more)")
    if any(isinstance(op, MaxPool) for op in ops):
        raise ValueError("max pooling is not supported on one-input networks; the interval tracer takes Affine, "
                         "ReLU and LeakyReLU ops")
    lo, hi = _interval(bounds)
    pair = _decision_pair(decision_classes, ops[-1].out_features)  # type: ignore[union-attr]
    x = np.array([lo, hi])
    z = apply(ops[0], x[:, None])
    layer_of = np.array([BORDER, BORDER])
    unit_of = np.array([BORDER, BORDER])
    done, widths, counts = 0, [], []
    units = _count_units(ops)
    for op in ops[1:]:
        if isinstance(op, Affine):
            z = apply(op, z)
            continue
        layer = len(widths)
        knots = _Knots(x, z)
        for unit in range(z.shape[1]):
            knots.cut(unit, layer)
            done += 1
            if len(knots) - 1 > budget or knots.z.nbytes > max_bytes:
                raise PartitionBudgetError(
                    f"the partition passed the budget of {budget:,} pieces or {max_bytes / 2**20:,.0f} MiB at layer "
                    f"{layer}, unit {unit} ({len(knots) - 1:,} pieces, {knots.z.nbytes / 2**20:,.1f} MiB); trace a "
                    "shorter interval or a smaller network, or raise the limits")
            if cancel is not None and cancel():
                raise Cancelled(f"tracing cancelled at layer {layer}, unit {unit}")
            if progress is not None:
                progress(done / max(units, 1), f"layer {layer}: unit {unit + 1}, {len(knots) - 1:,} pieces")
        order, x, z, new_layer, new_unit = knots.sorted()
        layer_of = np.concatenate([layer_of, new_layer])[order]
        unit_of = np.concatenate([unit_of, new_unit])[order]
        z = apply(op, z)
        widths.append(knots.width)
        counts.append(len(x) - 1)
    return IntervalPartition(ops, x, layer_of, unit_of, z, widths, counts, pair)


def _count_units(ops: Sequence[Op]) -> int:
    total, width = 0, ops[0].out_features  # type: ignore[union-attr]
    for op in ops[1:]:
        if isinstance(op, Affine):
            width = op.out_features
        else:
            total += width
    return total


def _interval(bounds: Sequence[float]) -> tuple[float, float]:
    values = np.asarray(bounds, dtype=np.float64).reshape(-1)
    if values.shape != (2,):
        raise ValueError(f"a one-input network is traced on an interval bounds=(lo, hi), got {list(values)}")
    lo, hi = (float(v) for v in values)
    if not (np.isfinite([lo, hi]).all() and lo < hi):
        raise ValueError(f"the interval must be finite with lo < hi, got {(lo, hi)}")
    return lo, hi


def _decision_pair(classes: tuple[int, int] | None, n_out: int) -> tuple[int, int] | None:
    if classes is None:
        return None
    pair = tuple(int(c) for c in classes)
    if len(pair) != 2 or pair[0] == pair[1] or not all(0 <= c < n_out for c in pair):
        raise ValueError(f"decision_classes must be two different outputs in 0..{n_out - 1}, got {classes}")
    return pair  # type: ignore[return-value]


class _Knots:
    """Knots of one layer being cut: positions, pre-activations (units x knots), right-neighbour links.

    Values are stored unit-major so that a unit's column is contiguous, and new knots are appended
    (capacity doubles) rather than inserted, so each cut costs one pass plus its new knots.
    """

    def __init__(self, x: np.ndarray, z: np.ndarray) -> None:
        n, self.width = len(x), z.shape[1]
        self.n = n
        self.x = np.empty(max(2 * n, 16))
        self.x[:n] = x
        self.z = np.empty((self.width, len(self.x)))
        self.z[:, :n] = z.T
        self.next = np.empty(len(self.x), dtype=np.int64)
        self.next[:n] = np.append(np.arange(1, n), -1)  # knots arrive sorted; the last has no right neighbour
        self.tol = REL_TOL * np.abs(z).max(axis=0)
        self.layer: list[np.ndarray] = []
        self.unit: list[np.ndarray] = []

    def __len__(self) -> int:
        return self.n

    def cut(self, unit: int, layer: int) -> None:
        """Add a knot wherever `unit` changes sign strictly inside a piece; snap its near-zeros to zero."""
        level = self.z[unit, : self.n]
        level[np.abs(level) <= self.tol[unit]] = 0.0
        left = np.flatnonzero(self.next[: self.n] >= 0)
        right = self.next[left]
        crossing = ((level[left] > 0) & (level[right] < 0)) | ((level[left] < 0) & (level[right] > 0))
        left, right = left[crossing], right[crossing]
        t = level[left] / (level[left] - level[right])
        x = self.x[left] + t * (self.x[right] - self.x[left])
        inside = (x > self.x[left]) & (x < self.x[right])  # a zero that rounds onto an end lies on that knot
        self._snap(unit, left[~inside], right[~inside], x[~inside])
        left, right, t, x = left[inside], right[inside], t[inside], x[inside]
        new = self._grow(len(x))
        self.x[new] = x
        self.z[:, new] = self.z[:, left] + t * (self.z[:, right] - self.z[:, left])
        self.z[unit, new] = 0.0
        self.next[new] = right
        self.next[left] = new
        self.layer.append(np.full(len(new), layer))
        self.unit.append(np.full(len(new), unit))

    def _snap(self, unit: int, left: np.ndarray, right: np.ndarray, x: np.ndarray) -> None:
        on = np.where(x <= self.x[left], left, right)
        self.z[unit, on] = 0.0

    def _grow(self, count: int) -> np.ndarray:
        if self.n + count > len(self.x):
            capacity = max(2 * len(self.x), self.n + count)
            self.x = np.resize(self.x, capacity)
            z = np.empty((self.width, capacity))
            z[:, : self.n] = self.z[:, : self.n]
            self.z = z
            self.next = np.resize(self.next, capacity)
        new = np.arange(self.n, self.n + count)
        self.n += count
        return new

    def sorted(self) -> tuple[np.ndarray, ...]:
        """(order, x, values (knots, units)) in increasing x, and the layer and unit labels of the new knots."""
        order = np.argsort(self.x[: self.n], kind="stable")
        x = self.x[order]
        if not (np.diff(x) > 0).all():
            raise AssertionError("interval knots are not strictly increasing; this is a bug")
        labels = (np.concatenate(self.layer or [np.empty(0, np.int64)]),
                  np.concatenate(self.unit or [np.empty(0, np.int64)]))
        return order, x, self.z[:, order].T, *labels


class IntervalPartition:
    """The pieces of a one-input network on an interval, with the conventions of the 2-D ``Partition``.

    Knots are the interior breakpoints; ``breakpoints`` adds the interval's ends (layer and unit -1).
    Regions are the pieces between consecutive breakpoints; on each the outputs are affine:
    ``outputs = slopes * x + offsets``.

    Attributes
    ----------
    bounds : tuple of float
        The interval ``(lo, hi)``.
    breakpoints : ndarray, shape (n,)
        Sorted knots including both ends.
    breakpoint_layer, breakpoint_unit : ndarray of int, shape (n,)
        The (layer, unit) that made each breakpoint; -1 at the ends.
    values : ndarray, shape (n, n_out)
        Network outputs at the breakpoints.
    slopes, offsets : ndarray, shape (n_regions, n_out)
        Each piece's outputs as ``slopes * x + offsets``.
    layer_widths, layer_region_counts : list of int
        Units per nonlinear layer and pieces after each (cumulative).
    decision_boundary : ndarray, shape (k,)
        Points where the predicted class changes (sign of a single output, else argmax, or the winner of
        ``decision_classes``).
    """

    def __init__(self, ops: Sequence[Op], x: np.ndarray, layer: np.ndarray, unit: np.ndarray, values: np.ndarray,
                 widths: list[int], counts: list[int], decision_classes: tuple[int, int] | None) -> None:
        self.ops = list(ops)
        self.breakpoints = x
        self.breakpoint_layer = layer
        self.breakpoint_unit = unit
        self.values = values
        self.bounds = (float(x[0]), float(x[-1]))
        self.layer_widths = widths
        self.layer_region_counts = counts
        self.decision_classes = decision_classes
        self.n_regions = len(x) - 1
        self.slopes = np.diff(values, axis=0) / np.diff(x)[:, None]
        self.offsets = values[:-1] - self.slopes * x[:-1, None]

    @property
    def n_layers(self) -> int:
        return len(self.layer_widths)

    def knots(self, layer: int | None = None, unit: int | None = None) -> np.ndarray:
        """Interior knots of one layer (and unit); None: all of them."""
        mask = self.breakpoint_layer != BORDER
        if layer is not None:
            mask &= self.breakpoint_layer == layer
        if unit is not None:
            mask &= self.breakpoint_unit == unit
        return self.breakpoints[mask]

    def knot_units(self, layer: int) -> np.ndarray:
        """Unit of each knot returned by ``knots(layer)``, in the same order."""
        return self.breakpoint_unit[self.breakpoint_layer == layer]

    @property
    def regions(self) -> np.ndarray:
        """(n_regions, 2) pieces as ``[left, right]`` intervals; region id = row."""
        return np.stack([self.breakpoints[:-1], self.breakpoints[1:]], axis=1)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.breakpoints)

    @property
    def interior_points(self) -> np.ndarray:
        """(n_regions,) the middle of each piece."""
        return 0.5 * (self.breakpoints[:-1] + self.breakpoints[1:])

    @cached_property
    def _layer_values(self) -> list[np.ndarray]:
        h = self.interior_points[:, None]
        seen = []
        for op in self.ops:
            if not isinstance(op, Affine):
                seen.append(h)
            h = apply(op, h)
        return seen

    def codes(self, layer: int) -> np.ndarray:
        """(n_regions, width) bool: pre-activation > 0 on each piece."""
        if not 0 <= layer < self.n_layers:
            raise IndexError(f"layer {layer} out of range: the network has {self.n_layers} nonlinear layers")
        return self._layer_values[layer] > 0

    def locate(self, points: Any) -> np.ndarray:
        """Piece id of each point, -1 outside the interval; a point on a knot gets the piece to its left."""
        p = np.asarray(points, dtype=np.float64).reshape(-1)
        found = np.searchsorted(self.breakpoints, p, side="left") - 1
        found[p == self.breakpoints[0]] = 0
        found[(p < self.breakpoints[0]) | (p > self.breakpoints[-1]) | np.isnan(p)] = -1
        return found

    def outputs_at(self, points: Any) -> np.ndarray:
        """(k, n_out) network outputs at the points (any shape holding k numbers)."""
        h = np.asarray(points, dtype=np.float64).reshape(-1, 1)
        for op in self.ops:
            h = apply(op, h)
        return h

    def _predict(self, out: np.ndarray) -> np.ndarray:
        if out.shape[1] == 1:
            return (out[:, 0] > 0).astype(np.int64)
        if self.decision_classes is not None:
            pair = np.asarray(self.decision_classes)
            return pair[out[:, pair].argmax(axis=1)]
        return out.argmax(axis=1)

    @cached_property
    def region_classes(self) -> np.ndarray:
        """Predicted class in the middle of each piece (a piece may hold a decision point)."""
        return self._predict(self.outputs_at(self.interior_points))

    @cached_property
    def _cells(self) -> tuple[np.ndarray, np.ndarray]:
        """Breakpoints refined by every pairwise tie of the scores inside a piece, and the class between them."""
        scores = self.slopes, self.offsets
        if self.values.shape[1] == 1:
            scores = tuple(np.hstack([np.zeros_like(s), s]) for s in scores)
        elif self.decision_classes is not None:
            scores = tuple(s[:, list(self.decision_classes)] for s in scores)
        slope, offset = scores
        i, j = np.triu_indices(slope.shape[1], k=1)
        ds, do = slope[:, i] - slope[:, j], offset[:, i] - offset[:, j]
        with np.errstate(divide="ignore", invalid="ignore"):
            ties = -do / ds
        left, right = self.breakpoints[:-1, None], self.breakpoints[1:, None]
        ties = ties[(ds != 0) & (ties > left) & (ties < right)]
        cuts = np.union1d(self.breakpoints, ties)
        classes = self._predict(self.outputs_at(0.5 * (cuts[:-1] + cuts[1:])))
        return cuts, classes

    def class_cells(self) -> tuple[np.ndarray, np.ndarray]:
        """((k, 2) intervals of one predicted class each, (k,) classes): pieces cut at the decision points."""
        cuts, classes = self._cells
        change = np.flatnonzero(np.diff(classes) != 0) + 1
        starts = np.concatenate([[0], change])
        ends = np.concatenate([change, [len(classes)]])
        return np.stack([cuts[starts], cuts[ends]], axis=1), classes[starts]

    @cached_property
    def decision_boundary(self) -> np.ndarray:
        cells, _ = self.class_cells()
        return cells[1:, 0]

    def plot(self, **options: Any) -> Any:
        """A plotly Figure of the outputs, knots per layer and class cells: see ``splineviz.plot.plot_interval``.

        plotly is imported only here, so that the numeric core loads without it (the pandas ``.plot`` pattern).
        """
        from splineviz.plot import plot_interval

        return plot_interval(self, **options)

    def __repr__(self) -> str:
        return (f"IntervalPartition({self.n_regions} pieces on {self.bounds}, layers {self.layer_widths}, "
                f"{len(self.decision_boundary)} decision points)")


__all__ = ["IntervalPartition", "trace_interval"]

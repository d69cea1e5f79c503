"""Trace the exact partition of a piecewise-linear network on a convex 2D domain.

The network is pushed through the planar graph op by op (each op knows how: see ops.Op.cut):
affine maps transform the values stored at vertices (one matmul per layer), and every nonlinear
op first cuts the faces along the level sets of its units, so that its output is again affine
inside every face. A hinge layer (ReLU, LeakyReLU) is cut unit by unit in compiled code where
numba is installed (kernels.py: a layer per call, and a small network's layers and affine maps
all in one call, so small networks are not all call overhead); with numpy alone, in chunks of
units, each chunk in one pass of the line arrangement (arrangement.py); a chunk that is not in
generic position is halved, down to single units, which the unit-by-unit split (graph.py)
handles in every case. A compiled hinge layer wider than a block, whose next op is an affine map
of a block's width at most, is folded into that map block by block as it is cut (kernels.fold),
so that it never holds every unit's value at every vertex.
While cutting, the tracer records each layer's activation code per face and each face's parent,
so that codes per region never need a second forward pass.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np

from . import kernels
from .arrangement import max_units, refine_by_layer
from .domain import DEFAULT_BOUNDS, Plane, convex_domain
from .errors import Cancelled, PartitionBudgetError
from .graph import E0, E1, FB, LAYER, OUTSIDE, UNIT, VALUES, PlanarGraph
from .ops import Affine, Hinge, LeakyReLU, MaxPool, Op, ReLU, normalize
from .result import LayerRecord, Partition

Progress = Optional[Callable[[float, str], None]]
Cancel = Optional[Callable[[], bool]]
Refine = Union[str, int]

DEFAULT_BUDGET = 2_000_000
DEFAULT_MAX_BYTES = 6 * 2**30
REL_TOL = 1e-10  # values this close to zero, relative to the unit's range, lie on its line
_UFUNC_BUFFER = 1024  # elements: numpy buffers ufuncs on strided value columns, 8192 by default (64 KiB each)
CHUNK_CELLS = 2**23  # edges x units per one-pass chunk: bounds its (edges, units) temporaries
CHUNK_UNITS = 32  # units per chunk at most: fewer scans of the graph against bigger temporaries (not tuned)
_WORK = 2**22  # edge visits per compiled call at most, between progress reports and cancel checks
_BLOCK_CELLS = 2**24  # vertices x units per block when the first layer's values are built for the next map
SMALL_MACS = 2**20  # multiply-adds up to which an affine map is summed input by input (see Tracer.affine)
_DRIVER_EDGES = 2**14  # kernels.trace_net hands hinge layers begun on this many edges to the op-by-op path
_DRIVER_ROOM = 2**26  # bytes of tables kernels.trace_net may hold and grow itself
FOLD = True  # fold wide hinge layers into the next map as they are cut (Tracer._fold_plan); tests switch it off


@dataclass
class Tracer:
    """Implements ops.Cutter: cuts the graph for each op, and keeps budget, progress and cancel.

    refine: "auto" (with numba: unit by unit in compiled code; else chunks of the one-pass
    arrangement, sized to the graph, halved where not in generic position), "unit" (unit by unit:
    compiled with numba, else numpy's split, the reference the kernels are tested against) or an
    int k (numpy chunks of at most k units; tests use it to compare chunkings).
    """

    total: int
    budget: int = DEFAULT_BUDGET
    progress: Progress = None
    cancel: Cancel = None
    refine: Refine = "auto"
    done: int = 0
    next_report: float = 0.0
    parent: np.ndarray | None = None  # after a nonlinear layer: the face (before it) each face was cut from
    # (W, b): values are coords @ W.T + b, not stored; C-contiguous float64, as the compiled kernels take them (another
    # layout would have numba compile them again)
    first: tuple[np.ndarray, np.ndarray] | None = None
    activation: Hinge | None = None  # applied to the first layer's values when they are next needed
    resume: tuple[int, tuple] | None = None  # a hinge layer kernels.trace_net began: (next unit, kernel state)
    ahead: tuple[Op, Op | None] | None = None  # the op being cut and the next (set by _cut_layers; see _fold_plan)
    folded: Affine | None = None  # the map a hinge layer was folded into as it was cut (see _fold_plan)

    @property
    def compiled(self) -> bool:
        """Hinge layers are cut by the compiled kernels (numba there and on, refine "auto" or "unit")."""
        return kernels.available() and self.refine in ("auto", "unit")

    # -- ops.Cutter ----------------------------------------------------------------------------
    def affine(self, graph: PlanarGraph, weight: np.ndarray, bias: np.ndarray) -> None:
        """values @ W.T + b, written straight into the next vertex table (room kept for new vertices).

        A small map (up to SMALL_MACS multiply-adds) is summed input by input, in an order the
        compiled kernels repeat exactly (kernels.trace_net; they leave out terms that are zeros,
        which change no value), so that the two engines agree bit for bit; a larger one is a matmul.
        """
        n, width = graph.n, weight.shape[0]
        table = graph.value_table(width, spare=kernels.value_rows(n, graph.m, width) - n)  # room for new vertices
        out = table[:n, VALUES:]
        if self.folded is not None:  # summed while the hinge layer was cut (see _fold_plan): out of its wide table,
            assert weight is self.folded.weight  # which a partition would otherwise keep alive
            out[...] = graph.values
            self.folded = None
        elif n * weight.shape[1] * width <= SMALL_MACS:
            inputs = graph.values if self.first is None else self._first_values(graph, slice(None))
            if self.activation is not None:
                self.activation.activate(inputs)
            np.multiply.outer(inputs[:, 0], weight[:, 0], out=out)
            for k in range(1, inputs.shape[1]):
                out += np.multiply.outer(inputs[:, k], weight[:, k])
        elif self.first is None:
            np.matmul(graph.values, weight.T, out=out)
        else:  # the first layer's values were never stored: build them block by block from the coordinates
            first_weight = self.first[0]
            block = max(1, _BLOCK_CELLS // max(n, 1))
            for start in range(0, first_weight.shape[0], block):
                units = slice(start, start + block)  # slices: no copies of the weights
                z = self._first_values(graph, units)
                if self.activation is not None:
                    self.activation.activate(z)
                if start == 0:
                    np.matmul(z, weight[:, units].T, out=out)
                else:
                    out += z @ weight[:, units].T
        self.first = self.activation = None
        out += bias
        graph.vals = table

    def activate(self, graph: PlanarGraph, op: Hinge) -> None:
        """Apply a hinge to the stored values, or (first layer) remember it for the next affine map."""
        if self.folded is not None:  # done while the layer was cut
            return
        if self.first is None:
            op.activate(graph.values)
        else:
            self.activation = op

    def materialize(self, graph: PlanarGraph) -> None:
        """Store the first layer's values (for ops that need them all at once, like max-pooling)."""
        if self.first is None:
            return
        width = self.first[0].shape[0]
        table = graph.value_table(width)
        table[:, VALUES:] = self._first_values(graph, slice(None))
        if self.activation is not None:
            self.activation.activate(table[:, VALUES:])
        graph.vals = table
        self.first = self.activation = None

    def zero_sets(self, graph: PlanarGraph, layer: int) -> np.ndarray:
        """Cut along every unit's zero set; returns each face's signs, bit-packed (see ops.Hinge).

        On the first layer, whose values are affine in the plane coordinates, no value table is
        kept: each chunk's values are computed from the coordinates when it is cut, so a wide first
        layer costs memory for one chunk, not for every unit at every vertex.
        """
        if self.activation is not None:  # a hinge right after the first one: its input must be stored
            self.materialize(graph)
        if self.compiled:
            return self._compiled_zero_sets(graph, layer)
        values = graph.values if self.first is None else self._first_values(graph, slice(None))
        width = values.shape[1]
        tol = REL_TOL * np.maximum(values.max(axis=0, initial=0.0), -values.min(axis=0, initial=0.0))
        codes = _Codes(graph, width)
        if self.refine == "unit":
            alone, pending = np.arange(width), []
        else:
            near_zero = ((values <= tol) & (values >= -tol)).any(axis=0)  # such units never pass one pass
            alone = np.flatnonzero(near_zero)
            pending = [np.flatnonzero(~near_zero)]
        del values  # a live view would make every growth of the table a copy (see reserve_vertices)
        for unit in alone:
            self._split(graph, tol, layer, int(unit))
        single = list(alone)
        while pending:
            units = pending.pop()
            size = self._chunk_size(graph)
            if units.size > size:
                pending += [units[size:], units[:size]]
                continue
            if units.size == 0:
                continue
            codes.sync()
            if self.first is None:
                signs = refine_by_layer(graph, tol[units], layer, units)
            else:
                self._load_first(graph, units)
                signs = refine_by_layer(graph, tol[units], layer, np.arange(units.size), labels=units)
            if signs is not None:
                codes.record(units, signs)
                self.step(graph, layer, int(units[-1]), units.size)
            elif units.size > 1:  # not in generic position: halve, down to single units
                half = units.size // 2
                pending += [units[half:], units[:half]]
            else:
                self._split(graph, tol, layer, int(units[0]))
                single.append(int(units[0]))
        codes.sync()
        if single:
            values = graph.values.take(single, axis=1) if self.first is None else self._first_values(graph, single)
            codes.from_signs(single, graph.corner_signs(values, tol[single]))
        if self.first is not None:
            graph.vals = graph.value_table(0)  # the coordinates are all the first layer keeps
        self.parent = codes.parent.copy()  # copies drop the spare rows
        return codes.bits.copy()

    def _compiled_zero_sets(self, graph: PlanarGraph, layer: int) -> np.ndarray:
        """Unit by unit in compiled code (kernels.py): the very graph, codes and parents of the numpy path
        (a wide layer, folded block by block into the next map: the values that follow differ by rounding)."""
        if self.first is None:
            width = graph.vals.shape[1] - VALUES
            column, weight, bias = VALUES, np.zeros((width, 2)), np.zeros(width)
        else:
            column = kernels.UNSTORED
            weight, bias = self.first
            width = bias.size
        fold = self._fold_plan(width)
        if self.resume is not None:  # begun by kernels.trace_net
            (start, state), self.resume = self.resume, None
        else:
            room = kernels.layer_room(graph.n, graph.m, graph.n_faces, width)
            if room[0]:  # a small layer: room for all of it at once (a guess)
                graph.reserve(*room)
            start, state = 0, kernels.fresh_state(width)
        bits = np.zeros((graph.n_faces, 0), dtype=np.uint8)
        blocks: list[tuple[np.ndarray, np.ndarray]] = []  # folded: each block's bits, and its faces' origins
        if fold is not None:
            weight_t = np.ascontiguousarray(fold[0].weight.T)  # as kernels.fold reads it, once for every block
        while start < width:
            stop = width if fold is None else min(width, (start // kernels.BLOCK + 1) * kernels.BLOCK)
            done, state, bits = graph.cut_layer(column, weight, bias, REL_TOL, layer, start, state, self.budget, _WORK,
                                                stop, by_block=fold is not None)
            self.step(graph, layer, done - 1, done - start)
            start = done
            if fold is not None and done == stop:  # a block done: fold it away, and follow its faces from here
                blocks.append((bits, graph.origin.copy()))
                column = graph.fold(column, (done - 1) // kernels.BLOCK * kernels.BLOCK, done, weight_t, *fold[1:])
                graph.reset_origin()
        if fold is None:
            self.parent = graph.origin.copy()
        else:
            bits, self.parent = _unfolded_codes(blocks, width)
            self.folded = fold[0]
        graph.reset_origin()
        return bits

    def _fold_plan(self, width: int) -> tuple[Affine, int, float] | None:
        """(the next map, the hinge's kernels kind and slope) when this layer is to be folded into it as it is cut.

        A hinge layer wider than a block of the kernels, whose values are stored and whose next op is an
        affine map of a block's width at most, is folded block by block (kernels.fold): each block of
        units, once cut, becomes its terms of the next map's sums and leaves the table, so the layer never
        holds all its values at every vertex (2-512-512-2: a peak of 961 MiB instead of 1,679 MiB)."""
        if not FOLD or self.first is not None or self.resume is not None or self.ahead is None:
            return None
        hinge, following = self.ahead
        if type(hinge) not in (ReLU, LeakyReLU) or not isinstance(following, Affine):
            return None
        if width <= kernels.BLOCK or following.out_features > kernels.BLOCK:
            return None
        if isinstance(hinge, LeakyReLU):
            return following, kernels.LEAKY_RELU, hinge.negative_slope
        return following, kernels.RELU, 0.0

    def trace_compiled(self, graph: PlanarGraph, ops: Sequence[Op], width: int
                       ) -> tuple[list[LayerRecord], int, int]:
        """Cut the ops (from the first hinge on) in one compiled call, as far as kernels.trace_net goes.

        A small network is then traced without a Python step per layer. Returns the records of
        the layers it finished, the number of ops done and the width they leave; the op-by-op
        path goes on from there (resuming a hinge layer it began), and builds the very same graph.
        """
        program, params, at = [], [], 0
        for op in ops:
            if isinstance(op, Affine) and 4 * op.weight.size <= SMALL_MACS:  # a graph has 4 vertices or more
                program.append((kernels.AFFINE, at, *op.weight.shape))
                params += [op.weight.ravel(), op.bias]
                at += op.weight.size + op.bias.size
            elif type(op) is ReLU:
                program.append((kernels.RELU, 0, 0, 0))
            elif type(op) is LeakyReLU:
                program.append((kernels.LEAKY_RELU, at, 0, 0))
                params.append(np.array([op.negative_slope]))
                at += 1
            else:
                break
        if not program:
            return [], 0, width
        first_w, first_b = self.first  # type: ignore[misc]
        room = _DRIVER_ROOM if graph.max_bytes is None else min(graph.max_bytes, _DRIVER_ROOM)
        (done, start, state, graph.vals, graph.edges, origin, graph.n, graph.m, graph.n_faces, lost, first, n_layers,
         bits, parents, index) = kernels.trace_net(
            graph.vals, graph.edges, graph._origin_buffer(), graph.n, graph.m, graph.n_faces,
            np.array(program, dtype=np.int64), np.concatenate(params) if params else np.empty(0), first_w, first_b,
            VALUES, REL_TOL, self.budget, _WORK, room, SMALL_MACS, _DRIVER_EDGES)
        graph._origin_room, graph.origin = origin, origin[: graph.n_faces]
        graph.n_unresolved += lost
        layers: list[LayerRecord] = []
        bits_at, parents_at, faces = index.tolist()  # plain ints: slicing with numpy's is slower
        for op in ops[:done]:
            width = op.out_width(width)
            if op.nonlinear:
                i = len(layers)
                codes = bits[bits_at[i]: bits_at[i + 1]].reshape(faces[i], -1)
                layers.append(LayerRecord(op, width, faces[i], codes, parents[parents_at[i]: parents_at[i + 1]]))
        if first and layers:  # the first layer is cut, its activation still to come
            self.activation = layers[0].op  # type: ignore[assignment]
        elif not first:
            self.first = self.activation = None
        finished = sum(layer.width for layer in layers)
        if start > 0:
            self.resume = (start, state)
            self.step(graph, len(layers), start - 1, finished + start)
        elif layers:
            graph.reset_origin()
            self.step(graph, len(layers) - 1, layers[-1].width - 1, finished)
        return layers, done, width

    def tournament(self, graph: PlanarGraph, groups: Sequence[Sequence[int]], layer: int) -> np.ndarray:
        """Cut where candidate j of a group overtakes the group's running max, for every group.

        Afterwards the arg-max of every group is constant inside every face; returns it per face
        (position within the group). The running max lives in a scratch column so that new
        vertices interpolate it like any other value.
        """
        self.materialize(graph)
        graph.reset_origin()
        tol = REL_TOL * max(float(np.abs(graph.values).max()), 1e-300)
        graph.replace_values(np.hstack([graph.values, np.zeros((graph.n, 1))]))
        running = graph.vals.shape[1] - 1
        for unit, group in enumerate(groups):
            graph.vals[: graph.n, running] = graph.column(group[0])
            for j in group[1:]:
                level = graph.column(j) - graph.vals[: graph.n, running]
                graph.split(level, tol, layer, unit)
                np.maximum(graph.vals[: graph.n, running], graph.column(j), out=graph.vals[: graph.n, running])
                self.step(graph, layer, unit)
            if len(group) > 2:
                graph.remove_edges(_untied_edges(graph, group, layer, unit, tol))
        graph.replace_values(graph.values[:, :-1])
        self.parent = graph.origin
        means = graph.face_means(np.arange(graph.values.shape[1]))
        # the first candidate within tolerance of the group's max: exact ties go to the lowest position, as in argmax
        return np.stack([(means[:, list(g)] >= means[:, list(g)].max(axis=1, keepdims=True) - tol).argmax(axis=1)
                         for g in groups], axis=1).astype(np.int32)

    # -- bookkeeping ---------------------------------------------------------------------------
    def step(self, graph: PlanarGraph, layer: int, unit: int, units: int = 1) -> None:
        """Account for `units` more units traced, up to `unit` of `layer`."""
        self.done += units
        if graph.n_faces > self.budget:
            raise PartitionBudgetError(
                f"the partition passed the budget of {self.budget:,} regions at layer {layer}, unit {unit} "
                f"({graph.n_faces:,} regions so far); trace a smaller domain or network, or raise the budget")
        if self.cancel is not None and self.cancel():
            raise Cancelled(f"tracing cancelled at layer {layer}, unit {unit}")
        fraction = self.done / max(self.total, 1)
        if self.progress is not None and (fraction >= self.next_report or self.done == self.total):
            self.progress(fraction, f"layer {layer}: unit {unit + 1}, {graph.n_faces:,} regions")
            self.next_report = fraction + 0.01

    def _split(self, graph: PlanarGraph, tol: np.ndarray, layer: int, unit: int) -> None:
        if self.first is None:
            column = VALUES + unit
        else:
            self._load_first(graph, np.array([unit]))
            column = VALUES
        level = graph.vals[: graph.n, column].copy()  # contiguous: split scans it several times
        graph.split(level, tol[unit], layer, unit, zero_column=column)
        self.step(graph, layer, unit)

    def _first_values(self, graph: PlanarGraph, units: np.ndarray | slice) -> np.ndarray:
        """x w0 + y w1 + b as two outer products: a matmul with an inner size of 2 is several times slower."""
        weight, bias = self.first  # type: ignore[misc]
        weight = weight[units]
        values = np.multiply.outer(graph.vals[: graph.n, 0], weight[:, 0])
        values += np.multiply.outer(graph.vals[: graph.n, 1], weight[:, 1])
        values += bias[units]
        return values

    def _load_first(self, graph: PlanarGraph, units: np.ndarray) -> None:
        """Make these first-layer units the graph's only value columns (computed from the coordinates)."""
        table = graph.value_table(units.size, spare=graph.n)
        table[: graph.n, VALUES:] = self._first_values(graph, units)
        graph.vals = table

    def _chunk_size(self, graph: PlanarGraph) -> int:
        if isinstance(self.refine, (int, np.integer)) and not isinstance(self.refine, bool):
            return max(1, min(int(self.refine), max_units(graph.n_faces)))
        return max(1, min(CHUNK_UNITS, max_units(graph.n_faces), CHUNK_CELLS // max(graph.m, 1)))


class _Codes:
    """A hinge layer's sign bits per face, carried along as faces are cut (graph.origin).

    Refinements keep the ids of the faces they do not cut and append new ones, so rows are
    usually only appended (into spare capacity) rather than the whole table gathered again.
    """

    def __init__(self, graph: PlanarGraph, width: int) -> None:
        self.graph = graph
        self._bits = np.zeros((graph.n_faces, (width + 7) // 8), dtype=np.uint8)
        self._parent = np.arange(graph.n_faces)  # face at the layer's start each face was cut from
        self.rows = graph.n_faces
        graph.reset_origin()

    @property
    def bits(self) -> np.ndarray:
        return self._bits[: self.rows]

    @property
    def parent(self) -> np.ndarray:
        return self._parent[: self.rows]

    def sync(self) -> None:
        """Rows for the faces as they are now (new faces inherit their parent's bits and parent)."""
        origin, rows = self.graph.origin, self.rows
        if origin.size == rows and not self.graph.renumbered:  # nothing cut since the last sync
            return
        if origin.size >= rows and not self.graph.renumbered:
            if origin.size > self._bits.shape[0]:
                capacity = 2 * origin.size
                self._bits = np.concatenate([self._bits[:rows], np.empty((capacity - rows, self._bits.shape[1]),
                                                                          dtype=np.uint8)])
                self._parent = np.concatenate([self._parent[:rows], np.empty(capacity - rows, dtype=np.int64)])
            fresh = origin[rows:]
            self._bits[rows: origin.size] = self._bits.take(fresh, axis=0)
            self._parent[rows: origin.size] = self._parent.take(fresh)
        else:
            self._bits = self.bits.take(origin, axis=0)
            self._parent = self.parent.take(origin)
        self.rows = origin.size
        self.graph.reset_origin()

    def record(self, units: np.ndarray, signs: np.ndarray) -> None:
        """Bit i of signs[f] is unit units[i]'s sign in face f (faces as they are now)."""
        self.sync()
        if units[0] % 8 == 0 and units.size % 8 == 0 and units[-1] - units[0] == units.size - 1:
            packed = signs.astype("<i8").view(np.uint8).reshape(-1, 8)  # bit i of byte i // 8: little-endian
            self.bits[:, units[0] // 8: (units[0] + units.size) // 8] = packed[:, : units.size // 8]
            return
        for i, unit in enumerate(units):
            self.bits[:, unit // 8] |= (((signs >> i) & 1) << (unit % 8)).astype(np.uint8)

    def from_signs(self, units: Sequence[int], positive: np.ndarray) -> None:
        """Bits of units cut one by one, read off the faces' corners (positive[:, i] for units[i])."""
        for i, unit in enumerate(units):
            self.bits[:, unit // 8] |= (positive[:, i].astype(np.uint8) << np.uint8(unit % 8))




def trace(ops: Sequence[Op], bounds=DEFAULT_BOUNDS, plane: Plane | None = None, budget: int = DEFAULT_BUDGET,
          decision_classes: tuple[int, int] | None = None, progress: Progress = None, cancel: Cancel = None,
          max_bytes: int = DEFAULT_MAX_BYTES, refine: Refine = "auto", *, domain=None) -> Partition:
    """Exact partition of a piecewise-linear network on a convex 2D domain.

    Parameters
    ----------
    ops : sequence of Op
        The network: Affine maps and ReLU, LeakyReLU or MaxPool ops, applied left to right.
    bounds : 4 numbers or (k, 2) array, default DEFAULT_BOUNDS = (-3, 3, -3, 3)
        (xmin, xmax, ymin, ymax), or the corners of a convex polygon.
    plane : Plane, optional
        Trace the slice x = x0 + a u + b v of a network with more than 2 inputs; `bounds` are
        then in plane coordinates (a, b).
    budget : int
        Most regions allowed; PartitionBudgetError as soon as the partition passes it.
    decision_classes : (int, int), optional
        Draw the decision boundary between these two outputs only.
    progress, cancel : callables, optional
        progress(fraction, message) is called as units are traced; cancel() is polled as often
        and stops the trace with Cancelled when it returns True.
    max_bytes : int
        Cap on the graph's tables: every table's size is predicted before it is allocated, and
        PartitionBudgetError is raised instead of allocating one that breaks the cap.
    refine : "auto", "unit" or int
        How hinge layers are cut: "auto" and "unit" unit by unit in compiled code where numba is
        installed (SPLINEVIZ_NUMBA=0 switches it off); with numpy alone, "auto" in chunks of the
        one-pass arrangement and "unit" unit by unit (the reference path); an int: numpy chunks
        of at most this many units.
    domain : deprecated
        The old name of `bounds`.

    Returns
    -------
    Partition

    Examples
    --------
    >>> import numpy as np
    >>> from splineviz.partition import Affine, ReLU, trace
    >>> ops = [Affine(np.array([[1.0, 0.0], [0.0, 1.0]]), np.zeros(2)), ReLU(), Affine(np.ones((1, 2)), np.zeros(1))]
    >>> p = trace(ops, bounds=(-1, 1, -1, 1))
    >>> p.n_regions, p.layer_region_counts
    (4, [4])
    >>> sorted(p.areas.round(6).tolist())
    [1.0, 1.0, 1.0, 1.0]
    """
    if domain is not None:
        warnings.warn("trace(domain=...) is deprecated; use bounds=", DeprecationWarning, stacklevel=2)
        bounds = domain
    if not (refine in ("auto", "unit") or (isinstance(refine, (int, np.integer)) and not isinstance(refine, bool)
                                           and refine >= 1)):
        raise ValueError(f"refine must be 'auto', 'unit' or a positive number of units, got {refine!r}")
    ops = normalize(ops, in_features=plane.dim if plane is not None else 2)
    first = ops[0]
    assert isinstance(first, Affine)
    if plane is not None:
        first = plane.restrict(first)
    elif first.in_features != 2:
        raise ValueError(f"the network takes {first.in_features} inputs; give a Plane to trace a 2D slice of it")
    ops = [first, *ops[1:]]
    n_out = ops[-1].out_features  # type: ignore[attr-defined]
    if decision_classes is not None:
        decision_classes = tuple(int(c) for c in decision_classes)  # type: ignore[assignment]
        if len(decision_classes) != 2 or len(set(decision_classes)) != 2 or not all(0 <= c < n_out for c in decision_classes):
            raise ValueError(f"decision_classes must be two different outputs in 0..{n_out - 1}, got {decision_classes}")

    corners = convex_domain(bounds)
    graph = PlanarGraph(corners, np.zeros((len(corners), 0)))
    graph.max_bytes = max_bytes
    graph.allot(0)  # the first table is tiny; this only refuses a max_bytes below it
    tracer = Tracer(_count_cuts(ops), budget, progress, cancel, refine,
                    first=(np.ascontiguousarray(first.weight), np.ascontiguousarray(first.bias)))
    with np.errstate():  # numpy scopes its ufunc buffer size to this context
        np.setbufsize(_UFUNC_BUFFER)
        layers, done, width = [], 0, first.out_features
        if tracer.compiled:
            layers, done, width = tracer.trace_compiled(graph, ops[1:], width)
        _cut_layers(graph, width, ops[1 + done:], tracer, layers)
        tracer.materialize(graph)  # a purely affine network: its outputs are the first map's
        overlay, decision = _decision_overlay(graph, len(layers), decision_classes, tracer.compiled)
    return Partition(graph, ops, layers, overlay, decision, decision_classes, plane)


def load_kernels() -> None:
    """Load (or, the first time, compile) the compiled kernels now, by tracing two tiny nets.

    A server calls it before it forks its jobs: they inherit the loaded kernels instead of each
    loading them from numba's cache at its first trace (seconds). Without numba it costs a
    millisecond.
    """
    rng = np.random.default_rng(0)
    trace([Affine(rng.normal(size=(6, 2)), rng.normal(size=6)), ReLU(),
           Affine(rng.normal(size=(3, 6)), rng.normal(size=3))])  # one call of trace_net; three classes: split_level
    # op by op (max-pooling first), so cut_layer is loaded as the tracer calls it: trace_net's copy, when read
    # from numba's cache, is not; then a layer wider than a block, folded (kernels.fold), on a small square
    wide = kernels.BLOCK + 1
    trace([Affine(rng.normal(size=(4, 2)), rng.normal(size=4)), MaxPool(((0, 1), (2, 3))), ReLU(),
           Affine(rng.normal(size=(wide, 2)), rng.normal(size=wide)), ReLU(),
           Affine(rng.normal(size=(1, wide)), rng.normal(size=1))], bounds=(-0.1, 0.1, -0.1, 0.1))


def _cut_layers(graph: PlanarGraph, width: int, ops: Sequence[Op], tracer: Tracer, layers: list[LayerRecord]) -> None:
    """Push the graph through the ops; add what every nonlinear layer leaves (codes, parents, counts) to layers."""
    for i, op in enumerate(ops):
        tracer.ahead = (op, ops[i + 1] if i + 1 < len(ops) else None)
        width = op.out_width(width)
        if not op.nonlinear:
            op.cut(graph, len(layers), tracer)
            continue
        try:
            codes = op.cut(graph, len(layers), tracer)
        except PartitionBudgetError as error:
            if str(error).startswith("the partition passed"):
                raise
            raise PartitionBudgetError(f"at layer {len(layers)} ({graph.n_faces:,} regions so far): {error}") from None
        assert tracer.parent is not None and codes is not None
        layers.append(LayerRecord(op, width, graph.n_faces, codes, tracer.parent))


def _unfolded_codes(blocks: list[tuple[np.ndarray, np.ndarray]], width: int) -> tuple[np.ndarray, np.ndarray]:
    """A folded layer's sign bits and parents, for the faces at its end, from its blocks' (bits, origins).

    Block b's bits are on the faces at its end, whose origins lead to the faces at the end of block b - 1
    (of the layer's start, for block 0): following them back from the last block reads each block's bits
    where the face then was, and ends at the faces' parents."""
    last_bits, _ = blocks[-1]
    face = np.arange(last_bits.shape[0])
    codes = np.empty((last_bits.shape[0], (width + 7) // 8), dtype=np.uint8)
    for b in reversed(range(len(blocks))):
        bits, origin = blocks[b]
        at = b * kernels.BLOCK // 8
        codes[:, at: at + bits.shape[1]] = bits[face]
        face = origin[face]
    return codes, face


def _count_cuts(ops: Sequence[Op]) -> int:
    total, width = 0, ops[0].out_features  # type: ignore[attr-defined]
    for op in ops[1:]:
        total += op.n_cuts(width)
        width = op.out_width(width)
    return total


def _untied_edges(graph: PlanarGraph, group: Sequence[int], layer: int, unit: int, tol: float) -> np.ndarray:
    """Edges the tournament made for `group` along which its winner does not actually change."""
    edges = graph.edges[:, : graph.m]
    made = ((edges[LAYER] == layer) & (edges[UNIT] == unit)).nonzero()[0]
    values = graph.vals[: graph.n].take([VALUES + j for j in group], axis=1)
    return made[~_tied(values, edges[E0, made], edges[E1, made], tol)]


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


def _decision_overlay(graph: PlanarGraph, layer: int, classes: tuple[int, int] | None, compiled: bool = False
                      ) -> tuple[PlanarGraph, np.ndarray]:
    """Regions cut further where the predicted class changes, and the segments where it does.

    The argmax is not part of the network's linear regions, so the cuts it needs are made on a
    copy (its faces are the class cells used for shading; its origin says which region each
    lies in). One output: its sign; two: the sign of their difference. Otherwise a tournament
    over the classes, after which an edge lies on the decision boundary exactly when the top two
    logits tie along all of it. Where one class wins everywhere there is nothing to cut, and the
    regions are the class cells (compiled: that test in one kernel call, on all the outputs).
    """
    outputs = graph.values if classes is None else graph.values[:, list(classes)]
    if outputs.shape[1] == 2:  # two classes: the boundary is the zero set of their difference
        outputs = outputs[:, 1:] - outputs[:, :1]
    if compiled and outputs.shape[1] == graph.vals.shape[1] - VALUES:  # all the outputs, as stored
        tol, one_class = kernels.one_class(graph.vals, graph.n, VALUES, REL_TOL)
    else:
        tol = REL_TOL * max(float(np.abs(outputs).max()), 1e-300)
        one_class = _one_class_everywhere(outputs, tol)
    if one_class:
        return graph, np.empty((0, 2, 2))
    overlay = graph.with_values(outputs)
    if outputs.shape[1] == 1:
        overlay.split(overlay.vals[: overlay.n, VALUES].copy(), tol, layer, 0, zero_column=VALUES)
    else:
        Tracer(0, 2**62).tournament(overlay, [tuple(range(outputs.shape[1]))], layer)
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
    winner = int(outputs[0].argmax())  # the class at one vertex: it must win at every vertex
    behind = outputs - outputs[:, winner: winner + 1]  # every rival's lead, which must be below -tol
    behind[:, winner] = -np.inf
    return bool(behind.max() < -tol)


def _top_two_gap(logits: np.ndarray) -> np.ndarray:
    if logits.shape[1] == 1:
        return np.abs(logits[:, 0])
    top = -np.partition(-logits, 1, axis=1)[:, :2]
    return top[:, 0] - top[:, 1]

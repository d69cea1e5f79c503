"""The planar graph of a partition and the one operation that refines it: split by a level set.

Vertices carry a row of values (plane coordinates first, then whatever the tracer needs:
the current layer's pre-activations). Faces are convex and known only by id, through the two
face ids stored on every edge. Splitting by a function that is affine inside every face is
then purely local: cut the edges whose endpoints change sign, join the two cut points of
every crossed face with a new edge, and hand the negative side to a new face id. All of it is
vectorised over edges, so Python only loops over units.
"""
from __future__ import annotations

import math
import threading
import weakref

import numpy as np

from . import kernels
from .errors import PartitionBudgetError

OUTSIDE = -1  # face id of everything outside the domain
E0, E1, FA, FB, LAYER, UNIT = range(6)  # fields of an edge: its two ends, two faces, and label
X, Y, VALUES = 0, 1, 2  # columns of a vertex row: plane coordinates, then the first value column
BORDER = -1  # layer label of the domain's own edges

_SMALL = 4096  # rows up to which tables double: small graphs reallocate rarely and touch little fresh memory
HUGE_PAGES_FROM = 64 * 2**20  # bytes: smaller tables are allocated without Linux's 2 MiB pages (see new_table)
_NUMPY_ADVISES_FROM = 4 * 2**20  # bytes: numpy asks for 2 MiB pages on arrays this large or larger
_pages_lock = threading.Lock()
_huge_pages = getattr(np._core.multiarray, "_set_madvise_hugepage", None)  # numpy's process-wide switch


def new_table(shape: tuple[int, ...], dtype=np.float64) -> np.ndarray:
    """np.empty for a graph table: 2 MiB pages only from HUGE_PAGES_FROM bytes on.

    numpy asks Linux for 2 MiB pages on every array of 4 MiB or more, so that one byte written makes
    2 MiB resident; tables keep spare rows for what is still to come, meant to cost nothing until
    written (net B: 1.1 MiB of a 11 MiB peak). On tables of hundreds of MiB that waste is small, and
    2 MiB pages make the kernels' scattered row reads much faster (2-1024-2: 4.7-5.8 s with, 7.2-7.5
    s without).
    """
    size = math.prod(shape) * np.dtype(dtype).itemsize
    # below _NUMPY_ADVISES_FROM numpy never asks, from HUGE_PAGES_FROM on it should: no switch (nor lock) needed
    if _huge_pages is None or not _NUMPY_ADVISES_FROM <= size < HUGE_PAGES_FROM:
        return np.empty(shape, dtype=dtype)
    with _pages_lock:
        before = _huge_pages(False)
        try:
            return np.empty(shape, dtype=dtype)
        finally:
            _huge_pages(before)


def _capacity(needed: int, current: int) -> int:
    """Double small tables; grow large ones by a quarter, since numpy zero-fills (touches) what it adds."""
    return max(needed, current + max(current // 4, min(current, _SMALL), 16))


def _grow(array: np.ndarray, rows: int) -> np.ndarray:
    """Make room for `rows` rows, in place (realloc) when possible, else in a fresh array."""
    new_shape = (_capacity(rows, array.shape[0]),) + array.shape[1:]
    try:
        array.resize(new_shape, refcheck=False)
        return array
    except ValueError:  # array is a view or shares memory: copy instead
        grown = np.zeros(new_shape, dtype=array.dtype)
        grown[: array.shape[0]] = array
        return grown


def _grow_columns(array: np.ndarray, cols: int) -> np.ndarray:
    """Field-major tables grow along columns, which realloc cannot do in place: copy, amortised."""
    grown = new_table((array.shape[0], _capacity(cols, array.shape[1])), dtype=array.dtype)
    grown[:, : array.shape[1]] = array
    return grown


def interpolate_rows(values: np.ndarray, a: np.ndarray, b: np.ndarray, t: np.ndarray,
                     out: np.ndarray | None = None) -> np.ndarray:
    """Rows a + t * (b - a): new vertices on segments get every value column interpolated.

    `out` (rows of the table that will hold them) saves a copy; one temporary remains.
    """
    rows = np.take(values, a, axis=0, out=out, mode="clip")  # "clip": unbuffered, and a is in range
    step = values.take(b, axis=0)
    step -= rows
    step *= t[:, None]
    rows += step
    return rows


def run_starts(sorted_ids: np.ndarray) -> np.ndarray:
    """Where a run of equal ids begins, as a mask."""
    start = np.empty(sorted_ids.size, dtype=bool)
    start[:1] = True
    np.not_equal(sorted_ids[1:], sorted_ids[:-1], out=start[1:])
    return start


class PlanarGraph:
    """Convex faces of a convex domain, refined one level set at a time."""

    def __init__(self, corners: np.ndarray, values: np.ndarray) -> None:
        """corners: (k, 2) convex polygon, counter-clockwise; values: (k, c) rows for its corners."""
        k = len(corners)
        self.vals = np.empty((k, VALUES + values.shape[1]), dtype=np.float64)
        self.vals[:, X: Y + 1], self.vals[:, VALUES:] = corners, values
        self.n = k
        # one int64 row per field (ends, faces, labels), edges along columns: gathers over a field
        # read contiguous memory, and copying whole edges is one call
        ids = list(range(k))  # the rows E0, E1, FA, FB, LAYER, UNIT, built in one call (a small net's trace is calls)
        self.edges = np.array([ids, ids[1:] + ids[:1], [0] * k, [OUTSIDE] * k, [BORDER] * k, [0] * k], dtype=np.int64)
        self.m = k
        self.n_faces = 1
        self.n_unresolved = 0  # faces left unsplit because rounding made their sign pattern inconsistent
        # the face each face was cut from, as of the last reset_origin(): how callers follow faces (and
        # whatever they know about them, e.g. activation codes) through a refinement without re-deriving it
        self.origin = np.zeros(1, dtype=np.int64)
        self._origin_room: np.ndarray | None = None  # what the compiled kernels write origin into (see _origin_buffer)
        self.renumbered = False
        self.max_bytes: int | None = None  # cap on the vertex and edge tables, checked before they grow
        # what the value table held before columns were folded out of it (see fold), while it is still the table
        self._folded: tuple[weakref.ref, int] | None = None
        # scratch reused by every split: vertex signs, and face -> new face (all OUTSIDE between splits;
        # its last slot answers for index OUTSIDE itself)
        self._sign = np.zeros(k, dtype=np.int8)
        self._face_map = np.array([OUTSIDE, OUTSIDE], dtype=np.int64)

    # -- views -------------------------------------------------------------------------------
    @property
    def coords(self) -> np.ndarray:
        return self.vals[: self.n, X: Y + 1]

    @property
    def values(self) -> np.ndarray:
        return self.vals[: self.n, VALUES:]

    def column(self, unit: int) -> np.ndarray:
        """Unit's values at every vertex (a strided view of the row-major table)."""
        return self.vals[: self.n, VALUES + unit]

    def allot(self, new_bytes: int, keeps_old: bool = True) -> None:
        """Raise PartitionBudgetError, before allocating, if a new table of new_bytes breaks max_bytes.

        Counted: the new table, the current vertex and edge tables (which exist while the new one
        is filled, unless keeps_old is False) and as much again for the temporaries of filling it.
        """
        if self.max_bytes is None:
            return
        held = self._value_bytes() + self.edges.nbytes if keeps_old else 0
        if 2 * new_bytes + held > self.max_bytes:
            raise PartitionBudgetError(
                f"a table of {new_bytes / 2**20:,.0f} MiB (with {held / 2**20:,.0f} MiB already held) would break the "
                f"memory limit of {self.max_bytes / 2**20:,.0f} MiB; trace a smaller domain or network, or raise max_bytes")

    def _value_bytes(self) -> int:
        """What the value table holds: its rows in use (spare ones are untouched), or what it held before
        columns were folded out of it, if more."""
        in_use = 8 * self.n * self.vals.shape[1]
        if self._folded is not None and self._folded[0]() is self.vals:
            return max(in_use, self._folded[1])
        return in_use

    def face_means(self, columns: np.ndarray) -> np.ndarray:
        """(faces, k) means of value columns over each face's corners (affine values: at its centre).

        Every corner of a face ends two of its edges, so summing over edge ends weighs all alike.
        """
        e = self.edges[:, : self.m]
        face = np.concatenate([e[FA], e[FB]])
        ends = np.concatenate([e[E0: E1 + 1], e[E0: E1 + 1]], axis=1)
        inside = face != OUTSIDE
        face, ends = face[inside], ends[:, inside]
        sides = np.bincount(face, minlength=self.n_faces)
        table = self.vals[: self.n].take(VALUES + np.asarray(columns, dtype=np.int64), axis=1)
        sums = np.stack([np.bincount(face, col.take(ends[0]) + col.take(ends[1]), self.n_faces) for col in table.T],
                        axis=1) if table.shape[1] else np.zeros((self.n_faces, 0))
        return sums / (2 * np.maximum(sides, 1))[:, None]

    def corner_signs(self, values: np.ndarray, tol: np.ndarray) -> np.ndarray:
        """(faces, k) bool: is value column i positive in the face? values: (n, k) at the vertices.

        Read at the face's first corner off the unit's line by more than tol[i] (corners in a fixed
        order: the ends of the face's edges, face a of every edge first, then face b). Once a
        layer is cut, a face lies on one side of each of its units' lines, so any such corner
        tells which; a face with no corner off the line lies on it, and counts as not positive.
        """
        e = self.edges[:, : self.m]
        face = np.concatenate([e[FA], e[FB]])
        inside = np.flatnonzero(face != OUTSIDE)
        order = inside[face.take(inside).argsort(kind="stable")]
        ends = np.concatenate([e[E0: E1 + 1], e[E0: E1 + 1]], axis=1).take(order, axis=1)
        corners = ends.T.ravel()  # the ends of each side, in order
        z = values.take(corners, axis=0)
        rank = np.where((z > tol) | (z < -tol), np.arange(z.shape[0])[:, None], z.shape[0])
        starts = 2 * np.concatenate([[0], np.cumsum(np.bincount(face.take(inside), minlength=self.n_faces))[:-1]])
        first = np.minimum.reduceat(rank, starts, axis=0) if z.shape[0] else np.zeros((0, z.shape[1]), dtype=np.int64)
        found = first < z.shape[0]
        return found & (np.take_along_axis(z, np.minimum(first, z.shape[0] - 1), axis=0) > 0)

    def reset_origin(self) -> None:
        """From now on, origin[f] says which of today's faces face f was cut from.

        Cutting keeps the ids of today's faces (origin starts with 0, 1, 2, ...) unless faces are
        merged (remove_edges), which sets `renumbered`.
        """
        self.origin = np.arange(self.n_faces, dtype=np.int64)
        self.renumbered = False

    @property
    def edge_table(self) -> np.ndarray:
        """(m, 6) view: end 0, end 1, face a, face b, layer, unit."""
        return self.edges[:, : self.m].T

    def value_table(self, columns: int, spare: int = 0) -> np.ndarray:
        """A vertex table with this graph's coordinates and `columns` value columns left to fill.

        Filled in place (say, by a matmul's out=) and then assigned to `vals`, the next values
        never exist twice. `spare` rows past n are reserved for vertices to come: left untouched,
        they take address space but no memory until written.
        """
        self.allot(8 * self.n * (VALUES + columns))
        vals = new_table((self.n + spare, VALUES + columns))
        vals[: self.n, X: Y + 1] = self.coords
        return vals

    def reserve_vertices(self, rows: int) -> None:
        """Room for `rows` vertex rows (rows past n are spare), grown by a quarter at least.

        realloc (ndarray.resize) can often extend the table where it lies, so that old and new never
        coexist; while a view of the table is alive that would leave the view dangling, so it is
        copied instead.
        """
        if rows <= self.vals.shape[0]:
            return
        rows = _capacity(rows, self.vals.shape[0])
        self.allot(8 * rows * self.vals.shape[1])
        try:
            self.vals.resize((rows, self.vals.shape[1]))
        except ValueError:
            grown = new_table((rows, self.vals.shape[1]))
            grown[: self.n] = self.vals[: self.n]
            self.vals = grown

    def replace_values(self, values: np.ndarray) -> None:
        """Swap the per-vertex value columns (e.g. for the next layer's pre-activations)."""
        vals = self.value_table(values.shape[1])
        vals[:, VALUES:] = values
        self.vals = vals

    def with_values(self, values: np.ndarray) -> PlanarGraph:
        """A copy of the graph carrying other value columns, to refine without touching this one."""
        clone = object.__new__(PlanarGraph)
        clone.vals = new_table((self.n, VALUES + values.shape[1]))
        clone.vals[:, X: Y + 1], clone.vals[:, VALUES:] = self.coords, values
        clone.edges = self.edges[:, : self.m].copy()
        clone.n, clone.m, clone.n_faces, clone.n_unresolved = self.n, self.m, self.n_faces, self.n_unresolved
        clone._sign, clone._face_map = self._sign.copy(), self._face_map.copy()
        clone.max_bytes = self.max_bytes
        clone._origin_room = None
        clone._folded = None
        clone.reset_origin()
        return clone

    # -- the refinement ----------------------------------------------------------------------
    def split(self, level: np.ndarray, tol: float, layer: int, unit: int, zero_column: int | None = None) -> int:
        """Cut every face where `level` (values at vertices, affine inside faces) changes sign.

        Values within `tol` of zero count as zero, so lines through vertices, duplicate units and
        exact zeros reuse the vertices already there instead of making slivers. New vertices get
        all value columns interpolated; `zero_column` (the level's own column, if stored) is set
        to exactly 0 there. `level` may be a view into the value table: it is read before the
        table grows. Returns the number of faces split.
        """
        if kernels.available():
            before, level = self.n_faces, np.ascontiguousarray(level, dtype=np.float64)
            while True:
                origin, need = self._origin_buffer(), np.zeros(3, dtype=np.int64)
                if self._took(origin, *kernels.split_level(self.vals, self.edges, origin, level, self.n, self.m,
                                                           self.n_faces, float(tol), layer, unit,
                                                           -1 if zero_column is None else zero_column, need), need):
                    return self.n_faces - before
        n, m = self.n, self.m
        edges = self.edges
        if n + m > self._sign.size:  # a split adds at most m vertices
            self._sign = _grow(self._sign, n + m)
        sign_buf = self._sign
        sign = sign_buf[:n]  # the buffer's tail holds the zero signs of the vertices this split adds
        np.subtract((level > tol).view(np.int8), (level < -tol).view(np.int8), out=sign)
        g = sign.take(edges[E0: E1 + 1, :m])  # signs at both ends of every edge
        crossing = (g[0] * g[1] < 0).nonzero()[0]
        zeros_exist = np.count_nonzero(sign) < n
        if crossing.size == 0 and not zeros_exist:
            return 0

        # 1. cut crossing edges at the zero of the interpolated level
        c = crossing.size
        cut = edges.take(crossing, axis=1)
        ends = cut[E0: E1 + 1]
        at_ends = level[ends]
        t = at_ends[0] / (at_ends[0] - at_ends[1])
        if n + c > self.vals.shape[0]:
            self.allot(8 * _capacity(n + c, self.vals.shape[0]) * self.vals.shape[1])
            self.vals = _grow(self.vals, n + c)
        interpolate_rows(self.vals, ends[0], ends[1], t, out=self.vals[n: n + c])
        if zero_column is not None:
            self.vals[n: n + c, zero_column] = 0.0
        if m + c > edges.shape[1]:
            self.allot(48 * _capacity(m + c, edges.shape[1]))
            self.edges = edges = _grow_columns(edges, m + c)
        new_vertex = np.arange(n, n + c, dtype=np.int64)
        edges[:, m: m + c] = cut
        edges[E0, m: m + c] = new_vertex
        edges[E1, crossing] = new_vertex
        self.n, self.m = n + c, m + c
        g_end = g[1, crossing]
        g[1, crossing] = 0

        # 2. the two zero points of each face to split become the ends of its new edge
        if zeros_exist:
            chords, split_faces = self._chords_through_zeros(crossing, m, g[0], g[1], g_end)
        else:
            chords, split_faces = self._chords_between_cuts(cut[FA: FB + 1].ravel(), n)
        k = split_faces.size
        if k == 0:
            return 0

        # 3. edges of split faces on the negative side (a negative end) move to a new face
        n_faces = self.n_faces
        new_face = np.arange(n_faces, n_faces + k, dtype=np.int64)
        if self._face_map.size < n_faces + 1:
            self._face_map = np.full(2 * n_faces + 1, OUTSIDE, dtype=np.int64)
        face_map = self._face_map
        face_map[split_faces] = new_face
        m2 = self.m
        sign_buf[n: n + c] = 0
        for field in (FA, FB):
            mapped = face_map[edges[field, :m2]]
            hit = (mapped >= 0).nonzero()[0]
            negative = (sign_buf[edges[E0, hit]] < 0) | (sign_buf[edges[E1, hit]] < 0)
            edges[field, hit[negative]] = mapped[hit[negative]]
        face_map[split_faces] = OUTSIDE

        if m2 + k > edges.shape[1]:
            self.allot(48 * _capacity(m2 + k, edges.shape[1]))
            self.edges = edges = _grow_columns(edges, m2 + k)
        edges[E0: E1 + 1, m2: m2 + k] = chords.T
        edges[FA, m2: m2 + k] = split_faces
        edges[FB, m2: m2 + k] = new_face
        edges[LAYER, m2: m2 + k] = layer
        edges[UNIT, m2: m2 + k] = unit
        self.m = m2 + k
        self.n_faces = n_faces + k
        self.origin = np.concatenate([self.origin[:n_faces], self.origin[split_faces]])
        return k

    def cut_layer(self, first_column: int, weight: np.ndarray, bias: np.ndarray, rel_tol: float, layer: int,
                  start: int, state: tuple, budget: int = 2**62, work: int = 2**62, stop: int | None = None,
                  by_block: bool = False) -> tuple[int, tuple, np.ndarray]:
        """Cut along a layer's zero sets, units start, start + 1, ... in compiled code (kernels.cut_layer).

        Unit i's level is value column first_column + i, or (first_column kernels.UNSTORED) coords @
        weight[i] + bias[i]; each split is exactly `split`'s, labelled (layer, i), and origin restarts
        with the layer. Stops before unit `stop` (default: the layer's end) or early, after the unit that
        takes the faces past `budget` or once about `work` edges have been visited, so that the caller
        can report progress. Returns (next unit, state for the next call, every face's sign bits once
        the layer is done; by_block: those of a block's units once the block is done, see kernels.fold).
        """
        stop = weight.shape[0] if stop is None else stop
        while True:
            origin, need = self._origin_buffer(), np.zeros(3, dtype=np.int64)
            start, n, m, n_faces, lost, status, state, bits = kernels.cut_layer(
                self.vals, self.edges, origin, self.n, self.m, self.n_faces, first_column, weight, bias, rel_tol,
                start, layer, budget, work, need, state, stop, by_block)
            if self._took(origin, n, m, n_faces, lost, status, need):
                return start, state, bits

    def fold(self, column: int, lo: int, hi: int, weight_t: np.ndarray, kind: int, slope: float) -> int:
        """Fold units lo..hi-1 (cut) into the next affine map's sums, dropping their columns (kernels.fold).

        The table keeps its memory, now holding narrower rows: the bytes it held stay counted until it is
        replaced. weight_t: the next map's weight transposed, (units, out), C-contiguous; kind, slope: the
        hinge (kernels.RELU or LEAKY_RELU). Returns the column of unit 0 from now on."""
        held = self._value_bytes()
        self.vals, column = kernels.fold(self.vals, self.n, column, lo, hi, weight_t, kind, slope, column != VALUES)
        self._folded = (weakref.ref(self.vals), held)
        return column

    def _took(self, origin: np.ndarray, n: int, m: int, n_faces: int, lost: int, status: int,
              need: np.ndarray) -> bool:
        """Take a compiled split's counts; if it ran out of room, make the room it asks for. False: call it again."""
        self.n, self.m, self.n_faces = n, m, n_faces
        self.n_unresolved += lost
        self.origin = origin[:n_faces]
        if status != kernels.NEED_ROOM:
            return True
        self.reserve(*(int(x) for x in need))
        return False

    def reserve(self, rows: int, edge_columns: int, faces: int) -> None:
        """Room for this many vertices, edges and faces (spare until used), grown by a quarter at least."""
        if edge_columns >= kernels.MAX_EDGES:
            raise PartitionBudgetError(f"{edge_columns:,} edges: more than the compiled kernels index "
                                       f"({kernels.MAX_EDGES:,}); trace a smaller domain or network")
        self.reserve_vertices(rows)
        if edge_columns > self.edges.shape[1]:
            self.allot(48 * _capacity(edge_columns, self.edges.shape[1]))
            self.edges = _grow_columns(self.edges, edge_columns)
        self._origin_buffer(faces)

    def _origin_buffer(self, faces: int = 0) -> np.ndarray:
        """An array that starts with origin and has room past it (for `faces` faces at least).

        origin stays a view of its start (_took and this are the only places that make such views,
        always from index 0), so the room is found again by identity, without comparing addresses.
        """
        room, needed = self._origin_room, max(faces, self.n_faces + 1)
        if room is not None and self.origin.base is room and room.size >= needed:
            return room
        room = new_table((_capacity(needed, self.n_faces),), dtype=np.int64)
        room[: self.n_faces] = self.origin
        self._origin_room, self.origin = room, room[: self.n_faces]
        return room

    def _chords_between_cuts(self, faces: np.ndarray, first_new: int) -> tuple[np.ndarray, np.ndarray]:
        """The usual case, no vertex on the level set: a crossed face has exactly two cut edges.

        `faces` lists face a of every cut edge, then face b; cut edge i got vertex first_new + i.
        Sorted, every crossed face shows up as two neighbours (OUTSIDE, being -1, sorts first).
        """
        c = faces.size // 2
        order = faces.argsort(kind="stable")
        faces = faces[order]
        start = faces.searchsorted(0)
        faces, points = faces[start:], order[start:]
        points %= c
        points += first_new
        if faces.size % 2 == 0:
            pairs = faces.reshape(-1, 2)
            if (pairs[:, 0] == pairs[:, 1]).all() and (pairs[1:, 0] != pairs[:-1, 1]).all():
                return points.reshape(-1, 2), pairs[:, 0]
        return self._pair_zero_points(faces, points, np.unique(faces))

    def _chords_through_zeros(self, crossing: np.ndarray, first_half_edge: int, g0: np.ndarray, g1: np.ndarray,
                              g_end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lines through existing vertices: every edge touching a zero vertex tells its faces about it."""
        c = crossing.size
        touching = np.flatnonzero((g0 == 0) | (g1 == 0))
        rows = self.edges[:, np.concatenate([touching, np.arange(first_half_edge, first_half_edge + c)])]
        cg0 = np.concatenate([g0[touching], np.zeros(c, np.int8)])
        cg1 = np.concatenate([g1[touching], g_end])
        faces = np.concatenate([rows[FA], rows[FB]])
        ends0 = np.concatenate([rows[E0], rows[E0]])
        ends1 = np.concatenate([rows[E1], rows[E1]])
        s0, s1 = np.concatenate([cg0, cg0]), np.concatenate([cg1, cg1])
        inside = faces != OUTSIDE
        faces, ends0, ends1, s0, s1 = faces[inside], ends0[inside], ends1[inside], s0[inside], s1[inside]
        uniq, inverse = np.unique(faces, return_inverse=True)
        positive = np.bincount(inverse, weights=(s0 > 0) | (s1 > 0), minlength=uniq.size) > 0
        negative = np.bincount(inverse, weights=(s0 < 0) | (s1 < 0), minlength=uniq.size) > 0
        to_split = uniq[positive & negative]  # only faces that see both signs are cut in two
        keep = np.isin(faces, to_split)
        zf = np.concatenate([faces[keep & (s0 == 0)], faces[keep & (s1 == 0)]])
        zv = np.concatenate([ends0[keep & (s0 == 0)], ends1[keep & (s1 == 0)]])
        return self._pair_zero_points(zf, zv, to_split)

    def _pair_zero_points(self, zf: np.ndarray, zv: np.ndarray, to_split: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(k, 2) new edges and their k faces, for faces with exactly two distinct zero points.

        A convex face and an affine level always give two; more or fewer only come from rounding,
        and such faces are left whole (counted in n_unresolved) rather than made invalid.
        """
        key = np.unique(zf * self.n + zv)
        zf, zv = key // self.n, key % self.n
        starts = run_starts(zf).nonzero()[0]
        counts = np.diff(np.r_[starts, zf.size])
        good = starts[counts == 2]
        self.n_unresolved += int(to_split.size - good.size)
        return np.stack([zv[good], zv[good + 1]], axis=1), zf[good]

    # -- faces as polygons, and the invariants -------------------------------------------------
    def cycles(self) -> tuple[np.ndarray, np.ndarray]:
        """Counter-clockwise corner ids of every face as CSR (ptr, ids); see face_cycles."""
        e = self.edges[:, : self.m]
        return face_cycles(self.coords, e[E0], e[E1], e[FA], e[FB], self.n_faces)

    def check(self) -> None:
        """Raise AssertionError unless the graph is a valid partition of a convex domain into convex faces.

        Checked: counts and index ranges; every edge has two different faces, at most one of them
        OUTSIDE; every face id below n_faces is used; Euler's V - E + F = 1 (connected, F without
        the outside); each face's edges form one cycle (every corner has one way in and one out),
        seen counter-clockwise from inside the face on both sides of every edge; every face convex
        (no right turn) with positive area. Meant for tests: it costs several passes over the graph.
        """
        n, m, f = self.n, self.m, self.n_faces
        assert self.vals.shape[0] >= n and self.edges.shape == (6, self.edges.shape[1]) and self.edges.shape[1] >= m
        assert self.origin.size == f, f"origin has {self.origin.size} entries for {f} faces"
        e = self.edges[:, :m]
        assert ((e[E0: E1 + 1] >= 0) & (e[E0: E1 + 1] < n)).all(), "edge end out of range"
        assert (e[E0] != e[E1]).all(), "an edge from a vertex to itself"
        assert ((e[FA: FB + 1] >= OUTSIDE) & (e[FA: FB + 1] < f)).all(), "face id out of range"
        assert (e[FA] != e[FB]).all(), "an edge with the same face on both sides"
        inner = (e[FA] != OUTSIDE) & (e[FB] != OUTSIDE)
        assert (e[LAYER][inner] != BORDER).all() and (e[LAYER][~inner] == BORDER).all(), "border labels"
        assert np.unique(e[FA: FB + 1]).size == f + 1, "a face id without edges"
        key = np.sort(np.minimum(e[E0], e[E1]) * n + np.maximum(e[E0], e[E1]))
        assert (key[1:] != key[:-1]).all(), "two edges between the same vertices"
        assert n - m + f == 1, f"Euler: V - E + F = {n} - {m} + {f} != 1"
        try:
            ptr, ids = self.cycles()
        except ValueError as error:
            raise AssertionError(str(error)) from None
        assert ptr[-1] == 2 * m - np.count_nonzero(~inner), "faces' cycles do not use every edge side once"
        xy = self.coords[ids]
        nxt = np.arange(ids.size) + 1
        nxt[ptr[1:] - 1] = ptr[:-1]
        after = nxt[nxt]
        turn = _cross(xy[nxt] - xy, xy[after] - xy[nxt])
        step = np.abs(xy[nxt] - xy).max(axis=1) if xy.size else np.zeros(0)
        longer = np.maximum(step, step[nxt])  # slack: relative, plus the rounding of coordinates near 1
        assert (turn >= -(1e-9 * longer + 1e-14) * longer).all(), "a face is not convex"
        face = np.repeat(np.arange(f), np.diff(ptr))
        local = xy - xy[ptr[:-1]][face]  # about each face's own first corner: tiny faces keep their area
        area = np.bincount(face, _cross(local, local[nxt]), f)
        assert (area > 0).all(), "a face with no area, or clockwise"

    # -- coarsening --------------------------------------------------------------------------
    def remove_edges(self, drop: np.ndarray) -> None:
        """Delete edges (indices) and merge the faces they separated.

        Used where a refinement cut more than the function bends (a max-pool tournament cuts
        where an early candidate overtakes another that later loses anyway). Faces joined this way
        have one activation code, so their union is convex again.
        """
        if drop.size == 0:
            return
        edges = self.edge_table
        fa, fb = edges[drop, FA], edges[drop, FB]
        label = np.arange(self.n_faces, dtype=np.int64)
        while True:  # union-find by min-label propagation with pointer jumping
            low = np.minimum(label[fa], label[fb])
            np.minimum.at(label, fa, low)
            np.minimum.at(label, fb, low)
            while not np.array_equal(label, label[label]):
                label = label[label]
            if np.array_equal(label[fa], label[fb]):
                break
        roots, compact = np.unique(label, return_inverse=True)
        face_of = np.append(compact, OUTSIDE)  # index -1 (OUTSIDE) stays OUTSIDE
        keep = np.ones(self.m, dtype=bool)
        keep[drop] = False
        kept = edges[keep]
        kept[:, FA], kept[:, FB] = face_of[kept[:, FA]], face_of[kept[:, FB]]
        used = np.zeros(self.n, dtype=bool)
        used[kept[:, E0]] = used[kept[:, E1]] = True
        vertex_of = np.cumsum(used) - 1
        kept[:, E0], kept[:, E1] = vertex_of[kept[:, E0]], vertex_of[kept[:, E1]]
        self.vals = self.vals[: self.n][used]
        self.edges = np.ascontiguousarray(kept.T)
        self.n, self.m, self.n_faces = len(self.vals), len(kept), roots.size
        self.origin = self.origin[roots]  # merged faces lie in one face of the last reset
        self.renumbered = True


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]


def face_cycles(xy: np.ndarray, e0: np.ndarray, e1: np.ndarray, fa: np.ndarray, fb: np.ndarray,
                n_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """Corner ids of every convex face in counter-clockwise order, as CSR (ptr, ids).

    Each edge side becomes a half-edge directed so that its face lies on its left (decided by one
    cross product with the face's vertex mean, which lies inside a convex face); then each face's
    half-edges are chained end to start. No angles, no sort by angle, no Python loop over faces:
    the chains are walked for all faces at once, one step per corner of the largest face.
    A graph whose half-edges do not chain (not a valid partition) raises ValueError.
    """
    n = len(xy)
    face = np.concatenate([fa, fb])
    start = np.concatenate([e0, e0])
    end = np.concatenate([e1, e1])
    inside = np.flatnonzero(face != OUTSIDE)
    face, start, end = face[inside], start[inside], end[inside]
    sides = np.bincount(face, minlength=n_faces)  # each corner of a face ends two of its edges
    centre = np.stack([np.bincount(face, xy[start, i] + xy[end, i], n_faces) for i in (0, 1)], axis=1)
    centre /= 2 * np.maximum(sides, 1)[:, None]
    a, b = xy[start], xy[end]
    right = _cross(b - a, centre[face] - a) < 0
    start[right], end[right] = end[right], start[right]
    bits = (n_faces * n).bit_length()
    starts, ends = face * n + start, face * n + end
    by_start, by_end = radix_order(starts, bits), radix_order(ends, bits)
    # every (face, corner) starts one half-edge and ends one: the k-th smallest of each pair up
    if not np.array_equal(starts.take(by_start), ends.take(by_end)) or (np.diff(starts.take(by_start)) == 0).any():
        raise ValueError("the faces' edges do not form cycles: not a valid partition")
    following = np.empty(face.size, dtype=np.int64)  # in by_start order: the half-edge after each
    rank = np.empty(face.size, dtype=np.int64)
    rank[by_start] = np.arange(face.size)
    following[rank.take(by_end)] = np.arange(face.size)
    start = start.take(by_start)
    ptr = np.zeros(n_faces + 1, dtype=np.int64)
    np.cumsum(sides, out=ptr[1:])
    by_size = np.argsort(-sides, kind="stable")
    smaller = -sides[by_size]  # ascending
    slot = ptr[by_size]  # where each face's corners go
    at = slot.copy()  # the half-edge each face's walk is on
    ids = np.empty(face.size, dtype=np.int64)
    for step in range(int(-smaller[0]) if n_faces else 0):
        live = int(smaller.searchsorted(-step))  # faces with more than `step` corners come first
        ids[slot[:live] + step] = start[at[:live]]
        at[:live] = following[at[:live]]
    return ptr, ids


def radix_order(keys: np.ndarray, bits: int) -> np.ndarray:
    """Stable argsort of keys below 2**bits, and of -1, which sorts last.

    16 bits a pass: numpy sorts 16-bit integers stably by radix, in linear time. A comparison
    sort of the whole keys costs twice as much or more, mostly in mispredicted branches. The
    passes cover at least bits + 1 bits, so that no key's top digit is all ones, like -1's.
    """
    order = keys.astype(np.uint16).argsort(kind="stable")
    for shift in range(16, bits + 1, 16):
        step = (keys[order] >> shift).astype(np.uint16).argsort(kind="stable")
        order = order[step]
    return order

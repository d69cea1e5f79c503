"""Compiled kernels (numba) for the unit-by-unit split, used when numba is installed.

PlanarGraph.split in numpy costs some fifty calls per unit whatever the graph's size, so small
networks are all call overhead; here a whole layer of units runs in one compiled call
(cut_layer), and a small network, layers and affine maps, in one call (trace_net). Each unit
is cut exactly as PlanarGraph.split cuts it: the same tolerance rule, the same float operations
in the same order, the same numbering of new vertices, edges and faces. So the compiled path
gives the very same graph as the numpy path, which stays the reference it is tested against.
A wide layer may be folded into the next affine map as it is cut (fold): the same graph and
codes, and the values after the layer equal up to rounding.

numba is optional. Without it (or with SPLINEVIZ_NUMBA=0 in the environment) `available()` is
False and the tracer uses numpy alone.
"""
from __future__ import annotations

import os

import numpy as np

NEED_ROOM, OVER_BUDGET, DONE = 1, 2, 0  # why cut_layer or split_level returned
# Edge, side, face and vertex ids in the kernels' work arrays are int32 (half the memory at a layer's end,
# where a trace peaks); side ids reach twice the edge count, so the edge table must stay below this.
MAX_EDGES = 2**30
COORDS = 2  # a vertex row's coordinate columns, before its values (graph.VALUES; graph imports the kernels, not back)
UNSTORED = -(2**62)  # col0 of a layer whose values are not stored (the first layer's: computed from the coordinates)

try:
    if os.environ.get("SPLINEVIZ_NUMBA", "1").strip().lower() in ("0", "false", "no", "off"):
        raise ImportError("disabled by SPLINEVIZ_NUMBA")
    from numba import njit
except ImportError:  # numpy alone
    njit = None

_enabled = njit is not None


def available() -> bool:
    """Whether the compiled kernels are used (numba installed and not switched off)."""
    return _enabled


def use(enabled: bool) -> bool:
    """Switch the compiled kernels on or off (off always works); returns the previous setting."""
    global _enabled
    previous = _enabled
    _enabled = bool(enabled) and njit is not None
    return previous


def _jit(function):
    return njit(cache=True, nogil=True)(function) if njit is not None else function


def _inline(function):
    """For helpers called per unit, vertex or edge: numba inlines them into the caller's code, where
    the runtime's atomic reference counts on their array arguments can be dropped (about a quarter of
    a small layer's time when they were separate functions). Not inside a loop, though: an array
    handed to an inlined helper at every turn still costs two atomic counts a turn, so the helpers
    called per vertex or edge take array words (_sign_at, _crosses) or loop themselves (_set_signs,
    _append_crossings: 12,944 counts, a twelfth of a MNIST-plane trace, before they did)."""
    return njit(cache=True, nogil=True, inline="always")(function) if njit is not None else function


@_inline
def _value(vals, i, unit, col0, weight, bias):
    """A unit's value at vertex i: value column col0 + unit, or (col0 UNSTORED: the first layer, whose
    values are not stored) coords @ weight[unit] + bias[unit], in the tracer's order of operations."""
    if col0 != UNSTORED:
        return vals[i, col0 + unit]
    return vals[i, 0] * weight[unit, 0] + vals[i, 1] * weight[unit, 1] + bias[unit]


@_inline
def _sign(v, tol):
    if v > tol:
        return 1
    if v < -tol:
        return -1
    return 0


@_inline
def _sign_at(positive, negative, bit):
    """A unit's sign at a vertex, from the vertex's words of the sign masks (positive, negative)."""
    if positive & bit:
        return 1
    if negative & bit:
        return -1
    return 0


@_inline
def _crosses(pos_a, neg_a, pos_b, neg_b):
    """The units of a word of the sign masks whose levels have opposite signs at vertices a and b."""
    return (pos_a & neg_b) | (neg_a & pos_b)


@_inline
def _set_signs(pos, neg, vals, rows, end, first, last, lo, col0, weight, bias, tol, zeros):
    """Signs of units first..last-1 (block positions; the block starts at unit lo) at vertices rows..end-1.

    Without branches on the signs, which follow no pattern a branch predictor could learn: the words
    are assembled from the comparisons."""
    for i in range(rows, end):
        for word in range(first >> 6, (last + 63) >> 6):
            positive, negative = np.uint64(0), np.uint64(0)
            for j in range(max(first, 64 * word), min(last, 64 * word + 64)):
                z, t = _value(vals, i, lo + j, col0, weight, bias), tol[lo + j]
                shift = np.uint64(j & 63)
                positive |= np.uint64(z > t) << shift
                negative |= np.uint64(z < -t) << shift
                zeros[j] += (z <= t) & (z >= -t)
            pos[i, word] |= positive
            neg[i, word] |= negative


_DE_BRUIJN = np.array([0, 1, 48, 2, 57, 49, 28, 3, 61, 58, 50, 42, 38, 29, 17, 4, 62, 55, 59, 36, 53, 51, 43, 22, 45,
                       39, 33, 30, 24, 18, 12, 5, 63, 47, 56, 27, 60, 41, 37, 16, 54, 35, 52, 21, 44, 32, 23, 11, 46,
                       26, 40, 15, 34, 20, 31, 10, 25, 14, 19, 9, 13, 8, 7, 6], dtype=np.int64)


@_inline
def _lowest_bit(x):
    """Position of the lowest set bit of a nonzero uint64 (a de Bruijn multiplication)."""
    return _DE_BRUIJN[((x & (~x + np.uint64(1))) * np.uint64(0x03F79D71B4CB0A89)) >> np.uint64(58)]


@_inline
def _scratch(edge_room, face_room):
    """Per-call work arrays: crossing and candidate edges, and per-face state (kept clean between splits)."""
    return (np.empty(edge_room, dtype=np.int32), np.empty(edge_room, dtype=np.int32),
            np.zeros(face_room, dtype=np.int8), np.zeros(face_room, dtype=np.int8),
            np.empty(face_room, dtype=np.int32), np.empty(face_room, dtype=np.int32),
            np.full(face_room, -1, dtype=np.int32), np.empty(face_room, dtype=np.int32))


@_inline
def _sides(edges, m, head, after):
    """Every face's sides as a linked list (head[f], then after[s]): side 2e + k is edge e's face a (k = 0)
    or face b (k = 1) side. They let a split visit only the edges of the faces it cuts."""
    head[:] = -1
    for e in range(m):
        for k in range(2):
            f = edges[2 + k, e]
            if f >= 0:
                after[2 * e + k] = head[f]
                head[f] = 2 * e + k


@_inline
def _add_point(f, point, count, first, second):
    """Count a distinct zero point of face f (3 stands for three or more)."""
    k = count[f]
    if k == 0:
        first[f] = point
        count[f] = 1
    elif k == 1:
        if point != first[f]:
            second[f] = point
            count[f] = 2
    elif k == 2:
        if point != first[f] and point != second[f]:
            count[f] = 3


@_inline
def _split_one(vals, edges, origin, n, m, n_faces, pos, neg, word, bit, zeros, level, col0, weight, bias, unit,
               label, layer, zero_column, need, scratch, n_listed, head, after):
    """Cut every face where a unit's level changes sign: PlanarGraph.split, compiled.

    The level's sign at vertex i < n is +1 where pos[i, word] & bit, -1 where neg[i, word] & bit,
    else 0 (within tolerance), and `zeros` vertices are 0; the level itself is level[i] or, if
    level is empty, _value(..., unit, ...).
    Crossing edges are looked for among the first n_listed edges of scratch[1] (ascending; no
    vertex may be zero then), or among all edges if n_listed < 0. With side lists (head not
    empty), only the edges of the faces cut are visited to move their negative sides, and the
    lists are kept up to date; else every edge is. Returns (n, m, n_faces, unresolved, status):
    status NEED_ROOM, with the graph untouched and the rows, edge columns and face entries the
    cut needs in `need`, when the tables cannot take it; else DONE.
    """
    cross, listed, count, seen, first, second, new_face, touched = scratch
    c = 0
    if n_listed >= 0:
        for r in range(n_listed):
            e = listed[r]
            a, b = edges[0, e], edges[1, e]
            if _crosses(pos[a, word], neg[a, word], pos[b, word], neg[b, word]) & bit:
                cross[c] = e
                c += 1
    else:
        for e in range(m):
            a, b = edges[0, e], edges[1, e]
            if _crosses(pos[a, word], neg[a, word], pos[b, word], neg[b, word]) & bit:
                cross[c] = e
                c += 1
    if c == 0 and zeros == 0:
        return n, m, n_faces, 0, DONE
    # the faces to split and their two zero points, as numpy's pairing finds them
    t = 0
    if zeros == 0:  # every crossed face has two cut edges: face a of every cut edge, then face b, in order
        for field in range(2, 4):
            for i in range(c):
                f = edges[field, cross[i]]
                if f < 0:
                    continue
                if count[f] == 0:
                    touched[t] = f
                    t += 1
                    first[f] = n + i
                    count[f] = 1
                elif count[f] == 1:
                    second[f] = n + i
                    count[f] = 2
                else:
                    count[f] = 3
    else:  # faces with a corner on the level set: those that see both signs are split between their zero points
        for field in range(2, 4):
            i = 0
            for e in range(m):
                a, b = edges[0, e], edges[1, e]
                sa, sb = _sign_at(pos[a, word], neg[a, word], bit), _sign_at(pos[b, word], neg[b, word], bit)
                crossing = i < c and cross[i] == e
                if crossing:
                    i += 1
                elif sa != 0 and sb != 0:
                    continue
                f = edges[field, e]
                if f < 0:
                    continue
                if seen[f] == 0:
                    touched[t] = f
                    t += 1
                    seen[f] = 4
                if sa > 0 or sb > 0:
                    seen[f] |= 1
                if sa < 0 or sb < 0:
                    seen[f] |= 2
                if crossing:
                    _add_point(f, n + i - 1, count, first, second)
                if sa == 0:
                    _add_point(f, a, count, first, second)
                if sb == 0:
                    _add_point(f, b, count, first, second)
    touched[:t].sort()
    k, unresolved = 0, 0
    for r in range(t):
        f = touched[r]
        if zeros == 0 or seen[f] & 3 == 3:
            if count[f] == 2:
                new_face[f] = n_faces + k
                k += 1
            else:
                unresolved += 1
    if n + c > vals.shape[0] or m + c + k > edges.shape[1] or n_faces + k > origin.shape[0]:
        need[0], need[1], need[2] = n + c, m + c + k, n_faces + k
        _clean(touched, t, count, seen, new_face)
        return n, m, n_faces, 0, NEED_ROOM
    lists = head.size > 0
    # 1. cut crossing edges (new vertex n + i on the i-th crossing edge; its second half is edge m + i)
    width = vals.shape[1]
    for i in range(c):
        e = cross[i]
        a, b = edges[0, e], edges[1, e]
        if level.size:
            za, zb = level[a], level[b]
        else:
            za, zb = _value(vals, a, unit, col0, weight, bias), _value(vals, b, unit, col0, weight, bias)
        t_ = za / (za - zb)
        row = n + i
        for j in range(width):
            vals[row, j] = vals[a, j] + (vals[b, j] - vals[a, j]) * t_
        if zero_column >= 0:
            vals[row, zero_column] = 0.0
        for field in range(6):
            edges[field, m + i] = edges[field, e]
        edges[0, m + i] = row
        edges[1, e] = row
        pos[row, :] = 0  # zero here; the caller adds the signs of the units it has yet to cut
        neg[row, :] = 0
        if lists:  # the second half lies in the same faces as the first
            for side in range(2):
                if edges[2 + side, e] >= 0:
                    after[2 * (m + i) + side] = after[2 * e + side]
                    after[2 * e + side] = 2 * (m + i) + side
    n += c
    m += c
    if k > 0:
        # 2. the negative side of every split face moves to its new face
        if lists:
            for r in range(t):
                f = touched[r]
                g = new_face[f]
                if g < 0:
                    continue
                s, keep, moved = head[f], -1, -1
                while s >= 0:
                    following, e = after[s], s >> 1
                    if (neg[edges[0, e], word] | neg[edges[1, e], word]) & bit:
                        edges[2 + (s & 1), e] = g
                        after[s], moved = moved, s
                    else:
                        after[s], keep = keep, s
                    s = following
                head[f], head[g] = keep, moved
        else:
            for e in range(m):
                for field in range(2, 4):
                    f = edges[field, e]
                    if f >= 0 and new_face[f] >= 0 and (neg[edges[0, e], word] | neg[edges[1, e], word]) & bit:
                        edges[field, e] = new_face[f]
        # 3. one chord per split face, from its first zero point to its second (numpy: by vertex id, but
        # for two cut edges of a face in generic position, where they come in the order they were found)
        for r in range(t):
            f = touched[r]
            g = new_face[f]
            if g < 0:
                continue
            e = m + g - n_faces
            p, q = first[f], second[f]
            if (zeros > 0 or unresolved > 0) and q < p:
                p, q = q, p
            edges[0, e], edges[1, e], edges[2, e], edges[3, e] = p, q, f, g
            edges[4, e], edges[5, e] = layer, label
            origin[g] = origin[f]
            if lists:
                after[2 * e], head[f] = head[f], 2 * e
                after[2 * e + 1], head[g] = head[g], 2 * e + 1
    _clean(touched, t, count, seen, new_face)
    return n, m + k, n_faces + k, unresolved, DONE


@_inline
def _clean(touched, t, count, seen, new_face):
    for r in range(t):
        f = touched[r]
        count[f], seen[f], new_face[f] = 0, 0, -1


@_jit
def split_level(vals, edges, origin, level, n, m, n_faces, tol, layer, label, zero_column, need):
    """One split by the given level (PlanarGraph.split); returns (n, m, n_faces, unresolved, status)."""
    pos = np.zeros((vals.shape[0], 1), dtype=np.uint64)
    neg = np.zeros((vals.shape[0], 1), dtype=np.uint64)
    zeros = 0
    for i in range(n):
        if level[i] > tol:
            pos[i, 0] = 1
        elif level[i] < -tol:
            neg[i, 0] = 1
        else:
            zeros += 1
    empty = np.empty((0, 2))
    none = np.empty(0, dtype=np.int32)
    n, m, n_faces, lost, status = _split_one(vals, edges, origin, n, m, n_faces, pos, neg, 0, np.uint64(1), zeros,
                                             level, -1, empty, empty[0], 0, label, layer, zero_column, need,
                                             _scratch(edges.shape[1], origin.shape[0]), -1, none, none)
    return n, m, n_faces, lost, status


BLOCK = 128  # units whose signs are read and crossings found in one pass over the vertices and edges


@_inline
def _append(unit, edge, items, first_item, last_item, count):
    """Add edge to unit's list of candidate crossings (a linked list in items, which has room for it)."""
    items[0, count], items[1, count] = edge, -1
    if last_item[unit] >= 0:
        items[1, last_item[unit]] = count
    else:
        first_item[unit] = count
    last_item[unit] = count
    return count + 1


@_inline
def _append_crossings(edges, start, end, pos, neg, first, size, items, first_item, last_item, count):
    """Add edges start..end-1 to the lists of the block's units first..size-1 whose levels they cross.

    Returns (items, count): items grows (doubles) where an edge's crossings might not fit, so that
    it is never reassigned per crossing (an array reassigned costs atomic reference counts)."""
    for e in range(start, end):
        if count + size > items.shape[1]:
            grown = np.empty((2, 2 * (count + size) + 64), dtype=np.int64)
            grown[:, :count] = items[:, :count]
            items = grown
        a, b = edges[0, e], edges[1, e]
        for word in range(first >> 6, (size + 63) >> 6):
            x = _crosses(pos[a, word], neg[a, word], pos[b, word], neg[b, word])
            if word == first >> 6:
                x &= ~np.uint64(0) << np.uint64(first & 63)
            while x:
                count = _append(64 * word + _lowest_bit(x), e, items, first_item, last_item, count)
                x &= x - np.uint64(1)
    return items, count


@_jit
def fresh_state(units: int) -> tuple:
    """What cut_layer keeps from one call to the next, before its first call on a layer."""
    size = max(1, min(BLOCK, units))
    words = (size + 63) // 64
    return (np.zeros((0, words), dtype=np.uint64), np.zeros((0, words), dtype=np.uint64),
            np.zeros(size, dtype=np.int64), np.full(size, -1, dtype=np.int64), np.full(size, -1, dtype=np.int64),
            np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int32), np.array([-1, 0, 0, 0], dtype=np.int64),
            np.empty((2, 1024), dtype=np.int64), np.empty(units, dtype=np.float64))


@_inline
def _fit(st, n, rows, edge_room, face_room, m):
    """The state's tables made to fit the graph's (after the caller grew those), contents kept.

    The sign masks' rows past the n vertices are left unwritten (untouched memory: a row is zeroed when its
    vertex is made), as are the table's."""
    pos, neg, zeros, first_item, last_item, head, after, state, items, tol = st
    if pos.shape[0] < rows:
        grown_pos = np.empty((rows, pos.shape[1]), dtype=np.uint64)
        grown_neg = np.empty((rows, pos.shape[1]), dtype=np.uint64)
        used = min(n, pos.shape[0])
        grown_pos[:used] = pos[:used]
        grown_neg[:used] = neg[:used]
        pos, neg = grown_pos, grown_neg
    if after.size < 2 * edge_room:
        grown = np.empty(2 * edge_room, dtype=np.int32)
        used = min(2 * m, after.size)
        grown[:used] = after[:used]
        after = grown
    if head.size < face_room:
        grown = np.full(face_room, -1, dtype=np.int32)
        grown[: head.size] = head
        head = grown
    return pos, neg, zeros, first_item, last_item, head, after, state, items, tol


@_jit
def cut_layer(vals, edges, origin, n, m, n_faces, col0, weight, bias, rel_tol, start, layer, budget, work, need, st,
              stop, by_block):
    """Cut along the zero sets of a layer's units, start, start + 1, ... stop - 1, one after the other.

    Unit i's value is value column col0 + i, or (col0 UNSTORED) coords @ weight[i] + bias[i]. Each
    unit is split exactly as PlanarGraph.split splits it, with the tracer's tolerance (rel_tol
    times the unit's largest absolute value at the layer's vertices), labelled (layer, i).

    A block of units at a time: their signs at every vertex (bit masks pos, neg) in one pass over
    the vertex rows, the edges each of them crosses (linked lists in items) in one pass over the
    edges; new vertices and edges are added to both as they are made. Each unit's split then
    visits only its candidate edges and the faces it cuts (through side lists head, after), so a
    unit costs what it cuts, not the graph's size. All of it lives in `st` from call to call
    (fresh_state() before the first; nothing else may change the graph in between), with
    state = (the block's first unit, its size, the lists' length, whether side lists are built).

    Returns (next unit, n, m, n_faces, unresolved, status, st, bits): after unit stop - 1 (with
    every face's sign bits, as sign_bits gives them, once the layer is done; else bits is empty),
    when the tables are full (NEED_ROOM: the caller grows them and calls again), when the faces
    pass the budget (OVER_BUDGET), or after the unit that takes the edges visited past `work`.
    by_block (the caller folds each block of units away once it is cut: stop is a block's end):
    the bits are those of the block's units, given when the block is done.
    """
    units = weight.shape[0]
    st = _fit(st, n, vals.shape[0], edges.shape[1], origin.shape[0], m)
    pos, neg, zeros, first_item, last_item, head, after, state, items, tol = st
    no_bits = np.zeros((0, 0), dtype=np.uint8)
    if start == 0 and state[3] == 0:  # a new layer: the faces' origins, the tolerances
        for f in range(n_faces):
            origin[f] = f
        high, low = np.zeros(units), np.zeros(units)
        for i in range(n):  # vertex by vertex: along the rows of the table
            for u in range(units):
                z = _value(vals, i, u, col0, weight, bias)
                high[u], low[u] = max(high[u], z), min(low[u], z)
        for u in range(units):
            tol[u] = rel_tol * max(high[u], -low[u])
    scratch = _scratch(edges.shape[1], origin.shape[0])
    listed = scratch[1]
    if state[3] == 0:
        _sides(edges, m, head, after)
        state[3] = 1
    empty = np.empty(0)
    unresolved, spent, unit = 0, 0, start
    while unit < stop:
        lo, size = state[0], state[1]
        if not lo <= unit < lo + size:  # a new block, from this unit on
            lo, size = unit, min(zeros.size, units - unit)
            state[0], state[1] = lo, size
            pos[:n] = 0
            neg[:n] = 0
            zeros[:] = 0
            _set_signs(pos, neg, vals, 0, n, 0, size, lo, col0, weight, bias, tol, zeros)
            first_item[:] = -1
            last_item[:] = -1
            items, count = _append_crossings(edges, 0, m, pos, neg, 0, size, items, first_item, last_item, 0)
            state[2] = count
            spent += m
        count = state[2]
        while unit < lo + size:
            j = unit - lo
            n_listed = -1
            if zeros[j] == 0:
                n_listed, r = 0, first_item[j]
                while r >= 0:
                    listed[n_listed] = items[0, r]
                    n_listed += 1
                    r = items[1, r]
            before_n, before_m = n, m
            n, m, n_faces, lost, status = _split_one(vals, edges, origin, n, m, n_faces, pos, neg, j >> 6,
                                                     np.uint64(1) << np.uint64(j & 63), zeros[j], empty, col0,
                                                     weight, bias, unit, unit, layer,
                                                     col0 + unit if col0 != UNSTORED else -1, need, scratch, n_listed,
                                                     head, after)
            if status == NEED_ROOM:
                st = (pos, neg, zeros, first_item, last_item, head, after, state, items, tol)
                return unit, n, m, n_faces, unresolved, NEED_ROOM, st, no_bits
            # the new vertices' signs for the units still to come, and the new edges that cross them
            _set_signs(pos, neg, vals, before_n, n, j + 1, size, lo, col0, weight, bias, tol, zeros)
            if j + 1 < size:
                items, count = _append_crossings(edges, before_m, m, pos, neg, j + 1, size, items, first_item,
                                                 last_item, count)
            state[2] = count
            unresolved += lost
            spent += (m if n_listed < 0 else n_listed) + m - before_m
            unit += 1
            if n_faces > budget:
                st = (pos, neg, zeros, first_item, last_item, head, after, state, items, tol)
                return unit, n, m, n_faces, unresolved, OVER_BUDGET, st, no_bits
            if spent > work and unit < stop:
                st = (pos, neg, zeros, first_item, last_item, head, after, state, items, tol)
                return unit, n, m, n_faces, unresolved, DONE, st, no_bits
    st = (pos, neg, zeros, first_item, last_item, head, after, state, items, tol)
    if by_block and unit == state[0] + state[1]:  # the block is done: the sign masks hold its units
        return unit, n, m, n_faces, unresolved, DONE, st, sign_bits(vals, edges, m, n_faces, state[0], unit, col0,
                                                                    weight, bias, tol, pos, neg, True)
    if unit < units:
        return unit, n, m, n_faces, unresolved, DONE, st, no_bits
    masked = state[0] == 0 and state[1] == units  # one block: the sign masks hold every unit
    return unit, n, m, n_faces, unresolved, DONE, st, sign_bits(vals, edges, m, n_faces, 0, units, col0, weight, bias,
                                                                tol, pos, neg, masked)


@_jit
def sign_bits(vals, edges, m, n_faces, lo, hi, col0, weight, bias, tol, pos, neg, masked):
    """Each face's sign bits for units lo..hi-1 (PlanarGraph.corner_signs, compiled, packed eight units a byte).

    Bit i of a face's row: unit lo + i's value at the face's first corner off its line by more than
    its tol is positive. Corners are read in the order corner_signs reads them: the ends of the face's
    edges, face a of every edge first, then face b. If `masked`, cut_layer's sign masks pos and neg
    hold these units (bit i: unit lo + i), and a unit whose bit is set in either at the first corner
    is read off them (the comparison made when it was set): only the others' values are read there
    (at a vertex made while the units were cut, the units cut before it).
    """
    span = hi - lo
    bits = np.zeros((n_faces, (span + 7) // 8), dtype=np.uint8)
    ptr = np.zeros(n_faces + 1, dtype=np.int32)  # the faces' sides, by a stable counting sort
    for field in range(2, 4):
        for e in range(m):
            if edges[field, e] >= 0:
                ptr[edges[field, e] + 1] += 1
    for f in range(n_faces):
        ptr[f + 1] += ptr[f]
    side = np.empty(ptr[n_faces], dtype=np.int32)
    fill = ptr[:n_faces].copy()
    for field in range(2, 4):
        for e in range(m):
            f = edges[field, e]
            if f >= 0:
                side[fill[f]] = e
                fill[f] += 1
    pending = np.empty(span, dtype=np.int64)  # positions i of the units still unsettled
    for f in range(n_faces):
        v = edges[0, side[ptr[f]]]  # the first corner settles nearly every unit
        left = 0
        if masked:
            for word in range((span + 63) >> 6):
                positive = pos[v, word]
                unread = ~(positive | neg[v, word]) & (~np.uint64(0) >> np.uint64(64 - min(64, span - 64 * word)))
                while unread:
                    k = _lowest_bit(unread)
                    i = 64 * word + k
                    z = _value(vals, v, lo + i, col0, weight, bias)
                    positive |= np.uint64(z > tol[lo + i]) << np.uint64(k)
                    pending[left] = i
                    left += (z <= tol[lo + i]) & (z >= -tol[lo + i])
                    unread &= unread - np.uint64(1)
                for byte in range(8 * word, min(8 * word + 8, (span + 7) // 8)):
                    bits[f, byte] = np.uint8((positive >> np.uint64(8 * (byte - 8 * word))) & np.uint64(255))
        else:
            for byte in range((span + 7) // 8):  # without branches on the signs (see _set_signs)
                code = 0
                for i in range(8 * byte, min(8 * byte + 8, span)):
                    z = _value(vals, v, lo + i, col0, weight, bias)
                    code |= (z > tol[lo + i]) << (i - 8 * byte)
                    pending[left] = i
                    left += (z <= tol[lo + i]) & (z >= -tol[lo + i])
                bits[f, byte] = code
        s, end = ptr[f], 1
        while left > 0 and s < ptr[f + 1]:
            v = edges[end, side[s]]
            still = 0
            for r in range(left):
                i = pending[r]
                z = _value(vals, v, lo + i, col0, weight, bias)
                if z > tol[lo + i]:
                    bits[f, i >> 3] |= np.uint8(1 << (i & 7))
                elif z >= -tol[lo + i]:
                    pending[still] = i
                    still += 1
            left = still
            end += 1
            if end == 2:
                s, end = s + 1, 0
    return bits


AFFINE, RELU, LEAKY_RELU = 0, 1, 2  # the ops trace_net runs; a program's rows: (kind, offset in params, out, in)
SMALL_LAYER = 2**16  # edges x units below which a layer's room is reserved in one go


@_jit
def fold(vals, n, col0, lo, hi, weight_t, kind, slope, sums):
    """Units lo..hi-1, cut, folded into the next affine map's sums, and their value columns dropped: in place.

    Once a unit is cut, no edge of the graph crosses its line any more, so its activation is affine
    along every edge, and so is its term of the next map's sums: a vertex made later gets the sums
    interpolated like any value (up to the tolerance band, where the activation bends within tol of
    an end). A wide layer then never holds all its units at every vertex.

    Rows are [coords | the sums, if `sums` | units lo, lo + 1, ... at col0 + unit] before and [coords |
    sums (weight_t's columns) | units hi, ...] after, each row written at most where the old one began,
    so the rows move down the table's own memory, row by row, with no second table. The activation is
    the hinge's (kind, slope: see _hinge); the sums are taken unit by unit in order, without the bias.
    Returns the table's narrower view (more rows: the same memory) and the new col0 (units hi.. follow
    the sums).
    """
    width = vals.shape[1]
    k = weight_t.shape[1]
    new_width = width - (hi - lo) + (0 if sums else k)
    new_col0 = COORDS + k - hi
    flat = vals.reshape(vals.size)
    acc = np.empty(k)
    for i in range(n):
        old, new = i * width, i * new_width
        for o in range(k):
            acc[o] = flat[old + COORDS + o] if sums else 0.0
        for u in range(lo, hi):
            a = _hinge(flat[old + col0 + u], kind, slope)
            if a != 0.0:
                for o in range(k):
                    acc[o] += a * weight_t[u, o]
        flat[new], flat[new + 1] = flat[old], flat[old + 1]
        for o in range(k):
            flat[new + COORDS + o] = acc[o]
        for c in range(COORDS + k, new_width):  # units hi.. move down: never past what is still to read
            flat[new + c] = flat[old + c - new_col0 + col0]
    rows = vals.size // new_width
    return flat[: rows * new_width].reshape((rows, new_width)), new_col0


@_inline
def layer_room(n: int, m: int, n_faces: int, width: int) -> tuple[int, int, int]:
    """Rows, edge columns and faces to reserve before a small layer of `width` units is cut (0s for a larger
    one, whose tables grow as its cuts ask): a guess, which spares a small layer calls for room. (Compiled,
    as trace_net uses it too; the tracer calls it from Python.)"""
    if m * (width + 1) >= SMALL_LAYER:
        return 0, 0, 0
    return 2 * n + 8 * width, 2 * m + 16 * width, 2 * n_faces + 8 * width


@_inline
def value_rows(n: int, m: int, width: int) -> int:
    """Rows of a new value table of `width` columns: 3 n spare for the next layer's vertices, and at least the
    rows layer_room will reserve."""
    return max(4 * n, layer_room(n, m, 0, width)[0])


@_jit
def trace_net(vals, edges, origin, n, m, n_faces, program, params, first_w, first_b, col0, rel_tol, budget, work,
              room, small_macs, small_edges):
    """A small network from its first hinge layer on, in one call: each hinge layer as cut_layer cuts it,
    each affine map as the tracer's sequential sums compute it (Tracer.affine, same operations in the
    same order, but for terms that are zeros), so that the graph is bit for bit the one the tracer
    builds op by op (a zero value's sign aside).

    Op i is program[i] = (kind, offset, out, in): an affine map's weight (out, in) and bias lie in
    params from offset on, row-major, a LeakyReLU's slope at offset. The first layer's values
    are coords @ first_w.T + first_b, never stored (as in the tracer). Tables grow here while
    they stay within `room` bytes (counted as PlanarGraph.allot counts them).

    Stops at the first op it cannot finish: an affine map over small_macs multiply-adds or a
    table past `room`, a hinge layer begun on small_edges edges or more, a stop of cut_layer's
    (room, budget, `work` edges visited), any other op. The tracer goes on from there op by op.

    Returns (op, start, st, vals, edges, origin, n, m, n_faces, unresolved, first, n_layers,
    bits, parents, index): the op it stopped at, and (a hinge layer it began) the next unit and
    cut_layer's state (else None: boxing it costs a small net's call microseconds); whether the
    first layer's values are still unstored; every finished hinge layer's sign bits and parents,
    flat: layer L's at [index[0, L], index[0, L + 1]) and [index[1, L], index[1, L + 1]), and
    its face count, index[2, L].
    """
    n_ops = program.shape[0]
    bits = np.empty(0, dtype=np.uint8)
    parents = np.empty(0, dtype=np.int64)
    index = np.zeros((3, n_ops + 1), dtype=np.int64)
    bits_ptr, parents_ptr, faces = index[0], index[1], index[2]
    need = np.zeros(3, dtype=np.int64)
    first = True
    pending, slope = AFFINE, 0.0  # the hinge the first layer's values still await (AFFINE: none), its slope
    width, n_layers, unresolved, start = first_w.shape[0], np.int64(0), 0, np.int64(0)
    st = fresh_state(width)  # (typed as the tracer's calls are: no second compilation of fresh_state or cut_layer)
    op = 0
    while op < n_ops:
        kind, at, out, k = program[op, 0], program[op, 1], program[op, 2], program[op, 3]
        if kind == AFFINE:
            rows = value_rows(n, m, out)
            if n * k * out > small_macs or 2 * 8 * rows * (col0 + out) + _held(vals, edges, n) > room:
                break
            table = np.empty((rows, col0 + out))
            weight = params[at: at + out * k].reshape((out, k))
            _affine(table, vals, n, col0, weight, params[at + out * k: at + out * k + out], first, first_w, first_b,
                    pending, slope)
            vals, width, first, pending = table, out, False, AFFINE
            op += 1
            continue
        if kind != RELU and kind != LEAKY_RELU or pending != AFFINE:  # a hinge right after the first: op by op
            break
        if start == 0:
            if m >= small_edges:
                break
            st = fresh_state(width)
            need[0], need[1], need[2] = layer_room(n, m, n_faces, width)
            if need[0] > 0:
                grown = _grown(vals, edges, origin, n, m, n_faces, need, room)
                if not grown[3]:
                    break
                vals, edges, origin = grown[0], grown[1], grown[2]
        weight, bias = first_w, first_b
        if not first:
            weight, bias = np.zeros((width, 2)), np.zeros(width)
        while True:
            start, n, m, n_faces, lost, status, st, layer_bits = cut_layer(
                vals, edges, origin, n, m, n_faces, UNSTORED if first else col0, weight, bias, rel_tol, start, n_layers,
                budget, work, need, st, width, False)
            unresolved += lost
            if status != NEED_ROOM:
                break
            grown = _grown(vals, edges, origin, n, m, n_faces, need, room)
            if not grown[3]:
                break
            vals, edges, origin = grown[0], grown[1], grown[2]
        if status != DONE or start < width:  # stopped inside the layer: the tracer resumes it
            break
        bits = _appended(bits, bits_ptr, n_layers, layer_bits.ravel())
        parents = _appended(parents, parents_ptr, n_layers, origin[:n_faces])
        faces[n_layers] = n_faces
        n_layers += 1
        start = 0
        slope = params[at] if kind == LEAKY_RELU else 0.0
        if first:
            pending = kind
        else:
            _activate(vals, n, col0, width, kind, slope)
        op += 1
    begun = None
    if start > 0:
        begun = st
    return op, start, begun, vals, edges, origin, n, m, n_faces, unresolved, first, n_layers, bits, parents, index


@_inline
def _held(vals, edges, n):
    """The bytes PlanarGraph.allot counts as held: the vertex rows in use and the whole edge table."""
    return 8 * n * vals.shape[1] + 8 * edges.size


@_inline
def _hinge(z, kind, slope):
    """A hinge's activation of one value, as ReLU and LeakyReLU (`slope`) write it in numpy (kind AFFINE: none)."""
    if kind == RELU:
        return max(z, 0.0)
    if kind == LEAKY_RELU:
        return z + min(z, 0.0) * (slope - 1.0)
    return z


@_inline
def _activate(vals, n, col0, width, kind, slope):
    """Hinge.activate on the stored values, elementwise."""
    for i in range(n):
        for j in range(col0, col0 + width):
            vals[i, j] = _hinge(vals[i, j], kind, slope)


_ROWS = 64  # vertices per block of _affine


@_inline
def _affine(table, vals, n, col0, weight, bias, first, first_w, first_b, kind, slope):
    """Tracer.affine's sequential sums: out = z_0 w_0, then + z_k w_k for k = 1, 2, ..., then + bias.

    z are the stored values or (first) the first layer's, x w0 + y w1 + b, activated by the pending hinge
    (kind; AFFINE: none). Vertices go in blocks, whose z and sums are held input-major so that the inner loops run along
    the block's vertices (and the temporaries stay small: the peak of a small net's trace is a few tables). An input
    that is zero at every vertex of a block (a ReLU leaves many units off over whole blocks) is left out of its sums:
    its terms are zeros, which change no sum's value (at most the sign of a zero sum, if the bias is -0.0; no
    comparison sees it).
    """
    out, k = weight.shape
    z = np.empty((k, _ROWS))
    sums = np.empty((out, _ROWS))
    inputs = np.empty(k, dtype=np.int64)
    for lo in range(0, n, _ROWS):
        rows = min(_ROWS, n - lo)
        for r in range(rows):
            x, y = vals[lo + r, 0], vals[lo + r, 1]
            table[lo + r, 0], table[lo + r, 1] = x, y
            for c in range(k):
                if first:
                    z[c, r] = _hinge(x * first_w[c, 0] + y * first_w[c, 1] + first_b[c], kind, slope)
                else:
                    z[c, r] = vals[lo + r, col0 + c]
        live = 0  # the inputs not zero at every vertex of the block (a ReLU leaves many units off over whole blocks)
        for c in range(k):
            for r in range(rows):
                if z[c, r] != 0.0:
                    inputs[live] = c
                    live += 1
                    break
        for j in range(out):
            if live == 0:
                sums[j, :rows] = 0.0
                continue
            c = inputs[0]
            w = weight[j, c]
            for r in range(rows):
                sums[j, r] = z[c, r] * w
            for i in range(1, live):
                c = inputs[i]
                w = weight[j, c]
                for r in range(rows):
                    sums[j, r] += z[c, r] * w
        for r in range(rows):
            for j in range(out):
                table[lo + r, col0 + j] = sums[j, r] + bias[j]


@_inline
def _grown(vals, edges, origin, n, m, n_faces, need, room):
    """The tables with room for need = (rows, edges, faces), doubled where they grow; (.., False) if the new
    tables, counted twice (as PlanarGraph.allot counts a new table) with what is held, would pass `room`."""
    rows = 2 * need[0] if need[0] > vals.shape[0] else vals.shape[0]
    columns = 2 * need[1] if need[1] > edges.shape[1] else edges.shape[1]
    face_room = 2 * need[2] if need[2] > origin.size else origin.size
    new = (8 * rows * vals.shape[1] if rows > vals.shape[0] else 0) + (48 * columns if columns > edges.shape[1] else 0) \
        + (8 * face_room if face_room > origin.size else 0)
    if 2 * new + _held(vals, edges, n) > room:
        return vals, edges, origin, False
    if rows > vals.shape[0]:
        bigger = np.empty((rows, vals.shape[1]))
        bigger[:n] = vals[:n]
        vals = bigger
    if columns > edges.shape[1]:
        wider = np.empty((6, columns), dtype=np.int64)
        wider[:, :m] = edges[:, :m]
        edges = wider
    if face_room > origin.size:
        longer = np.empty(face_room, dtype=np.int64)
        longer[:n_faces] = origin[:n_faces]
        origin = longer
    return vals, edges, origin, True


@_inline
def _appended(flat, ptr, i, items):
    """flat with items appended as entry i (ptr[i + 1] set), grown by doubling."""
    end = ptr[i] + items.size
    if end > flat.size:
        bigger = np.empty(max(2 * flat.size, end), dtype=flat.dtype)
        bigger[: ptr[i]] = flat[: ptr[i]]
        flat = bigger
    flat[ptr[i]: end] = items
    ptr[i + 1] = end
    return flat


@_jit
def one_class(vals, n, col0, rel_tol):
    """The decision overlay's tolerance (rel_tol times the largest |output| at the vertices; outputs are the value
    columns from col0 on) and whether one class wins at every vertex by more than it: the tracer's
    _one_class_everywhere, the same comparisons, in one pass where numpy makes five (8 % of a MNIST-plane trace).
    """
    biggest = 0.0
    for i in range(n):
        for j in range(col0, vals.shape[1]):
            biggest = max(biggest, abs(vals[i, j]))
    tol = rel_tol * max(biggest, 1e-300)
    if vals.shape[1] - col0 == 1:
        above = below = True
        for i in range(n):
            above = above and vals[i, col0] > tol
            below = below and vals[i, col0] < -tol
        return tol, above or below
    winner = col0  # the class at vertex 0 (the first of equals, as argmax): it must win at every vertex
    for j in range(col0 + 1, vals.shape[1]):
        if vals[0, j] > vals[0, winner]:
            winner = j
    for i in range(n):
        for j in range(col0, vals.shape[1]):
            if j != winner and not vals[i, j] - vals[i, winner] < -tol:
                return tol, False
    return tol, True

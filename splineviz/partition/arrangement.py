"""Refine a planar graph by many units of a layer at once (a chunk of up to MAX_UNITS lines).

Splitting unit by unit costs some fifty numpy calls and a scan of every edge per unit, whatever
the graph's size. Here a chunk of units is one pass: every edge is cut by every line that
crosses it, every crossed face gets one chord per line, chords of a face are cut where they
cross each other, and the new faces are named by their parent and the sign pattern of the
chunk's units, which is unique to each cell of a line arrangement in a convex face. The names
give every face's sign code for free, and its parent (graph.origin).

Only generic position is handled: no value within tolerance of zero at a vertex or at a chord
end, no two lines meeting on an edge or in a common point. Anything else, or a count that does
not add up, leaves the graph's vertices, edges and faces as they were and returns None; the
caller then tries smaller chunks, down to unit by unit, which handles every degenerate case.

Memory: the new vertex and edge tables replace the old ones as soon as they are filled (rows
and columns past the graph's counts are spare until the refinement is committed), and every
step's temporaries die with its function, so the peak is little more than the new tables.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .graph import (E0, E1, FA, FB, LAYER, OUTSIDE, UNIT, VALUES, PlanarGraph, interpolate_rows, radix_order,
                    run_starts)

MAX_UNITS = 52  # lines per pass at most
_EXACT_OWNERS = 2**16  # edges or chords up to which one float orders points along them (see _order_along)


class _Cuts(NamedTuple):
    """Where lines cross edges, sorted along each edge; cut r becomes vertex n + r."""
    edge: np.ndarray
    unit: np.ndarray
    t: np.ndarray  # position from the edge's end a to its end b
    a: np.ndarray
    b: np.ndarray
    first: np.ndarray  # mask: the cut nearest the edge's end a


class _Chords(NamedTuple):
    """One per (face, line crossing it), between two cut vertices."""
    face: np.ndarray
    unit: np.ndarray
    p: np.ndarray
    q: np.ndarray


class _Crossings(NamedTuple):
    """Chords i and j (of one face) cross at ti along chord i and tj along chord j."""
    i: np.ndarray
    j: np.ndarray
    ti: np.ndarray
    tj: np.ndarray


class _Pieces(NamedTuple):
    """Chords cut at their crossings, with the line crossing at each end (-1: the chord's end)."""
    start: np.ndarray
    end: np.ndarray
    chord: np.ndarray
    line_at_start: np.ndarray
    line_at_end: np.ndarray


class _Layout(NamedTuple):
    """Where the layer's lines cut the graph, before anything is added to it."""
    cuts: _Cuts
    chords: _Chords
    crossings: _Crossings
    pieces: _Pieces
    old_code: np.ndarray  # sign codes of the existing vertices
    columns: np.ndarray  # value column of each line
    labels: np.ndarray  # unit label of each line


def max_units(n_faces: int) -> int:
    """The most lines one pass can take: face names hold the parent id and one sign bit per line."""
    return max(0, min(MAX_UNITS, 62 - int(n_faces).bit_length()))


def refine_by_layer(graph: PlanarGraph, tol: np.ndarray, layer: int, units: np.ndarray | None = None,
                    labels: np.ndarray | None = None) -> np.ndarray | None:
    """Cut every face along the zero sets of `units` (default: every value column), or return None.

    tol[i] is the tolerance of units[i]; new edges are labelled (layer, labels[i]) (default: the
    unit's column). On success returns each face's sign code (bit i: unit
    units[i] positive inside the face), and graph.origin maps every new face to its parent.
    Tables that would break graph.max_bytes raise PartitionBudgetError before they are made,
    leaving the graph's counted vertices, edges and faces as they were.
    """
    units = np.arange(graph.vals.shape[1] - VALUES) if units is None else np.asarray(units, dtype=np.int64)
    if units.size > max_units(graph.n_faces):
        return None
    layout = _lay_out(graph, tol, units, units if labels is None else np.asarray(labels, dtype=np.int64))
    if layout is None:
        return None
    if not _add_vertices(graph, layout, tol):
        return None
    return _add_edges(graph, layout, layer)


def _lay_out(graph: PlanarGraph, tol: np.ndarray, units: np.ndarray, labels: np.ndarray) -> _Layout | None:
    """The cuts, chords, crossings and chord pieces; None if not in generic position.

    Only reads the graph: the current value table may go as soon as this returns.
    """
    columns = VALUES + units
    first = int(columns[0]) if columns.size else VALUES
    if columns.size and columns[-1] - first == columns.size - 1:  # sorted and contiguous: a view, no copy
        z = graph.vals[: graph.n, first: first + columns.size]
    else:
        z = graph.vals[: graph.n].take(columns, axis=1)
    if ((z <= tol) & (z >= -tol)).any():  # bool temporaries only: abs() would copy the values
        return None
    positive = z > 0
    cuts = _cut_edges(graph, z, positive)
    chords = _pair_cuts(graph, cuts, tol.size)
    if chords is None:
        return None
    crossings = _cross_chords(z, cuts, chords, graph.n, tol)
    if crossings is None:
        return None
    pieces = _chord_pieces(chords, crossings, graph.n + cuts.edge.size)
    return _Layout(cuts, chords, crossings, pieces, _sign_codes(positive), columns, labels)


def _cut_edges(graph: PlanarGraph, z: np.ndarray, positive: np.ndarray) -> _Cuts:
    edges = graph.edges[:, : graph.m]
    w = positive.shape[1]
    # take() and flatnonzero: several times faster here than fancy indexing and 2D nonzero
    edge, unit = np.divmod(np.flatnonzero(positive.take(edges[E0], axis=0) != positive.take(edges[E1], axis=0)), w)
    ends = edges[E0: E1 + 1].take(edge, axis=1)
    za = z[ends[0], unit]
    t = za / (za - z[ends[1], unit])
    order = _order_along(edge, t, graph.m)
    edge = edge[order]
    a, b = ends.take(order, axis=1)
    return _Cuts(edge, unit[order], t[order], a, b, run_starts(edge))


def _pair_cuts(graph: PlanarGraph, cuts: _Cuts, w: int) -> _Chords | None:
    """A line crossing a convex face cuts exactly two of its edges: those two cuts end its chord."""
    c = cuts.edge.size
    key = graph.edges[FA: FB + 1].take(cuts.edge, axis=1) + 1  # OUTSIDE becomes 0
    key *= w
    key += cuts.unit
    key = key.ravel()
    order = radix_order(key, ((graph.n_faces + 1) * w).bit_length())
    key = key[order]
    ends = order % c
    inside = key.searchsorted(w)  # OUTSIDE sorts first
    key, ends = key[inside:], ends[inside:]
    if key.size % 2 or not (key[0::2] == key[1::2]).all() or not (key[2::2] != key[1:-1:2]).all():
        return None
    face, unit = np.divmod(key[0::2], w)
    face -= 1
    ends += graph.n
    return _Chords(face, unit, ends[0::2], ends[1::2])


def _cross_chords(z: np.ndarray, cuts: _Cuts, chords: _Chords, n: int, tol: np.ndarray) -> _Crossings | None:
    """Chords of one face cross where each separates the other's ends.

    Each line's value at the other chord's ends is interpolated from the edge's ends exactly as
    the cut's row will be. A chord end within tolerance of another line, or a crossing seen
    from one chord only, is not generic position: None.
    """
    i, j = _pairs_within_groups(chords.face)
    ui, uj = chords.unit[i], chords.unit[j]
    end_cut = np.concatenate([chords.p[i], chords.q[i], chords.p[j], chords.q[j]]) - n
    end_line = np.concatenate([uj, uj, ui, ui])
    value = z[cuts.a[end_cut], end_line]
    value += cuts.t[end_cut] * (z[cuts.b[end_cut], end_line] - value)
    if (np.abs(value) <= tol[end_line]).any():
        return None
    zp, zq, wp, wq = value.reshape(4, -1)  # each line at the other chord's ends
    crosses = (zp > 0) != (zq > 0)
    if not np.array_equal(crosses, (wp > 0) != (wq > 0)):
        return None
    zp, zq, wp, wq = zp[crosses], zq[crosses], wp[crosses], wq[crosses]
    return _Crossings(i[crosses], j[crosses], zp / (zp - zq), wp / (wp - wq))


def _chord_pieces(chords: _Chords, crossings: _Crossings, first_crossing: int) -> _Pieces:
    """Chords into pieces between consecutive points; crossing x becomes vertex first_crossing + x."""
    k, x = chords.face.size, crossings.i.size
    i, j = crossings.i, crossings.j
    crossing = np.arange(first_crossing, first_crossing + x)
    chord = np.arange(k)
    on = np.concatenate([chord, chord, i, j])
    way = np.concatenate([np.zeros(k), np.ones(k), crossings.ti, crossings.tj])  # ends at 0 and 1
    point = np.concatenate([chords.p, chords.q, crossing, crossing])
    line = np.concatenate([np.full(2 * k, -1), chords.unit[j], chords.unit[i]])  # the line crossing there
    order = _order_along(on, way, k)
    on, point, line = on[order], point[order], line[order]
    piece = (on[1:] == on[:-1]).nonzero()[0]
    return _Pieces(point[piece], point[piece + 1], on[piece], line[piece], line[piece + 1])


def _order_along(owner: np.ndarray, way: np.ndarray, n_owners: int) -> np.ndarray:
    """Stable order of points by owner (an edge or chord index), then by the fraction of the way along it.

    One float, owner + half the way, sorts them in one call. Below 2**16 owners its rounding can
    only swap points closer than 3e-11 of the way, and such points fail the generic-position
    check anyway (a line's value there is below its tolerance). Past that, a swap of two points
    of one owner is looked for, and the exact two-key sort used where there is one.
    """
    order = (owner + 0.5 * way).argsort(kind="stable")
    if n_owners <= _EXACT_OWNERS:
        return order
    o, t = owner[order], way[order]
    if ((o[1:] == o[:-1]) & (t[1:] < t[:-1])).any():
        order = np.lexsort((way, owner))
    return order


def _add_vertices(graph: PlanarGraph, layout: _Layout, tol: np.ndarray) -> bool:
    """Rows for the cuts and crossings, past graph.n; False if two of them nearly meet a line."""
    cuts, chords, crossings, pieces, _, columns, _ = layout
    n, c, x = graph.n, cuts.edge.size, crossings.i.size
    graph.reserve_vertices(n + c + x)
    grown = graph.vals
    interpolate_rows(grown[:n], cuts.a, cuts.b, cuts.t, out=grown[n: n + c])
    grown[np.arange(n, n + c), columns[cuts.unit]] = 0.0
    i, j = crossings.i, crossings.j
    interpolate_rows(grown[n: n + c], chords.p[i] - n, chords.q[i] - n, crossings.ti, out=grown[n + c: n + c + x])
    crossing = np.arange(n + c, n + c + x)
    grown[crossing, columns[chords.unit[i]]] = 0.0
    grown[crossing, columns[chords.unit[j]]] = 0.0
    # generic position: no two cuts next on an edge, no two crossings next on a chord, lie
    # within tolerance of each other's lines
    after = (~cuts.first[1:]).nonzero()[0]  # cut r is followed by cut r + 1 on the same edge
    inner = ((pieces.line_at_start >= 0) & (pieces.line_at_end >= 0)).nonzero()[0]
    near_vertex = np.concatenate([n + after, n + after + 1, pieces.start[inner], pieces.end[inner]])
    near_line = np.concatenate([cuts.unit[after + 1], cuts.unit[after], pieces.line_at_end[inner],
                                pieces.line_at_start[inner]])
    return not (np.abs(grown[near_vertex, columns[near_line]]) <= tol[near_line]).any()


def _add_edges(graph: PlanarGraph, layout: _Layout, layer: int) -> np.ndarray | None:
    """Cut edges into pieces, add the chord pieces, name the faces, and commit if the count holds.

    A cut edge keeps its column for its last piece; its earlier pieces and the chord pieces are
    appended. Only faces that a chord crosses are renamed: their pieces are named by parent and
    the chunk's sign code along their edges (ends never have opposite signs now, so a unit is
    positive along an edge if it is at either end, and a chord's own line by the side the face
    lies on). Each crossed face's first piece keeps its id, the others get new ids; faces no line
    enters keep theirs, and their code is the one of any of their corners.
    Returns every face's sign code, or None (the graph as it was) if the names do not add up.
    """
    cuts, chords, crossings, pieces, old_code, columns, labels = layout
    n, m, w, f0 = graph.n, graph.m, columns.size, graph.n_faces
    c = cuts.edge.size
    added = c + crossings.i.size
    vertex_code = np.concatenate([old_code, _sign_codes(graph.vals[n: n + added].take(columns, axis=1) > 0)])
    n_edges = m + c + pieces.start.size
    graph.allot(48 * n_edges)
    table = np.empty((6, n_edges), dtype=np.int64)
    table[:, :m] = graph.edges[:, :m]
    cut_pieces = table[:, m: m + c]
    cut_pieces[:] = graph.edges.take(cuts.edge, axis=1)
    cut_vertex = np.arange(n, n + c)
    cut_pieces[E0] = cut_vertex - 1
    cut_pieces[E0, cuts.first] = cuts.a[cuts.first]
    cut_pieces[E1] = cut_vertex
    chord_pieces = table[:, m + c:]
    chord_pieces[E0], chord_pieces[E1] = pieces.start, pieces.end
    chord_pieces[FA] = chord_pieces[FB] = chords.face[pieces.chord]
    chord_pieces[LAYER], chord_pieces[UNIT] = layer, labels[chords.unit[pieces.chord]]
    graph.edges = table  # columns past m stay spare until the commit below

    last = np.ones(c, dtype=bool)  # the last cut on its edge starts the edge's last piece
    last[:-1] = cuts.first[1:]
    kept = cuts.edge[last]
    table[E0, kept] = cut_vertex[last]  # undone if the names do not add up
    crossed = np.zeros(f0 + 1, dtype=bool)  # its last slot answers for OUTSIDE
    crossed[chords.face] = True
    faces = table[FA: FB + 1]
    touched = crossed[faces]
    cols = np.flatnonzero(touched[0] | touched[1])
    code = vertex_code.take(table[E0].take(cols))
    code |= vertex_code.take(table[E1].take(cols))
    names = faces.take(cols, axis=1)
    names <<= w
    names |= code
    chord = cols >= m + c
    own = np.int64(1) << chords.unit[pieces.chord]
    names[0, chord] |= own
    names[1, chord] &= ~own
    names[~touched.take(cols, axis=1)] = OUTSIDE  # sides in faces no line enters: not renamed
    names = names.ravel()
    order = radix_order(names, w + f0.bit_length())
    ordered = names.take(order)
    inside = ordered.size - np.count_nonzero(ordered == OUTSIDE)  # OUTSIDE sorts last
    first = run_starts(ordered[:inside])
    distinct = ordered[:inside][first]
    n_crossed = int(np.count_nonzero(crossed))
    if distinct.size != n_crossed + chords.face.size + crossings.i.size:  # with V and E counts: Euler's formula
        table[E0, kept] = cuts.a[last]
        return None

    parent = distinct >> w
    keeps = run_starts(parent)  # a crossed face's first piece keeps its id
    ids = parent.copy()
    fresh = np.flatnonzero(~keeps)
    ids[fresh] = np.arange(f0, f0 + fresh.size)
    side = order[:inside]
    faces[side // cols.size, cols.take(side % cols.size)] = ids.take(np.cumsum(first) - 1)
    n_faces = f0 + fresh.size
    face_code = np.empty(n_faces + 1, dtype=np.int64)  # the last slot takes what OUTSIDE sides write
    corner_code = vertex_code.take(table[E0])
    face_code[table[FA]] = corner_code  # faces no line enters: the code of any corner; the others are
    face_code[table[FB]] = corner_code  # overwritten next, by the codes in their pieces' names
    face_code[ids] = distinct & ((np.int64(1) << w) - 1)
    face_code = face_code[:n_faces]
    graph.n, graph.m, graph.n_faces = n + added, n_edges, n_faces
    graph.origin = np.concatenate([graph.origin[:f0], graph.origin.take(parent[fresh])])
    return face_code


def _sign_codes(positive: np.ndarray) -> np.ndarray:
    """Each row's signs as one int64 (bit u: unit u positive), for up to 62 units."""
    packed = np.packbits(positive, axis=1, bitorder="little")
    wide = np.zeros((positive.shape[0], 8), dtype=np.uint8)
    wide[:, : packed.shape[1]] = packed
    return wide.view("<i8").reshape(-1).astype(np.int64, copy=False)


def _pairs_within_groups(group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All index pairs i < j with group[i] == group[j], for a sorted group array."""
    index = np.arange(group.size)
    partners = group.searchsorted(group, side="right") - index - 1
    i = np.repeat(index, partners)
    first_pair = np.cumsum(partners) - partners
    return i, np.arange(i.size) - np.repeat(first_pair - index - 1, partners)



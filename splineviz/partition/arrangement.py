"""Refine a planar graph by every unit of a layer at once.

Splitting unit by unit costs some fifty numpy calls per unit whatever the graph's size, which
is all the time there is on small graphs. Here the whole layer is one pass: every edge is cut
by every line that crosses it, every crossed face gets one chord per line, chords of a face
are cut where they cross each other, and the new faces are named by their parent and the sign
pattern of the layer's units, which is unique to each cell of a line arrangement in a convex
face.

Only generic position is handled: no value within tolerance of zero at a vertex or at a chord
end, no two lines meeting on an edge or in a common point. Anything else, or a count that does
not add up, leaves the graph untouched and returns False; the caller then splits unit by unit,
which handles every degenerate case.
"""
from __future__ import annotations

import numpy as np

from .graph import E0, E1, FA, FB, LAYER, OUTSIDE, UNIT, PlanarGraph, interpolate_rows, run_starts

_MAX_UNITS = 52  # sign codes are summed in float64, exact up to 2**53


def refine_by_layer(graph: PlanarGraph, tol: np.ndarray, layer: int) -> bool:
    """Cut every face along the zero sets of all value columns (the layer's units), or return False."""
    n, m, w = graph.n, graph.m, tol.size
    if w > _MAX_UNITS or w + int(graph.n_faces).bit_length() > 62:  # face names must fit one int64
        return False
    vals = graph.vals[:n]
    z = vals[:, 2:]
    if (np.abs(z) <= tol).any():
        return False
    edges = graph.edges[:, :m]
    positive = z > 0

    # 1. cut every edge where lines cross it, ordered along the edge
    cut_edge, cut_unit = (positive[edges[E0]] != positive[edges[E1]]).nonzero()
    if cut_edge.size == 0:  # no line enters any face
        return True
    ends = edges[E0: E1 + 1, cut_edge]
    za = z[ends[0], cut_unit]
    t = za / (za - z[ends[1], cut_unit])
    order = np.lexsort((t, cut_edge))
    cut_edge, cut_unit, t = cut_edge[order], cut_unit[order], t[order]
    a, b = ends[:, order]
    c = cut_edge.size
    cut_rows = interpolate_rows(vals, a, b, t)
    cut_rows[np.arange(c), 2 + cut_unit] = 0.0
    cut_vertex = np.arange(n, n + c)
    first = run_starts(cut_edge)
    after = (~first[1:]).nonzero()[0]  # cut i is followed by cut i + 1 on the same edge

    # 2. one chord per (face, line): the line's two cut points on the face's edges
    key = edges[FA: FB + 1, cut_edge] * w
    key += cut_unit
    key = key.ravel()
    order = key.argsort(kind="stable")
    key = key[order]
    ends = order % c  # chord ends are cuts: rows of cut_rows, vertices n + row
    inside = key.searchsorted(0)  # OUTSIDE sorts first
    key, ends = key[inside:], ends[inside:]
    if key.size % 2 or not (key[0::2] == key[1::2]).all() or not (key[2::2] != key[1:-1:2]).all():
        return False
    chord_face, chord_unit = np.divmod(key[0::2], w)
    p, q = ends[0::2], ends[1::2]
    k = chord_face.size

    # 3. chords of one face cross where each separates the other's ends
    i, j = _pairs_within_groups(chord_face)
    ui, uj = chord_unit[i], chord_unit[j]
    end_rows, end_lines = np.concatenate([p[i], q[i], p[j], q[j]]), np.concatenate([uj, uj, ui, ui])
    zp, zq, wp, wq = cut_rows[end_rows, 2 + end_lines].reshape(4, -1)  # each line at the other chord's ends
    crosses = (zp > 0) != (zq > 0)
    if not np.array_equal(crosses, (wp > 0) != (wq > 0)):
        return False
    i, j, ui, uj, zp, zq, wp, wq = (v[crosses] for v in (i, j, ui, uj, zp, zq, wp, wq))
    ti, tj = zp / (zp - zq), wp / (wp - wq)
    x = i.size
    cross_rows = interpolate_rows(cut_rows, p[i], q[i], ti)
    cross_rows[np.arange(x), 2 + ui] = 0.0
    cross_rows[np.arange(x), 2 + uj] = 0.0
    cross_vertex = np.arange(n + c, n + c + x)
    p += n
    q += n

    # 4. chords into pieces between consecutive points; no third line may pass through a crossing
    on = np.concatenate([np.arange(k), np.arange(k), i, j])
    along = np.concatenate([np.zeros(k), np.ones(k), ti, tj])
    point = np.concatenate([p, q, cross_vertex, cross_vertex])
    other = np.concatenate([np.full(2 * k, -1), uj, ui])  # the line crossing there
    order = np.lexsort((along, on))
    on, point, other = on[order], point[order], other[order]
    piece = (on[1:] == on[:-1]).nonzero()[0]
    inner = piece[(other[piece] >= 0) & (other[piece + 1] >= 0)]
    piece_unit = chord_unit[on[piece]]

    # 5. the new edge table: cut edges keep their last piece, earlier pieces and chord pieces follow
    last = np.append(first[1:], True)  # cut i is the last on its edge
    old = edges.copy()
    old[E0, cut_edge[last]] = cut_vertex[last]
    cut_pieces = edges[:, cut_edge]
    cut_pieces[E0] = cut_vertex - 1
    cut_pieces[E0, first] = a[first]
    cut_pieces[E1] = cut_vertex
    chord_pieces = np.empty((6, piece.size), dtype=np.int64)
    chord_pieces[E0], chord_pieces[E1] = point[piece], point[piece + 1]
    chord_pieces[FA] = chord_pieces[FB] = chord_face[on[piece]]
    chord_pieces[LAYER], chord_pieces[UNIT] = layer, piece_unit
    table = np.concatenate([old, cut_pieces, chord_pieces], axis=1)

    # 6. faces: the parent face and the layer's signs along the edge (a chord's own line: by side).
    # Ends never have opposite signs now, so a unit is positive along an edge if it is at either end.
    powers = 2.0 ** np.arange(w)
    vertex_code = np.concatenate([positive @ powers, (cut_rows[:, 2:] > 0) @ powers,
                                  (cross_rows[:, 2:] > 0) @ powers]).astype(np.int64)
    n_edges = table.shape[1]
    code = np.empty((2, n_edges), dtype=np.int64)  # side a, side b
    code[:] = vertex_code[table[E0]] | vertex_code[table[E1]]
    own = np.int64(1) << piece_unit
    code[0, n_edges - piece.size:] |= own
    code[1, n_edges - piece.size:] &= ~own
    parent = table[FA: FB + 1]
    n_faces, ids = _compact(np.where(parent == OUTSIDE, OUTSIDE, (parent << w) | code).ravel())
    n_vertices = n + c + x
    if n_faces != graph.n_faces + k + x or n_vertices - n_edges + n_faces != 1:
        return False
    # exact sizes: the next layer's affine map replaces the value table anyway
    new_vals = np.empty((n_vertices, vals.shape[1]), dtype=np.float64)
    new_vals[:n], new_vals[n: n + c], new_vals[n + c:] = vals, cut_rows, cross_rows
    # generic position: no two cuts of an edge, no chord end and another line, no two crossings
    # next on a chord lie within tolerance of each other's lines
    near_vertex = np.concatenate([n + after, n + after + 1, n + end_rows, point[inner], point[inner + 1]])
    near_line = np.concatenate([cut_unit[after + 1], cut_unit[after], end_lines, other[inner + 1], other[inner]])
    if (np.abs(new_vals[near_vertex, 2 + near_line]) <= tol[near_line]).any():
        return False
    table[FA: FB + 1] = ids.reshape(2, -1)
    graph.vals, graph.edges = new_vals, table
    graph.n, graph.m, graph.n_faces = n_vertices, n_edges, n_faces
    return True


def _pairs_within_groups(group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All index pairs i < j with group[i] == group[j], for a sorted group array."""
    index = np.arange(group.size)
    partners = group.searchsorted(group, side="right") - index - 1
    i = np.repeat(index, partners)
    first_pair = np.cumsum(partners) - partners
    return i, np.arange(i.size) - np.repeat(first_pair - index - 1, partners)


def _compact(names: np.ndarray) -> tuple[int, np.ndarray]:
    """Number the distinct names 0, 1, ...; OUTSIDE stays OUTSIDE."""
    order = names.argsort(kind="stable")
    ordered = names[order]
    start = run_starts(ordered)
    start[: ordered.searchsorted(0)] = False  # OUTSIDE (-1) sorts first and is no face
    ids = np.empty(names.size, dtype=np.int64)
    ids[order] = np.cumsum(start) - 1
    return int(start.sum()), ids

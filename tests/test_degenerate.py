"""Degenerate geometry (duplicates, zero weights, lines through vertices and corners, axis-aligned lines,
exact zeros) must trace correctly: checked against an exact rational count of the line arrangement."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from splineviz.partition import Affine, ReLU, trace
from tests.oracles import assert_consistent, grid

R = 3  # domain [-R, R]^2 with integer corners, so integer lines often pass through corners and lattice points
BOUNDS = (-R, R, -R, R)
coef = st.integers(-3, 3)
line = st.tuples(coef, coef, coef)
pytestmark = pytest.mark.usefixtures("engine")  # every test with the compiled kernels and with numpy alone


def arrangement_regions(lines: list[tuple[int, int, int]]) -> int:
    """Exact number of cells that lines a*x + b*y + c = 0 cut the open square into.

    Adding a line that crosses the interior adds one cell plus one per distinct interior point
    where it meets a different earlier line.
    """
    corners = [(-R, -R), (R, -R), (R, R), (-R, R)]
    seen: list[tuple[int, int, int]] = []
    regions = 1
    for a, b, c in lines:
        if (a, b) == (0, 0):
            continue
        values = [a * x + b * y + c for x, y in corners]
        if not (min(values) < 0 < max(values)):
            continue  # misses the interior, or only touches its border
        if any(a * b2 - a2 * b == 0 and a * c2 - a2 * c == 0 and b * c2 - b2 * c == 0 for a2, b2, c2 in seen):
            continue  # the same line again (duplicate, scaled or flipped unit)
        points = set()
        for a2, b2, c2 in seen:
            det = a * b2 - a2 * b
            if det == 0:
                continue
            x, y = Fraction(b * c2 - b2 * c, det), Fraction(a2 * c - a * c2, det)
            if -R < x < R and -R < y < R:
                points.add((x, y))
        regions += 1 + len(points)
        seen.append((a, b, c))
    return regions


def one_layer(lines) -> list:
    w = np.array([[a, b] for a, b, _ in lines], dtype=float)
    bias = np.array([c for _, _, c in lines], dtype=float)
    return [Affine(w, bias), ReLU(), Affine(np.ones((1, len(lines))), np.zeros(1))]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(line, min_size=1, max_size=12))
def test_integer_arrangements_match_exact_count(lines):
    p = trace(one_layer(lines), bounds=BOUNDS)
    assert p.n_regions == arrangement_regions(lines)
    assert p.n_regions == p.euler_regions
    assert np.isclose(p.areas.sum(), (2 * R) ** 2) and (p.areas > 0).all()


def test_oracle_itself_on_known_cases():
    assert arrangement_regions([(1, 0, 0), (0, 1, 0)]) == 4  # the axes
    assert arrangement_regions([(1, 0, 0), (2, 0, 0), (-1, 0, 0)]) == 2  # one line three times
    assert arrangement_regions([(1, 1, 0), (1, -1, 0), (1, 0, 0)]) == 6  # concurrent through the centre
    assert arrangement_regions([(1, 0, 3), (0, 0, 1)]) == 1  # along the border; zero weights
    assert arrangement_regions([(1, -1, 0)]) == 2  # the diagonal, through two corners


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(line, min_size=1, max_size=8), st.lists(st.lists(coef, min_size=8, max_size=8), min_size=1, max_size=6),
       st.data())
def test_two_layer_degenerate_nets_are_consistent(lines, rows, data):
    """Duplicate and zero units in both layers: Euler, areas and brute-force codes still agree."""
    width = len(lines)
    w1 = np.array([r[:width] for r in rows], dtype=float)
    b1 = np.array([r[-1] for r in rows], dtype=float) * data.draw(st.sampled_from([0.0, 0.5, 1.0]))
    if data.draw(st.booleans()):  # a duplicated second-layer unit
        w1, b1 = np.vstack([w1, w1[:1]]), np.append(b1, b1[0])
    first = one_layer(lines)[:2]
    ops = first + [Affine(w1, b1), ReLU(), Affine(np.ones((2, len(b1))), np.zeros(2))]
    p = trace(ops, bounds=BOUNDS)
    assert_consistent(p, (2 * R) ** 2, grid(BOUNDS, 120), margin=1e-6)


def test_duplicate_and_zero_units_add_nothing():
    base = [(1, 2, 1), (2, -1, 0), (0, 1, -1)]
    p = trace(one_layer(base), bounds=BOUNDS)
    q = trace(one_layer(base + [(2, 4, 2), (-1, -2, -1), (0, 0, 0), (0, 0, 5)]), bounds=BOUNDS)
    assert p.n_regions == q.n_regions
    r = trace(one_layer(base + [(1, 0, 0)]), bounds=BOUNDS)  # an axis-aligned line through a crossing
    assert r.n_regions == arrangement_regions(base + [(1, 0, 0)])

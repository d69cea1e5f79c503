"""The exact partition against independent oracles: brute-force codes, Euler, areas, regioncam."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
import shapely

from splineviz.partition import (Affine, Cancelled, LeakyReLU, MaxPool, PartitionBudgetError, Plane, ReLU, box,
                                 trace)
from splineviz.partition.domain import convex_domain
from tests.oracles import assert_consistent, grid, point_codes

BOUNDS = (-3.0, 3.0, -3.0, 3.0)
pytestmark = pytest.mark.usefixtures("engine")  # every test with the compiled kernels and with numpy alone


def random_mlp(widths, seed, activation=ReLU, scale=1.0):
    rng = np.random.default_rng(seed)
    ops = []
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
        bound = scale / np.sqrt(fan_in)
        ops.append(Affine(rng.uniform(-bound, bound, (fan_out, fan_in)), rng.uniform(-bound, bound, fan_out)))
        if i < len(widths) - 2:
            ops.append(activation())
    return ops


@pytest.mark.parametrize("widths,seed", [((2, 8, 2), 0), ((2, 16, 16, 2), 1), ((2, 12, 10, 8, 3), 2),
                                         ((2, 24, 1), 3)])
def test_regions_match_brute_force_codes(widths, seed):
    p = trace(random_mlp(widths, seed, scale=3.0), bounds=BOUNDS)
    assert_consistent(p, 36.0, grid(BOUNDS, 300))


def test_a_polygon_domain_may_be_clockwise_or_closed():
    """The same triangle given clockwise, or as a closed ring (first corner repeated), is the same domain."""
    ccw = np.array([[-2.0, -1.5], [2.5, -1.0], [0.0, 2.0]])
    ops = random_mlp((2, 6, 2), 5, scale=3.0)
    reference = trace(ops, bounds=ccw)
    for corners in (ccw[::-1], np.vstack([ccw, ccw[:1]]), np.vstack([ccw[::-1], ccw[2:]])):
        p = trace(ops, bounds=corners)
        p._graph.check()
        assert p.n_regions == reference.n_regions and p.areas.sum() == pytest.approx(7.375, abs=1e-12)
        assert sorted(map(tuple, p.vertices[:3].tolist())) == sorted(map(tuple, ccw.tolist()))


def test_a_box_and_any_polygon_domain_come_out_counter_clockwise():
    assert box(0.0, 2.0, 0.0, 1.0).tolist() == [[0, 0], [2, 0], [2, 1], [0, 1]]
    triangle = np.array([[0.0, 0.0], [0.0, 2.0], [3.0, 0.0]])  # clockwise
    for corners in (box(0.0, 2.0, 0.0, 1.0), convex_domain(triangle), convex_domain(triangle[::-1])):
        x, y = corners[:, 0], corners[:, 1]
        assert 0.5 * (x @ np.roll(y, -1) - y @ np.roll(x, -1)) > 0  # signed area: positive, counter-clockwise


def test_leaky_relu_and_convex_polygon_domain():
    triangle = np.array([[-2.0, -1.5], [2.5, -1.0], [0.0, 2.0]])
    p = trace(random_mlp((2, 10, 10, 2), 4, activation=lambda: LeakyReLU(0.1), scale=3.0), bounds=triangle)
    area = shapely.Polygon(triangle).area
    inside = grid(BOUNDS, 300)
    inside = inside[shapely.contains_xy(shapely.Polygon(triangle), inside[:, 0], inside[:, 1])]
    assert_consistent(p, area, inside)


def test_every_sampled_code_has_a_region():
    ops = random_mlp((2, 10, 10, 2), 5, scale=3.0)
    p = trace(ops, bounds=BOUNDS)
    codes, _ = point_codes(p.ops, grid(BOUNDS, 400))
    assert len(np.unique(codes, axis=0)) <= p.n_regions
    assert len(np.unique(codes, axis=0)) >= 0.9 * p.n_regions  # dense sampling finds nearly all regions


@pytest.mark.parametrize("seed", range(4))
def test_region_count_equals_regioncam(seed):
    regioncam = pytest.importorskip("regioncam")
    ops = random_mlp((2, 20, 20, 20, 2), seed, scale=2.0)
    p = trace(ops, bounds=BOUNDS)
    rc = regioncam.Regioncam(size=3.0)
    for op in ops:
        if isinstance(op, Affine):
            rc.linear(op.weight.T.astype(np.float32), op.bias.astype(np.float32))
        else:
            rc.relu()
    assert p.n_regions == rc.num_faces


def test_per_layer_counts_grow_and_boundaries_are_labelled():
    p = trace(random_mlp((2, 8, 8, 2), 6, scale=3.0), bounds=BOUNDS)
    assert p.layer_region_counts == sorted(p.layer_region_counts)
    first = trace(p.ops[:2], bounds=BOUNDS)
    assert first.n_regions == p.layer_region_counts[0]
    for layer in range(p.n_layers):
        seg, units = p.segments(layer), p.segment_units(layer)
        assert len(seg) == len(units) > 0
        w = p.ops[0].weight if layer == 0 else None
        if w is not None:  # first-layer segments lie on their unit's line
            mids = seg.mean(axis=1)
            values = np.einsum("kd,kd->k", mids, w[units]) + p.ops[0].bias[units]
            assert np.abs(values).max() < 1e-9
    polylines = p.boundaries(0)
    assert np.isclose(sum(shapely.LineString(pl).length for pl in polylines),
                      np.linalg.norm(p.segments(0)[:, 1] - p.segments(0)[:, 0], axis=1).sum())


def test_decision_boundary_is_where_the_class_changes():
    ops = random_mlp((2, 16, 16, 3), 7, scale=3.0)
    p = trace(ops, bounds=BOUNDS)
    dec = p.decision_boundary
    assert len(dec) > 0
    logits = p.outputs_at(dec.mean(axis=1))
    top = np.sort(logits, axis=1)
    assert np.abs(top[:, -1] - top[:, -2]).max() < 1e-8
    # brute force: neighbouring grid points with different predictions straddle a decision segment
    pts = grid(BOUNDS, 60).reshape(60, 60, 2)
    cls = p.outputs_at(pts.reshape(-1, 2)).argmax(axis=1).reshape(60, 60)
    lines = shapely.multilinestrings(dec)
    changed = np.argwhere(cls[:, 1:] != cls[:, :-1])
    assert len(changed) > 0
    for i, j in changed:
        assert shapely.LineString([pts[i, j], pts[i, j + 1]]).intersects(lines.buffer(1e-9))
    # class cells (regions cut by the decision boundary) have one predicted class each and tile the domain
    cells, classes = p.class_cells()
    assert np.isclose(sum(shapely.Polygon(c).area for c in cells), 36.0)
    margin = np.sort(p.outputs_at(pts.reshape(-1, 2)), axis=1)
    clear = margin[:, -1] - margin[:, -2] > 1e-6
    tree = shapely.STRtree([shapely.Polygon(c) for c in cells])
    point_idx, cell_idx = tree.query(shapely.points(pts.reshape(-1, 2)[clear]), predicate="intersects")
    np.testing.assert_array_equal(classes[cell_idx], cls.ravel()[clear][point_idx])


def test_single_output_and_class_pair_decision_boundaries():
    ops = random_mlp((2, 12, 1), 8, scale=3.0)
    p = trace(ops, bounds=BOUNDS)
    assert len(p.decision_boundary) > 0
    assert np.abs(p.outputs_at(p.decision_boundary.mean(axis=1))).max() < 1e-9
    ops = random_mlp((2, 12, 5), 9, scale=3.0)
    p = trace(ops, bounds=BOUNDS, decision_classes=(1, 3))
    z = p.outputs_at(p.decision_boundary.reshape(-1, 2))
    assert len(z) > 0 and np.abs(z[:, 1] - z[:, 3]).max() < 1e-9
    assert set(np.unique(p.region_classes)) <= {1, 3}
    cells = p.cells  # each class cell takes the pair's winner at its centre, named by its output index
    centres = np.stack([np.bincount(np.repeat(np.arange(len(cells.classes)), np.diff(cells.offsets)), cells.xy[:, i])
                        for i in (0, 1)], axis=1) / np.diff(cells.offsets)[:, None]
    out = p.outputs_at(centres)
    clear = np.abs(out[:, 1] - out[:, 3]) > 1e-9
    assert clear.sum() > 10
    np.testing.assert_array_equal(cells.classes[clear], np.where(out[clear, 3] > out[clear, 1], 3, 1))


def test_an_output_that_never_wins_changes_no_decision_boundary():
    """Outputs 1 and 1 - |x| touch along x = 0 (a tie, output 0 ahead on both sides). A third output at -5 can never
    win, so the boundary must be the one the two outputs alone give (their difference's zero set, the segment
    x = 0), not dropped because output 0 wins at every vertex."""
    hidden = [Affine(np.array([[1.0, 0.0], [-1.0, 0.0]]), np.zeros(2)), ReLU()]
    two = trace(hidden + [Affine(np.array([[0.0, 0.0], [-1.0, -1.0]]), np.array([1.0, 1.0]))], bounds=BOUNDS)
    three = trace(hidden + [Affine(np.array([[0.0, 0.0], [-1.0, -1.0], [0.0, 0.0]]), np.array([1.0, 1.0, -5.0]))],
                  bounds=BOUNDS)
    np.testing.assert_allclose(np.sort(two.decision_boundary[:, :, 1], axis=1), [[-3.0, 3.0]])
    np.testing.assert_allclose(two.decision_boundary[:, :, 0], 0.0)
    np.testing.assert_allclose(three.decision_boundary, two.decision_boundary)


def test_segments_without_a_layer_are_every_internal_edge():
    p = trace(random_mlp((2, 6, 5, 2), 3, scale=3.0), bounds=BOUNDS)
    every = p.segments()
    assert len(every) == sum(len(p.segments(layer)) for layer in range(p.n_layers)) == (p.edge_layer >= 0).sum()
    on_border = (np.isclose(every, 3.0).all(axis=1) | np.isclose(every, -3.0).all(axis=1)).any(axis=1)
    assert not on_border.any()  # no segment runs along a side of the box


@pytest.mark.parametrize("n_out, winner", [(1, 1), (1, 0), (2, 1), (4, 2)])
def test_a_class_that_wins_everywhere_leaves_no_boundary(n_out, winner):
    """No boundary in the domain: nothing to cut, and every region is a class cell of the winner."""
    ops = random_mlp((2, 12, 12, n_out), 12)
    bias = ops[-1].bias.copy()
    if n_out == 1:
        bias += 50.0 if winner else -50.0
    else:
        bias[winner] += 50.0
    ops[-1] = Affine(ops[-1].weight, bias)
    p = trace(ops, bounds=BOUNDS)
    assert p.decision_boundary.shape == (0, 2, 2)
    cells, classes = p.class_cells()
    assert len(cells) == p.n_regions and set(classes) == {winner}
    assert np.isclose(sum(shapely.Polygon(c).area for c in cells), 36.0)
    predicted = p._predict(p.outputs_at(grid(BOUNDS, 50)))  # brute force over the domain
    assert set(np.unique(predicted)) == {winner}


def test_max_pool_adds_argmax_boundaries():
    rng = np.random.default_rng(10)
    ops = [Affine(rng.normal(size=(9, 2)), rng.normal(size=9)), ReLU(), MaxPool(((0, 1, 2), (3, 4, 5, 6), (7, 8))),
           Affine(rng.normal(size=(2, 3)), rng.normal(size=2))]
    seen = []
    p = trace(ops, bounds=BOUNDS, progress=lambda f, msg: seen.append(f))
    assert_consistent(p, 36.0, grid(BOUNDS, 300))
    assert len(p.segments(1)) > 0  # the pool's own boundaries
    # 15 steps by hand: 9 ReLU units, and a group of k values takes k - 1 comparisons (2 + 3 + 1)
    assert seen[-1] == 1.0 and all(abs(15 * f - round(15 * f)) < 1e-9 for f in seen)


def test_plane_through_images_and_points():
    rng = np.random.default_rng(11)
    ops = random_mlp((50, 16, 16, 4), 11, scale=2.0)
    img0, img1 = rng.uniform(0, 1, 50), rng.uniform(0, 1, 50)
    plane = Plane.through_images(img0, img1)
    p = trace(ops, bounds=(0, 1, 0, 1), plane=plane)
    assert_consistent(p, 1.0, grid((0, 1, 0, 1), 200))
    corners = np.array([[1.0, 0.0], [0.0, 1.0]])
    from splineviz.partition.ops import forward
    np.testing.assert_allclose(p.outputs_at(corners), forward(ops, np.stack([img0, img1])), atol=1e-12)
    q = Plane.through_points(img0, img1, rng.uniform(0, 1, 50))
    np.testing.assert_allclose(q.lift(np.array([[0.0, 0.0], [1.0, 0.0]])), np.stack([img0, img1]))
    assert trace(ops, bounds=(-0.5, 1.5, -0.5, 1.5), plane=q).n_regions > 1


def test_geojson_and_locate():
    p = trace(random_mlp((2, 8, 8, 2), 12, scale=3.0), bounds=BOUNDS)
    gj = p.to_geojson()
    regions = [f for f in gj["features"] if f["properties"]["kind"] == "region"]
    assert len(regions) == p.n_regions
    polys = [shapely.geometry.shape(f["geometry"]) for f in regions]
    assert all(poly.is_valid for poly in polys)
    assert np.isclose(sum(poly.area for poly in polys), 36.0)
    assert {f["properties"].get("layer") for f in gj["features"] if f["properties"]["kind"] == "boundary"} == {0, 1}
    assert (p.locate(np.array([[10.0, 10.0]])) == -1).all()
    assert (p.locate(p.interior_points) == np.arange(p.n_regions)).all()


def test_errors_are_clear():
    ops = random_mlp((2, 8, 2), 13)
    with pytest.raises(ValueError, match="NaN"):
        Affine(np.array([[np.nan, 1.0]]), np.zeros(1))
    with pytest.raises(ValueError, match="shape mismatch"):
        trace([Affine(np.ones((3, 2)), np.zeros(3)), ReLU(), Affine(np.ones((2, 4)), np.zeros(2))])
    with pytest.raises(ValueError, match="Plane"):
        trace(random_mlp((5, 4, 2), 0))
    with pytest.raises(ValueError, match="convex"):
        trace(ops, bounds=np.array([[0, 0], [2, 0], [1, 0.2], [2, 2], [0, 2.0]]))
    with pytest.raises(ValueError, match="parallel"):
        Plane.through_images(np.ones(4), 2 * np.ones(4))
    with pytest.raises(PartitionBudgetError, match="budget"):
        trace(random_mlp((2, 32, 32, 2), 1, scale=3.0), bounds=BOUNDS, budget=100)
    small = random_mlp((2, 6, 2), 1, scale=3.0)
    regions = trace(small, bounds=BOUNDS).n_regions  # the budget is the most regions allowed: exactly is fine
    assert trace(small, bounds=BOUNDS, budget=regions).n_regions == regions
    with pytest.raises(PartitionBudgetError, match=f"budget of {regions - 1:,} regions"):
        trace(small, bounds=BOUNDS, budget=regions - 1)
    with pytest.raises(ValueError, match="decision_classes"):  # two outputs: 0 and 1 only
        trace(ops, bounds=BOUNDS, decision_classes=(0, 2))
    with pytest.raises(TypeError, match="unsupported op"):
        trace([Affine(np.ones((2, 2)), np.zeros(2)), "sigmoid"])
    for groups in [((0, 1), (2, 3)), ((-1, 0),), ((0,), ())]:  # 3 incoming values: index 3 is one past the end
        with pytest.raises(ValueError, match="outside the 3 incoming values"):
            trace([Affine(np.ones((3, 2)), np.zeros(3)), MaxPool(groups), Affine(np.ones((1, len(groups))), [0.0])])


@pytest.mark.parametrize("refine", ["auto", "unit"])
def test_progress_and_cancel(refine, engine):
    """Progress rises to 1; cancel is polled after every unit (numpy), every chunk taken at once, or every call
    of the compiled kernels (a small net is one call), and stops the trace."""
    ops = random_mlp((2, 16, 16, 2), 14)
    seen = []
    trace(ops, bounds=BOUNDS, progress=lambda f, msg: seen.append(f), refine=refine)
    assert seen == sorted(seen) and seen[-1] == 1.0
    seen.clear()  # 251 units one by one report at units 1, 4, ..., 250 (1 % apart), then 1.0 only 0.4 % later
    trace(random_mlp((2, 251, 1), 3), bounds=BOUNDS, progress=lambda f, msg: seen.append(f), refine=refine)
    assert seen[-1] == 1.0 and len(seen) <= 102
    calls = []
    stop_after = 0 if engine == "compiled" else 1 if refine == "auto" else 5
    with pytest.raises(Cancelled):
        trace(ops, bounds=BOUNDS, cancel=lambda: calls.append(1) or len(calls) > stop_after, refine=refine)
    assert len(calls) == stop_after + 1


def test_top_level_trace_accepts_ops():
    import splineviz
    p = splineviz.trace(random_mlp((2, 6, 2), 15), bounds=box(-1, 1, -1, 1))
    assert p.n_regions == p.euler_regions


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000), st.integers(1, 3), st.integers(2, 10), st.sampled_from(["relu", "leaky", "pool"]))
def test_random_nets_are_consistent(seed, depth, width, kind):
    """Any depth, width and nonlinearity: Euler, area cover and brute-force codes agree."""
    rng = np.random.default_rng(seed)
    ops, fan_in = [], 2
    for _ in range(depth):
        ops.append(Affine(rng.normal(size=(width, fan_in)), rng.normal(size=width)))
        ops.append(LeakyReLU(0.2) if kind == "leaky" else ReLU())
        fan_in = width
        if kind == "pool" and width >= 2:
            cut = rng.integers(1, width)
            ops.append(MaxPool((tuple(range(cut)), tuple(range(cut, width)))))
            fan_in = 2
    ops.append(Affine(rng.normal(size=(3, fan_in)), rng.normal(size=3)))
    p = trace(ops, bounds=BOUNDS)
    assert_consistent(p, 36.0, grid(BOUNDS, 150), margin=1e-6)


# Run in a process of its own: glibc hands a long-lived process's large requests heap memory that an earlier
# numpy advice already marked for huge pages, whatever the switch says at the time.
HUGE_PAGES_CHECK = r"""
import json
import numpy as np
from splineviz.partition import graph


def vm_flags(array):
    # the kernel's flags for the mapping that holds the array's data, read a page in: numpy advises from the
    # first page boundary inside the data on, which splits the mapping
    address, span = array.__array_interface__["data"][0] + 8192, None
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            head = line.split()[0]
            if "-" in head and not head.endswith(":"):
                low, high = (int(x, 16) for x in head.split("-"))
                span = low <= address < high
            elif span and line.startswith("VmFlags:"):
                return line.split()[1:]
    return None


shape = (5000, 1000)  # 40 MB: numpy asks for huge pages from 4 MiB on
plain = np.empty(shape)
small = graph.new_table(shape)
large = graph.new_table((graph.HUGE_PAGES_FROM // 8 + 1,))
print(json.dumps({"switch": graph._huge_pages is not None, "plain": vm_flags(plain), "small": vm_flags(small),
                  "large": vm_flags(large), "after": vm_flags(np.empty(shape))}))
"""


def test_small_tables_ask_for_no_huge_pages_and_large_ones_do():
    """A touched byte of a table under huge pages makes 2 MiB resident, spare rows and all; numpy's
    process-wide switch must come back as it was."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    try:
        out = subprocess.run([sys.executable, "-c", HUGE_PAGES_CHECK], check=True, capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent.parent)
    except subprocess.CalledProcessError as error:
        if "/proc/self/smaps" in error.stderr:
            pytest.skip("no /proc/self/smaps (not Linux)")
        raise
    flags = json.loads(out.stdout.strip().splitlines()[-1])
    if not flags["switch"] or flags["plain"] is None or "hg" not in flags["plain"]:
        pytest.skip("numpy does not ask for huge pages here (not Linux, or switched off)")
    assert "hg" not in flags["small"] and "hg" in flags["large"]
    assert "hg" in flags["after"]  # the switch is back on for everyone else

"""What a Partition gives from the graph's own arrays (polygons, cells, classes, codes, frames), checked
against the former way of computing each (angle sort, forward passes at interior points) and brute force;
and the numerical edge cases of the tracer (per-unit tolerances, spurious max-pool cuts, unresolved faces,
the arrangement's safety branches, memory bounds)."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import shapely

from splineviz.frame import Frame, colour_keys
from splineviz.partition import Affine, LeakyReLU, MaxPool, PartitionBudgetError, ReLU, arrangement, box, trace
from splineviz.partition.graph import PlanarGraph
from tests.oracles import angle_sorted_cycles, assert_consistent, grid, point_codes, pre_activations

BOUNDS = (-3.0, 3.0, -3.0, 3.0)


def random_net(seed: int, widths=(2, 12, 12, 3), activation=ReLU, scale: float = 2.0) -> list:
    rng = np.random.default_rng(seed)
    ops = []
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
        ops.append(Affine(rng.normal(size=(fan_out, fan_in)) * scale / np.sqrt(fan_in), rng.normal(size=fan_out)))
        if i < len(widths) - 2:
            ops.append(activation())
    return ops


NETS = [random_net(0), random_net(1, (2, 20, 20, 20, 2)), random_net(2, (2, 10, 10, 1), lambda: LeakyReLU(0.1)),
        random_net(3, (2, 30, 5)), random_net(4, (2, 60, 4))]


@pytest.mark.parametrize("ops", NETS)
def test_polygons_are_the_angle_sorted_corners(ops):
    p = trace(ops, bounds=BOUNDS)
    offsets, xy = p.polygons
    ptr, ids = angle_sorted_cycles(p.vertices, p.edges, p.edge_faces, p.n_regions)
    np.testing.assert_array_equal(offsets, ptr)
    for r in range(p.n_regions):
        corners = xy[offsets[r]: offsets[r + 1]]
        expected = p.vertices[ids[ptr[r]: ptr[r + 1]]]
        start = np.flatnonzero((expected == corners[0]).all(axis=1))[0]
        np.testing.assert_array_equal(np.roll(expected, -start, axis=0), corners)
    assert all(shapely.Polygon(poly).is_valid and shapely.Polygon(poly).exterior.is_ccw for poly in p.regions)


@pytest.mark.parametrize("ops", NETS)
def test_codes_classes_and_cells_agree_with_forward_passes(ops):
    """Recorded codes and classes from vertex outputs equal what a forward pass at interior points gives."""
    p = trace(ops, bounds=BOUNDS)
    inside = p.interior_points
    codes, margins = point_codes(p.ops, inside)
    clear = margins > 1e-9
    np.testing.assert_array_equal(np.hstack([p.codes(l) for l in range(p.n_layers)])[clear], codes[clear].astype(bool))
    np.testing.assert_allclose(p.region_outputs, p.outputs_at(inside), atol=1e-9)
    logits = p.outputs_at(inside)
    top = np.sort(logits, axis=1)
    decided = (top[:, -1] - top[:, -2] > 1e-9) if logits.shape[1] > 1 else np.abs(logits[:, 0]) > 1e-9
    np.testing.assert_array_equal(p.region_classes[decided], p._predict(logits)[decided])

    cells = p.cells
    polys = np.split(cells.xy, cells.offsets[1:-1])
    centres = np.array([c.mean(axis=0) for c in polys])
    np.testing.assert_array_equal(cells.classes, p._predict(p.outputs_at(centres)))  # one class per convex cell
    np.testing.assert_array_equal(cells.regions, p.locate(centres))
    assert np.isclose(sum(shapely.Polygon(c).area for c in polys), 36.0)
    assert np.bincount(cells.regions, minlength=p.n_regions).min() >= 1  # every region has a cell


def test_class_cells_follow_the_decision_boundary_on_a_grid():
    p = trace(NETS[0], bounds=BOUNDS)
    cells = p.cells
    tree = shapely.STRtree(shapely.polygons(shapely.linearrings(
        cells.xy, indices=np.repeat(np.arange(len(cells.offsets) - 1), np.diff(cells.offsets)))))
    points = grid(BOUNDS, 120)
    logits = np.sort(p.outputs_at(points), axis=1)
    clear = points[logits[:, -1] - logits[:, -2] > 1e-6]
    point, cell = tree.query(shapely.points(clear), predicate="intersects")
    np.testing.assert_array_equal(cells.classes[cell], p._predict(p.outputs_at(clear[point])))


def test_codes_of_a_max_pool_layer_are_the_argmax_positions():
    rng = np.random.default_rng(5)
    ops = [Affine(rng.normal(size=(7, 2)), rng.normal(size=7)), ReLU(), MaxPool(((0, 1, 2), (3, 4), (5, 6))),
           Affine(rng.normal(size=(2, 3)), rng.normal(size=2))]
    p = trace(ops, bounds=BOUNDS)
    assert_consistent(p, 36.0, grid(BOUNDS, 200))
    pooled_in = pre_activations(p.ops, p.interior_points)[1]
    np.testing.assert_array_equal(p.codes(1), ops[2].code(pooled_in))
    assert (pooled_in[:, :3] == 0).all(axis=1).any()  # a region where a whole group ties at 0: position 0


@pytest.mark.parametrize("ops", [NETS[1], NETS[4]])
def test_code_sums_are_the_codes_times_the_weights(ops):
    p = trace(ops, bounds=BOUNDS)
    rng = np.random.default_rng(0)
    for layer, width in enumerate(p.layer_widths):
        weights = rng.integers(-5, 11, size=width)
        np.testing.assert_array_equal(p.code_sums(layer, weights), p.codes(layer).astype(np.int64) @ weights)


def test_colour_keys_differ_across_every_boundary():
    p = trace(NETS[1], bounds=BOUNDS)
    keys = colour_keys(p)
    inner = p.edge_layer >= 0
    for layer, key in enumerate(keys):
        made = inner & (p.edge_layer <= layer)
        a, b = p.edge_faces[made].T
        assert (key[a] != key[b]).all()


def test_frame_carries_the_partition_and_survives_json():
    p = trace(NETS[0], bounds=BOUNDS)
    frame = Frame.from_partition(p, BOUNDS, epoch=7, loss=0.25)
    again = Frame.from_json(json.loads(json.dumps(frame.to_json())))
    for name in ("cell_x", "cell_y", "cell_offsets", "cell_class", "cell_region", "decision"):
        np.testing.assert_array_equal(getattr(again, name), getattr(frame, name))
    assert again.stats == {"epoch": 7, "loss": 0.25} and again.layer_regions == p.layer_region_counts
    assert [k.dtype.name for k in again.keys] == ["uint8"] * p.n_layers
    for layer in range(p.n_layers):
        np.testing.assert_allclose(again.segments[layer].reshape(-1, 2, 2), p.segments(layer), atol=1e-6)
        np.testing.assert_array_equal(again.segment_units[layer], p.segment_units(layer))
    np.testing.assert_array_equal(frame.cell_class, p.cells.classes)
    assert frame.to_json()["cells"]["x"]["dtype"] == "f4" and frame.to_json()["cells"]["class"]["dtype"] == "i2"
    with pytest.raises(ValueError, match="schema"):
        Frame.from_json({**frame.to_json(), "schema": 99})


def test_segments_name_the_unit_whose_line_they_lie_on():
    ops = NETS[3]
    p = trace(ops, bounds=BOUNDS)
    frame = Frame.from_partition(p, BOUNDS)
    seg, unit = frame.segments[0].astype(np.float64), frame.segment_units[0]
    mids = 0.5 * (seg[:, :2] + seg[:, 2:])
    w, b = ops[0].weight, ops[0].bias
    assert np.abs(np.einsum("kd,kd->k", mids, w[unit]) + b[unit]).max() < 1e-5 * np.abs(w).max()


def test_locate_breaks_ties_by_the_lowest_region_id():
    # four quadrants of [-1, 1]^2; the origin touches all four, an axis point two
    ops = [Affine(np.eye(2), np.zeros(2)), ReLU(), Affine(np.ones((1, 2)), np.zeros(1))]
    p = trace(ops, bounds=(-1, 1, -1, 1))
    inside = p.locate(np.array([[0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5], [0.5, -0.5]]))
    assert sorted(inside) == [0, 1, 2, 3]
    assert p.locate(np.array([[0.0, 0.0]]))[0] == 0
    assert p.locate(np.array([[0.0, 0.5]]))[0] == min(inside[0], inside[1])
    assert p.locate(np.array([[0.5, 0.0]]))[0] == min(inside[0], inside[3])
    assert p.locate(np.array([[1.0, 1.0], [1.0 + 1e-9, 0.0]])).tolist() == [inside[0], -1]


def test_geojson_region_class_is_the_class_at_its_interior_point():
    p = trace(NETS[0], bounds=BOUNDS)
    features = [f for f in p.to_geojson()["features"] if f["properties"]["kind"] == "region"]
    classes = np.array([f["properties"]["class"] for f in features])
    centres = np.array([np.mean(f["geometry"]["coordinates"][0][:-1], axis=0) for f in features])  # corner means
    logits = np.sort(p.outputs_at(centres), axis=1)
    clear = logits[:, -1] - logits[:, -2] > 1e-9
    np.testing.assert_array_equal(classes[clear], p._predict(p.outputs_at(centres))[clear])
    np.testing.assert_array_equal(classes, p.region_classes)


def test_units_on_scales_1e_9_and_1e6_in_one_layer_keep_their_own_lines():
    """Scaling a ReLU unit by c > 0 and its outgoing weights by 1/c leaves the function (and partition) alone.

    A single tolerance for the whole layer would count the 1e-9 unit as zero everywhere and lose its line.
    """
    base = random_net(6, (2, 8, 8, 2), scale=3.0)
    scale = np.array([1e-9, 1e6, 1, 1, 1e-9, 1, 1e6, 1])
    w0, w1 = base[0], base[2]
    scaled = [Affine(w0.weight * scale[:, None], w0.bias * scale), ReLU(), Affine(w1.weight / scale, w1.bias), *base[3:]]
    p, q = trace(base, bounds=BOUNDS), trace(scaled, bounds=BOUNDS)
    assert p.n_regions == q.n_regions and p.layer_region_counts == q.layer_region_counts
    np.testing.assert_allclose(np.sort(q.areas), np.sort(p.areas), atol=1e-9)
    samples = grid(BOUNDS, 200)
    codes, margins = point_codes(base, samples)  # brute force on the unscaled net: the same signs
    clear = margins > 1e-7
    rid = q.locate(samples[clear])
    np.testing.assert_array_equal(np.hstack([q.codes(l) for l in range(q.n_layers)])[rid], codes[clear].astype(bool))
    for refine in ("unit", 3):
        assert trace(scaled, bounds=BOUNDS, refine=refine).n_regions == p.n_regions


@pytest.mark.parametrize("winner_offset, pool_regions", [(5.0, 3), (0.3, None)])
def test_a_three_way_max_pool_drops_the_cuts_where_its_winner_does_not_change(winner_offset, pool_regions):
    """relu(x + .3) against relu(-x + .3) ties at x = 0; where y + offset wins there, that cut is spurious."""
    ops = [Affine(np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]]), np.array([0.3, 0.3, winner_offset])), ReLU(),
           MaxPool(((0, 1, 2),)), Affine(np.ones((1, 1)), np.array([-1.0]))]
    p = trace(ops, bounds=(-1, 1, -1, 1))
    assert_consistent(p, 4.0, grid((-1, 1, -1, 1), 200))  # one code per region: no spurious edge survives
    if pool_regions is not None:
        assert p.layer_region_counts == [3, 3] and len(p.segments(1)) == 0
    seg = p.segments(1)
    values = pre_activations(p.ops, seg.mean(axis=1))[1]  # the pool's inputs along its own edges: a tie
    top = np.sort(values, axis=1)
    assert np.abs(top[:, -1] - top[:, -2]).max(initial=0) < 1e-9


@pytest.mark.parametrize("level, n", [([1.0, -1.0, 1.0, -1.0], 8),  # four sign changes: four zero points
                                      ([0.0, 1.0, -1.0, 1.0], 6)])  # a zero corner and two sign changes: three
def test_a_level_that_is_not_affine_leaves_its_face_unresolved_and_the_graph_valid(level, n, engine):
    """Rounding can make a face see more than two zero points; the split then leaves the face whole and counts it
    (with the compiled kernels and with numpy alone)."""
    corners = box(-1, 1, -1, 1)
    graph = PlanarGraph(corners, np.zeros((4, 1)))
    graph.check()
    assert graph.split(np.array(level), 1e-12, layer=0, unit=0) == 0
    assert graph.n_unresolved == 1 and graph.n_faces == 1 and graph.n == n
    graph.check()


def test_every_safety_branch_of_the_arrangement_is_reached_and_leaves_the_graph_alone(monkeypatch):
    """Each way the one-pass refinement can refuse a layer, on geometry made for it."""
    refused = []
    for name in ("_pair_cuts", "_cross_chords", "_add_vertices"):
        real = getattr(arrangement, name)
        monkeypatch.setattr(arrangement, name, lambda *a, _real=real, _name=name: _spy(_real(*a), _name, refused))
    cases = {
        "_cross_chords": ([[1.0, 0.5], [1.0, -0.5], [0.3, 1.0]], [0.45, -1.05, 0.1]),  # two lines meet on an edge
        "_add_vertices": ([[1.0, 0.2], [0.9, -0.4], [-0.2, 1.0]], [0.0, 0.0, 0.0]),   # three lines through a point
    }
    for expect, (w, b) in cases.items():
        graph = PlanarGraph(box(-2, 2, -1.5, 2.5), box(-2, 2, -1.5, 2.5) @ np.array(w).T + np.array(b))
        before = (graph.n, graph.m, graph.n_faces, graph.edges[:, : graph.m].copy())
        tol = 1e-10 * np.abs(graph.values).max(axis=0)
        assert arrangement.refine_by_layer(graph, tol, layer=0) is None
        assert refused[-1] == expect
        assert (graph.n, graph.m, graph.n_faces) == before[:3] and np.array_equal(graph.edges[:, : graph.m], before[3])
    # a face crossed at one edge only cannot come from an affine level: _pair_cuts refuses it
    cuts = arrangement._Cuts(edge=np.array([0]), unit=np.array([0]), t=np.array([0.5]), a=np.array([0]),
                             b=np.array([1]), first=np.array([True]))
    graph = PlanarGraph(box(-1, 1, -1, 1), np.ones((4, 1)))
    assert arrangement._pair_cuts(graph, cuts, 1) is None


def _spy(result, name, refused):
    if result is None or result is False:
        refused.append(name)
    return result


def test_areas_of_regions_a_billionth_wide_far_from_the_origin():
    """2-512-512-2 has such triangles (three lines nearly concurrent); the shoelace about the origin gave them 0."""
    from splineviz.partition.geometry import polygon_areas
    corners = np.array([[2.9191368911988933, 0.9939703825106018], [2.9191368894886334, 0.9939703821166239],
                        [2.9191368891399008, 0.9939703816279524]])
    from fractions import Fraction
    exact = Fraction(0)
    pts = [[Fraction(v) for v in p] for p in corners]
    for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1]):
        exact += (x0 * y1 - x1 * y0) / 2
    area = polygon_areas(corners, np.array([0, 3]), np.arange(3))[0]
    assert exact > 0 and area == pytest.approx(float(exact), rel=1e-6)


def test_the_graph_is_valid_after_every_layer():
    ops = random_net(7, (2, 16, 16, 16, 3))
    for depth in range(1, 4):
        p = trace(ops[: 2 * depth] + [Affine(np.ones((2, 16)), np.zeros(2))], bounds=BOUNDS)
        p._graph.check()
        p._overlay.check()
        assert p.n_regions == trace(ops, bounds=BOUNDS).layer_region_counts[depth - 1]


def test_a_huge_layer_is_refused_before_its_tables_break_max_bytes():
    """mlp(2, (16, 20000), 2) with max_bytes = 512 MiB: a clear error, and the peak stays near the cap."""
    script = textwrap.dedent("""
        import json, numpy as np
        from splineviz.partition import Affine, ReLU, PartitionBudgetError, trace
        rng = np.random.default_rng(0)
        def layer(i, o):
            b = 1 / np.sqrt(i)
            return Affine(rng.uniform(-b, b, (o, i)), rng.uniform(-b, b, o))
        ops = [layer(2, 16), ReLU(), layer(16, 20000), ReLU(), layer(20000, 2)]
        trace([layer(2, 3), ReLU(), layer(3, 2)])  # numba's compiler (or its cache) is not what is measured
        def kib(key):
            return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith(key + ':'))
        open('/proc/self/clear_refs', 'w').write('5')
        base = kib('VmRSS')
        try:
            trace(ops, max_bytes=512 * 2**20)
            message = None
        except PartitionBudgetError as error:
            message = str(error)
        print(json.dumps({'message': message, 'peak_mib': (kib('VmHWM') - base) / 1024}))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["message"] is not None and "512 MiB" in result["message"] and "max_bytes" in result["message"]
    assert result["peak_mib"] <= 576, result


def test_an_affine_network_is_one_region_cut_by_its_decision_line():
    p = trace([Affine(np.array([[1.0, -1.0], [0.0, 0.0]]), np.array([0.0, 0.5]))], bounds=(-1, 1, -1, 1))
    assert p.n_regions == 1 and p.n_layers == 0
    np.testing.assert_allclose(p.region_outputs, [[0.0, 0.5]], atol=1e-12)
    seg = p.decision_boundary  # class 1 wins where x - y < 0.5
    assert len(seg) == 1 and np.allclose(seg[0, :, 0] - seg[0, :, 1], 0.5)
    assert sorted(p.cells.classes.tolist()) == [0, 1]


def test_refine_is_checked():
    with pytest.raises(ValueError, match="refine"):
        trace(NETS[0], refine="fast")
    with pytest.deprecated_call():
        assert trace(NETS[0], domain=BOUNDS).n_regions == trace(NETS[0], bounds=BOUNDS).n_regions

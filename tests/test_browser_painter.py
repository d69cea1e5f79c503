"""One Frame drawn both ways: by figures.py (plotly traces, in Python) and by the browser's WebGL painter
(assets/splineviz-2-gl.js), whose vector SVG and pixels are read back from the page.

The two must agree cell by cell: the same class-cell polygons per class (compared vertex by vertex in the
painter's pixel coordinates), the same boundary segments per layer, the same decision segments, and the
painted pixel at each large cell's centre is that class's fill blended over the background as
``STYLE`` says. Also: the app's SVG and PNG exports of the Playground are vector paths (no images) and
titled with dataset, net, epoch and region count, with a legend.
"""
from __future__ import annotations

import base64
import io
import json
import re
import xml.etree.ElementTree as ET
from collections import Counter

import numpy as np
import pytest

from harness import HAS_CHROMIUM, severe_console_errors, shot, wait_for
from harness import element_text as text
from splineviz import figures as F
from splineviz.frame import Frame
from splineviz.partition import Affine, ReLU, trace

pytestmark = pytest.mark.browser
if not HAS_CHROMIUM:
    pytest.skip("needs Chromium and chromedriver", allow_module_level=True)

BOUNDS = (-2.0, 2.0, -2.0, 2.0)
SCANNED = {**F.STYLE, "dense_segments": 0, "dense_cells": 0}  # software GL: every cell and thin line scanned
SIZE = 600  # CSS px of the test graph
SVG = "{http://www.w3.org/2000/svg}"


def three_class_frame() -> Frame:
    """A seeded 2-8-8-3 ReLU net: 127 regions, 174 class cells, all three classes in view, two layers of lines."""
    rng = np.random.default_rng(17)
    ops = [Affine(rng.normal(size=(8, 2)), rng.normal(size=8) * 0.5), ReLU(),
           Affine(rng.normal(size=(8, 8)) / 2, rng.normal(size=8) * 0.5), ReLU(),
           Affine(rng.normal(size=(3, 8)), rng.normal(size=3) * 0.3)]
    return Frame.from_partition(trace(ops, bounds=BOUNDS), BOUNDS, epoch=0)


def pieces(x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """The NaN-separated runs of a trace's x/y as (k, 2) arrays."""
    xy = np.c_[x, y]
    runs = [run[~np.isnan(run[:, 0])] for run in np.split(xy, np.flatnonzero(np.isnan(x)))]
    return [run for run in runs if len(run)]


def subpaths(d: str) -> list[np.ndarray]:
    """An SVG path's "M x y L x y ... Z" pieces as (k, 2) arrays of points."""
    return [np.array(re.findall(r"(-?[\d.]+(?:e-?\d+)?) (-?[\d.]+(?:e-?\d+)?)", part), dtype=float)
            for part in re.split(r"(?=M)", d) if part.strip()]


def canonical(polygon: np.ndarray) -> tuple:
    """A polygon as a hashable key independent of its starting corner and closing repeat (0.05 px grid)."""
    pts = polygon[:-1] if len(polygon) > 1 and np.allclose(polygon[0], polygon[-1]) else polygon
    q = [tuple(np.round(p / 0.05).astype(int)) for p in pts]
    start = q.index(min(q))
    return tuple(q[start:] + q[:start])


def to_pixels(xy: np.ndarray, box: dict) -> np.ndarray:
    """Data coordinates -> the painter's CSS pixels of its plot area (as splineviz-2-gl.js svg does)."""
    x0, x1, y0, y1 = box["range"]
    return np.c_[(xy[:, 0] - x0) / (x1 - x0) * box["w"], (y1 - xy[:, 1]) / (y1 - y0) * box["h"]]


def close_enough(a: list[tuple], b: list[tuple]) -> bool:
    """Two multisets of rounded polygons equal up to one grid step per coordinate (rounding at 0.01 px)."""
    if len(a) != len(b):
        return False
    unmatched = Counter(b)
    for key in a:
        if unmatched[key]:
            unmatched[key] -= 1
            continue
        near = next((k for k in unmatched if unmatched[k] and len(k) == len(key)
                     and all(abs(p - q) <= 1 for u, v in zip(k, key) for p, q in zip(u, v))), None)
        if near is None:
            return False
        unmatched[near] -= 1
    return True


def rgb(hexa: str) -> np.ndarray:
    return np.array([int(hexa[i:i + 2], 16) for i in (1, 3, 5)], dtype=float)


def blended(hexa: str) -> np.ndarray:
    """A fill colour as drawn: STYLE's fill_opacity over its background."""
    a = F.STYLE["fill_opacity"]
    return a * rgb(hexa) + (1 - a) * rgb(F.STYLE["background"])


def png_pixels(out: dict) -> np.ndarray:
    """The painter's PNG (base64 in out["png"]) as an (h, w, 3) float array."""
    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(out["png"]))).convert("RGB"), dtype=float)


def plain_layout(bounds) -> dict:
    """figures.partition_layout as JSON (its template is a plotly object), as the app sends it."""
    import plotly.graph_objects as go

    return json.loads(go.Figure(layout=F.partition_layout(bounds)).to_json())["layout"]


PAINT_BOTH = """
const [frame, layout, style, view, done] = arguments;
const sv = window.splineviz;
(async () => {
  let host = document.getElementById('bt-graph');
  if (host) host.remove();
  host = document.createElement('div');
  host.id = 'bt-graph';
  host.style.cssText = 'position:fixed;left:0;top:0;width:%(size)dpx;height:%(size)dpx;z-index:9999;background:#fff';
  const inner = document.createElement('div');
  host.appendChild(inner);
  document.body.appendChild(host);
  await Plotly.newPlot(inner, [], sv.painter.layout(Object.assign({}, layout, {width: %(size)d, height: %(size)d})));
  const p = sv.painter.of('bt-graph', 0, style);
  const info = await p.show(frame, view);
  const b = p.box();
  const svg = (await p.ask('svg')).svg;
  const png = await p.ask('png', {scale: 1});
  const bytes = new Uint8Array(await png.blob.arrayBuffer());
  let bin = '';
  for (let i = 0; i < bytes.length; i += 8192) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192));
  done({info: {cells: info.cells, segments: info.segments}, scanned: info.scanned, box: {range: b.range, w: b.w, h: b.h},
        svg: svg, png: btoa(bin)});
})().catch((e) => done({error: String(e && e.stack || e)}));
""" % {"size": SIZE}


def paint(driver, app_url: str, style: dict, view: dict | None = None) -> tuple[Frame, dict]:
    """The three-class frame painted on a fresh plotly graph on the app's page; what the page reports back."""
    frame = three_class_frame()
    view = view or {"shade": "class", "decision": True}
    driver.get(app_url + "/mnist")
    wait_for(lambda: driver.execute_script("return !!(window.Plotly && window.splineviz && window.splineviz.painter)"),
             60, message="the app's scripts")
    driver.set_script_timeout(120)
    out = driver.execute_async_script(PAINT_BOTH, frame.to_json(), plain_layout(frame.bounds), style, view)
    assert "error" not in out, out.get("error")
    return frame, out


@pytest.fixture
def painted(driver, app_url: str) -> tuple[Frame, dict]:
    return paint(driver, app_url, F.STYLE)


def test_python_and_browser_draw_the_same_cells_lines_and_decision(driver, painted) -> None:
    frame, out = painted
    assert out["info"] == {"cells": frame.n_cells, "segments": sum(len(s) for s in frame.segments)}
    root = ET.fromstring(f'<svg xmlns="http://www.w3.org/2000/svg">{out["svg"]}</svg>')
    drawn = {path.get("class"): path.get("d") for path in root.iter(SVG + "path")}

    python = {t["name"]: t for t in F.partition_traces(frame, shade="class", decision=True)}
    classes = sorted(int(k.split()[1]) for k in python if k.startswith("class "))
    assert len(classes) == 3  # the net's three classes all have cells in view
    assert sorted(k for k in drawn if k.startswith("fill-")) == [f"fill-class-{c}" for c in classes]
    for c in classes:
        mine = [canonical(to_pixels(p, out["box"])) for p in pieces(python[f"class {c}"]["x"], python[f"class {c}"]["y"])]
        theirs = [canonical(p) for p in subpaths(drawn[f"fill-class-{c}"])]
        assert len(mine) == int((frame.cell_class == c).sum())
        assert close_enough(sorted(mine), sorted(theirs)), f"class {c} cells differ"

    for layer in range(frame.n_layers):
        mine = pieces(python[f"layer {layer + 1}"]["x"], python[f"layer {layer + 1}"]["y"])
        theirs = subpaths(drawn[f"layer-{layer + 1}"])
        assert len(mine) == len(theirs) == len(frame.segments[layer])
        np.testing.assert_allclose(np.concatenate([to_pixels(p, out["box"]) for p in mine]),
                                   np.concatenate(theirs), atol=0.011)
    mine, theirs = pieces(python["decision"]["x"], python["decision"]["y"]), subpaths(drawn["decision"])
    assert len(mine) == len(theirs) == len(frame.decision) > 0
    np.testing.assert_allclose(np.concatenate([to_pixels(p, out["box"]) for p in mine]), np.concatenate(theirs),
                               atol=0.011)
    assert severe_console_errors(driver) == []


def test_painted_pixels_are_the_class_fills(painted) -> None:
    """At the centre of every large cell (away from lines), the PNG shows its class colour as STYLE blends it."""
    from shapely.geometry import Polygon

    frame, out = painted
    image = png_pixels(out)
    box = out["box"]
    assert image.shape[:2] == (round(box["h"]), round(box["w"]))
    checked = 0
    off = frame.cell_offsets
    for cell in range(frame.n_cells):
        xy = to_pixels(np.c_[frame.cell_x[off[cell]:off[cell + 1]], frame.cell_y[off[cell]:off[cell + 1]]], box)
        poly = Polygon(xy)
        core = poly.buffer(-6)  # 6 px clear of every line
        if core.is_empty or core.area < 4:
            continue
        px, py = core.representative_point().coords[0]
        expected = blended(F.STYLE["class_fill"][int(frame.cell_class[cell])])
        assert np.abs(image[int(py), int(px)] - expected).max() <= 3, (cell, image[int(py), int(px)], expected)
        checked += 1
    assert checked >= 20


def test_painted_pixels_show_every_segment(driver, app_url: str) -> None:
    """Within a pixel of the middle of every segment 8 px or longer (each layer's and the decision boundary's), the
    PNG shows a line colour rather than a fill: the engine pulls each segment from its texture to where it belongs.
    Both ways of drawing segments: antialiased quads, and the 1-pixel lines that software GL (as here) uses when
    the layers shown hold more than style.dense_segments segments (0 here), scanned by the engine into the image
    of the cells it scanned too (dense_cells 0)."""
    fills = np.array([blended(h) for h in F.STYLE["class_fill"]])
    lines = np.array([rgb(h) for h in F.STYLE["layer_line"] + [F.STYLE["decision_line"]]])
    images = []
    for style in (F.STYLE, SCANNED):
        frame, out = paint(driver, app_url, style)
        assert sum(len(s) for s in frame.segments) < F.STYLE["dense_segments"]  # the default draws quads
        assert frame.n_cells < F.STYLE["dense_cells"] and out["scanned"] == (style is SCANNED)
        image = png_pixels(out)
        images.append(image)
        checked = 0
        for segments in frame.segments + [frame.decision]:
            ends = to_pixels(segments.reshape(-1, 2).astype(float), out["box"]).reshape(-1, 4)
            for x0, y0, x1, y1 in ends[np.hypot(ends[:, 2] - ends[:, 0], ends[:, 3] - ends[:, 1]) >= 8]:
                x, y = int((x0 + x1) / 2), int((y0 + y1) / 2)
                near = image[y - 1:y + 2, x - 1:x + 2].reshape(-1, 3)
                to_line = np.abs(near[:, None] - lines[None]).sum(axis=2).min()
                to_fill = np.abs(near[:, None] - fills[None]).sum(axis=2).min(axis=1).max()
                assert to_line < to_fill, ((x0, y0, x1, y1), near)
                checked += 1
        assert checked >= 20
    assert np.abs(images[0] - images[1]).max() > 60  # the thin lines were drawn: layers look different
    assert severe_console_errors(driver) == []


def only_cells(frame: Frame) -> dict:
    """A view of the cells alone: the first layer shown with all its units faded to nothing, no decision boundary."""
    return {"shade": "class", "decision": False, "layer": 0,
            "fade": {"layer": 0, "units": list(range(int(frame.segment_units[0].max()) + 1)), "alpha": 0}}


def test_scanned_cells_are_the_cells_gl_draws(driver, app_url: str) -> None:
    """Under software GL (as here) a frame of more than style.dense_cells cells has its cells filled by scanlines in
    the engine and drawn as one image. Every pixel whose centre lies clear of the cells' edges shows the fill of
    the cell that holds its centre (found by shapely), and the image is GL's triangles pixel for pixel but for
    pixels whose centre lies on an edge, within GL's sub-pixel precision."""
    import shapely

    frame = three_class_frame()
    drawn = {}
    for name, dense_cells in (("gl", None), ("scanned", 0)):
        _, out = paint(driver, app_url, {**F.STYLE, "dense_cells": dense_cells}, only_cells(frame))
        assert out["scanned"] == (name == "scanned")
        drawn[name] = png_pixels(out)
    image = drawn["scanned"]
    off = frame.cell_offsets
    cells = np.array([shapely.Polygon(to_pixels(np.c_[frame.cell_x[a:b], frame.cell_y[a:b]], out["box"]))
                      for a, b in zip(off[:-1], off[1:])])
    rows, cols = np.indices(image.shape[:2]).reshape(2, -1)
    centres = shapely.points(cols + 0.5, rows + 0.5)
    pixel, cell = shapely.STRtree(cells).query(centres, predicate="intersects")
    clear = shapely.distance(centres[pixel], shapely.boundary(cells[cell])) > 0.01
    pixel, cell = pixel[clear], cell[clear]
    assert len(pixel) > 0.95 * image.shape[0] * image.shape[1]
    expected = np.array([blended(h) for h in F.STYLE["class_fill"]])[frame.cell_class[cell]]
    wrong = np.abs(image[rows[pixel], cols[pixel]] - expected).max(axis=1) > 1
    assert not wrong.any(), f"{wrong.sum()} pixels show another fill than the cell that holds them"
    differ = (np.abs(drawn["gl"] - image).max(axis=2) > 2).mean()
    assert differ < 0.001, f"{differ:.2%} of the pixels differ from GL's"
    assert severe_console_errors(driver) == []


def test_scanned_lines_of_faded_units_blend_over_the_cells(driver, app_url: str) -> None:
    """Scanned 1-pixel lines of faded units (the pruning pages' fade) blend at their alpha over the fill below, and
    only those units' lines change: painted with fade alpha 1 and 0.15, the pixels that differ lie on the faded
    unit's segments, and each is 0.15 of its layer's colour over a class fill (or over a line drawn before it)."""
    from shapely import MultiLineString, points

    frame = three_class_frame()
    layer, unit = 1, int(np.bincount(frame.segment_units[1]).argmax())  # the unit with the most segments
    drawn = {}
    for alpha in (1, 0.15):
        view = {"shade": "class", "decision": False, "layer": layer,
                "fade": {"layer": layer, "units": [unit], "alpha": alpha}}
        _, out = paint(driver, app_url, SCANNED, view)
        drawn[alpha] = png_pixels(out)
    changed = np.argwhere(np.abs(drawn[1] - drawn[0.15]).max(axis=2) > 2)
    assert len(changed) >= 20
    ends = to_pixels(frame.segments[layer][frame.segment_units[layer] == unit].reshape(-1, 2).astype(float),
                     out["box"]).reshape(-1, 2, 2)
    distance = MultiLineString(list(ends)).distance(points(changed[:, ::-1] + 0.5))
    assert distance.max() <= 1.5, "pixels off the faded unit's segments changed"
    line = rgb(F.STYLE["layer_line"][layer])
    under = (drawn[0.15][tuple(changed.T)] - 0.15 * line) / 0.85  # what the faded line was blended over
    below = np.array([blended(h) for h in F.STYLE["class_fill"]] +
                     [rgb(h) for h in F.STYLE["layer_line"][: layer + 1]])
    misfit = np.abs(under[:, None] - below[None]).max(axis=2).min(axis=1)
    assert misfit.max() <= 4, f"{(misfit > 4).sum()} of {len(misfit)} pixels are no blend: {under[misfit > 4][:5]}"
    assert severe_console_errors(driver) == []


def test_playground_exports_are_titled_vector_svg_and_png(driver, app_url: str, tmp_path) -> None:
    from PIL import Image

    from selenium.webdriver.common.by import By

    driver.get(app_url + "/?dataset=moons&epochs=10")
    wait_for(lambda: text(driver, "pg-stat-epoch") == "0", 60, message="the first partition")
    driver.find_element(By.ID, "pg-play").click()  # trained a little, so that the decision boundary is in view
    wait_for(lambda: text(driver, "pg-stat-epoch") == "10" and "Train" in text(driver, "pg-play") and driver.execute_script(
        "const ps = window.splineviz.painter.all('pg-graph');"
        "return ps.length && ps.every(p => p.painted && !p.busy && !p.pending) && window.splineviz.playground.describe().title"),
        120, message="ten epochs trained and painted")
    regions = int(text(driver, "pg-stat-regions").replace(",", ""))
    driver.set_script_timeout(120)
    out = driver.execute_async_script("""
        const done = arguments[arguments.length - 1], sv = window.splineviz;
        (async () => {
          const opts = sv.playground.describe();
          const svg = await (await sv.exporter.graph('pg-graph', 'svg', opts)).text();
          const bytes = new Uint8Array(await (await sv.exporter.graph('pg-graph', 'png', opts)).arrayBuffer());
          let bin = '';
          for (let i = 0; i < bytes.length; i += 8192) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192));
          done({svg: svg, png: btoa(bin), title: opts.title});
        })().catch((e) => done({error: String(e && e.stack || e)}));""")
    assert "error" not in out, out.get("error")
    (tmp_path / "pg.svg").write_text(out["svg"])
    root = ET.fromstring(out["svg"])
    assert list(root.iter(SVG + "image")) == []  # vector: no embedded pictures
    classes = [p.get("class") or "" for p in root.iter(SVG + "path")]
    assert any(c.startswith("fill-class-") for c in classes) and "layer-1" in classes and "decision" in classes
    texts = ["".join(t.itertext()) for t in root.iter(SVG + "text")]
    title = texts[0]
    assert title == out["title"]
    # dataset, network, epoch and region count, e.g. "Two moons · 2-16-16-16-2 ReLU · epoch 10 · 712 regions"
    assert title.startswith("Two moons · 2-16-16-16-2 ReLU · epoch 10 · ")
    assert f"{regions} regions" in title.replace(",", "")
    assert {"class 0", "class 1", "layer 1", "decision boundary"} <= set(texts)  # the legend

    png_path = tmp_path / "pg.png"
    png_path.write_bytes(base64.b64decode(out["png"]))
    shot_dir = shot(driver, "playground-export-page").parent
    (shot_dir / "playground-export.png").write_bytes(png_path.read_bytes())
    image = np.asarray(Image.open(png_path).convert("RGB"), dtype=int)
    width = float(root.get("width"))
    assert image.shape[1] == round(2 * width)  # drawn at twice the size
    band = image[: 2 * 34]  # the title's band: dark text on white
    assert (np.abs(band - [0x1F, 0x2A, 0x3D]).sum(axis=2) < 60).sum() > 200
    red = np.abs(image - [0xD6, 0x27, 0x28]).sum(axis=2) < 60  # the decision boundary drawn in the plot area
    assert red[2 * 34:].sum() > 100

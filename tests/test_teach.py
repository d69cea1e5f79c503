"""The teaching parts without a browser: presets, lessons, the MNIST pickers' rules, the slice's marks and shading,
experiment outputs for the page (issue 12 items 5-7). The browser side is in test_browser_teach.py."""
from __future__ import annotations

import base64
import csv
import io
from urllib.parse import parse_qsl, unquote, urlsplit

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from splineviz.experiments._common import Context
from splineviz.figures import plane_marks
from splineviz.frame import Frame
from splineviz.web.codec import encode_blob
from splineviz.web.jobs import mnist as mn_jobs
from splineviz.web.lessons import GROUPS, LESSONS, PRESETS, Preset, lesson_panel
from splineviz.web.pages import experiments as ex_page
from splineviz.web.params import URL_PARAMS, Mnist
from splineviz.web.shell import PAGES, RUN_BUTTONS, parse_search
from splineviz.web.state import build


# -- presets and lessons ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(PRESETS))
def test_a_preset_link_reads_back_as_its_values(name: str) -> None:
    preset = PRESETS[name]
    parts = urlsplit(preset.url)
    assert parse_search(parts.query) == {**preset.values, "run": "1"}
    assert parts.path in {page.PATH for page in PAGES} and parts.path in RUN_BUTTONS


def test_a_preset_with_a_value_no_control_offers_is_refused() -> None:
    with pytest.raises(ValueError, match="width=17"):
        Preset("bad", "bad", "", "/playground", {"width": 17}, "")
    with pytest.raises(ValueError, match="bogus"):
        Preset("bad", "bad", "", "/playground", {"bogus": 1}, "")


def test_the_paper_presets_use_the_papers_settings() -> None:
    x = PRESETS["xshape"].values
    # 2-20-2 ReLU, lr 0.01, 400 epochs (DESIGN.md: the authors' code), node pruning at the 80 % the paper discusses
    assert (x["dataset"], x["layers"], x["width"], x["lr"], x["epochs"]) == ("xshape", 1, 20, 0.01, 400)
    assert (x["method"], x["sparsity"]) == ("node", 80)
    labels = mn_jobs.mnist_data().y_test
    m = PRESETS["mnist69"].values
    assert (labels[m["a"]], labels[m["b"]]) == (6, 9) and m["arch"] == "paper_cnn"
    assert 6 not in labels[: m["a"]] and 9 not in labels[: m["b"]]
    assert PRESETS["earlybird"].values["eb_threshold"] == 0.16
    deep, wide = PRESETS["deep"].values, PRESETS["wide"].values  # the same 32 hidden units
    assert deep["layers"] * deep["width"] == wide["layers"] * wide["width"] == 32


def test_every_page_but_the_gallery_has_a_lesson_and_every_preset_is_in_the_gallery() -> None:
    assert {page.PATH for page in PAGES} - set(LESSONS) == {"/lessons"}
    assert {p.name for g in GROUPS for p in g.presets} == set(PRESETS)
    for path in LESSONS:
        panel = lesson_panel(path)
        assert panel.children[0].children == "What am I seeing?"
        links = [c.href for p in panel.children[1].children for c in getattr(p, "children", []) or []
                 if getattr(c, "href", None)]
        assert links == [p.url for p in LESSONS[path].presets]
    assert lesson_panel("/nowhere") is None


def test_run_key_is_in_the_url_table() -> None:
    assert URL_PARAMS["run"].clean("1") == "1" and URL_PARAMS["run"].clean("yes") == ""


# -- MNIST pickers -----------------------------------------------------------------------------------------------
def test_a_digit_picks_its_first_image_and_an_index_its_digit() -> None:
    labels = mn_jobs.mnist_data().y_test
    for digit in range(10):
        first = mn_jobs.first_of(digit)
        assert labels[first] == digit and digit not in labels[:first]
        assert mn_jobs.label_of(first) == digit
    assert (mn_jobs.label_of(Mnist.INDEX_A.default), mn_jobs.label_of(Mnist.INDEX_B.default)) == (6, 9)
    with pytest.raises(ValueError, match="digits go from 0 to 9"):
        mn_jobs.first_of(10)
    with pytest.raises(ValueError, match="no test image 1000"):
        mn_jobs.label_of(1000)


def test_the_slice_shades_the_winner_of_the_two_images_classes() -> None:
    """The painted class of a cell is the class of A's and B's that scores higher at the cell's centre, by a forward
    pass (an oracle independent of the tracer), and the hover readout says the same."""
    torch.manual_seed(1)
    model = build(mn_jobs.ARCHS["mlp"])
    blob = encode_blob(model.state_dict())
    a, b = Mnist.INDEX_A.default, Mnist.INDEX_B.default
    frame = Frame.from_json(mn_jobs.mnist_slice("mlp", blob, a, b)["frame"])
    offsets = frame.cell_offsets
    areas, centres = [], []
    for i in range(len(frame.cell_class)):
        x, y = frame.cell_x[offsets[i]:offsets[i + 1]], frame.cell_y[offsets[i]:offsets[i + 1]]
        areas.append(0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))
        centres.append((x.mean(), y.mean()))
    big = np.argsort(areas)[-40:]  # cells large enough that their centre is well inside
    for i in big:
        point = mn_jobs.mnist_point("mlp", blob, a, b, *centres[i])
        assert point["pair"][0] == frame.cell_class[i]
    assert {int(c) for c in frame.cell_class} <= {6, 9}


# -- the slice's A and B marks ---------------------------------------------------------------------------------
def test_marks_ring_the_points_inside_and_name_those_outside() -> None:
    points = {"A: 6": (1.0, 0.0), "B: 9": (0.0, 1.0)}
    inside = plane_marks(points, (0.0, 1.0, 0.0, 1.0))
    assert [s["name"] for s in inside["shapes"]] == ["mark A: 6", "mark B: 9"]
    ring = inside["shapes"][0]
    assert (ring["x0"] + ring["x1"]) / 2 == 1.0 and (ring["y0"] + ring["y1"]) / 2 == 0.0
    assert [a["text"] for a in inside["annotations"]] == ["<b>A: 6</b>", "<b>B: 9</b>"]
    # labels point inwards: A (bottom right) from up-left, B (top left) from down-right (plotly: ay > 0 is down)
    assert (inside["annotations"][0]["ax"], inside["annotations"][0]["ay"]) == (-24, -24)
    assert (inside["annotations"][1]["ax"], inside["annotations"][1]["ay"]) == (24, 24)
    zoomed = plane_marks(points, (0.45, 0.55, 0.45, 0.55))  # A lies right of and below the view, B left, above
    assert zoomed["shapes"] == []
    assert [a["text"] for a in zoomed["annotations"]] == ["A: 6 at (1, 0) ↘", "B: 9 at (0, 1) ↖"]
    assert all(a["showarrow"] is False for a in zoomed["annotations"])
    # the labels sit on the view's edge, at the nearest point to the mark
    assert (zoomed["annotations"][0]["x"], zoomed["annotations"][0]["y"]) == (0.55, 0.45)
    go.Figure(layout=zoomed)  # plotly accepts them


# -- experiments on the page -------------------------------------------------------------------------------------
def test_an_experiment_figure_is_written_as_plotly_json_too(tmp_path) -> None:
    ctx = Context("demo", tmp_path, True, 0, {}, lambda f, m: None, None)
    fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4], name="line"))
    ctx.figure(fig, "demo_fig")
    assert {p.suffix for p in ctx.result.figures} == {".html", ".json", ".png"}
    again = go.Figure(go.Figure(fig).to_dict())
    written = [p for p in ctx.result.figures if p.suffix == ".json"][0].read_text()
    assert go.Figure(__import__("json").loads(written)).data[0].y == again.data[0].y


def _links(component) -> dict[str, str]:
    """download name -> href of every link in a Dash component tree."""
    found = {}

    def walk(node) -> None:
        if isinstance(node, (list, tuple)):
            for n in node:
                walk(n)
            return
        if getattr(node, "download", None):
            found[node.download] = node.href
        children = getattr(node, "children", None)
        if children is not None and not isinstance(children, str):
            walk(children)

    walk(component)
    return found


def test_experiment_results_offer_every_table_and_figure_for_download() -> None:
    rows = [{"method": "node", "sparsity": 0.8, "note": "a, b & c"},
            {"method": "weight", "sparsity": 0.5, "note": "é"}]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    png = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
    result = {"name": "demo", "quick": True, "summary": "s", "seconds": 1.0,
              "figures": [{"name": "fig", "figure": {"data": [{"type": "scatter", "y": [1]}],
                                                     "layout": {"width": 1400, "height": 500}}, "png": png}],
              "tables": [{"name": "tab", "markdown": "| method |\n|---|\n| node |\n", "csv": text.getvalue()}]}
    view = ex_page.results(result)
    links = _links(view)
    assert set(links) == {"fig.png", "tab.csv", "tab.md"}
    assert base64.b64decode(links["fig.png"].split(",", 1)[1]) == b"\x89PNG\r\n\x1a\nfake"
    assert list(csv.DictReader(io.StringIO(unquote(links["tab.csv"].split(",", 1)[1])))) == \
        [{k: str(v) for k, v in r.items()} for r in rows]
    graph = ex_page.interactive(result["figures"][0]["figure"], "fig")
    assert "width" not in graph.figure["layout"] and graph.style == {"height": "500px"}

"""MNIST slice: the exact partition of a digit classifier on the plane through two images.

The plane is x = a*img0 + b*img1 (the paper's slice through the origin); (1, 0) is the first image and
(0, 1) the second, both marked on the slice. Hovering a point shows the image the network sees there and its
prediction. Each picker's digit, index, thumbnails and preview always agree: picking a digit loads its first
test image, an index (typed, clicked or from a link) sets the digit to its label.
"""
from __future__ import annotations

from typing import Any

import dash
from dash import ALL, Dash, Input, Output, State, dcc, html

from splineviz.figures import empty_figure, image_figure, partition_layout, plane_marks
from splineviz.web import ids
from splineviz.web.components import (alert, button, card, export_buttons, field, graph, legend_items, number,
                                      progress, radio, slider, view_slider)
from splineviz.web.ids import Mnist as ID
from splineviz.web.jobs import mnist as work
from splineviz.web.images import png_data_uri
from splineviz.web.params import MNIST_ARCHS, Mnist as P, Param
from splineviz.web.runner import JobContext
from splineviz.web.wiring import callback, clientside, export_images, job

PATH = "/mnist"
TITLE = "MNIST slice"
THUMBS = 10
HOVER_HINT = "hover the slice"


def _picker(picker: ids.Picker, label: str, index: Param) -> html.Div:
    return html.Div([
        html.Div([html.Img(id=picker.preview, className="thumb-large"),
                  html.Div([html.B(label), html.Div(id=picker.caption, className="hint")])],
                 className="picker-head"),
        html.Div([field("Digit", dcc.Dropdown(id=picker.digit, options=list(range(10)),
                                              value=work.label_of(index.default), clearable=False)),
                  field("Image index", number(index))], className="field-pair"),
        html.Div(id=picker.thumbs, className="thumbs"),
    ], className="picker")


def layout() -> html.Div:
    controls = card("Classifier",
                    field("Network", radio(P.ARCH),
                          "The paper's CNN draws about 320,000 regions on the full square (about 30 s to "
                          "trace); a smaller extent is quicker"),
                    field("Epochs", number(P.EPOCHS)),
                    html.Div([button("Train classifier", ID.TRAIN, "primary"),
                              button("Cancel", ID.CANCEL, disabled=True)], className="button-row"),
                    progress(ID.TRAIN_JOB),
                    html.Div(id=ID.MODEL_INFO, className="summary"),
                    html.Hr(),
                    _picker(ID.A, "Image A at (1, 0)", P.INDEX_A),
                    _picker(ID.B, "Image B at (0, 1)", P.INDEX_B),
                    field("Extent of a and b", slider(P.EXTENT, {0.1: "0.1", 1: "1", 2: "2"})),
                    class_name="controls")
    view = card(None,
                progress(ID.SLICE_JOB),
                graph(ID.GRAPH, "560px", figure=empty_figure("train the classifier to see the slice"),
                      clear_on_unhover=False),
                html.Div([field("Partition up to layer", view_slider(ID.LAYER, 0, 1, 1)),
                          field("Shade regions by", radio(P.SHADE))], className="field-pair"),
                export_buttons(ID.EXPORT, geojson=False),
                class_name="view")
    hover = card("At the pointer",
                 graph(ID.HOVER_IMAGE, "260px", modebar=False, figure=empty_figure(HOVER_HINT)),
                 html.Div(id=ID.HOVER_TEXT, className="summary"))
    legend = card("Legend", html.Div(id=ID.LEGEND, className="legend"))
    stores = [dcc.Store(id=ID.MODEL), dcc.Store(id=ID.SLICE), dcc.Store(id=ID.PAIR)]
    return html.Div([*stores, alert(ID.ALERT), html.Div([controls, view, html.Div([hover, legend], className="side")],
                                                        className="playground")])


def register(app: Dash) -> None:
    @job(app, ID.TRAIN_JOB, "Training the classifier", ID.ALERT,
         output={"model": Output(ID.MODEL, "data"), "info": Output(ID.MODEL_INFO, "children")},
         inputs={"clicks": Input(ID.TRAIN, "n_clicks")},
         state={"arch": State(ID.ARCH, "value"), "epochs": State(ID.EPOCHS, "value")},
         start=ID.TRAIN, cancel=ID.CANCEL, retry="Press Train classifier to run it again.")
    def train(ctx: JobContext, clicks: int, arch: Any, epochs: Any) -> dict:
        arch = P.ARCH.clean(arch)
        model = work.mnist_train(arch, P.EPOCHS.clean(epochs), ctx.progress, ctx.cancel)
        return {"model": model, "info": f"{MNIST_ARCHS[arch]}: test accuracy {100 * model['accuracy']:.1f} %"}

    for picker in (ID.A, ID.B):
        _register_picker(app, picker)

    @job(app, ID.SLICE_JOB, "Tracing the slice", ID.ALERT,
         output={"slice": Output(ID.SLICE, "data"), "pair": Output(ID.PAIR, "data"),
                 "layer_max": Output(ID.LAYER, "max"),
                 "layer": Output(ID.LAYER, "value"), "marks": Output(ID.LAYER, "marks")},
         inputs={"model": Input(ID.MODEL, "data"), "index_a": Input(ID.INDEX_A, "value"),
                 "index_b": Input(ID.INDEX_B, "value"), "extent": Input(ID.EXTENT, "value")},
         retry="Change the images or the extent to trace it again.")
    def slice_(ctx: JobContext, model: dict | None, index_a: Any, index_b: Any, extent: Any) -> dict:
        """Trace the slice; the browser draws it (it can be large, so it is not re-sent per redraw)."""
        if not model or index_a is None or index_b is None:
            return {}
        result = work.mnist_slice(model.get("key"), model.get("blob"), index_a, index_b, extent,
                                  ctx.progress, ctx.cancel)
        frame = result["frame"]
        (i, j), (a, b) = result["indices"], result["labels"]
        result["layout"] = {**partition_layout(frame["bounds"], axis_titles=("a (image A)", "b (image B)")),
                            **plane_marks({f"A: {a}": (1.0, 0.0), f"B: {b}": (0.0, 1.0)}, frame["bounds"])}
        result["title"] = f"MNIST slice · {MNIST_ARCHS[model['key']]} · a·image {i} (a {a}) + b·image {j} (a {b})"
        n_layers = len(frame["lines"])
        return {"slice": result, "pair": [a, b], "layer_max": n_layers - 1, "layer": n_layers - 1,
                "marks": {i: str(i + 1) for i in range(n_layers)}}

    @callback(app, output={"items": Output(ID.LEGEND, "children")},
              inputs={"max_layer": Input(ID.LAYER, "max"), "shade": Input(ID.SHADE, "value"),
                      "pair": Input(ID.PAIR, "data")})
    def legend(max_layer: int | None, shade: str, pair: list | None) -> dict:
        """With two different digits the regions are shaded by which of the two classes scores higher (the
        paper's 6-vs-9 decision), not by the 10-class prediction the hover panel reads out."""
        labels = None
        if pair and len(pair) == 2 and pair[0] != pair[1]:
            a, b = (int(v) for v in pair)
            labels = {a: f"{a} (A's class) scores above {b}", b: f"{b} (B's class) scores above {a}"}
        return {"items": legend_items((max_layer or 0) + 1, shade, n_classes=10, class_labels=labels)}

    clientside(app, "pages.mnist", Output(ID.GRAPH, "figure"),
               {"slice": Input(ID.SLICE, "data"), "layer": Input(ID.LAYER, "value"), "shade": Input(ID.SHADE, "value")},
               {"style": State(ids.STYLE, "data")}, config={"graph": ID.GRAPH}, prevent_initial_call=True)
    export_images(app, ID.EXPORT, ID.GRAPH, "pages.describe", ID.ALERT, "splineviz-mnist-slice")

    @callback(app, output={"image": Output(ID.HOVER_IMAGE, "figure"), "text": Output(ID.HOVER_TEXT, "children")},
              inputs={"hover": Input(ID.GRAPH, "hoverData"), "model": Input(ID.MODEL, "data"),
                      "index_a": Input(ID.INDEX_A, "value"), "index_b": Input(ID.INDEX_B, "value"),
                      "extent": Input(ID.EXTENT, "value")}, prevent_initial_call=True)
    def hover(hover: dict | None, model: dict | None, index_a: Any, index_b: Any, extent: Any) -> dict:
        """The input at the hovered plane point and the model's prediction for it; cleared when the model, the
        images or the extent change, since the old readout no longer describes the slice."""
        if dash.ctx.triggered_id != ID.GRAPH:
            return {"image": empty_figure(HOVER_HINT), "text": None}
        if not hover or not model:
            return {}
        point = hover["points"][0]
        a, b = float(point["x"]), float(point["y"])
        try:
            seen = work.mnist_point(model.get("key"), model.get("blob"), index_a, index_b, a, b)
        except ValueError as exc:
            return {"text": str(exc)}
        text = [html.Div(f"a = {a:.3f}, b = {b:.3f}"),
                html.Div([html.Span("predicted "), html.B(str(seen["predicted"]), className="big-digit"),
                          html.Span(f" ({100 * seen['confidence']:.0f} %) of 10 classes")])]
        if seen["pair"] is not None:
            winner, loser = seen["pair"]
            text.append(html.Div(f"of A's and B's classes: {winner} scores above {loser} (the shading)",
                                 className="hint"))
        return {"image": image_figure(seen["image"], f"{a:.2f}·A + {b:.2f}·B"), "text": text}


def _register_picker(app: Dash, picker: ids.Picker) -> None:
    @callback(app, output={"digit": Output(picker.digit, "value")},
              inputs={"digit": Input(picker.digit, "value"), "index": Input(picker.index, "value")},
              prevent_initial_call=True)
    def agree(digit: Any, index: Any) -> dict:
        """Keep the digit and the index in agreement, whichever changed: a new digit loads its first test image,
        a new index (typed, a thumbnail, a link) sets the digit to its label. The layout starts them agreeing.

        The index is set with ``set_props``, not as an output: the URL binding (shell.sync_url) both reads and
        writes it, and a declared output here would make the two callbacks wait for each other."""
        try:
            label = work.label_of(index)
        except ValueError:
            return {}  # the preview says why
        if dash.ctx.triggered_id == picker.digit and digit is not None and digit != label:
            dash.set_props(picker.index, {"value": work.first_of(digit)})
            return {}
        return {"digit": label} if digit != label else {}

    @callback(app, output={"thumbs": Output(picker.thumbs, "children")},
              inputs={"digit": Input(picker.digit, "value"), "index": Input(picker.index, "value")})
    def thumbs(digit: Any, index: Any) -> dict:
        """The first test images of the chosen digit as buttons (keyboard: Tab, then Enter or Space); the
        current image is marked."""
        labels = work.mnist_data().y_test
        buttons = []
        for i in (int(i) for i in (labels == digit).nonzero()[0][:THUMBS]):
            src = png_data_uri(work.mnist_image(i)[0].reshape(28, 28))
            buttons.append(html.Button(html.Img(src=src, alt=""), id={"type": picker.thumb_type, "index": i},
                                       n_clicks=0, title=f"test image {i}", **{"aria-pressed": str(i == index).lower()},
                                       className="thumb selected" if i == index else "thumb"))
        return {"thumbs": buttons}

    @callback(app, output={"index": Output(picker.index, "value", allow_duplicate=True)},
              inputs={"clicks": Input({"type": picker.thumb_type, "index": ALL}, "n_clicks")},
              prevent_initial_call=True)
    def pick(clicks: list | None) -> dict:
        if not any(clicks or []):
            return {}
        return {"index": dash.ctx.triggered_id["index"]}

    @callback(app, output={"src": Output(picker.preview, "src"), "caption": Output(picker.caption, "children")},
              inputs={"index": Input(picker.index, "value")})
    def preview(index: Any) -> dict:
        try:
            image, label = work.mnist_image(index)
        except ValueError as exc:
            return {"caption": str(exc)}
        return {"src": png_data_uri(image.reshape(28, 28), 3), "caption": f"test image {index}, label {label}"}

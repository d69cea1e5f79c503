"""MNIST slice: the exact partition of a digit classifier on the plane through two images.

The plane is x = a*img0 + b*img1 (the paper's slice through the origin); (1, 0) is the first image and
(0, 1) the second. Hovering a point shows the image the network sees there and its prediction.
"""
from __future__ import annotations

import dash
from dash import ALL, ClientsideFunction, Dash, Input, Output, State, dcc, html

from splineviz.figures import empty_figure, image_figure, partition_figure
from splineviz.partition import PartitionBudgetError
from splineviz.web import jobs
from splineviz.web.components import (alert, button, card, field, graph, job, legend_items, progress, radio,
                                      reporter, slider)
from splineviz.web.images import png_data_uri

PATH = "/mnist"
TITLE = "MNIST slice"
ARCHS = {"mlp": "MLP 784-32-32-10", "paper_cnn": "Paper CNN (conv 21×21, conv 5×5)"}
THUMBS = 10
URL_STATE = {"arch": ("mn-arch", "value"), "a": ("mn-idx-a", "value"), "b": ("mn-idx-b", "value"),
             "extent": ("mn-extent", "value")}


def _picker(slot: str, label: str, digit: int, index: int) -> html.Div:
    return html.Div([
        html.Div([html.Img(id=f"mn-preview-{slot}", className="thumb-large"),
                  html.Div([html.B(label), html.Div(id=f"mn-caption-{slot}", className="hint")])],
                 className="picker-head"),
        html.Div([field("Digit", dcc.Dropdown(id=f"mn-digit-{slot}", options=list(range(10)), value=digit,
                                              clearable=False)),
                  field("Image index", dcc.Input(id=f"mn-idx-{slot}", type="number", min=0, value=index,
                                                 debounce=True))], className="field-pair"),
        html.Div(id=f"mn-thumbs-{slot}", className="thumbs"),
    ], className="picker")


def _first(digit: int) -> int:
    return int((jobs.mnist_data().y_test == digit).nonzero()[0][0])


def layout() -> html.Div:
    controls = card("Classifier",
                    field("Network", radio("mn-arch", ARCHS, "mlp"),
                          "The paper's CNN draws hundreds of thousands of regions on the full square; "
                          "use a small extent with it"),
                    field("Epochs", dcc.Input(id="mn-epochs", type="number", min=1, max=50, value=3, debounce=True)),
                    html.Div([button("Train classifier", "mn-train", "primary"),
                              button("Cancel", "mn-cancel", disabled=True)], className="button-row"),
                    progress("mn"),
                    html.Div(id="mn-model-info", className="summary"),
                    html.Hr(),
                    _picker("a", "Image A at (1, 0)", 4, _first(4)),
                    _picker("b", "Image B at (0, 1)", 9, _first(9)),
                    field("Extent of a and b", slider("mn-extent", 0.1, 2, 0.1, 1.0, {0.1: "0.1", 1: "1", 2: "2"})),
                    class_name="controls")
    view = card(None,
                progress("mn-slice"),
                graph("mn-graph", "560px", figure=empty_figure("train the classifier to see the slice"),
                      clear_on_unhover=False),
                html.Div([field("Partition up to layer", slider("mn-layer", 0, 1, 1, 1)),
                          field("Shade regions by", radio("mn-shade", {"class": "Class", "code": "Activation code",
                                                                       "none": "Nothing"}, "class"))],
                         className="field-pair"),
                class_name="view")
    hover = card("At the pointer",
                 graph("mn-hover-image", "260px", modebar=False, figure=empty_figure("hover the slice")),
                 html.Div(id="mn-hover-text", className="summary"))
    legend = card("Legend", html.Div(id="mn-legend", className="legend"))
    stores = [dcc.Store(id="mn-model"), dcc.Store(id="mn-slice")]
    return html.Div([*stores, alert("mn-alert"), html.Div([controls, view, html.Div([hover, legend], className="side")],
                                                          className="playground")])


def register(app: Dash) -> None:
    @app.callback(Output("mn-model", "data"), Output("mn-model-info", "children"),
                  Input("mn-train", "n_clicks"), State("mn-arch", "value"), State("mn-epochs", "value"),
                  State("session-id", "data"),
                  **job("mn", "mn-train", "mn-cancel"))
    def train(set_progress, _n, arch, epochs, _session_id):
        model = jobs.mnist_train(arch, int(epochs or 3),
                                 progress=reporter(set_progress))
        model["key"] = arch
        return model, f"{ARCHS[arch]}: test accuracy {100 * model['accuracy']:.1f} %"

    for slot in ("a", "b"):
        _register_picker(app, slot)

    @app.callback(Output("mn-slice", "data"), Output("mn-alert", "children"),
                  Output("mn-layer", "max"), Output("mn-layer", "value"), Output("mn-layer", "marks"),
                  Input("mn-model", "data"), Input("mn-idx-a", "value"), Input("mn-idx-b", "value"),
                  Input("mn-extent", "value"), State("session-id", "data"),
                  **job("mn-slice"))
    def slice_(set_progress, model, index_a, index_b, extent, _session_id):
        """Trace the slice; the browser draws it (it can be large, so it is not re-sent per redraw)."""
        if not model or index_a is None or index_b is None:
            return (dash.no_update,) * 5
        try:
            result = jobs.mnist_slice(model["key"], model["blob"], int(index_a), int(index_b), float(extent),
                                      progress=reporter(set_progress))
        except (PartitionBudgetError, ValueError) as exc:
            return None, f"Cannot draw this slice: {exc}", dash.no_update, dash.no_update, dash.no_update
        frame = result["frame"]
        layout_json = partition_figure(frame, axis_titles=("a (image A)", "b (image B)")).to_plotly_json()["layout"]
        result["layout"] = layout_json
        n_layers = len(frame["bnd"])
        return result, None, n_layers - 1, n_layers - 1, {i: str(i + 1) for i in range(n_layers)}

    @app.callback(Output("mn-legend", "children"), Input("mn-layer", "max"), Input("mn-shade", "value"))
    def legend(max_layer, shade):
        return legend_items((max_layer or 0) + 1, shade, n_classes=10)

    app.clientside_callback(
        ClientsideFunction("splineviz", "renderSlice"),
        Output("mn-graph", "figure"), Input("mn-slice", "data"), Input("mn-layer", "value"),
        Input("mn-shade", "value"), State("style", "data"), prevent_initial_call=True)

    @app.callback(Output("mn-hover-image", "figure"), Output("mn-hover-text", "children"),
                  Input("mn-graph", "hoverData"), State("mn-model", "data"), State("mn-idx-a", "value"),
                  State("mn-idx-b", "value"), prevent_initial_call=True)
    def hover(hover_data, model, index_a, index_b):
        """The input at the hovered plane point and the model's prediction for it."""
        if not hover_data or not model:
            return dash.no_update, dash.no_update
        point = hover_data["points"][0]
        a, b = float(point["x"]), float(point["y"])
        seen = jobs.mnist_point(model["key"], model["blob"], int(index_a), int(index_b), a, b)
        text = [html.Div(f"a = {a:.3f}, b = {b:.3f}"),
                html.Div([html.Span("predicted "), html.B(str(seen["predicted"]), className="big-digit"),
                          html.Span(f" ({100 * seen['confidence']:.0f} %)")])]
        return image_figure(seen["image"], f"{a:.2f}·A + {b:.2f}·B"), text


def _register_picker(app: Dash, slot: str) -> None:
    @app.callback(Output(f"mn-thumbs-{slot}", "children"), Input(f"mn-digit-{slot}", "value"))
    def thumbs(digit):
        """The first test images of the chosen digit, clickable."""
        labels = jobs.mnist_data().y_test
        indices = [int(i) for i in (labels == digit).nonzero()[0][:THUMBS]]
        return [html.Img(src=png_data_uri(jobs.mnist_image(i)[0].reshape(28, 28)), title=f"index {i}",
                         id={"type": f"mn-thumb-{slot}", "index": i}, n_clicks=0, className="thumb")
                for i in indices]

    @app.callback(Output(f"mn-idx-{slot}", "value", allow_duplicate=True),
                  Input({"type": f"mn-thumb-{slot}", "index": ALL}, "n_clicks"), prevent_initial_call=True)
    def pick(clicks):
        if not any(clicks or []):
            return dash.no_update
        return dash.ctx.triggered_id["index"]

    @app.callback(Output(f"mn-preview-{slot}", "src"), Output(f"mn-caption-{slot}", "children"),
                  Input(f"mn-idx-{slot}", "value"))
    def preview(index):
        n = len(jobs.mnist_data().y_test)
        if index is None or not 0 <= int(index) < n:
            return dash.no_update, f"index must be between 0 and {n - 1}"
        image, label = jobs.mnist_image(int(index))
        return png_data_uri(image.reshape(28, 28), 3), f"test image {index}, label {label}"

"""Playground: train a small net and watch its exact partition change, TensorFlow-Playground style.

Training runs as a chain of short background jobs (chunks); each returns the new weights plus one
compact frame per kept epoch, which the browser appends to its own store. Drawing, the epoch and
layer sliders and replay all happen in the browser (assets/splineviz.js), so the server is never in
the loop per animation frame.
"""
from __future__ import annotations

import base64
import json
import re
from typing import Any

import dash
from dash import ClientsideFunction, Dash, Input, Output, State, dcc, html

from splineviz.figures import empty_figure, partition_figure, training_curves
from splineviz.nets import ModelLoadError, UnsupportedLayerError, build_model, to_ops
from splineviz.partition import PartitionBudgetError, trace
from splineviz.web import jobs
from splineviz.web.codec import decode_blob
from splineviz.web.components import (PROGRESS_IDLE, alert, button, card, export_buttons, field, graph, legend_items,
                                      progress, radio, slider, stat)
from splineviz.web.session import ACTIVATIONS, PLAYGROUND_DATASETS, PlaygroundConfig, start_run

PATH = "/playground"
TITLE = "Playground"
DEFAULT = PlaygroundConfig()
CHUNK_FRAMES = 10  # frames per background job while playing: ~0.5 s of work for a 2-16-16-16-2 net
WIDTHS = [2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64]
LEARNING_RATES = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3]
# url key -> (component id, property); the shell keeps these in the address bar
URL_STATE = {"dataset": ("pg-dataset", "value"), "noise": ("pg-noise", "value"), "layers": ("pg-layers", "value"),
             "width": ("pg-width", "value"), "act": ("pg-activation", "value"), "lr": ("pg-lr", "value"),
             "epochs": ("pg-epochs", "value"), "seed": ("pg-seed", "value"), "shade": ("pg-shade", "value")}
CONFIG_CONTROLS = ["pg-dataset", "pg-noise", "pg-layers", "pg-width", "pg-activation", "pg-seed"]


def _controls() -> html.Div:
    return card("Data & network",
                field("Dataset", dcc.Dropdown(id="pg-dataset", value=DEFAULT.dataset, clearable=False,
                                              options=[{"label": v, "value": k} for k, v in
                                                       PLAYGROUND_DATASETS.items()])),
                field("Noise", slider("pg-noise", 0, 0.5, 0.05, DEFAULT.noise, {0: "0", 0.25: "0.25", 0.5: "0.5"})),
                field("Hidden layers", slider("pg-layers", 1, 6, 1, DEFAULT.layers, {i: str(i) for i in range(1, 7)})),
                field("Units per layer", dcc.Dropdown(id="pg-width", value=DEFAULT.width, clearable=False,
                                                      options=WIDTHS)),
                field("Activation", radio("pg-activation", ACTIVATIONS, DEFAULT.activation)),
                field("Learning rate", dcc.Dropdown(id="pg-lr", value=DEFAULT.lr, clearable=False,
                                                    options=LEARNING_RATES),
                      "SGD with momentum 0.9; changes apply from the next epoch"),
                html.Div([field("Epochs", dcc.Input(id="pg-epochs", type="number", min=1, max=2000,
                                                    value=DEFAULT.epochs, debounce=True)),
                          field("Seed", dcc.Input(id="pg-seed", type="number", min=0, value=DEFAULT.seed,
                                                  debounce=True))], className="field-pair"),
                field("Or load a model", dcc.Upload(id="pg-upload", className="upload", multiple=False,
                                                    children=html.Div(["Drop a ", html.B(".pt"), " state dict or ",
                                                                       html.B(".safetensors"), " here"])),
                      "An MLP with 2 inputs, saved with torch.save(model.state_dict())"),
                class_name="controls")


def _transport() -> html.Div:
    return html.Div([
        button("▶ Train", "pg-play", "primary", title="Play / pause training"),
        button("Step", "pg-step", title="Train one frame's worth of epochs"),
        button("Reset", "pg-reset", title="Re-initialise the weights"),
        progress("pg", always_visible=True),
    ], className="transport")


def _view() -> html.Div:
    return card(None,
                _transport(),
                html.Div(graph("pg-graph", "520px"), className="graph-box"),
                html.Div([
                    html.Div([button("▶ Replay", "pg-replay", "ghost", title="Play back the recorded epochs"),
                              html.Div(field("Epoch", slider("pg-epoch", 0, 0, 1, 0)), className="grow")],
                             className="slider-row"),
                    field("Partition up to layer", slider("pg-layer", 0, DEFAULT.layers - 1, 1, DEFAULT.layers - 1)),
                    html.Div([field("Shade regions by", radio("pg-shade", {"class": "Class", "code": "Activation code",
                                                                           "none": "Nothing"}, "class")),
                              field("Show", dcc.Checklist(id="pg-show", className="radio", inline=True,
                                                          options=[{"label": "Training points", "value": "points"},
                                                                   {"label": "Decision boundary",
                                                                    "value": "decision"}],
                                                          value=["points", "decision"]))], className="field-pair"),
                ], className="view-controls"),
                class_name="view")


def _side() -> html.Div:
    return html.Div([
        card("Now", html.Div([stat("epoch", "pg-stat-epoch"), stat("regions", "pg-stat-regions"),
                              stat("train loss", "pg-stat-loss"), stat("test accuracy", "pg-stat-acc")],
                             className="stats")),
        card("Training", graph("pg-curves", "390px", modebar=False)),
        card("Legend", html.Div(id="pg-legend", className="legend"), export_buttons("pg")),
    ], className="side")


def layout() -> html.Div:
    stores = [dcc.Store(id=i) for i in ("pg-run", "pg-frames", "pg-points", "pg-layout", "pg-history", "pg-chunk",
                                        "pg-current", "pg-export")]
    stores += [dcc.Store(id="pg-playing", data=False), dcc.Store(id="pg-inflight", data=False),
               dcc.Store(id="pg-tick", data=None), dcc.Interval(id="pg-pump", interval=100, disabled=True)]
    return html.Div([*stores, alert("pg-alert"),
                     html.Div([_controls(), _view(), _side()], className="playground")])


# -- server callbacks (thin: the work is in session.py / jobs.py) -------------------------------------------------
def _new_session(config: PlaygroundConfig, upload: str | None) -> dict[str, Any]:
    if upload is None:
        return start_run(config)
    raw = base64.b64decode(upload.split(",", 1)[-1])
    return jobs.upload_run(raw, config)


def _session_outputs(session: dict[str, Any]) -> tuple:
    frame = session["frames"][0]
    n_layers = len(frame["bnd"])
    layout_json = {**partition_figure(frame).to_plotly_json()["layout"], "showlegend": False}  # legend: side card
    history = [{k: frame.get(k) for k in ("epoch", "loss", "train_metric", "test_metric", "n_regions")}]
    marks = {i: str(i + 1) for i in range(n_layers)}
    return (session["run"], session["frames"], session["points"], layout_json, history, False, False, None,
            0, n_layers - 1, marks, n_layers - 1)


def register(app: Dash) -> None:
    @app.callback(
        Output("pg-run", "data"), Output("pg-frames", "data"), Output("pg-points", "data"),
        Output("pg-layout", "data"), Output("pg-history", "data"), Output("pg-playing", "data", allow_duplicate=True),
        Output("pg-inflight", "data", allow_duplicate=True),
        Output("pg-alert", "children"), Output("pg-epoch", "value", allow_duplicate=True),
        Output("pg-layer", "max"), Output("pg-layer", "marks"), Output("pg-layer", "value"),
        Input("pg-reset", "n_clicks"), *[Input(c, "value") for c in CONFIG_CONTROLS], Input("pg-upload", "contents"),
        State("pg-upload", "filename"), State("pg-lr", "value"), State("pg-epochs", "value"),
        prevent_initial_call="initial_duplicate")
    def new_session(_reset, dataset, noise, layers, width, activation, seed, upload, filename, lr, epochs):
        """Fresh weights when the data or architecture changes; a loaded model when a file is dropped."""
        is_upload = dash.ctx.triggered_id == "pg-upload"
        try:
            config = PlaygroundConfig.from_dict({"dataset": dataset, "noise": noise, "layers": layers, "width": width,
                                                 "activation": activation, "seed": seed, "lr": lr,
                                                 "epochs": epochs})
            session = _new_session(config, upload if is_upload else None)
        except (ModelLoadError, UnsupportedLayerError, jobs.UploadError, PartitionBudgetError, ValueError) as exc:
            what = f"Could not load {filename}: " if is_upload else "Invalid settings: "
            return (*[dash.no_update] * 7, what + _message(exc), *[dash.no_update] * 4)
        return _session_outputs(session)

    @app.callback(
        Output("pg-chunk", "data"), Input("pg-tick", "data"),
        State("pg-run", "data"), State("pg-lr", "value"), State("pg-epochs", "value"), State("session-id", "data"),
        background=True, interval=200, prevent_initial_call=True,
        progress=[Output("pg-progress", "value"), Output("pg-progress-label", "children")],
        progress_default=PROGRESS_IDLE,
        cancel=[Input("pg-reset", "n_clicks")] + [Input(c, "value") for c in CONFIG_CONTROLS],
        running=[(Output("pg-step", "disabled"), True, False)])
    def train(set_progress, tick, run, lr, epochs, _session_id):
        """One chunk of training + tracing; session_id only keeps identical requests of two users apart."""
        if not tick or not run or tick.get("run_id") != run["id"]:
            return dash.no_update
        overrides = {"lr": lr, "epochs": epochs}
        base = 100 * tick["done"] / max(tick["target"], 1)
        span = 100 * tick["epochs"] / max(tick["target"], 1)

        def report(fraction: float, message: str) -> None:
            set_progress((str(round(base + span * fraction, 1)), message))

        try:
            chunk = jobs.train_chunk(run, tick["epochs"], overrides, progress=report)
        except Exception as exc:  # noqa: BLE001 - any failure must reach the page, or playback would wait forever
            return {"run_id": run["id"], "error": f"Training stopped: {_message(exc)}"}
        return {"run_id": run["id"], **chunk}

    @app.callback(Output("pg-curves", "figure"), Input("pg-history", "data"))
    def curves(history):
        return training_curves(history) if history else empty_figure()

    @app.callback(Output("pg-legend", "children"), Input("pg-layer", "max"), Input("pg-shade", "value"))
    def legend(max_layer, shade):
        return legend_items((max_layer or 0) + 1, shade)

    @app.callback(Output("pg-download", "data"), Input("pg-geojson", "n_clicks"), State("pg-current", "data"),
                  prevent_initial_call=True)
    def geojson(_clicks, current):
        """The shown frame's partition as GeoJSON (regions, per-layer boundaries, decision boundary)."""
        model = build_model(current["arch"])
        model.load_state_dict(decode_blob(current["weights"]))
        partition = trace(to_ops(model.eval()), domain=tuple(current["bounds"]))
        return dcc.send_string(json.dumps(partition.to_geojson()), f"partition-epoch{current['epoch']}.geojson")

    _clientside(app)


def _clientside(app: Dash) -> None:
    """Browser-side callbacks: play/pause/step, absorbing chunks, drawing, replay, image export."""
    ns = "splineviz"
    app.clientside_callback(
        ClientsideFunction(ns, "transport"),
        Output("pg-playing", "data"), Output("pg-tick", "data"), Output("pg-inflight", "data"),
        Input("pg-play", "n_clicks"), Input("pg-step", "n_clicks"),
        State("pg-playing", "data"), State("pg-inflight", "data"), State("pg-run", "data"),
        State("pg-epochs", "value"), State("pg-tick", "data"), State("style", "data"), prevent_initial_call=True)
    app.clientside_callback(
        ClientsideFunction(ns, "pump"),
        Output("pg-tick", "data", allow_duplicate=True), Output("pg-inflight", "data", allow_duplicate=True),
        Output("pg-playing", "data", allow_duplicate=True),
        Input("pg-pump", "n_intervals"),
        State("pg-playing", "data"), State("pg-inflight", "data"), State("pg-run", "data"),
        State("pg-epochs", "value"), State("pg-tick", "data"), State("style", "data"), prevent_initial_call=True)
    app.clientside_callback(
        ClientsideFunction(ns, "absorb"),
        Output("pg-frames", "data", allow_duplicate=True), Output("pg-history", "data", allow_duplicate=True),
        Output("pg-run", "data", allow_duplicate=True), Output("pg-inflight", "data", allow_duplicate=True),
        Output("pg-playing", "data", allow_duplicate=True), Output("pg-epoch", "value", allow_duplicate=True),
        Output("pg-alert", "children", allow_duplicate=True),
        Input("pg-chunk", "data"),
        State("pg-frames", "data"), State("pg-history", "data"), State("pg-run", "data"),
        State("pg-playing", "data"), State("pg-epochs", "value"), State("pg-epoch", "value"),
        prevent_initial_call=True)
    app.clientside_callback(
        ClientsideFunction(ns, "playLabel"),
        Output("pg-play", "children"), Output("pg-play", "className"), Output("pg-pump", "disabled"),
        Input("pg-playing", "data"))
    app.clientside_callback(
        ClientsideFunction(ns, "render"),
        Output("pg-graph", "figure"), Output("pg-epoch", "max"), Output("pg-epoch", "marks"),
        Output("pg-stat-epoch", "children"), Output("pg-stat-regions", "children"),
        Output("pg-stat-loss", "children"), Output("pg-stat-acc", "children"), Output("pg-current", "data"),
        Input("pg-frames", "data"), Input("pg-epoch", "value"), Input("pg-layer", "value"),
        Input("pg-shade", "value"), Input("pg-show", "value"), Input("pg-points", "data"),
        State("pg-layout", "data"), State("pg-run", "data"), State("style", "data"))
    app.clientside_callback(
        ClientsideFunction(ns, "replayToggle"), Output("pg-replay", "children"),
        Input("pg-replay", "n_clicks"), State("pg-epoch", "value"), prevent_initial_call=True)
    for fmt in ("png", "svg"):
        app.clientside_callback(
            f"function(n) {{ return window.dash_clientside.splineviz.download('pg-graph', '{fmt}', n); }}",
            Output("pg-export", "data", allow_duplicate=True), Input(f"pg-{fmt}", "n_clicks"),
            prevent_initial_call=True)


def _message(exc: BaseException) -> str:
    """The user-facing part of an error: loader errors end with the parser's own long details in brackets."""
    if isinstance(exc, PartitionBudgetError):
        return f"the network makes too many regions to draw ({exc}); try fewer or narrower layers"
    return re.sub(r" \(\w+(Error|Exception): .*\)$", "", str(exc), flags=re.S)

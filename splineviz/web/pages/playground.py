"""Playground: train a small net and watch its exact partition change, TensorFlow-Playground style.

Training runs as a chain of short background jobs (chunks); each returns the new weights plus one
compact frame per kept epoch, which the browser appends to its own store. The transport (play, step,
chunks, lost jobs), drawing, the epoch and layer sliders and replay all run in the browser
(assets/splineviz-7-playground.js), so the server is never in the loop per animation frame. The
Playground owns the app's shared model and data (``ids.MODEL``, ``ids.DATA``), which other pages read.

The address bar is the Playground's source of settings: controls write it (shell.sync_url) and a new run
starts when the settings it holds differ from the shown run's (``ID.SHOWN``), so a link opens the same run;
for small nets the link also holds the shown frame's weights (``w=``), so it opens the same view. Once the
shown frame settles, the server explains it: the region under the pointer and every unit (explain.py).
"""
from __future__ import annotations

from typing import Any

import dash
from dash import ALL, Dash, Input, Output, State, dcc, html

from splineviz.data import Dataset, from_csv
from splineviz.figures import empty_figure, partition_layout, training_curves
from splineviz.nets import MODEL_FORMATS, ModelLoadError, UnsupportedLayerError
from splineviz.partition import PartitionBudgetError
from splineviz.web import explain, ids
from splineviz.web.components import (alert, button, card, dropdown, export_buttons, field, graph, legend_items,
                                      number, progress, radio, slider, stat, view_slider)
from splineviz.web.ids import Playground as ID
from splineviz.web.jobs import playground as work
from splineviz.web.params import DATASETS, LIMITS, OWN_POINTS, SHOW_OPTIONS, Playground as P, holds_run, \
    parse_points, parse_search
from splineviz.web.runner import JobContext, user_message
from splineviz.web.state import TRAINING, PlaygroundConfig, Run, config_dataset
from splineviz.web.tracing import AppFrame, points
from splineviz.web.wiring import callback, clientside, export_images, job

PATH = "/playground"
TITLE = "Playground"
SETTINGS = {"dataset": P.DATASET, "noise": P.NOISE, "layers": P.LAYERS, "width": P.WIDTH, "widths": P.WIDTHS,
            "activation": P.ACTIVATION, "seed": P.SEED, "test": P.TEST}  # changing one starts a new run
TRAINING_PARAMS = {"lr": P.LR, "epochs": P.EPOCHS, "batch_size": P.BATCH, "l1": P.L1, "l2": P.L2}
assert set(TRAINING_PARAMS) == set(TRAINING)
LOAD_ERRORS = (ModelLoadError, UnsupportedLayerError, PartitionBudgetError, ValueError)
MORE_EPOCHS = 100  # what "+N epochs" adds to the target
HIDDEN = {"display": "none"}
HOVER_HINT = "Point at a region to see its activation pattern, outputs and area."


def _data_card() -> html.Div:
    return card("Data",
                field("Dataset", dropdown(P.DATASET)),
                field("Noise", slider(P.NOISE, {0: "0", 0.25: "0.25", 0.5: "0.5"})),
                field("Test share", slider(P.TEST, {0.1: "10 %", 0.5: "50 %", 0.9: "90 %"}),
                      "The share of the points held out to measure test accuracy (TF Playground's ratio)"),
                field("Seed", number(P.SEED)),
                field("Own data",
                      html.Div([dcc.Upload(id=ID.OWN_CSV, className="upload upload-small", multiple=False,
                                           max_size=LIMITS.own_csv_bytes,
                                           children=html.Div(["Drop a ", html.B(".csv"), " of x, y, label"])),
                                html.Div([html.Span("or click the plot to add class", className="hint"),
                                          radio(P.CLICK_CLASS), button("Clear", ID.OWN_CLEAR, "ghost")],
                                         className="own-click")]),
                      f"Choose \"Own data\" above, then drop a CSV (columns x, y, label; at most {OWN_POINTS:,} "
                      f"rows) or click on the plot: each click adds a point of the chosen class and starts afresh"))


def _network_card() -> html.Div:
    return card("Network",
                field("Hidden layers", slider(P.LAYERS, {i: str(i) for i in range(1, 7)})),
                field("Units per layer", dropdown(P.WIDTH)),
                field("Or widths per layer", dcc.Input(id=P.WIDTHS.id, type="text", value=P.WIDTHS.default,
                                                       debounce=True, placeholder="e.g. 16, 8, 4",
                                                       className="text-input"),
                      "Comma-separated units per hidden layer (1-64 each, up to 6 layers); overrides the two "
                      "controls above. Empty: layers x units."),
                field("Activation", radio(P.ACTIVATION),
                      "Also the activation of an uploaded state dict, which cannot say which it used"),
                html.Div(id=ID.MODEL_INFO, className="model-info"),
                field("Or load a model",
                      dcc.Upload(id=ID.UPLOAD, className="upload", multiple=False, max_size=LIMITS.model_bytes,
                                 children=html.Div(["Drop a ", html.B(".pt"), ", ", html.B(".safetensors"), " or ",
                                                    html.B(".onnx"), " file here"])),
                      f"A network with 2 inputs: a state dict whose Linear layers form a chain (any key names), "
                      f"or an ONNX file; at most {LIMITS.model_bytes // 2**20} MiB, "
                      f"{LIMITS.model.max_width} units per layer, {LIMITS.model.max_params:,} parameters"),
                progress(ID.UPLOAD_JOB))


def _training_card() -> html.Div:
    return card("Training",
                html.Div([field("Learning rate", dropdown(P.LR), "SGD with momentum 0.9"),
                          field("Batch size", dropdown(P.BATCH))], className="field-pair"),
                html.Div([field("L1", dropdown(P.L1), "L1 penalty on the weights, added to the loss"),
                          field("L2", dropdown(P.L2), "Weight decay")], className="field-pair"),
                field("Epochs", number(P.EPOCHS), "The training target; these apply from the next epoch"))


def _share_card() -> html.Div:
    formats = [button(f".{fmt}", {"type": ID.MODEL_FORMAT, "format": fmt}, "ghost",
                      title=f"The shown frame's model as a .{fmt} file") for fmt in MODEL_FORMATS]
    return card("Save & share",
                html.Div([html.Span("Model", className="field-label"), *formats, dcc.Download(id=ID.MODEL_FILE)],
                         className="export-row"),
                html.Div([button("Download session", ID.SAVE_SESSION, "ghost",
                                 title="Settings, every recorded epoch's weights, the view and the other pages' "
                                       "results, in one file"),
                          dcc.Download(id=ID.SESSION_FILE)], className="export-row"),
                progress(ID.SAVE_JOB),
                dcc.Upload(id=ID.OPEN_SESSION, className="upload", multiple=False, max_size=LIMITS.session_bytes,
                           children=html.Div(["Open a session: drop a ", html.B(".zip"), " saved here"])),
                progress(ID.OPEN_JOB),
                html.Div("Copy link shares the settings and view; for small networks it carries the shown "
                         "weights too.", className="hint"))


def _controls() -> html.Div:
    return html.Div([_data_card(), _network_card(), _training_card(), _share_card()], className="stack controls")


def _transport() -> html.Div:
    return html.Div([
        button("▶ Train", ID.PLAY, "primary", title="Play / pause training"),
        button("Step", ID.STEP, title="Train one frame's worth of epochs"),
        button(f"+{MORE_EPOCHS} epochs", ID.MORE, title=f"Raise the target by {MORE_EPOCHS} epochs and train on"),
        button("Reset", ID.RESET, title="Re-initialise the weights"),
        progress(ID.TRAIN_JOB, always_visible=True),
    ], className="transport")


def _row(row_id: str, text_id: str, *buttons: html.Button) -> html.Div:
    return html.Div([html.Span(id=text_id), html.Div(list(buttons), className="row-buttons")],
                    id=row_id, className="alert alert-info confirm", style=HIDDEN)


def _view() -> html.Div:
    return card(None,
                _transport(),
                _row(ID.CONFIRM_ROW, ID.CONFIRM_TEXT, button("Train anyway", ID.CONFIRM, "primary")),
                _row(ID.DISCARD_ROW, ID.DISCARD_TEXT, button("Discard it", ID.DISCARD, "primary"),
                     button("Keep the model", ID.KEEP)),
                html.Div(graph(ID.GRAPH, "520px"), className="graph-box"),
                html.Div(HOVER_HINT, id=ID.HOVER_TEXT,
                         className="hover-panel hint"),
                html.Div([
                    html.Div([button("▶ Replay", ID.REPLAY, "ghost", title="Play back the recorded epochs"),
                              html.Div(field("Epoch", view_slider(ID.EPOCH, 0, 0, 0)), className="grow")],
                             className="slider-row"),
                    field("Partition up to layer", view_slider(ID.LAYER, 0, P.LAYERS.default - 1,
                                                               P.LAYERS.default - 1, layer_marks(P.LAYERS.default), from_one=True)),
                    html.Div([field("Shade regions by", radio(P.SHADE)),
                              field("Show", dcc.Checklist(id=ID.SHOW, className="radio", inline=True,
                                                          options=[{"label": v, "value": k}
                                                                   for k, v in SHOW_OPTIONS.items()],
                                                          value=list(P.SHOW.default)))], className="field-pair"),
                ], className="view-controls"),
                class_name="view")


def _side() -> html.Div:
    return html.Div([
        card("Now", html.Div([stat("epoch", ID.STAT_EPOCH), stat("regions", ID.STAT_REGIONS),
                              stat("train loss", ID.STAT_LOSS), stat("test accuracy", ID.STAT_ACC)],
                             className="stats")),
        card("Training", graph(ID.CURVES, "390px", modebar=False)),
        card("Units", html.Div(id=ID.UNITS, className="unit-strip"),
             html.Div("Click a unit to highlight its line and see its incoming weights.", id=ID.UNIT_INFO,
                      className="hint unit-info")),
        card("Legend", html.Div(id=ID.LEGEND, className="legend"), export_buttons(ID.EXPORT),
             progress(ID.GEOJSON_JOB)),
    ], className="side")


def layout() -> html.Div:
    stores = [dcc.Store(id=i) for i in (ID.SESSION, ID.TRANSPORT, ID.TICK, ID.CHUNK, ID.FRAMES, ID.HISTORY,
                                        ID.LAYOUT, ID.CURRENT, ID.SHOWN, ID.VIEW, ID.HOVER, ID.UNIT, ID.THUMBS,
                                        ID.UNIT_CLICK, ID.LINK, ID.SAVE_REQUEST, ID.OPENED, ID.OWN)]
    return html.Div([*stores, dcc.Store(id=ID.PUMP), alert(ID.ALERT),
                     html.Div([_controls(), _view(), _side()], className="playground")])


def layer_marks(n_layers: int) -> dict[int, str]:
    """Layer slider marks, counted from 1 (as splineviz-7-playground.js, layerMarks)."""
    return {i: str(i + 1) for i in range(n_layers)} if n_layers else {0: "none"}


# -- server side (thin: the work is in jobs/playground.py and explain.py) -------------------------------------------
def session_payload(run: Run, frame: AppFrame | list[AppFrame], data: Dataset, notice: str | None = None,
                    layer: int | None = None, history: list | None = None, epoch: int = 0) -> dict[str, Any]:
    """What the browser needs to start showing a run (see splineviz-7-playground.js, control): the run, its
    first frame (or an opened session's frames, curves and shown frame ``epoch``), the axes the painter draws
    under, the shared data, the cost of a large run, and the layer to show (None: the last)."""
    frames = frame if isinstance(frame, list) else [frame]
    frame = frames[0]
    view = {**partition_layout(frame["bounds"]), "showlegend": False}  # legend: its own card
    shared = {"dataset": run.config.dataset, "noise": run.config.noise, "seed": run.config.seed,
              "bounds": list(data.bounds), "points": points(data), "test": points(data, "test"),
              "classes": data.n_classes if data.task == "classification" else 1}
    return {"run": run.to_json(), "frames": frames, "layout": view, "data": shared, "notice": notice,
            "estimate": work.run_estimate(run.config, frame), "layer": layer, "history": history or None,
            "epoch": min(max(int(epoch), 0), len(frames) - 1)}


def session_config(values: dict[str, Any], own: str | None, **overrides: Any) -> PlaygroundConfig:
    """The settings of a run: the address's values, and the own data's points when the dataset is "own"."""
    config = PlaygroundConfig.from_url(values, **overrides)
    return PlaygroundConfig.from_dict({**config.to_dict(), "points": own if config.dataset == "own" else ""})


def shown(config: PlaygroundConfig, upload: str | None = None) -> dict[str, Any]:
    """What ``ID.SHOWN`` holds: the settings of the shown run, and the file it came from (None: not an upload)."""
    return {"settings": config.settings(), "upload": upload}


def model_info(run: Run, upload: str | None = None) -> list:
    title = run.title.split(" · ", 1)[-1]
    return [html.B(title)] + ([html.Span(f" from {upload}")] if upload else [])


def register(app: Dash) -> None:
    @callback(app, output={"session": Output(ID.SESSION, "data"), "shown": Output(ID.SHOWN, "data"),
                           "info": Output(ID.MODEL_INFO, "children"), "row": Output(ID.DISCARD_ROW, "style"),
                           "text": Output(ID.DISCARD_TEXT, "children")},
              inputs={"search": Input(ids.URL, "search"), "path": Input(ids.URL, "pathname"),
                      "reset": Input(ID.RESET, "n_clicks"), "discard": Input(ID.DISCARD, "n_clicks"),
                      "own": Input(ID.OWN, "data")},
              state={"current": State(ID.SHOWN, "data"), "link": State(ID.LINK, "data")},
              prevent_initial_call=True)
    def new_session(search: str | None, path: str | None, reset: int, discard: int, own: str | None,
                    current: dict | None, link: str | None) -> dict:
        """A new run when the settings in the address (or the own data) differ from the shown run's, on Reset,
        or from a link's weights; an uploaded model is only discarded after the user says so. The first run
        starts when a page whose address holds the run's settings (``params.holds_run``) is first shown; other
        pages' addresses (MNIST, Regression, ...) say nothing about the run."""
        trigger = dash.ctx.triggered_id
        if trigger == ids.URL and not holds_run(path):
            return {}
        values = parse_search(search)
        config = session_config(values, own)
        if trigger == ID.OWN:
            trigger = ids.URL  # new points: a change of settings like any other
        weights = values.get("w") if trigger == ids.URL else None
        if weights and weights == link and current is not None:
            weights = None  # the address follows the shown frame (see link): nothing new to open
        if trigger == ids.URL and not weights and current and current.get("settings") == config.settings():
            return {}  # the address changed for another reason (a view option, another page)
        if trigger == ids.URL and current and current.get("upload") and not weights:
            return {"row": {"display": "flex"},
                    "text": f"This change discards the uploaded model {current['upload']}."}
        try:
            run, frame = work.link_run(config, weights) if weights else work.start_run(config)
        except LOAD_ERRORS as exc:
            what = "The link's weights" if weights else "Invalid settings"
            return {"session": {"error": f"{what}: {user_message(exc)}"}, "row": HIDDEN}
        layer = values.get("layer", -1) if weights else -1  # a link's layer; else (and -1) the last
        return {"session": session_payload(run, frame, config_dataset(config), layer=layer if layer >= 0 else None),
                "shown": shown(config), "info": model_info(run), "row": HIDDEN}

    clientside(app, "playground.keep", None, {"keep": Input(ID.KEEP, "n_clicks")}, {"shown": State(ID.SHOWN, "data")},
               config={"row": ID.DISCARD_ROW, "controls": {name: SETTINGS[name].id for name in SETTINGS}},
               prevent_initial_call=True)

    controls = {n: Output(p.id, "value", allow_duplicate=True) for n, p in SETTINGS.items()}

    @job(app, ID.UPLOAD_JOB, "Loading the model", ID.ALERT,
         output={"session": Output(ID.SESSION, "data", allow_duplicate=True),
                 "shown": Output(ID.SHOWN, "data", allow_duplicate=True),
                 "info": Output(ID.MODEL_INFO, "children", allow_duplicate=True),
                 "contents": Output(ID.UPLOAD, "contents"), **controls},
         inputs={"contents": Input(ID.UPLOAD, "contents")},
         state={"filename": State(ID.UPLOAD, "filename"), "search": State(ids.URL, "search"),
                "activation": State(ID.ACTIVATION, "value"), "own": State(ID.OWN, "data")},
         retry="Drop the file again.")
    def upload(ctx: JobContext, contents: str | None, filename: str | None, search: str | None,
               activation: Any, own: str | None) -> dict:
        """A dropped file: checked (size, layers, parameters) and traced here, in a job, never in the web process.
        The controls then show the model's real architecture; the upload is cleared so the same file can be
        dropped again."""
        if contents is None:
            return {}
        config = session_config(parse_search(search), own, activation=activation)
        name = str(filename or "the file")[:120]
        try:
            run, frame, shape = work.upload_run(work.read_upload(contents), config, ctx.cancel)
        except LOAD_ERRORS as exc:
            return {"session": {"error": f"Could not load {name}: {user_message(exc)}"}, "contents": None}
        settings = run.config.settings()
        return {"session": session_payload(run, frame, config_dataset(run.config), f"Loaded {name}: {shape}."),
                "shown": shown(run.config, name), "info": model_info(run, name), "contents": None,
                **{n: settings[n] for n in SETTINGS}}

    _own_data(app)
    training = {n: State(p.id, "value") for n, p in TRAINING_PARAMS.items()}

    @job(app, ID.TRAIN_JOB, "Training", ID.ALERT, output={"chunk": Output(ID.CHUNK, "data")},
         inputs={"tick": Input(ID.TICK, "data")}, state={"model": State(ids.MODEL, "data"), **training},
         cancel_on=[Input(ID.RESET, "n_clicks"), *(Input(p.id, "value") for p in SETTINGS.values())], interval=200,
         hide_idle_progress=False, watch=False)
    def train(ctx: JobContext, tick: dict | None, model: dict | None, **overrides: Any) -> dict:
        """One chunk of training and tracing; the transport in the browser asks for the next."""
        if not tick or not model or tick.get("run_id") != model.get("id"):
            return {}
        run = Run.from_json(model)
        target = max(P.EPOCHS.clean(tick.get("target")), 1)
        done = min(max(int(tick.get("done") or 0), 0), target)
        chunk_epochs = P.EPOCHS.clean(tick.get("epochs"))
        new_run, frames = work.train_chunk(run, chunk_epochs, overrides, cancel=ctx.cancel,
                                           progress=ctx.part(done / target, min(done + chunk_epochs, target) / target))
        return {"chunk": {"run_id": run.id, "tick": tick.get("n"), "run": new_run.to_json(), "frames": frames}}

    @job(app, ID.GEOJSON_JOB, "The GeoJSON export", ID.ALERT,
         output={"file": Output(ID.EXPORT.download, "data")}, inputs={"clicks": Input(ID.EXPORT.geojson, "n_clicks")},
         state={"current": State(ID.CURRENT, "data"), "model": State(ids.MODEL, "data")}, start=ID.EXPORT.geojson,
         retry="Press GeoJSON again.")
    def geojson(ctx: JobContext, clicks: int, current: dict | None, model: dict | None) -> dict:
        """The shown frame's partition (regions, per-layer boundaries, decision boundary), traced anew."""
        if not current:
            return {}
        text = work.geojson(Run.from_json(model), current.get("weights"), ctx.progress, ctx.cancel)
        return {"file": dcc.send_string(text, f"partition-epoch{int(current.get('epoch') or 0)}.geojson")}

    @callback(app, output={"figure": Output(ID.CURVES, "figure")}, inputs={"history": Input(ID.HISTORY, "data")})
    def curves(history: list | None) -> dict:
        return {"figure": training_curves(history) if history else empty_figure()}

    @callback(app, output={"items": Output(ID.LEGEND, "children")},
              inputs={"marks": Input(ID.LAYER, "marks"), "shade": Input(ID.SHADE, "value"),
                      "data": Input(ids.DATA, "data")})
    def legend(marks: dict | None, shade: str, data: dict | None) -> dict:
        """One swatch per layer (the layer slider's marks name them, "none" for a net without any) and per class
        of the data."""
        n_layers = sum(label != "none" for label in (marks or {}).values())
        classes = int((data or {}).get("classes") or 2)
        return {"items": legend_items(n_layers, shade, max(classes, 2))}

    _files(app, controls)
    _explain(app)
    _browser(app)


def _own_data(app: Dash) -> None:
    """Own data: a CSV read by data.from_csv (with its clear refusals), clicks on the plot, Clear."""
    @callback(app, output={"own": Output(ID.OWN, "data", allow_duplicate=True),
                           "dataset": Output(P.DATASET.id, "value", allow_duplicate=True),
                           "contents": Output(ID.OWN_CSV, "contents")},
              inputs={"contents": Input(ID.OWN_CSV, "contents")}, state={"filename": State(ID.OWN_CSV, "filename")},
              prevent_initial_call=True)
    def own_csv(contents: str | None, filename: str | None) -> dict:
        if contents is None:
            return {}
        name = str(filename or "the file")[:120]
        try:
            data = from_csv(work.read_upload(contents, LIMITS.own_csv_bytes), test_fraction=0, max_rows=OWN_POINTS)
        except LOAD_ERRORS as exc:
            dash.set_props(ID.ALERT, {"children": f"Could not read {name}: {user_message(exc)}", "className": "alert"})
            return {"contents": None}
        text = ";".join(f"{x} {y} {c}" for (x, y), c in zip(data.x_train.tolist(), data.y_train.tolist()))
        return {"own": parse_points(text), "dataset": "own", "contents": None}

    clientside(app, "playground.clickPoints", None,
               {"dataset": Input(P.DATASET.id, "value"), "cls": Input(P.CLICK_CLASS.id, "value"),
                "own": Input(ID.OWN, "data"), "clear": Input(ID.OWN_CLEAR, "n_clicks")},
               config={"graph": ID.GRAPH, "own": ID.OWN, "dataset": P.DATASET.id, "max": OWN_POINTS})


def _files(app: Dash, controls: dict[str, Output]) -> None:
    """Model files out, session files out and in."""
    @callback(app, output={"file": Output(ID.MODEL_FILE, "data")},
              inputs={"clicks": Input({"type": ID.MODEL_FORMAT, "format": ALL}, "n_clicks")},
              state={"current": State(ID.CURRENT, "data"), "model": State(ids.MODEL, "data")},
              prevent_initial_call=True)
    def model_file(clicks: list, current: dict | None, model: dict | None) -> dict:
        clicked = dash.ctx.triggered_id
        if not clicked or not any(clicks) or not current:
            return {}
        fmt = str(clicked["format"])
        raw = work.model_file(Run.from_json(model), current.get("weights"), fmt)
        return {"file": dcc.send_bytes(raw, f"splineviz-epoch{int(current.get('epoch') or 0)}.{fmt}")}

    @job(app, ID.SAVE_JOB, "Saving the session", ID.ALERT, output={"file": Output(ID.SESSION_FILE, "data")},
         inputs={"request": Input(ID.SAVE_REQUEST, "data")}, state={"model": State(ids.MODEL, "data")},
         retry="Press Download session again.")
    def save_session(ctx: JobContext, request: dict | None, model: dict | None) -> dict:
        if not request:
            return {}
        raw = work.session_file(request, model)
        return {"file": dcc.send_bytes(raw, "splineviz-session.zip")}

    @job(app, ID.OPEN_JOB, "Opening the session", ID.ALERT,
         output={"session": Output(ID.SESSION, "data", allow_duplicate=True),
                 "shown": Output(ID.SHOWN, "data", allow_duplicate=True),
                 "info": Output(ID.MODEL_INFO, "children", allow_duplicate=True),
                 "opened": Output(ID.OPENED, "data"), "contents": Output(ID.OPEN_SESSION, "contents"),
                 "own": Output(ID.OWN, "data", allow_duplicate=True),
                 **{n: Output(o.component_id, o.component_property, allow_duplicate=True) for n, o in controls.items()}},
         inputs={"contents": Input(ID.OPEN_SESSION, "contents")}, state={"filename": State(ID.OPEN_SESSION, "filename")},
         retry="Drop the session file again.")
    def open_session(ctx: JobContext, contents: str | None, filename: str | None) -> dict:
        """A session file: the run with every saved epoch traced again, the view, the other pages' results."""
        if contents is None:
            return {}
        name = str(filename or "the file")[:120]
        try:
            raw = work.read_upload(contents, LIMITS.session_bytes)
            run, frames, extra = work.open_session(raw, ctx.progress, ctx.cancel)
        except LOAD_ERRORS as exc:
            return {"session": {"error": f"Could not open {name}: {user_message(exc)}"}, "contents": None}
        view = extra["view"]
        layer, epoch = view.get("layer"), view.get("epoch")
        payload = session_payload(run, frames, config_dataset(run.config), f"Opened {name}: {len(frames)} frames.",
                                  layer=layer if isinstance(layer, int) and layer >= 0 else None,
                                  history=extra["history"], epoch=epoch if isinstance(epoch, int) else 0)
        settings = run.config.settings()
        return {"session": payload, "shown": shown(run.config, extra["upload"]), "own": run.config.points,
                "info": model_info(run, extra["upload"]), "contents": None,
                "opened": {"pages": extra["pages"], "search": extra["search"], "view": view},
                **{n: settings[n] for n in SETTINGS}}

    clientside(app, "playground.gather", Output(ID.SAVE_REQUEST, "data"),
               {"clicks": Input(ID.SAVE_SESSION, "n_clicks")},
               {"frames": State(ID.FRAMES, "data"), "history": State(ID.HISTORY, "data"),
                "shown": State(ID.SHOWN, "data"), "epoch": State(ID.EPOCH, "value"), "layer": State(ID.LAYER, "value"),
                "shade": State(ID.SHADE, "value"), "show": State(ID.SHOW, "value"), "unit": State(ID.UNIT, "data"),
                "search": State(ids.URL, "search"), "restored": State(ids.RESTORED, "data"),
                **{f"page:{store}": State(store, "data", allow_optional=True) for store in ids.SESSION_STORES}},
               config={"maxBytes": LIMITS.request_bytes // 2}, prevent_initial_call=True)
    clientside(app, "playground.restore", None, {"opened": Input(ID.OPENED, "data")},
               config={"url": ids.URL, "shade": ID.SHADE, "show": ID.SHOW, "unit": ID.UNIT, "restored": ids.RESTORED},
               prevent_initial_call=True)


def _explain(app: Dash) -> None:
    """The shown frame explained, once it settles: the region under the pointer, the unit strip, the link."""
    @callback(app, output={"text": Output(ID.HOVER_TEXT, "children")},
              inputs={"hover": Input(ID.HOVER, "data")}, state={"view": State(ID.VIEW, "data")},
              prevent_initial_call=True)
    def hover(hover: dict | None, view: dict | None) -> dict:
        if not hover or not view:
            return {}
        try:
            info = explain.region_info(explain.partition_of(view), float(hover["x"]), float(hover["y"]))
        except PartitionBudgetError:
            return {"text": f"Region details are shown for partitions of up to {LIMITS.explain_regions:,} regions."}
        except (LOAD_ERRORS + (KeyError, TypeError)) as exc:
            return {"text": f"No region details: {user_message(exc)}"}
        return {"text": region_panel(info) if info else "Outside the domain."}

    @callback(app, output={"thumbs": Output(ID.THUMBS, "data"), "unit": Output(ID.UNIT, "data"),
                           "info": Output(ID.UNIT_INFO, "children"),
                           "hover": Output(ID.HOVER_TEXT, "children", allow_duplicate=True)},
              inputs={"view": Input(ID.VIEW, "data")}, state={"selected": State(ID.UNIT, "data")},
              prevent_initial_call=True)
    def units(view: dict | None, selected: dict | None) -> dict:
        """Thumbnails of every unit of the settled frame (drawn by playground.strip in the browser); a selected
        unit stays selected if it still exists."""
        if not view:
            return {}
        try:
            model = explain.shown_model(view)
        except LOAD_ERRORS as exc:
            return {"thumbs": [], "unit": None, "info": f"No unit view: {user_message(exc)}"}
        strip = explain.unit_strip(model, view["bounds"])
        out: dict[str, Any] = {"thumbs": [[u["image"] for u in units] for units in strip],
                               "hover": HOVER_HINT}  # a new frame: point again
        if selected and selected.get("layer", 99) < len(strip) and selected.get("unit", 1e9) < len(
                strip[selected["layer"]]):
            out["info"] = unit_panel(strip[selected["layer"]][selected["unit"]], selected["layer"], selected["unit"])
        else:
            out["unit"] = None
        return out

    @callback(app, output={"link": Output(ID.LINK, "data", allow_duplicate=True)}, inputs={"view": Input(ID.VIEW, "data")},
              prevent_initial_call=True)
    def link(view: dict | None) -> dict:
        """The settled frame's weights for the address (small nets; see jobs.playground.link_value)."""
        try:
            return {"link": work.link_value(explain.shown_model(view), view.get("epoch"))} if view else {}
        except LOAD_ERRORS:
            return {"link": ""}

    @callback(app, output={"unit": Output(ID.UNIT, "data", allow_duplicate=True),
                           "info": Output(ID.UNIT_INFO, "children", allow_duplicate=True)},
              inputs={"click": Input(ID.UNIT_CLICK, "data")},
              state={"view": State(ID.VIEW, "data"), "selected": State(ID.UNIT, "data")}, prevent_initial_call=True)
    def select_unit(click: dict | None, view: dict | None, selected: dict | None) -> dict:
        """Click a unit: its line is highlighted (the painter) and its incoming weights shown; again: unselect."""
        if not click or not view:
            return {}
        try:
            unit = {"layer": int(click["layer"]), "unit": int(click["unit"])}
        except (KeyError, TypeError, ValueError):
            return {}
        if unit == selected:
            return {"unit": None, "info": "Click a unit to highlight its line and see its incoming weights."}
        weights = explain.unit_weights(explain.shown_model(view), unit["layer"], unit["unit"])
        return {"unit": unit, "info": unit_panel(weights, unit["layer"], unit["unit"])}


def region_panel(info: dict[str, Any]) -> html.Div:
    """The hover read-out: region id, pattern per layer (layers from 1), logits, probabilities, area."""
    rows = [html.Div([html.B(f"Region {info['region']:,}"), f" of {info['n_regions']:,} · area {info['area']:.4g}",
                      html.Span(f" · at ({info['x']:.3f}, {info['y']:.3f})", className="hint")])]
    rows += [html.Div([html.Span(f"layer {layer + 1} ", className="hint"), html.Code(bits, className="pattern")],
                      className="pattern-row") for layer, bits in enumerate(info["pattern"])]
    logits = ", ".join(f"{v:.3f}" for v in info["logits"])
    probs = ", ".join(f"{c}: {100 * p:.1f} %" for c, p in enumerate(info["probabilities"]))
    rows.append(html.Div([html.Span("logits ", className="hint"), logits, html.Span(" · p ", className="hint"),
                          probs]))
    data = {"data-region": str(info["region"]), "data-pattern": "|".join(info["pattern"]),
            "data-x": repr(info["x"]), "data-y": repr(info["y"]), "data-area": repr(info["area"]),
            "data-logits": ",".join(map(repr, info["logits"]))}
    return html.Div(rows, className="region-info", **data)


def unit_panel(u: dict[str, Any], layer: int, unit: int) -> html.Div:
    """A unit's incoming weights and bias (``explain.unit_weights``; layers and units counted from 1)."""
    source = "x₁, x₂" if layer == 0 else f"layer {layer} units 1–{len(u['weights'])}"
    weights = ", ".join(f"{w:+.3f}" for w in u["weights"])
    return html.Div([html.B(f"Layer {layer + 1}, unit {unit + 1}"), html.Span(f" (highlighted) · from {source}",
                                                                              className="hint"),
                     html.Div([html.Span("weights ", className="hint"), html.Code(weights)]),
                     html.Div([html.Span("bias ", className="hint"), html.Code(f"{u['bias']:+.3f}")])],
                    **{"data-unit": f"{layer}.{unit}"})


def _browser(app: Dash) -> None:
    """The browser side: transport, drawing, replay, the settled view, hover, exports, the upload size guard."""
    job_ids = ID.TRAIN_JOB
    clientside(
        app, "playground.control", None,
        written={"transport": Output(ID.TRANSPORT, "data"), "tick": Output(ID.TICK, "data"),
                 "model": Output(ids.MODEL, "data"), "data": Output(ids.DATA, "data"),
                 "layout": Output(ID.LAYOUT, "data"), "frames": Output(ID.FRAMES, "data"),
                 "history": Output(ID.HISTORY, "data"), "epoch": Output(ID.EPOCH, "value"),
                 "layerMax": Output(ID.LAYER, "max"), "layerMarks": Output(ID.LAYER, "marks"),
                 "layerValue": Output(ID.LAYER, "value"), "target": Output(ID.EPOCHS, "value"),
                 "playLabel": Output(ID.PLAY, "children"), "playClass": Output(ID.PLAY, "className"),
                 "stepDisabled": Output(ID.STEP, "disabled")},
        inputs={"session": Input(ID.SESSION, "data"), "play": Input(ID.PLAY, "n_clicks"),
                "step": Input(ID.STEP, "n_clicks"), "more": Input(ID.MORE, "n_clicks"),
                "confirm": Input(ID.CONFIRM, "n_clicks"), "pump": Input(ID.PUMP, "data")},
        state={"chunk": State(ID.CHUNK, "data"), "done": State(job_ids.done, "data"),
               "busy": State(job_ids.busy, "data"), "beat": State(job_ids.beat, "data"),
               "transport": State(ID.TRANSPORT, "data"), "model": State(ids.MODEL, "data"),
               "frames": State(ID.FRAMES, "data"), "history": State(ID.HISTORY, "data"),
               "target": State(ID.EPOCHS, "value"), "epochIndex": State(ID.EPOCH, "value")},
        config={"alert": ID.ALERT, "confirm": {"row": ID.CONFIRM_ROW, "text": ID.CONFIRM_TEXT},
                "job": job_ids._asdict(), "maxFrames": work.MAX_FRAMES, "chunkFrames": work.CHUNK_FRAMES,
                "chunkSeconds": work.CHUNK_SECONDS, "chunkBytes": work.CHUNK_BYTES, "frameBytes": work.FRAME_BYTES,
                "timing": LIMITS.browser_timing, "more": MORE_EPOCHS, "maxEpochs": P.EPOCHS.hi,
                "pump": {"id": ID.PUMP, "ms": 100, "wakeMs": 1000}},
        prevent_initial_call=True)
    clientside(
        app, "playground.render",
        output={"figure": Output(ID.GRAPH, "figure"), "epochMax": Output(ID.EPOCH, "max"),
                "epochMarks": Output(ID.EPOCH, "marks"), "statEpoch": Output(ID.STAT_EPOCH, "children"),
                "statRegions": Output(ID.STAT_REGIONS, "children"), "statLoss": Output(ID.STAT_LOSS, "children"),
                "statAccuracy": Output(ID.STAT_ACC, "children")},
        inputs={"frames": Input(ID.FRAMES, "data"), "epoch": Input(ID.EPOCH, "value"),
                "layer": Input(ID.LAYER, "value"), "shade": Input(ID.SHADE, "value"), "show": Input(ID.SHOW, "value"),
                "data": Input(ids.DATA, "data"), "unit": Input(ID.UNIT, "data")},
        state={"layout": State(ID.LAYOUT, "data"), "model": State(ids.MODEL, "data"),
               "style": State(ids.STYLE, "data")},
        config={"graph": ID.GRAPH, "replay": ID.REPLAY, "datasets": DATASETS},
        written={"current": Output(ID.CURRENT, "data")})  # see test_app: declared, it closed a loop of callbacks
    clientside(app, "playground.settle", Output(ID.VIEW, "data"),
               {"current": Input(ID.CURRENT, "data"), "transport": Input(ID.TRANSPORT, "data")},
               {"view": State(ID.VIEW, "data"), "model": State(ids.MODEL, "data"), "data": State(ids.DATA, "data")},
               prevent_initial_call=True)
    clientside(app, "playground.strip", None, {"thumbs": Input(ID.THUMBS, "data")},
               config={"container": ID.UNITS, "click": ID.UNIT_CLICK}, prevent_initial_call=True)
    clientside(app, "playground.hover", None, {"view": Input(ID.VIEW, "data")},
               config={"graph": ID.GRAPH, "hover": ID.HOVER}, prevent_initial_call=True)
    clientside(app, "playground.marker", None, {"epoch": Input(ID.EPOCH, "value"), "figure": Input(ID.CURVES, "figure")},
               {"frames": State(ID.FRAMES, "data")}, config={"graph": ID.CURVES}, prevent_initial_call=True)
    clientside(app, "playground.replay", Output(ID.REPLAY, "children"), {"clicks": Input(ID.REPLAY, "n_clicks")},
               {"epoch": State(ID.EPOCH, "value")},
               config={"graph": ID.GRAPH, "epoch": ID.EPOCH, "replay": ID.REPLAY,
                       "stats": {"epoch": ID.STAT_EPOCH, "regions": ID.STAT_REGIONS, "loss": ID.STAT_LOSS,
                                 "accuracy": ID.STAT_ACC}},
               prevent_initial_call=True)
    export_images(app, ID.EXPORT, ID.GRAPH, "playground.describe", ID.ALERT, "splineviz-partition")
    clientside(app, "playground.rearm", None, {"contents": Input(ID.UPLOAD, "contents")}, config={"upload": ID.UPLOAD},
               prevent_initial_call=True)
    clientside(app, "jobs.guardUpload", None, {"upload": Input(ID.UPLOAD, "id")},
               config={"upload": ID.UPLOAD, "alert": ID.ALERT, "maxBytes": LIMITS.model_bytes})

"""Playground: train a small net and watch its exact partition change, TensorFlow-Playground style.

Training runs as a chain of short background jobs (chunks); each returns the new weights plus one
compact frame per kept epoch, which the browser appends to its own store. The transport (play, step,
chunks, lost jobs), drawing, the epoch and layer sliders and replay all run in the browser
(assets/splineviz-5-playground.js), so the server is never in the loop per animation frame. The
Playground owns the app's shared model and data (``ids.MODEL``, ``ids.DATA``), which other pages read.
"""
from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State, dcc, html

from splineviz.data import Dataset
from splineviz.figures import empty_figure, partition_layout, training_curves
from splineviz.nets import ModelLoadError, UnsupportedLayerError
from splineviz.partition import PartitionBudgetError
from splineviz.web import ids
from splineviz.web.components import (alert, button, card, dropdown, export_buttons, field, graph, legend_items,
                                      number, progress, radio, slider, stat, view_slider)
from splineviz.web.ids import Playground as ID
from splineviz.web.jobs import playground as work
from splineviz.web.params import DATASETS, LIMITS, Playground as P
from splineviz.web.runner import JobContext, user_message
from splineviz.web.state import PlaygroundConfig, Run, config_dataset
from splineviz.web.tracing import AppFrame, points
from splineviz.web.wiring import callback, clientside, export_images, job

PATH = "/playground"
TITLE = "Playground"
SETTINGS = {"dataset": P.DATASET, "noise": P.NOISE, "layers": P.LAYERS, "width": P.WIDTH,
            "activation": P.ACTIVATION, "seed": P.SEED}  # changing one starts a new session
LOAD_ERRORS = (ModelLoadError, UnsupportedLayerError, PartitionBudgetError, ValueError)


def _controls() -> html.Div:
    return card("Data & network",
                field("Dataset", dropdown(P.DATASET)),
                field("Noise", slider(P.NOISE, {0: "0", 0.25: "0.25", 0.5: "0.5"})),
                field("Hidden layers", slider(P.LAYERS, {i: str(i) for i in range(1, 7)})),
                field("Units per layer", dropdown(P.WIDTH)),
                field("Activation", radio(P.ACTIVATION)),
                field("Learning rate", dropdown(P.LR), "SGD with momentum 0.9; changes apply from the next epoch"),
                html.Div([field("Epochs", number(P.EPOCHS)), field("Seed", number(P.SEED))], className="field-pair"),
                field("Or load a model",
                      dcc.Upload(id=ID.UPLOAD, className="upload", multiple=False, max_size=LIMITS.model_bytes,
                                 children=html.Div(["Drop a ", html.B(".pt"), " state dict or ",
                                                    html.B(".safetensors"), " here"])),
                      f"An MLP with 2 inputs, saved with torch.save(model.state_dict()); at most "
                      f"{LIMITS.model_bytes // 2**20} MiB, {LIMITS.model.max_width} units per layer, "
                      f"{LIMITS.model.max_params:,} parameters"),
                progress(ID.UPLOAD_JOB),
                class_name="controls")


def _transport() -> html.Div:
    return html.Div([
        button("▶ Train", ID.PLAY, "primary", title="Play / pause training"),
        button("Step", ID.STEP, title="Train one frame's worth of epochs"),
        button("Reset", ID.RESET, title="Re-initialise the weights"),
        progress(ID.TRAIN_JOB, always_visible=True),
    ], className="transport")


def _confirm() -> html.Div:
    """Shown instead of training when a run will be large (see jobs.playground.run_estimate)."""
    return html.Div([html.Span(id=ID.CONFIRM_TEXT), button("Train anyway", ID.CONFIRM, "primary")],
                    id=ID.CONFIRM_ROW, className="alert alert-info confirm", style={"display": "none"})


def _view() -> html.Div:
    return card(None,
                _transport(),
                _confirm(),
                html.Div(graph(ID.GRAPH, "520px"), className="graph-box"),
                html.Div([
                    html.Div([button("▶ Replay", ID.REPLAY, "ghost", title="Play back the recorded epochs"),
                              html.Div(field("Epoch", view_slider(ID.EPOCH, 0, 0, 0)), className="grow")],
                             className="slider-row"),
                    field("Partition up to layer", view_slider(ID.LAYER, 0, P.LAYERS.default - 1,
                                                               P.LAYERS.default - 1, layer_marks(P.LAYERS.default))),
                    html.Div([field("Shade regions by", radio(P.SHADE)),
                              field("Show", dcc.Checklist(id=ID.SHOW, className="radio", inline=True,
                                                          options=[{"label": "Training points", "value": "points"},
                                                                   {"label": "Decision boundary",
                                                                    "value": "decision"}],
                                                          value=["points", "decision"]))], className="field-pair"),
                ], className="view-controls"),
                class_name="view")


def _side() -> html.Div:
    return html.Div([
        card("Now", html.Div([stat("epoch", ID.STAT_EPOCH), stat("regions", ID.STAT_REGIONS),
                              stat("train loss", ID.STAT_LOSS), stat("test accuracy", ID.STAT_ACC)],
                             className="stats")),
        card("Training", graph(ID.CURVES, "390px", modebar=False)),
        card("Legend", html.Div(id=ID.LEGEND, className="legend"), export_buttons(ID.EXPORT),
             progress(ID.GEOJSON_JOB)),
    ], className="side")


def layout() -> html.Div:
    stores = [dcc.Store(id=i) for i in (ID.SESSION, ID.TRANSPORT, ID.TICK, ID.CHUNK, ID.FRAMES, ID.HISTORY,
                                        ID.LAYOUT, ID.CURRENT)]
    return html.Div([*stores, dcc.Interval(id=ID.PUMP, interval=100, disabled=True), alert(ID.ALERT),
                     html.Div([_controls(), _view(), _side()], className="playground")])


def layer_marks(n_layers: int) -> dict[int, str]:
    """Layer slider marks, counted from 1 (as splineviz-5-playground.js, layerMarks)."""
    return {i: str(i + 1) for i in range(n_layers)} if n_layers else {0: "none"}


# -- server side (thin: the work is in jobs/playground.py) ----------------------------------------------------------
def session_payload(run: Run, frame: AppFrame, data: Dataset, notice: str | None = None) -> dict[str, Any]:
    """What the browser needs to start showing a run (see splineviz-7-playground.js, control): the run, its
    first frame, the axes the painter draws under, the shared data, and the cost of a large run."""
    view = {**partition_layout(frame["bounds"]), "showlegend": False}  # legend: its own card
    shared = {"dataset": run.config.dataset, "noise": run.config.noise, "seed": run.config.seed,
              "bounds": list(data.bounds), "points": points(data)}
    return {"run": run.to_json(), "frames": [frame], "layout": view, "data": shared, "notice": notice,
            "estimate": work.run_estimate(run.config, frame)}


def register(app: Dash) -> None:
    settings = {name: Input(p.id, "value") for name, p in SETTINGS.items()}
    targets = {"lr": State(ID.LR, "value"), "epochs": State(ID.EPOCHS, "value")}

    @callback(app, output={"session": Output(ID.SESSION, "data")},
              inputs={"reset": Input(ID.RESET, "n_clicks"), **settings}, state=targets)
    def new_session(reset: int, **values: Any) -> dict:
        """Fresh weights when the data or architecture changes (fast: a small net's first trace)."""
        config = PlaygroundConfig.from_dict(values)
        try:
            run, frame = work.start_run(config)
        except LOAD_ERRORS as exc:
            return {"session": {"error": f"Invalid settings: {user_message(exc)}"}}
        return {"session": session_payload(run, frame, config_dataset(config))}

    @job(app, ID.UPLOAD_JOB, "Loading the model", ID.ALERT,
         output={"session": Output(ID.SESSION, "data", allow_duplicate=True)},
         inputs={"contents": Input(ID.UPLOAD, "contents")},
         state={"filename": State(ID.UPLOAD, "filename"), **{n: State(p.id, "value") for n, p in SETTINGS.items()},
                **targets},
         retry="Drop the file again.")
    def upload(ctx: JobContext, contents: str | None, filename: str | None, **values: Any) -> dict:
        """A dropped file: checked (size, layers, parameters) and traced here, in a job, never in the web process."""
        if contents is None:
            return {}
        config = PlaygroundConfig.from_dict(values)
        name = str(filename or "the file")[:120]
        try:
            run, frame, shape = work.upload_run(work.read_upload(contents), config, ctx.cancel)
        except LOAD_ERRORS as exc:
            return {"session": {"error": f"Could not load {name}: {user_message(exc)}"}}
        return {"session": session_payload(run, frame, config_dataset(run.config), f"Loaded {name}: {shape}.")}

    @job(app, ID.TRAIN_JOB, "Training", ID.ALERT, output={"chunk": Output(ID.CHUNK, "data")},
         inputs={"tick": Input(ID.TICK, "data")}, state={"model": State(ids.MODEL, "data"), **targets},
         cancel_on=[Input(ID.RESET, "n_clicks"), *settings.values()], interval=200, hide_idle_progress=False,
         watch=False)
    def train(ctx: JobContext, tick: dict | None, model: dict | None, lr: Any, epochs: Any) -> dict:
        """One chunk of training and tracing; the transport in the browser asks for the next."""
        if not tick or not model or tick.get("run_id") != model.get("id"):
            return {}
        run = Run.from_json(model)
        target = max(P.EPOCHS.clean(tick.get("target")), 1)
        done = min(max(int(tick.get("done") or 0), 0), target)
        chunk_epochs = P.EPOCHS.clean(tick.get("epochs"))
        new_run, frames = work.train_chunk(run, chunk_epochs, {"lr": lr, "epochs": epochs}, cancel=ctx.cancel,
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
              inputs={"marks": Input(ID.LAYER, "marks"), "shade": Input(ID.SHADE, "value")})
    def legend(marks: dict | None, shade: str) -> dict:
        """One swatch per layer: the layer slider's marks name the layers ("none" for a net without any)."""
        return {"items": legend_items(sum(label != "none" for label in (marks or {}).values()), shade)}

    _browser(app)


def _browser(app: Dash) -> None:
    """The browser side: transport, drawing, replay, exports, the upload size guard."""
    job_ids = ID.TRAIN_JOB
    clientside(
        app, "playground.control",
        output={"transport": Output(ID.TRANSPORT, "data"), "tick": Output(ID.TICK, "data"),
                "model": Output(ids.MODEL, "data"), "data": Output(ids.DATA, "data"),
                "layout": Output(ID.LAYOUT, "data"), "frames": Output(ID.FRAMES, "data"),
                "history": Output(ID.HISTORY, "data"), "epoch": Output(ID.EPOCH, "value"),
                "layerMax": Output(ID.LAYER, "max"), "layerMarks": Output(ID.LAYER, "marks"),
                "layerValue": Output(ID.LAYER, "value"), "playLabel": Output(ID.PLAY, "children"),
                "playClass": Output(ID.PLAY, "className"), "pumpDisabled": Output(ID.PUMP, "disabled"),
                "stepDisabled": Output(ID.STEP, "disabled")},
        inputs={"session": Input(ID.SESSION, "data"), "play": Input(ID.PLAY, "n_clicks"),
                "step": Input(ID.STEP, "n_clicks"), "confirm": Input(ID.CONFIRM, "n_clicks"),
                "pump": Input(ID.PUMP, "n_intervals")},
        state={"chunk": State(ID.CHUNK, "data"), "done": State(job_ids.done, "data"),
               "busy": State(job_ids.busy, "data"), "beat": State(job_ids.beat, "data"),
               "transport": State(ID.TRANSPORT, "data"), "model": State(ids.MODEL, "data"),
               "frames": State(ID.FRAMES, "data"), "history": State(ID.HISTORY, "data"),
               "target": State(ID.EPOCHS, "value"), "epochIndex": State(ID.EPOCH, "value")},
        config={"alert": ID.ALERT, "confirm": {"row": ID.CONFIRM_ROW, "text": ID.CONFIRM_TEXT},
                "job": job_ids._asdict(), "maxFrames": work.MAX_FRAMES, "chunkFrames": work.CHUNK_FRAMES,
                "chunkSeconds": work.CHUNK_SECONDS, "frameBytes": work.FRAME_BYTES, "timing": LIMITS.browser_timing},
        prevent_initial_call=True)
    clientside(
        app, "playground.render",
        output={"figure": Output(ID.GRAPH, "figure"), "epochMax": Output(ID.EPOCH, "max"),
                "epochMarks": Output(ID.EPOCH, "marks"), "statEpoch": Output(ID.STAT_EPOCH, "children"),
                "statRegions": Output(ID.STAT_REGIONS, "children"), "statLoss": Output(ID.STAT_LOSS, "children"),
                "statAccuracy": Output(ID.STAT_ACC, "children"), "current": Output(ID.CURRENT, "data")},
        inputs={"frames": Input(ID.FRAMES, "data"), "epoch": Input(ID.EPOCH, "value"),
                "layer": Input(ID.LAYER, "value"), "shade": Input(ID.SHADE, "value"), "show": Input(ID.SHOW, "value"),
                "data": Input(ids.DATA, "data")},
        state={"layout": State(ID.LAYOUT, "data"), "model": State(ids.MODEL, "data"),
               "style": State(ids.STYLE, "data")},
        config={"graph": ID.GRAPH, "replay": ID.REPLAY, "datasets": DATASETS})
    clientside(app, "playground.replay", Output(ID.REPLAY, "children"), {"clicks": Input(ID.REPLAY, "n_clicks")},
               {"epoch": State(ID.EPOCH, "value")},
               config={"graph": ID.GRAPH, "epoch": ID.EPOCH, "replay": ID.REPLAY,
                       "stats": {"epoch": ID.STAT_EPOCH, "regions": ID.STAT_REGIONS, "loss": ID.STAT_LOSS,
                                 "accuracy": ID.STAT_ACC}},
               prevent_initial_call=True)
    export_images(app, ID.EXPORT, ID.GRAPH, "playground.describe", ID.ALERT, "splineviz-partition")
    clientside(app, "jobs.guardUpload", None, {"upload": Input(ID.UPLOAD, "id")},
               config={"upload": ID.UPLOAD, "alert": ID.ALERT, "maxBytes": LIMITS.model_bytes})

"""Pruning explorer: prune the shared model (the Playground's) and see which boundaries disappear.

One-shot pruning is cheap (prune + two exact traces, ~50 ms), so the sparsity slider redraws live while
this page is shown; fine-tuning and the accuracy-vs-sparsity sweep train, so they run as background jobs.
"""
from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State, dcc, html

from splineviz.figures import empty_figure, sparsity_curves
from splineviz.nets import ModelLoadError
from splineviz.partition import PartitionBudgetError
from splineviz.web import ids
from splineviz.web.components import (alert, button, card, export_buttons, field, graph, number, progress, radio,
                                      slider)
from splineviz.web.ids import Pruning as ID
from splineviz.web.jobs import pruning as work
from splineviz.web.params import Pruning as P
from splineviz.web.runner import JobContext, user_message
from splineviz.web.state import Run
from splineviz.web.tracing import message, panels
from splineviz.web.wiring import callback, clientside, export_images, job

PATH = "/pruning"
TITLE = "Pruning"
SWEEP = [0.0, 0.2, 0.4, 0.6, 0.8, 0.9]
NO_MODEL = "train a model in the Playground first"


def layout() -> html.Div:
    controls = card("Pruning",
                    html.P("Prunes the Playground's current model (train it there first).", className="hint"),
                    field("Method", radio(P.METHOD),
                          "Node: drop units with the smallest incoming weights. Weight: zero the smallest weights. "
                          "Spline: drop units whose boundaries nearly coincide with another unit's."),
                    field("Scope", radio(P.SCOPE)),
                    field("Sparsity (%)", slider(P.SPARSITY, {i: str(i) for i in range(0, 96, 20)})),
                    html.Div(id=ID.SUMMARY, className="summary"),
                    field("Fine-tune epochs", number(P.EPOCHS)),
                    html.Div([button("Fine-tune", ID.FINETUNE, "primary"),
                              button("Cancel", ID.CANCEL, disabled=True)], className="button-row"),
                    progress(ID.FINETUNE_JOB),
                    html.Hr(),
                    html.Div([button("Compare methods", ID.SWEEP), button("Cancel", ID.SWEEP_CANCEL, disabled=True)],
                             className="button-row"),
                    progress(ID.SWEEP_JOB),
                    class_name="controls")
    figures = html.Div([
        card("Before / after", graph(ID.GRAPH, "470px", figure=empty_figure(NO_MODEL)),
             export_buttons(ID.EXPORT, geojson=False)),
        card("Accuracy vs sparsity (after fine-tuning)", graph(ID.CURVES, "300px",
                                                                figure=empty_figure("press “Compare methods”"))),
    ], className="stack")
    return html.Div([dcc.Store(id=ID.PANELS), alert(ID.ALERT), html.Div([controls, figures], className="two-col")])


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def _panels(run: Run, before: dict, after: dict, after_title: str, sparsity: float) -> dict:
    return panels([before, after], [f"before · {before['n_regions']:,} regions",
                                    f"{after_title} · {after['n_regions']:,} regions"],
                  f"{run.title} · epoch {run.epoch} · {after_title} at {100 * sparsity:.0f} % sparsity", run.arch.get("out_features", 2))


def register(app: Dash) -> None:
    choice = {"method": State(ID.METHOD, "value"), "scope": State(ID.SCOPE, "value"),
              "sparsity": State(ID.SPARSITY, "value"), "epochs": State(ID.EPOCHS, "value")}

    @callback(app, output={"panels": Output(ID.PANELS, "data"), "summary": Output(ID.SUMMARY, "children"),
                           "alert": Output(ID.ALERT, "children")},
              inputs={"method": Input(ID.METHOD, "value"), "scope": Input(ID.SCOPE, "value"),
                      "sparsity": Input(ID.SPARSITY, "value"), "model": Input(ids.MODEL, "data"),
                      "path": Input(ids.URL, "pathname")})
    def preview(method: Any, scope: Any, sparsity: Any, model: dict | None, path: str | None) -> dict:
        """Before/after partitions for one-shot pruning at the slider's sparsity (only while this page shows)."""
        if (path or "").rstrip("/") != PATH:
            return {}
        if not model:
            return {"panels": message(NO_MODEL), "summary": "", "alert": None}
        method, sparsity = P.METHOD.clean(method), P.SPARSITY.clean(sparsity) / 100
        try:
            run = Run.from_json(model)
            view = work.prune_view(run, method, sparsity, P.SCOPE.clean(scope))
        except (PartitionBudgetError, ModelLoadError, ValueError) as exc:
            return {"alert": f"Cannot prune: {user_message(exc)}", "summary": ""}
        summary = [html.Div(f"accuracy {_pct(view['acc_before'])} → {_pct(view['acc_after'])}"),
                   html.Div(f"achieved sparsity {_pct(view['achieved'])} (epoch {run.epoch})", className="hint")]
        return {"panels": _panels(run, view["before"], view["after"], f"after {method} pruning", sparsity),
                "summary": summary, "alert": None}

    @job(app, ID.FINETUNE_JOB, "Fine-tuning", ID.ALERT,
         output={"panels": Output(ID.PANELS, "data", allow_duplicate=True),
                 "summary": Output(ID.SUMMARY, "children", allow_duplicate=True)},
         inputs={"clicks": Input(ID.FINETUNE, "n_clicks")}, state={**choice, "model": State(ids.MODEL, "data")},
         start=ID.FINETUNE, cancel=ID.CANCEL, retry="Press Fine-tune to run it again.")
    def finetune(ctx: JobContext, clicks: int, method: Any, scope: Any, sparsity: Any, epochs: Any,
                 model: dict | None) -> dict:
        """Prune then fine-tune with the mask held; the right panel shows the fine-tuned partition."""
        method, sparsity, run = P.METHOD.clean(method), P.SPARSITY.clean(sparsity) / 100, Run.from_json(model)
        result = work.finetune(run, method, sparsity, P.EPOCHS.clean(epochs), P.SCOPE.clean(scope), ctx.progress,
                               ctx.cancel)
        summary = [html.Div(f"after pruning {_pct(result['acc_pruned'])} → fine-tuned {_pct(result['acc_after'])}"),
                   html.Div(f"achieved sparsity {_pct(result['achieved'])}", className="hint")]
        return {"panels": _panels(run, result["before"], result["after"], f"{method} pruned + fine-tuned", sparsity),
                "summary": summary}

    @job(app, ID.SWEEP_JOB, "Comparing methods", ID.ALERT, output={"figure": Output(ID.CURVES, "figure")},
         inputs={"clicks": Input(ID.SWEEP, "n_clicks")}, state={**choice, "model": State(ids.MODEL, "data")},
         start=ID.SWEEP, cancel=ID.SWEEP_CANCEL, retry="Press Compare methods to run it again.")
    def sweep(ctx: JobContext, clicks: int, method: Any, scope: Any, sparsity: Any, epochs: Any,
              model: dict | None) -> dict:
        """Node vs weight vs spline pruning: accuracy after fine-tuning at each sparsity."""
        curves = work.sparsity_sweep(Run.from_json(model), SWEEP, P.EPOCHS.clean(epochs), list(P.METHOD.choices),
                                     P.SCOPE.clean(scope), ctx.progress, ctx.cancel)
        return {"figure": sparsity_curves(curves, current=P.SPARSITY.clean(sparsity) / 100)}

    clientside(app, "pages.panels", Output(ID.GRAPH, "figure"),
               {"panels": Input(ID.PANELS, "data"), "data": Input(ids.DATA, "data")}, {"style": State(ids.STYLE, "data")},
               config={"graph": ID.GRAPH, "points": True}, prevent_initial_call=True)
    export_images(app, ID.EXPORT, ID.GRAPH, "pages.describe", ID.ALERT, "splineviz-pruning")

"""Pruning explorer: pruning as training proceeds, and the shared model (the Playground's) pruned now.

A schedule run (one-shot at an epoch, gradual, or at the early-bird ticket; node, weight or spline pruning) trains
the Playground's network on its data from its initial weights as one background job; its frames stream to the
page as they are traced (the job's ``stream`` output, the ``LIVE`` store), and the finished run lands in ``RUNS``
and is copied to ``LIVE``, the JSON store the animation, its replay and the curves are drawn from
(``assets/splineviz-8p-pruning.js``). Units
a pruning step removed are drawn dashed for a few frames after it, and each step's decision change is measured
exactly. A second run beside the first (another method or schedule, same initial weights) plays in step; the two
are computed at the same time, in two threads of the job holding two of the tab's job slots, when a second is free.

Beside Run, the run's cost is told before it starts (``web.jobs.pruning.estimate``: the net traced at initialisation
in the web process, with the run budget ``LIMITS.run_regions``, once per architecture), and a run past the limits is
refused there and again by the job, in the same words.

One-shot pruning of the Playground's current model is cheap (prune + two exact traces, ~50 ms), so the sparsity
slider redraws live while this page is shown; fine-tuning and the accuracy-vs-sparsity sweep run as jobs.
"""
from __future__ import annotations

import uuid
from typing import Any

from dash import Dash, Input, Output, State, dcc, html

from splineviz.figures import empty_figure, schedule_curves, sparsity_curves
from splineviz.nets import ModelLoadError
from splineviz.partition import PartitionBudgetError
from splineviz.web import framestore, ids
from splineviz.web.components import (alert, button, card, dropdown, export_buttons, field, graph, number, progress,
                                      radio, slider, view_slider)
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


def _schedule_controls() -> list:
    """The schedule's own controls: each kind's fields show only while it is chosen (``fields`` below)."""
    return [
        field("Schedule", radio(P.SCHEDULE),
              "One-shot: prune once at an epoch. Gradual: prune every few epochs towards the final sparsity on "
              "Zhu & Gupta's cubic curve. Early-bird: prune when the partition stops moving (the spline rule)."),
        html.Div([field("Epochs", number(P.RUN_EPOCHS)),
                  html.Div(field("Prune at epoch", number(P.AT)), id=ID.AT_ROW)], className="field-pair"),
        html.Div([field("From epoch", number(P.START)), field("to", number(P.END)), field("every", number(P.EVERY))],
                 id=ID.GRADUAL_ROW, className="field-pair"),
        html.Div(field("Early-bird threshold", slider(P.EB_THRESHOLD, {0.05: "0.05", 0.16: "0.16", 0.3: "0.3"}),
                       "Prune at the first epoch whose partition distance to each of the previous 3 is below it"),
                 id=ID.EB_ROW),
        field("Beside it", dropdown(P.COMPARE), "The same net from the same initial weights, pruned another way"),
        html.Div(id=ID.ESTIMATE, className="hint estimate"),
        html.Div([button("▶ Run", ID.RUN, "primary"), button("Cancel", ID.RUN_CANCEL, disabled=True)],
                 className="button-row"),
        progress(ID.RUN_JOB),
    ]


def layout() -> html.Div:
    controls = card("Pruning",
                    field("Method", radio(P.METHOD),
                          "Node: drop units with the smallest incoming weights. Weight: zero the smallest weights. "
                          "Spline: drop units whose boundaries nearly coincide with another unit's."),
                    field("Scope", radio(P.SCOPE)),
                    field("Sparsity (%)", slider(P.SPARSITY, {i: str(i) for i in range(0, 96, 20)}),
                          "The final sparsity of a schedule; the one-shot sparsity of the model pruned now"),
                    html.H4("While training", className="card-subtitle"),
                    html.P("Trains the Playground's network on its data from its initial weights, pruning as "
                           "scheduled.", className="hint"),
                    *_schedule_controls(),
                    html.H4("The Playground's model, now", className="card-subtitle"),
                    html.P("Prunes the Playground's current model (train it there first).", className="hint"),
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
        card("Pruning while training",
             html.Div(id=ID.INFO, className="anim-info"),
             graph(ID.ANIM, "470px", figure=empty_figure("press “Run”")),
             html.Div([button("▶ Replay", ID.REPLAY, "ghost", title="Play back the recorded epochs"),
                       html.Div(field("Epoch", view_slider(ID.STEP, 0, 0, 0)), className="grow")],
                      className="slider-row"),
             export_buttons(ID.ANIM_EXPORT, geojson=False)),
        card("Accuracy, loss, regions and sparsity", graph(ID.ANIM_CURVES, "520px", modebar=False,
                                                           figure=empty_figure("press “Run”"))),
        card("Before / after", graph(ID.GRAPH, "470px", figure=empty_figure(NO_MODEL)),
             export_buttons(ID.EXPORT, geojson=False)),
        card("Accuracy vs sparsity (after fine-tuning)", graph(ID.CURVES, "300px",
                                                                figure=empty_figure("press “Compare methods”"))),
    ], className="stack")
    stores = [dcc.Store(id=i) for i in (ID.PANELS, ID.RUNS, ID.LIVE, ID.NUMBERS, ID.FETCHED, ID.MODEL, ID.DATA)]
    return html.Div([*stores, alert(ID.ALERT), html.Div([controls, figures], className="two-col")])


def _groups(groups: list[list[list[int]]] | None) -> list[html.Div]:
    """Spline pruning's merges as Fig. 4 groups them: per layer, units whose boundaries coincide (kept unit first)."""
    if groups is None:
        return []
    if not any(groups):
        return [html.Div("No units were similar enough to merge at this sparsity.", className="hint")]
    return [html.Div(f"layer {layer}: " + "; ".join(f"units {', '.join(map(str, g))} → unit {g[0]}" for g in found),
                     className="hint spline-groups")
            for layer, found in enumerate(groups, start=1) if found]


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
                      "sparsity": Input(ID.SPARSITY, "value"), "model": Input(ID.MODEL, "data")},
              prevent_initial_call=True)
    def preview(method: Any, scope: Any, sparsity: Any, model: dict | None) -> dict:
        """Before/after partitions for one-shot pruning at the slider's sparsity (the model is this page's copy,
        made while it shows). Not called as the page mounts, before the copy: it would replace an opened
        session's panels with "no model yet"."""
        if not model:
            return {"panels": message(NO_MODEL), "summary": "", "alert": None}
        method, sparsity = P.METHOD.clean(method), P.SPARSITY.clean(sparsity) / 100
        try:
            run = Run.from_json(model)
            view = work.prune_view(run, method, sparsity, P.SCOPE.clean(scope))
        except (PartitionBudgetError, ModelLoadError, ValueError) as exc:
            return {"alert": f"Cannot prune: {user_message(exc)}", "summary": ""}
        summary = [html.Div(f"accuracy {_pct(view['acc_before'])} → {_pct(view['acc_after'])}"),
                   html.Div(f"achieved sparsity {_pct(view['achieved'])} (epoch {run.epoch}); the predicted class "
                            f"changed on {100 * view['change']:.2f} % of the box (exact)", className="hint"),
                   *_groups(view["groups"])]
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

    _schedule_run(app)
    clientside(app, "pages.panels", Output(ID.GRAPH, "figure"),
               {"panels": Input(ID.PANELS, "data"), "data": Input(ID.DATA, "data")}, {"style": State(ids.STYLE, "data")},
               config={"graph": ID.GRAPH, "points": True}, prevent_initial_call=True)
    export_images(app, ID.EXPORT, ID.GRAPH, "pages.describe", ID.ALERT, "splineviz-pruning")


# -- pruning while training ---------------------------------------------------------------------------------------
SPEC = {"kind": P.SCHEDULE, "method": P.METHOD, "scope": P.SCOPE, "epochs": P.RUN_EPOCHS, "at": P.AT,
        "start": P.START, "end": P.END, "every": P.EVERY, "threshold": P.EB_THRESHOLD}


def schedule_spec(values: dict[str, Any], sparsity: Any) -> work.ScheduleSpec:
    """The schedule the controls describe, every value cleaned."""
    return work.ScheduleSpec(sparsity=P.SPARSITY.clean(sparsity) / 100,
                             **{name: param.clean(values.get(name)) for name, param in SPEC.items()})


def _schedule_run(app: Dash) -> None:
    @callback(app, output={"at": Output(ID.AT_ROW, "style"), "gradual": Output(ID.GRADUAL_ROW, "style"),
                           "eb": Output(ID.EB_ROW, "style")}, inputs={"kind": Input(ID.SCHEDULE, "value")})
    def fields(kind: Any) -> dict:
        """Only the chosen schedule's own fields."""
        kind = P.SCHEDULE.clean(kind)
        return {name: None if name == {"oneshot": "at", "gradual": "gradual", "earlybird": "eb"}[kind]
                else {"display": "none"} for name in ("at", "gradual", "eb")}

    @callback(app, output={"text": Output(ID.ESTIMATE, "children"), "style": Output(ID.ESTIMATE, "className")},
              inputs={**{name: Input(param.id, "value") for name, param in SPEC.items()},
                      "sparsity": Input(ID.SPARSITY, "value"), "compare": Input(ID.COMPARE, "value"),
                      "model": Input(ID.MODEL, "data")}, running=[estimating(ID.ESTIMATE)])
    def estimate(sparsity: Any, compare: Any, model: dict | None, **values: Any) -> dict:
        """What a run with these controls will cost, or why it is refused (from this page's copy of the model)."""
        if not model:
            return {}
        specs = work.compare_specs(schedule_spec(values, sparsity), P.COMPARE.clean(compare))
        return estimate_line(work.estimate(Run.from_json(model), specs))

    @job(app, ID.RUN_JOB, "The pruning run", ID.ALERT, output={"runs": Output(ID.RUNS, "data")},
         inputs={"clicks": Input(ID.RUN, "n_clicks")},
         state={**{name: State(param.id, "value") for name, param in SPEC.items()},
                "sparsity": State(ID.SPARSITY, "value"), "compare": State(ID.COMPARE, "value"),
                "model": State(ids.MODEL, "data")},
         start=ID.RUN, cancel=ID.RUN_CANCEL, retry="Press Run to run it again.", stream=Output(ID.LIVE, "data"))
    def run_schedule(ctx: JobContext, clicks: int, sparsity: Any, compare: Any, model: dict | None,
                     **values: Any) -> dict:
        """Train with the schedule (and the comparison beside it), streaming frames as they are traced."""
        run, token = Run.from_json(model), uuid.uuid4().hex
        specs = work.compare_specs(schedule_spec(values, sparsity), P.COMPARE.clean(compare))
        check(work.estimate(run, specs))
        with ctx.slots(len(specs)) as held:  # two runs side by side: at the same time if the tab has a slot free
            if held < len(specs):
                ctx.progress(0.0, "no second job slot free in this tab: the runs go one after the other")
            runs = work.scheduled_run(run, specs, ctx.progress, ctx.cancel, parallel=held >= len(specs),
                                      stream=lambda partial: ctx.stream(work.animation_store(run, partial, token),
                                                                        work.STREAM_RESEND_S),
                                      keep=framestore.keeper(token))
        return {"runs": work.animation_store(run, runs, token)}

    @callback(app, output={"figure": Output(ID.ANIM_CURVES, "figure")}, inputs={"shown": Input(ID.NUMBERS, "data")})
    def curves(shown: dict | None) -> dict:
        if not shown or not isinstance(shown.get("runs"), list):
            return {}
        epochs = [h["epoch"] for run in shown["runs"] for h in run.get("history") or []]
        return {"figure": schedule_curves(shown["runs"], marker=max(epochs, default=0))}

    animation(app, ID.ANIM, ID, [ID.ANIM_CURVES], points=True)
    export_images(app, ID.ANIM_EXPORT, ID.ANIM, "pruning.describe", ID.ALERT, "splineviz-pruning-run")


def estimating(element: str) -> tuple[Output, str, str]:
    """``running`` flag of an estimate callback: its line is marked busy while the estimate is computed (the pilot
    trains the net for the run's epochs: seconds at 6 x 64), and the style sheet says so."""
    return (Output(element, "aria-busy"), "true", "false")


def estimate_line(estimate: work.RunEstimate) -> dict[str, str]:
    """The estimate's line above a page's Run button: its words, styled as a refusal where it is one."""
    return {"text": estimate.message, "style": "hint estimate" + (" refused" if estimate.refused else "")}


def check(estimate: work.RunEstimate) -> None:
    """Refuse a run the app's limits do not allow, before any work (the page said so beside its Run button)."""
    if estimate.refused:
        raise ValueError(estimate.refused)


def animation(app: Dash, graph: str, page: Any, curves: list[str], points: bool) -> None:
    """The browser side of a page's scheduled-run animation on ``graph`` (splineviz-8p-pruning.js): painting the
    step the slider selects (following a run in progress), the replay, and the marker on ``curves``. ``page``
    holds the ids STEP, REPLAY, INFO, RUNS, LIVE, NUMBERS, FETCHED and DATA (its copy of the app's); LIVE is what is
    shown: the job streams into it, and the finished run (RUNS) is copied there, marked ``final``
    (splineviz-8p-pruning.js, land). Frames a payload lacks are fetched one by one from ``framestore`` (FETCHED
    counts them, so that they are drawn). NUMBERS
    is LIVE without its frames, for server callbacks (a large run's frames are far more than a request may carry),
    written at most every ``NUMBERS_EVERY_MS`` while the run streams."""
    clientside(app, "pruning.land", Output(page.LIVE, "data", allow_duplicate=True), {"runs": Input(page.RUNS, "data")},
               prevent_initial_call=True)
    clientside(app, "pruning.numbers", None, {"live": Input(page.LIVE, "data")},
               config={"store": page.NUMBERS, "everyMs": NUMBERS_EVERY_MS}, prevent_initial_call=True)
    clientside(app, "pruning.render",
               output={"figure": Output(graph, "figure"),
                       "stepMax": Output(page.STEP, "max"), "stepMarks": Output(page.STEP, "marks"),
                       "stepValue": Output(page.STEP, "value"), "info": Output(page.INFO, "children")},
               inputs={"live": Input(page.LIVE, "data"), "step": Input(page.STEP, "value"),
                       "data": Input(page.DATA, "data"), "fetched": Input(page.FETCHED, "data")},
               state={"style": State(ids.STYLE, "data")},
               config={"graph": graph, "curves": curves, "points": points, "ghostFrames": GHOST_FRAMES,
                       "fetched": page.FETCHED, "keepMinutes": framestore.KEEP_S // 60,
                       "frames": app.config.requests_pathname_prefix.rstrip("/") + framestore.FRAMES_PATH},
               prevent_initial_call=True)
    clientside(app, "pruning.replay", Output(page.REPLAY, "children"), {"clicks": Input(page.REPLAY, "n_clicks")},
               {"step": State(page.STEP, "value")},
               config={"graph": graph, "step": page.STEP, "replay": page.REPLAY}, prevent_initial_call=True)


GHOST_FRAMES = 4  # frames after a pruning step on which the removed units' lines stay, dashed
NUMBERS_EVERY_MS = 1000  # a streaming run's curves and distances are redrawn at most this often

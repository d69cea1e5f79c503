"""Early-bird, live: watch the partition settle, the ticket fire, and the pruned ticket train on.

One background job trains the Playground's network on its data from its initial weights until the spline
early-bird rule fires (the largest activation-pattern distance to the previous ``WINDOW`` epochs, on a 100 x 100
grid over the drawn box, below the threshold), prunes there, and trains the pruned ticket for the remaining epochs
(``web.jobs.earlybird``). Frames and the epoch-to-epoch distances stream to the page as they are computed: the
distance matrix and the window-maximum curve fill in, and the partition animation runs through the ticket into
the pruned net's training. The threshold slider is applied to the computed distances at once (where the rule
would fire); pruning elsewhere needs a new run.
"""
from __future__ import annotations

import uuid
from typing import Any

import numpy as np
from dash import Dash, Input, Output, State, dcc, html

from splineviz.earlybird import window_maxima
from splineviz.figures import distance_to_previous, earlybird_heatmap, empty_figure
from splineviz.web import framestore, ids
from splineviz.web.components import (alert, button, card, export_buttons, field, graph, number, progress, radio,
                                      slider, view_slider)
from splineviz.web.ids import EarlyBird as ID
from splineviz.web.jobs.earlybird import WINDOW, distance_matrix, earlybird_run, ticket_at
from splineviz.web.jobs.pruning import STREAM_RESEND_S, ScheduleSpec, animation_store, estimate as work_estimate
from splineviz.web.pages.pruning import animation, check, estimate_line, estimating
from splineviz.web.params import EarlyBird as P, Pruning as PR
from splineviz.web.runner import JobContext
from splineviz.web.state import Run
from splineviz.web.wiring import callback, export_images, job

PATH = "/earlybird"
TITLE = "Early-bird"


def layout() -> html.Div:
    controls = card("Early-bird ticket",
                    html.P("Trains the Playground's data and network from its initial weights and compares each "
                           "epoch's activation patterns with every earlier epoch's. The ticket is the first epoch "
                           f"whose distance to each of the previous {WINDOW} epochs is below the threshold; there "
                           "the network is pruned, and the pruned ticket trains on.", className="hint"),
                    field("Epochs", number(P.EPOCHS)),
                    field("Threshold", slider(P.THRESHOLD, {0.05: "0.05", 0.16: "0.16", 0.3: "0.3"}),
                          "Applied at once to the distances already computed; the run prunes where the rule fired "
                          "when it ran"),
                    field("Prune the ticket by", radio(P.METHOD)),
                    field("to sparsity (%)", slider(P.SPARSITY, {i: str(i) for i in range(0, 96, 20)})),
                    html.Div(id=ID.ESTIMATE, className="hint estimate"),
                    html.Div([button("▶ Run", ID.RUN, "primary"), button("Cancel", ID.CANCEL, disabled=True)],
                             className="button-row"),
                    progress(ID.JOB),
                    html.Div(id=ID.SUMMARY, className="summary"),
                    class_name="controls")
    hint = empty_figure("press “Run”")
    figures = html.Div([
        card("The partition through training, the ticket and the pruned ticket's training",
             html.Div(id=ID.INFO, className="anim-info"),
             graph(ID.FRAMES, "440px", figure=hint),
             html.Div([button("▶ Replay", ID.REPLAY, "ghost", title="Play back the recorded epochs"),
                       html.Div(field("Epoch", view_slider(ID.STEP, 0, 0, 0)), className="grow")],
                      className="slider-row"),
             export_buttons(ID.EXPORT, geojson=False)),
        html.Div([card("Partition distance between epochs", graph(ID.HEATMAP, "430px", modebar=False, figure=hint)),
                  card("Largest distance to the previous epochs", graph(ID.CURVE, "430px", figure=hint))],
                 className="pair"),
    ], className="stack")
    stores = [dcc.Store(id=i) for i in (ID.RUNS, ID.LIVE, ID.NUMBERS, ID.FETCHED, ID.MODEL, ID.DATA)]
    return html.Div([*stores, alert(ID.ALERT), html.Div([controls, figures], className="two-col")])


def spec(epochs: Any, threshold: Any, method: Any, sparsity: Any) -> ScheduleSpec:
    """The early-bird schedule the controls describe, every value cleaned."""
    return ScheduleSpec(kind="earlybird", method=P.METHOD.clean(method), scope=PR.SCOPE.default,
                        sparsity=P.SPARSITY.clean(sparsity) / 100, epochs=P.EPOCHS.clean(epochs),
                        threshold=P.THRESHOLD.clean(threshold), window=WINDOW)


def register(app: Dash) -> None:
    controls = {"epochs": ID.EPOCHS, "threshold": ID.THRESHOLD, "method": ID.METHOD, "sparsity": ID.SPARSITY}

    @callback(app, output={"text": Output(ID.ESTIMATE, "children"), "style": Output(ID.ESTIMATE, "className")},
              inputs={**{name: Input(i, "value") for name, i in controls.items()},
                      "model": Input(ID.MODEL, "data")}, running=[estimating(ID.ESTIMATE)])
    def estimate(model: dict | None, **values: Any) -> dict:
        """What a run with these controls will cost, or why it is refused (from this page's copy of the model)."""
        if not model:
            return {}
        return estimate_line(work_estimate(Run.from_json(model), [spec(**values)]))

    @job(app, ID.JOB, "The early-bird run", ID.ALERT, output={"runs": Output(ID.RUNS, "data")},
         inputs={"clicks": Input(ID.RUN, "n_clicks")},
         state={**{name: State(i, "value") for name, i in controls.items()}, "model": State(ids.MODEL, "data")},
         start=ID.RUN, cancel=ID.CANCEL, retry="Press Run to run it again.", stream=Output(ID.LIVE, "data"))
    def run(ctx: JobContext, clicks: int, epochs: Any, threshold: Any, method: Any, sparsity: Any,
            model: dict | None) -> dict:
        run, token = Run.from_json(model), uuid.uuid4().hex
        chosen = spec(epochs, threshold, method, sparsity)
        check(work_estimate(run, [chosen]))
        result = earlybird_run(run, chosen, ctx.progress, ctx.cancel, stream=lambda partial: ctx.stream(
            animation_store(run, [partial], token), STREAM_RESEND_S), keep=framestore.keeper(token))
        return {"runs": animation_store(run, [result], token)}

    @callback(app, output={"heatmap": Output(ID.HEATMAP, "figure"), "curve": Output(ID.CURVE, "figure"),
                           "summary": Output(ID.SUMMARY, "children")},
              inputs={"shown": Input(ID.NUMBERS, "data"), "threshold": Input(ID.THRESHOLD, "value")})
    def distances(shown: dict | None, threshold: Any) -> dict:
        """The distances so far, and the rule at the slider's threshold applied to them (live)."""
        if not shown or not shown.get("runs"):
            return {}
        return figures(shown["runs"][0], P.THRESHOLD.clean(threshold), finished=bool(shown.get("final")))

    animation(app, ID.FRAMES, ID, [ID.CURVE], points=False)
    export_images(app, ID.EXPORT, ID.FRAMES, "pruning.describe", ID.ALERT, "splineviz-earlybird")


def figures(run: dict, threshold: float, finished: bool) -> dict:
    """Heatmap, window-maximum curve and summary of a run (``DistanceRecorder.payload``) at ``threshold``."""
    rows, window, ticket = run.get("rows") or [], int(run.get("window") or WINDOW), run.get("ticket")
    if not rows:
        return {}
    epochs = list(range(len(rows)))
    maxima = window_maxima(distance_matrix(rows), window)
    fires = ticket_at(rows, threshold, window, ticket)
    ran_at = run["spec"]["threshold"]
    summary = [html.Div(f"Ticket at epoch {ticket} of {run['spec']['epochs']} (threshold {ran_at:g}): "
                        f"{_event_words(run)}" if ticket is not None else
                        (f"No ticket within {len(rows) - 1} epochs at threshold {ran_at:g}." if finished
                         else f"Watching for the ticket: epoch {len(rows) - 1} so far."))]
    if threshold != ran_at:
        where = (f"the rule fires at epoch {fires}" if fires is not None else
                 "the rule does not fire" + (f" before epoch {ticket}, where this run pruned" if ticket is not None
                                             else " on these epochs"))
        summary.append(html.Div(f"At threshold {threshold:g} {where}; press Run to train with it.", className="hint"))
    return {"heatmap": earlybird_heatmap(np.asarray(distance_matrix(rows)), epochs, ticket, ran_at),
            "curve": distance_to_previous(epochs, maxima.tolist(), ticket, threshold, fires, ticket,
                                          marker=epochs[-1]),
            "summary": summary}


def _event_words(run: dict) -> str:
    event = next((e for e in run.get("events") or [] if e.get("ticket")), None)
    if event is None:
        return "nothing left to prune."
    history = run.get("history") or []
    final = history[-1].get("test_metric") if history else None
    change = "" if event.get("change") is None else f"; the decision moved on {100 * event['change']:.1f} % of the box"
    end = "" if final is None else f"; test accuracy at the end {100 * final:.1f} %"
    return f"pruned to {100 * event['achieved']:.0f} %{change}{end}."

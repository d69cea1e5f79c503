"""Early-bird: how early does the partition settle? Epoch x epoch distances and the detected ticket.

Trains the shared model's architecture on the shared data from scratch (a background job), records every
epoch, and compares activation sign patterns on a 100 x 100 grid of the data's domain.
"""
from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State, dcc, html

from splineviz.figures import distance_to_previous, earlybird_heatmap, empty_figure
from splineviz.web import ids
from splineviz.web.components import alert, button, card, export_buttons, field, graph, number, progress, slider
from splineviz.web.ids import EarlyBird as ID
from splineviz.web.jobs.earlybird import WINDOW, earlybird
from splineviz.web.params import EarlyBird as P
from splineviz.web.runner import JobContext
from splineviz.web.state import Run
from splineviz.web.tracing import panels
from splineviz.web.wiring import clientside, export_images, job

PATH = "/earlybird"
TITLE = "Early-bird"


def layout() -> html.Div:
    controls = card("Early-bird ticket",
                    html.P("Trains the Playground's data and network from scratch and compares every pair of "
                           "epochs' activation patterns. The ticket is the first epoch whose distance to each of "
                           f"the previous {WINDOW} epochs is below the threshold.", className="hint"),
                    field("Epochs", number(P.EPOCHS)),
                    field("Threshold", slider(P.THRESHOLD, {0.05: "0.05", 0.16: "0.16", 0.3: "0.3"})),
                    html.Div([button("Run", ID.RUN, "primary"), button("Cancel", ID.CANCEL, disabled=True)],
                             className="button-row"),
                    progress(ID.JOB),
                    html.Div(id=ID.SUMMARY, className="summary"),
                    class_name="controls")
    hint = empty_figure("press “Run”")
    figures = html.Div([
        html.Div([card("Partition distance between epochs", graph(ID.HEATMAP, "430px", modebar=False, figure=hint)),
                  card("Distance to the previous epochs", graph(ID.CURVE, "430px", figure=hint))],
                 className="pair"),
        card("Partition at the ticket vs at the end", graph(ID.FRAMES, "420px", figure=hint),
             export_buttons(ID.EXPORT, geojson=False)),
    ], className="stack")
    return html.Div([dcc.Store(id=ID.PANELS), alert(ID.ALERT), html.Div([controls, figures], className="two-col")])


def register(app: Dash) -> None:
    @job(app, ID.JOB, "The early-bird run", ID.ALERT,
         output={"heatmap": Output(ID.HEATMAP, "figure"), "curve": Output(ID.CURVE, "figure"),
                 "panels": Output(ID.PANELS, "data"), "summary": Output(ID.SUMMARY, "children")},
         inputs={"clicks": Input(ID.RUN, "n_clicks")},
         state={"epochs": State(ID.EPOCHS, "value"), "threshold": State(ID.THRESHOLD, "value"),
                "model": State(ids.MODEL, "data")},
         start=ID.RUN, cancel=ID.CANCEL, retry="Press Run to run it again.")
    def run(ctx: JobContext, clicks: int, epochs: Any, threshold: Any, model: dict | None) -> dict:
        run = Run.from_json(model)
        result = earlybird(run, P.EPOCHS.clean(epochs), P.THRESHOLD.clean(threshold), ctx.progress, ctx.cancel)
        ticket = result["ticket"]
        titles = [f"epoch {f['stats']['epoch']} · {f['n_regions']:,} regions" for f in result["frames"]]
        if ticket is not None:
            titles[0] = "ticket: " + titles[0]
        last = len(result["epochs"]) - 1
        summary = (f"Ticket at epoch {ticket} of {last}; test accuracy then {100 * result['accuracy'][ticket]:.1f} %, "
                   f"at the end {100 * result['accuracy'][-1]:.1f} %" if ticket is not None
                   else f"No ticket within {last} epochs.")
        return {"heatmap": earlybird_heatmap(result["matrix"], result["epochs"], ticket, result["threshold"]),
                "curve": distance_to_previous(result["epochs"], result["to_previous"], ticket, result["threshold"]),
                "panels": panels(result["frames"], titles, f"{run.title} · early-bird "
                                 + (f"ticket at epoch {ticket}" if ticket is not None else "run without a ticket"),
                                 run.arch.get("out_features", 2)),
                "summary": summary}

    clientside(app, "pages.panels", Output(ID.FRAMES, "figure"), {"panels": Input(ID.PANELS, "data")},
               {"style": State(ids.STYLE, "data")}, config={"graph": ID.FRAMES, "points": False},
               prevent_initial_call=True)
    export_images(app, ID.EXPORT, ID.FRAMES, "pages.describe", ID.ALERT, "splineviz-earlybird")

"""Early-bird: how early does the partition settle? Epoch x epoch distances and the detected ticket.

Trains the Playground's configuration from scratch (a background job), records every epoch, and
compares activation sign patterns on a 100 x 100 grid of the data's domain.
"""
from __future__ import annotations

import dash
from dash import Dash, Input, Output, State, dcc, html

from splineviz.figures import distance_to_previous, earlybird_heatmap, empty_figure, side_by_side
from splineviz.partition import PartitionBudgetError
from splineviz.web import jobs
from splineviz.web.components import alert, button, card, field, graph, job, progress, reporter, slider
from splineviz.web.pages.playground import CONFIG_CONTROLS
from splineviz.web.session import PlaygroundConfig

PATH = "/earlybird"
TITLE = "Early-bird"
URL_STATE = {"eb_epochs": ("eb-epochs", "value"), "eb_threshold": ("eb-threshold", "value")}


def layout() -> html.Div:
    controls = card("Early-bird ticket",
                    html.P("Trains the Playground's data and network from scratch and compares every pair of "
                           "epochs' activation patterns. The ticket is the first epoch whose distance to each of "
                           "the previous 3 epochs is below the threshold.", className="hint"),
                    field("Epochs", dcc.Input(id="eb-epochs", type="number", min=5, max=500, value=60,
                                              debounce=True)),
                    field("Threshold", slider("eb-threshold", 0.02, 0.3, 0.01, 0.16,
                                              {0.05: "0.05", 0.16: "0.16", 0.3: "0.3"})),
                    html.Div([button("Run", "eb-run", "primary"), button("Cancel", "eb-cancel", disabled=True)],
                             className="button-row"),
                    progress("eb"),
                    html.Div(id="eb-summary", className="summary"),
                    class_name="controls")
    hint = empty_figure("press “Run”")
    figures = html.Div([
        html.Div([card("Partition distance between epochs", graph("eb-heatmap", "430px", modebar=False, figure=hint)),
                  card("Distance to the previous epochs", graph("eb-curve", "430px", figure=hint))],
                 className="pair"),
        card("Partition at the ticket vs at the end", graph("eb-frames", "420px", figure=hint)),
    ], className="stack")
    return html.Div([alert("eb-alert"), html.Div([controls, figures], className="two-col")])


def register(app: Dash) -> None:
    @app.callback(Output("eb-heatmap", "figure"), Output("eb-curve", "figure"), Output("eb-frames", "figure"),
                  Output("eb-summary", "children"), Output("eb-alert", "children"),
                  Input("eb-run", "n_clicks"), State("eb-epochs", "value"), State("eb-threshold", "value"),
                  *[State(c, "value") for c in CONFIG_CONTROLS], State("pg-lr", "value"), State("session-id", "data"),
                  **job("eb", "eb-run", "eb-cancel"))
    def run(set_progress, _n, epochs, threshold, dataset, noise, layers, width, activation, seed, lr, _session_id):
        try:
            config = PlaygroundConfig.from_dict({"dataset": dataset, "noise": noise, "layers": layers,
                                                 "width": width, "activation": activation, "seed": seed, "lr": lr})
            result = jobs.earlybird(config, int(epochs or 60), float(threshold),
                                    progress=reporter(set_progress))
        except (PartitionBudgetError, ValueError) as exc:
            return *[dash.no_update] * 4, f"Early-bird run failed: {exc}"
        ticket = result["ticket"]
        heat = earlybird_heatmap(result["matrix"], result["epochs"], ticket, result["threshold"])
        curve = distance_to_previous(result["epochs"], result["to_previous"], ticket, result["threshold"])
        titles = [f"epoch {f['epoch']} · {f['n_regions']} regions" for f in result["frames"]]
        if ticket is not None:
            titles[0] = "ticket: " + titles[0]
        frames = side_by_side(result["frames"], titles)
        final_acc = result["accuracy"][-1]
        summary = (f"Ticket at epoch {ticket} of {len(result['epochs']) - 1}; "
                   f"test accuracy then {100 * result['accuracy'][ticket]:.1f} %, at the end {100 * final_acc:.1f} %"
                   if ticket is not None else f"No ticket within {len(result['epochs']) - 1} epochs.")
        return heat, curve, frames, summary, None

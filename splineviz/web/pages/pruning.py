"""Pruning explorer: prune the playground's current model and see which boundaries disappear.

One-shot pruning is cheap (prune + two exact traces, ~50 ms), so the sparsity slider redraws live;
fine-tuning and the accuracy-vs-sparsity sweep train, so they run as background jobs.
"""
from __future__ import annotations

import dash
import numpy as np
from dash import Dash, Input, Output, State, dcc, html

from splineviz.figures import empty_figure, point_traces, side_by_side, sparsity_curves, unpack
from splineviz.partition import PartitionBudgetError
from splineviz.web import jobs
from splineviz.web.components import (alert, button, card, export_buttons, field, graph, job, progress, radio,
                                      reporter, slider)

PATH = "/pruning"
TITLE = "Pruning"
METHODS = {"node": "Node", "weight": "Weight", "spline": "Spline"}
SCOPES = {"layerwise": "Layer-wise", "global": "Global"}
SWEEP = [0.0, 0.2, 0.4, 0.6, 0.8, 0.9]
URL_STATE = {"method": ("pr-method", "value"), "scope": ("pr-scope", "value"),
             "sparsity": ("pr-sparsity", "value")}


def layout() -> html.Div:
    controls = card("Pruning",
                    html.P("Prunes the Playground's current model (train it there first).", className="hint"),
                    field("Method", radio("pr-method", METHODS, "node"),
                          "Node: drop units with the smallest incoming weights. Weight: zero the smallest weights. "
                          "Spline: drop units whose boundaries nearly coincide with another unit's."),
                    field("Scope", radio("pr-scope", SCOPES, "layerwise")),
                    field("Sparsity (%)", slider("pr-sparsity", 0, 95, 5, 50,
                                                 {i: str(i) for i in range(0, 96, 20)})),
                    html.Div(id="pr-summary", className="summary"),
                    field("Fine-tune epochs", dcc.Input(id="pr-ft-epochs", type="number", min=1, max=500, value=30,
                                                        debounce=True)),
                    html.Div([button("Fine-tune", "pr-finetune", "primary"),
                              button("Cancel", "pr-cancel", disabled=True)], className="button-row"),
                    progress("pr"),
                    html.Hr(),
                    html.Div([button("Compare methods", "pr-sweep"), button("Cancel", "pr-sweep-cancel",
                                                                            disabled=True)], className="button-row"),
                    progress("pr-sweep"),
                    class_name="controls")
    figures = html.Div([
        card("Before / after", graph("pr-graph", "470px"), export_buttons("pr", geojson=False)),
        card("Accuracy vs sparsity (after fine-tuning)", graph("pr-curves", "300px",
                                                                figure=empty_figure("press “Compare methods”"))),
    ], className="stack")
    return html.Div([dcc.Store(id="pr-export"), alert("pr-alert"),
                     html.Div([controls, figures], className="two-col")])


def _points(points: dict | None) -> list[dict]:
    """The playground's training points (packed for the browser) as point traces."""
    if not points:
        return []
    return point_traces(np.c_[unpack(points["x"]), unpack(points["y"])], unpack(points["c"]))


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def register(app: Dash) -> None:
    @app.callback(Output("pr-graph", "figure"), Output("pr-summary", "children"), Output("pr-alert", "children"),
                  Input("pr-method", "value"), Input("pr-scope", "value"), Input("pr-sparsity", "value"),
                  Input("pg-run", "data"), State("pg-points", "data"))
    def preview(method, scope, sparsity, run, points):
        """Before/after partitions for one-shot pruning at the slider's sparsity."""
        if not run:
            return empty_figure("train a model in the Playground first"), "", None
        try:
            view = jobs.prune_view(run, method, sparsity / 100, scope)
        except (PartitionBudgetError, ValueError) as exc:
            return dash.no_update, "", f"Cannot prune: {exc}"
        fig = side_by_side([view["before"], view["after"]],
                           [f"before · {view['before']['n_regions']} regions",
                            f"after {method} pruning · {view['after']['n_regions']} regions"], _points(points))
        summary = [html.Div(f"accuracy {_pct(view['acc_before'])} → {_pct(view['acc_after'])}"),
                   html.Div(f"achieved sparsity {_pct(view['achieved'])} (epoch {run['epoch']})", className="hint")]
        return fig, summary, None

    @app.callback(Output("pr-graph", "figure", allow_duplicate=True),
                  Output("pr-summary", "children", allow_duplicate=True),
                  Output("pr-alert", "children", allow_duplicate=True),
                  Input("pr-finetune", "n_clicks"),
                  State("pg-run", "data"), State("pr-method", "value"), State("pr-scope", "value"),
                  State("pr-sparsity", "value"), State("pr-ft-epochs", "value"), State("pg-points", "data"),
                  State("session-id", "data"),
                  **job("pr", "pr-finetune", "pr-cancel"))
    def finetune(set_progress, _n, run, method, scope, sparsity, epochs, points, _session_id):
        """Prune then fine-tune with the mask held; the right panel shows the fine-tuned partition."""
        if not run:
            return dash.no_update, dash.no_update, "Train a model in the Playground first."
        before = jobs.prune_view(run, method, 0.0, scope)["before"]
        result = jobs.finetune(run, method, sparsity / 100, int(epochs or 30), scope,
                               progress=reporter(set_progress))
        fig = side_by_side([before, result["after"]],
                           [f"before · {before['n_regions']} regions",
                            f"{method} pruned + fine-tuned · {result['after']['n_regions']} regions"], _points(points))
        summary = [html.Div(f"after pruning {_pct(result['acc_pruned'])} → fine-tuned {_pct(result['acc_after'])}"),
                   html.Div(f"achieved sparsity {_pct(result['achieved'])}", className="hint")]
        return fig, summary, None

    @app.callback(Output("pr-curves", "figure"), Input("pr-sweep", "n_clicks"),
                  State("pg-run", "data"), State("pr-scope", "value"), State("pr-ft-epochs", "value"),
                  State("pr-sparsity", "value"), State("session-id", "data"),
                  **job("pr-sweep", "pr-sweep", "pr-sweep-cancel"))
    def sweep(set_progress, _n, run, scope, epochs, sparsity, _session_id):
        """Node vs weight vs spline pruning: accuracy after fine-tuning at each sparsity."""
        if not run:
            return empty_figure("train a model in the Playground first")
        curves = jobs.sparsity_sweep(run, SWEEP, int(epochs or 30), list(METHODS), scope,
                                     progress=reporter(set_progress))
        return sparsity_curves(curves, current=sparsity / 100)

    for fmt in ("png", "svg"):
        app.clientside_callback(
            f"function(n) {{ return window.dash_clientside.splineviz.download('pr-graph', '{fmt}', n); }}",
            Output("pr-export", "data", allow_duplicate=True), Input(f"pr-{fmt}", "n_clicks"),
            prevent_initial_call=True)

"""Experiments: run the paper's reproductions (splineviz.experiments) with a progress bar and view their output."""
from __future__ import annotations

import dash
from dash import Dash, Input, Output, State, dcc, html

from splineviz.experiments import EXPERIMENTS
from splineviz.partition import Cancelled
from splineviz.web import jobs
from splineviz.web.components import alert, button, card, field, job, progress, reporter
PATH = "/experiments"
TITLE = "Experiments"
DEFAULT = next(iter(EXPERIMENTS))
URL_STATE = {"experiment": ("ex-name", "value"), "quick": ("ex-quick", "value")}


def layout() -> html.Div:
    options = [{"label": name, "value": name} for name in EXPERIMENTS]
    controls = card("Run an experiment",
                    field("Experiment", dcc.Dropdown(id="ex-name", options=options, value=DEFAULT, clearable=False)),
                    html.P(id="ex-description", className="hint"),
                    field("Mode", dcc.RadioItems(id="ex-quick", className="radio", inline=True, value="quick",
                                                 options=[{"label": "Quick (minutes)", "value": "quick"},
                                                          {"label": "Full (paper settings)", "value": "full"}])),
                    html.Div([button("Run", "ex-run", "primary"), button("Cancel", "ex-cancel", disabled=True)],
                             className="button-row"),
                    progress("ex"),
                    html.Code("python -m splineviz.experiments NAME --quick", className="hint"),
                    class_name="controls")
    output = card("Results", html.Div(id="ex-output", children=html.P("Run an experiment to see its figures and "
                                                                       "tables here.", className="hint")))
    return html.Div([alert("ex-alert"), html.Div([controls, output], className="two-col")])


def _results(result: dict) -> list:
    figures = [html.Figure([html.Img(src=f"data:image/png;base64,{f['png']}", className="result-image"),
                            html.Figcaption(f["name"])]) for f in result["figures"]]
    tables = [html.Div([html.H4(t["name"]), dcc.Markdown(t["markdown"], className="table")])
              for t in result["tables"]]
    return [html.P([html.B(result["name"]), f" · {result['seconds']:.1f} s · output in ", html.Code(result["out_dir"])]),
            dcc.Markdown(result["summary"], className="summary"), html.Div(figures, className="result-grid"), *tables]


def register(app: Dash) -> None:
    @app.callback(Output("ex-description", "children"), Input("ex-name", "value"))
    def describe(name):
        return EXPERIMENTS[name].description if name in EXPERIMENTS else ""

    @app.callback(Output("ex-output", "children"), Output("ex-alert", "children"),
                  Input("ex-run", "n_clicks"), State("ex-name", "value"), State("ex-quick", "value"),
                  State("session-id", "data"),
                  **job("ex", "ex-run", "ex-cancel", interval=500))
    def run(set_progress, _n, name, mode, _session_id):
        try:
            result = jobs.run_experiment(name, mode == "quick",
                                         progress=reporter(set_progress))
        except (Cancelled, TypeError, ValueError, FileNotFoundError, KeyError) as exc:
            return dash.no_update, f"{name} did not finish: {exc}"
        return _results(result), None

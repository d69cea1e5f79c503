"""Experiments: run the paper's reproductions (splineviz.experiments) with a progress bar and view their output."""
from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State, dcc, html

from splineviz.experiments import EXPERIMENTS
from splineviz.web.components import alert, button, card, dropdown, field, progress, radio
from splineviz.web.ids import Experiments as ID
from splineviz.web.jobs.experiments import run_experiment
from splineviz.web.params import Experiments as P
from splineviz.web.runner import JobContext
from splineviz.web.wiring import callback, job

PATH = "/experiments"
TITLE = "Experiments"


def layout() -> html.Div:
    controls = card("Run an experiment",
                    field("Experiment", dropdown(P.NAME)),
                    html.P(id=ID.DESCRIPTION, className="hint"),
                    field("Mode", radio(P.MODE)),
                    html.Div([button("Run", ID.RUN, "primary"), button("Cancel", ID.CANCEL, disabled=True)],
                             className="button-row"),
                    progress(ID.JOB),
                    html.Code("python -m splineviz.experiments NAME --quick", className="hint"),
                    class_name="controls")
    output = card("Results", html.Div(id=ID.OUTPUT, children=html.P("Run an experiment to see its figures and "
                                                                    "tables here.", className="hint")))
    return html.Div([alert(ID.ALERT), html.Div([controls, output], className="two-col")])


def _results(result: dict) -> list:
    figures = [html.Figure([html.Img(src=f"data:image/png;base64,{f['png']}", className="result-image"),
                            html.Figcaption(f["name"])]) for f in result["figures"]]
    tables = [html.Div([html.H4(t["name"]), dcc.Markdown(t["markdown"], className="table")])
              for t in result["tables"]]
    return [html.P([html.B(result["name"]), f" · {result['seconds']:.1f} s · output in ",
                    html.Code(result["out_dir"])]),
            dcc.Markdown(result["summary"], className="summary"), html.Div(figures, className="result-grid"), *tables]


def register(app: Dash) -> None:
    @callback(app, output={"text": Output(ID.DESCRIPTION, "children")}, inputs={"name": Input(ID.EXPERIMENT, "value")})
    def describe(name: Any) -> dict:
        return {"text": EXPERIMENTS[P.NAME.clean(name)].description}

    @job(app, ID.JOB, "The experiment", ID.ALERT, output={"output": Output(ID.OUTPUT, "children")},
         inputs={"clicks": Input(ID.RUN, "n_clicks")},
         state={"name": State(ID.EXPERIMENT, "value"), "mode": State(ID.MODE, "value")},
         start=ID.RUN, cancel=ID.CANCEL, retry="Press Run to run it again.", interval=500)
    def run(ctx: JobContext, clicks: int, name: Any, mode: Any) -> dict:
        result = run_experiment(P.NAME.clean(name), P.MODE.clean(mode) == "quick", ctx.progress, ctx.cancel)
        return {"output": _results(result)}

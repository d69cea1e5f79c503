"""Experiments: run the paper's reproductions (splineviz.experiments) with a progress bar and view their output.

Figures are drawn as interactive plotly graphs (zoom, hover, the modebar's camera for a PNG); every figure's
rendered PNG and every table's CSV and Markdown are plain download links, so nothing needs a server path.
Failures and cancellations are reported in the page's alert by the job's watch (``wiring.job``).
"""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

from dash import Dash, Input, Output, State, dcc, html

from splineviz.experiments import EXPERIMENTS
from splineviz.web.components import GRAPH_CONFIG, alert, button, card, dropdown, field, progress, radio
from splineviz.web.ids import Experiments as ID
from splineviz.web.jobs.experiments import run_experiment
from splineviz.web.params import Experiments as P
from splineviz.web.runner import JobContext
from splineviz.web.wiring import callback, job

PATH = "/experiments"
TITLE = "Experiments"
FIGURE_HEIGHT = 440  # px, for figures that do not set their own


def layout() -> html.Div:
    controls = card("Run an experiment",
                    field("Experiment", dropdown(P.NAME)),
                    html.P(id=ID.DESCRIPTION, className="hint"),
                    field("Mode", radio(P.MODE)),
                    html.Div([button("Run", ID.RUN, "primary"), button("Cancel", ID.CANCEL, disabled=True)],
                             className="button-row"),
                    progress(ID.JOB),
                    html.P(["From a terminal: ", html.Code("python -m splineviz.experiments NAME --quick")],
                           className="hint"),
                    class_name="controls")
    output = card("Results", html.Div(id=ID.OUTPUT, children=html.P("Run an experiment to see its figures and "
                                                                    "tables here.", className="hint")))
    return html.Div([alert(ID.ALERT), html.Div([controls, output], className="two-col")])


def download_link(label: str, filename: str, mime: str, payload: str, base64: bool = False) -> html.A:
    """A link that saves ``payload`` as ``filename``: the content travels in the page, no server file is needed."""
    href = f"data:{mime};base64,{payload}" if base64 else f"data:{mime};charset=utf-8,{quote(payload)}"
    return html.A(label, href=href, download=filename, className="btn btn-ghost download")


def interactive(spec: dict[str, Any], name: str) -> dcc.Graph:
    """An experiment's figure as a responsive plotly graph: its fixed width dropped so it fits any screen."""
    layout = {k: v for k, v in spec.get("layout", {}).items() if k not in ("width", "height", "autosize")}
    height = spec.get("layout", {}).get("height") or FIGURE_HEIGHT
    config = {**GRAPH_CONFIG, "toImageButtonOptions": {"format": "png", "filename": name, "scale": 2}}
    return dcc.Graph(figure={"data": spec.get("data", []), "layout": layout}, config=config,
                     style={"height": f"{height}px"}, className="result-graph")


def results(result: dict) -> list:
    """The page's view of ``jobs.experiments.run_experiment``'s output."""
    figures = [html.Figure([interactive(f["figure"], f["name"]),
                            html.Figcaption([html.Span(f["name"]),
                                             *([download_link("PNG", f["name"] + ".png", "image/png", f["png"],
                                                              base64=True)] if f.get("png") else [])])])
               for f in result["figures"]]
    tables = []
    for t in result["tables"]:
        links = [download_link("CSV", t["name"] + ".csv", "text/csv", t["csv"])] if t.get("csv") else []
        links.append(download_link("Markdown", t["name"] + ".md", "text/markdown", t["markdown"]))
        tables.append(html.Div([html.Div([html.H4(t["name"]), *links], className="table-head"),
                                dcc.Markdown(t["markdown"], className="table")], className="result-table"))
    mode = "quick" if result.get("quick") else "full"
    return [html.P([html.B(result["name"]), f" · {mode} mode · {result['seconds']:.1f} s"]),
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
        return {"output": results(result)}

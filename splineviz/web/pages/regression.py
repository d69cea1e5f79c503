"""Regression (1-D): a ReLU net learns the sawtooth; its exact fit and its knots, per layer, at every epoch.

One background job trains ``mlp(1, widths, 1)`` on the sawtooth and traces every epoch on [-1, 1]
(``web.jobs.regression``); each epoch's newest trace streams to the page while it trains, and the finished run's
traces (plain JSON, a few hundred numbers an epoch) drive the epoch and layer sliders, which redraw
``figures.regression_figure`` on the server (the figures are tiny).
"""
from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State, dcc, html

from splineviz.data import sawtooth
from splineviz.figures import empty_figure, regression_figure
from splineviz.web.components import alert, button, card, dropdown, field, graph, number, progress, slider, view_slider
from splineviz.web.ids import Regression as ID
from splineviz.web.jobs.regression import RegressionSpec, dataset, partition, payload, train
from splineviz.web.params import Regression as P
from splineviz.web.runner import JobContext
from splineviz.web.wiring import callback, job

PATH = "/regression"
TITLE = "Regression (1-D)"


def layout() -> html.Div:
    controls = card("Sawtooth regression",
                    html.P("A ReLU network with one input and one output learns the two-peak sawtooth on [-1, 1] "
                           "(mean squared error, Adam, batch 64). Its fit is piecewise linear; every epoch's is "
                           "traced exactly: the knots, where some unit switches, are drawn per layer.",
                           className="hint"),
                    field("Hidden widths", dcc.Input(id=P.WIDTHS.id, type="text", value=P.WIDTHS.default,
                                                     debounce=True, placeholder="e.g. 8 or 16, 16",
                                                     className="text-input"),
                          "Comma-separated units per hidden layer (1-64 each, up to 6 layers)"),
                    field("Epochs", number(P.EPOCHS)),
                    field("Learning rate", dropdown(P.LR)),
                    field("Noise", slider(P.NOISE, {0: "0", 0.25: "0.25", 0.5: "0.5"}),
                          "Standard deviation of the Gaussian noise added to the targets"),
                    field("Seed", number(P.SEED), "Data, initial weights and batch order"),
                    html.Div([button("▶ Train", ID.TRAIN, "primary"), button("Cancel", ID.CANCEL, disabled=True)],
                             className="button-row"),
                    progress(ID.JOB),
                    class_name="controls")
    view = card("The exact fit and its knots",
                html.Div(id=ID.SUMMARY, className="summary"),
                graph(ID.GRAPH, "460px", figure=empty_figure("press “Train”")),
                field("Epoch", view_slider(ID.EPOCH, 0, 0, 0)),
                field("Knots of layers 1 to", view_slider(ID.LAYER, 0, 0, 0, {0: "1"}, from_one=True)))
    stores = [dcc.Store(id=i) for i in (ID.RUNS, ID.LIVE)]
    return html.Div([*stores, alert(ID.ALERT), html.Div([controls, html.Div([view], className="stack")],
                                                        className="two-col")])


def register(app: Dash) -> None:
    @job(app, ID.JOB, "The regression run", ID.ALERT, output={"runs": Output(ID.RUNS, "data")},
         inputs={"clicks": Input(ID.TRAIN, "n_clicks")},
         state={"widths": State(ID.WIDTHS, "value"), "epochs": State(ID.EPOCHS, "value"),
                "lr": State(ID.LR, "value"), "noise": State(ID.NOISE, "value"), "seed": State(ID.SEED, "value")},
         start=ID.TRAIN, cancel=ID.CANCEL, retry="Press Train to run it again.", stream=Output(ID.LIVE, "data"))
    def run(ctx: JobContext, clicks: int, widths: Any, epochs: Any, lr: Any, noise: Any, seed: Any) -> dict:
        spec = spec_of(widths, epochs, lr, noise, seed)
        _, records = train(spec, ctx.progress, ctx.cancel,
                           on_record=lambda rec: ctx.stream(payload(spec, [rec])))
        return {"runs": payload(spec, records)}

    @callback(app, output={"max": Output(ID.EPOCH, "max"), "epoch": Output(ID.EPOCH, "value"),
                           "epoch_marks": Output(ID.EPOCH, "marks"),
                           "layers": Output(ID.LAYER, "max"), "marks": Output(ID.LAYER, "marks"),
                           "layer": Output(ID.LAYER, "value")},
              inputs={"runs": Input(ID.RUNS, "data")})
    def sliders(runs: dict | None) -> dict:
        """A finished run shows its last epoch with every layer's knots."""
        if not runs or not runs.get("epochs"):
            return {}
        last, final = len(runs["spec"]["widths"]) - 1, len(runs["epochs"]) - 1
        return {"max": final, "epoch": final, "epoch_marks": {0: "0", final: str(final)}, "layers": last,
                "marks": {i: str(i + 1) for i in range(last + 1)}, "layer": last}

    @callback(app, output={"figure": Output(ID.GRAPH, "figure"), "summary": Output(ID.SUMMARY, "children")},
              inputs={"runs": Input(ID.RUNS, "data"), "live": Input(ID.LIVE, "data"),
                      "epoch": Input(ID.EPOCH, "value"), "layer": Input(ID.LAYER, "value")})
    def show(runs: dict | None, live: dict | None, epoch: Any, layer: Any) -> dict:
        """While training: the newest epoch; after: the chosen epoch, knots of the chosen layers."""
        shown = live or runs
        if not shown or not shown.get("epochs"):
            return {}
        records = shown["epochs"]
        rec = records[-1] if live else records[min(max(int(epoch or 0), 0), len(records) - 1)]
        return view(RegressionSpec(**{**shown["spec"], "widths": tuple(shown["spec"]["widths"])}), rec,
                    None if live else int(layer or 0))


def spec_of(widths: Any, epochs: Any, lr: Any, noise: Any, seed: Any) -> RegressionSpec:
    """The run's settings from the controls, each cleaned by its Param."""
    return RegressionSpec(widths=tuple(int(w) for w in P.WIDTHS.clean(widths).split(",")),
                          epochs=P.EPOCHS.clean(epochs), lr=P.LR.clean(lr), noise=P.NOISE.clean(noise),
                          seed=P.SEED.clean(seed))


def view(spec: RegressionSpec, rec: dict, up_to_layer: int | None) -> dict:
    """The figure and summary of one epoch's record, knots of layers up to ``up_to_layer`` (0-based; None: all)."""
    p = partition(rec)
    arch = "-".join(map(str, (1, *spec.widths, 1)))
    fig = regression_figure(p, dataset(spec), up_to_layer=up_to_layer, target=sawtooth,
                            title=f"{arch} net, epoch {rec['epoch']}: {p.n_regions:,} linear pieces")
    per_layer = ", ".join(f"{c:,} after layer {i + 1}" for i, c in enumerate(rec["counts"]))
    test = "" if rec["test_rmse"] is None else f", test {rec['test_rmse']:.4f}"
    summary = [html.Div(f"Epoch {rec['epoch']}: {p.n_regions:,} linear pieces ({per_layer}); "
                        f"{p.n_regions - 1:,} knots."),
               html.Div(f"RMSE: train {rec['train_rmse']:.4f}{test}.")]
    return {"figure": fig, "summary": summary}

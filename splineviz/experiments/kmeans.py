"""K-means with an overparametrised start and centroid pruning vs kmeans++ (paper Fig. 1b and Fig. 5).

The paper's point: like a wide network, K-means started with many more centroids than needed and pruned down
during the Lloyd iterations escapes bad random initialisations, matching the careful kmeans++ seeding. Pure numpy so
it runs anywhere in seconds.

Pruning rule (ours, precise): after every Lloyd update while more than ``k_final`` centroids remain, remove
``ceil(prune_rate * excess)`` centroids one at a time, each time the centroid whose removal increases the inertia
least — moving its points to their second-nearest centroid costs ``sum(d2_second - d2_nearest)`` over its points.
Empty and duplicate centroids cost (almost) nothing and so go first. Costs are updated after each removal.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from splineviz.experiments._common import Context, mean_std
from splineviz.experiments._plots import square_panels

K_FINAL = 64


@dataclass
class KMeansFit:
    centroids: np.ndarray
    inertia: float        # mean squared distance of a point to its centroid
    iterations: int


def squared_distances(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(n, k) squared Euclidean distances, by the expansion that keeps it one matmul."""
    d = (x * x).sum(1)[:, None] - 2.0 * x @ c.T + (c * c).sum(1)[None, :]
    return np.maximum(d, 0.0)


def init_centroids(x: np.ndarray, k: int, method: str, rng: np.random.Generator) -> np.ndarray:
    """'random': k distinct data points; 'kmeans++': greedy D^2 seeding.

    Greedy kmeans++ (2 + log k candidates per step, keep the one lowering the potential most) is what
    scikit-learn ships, so the baseline is the strong one practitioners actually use.
    """
    if method == "random":
        return x[rng.choice(len(x), size=k, replace=False)].copy()
    if method != "kmeans++":
        raise ValueError(f"unknown init {method!r}; use 'random' or 'kmeans++'")
    trials = 2 + int(math.log(k))
    centroids = np.empty((k, x.shape[1]))
    centroids[0] = x[rng.integers(len(x))]
    d2 = squared_distances(x, centroids[:1])[:, 0]
    for i in range(1, k):
        candidates = rng.choice(len(x), size=trials, p=d2 / d2.sum())
        options = np.minimum(d2[None, :], squared_distances(x[candidates], x))
        best = int(options.sum(1).argmin())
        centroids[i], d2 = x[candidates[best]], options[best]
    return centroids


def _two_nearest(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    top = np.argpartition(d, 1, axis=1)[:, :2]
    rows = np.arange(len(d))[:, None]
    swap = d[rows, top[:, :1]] > d[rows, top[:, 1:]]
    top = np.where(swap, top[:, ::-1], top)
    return top[:, 0], top[:, 1]


def prune_centroids(x: np.ndarray, centroids: np.ndarray, n_remove: int) -> np.ndarray:
    """Greedily remove the n_remove centroids whose removal raises the inertia least (see module docstring)."""
    d = squared_distances(x, centroids)
    k = len(centroids)
    nearest, second = _two_nearest(d)
    alive = np.ones(k, dtype=bool)
    rows = np.arange(len(x))
    for _ in range(n_remove):
        gap = d[rows, second] - d[rows, nearest]
        cost = np.bincount(nearest, weights=gap, minlength=k)
        cost[~alive] = np.inf
        j = int(np.argmin(cost))
        alive[j] = False
        d[:, j] = np.inf
        hit = (nearest == j) | (second == j)
        nearest[hit], second[hit] = _two_nearest(d[hit])
    return centroids[alive]


def kmeans(x: np.ndarray, k_final: int, k_start: int, init: str, rng: np.random.Generator,
           prune_rate: float = 0.3, max_iter: int = 300, tol: float = 1e-8) -> KMeansFit:
    """Lloyd's algorithm from k_start >= k_final centroids, pruning during the iterations until k_final remain.

    With k_start == k_final this is plain Lloyd (empty clusters keep their centroid). Converged when no centroid
    moves by more than tol (squared) after pruning has finished.
    """
    if not k_final <= k_start <= len(x):
        raise ValueError(f"need k_final <= k_start <= n points, got {k_final}, {k_start}, {len(x)}")
    c = init_centroids(x, k_start, init, rng)
    for it in range(1, max_iter + 1):
        labels = squared_distances(x, c).argmin(1)
        counts = np.bincount(labels, minlength=len(c))
        sums = np.zeros_like(c)
        np.add.at(sums, labels, x)
        new = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], c)
        excess = len(new) - k_final
        if excess > 0:
            c = prune_centroids(x, new, max(1, math.ceil(prune_rate * excess)))
            continue
        shift = ((new - c) ** 2).sum(1).max() if len(new) == len(c) else np.inf
        c = new
        if shift <= tol:
            break
    inertia = float(squared_distances(x, c).min(1).mean())
    return KMeansFit(c, inertia, it)


def recovered_fraction(centroids: np.ndarray, centres: np.ndarray) -> float:
    """Share of true centres with a centroid within a quarter of the smallest centre spacing.

    A centroid shared by two Gaussians sits half a spacing from each, so it does not count as recovering either.
    """
    spacing = np.sqrt(squared_distances(centres, centres) + np.diag(np.full(len(centres), np.inf))).min()
    return float((np.sqrt(squared_distances(centres, centroids).min(1)) < spacing / 4).mean())


def _figures(ctx: Context, rows: list[dict], x: np.ndarray, centres: np.ndarray,
             examples: dict[str, np.ndarray]) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("final inertia (mean squared distance)",
                                                        "true Gaussians recovered"))
    for init, colour in (("random", "#d62728"), ("kmeans++", "#1f77b4")):
        sel = [r for r in rows if r["init"] == init]
        ks = [r["k_start"] for r in sel]
        for col, key in ((1, "inertia"), (2, "recovered")):
            fig.add_trace(go.Scatter(x=ks, y=[r[f"{key}_mean"] for r in sel], mode="lines+markers", name=init,
                                     legendgroup=init, showlegend=col == 1, line=dict(color=colour),
                                     error_y=dict(type="data", array=[r[f"{key}_std"] for r in sel])),
                          row=1, col=col)
    fig.update_xaxes(title_text="starting clusters (64 remain after pruning)", type="log",
                     tickvals=sorted({r["k_start"] for r in rows}))
    fig.update_yaxes(title_text="mean squared distance to the centroid (mean ± sd)", type="log", row=1, col=1)
    fig.update_yaxes(title_text="share of the 64 Gaussians recovered", tickformat=".0%", row=1, col=2)
    fig.update_layout(title="K-means: overparametrisation + pruning vs kmeans++ (64 Gaussians)")
    ctx.figure(fig, "kmeans_inertia")

    fig = make_subplots(rows=1, cols=len(examples), subplot_titles=list(examples), horizontal_spacing=0.06)
    for i, (label, c) in enumerate(examples.items(), start=1):
        # all SVG traces, drawn in order: WebGL points would be painted over the centroids
        fig.add_trace(go.Scatter(x=x[:, 0], y=x[:, 1], mode="markers", name="data",
                                 marker=dict(size=2.5, color="#c7c7c7"), showlegend=i == 1), row=1, col=i)
        fig.add_trace(go.Scatter(x=centres[:, 0], y=centres[:, 1], mode="markers", name="true centres",
                                 marker=dict(symbol="x-thin", size=9, line=dict(width=2, color="black")),
                                 showlegend=i == 1), row=1, col=i)
        fig.add_trace(go.Scatter(x=c[:, 0], y=c[:, 1], mode="markers", name="final centroids",
                                 marker=dict(size=9, color="rgba(214,39,40,0.85)", line=dict(width=1, color="white")),
                                 showlegend=i == 1), row=1, col=i)
    lo, hi = float(x.min()) - 0.3, float(x.max()) + 0.3
    square_panels(fig, 1, len(examples), (lo, hi, lo, hi))
    fig.update_layout(title="Mixture of 64 Gaussians and the final 64 centroids (seed 0)", width=1500, height=560)
    ctx.figure(fig, "kmeans_data")


def _points(n: int, data_seed: int) -> tuple[np.ndarray, np.ndarray]:
    from splineviz.data import grid_centers, make_dataset

    data = make_dataset("gaussian_grid64", n=n, seed=data_seed)
    return np.concatenate([data.x_train, data.x_test]).astype(np.float64), grid_centers()  # clustering uses all


def task(init: str, k_start: int, seeds: list[int], n: int, data_seed: int, progress: Any = None,
         cancel: Any = None) -> dict[str, Any]:
    """Every seed of one (initialisation, starting K): final inertia, Gaussians recovered, and the first centroids."""
    x, centres = _points(n, data_seed)
    rows, first = [], None
    for s in seeds:
        fit = kmeans(x, K_FINAL, k_start, init, np.random.default_rng(s))
        rows.append(dict(init=init, k_start=k_start, seed=s, inertia=fit.inertia,
                         recovered=recovered_fraction(fit.centroids, centres), iterations=fit.iterations))
        first = fit.centroids.tolist() if first is None else first
    return {"rows": rows, "centroids": first}


def run(ctx: Context) -> None:
    k_starts = [64, 128, 256] if ctx.quick else [64, 96, 128, 192, 256, 384, 512]
    seeds = ctx.seeds(full=20, quick=3)
    n = 64 * (20 if ctx.quick else 100)
    tasks = [dict(init=init, k_start=k0, seeds=seeds, n=n, data_seed=ctx.seed)
             for init in ("random", "kmeans++") for k0 in k_starts]
    out = ctx.map(task, tasks, lambda t: f"{t['init']} from {t['k_start']}")
    raw = [row for o in out for row in o["rows"]]
    examples = {f"{t['init']}, start {t['k_start']}": np.asarray(o["centroids"]) for t, o in zip(tasks, out)
                if t["k_start"] == k_starts[0] or (t["init"] == "random" and t["k_start"] == k_starts[-1])}

    rows = []
    for init in ("random", "kmeans++"):
        for k0 in k_starts:
            runs = [r for r in raw if r["init"] == init and r["k_start"] == k0]
            inertia_m, inertia_s = mean_std([r["inertia"] for r in runs])
            rec_m, rec_s = mean_std([r["recovered"] for r in runs])
            rows.append(dict(init=init, k_start=k0, overparam=k0 / K_FINAL, inertia_mean=inertia_m,
                             inertia_std=inertia_s, recovered_mean=rec_m, recovered_std=rec_s,
                             iterations_mean=float(np.mean([r["iterations"] for r in runs])), seeds=len(runs)))
    ctx.table(raw, "kmeans_runs", main=False)
    ctx.table(rows, "kmeans")
    x, centres = _points(n, ctx.seed)
    _figures(ctx, rows, x, centres, examples)

    by = {(r["init"], r["k_start"]): r for r in rows}
    rand0, pp0, rand_big = by["random", K_FINAL], by["kmeans++", K_FINAL], by["random", k_starts[-1]]
    ctx.result.summary = (
        f"mean inertia over {len(seeds)} seeds: random init K=64 {rand0['inertia_mean']:.4g} "
        f"({100 * rand0['recovered_mean']:.0f}% recovered), kmeans++ K=64 {pp0['inertia_mean']:.4g} "
        f"({100 * pp0['recovered_mean']:.0f}%), random init from {k_starts[-1]} pruned to 64 "
        f"{rand_big['inertia_mean']:.4g} ({100 * rand_big['recovered_mean']:.0f}%)")

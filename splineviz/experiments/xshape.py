"""X-shape toy: node pruning at 20..95 % and whether the decision boundary stays an X (paper Fig. 2b).

Protocol (authors' code): 2,000 points uniform on [-5, 5]^2, class 1 where |y| > |x|, 80/20 split; a 2-20-2 ReLU
net trained with SGD (lr 0.01, batch 256, 400 epochs); node pruning by the smallest first-layer weight-row norm,
then retraining the surviving weights from their original initial values.

"X-shaped" (our measurable criterion; the paper judges by eye and, like it, we judge the shape, reporting the
accuracy separately — the paper's 80 % net keeps the X while its accuracy drops). With the decision boundary traced
exactly:
* its length-weighted mean distance to the nearest diagonal (y = x or y = -x) is <= 0.25 (2.5 % of the domain),
* it covers both diagonals: >= 80 % of 200 evenly spaced points on them lie within 0.5 of the boundary.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from splineviz.experiments._common import Context
from splineviz.experiments._plots import add_partition, grid_shape

SPARSITIES = (0.2, 0.4, 0.6, 0.8, 0.9, 0.95)
DOMAIN = (-5.0, 5.0, -5.0, 5.0)
MAX_DEVIATION, MIN_COVERAGE, COVER_RADIUS = 0.25, 0.8, 0.5


def diagonal_deviation(segments: np.ndarray, samples: int = 9) -> float:
    """Length-weighted mean distance of the boundary to the nearest of y = x, y = -x (inf if there is none)."""
    seg = np.asarray(segments, dtype=float).reshape(-1, 2, 2)
    if len(seg) == 0:
        return float("inf")
    t = np.linspace(0, 1, samples)[None, :, None]
    pts = seg[:, :1] + t * (seg[:, 1:] - seg[:, :1])  # (k, samples, 2)
    dist = np.minimum(np.abs(pts[..., 1] - pts[..., 0]), np.abs(pts[..., 1] + pts[..., 0])) / np.sqrt(2)
    lengths = np.linalg.norm(seg[:, 1] - seg[:, 0], axis=1)
    return float((dist.mean(1) * lengths).sum() / max(lengths.sum(), 1e-12))


def point_segment_distance(points: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """(n,) distance of each point to the nearest of the (k, 2, 2) segments."""
    a, b = segments[None, :, 0], segments[None, :, 1]
    ab = b - a
    t = np.clip(((points[:, None] - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0, 1)
    nearest = a + t[..., None] * ab
    return np.linalg.norm(points[:, None] - nearest, axis=-1).min(1)


def diagonal_coverage(segments: np.ndarray) -> float:
    """Share of points along both diagonals of the domain lying within COVER_RADIUS of the boundary."""
    seg = np.asarray(segments, dtype=float).reshape(-1, 2, 2)
    if len(seg) == 0:
        return 0.0
    s = np.linspace(DOMAIN[0], DOMAIN[1], 100)
    points = np.concatenate([np.c_[s, s], np.c_[s, -s]])
    return float((point_segment_distance(points, seg) <= COVER_RADIUS).mean())


def x_shape_row(model: Any, accuracy: float, sparsity: float, units: int,
                cancel: Callable[[], bool] | None = None) -> tuple[dict, Any]:
    """Trace the net exactly and score the X criterion; returns the table row and the partition."""
    from splineviz.nets import to_ops
    from splineviz.partition import box, trace

    partition = trace(to_ops(model), domain=box(*DOMAIN), cancel=cancel)
    deviation = diagonal_deviation(partition.decision_boundary)
    coverage = diagonal_coverage(partition.decision_boundary)
    row = dict(sparsity=sparsity, units_kept=units, test_acc=accuracy, n_regions=partition.n_regions,
               boundary_deviation=deviation, diagonal_coverage=coverage,
               x_shaped=bool(deviation <= MAX_DEVIATION and coverage >= MIN_COVERAGE))
    return row, partition


def run(ctx: Context) -> None:
    from plotly.subplots import make_subplots

    from splineviz.data import make_dataset
    from splineviz.nets import mlp
    from splineviz.prune import prune_and_finetune, unit_sparsity
    from splineviz.train import TrainConfig, evaluate, fit

    hidden = 20
    if ctx.quick:
        data = make_dataset("xshape", n=400, seed=ctx.seed)
        config = TrainConfig(epochs=20, lr=0.1, momentum=0.9, batch_size=64, seed=ctx.seed)
    else:
        data = make_dataset("xshape", seed=ctx.seed)
        config = TrainConfig(epochs=400, lr=0.01, batch_size=256, seed=ctx.seed)
    model = mlp(2, (hidden,), 2, seed=ctx.seed)
    n_fits = 1 + len(SPARSITIES)
    dense = fit(model, data, config, progress=ctx.sub(0, 1 / n_fits, "dense: "), cancel=ctx.cancel_fn())
    rows, partitions = [], []
    row, part = x_shape_row(dense.model, evaluate(dense.model, data), 0.0, hidden, ctx.cancel_fn())
    rows.append(row)
    partitions.append(part)
    for i, s in enumerate(SPARSITIES, start=1):
        result = prune_and_finetune(dense.model, data, "node", s, config, init_state=dense.snapshots[0].state,
                                    progress=ctx.sub(i / n_fits, (i + 1) / n_fits, f"{s:.0%} pruned: "),
                                    cancel=ctx.cancel_fn())
        kept = round(hidden * (1 - unit_sparsity(result.model, result.masks)))
        row, part = x_shape_row(result.model, result.accuracy, s, kept, ctx.cancel_fn())
        rows.append(row)
        partitions.append(part)
        ctx.step((i + 1) / n_fits, f"sparsity {s:.0%}: {kept} units, test acc {row['test_acc']:.3f}, "
                                   f"X-shaped: {row['x_shaped']}")
    ctx.table(rows, "xshape")

    n_rows, n_cols = grid_shape(len(rows))
    fig = make_subplots(rows=n_rows, cols=n_cols, subplot_titles=[
        f"{r['sparsity']:.0%}: acc {r['test_acc']:.2f}{', X' if r['x_shaped'] else ''}" for r in rows])
    for k, part in enumerate(partitions):
        add_partition(fig, part, k // n_cols + 1, k % n_cols + 1, legend=k == 0)
    fig.update_xaxes(range=DOMAIN[:2])
    fig.update_yaxes(range=DOMAIN[2:])
    fig.update_layout(title="X-shape toy: first-layer lines (blue) and decision boundary (red) under node pruning",
                      width=300 * n_cols + 150, height=300 * n_rows + 100)
    ctx.figure(fig, "xshape_partitions")

    survives = [r["sparsity"] for r in rows if r["x_shaped"]]
    ok80 = all(r["x_shaped"] for r in rows if r["sparsity"] <= 0.8)
    ctx.result.summary = (f"X-shaped up to 80 % pruning: {'yes' if ok80 else 'no'}; X-shaped at sparsities "
                          f"{[f'{s:.0%}' for s in survives]}; accuracies "
                          f"{[round(r['test_acc'], 3) for r in rows]}")

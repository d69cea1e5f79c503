"""Partitions as standalone SVG, written directly from the exact geometry (no browser, no plotly).

SVG through kaleido needs Chromium; these few paths do not, so vector export works everywhere (servers,
Docker images) and stays exact: one ``<path>`` per class of cells, per layer and for the decision boundary.
"""
from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape

import numpy as np

from .partition import Partition
from .partition.interval import IntervalPartition

# plotly's D3 and Pastel1 palettes, so that SVG files look like the notebook figures
LAYER_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
CLASS_COLORS = ("#fbb4ae", "#b3cde3", "#ccebc5", "#decbe4", "#fed9a6", "#ffffcc", "#e5d8bd", "#fddaec")
OUTPUT_COLORS = ("#222222", "#636efa", "#ef553b", "#00cc96")


def to_svg(p: Partition | IntervalPartition, width: int = 600, height: int | None = None,
           title: str | None = None) -> str:
    """The partition as an SVG document: class cells, each layer's boundary (1-D: knots), the decision boundary.

    Examples
    --------
    >>> import splineviz
    >>> from splineviz.nets import mlp
    >>> svg = to_svg(splineviz.trace(mlp(2, hidden=(4,))))
    >>> svg.startswith("<svg") and svg.count('class="layer"')
    1
    """
    if isinstance(p, IntervalPartition):
        return _interval_svg(p, width, height or width // 2, title)
    xs, ys = p.vertices[:, 0], p.vertices[:, 1]
    box = (xs.min(), xs.max(), ys.min(), ys.max())
    height = height or int(round(width * (box[3] - box[2]) / (box[1] - box[0])))
    to_px = _mapper(box, width, height)
    body = []
    polygons, classes = p.class_cells()
    for c in np.unique(classes):
        d = "".join(_polyline(to_px(q), close=True) for q, k in zip(polygons, classes) if k == c)
        body.append(f'<path class="cells" data-class="{int(c)}" d="{d}" fill="{_pick(CLASS_COLORS, c)}"/>')
    for layer in range(p.n_layers):
        d = "".join(_polyline(to_px(s), close=False) for s in p.segments(layer))
        body.append(f'<path class="layer" data-layer="{layer}" d="{d}" fill="none" '
                    f'stroke="{_pick(LAYER_COLORS, layer)}" stroke-width="1"/>')
    d = "".join(_polyline(to_px(s), close=False) for s in p.decision_boundary)
    body.append(f'<path class="decision" d="{d}" fill="none" stroke="black" stroke-width="2.5"/>')
    return _document(width, height, body, title or f"{p.n_regions} regions")


def _interval_svg(p: IntervalPartition, width: int, height: int, title: str | None) -> str:
    lo, hi = float(p.values.min()), float(p.values.max())
    pad = 0.05 * (hi - lo) if hi > lo else 1.0
    box = (*p.bounds, lo - pad, hi + pad)
    to_px = _mapper(box, width, height)
    body = []
    if p.values.shape[1] > 1 or p.decision_classes is not None:
        spans, classes = p.class_cells()
        for c in np.unique(classes):
            d = "".join(_polyline(to_px(_band(a, b, box)), close=True) for (a, b), k in zip(spans, classes) if k == c)
            body.append(f'<path class="cells" data-class="{int(c)}" d="{d}" fill="{_pick(CLASS_COLORS, c)}"/>')
        d = "".join(_polyline(to_px(_tick(x, box)), close=False) for x in p.decision_boundary)
        body.append(f'<path class="decision" d="{d}" fill="none" stroke="black" stroke-width="2.5"/>')
    for layer in range(p.n_layers):
        d = "".join(_polyline(to_px(_tick(x, box)), close=False) for x in p.knots(layer))
        body.append(f'<path class="layer" data-layer="{layer}" d="{d}" fill="none" '
                    f'stroke="{_pick(LAYER_COLORS, layer)}" stroke-width="1" stroke-dasharray="3 3"/>')
    for j in range(p.values.shape[1]):
        d = _polyline(to_px(np.stack([p.breakpoints, p.values[:, j]], axis=1)), close=False)
        body.append(f'<path class="output" data-output="{j}" d="{d}" fill="none" '
                    f'stroke="{_pick(OUTPUT_COLORS, j)}" stroke-width="2"/>')
    return _document(width, height, body, title or f"{p.n_regions} pieces")


def _mapper(box: Sequence[float], width: int, height: int):
    xmin, xmax, ymin, ymax = box

    def to_px(xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, dtype=np.float64)
        return np.stack([(xy[:, 0] - xmin) / (xmax - xmin) * width, (ymax - xy[:, 1]) / (ymax - ymin) * height], 1)

    return to_px


def _polyline(px: np.ndarray, close: bool) -> str:
    points = " L".join(f"{x:.2f} {y:.2f}" for x, y in px)
    return f"M{points}{'Z' if close else ''}"


def _band(a: float, b: float, box: Sequence[float]) -> np.ndarray:
    return np.array([[a, box[2]], [b, box[2]], [b, box[3]], [a, box[3]]])


def _tick(x: float, box: Sequence[float]) -> np.ndarray:
    return np.array([[x, box[2]], [x, box[3]]])


def _pick(colors: Sequence[str], i: int) -> str:
    return colors[int(i) % len(colors)]


def _document(width: int, height: int, body: list[str], title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}">\n<title>{escape(title)}</title>\n'
            f'<rect width="{width}" height="{height}" fill="white"/>\n' + "\n".join(body) + "\n</svg>\n")


__all__ = ["to_svg"]

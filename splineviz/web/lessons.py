"""Lessons: a short "what am I seeing" panel per page and presets that open a page in a known state.

The text is grounded in the paper's figure captions (You, Balestriero et al., TMLR 2022); each preset is a plain
link made of the app's own URL keys (``params.URL_PARAMS``), so a preset is exactly what a user could have set by
hand and shared with "Copy link". ``run=1`` (``params.Shell.RUN``) asks the page to press its run button once it
is ready (the Playground's Train, the MNIST page's Train classifier, Early-bird's Run, Regression's Train).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlencode

from dash import html

from splineviz.web.params import URL_PARAMS


@dataclass(frozen=True)
class Preset:
    """A named page state: ``path`` with the URL ``values`` (keys of ``params.URL_PARAMS``, checked on creation)."""

    name: str
    title: str
    figure: str  # the paper figure it reproduces, or "" for an illustration of our own
    path: str
    values: Mapping[str, Any]
    text: str
    run: bool = True

    def __post_init__(self) -> None:
        unknown = set(self.values) - set(URL_PARAMS)
        if unknown:
            raise ValueError(f"preset {self.name!r} uses URL keys the app does not read: {sorted(unknown)}")
        for key, value in self.values.items():
            if URL_PARAMS[key].clean(value) != value:
                raise ValueError(f"preset {self.name!r}: {key}={value!r} is not a value the control offers")

    @property
    def url(self) -> str:
        """Every value spelled out (not only those that differ from today's defaults), so the preset stays put."""
        return f"{self.path}?{urlencode({**self.values, **({'run': '1'} if self.run else {})})}"


@dataclass(frozen=True)
class Group:
    """Presets shown together in the gallery (e.g. the two sides of the depth-vs-width comparison)."""

    title: str
    text: str
    presets: tuple[Preset, ...] = field(default_factory=tuple)


XSHAPE = Preset(
    "xshape", "X-shape, then prune 80 %", "Fig. 2b", "/playground",
    {"dataset": "xshape", "noise": 0.0, "layers": 1, "width": 20, "act": "relu", "lr": 0.01, "epochs": 400,
     "seed": 0, "method": "node", "scope": "layerwise", "sparsity": 80},
    "The paper's toy: 2,000 points on [-5, 5]², class 1 in the top and bottom wedges, a 2-20-2 ReLU net trained "
    "for 400 epochs (here SGD with momentum, batch 32). Training starts by itself; when it stops, open Pruning: "
    "node pruning at 80 % is set. The paper finds the decision boundary stays X-shaped up to 80 %.")
MNIST_69 = Preset(
    "mnist69", "6 vs 9: the MNIST slice", "Fig. 2c", "/mnist",
    {"arch": "paper_cnn", "mn_epochs": 3, "a": 4, "b": 3, "extent": 1.0},
    "The plane through the first 6 (A, at (1, 0)) and the first 9 (B, at (0, 1)) of the test set, cut by the "
    "paper's small CNN: first layer, second conv layer and the 6-vs-9 decision boundary. Training starts by "
    "itself (about a minute), then the slice is traced (about 30 s, 320,000 regions).")
EARLYBIRD = Preset(
    "earlybird", "An early-bird run", "Fig. 3", "/earlybird",
    {"dataset": "moons", "noise": 0.1, "layers": 2, "width": 16, "act": "relu", "seed": 0, "eb_epochs": 60,
     "eb_threshold": 0.16},
    "A 2-16-16-2 net on two moons trained for 60 epochs from scratch; every pair of epochs is compared by the "
    "activation signs on a 100 × 100 grid. The ticket is the first epoch within 0.16 of the previous 3: the "
    "partition has settled long before training ends, which is what lets early-bird training stop early.")
SAWTOOTH = Preset(
    "sawtooth", "The sawtooth, knot by knot", "Fig. 6", "/regression",
    {"rg_widths": "8,8", "rg_epochs": 200, "rg_lr": 0.01, "rg_noise": 0.0, "rg_seed": 0},
    "The paper's univariate task: a 1-8-8-1 ReLU net fits the two-peak sawtooth on [-1, 1] for 200 epochs, every "
    "epoch traced exactly. Training starts by itself; afterwards the epoch slider shows where training moved the "
    "knots, and the layer slider which knots the first layer makes and which the second adds on its pieces. "
    "The sawtooth itself needs 3 knots.")
DEEP = Preset(
    "deep", "Deep: 4 layers × 8 units", "", "/playground",
    {"dataset": "spirals", "noise": 0.1, "layers": 4, "width": 8, "act": "relu", "lr": 0.03, "epochs": 300,
     "seed": 0},
    "32 ReLUs in 4 layers of 8: each layer cuts every region the layers before it made, so the cuts bend.")
WIDE = Preset(
    "wide", "Wide: 1 layer × 32 units", "", "/playground",
    {"dataset": "spirals", "noise": 0.1, "layers": 1, "width": 32, "act": "relu", "lr": 0.03, "epochs": 300,
     "seed": 0},
    "The same 32 ReLUs in one layer: 32 straight lines across the whole plane, at most 529 regions.")

GROUPS = (
    Group("The paper's figures", "Each opens its page with the paper's setting and starts it.",
          (XSHAPE, MNIST_69, EARLYBIRD, SAWTOOTH)),
    Group("Depth vs width", "The same 32 hidden units, stacked or side by side, on the spirals. Open both, let them "
          "train to epoch 300, and compare the region counts, the shapes of the boundaries and the accuracy.",
          (DEEP, WIDE)),
)
PRESETS: dict[str, Preset] = {p.name: p for g in GROUPS for p in g.presets}


@dataclass(frozen=True)
class Lesson:
    """A page's "what am I seeing" text: a few short paragraphs and the presets to try there."""

    paragraphs: tuple[str, ...]
    presets: tuple[Preset, ...] = ()


LESSONS: dict[str, Lesson] = {
    "/playground": Lesson((
        "A ReLU network is linear on each of many regions of its input: every hidden unit is a line (a hyperplane) "
        "where its input changes sign, and the layers together cut the plane into the regions drawn here, "
        "exactly, not sampled. Lines of deeper layers bend where they cross earlier ones: deeper layers "
        "successively subdivide the regions the earlier ones made (Fig. 1a).",
        "The thick line is the decision boundary, where the two largest logits are equal; it is made of pieces of "
        "the units' lines. Train and watch the lines move; the epoch slider goes back in time, the layer slider "
        "shows the cut of the first layers only."), (XSHAPE, DEEP, WIDE)),
    "/pruning": Lesson((
        "Pruning removes units or weights from the Playground's trained net. Node pruning deletes whole units, "
        "so their lines disappear from the partition; weight pruning zeroes single weights, which turns lines "
        "towards the axes instead (Fig. 2a). Spline pruning removes units whose lines nearly coincide with "
        "another's.",
        "Left: before; right: after. Only some lines shape the decision boundary; the others are redundant, and "
        "removing them leaves the boundary as it was (Fig. 2b: the X survives to 80 % node pruning; there, a few "
        "lines giving the boundary its turns are all that is left, and pruning further costs much accuracy)."),
        (XSHAPE,)),
    "/earlybird": Lesson((
        "How early does the partition settle? Each epoch's activation signs on a 100 × 100 grid are compared with "
        "every other epoch's: the heat map is the fraction of signs that differ (dark: same partition). The "
        "curve is each epoch's largest distance to the previous 3.",
        "The early-bird ticket is the first epoch whose distance stays below the threshold: the partition, and "
        "with it the pruning mask one would take from it, has stopped changing, so the costly training of the "
        "large net can stop there (Fig. 3)."), (EARLYBIRD,)),
    "/regression": Lesson((
        "With one input a ReLU network is a piecewise-linear function of it: each hidden unit switches at a knot, "
        "a point where the slope of the fit may change, and between two knots the fit is a straight piece. The "
        "curve drawn is the fit exactly, through its breakpoints, not sampled.",
        "The first layer's knots are where its units cross zero; deeper layers add knots where their units switch "
        "on the pieces the earlier layers made. The sawtooth needs only 3 knots (4 pieces); watch the epochs to "
        "see where training puts the knots and how many pieces it uses (paper Fig. 6 fits the same target)."),
        (SAWTOOTH,)),
    "/mnist": Lesson((
        "MNIST images have 784 pixels, too many dimensions to draw; this page draws the 2-D slice through two "
        "test images: the point (a, b) is the image a·A + b·B, so A sits at (1, 0) and B at (0, 1) (both marked). "
        "The slice of each region is drawn exactly.",
        "Blue lines are the first layer's boundaries, green the second (conv) layer's, red the decision boundary "
        "between the two images' classes (Fig. 2c, 6 vs. 9). Only parts of the lines matter for the decision; "
        "pruning aims to remove the rest. Hover a point to see the image the network sees there."), (MNIST_69,)),
    "/experiments": Lesson((
        "The paper's experiments, rerun by this app's code: K-means with pruned centroids (Fig. 1b, 5), the "
        "sawtooth regression (Fig. 6), X-shape pruning (Fig. 2b), spline pruning groups and its P ablation "
        "(Fig. 4, 9), spline early-bird (Fig. 3, 7, 8) and the MNIST slice (Fig. 2c).",
        "Quick mode runs a few seeds at small sizes in minutes; full mode uses the paper's settings. Figures are "
        "interactive (zoom, hover); each figure's PNG and each table's CSV and Markdown can be downloaded. The "
        "README's claims table says which results reproduce and which do not."), ()),
}


def lesson_panel(path: str) -> html.Details | None:
    """The collapsible "What am I seeing?" panel of the page at ``path`` (None where there is no lesson)."""
    lesson = LESSONS.get(path)
    if lesson is None:
        return None
    tries = [html.A(p.title, href=p.url, className="preset-link") for p in lesson.presets]
    body = [html.P(text) for text in lesson.paragraphs]
    if tries:
        body.append(html.P([html.B("Try: "), *_joined(tries)], className="lesson-try"))
    return html.Details([html.Summary("What am I seeing?"), html.Div(body, className="lesson-body")],
                        className="lesson", id=f"lesson-{path.strip('/')}")


def _joined(items: list) -> list:
    out: list = []
    for i, item in enumerate(items):
        out += ([" · "] if i else []) + [item]
    return out

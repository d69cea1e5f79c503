"""Command line: ``python -m splineviz trace MODEL_FILE --bounds ... --out FILE.{geojson,svg,png,html}``.

Models load exactly as uploads do in the app (`splineviz.nets.load_model`: a ``.pt`` state dict read with
``weights_only=True``, ``.safetensors`` or ``.onnx``), and fail with the same messages. Everything that can be checked
before tracing (output format, PNG renderer, images, bounds) is checked first, so a long trace is never lost
to a bad flag. Exit codes: 0 done, 2 bad input, 130 cancelled (Ctrl-C).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence, TextIO

import numpy as np

from splineviz import png

FORMATS = (".geojson", ".svg", ".png", ".html")


class CommandError(Exception):
    """Bad input to the command line; the message is printed as is."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("\ncancelled", file=sys.stderr)
        return 130
    except CommandError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m splineviz", description="Exact partitions of ReLU networks.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    t = commands.add_parser("trace", help="trace a saved model and write the partition to a file",
                            description="Trace the exact partition of a saved model (a .pt state dict or "
                                        ".safetensors) and write it as GeoJSON, SVG, PNG or a self-contained HTML "
                                        "page. PNG needs Chromium (kaleido); the other formats do not.")
    t.add_argument("model", metavar="MODEL_FILE", help=".pt state dict (torch.save(model.state_dict())) or "
                                                       ".safetensors; MLPs are inferred from the weights")
    t.add_argument("--out", required=True, metavar="FILE", help=f"output file: {', '.join(FORMATS)}")
    t.add_argument("--bounds", type=float, nargs="+", metavar="X",
                   help="xmin xmax ymin ymax (2 inputs or a plane; default -3 3 -3 3) or lo hi (1 input)")
    t.add_argument("--plane-images", nargs="+", metavar="IMAGE",
                   help="2 images (plane through the origin) or 3 (plane through all three): .npy files or "
                        "mnist:INDEX for the bundled digits")
    t.add_argument("--input-shape", type=int, nargs="+", metavar="N", help="one sample's shape, e.g. 1 28 28")
    t.add_argument("--architecture", metavar="JSON",
                   help='architecture of a state dict that is not an MLP, e.g. \'{"type": "paper_cnn"}\'')
    t.add_argument("--classes", type=int, nargs=2, metavar=("I", "J"), help="decision boundary between two outputs")
    t.add_argument("--budget", type=int, default=None, help="most regions before giving up (default 2,000,000)")
    t.add_argument("--progress", choices=("auto", "always", "never"), default="auto",
                   help="progress bar on stderr: auto shows it on a terminal once a trace takes over a second")
    t.set_defaults(run=_trace_command)
    return parser


def _trace_command(args: argparse.Namespace) -> int:
    out = Path(args.out)
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise CommandError(f"cannot write {out.name}: the output format is chosen by its extension, one of "
                           f"{', '.join(FORMATS)}")
    if not out.parent.is_dir():
        raise CommandError(f"cannot write {out}: the folder {out.parent} does not exist")
    if suffix == ".png":
        check_png_renderer()
    if args.bounds is not None and len(args.bounds) not in (2, 4):
        raise CommandError(f"--bounds takes 4 numbers (xmin xmax ymin ymax) or 2 (lo hi), got {len(args.bounds)}")
    plane = _plane(args.plane_images) if args.plane_images else None

    import splineviz
    from splineviz.nets import ModelLoadError, UnsupportedLayerError, load_model
    from splineviz.partition import PartitionBudgetError

    options: dict[str, Any] = {}
    if args.budget is not None:
        options["budget"] = args.budget
    if args.classes is not None:
        options["decision_classes"] = tuple(args.classes)
    try:
        model = load_model(args.model, _architecture(args.architecture))
        with _ProgressBar(args.progress, sys.stderr) as bar:
            result = splineviz.trace(model, bounds=args.bounds, plane=plane, input_shape=args.input_shape,
                                     progress=bar.update, **options)
    except (ModelLoadError, UnsupportedLayerError, PartitionBudgetError, ValueError) as e:
        raise CommandError(str(e)) from e
    _write(result, out, suffix)
    kind = "pieces" if isinstance(result, splineviz.IntervalPartition) else "regions"
    print(f"wrote {out}: {result.n_regions:,} {kind}, layer widths {result.layer_widths}")
    return 0


def _architecture(text: str | None) -> dict | None:
    if text is None:
        return None
    try:
        arch = json.loads(text)
    except json.JSONDecodeError as e:
        raise CommandError(f"--architecture is not valid JSON: {e}") from e
    if not isinstance(arch, dict):
        raise CommandError('--architecture must be a JSON object, e.g. {"type": "paper_cnn"}')
    return arch


def _plane(specs: Sequence[str]) -> Any:
    from splineviz.partition import Plane

    if len(specs) not in (2, 3):
        raise CommandError(f"--plane-images takes 2 images (plane through the origin) or 3, got {len(specs)}")
    images = [_image(spec) for spec in specs]
    try:
        return Plane.through_images(*images) if len(images) == 2 else Plane.through_points(*images)
    except ValueError as e:
        raise CommandError(f"the images span no plane: {e}") from e


def _image(spec: str) -> np.ndarray:
    """An image from a .npy file or ``mnist:INDEX`` (the bundled digits, shaped 1x28x28, values in [0, 1])."""
    if spec.startswith("mnist:"):
        from splineviz.data import mnist

        data = mnist()
        try:
            index = int(spec[len("mnist:"):])
        except ValueError:
            raise CommandError(f"{spec}: give mnist:INDEX with an integer index") from None
        if not 0 <= index < len(data.x_test):
            raise CommandError(f"{spec}: the bundled digits' test split has indices 0..{len(data.x_test) - 1}")
        return np.asarray(data.x_test[index], dtype=np.float64).reshape(data.input_shape or (-1,))
    if not spec.endswith(".npy"):
        raise CommandError(f"{spec}: images are .npy files (numpy.save) or mnist:INDEX")
    try:
        image = np.load(spec, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise CommandError(f"cannot read the image {spec}: {e}") from e
    if image.dtype.kind not in "fiub" or not np.isfinite(image).all():
        raise CommandError(f"{spec} must hold finite numbers, got dtype {image.dtype}")
    return image.astype(np.float64)


def _write(result: Any, out: Path, suffix: str) -> None:
    if suffix == ".geojson":
        if not hasattr(result, "to_geojson"):
            raise CommandError("GeoJSON holds 2-D partitions; a one-input network's knots export as .svg, .html "
                               "or .png")
        out.write_text(json.dumps(result.to_geojson()))
    elif suffix == ".svg":
        from splineviz.svg import to_svg

        out.write_text(to_svg(result))
    elif suffix == ".html":
        result.plot().write_html(out, include_plotlyjs=True)  # plotly.js inline: the page works offline
    else:
        write_png(result.plot(), out)


def check_png_renderer() -> None:
    """Fail at once, naming the formats that work, where kaleido would find no Chromium to render with."""
    if png.find_browser() is None:
        where = f" (BROWSER_PATH={os.environ['BROWSER_PATH']})" if "BROWSER_PATH" in os.environ else ""
        raise CommandError(f"PNG export needs Chromium or Chrome, which kaleido drives, and none was found{where}; "
                           "install it (apt-get install chromium) or write .svg, .html or .geojson, which need "
                           "no browser")


def write_png(fig: Any, out: Path) -> None:
    """kaleido in a child process that is killed if it overruns (a browser can wait forever)."""
    check_png_renderer()
    exporter = png.KaleidoProcess()
    try:
        exporter.write(fig, out, int(fig.layout.width or 700), int(fig.layout.height or 700), scale=2)
    except png.ExportError as e:
        raise CommandError(f"PNG export failed ({e}); write .svg or .html instead") from e
    finally:
        exporter.close()


class _ProgressBar:
    """A one-line bar on stderr, shown once a trace has run for a second (always/never override)."""

    def __init__(self, mode: str, stream: TextIO, delay: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self.show = mode == "always" or (mode == "auto" and stream.isatty())
        self.delay = 0.0 if mode == "always" else delay
        self.stream, self.clock = stream, clock
        self.shown = False

    def __enter__(self) -> _ProgressBar:
        self.start = self.clock()
        return self

    def update(self, fraction: float, message: str) -> None:
        if not self.show or self.clock() - self.start < self.delay:
            return
        filled = int(30 * fraction)
        self.stream.write(f"\r[{'#' * filled}{' ' * (30 - filled)}] {100 * fraction:5.1f}% {message[:60]:<60}")
        self.stream.flush()
        self.shown = True

    def __exit__(self, *exc: object) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()

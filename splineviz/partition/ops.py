"""Piecewise-linear operations: the only network description the numeric core understands.

A network is a list of ops applied left to right to a row of values. Affine maps carry the
weights; nonlinear ops say *where the partition bends*. Each op carries all of its behaviour:
its forward map, its output width, how many cuts it makes (for progress), how it cuts a planar
graph so that it becomes affine inside every face (through a small `Cutter` interface the
tracer implements), and its activation code per region. Adding an op (say HardTanh) means one
new class here; the tracer only loops over ops. Keeping this vocabulary in numpy lets the core
stay ignorant of torch, and lets every framework convert into it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol, Sequence

import numpy as np

if TYPE_CHECKING:
    from .graph import PlanarGraph


class Cutter(Protocol):
    """What an op needs from the tracer to cut a graph (see tracer.Tracer)."""

    def affine(self, graph: PlanarGraph, weight: np.ndarray, bias: np.ndarray) -> None: ...

    def zero_sets(self, graph: PlanarGraph, layer: int) -> np.ndarray: ...

    def activate(self, graph: PlanarGraph, op: Hinge) -> None: ...

    def tournament(self, graph: PlanarGraph, groups: Sequence[Sequence[int]], layer: int) -> np.ndarray: ...


class Op:
    """Base of every op. Nonlinear ops return their activation code per face from `cut`."""

    nonlinear: ClassVar[bool] = True

    def forward(self, h: np.ndarray) -> np.ndarray:
        """The op on row-major values h of shape (n, width)."""
        raise NotImplementedError

    def out_width(self, width: int) -> int:
        return width

    def n_cuts(self, width: int) -> int:
        """Level sets this op cuts along (the tracer's progress counts them)."""
        return width

    def cut(self, graph: PlanarGraph, layer: int, cutter: Cutter) -> np.ndarray | None:
        """Cut `graph` so the op is affine inside every face, then put the op's output in its values.

        Returns the activation code of every face (decoded by `decode`), or None for affine maps.
        """
        raise NotImplementedError

    def code(self, values: np.ndarray) -> np.ndarray:
        """Activation code from the op's input values at points inside regions: (k, code width)."""
        raise NotImplementedError

    def decode(self, stored: np.ndarray, width: int) -> np.ndarray:
        """The code as returned by `code`, from what `cut` returned."""
        return stored


@dataclass(frozen=True)
class Affine(Op):
    """y = weight @ x + bias, weight shaped (out, in) as in torch.nn.Linear."""

    weight: np.ndarray
    bias: np.ndarray
    nonlinear: ClassVar[bool] = False

    def __post_init__(self) -> None:
        w = np.asarray(self.weight, dtype=np.float64)
        b = np.asarray(self.bias, dtype=np.float64).reshape(-1)
        if w.ndim != 2:
            raise ValueError(f"Affine weight must be 2-D (out, in), got shape {w.shape}")
        if b.shape[0] != w.shape[0]:
            raise ValueError(f"Affine bias has {b.shape[0]} entries but weight has {w.shape[0]} rows")
        if not (np.isfinite(w).all() and np.isfinite(b).all()):
            raise ValueError("Affine weights contain NaN or inf; the partition of such a network is undefined")
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "bias", b)

    @property
    def in_features(self) -> int:
        return self.weight.shape[1]

    @property
    def out_features(self) -> int:
        return self.weight.shape[0]

    def forward(self, h: np.ndarray) -> np.ndarray:
        return h @ self.weight.T + self.bias

    def out_width(self, width: int) -> int:
        if width != self.in_features:
            raise ValueError(f"shape mismatch: {width} values feed an affine map expecting {self.in_features}")
        return self.out_features

    def n_cuts(self, width: int) -> int:
        return 0

    def cut(self, graph: PlanarGraph, layer: int, cutter: Cutter) -> None:
        cutter.affine(graph, self.weight, self.bias)
        return None


class Hinge(Op):
    """Activations that bend where each unit's value is zero: one line per unit."""

    def cut(self, graph: PlanarGraph, layer: int, cutter: Cutter) -> np.ndarray:
        signs = cutter.zero_sets(graph, layer)
        cutter.activate(graph, self)
        return signs

    def activate(self, values: np.ndarray) -> None:
        """The activation in place on a value table (a view whose rows are vertices)."""
        raise NotImplementedError

    def code(self, values: np.ndarray) -> np.ndarray:
        return values > 0

    def decode(self, stored: np.ndarray, width: int) -> np.ndarray:
        """Sign bits packed little-endian, eight units a byte, one row per face."""
        return np.unpackbits(stored, axis=1, count=width, bitorder="little").astype(bool)


@dataclass(frozen=True)
class ReLU(Hinge):
    """max(x, 0) elementwise: one subdivision line per unit."""

    def forward(self, h: np.ndarray) -> np.ndarray:
        return np.maximum(h, 0.0)

    def activate(self, values: np.ndarray) -> None:
        np.maximum(values, 0.0, out=values)


@dataclass(frozen=True)
class LeakyReLU(Hinge):
    """x if x > 0 else negative_slope * x: bends where ReLU does."""

    negative_slope: float = 0.01

    def forward(self, h: np.ndarray) -> np.ndarray:
        return np.where(h > 0, h, self.negative_slope * h)

    def activate(self, values: np.ndarray) -> None:
        # x + (slope - 1) min(x, 0): plain passes, no masked writes, and a temporary of a block of rows only
        # (about 256 KiB: the table is the trace's largest array, and a temporary of it all was its peak)
        block = max(1, (1 << 15) // max(values.shape[1], 1))
        for start in range(0, len(values), block):
            rows = values[start: start + block]
            negative = np.minimum(rows, 0.0)
            negative *= self.negative_slope - 1.0
            rows += negative


@dataclass(frozen=True)
class MaxPool(Op):
    """Output i is the max of the inputs listed in groups[i] (flattened indices).

    Max pooling bends the partition wherever the arg-max inside a group changes, so it adds
    boundaries of its own, labelled (layer, output index). Its code is the position of each
    group's maximum.
    """

    groups: tuple[tuple[int, ...], ...] = field(default_factory=tuple)

    def forward(self, h: np.ndarray) -> np.ndarray:
        return np.stack([h[:, list(g)].max(axis=1) for g in self.groups], axis=1)

    def out_width(self, width: int) -> int:
        flat = [i for g in self.groups for i in g]
        if not self.groups or min(len(g) for g in self.groups) < 1 or max(flat) >= width or min(flat) < 0:
            raise ValueError(f"max-pool groups index outside the {width} incoming values")
        return len(self.groups)

    def n_cuts(self, width: int) -> int:
        return sum(len(g) - 1 for g in self.groups)

    def cut(self, graph: PlanarGraph, layer: int, cutter: Cutter) -> np.ndarray:
        winners = cutter.tournament(graph, self.groups, layer)
        graph.replace_values(self.forward(graph.values))
        return winners

    def code(self, values: np.ndarray) -> np.ndarray:
        return np.stack([values[:, list(g)].argmax(axis=1) for g in self.groups], axis=1)


NONLINEAR = (ReLU, LeakyReLU, MaxPool)  # the nonlinear op types (callers use it to recognise a list of ops)


def compose(first: Affine, second: Affine) -> Affine:
    """second(first(x)) as one affine map, so that consecutive linear ops cost one matmul."""
    return Affine(second.weight @ first.weight, second.weight @ first.bias + second.bias)


def normalize(ops: Sequence[Op], in_features: int | None = None) -> list[Op]:
    """Merge consecutive affine maps and make sure the list starts and ends with one.

    The core then alternates: [Affine, nonlinear, (nonlinear...), Affine, ...]. An identity map
    is inserted where a nonlinearity comes first (needs in_features) and the output is the
    last affine map's output (identity appended if the net ends in a nonlinearity).
    """
    out: list[Op] = []
    for op in ops:
        if not isinstance(op, Op):
            raise TypeError(f"unsupported op {type(op).__name__}; expected Affine, ReLU, LeakyReLU or MaxPool")
        if isinstance(op, Affine) and out and isinstance(out[-1], Affine):
            if out[-1].out_features != op.in_features:
                raise ValueError(
                    f"shape mismatch: an affine map with {out[-1].out_features} outputs feeds one "
                    f"expecting {op.in_features} inputs")
            out[-1] = compose(out[-1], op)
        else:
            out.append(op)
    if not out:
        raise ValueError("empty network")
    if not isinstance(out[0], Affine):
        if in_features is None:
            raise ValueError("network starts with a nonlinearity; give in_features")
        out.insert(0, Affine(np.eye(in_features), np.zeros(in_features)))
    width = out[0].out_features  # type: ignore[attr-defined]
    for op in out[1:]:
        width = op.out_width(width)
    if not isinstance(out[-1], Affine):
        out.append(Affine(np.eye(width), np.zeros(width)))
    return out


def forward(ops: Sequence[Op], x: np.ndarray) -> np.ndarray:
    """Evaluate the network on points x of shape (n, in_features); returns (n, out)."""
    h = np.asarray(x, dtype=np.float64)
    for op in ops:
        h = op.forward(h)
    return h


def apply(op: Op, h: np.ndarray) -> np.ndarray:
    """One op on row-major values h of shape (n, width)."""
    return op.forward(h)

"""Piecewise-linear operations: the only network description the numeric core understands.

A network is a list of ops applied left to right to a column of values. Affine maps carry
the weights; activations say *where the partition bends*. Keeping this tiny vocabulary in
numpy lets the core stay ignorant of torch, and lets every framework convert into it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence, Union

import numpy as np


@dataclass(frozen=True)
class Affine:
    """y = weight @ x + bias, weight shaped (out, in) as in torch.nn.Linear."""

    weight: np.ndarray
    bias: np.ndarray

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


@dataclass(frozen=True)
class ReLU:
    """max(x, 0) elementwise: one subdivision line per unit."""


@dataclass(frozen=True)
class LeakyReLU:
    """x if x > 0 else negative_slope * x: bends where ReLU does."""

    negative_slope: float = 0.01


@dataclass(frozen=True)
class MaxPool:
    """Output i is the max of the inputs listed in groups[i] (flattened indices).

    Max pooling bends the partition wherever the arg-max inside a group changes, so it adds
    boundaries of its own, labelled (layer, output index).
    """

    groups: tuple[tuple[int, ...], ...] = field(default_factory=tuple)


Op = Union[Affine, ReLU, LeakyReLU, MaxPool]
NONLINEAR = (ReLU, LeakyReLU, MaxPool)


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
        if not isinstance(op, (Affine, ReLU, LeakyReLU, MaxPool)):
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
    if not isinstance(out[-1], Affine):
        width = _width_after(out)
        out.append(Affine(np.eye(width), np.zeros(width)))
    _check_shapes(out)
    return out


def _width_after(ops: Sequence[Op]) -> int:
    width = ops[0].out_features  # type: ignore[union-attr]
    for op in ops[1:]:
        if isinstance(op, Affine):
            width = op.out_features
        elif isinstance(op, MaxPool):
            width = len(op.groups)
    return width


def _check_shapes(ops: Sequence[Op]) -> None:
    width = ops[0].out_features  # type: ignore[union-attr]
    for op in ops[1:]:
        if isinstance(op, Affine):
            if op.in_features != width:
                raise ValueError(f"shape mismatch: {width} values feed an affine map expecting {op.in_features}")
            width = op.out_features
        elif isinstance(op, MaxPool):
            flat = [i for g in op.groups for i in g]
            if not op.groups or min(len(g) for g in op.groups) < 1 or max(flat) >= width or min(flat) < 0:
                raise ValueError(f"max-pool groups index outside the {width} incoming values")
            width = len(op.groups)


def forward(ops: Sequence[Op], x: np.ndarray) -> np.ndarray:
    """Evaluate the network on points x of shape (n, in_features); returns (n, out)."""
    h = np.asarray(x, dtype=np.float64)
    for op in ops:
        h = apply(op, h)
    return h


def apply(op: Op, h: np.ndarray) -> np.ndarray:
    """One op on row-major values h of shape (n, width)."""
    if isinstance(op, Affine):
        return h @ op.weight.T + op.bias
    if isinstance(op, ReLU):
        return np.maximum(h, 0.0)
    if isinstance(op, LeakyReLU):
        return np.where(h > 0, h, op.negative_slope * h)
    if isinstance(op, MaxPool):
        return np.stack([h[:, list(g)].max(axis=1) for g in op.groups], axis=1)
    raise TypeError(f"unsupported op {type(op).__name__}")

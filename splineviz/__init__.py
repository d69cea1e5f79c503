"""splineviz: exact input-space partitions of small ReLU networks, how training moves them and pruning removes them."""
from __future__ import annotations

from typing import Any, Sequence

from .partition import Partition, Plane, trace as trace_ops
from .partition.ops import Affine, LeakyReLU, MaxPool, ReLU

_OPS = (Affine, ReLU, LeakyReLU, MaxPool)


def trace(model: Any, bounds: Sequence[float] | Any = (-3.0, 3.0, -3.0, 3.0), plane: Plane | None = None,
          **options: Any) -> Partition:
    """Exact partition of a torch model or a list of ops on `bounds` (or a convex polygon).

    Torch models are converted with splineviz.nets.to_ops, imported only here so that the numeric
    core stays usable without torch.
    """
    if isinstance(model, (list, tuple)) and all(isinstance(op, _OPS) for op in model):
        ops = list(model)
    else:
        from .nets import to_ops

        ops = to_ops(model)
    return trace_ops(ops, domain=bounds, plane=plane, **options)


__all__ = ["Partition", "Plane", "trace"]

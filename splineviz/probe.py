"""Looking inside a network at fixed probe points: the helpers pruning and early-bird share.

Both read a network the same way: walk the leaf modules of an ``nn.Sequential`` in execution order and record what
enters every ReLU/LeakyReLU (the pre-activations, whose zero sets are the partition's boundaries) at a fixed set of
probe points, in eval mode. A probe is either a grid over a 2-D box (the paper's 100 x 100 canvas) or a batch of
data inputs shaped as the model consumes them.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

ModelFactory = Callable[[], nn.Module]
ModelOrState = Any  # nn.Module, a state dict, or an object with a ``state`` attribute (train.Snapshot)

NONLINEARITIES = (nn.ReLU, nn.LeakyReLU)
_CHUNK = 4096  # probe points per forward pass: bounds memory for conv nets on big probes


def grid_probe(bounds: Sequence[float] = (-3.0, 3.0, -3.0, 3.0), n: int = 100) -> np.ndarray:
    """An n x n canvas of points over (xmin, xmax, ymin, ymax), row-major in y: the paper's probe set.

    Examples
    --------
    >>> grid_probe((0, 1, 0, 2), n=3)[:4].tolist()
    [[0.0, 0.0], [0.5, 0.0], [1.0, 0.0], [0.0, 1.0]]
    """
    xmin, xmax, ymin, ymax = (float(v) for v in bounds)
    if n < 2:
        raise ValueError(f"grid_probe needs n >= 2, got {n}")
    if not (xmin < xmax and ymin < ymax):
        raise ValueError(f"bounds must be (xmin, xmax, ymin, ymax) with min < max, got {tuple(bounds)}")
    xs, ys = np.meshgrid(np.linspace(xmin, xmax, n), np.linspace(ymin, ymax, n))
    return np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)


def as_model(model_or_state: ModelOrState, model_factory: ModelFactory | None = None) -> nn.Module:
    """A module for a module, a state dict, or a snapshot; state needs a factory for the architecture."""
    if isinstance(model_or_state, nn.Module):
        return model_or_state
    state = getattr(model_or_state, "state", model_or_state)
    if not isinstance(state, Mapping):
        raise TypeError(f"expected an nn.Module, a state dict or a Snapshot, got {type(model_or_state).__name__}")
    if model_factory is None:
        raise ValueError("a state dict or snapshot needs model_factory to build the architecture")
    model = model_factory()
    model.load_state_dict(state)
    return model


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Evaluate with eval semantics (BatchNorm running stats, no dropout), then restore the caller's mode."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def leaf_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules in execution order for (possibly nested) nn.Sequential models."""
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"expected an nn.Sequential model, got {type(model).__name__}")
    return [(name, m) for name, m in model.named_modules() if not list(m.children())]


def preactivations(model: nn.Module, probe: np.ndarray | torch.Tensor) -> list[torch.Tensor]:
    """Inputs to every ReLU/LeakyReLU of the model at the probe points, one (n, units, ...) tensor per layer.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(2, 1), nn.ReLU(), nn.Linear(1, 1))
    >>> with torch.no_grad():
    ...     _ = net[0].weight.copy_(torch.tensor([[1.0, -1.0]])), net[0].bias.zero_()
    >>> preactivations(net, np.array([[2.0, 0.5]]))[0].tolist()
    [[1.5]]
    """
    x = probe_tensor(model, probe)
    chunks: list[list[torch.Tensor]] = []
    with eval_mode(model):
        for start in range(0, len(x), _CHUNK):
            chunks.append(_preactivations_of(model, x[start:start + _CHUNK]))
    if not chunks or not chunks[0]:
        raise ValueError("the model has no ReLU/LeakyReLU layers, so it has no partition to compare")
    return [torch.cat(layer) for layer in zip(*chunks)]


def _preactivations_of(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    out = []
    h = x
    for _, module in leaf_modules(model):
        if isinstance(module, NONLINEARITIES):
            out.append(h.clone())  # clone: an in-place ReLU would overwrite what we keep
        h = module(h)
    return out


def probe_tensor(model: nn.Module, probe: np.ndarray | torch.Tensor) -> torch.Tensor:
    """The probe as a batch tensor in the model's dtype; rejects an empty or unbatched probe."""
    param = next(model.parameters(), None)
    dtype = param.dtype if param is not None else torch.float32
    x = torch.as_tensor(probe).to(dtype=dtype)
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"probe must be a non-empty batch of inputs (n, ...), got shape {tuple(x.shape)}")
    return x


def outputs(model: nn.Module, probe: np.ndarray | torch.Tensor) -> torch.Tensor:
    """The model's outputs at the probe points, in eval mode, in chunks."""
    x = probe_tensor(model, probe)
    with eval_mode(model):
        return torch.cat([model(chunk) for chunk in x.split(_CHUNK)])

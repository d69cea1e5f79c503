"""Which parts of a network pruning can cut: hidden layers, their units, and the weights that connect them.

A *hidden layer* is a Linear/Conv2d whose output goes through a ReLU/LeakyReLU (after an optional BatchNorm) and
then into another Linear/Conv2d; its *units* are output rows (Linear) or output channels (Conv2d). The output layer
has no units to prune. Models are ``nn.Sequential`` stacks with Flatten, Dropout, Identity and pooling in between.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import nn

from splineviz.probe import NONLINEARITIES, leaf_modules

PRODUCERS = (nn.Linear, nn.Conv2d)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
_PASSIVE = (nn.Flatten, nn.Dropout, nn.Identity, nn.MaxPool2d, nn.AvgPool2d)


@dataclass(frozen=True)
class HiddenLayer:
    """A prunable layer: the module producing the units and the modules its units feed."""

    name: str                 # Linear/Conv2d producing the units
    bn: str | None            # BatchNorm between it and its nonlinearity
    consumer: str             # Linear/Conv2d reading the units
    act_index: int            # position among the model's nonlinearities (preactivations order)
    width: int
    negative_slope: float = 0.0  # of the nonlinearity: 0 for ReLU


def hidden_layers(model: nn.Module) -> list[HiddenLayer]:
    """The prunable layers of a Sequential model, in order; raises on layers pruning cannot follow.

    Examples
    --------
    >>> from splineviz.nets import mlp
    >>> [(h.name, h.consumer, h.width) for h in hidden_layers(mlp(2, (5, 3), 2))]
    [('0', '2', 5), ('2', '4', 3)]
    """
    layers: list[HiddenLayer] = []
    producer: str | None = None
    bn: str | None = None
    pending: tuple[str, str | None, int, float] | None = None
    n_acts = 0
    for name, module in leaf_modules(model):
        if isinstance(module, PRODUCERS):
            if pending is not None:
                layers.append(HiddenLayer(pending[0], pending[1], name, pending[2], _width(model, pending[0]),
                                          pending[3]))
            producer, bn, pending = name, None, None
        elif isinstance(module, NORMS):
            if producer is not None and pending is None:  # normalises the units before they bend
                bn = name
        elif isinstance(module, NONLINEARITIES):
            if producer is None:
                raise ValueError(f"nonlinearity {name!r} comes before any Linear/Conv2d layer")
            if pending is None:
                pending = (producer, bn, n_acts, float(getattr(module, "negative_slope", 0.0)))
            n_acts += 1
        elif not isinstance(module, _PASSIVE):
            raise ValueError(f"pruning does not support layer {name!r} ({type(module).__name__})")
    if not layers:
        raise ValueError("the model has no hidden layer (Linear/Conv2d followed by ReLU and another layer)")
    return layers


def _width(model: nn.Module, name: str) -> int:
    return int(model.get_submodule(name).weight.shape[0])


def incoming_norms(model: nn.Module, layer: HiddenLayer) -> np.ndarray:
    """L2 norm of each unit's incoming weights (row, or whole output-channel kernel)."""
    w = model.get_submodule(layer.name).weight.detach()
    return w.reshape(layer.width, -1).norm(dim=1).double().numpy()


def outgoing_slice(model: nn.Module, layer: HiddenLayer, unit: int) -> tuple[slice | int, ...]:
    """Index of the consumer's weights reading ``unit`` (a column, a channel, or a flattened block)."""
    consumer = model.get_submodule(layer.consumer)
    if isinstance(consumer, nn.Conv2d):
        if consumer.in_channels != layer.width or consumer.groups != 1:
            raise ValueError(f"{layer.consumer!r} does not read the {layer.width} channels of {layer.name!r} densely")
        return (slice(None), unit)
    n_in = consumer.in_features
    if n_in % layer.width:
        raise ValueError(f"{layer.consumer!r} reads {n_in} values, not a multiple of {layer.width} units")
    block = n_in // layer.width  # channel-major flatten of a conv output: one block per channel
    return (slice(None), slice(unit * block, (unit + 1) * block))


def outgoing_norms(model: nn.Module, layer: HiddenLayer) -> np.ndarray:
    """L2 norm of the weights through which each unit reaches the next layer."""
    w = model.get_submodule(layer.consumer).weight.detach()
    return np.array([float(w[outgoing_slice(model, layer, u)].norm()) for u in range(layer.width)])


def silent_units(model: nn.Module, layer: HiddenLayer) -> np.ndarray:
    """Units whose incoming weights and bias are all zero (already pruned): (width,) bool."""
    w = model.get_submodule(layer.name).weight.detach().reshape(layer.width, -1)
    silent = ~w.bool().any(dim=1)
    bias = model.get_submodule(layer.name).bias
    for owner in (layer.name, layer.bn):  # a BatchNorm shift would still drive a unit with no weights
        bias = model.get_submodule(owner).bias if owner is not None else None
        if bias is not None:
            silent &= bias.detach() == 0
    return silent.numpy()


def weight_tensors(model: nn.Module) -> list[str]:
    """Names of the weight tensors weight pruning may zero: every Linear/Conv2d weight."""
    return [f"{name}.weight" for name, m in leaf_modules(model) if isinstance(m, PRODUCERS)]


__all__ = ["HiddenLayer", "hidden_layers", "incoming_norms", "outgoing_norms", "outgoing_slice", "silent_units",
           "weight_tensors", "PRODUCERS", "NORMS"]

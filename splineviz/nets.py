"""Torch models and their conversion into the core's piecewise-linear ops.

The partition engine only understands affine maps and a few activations. Everything linear in
eval mode (Linear, Conv2d, AvgPool2d, folded BatchNorm) becomes one dense ``Affine``; max
pooling becomes index groups. Models are plain ``nn.Sequential`` so that a state dict alone
(keys ``0.weight``, ``2.weight``...) describes them and can be loaded back safely.
"""
from __future__ import annotations

import copy
import io
import math
import os
import re
import threading
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.fx
from torch import nn

from splineviz.partition.ops import Affine, LeakyReLU, MaxPool, Op, ReLU, forward, normalize

ACTIVATIONS = ("relu", "leaky_relu")
_IGNORED = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
            nn.FeatureAlphaDropout)
_PASSTHROUGH = (*_IGNORED, nn.ReLU, nn.LeakyReLU, nn.Flatten)  # may precede the layer that fixes the input shape
_LEAVES = (*_PASSTHROUGH, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.Conv2d, nn.AvgPool2d, nn.MaxPool2d)
SUPPORTED_LAYERS = ("Linear", "ReLU", "LeakyReLU", "Identity", "Dropout", "BatchNorm1d", "Flatten", "Conv2d",
                    "BatchNorm2d", "AvgPool2d", "MaxPool2d", "Sequential (nested)",
                    "custom modules whose forward chains these")


class UnsupportedLayerError(ValueError):
    """A layer that is not piecewise linear in a way the partition engine can represent."""


class ModelLoadError(ValueError):
    """Uploaded weights that cannot be turned into a model; the message says what was wrong."""


_INIT_LOCK = threading.Lock()


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed torch's global RNG (used by layer init) without disturbing the caller's stream.

    The lock makes concurrent builds in one process (threaded servers) each get their own seed's weights.
    """
    with _INIT_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _activation(name: str, negative_slope: float) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope)
    raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")


def mlp(in_features: int = 2, hidden: Sequence[int] = (16, 16), out_features: int = 2, activation: str = "relu",
        seed: int = 0, *, negative_slope: float = 0.01) -> nn.Sequential:
    """Linear/activation stack with PyTorch's default init drawn from ``seed``.

    Linear layers sit at even indices, so the state-dict keys are ``0.weight``, ``2.weight``, ...
    """
    widths = [in_features, *hidden, out_features]
    if any(int(w) != w or w < 1 for w in widths):
        raise ValueError(f"layer widths must be positive integers, got {widths}")
    _activation(activation, negative_slope)  # validate before building
    layers: list[nn.Module] = []
    with _seeded(seed):
        for i, (w_in, w_out) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.Linear(int(w_in), int(w_out)))
            if i < len(widths) - 2:
                layers.append(_activation(activation, negative_slope))
    return nn.Sequential(*layers)


PAPER_CNN_INPUT = (1, 28, 28)


def paper_cnn(n_classes: int = 10, seed: int = 0) -> nn.Sequential:
    """The paper's MNIST net: 1x28x28 -> conv 21x21 (16) -> BN -> ReLU -> conv 5x5 (16) -> BN -> ReLU -> linear."""
    with _seeded(seed):
        return nn.Sequential(
            nn.Conv2d(1, 16, 21), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 16, 5), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Flatten(), nn.Linear(16 * 4 * 4, n_classes))


# ----------------------------------------------------------------------------------------------- conversion

def flat_layers(model: nn.Module) -> list[nn.Module]:
    """The layers ``model`` applies, in execution order.

    Sequentials are unrolled; a custom module (a user's ``nn.Module`` subclass with layers as attributes and a
    ``forward``) is read with ``torch.fx`` and must apply its layers one after the other. Known layers, and modules
    without children, are single layers (``_convert`` decides whether they are supported).

    Examples
    --------
    >>> from torch import nn
    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.hidden, self.out = nn.Linear(2, 8), nn.Linear(8, 2)
    ...     def forward(self, x):
    ...         return self.out(torch.relu(self.hidden(x)))
    >>> [type(layer).__name__ for layer in flat_layers(Net())]
    ['Linear', 'ReLU', 'Linear']
    """
    if isinstance(model, nn.Sequential):
        return [leaf for child in model for leaf in flat_layers(child)]
    if isinstance(model, _LEAVES) or next(model.children(), None) is None:
        return [model]
    return [leaf for layer in _forward_chain(model) for leaf in flat_layers(layer)]


class _LeafTracer(torch.fx.Tracer):
    """Stops at the layers the converter knows (subclasses included, so that their forward is checked there)."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, _LEAVES) or super().is_leaf_module(m, module_qualified_name)


def _forward_chain(model: nn.Module) -> list[nn.Module]:
    """A custom module's forward as the layers it applies one after another; anything else is refused."""
    name = type(model).__name__
    advice = "write the model as an nn.Sequential, or convert a chain of supported layers"
    try:
        graph = _LeafTracer().trace(model)
    except Exception as e:  # fx raises many types for data-dependent or untraceable forwards
        raise UnsupportedLayerError(f"cannot read the forward of {name} with torch.fx ({type(e).__name__}: "
                                    f"{str(e).splitlines()[0] if str(e) else 'no details'}); {advice}") from e
    modules = dict(model.named_modules())
    layers: list[nn.Module] = []
    previous = None
    for node in graph.nodes:
        inputs = node.all_input_nodes
        if node.op == "placeholder":
            if previous is not None:
                raise UnsupportedLayerError(f"{name}.forward takes more than one input; {advice}")
            previous = node
            continue
        if inputs != [previous] or len(previous.users) != 1:
            raise UnsupportedLayerError(
                f"{name}.forward is not a chain of layers at {node.format_node()!r} (branches, residual "
                f"connections and several inputs are not piecewise-linear layers the converter knows); {advice}")
        if node.op == "output":
            return layers
        layers.append(modules[node.target] if node.op == "call_module" else _functional_layer(node, name, advice))
        previous = node
    raise UnsupportedLayerError(f"{name}.forward returns nothing; {advice}")


def _functional_layer(node: torch.fx.Node, name: str, advice: str) -> nn.Module:
    """The layer a functional call in a forward stands for: relu, leaky_relu and flatten(x, 1)."""
    target = node.target if node.op == "call_method" else getattr(node.target, "__name__", str(node.target))
    args, kwargs = node.args[1:], node.kwargs
    if target in ("relu", "relu_"):
        return nn.ReLU()
    if target in ("leaky_relu", "leaky_relu_"):
        return nn.LeakyReLU(float(args[0] if args else kwargs.get("negative_slope", 0.01)))
    if target == "flatten":
        start = args[0] if args else kwargs.get("start_dim", 0)
        end = args[1] if len(args) > 1 else kwargs.get("end_dim", -1)
        if start == 1 and end == -1:
            return nn.Flatten()
    raise UnsupportedLayerError(f"{name}.forward calls {node.format_node()!r}, which the converter cannot "
                                f"represent (supported calls: relu, leaky_relu, flatten(x, 1)); {advice}")


def to_ops(model: nn.Module, input_shape: int | Sequence[int] | None = None) -> list[Op]:
    """Convert a model into normalized ops that compute its eval-mode forward pass.

    Parameters
    ----------
    model
        An ``nn.Sequential`` (nested ones are unrolled) or a custom module whose forward applies its layers in a
        chain (read with ``torch.fx``), made of Linear, Conv2d, BatchNorm1d/2d (folded), AvgPool2d, MaxPool2d,
        Flatten, ReLU, LeakyReLU, Identity and Dropout.
    input_shape
        One sample's shape, e.g. ``(1, 28, 28)``; read from the first Linear/BatchNorm1d when omitted
        (see ``input_shape_for``).

    Returns
    -------
    list of Op
        ``[Affine, nonlinear, Affine, ...]``; consecutive linear layers are merged into one affine map.

    Raises
    ------
    UnsupportedLayerError
        For any other layer, a subclass of a supported layer that overrides ``forward`` (tracing it as the base
        layer would draw a wrong partition), or a custom forward that is not a chain of layers.

    Examples
    --------
    >>> ops = to_ops(mlp(2, hidden=(4,), out_features=3))
    >>> [type(op).__name__ for op in ops], ops[0].weight.shape
    (['Affine', 'ReLU', 'Affine'], (4, 2))
    """
    layers = flat_layers(model)
    shape = input_shape_for(model, input_shape)
    in_features = math.prod(shape)
    ops: list[Op] = []
    with torch.no_grad():
        for layer in layers:
            op, shape = _convert(layer, shape)
            if op is not None:
                ops.append(op)
    ops = normalize(ops, in_features)
    if any(_is_custom(m) for m in model.modules()):
        _check_against_forward(model, ops, input_shape_for(model, input_shape))
    return ops


def _is_custom(module: nn.Module) -> bool:
    """A module whose layers come from reading its forward rather than from Sequential order."""
    return not isinstance(module, (nn.Sequential, *_LEAVES)) and next(module.children(), None) is not None


def _check_against_forward(model: nn.Module, ops: list[Op], shape: tuple[int, ...]) -> None:
    """Refuse ops that disagree with the module's own forward on random inputs (a forward read by fx may hide work)."""
    x = torch.randn(4, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = copy.deepcopy(model).to(torch.float64).eval()(x).reshape(4, -1).numpy()
    got = forward(ops, x.reshape(4, -1).numpy())
    if got.shape != want.shape or not np.allclose(got, want, rtol=1e-6, atol=1e-9 * max(1.0, np.abs(want).max())):
        raise UnsupportedLayerError(f"the layers read from {type(model).__name__}.forward do not reproduce its "
                                    "outputs, so it does something the converter cannot see; write the model as an "
                                    "nn.Sequential of supported layers")


def input_shape_for(model: nn.Module, sample_shape: int | Sequence[int] | None = None) -> tuple[int, ...]:
    """The shape of one sample as ``model`` consumes it.

    Models that start with a Linear layer take flat rows (an image shape is flattened); others
    (convolutions) need ``sample_shape``, e.g. ``(1, 28, 28)``.

    Examples
    --------
    >>> input_shape_for(mlp(784, (8,), 10), (1, 28, 28))
    (784,)
    >>> input_shape_for(paper_cnn(), (1, 28, 28))
    (1, 28, 28)
    """
    first = next((layer for layer in flat_layers(model) if not isinstance(layer, _PASSTHROUGH)), None)
    if sample_shape is None:
        if isinstance(first, (nn.Linear, nn.BatchNorm1d)):
            return (first.in_features if isinstance(first, nn.Linear) else first.num_features,)
        first_name = type(first).__name__ if first is not None else "none"
        raise ValueError(f"cannot infer the input shape of this model (its first shape-fixing layer is "
                         f"{first_name}); pass input_shape=(C, H, W) for one sample, or trace it on a "
                         "plane through images shaped (C, H, W)")
    shape = (int(sample_shape),) if isinstance(sample_shape, (int, np.integer)) else tuple(map(int, sample_shape))
    if not shape or min(shape) < 1:
        raise ValueError(f"input shape must be positive sizes of one sample, got {sample_shape!r}")
    return (math.prod(shape),) if isinstance(first, nn.Linear) else shape


def _convert(layer: nn.Module, shape: tuple[int, ...]) -> tuple[Op | None, tuple[int, ...]]:
    """One layer -> (op or None, output shape of one sample)."""
    _refuse_own_forward(layer)
    if isinstance(layer, _IGNORED):
        return None, shape
    if isinstance(layer, nn.ReLU):
        return ReLU(), shape
    if isinstance(layer, nn.LeakyReLU):
        return LeakyReLU(float(layer.negative_slope)), shape
    if isinstance(layer, nn.Flatten):
        return None, _output_shape(layer, shape)
    if isinstance(layer, nn.Linear):
        _expect(layer, shape, (layer.in_features,))
        bias = layer.bias if layer.bias is not None else torch.zeros(layer.out_features)
        return Affine(_np(layer.weight), _np(bias)), (layer.out_features,)
    if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return _batchnorm(layer, shape), shape
    if isinstance(layer, (nn.Conv2d, nn.AvgPool2d)):
        _expect(layer, shape, (getattr(layer, "in_channels", None), None, None))
        return _dense(layer, shape)
    if isinstance(layer, nn.MaxPool2d):
        return _maxpool(layer, shape)
    raise UnsupportedLayerError(
        f"cannot convert layer {layer!r} ({type(layer).__name__}); supported layers: {', '.join(SUPPORTED_LAYERS)}")


def _refuse_own_forward(layer: nn.Module) -> None:
    """A subclass of a supported layer with its own forward would be traced as the base layer: a wrong partition."""
    if not isinstance(layer, _LEAVES):
        return
    base = next(cls for cls in type(layer).__mro__ if cls.__module__.startswith("torch.nn."))
    if type(layer).forward is not base.forward:
        raise UnsupportedLayerError(
            f"{type(layer).__name__} subclasses nn.{base.__name__} but overrides forward; converting it as a plain "
            f"{base.__name__} would draw the partition of a different network, so it is refused. Use "
            f"nn.{base.__name__} itself, or a supported layer that computes what its forward does")


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().to(torch.float64).numpy()


def _expect(layer: nn.Module, shape: tuple[int, ...], want: tuple[int | None, ...]) -> None:
    if len(shape) != len(want) or any(w is not None and s != w for s, w in zip(shape, want)):
        pattern = "x".join("*" if w is None else str(w) for w in want)
        raise ValueError(f"{type(layer).__name__} expects one sample shaped {pattern}, "
                         f"but receives {'x'.join(map(str, shape))}")


def _output_shape(layer: nn.Module, shape: tuple[int, ...]) -> tuple[int, ...]:
    try:
        return tuple(layer(torch.zeros(1, *shape, dtype=torch.float64)).shape[1:])
    except RuntimeError as e:
        raise ValueError(f"{type(layer).__name__} cannot take one sample shaped {shape}: {e}") from e


def _batchnorm(layer: nn.modules.batchnorm._BatchNorm, shape: tuple[int, ...]) -> Affine:
    """Eval-mode BatchNorm is x * scale + shift per channel: a diagonal affine map."""
    if layer.running_mean is None or layer.running_var is None:
        raise UnsupportedLayerError(
            f"{layer!r} has track_running_stats=False, so even in eval mode it normalises with batch statistics, "
            "which is not a fixed affine map")
    channels = layer.num_features
    ndim = 3 if isinstance(layer, nn.BatchNorm2d) else min(len(shape), 2)  # BatchNorm1d takes (C,) or (C, L)
    _expect(layer, shape, (channels,) + (None,) * (ndim - 1))
    scale = 1.0 / np.sqrt(_np(layer.running_var) + layer.eps)
    shift = -_np(layer.running_mean) * scale
    if layer.affine:
        scale, shift = scale * _np(layer.weight), shift * _np(layer.weight) + _np(layer.bias)
    per_channel = math.prod(shape[1:])
    return Affine(np.diag(np.repeat(scale, per_channel)), np.repeat(shift, per_channel))


def _dense(layer: nn.Module, shape: tuple[int, ...]) -> tuple[Affine, tuple[int, ...]]:
    """Any eval-mode affine layer as a dense matrix: push the zero vector and every basis vector through it."""
    n = math.prod(shape)
    layer64 = copy.deepcopy(layer).to(torch.float64).eval()
    inputs = torch.cat([torch.zeros(1, n, dtype=torch.float64), torch.eye(n, dtype=torch.float64)])
    try:
        out = layer64(inputs.reshape(n + 1, *shape))
    except RuntimeError as e:
        raise ValueError(f"{type(layer).__name__} cannot take one sample shaped {shape}: {e}") from e
    flat = out.reshape(n + 1, -1)
    bias = flat[0]
    return Affine((flat[1:] - bias).T.numpy(), bias.numpy()), tuple(out.shape[1:])


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _maxpool(layer: nn.MaxPool2d, shape: tuple[int, ...]) -> tuple[MaxPool, tuple[int, ...]]:
    """Each output's group = the flat C*H*W indices its window covers (padding excluded, as torch pads with -inf)."""
    if layer.ceil_mode:
        raise UnsupportedLayerError(f"{layer!r}: ceil_mode=True is not supported; use ceil_mode=False")
    if layer.return_indices:
        raise UnsupportedLayerError(f"{layer!r}: return_indices=True is not supported in a Sequential")
    _expect(layer, shape, (None, None, None))
    c, h, w = shape
    # Indices shifted by one so that zero padding marks "outside the image".
    index = torch.arange(1, c * h * w + 1, dtype=torch.float64).reshape(c, 1, h, w)
    windows = nn.functional.unfold(index, _pair(layer.kernel_size), dilation=_pair(layer.dilation),
                                   padding=_pair(layer.padding), stride=_pair(layer.stride))
    out_h, out_w = _output_shape(layer, shape)[1:]
    windows = windows.long().numpy() - 1  # (c, k*k, out_h*out_w)
    groups = tuple(tuple(int(i) for i in windows[ch, :, pos] if i >= 0)
                   for ch in range(c) for pos in range(out_h * out_w))
    return MaxPool(groups), (c, out_h, out_w)


# ----------------------------------------------------------------------------------------------- loading

@dataclass(frozen=True)
class ModelLimits:
    """The largest model a caller agrees to build, checked on its description before any weight is allocated.

    A server takes architectures and weights from strangers: without a cap, ``{"hidden": [12000, 12000]}``
    allocates 144M parameters before anything else can object.
    """

    max_width: int = 4096  # units in any layer, inputs and outputs included
    max_hidden_layers: int = 64
    max_params: int = 50_000_000


class ModelTooLargeError(ModelLoadError):
    """A description or file of a model over the caller's ``ModelLimits``."""


def _int_list(values: object, what: str) -> list[int]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ValueError(f"{what} must be a list of layer widths, got {values!r}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{what} must hold positive integers, got {v!r}")
        out.append(int(v))
    return out


def architecture_size(architecture: Mapping) -> tuple[list[int], int, int]:
    """(widths of the layers that map features, hidden layers, parameter count) of a ``build_model`` description.

    Computed from the description alone, so that limits can be checked before anything is allocated.
    """
    arch = dict(architecture)
    kind = arch.get("type", "mlp")
    if kind == "mlp":
        widths = _int_list([arch.get("in_features", 2), *_int_list(arch.get("hidden", (16, 16)), "hidden"),
                            arch.get("out_features", 2)], "layer widths")
        params = sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))
        return widths, len(widths) - 2, params
    if kind == "paper_cnn":
        (n_classes,) = _int_list([arch.get("n_classes", 10)], "n_classes")
        convs = 16 * 21 * 21 + 16 + 16 * 16 * 5 * 5 + 16
        batchnorms = 2 * (4 * 16 + 1)  # weight, bias, running mean and variance, batch count
        return [784, 16, 16, n_classes], 2, convs + batchnorms + 256 * n_classes + n_classes
    raise ValueError(f"unknown architecture type {kind!r}; choose one of mlp, paper_cnn")


def check_architecture(architecture: Mapping, limits: ModelLimits) -> None:
    """Raise ModelTooLargeError if the described model is over ``limits`` (nothing is built)."""
    widths, depth, params = architecture_size(architecture)
    if max(widths) > limits.max_width:
        raise ModelTooLargeError(f"a layer of {max(widths):,} units is over the limit of {limits.max_width:,} "
                                 f"units per layer (layer widths {_short(widths)})")
    if depth > limits.max_hidden_layers:
        raise ModelTooLargeError(f"{depth} hidden layers are over the limit of {limits.max_hidden_layers}")
    if params > limits.max_params:
        raise ModelTooLargeError(f"{params:,} parameters are over the limit of {limits.max_params:,} "
                                 f"(layer widths {_short(widths)})")


def _short(widths: Sequence[int], keep: int = 8) -> str:
    shown = [f"{w:,}" for w in widths[:keep]] + (["…"] if len(widths) > keep else [])
    return "-".join(shown)


def build_model(architecture: Mapping, limits: ModelLimits | None = None) -> nn.Sequential:
    """Model from a JSON-able description: ``{"type": "mlp", **mlp kwargs}`` or ``{"type": "paper_cnn", ...}``.

    Descriptions are what get hashed for caches and shipped next to state dicts, so they must be plain data.
    With ``limits``, a description over them raises ModelTooLargeError before anything is built.
    """
    arch = dict(architecture)
    if limits is not None:
        check_architecture(arch, limits)
    kind = arch.pop("type", "mlp")
    builders = {"mlp": mlp, "paper_cnn": paper_cnn}
    if kind not in builders:
        raise ValueError(f"unknown architecture type {kind!r}; choose one of {', '.join(builders)}")
    try:
        return builders[kind](**arch)
    except TypeError as e:
        raise ValueError(f"bad parameters for {kind}: {e}") from e


MODEL_FORMATS = ("pt", "safetensors", "onnx")


@dataclass(frozen=True)
class LoadedModel:
    """A model read from a file, with what the file says about it, for a UI to show next to the upload.

    ``activation_from_file`` is False for state dicts, which hold weights only: their activation is the
    caller's choice (``activation=``), not something the file proved.
    """

    model: nn.Sequential
    description: str  # e.g. "2-16-16-2 ReLU", see describe_model
    architecture: dict | None  # a build_model description of the same model, when there is one
    input_shape: tuple[int, ...] | None  # one sample's shape, when a Linear layer or the file fixes it
    format: str  # one of MODEL_FORMATS
    activation_from_file: bool


def load_model(path_or_bytes: str | os.PathLike | bytes, architecture: Mapping | None = None, *,
               activation: str | None = None, negative_slope: float | None = None,
               limits: ModelLimits | None = None, max_bytes: int | None = None) -> nn.Sequential:
    """Build a model from a saved file; never unpickles code. ``read_model(...).model``: see there."""
    return read_model(path_or_bytes, architecture, activation=activation, negative_slope=negative_slope,
                      limits=limits, max_bytes=max_bytes).model


def read_model(path_or_bytes: str | os.PathLike | bytes, architecture: Mapping | None = None, *,
               activation: str | None = None, negative_slope: float | None = None,
               limits: ModelLimits | None = None, max_bytes: int | None = None) -> LoadedModel:
    """A model and its description from a ``.pt`` state dict (read with ``weights_only=True``), ``.safetensors``
    or ``.onnx`` file (path or bytes; the format is read from the content, not the name).

    State dicts: any whose Linear layers form a chain, whatever the key names (``fc1.weight``, ``layers.0.weight``,
    ``W0``/``b0``, ``torch.nn.utils.prune``'s ``weight_orig``/``weight_mask``), inside ``{"state_dict": ...}``,
    ``{"model_state_dict": ...}`` or ``{"model": ...}`` checkpoints and with DataParallel's ``module.`` prefix.
    The layers are chained in key order when that order is a chain, else in the one order their shapes allow;
    several orders or none are refused, naming the keys. A state dict cannot say its activation: it is
    ``activation`` (``"relu"`` or ``"leaky_relu"`` with ``negative_slope``), default ReLU. With ``architecture``
    (as for ``build_model``; e.g. ``{"type": "paper_cnn"}``) the keys must be that model's own.

    ONNX files: a chain of Gemm, MatMul(+Add), Relu, LeakyRelu, Conv, BatchNormalization, MaxPool, AveragePool,
    Flatten and Reshape-as-flatten (Identity and Dropout are skipped, a final Softmax, LogSoftmax or Sigmoid is
    dropped: the model gives logits, with the same predicted classes); activations come from the file.

    ``max_bytes`` bounds the file and what it unpacks to, checked before any tensor is read; ``limits`` bound the
    model (widths, hidden layers, parameters), checked before it is built.
    """
    raw, name = _read_bytes(path_or_bytes, max_bytes)
    if _looks_like_onnx(raw):
        from splineviz.onnx_io import read_onnx  # onnx is only imported for ONNX files
        model, shape = read_onnx(raw, name, limits)
        return _loaded(model, shape, "onnx", True)
    if max_bytes is not None:
        check_saved_size(raw, max_bytes, name)
    fmt = "safetensors" if _looks_like_safetensors(raw) else "pt"
    state = _parse_state(raw, name)
    arch = dict(architecture or {})
    if arch.get("type", "mlp") == "mlp":  # other architectures fix their activations
        for key, value in (("activation", activation), ("negative_slope", negative_slope)):
            if value is not None and arch.setdefault(key, value) != value:
                raise ModelLoadError(f"{key} is given twice, as {value!r} and as {arch[key]!r} in the architecture")
        state, widths = _mlp_state(state, arch, key_order=fmt == "pt")
        arch.update(in_features=widths[0], hidden=tuple(widths[1:-1]), out_features=widths[-1])
    try:
        model = build_model(arch, limits)
    except ModelLoadError:
        raise
    except ValueError as e:
        raise ModelLoadError(str(e)) from e
    return _loaded(model_from_state(state, model), None, fmt, False)


def model_from_state(state: Mapping[str, torch.Tensor], like_model: nn.Module) -> nn.Module:
    """A copy of ``like_model`` holding ``state``, in eval mode (e.g. to trace a training snapshot)."""
    model = copy.deepcopy(like_model)
    try:
        model.load_state_dict(dict(state), strict=True)
    except RuntimeError as e:
        raise ModelLoadError(f"weights do not fit the architecture: {e}") from e
    return model.eval()


def _loaded(model: nn.Sequential, shape: tuple[int, ...] | None, fmt: str, activation_from_file: bool
            ) -> LoadedModel:
    architecture = architecture_of(model)
    if shape is None and architecture is not None and architecture["type"] == "paper_cnn":
        shape = PAPER_CNN_INPUT
    try:
        shape = input_shape_for(model, shape)
    except ValueError:
        shape = None
    return LoadedModel(model, describe_model(model, shape), architecture, shape, fmt, activation_from_file)


def save_model(model: nn.Module, target: str | os.PathLike | None = None, format: str | None = None, *,
               input_shape: int | Sequence[int] | None = None) -> bytes:
    """``model`` as a ``.pt`` state dict, ``.safetensors`` or ``.onnx`` file: its bytes, also written to ``target``.

    The format is ``format``, else ``target``'s suffix, else ``"pt"``. ONNX is written without torch.onnx (see
    ``splineviz.onnx_io.write_onnx``: the layers ``to_ops`` takes; ``input_shape`` for models that start with a
    convolution). Every format loads back with ``load_model`` (an MLP's state dict needs only its activation).
    """
    if format is None:
        suffix = os.path.splitext(os.fspath(target))[1].lstrip(".").lower() if target is not None else ""
        format = suffix if suffix in MODEL_FORMATS else "pt"
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    if format == "pt":
        buffer = io.BytesIO()
        torch.save(state, buffer)
        raw = buffer.getvalue()
    elif format == "safetensors":
        from safetensors.torch import save
        raw = save(state)
    elif format == "onnx":
        from splineviz.onnx_io import write_onnx
        raw = write_onnx(model, input_shape)
    else:
        raise ValueError(f"unknown model format {format!r}; choose one of {', '.join(MODEL_FORMATS)}")
    if target is not None:
        with open(target, "wb") as f:
            f.write(raw)
    return raw


def describe_model(model: nn.Module, input_shape: int | Sequence[int] | None = None) -> str:
    """The architecture in words: ``"2-16-16-2 ReLU"`` for an MLP, else its layers in order.

    Examples
    --------
    >>> describe_model(mlp(2, (16, 8), 3, activation="leaky_relu", negative_slope=0.2))
    '2-16-8-3 Leaky ReLU (slope 0.2)'
    >>> describe_model(paper_cnn(), (1, 28, 28))
    '1×28×28 → Conv 16@21×21 → BatchNorm → ReLU → Conv 16@5×5 → BatchNorm → ReLU → Flatten → Linear 256→10'
    """
    layers = [m for m in flat_layers(model) if not isinstance(m, _IGNORED)]
    arch = _mlp_description(layers)
    if arch is not None:
        widths = [arch["in_features"], *arch["hidden"], arch["out_features"]]
        act = "linear" if not arch["hidden"] else "ReLU" if arch["activation"] == "relu" else \
            f"Leaky ReLU (slope {arch['negative_slope']:g})"
        return f"{'-'.join(map(str, widths))} {act}"
    words = [_layer_words(m) for m in layers]
    if input_shape is not None and not isinstance(input_shape, (int, np.integer)) and len(input_shape) > 1:
        words.insert(0, "×".join(map(str, input_shape)))  # images; a first Linear layer says its input width
    return " → ".join(words)


def _layer_words(layer: nn.Module) -> str:
    if isinstance(layer, nn.Linear):
        return f"Linear {layer.in_features}→{layer.out_features}"
    if isinstance(layer, nn.Conv2d):
        return f"Conv {layer.out_channels}@{'×'.join(map(str, _pair(layer.kernel_size)))}"
    if isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
        return f"{'Max' if isinstance(layer, nn.MaxPool2d) else 'Avg'}Pool {'×'.join(map(str, _pair(layer.kernel_size)))}"
    if isinstance(layer, nn.modules.batchnorm._BatchNorm):
        return "BatchNorm"
    if isinstance(layer, nn.LeakyReLU):
        return f"Leaky ReLU ({layer.negative_slope:g})"
    return type(layer).__name__


def _mlp_description(layers: Sequence[nn.Module]) -> dict | None:
    """The ``mlp`` description of Linear, activation, Linear, ... layers (one activation throughout), else None."""
    linears, acts = layers[::2], layers[1::2]
    if not linears or not all(type(m) is nn.Linear and m.bias is not None for m in linears) or \
            len(acts) != len(linears) - 1 or any(type(a) is not type(acts[0]) for a in acts) or \
            not all(type(a) in (nn.ReLU, nn.LeakyReLU) for a in acts) or \
            any(b.in_features != a.out_features for a, b in zip(linears, linears[1:])):
        return None
    arch = {"type": "mlp", "in_features": linears[0].in_features,
            "hidden": [m.out_features for m in linears[:-1]], "out_features": linears[-1].out_features,
            "activation": "leaky_relu" if acts and isinstance(acts[0], nn.LeakyReLU) else "relu"}
    if arch["activation"] == "leaky_relu":
        slopes = {float(a.negative_slope) for a in acts}
        if len(slopes) > 1:
            return None
        arch["negative_slope"] = slopes.pop()
    return arch


def architecture_of(model: nn.Module) -> dict | None:
    """A ``build_model`` description whose model has ``model``'s structure (so its state dict fits), else None.

    Examples
    --------
    >>> architecture_of(mlp(2, (4,), 3))
    {'type': 'mlp', 'in_features': 2, 'hidden': [4], 'out_features': 3, 'activation': 'relu'}
    """
    layers = flat_layers(model)
    if isinstance(model, nn.Sequential) and all(type(m) in (nn.Linear, nn.ReLU, nn.LeakyReLU) for m in model):
        arch = _mlp_description(layers)
        if arch is not None:
            return arch
    last = layers[-1] if layers else None
    if isinstance(model, nn.Sequential) and isinstance(last, nn.Linear) and len(model) == 8:
        arch = {"type": "paper_cnn", "n_classes": last.out_features}
        if _structure(build_model(arch)) == _structure(model):
            return arch
    return None


def _structure(model: nn.Module) -> list[tuple[str, str]]:
    return [(name, type(m).__name__ + m.extra_repr()) for name, m in model.named_modules()]


def _read_bytes(source: str | os.PathLike | bytes, max_bytes: int | None) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        raw, name = bytes(source), "uploaded data"
    else:
        name = os.fspath(source)
        try:
            if max_bytes is not None and os.path.getsize(name) > max_bytes:
                raise ModelTooLargeError(f"{name} is {_mb(os.path.getsize(name))}, over the limit of {_mb(max_bytes)}")
            with open(name, "rb") as f:
                raw = f.read()
        except OSError as e:
            raise ModelLoadError(f"cannot read {name}: {e.strerror or e}") from e
    if not raw:
        raise ModelLoadError(f"{name} is empty")
    if max_bytes is not None and len(raw) > max_bytes:
        raise ModelTooLargeError(f"{name} is {_mb(len(raw))}, over the limit of {_mb(max_bytes)}")
    return raw, name


def _parse_state(raw: bytes, name: str) -> dict[str, torch.Tensor]:
    try:
        state = _parse_safetensors(raw) if _looks_like_safetensors(raw) else \
            torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as e:  # torch/safetensors raise many unrelated types for corrupt input
        raise ModelLoadError(f"{name} is not a readable PyTorch state dict, safetensors or ONNX file "
                             f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no details'})") from e
    return _check_state(state, name)


def check_saved_size(raw: bytes, max_bytes: int, name: str = "the file") -> None:
    """Refuse files over ``max_bytes``, or that would unpack to more, before torch reads a tensor.

    torch.save writes a zip whose members may be compressed: a few hundred kB can declare gigabytes. The
    central directory states every member's unpacked size, so the sum is known before decompressing.
    Files in torch's pre-zip format declare storage sizes only inside their pickle, so they are refused;
    safetensors data lies in the file itself, which the parser checks.
    """
    if len(raw) > max_bytes:
        raise ModelTooLargeError(f"{name} is {_mb(len(raw))}, over the limit of {_mb(max_bytes)}")
    if _looks_like_safetensors(raw):
        return
    if not zipfile.is_zipfile(io.BytesIO(raw)):
        raise ModelLoadError(f"{name} is not a readable PyTorch state dict, safetensors or ONNX file (expected the "
                             "zip format that torch.save writes since PyTorch 1.6, safetensors or ONNX)")
    zip_members(raw, max_bytes, name)


def zip_members(raw: bytes, max_bytes: int, name: str = "the file", max_members: int | None = None
                ) -> list[zipfile.ZipInfo]:
    """The members of a zip, refused before anything is unpacked when they declare more than ``max_bytes`` in all
    or are more than ``max_members``. Readers must read a member only up to its declared ``file_size``."""
    try:
        members = zipfile.ZipFile(io.BytesIO(raw)).infolist()
    except (zipfile.BadZipFile, ValueError) as e:
        raise ModelLoadError(f"{name} is not a readable zip file ({e})") from e
    if max_members is not None and len(members) > max_members:
        raise ModelTooLargeError(f"{name} holds {len(members):,} files, over the limit of {max_members:,}")
    unpacked = sum(m.file_size for m in members)
    if unpacked > max_bytes:
        raise ModelTooLargeError(f"{name} unpacks to {_mb(unpacked)} ({_mb(len(raw))} packed), over the limit "
                                 f"of {_mb(max_bytes)}")
    return members


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def _looks_like_safetensors(raw: bytes) -> bool:
    """safetensors = 8-byte little-endian header length, then a JSON header."""
    return len(raw) > 9 and raw[8:9] == b"{" and int.from_bytes(raw[:8], "little") <= len(raw) - 8


def _parse_safetensors(raw: bytes) -> dict[str, torch.Tensor]:
    from safetensors.torch import load
    return load(raw)


def _looks_like_onnx(raw: bytes) -> bool:
    """An ONNX file is a protobuf ModelProto, whose first field (ir_version, field 1, varint) starts with 0x08.

    Checked after the zip and safetensors signatures; anything else that starts so fails in the ONNX parser.
    """
    return raw[:1] == b"\x08" and not _looks_like_safetensors(raw) and not raw.startswith(b"PK")


_WRAPPERS = ("state_dict", "model_state_dict", "model")
_PREFIXES = ("module.", "_orig_mod.")  # DataParallel / DistributedDataParallel, torch.compile


def _check_state(state: object, name: str) -> dict[str, torch.Tensor]:
    """The named tensors of a state dict, unwrapped from training checkpoints and parallel wrappers."""
    while isinstance(state, Mapping) and any(isinstance(state.get(w), Mapping) for w in _WRAPPERS):
        state = next(state[w] for w in _WRAPPERS if isinstance(state.get(w), Mapping))
    if not isinstance(state, Mapping) or not state:
        raise ModelLoadError(f"{name} holds a {type(state).__name__}, not a state dict of named tensors "
                             "(save with torch.save(model.state_dict(), path))")
    bad = [str(k) for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise ModelLoadError(f"{name}: entries that are not named tensors: {', '.join(bad[:5])}")
    nonfinite = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if nonfinite:
        raise ModelLoadError(f"{name}: NaN or infinite values in {', '.join(nonfinite[:5])}")
    for prefix in _PREFIXES:
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return dict(state)


# ------------------------------------------------------------------------------- state dicts of Linear chains

@dataclass(frozen=True)
class _Linear:
    name: str  # the key prefix, e.g. "fc1"
    weight: torch.Tensor  # (out, in)
    bias: torch.Tensor | None

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.weight.shape[1]), int(self.weight.shape[0])  # (in, out)

    def __str__(self) -> str:
        return f"{self.name} ({self.shape[0]}→{self.shape[1]})"


_FLAT_KEY = re.compile(r"^(?P<role>W|w|weight|b|bias)_?(?P<group>\d+)$")  # W0, b0, weight_1, ...
_ROLES = {"weight": "weight", "W": "weight", "w": "weight", "bias": "bias", "b": "bias",
          "weight_orig": "weight_orig", "weight_mask": "weight_mask"}  # the last two: torch.nn.utils.prune


def _mlp_state(state: Mapping[str, torch.Tensor], arch: Mapping, key_order: bool = True
               ) -> tuple[dict[str, torch.Tensor], list[int]]:
    """``state`` re-keyed as ``mlp`` names it (0.weight, 0.bias, 2.weight, ...) and its widths [in, hidden, out]."""
    chain = _linear_chain(state, key_order)
    widths = [chain[0].shape[0], *(layer.shape[1] for layer in chain)]
    if {"in_features", "hidden", "out_features"} & set(arch):
        try:
            want = architecture_size({**arch, "type": "mlp"})[0]
        except ValueError as e:
            raise ModelLoadError(str(e)) from e
        if want != widths:
            raise ModelLoadError(f"the weights have layer widths {'-'.join(map(str, widths))} but the architecture "
                                 f"says {'-'.join(map(str, want))}")
    out: dict[str, torch.Tensor] = {}
    for i, layer in enumerate(chain):
        out[f"{2 * i}.weight"] = layer.weight
        out[f"{2 * i}.bias"] = layer.bias if layer.bias is not None else torch.zeros(layer.shape[1])
    return out, widths


def _linear_chain(state: Mapping[str, torch.Tensor], key_order: bool = True) -> list[_Linear]:
    """The state's Linear layers in forward order: key order (as stored, when ``key_order``; safetensors files sort
    their keys, so their stored order means nothing), else natural order of the names ('layers.10' after
    'layers.2') when either chains, else the one order the shapes allow."""
    layers = _linear_layers(state)
    if not layers:
        raise ModelLoadError("the state dict holds no Linear layer weights")
    natural = sorted(layers, key=lambda layer: _natural_key(layer.name))
    layers = layers if key_order else natural
    for order in (layers, natural):
        if _chains(order):
            return order
    sequences = _shape_orders([layer.shape for layer in layers])
    listing = ", ".join(map(str, layers))
    if not sequences:
        a, b = next((a, b) for a, b in zip(layers, layers[1:]) if a.shape[1] != b.shape[0])
        raise ModelLoadError(
            f"the Linear layers {listing} do not form a chain in any order (in key order, {b.name} expects "
            f"{b.shape[0]} inputs but {a.name} has {a.shape[1]} outputs; branches, skip connections and missing "
            "layers cannot be read from a state dict): pass the whole model as an ONNX file")
    if len(sequences) > 1:
        raise ModelLoadError(
            f"the Linear layers {listing} are not in forward order by key, and their shapes chain in more than one "
            f"order (e.g. {_arrows(sequences[0])} and {_arrows(sequences[1])}): save them in forward order "
            "(model.state_dict() does) or as an ONNX file")
    by_shape: dict[tuple[int, int], list[_Linear]] = {}
    for layer in layers:
        by_shape.setdefault(layer.shape, []).append(layer)
    return [by_shape[shape].pop(0) for shape in sequences[0]]  # same-shape layers keep their key order


def _linear_layers(state: Mapping[str, torch.Tensor]) -> list[_Linear]:
    """Group keys into Linear layers (weight, optional bias), in the order their keys first appear."""
    groups: dict[str, dict[str, torch.Tensor]] = {}
    others = []
    for key, value in state.items():
        prefix, _, last = key.rpartition(".")
        match = _FLAT_KEY.match(key) if not prefix else None
        group, role = (match["group"], _ROLES[match["role"]]) if match else (prefix, _ROLES.get(last))
        if role is None:
            others.append(key)
            continue
        groups.setdefault(group, {})[role] = value
    if others:
        raise ModelLoadError(
            f"the state dict holds entries that are not Linear weights or biases ({', '.join(others[:6])}"
            f"{', …' if len(others) > 6 else ''}): BatchNorm, convolutions and other layers cannot be placed from "
            'names alone; pass architecture={"type": "paper_cnn"} for the paper\'s CNN, or an ONNX file')
    layers = []
    for group, params in groups.items():
        if "weight_orig" in params:  # pruned with torch.nn.utils.prune: the weight is orig * mask
            params["weight"] = params.pop("weight_orig") * params.pop("weight_mask", 1.0)
        weight, bias = params.get("weight"), params.get("bias")
        label = group or "(top level)"
        if weight is None or set(params) - {"weight", "bias"}:
            raise ModelLoadError(f"layer {label} has {', '.join(sorted(params))} but not a Linear layer's weight "
                                 "and optional bias")
        if weight.ndim != 2 or (bias is not None and bias.shape != (weight.shape[0],)):
            raise ModelLoadError(
                f"layer {label}: weight {tuple(weight.shape)}" + (f" and bias {tuple(bias.shape)}" if bias is not None
                                                                  else "") +
                " are not a Linear layer's (out, in) and (out,); convolutions need an architecture or an ONNX file")
        layers.append(_Linear(label, weight, bias))
    return layers


def _natural_key(name: str) -> list:
    """'layers.10' after 'layers.2'."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name)]


def _chains(layers: Sequence[_Linear]) -> bool:
    return all(a.shape[1] == b.shape[0] for a, b in zip(layers, layers[1:]))


def _arrows(shapes: Sequence[tuple[int, int]]) -> str:
    return "-".join(map(str, [shapes[0][0], *(s[1] for s in shapes)]))


_MAX_SHAPE_SEARCH = 256


def _shape_orders(shapes: Sequence[tuple[int, int]], want: int = 2, budget: int = 100_000) -> list[list]:
    """Up to ``want`` distinct orders of ``shapes`` (in, out) that chain: trails through a multigraph of widths.

    Same-shape layers are interchangeable, so orders are counted as sequences of shapes. A search over more than
    ``budget`` steps is refused (it only happens for many layers of few widths).
    """
    if len(shapes) > _MAX_SHAPE_SEARCH:  # the search recurses once per layer
        raise ModelLoadError(f"{len(shapes)} Linear layers are not in forward order by key, too many to order by "
                             "their shapes: save them in forward order or as an ONNX file")
    counts: dict[tuple[int, int], int] = {}
    for s in shapes:
        counts[s] = counts.get(s, 0) + 1
    found: list[list] = []
    steps = 0

    def extend(path: list) -> None:
        nonlocal steps
        steps += 1
        if steps > budget:
            raise ModelLoadError(f"{len(shapes)} Linear layers of few distinct shapes are not in forward order by key, "
                                 "and there are too many ways to chain them to find the one: save them in forward "
                                 "order (model.state_dict() does) or as an ONNX file")
        if len(found) >= want:
            return
        if len(path) == len(shapes):
            found.append(list(path))
            return
        for s in counts:
            if counts[s] and (not path or s[0] == path[-1][1]):
                counts[s] -= 1
                path.append(s)
                extend(path)
                path.pop()
                counts[s] += 1

    extend([])
    return found

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


def load_model(path_or_bytes: str | os.PathLike | bytes, architecture: Mapping | None = None, *,
               limits: ModelLimits | None = None, max_bytes: int | None = None) -> nn.Sequential:
    """Build a model from a saved state dict (.pt via torch.save, or .safetensors); never unpickles code.

    ``architecture`` is as for ``build_model``; for an MLP the layer widths may be left out and are
    then read from the weights (keys ``0.weight``, ``2.weight``, ...), as is everything when it is None.
    ``max_bytes`` bounds the file and what it unpacks to, checked before any tensor is read; ``limits``
    bound the model, checked before it is built.
    """
    state = _read_state(path_or_bytes, max_bytes)
    arch = dict(architecture or {})
    if arch.get("type", "mlp") == "mlp" and not {"in_features", "hidden", "out_features"} & set(arch):
        widths = _mlp_widths(state)
        arch.update(in_features=widths[0], hidden=tuple(widths[1:-1]), out_features=widths[-1])
    try:
        model = build_model(arch, limits)
    except ModelLoadError:
        raise
    except ValueError as e:
        raise ModelLoadError(str(e)) from e
    return model_from_state(state, model)


def model_from_state(state: Mapping[str, torch.Tensor], like_model: nn.Module) -> nn.Module:
    """A copy of ``like_model`` holding ``state``, in eval mode (e.g. to trace a training snapshot)."""
    model = copy.deepcopy(like_model)
    try:
        model.load_state_dict(dict(state), strict=True)
    except RuntimeError as e:
        raise ModelLoadError(f"weights do not fit the architecture: {e}") from e
    return model.eval()


def _read_state(source: str | os.PathLike | bytes, max_bytes: int | None = None) -> dict[str, torch.Tensor]:
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
    if max_bytes is not None:
        check_saved_size(raw, max_bytes, name)
    try:
        state = _parse_safetensors(raw) if _looks_like_safetensors(raw) else \
            torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as e:  # torch/safetensors raise many unrelated types for corrupt input
        raise ModelLoadError(f"{name} is not a readable PyTorch state dict or safetensors file "
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
        raise ModelLoadError(f"{name} is not a readable PyTorch state dict or safetensors file (expected the zip "
                             "format that torch.save writes since PyTorch 1.6, or safetensors)")
    try:
        members = zipfile.ZipFile(io.BytesIO(raw)).infolist()
    except (zipfile.BadZipFile, ValueError) as e:
        raise ModelLoadError(f"{name} is not a readable PyTorch state dict ({e})") from e
    unpacked = sum(m.file_size for m in members)
    if unpacked > max_bytes:
        raise ModelTooLargeError(f"{name} unpacks to {_mb(unpacked)} ({_mb(len(raw))} packed), over the limit "
                                 f"of {_mb(max_bytes)}")


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def _looks_like_safetensors(raw: bytes) -> bool:
    """safetensors = 8-byte little-endian header length, then a JSON header."""
    return len(raw) > 9 and raw[8:9] == b"{" and int.from_bytes(raw[:8], "little") <= len(raw) - 8


def _parse_safetensors(raw: bytes) -> dict[str, torch.Tensor]:
    from safetensors.torch import load
    return load(raw)


def _check_state(state: object, name: str) -> dict[str, torch.Tensor]:
    if isinstance(state, Mapping):
        for wrapper in ("state_dict", "model_state_dict"):
            if isinstance(state.get(wrapper), Mapping):
                state = state[wrapper]
    if not isinstance(state, Mapping) or not state:
        raise ModelLoadError(f"{name} holds a {type(state).__name__}, not a state dict of named tensors "
                             "(save with torch.save(model.state_dict(), path))")
    bad = [str(k) for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise ModelLoadError(f"{name}: entries that are not named tensors: {', '.join(bad[:5])}")
    nonfinite = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if nonfinite:
        raise ModelLoadError(f"{name}: NaN or infinite values in {', '.join(nonfinite[:5])}")
    if all(k.startswith("module.") for k in state):  # saved from DataParallel
        state = {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def _mlp_widths(state: Mapping[str, torch.Tensor]) -> list[int]:
    """[in, hidden..., out] from keys 0.weight, 0.bias, 2.weight, ... as written by ``mlp``."""
    n_linear = len(state) // 2
    expected = [f"{2 * i}.{p}" for i in range(n_linear) for p in ("weight", "bias")]
    if sorted(state) != sorted(expected):
        raise ModelLoadError(
            "cannot infer an MLP: expected exactly the keys 0.weight, 0.bias, 2.weight, 2.bias, ... "
            f"(Linear layers of nn.Sequential with an activation between them), got {', '.join(sorted(state)[:8])}; "
            "pass an architecture for other models")
    weights = [state[f"{2 * i}.weight"] for i in range(n_linear)]
    for i, w in enumerate(weights):
        b = state[f"{2 * i}.bias"]
        if w.ndim != 2 or b.shape != (w.shape[0],):
            raise ModelLoadError(f"layer {2 * i}: weight {tuple(w.shape)} and bias {tuple(b.shape)} "
                                 "are not a Linear layer's (out, in) and (out,)")
        if i and w.shape[1] != weights[i - 1].shape[0]:
            raise ModelLoadError(f"layer {2 * i} expects {w.shape[1]} inputs but layer {2 * i - 2} "
                                 f"has {weights[i - 1].shape[0]} outputs")
    return [weights[0].shape[1], *(w.shape[0] for w in weights)]

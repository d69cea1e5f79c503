"""ONNX files in and out, for the chains of layers that splineviz traces.

Reading lets models from other frameworks (Keras, JAX, scikit-learn via their ONNX exporters) in: an ONNX graph that
applies supported operators one after another becomes an ``nn.Sequential``; a final softmax or sigmoid is dropped,
so the model returns the logits (the same predicted classes). Writing uses ``onnx.helper`` directly
rather than ``torch.onnx``, whose exporter now needs onnxscript and dynamo: the Sequentials splineviz builds map one
layer to one ONNX operator. Weights stay as they are (no fusing), so a model round-trips exactly.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from splineviz.nets import (ModelLimits, ModelLoadError, ModelTooLargeError, UnsupportedLayerError, _pair,
                            flat_layers, input_shape_for, to_ops)

OPSET = 17
SUPPORTED_OPS = ("Gemm", "MatMul", "Add", "Relu", "LeakyRelu", "Conv", "BatchNormalization", "MaxPool",
                 "AveragePool", "Flatten", "Reshape (as a flatten)", "Identity", "Dropout", "Constant",
                 "Softmax, LogSoftmax or Sigmoid as the last operator (dropped)")
# Monotone maps of the logits that a classifier's exporter appends: dropping them keeps every predicted class (for
# one output, sigmoid > 1/2 exactly where the logit > 0), and the partition is the logits'.
_FINAL_SQUASHES = ("Softmax", "LogSoftmax", "Sigmoid")


# ----------------------------------------------------------------------------------------------- reading

class _Reader:
    """Walks a graph's nodes as a chain, turning each into torch layers; remembers the running tensor's rank."""

    def __init__(self, graph: onnx.GraphProto, name: str):
        self.name = name
        self.constants: dict[str, onnx.TensorProto] = {t.name: t for t in graph.initializer}
        self.layers: list[nn.Module] = []
        self.rank = 0

    def refuse(self, node: onnx.NodeProto, why: str) -> ModelLoadError:
        label = f"{node.op_type} node {node.name!r}" if node.name else f"a {node.op_type} node"
        return ModelLoadError(f"{self.name}: {label} {why}")

    def constant(self, node: onnx.NodeProto, index: int, required: bool = True) -> np.ndarray | None:
        names = [n for n in node.input]
        if index >= len(names) or not names[index]:
            if required:
                raise self.refuse(node, f"lacks input {index + 1}")
            return None
        if names[index] not in self.constants:
            raise self.refuse(node, f"takes a computed tensor as input {index + 1} ({names[index]!r}); only "
                                    "weights stored in the file (initializers or Constant nodes) are supported there")
        return numpy_helper.to_array(self.constants[names[index]]).astype(np.float64)

    def last(self, kinds: tuple[type, ...]) -> nn.Module | None:
        return self.layers[-1] if self.layers and isinstance(self.layers[-1], kinds) else None


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _float(attribute: float) -> float:
    """ONNX keeps float attributes in 32 bits: 0.2 comes back as 0.2000000030; the shortest decimal that is the
    same float32 is the number that was written."""
    return float(str(np.float32(attribute)))


def _tensor(values: np.ndarray) -> torch.Tensor:
    return torch.tensor(np.array(values, dtype=np.float32))


def _gemm(r: _Reader, node: onnx.NodeProto, a: dict) -> None:
    if a.get("transA", 0):
        raise r.refuse(node, "has transA=1, which a layer applied to a batch of rows never has")
    w = r.constant(node, 1)
    w = (w if a.get("transB", 0) else w.T) * a.get("alpha", 1.0)  # torch's (out, in)
    c = r.constant(node, 2, required=False)
    bias = np.zeros(w.shape[0]) if c is None else np.broadcast_to(c * a.get("beta", 1.0), (w.shape[0],))
    r.layers.append(_linear(w, bias))
    r.rank = 2


def _matmul(r: _Reader, node: onnx.NodeProto, a: dict) -> None:
    w = r.constant(node, 1)
    if w.ndim != 2 or r.rank not in (0, 2):  # 0: the file does not say
        raise r.refuse(node, f"multiplies a rank-{r.rank} tensor by a {w.ndim}-D one; only rows times a matrix "
                             "(a dense layer) is supported")
    r.layers.append(_linear(w.T, np.zeros(w.shape[1])))


def _linear(weight: np.ndarray, bias: np.ndarray) -> nn.Linear:
    layer = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        layer.weight.copy_(_tensor(weight))
        layer.bias.copy_(_tensor(bias))
    return layer


def _add(r: _Reader, node: onnx.NodeProto, a: dict) -> None:
    """A constant added to a dense or convolution layer's output: that layer's bias (one number per unit)."""
    c = r.constant(node, 0 if node.input[0] in r.constants else 1)
    previous = r.last((nn.Linear, nn.Conv2d))
    if previous is None:
        raise r.refuse(node, "adds a constant to something other than a dense or convolution layer's output")
    out = previous.weight.shape[0]
    unit_shape = (out,) if isinstance(previous, nn.Linear) else (out, 1, 1)
    per_unit = c[0] if c.ndim == len(unit_shape) + 1 and c.shape[0] == 1 else c  # drop a batch axis of 1
    if c.size != 1 and per_unit.shape != unit_shape:
        raise r.refuse(node, f"adds a constant shaped {c.shape} to {out} units; one number per unit is supported")
    with torch.no_grad():
        previous.bias.add_(_tensor(np.broadcast_to(c.reshape(-1), (out,)) if c.size == 1 else per_unit.reshape(out)))


def _conv(r: _Reader, node: onnx.NodeProto, a: dict) -> None:
    w = r.constant(node, 1)
    if w.ndim != 4:
        raise r.refuse(node, f"is a {w.ndim - 2}-D convolution; only 2-D convolutions are supported")
    padding = _padding(r, node, a)
    group = int(a.get("group", 1))
    layer = nn.Conv2d(w.shape[1] * group, w.shape[0], tuple(w.shape[2:]), stride=tuple(a.get("strides", (1, 1))),
                      padding=padding, dilation=tuple(a.get("dilations", (1, 1))), groups=group)
    b = r.constant(node, 2, required=False)
    with torch.no_grad():
        layer.weight.copy_(_tensor(w))
        layer.bias.copy_(_tensor(np.zeros(w.shape[0]) if b is None else b))
    r.layers.append(layer)
    r.rank = 4


def _padding(r: _Reader, node: onnx.NodeProto, a: dict) -> tuple[int, int]:
    """torch pads both sides alike: ONNX pads (top, left, bottom, right) must be symmetric."""
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto not in ("NOTSET", "VALID"):
        raise r.refuse(node, f"uses auto_pad={auto}; export with explicit pads")
    pads = tuple(int(p) for p in a.get("pads", (0, 0, 0, 0))) if auto == "NOTSET" else (0, 0, 0, 0)
    if len(pads) != 4 or pads[:2] != pads[2:]:
        raise r.refuse(node, f"pads {pads} unevenly; only the same padding on both sides is supported")
    return pads[0], pads[1]


def _batchnorm(r: _Reader, node: onnx.NodeProto, a: dict) -> None:
    if a.get("training_mode", 0):
        raise r.refuse(node, "normalises with batch statistics (training_mode=1), not a fixed affine map")
    scale, shift, mean, var = (r.constant(node, i) for i in range(1, 5))
    kinds = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d}
    if r.rank not in kinds:
        raise r.refuse(node, f"normalises a rank-{r.rank} tensor; ranks 2 to 4 are supported")
    layer = kinds[r.rank](len(scale), eps=_float(a.get("epsilon", 1e-5)))
    with torch.no_grad():
        for target, value in ((layer.weight, scale), (layer.bias, shift), (layer.running_mean, mean),
                              (layer.running_var, var)):
            target.copy_(_tensor(value))
    r.layers.append(layer)


def _pool(r: _Reader, node: onnx.NodeProto, a: dict) -> None:
    kernel = tuple(a.get("kernel_shape", ()))
    if len(kernel) != 2:
        raise r.refuse(node, f"pools over {len(kernel)} dimensions; only 2-D pooling is supported")
    if a.get("ceil_mode", 0):
        raise r.refuse(node, "has ceil_mode=1, which is not supported")
    stride = tuple(a.get("strides", (1, 1)))  # ONNX's default stride is 1, torch's the kernel size
    if node.op_type == "MaxPool":
        if len(node.output) > 1 and node.output[1]:
            raise r.refuse(node, "also returns indices, which a chain of layers cannot use")
        r.layers.append(nn.MaxPool2d(kernel, stride, _padding(r, node, a), tuple(a.get("dilations", (1, 1)))))
    else:
        r.layers.append(nn.AvgPool2d(kernel, stride, _padding(r, node, a),
                                     count_include_pad=bool(a.get("count_include_pad", 0))))


def _flatten(r: _Reader, node: onnx.NodeProto, a: dict) -> None:
    if int(a.get("axis", 1)) != 1:
        raise r.refuse(node, f"flattens from axis {a['axis']}; only axis 1 (keep the batch) is supported")
    _flat(r)


def _flat(r: _Reader) -> None:
    if r.rank != 2:  # flattening rows is nothing
        r.layers.append(nn.Flatten())
        r.rank = 2


def _reshape(r: _Reader, node: onnx.NodeProto, a: dict) -> None:
    """Reshape to (batch, -1) or (batch, features): how exporters often write a flatten."""
    shape = [int(s) for s in (a["shape"] if "shape" in a else r.constant(node, 1))]
    if len(shape) != 2 or shape[0] not in (0, -1) or (shape[0] == -1 and shape[1] == -1):
        raise r.refuse(node, f"reshapes to {shape}; only a flatten to (batch, features) is supported")
    _flat(r)


def _skip(r: _Reader, node: onnx.NodeProto, a: dict) -> None:
    if node.op_type == "Dropout" and len(node.output) > 1 and node.output[1]:
        raise r.refuse(node, "also returns its mask, which a chain of layers cannot use")


def _activation(layer: Callable[[dict], nn.Module]) -> Callable[[_Reader, onnx.NodeProto, dict], None]:
    return lambda r, node, a: r.layers.append(layer(a))


_READERS: dict[str, Callable[[_Reader, onnx.NodeProto, dict], None]] = {
    "Gemm": _gemm, "MatMul": _matmul, "Add": _add, "Conv": _conv, "BatchNormalization": _batchnorm,
    "MaxPool": _pool, "AveragePool": _pool, "Flatten": _flatten, "Reshape": _reshape, "Identity": _skip,
    "Dropout": _skip, "Relu": _activation(lambda a: nn.ReLU()),
    "LeakyRelu": _activation(lambda a: nn.LeakyReLU(_float(a.get("alpha", 0.01)))),
}


def read_onnx(raw: bytes, name: str = "the file", limits: ModelLimits | None = None
              ) -> tuple[nn.Sequential, tuple[int, ...] | None]:
    """An ONNX model whose nodes form a chain of supported operators, as an ``nn.Sequential`` in eval mode, and
    one sample's input shape when the file fixes it. ``limits`` are checked on the stored weights before any
    layer is built; weights stored outside the file are refused (reading them would open other paths)."""
    try:
        proto = onnx.load_from_string(raw)
    except Exception as e:  # protobuf raises DecodeError and others for foreign bytes
        raise ModelLoadError(f"{name} is not a readable ONNX file ({type(e).__name__})") from e
    graph = proto.graph
    if not graph.node:
        raise ModelLoadError(f"{name} is not a readable PyTorch state dict, safetensors or ONNX file (no ONNX graph "
                             "in it)")
    reader = _Reader(graph, name)
    for node in graph.node:
        if node.op_type == "Constant":
            a = _attrs(node)
            if "value" not in a:
                raise reader.refuse(node, "holds something other than a tensor")
            reader.constants[node.output[0]] = a["value"]
    _check_stored(reader.constants.values(), graph, name, limits)
    inputs = [i for i in graph.input if i.name not in reader.constants]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ModelLoadError(f"{name}: the graph has {len(inputs)} inputs and {len(graph.output)} outputs; a chain of "
                             "layers has one of each")
    dims = inputs[0].type.tensor_type.shape.dim
    reader.rank = len(dims)
    sample = tuple(d.dim_value for d in dims[1:])
    current = inputs[0].name
    computed = [node for node in graph.node if node.op_type not in ("Constant", "Identity")]
    for node in graph.node:
        if node.op_type == "Constant":
            continue
        final = node is computed[-1] and node.op_type in _FINAL_SQUASHES
        if node.domain not in ("", "ai.onnx") or (node.op_type not in _READERS and not final):
            raise reader.refuse(node, f"is not supported (supported operators: {', '.join(SUPPORTED_OPS)})")
        data = [i for i in node.input if i and i not in reader.constants]
        if data != [current]:
            raise reader.refuse(node, f"takes {data or 'no computed input'} where a chain would take only the "
                                      f"previous node's output {current!r}: branches, skip connections and several "
                                      "inputs are not supported")
        try:
            if not final:  # a last softmax or sigmoid keeps the winning class: the logits are drawn
                _READERS[node.op_type](reader, node, _attrs(node))
        except ModelLoadError:
            raise
        except Exception as e:  # numpy, onnx and torch raise many types for inconsistent weights or attributes
            raise reader.refuse(node, f"cannot be read ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
                                ) from e
        current = node.output[0]
    if current != graph.output[0].name:
        raise ModelLoadError(f"{name}: the graph's output {graph.output[0].name!r} is not the end of its chain of "
                             f"nodes ({current!r})")
    if not reader.layers:
        raise ModelLoadError(f"{name}: the graph has no layers")
    model = nn.Sequential(*reader.layers).eval()
    shape = sample if sample and all(d > 0 for d in sample) else None
    if shape is not None:
        try:
            with torch.no_grad():
                model(torch.zeros(1, *shape))
        except RuntimeError as e:
            raise ModelLoadError(f"{name}: the layers do not fit together for inputs shaped {shape} "
                                 f"({str(e).splitlines()[0]})") from e
    return model, shape


def _check_stored(tensors, graph: onnx.GraphProto, name: str, limits: ModelLimits | None) -> None:
    """Refuse external weights, and sizes over ``limits``, from the tensors' declared dims alone."""
    tensors = list(tensors)
    if any(t.data_location == TensorProto.EXTERNAL for t in tensors):
        raise ModelLoadError(f"{name} keeps its weights in separate files; save the ONNX model as one file")
    if limits is None:
        return
    params = sum(math.prod(t.dims) for t in tensors)
    if params > limits.max_params:
        raise ModelTooLargeError(f"{name}: {params:,} stored numbers are over the limit of "
                                 f"{limits.max_params:,} parameters")
    widest = max((max(t.dims[:2]) for t in tensors if len(t.dims) >= 2), default=0)
    if widest > limits.max_width:
        raise ModelTooLargeError(f"{name}: a layer of {widest:,} units is over the limit of {limits.max_width:,} "
                                 "units per layer")
    depth = sum(node.op_type in ("Relu", "LeakyRelu") for node in graph.node)
    if depth > limits.max_hidden_layers:
        raise ModelTooLargeError(f"{name}: {depth} hidden layers are over the limit of {limits.max_hidden_layers}")


# ----------------------------------------------------------------------------------------------- writing

_ONNX_TYPES = {torch.float32: TensorProto.FLOAT, torch.float64: TensorProto.DOUBLE}


class _Writer:
    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.current = "input"

    def weight(self, name: str, value: torch.Tensor) -> str:
        self.initializers.append(numpy_helper.from_array(value.detach().cpu().to(self.dtype).numpy(), name))
        return name

    def node(self, op: str, inputs: Sequence[str], **attributes) -> None:
        output = f"{op.lower()}_{len(self.nodes)}"
        self.nodes.append(helper.make_node(op, [self.current, *inputs], [output], name=f"{op}_{len(self.nodes)}",
                                           **attributes))
        self.current = output


def _torch_pads(layer: nn.Module) -> list[int]:
    """ONNX pads (top, left, bottom, right) of a torch conv/pool layer."""
    if hasattr(layer, "_reversed_padding_repeated_twice"):  # Conv2d: (left, right, top, bottom), "same" resolved
        left, right, top, bottom = layer._reversed_padding_repeated_twice
        return [top, left, bottom, right]
    h, w = (layer.padding, layer.padding) if isinstance(layer.padding, int) else layer.padding
    return [h, w, h, w]


def _pairs(value: int | tuple[int, ...]) -> list[int]:
    return list(_pair(value))


def _write_layer(w: _Writer, layer: nn.Module, prefix: str) -> None:
    if isinstance(layer, (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout)):
        return
    if isinstance(layer, nn.ReLU):
        w.node("Relu", [])
    elif isinstance(layer, nn.LeakyReLU):
        w.node("LeakyRelu", [], alpha=float(layer.negative_slope))
    elif isinstance(layer, nn.Linear):
        bias = layer.bias if layer.bias is not None else torch.zeros(layer.out_features)
        w.node("Gemm", [w.weight(f"{prefix}.weight", layer.weight), w.weight(f"{prefix}.bias", bias)], transB=1)
    elif isinstance(layer, nn.Flatten):
        if (layer.start_dim, layer.end_dim) != (1, -1):
            raise UnsupportedLayerError(f"{layer!r}: only Flatten(1, -1) can be written to ONNX")
        w.node("Flatten", [], axis=1)
    elif isinstance(layer, nn.Conv2d):
        if layer.padding_mode != "zeros":
            raise UnsupportedLayerError(f"{layer!r}: padding_mode={layer.padding_mode!r} cannot be written to ONNX")
        bias = layer.bias if layer.bias is not None else torch.zeros(layer.out_channels)
        w.node("Conv", [w.weight(f"{prefix}.weight", layer.weight), w.weight(f"{prefix}.bias", bias)],
               kernel_shape=_pairs(layer.kernel_size), strides=_pairs(layer.stride), pads=_torch_pads(layer),
               dilations=_pairs(layer.dilation), group=layer.groups)
    elif isinstance(layer, nn.modules.batchnorm._BatchNorm):
        n = layer.num_features
        scale = layer.weight if layer.affine else torch.ones(n)
        shift = layer.bias if layer.affine else torch.zeros(n)
        w.node("BatchNormalization", [w.weight(f"{prefix}.weight", scale), w.weight(f"{prefix}.bias", shift),
                                      w.weight(f"{prefix}.running_mean", layer.running_mean),
                                      w.weight(f"{prefix}.running_var", layer.running_var)],
               epsilon=float(layer.eps))
    elif isinstance(layer, nn.MaxPool2d):
        w.node("MaxPool", [], kernel_shape=_pairs(layer.kernel_size), strides=_pairs(layer.stride),
               pads=_torch_pads(layer), dilations=_pairs(layer.dilation))
    elif isinstance(layer, nn.AvgPool2d):
        if layer.divisor_override is not None or layer.ceil_mode:
            raise UnsupportedLayerError(f"{layer!r}: divisor_override and ceil_mode cannot be written to ONNX")
        w.node("AveragePool", [], kernel_shape=_pairs(layer.kernel_size), strides=_pairs(layer.stride),
               pads=_torch_pads(layer), count_include_pad=int(layer.count_include_pad))
    else:
        raise UnsupportedLayerError(f"cannot write {type(layer).__name__} to ONNX")


def write_onnx(model: nn.Module, input_shape: int | Sequence[int] | None = None) -> bytes:
    """``model`` (what ``to_ops`` takes) as an ONNX file: one operator per layer, batch dimension named ``N``.

    Checked with ``onnx.checker`` before it is returned; ``read_onnx`` reads it back to the same function.
    """
    shape = input_shape_for(model, input_shape)
    to_ops(model, shape)  # refuses what the tracer could not draw, with its messages
    dtype = next((p.dtype for p in model.parameters()), torch.float32)
    if dtype not in _ONNX_TYPES:
        raise UnsupportedLayerError(f"weights of type {dtype} cannot be written; convert the model to float32")
    writer = _Writer(dtype)
    for i, layer in enumerate(flat_layers(model)):
        _write_layer(writer, layer, f"layer{i}")
    with torch.no_grad():
        out_shape = tuple(model.eval()(torch.zeros(1, *shape, dtype=dtype)).shape[1:])
    graph = helper.make_graph(
        writer.nodes or [helper.make_node("Identity", ["input"], ["identity_0"])], "splineviz",
        [helper.make_tensor_value_info("input", _ONNX_TYPES[dtype], ["N", *shape])],
        [helper.make_tensor_value_info(writer.current if writer.nodes else "identity_0", _ONNX_TYPES[dtype],
                                       ["N", *out_shape])],
        writer.initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="splineviz",
                              ir_version=8)
    onnx.checker.check_model(proto, full_check=True)
    return proto.SerializeToString()

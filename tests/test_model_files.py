"""Model files: state dicts of any Linear chain, ONNX in and out, saving. Oracles: torch's own forward of the
model that was saved, and onnx's reference evaluator (independent of splineviz) on the same ONNX bytes."""
from __future__ import annotations

import io
from collections import OrderedDict

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from safetensors.torch import save as save_safetensors
from torch import nn
from torch.nn.utils import prune as torch_prune

from splineviz.nets import (ModelLimits, ModelLoadError, ModelTooLargeError, UnsupportedLayerError, architecture_of,
                            describe_model, load_model, mlp, paper_cnn, read_model, save_model, to_ops)
from splineviz.partition.ops import forward

torch.set_num_threads(1)


def saved(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def outputs(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(x).numpy()


def assert_same_function(want: nn.Module, got: nn.Module, shape=(2,), atol=0.0) -> None:
    x = torch.randn(32, *shape, generator=torch.Generator().manual_seed(1)) * 3
    np.testing.assert_allclose(outputs(got, x), outputs(want, x), rtol=0, atol=atol)


class Tutorial(nn.Module):
    """The usual tutorial model: layers as attributes, activations called in forward."""

    def __init__(self, leaky: bool = False):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(2, 12), nn.Linear(12, 7), nn.Linear(7, 3)
        self.act = nn.LeakyReLU(0.2) if leaky else nn.ReLU()

    def forward(self, x):
        return self.fc3(self.act(self.fc2(self.act(self.fc1(x)))))


# ----------------------------------------------------------------------------------------------- state dicts

@pytest.mark.parametrize("wrap", [
    lambda s: s,
    lambda s: {"state_dict": s},
    lambda s: {"model_state_dict": s, "optimizer_state_dict": {"state": {}, "param_groups": []}, "epoch": 7},
    lambda s: {"model": s, "epoch": 3},
    lambda s: OrderedDict((f"module.{k}", v) for k, v in s.items()),  # DataParallel
    lambda s: {"state_dict": {f"module.{k}": v for k, v in s.items()}},
])
def test_a_tutorial_model_loads_whatever_the_wrapper(wrap):
    torch.manual_seed(0)
    model = Tutorial()
    loaded = read_model(saved(wrap(model.state_dict())))
    assert_same_function(model, loaded.model)
    assert loaded.description == "2-12-7-3 ReLU" and loaded.format == "pt" and not loaded.activation_from_file
    assert loaded.architecture == {"type": "mlp", "in_features": 2, "hidden": [12, 7], "out_features": 3,
                                   "activation": "relu"}


def test_the_callers_activation_is_used_where_the_file_cannot_say():
    torch.manual_seed(1)
    model = Tutorial(leaky=True)
    raw = saved(model.state_dict())
    assert_same_function(model, load_model(raw, activation="leaky_relu", negative_slope=0.2))
    with pytest.raises(AssertionError):  # ReLU by default: a different function
        assert_same_function(model, load_model(raw))
    assert read_model(raw, activation="leaky_relu", negative_slope=0.2).description == "2-12-7-3 Leaky ReLU (slope 0.2)"
    with pytest.raises(ModelLoadError, match="activation is given twice"):
        load_model(raw, {"activation": "relu"}, activation="leaky_relu")


def test_sequential_with_named_layers_and_no_biases_and_flat_keys():
    torch.manual_seed(2)
    named = nn.Sequential(OrderedDict([("input", nn.Linear(2, 5)), ("relu1", nn.ReLU()),
                                       ("hidden_layer", nn.Linear(5, 4, bias=False)), ("relu2", nn.ReLU()),
                                       ("output", nn.Linear(4, 2))]))
    assert_same_function(named, load_model(saved(named.state_dict())))
    reference = mlp(2, (6, 6), 2, seed=3)  # keys W0, b0, ... as in the benchmark nets
    flat = {f"{role}{i}": reference[2 * i].state_dict()[name]
            for i in range(3) for role, name in (("W", "weight"), ("b", "bias"))}
    assert_same_function(reference, load_model(saved(flat)))
    assert_same_function(reference, load_model(save_safetensors(flat)))


def test_layers_are_ordered_by_their_shapes_when_key_order_is_not_a_chain():
    torch.manual_seed(3)
    chain = {"z_first": nn.Linear(3, 5), "m_mid": nn.Linear(5, 7), "a_last": nn.Linear(7, 2)}
    want = nn.Sequential(chain["z_first"], nn.ReLU(), chain["m_mid"], nn.ReLU(), chain["a_last"])
    shuffled = {f"{name}.{p}": chain[name].state_dict()[p] for name in ("a_last", "z_first", "m_mid")
                for p in ("weight", "bias")}  # neither stored nor alphabetical order chains
    loaded = read_model(saved(shuffled))
    assert loaded.description == "3-5-7-2 ReLU"
    assert_same_function(want, loaded.model, (3,))
    # safetensors sorts its keys, so its order says nothing: layers.10 must still follow layers.2
    deep = nn.Sequential(*[m for i in range(6) for m in (nn.Linear(4 if i else 2, 4), nn.ReLU())], nn.Linear(4, 2))
    keyed = {f"layers.{i}.{p}": v for i, layer in enumerate(m for m in deep if isinstance(m, nn.Linear))
             for p, v in layer.state_dict().items()}
    assert_same_function(deep, load_model(save_safetensors(keyed)))


def test_pruned_with_torch_prune_loads_the_masked_weights():
    torch.manual_seed(4)
    model = Tutorial()
    torch_prune.l1_unstructured(model.fc1, "weight", amount=0.5)
    state = model.state_dict()
    assert "fc1.weight_orig" in state and "fc1.weight_mask" in state
    loaded = load_model(saved(state))
    assert_same_function(model, loaded)
    assert int((loaded[0].weight == 0).sum()) == 12


@pytest.mark.parametrize("state,match", [
    ({f"{k}.{p}": v for k, shape in (("q", (2, 5)), ("r", (2, 5)), ("s", (5, 2)), ("t", (5, 2)))
      for p, v in (("weight", torch.zeros(shape[1], shape[0])), ("bias", torch.zeros(shape[1])))},
     r"q \(2→5\), r \(2→5\), s \(5→2\), t \(5→2\) are not in forward order by key, and their shapes chain in more "
     r"than one order \(e.g. 2-5-2-5-2 and 5-2-5-2-5\)"),
    ({f"{k}.weight": torch.zeros(o, i) for k, (i, o) in (("a", (2, 4)), ("b", (2, 3)), ("c", (4, 5)), ("d", (3, 5)))},
     r"a \(2→4\), b \(2→3\), c \(4→5\), d \(3→5\) do not form a chain in any order \(in key order, b expects 2 "
     r"inputs but a has 4 outputs"),
    ({"fc.weight": torch.zeros(3, 2), "bn.running_mean": torch.zeros(3), "bn.num_batches_tracked": torch.tensor(1)},
     r"not Linear weights or biases \(bn.running_mean, bn.num_batches_tracked\)"),
    ({"fc.weight": torch.zeros(3, 2), "fc.bias": torch.zeros(4)}, r"layer fc: weight \(3, 2\) and bias \(4,\)"),
    ({"fc.bias": torch.zeros(4)}, "layer fc has bias but not a Linear layer's weight"),
    ({"epoch": torch.tensor(3)}, r"not Linear weights or biases \(epoch\)"),
])
def test_state_dicts_that_are_not_one_chain_are_refused_naming_the_keys(state, match):
    with pytest.raises(ModelLoadError, match=match):
        load_model(saved(state))


def test_limits_and_the_architecture_are_checked_on_inferred_chains():
    raw = saved(Tutorial().state_dict())
    with pytest.raises(ModelTooLargeError, match="12 units is over the limit of 8"):
        load_model(raw, limits=ModelLimits(max_width=8))
    with pytest.raises(ModelLoadError, match="layer widths 2-12-7-3 but the architecture says 2-12-2"):
        load_model(raw, {"hidden": [12]})
    assert read_model(raw, {"hidden": [12, 7], "out_features": 3}).description == "2-12-7-3 ReLU"


def test_describe_and_architecture_of_other_models():
    assert describe_model(mlp(2, (), 3)) == "2-3 linear"
    cnn = paper_cnn(n_classes=4)
    assert architecture_of(cnn) == {"type": "paper_cnn", "n_classes": 4}
    mixed = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 3), nn.LeakyReLU(), nn.Linear(3, 2))
    assert architecture_of(mixed) is None
    assert describe_model(mixed) == "Linear 2→3 → ReLU → Linear 3→3 → Leaky ReLU (0.01) → Linear 3→2"


# ----------------------------------------------------------------------------------------------- ONNX out and in

def image_net() -> nn.Sequential:
    """Every image layer the writer knows: padding, groups, BN 2d/1d, both pools, leaky ReLU."""
    torch.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AvgPool2d(2),
                          nn.Conv2d(4, 4, 3, padding=1, groups=2), nn.LeakyReLU(0.3), nn.MaxPool2d(2),
                          nn.Dropout(), nn.Flatten(), nn.Linear(16, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))
    for bn in (model[1], model[10]):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.data.uniform_(-2, 2)
    return model.eval()


@pytest.mark.parametrize("name,model,shape", [
    ("mlp", mlp(2, (16, 16), 2, seed=1), (2,)),
    ("leaky mlp", mlp(2, (8, 8), 3, activation="leaky_relu", negative_slope=0.2, seed=2), (2,)),
    ("paper_cnn", paper_cnn(seed=3), (1, 28, 28)),
    ("image layers", image_net(), (2, 8, 8)),
])
def test_onnx_round_trip_is_the_same_function(name, model, shape, tmp_path):
    raw = save_model(model, tmp_path / "m.onnx", input_shape=shape if len(shape) > 1 else None)
    assert (tmp_path / "m.onnx").read_bytes() == raw
    onnx.checker.check_model(onnx.load_from_string(raw), full_check=True)
    x = torch.randn(8, *shape, generator=torch.Generator().manual_seed(0))
    want = outputs(model, x)
    (reference,) = ReferenceEvaluator(raw).run(None, {"input": x.numpy()})  # onnx's evaluator, not ours
    np.testing.assert_allclose(reference, want, rtol=0, atol=1e-5)
    loaded = read_model(tmp_path / "m.onnx")
    np.testing.assert_allclose(outputs(loaded.model, x), want, rtol=0, atol=1e-6)
    assert loaded.format == "onnx" and loaded.activation_from_file and loaded.input_shape == shape
    assert loaded.architecture == architecture_of(model)  # None for the image layers: no build_model for them
    if name == "leaky mlp":
        assert loaded.description == "2-8-8-3 Leaky ReLU (slope 0.2)"


@pytest.mark.parametrize("fmt", ["pt", "safetensors"])
def test_state_dict_formats_round_trip(fmt, tmp_path):
    model = paper_cnn(seed=6)
    raw = save_model(model, tmp_path / f"m.{fmt}")
    assert raw == (tmp_path / f"m.{fmt}").read_bytes()
    loaded = read_model(raw, {"type": "paper_cnn"})
    assert loaded.format == fmt and loaded.input_shape == (1, 28, 28)
    assert_same_function(model, loaded.model, (1, 28, 28))
    leaky = mlp(2, (5,), 2, activation="leaky_relu", negative_slope=0.1, seed=7)
    assert_same_function(leaky, load_model(save_model(leaky, format=fmt), activation="leaky_relu",
                                           negative_slope=0.1))


def test_save_model_refuses_what_it_cannot_write():
    with pytest.raises(ValueError, match="unknown model format 'h5'"):
        save_model(mlp(), format="h5")
    with pytest.raises(UnsupportedLayerError):
        save_model(nn.Sequential(nn.Linear(2, 2), nn.Tanh()), format="onnx")
    with pytest.raises(ValueError, match="pass input_shape"):
        save_model(paper_cnn(), format="onnx")


def onnx_bytes(nodes, initializers, in_shape=("N", 2), out_shape=("N", 2), inputs=None) -> bytes:
    graph = helper.make_graph(
        nodes, "g", inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, list(out_shape))],
        [numpy_helper.from_array(np.asarray(v, dtype=np.int64 if k in ("flat", "s") else np.float32), k)
         for k, v in initializers.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


def test_onnx_as_other_exporters_write_it():
    """MatMul + Add with (in, out) weights (Keras, JAX), Gemm with transB=0 and alpha/beta, a Constant node,
    Identity, Dropout and a Reshape that flattens: checked against onnx's evaluator and by hand."""
    rng = np.random.default_rng(0)
    w1, b1, w2, b2, w3, b3 = (rng.normal(size=s).astype(np.float32) for s in [(2, 6), (6,), (6, 4), (1, 4), (4, 3), (3,)])
    nodes = [helper.make_node("Reshape", ["x", "flat"], ["r"]),
             helper.make_node("MatMul", ["r", "w1"], ["m1"]), helper.make_node("Add", ["b1", "m1"], ["a1"]),
             helper.make_node("Relu", ["a1"], ["h1"]), helper.make_node("Identity", ["h1"], ["i1"]),
             helper.make_node("Constant", [], ["w2"], value=numpy_helper.from_array(w2, "w2")),
             helper.make_node("MatMul", ["i1", "w2"], ["m2"]), helper.make_node("Add", ["m2", "b2"], ["a2"]),
             helper.make_node("LeakyRelu", ["a2"], ["h2"], alpha=0.1), helper.make_node("Dropout", ["h2"], ["d2"]),
             helper.make_node("Gemm", ["d2", "w3", "b3"], ["y"], alpha=2.0, beta=0.5)]
    raw = onnx_bytes(nodes, {"w1": w1, "b1": b1, "b2": b2, "w3": w3, "b3": b3,
                             "flat": [0, -1]}, out_shape=("N", 3))
    x = rng.normal(size=(10, 2)).astype(np.float32)
    h1 = np.maximum(x @ w1 + b1, 0)
    a2 = h1 @ w2 + b2
    by_hand = 2.0 * np.where(a2 > 0, a2, 0.1 * a2) @ w3 + 0.5 * b3
    loaded = read_model(raw)
    np.testing.assert_allclose(outputs(loaded.model, torch.as_tensor(x)), by_hand, rtol=0, atol=1e-5)
    np.testing.assert_allclose(ReferenceEvaluator(raw).run(None, {"x": x})[0], by_hand, rtol=0, atol=1e-5)
    assert loaded.description == "Linear 2→6 → ReLU → Linear 6→4 → Leaky ReLU (0.1) → Linear 4→3"
    np.testing.assert_allclose(forward(to_ops(loaded.model), x.astype(np.float64)), by_hand, rtol=0, atol=1e-5)


def test_onnx_reshape_shape_as_int64_and_conv_bias_by_add():
    rng = np.random.default_rng(1)
    w, b = rng.normal(size=(3, 1, 2, 2)).astype(np.float32), rng.normal(size=(1, 3, 1, 1)).astype(np.float32)
    wl = rng.normal(size=(2, 12)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[2, 2]), helper.make_node("Add", ["c", "b"], ["a"]),
             helper.make_node("Relu", ["a"], ["h"]), helper.make_node("Reshape", ["h", "shape"], ["f"]),
             helper.make_node("Gemm", ["f", "wl"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 3, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
                              [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b"),
                               numpy_helper.from_array(wl, "wl"),
                               numpy_helper.from_array(np.array([-1, 12], dtype=np.int64), "shape")])
    raw = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()
    loaded = read_model(raw)
    x = rng.normal(size=(5, 1, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(outputs(loaded.model, torch.as_tensor(x)), ReferenceEvaluator(raw).run(None, {"x": x})[0],
                               rtol=0, atol=1e-5)
    assert loaded.input_shape == (1, 3, 3)


def _node(op, inputs, **attributes):
    return helper.make_node(op, inputs, [f"{op.lower()}_out"], **attributes)


W = {"w": np.ones((2, 2))}


@pytest.mark.parametrize("raw,match", [
    (b"\x08" + b"\xff" * 40, "not a readable ONNX file"),
    (b"\x08\x07", "no ONNX graph"),
    (onnx_bytes([_node("Tanh", ["x"])], {}), "Tanh node is not supported"),
    (onnx_bytes([_node("Add", ["x", "x"])], {}), r"takes \['x', 'x'\] where a chain would take only"),
    (onnx_bytes([_node("MatMul", ["w", "x"])], W), "takes a computed tensor as input 2"),
    (onnx_bytes([_node("Gemm", ["x", "w"], transA=1)], W), "transA=1"),
    (onnx_bytes([_node("Relu", ["x"]), _node("Add", ["relu_out", "w"])], W), "adds a constant to something other"),
    (onnx_bytes([_node("Reshape", ["x", "s"])], {"s": np.array([2, -1, 1])}), r"reshapes to \[2, -1, 1\]"),
    (onnx_bytes([_node("Conv", ["x", "k"], kernel_shape=[1, 1], pads=[1, 0, 0, 0])], {"k": np.ones((1, 2, 1, 1))},
                in_shape=("N", 2, 4, 4)), "pads .* unevenly"),
    (onnx_bytes([_node("MaxPool", ["x"], kernel_shape=[2, 2], ceil_mode=1)], {}, in_shape=("N", 1, 4, 4)),
     "ceil_mode=1"),
])
def test_onnx_files_that_are_not_a_supported_chain_are_refused(raw, match):
    with pytest.raises(ModelLoadError, match=match):
        load_model(raw)


def test_onnx_limits_and_external_weights_are_checked_before_building():
    raw = save_model(mlp(2, (64,), 2), format="onnx")
    with pytest.raises(ModelTooLargeError, match="64 units is over the limit of 32"):
        load_model(raw, limits=ModelLimits(max_width=32))
    with pytest.raises(ModelTooLargeError, match="over the limit of 100 parameters"):
        load_model(raw, limits=ModelLimits(max_params=100))
    with pytest.raises(ModelTooLargeError, match="3 hidden layers are over the limit of 2"):
        load_model(save_model(mlp(2, (3, 3, 3), 2), format="onnx"), limits=ModelLimits(max_hidden_layers=2))
    with pytest.raises(ModelTooLargeError, match="over the limit"):
        load_model(raw, max_bytes=100)
    proto = onnx.load_from_string(raw)
    weight = proto.graph.initializer[0]
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    weight.external_data.add(key="location", value="/etc/passwd")
    with pytest.raises(ModelLoadError, match="keeps its weights in separate files"):
        load_model(proto.SerializeToString())


def test_onnx_layers_that_do_not_fit_together_are_refused_at_load():
    raw = onnx_bytes([_node("Gemm", ["x", "w"], transB=1), helper.make_node("Gemm", ["gemm_out", "v"], ["y"],
                                                                              transB=1)],
                     {"w": np.ones((3, 2)), "v": np.ones((2, 5))})
    with pytest.raises(ModelLoadError, match=r"do not fit together for inputs shaped \(2,\)"):
        load_model(raw)
    bad_dims = onnx.load_from_string(onnx_bytes([_node("Gemm", ["x", "w"], transB=1)], W))
    bad_dims.graph.initializer[0].dims[:] = [1000, 1000]  # declares a million numbers, stores four
    with pytest.raises(ModelLoadError, match="a Gemm node cannot be read .ValueError"):
        load_model(bad_dims.SerializeToString())


def test_many_same_shape_layers_out_of_key_order_are_refused_not_searched_forever():
    shapes = [(4, 4)] * 30 + [(2, 4), (4, 3), (3, 4)] * 3
    state = {f"l{i:02d}.weight": torch.zeros(o, i_) for i, (i_, o) in enumerate(reversed(shapes))}
    with pytest.raises(ModelLoadError, match="forward order"):
        load_model(saved(state))


def test_a_final_softmax_or_sigmoid_is_dropped_keeping_the_predicted_classes():
    rng = np.random.default_rng(2)
    w1, b1, w2 = (rng.normal(size=s).astype(np.float32) for s in [(2, 5), (5,), (5, 3)])
    x = rng.normal(size=(50, 2)).astype(np.float32)
    logits = np.maximum(x @ w1 + b1, 0) @ w2
    for squash in ("Softmax", "LogSoftmax", "Sigmoid"):
        nodes = [helper.make_node("MatMul", ["x", "w1"], ["m1"]), helper.make_node("Add", ["m1", "b1"], ["a1"]),
                 helper.make_node("Relu", ["a1"], ["h"]), helper.make_node("MatMul", ["h", "w2"], ["z"]),
                 helper.make_node(squash, ["z"], ["p"]), helper.make_node("Identity", ["p"], ["y"])]
        raw = onnx_bytes(nodes, {"w1": w1, "b1": b1, "w2": w2}, out_shape=("N", 3))
        got = outputs(load_model(raw), torch.as_tensor(x))
        np.testing.assert_allclose(got, logits, rtol=0, atol=1e-5)
        (probabilities,) = ReferenceEvaluator(raw).run(None, {"x": x})
        assert np.array_equal(got.argmax(axis=1), probabilities.argmax(axis=1))
    inside = [helper.make_node("MatMul", ["x", "w1"], ["m1"]), helper.make_node("Sigmoid", ["m1"], ["s"]),
              helper.make_node("MatMul", ["s", "w2"], ["y"])]
    with pytest.raises(ModelLoadError, match="Sigmoid node is not supported"):
        load_model(onnx_bytes(inside, {"w1": w1, "w2": w2}, out_shape=("N", 3)))

"""nets: torch models, their conversion into ops (checked against torch itself), and safe loading."""
from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save as save_safetensors
from torch import nn

from splineviz.data import mnist
from splineviz.nets import (ModelLoadError, UnsupportedLayerError, build_model, input_shape_for, load_model, mlp,
                            model_from_state, paper_cnn, to_ops)
from splineviz.partition import Plane, box, trace
from splineviz.partition.ops import forward

torch.set_num_threads(1)  # small models: threads only add contention


def randomize_batchnorm(model: nn.Module, seed: int) -> None:
    """Non-trivial running statistics and affine parameters, so folding errors cannot hide."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g))
            m.running_var.copy_(torch.rand(n, generator=g) * 2 + 0.1)
            if m.affine:
                m.weight.data.copy_(torch.randn(n, generator=g))
                m.bias.data.copy_(torch.randn(n, generator=g))


def torch_out(model: nn.Module, x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(torch.as_tensor(x).reshape(len(x), *shape)).reshape(len(x), -1).numpy()


def assert_ops_match(model: nn.Module, shape: tuple[int, ...], n: int = 64, seed: int = 0) -> None:
    model = model.double().eval()
    x = np.random.default_rng(seed).normal(size=(n, int(np.prod(shape)))) * 2
    np.testing.assert_allclose(forward(to_ops(model, shape), x), torch_out(model, x, shape), rtol=0, atol=1e-9)


def small_cnn(seed: int = 0) -> nn.Sequential:
    """2x8x8 -> conv/BN/ReLU/avg-pool -> conv/LeakyReLU/max-pool -> linear; exercises every image layer."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AvgPool2d(2)),
        nn.Dropout2d(0.3),
        nn.Conv2d(4, 5, 3, padding=1, padding_mode="circular"), nn.LeakyReLU(0.2), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(20, 3))


@settings(max_examples=30, deadline=None)
@given(widths=st.lists(st.integers(1, 12), min_size=1, max_size=4), leaky=st.booleans(),
       extras=st.lists(st.sampled_from(["bn", "dropout", "identity", "none"]), min_size=4, max_size=4),
       seed=st.integers(0, 2**16))
def test_mlp_ops_equal_torch_forward(widths, leaky, extras, seed):
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (w_in, w_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(w_in, w_out, bias=bool(i % 2 == 0)))
        extra = {"bn": nn.BatchNorm1d(w_out), "dropout": nn.Dropout(0.5), "identity": nn.Identity()}.get(extras[i])
        layers += [extra] if extra is not None else []
        layers.append(nn.LeakyReLU(0.1) if leaky else nn.ReLU())
    model = nn.Sequential(*layers, nn.Linear(widths[-1], 3))
    randomize_batchnorm(model, seed)
    assert_ops_match(model, (widths[0],), seed=seed)


def test_cnn_ops_equal_torch_forward():
    model = small_cnn()
    randomize_batchnorm(model, 1)
    assert_ops_match(model, (2, 8, 8))


def test_paper_cnn_ops_equal_torch_forward():
    model = paper_cnn(seed=3)
    randomize_batchnorm(model, 3)
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert_ops_match(model, (1, 28, 28), n=8)


@pytest.mark.parametrize("layer", [
    nn.Conv2d(3, 4, 3, stride=2, dilation=2, bias=False),
    nn.Conv2d(3, 6, (2, 3), padding=1, groups=3, padding_mode="reflect"),
    nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    nn.AvgPool2d(2, divisor_override=3),
])
def test_linear_image_layers_equal_torch(layer):
    assert_ops_match(nn.Sequential(layer, nn.Flatten()), (3, 7, 6))


@pytest.mark.parametrize("kernel,stride,padding,dilation", [(2, None, 0, 1), (3, 2, 0, 1), (3, 1, 1, 1),
                                                            ((2, 3), (1, 2), 0, 1), (2, 2, 1, 2)])
def test_max_pool_groups_equal_torch(kernel, stride, padding, dilation):
    pool = nn.MaxPool2d(kernel, stride, padding=padding, dilation=dilation)
    assert_ops_match(nn.Sequential(pool), (3, 7, 6))


def test_batchnorm1d_on_sequences_folds_per_channel():
    model = nn.Sequential(nn.BatchNorm1d(3), nn.Flatten(), nn.Linear(12, 2))
    randomize_batchnorm(model, 5)
    assert_ops_match(model, (3, 4))


def test_consecutive_linear_layers_are_merged():
    ops = to_ops(nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Dropout(), nn.Linear(3, 4), nn.ReLU(),
                               nn.Linear(4, 1)))
    assert [type(op).__name__ for op in ops] == ["Affine", "ReLU", "Affine"]
    assert ops[0].weight.shape == (4, 2)


@pytest.mark.parametrize("layer,words", [
    (nn.Tanh(), ["Tanh", "Linear", "Conv2d"]),
    (nn.MaxPool2d(2, ceil_mode=True), ["ceil_mode"]),
    (nn.BatchNorm2d(1, track_running_stats=False), ["track_running_stats"]),
    (nn.ModuleList([nn.ReLU()]), ["ModuleList", "supported"]),
])
def test_unsupported_layers_are_named(layer, words):
    with pytest.raises(UnsupportedLayerError) as err:
        to_ops(nn.Sequential(nn.Conv2d(1, 1, 1), layer), (1, 4, 4))
    assert all(w in str(err.value) for w in words)
    assert isinstance(err.value, ValueError)


def test_shape_problems_are_explained():
    with pytest.raises(ValueError, match="input_shape"):
        to_ops(paper_cnn())
    with pytest.raises(ValueError, match="Linear expects one sample shaped 5"):
        to_ops(nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(5, 1)))
    with pytest.raises(ValueError, match="Conv2d expects one sample shaped 1"):
        to_ops(paper_cnn(), (3, 28, 28))


def test_input_shape_for_flattens_images_only_for_mlps():
    assert input_shape_for(mlp(784, (8,), 10), (1, 28, 28)) == (784,)
    assert input_shape_for(nn.Sequential(nn.Dropout(), mlp(3)), None) == (3,)
    assert input_shape_for(paper_cnn(), (1, 28, 28)) == (1, 28, 28)
    # an MLP traced on images: the ops take flat pixels
    assert to_ops(mlp(784, (8,), 10), (1, 28, 28))[0].in_features == 784


def test_mlp_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a, b, c = mlp(seed=1), mlp(seed=1), mlp(seed=2)
    assert torch.equal(torch.get_rng_state(), before)
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    assert not torch.equal(a[0].weight, c[0].weight)
    assert list(a.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    assert isinstance(mlp(activation="leaky_relu", negative_slope=0.3)[1], nn.LeakyReLU)
    with pytest.raises(ValueError, match="unknown activation 'tanh'"):
        mlp(activation="tanh")
    with pytest.raises(ValueError, match="positive integers"):
        mlp(hidden=(0,))


# ---------------------------------------------------------------------------------------------------- loading

def saved(state: dict) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def same_function(a: nn.Module, b: nn.Module, shape=(2,)) -> bool:
    x = torch.randn(16, *shape)
    with torch.no_grad():
        return torch.equal(a.eval()(x), b.eval()(x))


def test_load_model_round_trips_pt_and_safetensors(tmp_path):
    model = mlp(2, (7, 5), 3, seed=4)
    (tmp_path / "m.pt").write_bytes(saved(model.state_dict()))
    (tmp_path / "m.safetensors").write_bytes(save_safetensors(model.state_dict()))
    for source in (saved(model.state_dict()), tmp_path / "m.pt", str(tmp_path / "m.safetensors"),
                   save_safetensors(model.state_dict()), saved({"state_dict": model.state_dict()})):
        loaded = load_model(source)
        assert [m.out_features for m in loaded if isinstance(m, nn.Linear)] == [7, 5, 3]
        assert same_function(model, loaded)


def test_load_model_uses_the_architecture():
    leaky = mlp(2, (6,), 2, activation="leaky_relu", negative_slope=0.2, seed=1)
    loaded = load_model(saved(leaky.state_dict()), {"activation": "leaky_relu", "negative_slope": 0.2})
    assert same_function(leaky, loaded)
    assert not same_function(leaky, load_model(saved(leaky.state_dict())))  # ReLU by default
    cnn = paper_cnn(seed=2)
    randomize_batchnorm(cnn, 2)
    assert same_function(cnn, load_model(saved(cnn.state_dict()), {"type": "paper_cnn"}), (1, 28, 28))


def test_build_model_from_plain_data():
    assert same_function(build_model({"type": "mlp", "hidden": [3], "seed": 5}), mlp(hidden=(3,), seed=5))
    with pytest.raises(ValueError, match="bad parameters for paper_cnn"):
        build_model({"type": "paper_cnn", "hidden": 3})


class NotAStateDict:
    pass


@pytest.mark.parametrize("payload,match", [
    (b"", "empty"),
    (b"\x00garbage" * 10, "not a readable"),
    (saved([torch.zeros(2)]), "not a state dict"),
    (pickle.dumps(NotAStateDict()), "not a readable"),
    (saved({"0.weight": torch.tensor([[float("nan"), 1.0]]), "0.bias": torch.zeros(1)}), "NaN"),
    (saved({"0.weight": torch.zeros(3, 2), "0.bias": torch.zeros(3), "2.weight": torch.zeros(1, 4),
            "2.bias": torch.zeros(1)}), "expects 4 inputs"),
    (saved({"0.weight": torch.zeros(3, 2), "1.weight": torch.zeros(3)}), "layer 1: weight \\(3,\\) are not a Linear"),
    (saved({"0.weight": torch.zeros(3), "0.bias": torch.zeros(3)}), "not a Linear"),
    (saved({"0.weight": torch.zeros(3, 2), "0.bias": torch.zeros(3)}), "weights do not fit"),
    (saved({"w": "text"}), "not named tensors"),
])
@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_load_model_rejects_bad_input_clearly(payload, match):
    arch = {"type": "paper_cnn"} if match == "weights do not fit" else None
    with pytest.raises(ModelLoadError, match=match):
        load_model(payload, arch)


def test_nan_in_a_later_tensor_names_that_tensor():
    state = mlp(2, (3,), 2, seed=0).state_dict()
    state["2.bias"] = torch.tensor([0.0, float("inf")])
    state["2.weight"][0, 1] = float("nan")  # one bad entry among finite ones
    with pytest.raises(ModelLoadError, match=r"NaN or infinite values in 2\.weight, 2\.bias$"):
        load_model(saved(state))


def test_a_dataparallel_state_dict_loads_without_its_prefix():
    model = mlp(2, (3,), 2, seed=4)
    wrapped = {f"module.{k}": v for k, v in model.state_dict().items()}
    assert same_function(model, load_model(saved(wrapped)))
    assert same_function(model, load_model(saved({"state_dict": wrapped})))


def test_load_model_refuses_pickled_code_and_unknown_architectures(tmp_path):
    buf = io.BytesIO()
    torch.save(mlp(), buf)  # a whole module: weights_only loading must refuse it
    with pytest.raises(ModelLoadError, match="not a readable"):
        load_model(buf.getvalue())
    with pytest.raises(ModelLoadError, match="unknown architecture type 'resnet'"):
        load_model(saved(mlp().state_dict()), {"type": "resnet"})
    with pytest.raises(ModelLoadError, match="cannot read"):
        load_model(tmp_path / "missing.pt")


def test_model_from_state_copies_and_checks():
    model = mlp(seed=0)
    other = mlp(seed=9)
    copy = model_from_state(other.state_dict(), model)
    assert same_function(copy, other) and copy is not model and not copy.training
    with pytest.raises(ModelLoadError, match="do not fit"):
        model_from_state(mlp(2, (3,), 2).state_dict(), model)


# ------------------------------------------------------------------------------------------ against the engine

def assert_regions_affine_in_torch(model: nn.Module, shape: tuple[int, ...], domain, plane=None) -> int:
    """Fit each traced region's affine map from its vertices; torch must agree inside the region."""
    model = model.double().eval()
    p = trace(to_ops(model, shape), bounds=domain, plane=plane)
    rng = np.random.default_rng(0)
    points, predicted = [], []
    for poly in p.regions:
        design = np.c_[poly, np.ones(len(poly))]
        coef, *_ = np.linalg.lstsq(design, p.outputs_at(poly), rcond=None)
        weights = rng.dirichlet(np.ones(len(poly)), size=3)
        inside = weights @ poly
        points.append(inside)
        predicted.append(np.c_[inside, np.ones(len(inside))] @ coef)
    ab = np.concatenate(points)
    x = plane.lift(ab) if plane is not None else ab
    scale = max(1.0, float(np.abs(np.concatenate(predicted)).max()))
    np.testing.assert_allclose(torch_out(model, x, shape), np.concatenate(predicted), rtol=0, atol=1e-9 * scale)
    return p.n_regions


def test_traced_regions_are_affine_for_an_mlp():
    model = nn.Sequential(nn.Linear(2, 12), nn.BatchNorm1d(12), nn.ReLU(), nn.Linear(12, 12), nn.LeakyReLU(0.1),
                          nn.Dropout(), nn.Linear(12, 3))
    randomize_batchnorm(model, 7)
    assert assert_regions_affine_in_torch(model, (2,), box(-3, 3, -3, 3)) > 20


def test_traced_regions_are_affine_for_a_cnn_through_images():
    model = small_cnn(seed=2)
    randomize_batchnorm(model, 2)
    rng = np.random.default_rng(1)
    plane = Plane.through_images(rng.normal(size=(2, 8, 8)), rng.normal(size=(2, 8, 8)))
    assert assert_regions_affine_in_torch(model, (2, 8, 8), box(0, 1, 0, 1), plane) > 20


def test_traced_regions_are_affine_for_the_paper_cnn_through_two_digits():
    digits = mnist(n=20).x_train
    plane = Plane.through_images(digits[0], digits[1])
    # a small window: the full unit square holds ~10^5 regions at initialisation
    assert assert_regions_affine_in_torch(paper_cnn(seed=0), (1, 28, 28), box(0.45, 0.55, 0.45, 0.55), plane) > 50


class FunctionalLeaky(nn.Module):
    """F.leaky_relu three ways: torch's default slope (0.01), a positional slope and a keyword one."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(6)
        self.a, self.b, self.c, self.out = nn.Linear(2, 4), nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 1)

    def forward(self, x):
        x = nn.functional.leaky_relu(self.a(x))
        x = nn.functional.leaky_relu(self.b(x), 0.3)
        return self.out(nn.functional.leaky_relu(self.c(x), negative_slope=0.2))


def test_functional_leaky_relu_keeps_its_slope_and_torchs_default():
    ops = to_ops(FunctionalLeaky())
    assert [op.negative_slope for op in ops if hasattr(op, "negative_slope")] == [0.01, 0.3, 0.2]
    x = np.random.default_rng(0).normal(size=(50, 2)) * 3
    np.testing.assert_allclose(forward(ops, x), torch_out(FunctionalLeaky().double(), x, (2,)), atol=1e-9)

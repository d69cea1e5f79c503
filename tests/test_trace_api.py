"""splineviz.trace on any supported model and slice, its errors, and the converter on custom modules."""
from __future__ import annotations

import sys
import subprocess

import numpy as np
import pytest
import torch
from torch import nn

import splineviz
from splineviz.nets import UnsupportedLayerError, mlp, paper_cnn, to_ops
from splineviz.partition import Affine, Partition, Plane, ReLU, forward
from splineviz.partition.domain import DEFAULT_BOUNDS
from splineviz.slices import trace_image_slice


def small_cnn(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 3, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3 * 2 * 2, 3)).eval()


def images(shape=(1, 8, 8), n=3, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.random(shape) for _ in range(n)]


def test_cnn_takes_its_input_shape_from_the_plane():
    model = small_cnn()
    img0, img1, img2 = images()
    for plane, imgs in ((Plane.through_images(img0, img1), [img0, img1]),
                        (Plane.through_points(img0, img1, img2), [img0, img1, img2])):
        p = splineviz.trace(model, bounds=(0, 1, 0, 1), plane=plane)
        q, _ = trace_image_slice(model, imgs, bounds=(0, 1, 0, 1))
        assert isinstance(p, Partition) and p.n_regions == q.n_regions > 1
        ab = np.random.default_rng(1).random((50, 2))
        with torch.no_grad():
            want = model(torch.tensor(plane.lift(ab).reshape(50, 1, 8, 8), dtype=torch.float64).float()).numpy()
        np.testing.assert_allclose(p.outputs_at(ab), want, atol=1e-4)


def test_flat_plane_with_input_shape_and_paper_cnn():
    img0, img1 = (im.reshape(-1) for im in images((1, 28, 28), 2))
    plane = Plane.through_images(img0, img1)  # flat images: the shape must come from input_shape=
    with pytest.raises(ValueError, match="flat vectors.*input_shape"):
        splineviz.trace(paper_cnn(), bounds=(0, 1, 0, 1), plane=plane)
    p = splineviz.trace(paper_cnn(), bounds=(0, 0.2, 0, 0.2), plane=plane, input_shape=(1, 28, 28))
    q = splineviz.trace(paper_cnn(), bounds=(0, 0.2, 0, 0.2),
                        plane=Plane.through_images(img0.reshape(1, 28, 28), img1.reshape(1, 28, 28)))
    assert p.n_regions == q.n_regions


def test_mlp_on_a_plane_through_image_shaped_inputs():
    img0, img1 = images((1, 5, 5), 2)
    p = splineviz.trace(mlp(25, (6,), 3), bounds=(0, 1, 0, 1), plane=Plane.through_images(img0, img1))
    assert p.layer_widths == [6]


@pytest.mark.parametrize("call,match", [
    (lambda: splineviz.trace(small_cnn(), plane=Plane.through_images(*images((1, 10, 10), 2))),
     r"plane's points are shaped 1x10x10, which does not fit the model: Linear expects .*12.*27"),
    (lambda: splineviz.trace(mlp(30, (4,), 2), plane=Plane.through_images(*images((1, 5, 5), 2))),
     r"shaped 1x5x5.*Linear expects one sample shaped 30, but receives 25"),
    (lambda: splineviz.trace(mlp(2, (4,), 2), bounds=(-1, 1)),
     r"interval, for networks with one input; this one takes 2"),
    (lambda: splineviz.trace(mlp(1, (4,), 2), bounds=(-1, 1, -1, 1)), r"one input: give an interval"),
    (lambda: splineviz.trace(mlp(3, (4,), 2)), r"takes 3 inputs; trace a 2-D slice.*plane="),
    (lambda: splineviz.trace(small_cnn()), r"cannot infer the input shape.*Conv2d.*input_shape=\(C, H, W\)"),
    (lambda: splineviz.trace(mlp(25, (4,), 2), plane=Plane.through_images(*images((1, 5, 5), 2)),
                             input_shape=(1, 6, 6)), r"input_shape \(1, 6, 6\) holds 36 values but the plane has 25"),
    (lambda: splineviz.trace(mlp(25, (4,), 2), plane=Plane.through_images(*images((1, 5, 5), 2)), bounds=(0, 1)),
     r"interval.*plane coordinates"),
    (lambda: splineviz.trace([Affine(np.ones((2, 4)), np.zeros(2)), ReLU(), Affine(np.ones((1, 2)), [0.0])],
                             plane=Plane.through_images(*images((1, 3, 3), 2))), r"takes 4 inputs but the plane .* 9"),
])
def test_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_default_bounds_are_shared():
    p = splineviz.trace(mlp(2, (4,), 2))
    np.testing.assert_allclose([p.vertices[:, 0].min(), p.vertices[:, 0].max(), p.vertices[:, 1].min(),
                                p.vertices[:, 1].max()], DEFAULT_BOUNDS)


def test_ops_starting_with_a_nonlinearity_take_the_width_from_the_slice():
    ops = [ReLU(), Affine(np.array([[1.0, -1.0]]), [0.5])]
    assert splineviz.trace(ops).layer_widths == [2]
    assert splineviz.trace([ReLU(), Affine(np.array([[1.0]]), [0.5])], bounds=(-1, 1)).layer_widths == [1]


# ------------------------------------------------------------------------------------------- converter

class Custom(nn.Module):
    """A user's model: layers as attributes, functional activations and flatten in forward."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.conv = nn.Conv2d(1, 2, 3)
        self.head = nn.Sequential(nn.Linear(2 * 4 * 4, 5), nn.LeakyReLU(0.1))
        self.out = nn.Linear(5, 2)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        x = torch.flatten(x, 1)
        return self.out(nn.functional.relu(self.head(x)))


def test_custom_module_reads_its_forward_and_takes_the_plane_shape():
    model = Custom().eval()
    imgs = images((1, 6, 6), 2)
    p = splineviz.trace(model, bounds=(0, 1, 0, 1), plane=Plane.through_images(*imgs))
    ab = np.random.default_rng(0).random((40, 2))
    with torch.no_grad():
        want = model(torch.tensor(p.plane.lift(ab).reshape(40, 1, 6, 6), dtype=torch.float32)).numpy()
    np.testing.assert_allclose(p.outputs_at(ab), want, atol=1e-5)
    assert p.layer_widths == [32, 5, 5]  # ReLU, LeakyReLU then ReLU


class CustomMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(2, 6), nn.Linear(6, 6), nn.Linear(6, 2)])

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = torch.relu(layer(x))
        return self.layers[-1](x)


def test_custom_mlp_infers_its_input_shape():
    model = CustomMLP()
    p = splineviz.trace(model, bounds=(-1, 1, -1, 1))
    pts = np.random.default_rng(0).uniform(-1, 1, (30, 2))
    with torch.no_grad():
        np.testing.assert_allclose(p.outputs_at(pts), model(torch.tensor(pts, dtype=torch.float32)).numpy(),
                                   atol=1e-5)


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(2, 2), nn.Linear(2, 2)

    def forward(self, x):
        return x + self.b(torch.relu(self.a(x)))


class Tanh(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(2, 2)

    def forward(self, x):
        return torch.tanh(self.a(x))


class Branchy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(2, 2)

    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow: fx cannot read it
            return self.a(x)
        return x


class DoubleReLU(nn.ReLU):
    def forward(self, x):
        return 2 * super().forward(x)


class RenamedReLU(nn.ReLU):
    """A subclass that only renames: same forward, so it converts."""


def hooked() -> nn.Sequential:
    model = CustomMLP()
    model.layers[0].register_forward_hook(lambda module, inputs, output: output * 3)  # fx does not see hooks
    return model


@pytest.mark.parametrize("model,match", [
    (Residual(), r"not a chain of layers"),
    (Tanh(), r"calls .*tanh.*cannot represent"),
    (Branchy(), r"cannot read the forward of Branchy with torch.fx"),
    (nn.Sequential(nn.Linear(2, 3), DoubleReLU(), nn.Linear(3, 2)),
     r"DoubleReLU subclasses nn.ReLU but overrides forward.*refused"),
    (nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 2)), r"cannot convert layer Tanh"),
    (hooked(), r"do not reproduce its outputs"),
])
def test_converter_refuses_what_it_cannot_represent(model, match):
    with pytest.raises(UnsupportedLayerError, match=match):
        to_ops(model, (2,))


def test_layer_subclass_without_its_own_forward_converts():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 3), RenamedReLU(), nn.Linear(3, 2))
    x = np.random.default_rng(0).normal(size=(10, 2))
    with torch.no_grad():
        np.testing.assert_allclose(forward(to_ops(model), x), model(torch.tensor(x, dtype=torch.float32)).numpy(),
                                   atol=1e-5)


def test_importing_the_library_loads_neither_torch_nor_plotly():
    code = ("import sys, splineviz, splineviz.partition, splineviz.partition.interval; "
            "print('torch' in sys.modules, 'plotly' in sys.modules, 'dash' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "False"]

"""MNIST slice work: train the classifier, trace the plane through two test images, read out a point."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import nn

from splineviz.data import Dataset, mnist
from splineviz.frame import Frame
from splineviz.slices import dataset_slice, predicted_classes
from splineviz.train import TrainConfig, fit
from splineviz.web.jobs import Cancel, Progress, quiet
from splineviz.web.codec import encode_blob
from splineviz.web.params import Mnist as P
from splineviz.web.state import accuracy, build, load_weights
from splineviz.web.tracing import TRACE_BOUNDS

ARCHS = {"paper_cnn": {"type": "paper_cnn"},
         "mlp": {"type": "mlp", "in_features": 784, "hidden": [32, 32], "out_features": 10}}
HOVER_GRID = 60  # points per side of the class grid that makes the slice hoverable


@lru_cache(maxsize=1)
def mnist_data() -> Dataset:
    return mnist()


def arch_of(key: Any) -> dict[str, Any]:
    if key not in ARCHS:
        raise ValueError(f"unknown MNIST network {key!r}; choose one of {', '.join(ARCHS)}")
    return ARCHS[key]


def check_index(index: Any) -> int:
    """A test-image index, or a ValueError that says which indices exist."""
    n = len(mnist_data().y_test)
    try:
        value = int(index)
    except (TypeError, ValueError):
        raise ValueError(f"the image index must be a whole number from 0 to {n - 1}, got {index!r}") from None
    if not 0 <= value < n:
        raise ValueError(f"there is no test image {value}: the indices go from 0 to {n - 1}")
    return value


def mnist_train(arch_key: str, epochs: int, progress: Progress = quiet,
                cancel: Cancel | None = None) -> dict[str, Any]:
    """Train the slice page's classifier; the weights go back to the browser like any session state."""
    data = mnist_data()
    model = build(arch_of(arch_key))
    fit(model, data, TrainConfig(epochs=P.EPOCHS.clean(epochs), lr=0.05, batch_size=64, optimizer="sgd",
                                 momentum=0.9), progress=progress, cancel=cancel)
    return {"key": arch_key, "blob": encode_blob(model.state_dict()), "accuracy": accuracy(model, data)}


@lru_cache(maxsize=4)
def _model(arch_key: str, blob: str) -> nn.Module:
    """Decoded models are immutable and keyed by their own bytes, so caching them cannot mix sessions."""
    return load_weights(arch_of(arch_key), blob)


def mnist_image(index: int) -> tuple[np.ndarray, int]:
    data = mnist_data()
    index = check_index(index)
    return data.x_test[index], int(data.y_test[index])


def label_of(index: Any) -> int:
    """The digit shown by test image ``index`` (a ValueError for an index that does not exist)."""
    return int(mnist_data().y_test[check_index(index)])


def first_of(digit: Any) -> int:
    """The index of the first test image of ``digit`` (0-9): what picking a digit loads."""
    matches = (mnist_data().y_test == digit).nonzero()[0]
    if not len(matches):
        raise ValueError(f"there is no test image of the digit {digit!r}; digits go from 0 to 9")
    return int(matches[0])


def mnist_slice(arch_key: str, blob: str, index0: int, index1: int, extent: float = 1.0,
                progress: Progress = quiet, cancel: Cancel | None = None) -> dict[str, Any]:
    """Partition of the plane x = a*img0 + b*img1, (a, b) in [0, extent]^2, with a class grid for hovering."""
    model = _model(arch_key, blob)
    index0, index1, extent = check_index(index0), check_index(index1), P.EXTENT.clean(extent)
    bounds = (0.0, extent, 0.0, extent)
    cut = dataset_slice(model, mnist_data(), [index0, index1], bounds=bounds, progress=progress, cancel=cancel,
                        **TRACE_BOUNDS)
    grid = np.linspace(0, extent, HOVER_GRID)
    a, b = np.meshgrid(grid, grid)
    predicted = predicted_classes(model, cut.plane, np.c_[a.ravel(), b.ravel()], cut.images[0].shape)
    return {"frame": Frame.from_partition(cut.partition, bounds).to_json(), "grid": predicted.reshape(a.shape).tolist(),
            "labels": cut.labels, "indices": [index0, index1]}


def mnist_point(arch_key: str, blob: str, index0: int, index1: int, a: float, b: float) -> dict[str, Any]:
    """The input image at plane point (a, b), the class the model predicts for it, and, when A and B show different
    digits, which of their two classes scores higher there (what the slice's shading shows) (hover readout)."""
    model = _model(arch_key, blob)
    extent = P.EXTENT.hi
    a, b = (float(np.clip(v, 0.0, extent)) for v in (a, b))
    (image0, label0), (image1, label1) = mnist_image(index0), mnist_image(index1)
    image = a * image0 + b * image1
    with torch.no_grad():
        probs = torch.softmax(model(torch.as_tensor(image[None], dtype=torch.float32)), dim=1)[0].numpy()
    pair = None
    if label0 != label1:
        pair = (label0, label1) if probs[label0] >= probs[label1] else (label1, label0)
    return {"image": image.reshape(28, 28), "predicted": int(probs.argmax()), "confidence": float(probs.max()),
            "pair": pair}


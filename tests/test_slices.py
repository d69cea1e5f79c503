"""Slices through image space: exact partitions on planes through dataset images, checked against torch."""
from __future__ import annotations

import numpy as np
import pytest
import shapely
import torch

from splineviz.data import Dataset
from splineviz.nets import mlp
from splineviz.slices import dataset_slice, predicted_classes, trace_image_slice


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (6, 36)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1, 2])
    return Dataset("tiny-images", x, y, x, y, "classification", 3, None, (1, 6, 6))


def test_slice_decision_boundary_separates_the_two_classes(images):
    torch.manual_seed(0)
    model = mlp(36, hidden=(12, 12), out_features=3, seed=1)
    cut = dataset_slice(model, images, [0, 1], bounds=(0, 2, 0, 2))
    assert cut.labels == [0, 1] and cut.partition.decision_classes == (0, 1)
    np.testing.assert_allclose(cut.image_at(1.0, 0.0), images.x_test[0].reshape(1, 6, 6), atol=1e-7)
    np.testing.assert_allclose(cut.image_at(0.0, 1.0), images.x_test[1].reshape(1, 6, 6), atol=1e-7)
    # torch's 0-vs-1 winner flips between neighbouring grid points only across the traced decision boundary
    ab = np.stack(np.meshgrid(np.linspace(0, 2, 40), np.linspace(0, 2, 40)), axis=-1).reshape(-1, 2)
    with torch.no_grad():
        logits = model(torch.as_tensor(cut.plane.lift(ab), dtype=torch.float32)).numpy()
    winner = (logits[:, 1] > logits[:, 0]).reshape(40, 40)
    boundary = shapely.multilinestrings(cut.partition.decision_boundary).buffer(1e-6)
    pts = ab.reshape(40, 40, 2)
    flips = np.argwhere(winner[:, 1:] != winner[:, :-1])
    clear = np.abs(logits[:, 1] - logits[:, 0]).reshape(40, 40)
    for i, j in flips:
        if min(clear[i, j], clear[i, j + 1]) > 1e-4:  # float32 torch vs float64 trace: skip ties
            assert shapely.LineString([pts[i, j], pts[i, j + 1]]).intersects(boundary)
    assert predicted_classes(model, cut.plane, ab[:5], (1, 6, 6)).shape == (5,)


def test_three_image_plane_and_errors(images):
    model = mlp(36, hidden=(8,), out_features=3, seed=2)
    partition, plane = trace_image_slice(model, [images.x_test[i] for i in range(3)], bounds=(-0.5, 1.5, -0.5, 1.5))
    np.testing.assert_allclose(plane.lift(np.array([[0.0, 0.0]]))[0], images.x_test[0], atol=1e-7)
    assert partition.n_regions == partition.euler_regions
    with pytest.raises(ValueError, match="2 images"):
        trace_image_slice(model, [images.x_test[0]])
    with pytest.raises(IndexError, match="0..5"):
        dataset_slice(model, images, [0, 99])

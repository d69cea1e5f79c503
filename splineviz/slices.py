"""2D slices through image space: the exact partition of a torch model on the plane through images.

The paper draws MNIST partitions on x = a*img0 + b*img1 (a plane through the origin); a plane through
three images (x0 + a*u + b*v) shows the neighbourhood of one image instead. Both go through the
same engine as the 2D toys, so every region and boundary on the slice is exact.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from splineviz.data import Dataset
from splineviz.nets import input_shape_for, to_ops
from splineviz.partition import DEFAULT_BUDGET, Partition, Plane, trace
from splineviz.partition.tracer import DEFAULT_MAX_BYTES


@dataclass
class ImageSlice:
    """A traced slice, the images that span it and their labels (when known)."""

    partition: Partition
    plane: Plane
    images: list[np.ndarray]
    labels: list[int]
    bounds: tuple[float, float, float, float]

    def image_at(self, a: float, b: float) -> np.ndarray:
        """The input image at plane point (a, b), shaped like the spanning images."""
        return self.plane.lift(np.array([[a, b]]))[0].reshape(self.images[0].shape)


def trace_image_slice(model: nn.Module, images: Sequence[np.ndarray], bounds=(0.0, 1.0, 0.0, 1.0),
                      classes: tuple[int, int] | None = None, budget: int = DEFAULT_BUDGET,
                      progress: Callable[[float, str], None] | None = None,
                      cancel: Callable[[], bool] | None = None, max_bytes: int = DEFAULT_MAX_BYTES
                      ) -> tuple[Partition, Plane]:
    """Partition of `model` on the plane through two images (through the origin) or three (through all three).

    ``budget`` and ``max_bytes`` bound the trace as in ``splineviz.partition.trace``."""
    images = [np.asarray(img, dtype=np.float64) for img in images]
    if len(images) == 2:
        plane = Plane.through_images(*images)
    elif len(images) == 3:
        plane = Plane.through_points(*images)
    else:
        raise ValueError(f"a slice is spanned by 2 images (plane through the origin) or 3, got {len(images)}")
    ops = to_ops(model, input_shape_for(model, images[0].shape))
    partition = trace(ops, bounds=bounds, plane=plane, budget=budget, decision_classes=classes,
                      progress=progress, cancel=cancel, max_bytes=max_bytes)
    return partition, plane


def dataset_slice(model: nn.Module, data: Dataset, indices: Sequence[int], split: str = "test",
                  bounds=(0.0, 1.0, 0.0, 1.0), budget: int = DEFAULT_BUDGET,
                  progress: Callable[[float, str], None] | None = None,
                  cancel: Callable[[], bool] | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> ImageSlice:
    """Slice through dataset images by index; the decision boundary is drawn between the first two's classes."""
    x, y = (data.x_test, data.y_test) if split == "test" else (data.x_train, data.y_train)
    if any(not 0 <= i < len(x) for i in indices):
        raise IndexError(f"image indices must lie in 0..{len(x) - 1} for the {split} split, got {list(indices)}")
    shape = data.input_shape or x.shape[1:]
    images = [np.asarray(x[i], dtype=np.float64).reshape(shape) for i in indices]
    labels = [int(y[i]) for i in indices]
    classes = (labels[0], labels[1]) if labels[0] != labels[1] else None
    partition, plane = trace_image_slice(model, images, bounds, classes, budget, progress, cancel, max_bytes)
    return ImageSlice(partition, plane, images, labels, tuple(float(v) for v in bounds))


def predicted_classes(model: nn.Module, plane: Plane, points: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """The model's class at plane points, by a torch forward pass (for hover read-outs and checks)."""
    shape = input_shape_for(model, image_shape)
    x = torch.as_tensor(plane.lift(points).reshape(len(points), *shape), dtype=torch.float32)
    with torch.no_grad():
        return model.eval()(x).argmax(dim=1).numpy()

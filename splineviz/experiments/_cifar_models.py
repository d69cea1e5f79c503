"""Compact CIFAR VGG-16 and PreResNet (bottleneck, depth 9n+2) as in the Early-Bird / network-slimming code.

Written here rather than taken from torchvision (forbidden in this project) and small enough to read in one go.
``width`` scales every channel count so tests can train a tiny version of the same architecture. Every ReLU is a
separate, non-inplace module so forward pre-hooks can read the pre-activations (the spline sign patterns).
"""
from __future__ import annotations

import torch
from torch import nn

VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)


def _scaled(channels: int, width: float) -> int:
    return max(1, round(channels * width))


def vgg16(n_classes: int = 10, width: float = 1.0) -> nn.Sequential:
    """conv3x3-BN-ReLU stacks with 4 max-pools, 2x2 average pool and one linear layer (32x32 inputs)."""
    layers: list[nn.Module] = []
    c_in = 3
    for item in VGG16_CFG:
        if item == "M":
            layers.append(nn.MaxPool2d(2))
            continue
        c_out = _scaled(int(item), width)
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
        c_in = c_out
    layers += [nn.AvgPool2d(2), nn.Flatten(), nn.Linear(c_in, n_classes)]
    return nn.Sequential(*layers)


class _Bottleneck(nn.Module):
    """Pre-activation bottleneck: BN-ReLU-conv1x1, BN-ReLU-conv3x3(stride), BN-ReLU-conv1x1 (x4), plus shortcut."""

    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int) -> None:
        super().__init__()
        c_out = planes * self.expansion
        self.bn1, self.relu1 = nn.BatchNorm2d(c_in), nn.ReLU()
        self.conv1 = nn.Conv2d(c_in, planes, 1, bias=False)
        self.bn2, self.relu2 = nn.BatchNorm2d(planes), nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn3, self.relu3 = nn.BatchNorm2d(planes), nn.ReLU()
        self.conv3 = nn.Conv2d(planes, c_out, 1, bias=False)
        self.shortcut = (nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)
                         if stride != 1 or c_in != c_out else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(self.relu1(self.bn1(x)))
        out = self.conv2(self.relu2(self.bn2(out)))
        out = self.conv3(self.relu3(self.bn3(out)))
        return out + self.shortcut(x)


class PreResNet(nn.Module):
    """CIFAR pre-activation ResNet with bottlenecks: 3 stages of n blocks (16, 32, 64 planes), depth = 9n + 2."""

    def __init__(self, depth: int = 101, n_classes: int = 10, width: float = 1.0) -> None:
        super().__init__()
        if (depth - 2) % 9 != 0 or depth < 11:
            raise ValueError(f"PreResNet depth must be 9n+2 with n >= 1 (e.g. 101), got {depth}")
        n = (depth - 2) // 9
        c = _scaled(16, width)
        self.conv1 = nn.Conv2d(3, c, 3, padding=1, bias=False)
        blocks: list[nn.Module] = []
        for stage, planes in enumerate(_scaled(p, width) for p in (16, 32, 64)):
            for i in range(n):
                blocks.append(_Bottleneck(c, planes, stride=2 if stage > 0 and i == 0 else 1))
                c = planes * _Bottleneck.expansion
        self.blocks = nn.Sequential(*blocks)
        self.bn, self.relu = nn.BatchNorm2d(c), nn.ReLU()
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.relu(self.bn(self.blocks(self.conv1(x)))))


def build(arch: str, width: float = 1.0, n_classes: int = 10) -> nn.Module:
    """'vgg16' or 'preresnetD' (D = 9n+2, e.g. preresnet101)."""
    if arch == "vgg16":
        return vgg16(n_classes, width)
    if arch.startswith("preresnet") and arch[len("preresnet"):].isdigit():
        return PreResNet(int(arch[len("preresnet"):]), n_classes, width)
    raise ValueError(f"unknown CIFAR architecture {arch!r}; use vgg16 or preresnet101 (any preresnet<9n+2>)")

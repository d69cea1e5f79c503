"""Early-bird tickets: detect when a network's partition stops moving during training.

Spline early-bird (the paper's rule): the sign of every hidden pre-activation at a fixed set of
probe points encodes which region of the input-space partition each probe point falls in, layer by
layer. The distance between two snapshots is, per nonlinear layer, the fraction of (probe point,
unit) signs that differ, averaged over layers. Once the partition has settled, the distance from
the newest snapshot to each of the previous ``window`` snapshots is small: the ticket is drawn at
the first snapshot where the largest of those distances is < ``threshold`` (0.16 and 3 in the
authors' code).

Classic early-bird (You et al. 2020): channel masks keep the BatchNorm channels with the largest
|gamma| at a pruning ratio; the ticket is drawn when the normalised Hamming distance from the newest
mask to each of the previous ``window - 1`` masks is <= 0.1 (window 5).

Epochs are snapshot indices (snapshot 0 is the initial weights, as ``train.fit`` records them).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from splineviz.partition.errors import Cancelled
from splineviz.probe import ModelFactory, ModelOrState, as_model, grid_probe, preactivations


def sign_patterns(model_or_state: ModelOrState, probe: np.ndarray | torch.Tensor,
                  model_factory: ModelFactory | None = None) -> list[np.ndarray]:
    """Per nonlinear layer, a bool array (n_probe, units, ...): pre-activation > 0 at each probe point."""
    model = as_model(model_or_state, model_factory)
    return [(z > 0).numpy() for z in preactivations(model, probe)]


def pattern_distance(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> tuple[np.ndarray, float]:
    """Fraction of differing signs per layer, and its unweighted mean over layers."""
    if len(a) != len(b) or not a:
        raise ValueError(f"sign patterns must have the same, non-zero number of layers ({len(a)} vs {len(b)})")
    per_layer = []
    for la, lb in zip(a, b):
        if la.shape != lb.shape:
            raise ValueError(f"sign patterns of one layer differ in shape: {la.shape} vs {lb.shape}")
        per_layer.append(np.count_nonzero(la != lb) / la.size)
    per_layer_arr = np.asarray(per_layer, dtype=np.float64)
    return per_layer_arr, float(per_layer_arr.mean())


def distance_matrix(snapshots: Sequence[ModelOrState], model_factory: ModelFactory | None,
                    probe: np.ndarray | torch.Tensor, progress: Callable[[float, str], None] | None = None,
                    cancel: Callable[[], bool] | None = None) -> np.ndarray:
    """(E, E) spline distances between all pairs of snapshots (symmetric, zero diagonal).

    Patterns are kept bit-packed (one bit per probe point and unit), so hundreds of epochs fit in memory.
    """
    if not snapshots:
        raise ValueError("distance_matrix needs at least one snapshot")
    packed: list[list[np.ndarray]] = []
    sizes: list[int] = []
    for i, snapshot in enumerate(snapshots):
        if cancel is not None and cancel():
            raise Cancelled(f"distance matrix cancelled after {i} of {len(snapshots)} snapshots")
        patterns = sign_patterns(snapshot, probe, model_factory)
        sizes = [p.size for p in patterns]
        packed.append([np.packbits(p.reshape(-1)) for p in patterns])
        if progress is not None:
            progress((i + 1) / len(snapshots), f"sign patterns of snapshot {i + 1}/{len(snapshots)}")
    total = np.zeros((len(snapshots), len(snapshots)))
    for layer, size in enumerate(sizes):
        total += hamming_fractions(np.stack([p[layer] for p in packed]), size)
    return total / len(sizes)


def hamming_fractions(bits: np.ndarray, n_bits: int | None = None) -> np.ndarray:
    """Pairwise fraction of differing entries between the rows of a bool matrix.

    Rows may instead be ``np.packbits`` output (uint8) holding ``n_bits`` bits each; the zero
    padding adds nothing. |a xor b| = |a| + |b| - 2 a.b, with the Gram matrix summed in float32
    blocks whose counts stay exact (< 2**24) and accumulated in float64, so the result is exact.
    """
    packed = bits.dtype == np.uint8
    if not packed and bits.dtype != np.bool_:
        raise TypeError(f"expected a bool matrix or packed bits (uint8), got {bits.dtype}")
    if packed and n_bits is None:
        raise ValueError("packed bits need n_bits, the number of bits per row before packing")
    n_cols = n_bits if packed else bits.shape[1]
    gram = np.zeros((len(bits), len(bits)))
    block = (1 << 20) // (8 if packed else 1)
    for start in range(0, bits.shape[1], block):
        part = bits[:, start:start + block]
        part = torch.from_numpy((np.unpackbits(part, axis=1) if packed else part).astype(np.float32))
        gram += (part @ part.T).double().numpy()
    ones = np.diag(gram).copy()
    dist = (ones[:, None] + ones[None, :] - 2 * gram) / n_cols
    np.fill_diagonal(dist, 0.0)
    return dist


def distances_to_previous(matrix: np.ndarray, window: int = 3) -> list[np.ndarray]:
    """For each epoch e, its distances to epochs e-1 .. e-window (fewer at the start)."""
    matrix = _square(matrix)
    return [matrix[e, max(0, e - window):e][::-1] for e in range(len(matrix))]


def window_maxima(matrix: np.ndarray, window: int = 3) -> np.ndarray:
    """For each epoch, the largest distance to the previous ``window`` epochs; NaN before epoch ``window``.

    This is the curve the spline rule compares with its threshold.
    """
    _check_rule(0.0, window)
    return np.array([previous.max() if e >= window else np.nan
                     for e, previous in enumerate(distances_to_previous(matrix, window))])


def detect_ticket(distances: np.ndarray | Sequence[float], threshold: float = 0.16, window: int = 3) -> int | None:
    """First epoch whose spline distance to each of the previous ``window`` epochs is < threshold.

    ``distances`` is either the (E, E) ``distance_matrix`` (exact rule) or a 1-D sequence whose
    entry e is the distance from epoch e to epoch e-1 (entry 0 is ignored); then the rule uses the
    last ``window`` consecutive distances instead. None when no ticket is drawn.
    """
    _check_rule(threshold, window)
    d = np.asarray(distances, dtype=np.float64)
    if d.ndim == 2:
        for e, previous in enumerate(distances_to_previous(d, window)):
            if e >= window and previous.max() < threshold:
                return e
        return None
    if d.ndim != 1:
        raise ValueError(f"distances must be an (E, E) matrix or a 1-D sequence, got shape {d.shape}")
    for e in range(window, len(d)):
        if d[e - window + 1:e + 1].max() < threshold:
            return e
    return None


def bn_mask(model_or_state: ModelOrState, ratio: float) -> np.ndarray:
    """Classic EB channel mask: False for the ``ratio`` fraction of BatchNorm channels with smallest |gamma|.

    Channels of all BatchNorm layers are ranked together (global threshold), as in the EB code. A
    state dict is enough: BatchNorm layers are recognised by their running variance.
    """
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"pruning ratio must be in [0, 1), got {ratio}")
    gammas = _bn_gammas(model_or_state)
    order = np.argsort(gammas, kind="stable")
    mask = np.ones(len(gammas), dtype=bool)
    mask[order[:int(len(gammas) * ratio)]] = False
    return mask


def bn_masks(snapshots: Sequence[ModelOrState], ratio: float) -> list[np.ndarray]:
    """``bn_mask`` of every snapshot, ready for ``detect_ticket_bn``."""
    return [bn_mask(s, ratio) for s in snapshots]


def _bn_gammas(model_or_state: ModelOrState) -> np.ndarray:
    if isinstance(model_or_state, nn.Module):
        state = model_or_state.state_dict()
    else:
        state = getattr(model_or_state, "state", model_or_state)
    if not isinstance(state, Mapping):
        raise TypeError(f"expected an nn.Module, a state dict or a Snapshot, got {type(model_or_state).__name__}")
    prefixes = [k[: -len("running_var")] for k in state if k.endswith("running_var")]
    gammas = [state[p + "weight"].detach().abs().reshape(-1).cpu().numpy() for p in prefixes if p + "weight" in state]
    if not gammas:
        raise ValueError("the model has no affine BatchNorm layers; use the spline early-bird rule instead")
    return np.concatenate(gammas).astype(np.float64)


def bn_mask_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised Hamming distance between two channel masks."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"channel masks must have the same non-zero size ({a.shape} vs {b.shape})")
    return float(np.count_nonzero(a != b) / a.size)


def detect_ticket_bn(masks: Sequence[np.ndarray], threshold: float = 0.1, window: int = 5) -> int | None:
    """First epoch whose mask is within ``threshold`` (<=) of each of the previous ``window - 1`` masks."""
    _check_rule(threshold, window)
    if window < 2:
        raise ValueError(f"the mask rule compares against earlier masks, so window must be >= 2, got {window}")
    for e in range(window - 1, len(masks)):
        if max(bn_mask_distance(masks[e], masks[e - k]) for k in range(1, window)) <= threshold:
            return e
    return None


def _check_rule(threshold: float, window: int) -> None:
    if not np.isfinite(threshold) or threshold < 0:
        raise ValueError(f"threshold must be a non-negative number, got {threshold}")
    if int(window) != window or window < 1:
        raise ValueError(f"window must be a positive integer, got {window}")


def _square(matrix: np.ndarray) -> np.ndarray:
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"expected a square distance matrix, got shape {m.shape}")
    return m


@dataclass(frozen=True)
class EarlyBirdRule:
    """A spline early-bird rule: fire at the first epoch >= ``window`` whose distance to each of the previous
    ``window`` epochs is < ``threshold``.

    Examples
    --------
    >>> EarlyBirdRule(0.2, 2).ticket([np.nan, 0.5, 0.1, 0.1, 0.05])
    3
    """

    threshold: float
    window: int
    name: str = ""

    def __post_init__(self) -> None:
        _check_rule(self.threshold, self.window)

    def ticket(self, distances: np.ndarray | Sequence[float]) -> int | None:
        """``detect_ticket`` with this rule's threshold and window."""
        return detect_ticket(distances, self.threshold, self.window)


PAPER_RULE = EarlyBirdRule(0.16, 3, "paper (0.16, window 3)")
# Chosen from the eb_validation sweep on the toy nets (docs/results/eb_validation): the paper's rule fires at the
# earliest epoch its window allows there, before the partition has settled.
TOY_RULE = EarlyBirdRule(0.05, 3, "toy nets (0.05, window 3)")


class TicketWatch:
    """Spline early-bird as training runs: feed each epoch's model, learn the window maximum and the ticket.

    Keeps only the last ``rule.window`` sign patterns (bit-packed), so it costs one forward pass on the probe per
    epoch; ``distance_matrix`` + ``detect_ticket`` give the same ticket after the fact.
    """

    def __init__(self, probe: np.ndarray | torch.Tensor, rule: EarlyBirdRule = PAPER_RULE) -> None:
        self.probe, self.rule = probe, rule
        self._recent: list[tuple[list[np.ndarray], list[int]]] = []
        self.epoch = -1
        self.window_max: list[float] = []  # per observed epoch; NaN until the window is full
        self.ticket: int | None = None

    def observe(self, model: nn.Module) -> float:
        """Record the next epoch's model; returns its window maximum (NaN while fewer than ``window`` came before)."""
        patterns = sign_patterns(model, self.probe)
        packed = ([np.packbits(p.reshape(-1)) for p in patterns], [p.size for p in patterns])
        self.epoch += 1
        if len(self._recent) < self.rule.window:
            maximum = float("nan")
        else:
            maximum = max(_packed_distance(packed, earlier) for earlier in self._recent)
        self._recent = (self._recent + [packed])[-self.rule.window:]
        self.window_max.append(maximum)
        if self.ticket is None and maximum < self.rule.threshold:
            self.ticket = self.epoch
        return maximum


def _packed_distance(a: tuple[list[np.ndarray], list[int]], b: tuple[list[np.ndarray], list[int]]) -> float:
    """``pattern_distance`` of two bit-packed pattern lists (the zero padding of packbits never differs)."""
    fractions = [np.unpackbits(x ^ y).sum() / n for x, y, n in zip(a[0], b[0], a[1])]
    return float(np.mean(fractions))

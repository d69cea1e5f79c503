"""Early-bird tickets: sign patterns, spline distances, and both detection rules."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from torch import nn

from splineviz.data import make_dataset
from splineviz.earlybird import (PAPER_RULE, EarlyBirdRule, TicketWatch, bn_mask, bn_mask_distance, bn_masks,
                                 detect_ticket, detect_ticket_bn, distance_matrix, distances_to_previous, grid_probe,
                                 hamming_fractions, pattern_distance, sign_patterns, window_maxima)
from splineviz.nets import mlp, paper_cnn
from splineviz.partition import Cancelled
from splineviz.train import TrainConfig, fit

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def factory() -> nn.Sequential:
    return mlp(2, (6, 5), 2, seed=0)


def random_states(n: int) -> list[dict[str, torch.Tensor]]:
    return [mlp(2, (6, 5), 2, seed=100 + i).state_dict() for i in range(n)]


# ---------------------------------------------------------------- probes and patterns


def test_grid_probe_covers_the_bounds() -> None:
    probe = grid_probe((-1, 2, 0, 5), n=4)
    assert probe.shape == (16, 2) and probe.dtype == np.float32
    assert probe[:, 0].min() == -1 and probe[:, 0].max() == 2 and probe[:, 1].min() == 0 and probe[:, 1].max() == 5
    assert len(np.unique(probe, axis=0)) == 16
    with pytest.raises(ValueError, match="min < max"):
        grid_probe((1, 0, 0, 1))
    with pytest.raises(ValueError, match="n >= 2"):
        grid_probe(n=1)


def test_sign_patterns_are_the_signs_of_every_hidden_preactivation() -> None:
    model = factory()
    probe = grid_probe(n=15)
    w0, b0, w1, b1 = (p.detach().double().numpy() for p in list(model.parameters())[:4])
    z0 = probe.astype(np.float64) @ w0.T + b0
    z1 = np.maximum(z0, 0) @ w1.T + b1
    patterns = sign_patterns(model, probe)
    assert [p.shape for p in patterns] == [(225, 6), (225, 5)]
    safe = (np.abs(z0) > 1e-5).all(axis=1) & (np.abs(z1) > 1e-5).all(axis=1)  # float32 vs float64 near zero
    assert np.array_equal(patterns[0][safe], (z0 > 0)[safe]) and np.array_equal(patterns[1][safe], (z1 > 0)[safe])
    snapshot = SimpleNamespace(state=model.state_dict())
    for same in (sign_patterns(model.state_dict(), probe, factory), sign_patterns(snapshot, probe, factory)):
        assert all(np.array_equal(a, b) for a, b in zip(same, patterns))
    with pytest.raises(ValueError, match="model_factory"):
        sign_patterns(model.state_dict(), probe)
    with pytest.raises(ValueError, match="no ReLU"):
        sign_patterns(nn.Sequential(nn.Linear(2, 2)), probe)


def test_a_zero_preactivation_counts_as_inactive() -> None:
    model = factory()
    with torch.no_grad():  # unit 2 of the first layer pruned: its pre-activation is exactly 0 everywhere
        model[0].weight[2] = 0
        model[0].bias[2] = 0
    assert not sign_patterns(model, grid_probe(n=10))[0][:, 2].any()


def test_sign_patterns_of_a_cnn_cover_every_channel_and_position() -> None:
    probe = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    patterns = sign_patterns(paper_cnn(), probe)
    assert [p.shape for p in patterns] == [(3, 16, 8, 8), (3, 16, 4, 4)]


layers_strategy = st.lists(st.tuples(st.integers(1, 30), st.integers(1, 6)), min_size=1, max_size=4)


@FAST
@given(shapes=layers_strategy, seed=st.integers(0, 2**31))
def test_pattern_distance_is_the_mean_per_layer_mismatch(shapes: list[tuple[int, int]], seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = [rng.random(s) < 0.5 for s in shapes]
    b = [rng.random(s) < 0.5 for s in shapes]
    per_layer, mean = pattern_distance(a, b)
    expected = [np.mean(x != y) for x, y in zip(a, b)]
    assert np.allclose(per_layer, expected) and mean == pytest.approx(np.mean(expected))
    assert pattern_distance(a, a)[1] == 0 and pattern_distance(a, [~x for x in a])[1] == 1
    assert pattern_distance(b, a)[1] == pytest.approx(mean)


def test_pattern_distance_rejects_mismatched_patterns() -> None:
    with pytest.raises(ValueError, match="number of layers"):
        pattern_distance([np.zeros((2, 2), bool)], [])
    with pytest.raises(ValueError, match="shape"):
        pattern_distance([np.zeros((2, 2), bool)], [np.zeros((2, 3), bool)])


@FAST
@given(bits=arrays(bool, st.tuples(st.integers(1, 8), st.integers(1, 300))))
def test_hamming_fractions_match_brute_force(bits: np.ndarray) -> None:
    d = hamming_fractions(bits)
    brute = np.array([[np.mean(x != y) for y in bits] for x in bits])
    assert np.allclose(d, brute, rtol=0, atol=1e-12)
    packed = hamming_fractions(np.packbits(bits, axis=1), bits.shape[1])
    assert np.allclose(packed, brute, rtol=0, atol=1e-12)


def test_hamming_fractions_stay_exact_across_blocks() -> None:
    bits = np.random.default_rng(0).random((3, (1 << 20) + 7)) < 0.5
    brute = np.array([[np.count_nonzero(x != y) for y in bits] for x in bits]) / bits.shape[1]
    assert np.array_equal(hamming_fractions(bits), brute)
    assert np.array_equal(hamming_fractions(np.packbits(bits, axis=1), bits.shape[1]), brute)
    with pytest.raises(ValueError, match="n_bits"):
        hamming_fractions(np.packbits(bits, axis=1))


def test_distance_matrix_is_symmetric_zero_diagonal_and_brute_force_exact() -> None:
    probe = grid_probe(n=30)
    states = random_states(6)
    snapshots = [SimpleNamespace(state=s) if i % 2 else s for i, s in enumerate(states)]  # dicts and Snapshots
    d = distance_matrix(snapshots, factory, probe)
    patterns = [sign_patterns(s, probe, factory) for s in states]
    brute = np.array([[pattern_distance(a, b)[1] for b in patterns] for a in patterns])
    assert d.shape == (6, 6)
    assert np.allclose(d, brute, rtol=0, atol=1e-12)
    assert np.array_equal(d, d.T) and np.all(np.diag(d) == 0) and d[~np.eye(6, dtype=bool)].min() > 0
    for i in range(6):  # a mean of Hamming metrics is a metric
        assert np.all(d[i][:, None] <= d[i][None, :] + d + 1e-12)


def test_distance_matrix_reports_progress_and_can_be_cancelled() -> None:
    seen: list[float] = []
    distance_matrix(random_states(3), factory, grid_probe(n=5), progress=lambda f, _: seen.append(f))
    assert seen == pytest.approx([1 / 3, 2 / 3, 1.0])
    with pytest.raises(Cancelled):
        distance_matrix(random_states(3), factory, grid_probe(n=5), cancel=lambda: True)


# ---------------------------------------------------------------- spline detection rule


def test_detect_ticket_on_consecutive_distances() -> None:
    converging = [np.nan, 0.5, 0.4, 0.3, 0.2, 0.15, 0.1, 0.05, 0.01]
    assert detect_ticket(converging) == 7
    assert detect_ticket(converging, window=1) == 5
    assert detect_ticket(converging, threshold=0.4) == 5 and detect_ticket(converging, threshold=0.41) == 4
    assert detect_ticket([np.nan, 0.5, 0.1, 0.1, 0.3, 0.1, 0.1, 0.3, 0.1, 0.1, 0.3]) is None
    assert detect_ticket([np.nan, 0.16, 0.16, 0.16, 0.16]) is None  # the rule is strict: < threshold


def line_matrix(positions: list[float]) -> np.ndarray:
    p = np.asarray(positions)
    return np.abs(p[:, None] - p[None, :])


def test_detect_ticket_on_a_distance_matrix_uses_the_whole_window() -> None:
    # every consecutive step is < 0.16 from epoch 3 on, but three of them add up to more until epoch 7
    positions = np.cumsum([0, 0.3, 0.2, 0.1, 0.05, 0.05, 0.07, 0.02, 0.01, 0.0])
    d = line_matrix(list(positions))
    assert detect_ticket(d) == 7
    assert detect_ticket([np.nan, *np.diag(d, 1)]) == 5
    assert detect_ticket(line_matrix([0, 1, 0, 1, 0, 1, 0, 1])) is None
    previous = distances_to_previous(d, window=3)
    assert len(previous[0]) == 0 and np.allclose(previous[4], [0.05, 0.15, 0.35])


@FAST
@given(steps=st.lists(st.floats(0, 0.3), min_size=1, max_size=30), window=st.integers(1, 5),
       threshold=st.floats(0.01, 0.5))
def test_detect_ticket_returns_the_first_epoch_satisfying_the_rule(steps: list[float], window: int,
                                                                   threshold: float) -> None:
    d = line_matrix(list(np.cumsum([0.0, *steps])))
    ok = [e >= window and all(d[e, e - k] < threshold for k in range(1, window + 1)) for e in range(len(d))]
    expected = ok.index(True) if any(ok) else None
    assert detect_ticket(d, threshold, window) == expected


def test_ticket_boundary_cases() -> None:
    d = line_matrix([0, 0.25, 0.5, 0.75, 1.0])  # consecutive distances exactly 0.25 (binary-exact)
    assert detect_ticket(d, threshold=0.25, window=1) is None  # at the threshold: not below it
    assert detect_ticket(d, threshold=0.25 + 2**-20, window=1) == 1
    assert detect_ticket([np.nan, 0.25, 0.25], threshold=0.25, window=1) is None
    assert detect_ticket([np.nan, 0.25, 0.25], threshold=0.2500001, window=1) == 1
    for window in (1, 2, 3, 5):  # a frozen run: the earliest possible ticket is epoch = window, never before
        assert detect_ticket(np.zeros((8, 8)), 0.16, window) == window
        assert EarlyBirdRule(0.16, window).ticket(np.zeros((8, 8))) == window
    assert detect_ticket(np.zeros((3, 3)), 0.16, 3) is None  # epochs 0..2: no epoch has 3 before it
    assert (PAPER_RULE.threshold, PAPER_RULE.window) == (0.16, 3)


def test_window_maxima_by_hand() -> None:
    d = line_matrix([0, 0.3, 0.5, 0.6, 0.65])
    assert np.allclose(window_maxima(d, 2), [np.nan, np.nan, 0.5, 0.3, 0.15], equal_nan=True)


def test_ticket_watch_matches_the_offline_rule() -> None:
    snapshots = lr_decay_run(10)
    probe = grid_probe((-2, 3, -1.5, 2), n=40)
    make = lambda: mlp(2, (16, 16), 2, seed=0)  # noqa: E731
    matrix = distance_matrix(snapshots, make, probe)
    for rule in (EarlyBirdRule(0.05, 2), EarlyBirdRule(0.02, 3), EarlyBirdRule(0.001, 3)):
        watch = TicketWatch(probe, rule)
        for snap in snapshots:
            model = make()
            model.load_state_dict(snap.state)
            watch.observe(model)
        assert np.allclose(watch.window_max, window_maxima(matrix, rule.window), equal_nan=True, atol=1e-12)
        assert watch.ticket == detect_ticket(matrix, rule.threshold, rule.window)


def test_detect_ticket_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="window"):
        detect_ticket([0.1, 0.1], window=0)
    with pytest.raises(ValueError, match="threshold"):
        detect_ticket([0.1, 0.1], threshold=float("nan"))
    with pytest.raises(ValueError, match="square"):
        detect_ticket(np.zeros((2, 3)))


def lr_decay_run(epochs: int) -> list:
    """A run whose learning rate halves every epoch: the partition must freeze."""
    data = make_dataset("moons", n=300, seed=0)
    model = mlp(2, (16, 16), 2, seed=0)
    result = fit(model, data, TrainConfig(epochs=1, lr=0.5, batch_size=32))
    for e in range(1, epochs):
        result = fit(model, data, TrainConfig(epochs=1, lr=0.5 * 0.5 ** e, batch_size=32), resume_from=result)
    return result.snapshots


def test_ticket_is_drawn_when_training_freezes_and_not_for_random_reinitialisation() -> None:
    probe = grid_probe((-2, 3, -1.5, 2), n=60)
    make = lambda: mlp(2, (16, 16), 2, seed=0)  # noqa: E731
    frozen = distance_matrix(lr_decay_run(12), make, probe)
    ticket = detect_ticket(frozen)
    assert ticket is not None and ticket < 12
    assert frozen[-1, -4:-1].max() < 0.01
    shuffled = distance_matrix([mlp(2, (16, 16), 2, seed=e).state_dict() for e in range(12)], make, probe)
    assert detect_ticket(shuffled) is None
    assert shuffled[~np.eye(12, dtype=bool)].min() > 0.16


# ---------------------------------------------------------------- classic BatchNorm rule


def bn_net(gammas: list[float]) -> nn.Sequential:
    model = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 4), nn.BatchNorm1d(4),
                          nn.ReLU(), nn.Linear(4, 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor(gammas[:4]))
        model[4].weight.copy_(torch.tensor(gammas[4:]))
    return model


def test_bn_mask_drops_the_smallest_gammas_globally() -> None:
    model = bn_net([0.5, -0.1, 2.0, 0.3, -3.0, 0.05, 1.0, 0.2])
    expected = np.array([True, False, True, True, True, False, True, False])
    assert np.array_equal(bn_mask(model, 0.375), expected)
    assert np.array_equal(bn_mask(model.state_dict(), 0.375), expected)
    assert np.array_equal(bn_mask(SimpleNamespace(state=model.state_dict()), 0.375), expected)
    assert bn_mask(model, 0.0).all()
    assert [m.tolist() for m in bn_masks([model, model.state_dict()], 0.375)] == [expected.tolist()] * 2
    with pytest.raises(ValueError, match="BatchNorm"):
        bn_mask(mlp(), 0.5)
    with pytest.raises(ValueError, match="ratio"):
        bn_mask(model, 1.0)


@pytest.mark.parametrize("ratio,dropped", [(0.3, [5, 1]), (0.49, [5, 1, 7]), (0.5, [5, 1, 7, 3]), (0.1, [])])
def test_bn_mask_floors_a_fractional_channel_count(ratio: float, dropped: list[int]) -> None:
    # |gamma| ascending: ch 5 (0.05), 1 (0.1), 7 (0.2), 3 (0.3), ...; 8 x 0.3 = 2.4 -> 2, 8 x 0.49 = 3.92 -> 3
    mask = bn_mask(bn_net([0.5, -0.1, 2.0, 0.3, -3.0, 0.05, 1.0, 0.2]), ratio)
    assert sorted(np.flatnonzero(~mask).tolist()) == sorted(dropped)


def test_bn_mask_distance_is_normalised_hamming() -> None:
    assert bn_mask_distance(np.array([1, 0, 1, 1], bool), np.array([1, 1, 0, 1], bool)) == 0.5
    with pytest.raises(ValueError, match="same"):
        bn_mask_distance(np.ones(3, bool), np.ones(4, bool))


def test_detect_ticket_bn_fires_once_masks_settle() -> None:
    rng = np.random.default_rng(0)
    settled = rng.random(100) < 0.5
    masks = [rng.random(100) < 0.5 for _ in range(3)] + [settled.copy() for _ in range(7)]
    masks[6][:5] = ~masks[6][:5]  # 5 % noise stays within the 0.1 threshold
    assert detect_ticket_bn(masks) == 7
    random_masks = [rng.random(100) < 0.5 for _ in range(10)]
    assert detect_ticket_bn(random_masks) is None
    edge = [np.zeros(10, bool)] * 4 + [np.eye(10, dtype=bool)[0]]
    assert detect_ticket_bn(edge) == 4  # the rule is inclusive: <= threshold
    with pytest.raises(ValueError, match="window"):
        detect_ticket_bn(masks, window=1)

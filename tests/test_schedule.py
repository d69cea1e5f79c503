"""Pruning while training: sparsity follows the schedule exactly (hand-computed), masks persist, events say what
went, the early-bird schedule prunes at the ticket the offline rule finds, snapshots stream and runs cancel."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from splineviz.data import make_dataset
from splineviz.earlybird import EarlyBirdRule, detect_ticket, distance_matrix
from splineviz.nets import mlp
from splineviz.partition import Cancelled
from splineviz.probe import grid_probe
from splineviz.prune import EarlyBirdSchedule, Gradual, OneShot, train_with_schedule
from splineviz.train import TrainConfig, fit

torch.set_num_threads(1)
MOONS = make_dataset("moons", n=200, seed=0)
CONFIG = TrainConfig(epochs=6, lr=0.05, momentum=0.9, batch_size=32)


def test_gradual_targets_are_zhu_and_gupta_cubic() -> None:
    # s(t) = 0.8 + (0 - 0.8) (1 - (t - 1) / 3)^3 at t = 1, 2, 3, 4
    targets = Gradual(0.8, start=1, end=4).targets(10)
    assert targets == pytest.approx({1: 0.0, 2: 0.8 - 0.8 * 8 / 27, 3: 0.8 - 0.8 / 27, 4: 0.8})
    assert list(Gradual(0.5, start=0, end=6, every=2, initial_sparsity=0.1).targets(6)) == [0, 2, 4, 6]
    with pytest.raises(ValueError, match="multiple of every"):
        Gradual(0.5, start=0, end=5, every=2).targets(10)
    with pytest.raises(ValueError, match="outside"):
        OneShot(epoch=7, sparsity=0.5).targets(6)


@pytest.mark.parametrize("method,scope,hidden,expected", [
    # width 10: count(0.563 * 10) = 6, count(0.770 * 10) = 8, count(0.8 * 10) = 8 (no new event at epoch 4)
    ("node", "layerwise", (10,), [(2, 0.6), (3, 0.8)]),
    # 16 units: 9.01 -> 9, 12.33 -> 12, 12.8 -> 13
    ("node", "global", (10, 6), [(2, 9 / 16), (3, 12 / 16), (4, 13 / 16)]),
    ("random", "layerwise", (10,), [(2, 0.6), (3, 0.8)]),
    # 20 + 20 weights per tensor: 11.26 -> 11, 15.41 -> 15, 16 -> 16
    ("weight", "layerwise", (10,), [(2, 22 / 40), (3, 30 / 40), (4, 32 / 40)]),
])
def test_gradual_sparsity_follows_the_schedule_exactly(method, scope, hidden, expected) -> None:
    model = mlp(2, hidden, 2, seed=0)
    run = train_with_schedule(model, MOONS, CONFIG, Gradual(0.8, start=1, end=4), method, scope)
    assert [(e.epoch, e.achieved) for e in run.events] == [(t, pytest.approx(s)) for t, s in expected]
    reached = dict(expected)
    sparsity = 0.0
    for snap in run.snapshots:  # before an event: the previous level; the event's own snapshot: the new one
        if snap.event is not None:
            sparsity = reached[snap.epoch]
        assert snap.sparsity == pytest.approx(sparsity), (snap.epoch, snap.event)
    assert [s.epoch for s in run.snapshots] == sorted([*range(7), *reached])


def test_masks_persist_and_only_grow() -> None:
    model = mlp(2, (10, 8), 2, seed=1)
    run = train_with_schedule(model, MOONS, CONFIG, Gradual(0.7, start=1, end=5, every=2, initial_sparsity=0.2),
                              "weight", "global")
    assert len(run.events) == 3
    previous_zeros: set = set()
    for snap in run.snapshots:
        if snap.masks is None:
            assert snap.sparsity == 0.0 and snap.event is None
            continue
        zeros = {(name, i) for name, m in snap.masks.items() for i in np.flatnonzero(m.reshape(-1).numpy() == 0)}
        assert previous_zeros <= zeros
        previous_zeros = zeros
        for name, mask in snap.masks.items():
            assert torch.all(snap.state[name][mask == 0] == 0), (snap.epoch, name)
    final = dict(model.named_parameters())
    assert all(torch.all(final[n][m == 0] == 0) for n, m in run.masks.items())
    assert run.snapshots[-1].state["0.weight"].ne(run.snapshots[-3].state["0.weight"]).any()  # still training


def test_events_record_the_units_that_went() -> None:
    model = mlp(2, (10,), 2, seed=2)
    run = train_with_schedule(model, MOONS, CONFIG, Gradual(0.8, start=1, end=4), "node")
    for event in run.events:
        before = next(s for s in run.snapshots if s.epoch == event.epoch and s.event is None)
        norms = before.state["0.weight"].norm(dim=1).numpy()
        already = {u for e in run.events if e.epoch < event.epoch for u in e.removed_units["0"]}
        wanted = round(event.achieved * 10) - len(already)
        order = [u for u in np.argsort(norms, kind="stable") if u not in already]
        assert event.removed_units == {"0": sorted(int(u) for u in order[:wanted])}
        assert event.method == "node" and event.removed_weights == {}
    weight_run = train_with_schedule(mlp(2, (4,), 2, seed=2), MOONS, CONFIG, OneShot(3, 0.25), "weight")
    (event,) = weight_run.events
    before = weight_run.snapshots[3].state["0.weight"].abs().reshape(-1).numpy()
    assert event.removed_weights["0.weight"] == sorted(np.argsort(before, kind="stable")[:2].tolist())


def test_weight_events_list_only_their_own_cuts() -> None:
    model = mlp(2, (6,), 2, seed=3)
    run = train_with_schedule(model, MOONS, CONFIG, Gradual(0.5, start=1, end=3), "weight")
    assert len(run.events) == 2  # targets 0 (nothing to cut: no event), 0.4375 and 0.5
    seen: dict[str, set] = {}
    for event, after in zip(run.events, [s for s in run.snapshots if s.event is not None]):
        for name, went in event.removed_weights.items():
            assert not seen.setdefault(name, set()) & set(went)  # never a weight an earlier step cut
            seen[name] |= set(went)
            assert seen[name] == set(np.flatnonzero(after.masks[name].reshape(-1).numpy() == 0).tolist())


def test_one_shot_prunes_once_and_the_run_before_it_is_plain_training() -> None:
    model = mlp(2, (8, 8), 2, seed=3)
    seen = []
    run = train_with_schedule(model, MOONS, CONFIG, OneShot(epoch=3, sparsity=0.5), "node",
                              on_snapshot=lambda snap, live: seen.append((snap, len(live.events))))
    assert [(e.epoch, e.achieved) for e in run.events] == [(3, 0.5)]
    assert [s for s, _ in seen] == run.snapshots  # streamed as produced, the same objects
    assert [n for _, n in seen] == [0, 0, 0, 0, 1, 1, 1, 1]
    plain = fit(mlp(2, (8, 8), 2, seed=3), MOONS, TrainConfig(**{**CONFIG.__dict__, "epochs": 3}))
    for a, b in zip(plain.snapshots, run.snapshots[:4]):
        assert all(torch.equal(a.state[k], b.state[k]) for k in a.state)


def test_early_bird_schedule_prunes_at_the_offline_ticket() -> None:
    rule = EarlyBirdRule(0.05, 2)
    probe = grid_probe(MOONS.bounds, 30)
    config = TrainConfig(epochs=12, lr=0.05, momentum=0.9, batch_size=32)
    plain = fit(mlp(2, (12, 12), 2, seed=4), MOONS, config)
    ticket = detect_ticket(distance_matrix(plain.snapshots, lambda: mlp(2, (12, 12), 2), probe),
                           rule.threshold, rule.window)
    assert ticket is not None and ticket < 12
    run = train_with_schedule(mlp(2, (12, 12), 2, seed=4), MOONS, config,
                              EarlyBirdSchedule(0.5, rule, probe), "node")
    assert run.ticket == ticket and [e.epoch for e in run.events] == [ticket]
    assert len(run.window_max) == ticket + 1 and run.window_max[-1] < 0.05 <= min(run.window_max[rule.window:-1],
                                                                                   default=1.0)
    assert run.snapshots[-1].sparsity == 0.5 and run.snapshots[-1].epoch == 12


def test_spline_schedule_stays_within_its_target() -> None:
    model = mlp(2, (16,), 2, seed=5)
    run = train_with_schedule(model, MOONS, CONFIG, OneShot(4, 0.5), "spline", P=0.5)
    assert all(0 < e.achieved <= 0.5 for e in run.events)
    assert all(e.report.change <= 0.01 for e in run.events)
    for snap in run.snapshots[5:]:
        assert all(torch.all(snap.state[n][m == 0] == 0) for n, m in snap.masks.items())


def test_a_scheduled_run_can_be_cancelled() -> None:
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 20

    seen = []
    with pytest.raises(Cancelled):
        train_with_schedule(mlp(2, (8,), 2), MOONS, CONFIG, OneShot(2, 0.5), cancel=cancel,
                            on_snapshot=lambda snap, run: seen.append(snap.epoch))
    assert len(calls) == 21 and 0 < len(seen) < 7
    with pytest.raises(ValueError, match="method"):
        train_with_schedule(mlp(2, (8,), 2), MOONS, CONFIG, OneShot(2, 0.5), "magic")


# ---------------------------------------------------------------- what a page records of a run (issue 16)
def _partition_of(model_or_state, hidden):
    """Exact partition of the moons box, from a live model or a snapshot's stored weights."""
    from splineviz.nets import to_ops
    from splineviz.partition import trace

    model = model_or_state
    if isinstance(model_or_state, dict):
        model = mlp(2, hidden, 2)
        model.load_state_dict(model_or_state)
    return trace(to_ops(model.eval()), MOONS.bounds)


def test_recorded_partitions_match_a_fresh_trace_of_each_snapshot() -> None:
    """The partition traced from the live model as each snapshot is recorded (what the app streams) equals a
    fresh trace of the snapshot's stored weights, passes the brute-force oracle, and draws no line of a unit
    pruned so far."""
    from oracles import assert_consistent, grid

    hidden = (8, 6)
    live: list = []
    model = mlp(2, hidden, 2, seed=6)
    run = train_with_schedule(model, MOONS, CONFIG, Gradual(0.6, start=1, end=4), "node", "global",
                              on_snapshot=lambda snap, r: live.append(_partition_of(model, hidden)))
    assert len(live) == len(run.snapshots) and len(run.events) >= 2
    xmin, xmax, ymin, ymax = MOONS.bounds
    removed: list[set] = [set(), set()]
    for snap, recorded in zip(run.snapshots, live):
        fresh = _partition_of(snap.state, hidden)
        assert recorded.n_regions == fresh.n_regions and recorded.layer_region_counts == fresh.layer_region_counts
        np.testing.assert_allclose(recorded.decision_boundary, fresh.decision_boundary)
        for layer in range(2):
            np.testing.assert_allclose(recorded.segments(layer), fresh.segments(layer))
        assert_consistent(fresh, (xmax - xmin) * (ymax - ymin), grid(MOONS.bounds, 120))
        if snap.event is not None:
            for layer, name in enumerate(("0", "2")):
                removed[layer] |= set(snap.event.removed_units[name])
        for layer in range(2):
            assert not removed[layer] & set(fresh.segment_units(layer).tolist()), (snap.epoch, layer)
    assert sum(map(len, removed)) == round(run.snapshots[-1].sparsity * 14)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(widths=st.lists(st.integers(2, 9), min_size=1, max_size=2), final=st.floats(0.1, 0.9),
       start=st.integers(0, 2), steps=st.integers(1, 3), every=st.integers(1, 2))
def test_layerwise_node_sparsity_is_the_rounded_cubic_target_at_every_snapshot(widths, final, start, steps,
                                                                                every) -> None:
    """Each snapshot's sparsity is what the latest pruning step's target gives when every layer loses
    floor(target * width + 1/2) units (keeping at least one), counted by hand from the masks."""
    schedule = Gradual(final, start=start, end=start + steps * every, every=every)
    config = TrainConfig(epochs=start + steps * every + 1, lr=0.05, momentum=0.9, batch_size=64)
    run = train_with_schedule(mlp(2, tuple(widths), 2, seed=7), MOONS, config, schedule, "node")

    def expected(target: float) -> float:
        return sum(min(int(np.floor(target * w + 0.5)), w - 1) for w in widths) / sum(widths)

    latest = 0.0
    for snap in run.snapshots:
        if snap.event is not None:
            latest = schedule.sparsity_at(snap.epoch)
        assert snap.sparsity == pytest.approx(expected(latest))
        if snap.masks is not None:  # the masks say the same: rows of zeros, counted here
            zero_rows = sum(int((snap.masks[name].reshape(len(snap.masks[name]), -1) == 0).all(1).sum())
                            for name in ("0.weight", "2.weight")[:len(widths)])
            assert zero_rows / sum(widths) == pytest.approx(snap.sparsity)

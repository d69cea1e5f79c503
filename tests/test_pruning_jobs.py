"""Pruning while training in the app (issue 16): what the Pruning and Early-bird pages' jobs record and stream.

Oracles: the library's offline early-bird rule on a plain training run, a brute-force grid of predictions for the
decision change, the frames' own line labels for the units an event removed, and hand-made progress tuples.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from splineviz.earlybird import detect_ticket, distance_matrix, grid_probe
from splineviz.frame import Frame
from splineviz.train import fit
from splineviz.web.codec import decode_blob
from splineviz.web.jobs import earlybird as eb_jobs, playground as pg_jobs, pruning as pr_jobs
from splineviz.web.pages import pruning as pr_page
from splineviz.web.runner import JobContext
from splineviz.web.state import PlaygroundConfig, build, config_dataset, train_config

torch.set_num_threads(1)
CONFIG = PlaygroundConfig(layers=2, width=8, epochs=20)


@pytest.fixture(scope="module")
def run():
    return pg_jobs.start_run(CONFIG)[0]


@pytest.fixture(scope="module")
def gradual(run):
    """A gradual node-pruning run beside the same net pruned by spline pruning, with what was streamed (each
    payload with the frames kept by then) and the frames kept, as a page's job keeps them (framestore)."""
    streamed: list = []
    kept: dict[tuple[int, int], str] = {}

    def keep(k: int, i: int, text: str) -> None:
        assert (k, i) not in kept  # each frame once
        kept[k, i] = text

    spec = pr_jobs.ScheduleSpec(kind="gradual", method="node", sparsity=0.5, epochs=12, start=2, end=8, every=2)
    runs = pr_jobs.scheduled_run(run, pr_jobs.compare_specs(spec, "method:spline"),
                                 stream=lambda payload: streamed.append((payload, set(kept))), keep=keep)
    return runs, streamed, kept


def _predictions(frame: dict, arch: dict, points: np.ndarray) -> np.ndarray:
    model = build(arch)
    model.load_state_dict(decode_blob(frame["weights"], 2**20))
    with torch.no_grad():
        return model(torch.as_tensor(points, dtype=torch.float32)).argmax(1).numpy()


def test_gradual_run_records_every_snapshot_and_both_sides_of_each_event(gradual, run) -> None:
    runs = gradual[0]
    assert [r["label"] for r in runs] == ["node pruning gradual to 50 %", "spline pruning gradual to 50 %"]
    node = runs[0]
    # one snapshot per epoch 0..12, plus one per pruning step
    assert [h["epoch"] for h in node["history"] if not h["event"]] == list(range(13))
    assert len(node["history"]) == 13 + len(node["events"]) and len(node["events"]) >= 2
    assert node["history"][-1]["sparsity"] == 0.5
    frames = node["frames"]
    for event in node["events"]:
        before, after = frames[event["before"]], frames[event["after"]]
        assert before["stats"]["epoch"] == after["stats"]["epoch"] == event["epoch"]
        assert after["stats"]["sparsity"] == pytest.approx(event["achieved"])
        # the units the event removed draw no line in the partition after it
        for layer, units in enumerate(event["removed"]):
            drawn = set(Frame.from_json(after).segment_units[layer].tolist())
            assert units and not drawn & set(units)


def test_event_decision_change_matches_a_brute_force_grid(gradual, run) -> None:
    node = gradual[0][0]
    xmin, xmax, ymin, ymax = config_dataset(run.config).bounds
    side = 500
    xs, ys = np.meshgrid(np.linspace(xmin, xmax, side), np.linspace(ymin, ymax, side))
    points = np.stack([xs.ravel(), ys.ravel()], 1)
    changes = []
    for event in node["events"]:
        before = _predictions(node["frames"][event["before"]], run.arch, points)
        after = _predictions(node["frames"][event["after"]], run.arch, points)
        changes.append(event["change"])
        assert event["change"] == pytest.approx(np.mean(before != after), abs=0.01)
    assert max(changes) > 0.01  # the check above means something: some step moved the boundary


def test_frames_travel_apart_and_every_payload_says_how_many_were_kept(gradual) -> None:
    runs, streamed, kept = gradual
    assert len(streamed) == sum(r["n_frames"] for r in runs)  # one payload per new frame
    assert all(not r["frames"] for payload, _ in streamed for r in payload)  # numbers only: a page polls them
    # every frame a payload announces was kept before it went out: the page can fetch each one it lacks
    for payload, kept_then in streamed:
        assert {(k, i) for k, r in enumerate(payload) for i in range(r["n_frames"])} <= kept_then
    # what was kept is the final run's frames, as JSON; a small run's result carries them too (INLINE_BYTES)
    assert set(kept) == {(k, i) for k, r in enumerate(runs) for i in range(r["n_frames"])}
    assert all(json.loads(kept[k, i]) == runs[k]["frames"][i] for k, i in kept)
    first_live = streamed[0][0][-1]
    assert len(first_live["history"]) == 1 and first_live["n_frames"] == 1


def test_a_large_run_s_result_leaves_its_frames_to_be_fetched(run, monkeypatch) -> None:
    spec = pr_jobs.ScheduleSpec(kind="oneshot", method="node", sparsity=0.5, epochs=3, at=2)
    kept: dict = {}
    small = pr_jobs.scheduled_run(run, [spec], keep=lambda k, i, text: kept.setdefault((k, i), text))[0]
    size = sum(len(text) for text in kept.values())
    # half the first run's total: a second run's frames differ from the first's by a few bytes (their trace times
    # are in them), so size - 1 let a run that traced faster slip under the limit
    monkeypatch.setattr(pr_jobs, "INLINE_BYTES", size // 2)
    large = pr_jobs.scheduled_run(run, [spec], keep=lambda k, i, text: None)[0]
    assert len(small["frames"]) == small["n_frames"] == large["n_frames"] == 5  # epochs 0-3, both sides of epoch 2
    assert large["frames"] == {} and large["history"] == small["history"]
    # without a place to keep them, a library caller gets every frame whatever their size
    assert len(pr_jobs.scheduled_run(run, [spec])[0]["frames"]) == 5


def test_specs_from_any_controls_run() -> None:
    probe = grid_probe((0, 1, 0, 1), 4)
    gradual = pr_jobs.ScheduleSpec(epochs=20, start=5, end=18, every=4).schedule(probe)
    assert (gradual.start, gradual.end, gradual.every) == (5, 17, 4)
    assert pr_jobs.ScheduleSpec(epochs=10, start=30, end=40).schedule(probe).targets(10) == {10: 0.5}
    assert pr_jobs.ScheduleSpec(kind="oneshot", epochs=10, at=50).schedule(probe).epoch == 10
    spec = pr_jobs.ScheduleSpec()
    assert pr_jobs.compare_specs(spec, "none") == [spec] == pr_jobs.compare_specs(spec, "method:node")
    assert pr_jobs.compare_specs(spec, "schedule:oneshot")[1].kind == "oneshot"


def test_earlybird_run_distances_and_ticket_match_the_offline_rule(run) -> None:
    spec = pr_jobs.ScheduleSpec(kind="earlybird", epochs=20, threshold=0.1, sparsity=0.5)
    streamed: list = []
    result = eb_jobs.earlybird_run(run, spec, stream=streamed.append)
    ticket = result["ticket"]
    assert len(streamed) == result["n_frames"] and streamed[-1]["rows"] == result["rows"]
    assert ticket is not None
    # the dense part of the run is plain training: the same weights as fit() from the same initial weights
    data = config_dataset(run.config)
    plain = fit(build(run.arch), data, train_config(run.config, ticket))
    probe = grid_probe(data.bounds, pr_jobs.PROBE_SIDE)
    offline = distance_matrix(plain.snapshots, lambda: build(run.arch), probe)
    recorded = eb_jobs.distance_matrix(result["rows"])
    np.testing.assert_allclose(recorded[:ticket + 1, :ticket + 1], offline, atol=1e-5)
    assert detect_ticket(offline, 0.1, eb_jobs.WINDOW) == ticket == eb_jobs.ticket_at(result["rows"], 0.1, 3, ticket)
    assert len(result["rows"]) == 21 and [e["epoch"] for e in result["events"]] == [ticket]
    # a looser threshold fires no later; a threshold of 0 never does
    assert eb_jobs.ticket_at(result["rows"], 0.3, 3, ticket) <= ticket
    assert eb_jobs.ticket_at(result["rows"], 0.0, 3, ticket) is None


def test_a_job_streams_through_its_progress_channel() -> None:
    sent: list = []
    ctx = JobContext("0" * 32, sent.append)
    ctx.progress(0.5, "half")
    ctx.stream({"n": 1})
    ctx.progress(0.75, "more")
    assert sent == [("50.0", "half", 1), ("50.0", "half", 2, {"n": 1}), ("75.0", "more", 3, {"n": 1})]


def test_a_large_streamed_payload_is_not_sent_again_with_every_beat() -> None:
    sent: list = []
    ctx = JobContext("0" * 32, sent.append)
    ctx.stream({"frames": "megabytes"}, resend_s=0)
    ctx.progress(0.5, "half")  # past resend_s: the page already had its chance to read the payload
    ctx.stream({"frames": "more"}, resend_s=60)
    ctx.progress(0.75, "more")
    assert [v[3] for v in sent] == [{"frames": "megabytes"}, None, {"frames": "more"}, {"frames": "more"}]


def test_large_frames_thin_the_epochs_but_keep_every_pruning_step(run, monkeypatch) -> None:
    import dataclasses

    first = pg_jobs.start_run(CONFIG)[1]
    budget = 4 * len(json.dumps(first)) + 1000  # room for a little over 4 frames of the first one's size
    monkeypatch.setattr(pr_jobs, "LIMITS", dataclasses.replace(pr_jobs.LIMITS, run_frame_bytes=budget))
    spec = pr_jobs.ScheduleSpec(kind="oneshot", epochs=12, at=5, sparsity=0.5)
    (result,) = pr_jobs.scheduled_run(run, [spec])
    frames = list(result["frames"].values())
    epochs = [f["stats"]["epoch"] for f in frames]
    (event,) = result["events"]
    # every epoch would make 14 frames; the first one's size alone allows every 4th (ceil(12 / 3.x))
    assert epochs[:2] == [0, 4] and epochs[-1] == 12 and len(frames) < 14
    assert epochs == sorted(epochs) and epochs.count(5) == 2  # both sides of the step at 5 ...
    assert [frames[event["before"]]["stats"]["epoch"], frames[event["after"]]["stats"]["epoch"]] == [5, 5]
    # ... come on top of the budget, as does the last epoch; the other frames keep within it, whatever their sizes
    sides = {event["before"], event["after"], len(frames) - 1}
    assert sum(len(json.dumps(f)) for i, f in enumerate(frames) if i not in sides) <= budget
    assert [h["n_regions"] is not None for h in result["history"]] == [
        h["epoch"] in epochs for h in result["history"]]


# -- at the sizes the Playground offers (issue 16, item 6): estimate and refusal, runs side by side, cancel -----------
BIG = PlaygroundConfig(dataset="spirals", layers=6, width=64)  # the largest net the Playground's controls build


def test_a_net_over_the_run_budget_is_refused_with_the_message(run) -> None:
    import dataclasses

    from oracles import grid, point_codes
    from splineviz.nets import to_ops

    spec = pr_jobs.ScheduleSpec(kind="gradual", epochs=12, start=2, end=8, every=2)
    # an independent lower bound on the regions at initialisation: distinct activation patterns on a fine grid
    bounds = config_dataset(run.config).bounds
    patterns = len(np.unique(point_codes(to_ops(build(run.arch)), grid(bounds, 300))[0], axis=0))
    tight = dataclasses.replace(pr_jobs.LIMITS, run_regions=patterns - 1)
    refused = pr_jobs.estimate(run, [spec], tight)
    assert refused.refused and refused.message == refused.refused
    assert f"more than {patterns - 1:,} regions at initialisation" in refused.message
    with pytest.raises(ValueError, match="Too large for a pruning run"):
        pr_page.check(refused)
    assert pr_page.estimate_line(refused)["style"].endswith("refused")

    fine = pr_jobs.estimate(run, [spec])  # the app's own limits: it starts
    assert fine.refused is None and fine.regions >= patterns
    pr_page.check(fine)
    assert f"{fine.regions:,} regions" in fine.message
    assert ("about" if fine.seconds >= 1 else "under a second") in fine.message
    slow = pr_jobs.estimate(run, [spec], dataclasses.replace(pr_jobs.LIMITS, job_timeout_s=fine.seconds / 2))
    assert slow.refused and "past the limit" in slow.refused


def test_the_estimate_traces_the_net_trained_for_the_runs_epochs(run) -> None:
    """The pilot trains the dense net as the run does (same initial weights, settings and epochs) and counts its
    regions: at least the distinct activation patterns a fine grid finds on that net, trained here on its own."""
    import dataclasses

    from oracles import grid, point_codes
    from splineviz.nets import to_ops

    spec = pr_jobs.ScheduleSpec(kind="gradual", epochs=12, start=2, end=8, every=2)
    est = pr_jobs.estimate(run, [spec])
    model = build(run.arch)
    fit(model, config_dataset(run.config), train_config(run.config, 12))
    bounds = config_dataset(run.config).bounds
    patterns = len(np.unique(point_codes(to_ops(model), grid(bounds, 300))[0], axis=0))
    before = len(np.unique(point_codes(to_ops(build(run.arch)), grid(bounds, 300))[0], axis=0))
    assert patterns != before  # training moved the lines, so the pilot has something to see
    assert est.trained_regions >= patterns and est.regions >= before
    assert f"to about {est.trained_regions:,} once trained" in est.message
    assert est.seconds >= est.frames * min(est.seconds_per_frame, est.trained_seconds_per_frame)
    refused = pr_jobs.estimate(run, [spec], dataclasses.replace(pr_jobs.LIMITS, regions=patterns - 1))
    assert refused.refused and f"more than {patterns - 1:,} regions" in refused.refused


def test_the_estimate_counts_the_frames_the_run_keeps(gradual, run) -> None:
    spec = pr_jobs.ScheduleSpec(kind="gradual", method="node", sparsity=0.5, epochs=12, start=2, end=8, every=2)
    est = pr_jobs.estimate(run, pr_jobs.compare_specs(spec, "method:spline"))
    assert est.runs == 2 and est.events == 4  # epochs 2, 4, 6, 8; the first (sparsity 0) may prune nothing
    for kept in gradual[0]:
        assert 0 <= est.frames - kept["n_frames"] <= est.events - len(kept["events"])


def test_the_largest_net_the_playground_builds_is_estimated_and_allowed() -> None:
    big = pg_jobs.start_run(BIG)[0]
    est = pr_jobs.estimate(big, [pr_jobs.ScheduleSpec(kind="earlybird", epochs=40)])
    assert est.refused is None and est.regions > 5_000 and est.frames == 42 and est.events == 1


class _InStep(pr_jobs.Recorder):
    """Waits at epoch 2 until the other run is there too: two runs computed one after the other never meet."""

    meet, timeout = None, 120.0  # a guard against a deadlock, not a timing

    def observe(self, snap, live) -> bool:
        if snap.epoch == 2 and snap.event is None:
            self.meet.wait(self.timeout)  # BrokenBarrierError when the other run is not running at the same time
        return super().observe(snap, live)


def test_side_by_side_runs_are_computed_at_the_same_time_and_match_one_after_the_other(gradual, run) -> None:
    import threading

    _InStep.meet = threading.Barrier(2)
    spec = pr_jobs.ScheduleSpec(kind="gradual", method="node", sparsity=0.5, epochs=12, start=2, end=8, every=2)
    streamed, progress = [], []
    runs = pr_jobs.scheduled_run(run, pr_jobs.compare_specs(spec, "method:spline"), stream=streamed.append,
                                 progress=lambda fraction, message: progress.append((fraction, message)),
                                 recorder=_InStep, parallel=True)
    # both runs stream from their first frames on, each carrying its own newest frames; the progress names both
    assert all(len(p) == 2 for p in streamed)
    assert any("node pruning: epoch" in m and "spline pruning: epoch" in m for _, m in progress)
    fractions = [f for f, _ in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert sum(bool(p[0]["n_frames"]) and bool(p[1]["n_frames"]) for p in streamed) >= 2
    # the same runs as computed one after the other (gradual fixture): same numbers, same frames
    for together, alone in zip(runs, gradual[0]):
        assert [h["loss"] for h in together["history"]] == [h["loss"] for h in alone["history"]]
        assert together["events"] == alone["events"]
        assert [f["weights"] for f in together["frames"].values()] == [f["weights"] for f in alone["frames"].values()]
    _InStep.meet, _InStep.timeout = threading.Barrier(2), 0.5
    with pytest.raises(threading.BrokenBarrierError):  # the oracle can fail: one after the other, they never meet
        pr_jobs.scheduled_run(run, pr_jobs.compare_specs(spec, "method:spline"), recorder=_InStep)
    _InStep.timeout = 120.0


def test_a_second_run_takes_a_free_job_slot_of_the_tab(tmp_path) -> None:
    from splineviz.web import quota
    from splineviz.web.params import Limits

    registry, session = quota.DiskRegistry(tmp_path / "sessions"), "0123456789abcdef0123456789abcdef"
    with JobContext.start(session, None, Limits(jobs_per_session=2), registry) as ctx:
        with ctx.slots(2) as held:
            assert held == 2 and not registry.acquire(session, "other", 2, 60)  # both slots are this job's
            ctx.beat()  # renews both
        assert registry.acquire(session, "other", 2, 60)  # the second slot was given back
        with ctx.slots(2) as held:
            assert held == 1  # the tab's other job holds it: this job runs its parts one after the other


def test_cancelling_a_big_side_by_side_run_stops_both_promptly() -> None:
    from splineviz.partition import Cancelled

    big = pg_jobs.start_run(BIG)[0]
    streamed, checks = [], {"after": 0}

    def cancel() -> bool:
        if streamed:  # the page pressed Cancel once a frame was shown
            checks["after"] += 1
            return True
        return False

    spec = pr_jobs.ScheduleSpec(kind="gradual", epochs=40)
    with pytest.raises(Cancelled):
        pr_jobs.scheduled_run(big, pr_jobs.compare_specs(spec, "method:spline"), cancel=cancel,
                              stream=streamed.append, parallel=True)
    # each run stops at its next check (inside a trace or a training epoch): no frame after the one that was shown
    # but the other run's frame already in its trace, and a few checks, not an epoch's worth
    assert len(streamed) <= 2 and checks["after"] <= 6

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
from splineviz.web.runner import JobContext
from splineviz.web.state import PlaygroundConfig, build, config_dataset, train_config

torch.set_num_threads(1)
CONFIG = PlaygroundConfig(layers=2, width=8, epochs=20)


@pytest.fixture(scope="module")
def run():
    return pg_jobs.start_run(CONFIG)[0]


@pytest.fixture(scope="module")
def gradual(run):
    """A gradual node-pruning run beside the same net pruned by spline pruning, with what was streamed."""
    streamed: list = []
    spec = pr_jobs.ScheduleSpec(kind="gradual", method="node", sparsity=0.5, epochs=12, start=2, end=8, every=2)
    runs = pr_jobs.scheduled_run(run, pr_jobs.compare_specs(spec, "method:spline"), stream=streamed.append)
    return runs, streamed


def _predictions(frame: dict, arch: dict, points: np.ndarray) -> np.ndarray:
    model = build(arch)
    model.load_state_dict(decode_blob(frame["weights"], 2**20))
    with torch.no_grad():
        return model(torch.as_tensor(points, dtype=torch.float32)).argmax(1).numpy()


def test_gradual_run_records_every_snapshot_and_both_sides_of_each_event(gradual, run) -> None:
    runs, _ = gradual
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


def test_streamed_payloads_carry_the_newest_frames_of_the_final_run(gradual) -> None:
    runs, streamed = gradual
    assert len(streamed) == sum(r["n_frames"] for r in runs)  # one payload per new frame
    seen: dict[tuple[int, int], dict] = {}
    for payload in streamed:
        assert 1 <= len(payload) <= 2 and len(payload[-1]["frames"]) <= pr_jobs.TAIL
        assert all(not r["frames"] for r in payload[:-1])  # a finished run is not sent again
        for i, frame in payload[-1]["frames"].items():
            seen[(len(payload) - 1, i)] = frame
    assert all(seen[(k, i)] is runs[k]["frames"][i] for k, i in seen)
    assert {k for k, _ in seen} == {0, 1} and len(seen) == sum(r["n_frames"] for r in runs)
    first_live = streamed[0][-1]
    assert len(first_live["history"]) == 1 and first_live["n_frames"] == 1


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
    result = eb_jobs.earlybird_run(run, spec)
    ticket = result["ticket"]
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


def test_large_frames_thin_the_epochs_but_keep_every_pruning_step(run, monkeypatch) -> None:
    import dataclasses

    first = pg_jobs.start_run(CONFIG)[1]
    size = len(json.dumps(first))
    # room for a little over 4 frames of this size: every 3rd epoch of 12 gets one
    monkeypatch.setattr(pr_jobs, "LIMITS", dataclasses.replace(pr_jobs.LIMITS, run_frame_bytes=4 * size + 1000))
    spec = pr_jobs.ScheduleSpec(kind="oneshot", epochs=12, at=5, sparsity=0.5)
    (result,) = pr_jobs.scheduled_run(run, [spec])
    epochs = [f["stats"]["epoch"] for f in result["frames"].values()]
    (event,) = result["events"]
    assert epochs == [0, 3, 5, 5, 6, 9, 12]  # 3 = ceil(12 * size / (4 * size)); both sides of the step at 5
    assert (event["before"], event["after"]) == (2, 3)
    assert [h["n_regions"] is not None for h in result["history"]] == [e in (0, 3, 5, 6, 9, 12) for e in
                                                                         [h["epoch"] for h in result["history"]]]

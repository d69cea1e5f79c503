"""The app's server side without a browser: session state, jobs, uploads, URL state, app wiring, concurrency."""
from __future__ import annotations

import io
import os
import pickle
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
import torch

from splineviz.figures import unpack
from splineviz.nets import ModelLoadError, mlp
from splineviz.partition import PartitionBudgetError
from splineviz.web import jobs, session
from splineviz.web.codec import decode_blob, encode_blob
from splineviz.web.session import PlaygroundConfig, decode_run, start_run
from splineviz.web.shell import encode_search, parse_search

SMALL = PlaygroundConfig(layers=2, width=8, epochs=20)


def _saved(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


# -- configuration and session state ------------------------------------------------------------------------------
def test_config_from_strings_and_errors() -> None:
    config = PlaygroundConfig.from_dict({"dataset": "circles", "layers": "2", "lr": "0.1", "noise": None})
    assert (config.dataset, config.layers, config.lr, config.noise) == ("circles", 2, 0.1, 0.1)
    with pytest.raises(ValueError, match="unknown dataset"):
        PlaygroundConfig.from_dict({"dataset": "nope"})
    with pytest.raises(ValueError, match="layers"):
        PlaygroundConfig.from_dict({"layers": 40})


def test_start_run_gives_a_traced_first_frame_and_points() -> None:
    started = start_run(SMALL)
    frame = started["frames"][0]
    assert frame["epoch"] == 0 and frame["n_regions"] > 1 and len(frame["bnd"]) == 2
    assert len(unpack(started["points"]["x"])) == len(session.config_dataset(SMALL).x_train)
    config, model, result = decode_run(started["run"])
    assert config == SMALL and result.snapshots[-1].epoch == 0


def test_chunks_continue_the_same_run() -> None:
    started = start_run(SMALL)
    first = jobs.train_chunk(started["run"], 3)
    second = jobs.train_chunk(first["run"], 3)
    assert [f["epoch"] for f in first["frames"] + second["frames"]] == [1, 2, 3, 4, 5, 6]
    assert second["run"]["id"] == started["run"]["id"] and second["run"]["epoch"] == 6
    assert second["frames"][-1]["loss"] < started["frames"][0]["loss"]


def test_frame_stride_caps_the_number_of_frames() -> None:
    assert jobs.frame_stride(100) == 1 and jobs.frame_stride(1000) * jobs.MAX_FRAMES >= 1000
    run = start_run(PlaygroundConfig(layers=1, width=4, epochs=600))["run"]
    chunk = jobs.train_chunk(run, 9)
    assert [f["epoch"] for f in chunk["frames"]] == [4, 8, 9]  # every 4th epoch, plus the chunk's last


def test_overrides_change_the_learning_rate_from_the_next_chunk() -> None:
    run = start_run(SMALL)["run"]
    chunk = jobs.train_chunk(run, 1, {"lr": 0.3})
    assert decode_run(chunk["run"])[0].lr == 0.3


def test_encoded_state_refuses_code() -> None:
    assert decode_blob(encode_blob({"w": torch.ones(2)}))["w"].tolist() == [1.0, 1.0]

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    import base64
    with pytest.raises(pickle.UnpicklingError):
        decode_blob(base64.b64encode(_saved(Evil())).decode())


# -- uploads ------------------------------------------------------------------------------------------------------
def test_upload_of_a_valid_state_dict_becomes_the_session_model() -> None:
    model = mlp(2, (12, 6), 2, seed=3)
    started = jobs.upload_run(_saved(model.state_dict()), PlaygroundConfig())
    assert started["run"]["arch"]["hidden"] == [12, 6]
    _, loaded, _ = decode_run(started["run"])
    x = torch.randn(5, 2)
    assert torch.allclose(loaded(x), model.eval()(x))


def test_upload_of_safetensors() -> None:
    from safetensors.torch import save

    model = mlp(2, (5,), 2, seed=1)
    assert jobs.upload_run(save(model.state_dict()), PlaygroundConfig())["run"]["arch"]["hidden"] == [5]


@pytest.mark.parametrize("payload, error, match", [
    (b"\x00garbage bytes", ModelLoadError, "not a readable"),
    (_saved([1, 2, 3]), ModelLoadError, "not a state dict"),
    (_saved({"0.weight": torch.full((4, 2), float("nan")), "0.bias": torch.zeros(4),
             "2.weight": torch.zeros(2, 4), "2.bias": torch.zeros(2)}), ModelLoadError, "NaN"),
    (_saved({"conv.weight": torch.zeros(4, 1, 3, 3)}), ModelLoadError, "cannot infer"),
    (_saved(mlp(3, (4,), 2).state_dict()), jobs.UploadError, "3 inputs"),
    (_saved(mlp(2, (4,), 5).state_dict()), jobs.UploadError, "5 outputs"),
])
def test_bad_uploads_fail_with_clear_errors(payload: bytes, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        jobs.upload_run(payload, PlaygroundConfig())


def test_networks_over_the_region_budget_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session, "BUDGET", 20)
    with pytest.raises(PartitionBudgetError):
        jobs.upload_run(_saved(mlp(2, (64, 64), 2).state_dict()), PlaygroundConfig())


# -- pruning, early-bird, MNIST, experiments ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_run() -> dict:
    run = start_run(SMALL)["run"]
    return jobs.train_chunk(run, 20)["run"]


@pytest.mark.parametrize("method", ["node", "weight", "spline"])
def test_prune_view_removes_boundaries(trained_run: dict, method: str) -> None:
    view = jobs.prune_view(trained_run, method, 0.5)
    assert view["after"]["n_regions"] < view["before"]["n_regions"]
    assert 0 <= view["acc_after"] <= 1 and view["acc_before"] > 0.8
    assert view["achieved"] == pytest.approx(0.5, abs=0.1)


def test_finetune_and_sweep(trained_run: dict) -> None:
    tuned = jobs.finetune(trained_run, "node", 0.5, 5)
    assert tuned["acc_after"] >= tuned["acc_pruned"] - 0.05
    messages: list[str] = []
    curves = jobs.sparsity_sweep(trained_run, [0.0, 0.75], 2, ["node", "weight"],
                                 progress=lambda f, m: messages.append(m))
    assert set(curves) == {"node", "weight"} and [s for s, _ in curves["node"]] == [0.0, 0.75]
    assert messages[-1] == "done"


def test_earlybird_finds_a_ticket_on_an_easy_problem() -> None:
    result = jobs.earlybird(SMALL, 25, threshold=0.2)
    matrix = np.array(result["matrix"])
    assert matrix.shape == (26, 26) and np.allclose(matrix, matrix.T)
    assert result["ticket"] is not None and result["ticket"] >= 3
    assert result["frames"][0]["epoch"] == result["ticket"]


def test_mnist_slice_and_hover_readout() -> None:
    model = jobs.mnist_train("mlp", 1)
    assert model["accuracy"] > 0.5
    a, b = 0, 3
    result = jobs.mnist_slice("mlp", model["blob"], a, b)
    assert result["labels"] == [jobs.mnist_image(a)[1], jobs.mnist_image(b)[1]]
    assert result["frame"]["bounds"] == [0.0, 1.0, 0.0, 1.0] and len(result["grid"]) == 60
    point = jobs.mnist_point("mlp", model["blob"], a, b, 1.0, 0.0)
    assert np.allclose(point["image"].ravel(), jobs.mnist_image(a)[0]) and 0 <= point["predicted"] <= 9


def test_experiment_results_are_returned_inline(tmp_path) -> None:
    result = jobs.run_experiment("kmeans", quick=True, root=str(tmp_path))
    assert result["summary"] and result["tables"]
    assert all(f["png"] for f in result["figures"])


# -- URL state and app wiring ---------------------------------------------------------------------------------------
def test_url_state_roundtrip_keeps_only_changes() -> None:
    defaults = {"dataset": "moons", "layers": 3, "lr": 0.03}
    query = encode_search({"dataset": "circles", "layers": 3, "lr": 0.1}, defaults)
    assert query == "?dataset=circles&lr=0.1"
    assert parse_search(query + "&layers=oops&bogus=1", defaults) == {"dataset": "circles", "lr": 0.1}
    assert encode_search(defaults, defaults) == ""


def test_app_builds_and_serves(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPLINEVIZ_CACHE_DIR", str(tmp_path))
    import app as app_module

    client = app_module.server.test_client()
    assert client.get("/").status_code == 200 and client.get("/mnist").status_code == 200
    layout = client.get("/_dash-layout").get_json()
    ids = str(layout)
    for page in ("page-playground", "page-pruning", "page-earlybird", "page-mnist", "page-experiments"):
        assert page in ids


def test_celery_is_chosen_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from dash import CeleryManager, DiskcacheManager

    from splineviz.web.manager import make_manager

    monkeypatch.delenv("SPLINEVIZ_CELERY_BROKER", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert isinstance(make_manager(), DiskcacheManager)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    assert isinstance(make_manager(), CeleryManager)


# -- concurrency: sessions never share state --------------------------------------------------------------------------
def _session_trajectory(config: PlaygroundConfig) -> list[tuple[int, int, float]]:
    run = start_run(config)["run"]
    frames = []
    for _ in range(3):
        chunk = jobs.train_chunk(run, 2)
        run = chunk["run"]
        frames += chunk["frames"]
    return [(f["epoch"], f["n_regions"], round(f["loss"], 6)) for f in frames]


def test_simultaneous_sessions_do_not_mix() -> None:
    """Six sessions at once, in worker processes as the app runs its jobs, give exactly the solo results.

    Processes, not threads: model initialisation and training seed torch's global RNG (nets/train), so
    the app never runs two of them in one process at the same time (single-threaded server, job processes).
    """
    configs = [PlaygroundConfig(dataset="moons", layers=2, width=8),
               PlaygroundConfig(dataset="circles", layers=1, width=12, lr=0.1),
               PlaygroundConfig(dataset="xor", layers=3, width=6, seed=4)]
    alone = [_session_trajectory(c) for c in configs]
    with ProcessPoolExecutor(len(configs), mp_context=multiprocessing.get_context("fork")) as pool:
        together = list(pool.map(_session_trajectory, configs * 2))
    assert together == alone * 2
    assert len({tuple(t) for t in alone}) == len(configs)

"""Bounds before work: every size, count and value a request can carry is checked before anything is built.

Limits are computed by hand here (widths, parameter counts, base64 lengths, zip sizes), not read back from
the code under test. Quotas and heartbeats are tested on both registry backends (disk, and Redis when a
redis-server binary is installed).
"""
from __future__ import annotations

import base64
import io
import shutil
import subprocess
import time
import zipfile

import pytest
import torch

from harness import free_port, wait_for
from splineviz.nets import (ModelLimits, ModelLoadError, ModelTooLargeError, architecture_size, build_model,
                            check_architecture, load_model, mlp)
from splineviz.partition import Cancelled
from splineviz.web import quota, tracing
from splineviz.web.codec import BlobError, decode_blob, encode_blob
from splineviz.web.jobs import mnist as mn_jobs, playground as pg_jobs
from splineviz.web.params import LIMITS, MNIST_TEST_IMAGES, URL_PARAMS, Limits, Mnist, Param, parse_widths
from splineviz.web.runner import JobContext, QuotaError, user_message
from splineviz.web.shell import parse_search
from splineviz.web.state import PlaygroundConfig, Run, train_config
from splineviz.web.wiring import fill, run_job

MIB = 2**20
SESSION = "0123456789abcdef0123456789abcdef"


def _saved(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _deflated(raw: bytes) -> bytes:
    """The same torch.save zip with every member deflate-compressed (torch reads those too)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))
    return out.getvalue()


@pytest.fixture
def no_torch_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail if anything reaches torch.load: what is refused must be refused before it is unpacked."""
    def refuse(*args, **kwargs):
        raise AssertionError("torch.load was called")

    monkeypatch.setattr(torch, "load", refuse)


# -- the parameter table ----------------------------------------------------------------------------------------
def test_param_clean_clamps_rounds_and_falls_back() -> None:
    count = Param("x", "x", 5, 1, 10, 1)
    assert [count.clean(v) for v in (0, 3.6, "7", 11, 10**12, "oops", None, float("nan"), float("inf"))] == \
        [1, 4, 7, 10, 10, 5, 5, 5, 5]
    rate = Param("r", "r", 0.03, choices={0.01: "", 0.03: "", 0.1: ""})
    assert [rate.clean(v) for v in (0.0, 0.015, 0.05, 0.07, 5)] == [0.01, 0.01, 0.03, 0.1, 0.1]
    assert Param("w", "w", 2, choices={2: "", 4: ""}).clean(3) == 2  # a tie goes to the smaller choice
    name = Param("n", "n", "a", choices={"a": "A", "b": "B"})
    assert [name.clean(v) for v in ("b", "c", None, 3)] == ["b", "a", "a", "a"]


def test_typed_widths_are_clamped_to_one_to_64_by_hand() -> None:
    """A width of 0 would build a layer with no units: it becomes 1, as 500 becomes 64."""
    assert parse_widths("16, 0, 500") == "16,1,64"
    assert parse_widths("8 8 8 8 8 8 8 8") == "8,8,8,8,8,8" and parse_widths("none") == ""


def test_the_playground_s_l1_and_l2_reach_their_own_penalties() -> None:
    config = train_config(PlaygroundConfig(l1=0.001, l2=0.01))
    assert (config.l1, config.weight_decay) == (0.001, 0.01)


def test_every_url_param_default_is_its_own_clean_value() -> None:
    for key, param in URL_PARAMS.items():
        assert param.clean(param.default) == param.default, key


def test_bad_url_values_are_clamped() -> None:
    """D5: ?epochs=1000000000 asks for at most the Epochs control's 2000."""
    parsed = parse_search("?epochs=1000000000&noise=-1&layers=oops&width=1000&a=5000&extent=0&bogus=1")
    assert parsed == {"epochs": 2000, "noise": 0.0, "layers": 3, "width": 64, "a": 999, "extent": 0.1}


def test_mnist_index_limits_match_the_data() -> None:
    labels = mn_jobs.mnist_data().y_test
    assert len(labels) == MNIST_TEST_IMAGES == Mnist.INDEX_A.hi + 1
    assert int(labels[Mnist.INDEX_A.default]) == 6 and 6 not in labels[: Mnist.INDEX_A.default].tolist()
    assert int(labels[Mnist.INDEX_B.default]) == 9 and 9 not in labels[: Mnist.INDEX_B.default].tolist()


@pytest.mark.parametrize("index", [-1, 1000, 10**9, "x", None])
def test_out_of_range_mnist_index_has_a_clear_message(index) -> None:
    """D9: no IndexError, a message naming the valid indices."""
    with pytest.raises(ValueError, match="0 to 999"):
        mn_jobs.mnist_image(index)


# -- model sizes ------------------------------------------------------------------------------------------------
def test_architecture_size_by_hand() -> None:
    assert architecture_size({"type": "mlp", "in_features": 2, "hidden": [16, 20000], "out_features": 2}) == \
        ([2, 16, 20000, 2], 2, 2 * 16 + 16 + 16 * 20000 + 20000 + 20000 * 2 + 2)
    widths, depth, params = architecture_size({"type": "paper_cnn"})
    convs = 16 * 21 * 21 + 16 + 16 * 16 * 25 + 16
    assert (depth, params) == (2, convs + 2 * 65 + 256 * 10 + 10)
    assert params == sum(t.numel() for t in build_model({"type": "paper_cnn"}).state_dict().values())
    assert architecture_size({"type": "mlp"})[2] == sum(p.numel() for p in mlp().parameters())


@pytest.mark.parametrize("arch, match", [
    ({"type": "mlp", "hidden": [12000, 12000]}, "12,000 units"),  # D7: 144M parameters, never built
    ({"type": "mlp", "hidden": [4] * 13}, "13 hidden layers"),
    ({"type": "mlp", "hidden": [548, 548]}, "303,594 parameters"),  # 2*548+548 + 548*548+548 + 548*2+2
    ({"type": "paper_cnn", "n_classes": 1025}, "1,025 units"),
])
def test_architectures_over_the_app_limits_are_refused(arch: dict, match: str) -> None:
    with pytest.raises(ModelTooLargeError, match=match):
        build_model(arch, LIMITS.model)


def test_architectures_at_the_limits_are_built() -> None:
    hidden = [512, 512]  # 2*512+512 + 512*512+512 + 512*2+2 = 265,218
    assert sum(p.numel() for p in build_model({"type": "mlp", "hidden": hidden}, LIMITS.model).parameters()) == \
        265_218
    assert len(build_model({"type": "mlp", "hidden": [2] * 12}, LIMITS.model)) == 25


def test_each_limit_admits_its_own_value_and_refuses_one_more() -> None:
    limits = ModelLimits(max_width=16, max_hidden_layers=3, max_params=2 * 16 + 16 + 16 * 2 + 2)  # 82
    check_architecture({"type": "mlp", "hidden": [16]}, limits)  # width 16, 1 layer, 82 parameters: all at a limit
    check_architecture({"type": "mlp", "hidden": [1, 1, 1]}, limits)
    for arch, match in (({"hidden": [17]}, "17 units"), ({"hidden": [1, 1, 1, 1]}, "4 hidden layers"),
                        ({"in_features": 3, "hidden": [16]}, "98 parameters")):
        with pytest.raises(ModelTooLargeError, match=match):
            check_architecture({"type": "mlp", **arch}, limits)


def test_malformed_architectures_are_value_errors() -> None:
    for arch in ({"type": "mlp", "hidden": "abc"}, {"type": "mlp", "hidden": [2, -1]},
                 {"type": "mlp", "hidden": [True]}, {"type": "nope"}):
        with pytest.raises(ValueError):
            build_model(arch, LIMITS.model)


def test_the_d1_upload_is_refused_before_building(monkeypatch: pytest.MonkeyPatch) -> None:
    """D1: a 1.5 MB state dict of mlp(2, (16, 20000), 2): the widths are read from the tensor shapes and refused."""
    raw = _saved(mlp(2, (16, 20000), 2).state_dict())
    built = []
    monkeypatch.setattr("splineviz.nets.mlp", lambda *a, **k: built.append(a) or mlp(*a, **k))
    with pytest.raises(ModelTooLargeError, match="20,000 units"):
        pg_jobs.upload_run(raw, PlaygroundConfig())
    assert built == []


# -- bytes -------------------------------------------------------------------------------------------------------
def test_files_over_the_byte_limit_are_refused(no_torch_load, tmp_path) -> None:
    raw = _saved({"0.weight": torch.zeros(300), "0.bias": torch.zeros(2)})
    with pytest.raises(ModelTooLargeError, match="over the limit"):
        load_model(raw, max_bytes=len(raw) - 1)
    path = tmp_path / "big.pt"
    path.write_bytes(b"\0" * (3 * MIB))
    with pytest.raises(ModelTooLargeError, match="big.pt is 3.0 MiB, over the limit of 1.0 MiB"):
        load_model(path, max_bytes=MIB)


def test_a_file_of_exactly_the_byte_limit_is_read(tmp_path) -> None:
    model = mlp(2, (4,), 2, seed=1)
    path = tmp_path / "exact.pt"
    path.write_bytes(_saved(model.state_dict()))
    size = path.stat().st_size
    assert torch.equal(load_model(path, max_bytes=size)[0].weight, model[0].weight)  # the limit is inclusive
    assert torch.equal(load_model(path.read_bytes(), max_bytes=size)[0].weight, model[0].weight)


def test_a_zip_bomb_is_refused_before_decompressing(no_torch_load) -> None:
    """D6: a deflated torch.save of a 200 MB tensor is a few hundred kB; its declared size gives it away."""
    bomb = _deflated(_saved({"0.weight": torch.zeros(50_000_000), "0.bias": torch.zeros(2)}))
    assert len(bomb) < 400_000
    with pytest.raises(ModelTooLargeError, match="unpacks to 190.7 MiB"):
        load_model(bomb, limits=LIMITS.model, max_bytes=LIMITS.model_bytes)
    with pytest.raises(ModelTooLargeError):
        pg_jobs.upload_run(bomb, PlaygroundConfig())
    with pytest.raises(BlobError):
        decode_blob(base64.b64encode(bomb).decode(), LIMITS.model_bytes)


def test_a_small_deflated_file_is_still_read() -> None:
    model = mlp(2, (4,), 2, seed=2)
    loaded = load_model(_deflated(_saved(model.state_dict())), max_bytes=MIB)
    assert torch.equal(loaded[0].weight, model[0].weight)


def test_files_in_torchs_pre_zip_format_are_refused_when_bounded(no_torch_load, tmp_path) -> None:
    buffer = io.BytesIO()
    torch.save(mlp(2, (4,), 2).state_dict(), buffer, _use_new_zipfile_serialization=False)
    with pytest.raises(ModelLoadError, match="zip format"):
        load_model(buffer.getvalue(), max_bytes=MIB)


def test_blobs_from_the_browser_are_bounded() -> None:
    blob = encode_blob({"w": torch.zeros(100)})
    assert decode_blob(blob, MIB)["w"].shape == (100,)
    limit = 200
    assert len("x" * (4 * ((limit + 2) // 3) + 1)) == 269  # one character past what 200 bytes encode to
    with pytest.raises(BlobError, match="over the limit of 200 bytes"):
        decode_blob("A" * 269, limit)
    for bad in (None, 3, "not base64!", base64.b64encode(b"plain bytes").decode()):
        with pytest.raises(BlobError):
            decode_blob(bad, MIB)


def test_upload_text_over_the_limit_is_refused_before_decoding() -> None:
    over = "data:application/octet-stream;base64," + "A" * LIMITS.encoded_model_chars
    with pytest.raises(pg_jobs.UploadError, match="over the limit of 8 MiB"):
        pg_jobs.read_upload(over)
    assert pg_jobs.read_upload("data:x;base64," + base64.b64encode(b"abc").decode()) == b"abc"


def test_runs_read_back_from_the_browser_are_checked() -> None:
    run = pg_jobs.start_run(PlaygroundConfig(layers=1, width=4))[0]
    data = run.to_json()
    with pytest.raises(ModelTooLargeError):  # D7: a tampered architecture is refused before anything is built
        Run.from_json({**data, "arch": {"type": "mlp", "in_features": 2, "hidden": [12000, 12000], "out_features": 2}})
    with pytest.raises(ModelLoadError, match="no model yet"):
        Run.from_json(None)
    odd = Run.from_json({**data, "config": {**data["config"], "epochs": 10**9, "lr": 99}, "epoch": "x"})
    assert (odd.config.epochs, odd.config.lr, odd.epoch) == (2000, 0.3, 0)
    assert Run.from_json({**data, "epoch": -3}).epoch == 0  # a tampered epoch cannot go below the start
    with pytest.raises(ModelLoadError):  # weights of another shape
        Run.from_json({**data, "arch": {**data["arch"], "hidden": [5]}}).decode()


def test_chunk_epochs_are_clamped() -> None:
    run = pg_jobs.start_run(PlaygroundConfig(layers=1, width=4, epochs=5))[0]
    _, frames = pg_jobs.train_chunk(run, 0)  # asks for nothing: trains the minimum of one epoch
    assert [f["stats"]["epoch"] for f in frames] == [1]


def test_every_web_trace_uses_the_app_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    real = tracing.trace
    monkeypatch.setattr(tracing, "trace", lambda *a, **k: seen.append(k) or real(*a, **k))
    run = pg_jobs.start_run(PlaygroundConfig(layers=1, width=4))[0]
    pg_jobs.geojson(run, encode_blob(run.model().state_dict()))
    assert seen and all(k["budget"] == 400_000 and k["max_bytes"] == 1024 * MIB for k in seen)


def test_the_mnist_slice_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    import splineviz.slices as slices

    real = slices.trace
    monkeypatch.setattr(slices, "trace", lambda *a, **k: seen.append(k) or real(*a, **k))
    model = mn_jobs.mnist_train("mlp", 1)
    result = mn_jobs.mnist_slice("mlp", model["blob"], 0, 3, extent=50)  # extent clamped to the slider's 2
    assert result["frame"]["bounds"] == [0.0, 2.0, 0.0, 2.0]
    assert seen[-1]["budget"] == 400_000 and seen[-1]["max_bytes"] == 1024 * MIB
    with pytest.raises(ValueError, match="unknown MNIST network"):
        mn_jobs.mnist_slice("vgg", model["blob"], 0, 3)


# -- requests ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    from splineviz.web.app import create_app

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPLINEVIZ_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        patch.delenv("SPLINEVIZ_CELERY_BROKER", raising=False)
        patch.delenv("REDIS_URL", raising=False)
        quota.registry.cache_clear()
        yield create_app().server.test_client()
    quota.registry.cache_clear()


def test_requests_over_16_mib_are_refused(client) -> None:
    assert LIMITS.request_bytes == 16 * MIB
    response = client.post("/_dash-update-component", data=b"x" * (16 * MIB + 1),
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 413


def test_heartbeat_routes_record_and_forget_a_tab(client) -> None:
    assert client.post(quota.BEAT_PATH, data=SESSION).status_code == 204
    seen = quota.registry().last_seen(SESSION)
    assert seen is not None and abs(seen - time.time()) < 60
    assert client.post(quota.BEAT_PATH, data="../../etc").status_code == 204  # ignored
    assert client.post(quota.BYE_PATH, data=SESSION).status_code == 204
    assert quota.registry().last_seen(SESSION) is None


# -- quotas, heartbeats, timeouts, on both registries ---------------------------------------------------------------
@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory):
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("needs redis-server")
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--save", "", "--appendonly", "no", "--dir",
                             str(tmp_path_factory.mktemp("redis"))], stdout=subprocess.DEVNULL)
    import redis

    client = redis.Redis(port=port)

    def up() -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    wait_for(up, 20, message="redis-server")
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(params=["disk", "redis"])
def registry(request: pytest.FixtureRequest, tmp_path):
    if request.param == "disk":
        return quota.DiskRegistry(tmp_path / "sessions")
    shared = quota.RedisRegistry(request.getfixturevalue("redis_url"))
    shared.redis.flushdb()
    return shared


def test_job_slots_per_session(registry) -> None:
    assert registry.acquire(SESSION, "a", 2, 60) and registry.acquire(SESSION, "b", 2, 60)
    assert not registry.acquire(SESSION, "c", 2, 60)
    assert registry.acquire("f" * 32, "c", 2, 60)  # another tab has its own slots
    registry.release(SESSION, "a")
    assert registry.acquire(SESSION, "c", 2, 60)


def test_a_slot_whose_job_died_frees_itself(registry) -> None:
    assert registry.acquire(SESSION, "killed", 1, 0.2)
    assert not registry.acquire(SESSION, "next", 1, 60)
    wait_for(lambda: registry.acquire(SESSION, "next", 1, 60), 10, message="the lease to expire")


def test_job_context_quota_and_release(registry) -> None:
    limits = Limits(jobs_per_session=1)
    with JobContext.start(SESSION, None, limits, registry):
        with pytest.raises(QuotaError, match="already runs 1 job,"):
            with JobContext.start(SESSION, None, limits, registry):
                pass
    with JobContext.start(SESSION, None, limits, registry):  # the slot was given back
        pass
    with pytest.raises(QuotaError, match="no session id"):
        with JobContext.start("forged id", None, limits, registry):
            pass


def test_jobs_stop_when_their_tab_leaves(registry) -> None:
    sent = []
    with JobContext.start(SESSION, sent.append, Limits(), registry) as ctx:
        ctx.progress(0.25, "working")
        ctx.beat()
        assert not ctx.cancel() and sent[-1][:2] == ("25.0", "working")
        registry.bye(SESSION)
        ctx.beat()
        assert ctx.cancel() and "tab was closed" in user_message(Cancelled("x"), ctx)


def test_jobs_stop_when_their_tab_is_silent(registry) -> None:
    with JobContext.start(SESSION, None, Limits(heartbeat_timeout_s=-1.0), registry) as ctx:
        ctx.beat()
        assert ctx.cancel()


def test_jobs_stop_at_the_timeout(registry) -> None:
    with JobContext.start(SESSION, None, Limits(job_timeout_s=0), registry) as ctx:
        assert ctx.cancel() and "0 minutes per job" in user_message(Cancelled("x"), ctx)


# -- the job wrapper's error path -----------------------------------------------------------------------------------
def test_every_job_outcome_reaches_the_page(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dash import Output, no_update

    monkeypatch.setattr(quota, "registry", lambda: quota.DiskRegistry(tmp_path / "sessions"))
    outputs = {"figure": Output("g", "figure"), "done": Output("g-done", "data")}

    ok = run_job(lambda ctx, x: {"figure": x}, outputs, "Drawing", SESSION, None, {"x": 3})
    assert ok["figure"] == 3 and ok["done"]["ok"] and ok["done"]["error"] is None

    def broken(ctx, x):
        raise ZeroDivisionError("boom")

    failed = run_job(broken, outputs, "Drawing", SESSION, None, {"x": 3})
    assert failed["figure"] is no_update and failed["done"]["ok"] is False
    assert failed["done"]["error"].startswith("Drawing failed: unexpected ZeroDivisionError: boom")

    refused = run_job(lambda ctx: {}, outputs, "Drawing", "not a session", None, {})
    assert "Drawing failed: this page has no session id" in refused["done"]["error"]

    def cancelled(ctx):
        if ctx.cancel():
            raise Cancelled("training cancelled")

    stopped = run_job(cancelled, outputs, "Training", SESSION, None, {}, Limits(job_timeout_s=0))
    assert stopped["done"]["error"] == "Training failed: stopped because it ran past the limit of 0 minutes per job"


def test_fill_names_every_output() -> None:
    from dash import Output, no_update

    outputs = {"a": Output("a", "children"), "b": Output("b", "children")}
    assert fill(outputs, {"a": 1}) == {"a": 1, "b": no_update}
    with pytest.raises(KeyError, match="not outputs"):
        fill(outputs, {"c": 1})


def test_jobs_the_manager_reports_lost_carry_its_reason() -> None:
    from splineviz.web.manager import JOB_LOST
    from splineviz.web.wiring import lost_outcome

    error = RuntimeError(f"An error occurred inside a background callback: {JOB_LOST}: its process ended\ntraceback")
    lost = lost_outcome("Training", error)
    assert (lost["ok"], lost["lost"]) == (False, "its process ended")
    assert lost["error"] == "Training was lost: its process ended."
    other = lost_outcome("Training", RuntimeError("boom"))
    assert (other["lost"], other["error"]) == (None, "Training failed: boom")

"""The app's server side without a browser: session state, jobs, uploads, URL state, app wiring, concurrency.

The bounds on everything a request can ask for are tested in test_bounds.py.
"""
from __future__ import annotations

import base64
import json
import io
import os
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np
import pytest
import torch

from splineviz.frame import Frame, unpack
from splineviz.nets import ModelLoadError, mlp
from splineviz.web.codec import BlobError, decode_blob, encode_blob
from splineviz.web.jobs import earlybird as eb_jobs, experiments as ex_jobs, mnist as mn_jobs, \
    playground as pg_jobs, pruning as pr_jobs
from splineviz.web.pages.playground import session_payload
from splineviz.web.shell import encode_search, parse_search
from splineviz.web import tracing
from dash.html import Div as html_div
from splineviz.web.state import PlaygroundConfig, Run, config_dataset

SMALL = PlaygroundConfig(layers=2, width=8, epochs=20)
MIB = 2**20


def start_run(config: PlaygroundConfig) -> Run:
    return pg_jobs.start_run(config)[0]


def _saved(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


# -- configuration and session state ------------------------------------------------------------------------------
def test_config_from_strings_and_out_of_range_values() -> None:
    config = PlaygroundConfig.from_dict({"dataset": "circles", "layers": "2", "lr": "0.1", "noise": None})
    assert (config.dataset, config.layers, config.lr, config.noise) == ("circles", 2, 0.1, 0.1)
    # unknown names fall back to the default, numbers are clamped to the controls' ranges
    odd = PlaygroundConfig.from_dict({"dataset": "nope", "layers": 40, "noise": "0.7", "epochs": 10**9, "seed": -5,
                                      "width": 18, "lr": 0.05, "batch_size": 0})
    assert (odd.dataset, odd.layers, odd.noise, odd.epochs, odd.seed) == ("moons", 6, 0.5, 2000, 0)
    assert (odd.width, odd.lr, odd.batch_size) == (16, 0.03, 1)  # nearest offered width / rate (ties: smaller)


def test_start_run_gives_a_traced_first_frame_and_points() -> None:
    run, frame = pg_jobs.start_run(SMALL)
    assert frame["stats"]["epoch"] == 0 and frame["n_regions"] > 1 and len(frame["lines"]) == 2
    assert frame["stats"]["trace_s"] > 0
    typed = Frame.from_json(frame)  # the frame the page gets is the typed Frame's JSON, plus the model's weights
    assert typed.n_regions == frame["n_regions"] and typed.n_cells >= typed.n_regions
    model = mlp(2, (8, 8), 2)
    model.load_state_dict(decode_blob(frame["weights"], MIB))
    x = torch.randn(5, 2)
    assert torch.allclose(model(x), run.model()(x))
    payload = session_payload(run, frame, config_dataset(SMALL))
    assert len(unpack(payload["data"]["points"]["x"])) == len(config_dataset(SMALL).x_train)
    assert payload["layout"]["xaxis"]["range"] == list(config_dataset(SMALL).bounds[:2])
    assert payload["estimate"] is None  # a small run starts without asking
    again = Run.from_json(payload["run"])
    assert again.config == SMALL and again.decode()[1].snapshots[-1].epoch == 0


def test_a_large_run_is_estimated_before_it_starts() -> None:
    """Thresholds by hand: 10,000 regions, or 60 s of tracing over the run's frames (150 at most)."""
    _, frame = pg_jobs.start_run(SMALL)
    small = {**frame, "n_regions": 9_999, "stats": {**frame["stats"], "trace_s": 0.5}}
    assert pg_jobs.run_estimate(PlaygroundConfig(epochs=100), small) is None  # 100 frames x 0.5 s = 50 s
    slow = pg_jobs.run_estimate(PlaygroundConfig(epochs=130), small)  # 130 frames x 0.5 s = 65 s
    assert slow["frames"] == 130 and slow["seconds"] == pytest.approx(65.0)
    assert "9,999 regions" in slow["message"] and "130 epochs (130 frames)" in slow["message"]
    big = pg_jobs.run_estimate(PlaygroundConfig(epochs=600), {**small, "n_regions": 12_050})
    assert big["frames"] == 150 and big["seconds"] == pytest.approx(75.0)  # every 4th epoch is kept
    assert "12,050 regions" in big["message"] and "at least 75 s" in big["message"]


def test_chunks_continue_the_same_run() -> None:
    run = start_run(SMALL)
    first, frames1 = pg_jobs.train_chunk(run, 3)
    second, frames2 = pg_jobs.train_chunk(first, 3)
    assert [f["stats"]["epoch"] for f in frames1 + frames2] == [1, 2, 3, 4, 5, 6]
    assert second.id == run.id and second.epoch == 6
    assert frames2[-1]["stats"]["loss"] < pg_jobs.start_run(SMALL)[1]["stats"]["loss"]


def test_two_chunks_train_exactly_like_one_and_frames_carry_the_runs_statistics() -> None:
    """The optimizer's moments travel in the run: 1 + 1 epochs give the weights of 2 epochs in one chunk."""
    run = start_run(PlaygroundConfig(layers=1, width=4, epochs=20, batch_size=128))
    whole, _ = pg_jobs.train_chunk(run, 2)
    half, _ = pg_jobs.train_chunk(run, 1)
    both, frames = pg_jobs.train_chunk(half, 1)
    a, b = whole.model().state_dict(), both.model().state_dict()
    assert all(torch.allclose(a[k], b[k], rtol=0, atol=1e-6) for k in a)
    last, stats = both.decode()[1].snapshots[-1], frames[-1]["stats"]
    assert (stats["epoch"], stats["loss"], stats["train_metric"]) == \
        (2, pytest.approx(last.train_loss), pytest.approx(last.train_metric))
    assert stats["loss"] != pytest.approx(stats["train_metric"])  # a loss, not the accuracy


def test_the_browsers_points_are_the_training_data() -> None:
    data = config_dataset(SMALL)
    packed = tracing.points(data)
    assert np.array_equal(unpack(packed["x"]), data.x_train[:, 0].astype(np.float32))
    assert np.array_equal(unpack(packed["y"]), data.x_train[:, 1].astype(np.float32))
    assert np.array_equal(unpack(packed["c"]), data.y_train)


def test_a_run_read_back_keeps_an_id_of_at_most_64_characters() -> None:
    data = start_run(SMALL).to_json()
    assert Run.from_json({**data, "id": "x" * 100}).id == "x" * 64
    assert Run.from_json(data).id == data["id"]


def test_frame_stride_caps_the_number_of_frames() -> None:
    assert pg_jobs.frame_stride(100) == 1 and pg_jobs.frame_stride(1000) * pg_jobs.MAX_FRAMES >= 1000
    run = start_run(PlaygroundConfig(layers=1, width=4, epochs=600))
    _, frames = pg_jobs.train_chunk(run, 9)
    assert [f["stats"]["epoch"] for f in frames] == [4, 8, 9]  # every 4th epoch, plus the chunk's last


def test_overrides_change_the_learning_rate_from_the_next_chunk() -> None:
    run = start_run(SMALL)
    chunk, _ = pg_jobs.train_chunk(run, 1, {"lr": 0.3})
    assert chunk.config.lr == 0.3


def test_encoded_state_refuses_code(tmp_path) -> None:
    assert decode_blob(encode_blob({"w": torch.ones(2)}), MIB)["w"].tolist() == [1.0, 1.0]
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    import base64
    with pytest.raises(BlobError):
        decode_blob(base64.b64encode(_saved(Evil())).decode(), MIB)
    assert not marker.exists()


# -- uploads ------------------------------------------------------------------------------------------------------
def test_upload_of_a_valid_state_dict_becomes_the_session_model() -> None:
    model = mlp(2, (12, 6), 2, seed=3)
    run, frame, shape = pg_jobs.upload_run(_saved(model.state_dict()), PlaygroundConfig())
    assert run.arch["hidden"] == [12, 6] and shape == "2-12-6-2 ReLU" and frame["stats"]["epoch"] == 0
    x = torch.randn(5, 2)
    assert torch.allclose(run.model()(x), model.eval()(x))


def test_upload_of_safetensors() -> None:
    from safetensors.torch import save

    model = mlp(2, (5,), 2, seed=1)
    assert pg_jobs.upload_run(save(model.state_dict()), PlaygroundConfig())[0].arch["hidden"] == [5]


def test_upload_without_hidden_layers_is_drawn() -> None:
    """D8: Linear(2, 2) alone is one region cut by one decision line, not an error."""
    model = mlp(2, (), 2, seed=0)
    run, frame, shape = pg_jobs.upload_run(_saved(model.state_dict()), PlaygroundConfig())
    assert shape == "2-2 linear" and run.arch["hidden"] == []
    assert frame["n_regions"] == 1 and frame["lines"] == [] and len(unpack(frame["decision"])) == 4  # 1 segment
    trained, frames = pg_jobs.train_chunk(run, 2)
    assert trained.epoch == 2 and [f["n_regions"] for f in frames] == [1, 1]


@pytest.mark.parametrize("payload, error, match", [
    (b"\x00garbage bytes", ModelLoadError, "not a readable"),
    (_saved([1, 2, 3]), ModelLoadError, "not a state dict"),
    (_saved({"0.weight": torch.full((4, 2), float("nan")), "0.bias": torch.zeros(4),
             "2.weight": torch.zeros(2, 4), "2.bias": torch.zeros(2)}), ModelLoadError, "NaN"),
    (_saved({"conv.weight": torch.zeros(4, 1, 3, 3)}), ModelLoadError, "convolutions need an architecture"),
    (_saved(mlp(3, (4,), 2).state_dict()), pg_jobs.UploadError, "3 inputs"),
    (_saved(mlp(2, (4,), 5).state_dict()), pg_jobs.UploadError, "5 outputs"),
])
def test_bad_uploads_fail_with_clear_errors(payload: bytes, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        pg_jobs.upload_run(payload, PlaygroundConfig())


# -- pruning, early-bird, MNIST, experiments ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_run() -> Run:
    return pg_jobs.train_chunk(start_run(SMALL), 20)[0]


@pytest.mark.parametrize("method", ["node", "weight", "spline"])
def test_prune_view_removes_boundaries(trained_run: Run, method: str) -> None:
    view = pr_jobs.prune_view(trained_run, method, 0.5)
    assert view["after"]["n_regions"] < view["before"]["n_regions"]
    assert 0 <= view["acc_after"] <= 1 and view["acc_before"] > 0.8
    assert view["achieved"] == pytest.approx(0.5, abs=0.1)


def test_prune_view_shows_spline_groups_and_the_exact_change(trained_run: Run) -> None:
    """Fig. 4 on the Pruning page: a unit that is twice another (same line, same function up to a positive factor)
    is the group spline pruning merges, and folding it changes no class anywhere; node pruning changes some."""
    model, result = trained_run.decode()
    first, second = model[0], model[2]
    with torch.no_grad():  # unit i becomes 2 x unit j and takes over j's outgoing weights, halved (i: the least used)
        norms = second.weight.norm(dim=0)
        i, j = int(norms.argmin()), int(norms.argmax())
        first.weight[i], first.bias[i] = 2 * first.weight[j], 2 * first.bias[j]
        second.weight[:, i], second.weight[:, j] = second.weight[:, j] / 2, 0.0
    result.model = model
    doubled = Run.encode(trained_run.config, trained_run.arch, result)
    view = pr_jobs.prune_view(doubled, "spline", 1 / 16)  # one of the 2 x 8 hidden units
    assert view["acc_before"] > 0.8
    (group,), deeper = view["groups"]
    assert sorted(group) == sorted([i + 1, j + 1]) and deeper == []  # layer 1, units numbered from 1, one kept
    assert view["change"] == pytest.approx(0.0, abs=1e-9)
    assert view["after"]["n_regions"] == view["before"]["n_regions"]  # the two drew one line
    node = pr_jobs.prune_view(trained_run, "node", 0.5)
    assert node["groups"] is None and 0 < node["change"] < 1


def test_finetune_and_sweep(trained_run: Run) -> None:
    tuned = pr_jobs.finetune(trained_run, "node", 0.5, 5)
    assert tuned["acc_after"] >= tuned["acc_pruned"] - 0.05
    assert tuned["before"]["n_regions"] > tuned["after"]["n_regions"]
    messages: list[str] = []
    curves = pr_jobs.sparsity_sweep(trained_run, [0.0, 0.75], 2, ["node", "weight"],
                                    progress=lambda f, m: messages.append(m))
    assert set(curves) == {"node", "weight"} and [s for s, _ in curves["node"]] == [0.0, 0.75]
    assert messages[-1] == "done"


def test_earlybird_finds_a_ticket_on_an_easy_problem() -> None:
    spec = pr_jobs.ScheduleSpec(kind="earlybird", epochs=25, threshold=0.2)
    result = eb_jobs.earlybird_run(start_run(SMALL), spec)
    matrix = eb_jobs.distance_matrix(result["rows"])
    assert matrix.shape == (26, 26) and np.allclose(matrix, matrix.T)
    assert result["ticket"] is not None and result["ticket"] >= 3
    assert [e["epoch"] for e in result["events"]] == [result["ticket"]]


def test_mnist_slice_and_hover_readout() -> None:
    model = mn_jobs.mnist_train("mlp", 1)
    assert model["accuracy"] > 0.5
    a, b = 0, 3
    result = mn_jobs.mnist_slice("mlp", model["blob"], a, b)
    assert result["labels"] == [mn_jobs.mnist_image(a)[1], mn_jobs.mnist_image(b)[1]]
    assert result["frame"]["bounds"] == [0.0, 1.0, 0.0, 1.0] and len(result["grid"]) == 60
    point = mn_jobs.mnist_point("mlp", model["blob"], a, b, 1.0, 0.0)
    assert np.allclose(point["image"].ravel(), mn_jobs.mnist_image(a)[0]) and 0 <= point["predicted"] <= 9


def test_experiment_results_are_returned_inline(tmp_path) -> None:
    result = ex_jobs.run_experiment("kmeans", quick=True, root=str(tmp_path))
    out = tmp_path / "splineviz-runs"
    (out,) = out.iterdir()  # the run's own folder
    written = {p.name: p for p in out.iterdir()}
    assert result["name"] == "kmeans" and result["figures"] and result["tables"]
    for figure in result["figures"]:  # the files' own contents, inline
        assert figure["figure"]["data"] and figure["figure"] == json.loads(written[figure["name"] + ".json"].read_text())
        assert base64.b64decode(figure["png"]) == written[figure["name"] + ".png"].read_bytes()
        assert base64.b64decode(figure["png"])[:8] == b"\x89PNG\r\n\x1a\n"
    for table in result["tables"]:
        assert table["markdown"] == written[table["name"] + ".md"].read_text()
        assert table["markdown"].lstrip().startswith("|") and table["csv"]
    assert "inertia" in result["summary"] and "kmeans++ K=64" in result["summary"]


# -- URL state and app wiring ---------------------------------------------------------------------------------------
def test_url_state_roundtrip_keeps_only_changes() -> None:
    query = encode_search({"dataset": "circles", "layers": 3, "lr": 0.1})
    assert query == "?dataset=circles&lr=0.1"  # layers=3 is the default
    assert parse_search(query + "&bogus=1") == {"dataset": "circles", "lr": 0.1}
    assert encode_search({"dataset": "moons", "layers": 3, "lr": 0.03}) == ""


def test_each_page_address_holds_its_own_keys() -> None:
    """Every URL key set away from its default; each page's address keeps its own (listed here by hand)."""
    from splineviz.web.params import PAGE_PARAMS, URL_PARAMS, holds_run
    from splineviz.web.shell import PAGES, page_search

    def changed(param):  # a value that is not the default, and that the param keeps
        if param.kind is tuple:
            return tuple(param.choices)[:1]
        if param.choices:
            return next(k for k in param.choices if k != param.default)
        if param.key == "w":
            return "3.abc"
        if param.kind is str:
            return "8"
        return param.hi

    values = {key: changed(param) for key, param in URL_PARAMS.items()}
    assert all(URL_PARAMS[k].clean(v) == v != URL_PARAMS[k].default for k, v in values.items())
    run = {"dataset", "noise", "layers", "width", "widths", "test", "act", "lr", "epochs", "seed", "batch", "l1",
           "l2"}
    expected = {"/playground": run | {"shade", "show", "layer", "w"},
                "/pruning": run | {"w", "method", "scope", "sparsity", "schedule", "pr_epochs", "prune_at", "g_start",
                                   "g_end", "g_every", "pr_threshold", "compare"},
                "/earlybird": run | {"eb_epochs", "eb_threshold", "eb_method", "eb_sparsity"},
                "/regression": {"rg_widths", "rg_epochs", "rg_lr", "rg_noise", "rg_seed"},
                "/mnist": {"arch", "mn_epochs", "a", "b", "extent"},
                "/experiments": {"experiment", "quick"}, "/lessons": set()}
    assert set(expected) == {page.PATH for page in PAGES} and len(PAGE_PARAMS) == len(PAGES)
    for path, keys in expected.items():
        query = dict(parse_qsl(page_search(path, values).lstrip("?")))
        assert set(query) == keys | {"run"}, path
        assert set(dict(parse_qsl(page_search(path, values, run=False).lstrip("?")))) == keys
        assert holds_run(path) == (run <= keys)
    assert set().union(*expected.values()) | {"run"} == set(URL_PARAMS)  # every key is some page's
    assert page_search("/", values) == page_search("/playground", values) == page_search("/nowhere", values)


def test_app_builds_and_serves(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPLINEVIZ_CACHE_DIR", str(tmp_path))
    import app as app_module

    client = app_module.server.test_client()
    assert client.get("/").status_code == 200 and client.get("/mnist").status_code == 200
    layout = client.get("/_dash-layout").get_json()
    ids = str(layout)
    for page in ("page-playground", "page-pruning", "page-earlybird", "page-mnist", "page-experiments"):
        assert page in ids


def _dependency(dep: str | dict) -> str:
    """``id.prop`` as Dash's callback list writes it (dict ids as sorted JSON), without allow_duplicate's suffix."""
    if isinstance(dep, str):
        return dep.split("@")[0]
    cid = json.dumps(dep["id"], sort_keys=True, separators=(",", ":")) if isinstance(dep["id"], dict) else dep["id"]
    return f"{cid}.{dep['property']}"


def test_no_loop_of_callbacks_spans_two_or_more_callbacks(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dash runs a requested callback only when no pending callback's outputs reach its inputs, following the
    whole chain; a loop through two or more callbacks is broken only when nothing else is pending. So while a
    training chunk was in flight, the Playground's render (-> current -> settle -> view -> units -> unit -> render)
    waited for every chunk to end, and a 6 x 64 run showed no new frame for 14 s. A callback whose output is its
    own input (a slider it moves) is not such a loop."""
    monkeypatch.setenv("SPLINEVIZ_CACHE_DIR", str(tmp_path))
    from splineviz.web.app import create_app

    callbacks = create_app()._callback_list
    outputs = [{_dependency(o) for o in c["output"].strip(".").split("...")} for c in callbacks]
    inputs = [{_dependency(i) for i in c["inputs"]} for c in callbacks]
    feeds = {a: {b for b in range(len(callbacks)) if b != a and outputs[a] & inputs[b]} for a in range(len(callbacks))}

    def reaches(start: int, goal: int) -> bool:
        seen, todo = set(), [start]
        while todo:
            for nxt in feeds[todo.pop()] - seen:
                if nxt == goal:
                    return True
                seen.add(nxt)
                todo.append(nxt)
        return False

    loops = [callbacks[a]["output"] for a in range(len(callbacks)) if reaches(a, a)]
    assert any(outputs[a] & inputs[a] for a in range(len(callbacks)))  # the self-loops the check leaves alone exist
    assert not loops, f"callbacks in a loop of two or more: {loops}"


def _ids(component, into: set[str]) -> set[str]:
    """Every string id in a layout tree."""
    if isinstance(getattr(component, "id", None), str):
        into.add(component.id)
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if hasattr(child, "to_plotly_json"):
            _ids(child, into)
    return into


def test_a_page_mounted_on_first_visit_shares_no_callback_it_could_break(tmp_path, monkeypatch) -> None:
    """Pages other than the Playground enter the layout when first shown. Dash refuses to run a callback some of
    whose inputs or outputs are in the layout and others not (unless those are optional), so a callback naming a
    lazily mounted page's components may name others only as State or as optional inputs, and then declares none
    of that page's outputs."""
    monkeypatch.setenv("SPLINEVIZ_CACHE_DIR", str(tmp_path))
    from splineviz.web import shell
    from splineviz.web.app import create_app

    callbacks = create_app()._callback_list
    always = _ids(shell.layout(), set())
    lazy = {page.PATH: _ids(html_div(shell._page(page)), set()) for page in shell.LAZY}
    assert all(not (ids & always) for ids in lazy.values()) and {"pr-method", "eb-model", "mn-graph"} <= set().union(
        *lazy.values()) and "pr-method" not in always  # the Pruning page is not in the first layout

    def page_of(cid: str) -> str | None:
        return next((path for path, ids in lazy.items() if cid in ids), None)

    checked = 0
    for c in callbacks:
        outputs = [_dependency(o).rsplit(".", 1)[0] for o in c["output"].strip(".").split("...") if "." in o]
        deps = [(d["id"], "input", d.get("allow_optional", False)) for d in c["inputs"]] + \
               [(d["id"], "state", d.get("allow_optional", False)) for d in c["state"]] + \
               [(o, "output", False) for o in outputs]
        deps = [d for d in deps if not d[0].startswith("{")]  # pattern-matching (ALL) ones are skipped when absent
        pages = {page_of(cid) for cid, _, _ in deps} - {None}
        if not pages:
            continue
        checked += 1
        required = [(cid, kind) for cid, kind, optional in deps if kind != "state" and not optional]
        where = {page_of(cid) for cid, _ in required}
        assert len(where) == 1, f"{c['output']} needs components of {where or 'no page'} and of {pages}"
    assert checked > 40


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
    run = start_run(config)
    frames = []
    for _ in range(3):
        run, chunk = pg_jobs.train_chunk(run, 2)
        frames += chunk
    return [(f["stats"]["epoch"], f["n_regions"], round(f["stats"]["loss"], 6)) for f in frames]


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

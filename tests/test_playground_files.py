"""The Playground's files and links without a browser: links that carry weights, session files, model files,
uploads of real models, and training settings that reach the optimiser.

Oracles: the weights themselves (a link or file must give back the tensors that were shown), a plain torch
forward pass (a model file must compute what the shown model computes), and the L1 norm of trained weights.
"""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from torch import nn

from splineviz.frame import Frame
from splineviz.web import ids
from splineviz.web.codec import decode_blob
from splineviz.web.jobs import playground as work
from splineviz.web.params import LIMITS, parse_search
from splineviz.web.runner import use_one_thread
from splineviz.web.state import PlaygroundConfig, Run

SMALL = PlaygroundConfig(layers=2, width=8, epochs=3)
MIB = 2**20


@pytest.fixture(scope="module")
def trained() -> tuple[Run, list[dict]]:
    run, first = work.start_run(SMALL)
    run, frames = work.train_chunk(run, 3)
    return run, [first, *frames]


def _state(frame: dict) -> dict[str, torch.Tensor]:
    return decode_blob(frame["weights"], MIB)


def test_a_link_carries_the_shown_weights_exactly(trained) -> None:
    run, frames = trained
    link = work.link_value(run.model(), frames[-1]["stats"]["epoch"])
    assert link.startswith("3.") and len(link) <= LIMITS.link_chars + 2
    assert parse_search(f"?w={link}")["w"] == link  # the URL codec keeps it as it is
    opened, frame = work.link_run(SMALL, parse_search(f"?w={link}")["w"])
    for key, value in _state(frames[-1]).items():
        assert torch.equal(opened.model().state_dict()[key], value)  # float32 text: the same numbers
    assert frame["stats"]["epoch"] == 3
    shown, again = Frame.from_json(frames[-1]), Frame.from_json(frame)
    assert again.n_regions == shown.n_regions and np.array_equal(again.cell_region, shown.cell_region)


def test_a_link_refuses_what_it_did_not_write_and_large_nets_get_none() -> None:
    assert parse_search("?w=3.<script>")["w"] == ""  # not link text: dropped when the URL is read
    with pytest.raises(work.ModelLoadError):
        work.link_run(SMALL, "3.hAAAA")
    wide = PlaygroundConfig(layers=3, width=64)
    run, _ = work.start_run(wide)
    assert work.link_value(run.model(), 0) == ""  # 8,642 parameters: a session file carries those


def test_a_session_file_restores_every_frame_the_view_and_other_pages(trained) -> None:
    run, frames = trained
    pages = {ids.Pruning.PANELS: {"frames": [], "title": "node pruned"}, "pg-not-a-page-store": {"x": 1}}
    request = {"frames": [{"weights": f["weights"], "stats": f["stats"]} for f in frames],
               "history": [{"epoch": e, "loss": 1.0 / (e + 1)} for e in range(4)],
               "view": {"epoch": 2, "layer": 0, "shade": "code"}, "search": "?layers=2&width=8&epochs=3",
               "upload": "net.pt", "pages": pages}
    raw = work.session_file(request, run.to_json())
    opened, again, extra = work.open_session(raw)
    assert [f["stats"]["epoch"] for f in again] == [0, 1, 2, 3]
    for before, after in zip(frames, again):
        for key, value in _state(before).items():
            assert torch.equal(_state(after)[key], value)
        assert after["n_regions"] == before["n_regions"]
    assert opened.epoch == 3 and opened.config.settings() == SMALL.settings()
    assert extra["pages"] == {ids.Pruning.PANELS: pages[ids.Pruning.PANELS]}  # only the pages' own stores
    assert extra["view"]["shade"] == "code" and extra["upload"] == "net.pt" and len(extra["history"]) == 4


def test_a_damaged_session_file_is_refused_clearly() -> None:
    with pytest.raises(work.ModelLoadError, match="zip|session|bundle"):
        work.open_session(b"PK\x03\x04 not really a zip")


@pytest.mark.parametrize("fmt", ["pt", "safetensors", "onnx"])
def test_model_files_compute_what_the_shown_model_computes(trained, fmt: str) -> None:
    run, frames = trained
    raw = work.model_file(run, frames[-1]["weights"], fmt)
    shown = work.load_weights(run.arch, frames[-1]["weights"])
    uploaded, _, described = work.upload_run(raw, SMALL)  # through the Playground's own upload
    x = torch.randn(64, 2)
    with torch.no_grad():
        assert torch.allclose(uploaded.model()(x), shown(x), atol=1e-5)
    assert described == "2-8-8-2 ReLU"


class Tutorial(nn.Module):
    """The usual tutorial model: named layers, not a Sequential."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(2, 6), nn.Linear(6, 4), nn.Linear(4, 2)


def test_an_upload_of_named_layers_shows_its_real_widths_and_chosen_activation() -> None:
    buffer = io.BytesIO()
    model = Tutorial()
    torch.save({"state_dict": model.state_dict()}, buffer)
    run, _, described = work.upload_run(buffer.getvalue(), PlaygroundConfig(activation="leaky_relu"))
    assert described.startswith("2-6-4-2 Leaky ReLU")
    assert run.config.widths == "6,4" and run.config.layers == 2 and run.arch["hidden"] == [6, 4]
    assert torch.equal(run.model()[0].weight, model.fc1.weight)


def test_an_upload_the_playground_cannot_draw_says_why() -> None:
    buffer = io.BytesIO()
    torch.save(nn.Linear(3, 2).state_dict(), buffer)
    with pytest.raises(work.UploadError, match="3 inputs"):
        work.upload_run(buffer.getvalue(), SMALL)


def test_l1_and_l2_reach_the_optimiser() -> None:
    """The same run trained with a strong L1 or L2 penalty ends with smaller weights than without."""
    use_one_thread()  # as in the app's jobs: small nets train slowly when threads fight over busy cores
    config = PlaygroundConfig(layers=1, width=8, epochs=6, lr=0.1)
    run, _ = work.start_run(config)

    def l1_norm(overrides: dict) -> float:
        trained, _ = work.train_chunk(run, 6, overrides)
        return sum(m.weight.abs().sum().item() for m in trained.model() if isinstance(m, nn.Linear))

    plain = l1_norm({})
    assert l1_norm({"l1": 0.01}) < 0.9 * plain
    assert l1_norm({"l2": 0.1}) < plain
    assert l1_norm({"batch_size": 8}) != plain  # the batch size is used too


def test_region_info_agrees_with_a_forward_pass_and_areas_sum_to_the_domain() -> None:
    from splineviz.nets import mlp, to_ops
    from splineviz.partition import trace
    from splineviz.web import explain

    model = mlp(2, (6, 5), 3, seed=4).eval()
    partition = trace(to_ops(model), bounds=(-2, 2, -2, 2))
    rng = np.random.default_rng(0)
    seen = {}
    for x, y in rng.uniform(-1.9, 1.9, (40, 2)):
        info = explain.region_info(partition, x, y)
        h = torch.tensor([[x, y]], dtype=torch.float32)
        bits = []
        with torch.no_grad():
            for module in model:
                h = module(h)
                if isinstance(module, nn.Linear) and module is not model[-1]:
                    bits.append("".join("1" if v > 0 else "0" for v in h[0]))
        assert info["pattern"] == bits
        assert np.allclose(info["logits"], h[0].numpy(), atol=1e-4)
        assert abs(sum(info["probabilities"]) - 1) < 1e-9
        seen[info["region"]] = info["area"]
    assert all(a > 0 for a in seen.values())
    assert sum(explain.region_info(partition, *p)["area"] for p in partition.interior_points) == pytest.approx(16.0)
    assert explain.region_info(partition, 5.0, 0.0) is None  # outside the domain


def test_the_unit_strip_has_a_thumbnail_and_the_weights_of_every_unit() -> None:
    from splineviz.nets import mlp
    from splineviz.web import explain

    model = mlp(2, (4, 3), 2, seed=1)
    strip = explain.unit_strip(model, (-1, 1, -1, 1), size=8)
    assert [len(layer) for layer in strip] == [4, 3]
    assert strip[1][2]["weights"] == pytest.approx(model[2].weight[2].tolist())
    assert strip[0][0]["image"].startswith("data:image/png;base64,")
    assert explain.unit_strip(mlp(2, (), 2, seed=1), (-1, 1, -1, 1), size=8) == []  # linear: no hidden units
    colours = explain.diverging(np.array([[-2.0, 0.0, 1.0]]))
    assert colours[0, 1].tolist() == [255, 255, 255] and colours[0, 0].tolist() == explain.ORANGE.astype(int).tolist()

"""Session files and link text: exact round trips, and malformed or oversized input refused before unpacking."""
from __future__ import annotations

import io
import json
import zipfile
import zlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save as save_safetensors

from splineviz.bundle import (SCHEMA, BundleError, BundleLimits, BundleTooLargeError, decode_state, encode_state,
                              load_bundle, save_bundle)
from splineviz.nets import mlp, paper_cnn


def states(n: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    return [mlp(2, (16, 16), 2, seed=seed + i).state_dict() for i in range(n)]


def assert_states_equal(a, b) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert list(x) == list(y) or sorted(x) == sorted(y)
        for k in x:
            assert x[k].dtype == y[k].dtype and torch.equal(x[k], y[k]), k


def test_a_session_round_trips_exactly():
    config = {"page": "playground", "dataset": "moons", "layers": [16, 16], "lr": 0.03, "epoch": 2, "none": None,
              "nested": {"ok": True, "labels": ["a", "b"]}}
    epochs = states(3)
    cnn = paper_cnn(seed=1).state_dict()  # int64 batch counters survive too
    extra = {"pruned": states(2, seed=10), "ticket-1": [cnn]}
    bundle = load_bundle(save_bundle(config, epochs, extra))
    assert bundle.config == config and bundle.schema == SCHEMA
    assert_states_equal(bundle.states, epochs)
    assert sorted(bundle.extra) == ["pruned", "ticket-1"]
    assert_states_equal(bundle.extra["pruned"], extra["pruned"])
    assert_states_equal(bundle.extra["ticket-1"], [cnn])
    empty = load_bundle(save_bundle({}, []))
    assert empty.states == [] and empty.extra == {} and empty.config == {}


@pytest.mark.parametrize("config,extra,match", [
    ({"x": float("nan")}, None, "not plain JSON"),
    ({"x": object()}, None, "not plain JSON"),
    ({}, {"../evil": []}, "series names"),
])
def test_save_refuses_what_would_not_load(config, extra, match):
    with pytest.raises(ValueError, match=match):
        save_bundle(config, [], extra)


def zip_of(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


HEAD = json.dumps({"schema": 1, "config": {}, "states": 1, "extra": {}}).encode()
ONE = save_safetensors({"w": torch.zeros(3)})


@pytest.mark.parametrize("raw,match", [
    (b"", "empty"),
    (b"not a zip at all", "not a zip archive"),
    (zip_of({"states/0000.safetensors": ONE}), "no bundle.json"),
    (zip_of({"bundle.json": b"{", "states/0000.safetensors": ONE}), "is not JSON"),
    (zip_of({"bundle.json": b"[1]", "states/0000.safetensors": ONE}), "no schema version"),
    (zip_of({"bundle.json": json.dumps({"schema": 99, "config": {}, "states": 0}).encode()}), "newer splineviz"),
    (zip_of({"bundle.json": json.dumps({"schema": 1, "states": 0}).encode()}), "lacks its config"),
    (zip_of({"bundle.json": json.dumps({"schema": 1, "config": {}, "states": -1}).encode()}), "lacks its config"),
    (zip_of({"bundle.json": json.dumps({"schema": 1, "config": {}, "states": 10**12}).encode()}),
     "incomplete or altered"),
    (zip_of({"bundle.json": HEAD}), "incomplete or altered"),
    (zip_of({"bundle.json": HEAD, "states/0001.safetensors": ONE}), "missing: states/0000.safetensors"),
    (zip_of({"bundle.json": HEAD, "states/0000.safetensors": b"garbage"}), "0000.safetensors is not readable"),
    (zip_of({"bundle.json": json.dumps({"schema": 1, "config": {}, "states": 2}).encode(),
             "states/0000.safetensors": ONE, "states/0001.safetensors": save_safetensors({"w": torch.zeros(4)})}),
     "states state 1 has other weights than state 0"),
])
def test_malformed_session_files_are_refused_clearly(raw, match):
    with pytest.raises(BundleError, match=match):
        load_bundle(raw)


def test_sizes_and_member_counts_are_checked_before_unpacking():
    raw = save_bundle({}, states(3))
    with pytest.raises(BundleTooLargeError, match="over the limit"):
        load_bundle(raw, BundleLimits(max_bytes=len(raw) - 1))
    with pytest.raises(BundleTooLargeError, match="holds 4 files, over the limit of 3"):
        load_bundle(raw, BundleLimits(max_members=3))
    # a zip bomb: 50 MB of zeros packed into ~50 kB; its declared size is refused before anything is inflated
    bomb = zip_of({"bundle.json": HEAD, "states/0000.safetensors": bytes(50 * 2**20)})
    assert len(bomb) < 2**20
    with pytest.raises(BundleTooLargeError, match="unpacks to 50.0 MiB"):
        load_bundle(bomb, BundleLimits(max_bytes=2**20))


def test_a_member_that_lies_about_its_size_is_refused():
    raw = bytearray(zip_of({"bundle.json": HEAD, "states/0000.safetensors": ONE}, zipfile.ZIP_STORED))
    # shrink the declared size of the weights in the central directory (and the local header): reading stops there
    size = len(ONE).to_bytes(4, "little")
    smaller = (len(ONE) - 8).to_bytes(4, "little")
    assert raw.count(size) >= 2
    raw = bytes(raw).replace(size + size, smaller + smaller)
    with pytest.raises(BundleError):
        load_bundle(raw)


# ----------------------------------------------------------------------------------------------- link text

def test_link_text_round_trips_exactly_in_float32_and_to_float16_in_float16():
    state = mlp(2, (16, 16), 2, seed=4).state_dict()
    exact = decode_state(encode_state(state, "float32"))
    assert_states_equal([exact], [state])
    half = decode_state(encode_state(state, "float16"))
    assert_states_equal([half], [{k: v.half().float() for k, v in state.items()}])
    text = encode_state(state)
    assert len(text) < 1500 and all(c.isalnum() or c in "-_" for c in text)  # safe in a query string unescaped


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(width=32, allow_nan=False), min_size=1, max_size=40))
def test_link_text_float32_is_exact_for_any_values(values):
    state = {"a.weight": torch.tensor(values, dtype=torch.float32), "n": torch.tensor([3], dtype=torch.int64)}
    got = decode_state(encode_state(state, "float32"))
    assert torch.equal(got["a.weight"], state["a.weight"]) and torch.equal(got["n"], state["n"])


def test_link_text_limits_and_damage():
    big = mlp(2, (128, 128), 2).state_dict()
    with pytest.raises(BundleTooLargeError, match="over the limit of 3,000 for a link"):
        encode_state(big)
    text = encode_state(big, max_chars=10**6)
    with pytest.raises(BundleTooLargeError, match="over the limit of 3,000"):
        decode_state(text)
    with pytest.raises(BundleTooLargeError, match="unpack to more than 1,000 bytes"):
        decode_state(text, BundleLimits(max_state_chars=10**6, max_state_bytes=1000))
    bomb = "f" + __import__("base64").urlsafe_b64encode(zlib.compress(bytes(10**7), 9)).decode()
    with pytest.raises(BundleTooLargeError, match="unpack to more than"):
        decode_state(bomb, BundleLimits(max_state_chars=10**6))
    small = encode_state({"w": torch.ones(4)})
    for bad, match in [("", "not weights this app wrote"), ("x" + small[1:], "not weights this app wrote"),
                       (small[:-6], "cut short|damaged"), ("f!!!!", "damaged"),
                       ("f" + __import__("base64").urlsafe_b64encode(zlib.compress(b"junk")).decode(), "not readable")]:
        with pytest.raises(BundleError, match=match):
            decode_state(bad)
    with pytest.raises(ValueError, match="dtype must be one of"):
        encode_state({"w": torch.ones(1)}, "int8")
    assert np.array_equal(decode_state(small)["w"].numpy(), np.ones(4, dtype=np.float32))

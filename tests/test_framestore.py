"""Frames kept apart from a pruning run's payloads (web.framestore): what a job puts is what the page fetches.

Each store is exercised through the HTTP route the page uses, on the disk cache and, where redis-server is
installed, on Redis; an unknown frame, a malformed token and an expired frame answer 404.
"""
from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from flask import Flask

from splineviz.web import framestore
from splineviz.web.stack import REDIS, Redis


def _client(store: framestore.FrameStore, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(framestore, "frame_store", lambda: store)
    server = Flask(__name__)
    framestore.register_routes(server, "/app/")
    return server.test_client()


def _stores(tmp_path: Path):
    yield framestore.DiskFrames(tmp_path / "frames")
    if REDIS is not None:
        server = Redis(tmp_path)
        server.start()
        try:
            yield framestore.RedisFrames(server.url)
        finally:
            server.stop()


def test_a_kept_frame_is_served_as_written_and_anything_else_is_404(tmp_path: Path, monkeypatch) -> None:
    for store in _stores(tmp_path):
        client = _client(store, monkeypatch)
        token = uuid.uuid4().hex
        keep = framestore.keeper(token)
        frames = {(k, i): {"n_regions": 10 * k + i, "cells": [[0.5, 1.5]] * i} for k in (0, 1) for i in range(3)}
        for (k, i), frame in frames.items():
            keep(k, i, json.dumps(frame))
        for (k, i), frame in frames.items():
            answer = client.get(f"/app{framestore.FRAMES_PATH}/{token}/{k}/{i}")
            assert answer.status_code == 200 and answer.mimetype == "application/json"
            assert answer.get_json() == frame, type(store).__name__
        for path in (f"{token}/0/3", f"{token}/2/0", f"{uuid.uuid4().hex}/0/0", "not-a-token/0/0", f"{token}/0/-1"):
            assert client.get(f"/app{framestore.FRAMES_PATH}/{path}").status_code == 404, path


def test_a_job_cannot_keep_frames_under_a_token_the_page_could_not_have() -> None:
    with pytest.raises(ValueError, match="not a run token"):
        framestore.keeper("../../etc")


def test_frames_expire(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(framestore, "KEEP_S", 1)
    for store in _stores(tmp_path):
        token = uuid.uuid4().hex
        store.put(token, 0, 0, "{}")
        assert store.get(token, 0, 0) == b"{}"
        time.sleep(1.2)
        assert store.get(token, 0, 0) is None, type(store).__name__

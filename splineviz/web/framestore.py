"""Frames of a pruning run, kept where the page can fetch them one at a time.

A 6 x 64 run's frames add up to 50-170 MB of JSON. Sent in the job's result, the page parsed them in one piece and
froze for seconds (bench/APP_RESULTS.md, "Pruning runs"). Instead, the job puts each frame here as it is traced,
its streamed payloads and its result carry only how many there are, and the page fetches the ones it lacks from
``FRAMES_PATH/<token>/<run>/<index>``: one frame a request, parsed in tens of milliseconds. Like the quota
registry, the store is Redis when Celery is configured (jobs may run on other machines) and an on-disk cache beside
the job cache otherwise. Frames expire ``KEEP_S`` after they were written (the disk cache also evicts the oldest
past its size limit): a session file restored later than that shows the run's numbers without its frames.
"""
from __future__ import annotations

import os
import re
from functools import lru_cache
from typing import Callable, Protocol

from flask import Flask, Response

from splineviz.web.manager import RESULT_EXPIRY_S, broker_url, local_cache_dir

FRAMES_PATH = "/_splineviz/frames"
KEEP_S = RESULT_EXPIRY_S  # as long as a job's result: a public server's Redis holds no more
_TOKEN = re.compile(r"^[0-9a-f]{32}$")  # a run's token: uuid4().hex, unguessable


class FrameStore(Protocol):
    def put(self, token: str, run: int, index: int, text: str) -> None:
        """Keep frame ``index`` of run ``run`` (0 or 1: side by side) of the job ``token``, as JSON text."""

    def get(self, token: str, run: int, index: int) -> bytes | None:
        """The frame's JSON, or None when it was never written or has expired."""


def _key(token: str, run: int, index: int) -> str:
    return f"splineviz:frame:{token}:{run}:{index}"


class DiskFrames:
    """Frames in a diskcache directory: for one machine (the dev server, gunicorn with diskcache jobs)."""

    def __init__(self, directory: str | os.PathLike) -> None:
        import diskcache

        self.cache = diskcache.Cache(str(directory), size_limit=4 * 2**30)

    def put(self, token: str, run: int, index: int, text: str) -> None:
        self.cache.set(_key(token, run, index), text.encode(), expire=KEEP_S)

    def get(self, token: str, run: int, index: int) -> bytes | None:
        return self.cache.get(_key(token, run, index))


class RedisFrames:
    """Frames in Redis: written by Celery workers, read by any web process on the same broker."""

    def __init__(self, url: str) -> None:
        import redis

        self.redis = redis.Redis.from_url(url, socket_timeout=10)

    def put(self, token: str, run: int, index: int, text: str) -> None:
        self.redis.set(_key(token, run, index), text, ex=KEEP_S)

    def get(self, token: str, run: int, index: int) -> bytes | None:
        return self.redis.get(_key(token, run, index))


@lru_cache(maxsize=1)
def frame_store() -> FrameStore:
    """Redis when Celery is configured, a disk cache beside the job cache else (as ``quota.registry``)."""
    url = broker_url()
    if url:
        return RedisFrames(url)
    return DiskFrames(f"{local_cache_dir()}-frames")


def keeper(token: str) -> Callable[[int, int, str], None]:
    """What a job hands ``pruning.scheduled_run`` as ``keep``: each frame into the store under ``token``."""
    if not _TOKEN.match(token):
        raise ValueError(f"not a run token: {token!r}")
    store = frame_store()
    return lambda run, index, text: store.put(token, run, index, text)


def register_routes(server: Flask, prefix: str = "/") -> None:
    """``GET FRAMES_PATH/<token>/<run>/<index>``: one kept frame's JSON; 404 when it is unknown or expired."""

    def frame(token: str, run: int, index: int) -> Response:
        text = frame_store().get(token, run, index) if _TOKEN.match(token) else None
        if text is None:
            return Response("no such frame (it may have expired: run again)", 404, mimetype="text/plain")
        return Response(text, 200, mimetype="application/json", headers={"Cache-Control": f"private, max-age={KEEP_S}"})

    server.add_url_rule(prefix.rstrip("/") + FRAMES_PATH + "/<token>/<int:run>/<int:index>", "splineviz_frame", frame,
                        methods=["GET"])

"""Who is still there, and how many jobs each tab runs: a small registry shared by web and job processes.

Jobs run in other processes (diskcache) or on other machines (Celery), so their bookkeeping lives where
all of them can reach it: Redis when Celery is configured, an on-disk cache otherwise. A tab reports
itself every few seconds (``/_splineviz/beat``) and on leaving (``/_splineviz/bye``, a beacon on
``pagehide``); a job checks ``last_seen`` while it works and stops when its tab has gone. Each job holds a slot
with a short lease that it renews while alive, so a job process that was killed frees its slot by itself.
"""
from __future__ import annotations

import os
import re
import time
from functools import lru_cache
from typing import Protocol

from flask import Flask, request

from splineviz.web.manager import broker_url, local_cache_dir

BEAT_PATH = "/_splineviz/beat"
BYE_PATH = "/_splineviz/bye"
_SESSION = re.compile(r"^[0-9a-f]{32}$")
_KEEP_S = 3600  # registry entries of a tab outlive its last beat by this much, then vanish


def valid_session(session: object) -> bool:
    return isinstance(session, str) and bool(_SESSION.match(session))


class Registry(Protocol):
    def beat(self, session: str) -> None: ...

    def bye(self, session: str) -> None: ...

    def last_seen(self, session: str) -> float | None:
        """Time of the tab's last beat; None once it has said goodbye (a later beat brings it back)."""

    def acquire(self, session: str, job: str, limit: int, lease_s: float) -> bool:
        """Take one of the session's ``limit`` job slots for ``lease_s`` seconds; False if all are taken."""

    def renew(self, session: str, job: str, lease_s: float) -> None: ...

    def release(self, session: str, job: str) -> None: ...


class DiskRegistry:
    """Registry in a diskcache directory: for one machine (the dev server, gunicorn with diskcache jobs)."""

    def __init__(self, directory: str | os.PathLike) -> None:
        import diskcache

        self.cache = diskcache.Cache(str(directory))

    def beat(self, session: str) -> None:
        self.cache.set(f"seen:{session}", time.time(), expire=_KEEP_S)

    def bye(self, session: str) -> None:
        self.cache.delete(f"seen:{session}")

    def last_seen(self, session: str) -> float | None:
        return self.cache.get(f"seen:{session}")

    def acquire(self, session: str, job: str, limit: int, lease_s: float) -> bool:
        now = time.time()
        with self.cache.transact():
            slots = {k: t for k, t in self.cache.get(f"jobs:{session}", {}).items() if t > now}
            if len(slots) >= limit:
                return False
            slots[job] = now + lease_s
            self.cache.set(f"jobs:{session}", slots, expire=_KEEP_S)
        return True

    def renew(self, session: str, job: str, lease_s: float) -> None:
        with self.cache.transact():
            slots = self.cache.get(f"jobs:{session}", {})
            if job in slots:
                slots[job] = time.time() + lease_s
                self.cache.set(f"jobs:{session}", slots, expire=_KEEP_S)

    def release(self, session: str, job: str) -> None:
        with self.cache.transact():
            slots = self.cache.get(f"jobs:{session}", {})
            slots.pop(job, None)
            self.cache.set(f"jobs:{session}", slots, expire=_KEEP_S)


_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


class RedisRegistry:
    """Registry in Redis: shared by every web process and Celery worker that uses the same broker."""

    def __init__(self, url: str) -> None:
        import redis

        self.redis = redis.Redis.from_url(url, socket_timeout=5)
        self._acquire = self.redis.register_script(_ACQUIRE)

    def beat(self, session: str) -> None:
        self.redis.set(f"splineviz:seen:{session}", time.time(), ex=_KEEP_S)

    def bye(self, session: str) -> None:
        self.redis.delete(f"splineviz:seen:{session}")

    def last_seen(self, session: str) -> float | None:
        value = self.redis.get(f"splineviz:seen:{session}")
        return float(value) if value is not None else None

    def acquire(self, session: str, job: str, limit: int, lease_s: float) -> bool:
        now = time.time()
        return bool(self._acquire(keys=[f"splineviz:jobs:{session}"], args=[now, limit, now + lease_s, job, _KEEP_S]))

    def renew(self, session: str, job: str, lease_s: float) -> None:
        self.redis.zadd(f"splineviz:jobs:{session}", {job: time.time() + lease_s}, xx=True)

    def release(self, session: str, job: str) -> None:
        self.redis.zrem(f"splineviz:jobs:{session}", job)


@lru_cache(maxsize=1)
def registry() -> Registry:
    """Redis when Celery is configured (jobs may run on other machines), a disk cache beside the job cache else."""
    url = broker_url()
    if url:
        return RedisRegistry(url)
    return DiskRegistry(f"{local_cache_dir()}-sessions")


def register_routes(server: Flask, prefix: str = "/") -> None:
    """The two endpoints a tab reports to, under the app's routes prefix. Bodies are the tab's session id;
    anything else is ignored."""

    def report(action: str) -> tuple[str, int]:
        session = request.get_data(as_text=True, cache=False)[:64].strip()
        if valid_session(session):
            getattr(registry(), action)(session)
        return "", 204

    base = prefix.rstrip("/")
    server.add_url_rule(base + BEAT_PATH, "splineviz_beat", lambda: report("beat"), methods=["POST"])
    server.add_url_rule(base + BYE_PATH, "splineviz_bye", lambda: report("bye"), methods=["POST"])

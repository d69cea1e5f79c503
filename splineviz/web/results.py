"""The Celery result store of web jobs: Redis, read by key and never awaited.

Dash's Celery manager reads a job's result from its own key, so nothing waits on Celery's result channel. Celery's
Redis backend nevertheless subscribes to it for every task sent, and drops that PubSub on each Redis reconnect;
redis-py's ``PubSub.__del__`` then runs inside the garbage collector, where it can wait for the connection pool's
lock that the same thread holds. A web worker hung that way until gunicorn killed it (a poll timed out after 30 s).
"""
from __future__ import annotations

from typing import Any

from celery.backends.redis import RedisBackend


class KeyedRedisBackend(RedisBackend):
    """Celery's Redis result backend without the per-task subscription."""

    def on_task_call(self, producer: Any, task_id: str) -> None:
        """Subscribe to nothing: results are read by key (see the module docstring)."""


def backend_url(url: str) -> str:
    """Celery's backend setting for a result URL: this backend for Redis URLs, any other URL as it is."""
    scheme = url.partition("://")[0]
    return f"{__name__}:KeyedRedisBackend+{url}" if scheme in ("redis", "rediss") else url

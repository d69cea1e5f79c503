"""Where background callbacks run: local processes via diskcache (default) or Celery workers via Redis.

Celery is chosen by ``python app.py --celery`` or by setting SPLINEVIZ_CELERY_BROKER (or REDIS_URL); then
every machine running ``celery -A splineviz.web.worker worker`` shares the work and the web processes
(e.g. several gunicorn workers) only enqueue and poll.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from dash import CeleryManager, DiskcacheManager

DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
RESULT_EXPIRY_S = 3600


def broker_url() -> str | None:
    """The Celery broker configured in the environment, if any."""
    return os.environ.get("SPLINEVIZ_CELERY_BROKER") or os.environ.get("REDIS_URL")


def diskcache_manager(cache_dir: str | os.PathLike | None = None) -> DiskcacheManager:
    """Jobs run in child processes of the web server; results and progress go through an on-disk cache."""
    import diskcache

    path = Path(cache_dir or os.environ.get("SPLINEVIZ_CACHE_DIR")
                or Path(tempfile.gettempdir()) / "splineviz-cache")
    return DiskcacheManager(diskcache.Cache(str(path)), expire=RESULT_EXPIRY_S)


def celery_manager(broker: str | None = None) -> CeleryManager:
    """Jobs run on Celery workers; Redis (or any Celery broker/backend) carries tasks, progress and results."""
    from celery import Celery

    broker = broker or broker_url() or DEFAULT_BROKER
    backend = os.environ.get("SPLINEVIZ_CELERY_BACKEND", broker)
    celery_app = Celery("splineviz", broker=broker, backend=backend)
    celery_app.conf.update(worker_prefetch_multiplier=1, task_acks_late=True, result_expires=RESULT_EXPIRY_S,
                           broker_connection_retry_on_startup=True)
    return CeleryManager(celery_app, expire=RESULT_EXPIRY_S)


def make_manager(use_celery: bool = False) -> DiskcacheManager | CeleryManager:
    """Celery when asked for or configured in the environment, diskcache otherwise."""
    return celery_manager() if use_celery or broker_url() else diskcache_manager()

"""What the processes of one deployment must agree on: the key that signs job handles; and a health route.

Dash signs each job handle it gives the browser with ``server.secret_key``. When several processes serve the app
(gunicorn workers, or web processes in front of Celery workers), a poll can reach a process other than the one
that started the job; if each process made up its own key, that process rejects the handle and the job is lost
without a word. So there the key must come from SPLINEVIZ_SECRET_KEY, and the app refuses to start without it.
One local process may use a random key.
"""
from __future__ import annotations

import os
import secrets
import sys
from typing import Any

from splineviz.web.manager import QueueJobManager, backend_healthy

SECRET_ENV = "SPLINEVIZ_SECRET_KEY"
WORKERS_ENV = "SPLINEVIZ_WEB_WORKERS"  # set by gunicorn.conf.py from gunicorn's own settings
MIN_LENGTH = 16


class ConfigurationError(RuntimeError):
    """The deployment is set up in a way that would lose jobs; the message says how to fix it."""


def several_web_processes() -> bool:
    """Whether other processes may answer this one's polls: gunicorn with more than one worker.

    gunicorn.conf.py records the worker count; under gunicorn without it the count is unknown, so assume several.
    """
    workers = os.environ.get(WORKERS_ENV)
    if workers is not None:
        return int(workers) > 1
    return "gunicorn" in sys.modules


def signing_key(shared: bool) -> str:
    """SPLINEVIZ_SECRET_KEY; required when ``shared`` (several processes), a fresh random key otherwise."""
    key = os.environ.get(SECRET_ENV, "")
    if key and len(key) < MIN_LENGTH:
        raise ConfigurationError(f"{SECRET_ENV} is too short ({len(key)} characters); use at least {MIN_LENGTH}, "
                                 "e.g. the output of: python -c 'import secrets; print(secrets.token_hex(32))'")
    if not key and shared:
        raise ConfigurationError(
            f"{SECRET_ENV} is not set. With several gunicorn workers or with Celery, every process must sign "
            "job handles with the same key, or polls reaching another process lose their jobs. Set the same "
            f"value everywhere, e.g. export {SECRET_ENV}=$(python -c 'import secrets; print(secrets.token_hex(32))'), "
            "or serve from one process (python app.py, or gunicorn --workers 1 with the repo's gunicorn.conf.py).")
    return key or secrets.token_hex(32)


def serve_jobs(app: Any, manager: Any, shared_key: bool | None = None) -> None:
    """Give a Dash ``app`` (built with ``manager``) its job-handle signing key and a /healthz route.

    ``shared_key``: whether other processes must verify this one's job handles (default: with Celery, or with
    several gunicorn workers); then SPLINEVIZ_SECRET_KEY must be set (ConfigurationError otherwise).
    """
    if shared_key is None:
        shared_key = isinstance(manager, QueueJobManager) or several_web_processes()
    app.server.secret_key = signing_key(shared_key)  # Dash signs job handles with the server's secret_key
    app.server.add_url_rule("/healthz", "healthz", lambda: health(manager))


def health(manager: Any) -> tuple[dict, int]:
    """For container health checks and load balancers: 200 while this process and its job backend answer."""
    backend = "celery" if isinstance(manager, QueueJobManager) else "diskcache"
    if backend_healthy(manager):
        return {"status": "ok", "jobs": backend}, 200
    return {"status": "job backend unreachable", "jobs": backend}, 503

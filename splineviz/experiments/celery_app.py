"""Experiment tasks on Celery workers, for running seeds and sweeps on several machines.

Start workers on any machine that has splineviz installed and reaches the broker::

    SPLINEVIZ_CELERY_BROKER=redis://host:6379/0 celery -A splineviz.experiments.celery_app worker

then run an experiment with ``--celery`` (same environment variable; ``REDIS_URL`` works too). Tasks go to their own
queue (``splineviz-experiments``), so the web app's workers (``splineviz.web.worker``) never receive them. Only
functions of ``splineviz.experiments`` modules can be run, with JSON arguments and JSON results.

Fanning out is opt-in (``--celery``), not automatic whenever a broker is configured: the app runs experiments inside
its own Celery tasks, and a task that waits on further tasks can deadlock a fully busy pool.
"""
from __future__ import annotations

import importlib
import os
from typing import Any

from celery import Celery
from celery.signals import worker_process_init

QUEUE = "splineviz-experiments"
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
RESULT_EXPIRY_S = 24 * 3600


def broker_url() -> str:
    """The broker from SPLINEVIZ_CELERY_BROKER or REDIS_URL (the app's variables), else a local Redis."""
    return os.environ.get("SPLINEVIZ_CELERY_BROKER") or os.environ.get("REDIS_URL") or DEFAULT_BROKER


app = Celery("splineviz.experiments", broker=broker_url(),
             backend=os.environ.get("SPLINEVIZ_CELERY_BACKEND") or broker_url())
app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"],
                task_default_queue=QUEUE, worker_prefetch_multiplier=1, task_acks_late=True,
                result_expires=RESULT_EXPIRY_S, broker_connection_retry_on_startup=True)


@worker_process_init.connect
def _one_thread_per_worker(**_: Any) -> None:
    """Each worker process runs one task at a time on one core (as the local ``--jobs`` workers do)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency, but K-means tasks do not need it
        return
    torch.set_num_threads(1)


@app.task(name="splineviz.experiments.run")
def run_task(module: str, function: str, kwargs: dict[str, Any]) -> Any:
    """Call ``module.function(**kwargs)``; only experiment modules may be named."""
    if module != "splineviz.experiments" and not module.startswith("splineviz.experiments."):
        raise ValueError(f"only splineviz.experiments functions run here, not {module}.{function}")
    return getattr(importlib.import_module(module), function)(**kwargs)

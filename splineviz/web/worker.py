"""Celery entry point: ``celery -A splineviz.web.worker worker`` (broker from SPLINEVIZ_CELERY_BROKER / REDIS_URL).

Building the app registers every background callback as a Celery task under a name derived from the
callback's source, so the worker and the web processes agree on task names without sharing memory. Workers
never sign or check job handles, so they need no SPLINEVIZ_SECRET_KEY. Building the app also loads the compiled
kernels (create_app) in the worker's main process, before it forks its pool: every pool process has them before its
first task (tests/test_faults.py), so no job's time, nor a run estimate made from it, includes loading them.
"""
from __future__ import annotations

from splineviz.web.app import create_app
from splineviz.web.manager import celery_manager

manager = celery_manager()
dash_app = create_app(manager, shared_key=False)  # registers every background callback as a task
celery_app = manager.handle

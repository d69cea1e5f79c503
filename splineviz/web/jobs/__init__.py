"""The app's work, one module per page, as plain functions of cleaned inputs.

Background jobs (diskcache processes, or Celery workers on other machines) call the long ones with
``progress(fraction, message)`` and ``cancel() -> bool`` (from ``runner.JobContext``); page callbacks call
the fast ones directly. Nothing here touches Dash or keeps per-session state.
"""
from __future__ import annotations

from typing import Callable

Progress = Callable[[float, str], None]  # (fraction done, message)
Cancel = Callable[[], bool]  # True once the work must stop


def quiet(fraction: float, message: str) -> None:
    """Default progress sink."""

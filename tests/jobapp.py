"""A one-callback Dash app for the fault tests, on the app's own job managers (diskcache or Celery).

Its job sleeps in small steps, writing "start TAG PID" and "end TAG" lines to $JOBAPP_LOG, so a test can count
how often each job ran and kill the process running it. Serve with ``gunicorn jobapp:server`` from tests/, run
jobs on Celery with ``celery -A jobapp:celery_app worker``. A lost job answers through on_error, as the pages should.
"""
from __future__ import annotations

import os
import time

from dash import Dash, Input, Output, State, dcc, html

from splineviz.web.deploy import serve_jobs
from splineviz.web.manager import QueueJobManager, lost_job_reason, make_manager


def _log(line: str) -> None:
    with open(os.environ["JOBAPP_LOG"], "a") as out:
        out.write(line + "\n")


def _on_error(error: Exception) -> str:
    reason = lost_job_reason(error)
    return f"lost: {reason}" if reason is not None else f"failed: {error}"


manager = make_manager()
app = Dash(__name__, background_callback_manager=manager)
serve_jobs(app, manager)
app.layout = html.Div([html.Button(id="go"), dcc.Input(id="tag"), dcc.Input(id="seconds", type="number"),
                       html.Div(id="out"), html.Div(id="progress")])


@app.callback(Output("out", "children"), Input("go", "n_clicks"), State("tag", "value"), State("seconds", "value"),
              background=True, interval=200, prevent_initial_call=True, progress=[Output("progress", "children")],
              on_error=_on_error)
def job(set_progress, _clicks, tag, seconds):
    _log(f"start {tag} {os.getpid()}")
    steps = max(1, round(float(seconds) / 0.1))
    for step in range(steps):
        time.sleep(0.1)
        set_progress(f"{tag} {step + 1}/{steps}")
    _log(f"end {tag}")
    return f"done {tag}"


server = app.server
celery_app = manager.handle if isinstance(manager, QueueJobManager) else None  # celery -A jobapp:celery_app

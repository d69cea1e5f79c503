"""Build the Dash app: the shell, every page's callbacks, the background-callback manager and its signing key."""
from __future__ import annotations

from pathlib import Path

from dash import Dash
from dash.background_callback.managers import BaseBackgroundCallbackManager

from splineviz.partition.tracer import load_kernels
from splineviz.web import shell
from splineviz.web.deploy import serve_jobs
from splineviz.web.manager import make_manager
from splineviz.web.wiring import watch_jobs

ASSETS = Path(__file__).resolve().parents[2] / "assets"


def create_app(manager: BaseBackgroundCallbackManager | None = None, shared_key: bool | None = None) -> Dash:
    """A fresh app; ``manager`` defaults to diskcache, or Celery when configured (see manager.make_manager).

    ``shared_key``: see deploy.serve_jobs (SPLINEVIZ_SECRET_KEY is required with Celery or several workers).
    """
    manager = manager or make_manager()
    load_kernels()  # jobs are forked from this process: they inherit the compiled kernels, loaded once
    app = Dash(__name__, title="splineviz", assets_folder=str(ASSETS), update_title=None,
               background_callback_manager=manager, suppress_callback_exceptions=True)
    serve_jobs(app, manager, shared_key)
    app.layout = shell.layout
    shell.register(app)
    for page in shell.PAGES:
        page.register(app)
    watch_jobs(app)
    return app


"""Build the Dash app: the shell, every page's callbacks, and the background-callback manager."""
from __future__ import annotations

from pathlib import Path

from dash import Dash
from dash.background_callback.managers import BaseBackgroundCallbackManager

from splineviz.web import shell
from splineviz.web.manager import make_manager

ASSETS = Path(__file__).resolve().parents[2] / "assets"


def create_app(manager: BaseBackgroundCallbackManager | None = None) -> Dash:
    """A fresh app; ``manager`` defaults to diskcache, or Celery when configured (see manager.make_manager)."""
    app = Dash(__name__, title="splineviz", assets_folder=str(ASSETS), update_title=None,
               background_callback_manager=manager or make_manager(), suppress_callback_exceptions=True)
    app.layout = shell.layout
    shell.register(app)
    for page in shell.PAGES:
        page.register(app)
    return app

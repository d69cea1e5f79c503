"""gunicorn settings for ``gunicorn app:server`` (read from the working directory; CLI flags override them).

Records the final worker count for the app, which needs a shared signing key when there is more than one
worker (see splineviz/web/deploy.py). Kept to the standard library: this runs in gunicorn's master process.
"""
import os

bind = "127.0.0.1:8050"
workers = 1
timeout = 120  # one request may trace a large partition; long work runs in background jobs


def on_starting(server):
    os.environ["SPLINEVIZ_WEB_WORKERS"] = str(server.cfg.workers)

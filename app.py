"""splineviz web app: ``python app.py`` serves http://127.0.0.1:8050 (``--help`` for options).

For production, ``gunicorn app:server`` (see gunicorn.conf.py). With more than one gunicorn worker or with
Celery (SPLINEVIZ_CELERY_BROKER, and ``celery -A splineviz.web.worker worker`` on any number of machines), every
process needs the same SPLINEVIZ_SECRET_KEY.
"""
from __future__ import annotations

import argparse
import os
import sys

from splineviz.web.app import create_app
from splineviz.web.manager import make_manager
from splineviz.web.deploy import ConfigurationError


def _parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve the splineviz app.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8050)
    parser.add_argument("--celery", action="store_true",
                        help="run long jobs on Celery workers (broker: SPLINEVIZ_CELERY_BROKER or REDIS_URL, "
                             "default redis://127.0.0.1:6379/0; needs SPLINEVIZ_SECRET_KEY); start them with "
                             "`celery -A splineviz.web.worker worker`")
    parser.add_argument("--debug", action="store_true", help="Dash dev tools and reloading")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = _parse()
    if args.celery:
        os.environ.setdefault("SPLINEVIZ_CELERY_BROKER", "redis://127.0.0.1:6379/0")
    try:
        app = create_app(make_manager(use_celery=args.celery))
    except ConfigurationError as exc:
        sys.exit(f"error: {exc}")
    # Single-threaded on purpose: background jobs are fork()ed from this process, and forking while another
    # request thread holds a lock (an import, torch, a logger) leaves the child hung forever. Jobs run in
    # their own processes, so the server only answers short requests; for many users use gunicorn workers.
    app.run(host=args.host, port=args.port, debug=args.debug, threaded=False)
else:
    app = create_app()  # under gunicorn: a ConfigurationError stops the server with its message
    server = app.server

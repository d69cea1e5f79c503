"""The production stack on loopback, one process per part: redis-server, gunicorn, Celery workers.

For the fault tests and ``bench/load.py``: each part can be stopped, killed and started again on the same port,
which is what the faults are made of. Everything binds to 127.0.0.1 and is stopped when its context exits.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator, Sequence

from splineviz.web.testing import REPO, free_port, wait_for, wait_until_up

REDIS = shutil.which("redis-server")


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Redis:
    """redis-server on a fixed loopback port without persistence: restarting it brings it back empty."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        if REDIS is None:
            raise RuntimeError("redis-server is not installed (scripts/setup.sh --dev installs it)")
        self.port = port or free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen([REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.workdir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_for(self.pings, 20, message="redis-server")

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None

    def client(self):
        import redis

        return redis.Redis(port=self.port, socket_connect_timeout=2)

    def pings(self) -> bool:
        try:
            return bool(self.client().ping())
        except Exception:  # noqa: BLE001 - not up (yet)
            return False


class Service:
    """A long-running command with its output in a log file; stop, kill and start it again."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], log: Path, cwd: Path = REPO) -> None:
        self.argv, self.env, self.log, self.cwd = list(argv), env, log, cwd
        self.proc: subprocess.Popen | None = None
        self.log_start = 0

    def start(self) -> None:
        self.log_start = len(self.text())  # what this run writes comes after this
        out = open(self.log, "a")  # noqa: SIM115 - the child holds it; closed with the process
        self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        out.close()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> None:
        if self.proc is not None:
            _stop(self.proc, sig, timeout)
            self.proc = None

    def children(self) -> list:
        """The service's live descendant processes (psutil), e.g. gunicorn or Celery pool workers."""
        import psutil

        if self.proc is None or self.proc.poll() is not None:
            return []
        return psutil.Process(self.proc.pid).children(recursive=True)

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def stack_env(secret: str | None = "splineviz-test-secret-key-0123456789", broker: str | None = None,
              **extra: str) -> dict[str, str]:
    """The environment every process of one deployment shares: the signing key and the Celery broker."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("SPLINEVIZ_CELERY_BROKER", "REDIS_URL", "SPLINEVIZ_SECRET_KEY", "SPLINEVIZ_WEB_WORKERS")}
    if secret:
        env["SPLINEVIZ_SECRET_KEY"] = secret
    if broker:
        env["SPLINEVIZ_CELERY_BROKER"] = broker
    return {**env, **extra}


def gunicorn(app: str, env: dict[str, str], log: Path, workers: int = 2, port: int | None = None,
             cwd: Path = REPO) -> tuple[Service, str]:
    """gunicorn serving ``app`` ("module:server") with the repo's gunicorn.conf.py; returns it and its URL."""
    port = port or free_port()
    argv = [sys.executable, "-m", "gunicorn", app, "--config", str(REPO / "gunicorn.conf.py"),
            "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--timeout", "120",
            "--pythonpath", str(REPO)]
    return Service(argv, env, log, cwd), f"http://127.0.0.1:{port}"


def celery_worker(app: str, env: dict[str, str], log: Path, concurrency: int = 2, name: str = "w1",
                  cwd: Path = REPO) -> Service:
    argv = [sys.executable, "-m", "celery", "-A", app, "worker", "--concurrency", str(concurrency),
            "--hostname", f"{name}@%h", "--loglevel", "INFO", "--without-gossip", "--without-mingle",
            "--without-heartbeat"]
    return Service(argv, env, log, cwd)


def wait_ready(worker: Service, timeout: float = 90.0) -> None:
    """Until the Celery worker (started) says it is ready, or fails."""
    wait_for(lambda: "ready." in worker.text()[worker.log_start:] or worker.proc.poll() is not None, timeout, 0.2,
             message="the Celery worker")
    if worker.proc.poll() is not None:
        raise RuntimeError(f"the Celery worker exited: {worker.text()[-2000:]}")


def serve(service: Service, url: str, timeout: float = 90.0) -> None:
    """Start a web service and wait until it answers /healthz."""
    service.start()
    wait_until_up(url + "/healthz", timeout, proc=service.proc)


@contextlib.contextmanager
def running(*services: Service | Redis) -> Iterator[None]:
    """Stop every given service (already started) when the block exits, last started first."""
    try:
        yield
    finally:
        for service in reversed(services):
            service.stop()


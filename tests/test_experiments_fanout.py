"""Seeds fan out: local worker processes and Celery workers (on a real redis-server) return exactly what one process
returns, report progress per finished task, and stop on cancel."""
from __future__ import annotations

import gc
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from splineviz.experiments import run
from splineviz.experiments._common import Context
from splineviz.experiments.kmeans import task
from splineviz.partition import Cancelled

REPO = Path(__file__).resolve().parents[1]
TASKS = [dict(init=init, k_start=k, seeds=[0, 1], n=640, data_seed=0) for init in ("random", "kmeans++")
         for k in (64, 128)]


def context(tmp_path: Path, jobs: int = 1, executor: str = "local", cancel=None, progress=None) -> Context:
    return Context("kmeans", tmp_path, True, 0, {}, progress or (lambda f, m: None), cancel, jobs, executor)


def describe(t: dict) -> str:
    return f"{t['init']} {t['k_start']}"


def test_local_processes_return_what_one_process_returns(tmp_path: Path) -> None:
    serial = context(tmp_path).map(task, TASKS, describe)
    seen: list[tuple[float, str]] = []
    parallel = context(tmp_path, jobs=2, progress=lambda f, m: seen.append((f, m))).map(task, TASKS, describe)
    assert parallel == serial and len(serial) == 4 and serial[0]["rows"][0]["k_start"] == 64
    fractions = [f for f, m in seen if "done" in m]
    assert fractions == [0.25, 0.5, 0.75, 1.0] and not multiprocessing.active_children()


def test_cancelling_stops_the_worker_processes(tmp_path: Path) -> None:
    finished: list[str] = []
    ctx = context(tmp_path, jobs=2, cancel=lambda: len(finished) >= 1,
                  progress=lambda f, m: finished.append(m) if "done" in m else None)
    slow = [dict(t, seeds=list(range(6)), n=6400) for t in TASKS * 2]
    with pytest.raises(Cancelled):
        ctx.map(task, slow, describe)
    assert len(finished) < len(slow) and not multiprocessing.active_children()


def test_bad_fan_out_settings_are_explained(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="jobs"):
        context(tmp_path, jobs=0)
    with pytest.raises(ValueError, match="executor"):
        context(tmp_path, executor="slurm")
    with pytest.raises(ValueError, match="seeds"):
        run("kmeans", quick=True, out_dir=tmp_path, seeds=0)


# ------------------------------------------------------------------------------------------------ Celery

REDIS = shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise TimeoutError(f"waited {seconds} s for {what}")


@pytest.fixture(scope="module")
def celery_worker(tmp_path_factory: pytest.TempPathFactory):
    """A redis-server on a free port and ``celery -A splineviz.experiments.celery_app worker`` using it."""
    if REDIS is None:
        pytest.skip("needs redis-server")
    import redis

    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    server = subprocess.Popen([REDIS, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(workdir)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    client = redis.Redis(port=port)

    def pings() -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    wait_for(pings, 20, "redis-server")
    broker = f"redis://127.0.0.1:{port}/0"
    log = workdir / "worker.log"
    env = {**os.environ, "SPLINEVIZ_CELERY_BROKER": broker}
    with open(log, "w") as out:
        worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "splineviz.experiments.celery_app", "worker",
                                   "--concurrency", "2", "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
                                  cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: "ready" in log.read_text() or worker.poll() is not None, 90, "the Celery worker")
            assert worker.poll() is None, log.read_text()
            yield broker, log
        finally:
            gc.collect()  # Celery results unsubscribe when collected: do it while the broker is still there
            stop(worker)
            stop(server)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM (a Celery worker then finishes its tasks), SIGKILL if it is still there after 30 s."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.mark.redis
def test_celery_workers_return_what_one_process_returns(celery_worker, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    broker, log = celery_worker
    monkeypatch.setenv("SPLINEVIZ_CELERY_BROKER", broker)
    sys.modules.pop("splineviz.experiments.celery_app", None)  # its app reads the broker when imported
    serial = context(tmp_path).map(task, TASKS, describe)
    seen: list[float] = []
    remote = context(tmp_path, executor="celery", progress=lambda f, m: seen.append(f)).map(task, TASKS, describe)
    assert remote == serial and seen[-1] == 1.0
    assert log.read_text().count("succeeded") >= len(TASKS)
    from splineviz.experiments.celery_app import run_task

    refused = run_task.delay("os", "getcwd", {})
    with pytest.raises(ValueError, match="only splineviz.experiments"):
        refused.get(timeout=60)
    refused.forget()

"""Scale-out: the app with --celery enqueues background jobs on a real Redis, a Celery worker runs them.

Starts redis-server on a free port and ``celery -A splineviz.web.worker worker``, then trains one step
from a headless browser and checks that the worker, not the web process, ran the task.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import HAS_CHROMIUM, REPO, chrome, element_text, free_port, running_app, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.browser]
REDIS = shutil.which("redis-server")
if REDIS is None or not HAS_CHROMIUM:
    pytest.skip("needs redis-server and Chromium", allow_module_level=True)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> str:
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([REDIS, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(workdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    import redis

    client = redis.Redis(port=port)
    wait_for(lambda: _pings(client), 20, message="redis-server")
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


def _pings(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:  # noqa: BLE001 - not up yet
        return False


@pytest.fixture(scope="module")
def worker_log(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    log = tmp_path_factory.mktemp("celery") / "worker.log"
    env = {**os.environ, "SPLINEVIZ_CELERY_BROKER": broker}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "splineviz.web.worker", "worker",
                                 "--concurrency", "2", "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
                                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        wait_for(lambda: "ready" in log.read_text() or proc.poll() is not None, 90, 0.5, message="the worker")
        assert proc.poll() is None, log.read_text()
        yield log
        proc.terminate()
        proc.wait(timeout=20)


def test_background_jobs_run_on_the_celery_worker(broker: str, worker_log: Path) -> None:
    from selenium.webdriver.common.by import By

    env = {"SPLINEVIZ_CELERY_BROKER": broker, "SPLINEVIZ_SECRET_KEY": "k" * 32}
    with running_app(["--celery"], env=env) as app:
        driver = chrome()
        try:
            driver.get(app.url + "/?epochs=20")
            epoch = lambda: element_text(driver, "pg-stat-epoch")  # noqa: E731
            wait_for(lambda: epoch() == "0", 60, message="the first partition")
            driver.find_element(By.ID, "pg-step").click()
            wait_for(lambda: epoch() == "1", 60, message="a training step run by the worker")
            driver.find_element(By.ID, "pg-play").click()
            wait_for(lambda: epoch() == "20", 120, message="training to finish on the worker")
        finally:
            driver.quit()
    time.sleep(0.5)
    log = worker_log.read_text()
    assert log.count("succeeded") >= 3, log[-3000:]
    assert "background_callback_" in log

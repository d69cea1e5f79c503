"""Deployment rules: the shared signing key, the run-once job records, and refusing to start when misconfigured."""
from __future__ import annotations

import subprocess
import sys

import pytest

from splineviz.web import manager
from splineviz.web.deploy import SECRET_ENV, ConfigurationError, several_web_processes, signing_key
from splineviz.web.stack import REDIS, Redis, gunicorn, serve, stack_env
from splineviz.web.testing import REPO


def test_a_shared_key_is_required_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    with pytest.raises(ConfigurationError, match=f"{SECRET_ENV} is not set"):
        signing_key(shared=True)
    one, two = signing_key(shared=False), signing_key(shared=False)
    assert one != two and len(one) >= 32  # one process: a fresh random key each time
    monkeypatch.setenv(SECRET_ENV, "short")
    with pytest.raises(ConfigurationError, match="too short"):
        signing_key(shared=False)
    monkeypatch.setenv(SECRET_ENV, "x" * 40)
    assert signing_key(shared=True) == signing_key(shared=False) == "x" * 40


def test_the_worker_count_comes_from_gunicorn_conf(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPLINEVIZ_WEB_WORKERS", "1")
    assert not several_web_processes()
    monkeypatch.setenv("SPLINEVIZ_WEB_WORKERS", "3")
    assert several_web_processes()


def test_lost_job_reason_reads_the_marker_back() -> None:
    payload = manager.lost_payload("its worker stopped")["background_callback_error"]
    # what Dash hands to on_error: its own prefix, the message, then the traceback
    error = RuntimeError(f"An error occurred inside a background callback: {payload['msg']}\n{payload['tb']}")
    assert manager.lost_job_reason(error) == "its worker stopped"
    assert manager.lost_job_reason(RuntimeError("division by zero")) is None


def _refusal(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)


def test_app_with_celery_refuses_to_start_without_the_key() -> None:
    env = stack_env(secret=None, broker="redis://127.0.0.1:1/0")
    done = _refusal([sys.executable, "app.py", "--celery", "--port", "1"], env)
    assert done.returncode != 0
    assert f"error: {SECRET_ENV} is not set" in done.stderr


def test_gunicorn_with_two_workers_refuses_to_start_without_the_key(tmp_path) -> None:
    env = stack_env(secret=None, JOBAPP_LOG=str(tmp_path / "jobs.log"), SPLINEVIZ_CACHE_DIR=str(tmp_path),
                    PYTHONPATH=f"{REPO}:{REPO / 'tests'}")
    web, url = gunicorn("jobapp:server", env, tmp_path / "web2.log", workers=2, cwd=REPO / "tests")
    web.start()
    assert web.proc.wait(timeout=240) != 0
    assert f"{SECRET_ENV} is not set" in web.text()
    # one worker needs no key
    web, url = gunicorn("jobapp:server", env, tmp_path / "web1.log", workers=1, cwd=REPO / "tests")
    serve(web, url)
    web.stop()


@pytest.mark.redis
@pytest.mark.skipif(REDIS is None, reason="needs redis-server")
def test_job_records_let_a_job_start_once_and_never_undo_a_cancel(tmp_path) -> None:
    server = Redis(tmp_path)
    server.start()
    try:
        client, key = server.client(), manager.job_key("j1")
        client.set(key, manager.QUEUED)
        claims = [client.eval(manager._CLAIM, 1, key, 3) for _ in range(3)]
        assert claims == [1, 0, 0] and client.get(key) == b"running"
        assert client.eval(manager._CLAIM, 1, manager.job_key("wiped"), 3) == 0  # no record, no run
        client.delete(key)  # Redis came back empty: the heartbeat writes the record again
        client.eval(manager._HEARTBEAT, 1, key, 3)
        assert client.get(key) == b"running" and 0 < client.ttl(key) <= 3
        client.set(key, manager.CANCELLED)
        client.eval(manager._HEARTBEAT, 1, key, 3)
        client.eval(manager._FINISH, 1, key, 60)
        assert client.get(key) == b"cancelled"
        client.set(key, manager.RUNNING)
        client.eval(manager._FINISH, 1, key, 60)
        assert client.get(key) == b"done"
    finally:
        server.stop()

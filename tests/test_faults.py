"""Faults against the real stack: gunicorn with 2 workers, redis-server, Celery workers (tests/jobapp.py's job).

Each fault must end, for every job, in its result or in a message the page can show ("lost: ..."), never in
silence (a 204, on which the browser drops the job) or an endless wait; and no job may run twice. The job log
written by the jobs themselves is the independent record of what ran.
"""
from __future__ import annotations

import os
import signal
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from splineviz.web.client import DashClient, Outcome
from splineviz.web.manager import celery_app
from splineviz.web.stack import REDIS, Redis, Service, celery_worker, gunicorn, serve, stack_env, wait_ready
from splineviz.web.testing import REPO, wait_for

pytestmark = pytest.mark.redis
if REDIS is None:
    pytest.skip("needs redis-server (scripts/setup.sh --dev installs it)", allow_module_level=True)
TESTS = REPO / "tests"


class JobLog:
    """The jobs' own record: "start TAG PID" and "end TAG" lines."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def lines(self) -> list[list[str]]:
        return [line.split() for line in self.path.read_text().splitlines()] if self.path.exists() else []

    def starts(self) -> Counter:
        return Counter(words[1] for words in self.lines() if words[0] == "start")

    def ends(self) -> Counter:
        return Counter(words[1] for words in self.lines() if words[0] == "end")

    def pid(self, tag: str) -> int:
        return next(int(words[2]) for words in self.lines() if words[:2] == ["start", tag])


def start_job(url: str, tag: str, seconds: float, limit: float = 90.0) -> Outcome:
    """One browser tab pressing the button: load the page, start the job, poll it until it answers."""
    client = DashClient(url)
    client.load("/")
    payload = client.payload(client.find("out.children"), {"go.n_clicks": 1, "tag.value": tag,
                                                           "seconds.value": seconds}, ["go.n_clicks"])
    return client.run_job(payload, limit=limit)


def answer(outcome: Outcome) -> str:
    """What the page shows: the job's output ("done TAG", "lost: ..."), or the kind of non-answer."""
    if outcome.kind == "result":
        return outcome.value["out"]["children"]
    return f"{outcome.kind}: {outcome.value}"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def redis(workdir: Path) -> Redis:
    server = Redis(workdir)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def jobs(workdir: Path) -> JobLog:
    return JobLog(workdir / "jobs.log")


def _env(workdir: Path, **extra: str) -> dict[str, str]:
    return stack_env(JOBAPP_LOG=str(workdir / "jobs.log"), PYTHONPATH=f"{REPO}{os.pathsep}{TESTS}", **extra)


@pytest.fixture(scope="module")
def celery_web(redis: Redis, workdir: Path) -> tuple[Service, str]:
    web, url = gunicorn("jobapp:server", _env(workdir, broker=redis.url), workdir / "celery-web.log", cwd=TESTS)
    serve(web, url)
    yield web, url
    web.stop()


@pytest.fixture(scope="module")
def disk_web(workdir: Path) -> tuple[Service, str]:
    env = _env(workdir, SPLINEVIZ_CACHE_DIR=str(workdir / "cache"))
    web, url = gunicorn("jobapp:server", env, workdir / "disk-web.log", cwd=TESTS)
    serve(web, url)
    yield web, url
    web.stop()


@pytest.fixture
def workers(redis: Redis, workdir: Path):
    """Start Celery workers with start(name, concurrency); all are stopped after the test."""
    started: list[Service] = []

    def start(name: str = "w1", concurrency: int = 2) -> Service:
        worker = celery_worker("jobapp:celery_app", _env(workdir, broker=redis.url), workdir / f"{name}.log",
                               concurrency, name, cwd=TESTS)
        worker.start()
        started.append(worker)
        wait_ready(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def run_all(url: str, tags: list[str], seconds: float):
    """Start one job per tag from its own tab, all at once; futures of their outcomes."""
    pool = ThreadPoolExecutor(len(tags))
    return pool, [pool.submit(start_job, url, tag, seconds) for tag in tags]


def kill_while_running(url: str, jobs: JobLog, tag: str) -> Outcome:
    """Start a long job, kill -9 the process running it (as the out-of-memory killer would), poll it to the end."""
    pool, (future,) = run_all(url, [tag], 60.0)
    wait_for(lambda: jobs.starts()[tag], 60, message="the job to start")
    os.kill(jobs.pid(tag), signal.SIGKILL)
    outcome = future.result()
    pool.shutdown()
    return outcome


def zombies(web: Service) -> list:
    return [p for p in web.children() if _status(p) == "zombie"]


def _status(process) -> str:
    try:
        return process.status()
    except Exception:  # noqa: BLE001 - gone meanwhile
        return "gone"


# -- local jobs (diskcache) ---------------------------------------------------------------------------------------
def test_local_jobs_finish_across_two_workers_and_leave_no_zombies(disk_web, jobs: JobLog) -> None:
    web, url = disk_web
    tags = [f"disk{i}" for i in range(6)]
    pool, futures = run_all(url, tags, 1.0)
    answers = [answer(f.result()) for f in futures]
    pool.shutdown()
    assert answers == [f"done {t}" for t in tags]
    assert all(jobs.starts()[t] == 1 and jobs.ends()[t] == 1 for t in tags)
    # finished job processes are reaped when they end, not when the next job starts
    wait_for(lambda: not zombies(web), 20, message=f"zombies reaped: {zombies(web)}")


def test_a_killed_job_process_is_reported_lost(disk_web, jobs: JobLog) -> None:
    web, url = disk_web
    outcome = kill_while_running(url, jobs, "diskkill")
    assert answer(outcome).startswith("lost: its process ended without a result"), answer(outcome)
    assert jobs.ends()["diskkill"] == 0
    wait_for(lambda: not zombies(web), 20, message="the killed job reaped")


# -- Celery jobs ----------------------------------------------------------------------------------------------------
def test_starting_a_job_opens_no_result_subscription(redis: Redis) -> None:
    """Results are read by key, never awaited, so the web side subscribes to nothing. Celery's result subscriber
    drops its PubSub on every Redis reconnect, and redis-py's PubSub.__del__ can then deadlock on the connection
    pool's lock inside the garbage collector: a web worker hung until gunicorn killed it, and a poll timed out."""
    def subscribes() -> int:
        return redis.client().info("commandstats").get("cmdstat_subscribe", {}).get("calls", 0)

    before = subscribes()
    celery_app(redis.url).send_task("no-such-task", queue="nobody-listens")
    assert subscribes() == before
    redis.client().delete("nobody-listens")


def test_a_broker_reconnect_does_not_run_a_task_twice(celery_web, workers, redis: Redis, jobs: JobLog) -> None:
    _, url = celery_web
    workers("w1", 2)
    pool, (future,) = run_all(url, ["reconnect"], 4.0)
    wait_for(lambda: jobs.starts()["reconnect"], 60, message="the job to start")
    redis.client().client_kill_filter(_type="normal", skipme=False)  # every client's connection drops at once
    assert answer(future.result()) == "done reconnect"
    pool.shutdown()
    time.sleep(2)  # room for a redelivered copy to start, if the broker handed one out
    assert jobs.starts()["reconnect"] == 1


def test_a_killed_worker_process_is_reported_lost(celery_web, workers, jobs: JobLog) -> None:
    _, url = celery_web
    workers("w1", 2)
    outcome = kill_while_running(url, jobs, "workerkill")
    assert answer(outcome).startswith("lost: its worker stopped"), answer(outcome)
    assert jobs.starts()["workerkill"] == 1 and jobs.ends()["workerkill"] == 0


def test_jobs_survive_redis_down_for_10_s_and_back_empty(celery_web, workers, redis: Redis, jobs: JobLog) -> None:
    """The D3 case: Redis restarts empty and a web worker respawns meanwhile; all 6 running jobs still finish."""
    web, url = celery_web
    workers("w1", 3)
    workers("w2", 3)
    tags = [f"outage{i}" for i in range(6)]
    pool, futures = run_all(url, tags, 8.0)
    wait_for(lambda: all(jobs.starts()[t] for t in tags), 60, message="all six jobs to start")
    # six processes, six jobs: each starts at once, none waits behind a busy process of a worker that took its
    # message early (with acks at start, one did, and its neighbours' unread results went down with Redis)
    assert not any(jobs.ends()[t] for t in tags), jobs.lines()
    redis.stop()
    # a web worker restarts while Redis is down (SIGTERM: it ends its requests in flight, so that no poll is cut
    # off -- a browser whose poll is cut off reports the job lost, which is the killed-process case below)
    os.kill(web.children()[0].pid, signal.SIGTERM)
    time.sleep(10)  # the outage itself
    redis.start()
    answers = [answer(f.result()) for f in futures]
    pool.shutdown()
    assert answers == [f"done {t}" for t in tags]
    assert [jobs.starts()[t] for t in tags] == [1] * 6 and [jobs.ends()[t] for t in tags] == [1] * 6


def test_a_job_started_while_redis_is_down_is_reported_lost(celery_web, workers, redis: Redis,
                                                            jobs: JobLog) -> None:
    """The queue refuses the job: the page is told so (not an HTTP 500 it never shows), and the job never runs."""
    _, url = celery_web
    workers("w1", 1)
    redis.stop()
    try:
        outcome = start_job(url, "refused", 1.0, limit=60.0)
    finally:
        redis.start()
    assert answer(outcome).startswith("lost: the job queue (Redis) was unreachable, so it could not start"), \
        answer(outcome)
    assert answer(start_job(url, "after", 1.0)) == "done after"  # the queue works again once Redis is back
    assert jobs.starts()["refused"] == 0


def test_queued_jobs_wiped_from_redis_are_reported_lost(celery_web, workers, redis: Redis, jobs: JobLog) -> None:
    _, url = celery_web
    workers("w1", 1)
    tags = [f"wipe{i}" for i in range(3)]
    pool, futures = run_all(url, tags, 4.0)
    wait_for(lambda: sum(jobs.starts()[t] for t in tags) == 1, 60, message="one job to start")
    time.sleep(0.5)  # let the others reach the queue and the worker's prefetch buffer
    redis.client().flushall()  # Redis "comes back empty", without the outage
    answers = [answer(f.result()) for f in futures]
    pool.shutdown()
    done = [a for a in answers if a.startswith("done")]
    lost = [a for a in answers if a.startswith("lost: its worker stopped or the job queue (Redis) lost it")]
    assert len(done) >= 1 and len(done) + len(lost) == 3, answers
    assert all(jobs.starts()[t] <= 1 for t in tags)


def test_a_restarted_worker_finishes_running_and_queued_jobs(celery_web, workers, jobs: JobLog) -> None:
    _, url = celery_web
    first = workers("w1", 1)
    tags = [f"restart{i}" for i in range(3)]
    pool, futures = run_all(url, tags, 2.0)
    wait_for(lambda: sum(jobs.starts()[t] for t in tags) == 1, 60, message="one job to start")
    first.stop(signal.SIGTERM)  # warm shutdown: the running job finishes first
    workers("w1b", 1)
    answers = [answer(f.result()) for f in futures]
    pool.shutdown()
    assert answers == [f"done {t}" for t in tags]
    assert [jobs.starts()[t] for t in tags] == [1, 1, 1]


def test_worker_processes_have_the_kernels_before_their_first_task(redis: Redis, workdir: Path) -> None:
    """The app's Celery worker loads the compiled kernels at start, as the web server does before it forks its
    jobs (create_app, which the worker module calls): every pool process has them before its first task, so no
    job's time, and no run estimate made from it, includes loading them."""
    from splineviz.partition import kernels

    if not kernels.available():
        pytest.skip("numba is not installed or SPLINEVIZ_NUMBA=0")
    probe = workdir / "kernels.log"
    worker = celery_worker("kernelprobe:celery_app", _env(workdir, broker=redis.url, KERNEL_PROBE_LOG=str(probe)),
                           workdir / "probe-worker.log", 2, "probe", cwd=TESTS)
    worker.start()
    try:
        wait_ready(worker)
        lines = wait_for(lambda: probe.exists() and len(probe.read_text().splitlines()) == 2 and probe.read_text(),
                         30, message="both pool processes to start")
    finally:
        worker.stop()
    counts = [[int(n) for n in line.split()[1:]] for line in lines.splitlines()]
    assert all(net >= 1 and cut >= 1 and split >= 1 for net, cut, split in counts), counts

"""Where background callbacks run, and how a job that can no longer finish is told apart from one that is busy.

Two backends, one contract:

- **local** (default): each job is a child process of the web server; diskcache carries progress and results.
- **queue**: Celery workers on a Redis broker (``python app.py --celery``, or SPLINEVIZ_CELERY_BROKER / REDIS_URL);
  web processes only enqueue and poll, workers on any number of machines run the jobs.

Dash's managers answer a poll of a job that died without a result (killed, out of memory, its queue entry lost
when Redis restarted empty) with "no update", which leaves the page waiting forever. These subclasses answer it
with a background-callback error whose message starts with :data:`JOB_LOST`; a page's ``on_error`` handler turns
it into a message with :func:`lost_job_reason`. A poll answered while the backend is unreachable keeps the job
pending, so a job that survives a short Redis outage still delivers its result.

Queue jobs run at most once: a worker may start a task only by moving its record from "queued" to "running" in
one atomic step, so a message delivered twice (a broker reconnect, a restored unacknowledged message) never runs
twice. Tasks are acknowledged when they end (``task_acks_late``) and each worker process reserves one message
(``worker_prefetch_multiplier=1``), so a worker whose processes are all busy takes no more messages: a job never
waits behind another one while a process elsewhere is idle. A copy handed out again (a reconnect, the visibility
timeout) finds the record "running" and is dropped by the claim; a worker killed mid-task has its message
acknowledged as failed (``task_reject_on_worker_lost=False``), so the job is lost visibly instead of run again.
"""
from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from dash import CeleryManager, DiskcacheManager

DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
RESULT_EXPIRY_S = 3600
JOB_LOST = "splineviz-job-lost"
HEARTBEAT_S = 1.0  # a running queue job rewrites its record this often ...
HEARTBEAT_TTL_S = 3  # ... and the record expires this long after its worker died
VISIBILITY_TIMEOUT_S = 120  # an unacknowledged message is handed out again after this (the claim drops the copy)
UNREACHABLE_LIMIT_S = 60.0  # a job whose backend stays unreachable this long is reported lost
RESTART_GRACE_S = 20.0  # after Redis comes back empty, running jobs' workers get this long to write their records
_MARKER = "splineviz-redis-since"  # written at first contact with Redis: gone means Redis lost its data
UNSTARTED = "unstarted-"  # job ids handed out for a job the queue refused: its first poll reports it lost


def broker_url() -> str | None:
    """The Celery broker configured in the environment, if any."""
    return os.environ.get("SPLINEVIZ_CELERY_BROKER") or os.environ.get("REDIS_URL")


def lost_payload(reason: str) -> dict[str, Any]:
    """What a poll of a lost job returns: Dash hands it to the callback's ``on_error`` as an exception."""
    return {"background_callback_error": {"msg": f"{JOB_LOST}: {reason}", "tb": ""}}


def lost_job_reason(error: BaseException) -> str | None:
    """Why a background job was lost, if ``error`` (from a callback's ``on_error``) says so; None otherwise."""
    text = str(error)
    start = text.find(JOB_LOST + ": ")
    if start < 0:
        return None
    return text[start + len(JOB_LOST) + 2:].split("\n", 1)[0].strip()


# -- local processes ----------------------------------------------------------------------------------------------
class LocalJobManager(DiskcacheManager):
    """Jobs in child processes of the web server, reaped as soon as they end, and reported lost if they die."""

    CANCELLED = "splineviz-cancelled-"

    def call_job_fn(self, key: str, job_fn: Any, args: Any, context: Any) -> int:
        from multiprocess import Process

        process = Process(target=job_fn, args=(key, self._make_progress_key(key), args, context))
        process.start()
        self.handle.delete(self.CANCELLED + str(process.pid))  # a reused pid starts with a clean record
        # join() in a thread reaps the child the moment it exits, instead of leaving a zombie until the next job
        threading.Thread(target=process.join, name=f"reap-{process.pid}", daemon=True).start()
        return process.pid

    def terminate_job(self, job: Any) -> None:
        import psutil

        if job is not None:
            self.handle.set(self.CANCELLED + str(job), True, expire=RESULT_EXPIRY_S)
        try:
            super().terminate_job(job)
        except psutil.NoSuchProcess:
            pass  # it ended (and was reaped) between Dash's existence check and the kill

    def _alive(self, job: Any) -> bool:
        import psutil

        try:
            return super().job_running(job)
        except psutil.NoSuchProcess:
            return False  # reaped between Dash's existence check and its status read

    def job_running(self, job: Any) -> bool:
        # A dead process may have written its result after the poll read nothing: keep the client polling once
        # more, and let get_result decide between that result and "lost". Only a cancelled job stops the loop.
        return job is not None and self.handle.get(self.CANCELLED + str(job)) is None

    def get_result(self, key: str, job: Any) -> Any:
        result = super().get_result(key, job)
        if result is not self.UNDEFINED or job is None or self._alive(job):
            return result
        result = super().get_result(key, job)  # the process has ended: whatever it wrote is there now
        if result is not self.UNDEFINED or self.handle.get(self.CANCELLED + str(job)) is not None:
            return result
        return lost_payload("its process ended without a result (killed, or out of memory)")


def local_cache_dir() -> Path:
    """The job cache's directory (SPLINEVIZ_CACHE_DIR, or one in the temp dir); the quota registry and the frame
    store keep theirs beside it, with a suffix."""
    return Path(os.environ.get("SPLINEVIZ_CACHE_DIR") or Path(tempfile.gettempdir()) / "splineviz-cache")


def diskcache_manager(cache_dir: str | os.PathLike | None = None) -> LocalJobManager:
    """Jobs run in child processes of the web server; results and progress go through an on-disk cache."""
    import diskcache

    return LocalJobManager(diskcache.Cache(str(cache_dir or local_cache_dir())), expire=RESULT_EXPIRY_S)


# -- Celery workers -----------------------------------------------------------------------------------------------
QUEUED, RUNNING, DONE, CANCELLED = "queued", "running", "done", "cancelled"

# Start a job only from "queued": a second delivery of the same task finds "running" or "done" and is dropped.
_CLAIM = "if redis.call('GET', KEYS[1]) == 'queued' then " \
         "redis.call('SET', KEYS[1], 'running', 'EX', ARGV[1]) return 1 end return 0"
# Refresh a running job's record, and write it again if Redis came back empty; never undo a cancel.
_HEARTBEAT = "local v = redis.call('GET', KEYS[1]) if v == false or v == 'running' then " \
             "redis.call('SET', KEYS[1], 'running', 'EX', ARGV[1]) end return 0"
_FINISH = "if redis.call('GET', KEYS[1]) ~= 'cancelled' then redis.call('SET', KEYS[1], 'done', 'EX', ARGV[1]) end " \
          "return 0"


def job_key(job: str) -> str:
    return f"splineviz-job-{job}"


def _connection_errors() -> tuple[type[BaseException], ...]:
    import redis

    return redis.ConnectionError, redis.TimeoutError, OSError


def _make_task_class():
    """The Celery Task base class for every background callback: run once, with a heartbeat while running."""
    from celery import Task
    from celery.exceptions import Ignore

    class RunOnceTask(Task):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            client = self.backend.client
            job = self.request.id
            if not client.eval(_CLAIM, 1, job_key(job), HEARTBEAT_TTL_S):
                raise Ignore()  # already running, finished, cancelled, or lost with its record
            stop = threading.Event()
            beat = threading.Thread(target=_heartbeat, args=(client, job, stop), name=f"heartbeat-{job}",
                                    daemon=True)
            beat.start()
            try:
                return super().__call__(*args, **kwargs)
            finally:
                stop.set()
                beat.join()
                # the result is stored by now (with the backend's retries); record the end the same way
                self.backend.ensure(client.eval, (_FINISH, 1, job_key(job), RESULT_EXPIRY_S))

    return RunOnceTask


def _heartbeat(client: Any, job: str, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_S):
        try:
            client.eval(_HEARTBEAT, 1, job_key(job), HEARTBEAT_TTL_S)
        except _connection_errors():
            pass  # Redis is down: the next beat after it returns writes the record again


class QueueJobManager(CeleryManager):
    """Celery jobs with a record per job in Redis: queued, running (kept alive by a heartbeat), done, cancelled."""

    def __init__(self, celery_app: Any, expire: int | None = None) -> None:
        super().__init__(celery_app, expire=expire)
        self._unreachable_since: float | None = None

    @property
    def _client(self) -> Any:
        return self.handle.backend.client

    def call_job_fn(self, key: str, job_fn: Any, args: Any, context: Any) -> str:
        """Queue the job. With Redis down, an id that the first poll reports lost: the page says why at once
        (an exception here would be an HTTP 500 that the page never shows)."""
        from kombu.exceptions import OperationalError

        job = uuid.uuid4().hex
        try:
            self._client.set(job_key(job), QUEUED, ex=RESULT_EXPIRY_S)
            job_fn.apply_async((key, self._make_progress_key(key), args, context), task_id=job,
                               retry_policy={"max_retries": 1, "interval_start": 0.5})
        except (*_connection_errors(), OperationalError):
            return UNSTARTED + job
        return job

    def terminate_job(self, job: Any) -> None:
        if job is None or str(job).startswith(UNSTARTED):
            return
        try:
            self._client.set(job_key(job), CANCELLED, ex=RESULT_EXPIRY_S)
            super().terminate_job(job)
        except _connection_errors():
            pass  # the queue is down: the job cannot report anything either

    def job_state(self, job: str) -> str | None:
        """queued, running, done, cancelled, or None when the record is gone (worker died, Redis emptied)."""
        state = self._client.get(job_key(job))
        return state.decode() if state is not None else None

    def job_running(self, job: Any) -> bool:
        # "done" counts as running until its result is read (get_result may have looked a moment too early);
        # a record that is gone is decided by get_result, which waits for a surviving job's next heartbeat.
        if job is None or str(job).startswith(UNSTARTED):
            return False
        try:
            return self.job_state(job) != CANCELLED
        except _connection_errors():
            return True

    def get_progress(self, key: str) -> Any:
        try:
            return super().get_progress(key)
        except _connection_errors():
            return None

    def get_updated_props(self, key: str) -> dict:
        try:
            return super().get_updated_props(key)
        except _connection_errors():
            return {}

    def get_result(self, key: str, job: Any) -> Any:
        if str(job).startswith(UNSTARTED):
            return lost_payload("the job queue (Redis) was unreachable, so it could not start; try again shortly")
        try:
            result = self._decide(key, job)
        except _connection_errors():
            now = time.monotonic()
            self._unreachable_since = self._unreachable_since or now
            if now - self._unreachable_since > UNREACHABLE_LIMIT_S:
                return lost_payload(f"the job queue (Redis) has been unreachable for over {UNREACHABLE_LIMIT_S:.0f} s")
            return self.UNDEFINED
        self._unreachable_since = None
        return result

    def _decide(self, key: str, job: Any) -> Any:
        result = super().get_result(key, job)
        if result is not self.UNDEFINED or job is None:
            return result
        state = self.job_state(job)
        if state is None:  # a job that survived a Redis restart writes its record again within one heartbeat ...
            if self._emptied_lately():
                return self.UNDEFINED  # ... once its worker has reconnected, which can take seconds on a busy machine
            time.sleep(1.5 * HEARTBEAT_S)
            state = self.job_state(job)
        if state in (QUEUED, RUNNING, CANCELLED):
            return self.UNDEFINED
        result = super().get_result(key, job)  # it may have finished since the first look
        if result is not self.UNDEFINED:
            return result
        if state == DONE:
            return lost_payload("it finished but its result has expired or was already read")
        return lost_payload("its worker stopped or the job queue (Redis) lost it")


    def _emptied_lately(self) -> bool:
        """Whether Redis lost its data less than RESTART_GRACE_S ago: a marker key written at first contact is gone
        (or was written since). A missing job record then says nothing yet; otherwise it means a dead worker."""
        now = time.time()
        if self._client.set(_MARKER, now, nx=True):
            return True
        since = self._client.get(_MARKER)
        return since is None or now - float(since) < RESTART_GRACE_S


def celery_app(broker: str | None = None) -> Any:
    """The Celery app every web process and worker shares (same configuration on both sides)."""
    from celery import Celery

    from splineviz.web.results import backend_url

    broker = broker or broker_url() or DEFAULT_BROKER
    backend = backend_url(os.environ.get("SPLINEVIZ_CELERY_BACKEND", broker))
    app = Celery("splineviz", broker=broker, backend=backend, task_cls=_make_task_class())
    app.conf.update(
        # Acknowledge a task when it ends, so that a worker whose processes are busy reserves nothing more (with
        # acks at start it takes the next message too, and that job waited a whole job's length beside an idle
        # process: under load, six jobs on six processes did not all start). Run-once comes from the claim, and a
        # killed worker's task is acknowledged, not queued again: a lost job is reported, never run twice.
        task_acks_late=True, task_reject_on_worker_lost=False, worker_prefetch_multiplier=1,
        # An unacknowledged message (a dead worker's, or a task still running) is handed out again after this;
        # the run-once claim drops the copy, so it need not be the default hour.
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_S},
        broker_connection_retry_on_startup=True, broker_connection_max_retries=None,
        redis_socket_connect_timeout=2, redis_socket_timeout=10, redis_retry_on_timeout=True,
        result_expires=RESULT_EXPIRY_S)
    return app


def celery_manager(broker: str | None = None) -> QueueJobManager:
    """Jobs run on Celery workers; Redis carries tasks, job records, progress and results."""
    return QueueJobManager(celery_app(broker), expire=RESULT_EXPIRY_S)


def make_manager(use_celery: bool = False) -> LocalJobManager | QueueJobManager:
    """Celery when asked for or configured in the environment, diskcache otherwise."""
    return celery_manager() if use_celery or broker_url() else diskcache_manager()


def backend_healthy(manager: Any) -> bool:
    """Whether the job backend answers (a Redis ping for Celery; the local cache always does)."""
    if not isinstance(manager, QueueJobManager):
        return True
    try:
        return bool(manager.handle.backend.client.ping())
    except _connection_errors():
        return False

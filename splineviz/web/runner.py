"""Inside a background job: progress with a heartbeat, a job slot per tab, and a cancel() for the library.

``JobContext.start`` runs in the job's own process (a diskcache child or a Celery worker). It takes one of
the tab's job slots (``LIMITS.jobs_per_session``) and starts a thread that, every second, re-sends the
latest progress (so the page can tell a silent job from a slow one), renews the slot's lease and checks
that the tab is still open and the job within ``LIMITS.job_timeout_s``. The library's long functions take
``ctx.cancel`` and stop with ``Cancelled`` soon after either fails.
"""
from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
import uuid
from typing import Any, Callable, Iterator

import torch

from splineviz.nets import ModelLoadError, UnsupportedLayerError
from splineviz.partition import Cancelled, PartitionBudgetError
from splineviz.web.params import LIMITS, Limits
from splineviz.web.quota import Registry, registry, valid_session

log = logging.getLogger(__name__)
Progress = Callable[[float, str], None]
BEAT_S = 1.0
LEASE_S = 15.0  # a slot not renewed for this long is free again (its job process died)


class QuotaError(RuntimeError):
    """The tab already runs as many jobs as it may."""


def use_one_thread() -> None:
    """Small nets train fastest on one thread, and jobs run side by side in their own processes: more
    intra-op threads only make them fight over the cores (10 epochs: 0.3 s on one thread, 7 s on two busy
    ones). Called where work starts (job processes, the web process at app creation), never on import."""
    torch.set_num_threads(1)


class JobContext:
    """Handed to every job function: ``progress(fraction, message)`` and ``cancel() -> bool``."""

    def __init__(self, session: str, set_progress: Callable[[Any], None] | None, limits: Limits = LIMITS,
                 shared: Registry | None = None) -> None:
        self.session, self.limits = session, limits
        self.registry = shared if shared is not None else registry()
        self.id = uuid.uuid4().hex
        self.deadline = time.monotonic() + limits.job_timeout_s
        self.stopped: str | None = None  # why the job must stop, once it must
        self._send = set_progress
        self._last: tuple[str, str] = ("0", "starting")
        self._stream: Any = None  # the latest partial result, for jobs registered with a stream output
        self._streams = False
        self._stream_until: float | None = None  # after this, progress and beats send None instead (stream())
        self._beats = 0
        self._extra: list[str] = []  # further slots held (slots()), renewed with the job's own
        self._lock = threading.Lock()
        self._done = threading.Event()

    @classmethod
    @contextlib.contextmanager
    def start(cls, session: Any, set_progress: Callable[[Any], None] | None, limits: Limits = LIMITS,
              shared: Registry | None = None) -> Iterator["JobContext"]:
        """Take a job slot for the tab ``session`` (QuotaError if none is free) and beat until the block ends."""
        if not valid_session(session):
            raise QuotaError("this page has no session id; reload it")
        ctx = cls(session, set_progress, limits, shared)
        ctx.registry.beat(session)  # the request that started the job shows the tab is open
        if not ctx.registry.acquire(session, ctx.id, limits.jobs_per_session, LEASE_S):
            n = limits.jobs_per_session
            raise QuotaError(f"this tab already runs {n} job{'s' if n != 1 else ''}, the most it may run at once; "
                             "wait for one to finish or cancel it")
        use_one_thread()
        beat = threading.Thread(target=ctx._beat_loop, name="splineviz-job-beat", daemon=True)
        beat.start()
        try:
            yield ctx
        finally:
            ctx._done.set()
            beat.join(timeout=2 * BEAT_S)
            ctx.registry.release(session, ctx.id)

    def progress(self, fraction: float, message: str) -> None:
        """Library-style progress: ``fraction`` of the job done, in words."""
        with self._lock:
            self._last = (str(round(100 * min(max(fraction, 0.0), 1.0), 1)), message)
        self._emit()

    def stream(self, payload: Any, resend_s: float | None = None) -> None:
        """Show ``payload`` (JSON) on the page before the job ends, in the job's ``stream`` output (see
        ``wiring.job``). Latest wins: the page polls a few times a second and may miss an intermediate payload,
        so each one should stand on its own (the whole state so far, or the newest item with its index); progress
        and the heartbeat re-send the latest, for ``resend_s`` seconds if given and then ``None`` (for payloads of
        megabytes, which the page should not receive again every second)."""
        with self._lock:
            self._stream, self._streams = payload, True
            self._stream_until = None if resend_s is None else time.monotonic() + resend_s
        self._emit(fresh=True)

    @contextlib.contextmanager
    def slots(self, wanted: int) -> Iterator[int]:
        """Up to ``wanted`` job slots for work this job computes in parallel: its own and as many more of its
        tab's as are free (``LIMITS.jobs_per_session`` counts them like jobs), renewed by the heartbeat and
        released when the block ends; how many it holds."""
        extra = []
        for _ in range(max(wanted - 1, 0)):
            slot = uuid.uuid4().hex
            if not self.registry.acquire(self.session, slot, self.limits.jobs_per_session, LEASE_S):
                break
            extra.append(slot)
        with self._lock:
            self._extra = list(extra)
        try:
            yield 1 + len(extra)
        finally:
            with self._lock:
                self._extra = []
            for slot in extra:
                self.registry.release(self.session, slot)

    def part(self, lo: float, hi: float) -> Progress:
        """A progress function for a step that covers ``lo``..``hi`` of the job."""
        return lambda fraction, message: self.progress(lo + (hi - lo) * fraction, message)

    def cancel(self) -> bool:
        """True once the job must stop: its tab has gone, or it ran past the job timeout."""
        if self.stopped is None and time.monotonic() > self.deadline:
            self.stopped = f"it ran past the limit of {self.limits.job_timeout_s / 60:g} minutes per job"
        return self.stopped is not None

    def _emit(self, fresh: bool = False) -> None:
        if self._send is None:
            return
        with self._lock:
            self._beats += 1
            stale = not fresh and self._stream_until is not None and time.monotonic() >= self._stream_until
            value = (*self._last, self._beats, None if stale else self._stream) if self._streams \
                else (*self._last, self._beats)
        self._send(value)

    def beat(self) -> None:
        """Re-send the last progress, renew the job's slot, and note if its tab has gone (every BEAT_S)."""
        self._emit()
        with self._lock:
            held = [self.id, *self._extra]
        for slot in held:
            self.registry.renew(self.session, slot, LEASE_S)
        seen = self.registry.last_seen(self.session)
        if seen is None or time.time() - seen > self.limits.heartbeat_timeout_s:
            self.stopped = "its browser tab was closed"

    def _beat_loop(self) -> None:
        while not self._done.wait(BEAT_S):
            try:
                self.beat()
            except Exception:  # noqa: BLE001 - a registry hiccup must not kill the job; the next beat retries
                log.warning("job heartbeat failed", exc_info=True)


# failures that are the user's input or choice, not bugs: reported without a traceback
EXPECTED = (ModelLoadError, UnsupportedLayerError, PartitionBudgetError, QuotaError, Cancelled, ValueError, IndexError)


def user_message(exc: BaseException, ctx: JobContext | None = None) -> str:
    """The part of an error a user can act on (loader errors end with the parser's details in brackets)."""
    if isinstance(exc, Cancelled) and ctx is not None and ctx.stopped:
        return f"stopped because {ctx.stopped}"
    if isinstance(exc, PartitionBudgetError):
        return f"the network makes too many regions to draw ({exc}); try fewer or narrower layers"
    if isinstance(exc, EXPECTED):
        return re.sub(r" \(\w+(Error|Exception): .*\)$", "", str(exc), flags=re.S)
    return f"unexpected {type(exc).__name__}: {exc} (this is a bug; please report it)"

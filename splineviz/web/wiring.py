"""Registering callbacks with named outputs, for server and browser alike.

Server callbacks return a dict holding only the outputs they change (``fill`` sends ``no_update`` for the
rest), so an error path is one line instead of a tuple of placeholders. Background jobs go through
``job``: it adds the job's stores (see ``ids.Job``), runs the function inside ``JobContext.start``, turns
every exception into a message for the page and registers the browser's watch over the job (which also
reports a job whose polls keep failing). Browser callbacks (``clientside``) call a function of
``window.splineviz`` with named inputs and a config (the ids it needs), and return named outputs.
"""
from __future__ import annotations

import functools
import json
import logging
import time
from typing import Any, Callable, Mapping

import dash
from dash import Dash, Input, Output, State

from splineviz.web import ids
from splineviz.web.manager import lost_job_reason
from splineviz.web.params import LIMITS, Limits
from splineviz.web.runner import EXPECTED, JobContext, user_message

log = logging.getLogger(__name__)
Deps = Mapping[str, Input | State]


def fill(outputs: Mapping[str, Output], values: Mapping[str, Any]) -> dict[str, Any]:
    """Every named output: its value where given, ``no_update`` elsewhere."""
    unknown = set(values) - set(outputs)
    if unknown:
        raise KeyError(f"not outputs of this callback: {sorted(unknown)}")
    return {name: values.get(name, dash.no_update) for name in outputs}


def callback(app: Dash, output: Mapping[str, Output], inputs: Deps, state: Deps | None = None,
             **options: Any) -> Callable:
    """``app.callback`` with named outputs, inputs and state; the function returns some of the outputs."""
    def register(fn: Callable[..., Mapping[str, Any]]) -> Callable:
        @functools.wraps(fn)
        def run(**values: Any) -> dict[str, Any]:
            return fill(output, fn(**values) or {})

        app.callback(output=dict(output), inputs=dict(inputs), state=dict(state or {}), **options)(run)
        return fn
    return register


def job(app: Dash, job_ids: ids.Job, what: str, alert: str, output: Mapping[str, Output], inputs: Deps,
        state: Deps | None = None, start: str | None = None, cancel: str | None = None,
        cancel_on: list[Input] | None = None, retry: str | None = None, interval: int = 300,
        hide_idle_progress: bool = True, watch: bool = True, stream: Output | None = None) -> Callable:
    """A background job ``fn(ctx, **values) -> outputs``, with progress, quota, heartbeat and an error path.

    ``start`` is disabled while the job runs; the ``cancel`` button is enabled while it runs and stops it, as
    do changes of the ``cancel_on`` inputs. The progress bar shows only while the job runs unless
    ``hide_idle_progress`` is False. Whatever the function raises reaches the page's ``alert`` as
    "{what} failed: ..." (through the job's ``done`` store), as does a job its manager reports lost; one whose
    polls fail for ``LIMITS.lost_silence_s`` (server down, HTTP errors) is reported lost by the browser, which
    writes ``done`` itself. Lost jobs' messages end with ``retry``. ``watch=False`` leaves all that to the page
    (the Playground's transport does it).
    ``stream`` receives what the function passes to ``ctx.stream`` while it runs (partial results: frames as
    training proceeds); the page sees ``None`` there until the first one, and again once the job has ended.
    """
    outputs = {**output, "done": Output(job_ids.done, "data")}
    shown, hidden = {"visibility": "visible"}, {"visibility": "hidden"}
    flags = [(Output(job_ids.busy, "data"), True, False)]
    if hide_idle_progress:
        flags.append((Output(job_ids.row, "style"), shown, hidden))
    if start:
        flags.append((Output(start, "disabled"), True, False))
    stop = ([Input(cancel, "n_clicks")] if cancel else []) + list(cancel_on or [])
    if cancel:
        flags.append((Output(cancel, "disabled"), False, True))

    def register(fn: Callable[..., Mapping[str, Any]]) -> Callable:
        @functools.wraps(fn)
        def run(set_progress: Callable, session: str, **values: Any) -> dict[str, Any]:
            send = set_progress
            if stream:  # progress before the first ctx.stream: nothing to stream yet
                send = lambda value: set_progress(value if len(value) == 4 else (*value, None))  # noqa: E731
            return run_job(fn, outputs, what, session, send, values)

        def lost(error: Exception) -> dict[str, Any]:
            """The job manager's answer for a job that can no longer finish (manager.lost_job_reason)."""
            return fill(outputs, {"done": lost_outcome(what, error)})

        app.callback(output=outputs, inputs=dict(inputs),
                     state={**(state or {}), "session": State(ids.SESSION, "data")},
                     background=True, interval=interval, prevent_initial_call=True,
                     progress=[Output(job_ids.progress, "value"), Output(job_ids.label, "children"),
                               Output(job_ids.beat, "data"), *([stream] if stream else [])],
                     progress_default=["0", "", None, *([None] if stream else [])], running=flags,
                     cancel=stop or None, on_error=lost)(run)
        if watch:
            _watch(app, job_ids, what, alert, cancel, retry)
        return fn
    return register


def run_job(fn: Callable[..., Mapping[str, Any]], outputs: Mapping[str, Output], what: str, session: Any,
            set_progress: Callable | None, values: Mapping[str, Any], limits: Limits = LIMITS) -> dict[str, Any]:
    """Run a job function in a job slot of its tab; every outcome, failures included, as the named outputs."""
    ctx = None
    try:
        with JobContext.start(session, set_progress, limits) as ctx:
            result = dict(fn(ctx, **values) or {})
    except Exception as exc:  # noqa: BLE001 - every failure must reach the page, never a silent stop
        message = f"{what} failed: {user_message(exc, ctx)}"
        log.warning("%s", message, exc_info=not isinstance(exc, EXPECTED))
        return fill(outputs, {"done": {"ok": False, "error": message, "lost": None, "t": time.time()}})
    return fill(outputs, {**result, "done": {"ok": True, "error": None, "lost": None, "t": time.time()}})


def lost_outcome(what: str, error: BaseException) -> dict[str, Any]:
    """``done`` for a job its manager reports lost (killed, out of memory, its queue entry gone), or that failed
    where the job's own error path could not catch it."""
    reason = lost_job_reason(error)
    if reason is None:
        log.warning("%s failed outside its job", what, exc_info=error)
        return {"ok": False, "error": f"{what} failed: {error}", "lost": None, "t": time.time()}
    return {"ok": False, "error": f"{what} was lost: {reason}.", "lost": reason, "t": time.time()}


def _watch(app: Dash, job_ids: ids.Job, what: str, alert: str, cancel: str | None, retry: str | None) -> None:
    """The browser's watch over one job (splineviz-6-jobs.js, watch): its failures, lost jobs, polls that fail
    for ``LIMITS.lost_silence_s`` and cancels reach the page's alert. ``watch_jobs`` puts the job under the poll
    watch at page load."""
    config = {"done": job_ids.done, "alert": alert, "what": what, "retry": retry, "timing": LIMITS.browser_timing}
    app.__dict__.setdefault("_splineviz_watched", []).append(config)
    clientside(app, "jobs.watch", None, {"done": Input(job_ids.done, "data")}, config=config)
    if cancel:
        clientside(app, "jobs.cancelled", None, {"clicks": Input(cancel, "n_clicks")},
                   config={"done": job_ids.done, "alert": alert, "what": what}, prevent_initial_call=True)


def watch_jobs(app: Dash) -> None:
    """Put every watched job (``job``) under the browser's poll watch at page load. Called once all pages have
    registered: a page mounted on its first visit gets no initial call of its callbacks without outputs (Dash 4.4
    runs those of a new layout chunk only for their outputs), so ``jobs.watch`` cannot do it there."""
    clientside(app, "jobs.register", None, {"session": Input(ids.SESSION, "data"), "path": Input(ids.URL, "pathname")},
               config=app.__dict__.get("_splineviz_watched", []))  # (each navigation registers them again: a no-op)


def clientside(app: Dash, function: str, output: Mapping[str, Output] | Output | None, inputs: Deps,
               state: Deps | None = None, config: Any = None, written: Mapping[str, Output] | None = None,
               **options: Any) -> None:
    """Register ``window.splineviz.<function>(values, config)`` as a browser callback.

    ``values`` holds the named inputs and state, and ``values.triggered`` the names that fired; the function
    returns an object of named outputs (missing ones are left alone), the value itself for a single ``Output``,
    or nothing for ``output=None``. ``config`` (ids, limits) is passed as JSON, so no script hard-codes an id.
    ``written`` names more outputs that are set (with ``set_props``) only when the function returns them: Dash
    updates every declared output of a callback on each call, those left as no_update with empty props, and each
    such update re-renders its component and runs every component's store selector. A callback called ten times
    a second with sixteen outputs kept the page busy that way.
    """
    if output is None:  # Dash names a callback without outputs by its inputs: a second one would replace it
        taken = app.__dict__.setdefault("_splineviz_no_output_inputs", set())
        key = tuple(sorted(f"{d.component_id}.{d.component_property}" for d in inputs.values()))
        if key in taken:
            raise ValueError(f"another callback without outputs already has the inputs {key}")
        taken.add(key)
    deps = {**inputs, **(state or {})}
    props = [f"{dep.component_id}.{dep.component_property}" for dep in deps.values()]
    outs = [] if output is None else [output] if isinstance(output, Output) else list(output.values())
    out_names = None if output is None or isinstance(output, Output) else list(output)
    sets = {name: [o.component_id, o.component_property] for name, o in written.items()} if written else None
    js = (f"function(...args) {{ return window.splineviz.call({json.dumps(function)}, {json.dumps(list(deps))}, "
          f"{json.dumps(props)}, {json.dumps(out_names)}, {json.dumps(config)}, args, {json.dumps(sets)}); }}")
    app.clientside_callback(js, *outs, *inputs.values(), *(state or {}).values(), **options)


def export_images(app: Dash, buttons: ids.Export, graph: str, describe: str, alert: str, name: str) -> None:
    """PNG and SVG buttons of a painted graph (splineviz-4-export.js): ``describe`` names the page function
    that titles the export and lists its legend."""
    for fmt, button_id in (("png", buttons.png), ("svg", buttons.svg)):
        clientside(app, "exporter.download", None, {"clicks": Input(button_id, "n_clicks")},
                   config={"graph": graph, "format": fmt, "describe": describe, "alert": alert, "name": name},
                   prevent_initial_call=True)

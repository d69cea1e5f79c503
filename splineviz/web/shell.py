"""The frame around the pages: header and navigation, routing by URL path, state in the URL, app-level stores.

All pages stay mounted and are shown or hidden by path, so switching pages never loses a page's state
(a Playground run keeps its frames while you look at pruning). The address bar always holds the
controls that differ from their defaults (``params.URL_PARAMS``), so copying it shares the view; values
read from it are cleaned like any other input, so a bad link opens a working page.
"""
from __future__ import annotations

import uuid
from types import ModuleType
from typing import Any, Mapping
from urllib.parse import parse_qsl, urlencode

import dash
from dash import Dash, Input, Output, dcc, html

from splineviz.figures import STYLE
from splineviz.web import ids, quota
from splineviz.web.pages import earlybird, experiments, mnist, playground, pruning
from splineviz.web.params import LIMITS, URL_PARAMS, Param
from splineviz.web.runner import use_one_thread
from splineviz.web.wiring import callback, clientside

PAGES: list[ModuleType] = [playground, pruning, earlybird, mnist, experiments]


def _name(page: ModuleType) -> str:
    return page.PATH.strip("/")


def layout() -> html.Div:
    """Called per page load, so every browser tab gets its own session id."""
    nav = [dcc.Link(page.TITLE, href=page.PATH, id=ids.nav(_name(page)), className="nav-link") for page in PAGES]
    return html.Div([
        dcc.Location(id=ids.URL, refresh="callback-nav"),
        dcc.Store(id=ids.SESSION, data=uuid.uuid4().hex),
        dcc.Store(id=ids.STYLE, data=STYLE),
        dcc.Store(id=ids.MODEL),
        dcc.Store(id=ids.DATA),
        html.Header([
            html.Div([html.Span("◆", className="logo-mark"), html.Span("splineviz", className="logo-text"),
                      html.Span("exact partitions of ReLU networks", className="logo-sub")], className="logo"),
            html.Nav(nav, className="nav"),
            html.Button("Copy link", id=ids.COPY_LINK, className="btn btn-ghost", n_clicks=0,
                        title="Copy a link to this view (the settings are in the address)"),
        ], className="header"),
        html.Main([html.Div(page.layout(), id=ids.page(_name(page)), className="page-wrap") for page in PAGES],
                  className="main"),
    ], className="app")


def parse_search(search: str | None, params: Mapping[str, Param] = URL_PARAMS) -> dict[str, Any]:
    """URL query -> control values, each cleaned by its Param (clamped, or its default if unreadable);
    unknown keys are ignored."""
    return {key: params[key].clean(raw) for key, raw in parse_qsl((search or "").lstrip("?")) if key in params}


def encode_search(values: Mapping[str, Any], params: Mapping[str, Param] = URL_PARAMS) -> str:
    """Control values -> URL query holding only what differs from the defaults."""
    changed = {k: v for k, v in values.items() if k in params and v is not None and v != params[k].default}
    return "?" + urlencode(changed) if changed else ""


def configure_server(app: Dash) -> None:
    """Server settings the pages rely on: the request size limit, the tab heartbeat routes, one torch thread.

    Called by ``register`` (so by ``web.app.create_app``)."""
    app.server.config["MAX_CONTENT_LENGTH"] = LIMITS.request_bytes
    quota.register_routes(app.server, app.config.routes_pathname_prefix)
    use_one_thread()


def register(app: Dash) -> None:
    configure_server(app)

    clientside(app, "shell.route",
               output={**{f"style_{_name(p)}": Output(ids.page(_name(p)), "style") for p in PAGES},
                       **{f"nav_{_name(p)}": Output(ids.nav(_name(p)), "className") for p in PAGES}},
               inputs={"path": Input(ids.URL, "pathname")},
               config={"pages": [{"path": p.PATH, "page": _name(p), "nav": ids.nav(_name(p))} for p in PAGES]})

    controls = {key: (p.id, p.prop) for key, p in URL_PARAMS.items()}

    @callback(app, output={"search": Output(ids.URL, "search"),
                           **{key: Output(cid, prop) for key, (cid, prop) in controls.items()}},
              inputs={"search": Input(ids.URL, "search"),
                      **{key: Input(cid, prop) for key, (cid, prop) in controls.items()}})
    def sync_url(search: str | None, **values: Any) -> dict:
        """Two-way binding: a loaded URL sets the controls (and is rewritten with the values as cleaned);
        changed controls rewrite the URL."""
        parsed = parse_search(search) if dash.ctx.triggered_id in (ids.URL, None) else {}
        new = encode_search({**values, **parsed})
        return {**parsed, **({"search": new} if new != (search or "") else {})}

    prefix = app.config.requests_pathname_prefix.rstrip("/")
    clientside(app, "jobs.heartbeat", None, {"session": Input(ids.SESSION, "data")},
               config={"beat": prefix + quota.BEAT_PATH, "bye": prefix + quota.BYE_PATH,
                       "seconds": LIMITS.heartbeat_s})
    app.clientside_callback(
        "function(n) { if (n && navigator.clipboard) { navigator.clipboard.writeText(window.location.href); } "
        "return n ? 'Copied!' : 'Copy link'; }",
        Output(ids.COPY_LINK, "children"), Input(ids.COPY_LINK, "n_clicks"))

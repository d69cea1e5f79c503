"""The frame around the pages: header and navigation, routing by URL path, and state in the URL.

All pages stay mounted and are shown or hidden by path, so switching pages never loses a page's state
(a playground run keeps its frames while you look at pruning). The address bar always holds the
controls that differ from their defaults, so copying it shares the view.
"""
from __future__ import annotations

import uuid
from types import ModuleType
from typing import Any, Sequence
from urllib.parse import parse_qsl, urlencode

import dash
from dash import Dash, Input, Output, dcc, html

from splineviz.figures import STYLE
from splineviz.web.jobs import MAX_FRAMES
from splineviz.web.pages import earlybird, experiments, mnist, playground, pruning

PAGES: list[ModuleType] = [playground, pruning, earlybird, mnist, experiments]
# WebGL traces in the browser: redrawing a frame costs ~50 ms instead of ~170 ms with SVG (headless, software
# GL); exports and server-side figures stay SVG.
BROWSER_STYLE = {**STYLE, "trace_type": "scattergl", "max_frames": MAX_FRAMES,
                 "chunk_frames": playground.CHUNK_FRAMES}


def _page_id(page: ModuleType) -> str:
    return f"page-{page.PATH.strip('/')}"


def layout() -> html.Div:
    """Called per page load, so every browser tab gets its own session id."""
    nav = [dcc.Link(page.TITLE, href=page.PATH, id=f"nav-{page.PATH.strip('/')}", className="nav-link")
           for page in PAGES]
    return html.Div([
        dcc.Location(id="url", refresh="callback-nav"),
        dcc.Store(id="session-id", data=uuid.uuid4().hex),
        dcc.Store(id="style", data=BROWSER_STYLE),
        html.Header([
            html.Div([html.Span("◆", className="logo-mark"), html.Span("splineviz", className="logo-text"),
                      html.Span("exact partitions of ReLU networks", className="logo-sub")], className="logo"),
            html.Nav(nav, className="nav"),
            html.Button("Copy link", id="copy-link", className="btn btn-ghost", n_clicks=0,
                        title="Copy a link to this view (the settings are in the address)"),
        ], className="header"),
        html.Main([html.Div(page.layout(), id=_page_id(page), className="page-wrap") for page in PAGES],
                  className="main"),
        dcc.Store(id="copy-dummy"),
    ], className="app")


def _url_controls() -> list[tuple[str, str, str]]:
    """(url key, component id, property) for every control kept in the URL, over all pages."""
    return [(key, cid, prop) for page in PAGES for key, (cid, prop) in page.URL_STATE.items()]


def parse_search(search: str | None, defaults: dict[str, Any]) -> dict[str, Any]:
    """URL query -> control values, typed like the defaults; unknown keys and unparsable values are ignored."""
    values = {}
    for key, raw in parse_qsl((search or "").lstrip("?")):
        if key not in defaults:
            continue
        default = defaults[key]
        try:
            values[key] = type(default)(raw) if default is not None and not isinstance(default, bool) else raw
        except ValueError:
            continue
    return values


def encode_search(values: dict[str, Any], defaults: dict[str, Any]) -> str:
    """Control values -> URL query holding only what differs from the defaults."""
    changed = {k: v for k, v in values.items() if v is not None and v != defaults.get(k)}
    return "?" + urlencode(changed) if changed else ""


def _defaults(layout_root: Any) -> dict[str, Any]:
    """Each URL key's default = the control's initial value in the layout."""
    wanted = {cid: key for key, cid, _ in _url_controls()}
    found: dict[str, Any] = {}

    def walk(node: Any) -> None:
        if isinstance(node, (list, tuple)):
            for child in node:
                walk(child)
            return
        if not hasattr(node, "to_plotly_json"):
            return
        cid = getattr(node, "id", None)
        if cid in wanted:
            found[wanted[cid]] = getattr(node, "value", None)
        walk(getattr(node, "children", None))

    walk(layout_root)
    return found


def register(app: Dash) -> None:
    controls = _url_controls()
    defaults = _defaults(layout())

    @app.callback(*[Output(_page_id(p), "style") for p in PAGES], *[Output(f"nav-{p.PATH.strip('/')}", "className")
                                                                       for p in PAGES],
                  Input("url", "pathname"))
    def route(pathname: str | None) -> Sequence[Any]:
        """Show the page for the path ("/" is the playground)."""
        current = next((p for p in PAGES if pathname and pathname.rstrip("/") == p.PATH), PAGES[0])
        styles = [{"display": "block" if p is current else "none"} for p in PAGES]
        classes = ["nav-link active" if p is current else "nav-link" for p in PAGES]
        return (*styles, *classes)

    @app.callback(Output("url", "search"), *[Output(cid, prop, allow_duplicate=True) for _, cid, prop in controls],
                  Input("url", "search"), *[Input(cid, prop) for _, cid, prop in controls],
                  prevent_initial_call="initial_duplicate")
    def sync_url(search: str | None, *values: Any) -> Sequence[Any]:
        """Two-way binding: a loaded URL sets the controls; changed controls rewrite the URL."""
        if dash.ctx.triggered_id == "url" or not dash.ctx.triggered_id:
            parsed = parse_search(search, defaults)
            return (dash.no_update, *[parsed.get(key, dash.no_update) for key, _, _ in controls])
        current = {key: value for (key, _, _), value in zip(controls, values)}
        new = encode_search(current, defaults)
        return ((new if new != (search or "") else dash.no_update), *[dash.no_update] * len(controls))

    app.clientside_callback(
        "function(n) { if (n && navigator.clipboard) { navigator.clipboard.writeText(window.location.href); } "
        "return n ? 'Copied!' : 'Copy link'; }",
        Output("copy-link", "children"), Input("copy-link", "n_clicks"))

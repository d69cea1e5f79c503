"""The frame around the pages: header and navigation, routing by URL path, state in the URL, app-level stores.

A page is mounted when it is first shown and then stays, shown or hidden by path, so switching pages never loses
a page's state (a Playground run keeps its frames while you look at pruning). The Playground is always mounted: its
model and data feed the other pages. Pages not yet visited cost nothing: every mounted component runs Dash's store
selectors at each update of any store, and with all seven pages mounted (about 650 components) a 6 x 64 Playground
run's longest main-thread task was 264-347 ms, with the Playground alone 155-172 ms.

The address bar always holds the shown page's controls that differ from their defaults (``params.PAGE_PARAMS``:
the Pruning and Early-bird pages' include the Playground's run, which they train), so copying it shares that page's
view; the navigation links hold each page's, so going to a page opens it as it was left. A link may set any page's controls (``params.URL_PARAMS``); values
read from it are cleaned like any other input, so a bad link opens a working page, and those for a page not
mounted yet wait in ``ids.LINKED`` until it is (as an opened session's stores wait in ``ids.RESTORED``).

The shell also puts each page's lesson panel ("What am I seeing?", ``splineviz.web.lessons``) above it, presses
a page's run button for links with ``run=1`` (presets), and folds the navigation into a menu on narrow screens.
"""
from __future__ import annotations

import uuid
from types import ModuleType
from typing import Any

import dash
from dash import Dash, Input, Output, State, dcc, html

from splineviz.figures import STYLE
from splineviz.web import framestore, ids, quota
from splineviz.web.lessons import lesson_panel
from splineviz.web.pages import earlybird, experiments, lessons, mnist, playground, pruning, regression
from splineviz.web.params import LIMITS, PAGE_PARAMS, URL_PARAMS, Param, Shell, encode_search, page_keys, parse_search
from splineviz.web.runner import use_one_thread
from splineviz.web.wiring import callback, clientside

PAGES: list[ModuleType] = [playground, pruning, earlybird, regression, mnist, experiments, lessons]
LAZY = PAGES[1:]  # mounted when first shown; the Playground always is
MOUNTED = "page-wrap mounted"  # a page wrapper's class once its page is in the layout
# what run=1 presses on each page, once the element named by "ready" shows a value (the page has its model)
RUN_BUTTONS = {playground.PATH: {"button": ids.Playground.PLAY, "ready": ids.Playground.STAT_EPOCH},
               earlybird.PATH: {"button": ids.EarlyBird.RUN, "ready": ids.Playground.STAT_EPOCH},
               mnist.PATH: {"button": ids.Mnist.TRAIN, "ready": ids.Mnist.A.caption},
               regression.PATH: {"button": ids.Regression.TRAIN, "ready": ids.Regression.TRAIN},  # no model to wait for
               experiments.PATH: {"button": ids.Experiments.RUN, "ready": ids.Experiments.DESCRIPTION}}
HEADER = "header"
NAV = "nav"


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
        dcc.Store(id=ids.LINKED, data={}),
        dcc.Store(id=ids.RESTORED, data={}),
        dcc.Store(id=ids.AUTORUN, data=""),
        html.Header([
            html.Div([html.Span("◆", className="logo-mark"), html.Span("splineviz", className="logo-text"),
                      html.Span("exact partitions of ReLU networks", className="logo-sub")], className="logo"),
            html.Button("☰ Menu", id=ids.NAV_TOGGLE, className="btn btn-ghost nav-toggle", n_clicks=0,
                        **{"aria-expanded": "false", "aria-controls": NAV}),
            html.Nav(nav, className="nav", id=NAV),
            html.Button("Copy link", id=ids.COPY_LINK, className="btn btn-ghost", n_clicks=0,
                        title="Copy a link to this view (the settings are in the address)"),
        ], className="header", id=HEADER),
        html.Main([html.Div(_page(playground), id=ids.page(_name(playground)), className=MOUNTED),
                   *(html.Div([], id=ids.page(_name(page)), className="page-wrap") for page in LAZY)],
                  className="main"),
    ], className="app")


def _page(page: ModuleType) -> list:
    return [lesson_panel(page.PATH), page.layout()]


def _shown(path: str | None) -> ModuleType:
    """The page the address shows (the first for "/" and unknown paths, as shell.route in the browser)."""
    return next((p for p in PAGES if p.PATH == (path or "").rstrip("/")), PAGES[0])


def _own(page: ModuleType) -> tuple[Param, ...]:
    """A lazily mounted page's own URL parameters (its address may hold the Playground's too)."""
    return tuple(p for p in PAGE_PARAMS[_name(page)] if p not in PAGE_PARAMS[_name(playground)])


def page_search(path: str | None, values: dict[str, Any], run: bool = True) -> str:
    """The address query of the page at ``path``: its own keys' values that differ from the defaults (and
    ``run=1`` while a preset waits, unless ``run`` is False)."""
    keys = set(page_keys(path)) - (set() if run else {Shell.RUN.key})
    return encode_search({k: v for k, v in values.items() if k in keys})


def configure_server(app: Dash) -> None:
    """Server settings the pages rely on: the request size limit, the tab heartbeat routes, one torch thread.

    Called by ``register`` (so by ``web.app.create_app``)."""
    app.server.config["MAX_CONTENT_LENGTH"] = LIMITS.request_bytes
    quota.register_routes(app.server, app.config.routes_pathname_prefix)
    framestore.register_routes(app.server, app.config.routes_pathname_prefix)
    use_one_thread()


def register(app: Dash) -> None:
    configure_server(app)

    clientside(app, "shell.route",
               output={**{f"style_{_name(p)}": Output(ids.page(_name(p)), "style") for p in PAGES},
                       **{f"nav_{_name(p)}": Output(ids.nav(_name(p)), "className") for p in PAGES}},
               inputs={"path": Input(ids.URL, "pathname")},
               config={"pages": [{"path": p.PATH, "page": _name(p), "nav": ids.nav(_name(p))} for p in PAGES]})

    @callback(app, output={**{f"children_{_name(p)}": Output(ids.page(_name(p)), "children") for p in LAZY},
                           **{f"class_{_name(p)}": Output(ids.page(_name(p)), "className") for p in LAZY}},
              inputs={"path": Input(ids.URL, "pathname")},
              state={f"class_{_name(p)}": State(ids.page(_name(p)), "className") for p in LAZY})
    def mount(path: str | None, **classes: str) -> dict:
        """The shown page's layout, the first time it shows."""
        page = _shown(path)
        if page not in LAZY or classes[f"class_{_name(page)}"] == MOUNTED:
            return {}
        return {f"children_{_name(page)}": _page(page), f"class_{_name(page)}": MOUNTED}

    owner = {p.key: page for page in LAZY for p in _own(page) if p.key}
    always = {key: p for key, p in URL_PARAMS.items() if key not in owner}  # the Playground's and the shell's
    mounted = {f"mounted_{_name(p)}": Input(ids.page(_name(p)), "className") for p in LAZY}
    hrefs = {f"nav_{_name(p)}": Output(ids.nav(_name(p)), "href") for p in PAGES}

    @callback(app, output={"search": Output(ids.URL, "search"), "linked": Output(ids.LINKED, "data"), **hrefs,
                           **{key: Output(p.id, p.prop) for key, p in always.items()}},
              inputs={"path": Input(ids.URL, "pathname"), "search": Input(ids.URL, "search"), **mounted,
                      **{key: Input(p.id, p.prop) for key, p in always.items()},
                      **{key: Input(URL_PARAMS[key].id, URL_PARAMS[key].prop, allow_optional=True) for key in owner}},
              state={"linked": State(ids.LINKED, "data")})
    def sync_url(path: str | None, search: str | None, linked: dict | None, **values: Any) -> dict:
        """Two-way binding: a loaded URL sets the controls (any page's keys: a preset may set up the next page);
        the address then holds the shown page's keys only, as the controls have them (cleaned), and every
        navigation link holds its page's, so going to a page opens it as it was left. Values for a page not
        mounted yet (its controls read None) wait in LINKED and are set once it is (``set_props``: a declared
        output would have to be in the layout)."""
        present = {page for page in LAZY if values.pop(f"mounted_{_name(page)}") == MOUNTED}
        parsed = parse_search(search) if dash.ctx.triggered_id in (ids.URL, None) else {}
        waiting = {**(linked or {}), **parsed}
        for key, value in waiting.items():
            if key in owner and owner[key] in present:
                dash.set_props(URL_PARAMS[key].id, {URL_PARAMS[key].prop: value})
        left = {k: v for k, v in waiting.items() if k in owner and owner[k] not in present}
        values = {**values, **waiting}
        new = page_search(path, values)
        links = {f"nav_{_name(p)}": p.PATH + page_search(p.PATH, values, run=False) for p in PAGES}
        return {**{k: v for k, v in parsed.items() if k in always}, **links,
                **({"search": new} if new != (search or "") else {}), **({"linked": left} if left != linked else {})}

    pages = [{"path": p.PATH, "page": _name(p), "model": group.MODEL, "data": group.DATA}
             for p, group in ((pruning, ids.Pruning), (earlybird, ids.EarlyBird))]
    clientside(app, "shell.pageModel", None, {"model": Input(ids.MODEL, "data"), "data": Input(ids.DATA, "data"),
                                              "path": Input(ids.URL, "pathname"), **mounted},
               config={"pages": pages, "mounted": MOUNTED})
    clientside(app, "shell.deliver", None, {"restored": Input(ids.RESTORED, "data"), **mounted},
               config={"stores": ids.SESSION_STORES, "store": ids.RESTORED, "mounted": MOUNTED})
    clientside(app, "shell.menu", {"header": Output(HEADER, "className"),
                                   "expanded": Output(ids.NAV_TOGGLE, "aria-expanded")},
               {"toggle": Input(ids.NAV_TOGGLE, "n_clicks"), "path": Input(ids.URL, "pathname")},
               {"open": State(ids.NAV_TOGGLE, "aria-expanded")})
    clientside(app, "shell.autorun", None, {"run": Input(ids.AUTORUN, "data")}, {"path": State(ids.URL, "pathname")},
               config={"store": ids.AUTORUN, "pages": RUN_BUTTONS, "home": PAGES[0].PATH}, prevent_initial_call=True)

    prefix = app.config.requests_pathname_prefix.rstrip("/")
    clientside(app, "jobs.heartbeat", None, {"session": Input(ids.SESSION, "data")},
               config={"beat": prefix + quota.BEAT_PATH, "bye": prefix + quota.BYE_PATH,
                       "seconds": LIMITS.heartbeat_s})
    app.clientside_callback(
        "function(n) { if (n && navigator.clipboard) { navigator.clipboard.writeText(window.location.href); } "
        "return n ? 'Copied!' : 'Copy link'; }",
        Output(ids.COPY_LINK, "children"), Input(ids.COPY_LINK, "n_clicks"))

"""Lessons: the gallery of presets, links that open a page in a known state (``splineviz.web.lessons``)."""
from __future__ import annotations

from dash import Dash, html

from splineviz.web.components import card
from splineviz.web.lessons import GROUPS, Preset

PATH = "/lessons"
TITLE = "Lessons"


def _preset(preset: Preset) -> html.Div:
    badge = [html.Span(preset.figure, className="badge")] if preset.figure else []
    return html.Div([
        html.Div([html.H4(preset.title), *badge], className="preset-head"),
        html.P(preset.text),
        html.A("Open", href=preset.url, className="btn btn-primary", id=f"preset-{preset.name}"),
        html.Code(preset.url, className="preset-url"),
    ], className="preset")


def layout() -> html.Div:
    intro = html.P("Each lesson opens a page with known settings and starts it. The settings are in the link: "
                   "change them on the page and “Copy link” shares your variant. Every page also has a "
                   "“What am I seeing?” panel at its top.", className="hint")
    return html.Div([intro, *[card(group.title, html.P(group.text, className="hint"),
                                   html.Div([_preset(p) for p in group.presets], className="preset-grid"))
                              for group in GROUPS]], className="stack")


def register(app: Dash) -> None:
    """Links only: nothing to register."""

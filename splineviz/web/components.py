"""Small layout builders shared by the pages, so every page looks and behaves the same."""
from __future__ import annotations

from typing import Any, Callable

from dash import Input, Output, dcc, html

# plotGlPixelRatio 1: WebGL traces draw at CSS resolution instead of 2x, a quarter of the pixels per frame
GRAPH_CONFIG = {"displaylogo": False, "responsive": True, "plotGlPixelRatio": 1,
                "modeBarButtonsToRemove": ["lasso2d", "select2d", "autoScale2d"],
                "toImageButtonOptions": {"format": "png", "filename": "splineviz", "scale": 2}}


def card(title: str | None, *children: Any, class_name: str = "", **kw: Any) -> html.Div:
    head = [html.H3(title, className="card-title")] if title else []
    return html.Div(head + list(children), className=f"card {class_name}".strip(), **kw)


def field(label: str, control: Any, hint: str | None = None) -> html.Div:
    """A labelled control; the hint appears as a tooltip on the label."""
    return html.Div([html.Label(label, title=hint or "", className="field-label"), control], className="field")


def slider(id_: str, lo: float, hi: float, step: float, value: float, marks: dict | None = None) -> dcc.Slider:
    return dcc.Slider(id=id_, min=lo, max=hi, step=step, value=value, marks=marks, allow_direct_input=False,
                      tooltip={"placement": "bottom", "always_visible": False}, updatemode="drag")


def radio(id_: str, options: dict[str, str], value: str) -> dcc.RadioItems:
    return dcc.RadioItems(id=id_, options=[{"label": v, "value": k} for k, v in options.items()], value=value,
                          className="radio", inline=True)


def button(label: str, id_: str, kind: str = "secondary", **kw: Any) -> html.Button:
    return html.Button(label, id=id_, n_clicks=0, className=f"btn btn-{kind}", **kw)


PROGRESS_IDLE = ["0", ""]  # what a progress bar shows while its job is not running


def progress(prefix: str, always_visible: bool = False) -> html.Div:
    """A progress bar and its message, the targets of a background callback's progress output.

    Unless ``always_visible``, the bar shows only while its job runs (see ``while_running``).
    """
    return html.Div([html.Progress(id=f"{prefix}-progress", value="0", max="100", className="progress"),
                     html.Span(id=f"{prefix}-progress-label", className="progress-label")],
                    id=f"{prefix}-progress-row", className="progress-row",
                    style=None if always_visible else {"visibility": "hidden"})


def while_running(prefix: str, start: str, cancel: str | None = None) -> list[tuple[Output, Any, Any]]:
    """``running=`` for a background callback: show its progress bar, swap which of start/cancel is enabled."""
    shown, hidden = {"visibility": "visible"}, {"visibility": "hidden"}
    running = [(Output(f"{prefix}-progress-row", "style"), shown, hidden), (Output(start, "disabled"), True, False)]
    return running + ([(Output(cancel, "disabled"), False, True)] if cancel else [])


def job(prefix: str, start: str | None = None, cancel: str | None = None, interval: int = 300) -> dict[str, Any]:
    """Keyword arguments of a background callback whose progress bar is `prefix`-progress.

    With `start`, that button is disabled (and `cancel`, if given, enabled and wired) while the job runs.
    """
    options: dict[str, Any] = dict(
        background=True, interval=interval, prevent_initial_call=True, progress_default=PROGRESS_IDLE,
        progress=[Output(f"{prefix}-progress", "value"), Output(f"{prefix}-progress-label", "children")])
    if start:
        options["running"] = while_running(prefix, start, cancel)
    if cancel:
        options["cancel"] = [Input(cancel, "n_clicks")]
    return options


def reporter(set_progress: Callable[[Any], None]) -> Callable[[float, str], None]:
    """A library progress callback (fraction, message) that drives a background callback's progress bar."""
    return lambda fraction, message: set_progress((str(round(100 * fraction)), message))


def alert(id_: str) -> html.Div:
    """Where a page reports what went wrong, in words a user can act on."""
    return html.Div(id=id_, className="alert", role="alert")


def graph(id_: str, height: str = "100%", modebar: bool = True, **kw: Any) -> dcc.Graph:
    config = GRAPH_CONFIG if modebar else {**GRAPH_CONFIG, "displayModeBar": False}
    return dcc.Graph(id=id_, config=config, style={"height": height}, **kw)


def stat(label: str, id_: str) -> html.Div:
    return html.Div([html.Div("–", id=id_, className="stat-value"), html.Div(label, className="stat-label")],
                    className="stat")


def export_buttons(prefix: str, geojson: bool = True) -> html.Div:
    buttons = [button("PNG", f"{prefix}-png", "ghost"), button("SVG", f"{prefix}-svg", "ghost")]
    if geojson:
        buttons += [button("GeoJSON", f"{prefix}-geojson", "ghost"), dcc.Download(id=f"{prefix}-download")]
    return html.Div([html.Span("Export", className="field-label"), *buttons], className="export-row")


def legend_items(n_layers: int, shade: str = "class", n_classes: int = 2) -> list[html.Div]:
    """Swatches explaining the partition colours: one per layer, the decision boundary, the shading."""
    from splineviz.figures import STYLE

    def line(colour: str, label: str, width: float) -> html.Div:
        return html.Div([html.Span(className="swatch-line", style={"background": colour, "height": f"{width}px"}),
                         label], className="legend-item")

    items = [line(STYLE["layer_line"][i % len(STYLE["layer_line"])], f"layer {i + 1} boundaries", 2)
             for i in range(n_layers)]
    items.append(line(STYLE["decision_line"], "decision boundary", 4))
    if shade == "class":
        items += [html.Div([html.Span(className="swatch", style={"background": STYLE["class_fill"][c]}),
                            f"predicted class {c}"], className="legend-item") for c in range(n_classes)]
    elif shade == "code":
        items.append(html.Div([html.Span(className="swatch swatch-codes"), "one colour per activation pattern "
                               "(neighbours always differ)"], className="legend-item"))
    return items

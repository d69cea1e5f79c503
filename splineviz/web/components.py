"""Small layout builders shared by the pages, so every page looks and behaves the same.

Controls are built from their ``params.Param`` (id, default, limits, choices), so a control can never
offer what the server would refuse.
"""
from __future__ import annotations

from typing import Any

from dash import dcc, html

from splineviz.web import ids
from splineviz.web.params import Param

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


def slider(param: Param, marks: dict | None = None) -> dcc.Slider:
    return dcc.Slider(id=param.id, min=param.lo, max=param.hi, step=param.step, value=param.default, marks=marks,
                      allow_direct_input=False, tooltip={"placement": "bottom", "always_visible": False},
                      updatemode="drag")


def view_slider(id_: str, lo: int, hi: int, value: int, marks: dict | None = None,
                from_one: bool = False) -> dcc.Slider:
    """A slider over what is shown (epoch, layer): its range follows the data, so it is not a Param.
    ``from_one``: its tooltip counts from 1, like its marks (a 0-based layer index shown as "layer 1")."""
    tooltip = {"placement": "bottom", "always_visible": False, **({"transform": "countFromOne"} if from_one else {})}
    return dcc.Slider(id=id_, min=lo, max=hi, step=1, value=value, marks=marks, allow_direct_input=False,
                      tooltip=tooltip, updatemode="drag")


def radio(param: Param) -> dcc.RadioItems:
    return dcc.RadioItems(id=param.id, options=[{"label": v, "value": k} for k, v in (param.choices or {}).items()],
                          value=param.default, className="radio", inline=True)


def dropdown(param: Param) -> dcc.Dropdown:
    return dcc.Dropdown(id=param.id, value=param.default, clearable=False,
                        options=[{"label": v, "value": k} for k, v in (param.choices or {}).items()])


def number(param: Param) -> dcc.Input:
    return dcc.Input(id=param.id, type="number", min=param.lo, max=param.hi, step=param.step, value=param.default,
                     debounce=True)


def button(label: str, id_: str, kind: str = "secondary", **kw: Any) -> html.Button:
    return html.Button(label, id=id_, n_clicks=0, className=f"btn btn-{kind}", **kw)


def progress(job: ids.Job, always_visible: bool = False) -> html.Div:
    """A job's progress bar and message, and the stores the browser watches it by (see ids.Job).

    Unless ``always_visible``, the bar shows only while the job runs (see wiring.job).
    """
    return html.Div([html.Progress(id=job.progress, value="0", max="100", className="progress"),
                     html.Span(id=job.label, className="progress-label"),
                     dcc.Store(id=job.busy, data=False), dcc.Store(id=job.beat), dcc.Store(id=job.done)],
                    id=job.row, className="progress-row", style=None if always_visible else {"visibility": "hidden"})


def alert(id_: str) -> html.Div:
    """Where a page reports what went wrong, in words a user can act on."""
    return html.Div(id=id_, className="alert", role="alert")


def graph(id_: str, height: str = "100%", modebar: bool = True, **kw: Any) -> dcc.Graph:
    config = GRAPH_CONFIG if modebar else {**GRAPH_CONFIG, "displayModeBar": False}
    return dcc.Graph(id=id_, config=config, style={"height": height}, **kw)


def stat(label: str, id_: str) -> html.Div:
    return html.Div([html.Div("–", id=id_, className="stat-value"), html.Div(label, className="stat-label")],
                    className="stat")


def export_buttons(export: ids.Export, geojson: bool = True) -> html.Div:
    buttons = [button("PNG", export.png, "ghost"), button("SVG", export.svg, "ghost")]
    if geojson:
        buttons += [button("GeoJSON", export.geojson, "ghost"), dcc.Download(id=export.download)]
    return html.Div([html.Span("Export", className="field-label"), *buttons], className="export-row")


def legend_items(n_layers: int, shade: str = "class", n_classes: int = 2,
                 class_labels: dict[int, str] | None = None) -> list[html.Div]:
    """Swatches explaining the partition colours: one per layer, the decision boundary, the shading.

    ``class_labels`` (class -> text) replaces the "predicted class c" swatches, e.g. where only a pair of
    classes is compared."""
    from splineviz.figures import STYLE

    def line(colour: str, label: str, width: float) -> html.Div:
        return html.Div([html.Span(className="swatch-line", style={"background": colour, "height": f"{width}px"}),
                         label], className="legend-item")

    items = [line(STYLE["layer_line"][i % len(STYLE["layer_line"])], f"layer {i + 1} boundaries", 2)
             for i in range(n_layers)]
    items.append(line(STYLE["decision_line"], "decision boundary", 4))
    if shade == "class":
        labels = class_labels or {c: f"predicted class {c}" for c in range(n_classes)}
        items += [html.Div([html.Span(className="swatch", style={"background": STYLE["class_fill"][c]}), text],
                           className="legend-item") for c, text in labels.items()]
    elif shade == "code":
        items.append(html.Div([html.Span(className="swatch swatch-codes"), "one colour per activation pattern "
                               "(neighbours always differ)"], className="legend-item"))
    return items

/*
 * Page glue for the other painted graphs: the MNIST slice (one panel, plus an invisible class grid that
 * makes every point hoverable) and side-by-side panels (Pruning's before / after, Early-bird's ticket / end).
 * The server sends frames and axes; the painters draw them under plotly's axes.
 */
(function () {
  "use strict";
  const sv = window.splineviz;
  const F = sv.frame;
  const drawn = {};  // graph id -> what was painted last: {source, describe, opts, frames, style}

  /* Axes once per new source (a new slice or panel set keeps the user's zoom through uirevision). */
  function axes(graphId, source, layout, traces) {
    const fresh = !drawn[graphId] || drawn[graphId].source !== source;
    if (fresh && !sv.painter.axes(graphId, layout, traces)) {
      return {data: traces || [], layout: sv.painter.layout(layout, graphId)};
    }
    return undefined;
  }

  function paint(graphId, frames, opts, style) {
    sv.painter.when(graphId, (g) => frames.forEach((frame, i) => sv.painter.of(g, i, style).show(frame, opts)));
  }

  /* values: slice, layer, shade, style -> the slice's figure (only before plotly made the graph). cfg: {graph} */
  function mnist(v, cfg) {
    if (!v.slice) return undefined;
    const frame = v.slice.frame, n = v.slice.grid.length;
    const [x0, x1, y0, y1] = frame.bounds;
    const axis = (lo, hi) => Array.from({length: n}, (_, i) => lo + (hi - lo) * i / (n - 1));
    const grid = {type: "heatmap", z: v.slice.grid, x: axis(x0, x1), y: axis(y0, y1), opacity: 0, showscale: false,
                  name: "hover", hovertemplate: "a=%{x:.3f}, b=%{y:.3f}<br>class %{z}<extra></extra>"};
    const layout = Object.assign({}, v.slice.layout, {uirevision: v.slice.indices.join("-")});
    const figure = axes(cfg.graph, v.slice, layout, [grid]);
    const opts = {layer: v.layer, shade: v.shade, decision: true};
    const layer = F.shownLayer(frame, v.layer);
    drawn[cfg.graph] = {source: v.slice, opts: opts, frames: [frame], style: v.style,
                        describe: {title: v.slice.title + " · " + F.stats(frame, v.layer).regions + " regions",
                                   classes: 10, layers: layer + 1, decision: layer === F.lastLayer(frame)}};
    paint(cfg.graph, [frame], opts, v.style);
    return figure;
  }

  /*
   * values: panels ({frames, layout, title, classes} or {figure}: a message instead), data, style.
   * cfg: {graph, points}. Draws each frame on its panel's axes (figures.side_by_side_layout).
   */
  function panels(v, cfg) {
    if (!v.panels) return undefined;
    if (v.panels.figure) {  // nothing to paint (no model yet): hide the painters, show the message
      sv.painter.all(cfg.graph).forEach((p) => p.hide());
      drawn[cfg.graph] = null;
      return sv.painter.axes(cfg.graph, v.panels.figure.layout, v.panels.figure.data) ? undefined : v.panels.figure;
    }
    // an invisible point on each panel's axes: plotly lays out only subplots that hold a trace (and an empty
    // trace on matched axes draws NaN paths), and a painter needs its axes laid out
    const anchors = v.panels.frames.map((frame, i) => ({
      type: "scatter", mode: "markers", marker: {opacity: 0}, hoverinfo: "skip", showlegend: false,
      x: [(frame.bounds[0] + frame.bounds[1]) / 2], y: [(frame.bounds[2] + frame.bounds[3]) / 2],
      xaxis: "x" + (i ? i + 1 : ""), yaxis: "y" + (i ? i + 1 : "")}));
    const figure = axes(cfg.graph, v.panels, v.panels.layout, anchors);
    const opts = {shade: "class", decision: true, points: cfg.points && v.data ? v.data.points : null};
    drawn[cfg.graph] = {source: v.panels, opts: opts, frames: v.panels.frames, style: v.style,
                        describe: {title: v.panels.title, classes: v.panels.classes,
                                   layers: F.lastLayer(v.panels.frames[0]) + 1, decision: true}};
    paint(cfg.graph, v.panels.frames, opts, v.style);
    return figure;
  }

  /* Title and legend of an export of one of these graphs: cfg {graph}. */
  function describe(cfg) {
    const d = drawn[cfg.graph];
    if (!d) return {};
    return {title: d.describe.title,
            legend: sv.exporter.legend(d.style, {classes: d.describe.classes, layers: d.describe.layers,
                                                 shade: d.opts.shade, decision: d.describe.decision})};
  }

  sv.pages = {mnist, panels, describe};
})();

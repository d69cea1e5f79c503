/*
 * Drawing a frame. scene() decides what is drawn (mirroring figures.partition_traces: one fill per colour,
 * one line per layer, the decision boundary on top, the training points); two painters draw a scene:
 * figure() as a plotly figure (fills as traces, boundaries as SVG path shapes, which plotly redraws about
 * twice as fast as line traces) and paint() on a canvas laid over the plot area, a few milliseconds per
 * frame, for replay. Colours come from figures.STYLE through the "style" store.
 */
(function () {
  "use strict";
  const sv = window.splineviz;
  const F = sv.frame;

  /* What to draw of `frame`: opts = {layer, shade, decision, points} (points: packed x, y, c or null). */
  function scene(frame, opts, style) {
    const layer = F.shownLayer(frame, opts.layer);
    const lines = frame.bnd.slice(0, layer + 1).map((xy, l) => ({xy: xy, name: "layer " + (l + 1),
      colour: style.layer_line[l % style.layer_line.length], width: style.layer_width}));
    if (opts.decision && layer === F.lastLayer(frame)) {
      lines.push({xy: frame.dec, name: "decision", colour: style.decision_line, width: style.decision_width});
    }
    return {frame: frame, shade: opts.shade, colours: F.regionColours(frame, opts.shade, layer, style),
            lines: lines, points: opts.points || null, style: style};
  }

  /* Training points by class: class -> point indices. */
  function pointGroups(points) {
    return F.groupBy(F.unpack(points.c));
  }

  const colourOf = (palette, key) => palette[key % palette.length];

  /* -- plotly ---------------------------------------------------------------------------------------------- */
  /* One filled trace per colour: its regions as closed outlines separated by NaN (figures.closed_outlines). */
  function fillTraces(sc) {
    if (!sc.colours) return [];
    const {px, py, off} = F.polygons(sc.frame);
    const traces = [];
    for (const [key, regions] of F.groupBy(sc.colours.keys)) {
      let size = 0;
      for (const r of regions) size += off[r + 1] - off[r] + 2;
      const x = new Float32Array(size), y = new Float32Array(size);
      let n = 0;
      for (const r of regions) {
        for (let v = off[r]; v < off[r + 1]; v++) { x[n] = px[v]; y[n++] = py[v]; }
        x[n] = px[off[r]]; y[n++] = py[off[r]];
        x[n] = NaN; y[n++] = NaN;
      }
      traces.push({type: sc.style.trace_type || "scatter", x: x, y: y, mode: "lines", fill: "toself", line: {width: 0},
                   fillcolor: colourOf(sc.colours.palette, key), opacity: sc.style.fill_opacity, hoverinfo: "skip",
                   showlegend: false, name: sc.shade + " " + key});
    }
    return traces;
  }

  function svgPath(xy) {
    const parts = [];
    F.eachRun(xy, (xs, ys, start, end) => {
      for (let i = start; i < end; i++) parts.push((i === start ? "M" : "L") + xs[i] + "," + ys[i]);
    });
    return parts.join("");
  }

  function lineShapes(sc) {
    return sc.lines.map((line) => ({type: "path", name: line.name, path: svgPath(line.xy), xref: "x", yref: "y",
                                     layer: "above", line: {color: line.colour, width: line.width}}))
      .filter((shape) => shape.path);
  }

  function pointTraces(sc) {
    if (!sc.points) return [];
    const xs = F.unpack(sc.points.x), ys = F.unpack(sc.points.y);
    return [...pointGroups(sc.points)].map(([c, members]) => ({
      type: sc.style.trace_type || "scatter", x: members.map((i) => xs[i]), y: members.map((i) => ys[i]),
      mode: "markers", name: "class " + c, hoverinfo: "skip",
      marker: {size: 5, color: colourOf(sc.style.class_point, c), line: {width: 0.6, color: "white"}}}));
  }

  /* A plotly figure of a scene on `layout` (the axes and margins the server chose). */
  function figure(sc, layout, extraTraces) {
    return {data: (extraTraces || []).concat(fillTraces(sc), pointTraces(sc)),
            layout: Object.assign({}, layout, {shapes: lineShapes(sc)})};
  }

  /* The plotly graph div inside a dcc.Graph, once plotly has drawn it. */
  const graphDiv = (graphId) => document.querySelector("#" + graphId + " .js-plotly-plot");

  /* Redraw a graph in place: straight to Plotly.react, since through dcc.Graph's figure prop Dash's renderer
     adds ~100 ms per redraw. False if the graph is not on the page yet (then return the figure instead). */
  function react(graphId, fig) {
    const gd = graphDiv(graphId);
    if (!gd || !window.Plotly) return false;
    window.Plotly.react(gd, fig.data, fig.layout);
    return true;
  }

  /* -- canvas ---------------------------------------------------------------------------------------------- */
  /* The canvas laid exactly over a graph's plot area, with data -> pixel transforms; null before plotly drew. */
  function overlay(graphId) {
    const gd = graphDiv(graphId);
    if (!gd || !gd._fullLayout || !gd._fullLayout.xaxis || !gd._fullLayout.xaxis.l2p) return null;
    const host = gd.parentNode;
    let canvas = host.querySelector("canvas.sv-overlay");
    if (!canvas) {
      canvas = document.createElement("canvas");
      canvas.className = "sv-overlay";
      host.appendChild(canvas);
    }
    if (getComputedStyle(host).position === "static") host.style.position = "relative";
    const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
    const ratio = window.devicePixelRatio || 1;
    Object.assign(canvas.style, {position: "absolute", pointerEvents: "none", display: "block",
                                 left: (gd.offsetLeft + xa._offset) + "px", top: (gd.offsetTop + ya._offset) + "px",
                                 width: xa._length + "px", height: ya._length + "px"});
    const w = Math.round(xa._length * ratio), h = Math.round(ya._length * ratio);
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    return {gd: gd, ctx: ctx, x: (v) => xa.l2p(v), y: (v) => ya.l2p(v), w: xa._length, h: ya._length,
            background: gd._fullLayout.plot_bgcolor || "white"};
  }

  function hideOverlay(graphId) {
    const gd = graphDiv(graphId);
    const canvas = gd && gd.parentNode.querySelector("canvas.sv-overlay");
    if (canvas) canvas.style.display = "none";
  }

  /* Paint a scene on a graph's overlay canvas; false if the graph is not drawn yet. */
  function paint(graphId, sc) {
    const c = overlay(graphId);
    if (!c) return false;
    const ctx = c.ctx, style = sc.style;
    ctx.fillStyle = c.background;
    ctx.fillRect(0, 0, c.w, c.h);
    if (sc.colours) {
      const {px, py, off} = F.polygons(sc.frame);
      ctx.globalAlpha = style.fill_opacity;
      for (const [key, regions] of F.groupBy(sc.colours.keys)) {
        const path = new Path2D();
        for (const r of regions) {
          path.moveTo(c.x(px[off[r]]), c.y(py[off[r]]));
          for (let v = off[r] + 1; v < off[r + 1]; v++) path.lineTo(c.x(px[v]), c.y(py[v]));
          path.closePath();
        }
        ctx.fillStyle = colourOf(sc.colours.palette, key);
        ctx.fill(path);
      }
      ctx.globalAlpha = 1;
    }
    if (sc.points) {
      const xs = F.unpack(sc.points.x), ys = F.unpack(sc.points.y);
      ctx.lineWidth = 0.6;
      ctx.strokeStyle = "white";
      for (const [cls, members] of pointGroups(sc.points)) {
        ctx.fillStyle = colourOf(style.class_point, cls);
        for (const k of members) {
          ctx.beginPath();
          ctx.arc(c.x(xs[k]), c.y(ys[k]), 2.5, 0, 2 * Math.PI);
          ctx.fill();
          ctx.stroke();
        }
      }
    }
    for (const line of sc.lines) {
      ctx.beginPath();
      F.eachRun(line.xy, (xs, ys, start, end) => {
        ctx.moveTo(c.x(xs[start]), c.y(ys[start]));
        for (let i = start + 1; i < end; i++) ctx.lineTo(c.x(xs[i]), c.y(ys[i]));
      });
      ctx.strokeStyle = line.colour;
      ctx.lineWidth = line.width;
      ctx.stroke();
    }
    return true;
  }

  /* Client-side PNG/SVG export of a graph, exactly as shown: config = {graph, format}. */
  function download(_values, cfg) {
    const gd = graphDiv(cfg.graph);
    if (gd && window.Plotly) {
      window.Plotly.downloadImage(gd, {format: cfg.format, filename: "splineviz-" + cfg.graph, scale: 2});
    }
  }

  sv.render = {scene, figure, react, graphDiv, paint, hideOverlay, download};
})();

/*
 * Browser side of splineviz: draws partition frames and drives the playground without the server.
 *
 * A frame (see splineviz/figures.py, partition_frame) holds packed typed arrays: region polygons
 * (px, py, off), a class and colour key per region, boundary polylines per layer and the decision
 * boundary. render() mirrors figures.partition_traces: one filled trace per colour, one line per
 * layer (here an SVG path shape), the decision boundary on top. Colours come from figures.STYLE via
 * the "style" store.
 */
(function () {
  "use strict";
  /* read at call time: dash_clientside is created by the renderer after assets load */
  const nu = () => window.dash_clientside.no_update;
  const TYPES = {f4: Float32Array, f8: Float64Array, i1: Int8Array, u1: Uint8Array, i2: Int16Array,
                 u2: Uint16Array, i4: Int32Array, u4: Uint32Array};
  const decoded = new WeakMap();

  /* {dtype, bdata} -> typed array, decoded once per spec object */
  function unpack(spec) {
    let out = decoded.get(spec);
    if (!out) {
      const bin = atob(spec.bdata);
      const bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      out = new TYPES[spec.dtype](bytes.buffer);
      decoded.set(spec, out);
    }
    return out;
  }

  /* Polygons grouped by key: closed outlines separated by NaN, as figures.closed_outlines. */
  function fillTraces(frame, shade, layer, style) {
    if (shade === "none" || !frame.n_regions) return [];
    const useCode = shade === "code" && frame.code.length;
    const keys = unpack(useCode ? frame.code[layer] : frame.cls);
    const palette = useCode ? style.code_fill : style.class_fill;
    const px = unpack(frame.px), py = unpack(frame.py), off = unpack(frame.off);
    const sizes = new Map();
    for (let r = 0; r < keys.length; r++) {
      sizes.set(keys[r], (sizes.get(keys[r]) || 0) + off[r + 1] - off[r] + 2);
    }
    const groups = new Map();
    for (const [key, size] of sizes) groups.set(key, {x: new Float32Array(size), y: new Float32Array(size), n: 0});
    for (let r = 0; r < keys.length; r++) {
      const g = groups.get(keys[r]);
      const start = off[r], end = off[r + 1];
      for (let v = start; v < end; v++) { g.x[g.n] = px[v]; g.y[g.n++] = py[v]; }
      g.x[g.n] = px[start]; g.y[g.n++] = py[start];
      g.x[g.n] = NaN; g.y[g.n++] = NaN;
    }
    return [...groups.keys()].sort((a, b) => a - b).map((key) => ({
      type: style.trace_type || "scatter", x: groups.get(key).x, y: groups.get(key).y, mode: "lines", fill: "toself",
      line: {width: 0}, fillcolor: palette[key % palette.length], opacity: style.fill_opacity,
      hoverinfo: "skip", showlegend: false, name: shade + " " + key,
    }));
  }

  /* NaN-separated polyline coordinates -> an SVG path ("M x,y L x,y ... M ..."). */
  function svgPath(xs, ys) {
    const parts = [];
    let pen = false;
    for (let i = 0; i < xs.length; i++) {
      const x = xs[i], y = ys[i];
      if (x !== x || y !== y) { pen = false; continue; }
      parts.push((pen ? "L" : "M") + x + "," + y);
      pen = true;
    }
    return parts.join("");
  }

  /*
   * Boundaries as one SVG path shape per layer. figures.partition_traces draws them as line traces; as
   * shapes the browser redraws a frame about twice as fast, which is what playback needs.
   */
  function lineShapes(frame, layer, decision, style) {
    const shape = (xy, name, colour, width) => ({
      type: "path", name: name, path: svgPath(unpack(xy[0]), unpack(xy[1])), xref: "x", yref: "y",
      layer: "above", line: {color: colour, width: width},
    });
    const shapes = frame.bnd.slice(0, layer + 1).map((xy, l) =>
      shape(xy, "layer " + (l + 1), style.layer_line[l % style.layer_line.length], style.layer_width));
    if (decision) shapes.push(shape(frame.dec, "decision", style.decision_line, style.decision_width));
    return shapes.filter((sh) => sh.path);
  }

  /* Training points, one trace per class (figures.point_traces). */
  function pointTraces(points, style) {
    const xs = unpack(points.x), ys = unpack(points.y), cs = unpack(points.c);
    const byClass = new Map();
    for (let i = 0; i < cs.length; i++) {
      if (!byClass.has(cs[i])) byClass.set(cs[i], {x: [], y: []});
      byClass.get(cs[i]).x.push(xs[i]);
      byClass.get(cs[i]).y.push(ys[i]);
    }
    return [...byClass.keys()].sort((a, b) => a - b).map((c) => ({
      type: style.trace_type || "scatter", x: byClass.get(c).x, y: byClass.get(c).y, mode: "markers", name: "class " + c,
      hoverinfo: "skip",
      marker: {size: 5, color: style.class_point[c % style.class_point.length], line: {width: 0.6, color: "white"}},
    }));
  }

  /* Shaded regions (traces) and boundaries (shapes) of the partition up to a layer. */
  function partitionView(frame, layer, shade, decision, style) {
    const last = frame.bnd.length - 1;
    const l = Math.max(0, Math.min(layer == null ? last : layer, last));
    return {data: fillTraces(frame, shade, l, style), shapes: lineShapes(frame, l, decision && l === last, style)};
  }

  function fmt(value, digits) {
    return value == null ? "–" : Number(value).toFixed(digits);
  }

  function clamp(i, n) {
    return Math.max(0, Math.min(i || 0, n - 1));
  }

  /* A chunk request; n makes every request a new value. */
  function tick(run, epochs, target, previous) {
    return {n: ((previous && previous.n) || 0) + 1, run_id: run.id, epochs: epochs, done: run.epoch,
            target: Math.max(target, run.epoch + epochs)};
  }

  function chunkEpochs(run, target, style) {
    const stride = Math.max(1, Math.ceil(target / style.max_frames));
    return Math.max(1, Math.min(stride * style.chunk_frames, target - run.epoch));
  }

  /* What the playground shows (set by render), and the replay timer. */
  let view = null;
  let player = null;
  let shownIndex = 0;
  const STAT_IDS = ["pg-stat-epoch", "pg-stat-regions", "pg-stat-loss", "pg-stat-acc"];

  function figureFor(i) {
    const part = partitionView(view.frames[i], view.layer, view.shade, view.show.includes("decision"), view.style);
    const points = view.points && view.show.includes("points") ? pointTraces(view.points, view.style) : [];
    return {data: part.data.concat(points), layout: Object.assign({}, view.layout, {
      shapes: part.shapes, uirevision: view.run ? view.run.id : "partition"})};
  }

  function drawFrame(i) {
    const gd = document.querySelector("#pg-graph .js-plotly-plot");
    if (!gd || !window.Plotly) return false;
    const figure = figureFor(i);
    window.Plotly.react(gd, figure.data, figure.layout);
    return true;
  }

  function stats(i) {
    const frame = view.frames[i];
    const last = frame.bnd.length - 1;
    const l = clamp(view.layer == null ? last : view.layer, last + 1);
    const regions = l < last ? frame.layer_regions[l] + " (layers 1–" + (l + 1) + ")" : String(frame.n_regions);
    const metric = frame.test_metric == null ? frame.train_metric : frame.test_metric;
    return [String(frame.epoch), regions, fmt(frame.loss, 3), metric == null ? "–" : fmt(100 * metric, 1) + " %"];
  }

  /*
   * Replay paints frames on a canvas laid over the plot area instead of calling Plotly.react: the same
   * regions, lines and points, but a frame costs a few milliseconds instead of a full plotly redraw,
   * which keeps playback above 20 fps even with software graphics. Pausing hands back to plotly.
   */
  function replayCanvas(gd) {
    const host = gd.parentNode;
    let canvas = host.querySelector("canvas.sv-replay");
    if (!canvas) {
      canvas = document.createElement("canvas");
      canvas.className = "sv-replay";
      host.appendChild(canvas);
    }
    if (getComputedStyle(host).position === "static") host.style.position = "relative";
    const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
    const ratio = window.devicePixelRatio || 1;
    Object.assign(canvas.style, {
      position: "absolute", pointerEvents: "none", display: "block",
      left: (gd.offsetLeft + xa._offset) + "px", top: (gd.offsetTop + ya._offset) + "px",
      width: xa._length + "px", height: ya._length + "px",
    });
    const w = Math.round(xa._length * ratio), h = Math.round(ya._length * ratio);
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    return {ctx: ctx, x: (v) => xa.l2p(v), y: (v) => ya.l2p(v), w: xa._length, h: ya._length,
            background: gd._fullLayout.plot_bgcolor || "white"};
  }

  function hideReplayCanvas() {
    document.querySelectorAll("canvas.sv-replay").forEach((c) => { c.style.display = "none"; });
  }

  function strokePolylines(c, xy, colour, width) {
    const xs = unpack(xy[0]), ys = unpack(xy[1]), ctx = c.ctx;
    ctx.beginPath();
    let pen = false;
    for (let i = 0; i < xs.length; i++) {
      const x = xs[i], y = ys[i];
      if (x !== x || y !== y) { pen = false; continue; }
      if (pen) ctx.lineTo(c.x(x), c.y(y)); else ctx.moveTo(c.x(x), c.y(y));
      pen = true;
    }
    ctx.strokeStyle = colour;
    ctx.lineWidth = width;
    ctx.stroke();
  }

  function paintFrame(i) {
    const gd = document.querySelector("#pg-graph .js-plotly-plot");
    if (!gd || !gd._fullLayout || !gd._fullLayout.xaxis || !gd._fullLayout.xaxis.l2p) return false;
    const c = replayCanvas(gd), ctx = c.ctx, frame = view.frames[i], style = view.style;
    ctx.fillStyle = c.background;
    ctx.fillRect(0, 0, c.w, c.h);
    const last = frame.bnd.length - 1;
    const layer = Math.max(0, Math.min(view.layer == null ? last : view.layer, last));
    if (view.shade !== "none" && frame.n_regions) {
      const useCode = view.shade === "code" && frame.code.length;
      const keys = unpack(useCode ? frame.code[layer] : frame.cls);
      const palette = useCode ? style.code_fill : style.class_fill;
      const px = unpack(frame.px), py = unpack(frame.py), off = unpack(frame.off);
      const paths = new Map();
      for (let r = 0; r < keys.length; r++) {
        if (!paths.has(keys[r])) paths.set(keys[r], new Path2D());
        const path = paths.get(keys[r]);
        path.moveTo(c.x(px[off[r]]), c.y(py[off[r]]));
        for (let v = off[r] + 1; v < off[r + 1]; v++) path.lineTo(c.x(px[v]), c.y(py[v]));
        path.closePath();
      }
      ctx.globalAlpha = style.fill_opacity;
      for (const [key, path] of paths) { ctx.fillStyle = palette[key % palette.length]; ctx.fill(path); }
      ctx.globalAlpha = 1;
    }
    if (view.points && view.show.includes("points")) {
      const xs = unpack(view.points.x), ys = unpack(view.points.y), cs = unpack(view.points.c);
      ctx.lineWidth = 0.6;
      ctx.strokeStyle = "white";
      for (let k = 0; k < cs.length; k++) {
        ctx.beginPath();
        ctx.arc(c.x(xs[k]), c.y(ys[k]), 2.5, 0, 2 * Math.PI);
        ctx.fillStyle = style.class_point[cs[k] % style.class_point.length];
        ctx.fill();
        ctx.stroke();
      }
    }
    for (let l = 0; l <= layer; l++) {
      strokePolylines(c, frame.bnd[l], style.layer_line[l % style.layer_line.length], style.layer_width);
    }
    if (view.show.includes("decision") && layer === last) {
      strokePolylines(c, frame.dec, style.decision_line, style.decision_width);
    }
    gd.dispatchEvent(new CustomEvent("splineviz:replayframe", {detail: {index: i}}));
    return true;
  }

  function stopReplay() {
    cancelAnimationFrame(player);
    player = null;
    hideReplayCanvas();
    drawFrame(shownIndex);
    window.dash_clientside.set_props("pg-epoch", {value: shownIndex});
    window.dash_clientside.set_props("pg-replay", {children: "▶ Replay"});
  }

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    splineviz: {
      /* Play toggles training (the pump then requests chunks); Step trains one frame's worth of epochs. */
      transport: function (_play, _step, playing, inflight, run, target, previous, style) {
        if (!run) return [nu(), nu(), nu()];
        const trigger = window.dash_clientside.callback_context.triggered_id;
        target = Number(target) || 1;
        if (trigger === "pg-step") {
          if (inflight) return [false, nu(), nu()];
          const stride = Math.max(1, Math.ceil(target / style.max_frames));
          return [false, tick(run, stride, target, previous), true];
        }
        return [!playing && run.epoch < target, nu(), nu()];
      },

      /*
       * While playing, request the next chunk whenever none is in flight. Requests come from an interval
       * rather than from the previous chunk's result: a callback chain leading back to the background
       * callback would be a circular dependency, which Dash refuses to run.
       */
      pump: function (_n, playing, inflight, run, target, previous, style) {
        if (!playing || inflight || !run) return [nu(), nu(), nu()];
        target = Number(target) || 1;
        if (run.epoch >= target) return [nu(), nu(), false];
        return [tick(run, chunkEpochs(run, target, style), target, previous), true, nu()];
      },

      /* Append a finished chunk's frames and history; stop playing at the target epoch. */
      absorb: function (chunk, frames, history, run, playing, target, epochIndex) {
        if (!chunk || !run || chunk.run_id !== run.id) return [nu(), nu(), nu(), false, nu(), nu(), nu()];
        if (chunk.error) return [nu(), nu(), nu(), false, false, nu(), chunk.error];
        const keep = ["epoch", "loss", "train_metric", "test_metric", "n_regions"];
        const allFrames = frames.concat(chunk.frames);
        const allHistory = history.concat(chunk.frames.map((f) => Object.fromEntries(keep.map((k) => [k, f[k]]))));
        const follow = epochIndex == null || epochIndex >= frames.length - 1;
        const more = playing && chunk.run.epoch < (Number(target) || 1);
        return [allFrames, allHistory, chunk.run, false, more, follow ? allFrames.length - 1 : nu(), null];
      },

      playLabel: function (playing) {
        return playing ? ["❚❚ Pause", "btn btn-primary playing", false] : ["▶ Train", "btn btn-primary", true];
      },

      /*
       * Draw the selected frame: the only per-animation-frame work, all in the browser. The figure goes
       * straight to Plotly.react on the graph's div: through dcc.Graph's figure prop, Dash's renderer
       * adds ~100 ms per redraw, which would cap playback far below 20 fps.
       */
      render: function (frames, epochIndex, layer, shade, show, points, layout, run, style) {
        if (!frames || !frames.length || !layout) return [nu(), nu(), nu(), nu(), nu(), nu(), nu(), nu()];
        if (player) {  // a setting changed mid-replay: stop there and let plotly draw the new view
          cancelAnimationFrame(player);
          player = null;
          hideReplayCanvas();
          window.dash_clientside.set_props("pg-replay", {children: "▶ Replay"});
        }
        view = {frames: frames, layer: layer, shade: shade, show: show || [], points: points, layout: layout,
                run: run, style: style};
        const i = clamp(epochIndex, frames.length);
        const drawn = drawFrame(i);
        const marks = {0: String(frames[0].epoch)};
        marks[frames.length - 1] = String(frames[frames.length - 1].epoch);
        const frame = frames[i];
        const current = run ? {arch: run.arch, weights: frame.weights, bounds: frame.bounds, epoch: frame.epoch} : nu();
        return [drawn ? nu() : figureFor(i), frames.length - 1, marks, ...stats(i), current];
      },

      /*
       * Replay the recorded frames in the browser, at most one frame per 33 ms (30 fps) and never faster
       * than the browser paints, so a slow machine drops to its own pace instead of queueing frames.
       * The slider follows when the replay stops.
       */
      replayToggle: function (_n, index) {
        if (player) {
          stopReplay();
          return "▶ Replay";
        }
        if (!view) return nu();
        shownIndex = clamp(index, view.frames.length);
        if (shownIndex >= view.frames.length - 1) shownIndex = 0;
        let last = 0;
        const step = function (now) {
          if (!player) return;
          if (now - last >= 33) {
            last = now;
            if (shownIndex >= view.frames.length - 1) { stopReplay(); return; }
            shownIndex += 1;
            if (!paintFrame(shownIndex)) drawFrame(shownIndex);
            const values = stats(shownIndex);
            STAT_IDS.forEach(function (id, k) {
              const el = document.getElementById(id);
              if (el) el.textContent = values[k];
            });
          }
          player = requestAnimationFrame(step);
        };
        player = requestAnimationFrame(step);
        return "❚❚ Pause";
      },

      /* Client-side PNG/SVG export of a graph, exactly as shown. */
      download: function (graphId, format, n) {
        const gd = document.querySelector("#" + graphId + " .js-plotly-plot");
        if (gd && window.Plotly) {
          window.Plotly.downloadImage(gd, {format: format, filename: "splineviz-" + graphId, scale: 2});
        }
        return n;
      },

      /* The MNIST slice: partition + an invisible class grid that makes every point hoverable. */
      renderSlice: function (slice, layer, shade, style) {
        if (!slice) return nu();
        const frame = slice.frame;
        const n = slice.grid.length;
        const [x0, x1, y0, y1] = frame.bounds;
        const axis = (lo, hi) => Array.from({length: n}, (_, i) => lo + (hi - lo) * i / (n - 1));
        const grid = {type: "heatmap", z: slice.grid, x: axis(x0, x1), y: axis(y0, y1), opacity: 0,
                      showscale: false, name: "hover",
                      hovertemplate: "a=%{x:.3f}, b=%{y:.3f}<br>class %{z}<extra></extra>"};
        const part = partitionView(frame, layer, shade, true, style);
        return {data: [grid].concat(part.data), layout: Object.assign({}, slice.layout, {
          shapes: part.shapes, uirevision: slice.indices.join("-")})};
      },
    },
  });
})();

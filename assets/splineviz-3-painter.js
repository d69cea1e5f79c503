/*
 * Painters: a canvas under each partition panel of a plotly graph, drawn by the WebGL engine
 * (splineviz-2-gl.js) in a Worker. Plotly keeps the axes, zoom, pan, hover and modebar on a transparent
 * plot; the painter follows its axes. Nothing heavy runs on the page: frames go to the worker as they
 * are, and requests are "latest wins" (a new view replaces one not yet sent), so a slow paint never queues.
 * While plotly pans or zooms, the last picture moves with the axes (a CSS transform) until the new one lands.
 *
 *   const p = sv.painter.of(graphId, panel)   // panel i draws on axes x(i+1)/y(i+1) (0: "x"/"y")
 *   p.show(frame, view) -> Promise<info|null> // frame: Frame JSON; resolves when painted (null: superseded)
 *   p.update(patch)     -> Promise            // same frame, some view fields changed
 *   p.pick(x, y)        -> Promise<{cell, region, class, key}|null>  (data coordinates)
 *   p.dataAt(event)     -> [x, y] | null      // a pointer event's position in data coordinates
 *   sv.exporter.graph(graphId, "png"|"svg", {title, legend}) -> Promise<Blob>   (splineviz-4-export.js)
 *
 * The view (all optional): layer (null: last), shade ("class" | "code" | "none"), decision (bool),
 * points ({x, y, c} packed, e.g. the training data), highlight ({layer, unit}: that unit's segments drawn
 * thick on top), fade ({layer, units, alpha}: those units' segments drawn faint), ghosts ([{frame, layer,
 * units}]: another frame's segments drawn dashed, e.g. units a pruning step removed), region (a linear
 * region's id: its cells drawn darker, e.g. under the pointer). Each paint fires "splineviz:painted"
 * on the graph div with {panel, seq, ms, cells, segments}.
 */
(function () {
  "use strict";
  const sv = window.splineviz;
  const keys = new WeakMap();  // frame or points object -> integer key, one per object for the page's life
  let nextKey = 1;
  const keyOf = (obj) => {
    if (!keys.has(obj)) keys.set(obj, nextKey++);
    return keys.get(obj);
  };

  const graphDiv = (graphId) => document.querySelector("#" + graphId + " .js-plotly-plot");

  /* The engine's source for a worker: the function itself, called on the worker's global scope. */
  let workerUrl = null;
  function startEngine(canvas, style) {
    const offscreen = typeof canvas.transferControlToOffscreen === "function" && typeof Worker === "function";
    if (offscreen) {
      try {
        workerUrl = workerUrl || URL.createObjectURL(new Blob(["(" + sv.glEngine.toString() + ")(self);"],
                                                              {type: "text/javascript"}));
        const worker = new Worker(workerUrl);
        const target = canvas.transferControlToOffscreen();
        worker.postMessage({type: "init", canvas: target, style: style}, [target]);
        return worker;
      } catch (err) {
        console.warn("splineviz: painting on the page (" + err + ")");
      }
    }
    /* the same engine on the page, behind the same messages */
    const page = {onmessage: null};
    const engine = {postMessage: (msg) => setTimeout(() => page.onmessage({data: msg}), 0), onmessage: null,
                    terminate: () => {}};
    page.postMessage = (msg) => setTimeout(() => engine.onmessage && engine.onmessage({data: msg}), 0);
    sv.glEngine(page);
    engine.postMessage({type: "init", canvas: canvas, style: style});
    return engine;
  }

  class Painter {
    constructor(gd, panel, style) {
      this.gd = gd;
      this.panel = panel;
      const suffix = panel ? String(panel + 1) : "";
      this.axes = ["xaxis" + suffix, "yaxis" + suffix];
      this.clip = document.createElement("div");
      this.clip.className = "sv-paint";
      this.canvas = document.createElement("canvas");
      this.clip.appendChild(this.canvas);
      const host = gd.parentNode;
      host.classList.add("sv-host");
      host.insertBefore(this.clip, host.firstChild);
      this.engine = startEngine(this.canvas, style);
      this.engine.onmessage = (e) => this.receive(e.data);
      this.seq = 0;
      this.sent = new Set();      // keys of frames the engine got in the last message (it keeps several)
      this.pending = null;        // the newest request not yet sent
      this.busy = null;           // the request being painted
      this.waiting = new Map();   // seq -> resolve
      this.replies = new Map();   // id -> {resolve, reject}
      this.frame = null;
      this.view = {};
      this.painted = null;        // the range of the picture on the canvas
      this.live = null;           // the range plotly reports while it pans or zooms (before its relayout)
      this.pointsSent = new Set();
    }

    /* Plot-area geometry from plotly: pixel box and data range of this panel's axes. */
    box() {
      const fl = this.gd._fullLayout;
      const xa = fl && fl[this.axes[0]], ya = fl && fl[this.axes[1]];
      if (!xa || !ya || !xa._length || !ya._length) return null;
      return {left: this.gd.offsetLeft + xa._offset, top: this.gd.offsetTop + ya._offset, w: xa._length,
              h: ya._length, range: [xa.range[0], xa.range[1], ya.range[0], ya.range[1]].map(Number), xa: xa, ya: ya};
    }

    /* Follow plotly's axes: place the canvas on the plot area and move the last picture to the new range. */
    follow() {
      const b = this.box();
      if (!b) return null;
      if (this.live) b.range = this.live;
      Object.assign(this.clip.style, {left: b.left + "px", top: b.top + "px", width: b.w + "px", height: b.h + "px"});
      Object.assign(this.canvas.style, {width: b.w + "px", height: b.h + "px"});
      const p = this.painted;
      if (p && p.w === b.w && p.h === b.h) {
        const [x0, x1, y0, y1] = b.range, [a0, a1, c0, c1] = p.range;
        const sx = (a1 - a0) / (x1 - x0), sy = (c1 - c0) / (y1 - y0);
        const tx = (a0 - x0) / (x1 - x0) * b.w, ty = (y1 - c1) / (y1 - y0) * b.h;
        this.canvas.style.transform = `matrix(${sx}, 0, 0, ${sy}, ${tx}, ${ty})`;
      }
      return b;
    }

    message(view, extra) {
      const frames = {};
      const keep = new Set();
      const add = (frame) => {
        const key = keyOf(frame);
        keep.add(key);
        if (!this.sent.has(key)) frames[key] = frame;
        return key;
      };
      const v = {key: add(this.frame), range: view.range, size: view.size, dpr: window.devicePixelRatio || 1,
                 layer: view.layer == null ? null : view.layer, shade: view.shade || "class",
                 decision: view.decision !== false, highlight: view.highlight || null, fade: view.fade || null,
                 region: view.region == null ? null : view.region, points: null,
                 ghosts: (view.ghosts || []).map((g) => ({key: add(g.frame), layer: g.layer, units: g.units || null}))};
      if (view.points) {
        v.points = keyOf(view.points);
        if (!this.pointsSent.has(v.points)) {
          this.engine.postMessage({type: "points", key: v.points, points: view.points});
          this.pointsSent.add(v.points);
        }
      }
      this.sent = keep;
      return Object.assign({view: v, frames: frames}, extra);
    }

    /* Paint `frame` with `view`; resolves with the paint's numbers, or null if a newer request replaced it. */
    show(frame, view) {
      this.clip.style.display = "";
      this.frame = frame;
      this.view = Object.assign({}, view || {});
      return this.request();
    }

    /* Take the picture away (the graph shows something else); the next show() brings it back. */
    hide() {
      this.clip.style.display = "none";
      this.frame = null;
    }

    update(patch) {
      Object.assign(this.view, patch);
      return this.frame ? this.request() : Promise.resolve(null);
    }

    /* Repaint at plotly's current range (after a zoom, pan or resize), or at `live`, the one it reports
       while it pans or zooms (undefined: keep the last such report). */
    request(live) {
      if (live !== undefined) this.live = live;
      const b = this.follow();
      if (!b || !this.frame) return Promise.resolve(null);
      const seq = ++this.seq;
      if (this.pending) this.settle(this.pending.seq, null);
      this.pending = {seq: seq, range: b.range, w: b.w, h: b.h};
      return new Promise((resolve) => {
        this.waiting.set(seq, resolve);
        this.flush();
      });
    }

    flush() {
      if (this.busy || !this.pending) return;
      const p = this.pending;
      this.pending = null;
      this.busy = p;
      const view = Object.assign({}, this.view, {range: p.range, size: [p.w, p.h]});
      this.engine.postMessage(Object.assign(this.message(view, {type: "draw", seq: p.seq})));
    }

    settle(seq, info) {
      for (const [s, resolve] of this.waiting) {
        if (s <= seq) {
          this.waiting.delete(s);
          resolve(s === seq ? info : null);
        }
      }
    }

    receive(msg) {
      if (msg.type === "painted" || (msg.type === "error" && msg.seq != null)) {
        const done = this.busy;
        this.busy = null;
        if (msg.type === "error") {
          console.error("splineviz painter: " + msg.message);
          this.settle(msg.seq, null);
        } else if (done) {
          this.painted = {range: done.range, w: done.w, h: done.h};
          this.canvas.style.transform = "";
          this.follow();
          const info = Object.assign({panel: this.panel, seq: msg.seq}, msg);
          this.settle(msg.seq, info);
          this.gd.dispatchEvent(new CustomEvent("splineviz:painted", {detail: info}));
        }
        this.flush();
      } else if (msg.type === "error" && msg.id == null) {
        console.error("splineviz painter: " + msg.message);
      } else if (msg.type === "reply" || msg.type === "error") {
        const r = this.replies.get(msg.id);
        this.replies.delete(msg.id);
        if (r && msg.type === "error") r.reject(new Error(msg.message));
        else if (r) r.resolve(msg);
      }
    }

    /* A one-off request to the engine about the current view (svg, png, pick). */
    ask(type, extra) {
      const b = this.box();
      if (!b || !this.frame) return Promise.resolve(null);
      const id = ++this.seq;
      const view = Object.assign({}, this.view, {range: b.range, size: [b.w, b.h]});
      return new Promise((resolve, reject) => {
        this.replies.set(id, {resolve, reject});
        this.engine.postMessage(this.message(view, Object.assign({type: type, id: id}, extra)));
      });
    }

    pick(x, y) {
      return this.ask("pick", {x: x, y: y}).then((r) => r && r.hit);
    }

    dataAt(event) {
      const b = this.box();
      if (!b) return null;
      const rect = this.gd.getBoundingClientRect();
      const px = event.clientX - rect.left - b.xa._offset, py = event.clientY - rect.top - b.ya._offset;
      if (px < 0 || py < 0 || px > b.w || py > b.h) return null;
      return [b.xa.p2l(px), b.ya.p2l(py)];
    }
  }

  /* Every painter of a graph div, and the plotly events they follow (hooked once per div). */
  function painters(gd) {
    if (!gd.__svPainters) {
      gd.__svPainters = [];
      const each = (fn) => gd.__svPainters.forEach((p) => p && fn(p));
      gd.on("plotly_relayouting", (e) => each((p) => p.request(rangeOf(e, p))));
      gd.on("plotly_relayout", () => each((p) => p.request(null)));
      gd.on("plotly_afterplot", () => each((p) => p.request(null)));
    }
    return gd.__svPainters;
  }

  /* The range a relayouting event gives for a painter's axes, or null (then plotly's current one). */
  function rangeOf(event, p) {
    const b = p.box();
    if (!b) return null;
    const pick = (axis, i, fallback) => {
      const lo = event[axis + ".range[0]"], hi = event[axis + ".range[1]"], both = event[axis + ".range"];
      if (both) return Number(both[i]);
      const v = i === 0 ? lo : hi;
      return v == null ? fallback : Number(v);
    };
    const [x, y] = p.axes;
    return [pick(x, 0, b.range[0]), pick(x, 1, b.range[1]), pick(y, 0, b.range[2]), pick(y, 1, b.range[3])];
  }

  const TRANSPARENT = "rgba(0,0,0,0)";
  const pendingDraws = {};  // graph id -> the draw waiting for plotly to make the graph

  /*
   * Side-by-side panels (figures.side_by_side_layout: axes x, x2, ... in one row) are cramped on a narrow screen:
   * in a graph narrower than STACK_PX they stack, the first on top, each as wide as the graph, and the graph's box
   * grows to hold them (back to its own height when it is wide again: a ResizeObserver re-lays it).
   */
  const STACK_PX = 600, STACK_GAP_PX = 90;
  const sideBySide = {};  // graph id -> {layout: as the page gave it, stacked, width}
  const panelAxes = (layout) => Object.keys(layout).filter((k) => /^xaxis\d*$/.test(k));  // in panel order

  function stack(layout, width) {
    const keys = panelAxes(layout), m = layout.margin || {};
    const side = Math.max(width - (m.l || 0) - (m.r || 0), 100);
    const span = (axis) => (axis && axis.range ? Math.abs(axis.range[1] - axis.range[0]) : 1);
    // each panel as tall as its box at the graph's full width (one scale on both axes), at most square
    const heights = keys.map((x) => side * Math.min(span(layout["yaxis" + x.slice(5)]) / span(layout[x]), 1));
    const plot = heights.reduce((a, b) => a + b, 0) + (keys.length - 1) * STACK_GAP_PX;
    const out = Object.assign({}, layout, {height: plot + (m.t || 0) + (m.b || 0)});
    const tops = keys.map((x, i) => 1 - (heights.slice(0, i).reduce((a, b) => a + b, 0) + i * STACK_GAP_PX) / plot);
    keys.forEach((x, i) => {
      const y = "yaxis" + x.slice(5);
      out[x] = Object.assign({}, layout[x], {domain: [0, 1]});
      out[y] = Object.assign({}, layout[y], {domain: [Math.max(tops[i] - heights[i] / plot, 0), tops[i]],
                                             title: layout.yaxis && layout.yaxis.title});  // each its own y title
    });
    // each panel's title (an annotation on the paper over the panel's middle) goes over its panel
    const panelOf = (a) => keys.findIndex((x) => {
      const [lo, hi] = layout[x].domain || [0, 1];
      return a.xref === "paper" && a.yref === "paper" && a.y === 1 && a.x > lo && a.x < hi;
    });
    out.annotations = (layout.annotations || []).map((a) => {
      const i = panelOf(a);
      return i < 0 ? a : Object.assign({}, a, {x: 0.5, y: tops[i]});
    });
    return out;
  }

  const watched = {};  // graph id -> {box, observer}: the box whose size is watched, the one the page has now

  /* Lay a side-by-side graph out again when its width crosses STACK_PX (or changes while it is stacked). */
  function refit(graphId) {
    const held = sideBySide[graphId], box = document.getElementById(graphId), gd = graphDiv(graphId);
    if (!held || !box || !gd || !gd._fullLayout || box.clientWidth === 0) return;
    const w = box.clientWidth;
    if ((w < STACK_PX) === held.stacked && (!held.stacked || w === held.width)) return;
    window.Plotly.react(gd, gd.data, sv.painter.layout(held.layout, graphId));
  }
  // a box replaced by Dash between a layout and a resize is caught here too
  window.addEventListener("resize", () => Object.keys(sideBySide).forEach(refit));

  /* The layout for the graph as wide as it is now (see STACK_PX); sets the height of the graph's box. */
  function fit(graphId, layout) {
    const box = document.getElementById(graphId);
    if (!box) return layout;
    if (box.dataset.height == null) box.dataset.height = box.style.height;  // as the page made it
    const width = box.clientWidth, many = panelAxes(layout).length > 1;
    const narrow = many && width > 0 && width < STACK_PX;
    sideBySide[graphId] = many ? {layout: layout, stacked: narrow, width: width} : null;
    if (many && window.ResizeObserver && !(watched[graphId] && watched[graphId].box === box)) {
      if (watched[graphId]) watched[graphId].observer.disconnect();  // Dash made a new box for the graph
      const observer = new ResizeObserver(() => refit(graphId));
      observer.observe(box);
      watched[graphId] = {box: box, observer: observer};
    }
    if (!narrow) {
      box.style.height = box.dataset.height;
      return layout;
    }
    const stacked = stack(layout, width);
    box.style.height = stacked.height + "px";
    return stacked;
  }

  sv.painter = {
    /* The painter of a graph's panel, made on first use; null while plotly has not drawn the graph. */
    of(graphId, panel, style) {
      const gd = graphDiv(graphId);
      if (!gd || !gd._fullLayout) return null;
      const list = painters(gd);
      const i = panel || 0;
      if (!list[i]) list[i] = new Painter(gd, i, style || sv.painter.style);
      return list[i];
    },
    /* All painters of a graph (for exports). */
    all(graphId) {
      const gd = graphDiv(graphId);
      return gd && gd.__svPainters ? gd.__svPainters.filter(Boolean) : [];
    },
    /* A layout for a painted graph: plotly's backgrounds transparent, so the canvas shows through; with
       `graphId`, side-by-side panels stack where that graph is narrow (fit). */
    layout(layout, graphId) {
      return Object.assign({}, graphId ? fit(graphId, layout) : layout,
                           {paper_bgcolor: TRANSPARENT, plot_bgcolor: TRANSPARENT});
    },
    /* Draw a graph's axes (no traces but `traces`) once it exists; false while dcc.Graph has not made it. */
    axes(graphId, layout, traces) {
      const gd = graphDiv(graphId);
      if (!gd || !window.Plotly) return false;
      window.Plotly.react(gd, traces || [], sv.painter.layout(layout, graphId));
      return true;
    },
    /* Call fn(graphId) once plotly has drawn the graph (now, or on a later animation frame). */
    when(graphId, fn) {
      const gd = graphDiv(graphId);
      if (gd && gd._fullLayout && gd._fullLayout.xaxis) return fn(graphId);
      const waiting = (pendingDraws[graphId] = pendingDraws[graphId] || {fn: null, tries: 0});
      const first = !waiting.fn;
      waiting.fn = fn;  // the newest wins
      waiting.tries = 0;
      if (!first) return undefined;
      const retry = () => {
        const g = graphDiv(graphId);
        if (g && g._fullLayout && g._fullLayout.xaxis) {
          const run = waiting.fn;
          delete pendingDraws[graphId];
          run(graphId);
        } else if (++waiting.tries < 600) {
          requestAnimationFrame(retry);
        } else {
          delete pendingDraws[graphId];
        }
      };
      requestAnimationFrame(retry);
      return undefined;
    },
    graphDiv: graphDiv,
    keyOf: keyOf,
    panelAxes: panelAxes,  // the x axes of a layout's panels: "xaxis", "xaxis2", ...
    style: null,  // set by the first page that paints (the app's "style" store)
  };
})();

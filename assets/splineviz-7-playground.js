/*
 * Playground glue. Training runs as a chain of short background jobs ("chunks"): control() is the whole
 * transport, one reducer that keeps its state in the transport store. Its events are a new session, Train,
 * Step, "Train anyway" (after a large-run warning) and the pump's ticks (while playing or while a chunk is
 * awaited, when the job's stores changed); on each tick it reads them: done (a chunk finished, or failed),
 * busy and beat (running, and still heard of). It appends finished chunks, requests the next while playing,
 * and turns a lost job into a message; training then continues from the last model received. The job's stores are read
 * as state, not inputs: as inputs they would close a loop (tick -> job -> chunk -> tick) that Dash refuses to
 * run. Chunks are sized by the last frame's trace time (about cfg.chunkSeconds of tracing each), and the
 * kept frames by their bytes (sv.frame.thin).
 * render() paints the selected frame (only the newest while training follows it); replay() plays the
 * recorded ones; describe() titles and legends the exports.
 */
(function () {
  "use strict";
  const sv = window.splineviz;
  const F = sv.frame;
  const replayer = new sv.Replay(30);
  let shown = null;  // what render() drew last: {frames, index, opts, model, style, layoutId, datasets}

  /* dcc.Slider tooltips name a function of window.dccFunctions: layer sliders count from 1, like their marks */
  window.dccFunctions = window.dccFunctions || {};
  window.dccFunctions.countFromOne = (value) => value + 1;

  const layerMarks = (n) => (n ? Object.fromEntries([...Array(n).keys()].map((i) => [i, String(i + 1)])) : {0: "none"});
  const stamp = (done) => (done ? done.t : null);

  /*
   * The pump, while a run plays or a chunk is awaited: every cfg.pump.ms it looks at the job's stores and wakes
   * control() (through the pump store) only when one of them changed, or once every cfg.pump.wakeMs for the
   * lost-job timings. A dcc.Interval woke control() on every tick, and each Dash callback call makes several
   * store updates, each a pass over every component's selectors: at 100k regions that kept the page busy.
   */
  const pump = {timer: null, seen: null, woke: 0, n: 0};
  function setPump(active, cfg) {
    if (!active) {
      clearInterval(pump.timer);
      pump.timer = null;
      return;
    }
    if (pump.timer) return;
    const data = (id) => {
      const c = window.dash_component_api.getLayout(id);
      return c && c.props ? c.props.data : undefined;
    };
    pump.seen = null;
    pump.timer = setInterval(() => {
      const seen = JSON.stringify([stamp(data(cfg.job.done)), data(cfg.job.busy), data(cfg.job.beat)]);
      const now = Date.now();
      if (seen === pump.seen && now - pump.woke < cfg.pump.wakeMs) return;
      Object.assign(pump, {seen: seen, woke: now, n: pump.n + 1});
      sv.setProps(cfg.pump.id, {data: pump.n});
    }, cfg.pump.ms);
  }

  /*
   * values: session, play, step, confirm, pump (inputs); chunk, done, busy, beat, transport, model, frames,
   * history, target, epochIndex (state). cfg: {alert, confirm: {row, text}, job, maxFrames, chunkFrames,
   * chunkSeconds, chunkBytes, frameBytes, timing}.
   */
  function control(v, cfg) {
    const fired = v.triggered, now = Date.now(), out = {};
    const before = v.transport || {};
    const was = JSON.stringify(before);  // the reducer changes the inflight record in place
    const t = Object.assign({playing: false, inflight: null, n: 0}, before);
    let target = Math.max(1, Number(v.target) || 1);
    let run = v.model;

    const request = (epochs) => {
      t.n += 1;
      t.inflight = {n: t.n, heard: now, ended: null, started: false, beat: v.beat, done: stamp(v.done)};
      out.tick = {n: t.n, run_id: run.id, epochs: epochs, done: run.epoch,
                  target: Math.max(target, run.epoch + epochs)};
    };
    const stride = () => Math.max(1, Math.ceil(target / cfg.maxFrames));
    /*
     * frames per chunk: about cfg.chunkSeconds of tracing at the last frame's pace and about cfg.chunkBytes of
     * packed arrays at its size (so that frames keep arriving every second or two as they grow), at most
     * cfg.chunkFrames
     */
    const perChunk = () => {
      const last = v.frames && v.frames.length ? v.frames[v.frames.length - 1] : null;
      const seconds = last ? last.stats.trace_s || 0 : 0, size = last ? F.bytes(last) : 0;
      return Math.max(1, Math.min(cfg.chunkFrames, Math.floor(cfg.chunkSeconds / Math.max(seconds, 1e-3)),
                                  Math.floor(cfg.chunkBytes / Math.max(size, 1))));
    };
    const confirmRow = (message) => {
      sv.setProps(cfg.confirm.text, {children: message || ""});
      sv.setProps(cfg.confirm.row, {style: {display: message ? "flex" : "none"}});
    };

    if (fired.has("session") && v.session) {  // settings changed (which cancels a running chunk), reset, upload
      Object.assign(t, {playing: false, inflight: null});
      if (v.session.error) {
        sv.notify(cfg.alert, v.session.error);
      } else {
        const s = v.session, n = s.frames[0].lines.length;
        run = s.run;
        Object.assign(t, {estimate: s.estimate || null, confirmed: false});
        confirmRow(null);
        const layer = s.layer == null ? n - 1 : Math.min(s.layer, n - 1);
        Object.assign(out, {model: run, data: s.data, layout: s.layout, frames: s.frames, epoch: s.epoch || 0,
                            history: s.history || s.frames.map(F.historyEntry), layerMax: Math.max(0, n - 1),
                            layerMarks: layerMarks(n), layerValue: Math.max(0, layer)});
        sv.notify(cfg.alert, s.notice || null, "info");
      }
    }

    const lost = (why) => {
      Object.assign(t, {inflight: null, playing: false});
      sv.setProps(cfg.job.progress, {value: "0"});
      sv.setProps(cfg.job.label, {children: ""});
      sv.notify(cfg.alert, "The job was lost: " + why + " — press Train to continue from epoch " + run.epoch + ".");
    };
    const f = t.inflight;
    if (f && stamp(v.done) !== f.done) {  // a job finished: the awaited one with its chunk, or failed or lost
      const chunk = v.chunk;
      f.done = stamp(v.done);
      if (v.done.lost) {
        lost(v.done.lost);
      } else if (v.done.error) {
        Object.assign(t, {inflight: null, playing: false});
        sv.notify(cfg.alert, v.done.error);
      } else if (chunk && run && chunk.tick === f.n && chunk.run_id === run.id) {
        const frames = F.thin(v.frames.concat(chunk.frames), cfg.frameBytes);
        run = chunk.run;
        Object.assign(out, {frames: frames, model: run, history: v.history.concat(chunk.frames.map(F.historyEntry))});
        if (v.epochIndex == null || v.epochIndex >= v.frames.length - 1) {
          out.epoch = frames.length - 1;  // following training: the newest frame
        } else if (frames.length < v.frames.length + chunk.frames.length) {  // thinned: stay near the epoch shown
          const epoch = v.frames[v.epochIndex].stats.epoch, after = frames.findIndex((fr) => fr.stats.epoch > epoch);
          out.epoch = after < 0 ? frames.length - 1 : Math.max(0, after - 1);
        }
        t.inflight = null;
      }  // else: an earlier job of a replaced run finished; keep waiting for this one
    } else if (f) {  // still awaited: is it running, beating, or ended without a result?
      if (v.busy) f.started = true;
      else if (f.started && f.ended == null) f.ended = now;
      if (v.beat !== f.beat) Object.assign(f, {beat: v.beat, heard: now});
      const why = sv.jobs.lostReason(f, now, cfg.timing);
      if (why) lost(why);
    }

    if (fired.has("more") && run) {  // "+N epochs": raise the target past where the run is, and train on
      target = Math.min(cfg.maxEpochs, Math.max(target, run.epoch) + cfg.more);
      out.target = target;
      if (run.epoch >= target) {
        sv.notify(cfg.alert, "The run is at the most epochs the Playground trains (" + cfg.maxEpochs + ").", "info");
      } else if (!t.playing && !(t.estimate && !t.confirmed)) {
        t.playing = true;
        sv.notify(cfg.alert, null);
      } else if (!t.playing) {
        confirmRow(t.estimate.message);
      }
    }
    if (fired.has("play") && run) {
      if (t.playing) {
        t.playing = false;
      } else if (run.epoch >= target) {
        sv.notify(cfg.alert, "Trained to the target of " + target + " epochs; press +" + cfg.more +
                  " epochs (or raise Epochs) to train further.", "info");
      } else if (t.estimate && !t.confirmed) {
        confirmRow(t.estimate.message);  // a large run: say what it costs, and wait for "Train anyway"
      } else {
        t.playing = true;
        sv.notify(cfg.alert, null);
      }
    }
    if (fired.has("confirm") && run && !t.playing) {
      Object.assign(t, {confirmed: true, playing: run.epoch < target});
      confirmRow(null);
    }
    if (fired.has("step") && run && !t.inflight) {
      t.playing = false;
      request(stride());
    }
    if (t.playing && !t.inflight && run) {
      if (run.epoch >= target) t.playing = false;
      else request(Math.max(1, Math.min(stride() * perChunk(), target - run.epoch)));
    }

    if (JSON.stringify(t) !== was) out.transport = t;  // a pump tick that changed nothing writes nothing
    if (t.playing !== Boolean(before.playing) || !v.transport) {
      out.playLabel = t.playing ? "❚❚ Pause" : "▶ Train";
      out.playClass = t.playing ? "btn btn-primary playing" : "btn btn-primary";
    }
    const active = Boolean(t.playing || t.inflight);
    setPump(active, cfg);
    if (Boolean(t.inflight) !== Boolean(before.inflight) || !v.transport) out.stepDisabled = Boolean(t.inflight);
    return out;
  }

  /*
   * Paint the selected frame: the only per-animation-frame work, all in the browser (the painter's worker).
   * values: frames, epoch, layer, shade, show, data, layout, model, style. cfg: {graph, replay, datasets}.
   */
  function render(v, cfg) {
    if (!v.frames || !v.frames.length || !v.layout) return {};
    if (replayer.playing) {
      if (v.triggered.size === 1 && v.triggered.has("epoch") && v.epoch === replayer.index) return {};  // replay's own
      replayer.stop(false);  // a setting changed mid-replay: stop there and draw the new view
      sv.setProps(cfg.replay, {children: "▶ Replay"});
    }
    const show = v.show || [];
    const i = sv.clamp(v.epoch, v.frames.length);
    const layoutId = (v.model ? v.model.id : "") + "/" + sv.painter.keyOf(v.layout);
    const tests = show.includes("test") && v.data && v.data.test ? testTraces(v.data.test, v.style) : [];
    const fresh = !shown || shown.layoutId !== layoutId || shown.tests !== tests.length;
    const unit = v.unit && v.layer != null && v.unit.layer <= v.layer ? v.unit : null;
    shown = {frames: v.frames, index: i, model: v.model, style: v.style, layoutId: layoutId, datasets: cfg.datasets,
             classes: v.data ? v.data.classes : null, tests: tests.length,
             opts: {layer: v.layer, shade: v.shade, decision: show.includes("decision"), highlight: unit,
                    points: show.includes("points") && v.data ? v.data.points : null}};
    const frame = v.frames[i], last = v.frames.length - 1;
    const s = F.stats(frame, v.layer);
    const out = {epochMax: last, epochMarks: {0: String(v.frames[0].stats.epoch), [last]: String(v.frames[last].stats.epoch)},
                 statEpoch: s.epoch, statRegions: s.regions, statLoss: s.loss, statAccuracy: s.accuracy,
                 current: {weights: frame.weights, epoch: frame.stats.epoch, bounds: frame.bounds}};
    const layout = Object.assign({}, v.layout, {uirevision: v.model ? v.model.id : "partition"});
    if (fresh && !sv.painter.axes(cfg.graph, layout, tests)) out.figure = {data: tests, layout: sv.painter.layout(layout)};
    sv.painter.when(cfg.graph, (graphId) => sv.painter.of(graphId, 0, v.style).show(frame, shown.opts));
    return out;
  }

  /*
   * Replay the recorded frames at up to 30 fps, each painted before the next; the stats follow, and the epoch
   * slider when it stops. cfg: {graph, epoch, replay, stats}.
   */
  function replay(v, cfg) {
    if (replayer.playing) {
      replayer.stop(true);
      return "▶ Replay";
    }
    const painter = shown && sv.painter.of(cfg.graph, 0);
    if (!painter) return undefined;
    const frames = shown.frames;
    const show = (i) => {
      const s = F.stats(frames[i], shown.opts.layer);
      for (const [key, id] of Object.entries(cfg.stats)) {
        const el = document.getElementById(id);
        if (el) el.textContent = s[key];
      }
      shown.index = i;
      sv.setProps(cfg.epoch, {value: i});  // the slider (and the curves' marker) follow the replay
      return painter.show(frames[i], shown.opts).then((info) => {
        if (info) painter.gd.dispatchEvent(new CustomEvent("splineviz:replayframe", {detail: {index: i}}));
      });
    };
    const stop = (i) => {
      sv.setProps(cfg.epoch, {value: i});
      sv.setProps(cfg.replay, {children: "▶ Replay"});
    };
    replayer.start(sv.clamp(v.epoch, frames.length), frames.length, show, stop);
    return "❚❚ Pause";
  }

  /* Title and legend of an export: dataset, network, epoch and regions of the frame shown. */
  function describe() {
    if (!shown) return {};
    const frame = shown.frames[shown.index], run = shown.model || {}, arch = run.arch || {};
    const sizes = [arch.in_features || 2].concat(arch.hidden || [], [arch.out_features || 2]).join("-");
    const act = arch.activation === "leaky_relu" ? "Leaky ReLU" : "ReLU";
    const dataset = run.config ? (shown.datasets[run.config.dataset] || run.config.dataset) : "";
    const layer = F.shownLayer(frame, shown.opts.layer), s = F.stats(frame, shown.opts.layer);
    const title = [dataset, sizes + " " + act, "epoch " + s.epoch, s.regions + " regions"].filter(Boolean).join(" · ");
    const legend = sv.exporter.legend(shown.style, {classes: shown.classes || arch.out_features || 2, layers: layer + 1,
                                                    shade: shown.opts.shade,
                                                    decision: shown.opts.decision && layer === F.lastLayer(frame)});
    return {title: title, legend: legend};
  }

  /* Test points as a plotly trace over the painted partition: the class colour with a dark ring (TF Playground's). */
  function testTraces(test, style) {
    const pal = (style || sv.painter.style || {}).class_point || ["#e6550d", "#3182bd"];
    const bin = atob(test.c.bdata), c = [];
    for (let i = 0; i < bin.length; i += 2) c.push(bin.charCodeAt(i) | (bin.charCodeAt(i + 1) << 8));  // i2, >= 0
    return [{type: "scattergl", mode: "markers", name: "test points", x: test.x, y: test.y, hoverinfo: "skip",
             marker: {size: 6, color: c.map((k) => pal[k % pal.length]), line: {width: 1.2, color: "#111111"}}}];
  }

  /*
   * The shown frame once it settles (not while training plays or a chunk is awaited): what the server explains
   * (hover, unit strip, link). values: current, transport, view, model, data.
   */
  function settle(v) {
    const t = v.transport || {};
    if (!v.current || !v.model || t.playing || t.inflight) return undefined;
    if (v.view && v.view.weights === v.current.weights && v.view.run === v.model.id) return undefined;
    return {weights: v.current.weights, epoch: v.current.epoch, bounds: v.current.bounds, arch: v.model.arch,
            run: v.model.id};
  }

  /*
   * The unit strip: a thumbnail per hidden unit, built here as plain elements in one container rather than a Dash
   * component each (a 6 x 64 net has 384: every store update ran each one's selector, and building them blocked
   * the page for 2.6 s). A click (or Enter, splineviz-9-shell.js) sets cfg.click to {layer, unit, n}.
   * values: thumbs ([[data URI per unit] per layer]). cfg: {container, click}.
   */
  let unitClicks = 0;
  function strip(v, cfg) {
    const box = document.getElementById(cfg.container);
    if (!box) return;
    if (!box.dataset.wired) {
      box.dataset.wired = "1";
      box.addEventListener("click", (event) => {
        const thumb = event.target.closest(".unit-thumb");
        if (!thumb) return;
        unitClicks += 1;
        sv.setProps(cfg.click, {data: {layer: Number(thumb.dataset.layer), unit: Number(thumb.dataset.unit),
                                       n: unitClicks}});
      });
    }
    box.replaceChildren(...(v.thumbs || []).map((units, layer) => {
      const row = document.createElement("div"), label = document.createElement("span");
      row.className = "unit-row";
      label.className = "hint unit-layer";
      label.textContent = "layer " + (layer + 1);
      row.appendChild(label);
      units.forEach((src, k) => {
        const thumb = document.createElement("img");
        Object.assign(thumb, {src: src, className: "unit-thumb", title: `layer ${layer + 1}, unit ${k + 1}`});
        Object.assign(thumb.dataset, {layer: layer, unit: k});
        row.appendChild(thumb);  // tab stop and role: splineviz-9-shell.js (keyed)
      });
      return row;
    }));
  }

  /*
   * Hover: the region under the pointer is found by the painter's pick (the exact cells) and darkened; its
   * point goes to the server, which reads the region out of the exact partition. cfg: {graph, hover}.
   */
  const hooked = new WeakSet();
  function hover(v, cfg) {
    const gd = sv.painter.graphDiv(cfg.graph);
    if (!gd || hooked.has(gd)) return;
    hooked.add(gd);
    let last = null, pending = false;
    gd.addEventListener("mousemove", (event) => {
      if (pending) return;
      const painter = sv.painter.of(cfg.graph, 0);
      const at = painter && painter.dataAt(event);
      if (!at) return;
      pending = true;
      painter.pick(at[0], at[1]).then((hit) => {
        pending = false;
        const region = hit ? hit.region : null;
        if (region === last) return;
        last = region;
        painter.update({region: region});
        if (region != null) sv.setProps(cfg.hover, {data: {x: at[0], y: at[1], region: region}});
      }, () => { pending = false; });
    });
    gd.addEventListener("mouseleave", () => {
      const painter = sv.painter.of(cfg.graph, 0);
      last = null;
      if (painter) painter.update({region: null});
    });
  }

  /* The current epoch on the training curves: one dotted line through the three panels. cfg: {graph} */
  function marker(v, cfg) {
    if (!v.frames || !v.frames.length) return;
    sv.marker.move(cfg.graph, "current epoch", v.frames[sv.clamp(v.epoch, v.frames.length)].stats.epoch,
                   {type: "line", xref: "x", yref: "paper", y0: 0, y1: 1, line: {color: "#555", width: 1.5, dash: "dot"}});
  }

  /* "Keep the model": the controls go back to the uploaded run's settings. cfg: {row, controls} */
  function keep(v, cfg) {
    if (!v.shown) return;
    for (const [name, id] of Object.entries(cfg.controls)) sv.setProps(id, {value: v.shown.settings[name]});
    sv.setProps(cfg.row, {style: {display: "none"}});
  }

  /* After a file is read, empty the upload's file input: choosing the same file again is then a change too.
     cfg: {upload} */
  function rearm(v, cfg) {
    const input = document.querySelector("#" + cfg.upload + " input[type=file]");
    if (input) input.value = "";
  }

  /*
   * "Download session": what the server needs for a session file, gathered here so that only the frames'
   * weights and numbers travel (not their packed partitions): the newest frames first within cfg.maxBytes,
   * evenly thinned beyond it. values: frames, history, shown, epoch, layer, shade, show, unit, search, "page:ID"
   * (null while that page is not mounted: then what an opened session left for it, in restored).
   */
  function gather(v, cfg) {
    if (!v.frames || !v.frames.length) return undefined;
    const size = (f) => (f.weights || "").length + 200;
    let keep = v.frames.map((f, i) => i);
    while (keep.length > 2 && keep.reduce((n, i) => n + size(v.frames[i]), 0) > cfg.maxBytes) {
      keep = keep.filter((i, k) => k % 2 === 0 || k === keep.length - 1);
    }
    const index = sv.clamp(v.epoch, v.frames.length);
    const shownAt = Math.max(0, keep.findIndex((i) => i >= index));
    const pages = {};
    for (const name of Object.keys(v)) {
      const id = name.slice(5);
      if (name.startsWith("page:")) pages[id] = v[name] != null ? v[name] : (v.restored || {})[id];
    }
    return {frames: keep.map((i) => ({weights: v.frames[i].weights, stats: v.frames[i].stats})),
            history: v.history || [], upload: v.shown ? v.shown.upload : null,
            view: {epoch: shownAt, layer: v.layer, shade: v.shade, show: v.show, unit: v.unit},
            search: (v.search || "").replace(/([?&])w=[^&]*&?/, "$1").replace(/[?&]$/, ""), pages: pages, t: Date.now()};
  }

  /*
   * An opened session's other pages, address and view options, as they were. cfg: {url, shade, show, unit,
   * restored}: the other pages' stores go there, and on to each page once it is mounted (shell.deliver).
   */
  function restore(v, cfg) {
    const o = v.opened;
    if (!o) return;
    sv.setProps(cfg.restored, {data: o.pages || {}});
    const view = o.view || {};
    if (view.shade) sv.setProps(cfg.shade, {value: view.shade});
    if (view.show) sv.setProps(cfg.show, {value: view.show});
    sv.setProps(cfg.unit, {data: view.unit || null});
    if (o.search != null) sv.setProps(cfg.url, {search: o.search});
  }

  /*
   * Own data by clicking: while the dataset is "own", a click on the plot adds a point of the chosen class (the
   * server then starts a run on the new points); Clear empties them. cfg: {graph, own, dataset, max}.
   */
  const own = {on: false, cls: 0, text: "", hooked: null};
  function clickPoints(v, cfg) {
    Object.assign(own, {on: v.dataset === "own", cls: Number(v.cls) || 0, text: v.own || ""});
    if (v.triggered.has("clear")) {
      own.text = "";
      sv.setProps(cfg.own, {data: ""});
    }
    const gd = sv.painter.graphDiv(cfg.graph);
    if (!gd || own.hooked === gd) return;
    own.hooked = gd;
    gd.addEventListener("click", (event) => {
      const painter = sv.painter.of(cfg.graph, 0);
      const at = own.on && painter && painter.dataAt(event);
      if (!at) return;
      const rows = own.text ? own.text.split(";") : [];
      if (rows.length >= cfg.max) return;
      rows.push(at[0].toFixed(4) + " " + at[1].toFixed(4) + " " + own.cls);
      own.text = rows.join(";");
      sv.setProps(cfg.own, {data: own.text});
    });
  }

  sv.playground = {control, render, replay, describe, settle, strip, hover, marker, keep, rearm, gather, restore,
                   clickPoints};
})();

/*
 * Playground glue. Training runs as a chain of short background jobs ("chunks"): control() is the whole
 * transport, one reducer that keeps its state in the transport store. Its events are a new session, Train,
 * Step, "Train anyway" (after a large-run warning) and the pump's ticks (every 100 ms while playing or while a
 * chunk is awaited); on each tick it reads the job's stores: done (a chunk finished, or failed), busy and beat
 * (running, and still heard of). It appends finished chunks, requests the next while playing, and turns a
 * lost job into a message; training then continues from the last model received. The job's stores are read
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

  const layerMarks = (n) => (n ? Object.fromEntries([...Array(n).keys()].map((i) => [i, String(i + 1)])) : {0: "none"});
  const stamp = (done) => (done ? done.t : null);

  /*
   * values: session, play, step, confirm, pump (inputs); chunk, done, busy, beat, transport, model, frames,
   * history, target, epochIndex (state). cfg: {alert, confirm: {row, text}, job, maxFrames, chunkFrames,
   * chunkSeconds, frameBytes, timing}.
   */
  function control(v, cfg) {
    const fired = v.triggered, now = Date.now(), out = {};
    const before = v.transport || {};
    const t = Object.assign({playing: false, inflight: null, n: 0}, before);
    const target = Math.max(1, Number(v.target) || 1);
    let run = v.model;

    const request = (epochs) => {
      t.n += 1;
      t.inflight = {n: t.n, heard: now, ended: null, started: false, beat: v.beat, done: stamp(v.done)};
      out.tick = {n: t.n, run_id: run.id, epochs: epochs, done: run.epoch,
                  target: Math.max(target, run.epoch + epochs)};
    };
    const stride = () => Math.max(1, Math.ceil(target / cfg.maxFrames));
    /* frames per chunk: about cfg.chunkSeconds of tracing at the last frame's pace, at most cfg.chunkFrames */
    const perChunk = () => {
      const last = v.frames && v.frames.length ? v.frames[v.frames.length - 1].stats.trace_s || 0 : 0;
      return Math.max(1, Math.min(cfg.chunkFrames, Math.floor(cfg.chunkSeconds / Math.max(last, 1e-3))));
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
        Object.assign(out, {model: run, data: s.data, layout: s.layout, frames: s.frames, epoch: 0,
                            history: s.frames.map(F.historyEntry), layerMax: Math.max(0, n - 1),
                            layerMarks: layerMarks(n), layerValue: Math.max(0, n - 1)});
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

    if (fired.has("play") && run) {
      if (t.playing) {
        t.playing = false;
      } else if (run.epoch >= target) {
        sv.notify(cfg.alert, "Trained to the target of " + target + " epochs; raise Epochs to train further.", "info");
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

    out.transport = t;
    if (t.playing !== Boolean(before.playing) || !v.transport) {
      out.playLabel = t.playing ? "❚❚ Pause" : "▶ Train";
      out.playClass = t.playing ? "btn btn-primary playing" : "btn btn-primary";
    }
    const active = Boolean(t.playing || t.inflight);
    if (active !== Boolean(before.playing || before.inflight) || !v.transport) out.pumpDisabled = !active;
    if (Boolean(t.inflight) !== Boolean(before.inflight) || !v.transport) out.stepDisabled = Boolean(t.inflight);
    return out;
  }

  /*
   * Paint the selected frame: the only per-animation-frame work, all in the browser (the painter's worker).
   * values: frames, epoch, layer, shade, show, data, layout, model, style. cfg: {graph, replay, datasets}.
   */
  function render(v, cfg) {
    if (!v.frames || !v.frames.length || !v.layout) return {};
    if (replayer.playing) {  // a setting changed mid-replay: stop there and draw the new view
      replayer.stop(false);
      sv.setProps(cfg.replay, {children: "▶ Replay"});
    }
    const show = v.show || [];
    const i = sv.clamp(v.epoch, v.frames.length);
    const layoutId = (v.model ? v.model.id : "") + "/" + sv.painter.keyOf(v.layout);
    const fresh = !shown || shown.layoutId !== layoutId;
    shown = {frames: v.frames, index: i, model: v.model, style: v.style, layoutId: layoutId, datasets: cfg.datasets,
             opts: {layer: v.layer, shade: v.shade, decision: show.includes("decision"),
                    points: show.includes("points") && v.data ? v.data.points : null}};
    const frame = v.frames[i], last = v.frames.length - 1;
    const s = F.stats(frame, v.layer);
    const out = {epochMax: last, epochMarks: {0: String(v.frames[0].stats.epoch), [last]: String(v.frames[last].stats.epoch)},
                 statEpoch: s.epoch, statRegions: s.regions, statLoss: s.loss, statAccuracy: s.accuracy,
                 current: {weights: frame.weights, epoch: frame.stats.epoch}};
    const layout = Object.assign({}, v.layout, {uirevision: v.model ? v.model.id : "partition"});
    if (fresh && !sv.painter.axes(cfg.graph, layout)) out.figure = {data: [], layout: sv.painter.layout(layout)};
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
    const legend = sv.exporter.legend(shown.style, {classes: arch.out_features || 2, layers: layer + 1,
                                                    shade: shown.opts.shade,
                                                    decision: shown.opts.decision && layer === F.lastLayer(frame)});
    return {title: title, legend: legend};
  }

  sv.playground = {control, render, replay, describe};
})();

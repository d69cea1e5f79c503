/*
 * Playground glue. Training runs as a chain of short background jobs ("chunks"): control() is the whole
 * transport, one reducer that keeps its state in the transport store. Its events are a new session, Train,
 * Step and the pump's ticks (every 100 ms while playing or while a chunk is awaited); on each tick it reads
 * the job's stores: done (a chunk finished, or failed), busy and beat (running, and still heard of). It
 * appends finished chunks, requests the next while playing, and turns a lost job into a message; training
 * then continues from the last model received. The job's stores are read as state, not inputs: as inputs
 * they would close a loop (tick -> job -> chunk -> tick) that Dash refuses to run.
 * render() draws the selected frame; replay() plays the recorded ones.
 */
(function () {
  "use strict";
  const sv = window.splineviz;
  const F = sv.frame, R = sv.render;
  const replayer = new sv.Replay(30);
  let shown = null;  // what render() drew last: {frames, opts, layout, style}

  const layerMarks = (n) => (n ? Object.fromEntries([...Array(n).keys()].map((i) => [i, String(i + 1)])) : {0: "none"});
  const stamp = (done) => (done ? done.t : null);

  /*
   * values: session, play, step, pump (inputs); chunk, done, busy, beat, transport, model, frames, history,
   * target, epochIndex (state). cfg: {alert, job, maxFrames, chunkFrames, timing}.
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

    if (fired.has("session") && v.session) {  // settings changed (which cancels a running chunk), reset, upload
      Object.assign(t, {playing: false, inflight: null});
      if (v.session.error) {
        sv.notify(cfg.alert, v.session.error);
      } else {
        const s = v.session, n = s.frames[0].bnd.length;
        run = s.run;
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
        const frames = v.frames.concat(chunk.frames);
        run = chunk.run;
        Object.assign(out, {frames: frames, model: run, history: v.history.concat(chunk.frames.map(F.historyEntry))});
        if (v.epochIndex == null || v.epochIndex >= v.frames.length - 1) out.epoch = frames.length - 1;
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
      } else {
        t.playing = true;
        sv.notify(cfg.alert, null);
      }
    }
    if (fired.has("step") && run && !t.inflight) {
      t.playing = false;
      request(stride());
    }
    if (t.playing && !t.inflight && run) {
      if (run.epoch >= target) t.playing = false;
      else request(Math.max(1, Math.min(stride() * cfg.chunkFrames, target - run.epoch)));
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

  function figureAt(i) {
    return R.figure(R.scene(shown.frames[i], shown.opts, shown.style), shown.layout);
  }

  /*
   * Draw the selected frame: the only per-animation-frame work, all in the browser. values: frames, epoch,
   * layer, shade, show, data, layout, model, style. cfg: {graph, replay}.
   */
  function render(v, cfg) {
    if (!v.frames || !v.frames.length || !v.layout) return {};
    if (replayer.playing) {  // a setting changed mid-replay: stop there and draw the new view
      replayer.stop(false);
      R.hideOverlay(cfg.graph);
      sv.setProps(cfg.replay, {children: "▶ Replay"});
    }
    const show = v.show || [];
    shown = {frames: v.frames, style: v.style,
             opts: {layer: v.layer, shade: v.shade, decision: show.includes("decision"),
                    points: show.includes("points") && v.data ? v.data.points : null},
             layout: Object.assign({}, v.layout, {uirevision: v.model ? v.model.id : "partition"})};
    const i = sv.clamp(v.epoch, v.frames.length);
    const fig = figureAt(i);
    const frame = v.frames[i], last = v.frames.length - 1;
    const s = F.stats(frame, v.layer);
    const out = {epochMax: last, epochMarks: {0: String(v.frames[0].epoch), [last]: String(v.frames[last].epoch)},
                 statEpoch: s.epoch, statRegions: s.regions, statLoss: s.loss, statAccuracy: s.accuracy,
                 current: {weights: frame.weights, epoch: frame.epoch}};
    if (!R.react(cfg.graph, fig)) out.figure = fig;
    return out;
  }

  /*
   * Replay the recorded frames at 30 fps, painted on a canvas over the plot (a few ms per frame instead of a
   * plotly redraw); the stats follow, and the epoch slider when it stops. cfg: {graph, epoch, replay, stats}.
   */
  function replay(v, cfg) {
    if (replayer.playing) {
      replayer.stop(true);
      return "▶ Replay";
    }
    if (!shown) return undefined;
    const frames = shown.frames;
    const show = (i) => {
      const sc = R.scene(frames[i], shown.opts, shown.style);
      if (!R.paint(cfg.graph, sc)) R.react(cfg.graph, R.figure(sc, shown.layout));
      const s = F.stats(frames[i], shown.opts.layer);
      for (const [key, id] of Object.entries(cfg.stats)) {
        const el = document.getElementById(id);
        if (el) el.textContent = s[key];
      }
      const gd = R.graphDiv(cfg.graph);
      if (gd) gd.dispatchEvent(new CustomEvent("splineviz:replayframe", {detail: {index: i}}));
    };
    const stop = (i) => {
      R.hideOverlay(cfg.graph);
      R.react(cfg.graph, figureAt(i));
      sv.setProps(cfg.epoch, {value: i});
      sv.setProps(cfg.replay, {children: "▶ Replay"});
    };
    replayer.start(sv.clamp(v.epoch, frames.length), frames.length, show, stop);
    return "❚❚ Pause";
  }

  sv.playground = {control, render, replay};
})();

/*
 * Pruning while training (the Pruning and Early-bird pages): one or two scheduled runs animated in step.
 *
 * A page's store holds {token, runs, layout, title, classes} (splineviz/web/jobs/pruning.py, animation_store);
 * each run is {label, spec, frames: {index: frame}, n_frames, history, events, ticket}. Streamed payloads carry
 * no frames, and a large finished run none either: the frames a run lacks of its n_frames are fetched here one by
 * one (splineviz/web/framestore.py), newest first, and merged by token and index; each that lands is counted in
 * cfg.fetched, which draws again. The runs share one timeline of steps, one per (epoch, before / after a pruning
 * event); at each step every panel shows its run's newest frame so far, so two runs play in step. Units a
 * pruning event removed stay on the following cfg.ghostFrames frames as dashed ghosts (weight pruning: every
 * line of the partition before the event), and the step's epoch is marked on the page's curves.
 */
(function () {
  "use strict";
  const sv = window.splineviz;
  const F = sv.frame;
  const replayers = {};  // graph id -> sv.Replay
  const shown = {};      // graph id -> {token, runs, steps, layout, title, classes, index, follow, ours, style, points, cfg}

  /* One invisible point per panel of a side-by-side layout: plotly draws no axes that no trace uses (an empty
     trace would do, but makes NaN paths while the graph is hidden). */
  function anchors(layout) {
    return sv.painter.panelAxes(layout).map((k) => {
      const xa = layout[k], y = xa.anchor || "y", ya = layout["yaxis" + y.slice(1)] || {};
      const at = (axis) => (axis.range ? [axis.range[0]] : [0]);
      return {type: "scatter", mode: "markers", x: at(xa), y: at(ya), xaxis: "x" + k.slice(5), yaxis: y,
              marker: {opacity: 0}, hoverinfo: "skip", showlegend: false};
    });
  }

  /* Merge a store's payload into what the graph shows (a new token starts afresh). */
  function merge(graphId, payload) {
    let s = shown[graphId];
    if (!s || s.token !== payload.token) {
      s = shown[graphId] = {token: payload.token, runs: [], index: null, fresh: true, follow: true,
                            ours: new Set(), queue: [], asked: new Set(), fetching: false, missing: 0};
    }
    // the second run of a comparison streams after the first: its panel is new, so the axes are laid out again
    const panels = (layout) => (layout ? sv.painter.panelAxes(layout).length : 0);
    if (panels(payload.layout) !== panels(s.layout)) s.fresh = true;
    Object.assign(s, {layout: payload.layout, title: payload.title, classes: payload.classes});
    payload.runs.forEach((r, k) => {
      const run = s.runs[k] || (s.runs[k] = {frames: []});
      for (const [i, frame] of Object.entries(r.frames || {})) run.frames[Number(i)] = frame;
      Object.assign(run, {label: r.label, spec: r.spec, history: r.history || [], events: r.events || [],
                          ticket: r.ticket, n: r.n_frames});
    });
    s.steps = steps(s.runs);
    return s;
  }

  let fetchedCount = 0;

  /* Queue the frames the runs lack (newest first: a run in progress shows its newest soonest) and fetch them. */
  function fetchMissing(s, cfg) {
    s.runs.forEach((run, k) => {
      for (let i = 0; i < (run.n || 0); i++) {
        const key = k + "/" + i;
        if (!run.frames[i] && !s.asked.has(key)) {
          s.asked.add(key);
          s.queue.push([k, i]);
        }
      }
    });
    s.queue.sort((a, b) => b[1] - a[1]);
    if (!s.fetching) pump(s, cfg);
  }

  /* One request at a time, each frame parsed on its own (short tasks); the animation draws again when the queue
     runs dry, or every half second while it drains. */
  async function pump(s, cfg) {
    s.fetching = true;
    let told = performance.now();
    while (s.queue.length && shown[cfg.graph] === s) {
      const [k, i] = s.queue.shift();
      const frame = await getFrame(cfg.frames + "/" + s.token + "/" + k + "/" + i);
      if (shown[cfg.graph] !== s) break;  // a new run replaced this one
      if (frame) s.runs[k].frames[i] = frame;
      else s.missing += 1;
      if (!s.queue.length || performance.now() - told > 500) {
        s.steps = steps(s.runs);
        told = performance.now();
        sv.setProps(cfg.fetched, {data: ++fetchedCount});
      }
    }
    s.fetching = false;
  }

  /* A kept frame, or null when the server no longer has it (404) or cannot be reached after three tries. */
  async function getFrame(url) {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const response = await fetch(url, {credentials: "same-origin"});
        if (response.ok) return await response.json();
        if (response.status === 404) return null;
      } catch (e) { /* the network: try again */ }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    return null;
  }

  /* A frame's place in time: 2 * epoch, plus 1 for the partition right after a pruning event. */
  function stepKey(run, i) {
    const after = run.events.some((e) => e.after === i);
    return 2 * run.frames[i].stats.epoch + (after ? 1 : 0);
  }

  /* The common timeline: [{key, epoch, picks: [frame index per run, or -1 before its first frame]}]. */
  function steps(runs) {
    const keys = new Set();
    runs.forEach((run) => run.frames.forEach((f, i) => { if (f) keys.add(stepKey(run, i)); }));
    const sorted = [...keys].sort((a, b) => a - b);
    return sorted.map((key) => ({
      key: key, epoch: Math.floor(key / 2),
      picks: runs.map((run) => {
        let best = -1;
        run.frames.forEach((f, i) => { if (f && stepKey(run, i) <= key) best = i; });
        return best;
      }),
    }));
  }

  /* The event whose removed lines frame i still shows as ghosts, or null. */
  function recentEvent(run, i, ghostFrames) {
    let found = null;
    for (const e of run.events) if (e.after <= i && i - e.after < ghostFrames && run.frames[e.before]) found = e;
    return found;
  }

  function ghostsOf(run, event) {
    if (!event) return [];
    const before = run.frames[event.before];
    const layers = F.lastLayer(before) + 1;
    if (run.spec && run.spec.method === "weight") {  // every line of the partition before the step
      return [...Array(layers).keys()].map((l) => ({frame: before, layer: l, units: null}));
    }
    return event.removed.map((units, l) => ({frame: before, layer: l, units: units}))
      .filter((g) => g.units.length && g.layer < layers);
  }

  const pct = (x) => (x == null ? "–" : (100 * x).toFixed(x < 0.1 && x > 0 ? 1 : 0) + " %");

  /* One line per panel: where it is, and what the last pruning step did. */
  function describeStep(run, i, ghostFrames) {
    const frame = run.frames[i], st = frame.stats || {}, s = F.stats(frame, null);
    const parts = [run.label, "epoch " + st.epoch, "sparsity " + pct(st.sparsity), s.regions + " regions",
                   "test accuracy " + s.accuracy];
    const event = recentEvent(run, i, ghostFrames);
    const notes = [];
    if (event) {
      const units = event.removed.reduce((n, u) => n + u.length, 0);
      const what = units ? units + " unit" + (units === 1 ? "" : "s") + " removed (dashed)"
        : event.weights + " weights zeroed (old lines dashed)";
      const change = event.change == null ? "" : "; the decision moved on " + pct(event.change) + " of the box";
      notes.push((event.ticket ? "early-bird ticket at epoch " : "pruned at epoch ") + event.epoch + " to " +
                 pct(event.achieved) + ": " + what + change);
    }
    return {namespace: "dash_html_components", type: "Div",
            props: {className: "anim-line" + (event && event.ticket ? " ticket" : event ? " event" : ""),
                    children: parts.join(" · ") + (notes.length ? " — " + notes.join("") : "")}};
  }

  /* Paint step i on every panel; resolves when all are painted. */
  function paint(graphId, s, i, cfg) {
    const step = s.steps[i];
    s.index = i;
    for (const id of cfg.curves || []) sv.marker.move(id, "replay-marker", step.epoch);
    const opts = (run, pick) => ({shade: "class", decision: true, points: s.points,
                                  ghosts: ghostsOf(run, recentEvent(run, pick, cfg.ghostFrames))});
    const done = [];
    sv.painter.when(graphId, (g) => s.runs.forEach((run, k) => {
      const pick = step.picks[k], painter = sv.painter.of(g, k, s.style);
      if (pick >= 0 && painter) done.push(painter.show(run.frames[pick], opts(run, pick)));
    }));
    return Promise.all(done);
  }

  function info(s, i, cfg) {
    const step = s.steps[i];
    const line = (text) => ({namespace: "dash_html_components", type: "Div",
                             props: {className: "anim-line", children: text}});
    const lines = s.runs.map((run, k) => (step.picks[k] >= 0 ? describeStep(run, step.picks[k], cfg.ghostFrames)
      : line(run.label + ": not started yet")));
    if (s.missing) {
      lines.push(line(s.missing + " frame" + (s.missing === 1 ? "" : "s") + " could not be loaded: the server " +
                      "keeps a run's frames for " + cfg.keepMinutes + " minutes. Press Run to compute the run again."));
    }
    for (const l of lines) l.props["data-step"] = String(i);  // which step the lines describe (they lag the slider)
    return lines;
  }

  /*
   * The finished run (values.runs, the job's output) becomes what is shown (the live store, marked final). Dash
   * holds back a callback whose inputs include a running job's outputs until the job ends, so render() listens
   * to the live store alone, which the job streams into and this fills at the end (or from a restored session).
   */
  function land(v) {
    return v.runs ? Object.assign({}, v.runs, {final: true}) : undefined;
  }

  /*
   * What server callbacks read of the live store (curves, distances): everything but the frames, which for a
   * large run are far more than one request may carry (LIMITS.request_bytes). cfg: {store, everyMs}. Written at
   * most every cfg.everyMs while the run streams, the newest payload at the end of the wait and the finished run
   * at once: each write redraws the curves (a 6 x 64 run's 107 writes cost 4.9 s of plotly redraws and 3.5 s of
   * marker moves on the main thread, in tasks of up to 200 ms).
   */
  const numbered = {};
  function numbers(v, cfg) {
    if (!v.live) return;
    const slot = numbered[cfg.store] || (numbered[cfg.store] = {at: 0, timer: null, live: null});
    slot.live = v.live;
    const write = () => {
      clearTimeout(slot.timer);
      Object.assign(slot, {timer: null, at: Date.now()});
      const live = slot.live;
      sv.setProps(cfg.store, {data: Object.assign({}, live, {runs: live.runs.map((r) => Object.assign({}, r,
                                                                                                 {frames: {}}))})});
    };
    const wait = slot.at + cfg.everyMs - Date.now();
    if (v.live.final || wait <= 0) write();
    else if (!slot.timer) slot.timer = setTimeout(write, wait);
  }

  /*
   * values: live (the job's stream, or the finished run), step (slider), data, fetched (frames fetched), style.
   * cfg: {graph, curves, points, ghostFrames, fetched, frames (the URL they come from), keepMinutes}. Follows a run in progress on its newest step unless the user moved
   * the slider back (a slider value this code set itself, arriving late, is not the user's).
   */
  function render(v, cfg) {
    const fired = v.triggered;
    let s = shown[cfg.graph];
    // a large run's job sends its payload for a moment, then null (runner.stream): nothing new to show
    if (!v.live && fired.size === 1 && fired.has("live")) return {};
    if (v.live && (fired.has("live") || !s)) {
      s = merge(cfg.graph, v.live);
      fetchMissing(s, cfg);
    }
    if (!s || !s.steps || !s.steps.length) return {};
    Object.assign(s, {style: v.style, cfg: cfg});
    s.points = cfg.points && v.data ? v.data.points : null;
    const replayer = replayers[cfg.graph];
    const replaying = replayer && replayer.playing;
    const last = s.steps.length - 1;
    const out = {};
    // a value set here or by the replay (arriving late, or echoed by the slider) is not the user's
    const ours = fired.has("step") && (s.ours.has(v.step) || v.step === s.index);
    if (fired.has("step") && !ours) {
      s.follow = v.step >= last;
      s.ours.clear();
      if (replaying) replayer.stop(true);  // the user moved the slider: stop there
    }
    const i = s.follow ? last : sv.clamp(v.step, s.steps.length);
    if (i !== v.step) {
      out.stepValue = i;
      s.ours.add(i);
    }
    out.stepMax = last;
    const firstEpoch = s.steps[0].epoch, lastEpoch = s.steps[last].epoch;
    out.stepMarks = {0: String(firstEpoch), [last]: String(lastEpoch)};
    s.steps.forEach((step, j) => {  // a mark on each pruning step, so that it can be found
      if (step.key % 2 && j < last) out.stepMarks[j] = "✂" + step.epoch;
    });
    if (s.fresh) {
      s.fresh = false;
      const layout = Object.assign({}, s.layout, {uirevision: s.token});
      const traces = anchors(layout);
      if (!sv.painter.axes(cfg.graph, layout, traces)) {
        out.figure = {data: traces, layout: sv.painter.layout(layout, cfg.graph)};
      }
      sv.painter.all(cfg.graph).forEach((p, k) => { if (k >= s.runs.length) p.hide(); });
    }
    out.info = info(s, i, cfg);
    if (!(ours && replayer && replayer.playing)) paint(cfg.graph, s, i, cfg);  // the replay paints its own steps
    return out;
  }

  /* Play the steps from the slider's position at up to 30 fps, each painted before the next. cfg: {graph, step,
     replay}. */
  function replay(v, cfg) {
    const replayer = replayers[cfg.graph] || (replayers[cfg.graph] = new sv.Replay(30));
    if (replayer.playing) {
      replayer.stop(true);
      return "▶ Replay";
    }
    const s = shown[cfg.graph];
    if (!s || !s.steps || s.steps.length < 2) return undefined;
    const show = (i) => {
      const painted = paint(cfg.graph, s, i, s.cfg);
      s.ours.add(i);
      sv.setProps(cfg.step, {value: i});
      return painted;
    };
    const stop = () => sv.setProps(cfg.replay, {children: "▶ Replay"});
    s.follow = false;
    replayer.start(sv.clamp(v.step, s.steps.length), s.steps.length, show, stop);
    return "❚❚ Pause";
  }

  /* Title and legend of an export: the runs and the step shown. cfg: {graph}. */
  function describe(cfg) {
    const s = shown[cfg.graph];
    if (!s || s.index == null) return {};
    const step = s.steps[s.index];
    const first = s.runs[0].frames[Math.max(0, step.picks[0])];
    const title = s.title + " · " + s.runs.map((r) => r.label).join(" vs ") + " · epoch " + step.epoch;
    return {title: title, legend: sv.exporter.legend(s.style, {classes: s.classes, layers: F.lastLayer(first) + 1,
                                                               shade: "class", decision: true})};
  }

  sv.pruning = {land, numbers, render, replay, describe, anchors};
})();

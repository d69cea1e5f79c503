/*
 * Background jobs, seen from the page. Every job has three stores (splineviz/web/ids.py, Job): busy (true
 * while Dash runs it), beat (changes with each progress report: the job re-sends one every second) and
 * done (written once when it finishes, with an error message if it failed). A job that stops being busy
 * without writing done, or whose beats stop while it is busy, was lost: its process died or the server
 * stopped answering; the server's job manager may also say so (done.lost: the reason). The page then says so
 * and gives the controls back, instead of waiting forever.
 */
(function () {
  "use strict";
  const sv = window.splineviz;

  /* Why a job is lost, or null: track = {heard, ended} timestamps; timing = {graceMs, silentMs}. */
  function lostReason(track, now, timing) {
    if (track.ended != null && now - track.ended > timing.graceMs) return "its process stopped without a result";
    if (track.ended == null && now - track.heard > timing.silentMs) return "the server stopped answering";
    return null;
  }

  /* Per watched job: its track while it runs, the check timer and the message it showed. */
  const watches = new Map();

  function settle(w) {
    clearInterval(w.timer);
    w.timer = null;
    w.track = null;
  }

  function say(w, cfg, message, kind) {
    sv.notify(cfg.alert, message, kind);
    w.shown = message;
  }

  /* Give the controls back after a lost job whose poll chain Dash has dropped (it never switches them off). */
  function release(cfg) {
    const job = cfg.job;
    sv.setProps(job.busy, {data: false});
    sv.setProps(job.progress, {value: "0"});
    sv.setProps(job.label, {children: ""});
    if (cfg.hideIdle) sv.setProps(job.row, {style: {visibility: "hidden"}});
    if (cfg.start) sv.setProps(cfg.start, {disabled: false});
    if (cfg.cancel) sv.setProps(cfg.cancel, {disabled: true});
  }

  function check(w, cfg) {
    if (!w.track) return settle(w);
    if (w.track.cancelled && w.track.ended != null) {
      settle(w);
      say(w, cfg, cfg.what + " was cancelled.", "info");
      return;
    }
    const why = lostReason(w.track, Date.now(), cfg.timing);
    if (why) {
      settle(w);
      release(cfg);
      say(w, cfg, cfg.what + " was lost: " + why + "." + (cfg.retry ? " " + cfg.retry : ""));
    }
  }

  /*
   * Watch one job: values {busy, beat, done, cancel?}; cfg {job: ids, alert, start, cancel, what, retry,
   * hideIdle, timing}. Errors from the job (done.error) and lost or cancelled jobs go to the page's alert.
   */
  function watch(v, cfg) {
    let w = watches.get(cfg.job.done);
    if (!w) watches.set(cfg.job.done, (w = {track: null, timer: null, shown: null}));
    const now = Date.now();
    if (v.triggered.has("busy")) {
      if (v.busy) {
        if (w.shown) { sv.notify(cfg.alert, null); w.shown = null; }
        w.track = {heard: now, ended: null, cancelled: false};
        if (!w.timer) w.timer = setInterval(() => check(w, cfg), 250);
      } else if (w.track) {
        w.track.ended = now;
      }
    }
    if (v.triggered.has("beat") && w.track) w.track.heard = now;
    if (v.triggered.has("cancel") && w.track) w.track.cancelled = true;
    if (v.triggered.has("done") && v.done) {
      settle(w);
      if (v.done.lost) release(cfg);
      if (v.done.error) say(w, cfg, v.done.error + (v.done.lost && cfg.retry ? " " + cfg.retry : ""));
      else if (w.shown) { sv.notify(cfg.alert, null); w.shown = null; }
    }
  }

  /*
   * Say that a job was cancelled, when its Cancel button is pressed: cfg {alert, what}. The watch cannot tell:
   * Dash holds back callbacks whose inputs a pending callback writes (busy, beat, done) until that callback
   * ends, and a cancelled job's never does, so the watch is not called at all. The button is enabled only while
   * the job runs (wiring.job), and Dash stops the job on the same click.
   */
  function cancelled(v, cfg) {
    if (v.clicks) sv.notify(cfg.alert, cfg.what + " was cancelled.", "info");
  }

  /*
   * Tell the server this tab is open (every cfg.seconds) and when it goes (pagehide), so that its jobs stop
   * within seconds of the tab closing. The timer runs in a worker: page timers in a hidden tab slow down to
   * once a minute, worker timers do not.
   */
  let beating = null;
  function heartbeat(v, cfg) {
    if (!v.session || beating === v.session) return;
    beating = v.session;
    const send = (url) => (navigator.sendBeacon ? navigator.sendBeacon(url, v.session)
      : fetch(url, {method: "POST", body: v.session, keepalive: true}));
    const tick = () => send(cfg.beat);
    try {
      const source = "setInterval(function () { postMessage(0); }, " + Math.round(1000 * cfg.seconds) + ");";
      new Worker(URL.createObjectURL(new Blob([source], {type: "text/javascript"}))).onmessage = tick;
    } catch (e) {
      setInterval(tick, 1000 * cfg.seconds);
    }
    tick();
    window.addEventListener("pagehide", () => send(cfg.bye));
    window.addEventListener("pageshow", (event) => { if (event.persisted) tick(); });
  }

  /* Refuse files over the upload limit before they are read and sent: cfg {upload, alert, maxBytes}.
     dcc.Upload's max_size drops them silently; this says why. */
  const guarded = new Set();
  function guardUpload(_v, cfg) {
    if (guarded.has(cfg.upload)) return;
    guarded.add(cfg.upload);
    const mib = (n) => (n / 1048576).toFixed(1) + " MiB";
    const check = (target, files) => {
      if (!target.closest || !target.closest("#" + cfg.upload)) return;
      for (const file of files || []) {
        if (file.size > cfg.maxBytes) {
          sv.notify(cfg.alert, "Could not load " + file.name + ": the file is " + mib(file.size) +
                    ", over the limit of " + mib(cfg.maxBytes) + ".");
        }
      }
    };
    document.addEventListener("change", (e) => check(e.target, e.target.files), true);
    document.addEventListener("drop", (e) => check(e.target, e.dataTransfer && e.dataTransfer.files), true);
  }

  sv.jobs = {lostReason, watch, cancelled, heartbeat, guardUpload};
})();

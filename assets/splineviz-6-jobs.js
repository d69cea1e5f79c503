/*
 * Background jobs, seen from the page. Dash runs a job as a chain of requests to _dash-update-component: one
 * starts it, then polls follow until one carries the result. Every job has a done store (splineviz/web/ids.py,
 * Job), written once when it ends, with an error message if it failed or was lost (done.lost: why; the
 * server's job manager says so for a job that died). The watch below shows that message in the page's alert.
 *
 * A poll that fails (no connection, no answer, an HTTP error) ends Dash's chain at once, and Dash holds back
 * every callback whose inputs a running job writes, so no Dash callback can watch a job while it runs. The
 * poll watch therefore sits under Dash, in window.fetch: a failed poll is sent again every second, and once
 * polls have failed for timing.silentMs it answers Dash itself with a done that says the contact was lost.
 * Dash then ends the job as it ends any other (the controls come back, nothing the page holds is touched) and
 * the watch shows the message. A start that fails is not sent again: that could run the job twice.
 * The Playground's transport reads its job's stores itself (lostReason) and is not watched here.
 */
(function () {
  "use strict";
  const sv = window.splineviz;
  const RETRY_MS = 1000;  // between tries of a failed poll
  const MIN_WAIT_MS = 2000;  // the least a try waits for an answer

  /* Why the Playground's job is lost, or null: track = {heard, ended} timestamps; timing = {graceMs, silentMs}. */
  function lostReason(track, now, timing) {
    if (track.ended != null && now - track.ended > timing.graceMs) return "its process stopped without a result";
    if (track.ended == null && now - track.heard > timing.silentMs) return "the server stopped answering";
    return null;
  }

  /* Watched jobs by done store id: {cfg, cancelled, shown (the message it showed)}. */
  const jobs = new Map();

  function entry(cfg) {
    let w = jobs.get(cfg.done);
    if (!w) jobs.set(cfg.done, (w = {cfg: cfg, cancelled: false, shown: null}));
    return w;
  }

  function say(w, message) {
    sv.notify(w.cfg.alert, message);
    w.shown = message;
  }

  function unsay(w) {
    if (w.shown) sv.notify(w.cfg.alert, null);
    w.shown = null;
  }

  /* Put every job (cfgs: each job's watch cfg, as below) under the poll watch at page load (wiring.watch_jobs). */
  function register(_v, cfgs) {
    cfgs.forEach(entry);
  }
  /*
   * Watch one job: values {done}; cfg {done: its store id, alert, what, retry, timing}. Failures and lost jobs
   * (done.error) go to the page's alert, a lost job's message ending with cfg.retry.
   */
  function watch(v, cfg) {
    const w = entry(cfg);
    if (!v.triggered.has("done") || !v.done) return;
    if (v.done.error) say(w, v.done.error + (v.done.lost && cfg.retry ? " " + cfg.retry : ""));
    else unsay(w);
  }

  /* The watched job a request to _dash-update-component belongs to: its body names the outputs first. */
  function watchedBy(body) {
    if (typeof body !== "string") return null;
    const outputs = body.slice(0, body.indexOf('"outputs"'));  // {"output":"..a.data...b.data..",...
    for (const w of jobs.values()) if (outputs.includes("." + w.cfg.done + ".data.")) return w;
    return null;
  }

  /* A fetch that gives up (AbortError) when no answer has come after ms. */
  const realFetch = window.fetch.bind(window);
  function answer(url, init, ms) {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), ms);
    return realFetch(url, Object.assign({}, init, {signal: abort.signal})).finally(() => clearTimeout(timer));
  }

  /* What Dash gets for a job the page lost contact with: its done, as if the server had answered it. */
  function lostContact(w, polling, why) {
    if (w.cancelled) return new Response(null, {status: 204});  // cancelled: Dash ends it without a word
    const cfg = w.cfg;
    const reason = polling ? "lost contact with the server for " + Math.round(cfg.timing.silentMs / 1000) + " s (" +
      why + ")" : "could not reach the server to start it (" + why + ")";
    const done = {ok: false, error: cfg.what + ": " + reason + (polling ? "; the job may be lost." : "."),
                  lost: reason, t: Date.now() / 1000};
    return new Response(JSON.stringify({multi: true, response: {[cfg.done]: {data: done}}}),
                        {status: 200, headers: {"Content-Type": "application/json"}});
  }

  /* Send a watched job's request: a poll is sent again until it is answered or has failed for silentMs. */
  async function send(w, url, init) {
    const polling = /[?&]job=/.test(url), since = Date.now(), silentMs = w.cfg.timing.silentMs;
    if (!polling) {  // a new job: a message about the last one goes
      w.cancelled = false;
      unsay(w);
    }
    for (;;) {
      let why;
      try {
        const res = await answer(url, init, Math.max(since + silentMs - Date.now(), MIN_WAIT_MS));
        if (res.ok || res.status === 204) return res;
        why = "HTTP " + res.status;
      } catch (e) {
        why = e.name === "AbortError" ? "no answer" : "no connection";
      }
      if (!polling || w.cancelled || Date.now() - since >= silentMs) return lostContact(w, polling, why);
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
  }

  window.fetch = function (resource, init) {
    const w = typeof resource === "string" && resource.includes("_dash-update-component") && init
      ? watchedBy(init.body) : null;
    return w ? send(w, resource, init) : realFetch(resource, init);
  };

  /*
   * Say that a job was cancelled, when its Cancel button is pressed: cfg {done, alert, what}. The watch cannot
   * tell: a cancelled job never writes done. The button is enabled only while the job runs (wiring.job), and
   * Dash stops the job on the same click; its polls are then no longer watched.
   */
  function cancelled(v, cfg) {
    if (!v.clicks) return;
    const w = jobs.get(cfg.done);
    if (w) w.cancelled = true;
    sv.notify(cfg.alert, cfg.what + " was cancelled.", "info");
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

  sv.jobs = {lostReason, register, watch, cancelled, heartbeat, guardUpload};
})();

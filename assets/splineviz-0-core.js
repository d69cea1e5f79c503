/*
 * splineviz in the browser: one namespace, window.splineviz, split by job into files loaded in name order.
 *
 *   splineviz-0-core.js        this file: calling convention, alerts, small helpers
 *   splineviz-1-frame.js       frames on the page: stats, sizes, thinning (the painter decodes them)
 *   splineviz-2-gl.js          the painter's engine: WebGL2 drawing of packed frames, SVG paths, picking
 *   splineviz-3-painter.js     painters under plotly's axes, their worker, latest-wins requests (the API)
 *   splineviz-4-export.js      PNG / SVG exports with title, axes and legend
 *   splineviz-5-replay.js      frame-by-frame playback at a capped rate
 *   splineviz-6-jobs.js        background jobs: lost-job and poll watch, tab heartbeat, upload size guard
 *   splineviz-7-playground.js  Playground glue: transport (play / step / chunks), drawing, replay
 *   splineviz-8-pages.js       MNIST slice and side-by-side panels (pruning, early-bird) glue
 *   splineviz-8p-pruning.js    pruning while training: runs streamed, animated in step, replayed (both pages)
 *   splineviz-9-shell.js       routing between the pages
 *
 * Page glue is called from Dash through splineviz.call (see splineviz/web/wiring.py clientside): it gets
 * its inputs by name and a config holding every component id it needs; no script names an id itself.
 */
(function () {
  "use strict";
  const sv = (window.splineviz = window.splineviz || {});

  /* read at call time: dash_clientside is created by the renderer after the assets load */
  sv.noUpdate = () => window.dash_clientside.no_update;

  /*
   * Run sv[path](values, config) for a clientside callback: values are the callback's inputs and state by
   * name, plus values.triggered, the set of names that fired. A named result becomes Dash's output list
   * (missing names stay as they are); with outNames null the result is the single output's value. Results
   * named in written ({name: [id, prop]}) are set with set_props, and only when present: Dash updates every
   * declared output on each call, even one left as no_update (see wiring.py, clientside).
   */
  sv.call = function (path, names, props, outNames, config, args, written) {
    const fn = path.split(".").reduce((obj, key) => obj[key], sv);
    const fired = new Set((window.dash_clientside.callback_context.triggered || []).map((t) => t.prop_id));
    const values = {triggered: new Set(names.filter((name, i) => fired.has(props[i])))};
    names.forEach((name, i) => { values[name] = args[i]; });
    const result = fn(values, config);
    const byId = {};
    for (const [name, [id, prop]] of Object.entries(written || {})) {
      if (result && name in result) (byId[id] = byId[id] || {})[prop] = result[name];
    }
    for (const [id, update] of Object.entries(byId)) sv.setProps(id, update);
    if (!outNames) return result === undefined || written ? sv.noUpdate() : result;
    const named = result || {};
    return outNames.map((name) => (name in named ? named[name] : sv.noUpdate()));
  };

  sv.setProps = (id, props) => window.dash_clientside.set_props(id, props);

  /* Show a message in an alert element (none: clear it); "info" messages are not errors. */
  sv.notify = function (alertId, message, kind) {
    sv.setProps(alertId, {children: message || null, className: kind === "info" ? "alert alert-info" : "alert"});
  };

  sv.fmt = (value, digits) => (value == null ? "–" : Number(value).toFixed(digits));
  sv.clamp = (i, n) => Math.max(0, Math.min(i || 0, n - 1));
})();

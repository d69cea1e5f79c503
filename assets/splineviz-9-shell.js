/*
 * The frame around the pages: routing by path happens in the browser, so switching pages costs no request.
 * Also the narrow-screen menu, links that start a page's run (presets: run=1), and keyboard use of the few
 * controls that are not native buttons or inputs.
 */
(function () {
  "use strict";
  const sv = window.splineviz;

  const trimmed = (path) => (path || "/").replace(/\/+$/, "");

  /* values: path; cfg: {pages: [{path, page, nav}]} (the first is the default) -> styles and nav classes */
  function route(v, cfg) {
    const path = trimmed(v.path);
    const current = cfg.pages.find((p) => p.path === path) || cfg.pages[0];
    const out = {};
    for (const p of cfg.pages) {
      out["style_" + p.page] = {display: p === current ? "block" : "none"};
      out["nav_" + p.page] = p === current ? "nav-link active" : "nav-link";
    }
    return out;
  }

  /*
   * values: model, data, path, mounted_<page> (its wrapper's class). cfg: {pages: [{path, page, model, data}],
   * mounted}. The app's model and data go to a page's own copies (cfg.pages' model, data) only while that page
   * shows, once it is mounted, and only when they changed: those pages recompute (on the server) at every change.
   */
  const copied = {};
  function pageModel(v, cfg) {
    const page = cfg.pages.find((p) => p.path === trimmed(v.path));
    if (!page || v["mounted_" + page.page] !== cfg.mounted) return;
    for (const name of ["model", "data"]) {
      if (copied[page[name]] !== v[name]) {
        copied[page[name]] = v[name];
        sv.setProps(page[name], {data: v[name]});
      }
    }
  }

  /*
   * values: restored ({store id: data} of an opened session), mounted_<page>. cfg: {stores: {store id: page},
   * store, mounted}. Each restored store goes to its page once that page is mounted; the rest wait in cfg.store.
   */
  function deliver(v, cfg) {
    const left = {};
    let moved = false;
    for (const [id, data] of Object.entries(v.restored || {})) {
      if (v["mounted_" + cfg.stores[id]] === cfg.mounted) {
        sv.setProps(id, {data: data});
        moved = true;
      } else {
        left[id] = data;
      }
    }
    if (moved) sv.setProps(cfg.store, {data: left});
  }

  /* The menu button opens and closes the navigation on narrow screens; going to a page closes it. */
  function menu(v) {
    const open = v.triggered.has("toggle") && v.open !== "true";
    return {header: open ? "header menu-open" : "header", expanded: open ? "true" : "false"};
  }

  /*
   * values: run ("1" from a link's run=1), path. cfg: {store, home, pages: {path: {button, ready}}}.
   * Press the page's run button once the page is ready: the "ready" element shows a value that has not changed
   * for a second (so a model set up from the link's settings has replaced the default one) and the button is
   * enabled. Then run goes back to "" and the shell drops run=1 from the address, so a copied link does not
   * start the run again.
   */
  const STEADY_MS = 1000, GIVE_UP_MS = 120000, POLL_MS = 200;
  let waiting = null;
  function autorun(v, cfg) {
    if (v.run !== "1" || waiting) return;
    const target = cfg.pages[trimmed(v.path) || cfg.home] || cfg.pages[cfg.home];
    sv.setProps(cfg.store, {data: ""});
    if (!target) return;
    const start = Date.now();
    let seen = null, since = start;
    waiting = setInterval(() => {
      const ready = document.getElementById(target.ready);
      const button = document.getElementById(target.button);
      const value = ready ? ready.textContent.trim() : "";
      if (value !== seen) { seen = value; since = Date.now(); }
      const steady = value && value !== "–" && Date.now() - since >= STEADY_MS;
      if ((steady && button && !button.disabled) || Date.now() - start > GIVE_UP_MS) {
        clearInterval(waiting);
        waiting = null;
        if (steady && button && !button.disabled) button.click();
      }
    }, POLL_MS);
  }

  /*
   * Keyboard: every control is reachable with Tab and shows where the focus is (style.css, :focus-visible).
   * Native buttons, links, inputs, radios, sliders (arrows, Home, End) and dropdowns handle their own keys; the
   * file drop zones (dcc.Upload) are divs and the Playground's unit thumbnails images, so they get a tab stop and
   * act on Enter or Space as on a click (a drop zone opens its file chooser).
   */
  const KEYED = ".upload, .unit-thumb";
  function keyed(root) {
    root.querySelectorAll(KEYED).forEach((el) => {
      if (el.tabIndex < 0 || !el.hasAttribute("tabindex")) el.tabIndex = 0;
      if (!el.hasAttribute("role")) el.setAttribute("role", "button");
    });
  }
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" && event.key !== " ") return;
    const el = event.target;
    if (!el.matches || !el.matches(KEYED)) return;
    event.preventDefault();
    const input = el.querySelector("input[type=file]");
    (input || el).click();
  });
  const watchKeyed = () => {
    keyed(document);
    new MutationObserver(() => keyed(document)).observe(document.body, {childList: true, subtree: true});
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", watchKeyed);
  else watchKeyed();

  /*
   * An open dcc.Dropdown (Dash 4.4) counts the arrow keys at once but moves the focus to the option one animation
   * frame later, and Enter chooses the option that has the focus. Keys that come faster than frames (a busy page,
   * a quick typist, a test) so chose a stale option: Up, Up, Up, Enter from 9 chose 9 again (not clearable: no
   * change) or 7 instead of 6. Here the focus moves with the key, to the option the dropdown counted to: its
   * stops are the search box (when searchable) then the options, with the same wrap-around and steps of 10; its
   * own late focus then lands on the same option. Long (virtualised) lists are left alone.
   */
  const STEPS = {ArrowDown: (i, n) => (i + 1) % n, ArrowUp: (i, n) => (i - 1 + n) % n, Home: () => 0,
                 End: (i, n) => n - 1, PageDown: (i, n) => Math.min(i + 10, n - 1), PageUp: (i) => Math.max(i - 10, 0),
                 Tab: (i, n, back) => (back ? i - 1 + n : i + 1) % n};
  document.addEventListener("keydown", (event) => {  // after React's handler, which marks the keys it took
    const content = event.target.closest && event.target.closest(".dash-dropdown-content");
    const step = STEPS[event.key];
    if (!content || !step || !event.defaultPrevented || content.querySelector(".dash-options-list-virtualized")) {
      return;
    }
    const stops = [...content.querySelectorAll("input.dash-dropdown-search, .dash-options-list-option input")];
    const at = stops.indexOf(event.target);
    if (at >= 0) stops[step(at, stops.length, event.shiftKey)].focus();
  });

  sv.shell = {route, pageModel, deliver, menu, autorun};
})();

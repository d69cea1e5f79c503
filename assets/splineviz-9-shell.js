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
   * file drop zones (dcc.Upload) are divs, so they get a tab stop and open their file chooser on Enter or Space.
   */
  const KEYED = ".upload";
  function keyed(root) {
    root.querySelectorAll(KEYED).forEach((el) => {
      if (el.tabIndex < 0 || !el.hasAttribute("tabindex")) {
        el.tabIndex = 0;
        el.setAttribute("role", "button");
      }
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

  sv.shell = {route, menu, autorun};
})();

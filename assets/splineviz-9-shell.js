/* The frame around the pages: routing by path happens in the browser, so switching pages costs no request. */
(function () {
  "use strict";
  const sv = window.splineviz;

  /* values: path; cfg: {pages: [{path, page, nav}]} (the first is the default) -> styles and nav classes */
  function route(v, cfg) {
    const path = (v.path || "/").replace(/\/+$/, "");
    const current = cfg.pages.find((p) => p.path === path) || cfg.pages[0];
    const out = {};
    for (const p of cfg.pages) {
      out["style_" + p.page] = {display: p === current ? "block" : "none"};
      out["nav_" + p.page] = p === current ? "nav-link active" : "nav-link";
    }
    return out;
  }

  sv.shell = {route};
})();

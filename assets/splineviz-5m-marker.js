/*
 * The epoch marker of a curves graph: a vertical line (a layout shape, found by its name) at the epoch a page
 * shows, which follows replays and sliders. The drawn line is moved on the page and the layout told, rather
 * than by Plotly.relayout: that redraws the whole figure (90 ms a step for the four curves of a pruning run),
 * at every frame of a replay. Where the line is not drawn as expected (a vertical path from M x,y0 to L x,y1 at
 * the axis' pixel), or the figure has none yet, relayout does it; after plotly redraws the figure (new curves
 * while training), the line is put back.
 *
 *   sv.marker.move(graphId, name, x, shape)   // shape: the line to add where the figure has none of that name
 */
(function () {
  "use strict";
  const sv = window.splineviz;

  function move(graphId, name, x, shape) {
    const gd = sv.painter.graphDiv(graphId);
    if (!gd || !gd.layout) return;
    gd.__svMarkers = Object.assign(gd.__svMarkers || {}, {[name]: {x, shape}});
    if (!gd.__svMarkerHook) {
      gd.__svMarkerHook = true;
      gd.on("plotly_afterplot", () => {
        for (const [n, m] of Object.entries(gd.__svMarkers)) place(gd, n, m.x, m.shape);
      });
    }
    place(gd, name, x, shape);
  }

  function place(gd, name, x, shape) {
    const shapes = gd.layout.shapes || [];
    const k = shapes.findIndex((s) => s.name === name);
    if (k < 0) {
      if (shape) window.Plotly.relayout(gd, {shapes: shapes.concat([Object.assign({}, shape, {name, x0: x, x1: x})])});
      return;
    }
    if (x == null || shapes[k].x0 === x) return;
    const xa = gd._fullLayout && gd._fullLayout.xaxis;
    const path = gd.querySelector(`.shapelayer path[data-index="${k}"]`);
    const ends = path && /^M[^,]+,([^L]+)L[^,]+,(.+)$/.exec(path.getAttribute("d") || "");
    if (!xa || !xa.l2p || !ends) {
      window.Plotly.relayout(gd, {[`shapes[${k}].x0`]: x, [`shapes[${k}].x1`]: x});
      return;
    }
    const px = xa._offset + xa.l2p(x);
    path.setAttribute("d", `M${px},${ends[1]}L${px},${ends[2]}`);
    for (const s of [shapes[k], (gd._fullLayout.shapes || [])[k]]) if (s) s.x0 = s.x1 = x;
  }

  sv.marker = {move};
})();

/* MNIST slice glue: the traced slice plus an invisible class grid that makes every point hoverable. */
(function () {
  "use strict";
  const sv = window.splineviz;

  /* values: slice, layer, shade, style -> the slice's figure */
  function render(v) {
    if (!v.slice) return undefined;
    const frame = v.slice.frame, n = v.slice.grid.length;
    const [x0, x1, y0, y1] = frame.bounds;
    const axis = (lo, hi) => Array.from({length: n}, (_, i) => lo + (hi - lo) * i / (n - 1));
    const grid = {type: "heatmap", z: v.slice.grid, x: axis(x0, x1), y: axis(y0, y1), opacity: 0, showscale: false,
                  name: "hover", hovertemplate: "a=%{x:.3f}, b=%{y:.3f}<br>class %{z}<extra></extra>"};
    const scene = sv.render.scene(frame, {layer: v.layer, shade: v.shade, decision: true}, v.style);
    const layout = Object.assign({}, v.slice.layout, {uirevision: v.slice.indices.join("-")});
    return sv.render.figure(scene, layout, [grid]);
  }

  sv.mnist = {render};
})();

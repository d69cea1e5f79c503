/*
 * Frame decoding. A frame (splineviz/figures.py, partition_frame) holds packed typed arrays: region
 * polygons (px, py, off), a class (cls) and an activation-code colour key per layer (code) for every
 * region, boundary polylines per layer (bnd) and the decision boundary (dec), NaN-separated; plus
 * n_regions, layer_regions and the statistics of its epoch.
 */
(function () {
  "use strict";
  const sv = window.splineviz;
  const TYPES = {f4: Float32Array, f8: Float64Array, i1: Int8Array, u1: Uint8Array, i2: Int16Array,
                 u2: Uint16Array, i4: Int32Array, u4: Uint32Array};
  const decoded = new WeakMap();

  /* {dtype, bdata} -> typed array, decoded once per spec object */
  function unpack(spec) {
    let out = decoded.get(spec);
    if (!out) {
      const bin = atob(spec.bdata);
      const bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      out = new TYPES[spec.dtype](bytes.buffer);
      decoded.set(spec, out);
    }
    return out;
  }

  /* Index of the frame's last layer: -1 for a net without hidden layers (one region, one decision line). */
  const lastLayer = (frame) => frame.bnd.length - 1;

  /* The layer drawn when `layer` is asked for (null: the last). */
  function shownLayer(frame, layer) {
    const last = lastLayer(frame);
    return last < 0 ? -1 : Math.max(0, Math.min(layer == null ? last : layer, last));
  }

  /* Each region's colour key and the palette it indexes: by class, or by activation code up to `layer`. */
  function regionColours(frame, shade, layer, style) {
    if (shade === "none" || !frame.n_regions) return null;
    const byCode = shade === "code" && layer >= 0 && frame.code.length > 0;
    return {keys: unpack(byCode ? frame.code[layer] : frame.cls), palette: byCode ? style.code_fill : style.class_fill};
  }

  /* Indices per key (region or point indices per colour key), keys ascending; once per decoded array. */
  const grouped = new WeakMap();
  function groupBy(keys) {
    let out = grouped.get(keys);
    if (!out) {
      const groups = new Map();
      for (let r = 0; r < keys.length; r++) {
        if (!groups.has(keys[r])) groups.set(keys[r], []);
        groups.get(keys[r]).push(r);
      }
      out = new Map([...groups.entries()].sort((a, b) => a[0] - b[0]));
      grouped.set(keys, out);
    }
    return out;
  }

  /* Vertex arrays of the region polygons: region r is px/py[off[r] .. off[r + 1]). */
  const polygons = (frame) => ({px: unpack(frame.px), py: unpack(frame.py), off: unpack(frame.off)});

  /* Call fn(start, end) for every NaN-free run of a packed [x, y] polyline pair. */
  function eachRun(xy, fn) {
    const xs = unpack(xy[0]), ys = unpack(xy[1]);
    let start = 0;
    for (let i = 0; i <= xs.length; i++) {
      if (i === xs.length || xs[i] !== xs[i] || ys[i] !== ys[i]) {
        if (i > start) fn(xs, ys, start, i);
        start = i + 1;
      }
    }
  }

  /* What the stat boxes show for a frame drawn up to `layer`. */
  function stats(frame, layer) {
    const last = lastLayer(frame);
    const l = shownLayer(frame, layer);
    const regions = l >= 0 && l < last ? frame.layer_regions[l] + " (layers 1–" + (l + 1) + ")"
      : String(frame.n_regions);
    const metric = frame.test_metric == null ? frame.train_metric : frame.test_metric;
    return {epoch: String(frame.epoch), regions: regions, loss: sv.fmt(frame.loss, 3),
            accuracy: metric == null ? "–" : sv.fmt(100 * metric, 1) + " %"};
  }

  /* The part of a frame the training curves need. */
  const HISTORY_KEYS = ["epoch", "loss", "train_metric", "test_metric", "n_regions"];
  const historyEntry = (frame) => Object.fromEntries(HISTORY_KEYS.map((k) => [k, frame[k]]));

  sv.frame = {unpack, lastLayer, shownLayer, regionColours, groupBy, polygons, eachRun, stats, historyEntry};
})();

/*
 * Frames on the page. A frame is splineviz.frame.Frame.to_json() (schema 1): bounds, n_regions,
 * layer_regions, packed cells / keys / lines / decision (decoded only by the painter, in its worker),
 * and stats (epoch, loss, train_metric, test_metric, trace_s); the app adds weights. The page reads
 * only the plain numbers, so nothing here touches the packed arrays except to measure their size.
 */
(function () {
  "use strict";
  const sv = window.splineviz;

  /* Index of the frame's last layer: -1 for a net without hidden layers (one region, one decision line). */
  const lastLayer = (frame) => frame.lines.length - 1;

  /* The layer drawn when `layer` is asked for (null: the last). */
  function shownLayer(frame, layer) {
    const last = lastLayer(frame);
    return last < 0 ? -1 : Math.max(0, Math.min(layer == null ? last : layer, last));
  }

  /* What the stat boxes show for a frame drawn up to `layer`. */
  function stats(frame, layer) {
    const last = lastLayer(frame), l = shownLayer(frame, layer), s = frame.stats || {};
    const regions = l >= 0 && l < last ? frame.layer_regions[l].toLocaleString("en") + " (layers 1–" + (l + 1) + ")"
      : frame.n_regions.toLocaleString("en");
    const metric = s.test_metric == null ? s.train_metric : s.test_metric;
    return {epoch: String(s.epoch), regions: regions, loss: sv.fmt(s.loss, 3),
            accuracy: metric == null ? "–" : sv.fmt(100 * metric, 1) + " %"};
  }

  /* The part of a frame the training curves need. */
  const historyEntry = (frame) => ({epoch: frame.stats.epoch, loss: frame.stats.loss,
                                    train_metric: frame.stats.train_metric, test_metric: frame.stats.test_metric,
                                    n_regions: frame.n_regions});

  /* Bytes of a frame's packed arrays (base64 text), measured once per frame. */
  const sizes = new WeakMap();
  function bytes(frame) {
    let n = sizes.get(frame);
    if (n == null) {
      n = 0;
      const walk = (v) => {
        if (v && typeof v === "object") {
          if (typeof v.bdata === "string") n += v.bdata.length;
          else for (const k in v) walk(v[k]);
        }
      };
      walk({cells: frame.cells, keys: frame.keys, lines: frame.lines, decision: frame.decision});
      sizes.set(frame, n);
    }
    return n;
  }

  /*
   * Keep a run's frames within `budget` bytes: while over it, drop every second frame between the first and
   * the last (the epoch slider then steps over more epochs; the curves keep every epoch).
   */
  function thin(frames, budget) {
    let total = frames.reduce((n, f) => n + bytes(f), 0);
    while (total > budget && frames.length > 2) {
      frames = frames.filter((f, i) => i === 0 || i === frames.length - 1 || i % 2 === 0);
      total = frames.reduce((n, f) => n + bytes(f), 0);
      if (frames.length <= 3) break;
    }
    return frames;
  }

  sv.frame = {lastLayer, shownLayer, stats, historyEntry, bytes, thin};
})();

/*
 * Exports of a painted graph, as shown (zoom included): one SVG document made of a title, each panel's
 * partition, plotly's axes (its own SVG of the same layout without traces) and a legend. For "svg" the
 * partition is vector paths generated from the frame's arrays (splineviz-2-gl.js, svg); for "png" it is the
 * painter's picture drawn at twice the size, and the document is rasterised at that scale.
 *
 *   sv.exporter.graph(graphId, format, {title, legend}) -> Promise<Blob>
 *   sv.exporter.legend(style, {classes, layers, shade, decision}) -> legend items for the above
 *   sv.exporter.download(values, {graph, format, name, describe}) : a clientside callback (export buttons)
 */
(function () {
  "use strict";
  const sv = window.splineviz;
  const SCALE = 2, TITLE_H = 34, ROW_H = 20, TRANSPARENT = "rgba(0,0,0,0)";
  const FONT = "Inter, system-ui, -apple-system, Segoe UI, Roboto, sans-serif";

  const escape = (text) => String(text).replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;",
                                                                       '"': "&quot;"}[c]));

  const blobToDataUrl = (blob) => new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = reject;
    reader.readAsDataURL(blob);
  });

  /* Legend items: class swatches, one line per layer, the decision boundary, or a note for code shading. */
  function legend(style, opts) {
    const items = [];
    if (opts.shade === "class") {
      for (let c = 0; c < (opts.classes || 2); c++) {
        items.push({fill: style.class_fill[c % style.class_fill.length], label: "class " + c});
      }
    } else if (opts.shade === "code") {
      items.push({fill: style.code_fill[0], label: "one colour per activation pattern"});
    }
    for (let l = 0; l < (opts.layers || 0); l++) {
      items.push({line: style.layer_line[l % style.layer_line.length], width: 2, label: "layer " + (l + 1)});
    }
    if (opts.decision !== false) items.push({line: style.decision_line, width: 3.5, label: "decision boundary"});
    return items;
  }

  /* Legend rows of the document's width: [svg, height]. */
  function legendSvg(items, width) {
    const parts = [];
    let x = 12, y = 14, rows = 1;
    for (const item of items) {
      const w = 34 + 7 * item.label.length;
      if (x + w > width - 12 && x > 12) { x = 12; y += ROW_H; rows += 1; }
      parts.push(item.fill
        ? `<rect x="${x}" y="${y - 9}" width="14" height="12" fill="${item.fill}" stroke="#999" stroke-width="0.5"/>`
        : `<line x1="${x}" x2="${x + 16}" y1="${y - 3}" y2="${y - 3}" stroke="${item.line}" stroke-width="${item.width}"/>`);
      parts.push(`<text x="${x + 21}" y="${y}" font-size="12" font-family="${FONT}" fill="#2a3f5f">${escape(item.label)}</text>`);
      x += w;
    }
    return [parts.join(""), items.length ? rows * ROW_H + 8 : 0];
  }

  /* Plotly's SVG of the graph's axes alone (same layout and current ranges, no traces), as an inner <svg>. */
  async function axesSvg(gd) {
    const fl = gd._fullLayout;
    const layout = Object.assign({}, gd.layout, {width: fl.width, height: fl.height, paper_bgcolor: TRANSPARENT,
                                                 plot_bgcolor: TRANSPARENT, showlegend: false});
    for (const name of Object.keys(fl)) {
      if (/^[xy]axis\d*$/.test(name)) {
        layout[name] = Object.assign({}, gd.layout[name], {range: fl[name].range.slice(), autorange: false});
      }
    }
    const url = await window.Plotly.toImage({data: [], layout: layout}, {format: "svg", width: fl.width,
                                                                          height: fl.height});
    return decodeURIComponent(url.replace(/^data:image\/svg\+xml,/, ""));
  }

  async function document_(graphId, format, opts) {
    const gd = sv.painter.graphDiv(graphId);
    if (!gd || !gd._fullLayout) throw new Error("the graph is not drawn yet");
    const fl = gd._fullLayout, W = fl.width, H = fl.height;
    const titleH = opts.title ? TITLE_H : 0;
    const [legendPart, legendH] = legendSvg(opts.legend || [], W);
    const panels = [];
    for (const [i, p] of sv.painter.all(graphId).entries()) {
      const b = p.box();
      if (!b || !p.frame) continue;
      let content;
      if (format === "svg") {
        content = (await p.ask("svg")).svg;
      } else {
        const r = await p.ask("png", {scale: SCALE});
        content = `<image width="${b.w}" height="${b.h}" preserveAspectRatio="none" href="${await blobToDataUrl(r.blob)}"/>`;
      }
      panels.push(`<clipPath id="sv-clip-${i}"><rect width="${b.w}" height="${b.h}"/></clipPath>` +
                  `<g transform="translate(${b.xa._offset},${b.ya._offset})" clip-path="url(#sv-clip-${i})">${content}</g>`);
    }
    const height = titleH + H + legendH;
    const title = opts.title ? `<text x="12" y="22" font-size="15" font-weight="600" font-family="${FONT}" ` +
                                `fill="#1f2a3d">${escape(opts.title)}</text>` : "";
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" ` +
                `width="${W}" height="${height}" viewBox="0 0 ${W} ${height}">` +
                `<rect width="${W}" height="${height}" fill="#ffffff"/>${title}` +
                `<g transform="translate(0,${titleH})">${panels.join("")}${await axesSvg(gd)}</g>` +
                `<g transform="translate(0,${titleH + H})">${legendPart}</g></svg>`;
    return {svg: svg, width: W, height: height};
  }

  /* The graph as an SVG or PNG blob. */
  async function graph(graphId, format, opts) {
    const doc = await document_(graphId, format, opts || {});
    const svgBlob = new Blob([doc.svg], {type: "image/svg+xml"});
    if (format === "svg") return svgBlob;
    const url = URL.createObjectURL(svgBlob);
    try {
      const img = new Image();
      img.src = url;
      await img.decode();
      const canvas = document.createElement("canvas");
      canvas.width = doc.width * SCALE;
      canvas.height = doc.height * SCALE;
      canvas.getContext("2d").drawImage(img, 0, 0, canvas.width, canvas.height);
      return await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
    } finally {
      URL.revokeObjectURL(url);
    }
  }

  function save(blob, name) {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }

  /*
   * An export button: cfg {graph, format, name, describe, alert}; describe names a page function
   * (sv[page].describe, called with cfg) that gives {title, legend} for what the graph shows now.
   */
  function download(_values, cfg) {
    const describe = cfg.describe.split(".").reduce((obj, key) => obj && obj[key], sv);
    const opts = describe ? describe(cfg) : {};
    graph(cfg.graph, cfg.format, opts)
      .then((blob) => save(blob, (cfg.name || "splineviz") + "." + cfg.format))
      .catch((err) => sv.notify(cfg.alert, "The " + cfg.format.toUpperCase() + " export failed: " + err.message));
  }

  sv.exporter = {graph, legend, download, document: document_};
})();

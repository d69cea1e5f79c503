/*
 * The painter's engine: draws a frame's packed arrays (splineviz/frame.py, Frame.to_json) with WebGL2.
 * splineviz-3-painter.js runs it in a Worker on an OffscreenCanvas, built from this function's source, so
 * that decoding, triangulation, uploads and drawing never hold up the page; where a worker cannot draw it
 * runs on the page instead, behind the same messages. It must stay self-contained (no outer names).
 *
 * What it draws, in order: class cells as triangle fans from the CSR arrays (cells.offsets), coloured by
 * class or by keys[layer][region[cell]] ("code"); training points; ghost segments (dashed, e.g. pruned units);
 * each layer's boundary segments up to the shown layer, a quad per segment with per-unit alpha (fade); the
 * decision boundary; one highlighted unit on top. Segments are pulled by gl_VertexID from float textures of
 * lines[l].segments in one plain draw, not drawn as instances: SwiftShader (software GL, as on machines
 * without a GPU) runs instances one by one, and 100k instanced segments took 1.4 s a paint. Under software GL,
 * which sets up every triangle and line on the CPU one by one, this engine fills dense frames itself, into one
 * image drawn as a texture: the cells of a frame of more than style.dense_cells cells by scanlines (scanCells),
 * and the layers shown, when they hold more than style.dense_segments segments, as 1-pixel lines
 * (scanSegments). Colours blend fill_opacity over the background exactly as plotly does in
 * figures.partition_figure.
 *
 * Messages in:  init {canvas?, style}              (canvas: an OffscreenCanvas, or a canvas on the page)
 *               draw {seq, view, frames}            (frames: {key: Frame JSON} this worker may not hold yet)
 *               svg {id, view, frames, size}        -> reply {id, svg}    vector paths of the view
 *               png {id, view, frames, scale}       -> reply {id, blob}   the view drawn at scale
 *               pick {id, view, frames, x, y}       -> reply {id, hit}    the cell under a data point
 * Messages out: painted {seq, ms, cells, segments, scanned}; reply {id, ...}; error {seq?, id?, message}.
 * A view: {key, range: [x0, x1, y0, y1], size: [w, h] (CSS px), dpr, layer (null: last), shade, decision,
 *          points: key|null, highlight: {layer, unit}|null, fade: {layer, units: [...], alpha}|null,
 *          ghosts: [{key, layer, units|null}], region: id|null}.
 */
(function () {
  "use strict";
  const sv = (window.splineviz = window.splineviz || {});

  sv.glEngine = function glEngine(port) {
    "use strict";
    const TYPES = {f4: Float32Array, f8: Float64Array, i1: Int8Array, u1: Uint8Array, i2: Int16Array,
                   u2: Uint16Array, i4: Int32Array, u4: Uint32Array};
    const CELL_ROW = 2048, UNIT_ROW = 1024, SEG_ROW = 2048, KEEP = 6;  // texture row widths; decoded frames kept
    let gl = null, canvas = null, style = null, programs = null, blank = null, blankInt = null, software = false,
        image = null, maxImage = 0;  // what scanCells and scanSegments fill, drawn as one texture (see flush)
    const cache = new Map();  // key -> decoded frame and its GPU buffers, least recently used first

    /* ------------------------------------------------------------------------------------------- decoding */
    function unpack(spec) {
      let bytes;
      if (Uint8Array.fromBase64) {
        bytes = Uint8Array.fromBase64(spec.bdata);
      } else {
        const bin = atob(spec.bdata);
        bytes = new Uint8Array(bin.length);
        for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      }
      const T = TYPES[spec.dtype];
      return new T(bytes.buffer, bytes.byteOffset, bytes.byteLength / T.BYTES_PER_ELEMENT);
    }

    /* Fan triangles of every cell and each corner's cell: one pass over the CSR offsets. */
    function triangulate(off, nCorners) {
      const nCells = off.length - 1;
      const cellOf = new Int32Array(nCorners);
      const index = new Uint32Array(3 * Math.max(0, nCorners - 2 * nCells));
      let n = 0;
      for (let c = 0; c < nCells; c++) {
        const a = off[c], b = off[c + 1];
        cellOf.fill(c, a, b);
        for (let j = a + 1; j < b - 1; j++) { index[n++] = a; index[n++] = j; index[n++] = j + 1; }
      }
      return {cellOf, index: n === index.length ? index : index.subarray(0, n)};
    }

    function decode(json) {
      const t0 = performance.now();
      const cells = json.cells;
      const f = {bounds: json.bounds, x: unpack(cells.x), y: unpack(cells.y), off: unpack(cells.offsets),
                 cls: unpack(cells.class), region: unpack(cells.region), keys: json.keys.map(unpack),
                 lines: json.lines.map((l) => ({seg: unpack(l.segments), unit: unpack(l.unit)})),
                 decision: unpack(json.decision), gpu: null, bbox: null};
      f.nCells = f.off.length - 1;
      f.decodeMs = performance.now() - t0;
      return f;
    }

    function remember(key, json) {
      let f = cache.get(key);
      if (f) {
        cache.delete(key);
      } else {
        if (!json) throw new Error("frame " + key + " was never sent");
        f = decode(json);
      }
      cache.set(key, f);
      while (cache.size > KEEP) {
        const [oldest, old] = cache.entries().next().value;
        release(old);
        cache.delete(oldest);
      }
      return f;
    }

    function take(frames) {
      for (const [key, json] of Object.entries(frames || {})) remember(Number(key), json);
    }

    /* ------------------------------------------------------------------------------------------- WebGL */
    const VS_CELLS = `#version 300 es
      in float a_x; in float a_y; in int a_cell;
      uniform vec2 u_scale; uniform vec2 u_offset; uniform highp sampler2D u_colours;
      flat out vec4 v_colour;
      void main() {
        gl_Position = vec4(vec2(a_x, a_y) * u_scale + u_offset, 0.0, 1.0);
        v_colour = texelFetch(u_colours, ivec2(a_cell % ${CELL_ROW}, a_cell / ${CELL_ROW}), 0);
      }`;
    const FS_FLAT = `#version 300 es
      precision highp float; flat in vec4 v_colour; out vec4 o;
      void main() { o = v_colour; }`;
    /* One image as big as the framebuffer, pixel for pixel: what scanCells and scanSegments filled. */
    const VS_IMAGE = `#version 300 es
      const vec2 CORNERS[4] = vec2[4](vec2(-1.0, -1.0), vec2(1.0, -1.0), vec2(-1.0, 1.0), vec2(1.0, 1.0));
      void main() { gl_Position = vec4(CORNERS[gl_VertexID], 0.0, 1.0); }`;
    const FS_IMAGE = `#version 300 es
      precision highp float; uniform highp sampler2D u_image; out vec4 o;
      void main() { o = texelFetch(u_image, ivec2(gl_FragCoord.xy), 0); }`;
    /* Shared by both ways of drawing segments: segment s's ends (pixels from the centre) and alpha; false if hidden. */
    const LINES_HEAD = `#version 300 es
      uniform highp sampler2D u_segs; uniform highp isampler2D u_unit_of; uniform bool u_has_units;
      uniform vec2 u_scale; uniform vec2 u_offset; uniform vec2 u_half; uniform float u_width;
      uniform int u_only; uniform bool u_styled; uniform highp sampler2D u_units;
      out float v_across; out float v_along; out float v_alpha;
      bool pull(int s, out vec2 p0, out vec2 p1, out float alpha) {
        ivec2 at = ivec2(s % ${SEG_ROW}, s / ${SEG_ROW});
        vec4 seg = texelFetch(u_segs, at, 0);
        int unit = u_has_units ? texelFetch(u_unit_of, at, 0).r : -1;
        alpha = 1.0;
        if (u_styled && unit >= 0) alpha = texelFetch(u_units, ivec2(unit % ${UNIT_ROW}, unit / ${UNIT_ROW}), 0).a;
        p0 = (seg.xy * u_scale + u_offset) * u_half;
        p1 = (seg.zw * u_scale + u_offset) * u_half;
        return !((u_only >= 0 && unit != u_only) || alpha <= 0.0);
      }`;
    /* A quad of u_width (+ 1 px of antialiasing each side) around each segment: 6 vertices per segment. */
    const VS_QUADS = LINES_HEAD + `
      const vec2 CORNERS[6] = vec2[6](vec2(0.0, -1.0), vec2(1.0, -1.0), vec2(1.0, 1.0),
                                      vec2(0.0, -1.0), vec2(1.0, 1.0), vec2(0.0, 1.0));
      void main() {
        int s = gl_VertexID / 6;
        vec2 p0, p1;
        float alpha;
        if (!pull(s, p0, p1, alpha)) { gl_Position = vec4(2.0, 2.0, 2.0, 1.0); return; }
        vec2 corner = CORNERS[gl_VertexID - 6 * s];
        vec2 d = p1 - p0;
        float len = length(d);
        vec2 dir = len > 1e-6 ? d / len : vec2(1.0, 0.0);
        vec2 n = vec2(-dir.y, dir.x);
        float h = 0.5 * u_width + 1.0;
        float t = corner.x, cap = (2.0 * t - 1.0) * 0.5 * u_width;
        vec2 p = mix(p0, p1, t) + dir * cap + n * corner.y * h;
        v_across = corner.y * h;
        v_along = t * len + cap;
        v_alpha = alpha;
        gl_Position = vec4(p / u_half, 0.0, 1.0);
      }`;
    /* A 1-pixel GL line per segment: 2 vertices, for dense sets under software GL (see drawSegments). */
    const VS_THIN = LINES_HEAD + `
      void main() {
        int s = gl_VertexID / 2, end = gl_VertexID - 2 * s;
        vec2 p0, p1;
        float alpha;
        if (!pull(s, p0, p1, alpha)) { gl_Position = vec4(2.0, 2.0, 2.0, 1.0); return; }
        v_across = 0.0;
        v_along = float(end) * length(p1 - p0);
        v_alpha = alpha;
        gl_Position = vec4((end == 0 ? p0 : p1) / u_half, 0.0, 1.0);
      }`;
    const FS_LINES = `#version 300 es
      precision highp float;
      in float v_across; in float v_along; in float v_alpha;
      uniform vec4 u_colour; uniform float u_width; uniform float u_dash; out vec4 o;
      void main() {
        if (u_dash > 0.0 && mod(v_along, u_dash) > 0.55 * u_dash) discard;
        float cover = clamp(0.5 * u_width + 0.5 - abs(v_across), 0.0, 1.0);
        o = vec4(u_colour.rgb, u_colour.a * cover * v_alpha);
      }`;
    const VS_POINTS = `#version 300 es
      in float a_x; in float a_y; in int a_class;
      uniform vec2 u_scale; uniform vec2 u_offset; uniform float u_size; uniform vec3 u_palette[16];
      uniform int u_colours;
      flat out vec3 v_colour;
      void main() {
        gl_Position = vec4(vec2(a_x, a_y) * u_scale + u_offset, 0.0, 1.0);
        gl_PointSize = u_size + 2.0;
        v_colour = u_palette[((a_class % u_colours) + u_colours) % u_colours];
      }`;
    const FS_POINTS = `#version 300 es
      precision highp float;
      flat in vec3 v_colour; uniform float u_size; uniform float u_line; out vec4 o;
      void main() {
        float r = length(gl_PointCoord - 0.5) * (u_size + 2.0), outer = 0.5 * u_size + 0.5 * u_line;
        float a = clamp(outer + 0.5 - r, 0.0, 1.0);
        vec3 c = mix(v_colour, vec3(1.0), clamp(r - (outer - u_line) + 0.5, 0.0, 1.0));
        o = vec4(c, a);
      }`;

    function compile(vs, fs) {
      const p = gl.createProgram();
      for (const [type, src] of [[gl.VERTEX_SHADER, vs], [gl.FRAGMENT_SHADER, fs]]) {
        const s = gl.createShader(type);
        gl.shaderSource(s, src);
        gl.compileShader(s);
        if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error("shader: " + gl.getShaderInfoLog(s));
        gl.attachShader(p, s);
      }
      gl.linkProgram(p);
      if (!gl.getProgramParameter(p, gl.LINK_STATUS)) throw new Error("program: " + gl.getProgramInfoLog(p));
      const at = {}, un = {};
      for (let i = 0; i < gl.getProgramParameter(p, gl.ACTIVE_ATTRIBUTES); i++) {
        const name = gl.getActiveAttrib(p, i).name;
        at[name] = gl.getAttribLocation(p, name);
      }
      for (let i = 0; i < gl.getProgramParameter(p, gl.ACTIVE_UNIFORMS); i++) {
        const name = gl.getActiveUniform(p, i).name.replace(/\[0\]$/, "");
        un[name] = gl.getUniformLocation(p, name);
      }
      return {p, at, un};
    }

    function setup() {
      gl = canvas.getContext("webgl2", {alpha: false, antialias: false, depth: false, stencil: false,
                                        preserveDrawingBuffer: false, premultipliedAlpha: false});
      if (!gl) throw new Error("WebGL2 is not available in this browser");
      const info = gl.getExtension("WEBGL_debug_renderer_info");
      software = /swiftshader|llvmpipe|softpipe|software/i.test(
        String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER)));
      programs = {cells: compile(VS_CELLS, FS_FLAT), quads: compile(VS_QUADS, FS_LINES), thin: compile(VS_THIN, FS_LINES),
                  points: compile(VS_POINTS, FS_POINTS), image: compile(VS_IMAGE, FS_IMAGE)};
      image = {pixels: null, texture: null, pending: false, opaque: false};
      maxImage = gl.getParameter(gl.MAX_TEXTURE_SIZE);
      blank = texture(1, 1, new Uint8Array([255, 255, 255, 255]));
      blankInt = texture(1, 1, new Int32Array([-1]), null, gl.R32I, gl.RED_INTEGER, gl.INT);
      gl.enable(gl.BLEND);
      gl.blendFuncSeparate(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA, gl.ONE, gl.ONE_MINUS_SRC_ALPHA);
    }

    function buffer(target, data) {
      const b = gl.createBuffer();
      gl.bindBuffer(target, b);
      gl.bufferData(target, data, gl.STATIC_DRAW);
      return b;
    }

    /* A texture of `width` texels per row, read with texelFetch (data padded to whole rows; RGBA8 unless told). */
    function texture(width, rows, data, old, internal, format, type) {
      const t = old || gl.createTexture();
      gl.bindTexture(gl.TEXTURE_2D, t);
      gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.NEAREST);
      gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.NEAREST);
      gl.texImage2D(gl.TEXTURE_2D, 0, internal || gl.RGBA8, width, rows, 0, format || gl.RGBA, type || gl.UNSIGNED_BYTE,
                    data);
      return t;
    }

    /* Segments (x0, y0, x1, y1 each) and, if given, their units; their textures are made when GL first draws them
       (segmentTextures), which sets scanned by scanSegments never are. */
    const segmentSet = (seg, unit) => ({n: seg.length / 4, ends: seg, units: unit, seg: null, unit: null});

    /* A set's segments as an RGBA32F texture and, given their units, those as an R32I one. */
    function segmentTextures(set) {
      if (set.seg) return set;
      const rows = Math.max(1, Math.ceil(set.n / SEG_ROW));
      const padded = (data, perTexel) => {
        if (data.length === rows * SEG_ROW * perTexel) return data;
        const out = new data.constructor(rows * SEG_ROW * perTexel);
        out.set(data);
        return out;
      };
      set.seg = texture(SEG_ROW, rows, padded(set.ends, 4), null, gl.RGBA32F, gl.RGBA, gl.FLOAT);
      set.unit = set.units ? texture(SEG_ROW, rows, padded(set.units, 1), null, gl.R32I, gl.RED_INTEGER, gl.INT) : null;
      return set;
    }

    /* GPU buffers of a decoded frame, made on first draw. */
    function upload(f) {
      if (f.gpu) return f.gpu;
      const t0 = performance.now();
      f.gpu = {cells: null, lines: f.lines.map((l) => segmentSet(l.seg, l.unit)), decision: segmentSet(f.decision, null),
               colours: null, colourKey: null, units: new Map()};
      if (!scans(f)) cellBuffers(f);
      f.buildMs = performance.now() - t0;
      return f.gpu;
    }

    /* The cells' fan triangles on the GPU (not made for frames whose cells are scanned instead). */
    function cellBuffers(f) {
      if (f.gpu.cells) return f.gpu.cells;
      const {cellOf, index} = triangulate(f.off, f.x.length);
      f.gpu.cells = {x: buffer(gl.ARRAY_BUFFER, f.x), y: buffer(gl.ARRAY_BUFFER, f.y), cell: buffer(gl.ARRAY_BUFFER, cellOf),
                     index: buffer(gl.ELEMENT_ARRAY_BUFFER, index), nIndex: index.length};
      return f.gpu.cells;
    }

    function release(f) {
      if (!f.gpu || !gl) return;
      const g = f.gpu;
      if (g.cells) for (const b of [g.cells.x, g.cells.y, g.cells.cell, g.cells.index]) gl.deleteBuffer(b);
      for (const set of [...g.lines, g.decision]) { if (set.seg) gl.deleteTexture(set.seg); if (set.unit) gl.deleteTexture(set.unit); }
      if (g.colours) gl.deleteTexture(g.colours);
      for (const t of g.units.values()) gl.deleteTexture(t.texture);
      f.gpu = null;
    }

    /* ------------------------------------------------------------------------------------------- colours */
    const rgbCache = new Map();
    function rgb(hex) {
      let c = rgbCache.get(hex);
      if (!c) {
        const h = hex.replace("#", "");
        c = [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16));
        rgbCache.set(hex, c);
      }
      return c;
    }

    const lastLayer = (f) => f.lines.length - 1;
    function shownLayer(f, layer) {
      const last = lastLayer(f);
      return last < 0 ? -1 : Math.max(0, Math.min(layer == null ? last : layer, last));
    }

    /* Each cell's colour key and the palette it indexes (as figures._fill_traces), or null for no fill. */
    function fills(f, view) {
      if (view.shade === "none" || !f.nCells) return null;
      const layer = shownLayer(f, view.layer);
      if (view.shade === "code" && layer >= 0 && f.keys.length) {
        const keys = f.keys[layer], region = f.region;
        return {key: (c) => keys[region[c]], palette: style.code_fill};
      }
      return {key: (c) => f.cls[c], palette: style.class_fill};
    }

    /* A palette colour as drawn: fill_opacity over the background, as plotly composes the figure's fills. */
    function blended(hex) {
      const a = style.fill_opacity, c = rgb(hex), bg = rgb(style.background);
      return c.map((v, i) => Math.round(a * v + (1 - a) * bg[i]));
    }

    /* Each cell's RGBA as drawn (rows of CELL_ROW cells, as the colour texture takes them), or null for no fill;
       kept on the frame until the view asks for other colours. */
    function cellRGBA(f, view) {
      const fill = fills(f, view);
      if (!fill) return null;
      const id = [view.shade, shownLayer(f, view.layer), view.region].join("/");
      if (f.rgba && f.rgba.id === id) return f.rgba;
      const data = new Uint8Array(4 * CELL_ROW * Math.ceil(f.nCells / CELL_ROW));
      const table = fill.palette.map(blended);
      const dim = view.region == null ? -1 : view.region;
      for (let c = 0; c < f.nCells; c++) {
        const col = table[fill.key(c) % table.length], k = 4 * c;
        const s = f.region[c] === dim ? 0.78 : 1;
        data[k] = col[0] * s; data[k + 1] = col[1] * s; data[k + 2] = col[2] * s; data[k + 3] = 255;
      }
      f.rgba = {id, data, packed: new Uint32Array(data.buffer)};
      return f.rgba;
    }

    function cellColours(f, view) {
      const g = f.gpu, rgba = cellRGBA(f, view);
      if (rgba && g.colourKey !== rgba.id) {
        g.colours = texture(CELL_ROW, rgba.data.length / (4 * CELL_ROW), rgba.data, g.colours);
        g.colourKey = rgba.id;
      }
      return rgba;
    }

    /* Per-unit alpha of one layer (fade: these units at `alpha`; only: these units, the others hidden), as a
       texture and as its bytes (unit u's alpha at 4u + 3). */
    function unitAlpha(f, layer, units, alpha, others) {
      const g = f.gpu, id = [layer, alpha, others, units.join(",")].join("/");
      let t = g.units.get(id);
      if (t) return t;
      const unit = f.lines[layer].unit;
      let n = 1;
      for (let i = 0; i < unit.length; i++) n = Math.max(n, unit[i] + 1);
      for (const u of units) n = Math.max(n, u + 1);
      const rows = Math.ceil(n / UNIT_ROW), data = new Uint8Array(4 * UNIT_ROW * rows).fill(Math.round(255 * others));
      for (const u of units) if (u >= 0) data[4 * u + 3] = Math.round(255 * alpha);
      if (g.units.size > 8) { for (const old of g.units.values()) gl.deleteTexture(old.texture); g.units.clear(); }
      t = {texture: texture(UNIT_ROW, rows, data), alpha: data};
      g.units.set(id, t);
      return t;
    }

    /* ------------------------------------------------------------------------------------------- drawing */
    const points = new Map();  // key -> {x, y, c, gpu}

    /* Data -> clip space (scale, offset) and -> framebuffer pixels, rows from the bottom (pixel: x = px[0] * x +
       px[1], y = px[2] * y + px[3]; what the engine scans itself). */
    function transform(view, width, height) {
      const [x0, x1, y0, y1] = view.range;
      const sx = 2 / (x1 - x0), sy = 2 / (y1 - y0);
      return {scale: [sx, sy], offset: [-1 - x0 * sx, -1 - y0 * sy], half: [width / 2, height / 2],
              size: [width, height], pixel: [width / (x1 - x0), -x0 * width / (x1 - x0), height / (y1 - y0),
                                            -y0 * height / (y1 - y0)]};
    }

    function attrib(prog, name, buf, size, type, integer) {
      const loc = prog.at[name];
      if (loc === undefined || loc < 0) return;
      gl.bindBuffer(gl.ARRAY_BUFFER, buf);
      gl.enableVertexAttribArray(loc);
      if (integer) gl.vertexAttribIPointer(loc, size, type, 0, 0);
      else gl.vertexAttribPointer(loc, size, type, false, 0, 0);
    }

    function resetAttribs() {
      const n = gl.getParameter(gl.MAX_VERTEX_ATTRIBS);
      for (let i = 0; i < n; i++) gl.disableVertexAttribArray(i);
    }

    /* Software GL sets up triangles one by one on the CPU: 50k cells' fans took ~85 ms a paint under SwiftShader,
       the most of a dense frame's. Filling the same convex cells by scanlines here takes ~10 ms. */
    const scans = (f) => software && style.dense_cells != null && f.nCells > style.dense_cells;

    function drawCells(f, view, tf, scan) {
      if (scan && scans(f)) return scanCells(f, view, tf);
      if (!cellColours(f, view)) return;
      const prog = programs.cells, g = cellBuffers(f);
      gl.useProgram(prog.p);
      resetAttribs();
      attrib(prog, "a_x", g.x, 1, gl.FLOAT, false);
      attrib(prog, "a_y", g.y, 1, gl.FLOAT, false);
      attrib(prog, "a_cell", g.cell, 1, gl.INT, true);
      gl.uniform2fv(prog.un.u_scale, tf.scale);
      gl.uniform2fv(prog.un.u_offset, tf.offset);
      gl.activeTexture(gl.TEXTURE0);
      gl.bindTexture(gl.TEXTURE_2D, f.gpu.colours);
      gl.uniform1i(prog.un.u_colours, 0);
      gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, g.index);
      gl.drawElements(gl.TRIANGLES, g.nIndex, gl.UNSIGNED_INT, 0);
    }

    /* An RGB colour and an alpha (0-255) as one pixel of the image: RGBA bytes, little-endian. */
    const pixel = (c, a) => (c[0] | (c[1] << 8) | (c[2] << 16) | (a << 24)) >>> 0;

    /* The cells filled into an image of the framebuffer's size, drawn as one texture. A pixel takes the cell its
       centre lies in, as GL's rasterizer decides (ties aside: half-open spans, so cells that share an edge
       neither overlap nor leave a gap). Rows count from the bottom, as GL's do. */
    function scanCells(f, view, tf) {
      const rgba = cellRGBA(f, view), [width, height] = tf.size, [ax, bx, ay, by] = tf.pixel;
      if (!rgba) return;
      const pixels = begin(width, height, true), packed = rgba.packed;
      pixels.fill(pixel(rgb(style.background), 255));
      const off = f.off, xs = f.x, ys = f.y;
      let px = new Float64Array(64), py = new Float64Array(64);
      for (let c = 0; c < f.nCells; c++) {
        const a = off[c], k = off[c + 1] - a;
        if (k < 3) continue;
        if (k > px.length) { px = new Float64Array(2 * k); py = new Float64Array(2 * k); }
        let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
        for (let j = 0; j < k; j++) {
          const x = xs[a + j] * ax + bx, y = ys[a + j] * ay + by;
          px[j] = x; py[j] = y;
          if (x < x0) x0 = x; if (x > x1) x1 = x;
          if (y < y0) y0 = y; if (y > y1) y1 = y;
        }
        if (x1 < 0 || x0 > width) continue;
        const r0 = Math.max(0, Math.ceil(y0 - 0.5)), r1 = Math.min(height, Math.ceil(y1 - 0.5));
        const colour = packed[c];
        for (let r = r0; r < r1; r++) {
          const yc = r + 0.5;
          let left = Infinity, right = -Infinity;
          for (let i = 0, p = k - 1; i < k; p = i++) {
            if ((py[p] <= yc) !== (py[i] <= yc)) {
              const x = px[p] + (yc - py[p]) / (py[i] - py[p]) * (px[i] - px[p]);
              if (x < left) left = x;
              if (x > right) right = x;
            }
          }
          const i0 = Math.max(0, Math.ceil(left - 0.5)), i1 = Math.min(width, Math.ceil(right - 0.5));
          if (i1 - i0 > 16) pixels.fill(colour, r * width + i0, r * width + i1);
          else for (let i = r * width + i0, end = r * width + i1; i < end; i++) pixels[i] = colour;  // fill() costs more
        }
      }
    }

    /* The image's pixels (RGBA, one Uint32 each, rows from the bottom), to be drawn at the next flush. A new
       image starts opaque (cells: every pixel is written) or transparent (lines over what GL drew before). */
    function begin(width, height, opaque) {
      if (!image.pixels || image.pixels.length !== width * height) image.pixels = new Uint32Array(width * height);
      if (!image.pending) {
        if (!opaque) image.pixels.fill(0);
        image.pending = true;
        image.opaque = opaque;
      }
      image.width = width;
      image.height = height;
      return image.pixels;
    }

    /* Draw the pending image before GL draws over it: one texture over the whole framebuffer, blended (its alpha
       is straight) unless opaque. Each image costs the software GL a full-screen pass, so cells and the lines
       scanned after them share one. */
    function flush() {
      if (!image.pending) return;
      image.pending = false;
      image.texture = texture(image.width, image.height, new Uint8Array(image.pixels.buffer), image.texture);
      const prog = programs.image;
      gl.useProgram(prog.p);
      resetAttribs();
      gl.activeTexture(gl.TEXTURE0);
      gl.bindTexture(gl.TEXTURE_2D, image.texture);
      gl.uniform1i(prog.un.u_image, 0);
      if (image.opaque) gl.disable(gl.BLEND);
      gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
      gl.enable(gl.BLEND);
    }

    /* A dense set's 1-pixel lines into the image: per column (or row, for steep segments) the pixel the segment
       passes through at its centre, as GL draws lines. Units at alpha < 1 blend over what the image holds
       (straight alpha, "over"), so that the image blends over what is drawn as the lines would one by one. */
    function scanSegments(set, tf, opts) {
      const [width, height] = tf.size, [ax, bx, ay, by] = tf.pixel, image = begin(width, height, false);
      const c = rgb(opts.colour), a0 = opts.alpha == null ? 1 : opts.alpha;
      const alphaOf = opts.units ? opts.units.alpha : null, unitOf = set.units, ends = set.ends;
      const solid = pixel(c, 255);
      const put = (at, alpha) => {
        if (alpha >= 1) { image[at] = solid; return; }
        const below = image[at], ad = (below >>> 24) / 255, out = alpha + ad * (1 - alpha);
        const mix = (shift, v) => Math.round((v * alpha + ((below >>> shift) & 255) * ad * (1 - alpha)) / out);
        image[at] = pixel([mix(0, c[0]), mix(8, c[1]), mix(16, c[2])], Math.round(255 * out));
      };
      for (let s = 0; s < set.n; s++) {
        const alpha = alphaOf && unitOf && unitOf[s] >= 0 ? a0 * alphaOf[4 * unitOf[s] + 3] / 255 : a0;
        if (alpha <= 0) continue;
        let x0 = ends[4 * s] * ax + bx, y0 = ends[4 * s + 1] * ay + by, x1 = ends[4 * s + 2] * ax + bx,
            y1 = ends[4 * s + 3] * ay + by;
        const steep = Math.abs(y1 - y0) > Math.abs(x1 - x0);
        if (steep) [x0, y0, x1, y1] = [y0, x0, y1, x1];  // walk along the longer axis
        if (x1 < x0) [x0, y0, x1, y1] = [x1, y1, x0, y0];
        const along = steep ? height : width, across = steep ? width : height;
        const i0 = Math.max(0, Math.ceil(x0 - 0.5)), i1 = Math.min(along, Math.ceil(x1 - 0.5));
        const slope = x1 > x0 ? (y1 - y0) / (x1 - x0) : 0;
        for (let i = i0; i < i1; i++) {
          const j = Math.floor(y0 + (i + 0.5 - x0) * slope);
          if (j >= 0 && j < across) put(steep ? i * width + j : j * width + i, alpha);
        }
      }
    }

    /* One set of segments as antialiased quads or (opts.thin, for lines up to 2 px wide) 1-pixel lines, scanned
       here (opts.scan) unless dashed: opts {colour, alpha, width (CSS px), dash, only, units (unitAlpha), thin,
       scan}. */
    function drawSegments(set, tf, px, opts) {
      if (!set.n) return;
      const thin = opts.thin && opts.width * px <= 2;
      if (thin && opts.scan && !opts.dash && opts.only == null) return scanSegments(set, tf, opts);
      flush();
      segmentTextures(set);
      const prog = thin ? programs.thin : programs.quads;
      gl.useProgram(prog.p);
      resetAttribs();
      const c = rgb(opts.colour);
      gl.uniform2fv(prog.un.u_scale, tf.scale);
      gl.uniform2fv(prog.un.u_offset, tf.offset);
      gl.uniform2fv(prog.un.u_half, tf.half);
      gl.uniform1f(prog.un.u_width, opts.width * px);
      gl.uniform4f(prog.un.u_colour, c[0] / 255, c[1] / 255, c[2] / 255, opts.alpha == null ? 1 : opts.alpha);
      gl.uniform1f(prog.un.u_dash, (opts.dash || 0) * px);
      gl.uniform1i(prog.un.u_only, opts.only == null ? -1 : opts.only);
      gl.uniform1i(prog.un.u_styled, opts.units ? 1 : 0);
      gl.activeTexture(gl.TEXTURE1);
      gl.bindTexture(gl.TEXTURE_2D, opts.units ? opts.units.texture : blank);
      gl.uniform1i(prog.un.u_units, 1);
      gl.activeTexture(gl.TEXTURE2);
      gl.bindTexture(gl.TEXTURE_2D, set.seg);
      gl.uniform1i(prog.un.u_segs, 2);
      gl.activeTexture(gl.TEXTURE3);
      gl.bindTexture(gl.TEXTURE_2D, set.unit || blankInt);
      gl.uniform1i(prog.un.u_unit_of, 3);
      gl.uniform1i(prog.un.u_has_units, set.unit ? 1 : 0);
      gl.drawArrays(thin ? gl.LINES : gl.TRIANGLES, 0, (thin ? 2 : 6) * set.n);
    }

    function drawPoints(p, tf, px) {
      flush();
      if (!p.gpu) p.gpu = {x: buffer(gl.ARRAY_BUFFER, p.x), y: buffer(gl.ARRAY_BUFFER, p.y),
                           c: buffer(gl.ARRAY_BUFFER, p.c), n: p.x.length};
      const prog = programs.points;
      gl.useProgram(prog.p);
      resetAttribs();
      attrib(prog, "a_x", p.gpu.x, 1, gl.FLOAT, false);
      attrib(prog, "a_y", p.gpu.y, 1, gl.FLOAT, false);
      attrib(prog, "a_class", p.gpu.c, 1, gl.SHORT, true);
      const palette = style.class_point.slice(0, 16);
      gl.uniform2fv(prog.un.u_scale, tf.scale);
      gl.uniform2fv(prog.un.u_offset, tf.offset);
      gl.uniform1f(prog.un.u_size, style.point_size * px);
      gl.uniform1f(prog.un.u_line, style.point_line * px);
      gl.uniform3fv(prog.un.u_palette, palette.flatMap((h) => rgb(h).map((v) => v / 255)));
      gl.uniform1i(prog.un.u_colours, palette.length);
      gl.drawArrays(gl.POINTS, 0, p.gpu.n);
    }

    const layerColour = (l) => style.layer_line[l % style.layer_line.length];

    /* Everything a view shows, into the bound framebuffer of width x height device pixels. */
    function render(view, width, height, px) {
      const f = remember(view.key);
      upload(f);
      gl.viewport(0, 0, width, height);
      const bg = rgb(style.background);
      gl.clearColor(bg[0] / 255, bg[1] / 255, bg[2] / 255, 1);
      gl.clear(gl.COLOR_BUFFER_BIT);
      image.pending = false;  // left by a paint that failed half-way
      const tf = transform(view, width, height);
      const scan = software && Math.max(width, height) <= maxImage;  // images of the framebuffer's size
      drawCells(f, view, tf, scan);
      if (view.points != null && points.has(view.points)) drawPoints(points.get(view.points), tf, px);
      const layer = shownLayer(f, view.layer);
      // Software GL (SwiftShader, llvmpipe) spends its time per vertex and per line: when the layers shown hold
      // more than style.dense_segments segments, they go as 1-pixel lines (without antialiasing, which lines that
      // dense hardly show), scanned here (100k segments: ~50 ms as SwiftShader's lines, ~170 ms as its quads,
      // a few ms here). A GPU always draws the antialiased quads.
      let shown = 0;
      for (let l = 0; l <= layer; l++) shown += f.lines[l].unit.length;
      const thin = software && style.dense_segments != null && shown > style.dense_segments;
      for (const ghost of view.ghosts || []) {
        const g = remember(ghost.key);
        upload(g);
        if (ghost.layer < g.lines.length) {
          const units = ghost.units ? unitAlpha(g, ghost.layer, ghost.units, 1, 0) : null;
          drawSegments(g.gpu.lines[ghost.layer], tf, px, {colour: style.ghost_line || layerColour(ghost.layer),
                       alpha: 0.8, width: style.layer_width, dash: 6, units, thin, scan});
        }
      }
      const fade = view.fade;
      for (let l = 0; l <= layer; l++) {
        const units = fade && fade.layer === l ? unitAlpha(f, l, fade.units, fade.alpha == null ? 0.15 : fade.alpha, 1)
          : null;
        drawSegments(f.gpu.lines[l], tf, px, {colour: layerColour(l), width: style.layer_width, units, thin, scan});
      }
      if (view.decision && layer === lastLayer(f)) {
        drawSegments(f.gpu.decision, tf, px, {colour: style.decision_line, width: style.decision_width});
      }
      const hl = view.highlight;
      if (hl && hl.layer >= 0 && hl.layer <= layer) {
        drawSegments(f.gpu.lines[hl.layer], tf, px, {colour: style.highlight_line || "#111111",
                     width: 2.5 * style.layer_width + 1, only: hl.unit});
      }
      flush();
      return f;
    }

    function resize(view) {
      const dpr = view.dpr || 1;
      const w = Math.max(1, Math.round(view.size[0] * dpr)), h = Math.max(1, Math.round(view.size[1] * dpr));
      if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
      return [w, h, dpr];
    }

    function paint(msg) {
      const t0 = performance.now();
      take(msg.frames);
      const fresh = !cache.has(msg.view.key) || !cache.get(msg.view.key).gpu;
      const [w, h, dpr] = resize(msg.view);
      gl.bindFramebuffer(gl.FRAMEBUFFER, null);
      const f = render(msg.view, w, h, dpr);
      gl.flush();
      port.postMessage({type: "painted", seq: msg.seq, cells: f.nCells, regions: f.keys.length ? f.keys[0].length : 1,
                        segments: f.lines.reduce((n, l) => n + l.unit.length, 0), scanned: scans(f),
                        ms: {total: performance.now() - t0, decode: fresh ? f.decodeMs : 0, build: fresh ? f.buildMs : 0}});
    }

    /* The view drawn at `scale` into an offscreen framebuffer, as a PNG blob (for exports). */
    async function png(msg) {
      take(msg.frames);
      const s = msg.scale || 2;
      const w = Math.round(msg.view.size[0] * s), h = Math.round(msg.view.size[1] * s);
      const fb = gl.createFramebuffer(), rb = gl.createRenderbuffer();
      gl.bindRenderbuffer(gl.RENDERBUFFER, rb);
      gl.renderbufferStorage(gl.RENDERBUFFER, gl.RGBA8, w, h);
      gl.bindFramebuffer(gl.FRAMEBUFFER, fb);
      gl.framebufferRenderbuffer(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT0, gl.RENDERBUFFER, rb);
      render(msg.view, w, h, s);
      const pixels = new Uint8ClampedArray(4 * w * h);
      gl.readPixels(0, 0, w, h, gl.RGBA, gl.UNSIGNED_BYTE, pixels);
      gl.bindFramebuffer(gl.FRAMEBUFFER, null);
      gl.deleteFramebuffer(fb);
      gl.deleteRenderbuffer(rb);
      const flipped = new Uint8ClampedArray(pixels.length), row = 4 * w;
      for (let y = 0; y < h; y++) flipped.set(pixels.subarray((h - 1 - y) * row, (h - y) * row), y * row);
      const out = new OffscreenCanvas(w, h);
      out.getContext("2d").putImageData(new ImageData(flipped, w, h), 0, 0);
      return {blob: await out.convertToBlob({type: "image/png"}), width: w, height: h};
    }

    /* ------------------------------------------------------------------------------------------- SVG */
    const r2 = (v) => Math.round(v * 100) / 100;

    /* Vector paths of the view in CSS pixels of its plot area (w x h): fills grouped by colour, points,
       ghosts, lines per layer (faded units apart), decision, highlight. The caller clips and places it. */
    function svg(msg) {
      take(msg.frames);
      const view = msg.view, f = remember(view.key), [w, h] = view.size, [x0, x1, y0, y1] = view.range;
      const X = (x) => r2((x - x0) / (x1 - x0) * w), Y = (y) => r2((y1 - y) / (y1 - y0) * h);
      const out = [`<rect width="${w}" height="${h}" fill="${style.background}"/>`];
      const fill = fills(f, view);
      if (fill) {
        const groups = new Map();
        for (let c = 0; c < f.nCells; c++) {
          const a = f.off[c], b = f.off[c + 1];
          let minx = Infinity, maxx = -Infinity, miny = Infinity, maxy = -Infinity;
          for (let j = a; j < b; j++) {
            minx = Math.min(minx, f.x[j]); maxx = Math.max(maxx, f.x[j]);
            miny = Math.min(miny, f.y[j]); maxy = Math.max(maxy, f.y[j]);
          }
          if (maxx < x0 || minx > x1 || maxy < y0 || miny > y1) continue;
          const parts = ["M" + X(f.x[a]) + " " + Y(f.y[a])];
          for (let j = a + 1; j < b; j++) parts.push("L" + X(f.x[j]) + " " + Y(f.y[j]));
          const key = fill.key(c) % fill.palette.length;
          if (!groups.has(key)) groups.set(key, []);
          groups.get(key).push(parts.join("") + "Z");
        }
        for (const [key, paths] of [...groups].sort((p, q) => p[0] - q[0])) {
          out.push(`<path class="fill-${view.shade}-${key}" fill="${fill.palette[key]}" ` +
                   `fill-opacity="${style.fill_opacity}" d="${paths.join("")}"/>`);
        }
      }
      if (view.points != null && points.has(view.points)) {
        const p = points.get(view.points), pal = style.class_point;
        const rad = style.point_size / 2;
        for (let i = 0; i < p.x.length; i++) {
          out.push(`<circle cx="${X(p.x[i])}" cy="${Y(p.y[i])}" r="${rad}" fill="${pal[((p.c[i] % pal.length) + pal.length) % pal.length]}" ` +
                   `stroke="#ffffff" stroke-width="${style.point_line}"/>`);
        }
      }
      const segs = (set, keep) => {
        const parts = [];
        for (let i = 0; i < set.seg.length / 4; i++) {
          if (keep && !keep(set.unit[i])) continue;
          const s = set.seg.subarray(4 * i, 4 * i + 4);
          parts.push("M" + X(s[0]) + " " + Y(s[1]) + "L" + X(s[2]) + " " + Y(s[3]));
        }
        return parts.join("");
      };
      const stroke = (cls, colour, width, d, extra) => d && out.push(
        `<path class="${cls}" fill="none" stroke="${colour}" stroke-width="${width}" stroke-linecap="square" ` +
        `${extra || ""}d="${d}"/>`);
      for (const ghost of view.ghosts || []) {
        const g = remember(ghost.key), set = g.lines[ghost.layer];
        if (!set) continue;
        const only = ghost.units && new Set(ghost.units);
        stroke("ghost", style.ghost_line || layerColour(ghost.layer), style.layer_width,
               segs(set, only && ((u) => only.has(u))), 'stroke-opacity="0.8" stroke-dasharray="3.3 2.7" ');
      }
      const layer = shownLayer(f, view.layer), fade = view.fade;
      for (let l = 0; l <= layer; l++) {
        const faded = fade && fade.layer === l ? new Set(fade.units) : null;
        stroke(`layer-${l + 1}`, layerColour(l), style.layer_width, segs(f.lines[l], faded && ((u) => !faded.has(u))));
        if (faded) {
          stroke(`layer-${l + 1} faded`, layerColour(l), style.layer_width, segs(f.lines[l], (u) => faded.has(u)),
                 `stroke-opacity="${fade.alpha == null ? 0.15 : fade.alpha}" `);
        }
      }
      if (view.decision && layer === lastLayer(f)) {
        stroke("decision", style.decision_line, style.decision_width, segs({seg: f.decision, unit: null}));
      }
      const hl = view.highlight;
      if (hl && hl.layer >= 0 && hl.layer <= layer) {
        stroke("highlight", style.highlight_line || "#111111", 2.5 * style.layer_width + 1,
               segs(f.lines[hl.layer], (u) => u === hl.unit));
      }
      return out.join("\n");
    }

    /* ------------------------------------------------------------------------------------------- picking */
    /* The cell under data point (x, y): its cell, linear region, class and colour key at the shown layer. */
    function pick(msg) {
      take(msg.frames);
      const f = remember(msg.view.key), x = msg.x, y = msg.y;
      for (let c = 0; c < f.nCells; c++) {
        const a = f.off[c], b = f.off[c + 1];
        let inside = true;
        for (let j = a; j < b && inside; j++) {
          const k = j + 1 < b ? j + 1 : a;
          const cross = (f.x[k] - f.x[j]) * (y - f.y[j]) - (f.y[k] - f.y[j]) * (x - f.x[j]);
          if (cross < -1e-12) inside = false;
        }
        if (inside) {
          const layer = shownLayer(f, msg.view.layer);
          return {cell: c, region: f.region[c], class: f.cls[c],
                  key: layer >= 0 && f.keys.length ? f.keys[layer][f.region[c]] : null};
        }
      }
      return null;
    }

    /* ------------------------------------------------------------------------------------------- messages */
    function init(msg) {
      style = msg.style;
      canvas = msg.canvas;
      setup();
      canvas.addEventListener && canvas.addEventListener("webglcontextlost", (e) => e.preventDefault());
      canvas.addEventListener && canvas.addEventListener("webglcontextrestored", () => {
        for (const f of cache.values()) f.gpu = null;
        for (const p of points.values()) p.gpu = null;
        setup();
      });
    }

    port.onmessage = async (event) => {
      const msg = event.data;
      try {
        if (msg.type === "init") init(msg);
        else if (msg.type === "points") points.set(msg.key, {x: unpack(msg.points.x), y: unpack(msg.points.y),
                                                               c: unpack(msg.points.c), gpu: null});
        else if (msg.type === "draw") paint(msg);
        else if (msg.type === "svg") port.postMessage({type: "reply", id: msg.id, svg: svg(msg)});
        else if (msg.type === "png") port.postMessage({type: "reply", id: msg.id, ...(await png(msg))});
        else if (msg.type === "pick") port.postMessage({type: "reply", id: msg.id, hit: pick(msg)});
      } catch (err) {
        port.postMessage({type: "error", seq: msg.seq, id: msg.id, message: String(err && err.stack || err)});
      }
    };
  };
})();

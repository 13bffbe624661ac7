// Boxes (lines as polylines, polygons as their outlines, masks as filled pixels) over an
// image: an SVG whose viewBox is the image's own pixel grid, laid over the image with the
// same aspect-preserving fit, so boxes sit where the objects are at any display size
// (thumbnail or full image) without scaling coordinates by hand.
import { h, s, labelColor } from "./dom.js";

/** Box-shaped geometry of an annotation (boxes; other types by their bounding box). */
export function boxOf(ann) {
  const g = ann.geometry || {};
  if (["x", "y", "width", "height"].every((k) => typeof g[k] === "number")) return g;
  return null;
}

function pointsOf(ann, type, fewest) {
  const v = ann.type === type && ann.geometry && ann.geometry.vertices;
  if (!Array.isArray(v) || v.length < fewest) return null;
  return v.every((p) => typeof p.x === "number" && typeof p.y === "number") ? v : null;
}

/** The points of a line (an open polyline), or null for any other object. */
export function lineOf(ann) {
  return pointsOf(ann, "line", 2);
}

/** The points of a polygon (closed), or null for any other object. */
export function polygonOf(ann) {
  return pointsOf(ann, "polygon", 3);
}

/** A mask's COCO RLE (`{size: [h, w], counts}`, uncompressed: the form Ocula stores and
 * every object JSON carries), or null for any other object. */
export function maskOf(ann) {
  const rle = ann.type === "mask" && ann.geometry && ann.geometry.rle;
  if (!rle || !Array.isArray(rle.size) || !Array.isArray(rle.counts)) return null;
  return rle;
}

// RLE -> its shape: the page redraws after every toggle and edit, the masks stay the same.
const maskShapes = new WeakMap();

/** A mask's pixels as SVG path data in pixel units, and the box bounding them (null when
 * empty). The runs are column-major: each is cut where a column ends, and a span of the
 * same rows in the next column extends the same rectangle, so a blob costs about one
 * rectangle per change of its outline rather than one per column of pixels. */
export function maskShape(rle) {
  let shape = maskShapes.get(rle);
  if (shape) return shape;
  const h = Number(rle.size[0]) || 0;
  const parts = [];
  let open = new Map();  // "row,len" -> [first column, row, len]: reached the column before
  let cur = new Map();
  let col = -1;
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  const emit = ([x, r, len], end) => parts.push(`M${x} ${r}h${end - x}v${len}h${x - end}z`);
  const advance = (c) => {
    for (const [k, rect] of open) if (!cur.has(k)) emit(rect, col);
    open = cur;
    cur = new Map();
    if (c !== col + 1) {
      for (const rect of open.values()) emit(rect, col + 1);
      open = new Map();
    }
    col = c;
  };
  let pos = 0;
  rle.counts.forEach((n, i) => {
    const end = pos + Number(n);
    for (let at = pos; i % 2 === 1 && at < end && h > 0;) {
      const c = Math.floor(at / h), r = at - c * h, len = Math.min(end - at, h - r);
      if (c !== col) advance(c);
      const k = `${r},${len}`;
      cur.set(k, open.has(k) ? open.get(k) : [c, r, len]);
      x0 = Math.min(x0, c); x1 = Math.max(x1, c + 1);
      y0 = Math.min(y0, r); y1 = Math.max(y1, r + len);
      at += len;
    }
    pos = end;
  });
  advance(Infinity);
  const box = parts.length ? { x: x0, y: y0, width: x1 - x0, height: y1 - y0 } : null;
  shape = { d: parts.join(""), box };
  maskShapes.set(rle, shape);
  return shape;
}

/** The box an object occupies: its own, or the one bounding a line's or polygon's
 * points or a mask's pixels. */
export function extentOf(ann) {
  const b = boxOf(ann);
  if (b) return b;
  const rle = maskOf(ann);
  if (rle) return maskShape(rle).box;
  const v = lineOf(ann) || polygonOf(ann);
  if (!v) return null;
  const xs = v.map((p) => p.x), ys = v.map((p) => p.y);
  const x = Math.min(...xs), y = Math.min(...ys);
  return { x, y, width: Math.max(...xs) - x, height: Math.max(...ys) - y };
}

/** The label an object shows: a multicategory's labels joined, else its label. */
export function labelText(ann) {
  return Array.isArray(ann.labels) ? ann.labels.join(", ") : ann.label;
}

/** The classes that style an object's box: predictions by match status (`unmatched`
 * for an uncommitted run), ground truth by its status in the chosen run (`plain`, in
 * its label's colour, when no committed run is chosen). */
export function boxClasses(ann) {
  if (ann.kind !== "prediction") return `box gt ${ann.status || "plain"}`;
  // With several runs drawn at once (the item page), each run's slot gives its line
  // style, and a run drawn under others gets a wider line (`under-N`), so two runs'
  // boxes in the same place both show: the lower one as a rim round the upper one.
  const slot = typeof ann.slot === "number" ? ` slot-${ann.slot}` : "";
  const under = ann.under ? ` under-${Math.min(ann.under, 3)}` : "";
  return `box pred ${ann.status || "unmatched"}${slot}${under}`;
}

/** One line describing an object: label, kind, confidence, IoU and match status. */
export function summary(ann) {
  const parts = [labelText(ann)];
  parts.push(ann.kind === "prediction" ? `prediction (${ann.run})` : "ground truth");
  if (typeof ann.confidence === "number") parts.push(`conf ${ann.confidence.toFixed(2)}`);
  if (typeof ann.iou === "number" && ann.status) parts.push(`IoU ${ann.iou.toFixed(2)}`);
  if (ann.status) parts.push(ann.status.toUpperCase());
  return parts.join(" · ");
}

/** The SVG element drawing an object in image pixels, with `className`: a box's rect,
 * a line's open polyline (class `line`), a polygon's outline (class `poly`), a mask's
 * pixels (class `mask`, filled); null for an object with none of these. */
export function shapeOf(ann, className) {
  const common = { "vector-effect": "non-scaling-stroke" };
  const points = (v) => v.map((p) => `${p.x},${p.y}`).join(" ");
  const b = boxOf(ann);
  if (b) return s("rect", { x: b.x, y: b.y, width: b.width, height: b.height, class: className, ...common });
  const line = lineOf(ann);
  if (line) return s("polyline", { points: points(line), class: `${className} line`, ...common });
  const polygon = polygonOf(ann);
  if (polygon) return s("polygon", { points: points(polygon), class: `${className} poly`, ...common });
  const rle = maskOf(ann);
  // Crisp edges: the rectangles of one mask touch, and antialiased they would show seams.
  if (rle) return s("path", { d: maskShape(rle).d, class: `${className} mask`, "shape-rendering": "crispEdges" });
  return null;
}

/** Colour `el`, the shape of `ann`, by its label where no match status colours it (the
 * stylesheet's colours): a mask's fill, any other shape's outline. */
export function paintByLabel(el, ann) {
  if (ann.kind === "prediction" || ann.status) return;
  el.style[el.classList.contains("mask") ? "fill" : "stroke"] = labelColor(labelText(ann));
}

/** The SVG of the boxes of `annotations` over an image of `item`'s size. */
export function boxesSvg(item, annotations) {
  const w = item.width || 1, ht = item.height || 1;
  const svg = s("svg", { class: "boxes", viewBox: `0 0 ${w} ${ht}`,
                          preserveAspectRatio: "xMidYMid meet" });
  // Masks first: filled, they would hide the outlines drawn under them from the pointer.
  const ordered = [...annotations.filter(maskOf), ...annotations.filter((a) => !maskOf(a))];
  for (const ann of ordered) {
    const rect = shapeOf(ann, boxClasses(ann));
    if (!rect) continue;
    // Match colours come from the stylesheet; plain ground truth is coloured by label.
    paintByLabel(rect, ann);
    rect.dataset.annotation = ann.id;
    if (ann.status) rect.dataset.status = ann.status;
    if (ann.kind === "prediction" && ann.run) rect.dataset.run = ann.run;
    // A native tooltip too, for keyboards and touch; the item page adds a richer one.
    rect.append(s("title", {}, summary(ann)));
    svg.append(rect);
  }
  return svg;
}

/** A figure: the image `src` with the boxes of `annotations` over it. */
export function figure(item, src, annotations, { className = "", alt = "" } = {}) {
  const img = h("img", { src, alt, loading: "lazy", decoding: "async", draggable: "false" });
  return h("div", { class: `figure ${className}`.trim() }, img, boxesSvg(item, annotations));
}

// Boxes (lines as polylines, polygons as their outlines) over an image: an SVG whose viewBox is the image's own pixel grid, laid over the
// image with the same aspect-preserving fit, so boxes sit where the objects are at any
// display size (thumbnail or full image) without scaling coordinates by hand.
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

/** The box an object occupies: its own, or the one bounding a line's or polygon's
 * points. */
export function extentOf(ann) {
  const b = boxOf(ann);
  if (b) return b;
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
 * a line's open polyline (class `line`), a polygon's outline (class `poly`); null for
 * an object with none of these. */
export function shapeOf(ann, className) {
  const common = { "vector-effect": "non-scaling-stroke" };
  const points = (v) => v.map((p) => `${p.x},${p.y}`).join(" ");
  const b = boxOf(ann);
  if (b) return s("rect", { x: b.x, y: b.y, width: b.width, height: b.height, class: className, ...common });
  const line = lineOf(ann);
  if (line) return s("polyline", { points: points(line), class: `${className} line`, ...common });
  const polygon = polygonOf(ann);
  if (polygon) return s("polygon", { points: points(polygon), class: `${className} poly`, ...common });
  return null;
}

/** The SVG of the boxes of `annotations` over an image of `item`'s size. */
export function boxesSvg(item, annotations) {
  const w = item.width || 1, ht = item.height || 1;
  const svg = s("svg", { class: "boxes", viewBox: `0 0 ${w} ${ht}`,
                          preserveAspectRatio: "xMidYMid meet" });
  for (const ann of annotations) {
    const rect = shapeOf(ann, boxClasses(ann));
    if (!rect) continue;
    // Match colours come from the stylesheet; plain ground truth is coloured by label.
    if (ann.kind !== "prediction" && !ann.status) rect.style.stroke = labelColor(ann.label);
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

// Boxes over an image: an SVG whose viewBox is the image's own pixel grid, laid over the
// image with the same aspect-preserving fit, so boxes sit where the objects are at any
// display size (thumbnail or full image) without scaling coordinates by hand.
import { h, s, labelColor } from "./dom.js";

/** Box-shaped geometry of an annotation (boxes; other types by their bounding box). */
export function boxOf(ann) {
  const g = ann.geometry || {};
  if (["x", "y", "width", "height"].every((k) => typeof g[k] === "number")) return g;
  return null;
}

/** A figure: the image `src` with the boxes of `annotations` over it. */
export function figure(item, src, annotations, { className = "", alt = "" } = {}) {
  const w = item.width || 1, ht = item.height || 1;
  const svg = s("svg", { class: "boxes", viewBox: `0 0 ${w} ${ht}`,
                          preserveAspectRatio: "xMidYMid meet" });
  for (const ann of annotations) {
    const b = boxOf(ann);
    if (!b) continue;
    const rect = s("rect", { x: b.x, y: b.y, width: b.width, height: b.height,
                             class: "box", "vector-effect": "non-scaling-stroke" });
    rect.style.stroke = labelColor(ann.label);
    rect.dataset.annotation = ann.id;
    // A native tooltip too, for keyboards and touch; the item page adds a richer one.
    rect.append(s("title", {}, ann.label));
    svg.append(rect);
  }
  const img = h("img", { src, alt, loading: "lazy", decoding: "async", draggable: "false" });
  return h("div", { class: `figure ${className}`.trim() }, img, svg);
}

// The objects view ("patches"): one tile per annotation or prediction of an object query,
// each a crop of its image around the object (with a margin) and the box drawn; a
// committed run's TP is drawn with the box it matched, and the tile names its status,
// IoU and confidence. The crop is an SVG whose viewBox is the crop region in the image's
// own pixels, with the image laid at its full size under it: the browser does the
// cropping and scaling, and boxes need no coordinate arithmetic.
import { api } from "./api.js";
import { h, s } from "./dom.js";
import { boxClasses, extentOf, paintByLabel, shapeOf, summary } from "./overlay.js";

// Thumbnail sizes the crops are read from (cached by the server once made).
const THUMB_SIZES = [256, 512, 1024];
// Above this long side, a tiny object is read from the 1024 px thumbnail rather than
// the original (a 6000 px photo per tile would be megabytes).
const MAX_FULL = 2048;

/** One page of objects of a scope (POST .../query/objects). */
export async function fetchObjects(dataset, scope, cursor, withTotal, size) {
  return api(`/datasets/${encodeURIComponent(dataset)}/query/objects`, {
    method: "POST",
    body: { query: scope.query, slice: scope.slice || null, page_size: size,
            cursor: cursor || null, with_total: withTotal },
  });
}

/** The items of `objects` by id (their size places the crop in the image). */
export async function itemsOf(dataset, objects) {
  const ids = [...new Set(objects.map((o) => o.item_id))];
  const byId = new Map();
  if (!ids.length) return byId;
  const page = await api(`/datasets/${encodeURIComponent(dataset)}/query/items`, {
    method: "POST",
    body: { query: `id in [${ids.map((id) => `"${id}"`).join(", ")}]`, page_size: ids.length },
  });
  for (const item of page.items) byId.set(item.id, item);
  return byId;
}

/** The square region shown for `boxes` (image pixels): their union with a margin of a
 * quarter of its size (at least 12 px), centred, so small objects keep some context. */
export function cropOf(boxes) {
  const x0 = Math.min(...boxes.map((b) => b.x)), y0 = Math.min(...boxes.map((b) => b.y));
  const x1 = Math.max(...boxes.map((b) => b.x + b.width));
  const y1 = Math.max(...boxes.map((b) => b.y + b.height));
  const side = Math.max(x1 - x0, y1 - y0, 1) * 1.5 + 24;
  return { x: (x0 + x1 - side) / 2, y: (y0 + y1 - side) / 2, side };
}

/** The image URL to crop from: the smallest thumbnail that still gives the crop about
 * `px` screen pixels of detail, else the original. */
export function sourceFor(item, crop, px) {
  const long = Math.max(item.width || 1, item.height || 1);
  const need = (px * (window.devicePixelRatio || 1) * long) / crop.side;
  const size = THUMB_SIZES.find((n) => n >= need && n < long);
  const id = encodeURIComponent(item.id);
  if (size) return `/api/v1/items/${id}/thumbnail?size=${size}`;
  if (long <= MAX_FULL) return `/api/v1/items/${id}/image`;
  return `/api/v1/items/${id}/thumbnail?size=${THUMB_SIZES.at(-1)}`;
}

function rect(obj, className) {
  const r = shapeOf(obj, className);
  paintByLabel(r, obj);
  r.dataset.annotation = obj.id;
  return r;
}

/** A crop of `item` around `obj` (and its matched partner), as an SVG. */
export function patch(item, obj, px) {
  const box = extentOf(obj);
  const partner = obj.match && extentOf(obj.match) ? obj.match : null;
  const crop = cropOf(partner ? [box, extentOf(partner)] : [box]);
  const svg = s("svg", { class: "boxes patch-svg", viewBox: `${crop.x} ${crop.y} ${crop.side} ${crop.side}`,
                          preserveAspectRatio: "xMidYMid meet", role: "img",
                          "aria-label": summary(obj) });
  svg.append(s("image", { href: sourceFor(item, crop, px), x: 0, y: 0,
                          width: item.width, height: item.height,
                          preserveAspectRatio: "none" }));
  if (partner) {
    // The partner is the other side of the match: a TP prediction's ground truth, or
    // the prediction that found a ground-truth box; both are TPs.
    const other = { ...partner, status: "tp", run: obj.run };
    svg.append(rect(other, `${boxClasses(other)} partner`));
  }
  svg.append(rect(obj, `${boxClasses(obj)} focus`));
  return svg;
}

/** The tile of one object: its crop, its label, and for a run's objects status, IoU and
 * confidence. `href` opens its item with the box highlighted. */
export function objectTile(obj, item, href, px) {
  const facts = [];
  if (obj.status) facts.push(h("span", { class: `status ${obj.status}` }, obj.status.toUpperCase()));
  if (typeof obj.iou === "number" && obj.status) facts.push(h("span", {}, `IoU ${obj.iou.toFixed(2)}`));
  if (typeof obj.confidence === "number") facts.push(h("span", {}, `conf ${obj.confidence.toFixed(2)}`));
  // Without the image's size (not probed yet) there is no crop to place: say what it is.
  const figure = item && item.width && item.height && extentOf(obj) ? h("div", { class: "figure patch" }, patch(item, obj, px))
    : h("div", { class: "figure patch empty-patch" }, obj.type || "");
  return h("div", { class: "tile object-tile", "data-object": obj.id, "data-item": obj.item_id,
                    title: summary(obj) },
           h("a", { class: "tile-link", href },
             figure,
             h("span", { class: "caption" },
               h("span", { class: "label-name" }, obj.label ?? "(no label)"),
               obj.kind === "prediction" ? h("span", { class: "muted" }, " pred") : null),
             facts.length ? h("span", { class: "facts" }, ...facts) : null),
           h("button", { type: "button", class: "tile-check", role: "checkbox",
                         "aria-checked": "false", "aria-label": `Select ${summary(obj)}`,
                         title: "Select (shift-click: a range; ctrl/cmd-click a tile: toggle)" }));
}

// --- sorting through the query's own "order by" ---------------------------------------

/** Where the query's "order by" starts (outside string literals), or -1. */
function orderStart(query) {
  let quote = null;
  for (let i = 0; i < query.length; i++) {
    const ch = query[i];
    if (quote) {
      if (ch === "\\") i++;
      else if (ch === quote) quote = null;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
    } else if (/[oO]/.test(ch) && (i === 0 || /[\s)\]"']/.test(query[i - 1])) &&
               /^order\s+by\b/i.test(query.slice(i))) {
      return i;
    }
  }
  return -1;
}

/** The query's sort as written ("iou asc"), or "". */
export function orderOf(query) {
  const at = orderStart(query);
  if (at < 0) return "";
  return query.slice(at).replace(/^order\s+by\s+/i, "").replace(/\s+limit\s+\d+\s*$/i, "")
    .trim().replace(/\s+/g, " ").toLowerCase();
}

/** `query` sorted by `order` ("iou asc"; "" drops the sort), keeping its limit. */
export function withOrder(query, order) {
  const tail = query.match(/\s+limit\s+\d+\s*$/i);
  const limit = tail ? tail[0].replace(/\s+/g, " ").trimEnd() : "";
  const body = tail ? query.slice(0, tail.index) : query;
  const at = orderStart(body);
  const condition = (at < 0 ? body : body.slice(0, at)).trim();
  const sort = order ? `order by ${order}` : "";
  return [condition, sort].filter(Boolean).join(" ") + limit;
}

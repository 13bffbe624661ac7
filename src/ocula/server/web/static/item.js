// The item page: the full image with its boxes, zoomed and panned (zoom.js); layers to
// show the ground truth and any of the dataset's runs (layers.js, kept in the URL); hover
// a box for its label, run, confidence, IoU and match status; the list of objects (hover
// one to find its box, click it to zoom there); the item's metadata; and ← / → through
// the results of the scope the page was opened from (the grid's query, slice and run).
// Editing the ground truth is edit.js; the edit history and version tags labelhistory.js.
import { api } from "./api.js";
import { h, labelColor } from "./dom.js";
import { Editor } from "./edit.js";
import { showHistory, versionTagger } from "./labelhistory.js";
import { layerRuns, layersParams, loadRun, readLayers } from "./layers.js";
import {
  boxOf, boxesSvg, extentOf, figure, labelText, lineOf, maskOf, maskShape, polygonOf, summary,
} from "./overlay.js";
import { fetchObjects } from "./objects.js";
import { PAGE_SIZE, fetchPage, loadRecord, objectPage, saveRecord } from "./results.js";
import { drawLegend, readScope, scopeSearch } from "./scope.js";
import { ZoomView } from "./zoom.js";

const root = document.getElementById("item-view");
const dataset = root.dataset.dataset;
const itemId = root.dataset.item;
const scope = readScope();
const tooltip = document.getElementById("tooltip");
const stage = document.getElementById("stage");
const panel = document.getElementById("layers");
const runs = layerRuns(panel);
if (!runs.some((r) => r.name === scope.run)) scope.run = "";  // not a run of this dataset
const layers = readLayers(location.search, runs, scope.run);
const loaded = new Map();  // run name -> {predictions, matches}, once read
// A link shared without the grid's record: read at most this many pages to find the item.
const MAX_SCAN_PAGES = 100;

const ui = { item: null, groundTruth: [], figure: null, view: null, byId: new Map(),
            hot: null, nav: null, shown: [], editor: null, ref: null };

function search() {
  const parts = [scopeSearch(scope).slice(1), layersParams(layers, runs, scope.run)];
  const text = parts.filter(Boolean).join("&");
  return text ? `?${text}` : "";
}

function pageHref(id) {
  return `/datasets/${encodeURIComponent(dataset)}/items/${encodeURIComponent(id)}${search()}`;
}

// Opened from the objects view (a tile names its object with ?box=): ← / → step through
// the objects, each opened on its item with its box highlighted, as its tile opens it.
const objectId = scope.target === "objects" ? new URLSearchParams(location.search).get("box") : null;

/** Where ← / → lead: an item id, or in the objects view {id, item, run} of an object. */
function stepHref(to) {
  if (typeof to === "string") return pageHref(to);
  const params = new URLSearchParams(scopeSearch({ ...scope, tab: "", run: to.run || scope.run }));
  params.set("box", to.id);
  return `/datasets/${encodeURIComponent(dataset)}/items/${encodeURIComponent(to.item)}?${params}`;
}

function describeGeometry(ann) {
  const b = boxOf(ann);
  const r = (v) => Math.round(v * 10) / 10;
  const polygon = polygonOf(ann);
  if (polygon) return `polygon of ${polygon.length} points`;
  const line = lineOf(ann);
  if (line) {
    let length = 0;
    for (let i = 1; i < line.length; i++) {
      length += Math.hypot(line[i].x - line[i - 1].x, line[i].y - line[i - 1].y);
    }
    return `line of ${line.length} points, ${r(length)} px long`;
  }
  const rle = maskOf(ann);
  if (rle) {
    const m = maskShape(rle).box;
    const px = typeof ann.area === "number" ? `, ${Math.round(ann.area).toLocaleString()} px` : "";
    return m ? `mask ${m.width}×${m.height} at (${m.x}, ${m.y})${px}` : "mask (empty)";
  }
  if (ann.type === "multicategory") {
    return ann.taxonomy_name ? `multicategory (${ann.taxonomy_name})` : "multicategory";
  }
  if (!b) return ann.type;
  return `${ann.type} ${r(b.width)}×${r(b.height)} at (${r(b.x)}, ${r(b.y)})`;
}

function matchText(m) {
  // A missed object's IoU is 0 by definition: not worth a number.
  const iou = typeof m.iou === "number" && m.status && m.status !== "fn"
    ? ` · IoU ${m.iou.toFixed(3)}` : "";
  return `${m.run}: ${m.status ? m.status.toUpperCase() : "no match"}${iou}`;
}

function tooltipLines(ann) {
  const lines = [h("strong", {}, labelText(ann))];
  if (ann.kind === "prediction") lines.push(`prediction of ${ann.run} (a: accept as ground truth)`);
  else lines.push("ground truth");
  if (typeof ann.confidence === "number") lines.push(`confidence ${ann.confidence.toFixed(3)}`);
  if (ann.matches && ann.matches.length) {
    lines.push(...ann.matches.map(matchText));  // one line per committed run shown
  } else {
    if (typeof ann.iou === "number" && ann.status) lines.push(`IoU ${ann.iou.toFixed(3)}`);
    if (ann.status) lines.push(`status ${ann.status.toUpperCase()}`);
  }
  lines.push(describeGeometry(ann));
  for (const [k, v] of Object.entries(ann.metadata || {}).slice(0, 6)) {
    lines.push(`${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`);
  }
  return lines.map((l) => h("div", {}, l));
}

/** Mark the box and list entry of `annId` (null: none) as the one pointed at. */
function setHot(annId, { scroll = false } = {}) {
  if (ui.hot === annId) return;
  for (const el of document.querySelectorAll(".hot")) el.classList.remove("hot");
  ui.hot = annId;
  if (!annId) return;
  for (const el of document.querySelectorAll(`[data-annotation="${CSS.escape(annId)}"]`)) {
    el.classList.add("hot");
    if (scroll && el.tagName === "LI") el.scrollIntoView({ block: "nearest" });
  }
}

/** The objects the shown layers draw: ground truth first (under the predictions), with
 * its match in each committed run shown, coloured by the first of them. */
function shownObjects() {
  const on = runs.filter((r) => layers.runs.has(r.name) && loaded.has(r.name))
    .map((r) => ({ run: r, ...loaded.get(r.name) }));
  const judges = on.filter((d) => d.run.committed);
  const out = [];
  if (layers.gt) {
    out.push(...ui.groundTruth.map((a) => {
      const matches = judges.map((d) => ({ run: d.run.name, ...d.matches.get(a.id) }));
      const own = matches[0] || {};
      return { ...a, matches, status: own.status ?? null, iou: own.iou ?? null };
    }));
  }
  on.forEach((d, i) => {
    const under = on.length - 1 - i;  // runs drawn over this one
    out.push(...d.predictions.map((p) => (under ? { ...p, under } : p)));
  });
  return out;
}

function listEntry(ann) {
  const swatch = h("span", { class: "swatch" });
  swatch.style.background = labelColor(labelText(ann));
  const status = ann.status ? h("span", { class: `status ${ann.status}` },
                                ann.status.toUpperCase()) : null;
  // Which layer an object is from, once runs are shown next to the ground truth.
  const source = ann.kind === "prediction" ? ann.run
    : !layers.runs.size ? null
      : ann.matches && ann.matches.length > 1 ? ann.matches.map(matchText).join(" · ")
        : "ground truth";
  const li = h("li", { "data-annotation": ann.id, title: summary(ann) },
               h("div", { class: "ann-line" }, swatch,
                 h("span", { class: "label-name" }, labelText(ann)), status,
                 h("span", { class: "muted geometry" }, describeGeometry(ann))),
               source && h("div", { class: "ann-source muted" }, source));
  if (ann.kind === "prediction") {
    li.classList.add("pred");
    const accept = h("button", { type: "button", class: "quiet small accept",
                                 title: "Accept as ground truth (a)" }, "Accept as GT");
    accept.addEventListener("click", (e) => { e.stopPropagation(); ui.editor.accept(ann); });
    li.querySelector(".ann-line").append(accept);
  }
  li.addEventListener("mouseenter", () => setHot(ann.id));
  li.addEventListener("mouseleave", () => setHot(null));
  const box = extentOf(ann);
  if (box) {
    li.tabIndex = 0;  // Tab to an object and Enter zooms to it, as a click does
    li.addEventListener("click", () => ui.view.focus(box));
    li.addEventListener("keydown", (e) => { if (e.key === "Enter") ui.view.focus(box); });
    li.addEventListener("focus", () => setHot(ann.id));
  }
  return li;
}

/** Draw the shown layers: the boxes, the object list, the counts and the legend. */
function draw() {
  const objects = shownObjects();
  ui.shown = objects;
  ui.byId = new Map(objects.map((a) => [a.id, a]));
  ui.hot = null;
  ui.figure.querySelector("svg.boxes").replaceWith(boxesSvg(ui.item, objects));
  const list = document.getElementById("annotations");
  list.replaceChildren(...objects.map(listEntry));
  if (!objects.length) list.append(h("li", { class: "muted" }, "No objects shown."));
  document.getElementById("ann-count").textContent = `(${objects.length})`;
  panel.querySelector("input[data-layer=gt]").closest("label").querySelector(".n")
    .textContent = String(ui.groundTruth.length);
  for (const r of runs) {
    const n = r.input.closest("label").querySelector(".n");
    if (loaded.has(r.name)) n.textContent = String(loaded.get(r.name).predictions.length);
  }
  const shown = runs.filter((r) => layers.runs.has(r.name));
  const legend = document.getElementById("legend");
  drawLegend(legend, shown);
  const judges = shown.filter((r) => r.committed && loaded.has(r.name));
  if (layers.gt && judges.length > 1) {
    legend.append(h("li", { class: "legend-row muted" },
                    `Ground truth is coloured by its match in ${judges[0].name}; ` +
                    "hover a box for the others."));
  }
  markPicked();
  if (ui.editor) ui.editor.redraw();
}

// ?box=<annotation or prediction id>: the box a link (an objects-view tile) points at.
function markPicked() {
  const picked = new URLSearchParams(location.search).get("box");
  if (!picked) return;
  for (const el of document.querySelectorAll(`[data-annotation="${CSS.escape(picked)}"]`)) {
    el.classList.add("picked");
  }
}

function rememberLayers() {
  history.replaceState(null, "", location.pathname + search());
  setLinks();
}

/** Read `run`'s objects for this item once. A run that cannot be read is switched off
 * and says why on its toggle, rather than leaving the page half drawn. */
async function showRun(run) {
  if (loaded.has(run.name)) return;
  const n = run.input.closest("label").querySelector(".n");
  try {
    loaded.set(run.name, await loadRun(dataset, itemId, run));
  } catch (err) {
    layers.runs.delete(run.name);
    run.input.checked = false;
    n.textContent = "error";
    n.title = err.message;
    rememberLayers();
  }
}

async function toggle(input) {
  const run = runs.find((r) => r.input === input);
  if (!run) layers.gt = input.checked;
  else if (input.checked) layers.runs.add(run.name);
  else layers.runs.delete(run.name);
  rememberLayers();
  if (run && input.checked) await showRun(run);
  draw();
}

function area(ann) {
  if (maskOf(ann) && typeof ann.area === "number") return ann.area;  // its pixels, not its box
  const b = extentOf(ann);
  return b ? b.width * b.height : Infinity;
}

/** The objects whose boxes are under the pointer, smallest first: with several runs
 * shown, boxes overlap, and the smallest is the one a pointer can only reach there. */
function objectsAt(e) {
  if (stage.classList.contains("dragging")) return [];
  const hits = document.elementsFromPoint(e.clientX, e.clientY)
    .map((el) => el.dataset && ui.byId.get(el.dataset.annotation)).filter(Boolean);
  return hits.map((ann, i) => ({ ann, i }))
    .sort((a, b) => area(a.ann) - area(b.ann) || a.i - b.i).map((x) => x.ann);
}

const MORE_IN_TOOLTIP = 3;

function onPointerMove(e) {
  const [ann, ...others] = objectsAt(e);
  setHot(ann ? ann.id : null, { scroll: true });
  if (!ann) { tooltip.hidden = true; return; }
  const more = others.slice(0, MORE_IN_TOOLTIP).map((o) => h("div", { class: "also" }, summary(o)));
  if (others.length > MORE_IN_TOOLTIP) {
    more.push(h("div", { class: "also" }, `and ${others.length - MORE_IN_TOOLTIP} more`));
  }
  tooltip.replaceChildren(...tooltipLines(ann),
                          ...(more.length ? [h("div", { class: "muted" }, "Also here:"), ...more] : []));
  tooltip.hidden = false;
  // Beside the pointer, flipped to its other side where it would leave the window.
  const box = root.getBoundingClientRect();
  const flipX = e.clientX + 14 + tooltip.offsetWidth > window.innerWidth;
  const flipY = e.clientY + 14 + tooltip.offsetHeight > window.innerHeight;
  const x = flipX ? e.clientX - 14 - tooltip.offsetWidth : e.clientX + 14;
  const y = flipY ? e.clientY - 14 - tooltip.offsetHeight : e.clientY + 14;
  tooltip.style.left = `${x - box.left}px`;
  tooltip.style.top = `${y - box.top}px`;
}

/** The image in its zoomable stage, once its size is known. */
async function showImage(item) {
  const src = `/api/v1/items/${encodeURIComponent(item.id)}/image`;
  const fig = figure(item, src, [], { className: "full", alt: item.reference_id });
  const img = fig.querySelector("img");
  img.loading = "eager";
  stage.replaceChildren(fig);
  if (!(item.width && item.height)) {
    // An item stored without its size: the image's own tells where boxes go.
    await img.decode().catch(() => null);
    item.width = img.naturalWidth || 1;
    item.height = img.naturalHeight || 1;
  }
  ui.item = item;
  ui.figure = fig;
  const level = document.getElementById("zoom-level");
  ui.view = new ZoomView(stage, fig, item.width, item.height, (v) => {
    level.textContent = `${Math.round(v.scale * 100)}%`;
    tooltip.hidden = true;
    if (ui.editor) ui.editor.redraw();  // handles keep their size on screen
  });
  document.getElementById("zoom-in").addEventListener("click", () => ui.view.step(1));
  document.getElementById("zoom-out").addEventListener("click", () => ui.view.step(-1));
  document.getElementById("zoom-fit").addEventListener("click", () => ui.view.fit());
  stage.addEventListener("mousemove", onPointerMove);
  stage.addEventListener("mouseleave", () => { tooltip.hidden = true; setHot(null); });
}

async function readItem() {
  const res = await api(`/datasets/${encodeURIComponent(dataset)}/item` +
                        `?item_id=${encodeURIComponent(itemId)}`);
  ui.groundTruth = Object.values(res.annotations || {}).flat();
  return res;
}

function startEditor() {
  const historyList = document.getElementById("edit-history");
  ui.editor = new Editor(dataset, {
    item: ui.item, view: ui.view, figure: () => ui.figure,
    groundTruth: () => (layers.gt ? ui.groundTruth : []),
    predictions: () => ui.shown.filter((o) => o.kind === "prediction"),
    hot: () => ui.hot,
    // The tooltip described the labels before the edit (a keyboard edit leaves the
    // pointer where it was): hidden until the pointer moves again.
    reload: async () => {
      await readItem();
      ui.editor.seed(ui.groundTruth);
      draw();
      tooltip.hidden = true;
    },
    changed: () => showHistory(dataset, ui.ref, historyList),
  });
  ui.editor.seed(ui.groundTruth);
  showHistory(dataset, ui.ref, historyList);
  versionTagger(dataset);
}

/** Where this item is in the query's recorded pages, reading pages until it is found. */
async function locate(record) {
  for (let scanned = 0; ; scanned++) {
    for (let p = 0; p < record.pages.length; p++) {
      const i = record.pages[p].ids.indexOf(objectId ?? itemId);
      if (i >= 0) return { p, i };
    }
    if (record.next === null || scanned >= MAX_SCAN_PAGES) return null;
    await readNext(record);
  }
}

async function readNext(record) {
  const first = record.next === undefined;
  const cursor = first ? null : record.next;
  if (objectId) {
    const page = await fetchObjects(dataset, scope, cursor, first, PAGE_SIZE);
    if (first) record.total = page.total ?? null;
    record.pages.push(objectPage(cursor, page.objects));
    record.next = page.next_cursor ?? null;
    saveRecord(dataset, scope, record);
    return;
  }
  const page = await fetchPage(dataset, scope, cursor, first);
  if (first) record.total = page.total ?? null;
  record.pages.push({ cursor, ids: page.items.map((it) => it.id) });
  record.next = page.next_cursor ?? null;
  saveRecord(dataset, scope, record);
}

async function neighbours() {
  const record = loadRecord(dataset, scope);
  const at = await locate(record);
  if (!at) return null;
  const { p, i } = at;
  // An entry of a page: an item id, or an object with its item and run.
  const entry = (page, j) => {
    if (!page || j < 0 || j >= page.ids.length) return null;
    if (!objectId) return page.ids[j];
    return { id: page.ids[j], item: page.items[j], run: page.runs[j] };
  };
  const pages = record.pages;
  let prev = entry(pages[p], i - 1);
  if (prev === null && p > 0) prev = entry(pages[p - 1], pages[p - 1].ids.length - 1);
  let next = entry(pages[p], i + 1);
  if (next === null) {
    if (p + 1 >= pages.length && record.next !== null) await readNext(record);
    next = entry(pages[p + 1], 0);
  }
  const before = record.pages.slice(0, p).reduce((n, pg) => n + pg.ids.length, 0);
  return { prev, next, position: before + i + 1, total: record.total };
}

function setLink(el, to) {
  if (to) {
    el.href = stepHref(to);
    el.removeAttribute("aria-disabled");
  } else {
    el.removeAttribute("href");
    el.setAttribute("aria-disabled", "true");
  }
}

function setLinks() {
  setLink(document.getElementById("prev"), ui.nav && ui.nav.prev);
  setLink(document.getElementById("next"), ui.nav && ui.nav.next);
}

function onKey(e) {
  // Keys typed into a field are the field's; a checkbox keeps ← / → and zoom working.
  if (e.target.closest && e.target.closest("textarea, select, input:not([type=checkbox])")) return;
  if (ui.view && ui.view.handleKey(e)) { e.preventDefault(); return; }
  if (ui.editor && ui.editor.handleKey(e)) { e.preventDefault(); return; }
  if (e.altKey || e.ctrlKey || e.metaKey || e.shiftKey) return;  // Alt+← is the browser's back
  const nav = ui.nav;
  const target = e.key === "ArrowLeft" ? nav && nav.prev
    : e.key === "ArrowRight" ? nav && nav.next : null;
  if (target) location.assign(stepHref(target));
}

async function main() {
  document.getElementById("back-link").href =
    `/datasets/${encodeURIComponent(dataset)}${scopeSearch(scope)}`;
  panel.querySelector("input[data-layer=gt]").checked = layers.gt;
  for (const r of runs) r.input.checked = layers.runs.has(r.name);
  panel.addEventListener("change", (e) => { toggle(e.target); });
  document.addEventListener("keydown", onKey);
  const parts = [scope.query ? `in: ${scope.query}` : "all items"];
  if (scope.slice) {
    const slice = await api(`/slices/${encodeURIComponent(scope.slice)}`).catch(() => null);
    parts.push(`slice ${slice ? slice.name : scope.slice}`);
  }
  document.getElementById("scope").textContent = parts.join(" · ");
  const res = await readItem();
  ui.ref = res.item.reference_id;
  await Promise.all([showImage(res.item),
                     ...runs.filter((r) => layers.runs.has(r.name)).map(showRun)]);
  startEditor();
  draw();
  document.getElementById("metadata").textContent =
    Object.keys(res.item.metadata || {}).length ? JSON.stringify(res.item.metadata, null, 2) : "—";
  // ← / → step through item results, or the objects view's objects (the object this
  // page was opened on named by ?box=; without it, there is nothing to step from).
  ui.nav = scope.target === "objects" && !objectId ? null : await neighbours();
  setLinks();
  if (ui.nav) {
    const { position, total } = ui.nav;
    document.getElementById("position").textContent =
      `${position.toLocaleString()}${total === null ? "" : ` of ${total.toLocaleString()}`}`;
  }
  root.dataset.ready = "true";  // tests wait for this
}

main();

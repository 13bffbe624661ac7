// The item page: the full image with its boxes (hover one for its label, and for a run's
// predictions confidence, IoU and match status), the list of objects, the item's
// metadata, and ← / → through the results of the scope the page was opened from (the
// grid's query, slice and run, kept in the URL).
import { api } from "./api.js";
import { h, labelColor } from "./dom.js";
import { boxOf, figure } from "./overlay.js";
import { fetchPage, loadRecord, overlaysOf, saveRecord } from "./results.js";
import { chosenRun, drawLegend, readScope, scopeSearch } from "./scope.js";

const root = document.getElementById("item-view");
const dataset = root.dataset.dataset;
const itemId = root.dataset.item;
const scope = readScope();
const runSelect = document.getElementById("run");
const tooltip = document.getElementById("tooltip");
// A link shared without the grid's record: read at most this many pages to find the item.
const MAX_SCAN_PAGES = 100;

function pageHref(id, within = scope) {
  return `/datasets/${encodeURIComponent(dataset)}/items/${encodeURIComponent(id)}` +
    scopeSearch(within);
}

function describeGeometry(ann) {
  const b = boxOf(ann);
  if (!b) return ann.type;
  const r = (v) => Math.round(v * 10) / 10;
  return `${ann.type} ${r(b.width)}×${r(b.height)} at (${r(b.x)}, ${r(b.y)})`;
}

function tooltipLines(ann) {
  const lines = [h("strong", {}, ann.label)];
  if (ann.kind === "prediction") lines.push(`prediction of ${ann.run}`);
  if (typeof ann.confidence === "number") lines.push(`confidence ${ann.confidence.toFixed(3)}`);
  if (typeof ann.iou === "number" && ann.status) lines.push(`IoU ${ann.iou.toFixed(3)}`);
  if (ann.status) lines.push(`status ${ann.status.toUpperCase()}`);
  lines.push(describeGeometry(ann));
  for (const [k, v] of Object.entries(ann.metadata || {}).slice(0, 6)) {
    lines.push(`${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`);
  }
  return lines.map((l) => h("div", {}, l));
}

function highlight(annId, on) {
  for (const el of document.querySelectorAll(`[data-annotation="${CSS.escape(annId)}"]`)) {
    el.classList.toggle("hot", on);
  }
}

function render(item, annotations) {
  const stage = document.getElementById("stage");
  const src = `/api/v1/items/${encodeURIComponent(item.id)}/image`;
  const fig = figure(item, src, annotations, { className: "full", alt: item.reference_id });
  stage.replaceChildren(fig);
  const byId = new Map(annotations.map((a) => [a.id, a]));
  fig.addEventListener("mousemove", (e) => {
    const ann = e.target.dataset && byId.get(e.target.dataset.annotation);
    if (!ann) { tooltip.hidden = true; return; }
    tooltip.replaceChildren(...tooltipLines(ann));
    tooltip.hidden = false;
    const box = root.getBoundingClientRect();
    tooltip.style.left = `${e.clientX - box.left + 14}px`;
    tooltip.style.top = `${e.clientY - box.top + 14}px`;
  });
  fig.addEventListener("mouseleave", () => { tooltip.hidden = true; });

  const list = document.getElementById("annotations");
  list.replaceChildren(...annotations.map((ann) => {
    const swatch = h("span", { class: "swatch" });
    swatch.style.background = labelColor(ann.label);
    const status = ann.status ? h("span", { class: `status ${ann.status}` },
                                  ann.status.toUpperCase()) : null;
    const kind = ann.kind === "prediction" ? h("span", { class: "muted" }, "pred") : null;
    const li = h("li", { "data-annotation": ann.id }, swatch,
                 h("span", { class: "label-name" }, ann.label), kind, status,
                 h("span", { class: "muted" }, describeGeometry(ann)));
    li.addEventListener("mouseenter", () => highlight(ann.id, true));
    li.addEventListener("mouseleave", () => highlight(ann.id, false));
    return li;
  }));
  if (!annotations.length) list.append(h("li", { class: "muted" }, "No annotations."));
  document.getElementById("ann-count").textContent = `(${annotations.length})`;
  document.getElementById("metadata").textContent =
    Object.keys(item.metadata || {}).length ? JSON.stringify(item.metadata, null, 2) : "—";
}

/** Where this item is in the query's recorded pages, reading pages until it is found. */
async function locate(record) {
  for (let scanned = 0; ; scanned++) {
    for (let p = 0; p < record.pages.length; p++) {
      const i = record.pages[p].ids.indexOf(itemId);
      if (i >= 0) return { p, i };
    }
    if (record.next === null || scanned >= MAX_SCAN_PAGES) return null;
    await readNext(record);
  }
}

async function readNext(record) {
  const first = record.next === undefined;
  const cursor = first ? null : record.next;
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
  const ids = record.pages[p].ids;
  let prev = i > 0 ? ids[i - 1] : null;
  if (prev === null && p > 0) prev = record.pages[p - 1].ids.at(-1) ?? null;
  let next = i + 1 < ids.length ? ids[i + 1] : null;
  if (next === null) {
    if (p + 1 >= record.pages.length && record.next !== null) await readNext(record);
    next = record.pages[p + 1]?.ids[0] ?? null;
  }
  const before = record.pages.slice(0, p).reduce((n, pg) => n + pg.ids.length, 0);
  return { prev, next, position: before + i + 1, total: record.total };
}

function setLink(el, id) {
  if (id) {
    el.href = pageHref(id);
    el.removeAttribute("aria-disabled");
  } else {
    el.removeAttribute("href");
    el.setAttribute("aria-disabled", "true");
  }
}

async function main() {
  const run = chosenRun(runSelect, scope.run);
  if (!run) scope.run = "";
  drawLegend(document.getElementById("legend"), run);
  runSelect.addEventListener("change", () => {
    location.assign(pageHref(itemId, { ...scope, run: runSelect.value }));
  });
  document.getElementById("back-link").href =
    `/datasets/${encodeURIComponent(dataset)}${scopeSearch(scope)}`;
  const parts = [scope.query ? `in: ${scope.query}` : "all items"];
  if (scope.slice) {
    const slice = await api(`/slices/${encodeURIComponent(scope.slice)}`).catch(() => null);
    parts.push(`slice ${slice ? slice.name : scope.slice}`);
  }
  document.getElementById("scope").textContent = parts.join(" · ");
  const res = await api(`/datasets/${encodeURIComponent(dataset)}/item` +
                        `?item_id=${encodeURIComponent(itemId)}`);
  // With a run, the objects come from an object query, which carries match status.
  const objects = run ? (await overlaysOf(dataset, [res.item], run)).get(res.item.id)
    : Object.values(res.annotations || {}).flat();
  render(res.item, objects);
  // ?box=<annotation or prediction id>: the box a link (an objects-view tile) points at.
  const picked = new URLSearchParams(location.search).get("box");
  for (const el of picked ? document.querySelectorAll(
    `[data-annotation="${CSS.escape(picked)}"]`) : []) el.classList.add("picked");
  // ← / → step through item results; an object query's results are objects.
  const nav = scope.target === "objects" ? null : await neighbours();
  const prevEl = document.getElementById("prev"), nextEl = document.getElementById("next");
  setLink(prevEl, nav && nav.prev);
  setLink(nextEl, nav && nav.next);
  if (nav) {
    const total = nav.total === null ? "" : ` of ${nav.total.toLocaleString()}`;
    document.getElementById("position").textContent = `${nav.position.toLocaleString()}${total}`;
  }
  document.addEventListener("keydown", (e) => {
    if (e.target.closest && e.target.closest("input, textarea")) return;
    const target = e.key === "ArrowLeft" ? nav && nav.prev
      : e.key === "ArrowRight" ? nav && nav.next : null;
    if (target) location.assign(pageHref(target));
  });
  root.dataset.ready = "true";  // tests wait for this
}

main();

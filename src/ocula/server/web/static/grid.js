// The dataset page: query bar, result count, and a grid of thumbnails with their boxes,
// loading the next keyset page as the end of the grid scrolls into view. The sidebar
// scopes the grid to a slice and overlays one run's predictions, coloured by match. The
// toolbar reads the query as an item query (a tile per image) or an object query (a
// tile per object, objects.js), and the Insights tab charts the scope (insights.js); a
// bar's click shows its rows here. The query, slice, run, target and tab live in the URL
// (scope.js), so a reload or a shared link shows the same view. Item results can be
// selected and put into slices (selection.js); the sidebar's metadata facets narrow the
// query (facets.js); recent queries are a dropdown of the query bar (history.js).
import { api, ApiError, quoted } from "./api.js";
import { h, labelColor } from "./dom.js";
import { drawFacets } from "./facets.js";
import { historyMenu, rememberQuery } from "./history.js";
import { drawInsights, resizeCharts } from "./insights.js";
import { fetchObjects, itemsOf, objectTile, orderOf, withOrder } from "./objects.js";
import { figure } from "./overlay.js";
import { andCondition } from "./querytext.js";
import { fetchPage, objectPage, overlaysOf, PAGE_SIZE, saveRecord } from "./results.js";
import { chosenRun, drawLegend, readScope, scopeSearch } from "./scope.js";
import { Selection, fillSliceChooser } from "./selection.js";
import { drawSlices, fetchSlices } from "./slices.js";

const root = document.getElementById("dataset");
const dataset = root.dataset.dataset;
const grid = document.getElementById("grid");
const input = document.getElementById("query");
const status = document.getElementById("query-status");
const countEl = document.getElementById("result-count");
const sentinel = document.getElementById("sentinel");
const slider = document.getElementById("tile-size");
const runSelect = document.getElementById("run");
const legend = document.getElementById("legend");
const sortSelect = document.getElementById("sort");
const gridView = document.getElementById("grid-view");
const insightsView = document.getElementById("insights");
const sliceList = document.getElementById("slices");
const facets = document.getElementById("facets");
const facetNote = document.getElementById("facets-note");
const message = document.getElementById("action-message");
const itemCount = Number(root.dataset.items);
const addSlice = document.getElementById("add-slice");

let state = { scope: readScope(), run: null, record: null, loading: false, shown: 0,
              generation: 0 };

function itemHref(item) {
  return `/datasets/${encodeURIComponent(dataset)}/items/${encodeURIComponent(item.id)}` +
    scopeSearch({ ...state.scope, tab: "" });
}

/** An object's item page, with the object's box named (?box=) to be highlighted; a
 * prediction opens with its own run drawn. */
function objectHref(obj) {
  const params = new URLSearchParams(scopeSearch({
    ...state.scope, tab: "", run: obj.kind === "prediction" ? obj.run : state.scope.run }));
  params.set("box", obj.id);
  return `/datasets/${encodeURIComponent(dataset)}/items/${encodeURIComponent(obj.item_id)}` +
    `?${params}`;
}

function showError(query, err) {
  status.replaceChildren();
  status.className = "query-status error";
  const info = (err.body && err.body.info) || {};
  status.append(h("div", { class: "error-text" }, err.message));
  if (info.line && info.column) {
    // The offending line with a caret under the column the server names.
    const line = query.split("\n")[info.line - 1] ?? "";
    status.append(h("pre", { class: "caret" }, `${line}\n${" ".repeat(info.column - 1)}^`));
  }
}

function showDescription(text, scope) {
  status.className = "query-status ok";
  status.replaceChildren(h("span", { class: "reading" }, text));
  // On a first load the slice list may not be drawn yet: then name the slice the URL gives.
  const chosen = document.querySelector(".slice-filter[aria-pressed=true]");
  if (scope.slice) {
    status.append(h("span", { class: "muted" }, ` In slice ${chosen ? chosen.title : scope.slice}.`));
  }
}

function tile(item, annotations) {
  const size = Number(slider.value) > 224 ? 512 : 256;
  const src = `/api/v1/items/${encodeURIComponent(item.id)}/thumbnail?size=${size}`;
  const fig = figure(item, src, annotations, { alt: item.reference_id });
  return h("div", { class: "tile", "data-item": item.id, "data-ref": item.reference_id,
                    title: item.reference_id },
           h("a", { class: "tile-link", href: itemHref(item) },
             fig, h("span", { class: "caption" }, item.reference_id)),
           h("button", { type: "button", class: "tile-check", role: "checkbox",
                         "aria-checked": "false", "aria-label": `Select ${item.reference_id}`,
                         title: "Select (shift-click: a range; ctrl/cmd-click a tile: toggle)" }));
}

function updateCount() {
  const total = state.record.total;
  const objects = state.scope.target === "objects";
  const word = objects ? (total === 1 ? "object" : "objects")
    : (total === 1 ? "result" : "results");
  countEl.textContent = total === null ? `${state.shown} shown`
    : `${total.toLocaleString()} ${word}` +
      (state.shown < total ? ` · ${state.shown.toLocaleString()} shown` : "");
}

async function loadMore() {
  const rec = state.record;
  if (state.loading || !rec || rec.next === null) return;
  state.loading = true;
  const generation = state.generation;
  try {
    const first = rec.next === undefined;
    const cursor = first ? null : rec.next;
    const objects = state.scope.target === "objects";
    // An object query's total is asked for apart (countObjects): counting the matches
    // of a filter over millions of boxes can take a second, the first tiles do not.
    const page = objects ? await fetchObjects(dataset, state.scope, cursor, false, PAGE_SIZE)
      : await fetchPage(dataset, state.scope, cursor, first);
    const rows = objects ? page.objects : page.items;
    const extra = objects ? await itemsOf(dataset, rows)
      : await overlaysOf(dataset, rows, state.run);
    if (generation !== state.generation) return;  // a newer query replaced this one
    if (first) rec.total = page.total ?? null;
    rec.pages.push(objects ? objectPage(cursor, rows) : { cursor, ids: rows.map((it) => it.id) });
    rec.next = page.next_cursor ?? null;
    // The item page steps through these results: items, or objects where they are.
    saveRecord(dataset, state.scope, rec);
    const px = Number(slider.value);
    const tiles = rows.map((r) => objects
      ? objectTile(r, extra.get(r.item_id), objectHref(r), px)
      : tile(r, extra.get(r.id) || []));
    grid.append(...tiles);
    state.shown += rows.length;
    updateCount();
    selection.refresh(first ? undefined : tiles);
    if (first) showFacets(state.scope, objects ? null : rec.total, generation);
    if (first && objects) countObjects(rec, generation);
    if (!state.shown) {
      grid.append(h("p", { class: "empty" }, objects ? "No objects match." : "No items match."));
    }
  } catch (err) {
    if (generation !== state.generation) return;
    rec.next = null;  // stop here rather than retry on every scroll
    showError(state.scope.query, err);
  } finally {
    if (generation === state.generation) state.loading = false;
  }
  // Still in view (a tall screen, small tiles): keep filling.
  if (generation === state.generation && isVisible(sentinel)) loadMore();
}

/** Fill in the total of an object query's first page once counted. */
async function countObjects(rec, generation) {
  try {
    const page = await fetchObjects(dataset, state.scope, null, true, 1);
    if (generation !== state.generation) return;
    rec.total = page.total ?? null;
    saveRecord(dataset, state.scope, rec);
    updateCount();
    selection.refresh();  // "Select all" needs the total
  } catch {
    // The page itself shows any error of the query; without a total it says "n shown".
  }
}

function isVisible(el) {
  const r = el.getBoundingClientRect();
  return r.top < window.innerHeight + 400;
}

/** Show the sidebar's choices for `scope`: the pressed slice, the run and its legend. */
function showChoices(scope) {
  for (const button of document.querySelectorAll(".slice-filter")) {
    button.setAttribute("aria-pressed", String(button.dataset.slice === scope.slice));
  }
  const run = chosenRun(runSelect, scope.run);
  drawLegend(legend, run);
  return run;
}

/** Show the toolbar's choices for `scope`: tab, Items | Objects, and the sort. */
function showToolbar(scope) {
  const insights = scope.tab === "insights";
  for (const tab of document.querySelectorAll("[data-tab]")) {
    tab.setAttribute("aria-selected", String((tab.dataset.tab === "insights") === insights));
  }
  for (const button of document.querySelectorAll("[data-target]")) {
    button.setAttribute("aria-pressed", String(button.dataset.target === scope.target));
  }
  gridView.hidden = insights;
  insightsView.hidden = !insights;
  sortSelect.parentElement.hidden = scope.target !== "objects";
  const order = orderOf(scope.query);
  const known = [...sortSelect.options].some((o) => o.value === order && !o.dataset.custom);
  const custom = sortSelect.querySelector("[data-custom]");
  custom.hidden = known;
  custom.textContent = known ? "" : `order by ${order}`;
  sortSelect.value = known ? order : "custom";
}

/** The scope's query read the other way: an item query's objects (`item(...)`) or the
 * items that have an object matching an object query (`has(...)`); the sort is dropped,
 * as the other kind may not have its field. */
function switchedQuery(query, target) {
  const condition = withOrder(query, "");
  if (!condition) return "";
  return target === "objects" ? `item(${condition})` : `has(${condition})`;
}

/** An item query for the scope's insights: an object query counts its objects' items. */
function insightsScope(scope) {
  if (scope.target !== "objects" || !scope.query) return scope;
  const condition = withOrder(scope.query, "");
  return { ...scope, query: condition ? `has(${condition})` : "" };
}

async function showInsights(scope, generation) {
  countEl.textContent = "";
  try {
    await drawInsights(insightsView, dataset, insightsScope(scope), (bucket) => {
      // A bar's query already holds the scope (slice and query) it was counted in.
      run({ query: bucket.query, target: bucket.target, tab: "" });
    }, () => generation === state.generation);
    if (generation === state.generation) insightsView.dataset.ready = "true";
  } catch (err) {
    if (generation !== state.generation || !(err instanceof ApiError)) throw err;
    insightsView.replaceChildren();
    showError(scope.query, err);
  }
}

/** Check the scope's query, show its reading or its error, and start its results (or
 * its insights). `changes` are merged into the current scope ({query, slice, run,
 * target, tab}). */
async function run(changes, { push = true } = {}) {
  const scope = { ...state.scope, ...changes };
  const query = scope.query = scope.query.trim();
  input.value = query;
  fitQuery();
  const target = scope.target === "objects" ? "objects" : "items";
  let description = target === "objects"
    ? "All ground-truth annotations, in the order they were added."
    : "All items, in the order they were added.";
  if (query) {
    try {
      description = (await api(`/datasets/${encodeURIComponent(dataset)}/query/describe`,
                               { method: "POST", body: { query, target } })).description;
    } catch (err) {
      if (err instanceof ApiError) { showError(query, err); return; }
      throw err;
    }
  }
  rememberQuery(dataset, query);
  if (scope.query !== state.scope.query || scope.slice !== state.scope.slice ||
      scope.target !== state.scope.target) {
    selection.clear();  // a selection is of one result
    say("");
    // Never the slice in view; in the objects view, object slices.
    fillSliceChooser(addSlice, knownSlices, scope.slice, sliceKind(scope));
  }
  const runChoice = showChoices(scope);
  showDescription(description, scope);
  if (!runChoice) scope.run = "";
  if (push && scopeSearch(scope) !== location.search) {
    history.pushState(scope, "", location.pathname + scopeSearch(scope));
  }
  state = { scope, run: runChoice, record: { pages: [], next: undefined, total: null },
            loading: false, shown: 0, generation: state.generation + 1 };
  showToolbar(scope);
  grid.replaceChildren();
  selection.refresh();  // the bar and "Select all" follow the view (none for objects)
  delete insightsView.dataset.ready;
  if (scope.tab === "insights") {
    await showInsights(scope, state.generation);
    return;
  }
  countEl.textContent = "Loading…";
  await loadMore();
}

/** The metadata facets of `scope`, unless a newer view has replaced it by then. A
 * facet's condition is on items, so in the objects view it is asked of each object's
 * item. */
async function showFacets(scope, total, generation) {
  try {
    await drawFacets({
      el: facets, note: facetNote, dataset, size: itemCount,
      scope: insightsScope(scope), total,
      pick: (condition) => run({ query: andCondition(state.scope.query,
        state.scope.target === "objects" ? `item(${condition})` : condition) }),
      current: () => generation === state.generation,
    });
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    if (generation === state.generation) facetNote.textContent = `unavailable: ${err.message}`;
  }
}

let knownSlices = [];  // as last read from the API

function sliceKind(scope) {
  return scope.target === "objects" ? "object" : "item";
}

/** The slice list and the "Add to slice" chooser, from the API. */
async function refreshSlices() {
  knownSlices = await fetchSlices(dataset);
  drawSlices(sliceList, knownSlices, itemCount, state.scope.slice);
  fillSliceChooser(addSlice, knownSlices, state.scope.slice, sliceKind(state.scope));
  document.getElementById("slice-count").textContent = String(knownSlices.length);
}

function say(text) {
  message.textContent = text;
  message.hidden = !text;
}

const selection = new Selection({
  dataset, grid, bar: document.getElementById("selection-bar"),
  view: () => ({ scope: state.scope, total: state.record ? state.record.total : null,
                 slices: knownSlices }),
  changed: async ({ message: text, rerun }) => {
    say(text);
    await refreshSlices();
    if (rerun) await run({}, { push: false });
  },
});

function setTileSize(px) {
  document.documentElement.style.setProperty("--tile", `${px}px`);
  try { localStorage.setItem("ocula:tile", String(px)); } catch { /* off */ }
}

/** Grow the query box to show the whole query (a link's query is often two lines): a
 * cut-off "order by" would hide why the results come in their order. */
function fitQuery() {
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight + 2, 160)}px`;
}
input.addEventListener("input", fitQuery);

document.getElementById("query-form").addEventListener("submit", (e) => {
  e.preventDefault();
  run({ query: input.value });
});
input.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) {
    e.preventDefault();
    run({ query: input.value });
  }
});
document.getElementById("clear-query").addEventListener("click", () => run({ query: "" }));
for (const button of document.querySelectorAll(".label-filter")) {
  button.addEventListener("click", () => {
    const label = `label = ${quoted(button.dataset.label)}`;
    run({ query: state.scope.target === "objects" ? label : `has(${label})`, tab: "" });
  });
}
for (const tab of document.querySelectorAll("[data-tab]")) {
  tab.addEventListener("click", () => run({ tab: tab.dataset.tab }));
}
for (const button of document.querySelectorAll("[data-target]")) {
  button.addEventListener("click", () => {
    const target = button.dataset.target;
    if (target === state.scope.target) return;
    run({ target, query: switchedQuery(state.scope.query, target) });
  });
}
sortSelect.addEventListener("change", () => {
  if (sortSelect.value !== "custom") run({ query: withOrder(state.scope.query, sortSelect.value) });
});
window.addEventListener("resize", resizeCharts);
sliceList.addEventListener("click", (e) => {
  const button = e.target.closest(".slice-filter");
  if (button) run({ slice: button.dataset.slice });
});
runSelect.addEventListener("change", () => run({ run: runSelect.value }));
for (const swatch of document.querySelectorAll(".swatch")) {
  swatch.style.background = labelColor(swatch.dataset.label);
}
slider.addEventListener("input", () => setTileSize(slider.value));
historyMenu({ dataset, input, toggle: document.getElementById("history-toggle"),
              list: document.getElementById("history"), choose: (query) => run({ query }) });
window.addEventListener("popstate", () => run(readScope(), { push: false }));
new IntersectionObserver((entries) => {
  if (entries.some((e) => e.isIntersecting)) loadMore();
}, { rootMargin: "400px" }).observe(sentinel);

try {
  const saved = Number(localStorage.getItem("ocula:tile"));
  if (saved >= 96 && saved <= 384) slider.value = String(saved);
} catch { /* off */ }
setTileSize(slider.value);
run(readScope(), { push: false });
// The server drew the list; this fills the "Add to slice" chooser (and, should it fail,
// the list as drawn still works).
refreshSlices().catch((err) => { if (!(err instanceof ApiError)) throw err; });

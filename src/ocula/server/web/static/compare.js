// The compare page: two committed runs (A and B) on one scope. The COCO numbers of each
// and their delta, per-class AP / AP50 / AR with deltas (largest change first), and two
// grids: the items B fixes (A wrong, B right) and those it breaks (the reverse), each
// tile drawn with both runs' predictions. The runs and slice live in the URL (?a=, ?b=,
// ?slice=), so a reload or a shared link shows the same comparison.
import { api, ApiError, quoted } from "./api.js";
import { h } from "./dom.js";
import { figure } from "./overlay.js";
import { overlaysOf, queryObjects } from "./results.js";

const root = document.getElementById("compare");
const dataset = root.dataset.dataset;
const selects = { a: document.getElementById("run-a"), b: document.getElementById("run-b") };
const sliceSelect = document.getElementById("slice");
const message = document.getElementById("compare-message");
const body = document.getElementById("compare-body");
const uncommitted = new Set([...document.querySelectorAll("#uncommitted li")]
  .map((li) => li.dataset.name));
const GRID_PAGE = 12;
// What each summary number is (pycocotools' summarize() lines).
const NOTES = {
  AP: "IoU .50:.95", AP50: "IoU .50", AP75: "IoU .75", APs: "small", APm: "medium",
  APl: "large", AR1: "1 detection", AR10: "10 detections", AR100: "100 detections",
  ARs: "small", ARm: "medium", ARl: "large", AR: "IoU .50:.95", AR50: "IoU .50",
  AR75: "IoU .75",
};

let generation = 0;

/** The comparison named by the URL: {a, b, slice} (run names and a slice id). */
function readChoice(search = location.search) {
  const p = new URLSearchParams(search);
  return { a: p.get("a") || "", b: p.get("b") || "", slice: p.get("slice") || "" };
}

function choiceSearch(choice) {
  const p = new URLSearchParams();
  for (const k of ["a", "b", "slice"]) if (choice[k]) p.set(k, choice[k]);
  const text = p.toString();
  return text ? `?${text}` : "";
}

/** The committed run named `name` as {name, id}, or null. */
function runNamed(name) {
  const option = [...selects.a.options].find((o) => o.value === name && name);
  return option ? { name, id: option.dataset.id } : null;
}

/** Why `name` cannot be run `side`, or "" when it can. */
function refusal(side, name) {
  if (!name) return "";
  if (runNamed(name)) return "";
  if (uncommitted.has(name)) {
    return `Run ${side} “${name}” is not committed yet, so it has no matches to compare. ` +
      "Commit it (run.commit() or POST /api/v1/runs/{id}/commit) and reload.";
  }
  return `There is no run “${name}” in this dataset.`;
}

function say(text) {
  message.textContent = text;
  message.hidden = !text;
}

/** A number as the tables show it (three decimals; COCO's -1 means "no such objects"). */
function fmt(value) {
  return typeof value === "number" && value >= 0 ? value.toFixed(3) : "—";
}

/** A delta cell: signed, coloured better (B higher) or worse; blank when either side
 * has no number. */
function deltaCell(delta, a, b) {
  const none = typeof delta !== "number" || !(a >= 0) || !(b >= 0);
  const shown = none ? "—" : (delta >= 0.0005 ? "+" : delta <= -0.0005 ? "−" : "±") +
    Math.abs(delta).toFixed(3);
  const kind = none || Math.abs(delta) < 0.0005 ? "same" : delta > 0 ? "better" : "worse";
  const td = h("td", { class: `num delta ${kind}` }, shown);
  if (!none) td.dataset.value = String(delta);
  return td;
}

function numCell(value) {
  const td = h("td", { class: "num" }, fmt(value));
  if (typeof value === "number") td.dataset.value = String(value);
  return td;
}

/** The summary numbers as columns: one row for A, one for B, one for the delta. */
function drawOverall(diff) {
  const keys = Object.keys(diff.stats_a);
  const table = document.getElementById("overall");
  table.tHead.replaceChildren(h("tr", {}, h("th", {}),
    ...keys.map((k) => h("th", { class: "num", scope: "col" }, k,
      h("span", { class: "note" }, NOTES[k] || "")))));
  const row = (tag, cells) => h("tr", { "data-row": tag }, h("th", { scope: "row" },
    tag === "delta" ? "Δ" : h("span", { class: `tag ${tag}` }, tag.toUpperCase())),
    ...cells.map((td, i) => { td.dataset.metric = keys[i]; return td; }));
  table.tBodies[0].replaceChildren(
    row("a", keys.map((k) => numCell(diff.stats_a[k]))),
    row("b", keys.map((k) => numCell(diff.stats_b[k]))),
    row("delta", keys.map((k) => deltaCell(diff.delta[k], diff.stats_a[k], diff.stats_b[k]))));
}

/** How much a class changed, for the order: the largest of its |Δ|. */
function change(row) {
  return Math.max(...["ap", "ap50", "ar"].map((k) => Math.abs(row.delta[k] ?? 0)));
}

function drawPerClass(diff) {
  const rows = [...diff.per_class].sort((x, y) => change(y) - change(x) ||
    String(x.label).localeCompare(String(y.label)));
  const tbody = document.querySelector("#per-class tbody");
  if (!rows.length) {
    tbody.replaceChildren(h("tr", {}, h("td", { colspan: 8, class: "muted" }, "No classes.")));
    return;
  }
  tbody.replaceChildren(...rows.map((row) => {
    const a = row.a || {}, b = row.b || {};
    const gt = (row.a || row.b || {}).num_ground_truth;
    const tr = h("tr", {}, h("th", { scope: "row", class: "label-cell", title: row.label },
      row.label), h("td", { class: "num muted" }, gt ?? "—"));
    for (const k of ["ap", "ap50", "ar"]) {
      const pair = h("td", { class: "num pair" }, `${fmt(a[k])} → ${fmt(b[k])}`);
      pair.dataset.a = String(a[k] ?? "");
      pair.dataset.b = String(b[k] ?? "");
      tr.append(pair, deltaCell(row.delta[k], a[k], b[k]));
    }
    tr.dataset.label = row.label;
    return tr;
  }));
}

function drawLegend(a, b) {
  const sample = (cls) => h("span", { class: `legend-sample ${cls}` });
  document.getElementById("legend").replaceChildren(
    h("li", { class: "legend-row" }, sample("pred tp"), h("span", {}, "true positive")),
    h("li", { class: "legend-row" }, sample("pred fp"), h("span", {}, "false positive")),
    h("li", { class: "legend-row" }, sample("run-a-line"),
      h("span", {}, "A: ", h("b", {}, a.name), " (solid, wide)")),
    h("li", { class: "legend-row" }, sample("run-b-line"),
      h("span", {}, "B: ", h("b", {}, b.name), " (dashed)")),
    h("li", { class: "legend-row" }, sample("gt plain"), h("span", {}, "ground truth")));
}

/** Both runs' predictions over `items`, with the ground truth (in label colours: the
 * two runs judge it differently), grouped by item id. A's boxes are drawn under B's and
 * wider, so where both put the same box, A shows as a rim round B. */
async function drawnOn(items, a, b) {
  const ids = items.map((it) => `"${it.id}"`).join(", ");
  const preds = (run) => queryObjects(dataset,
    `item(id in [${ids}]) and type = prediction and run = ${quoted(run.name)}`);
  const [byItem, pa, pb] = await Promise.all([overlaysOf(dataset, items), preds(a), preds(b)]);
  for (const p of pa) byItem.get(p.item_id)?.push({ ...p, slot: 0, under: 1 });
  for (const p of pb) byItem.get(p.item_id)?.push({ ...p, slot: 1 });
  return byItem;
}

function itemHref(item, a, b) {
  const p = new URLSearchParams();
  p.append("layers", "gt");
  p.append("layers", `run:${a.name}`);
  p.append("layers", `run:${b.name}`);
  return `/datasets/${encodeURIComponent(dataset)}/items/${encodeURIComponent(item.id)}?${p}`;
}

function tile(item, drawn, a, b) {
  const src = `/api/v1/items/${encodeURIComponent(item.id)}/thumbnail?size=256`;
  return h("div", { class: "tile", "data-item": item.id, "data-ref": item.reference_id,
                    title: item.reference_id },
           h("a", { class: "tile-link", href: itemHref(item, a, b) },
             figure(item, src, drawn, { alt: item.reference_id }),
             h("span", { class: "caption" }, item.reference_id)));
}

/** One of the two grids: pages of compare/items, a "Show more" button for the rest. */
class ItemList {
  constructor(section) {
    this.section = section;
    this.only = section.dataset.only;
    this.grid = section.querySelector(".grid");
    this.more = section.querySelector(".more");
    this.count = section.querySelector(".count");
    this.more.addEventListener("click", () => this.load());
  }

  reset(runs, slice, total, gen) {
    Object.assign(this, { runs, slice, total, gen, cursor: null, shown: 0 });
    this.grid.replaceChildren();
    this.count.textContent = `(${total.toLocaleString()})`;
    this.section.dataset.total = String(total);
    this.more.hidden = true;
    delete this.section.dataset.ready;
    if (!total) {
      this.section.dataset.ready = "true";
      this.grid.append(h("p", { class: "empty" }, this.only === "b"
        ? "None: B gets no item right that A gets wrong."
        : "None: B gets no item wrong that A gets right."));
      return Promise.resolve();
    }
    return this.load();
  }

  async load() {
    const { a, b } = this.runs;
    const gen = this.gen;
    this.more.disabled = true;
    const p = new URLSearchParams({ run_a: a.id, run_b: b.id, only: this.only,
                                    page_size: String(GRID_PAGE) });
    if (this.slice) p.set("slice", this.slice);
    if (this.cursor) p.set("cursor", this.cursor);
    try {
      const page = await api(`/compare/items?${p}`);
      const drawn = await drawnOn(page.items, a, b);
      if (gen !== generation) return;
      this.grid.append(...page.items.map((it) => tile(it, drawn.get(it.id) || [], a, b)));
      this.shown += page.items.length;
      this.cursor = page.next_cursor;
      this.more.hidden = !this.cursor;
      this.more.textContent = `Show more (${(this.total - this.shown).toLocaleString()} left)`;
      this.section.dataset.ready = this.cursor ? "partial" : "true";
    } catch (err) {
      if (gen !== generation || !(err instanceof ApiError)) throw err;
      this.grid.append(h("p", { class: "error" }, err.message));
    } finally {
      this.more.disabled = false;
    }
  }
}

const lists = [new ItemList(document.getElementById("fixed")),
               new ItemList(document.getElementById("broken"))];

/** Show the comparison `choice` names ({a, b, slice}); `push` records it in history. */
async function show(choice, { push = true } = {}) {
  const gen = ++generation;
  selects.a.value = runNamed(choice.a) ? choice.a : "";
  selects.b.value = runNamed(choice.b) ? choice.b : "";
  const known = [...sliceSelect.options].some((o) => o.value === choice.slice);
  sliceSelect.value = known ? choice.slice : "";
  if (push && choiceSearch(choice) !== location.search) {
    history.pushState(choice, "", location.pathname + choiceSearch(choice));
  }
  body.hidden = true;
  delete root.dataset.ready;
  const why = refusal("A", choice.a) || refusal("B", choice.b) ||
    (choice.slice && !known ? `There is no item slice “${choice.slice}” in this dataset.` : "");
  if (why) { say(why); return; }
  if (!choice.a || !choice.b) {
    say(selects.a.options.length < 3
      ? "Comparing needs two committed runs; this dataset has fewer."
      : "Choose run A and run B to compare.");
    return;
  }
  if (choice.a === choice.b) { say("Choose two different runs."); return; }
  const a = runNamed(choice.a), b = runNamed(choice.b);
  say("Comparing…");
  const p = new URLSearchParams({ run_a: a.id, run_b: b.id, limit: "0" });
  if (choice.slice) p.set("slice", choice.slice);
  let diff;
  try {
    diff = await api(`/compare?${p}`);
  } catch (err) {
    if (gen === generation && err instanceof ApiError) say(err.message);
    if (err instanceof ApiError) return;
    throw err;
  }
  if (gen !== generation) return;
  say("");
  drawOverall(diff);
  drawPerClass(diff);
  drawLegend(a, b);
  body.hidden = false;
  await Promise.all([
    lists[0].reset({ a, b }, choice.slice, diff.only_b_right_count, gen),
    lists[1].reset({ a, b }, choice.slice, diff.only_a_right_count, gen),
  ]);
  if (gen === generation) root.dataset.ready = "true";
}

function chosen() {
  return { a: selects.a.value, b: selects.b.value, slice: sliceSelect.value };
}

for (const el of [selects.a, selects.b, sliceSelect]) {
  el.addEventListener("change", () => show(chosen()));
}
document.getElementById("swap").addEventListener("click", () => {
  const c = readChoice();
  show({ ...c, a: c.b, b: c.a });
});
window.addEventListener("popstate", () => show(readChoice(), { push: false }));

// Without runs named, start with the dataset's first two committed runs.
const first = readChoice();
const committed = [...selects.a.options].map((o) => o.value).filter(Boolean);
if (!first.a && !first.b && committed.length >= 2) {
  first.a = committed[0];
  first.b = committed[1];
  history.replaceState(first, "", location.pathname + choiceSearch(first));
}
show(first, { push: false });

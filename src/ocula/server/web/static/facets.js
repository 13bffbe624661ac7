// The sidebar's metadata facets: each top-level metadata field with its most frequent
// values (or, for numbers, its histogram's ranges) and their counts, from the insights
// API. A whole dataset's insights come from running totals (cheap at any size; asked
// for once per page). A slice or query result is counted by scans that evaluate the
// query again, whose cost grows with the dataset, not only with the result: so its own
// counts are asked for only in a small dataset, and otherwise the dataset's counts are
// shown, marked as such.
import { api } from "./api.js";
import { h } from "./dom.js";
import { literal, metadataField } from "./querytext.js";

/** Scoped counts are scanned only for results up to this many items, in datasets up
 * to SCOPED_FACETS_DATASET items. Measured on the 1M-item catalog of
 * benchmarks/query.py (SQLite, 2 shared cores): the insights of a 3,000-5,000-item
 * query result took 10-20 s; whole-dataset insights from the totals, under 1 s. */
export const SCOPED_FACETS_MAX = 5000;
export const SCOPED_FACETS_DATASET = 20000;
const datasetInsights = new Map();  // dataset id -> promise of its insights
const SHOWN = 6;  // values per field before "more"

function format(n) {
  return Number(n).toLocaleString(undefined, { maximumFractionDigits: 2 });
}

/** The facet entries of one field's insights: [{text, count, condition}]. */
function entriesOf(key, info) {
  const field = metadataField(key);
  if (info.type === "numeric") {
    const buckets = info.buckets || [];
    return buckets.map((b, i) => {
      const last = i === buckets.length - 1 || b.max === info.max;
      const text = b.min === b.max ? format(b.min) : `${format(b.min)} – ${format(b.max)}`;
      return { text, count: b.count,
               condition: `${field} >= ${literal(b.min)} and ${field} ${last ? "<=" : "<"} ` +
                          literal(b.max) };
    });
  }
  return (info.values || []).map((v) => ({
    text: v.value === null ? "(none)" : String(v.value), count: v.count,
    condition: `${field} = ${literal(v.value)}`, missing: v.value === null }));
}

function fieldBlock(key, info, pick) {
  const entries = entriesOf(key, info);
  const list = h("ul", { class: "facet-values" }, entries.map((e, i) => h("li", {
    hidden: i >= SHOWN }, h("button", { type: "button", class: "facet-value",
                                        "data-condition": e.condition, title: e.condition },
    h("span", { class: `label-name${e.missing ? " muted" : ""}` }, e.text),
    h("span", { class: "n" }, e.count.toLocaleString())))));
  list.addEventListener("click", (ev) => {
    const button = ev.target.closest(".facet-value");
    if (button) pick(button.dataset.condition);
  });
  const block = h("div", { class: "facet", "data-field": key },
                  h("div", { class: "facet-name", title: key }, key), list);
  if (entries.length > SHOWN) {
    const more = h("button", { type: "button", class: "facet-more quiet" },
                   `${entries.length - SHOWN} more`);
    more.addEventListener("click", () => {
      for (const li of list.children) li.hidden = false;
      more.remove();
    });
    block.append(more);
  }
  return block;
}

/** Draw the facets of `scope` ({query, slice}; `total` items in it, of `size` in the
 * dataset) into `el` and `note`, unless `current()` says another view has replaced
 * it meanwhile; `pick(condition)` runs when a value is clicked. */
export async function drawFacets({ el, note, dataset, size, scope, total, pick, current }) {
  const scoped = Boolean(scope.query || scope.slice) && total !== null &&
    total <= SCOPED_FACETS_MAX && size <= SCOPED_FACETS_DATASET;
  const path = `/datasets/${encodeURIComponent(dataset)}/insights`;
  if (!scoped && !datasetInsights.has(dataset)) {
    datasetInsights.set(dataset, api(path).catch((err) => {
      datasetInsights.delete(dataset);  // asked again next time
      throw err;
    }));
  }
  const result = scoped
    ? await api(path, { method: "POST", body: { query: scope.query || null,
                                                slice: scope.slice || null } })
    : await datasetInsights.get(dataset);
  if (!current()) return;
  const fields = Object.entries(result.metadata || {});
  note.textContent = scoped ? "in these results" : "in dataset";
  el.replaceChildren(...(fields.length
    ? fields.map(([key, info]) => fieldBlock(key, info, pick))
    : [h("p", { class: "muted" }, "No metadata fields.")]));
}

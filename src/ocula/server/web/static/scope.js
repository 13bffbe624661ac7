// What a view shows, kept in the URL so a reload or a shared link shows the same view:
// the query (?q=), the slice that scopes it (?slice=, a slice id), the run whose
// predictions are drawn (?run=, a run name), whether the query is read as an item or an
// object query (?target=objects: one tile per object) and the open tab (?tab=insights).
// The grid and the item page share it.
import { h } from "./dom.js";

/** The scope named by a URL's search string: {query, slice, run, target, tab}. */
export function readScope(search = location.search) {
  const p = new URLSearchParams(search);
  return { query: p.get("q") || "", slice: p.get("slice") || "", run: p.get("run") || "",
           target: p.get("target") === "objects" ? "objects" : "items",
           tab: p.get("tab") === "insights" ? "insights" : "" };
}

/** The search string (with its "?", or "") that names `scope`. */
export function scopeSearch(scope) {
  const p = new URLSearchParams();
  if (scope.query) p.set("q", scope.query);
  if (scope.slice) p.set("slice", scope.slice);
  if (scope.run) p.set("run", scope.run);
  if (scope.target === "objects") p.set("target", "objects");
  if (scope.tab === "insights") p.set("tab", "insights");
  const text = p.toString();
  return text ? `?${text}` : "";
}

/** The run chosen in the page's run chooser as {name, committed}, or null. The chooser
 * lists the dataset's runs as the server rendered them; a ?run= naming no run of the
 * dataset draws no predictions rather than failing the page. */
export function chosenRun(select, name) {
  const option = [...select.options].find((o) => o.value === name && name);
  select.value = option ? name : "";
  return option ? { name, committed: option.dataset.committed === "true" } : null;
}

// What each overlay style means: [class of the sample, text].
const COMMITTED = [
  ["pred tp", "prediction, true positive"],
  ["pred fp", "prediction, false positive"],
  ["gt fn", "ground truth missed (FN)"],
  ["gt tp", "ground truth matched"],
];
const UNCOMMITTED = [
  ["pred unmatched", "prediction (run not committed: no match yet)"],
  ["gt plain", "ground truth (colour per label)"],
];

/** Fill the legend `el` for `runs`: one run ({name, committed}) or several drawn at
 * once (hidden when none is). With a committed run, ground truth is coloured by match. */
export function drawLegend(el, runs) {
  const shown = [].concat(runs || []);
  el.hidden = !shown.length;
  const committed = shown.some((r) => r.committed);
  const rows = committed ? [...COMMITTED] : [];
  if (shown.some((r) => !r.committed)) {
    rows.push(...UNCOMMITTED.filter(([cls]) => !(committed && cls === "gt plain")));
  }
  el.replaceChildren(...rows.map(([cls, text]) =>
    h("li", { class: "legend-row" }, h("span", { class: `legend-sample ${cls}` }),
      h("span", {}, text))));
}

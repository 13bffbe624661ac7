// The run pages' scope: the items the metrics are computed on (?slice=, an item slice's
// id, and/or ?q=, an item query; neither: every item) and the label version of the
// ground truth (?version=; none: the current labels). They live in the URL, so a reload
// or a shared link shows the same numbers; the scope bar (scope_bar.html) changes them.
const KEYS = { slice: "slice", version: "version", query: "q" };

/** {slice, version} named by the URL's search string. */
export function readRunScope(search = location.search) {
  const p = new URLSearchParams(search);
  return { slice: p.get("slice") || "", version: p.get("version") || "",
           query: p.get("q") || "" };
}

/** The search string of a run page for `scope` (other parameters of the URL kept). */
export function pageSearch(scope, search = location.search) {
  const p = new URLSearchParams(search);
  for (const [key, param] of Object.entries(KEYS)) {
    if (scope[key]) p.set(param, scope[key]); else p.delete(param);
  }
  const text = p.toString();
  return text ? `?${text}` : "";
}

/** The API parameters of `scope` (slice, query, annotation_version), as a search string. */
export function apiSearch(scope, extra = {}) {
  const p = new URLSearchParams();
  if (scope.slice) p.set("slice", scope.slice);
  if (scope.query) p.set("query", scope.query);
  if (scope.version) p.set("annotation_version", scope.version);
  for (const [k, v] of Object.entries(extra)) p.set(k, v);
  const text = p.toString();
  return text ? `?${text}` : "";
}

/** Keep the scope bar's selects and the URL in step and call `show(scope)` for the
 * scope of the URL now and after every change (a choice, or ← / →). A URL naming a
 * slice or version the page does not list is shown as it is asked for, so the API
 * answers (a clear 404) instead of the page silently scoring something else. */
export function bindScopeBar(show) {
  const selects = { slice: document.getElementById("scope-slice"),
                    version: document.getElementById("scope-version") };
  const input = document.getElementById("scope-query");
  const choose = (scope) => {
    history.pushState(null, "", location.pathname + pageSearch(scope));
    sync();
  };
  const sync = () => {
    const scope = readRunScope();
    input.value = scope.query;
    for (const [key, select] of Object.entries(selects)) {
      if (!select) continue;
      if (scope[key] && ![...select.options].some((o) => o.value === scope[key])) {
        select.append(new Option(`${scope[key]} (unknown)`, scope[key]));
      }
      select.value = scope[key];
    }
    show(scope);
  };
  for (const select of Object.values(selects)) {
    if (!select) continue;
    select.addEventListener("change", () => choose({
      ...readRunScope(), slice: selects.slice.value, version: selects.version.value }));
  }
  document.getElementById("scope-bar").addEventListener("submit", (event) => {
    event.preventDefault();
    choose({ ...readRunScope(), query: input.value.trim() });
  });
  window.addEventListener("popstate", sync);
  sync();
}

/** The dataset page showing the objects a query selects (the patches view), with the
 * run's predictions drawn and the page's slice as scope. */
export function patchesHref(dataset, query, run, slice) {
  const p = new URLSearchParams({ target: "objects", q: query, run });
  if (slice) p.set("slice", slice);
  return `/datasets/${encodeURIComponent(dataset)}?${p}`;
}

/** A metric as text: three decimals, or "—" where COCO gives -1 (nothing to score). */
export function metric(value) {
  return value === null || value === undefined || value < 0 ? "—" : value.toFixed(3);
}

// The sidebar's slice list, drawn again from the API after the page changes a slice
// (the first drawing is the server's, templates/slices.html; this one matches it).
import { api } from "./api.js";
import { h } from "./dom.js";

/** The dataset's slices from the API. */
export async function fetchSlices(dataset) {
  return api(`/datasets/${encodeURIComponent(dataset)}/slices`);
}

/** Fill the list `ul` with "All items" (`itemCount`) and `slices`; `chosen` is pressed. */
export function drawSlices(ul, slices, itemCount, chosen) {
  const entry = (id, name, n) => h("li", {}, h("button", {
    type: "button", class: "slice-filter", "data-slice": id, title: id ? name : null,
    "aria-pressed": String(id === chosen),
  }, h("span", { class: "label-name" }, name), h("span", { class: "n" }, n.toLocaleString())));
  ul.replaceChildren(entry("", "All items", itemCount), ...slices.map((s) => s.kind === "item"
    ? entry(s.id, s.name, s.length)
    : h("li", { class: "muted object-slice",
                title: "An object slice: query its objects from Python or the API" },
        h("span", { class: "label-name" }, s.name),
        h("span", { class: "n" }, `${s.length.toLocaleString()} objects`))));
}

// The run page's "Compare label versions" panel: the run scored against two versions of
// the ground truth side by side (the Nucleus tutorial's original-versus-corrected table;
// `run.version_table` in Python), on the page's scope (slice, item query), with the
// difference B − A. The two versions live in the URL (?vs=A,B; "current": the labels
// as they are now), so a reload or a shared link shows the same table.
import { api } from "./api.js";
import { h } from "./dom.js";
import { apiSearch, metric } from "./runscope.js";

const RATIOS = [["AP", "stats"], ["AP50", "stats"], ["AR100", "stats"],
                ["precision", "point"], ["recall", "point"], ["f1", "point"]];
const COUNTS = ["tp", "fp", "fn"];
const CURRENT = "current";

/** The two versions of the URL (?vs=A,B), or the selects' defaults. */
export function readVs(search = location.search) {
  const raw = new URLSearchParams(search).get("vs");
  const parts = raw ? raw.split(",") : [];
  return parts.length === 2 && parts.every(Boolean) ? parts : null;
}

function values(m) {
  const point = m.operating_point;
  const out = {};
  for (const [key, from] of RATIOS) out[key] = from === "stats" ? m.stats[key] : point[key];
  for (const key of COUNTS) out[key] = point[key];
  return out;
}

function signed(value, digits) {
  const text = digits ? Math.abs(value).toFixed(digits) : Math.abs(value).toLocaleString();
  return value > 0 ? `+${text}` : value < 0 ? `−${text}` : digits ? (0).toFixed(digits) : "0";
}

function row(name, key, cells) {
  return h("tr", { "data-row": key }, h("th", { scope: "row" }, name),
           ...cells.map(([k, text]) => h("td", { class: "num", "data-key": k }, text)));
}

function optionText(select, value) {
  const o = [...select.options].find((x) => x.value === value);
  return o ? o.text : `Version ${value}`;
}

/** Draw the table for the page's `scope` and the versions of the URL. */
export async function showVersions(scope, isCurrent) {
  const panel = document.getElementById("versions-panel");
  const [a, b] = [document.getElementById("vs-a"), document.getElementById("vs-b")];
  if (!panel || !a || !b) return;  // no label versions to compare (the panel says so)
  const vs = readVs() || [a.dataset.default, b.dataset.default];
  for (const [select, value] of [[a, vs[0]], [b, vs[1]]]) {
    if (![...select.options].some((o) => o.value === value)) {
      select.append(new Option(`${value} (unknown)`, value));
    }
    select.value = value;
  }
  const note = document.getElementById("versions-note");
  const tbody = document.querySelector("#versions-table tbody");
  const runId = document.getElementById("run-page").dataset.runId;
  try {
    const ms = await Promise.all(vs.map((v) => api(
      `/runs/${encodeURIComponent(runId)}/metrics` +
      apiSearch({ slice: scope.slice, query: scope.query, version: v === CURRENT ? "" : v }))));
    if (!isCurrent()) return;
    const [va, vb] = ms.map(values);
    const cells = (v) => [...RATIOS.map(([k]) => [k, metric(v[k])]),
                          ...COUNTS.map((k) => [k, v[k].toLocaleString()])];
    // A ratio COCO marks -1 (nothing to score) has no difference.
    const diff = [...RATIOS.map(([k]) => [k, va[k] < 0 || vb[k] < 0 ? "—" : signed(vb[k] - va[k], 3)]),
                  ...COUNTS.map((k) => [k, signed(vb[k] - va[k], 0)])];
    tbody.replaceChildren(row(`A · ${optionText(a, vs[0])}`, "a", cells(va)),
                          row(`B · ${optionText(b, vs[1])}`, "b", cells(vb)),
                          row("B − A", "diff", diff));
    note.className = "muted chart-note";
    note.textContent = "AP: IoU .50:.95; precision, recall, F1 and counts at IoU 0.5, " +
      "confidence ≥ 0.5; on the scope chosen above. For counts, more FP or FN is worse.";
    panel.dataset.loaded = `${scope.slice}|${scope.query}|${vs.join(",")}`;
  } catch (err) {
    if (!isCurrent()) return;
    tbody.replaceChildren();
    note.className = "chart-note error";
    note.textContent = err.message;
  }
}

/** Keep the two selects and ?vs= in step; `redraw()` shows the table again. */
export function bindVersions(redraw) {
  const [a, b] = [document.getElementById("vs-a"), document.getElementById("vs-b")];
  if (!a || !b) return;
  const choose = () => {
    const p = new URLSearchParams(location.search);
    p.set("vs", `${a.value},${b.value}`);
    history.pushState(null, "", `${location.pathname}?${p}`);
    redraw();
  };
  a.addEventListener("change", choose);
  b.addEventListener("change", choose);
}

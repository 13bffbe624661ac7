// The item page's layers: the ground truth and each run of the dataset, each shown or
// hidden, several runs at once. Which are shown lives in the URL as repeated `layers=`
// values (`gt`, `run:<name>`), so a reload or a shared link shows the same view; without
// `layers=` the page shows the ground truth and the grid's run (`run=`), if any.
import { quoted } from "./api.js";
import { queryObjects } from "./results.js";

const GT = "gt";
const RUN = "run:";

/** The runs listed in the page's layer panel: [{name, committed, slot, input}]. The slot
 * (the run's place among the dataset's committed, or uncommitted, runs) picks its line
 * style, so a run keeps its look whichever other runs are shown, and the first of each
 * kind looks as it does in the grid and the legend. */
export function layerRuns(panel) {
  return [...panel.querySelectorAll("input[data-run]")].map((input) => ({
    name: input.dataset.run, committed: input.dataset.committed === "true",
    slot: Number(input.dataset.slot), input,
  }));
}

/** The shown layers named by `search`: {gt: bool, runs: Set of run names}. */
export function readLayers(search, runs, scopeRun) {
  const p = new URLSearchParams(search);
  const known = new Set(runs.map((r) => r.name));
  if (!p.has("layers")) {
    return { gt: true, runs: new Set(known.has(scopeRun) ? [scopeRun] : []) };
  }
  const values = p.getAll("layers");
  const named = values.filter((v) => v.startsWith(RUN)).map((v) => v.slice(RUN.length));
  return { gt: values.includes(GT), runs: new Set(named.filter((n) => known.has(n))) };
}

/** The `layers=` parameters (with a leading "&", or "") naming `layers`; none when they
 * are what the page shows without them. */
export function layersParams(layers, runs, scopeRun) {
  const fallback = readLayers("", runs, scopeRun);
  const same = layers.gt === fallback.gt && layers.runs.size === fallback.runs.size &&
    [...layers.runs].every((n) => fallback.runs.has(n));
  if (same) return "";
  const p = new URLSearchParams();
  if (layers.gt) p.append("layers", GT);
  // An empty value says "nothing shown", which no layers= at all would not.
  if (!layers.gt && !layers.runs.size) p.append("layers", "");
  for (const r of runs) if (layers.runs.has(r.name)) p.append("layers", RUN + r.name);
  return `&${p}`;
}

/** What one run adds to item `itemId`: its predictions and, for a committed run, the
 * match of each ground-truth object ({id: {status, iou}}). */
export async function loadRun(dataset, itemId, run) {
  const scope = `item(id = "${itemId}")`;
  const preds = queryObjects(dataset, `${scope} and type = prediction and run = ${quoted(run.name)}`);
  // In an annotation query, run = "name" picks whose match status is read (an error
  // for an uncommitted run, which has none).
  const gt = run.committed
    ? queryObjects(dataset, `${scope} and type = annotation and run = ${quoted(run.name)}`)
    : Promise.resolve([]);
  const [predictions, matched] = await Promise.all([preds, gt]);
  const matches = new Map(matched.map((o) => [o.id, { status: o.status, iou: o.iou }]));
  return { predictions: predictions.map((p) => ({ ...p, slot: run.slot })), matches };
}

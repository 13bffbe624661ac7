// The pages of one scope's results, shared by the grid and the item page: the grid
// records each page it loads (its cursor and item ids) in sessionStorage, so the item
// page can step to the previous or next result, across page boundaries, without asking
// for the pages again. Keyset cursors only go forward, so the record starts at page 1.
import { api, quoted } from "./api.js";

export const PAGE_SIZE = 60;

function storageKey(dataset, scope) {
  // The run only changes what is drawn, not which items match: not part of the key.
  const target = scope.target === "objects" ? "objects" : "items";
  return `ocula:results:${dataset}:${target}:${scope.slice || ""}:${scope.query}`;
}

/** The recorded pages of a scope: {pages: [{cursor, ids}], next, total}. The objects
 * view's pages also hold each object's item id (`items`) and, for a prediction, its
 * run (`runs`), so the item page can open the next object where it is. */
export function loadRecord(dataset, scope) {
  try {
    const raw = sessionStorage.getItem(storageKey(dataset, scope));
    if (raw) return JSON.parse(raw);
  } catch { /* storage off or corrupt: start again */ }
  return { pages: [], next: undefined, total: null };
}

export function saveRecord(dataset, scope, record) {
  try {
    sessionStorage.setItem(storageKey(dataset, scope), JSON.stringify(record));
  } catch { /* full or off: navigation falls back to reading pages again */ }
}

/** One page of item results of a scope (POST .../query/items). */
export async function fetchPage(dataset, scope, cursor, withTotal = false, size = PAGE_SIZE) {
  return api(`/datasets/${encodeURIComponent(dataset)}/query/items`, {
    method: "POST",
    body: { query: scope.query, slice: scope.slice || null, page_size: size,
            cursor: cursor || null, with_total: withTotal },
  });
}

/** Every object matching an object query, reading all its pages. */
export async function queryObjects(dataset, query) {
  const out = [];
  let cursor = null;
  do {
    const page = await api(`/datasets/${encodeURIComponent(dataset)}/query/objects`, {
      method: "POST", body: { query, page_size: 10000, cursor },
    });
    out.push(...page.objects);
    cursor = page.next_cursor;
  } while (cursor);
  return out;
}

async function objects(dataset, query, byItem) {
  for (const obj of await queryObjects(dataset, query)) {
    const list = byItem.get(obj.item_id);
    if (list) list.push(obj);
  }
}

/** What to draw over `items`, grouped by item id: the ground truth and, with a `run`
 * ({name, committed}), that run's predictions. A committed run's match rows give each
 * object its status (predictions TP/FP, ground truth TP/FN) and IoU; an uncommitted
 * run has none. Item ids are Ocula's own, so they need no escaping beyond quotes. */
export async function overlaysOf(dataset, items, run = null) {
  const byItem = new Map(items.map((it) => [it.id, []]));
  if (!items.length) return byItem;
  const scope = `item(id in [${items.map((it) => `"${it.id}"`).join(", ")}])`;
  // In an annotation query, run = "name" picks whose match status is read (and is an
  // error for an uncommitted run, which has none).
  const gt = `${scope} and type = annotation` +
    (run && run.committed ? ` and run = ${quoted(run.name)}` : "");
  const gtByItem = new Map(items.map((it) => [it.id, []]));
  const jobs = [objects(dataset, gt, gtByItem)];
  if (run) jobs.push(objects(dataset, `${scope} and type = prediction and run = ${quoted(run.name)}`,
                             byItem));
  await Promise.all(jobs);
  // Ground truth first, so predictions are drawn on top of it. Without a run named, the
  // server reads ground-truth status from the dataset's only committed run: not the
  // chosen one, so it is dropped.
  const own = run && run.committed;
  for (const [id, list] of byItem) {
    list.unshift(...gtByItem.get(id).map((o) => own ? o : { ...o, status: null, iou: null }));
  }
  return byItem;
}

/** A page's record entry from the objects view's rows. */
export function objectPage(cursor, rows) {
  return { cursor, ids: rows.map((o) => o.id), items: rows.map((o) => o.item_id),
           runs: rows.map((o) => (o.kind === "prediction" ? o.run ?? null : null)) };
}

// The pages of one query's results, shared by the grid and the item page: the grid
// records each page it loads (its cursor and item ids) in sessionStorage, so the item
// page can step to the previous or next result, across page boundaries, without asking
// for the pages again. Keyset cursors only go forward, so the record starts at page 1.
import { api } from "./api.js";

export const PAGE_SIZE = 60;

function storageKey(dataset, query) {
  return `ocula:results:${dataset}:${query}`;
}

/** The recorded pages of `query`: {pages: [{cursor, ids}], next, total}. */
export function loadRecord(dataset, query) {
  try {
    const raw = sessionStorage.getItem(storageKey(dataset, query));
    if (raw) return JSON.parse(raw);
  } catch { /* storage off or corrupt: start again */ }
  return { pages: [], next: undefined, total: null };
}

export function saveRecord(dataset, query, record) {
  try {
    sessionStorage.setItem(storageKey(dataset, query), JSON.stringify(record));
  } catch { /* full or off: navigation falls back to reading pages again */ }
}

/** One page of item results (POST .../query/items). */
export async function fetchPage(dataset, query, cursor, withTotal = false, size = PAGE_SIZE) {
  return api(`/datasets/${encodeURIComponent(dataset)}/query/items`, {
    method: "POST",
    body: { query, page_size: size, cursor: cursor || null, with_total: withTotal },
  });
}

/** The ground-truth annotations of `items`, grouped by item id: one object query over
 * the page's item ids (ids are Ocula's own, so they need no escaping beyond quotes). */
export async function annotationsOf(dataset, items) {
  const byItem = new Map(items.map((it) => [it.id, []]));
  if (!items.length) return byItem;
  const query = `item(id in [${items.map((it) => `"${it.id}"`).join(", ")}])`;
  let cursor = null;
  do {
    const page = await api(`/datasets/${encodeURIComponent(dataset)}/query/objects`, {
      method: "POST", body: { query, page_size: 10000, cursor },
    });
    for (const obj of page.objects) {
      const list = byItem.get(obj.item_id);
      if (list) list.push(obj);
    }
    cursor = page.next_cursor;
  } while (cursor);
  return byItem;
}

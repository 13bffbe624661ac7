// A dataset's runs with their headline numbers (COCO AP, AP50, AP75, AR100, and TP / FP /
// FN at confidence 0.5) on the scope of the URL (runscope.js). An uncommitted run shows
// a note instead of numbers.
import { api } from "./api.js";
import { h } from "./dom.js";
import { apiSearch, bindScopeBar, metric, pageSearch } from "./runscope.js";

const status = document.getElementById("list-status");
const rows = [...document.querySelectorAll(".run-row[data-committed=true]")];
const runLinks = [...document.querySelectorAll(".run-link")];
let generation = 0;

async function show(scope) {
  const mine = ++generation;
  status.className = "query-status";
  status.replaceChildren();
  // The run pages keep the scope: carry it on the links.
  for (const a of runLinks) a.search = pageSearch(scope, "");
  for (const row of rows) {
    for (const cell of row.querySelectorAll(".stat")) cell.textContent = "…";
  }
  for (const row of rows) {
    try {
      const m = await api(`/runs/${encodeURIComponent(row.dataset.runId)}/metrics` +
                          apiSearch(scope));
      if (mine !== generation) return;
      const op = m.operating_point;
      const values = { ...m.stats, tp: op.tp, fp: op.fp, fn: op.fn };
      for (const cell of row.querySelectorAll(".stat")) {
        const v = values[cell.dataset.key];
        cell.textContent = ["tp", "fp", "fn"].includes(cell.dataset.key)
          ? Number(v).toLocaleString() : metric(v);
      }
    } catch (err) {
      if (mine !== generation) return;
      status.className = "query-status error";
      status.replaceChildren(h("span", {}, err.message));
      for (const cell of row.querySelectorAll(".stat")) cell.textContent = "—";
    }
  }
}

bindScopeBar(show);

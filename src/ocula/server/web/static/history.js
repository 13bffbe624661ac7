// Recent queries of a dataset, newest first, kept in this browser (localStorage): a
// dropdown under the query bar; choosing one runs it.
import { h } from "./dom.js";

export const HISTORY_SIZE = 20;

function key(dataset) {
  return `ocula:history:${dataset}`;
}

/** The dataset's recent queries, newest first. */
export function recentQueries(dataset) {
  try {
    const list = JSON.parse(localStorage.getItem(key(dataset)) || "[]");
    return Array.isArray(list) ? list.filter((q) => typeof q === "string") : [];
  } catch {
    return [];  // storage off or corrupt: no history
  }
}

/** Put `query` first in the dataset's history (once; at most HISTORY_SIZE kept). */
export function rememberQuery(dataset, query) {
  if (!query) return;
  const list = [query, ...recentQueries(dataset).filter((q) => q !== query)];
  try {
    localStorage.setItem(key(dataset), JSON.stringify(list.slice(0, HISTORY_SIZE)));
  } catch { /* full or off: nothing remembered */ }
}

/** Wire the dropdown: `toggle` opens `list` (as ArrowDown does in a one-line `input`);
 * choosing an entry calls `choose(query)`. */
export function historyMenu({ dataset, input, toggle, list, choose }) {
  const entries = () => [...list.querySelectorAll(".history-entry")];
  const close = () => { list.hidden = true; toggle.setAttribute("aria-expanded", "false"); };
  const open = (focusFirst) => {
    const queries = recentQueries(dataset);
    list.replaceChildren(...(queries.length
      ? queries.map((q) => h("li", {}, h("button", {
        type: "button", class: "history-entry", role: "option", title: q }, q)))
      : [h("li", { class: "muted history-empty" }, "No recent queries yet.")]));
    list.hidden = false;
    toggle.setAttribute("aria-expanded", "true");
    if (focusFirst) entries()[0]?.focus();
  };
  toggle.addEventListener("click", () => (list.hidden ? open(false) : close()));
  input.addEventListener("keydown", (e) => {
    if (e.key === "ArrowDown" && !input.value.includes("\n")) {
      e.preventDefault();
      open(true);
    }
  });
  list.addEventListener("click", (e) => {
    const entry = e.target.closest(".history-entry");
    if (!entry) return;
    close();
    choose(entry.textContent);
  });
  list.addEventListener("keydown", (e) => {
    const all = entries();
    const at = all.indexOf(document.activeElement);
    if (e.key === "Escape") { e.stopPropagation(); close(); input.focus(); }
    else if (e.key === "ArrowDown" && at >= 0) { e.preventDefault(); all[Math.min(at + 1, all.length - 1)].focus(); }
    else if (e.key === "ArrowUp") {
      e.preventDefault();
      if (at > 0) all[at - 1].focus(); else { close(); input.focus(); }
    }
  });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape" && !list.hidden) close(); });
  document.addEventListener("click", (e) => {
    if (!list.hidden && !list.contains(e.target) && !toggle.contains(e.target)) close();
  });
}

// The item page's record of label edits (GET .../item/history, newest first: who, when,
// what, the label before and after) and the "tag labels as version" form, which names
// the dataset's newest label version (POST /datasets/{ds}/versions).
import { api } from "./api.js";
import { h } from "./dom.js";

const SHOWN = 50;

function when(iso) {
  const t = new Date(iso);
  return Number.isNaN(t.getTime()) ? iso : t.toLocaleString();
}

function change(entry) {
  const before = entry.before ? entry.before.label : null;
  const after = entry.after ? entry.after.label : null;
  if (before !== null && after !== null && before !== after) return `${before} → ${after}`;
  if (before === null && after !== null) return `→ ${after}`;
  if (after === null && before !== null) return `${before} →`;
  return after ?? before ?? "";
}

function pointCount(ann) {
  const v = ann.geometry && ann.geometry.vertices;
  return Array.isArray(v) ? v.length : null;
}

const OPS = { add: "added", update: "changed", delete: "deleted", restore: "restored",
              accept_prediction: "accepted prediction" };

function row(entry) {
  let what = OPS[entry.op] || entry.op;
  if (entry.op === "update" && entry.before && entry.after) {
    const moved = JSON.stringify(entry.before.geometry) !== JSON.stringify(entry.after.geometry);
    const relabelled = entry.before.label !== entry.after.label;
    // A polygon or line: how many points it had and has, when a point came or went.
    const was = pointCount(entry.before), is = pointCount(entry.after);
    const reshaped = was === null || is === null ? "moved/resized"
      : was === is ? "moved/reshaped" : `points ${was} → ${is}`;
    what = [relabelled && "relabelled", moved && reshaped].filter(Boolean).join(", ") || what;
  }
  return h("li", { "data-version": entry.version, "data-op": entry.op },
           h("div", { class: "hist-line" }, h("strong", {}, what), " ",
             h("span", { class: "label-name hist-change" }, change(entry))),
           h("div", { class: "muted" }, `${entry.author} · ${when(entry.created_at)} · v${entry.version}`),
           entry.prediction_id ? h("div", { class: "muted mono" }, `from ${entry.prediction_id}`) : null,
           entry.message ? h("div", { class: "muted" }, entry.message) : null);
}

/** Show the item's edit history in `list`. */
export async function showHistory(dataset, referenceId, list) {
  try {
    const entries = await api(`/datasets/${encodeURIComponent(dataset)}/item/history` +
                              `?reference_id=${encodeURIComponent(referenceId)}&limit=${SHOWN}`);
    list.replaceChildren(...entries.map(row));
    if (!entries.length) list.append(h("li", { class: "muted" }, "No edits yet."));
  } catch (err) {
    list.replaceChildren(h("li", { class: "error" }, `History unavailable: ${err.message}`));
  }
}

/** Wire the "Tag labels as version…" button: it opens a name field; Enter tags. */
export function versionTagger(dataset) {
  const open = document.getElementById("tag-open");
  const form = document.getElementById("tag-form");
  const name = document.getElementById("tag-name");
  const status = document.getElementById("tag-status");
  const say = (text, kind) => {
    status.textContent = text;
    status.className = `tag-status ${kind}`;
    status.hidden = !text;
  };
  open.addEventListener("click", () => {
    form.hidden = false;
    say("", "");
    name.focus();
  });
  name.addEventListener("keydown", (e) => {
    if (e.key === "Escape") { form.hidden = true; e.stopPropagation(); }
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const value = name.value.trim();
    if (!value) { say("A name is needed.", "error"); return; }
    try {
      const tag = await api(`/datasets/${encodeURIComponent(dataset)}/versions`,
                            { method: "POST", body: { name: value } });
      say(`Tagged version ${tag.version} as “${tag.name ?? value}”.`, "ok");
      form.hidden = true;
      name.value = "";
    } catch (err) {
      say(`Not tagged: ${err.message}`, "error");
    }
  });
}

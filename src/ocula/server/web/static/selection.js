// Selecting results on the grid, and what can be done with a selection. A tile's check
// box (shown on hover and once something is selected) or a ctrl/cmd-click toggles it,
// shift-click selects the range from the last tile clicked; a plain click on the image
// still opens the item. "Select all results" selects the whole result of the query, not
// only the tiles loaded: its actions send the query (and slice) and the server picks
// the items, so a million results never travel as ids.
import { api, ApiError } from "./api.js";

const enc = encodeURIComponent;

export class Selection {
  /** `view()` gives the grid's {scope, total}; `changed(what)` runs after a write, with
   * {message, rerun} (rerun: the grid's own items changed). */
  constructor({ dataset, grid, bar, view, changed }) {
    Object.assign(this, { dataset, grid, bar, view, changed });
    this.all = false;
    this.picked = new Map();  // item id -> reference id, in the order picked
    this.anchor = null;  // the item id a shift-click ranges from
    this.el = (id) => document.getElementById(id);
    grid.addEventListener("click", (e) => this.onClick(e));
    // Shift-click would also select the captions' text.
    grid.addEventListener("mousedown", (e) => { if (e.shiftKey) e.preventDefault(); });
    this.el("select-all").addEventListener("click", () => this.selectAll());
    this.el("sel-clear").addEventListener("click", () => this.clear());
    this.el("sel-new").addEventListener("click", () => this.askName());
    this.el("new-slice-cancel").addEventListener("click", () => this.closeName());
    this.el("new-slice-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.createSlice(this.el("new-slice-name").value);
    });
    this.el("sel-add").addEventListener("click", () => this.addTo(this.el("add-slice").value));
    this.el("sel-remove").addEventListener("click", () => this.removeFromScope());
    document.addEventListener("keydown", (e) => {
      // Escape clears the selection, unless it is meant for a field or a menu.
      if (e.key !== "Escape" || !this.count || e.target.closest("input, textarea, select, .history")) return;
      this.clear();
    });
  }

  get count() {
    return this.all ? (this.view().total ?? 0) : this.picked.size;
  }

  // Only item tiles: a selection makes an item slice, and the objects view has none.
  tiles() {
    return [...this.grid.querySelectorAll(".tile:not(.object-tile)")];
  }

  onClick(e) {
    const tile = e.target.closest(".tile:not(.object-tile)");
    if (!tile) return;
    const onCheck = e.target.closest(".tile-check");
    if (!onCheck && !e.shiftKey && !e.ctrlKey && !e.metaKey) return;  // opens the item
    e.preventDefault();
    if (e.shiftKey && this.anchor) this.selectRange(tile);
    else this.toggle(tile);
    this.anchor = tile.dataset.item;
  }

  toggle(tile) {
    if (this.all) this.leaveAll();
    const id = tile.dataset.item;
    if (this.picked.has(id)) this.picked.delete(id);
    else this.picked.set(id, tile.dataset.ref);
    this.refresh();
  }

  selectRange(tile) {
    if (this.all) this.leaveAll();
    const tiles = this.tiles();
    const from = tiles.findIndex((t) => t.dataset.item === this.anchor);
    const to = tiles.indexOf(tile);
    if (from < 0) { this.toggle(tile); return; }
    for (const t of tiles.slice(Math.min(from, to), Math.max(from, to) + 1)) {
      this.picked.set(t.dataset.item, t.dataset.ref);
    }
    this.refresh();
  }

  /** From "all results" to the tiles loaded so far (one of them is being unticked). */
  leaveAll() {
    this.all = false;
    this.picked = new Map(this.tiles().map((t) => [t.dataset.item, t.dataset.ref]));
  }

  selectAll() {
    this.all = true;
    this.picked.clear();
    this.refresh();
  }

  clear() {
    this.all = false;
    this.picked.clear();
    this.anchor = null;
    this.closeName();
    this.refresh();
  }

  /** Mark `tiles` (all, or ones just added to the grid) and show the bar. */
  refresh(tiles = this.tiles()) {
    for (const t of tiles) {
      const on = this.all || this.picked.has(t.dataset.item);
      t.classList.toggle("selected", on);
      t.querySelector(".tile-check").setAttribute("aria-checked", String(on));
    }
    const n = this.count;
    this.grid.classList.toggle("selecting", n > 0);
    this.bar.hidden = n === 0;
    const { scope, total } = this.view();
    this.el("selection-count").textContent = this.all
      ? `All ${n.toLocaleString()} result${n === 1 ? "" : "s"} selected`
      : `${n.toLocaleString()} selected`;
    const allButton = this.el("select-all");
    allButton.hidden = scope.target === "objects";
    allButton.disabled = this.all || !total;
    allButton.textContent = !total ? "Select all"
      : total === 1 ? "Select the result" : `Select all ${total.toLocaleString()} results`;
    this.el("sel-remove").hidden = !scope.slice;
    if (n === 0) this.closeName();
  }

  askName() {
    this.el("new-slice-form").hidden = false;
    this.el("sel-new").hidden = true;
    this.el("new-slice-name").focus();
  }

  closeName() {
    this.el("new-slice-form").hidden = true;
    this.el("sel-new").hidden = false;
    this.el("new-slice-name").value = "";
    this.showError("");
  }

  showError(text) {
    const el = this.el("selection-error");
    el.textContent = text;
    el.hidden = !text;
  }

  /** The selection as what the API takes: {refs} or, for all results, {query, slice}. */
  target() {
    const { scope } = this.view();
    return this.all ? { query: scope.query, slice: scope.slice || null }
      : { refs: [...this.picked.values()] };
  }

  /** One write at a time: the bar's controls are off until it is answered (a slice of
   * a million results takes seconds, and a second click would send it again). */
  async write(call, message, { rerun = false } = {}) {
    this.showError("");
    const controls = [...this.bar.querySelectorAll("button, input, select")];
    const wasOff = controls.map((c) => c.disabled);
    controls.forEach((c) => { c.disabled = true; });
    this.bar.setAttribute("aria-busy", "true");
    try {
      const answer = await call();
      this.clear();
      await this.changed({ message: message(answer), rerun });
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      this.showError(err.message);
    } finally {
      controls.forEach((c, i) => { c.disabled = wasOff[i]; });
      this.bar.removeAttribute("aria-busy");
    }
  }

  createSlice(name) {
    const t = this.target();
    const ds = enc(this.dataset);
    return this.write(() => (t.refs
      ? api(`/datasets/${ds}/slices`, { method: "POST", body: { name, reference_ids: t.refs } })
      : api(`/datasets/${ds}/slices/from_query`, {
        method: "POST", body: { name, query: t.query, slice: t.slice } })),
    (s) => `Created slice “${s.name}” with ${s.length.toLocaleString()} ` +
      `item${s.length === 1 ? "" : "s"}.`);
  }

  addTo(sliceId) {
    if (!sliceId) { this.showError("Choose a slice to add to."); return null; }
    const t = this.target();
    const name = this.el("add-slice").selectedOptions[0].textContent;
    return this.write(() => (t.refs
      ? api(`/slices/${enc(sliceId)}/items`, { method: "POST", body: { reference_ids: t.refs } })
      : api(`/slices/${enc(sliceId)}/items/from_query`, {
        method: "POST", body: { query: t.query, within: t.slice } })),
    (a) => `Added ${a.added.toLocaleString()} item${a.added === 1 ? "" : "s"} to “${name}”` +
      (a.added < this.count ? " (the others were in it already)." : "."));
  }

  removeFromScope() {
    const { scope } = this.view();
    if (!scope.slice) return null;
    const t = this.target();
    return this.write(() => (t.refs
      ? api(`/slices/${enc(scope.slice)}/items/remove`, {
        method: "POST", body: { reference_ids: t.refs } })
      : api(`/slices/${enc(scope.slice)}/items/remove_query`, {
        method: "POST", body: { query: t.query } })),
    (r) => `Removed ${r.removed.toLocaleString()} item${r.removed === 1 ? "" : "s"} ` +
      "from this slice.", { rerun: true });
  }
}

/** Fill the "Add to slice" chooser with the item slices other than `current`. */
export function fillSliceChooser(select, slices, current) {
  const keep = select.value;
  const options = slices.filter((s) => s.kind === "item" && s.id !== current).map((s) => {
    const o = document.createElement("option");
    o.value = s.id;
    o.textContent = s.name;
    return o;
  });
  const first = document.createElement("option");
  first.value = "";
  first.textContent = options.length ? "Add to slice…" : "No other slices";
  select.replaceChildren(first, ...options);
  select.value = options.some((o) => o.value === keep) ? keep : "";
}

// Selecting results on the grid, and what can be done with a selection. A tile's check
// box (shown on hover and once something is selected) or a ctrl/cmd-click toggles it,
// shift-click selects the range from the last tile clicked; a plain click on the image
// still opens the item. "Select all results" selects the whole result of the query, not
// only the tiles loaded: its actions send the query (and slice) and the server picks
// the items, so a million results never travel as ids. In the objects view the same
// actions make and change object slices (their annotations and predictions): picked
// tiles travel as an object query of their ids.
import { api, ApiError } from "./api.js";

const enc = encodeURIComponent;

export class Selection {
  /** `view()` gives the grid's {scope, total}; `changed(what)` runs after a write, with
   * {message, rerun} (rerun: the grid's own items changed). */
  constructor({ dataset, grid, bar, view, changed }) {
    Object.assign(this, { dataset, grid, bar, view, changed });
    this.all = false;
    this.picked = new Map();  // tile key -> what the API takes, in the order picked
    this.anchor = null;  // the tile key a shift-click ranges from
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

  get objects() {
    return this.view().scope.target === "objects";
  }

  tiles() {
    return [...this.grid.querySelectorAll(this.objects ? ".object-tile" : ".tile:not(.object-tile)")];
  }

  // An item tile is picked by its item id and sent as its reference id; an object tile
  // by its object's id, sent as is.
  static key(tile) {
    return tile.dataset.object ?? tile.dataset.item;
  }

  static value(tile) {
    return tile.dataset.object ?? tile.dataset.ref;
  }

  onClick(e) {
    const tile = e.target.closest(".tile");
    if (!tile) return;
    const onCheck = e.target.closest(".tile-check");
    if (!onCheck && !e.shiftKey && !e.ctrlKey && !e.metaKey) return;  // opens the item
    e.preventDefault();
    if (e.shiftKey && this.anchor) this.selectRange(tile);
    else this.toggle(tile);
    this.anchor = Selection.key(tile);
  }

  toggle(tile) {
    if (this.all) this.leaveAll();
    const id = Selection.key(tile);
    if (this.picked.has(id)) this.picked.delete(id);
    else this.picked.set(id, Selection.value(tile));
    this.refresh();
  }

  selectRange(tile) {
    if (this.all) this.leaveAll();
    const tiles = this.tiles();
    const from = tiles.findIndex((t) => Selection.key(t) === this.anchor);
    const to = tiles.indexOf(tile);
    if (from < 0) { this.toggle(tile); return; }
    for (const t of tiles.slice(Math.min(from, to), Math.max(from, to) + 1)) {
      this.picked.set(Selection.key(t), Selection.value(t));
    }
    this.refresh();
  }

  /** From "all results" to the tiles loaded so far (one of them is being unticked). */
  leaveAll() {
    this.all = false;
    this.picked = new Map(this.tiles().map((t) => [Selection.key(t), Selection.value(t)]));
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
      const on = this.all || this.picked.has(Selection.key(t));
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
    allButton.disabled = this.all || !total;
    allButton.textContent = !total ? "Select all"
      : total === 1 ? "Select the result" : `Select all ${total.toLocaleString()} results`;
    this.el("sel-remove").hidden = !this.sliceInView();
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

  /** The slice in view, if the selection can be taken out of it: one of the view's
   * kind (the objects view may also show the objects of an item slice). */
  sliceInView() {
    const { scope, slices } = this.view();
    if (!scope.slice) return null;
    const kind = (slices || []).find((sl) => sl.id === scope.slice)?.kind;
    return kind === (this.objects ? "object" : "item") ? scope.slice : null;
  }

  /** The selection as what the API takes: {refs} or, for all results, {query, slice};
   * in the objects view picked tiles are {query} of their ids. */
  target() {
    const { scope } = this.view();
    if (this.all) return { query: scope.query, slice: scope.slice || null };
    const ids = [...this.picked.values()];
    // Both kinds named: an object query without a type reads annotations only.
    if (this.objects) {
      const list = ids.map((id) => JSON.stringify(id)).join(", ");
      return { query: `type in [annotation, prediction] and id in [${list}]`, slice: null };
    }
    return { refs: ids };
  }

  /** "3 items", "1 object". */
  noun(n) {
    const word = this.objects ? "object" : "item";
    return `${n.toLocaleString()} ${word}${n === 1 ? "" : "s"}`;
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
    const target = this.objects ? "objects" : "items";
    return this.write(() => (t.refs
      ? api(`/datasets/${ds}/slices`, { method: "POST", body: { name, reference_ids: t.refs } })
      : api(`/datasets/${ds}/slices/from_query`, {
        method: "POST", body: { name, query: t.query, slice: t.slice, target } })),
    (s) => `Created ${this.objects ? "object slice" : "slice"} “${s.name}” with ${this.noun(s.length)}.`);
  }

  addTo(sliceId) {
    if (!sliceId) { this.showError("Choose a slice to add to."); return null; }
    const t = this.target();
    const name = this.el("add-slice").selectedOptions[0].textContent;
    return this.write(() => (t.refs
      ? api(`/slices/${enc(sliceId)}/items`, { method: "POST", body: { reference_ids: t.refs } })
      : api(`/slices/${enc(sliceId)}/items/from_query`, {
        method: "POST", body: { query: t.query, within: t.slice } })),
    (a) => `Added ${this.noun(a.added)} to “${name}”` +
      (a.added < this.count ? " (the others were in it already)." : "."));
  }

  removeFromScope() {
    const slice = this.sliceInView();
    if (!slice) return null;
    const t = this.target();
    return this.write(() => (t.refs
      ? api(`/slices/${enc(slice)}/items/remove`, {
        method: "POST", body: { reference_ids: t.refs } })
      : api(`/slices/${enc(slice)}/items/remove_query`, {
        method: "POST", body: { query: t.query } })),
    (r) => `Removed ${this.noun(r.removed)} from this slice.`, { rerun: true });
  }
}

/** Fill the "Add to slice" chooser with the slices of `kind` ("item" or "object") other
 * than `current`. */
export function fillSliceChooser(select, slices, current, kind = "item") {
  const keep = select.value;
  const options = slices.filter((s) => s.kind === kind && s.id !== current).map((s) => {
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

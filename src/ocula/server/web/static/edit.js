// Editing an item's ground truth in the item page: draw, select, move, resize, relabel
// and delete boxes (polygons and lines: editpoly.js), accept a prediction as ground
// truth, undo and redo. Every change is one POST .../item/edits (docs/editing.md)
// naming the annotation's version token as this page last saw it; the server answers
// with the inverse operation, kept here as the undo step. A 409 (someone else saved
// first) writes nothing: the page says so, keeps the unsaved change on screen and offers
// a reload. Geometry is in image pixels: the pointer's position is read against the
// image's rectangle at whatever zoom it is shown.
import { ApiError, api } from "./api.js";
import { h, s } from "./dom.js";
import { Nudger } from "./editnudge.js";
import { PolyTool, verticesOf } from "./editpoly.js";
import { boxOf } from "./overlay.js";

const HANDLE_PX = 9;  // a resize handle's side on screen, at any zoom
const MIN_SIDE = 1;  // image pixels
const MIN_DRAW_PX = 4;  // a smaller drag (screen pixels) is a click, not a new box
// Which edges each handle moves: [left, top, right, bottom].
const HANDLES = { nw: [1, 1, 0, 0], n: [0, 1, 0, 0], ne: [0, 1, 1, 0], e: [0, 0, 1, 0],
                  se: [0, 0, 1, 1], s: [0, 0, 0, 1], sw: [1, 0, 0, 1], w: [1, 0, 0, 0] };

const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);
const same = (a, b) => ["x", "y", "width", "height"].every((k) => a[k] === b[k]);

/** The editor of one item's labels. `host` gives it what the page knows: `item`,
 * `view` (ZoomView), `figure()`, `groundTruth()`, `predictions()` (the shown ones),
 * `hot()` (the object pointed at), `reload()` (re-read the labels and redraw), and
 * `changed()` (after each saved edit). */
export class Editor {
  constructor(dataset, host) {
    Object.assign(this, { dataset, host });
    this.editing = false;
    this.selected = null;  // an annotation id, or a prediction's
    // A box being drawn, moved or resized ({x, y, width, height}), or a polygon's or
    // line's new points ({vertices}).
    this.draft = null;
    this.pending = null;  // the box (or {type, vertices}) drawn, waiting for its label
    this.tokens = new Map();  // annotation id -> its token in the labels shown
    // Annotation id -> the token this page's own last edit of it gave. Undo and redo name
    // these, never a token read later: an undo must not overwrite someone else's change.
    this.own = new Map();
    this.undoStack = [];  // each: the inverse operations of one saved edit
    this.redoStack = [];
    this.space = false;
    this.busy = false;
    this.queue = Promise.resolve();  // the edits being saved, one after another
    this.bar = document.getElementById("edit-bar");
    this.status = document.getElementById("edit-status");
    this.form = document.getElementById("label-form");
    this.input = document.getElementById("label-input");
    this.toggleButton = document.getElementById("edit-toggle");
    this.toggleButton.addEventListener("click", () => {
      this.toggle();
      this.toggleButton.blur();  // space (pan) must not press it again
    });
    document.getElementById("undo").addEventListener("click", () => this.undo());
    document.getElementById("redo").addEventListener("click", () => this.redo());
    for (const type of ["polygon", "line"]) {
      const button = document.getElementById(`draw-${type}`);
      button.addEventListener("click", () => { this.poly.start(type); button.blur(); });
    }
    this.form.addEventListener("submit", (e) => { e.preventDefault(); this.submitLabel(); });
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Escape") { e.preventDefault(); this.cancel(); }
    });
    this.poly = new PolyTool(this);
    this.nudge = new Nudger(this);
    this.#listen();
    this.#loadLabels();
  }

  /** Remember the tokens of the labels just read (after a load or a reload). */
  seed(groundTruth) {
    for (const a of groundTruth) if (typeof a.version === "number") this.tokens.set(a.id, a.version);
    if (this.selected && !this.#selectedObject()) this.selected = null;
  }

  toggle(on = !this.editing) {
    this.nudge.flush();
    this.editing = on;
    this.cancel();
    this.host.view.viewport.classList.toggle("editing", on);
    this.bar.hidden = !on;
    this.toggleButton.setAttribute("aria-pressed", String(on));
    this.redraw();
  }

  /** Drop what is half done: a drawn box without its label, a label being typed. */
  cancel() {
    if (this.nudge) this.nudge.drop();
    this.pending = null;
    this.draft = null;
    if (this.poly) this.poly.reset();
    this.#closeForm();
    this.redraw();
  }

  // --- drawing the selection, the handles and the box being drawn ---------------------

  /** The edit layer over the boxes: redrawn after every change and zoom. */
  redraw() {
    const fig = this.host.figure();
    if (!fig) return;
    const { width: w, height: ht } = this.host.item;
    let layer = fig.querySelector("svg.edit-layer");
    if (!layer) {
      layer = s("svg", { class: "edit-layer", viewBox: `0 0 ${w} ${ht}`,
                         preserveAspectRatio: "none" });
      fig.append(layer);
    }
    layer.replaceChildren();
    for (const el of fig.querySelectorAll("svg.boxes .selected")) el.classList.remove("selected");
    if (!this.editing) return;
    if (this.selected && !this.pending) {
      for (const el of fig.querySelectorAll(`svg.boxes [data-annotation="${CSS.escape(this.selected)}"]`)) {
        el.classList.add("selected");
      }
    }
    if (this.poly.draw(layer)) return;
    const box = this.draft || this.pending || this.#selectedBox();
    if (!box) return;
    const outline = s("rect", { class: "edit-box", x: box.x, y: box.y, width: box.width,
                                height: box.height, "vector-effect": "non-scaling-stroke" });
    layer.append(outline);
    if (this.pending || !this.#selectedIsGt()) return;
    outline.classList.add("movable");
    outline.dataset.handle = "move";
    const k = HANDLE_PX / this.host.view.scale;  // image pixels per handle
    for (const [name, [l, t, r, b]] of Object.entries(HANDLES)) {
      const cx = l ? box.x : r ? box.x + box.width : box.x + box.width / 2;
      const cy = t ? box.y : b ? box.y + box.height : box.y + box.height / 2;
      const handle = s("rect", { class: `edit-handle handle-${name}`, x: cx - k / 2, y: cy - k / 2,
                                 width: k, height: k, "vector-effect": "non-scaling-stroke" });
      handle.dataset.handle = name;
      layer.append(handle);
    }
  }

  /** The selected object (ground truth or a shown prediction), or null. */
  selectedObject() {
    return this.#selectedObject();
  }

  /** The selected ground-truth annotation (what edits change), or null. */
  selectedGt() {
    return this.#selectedIsGt() ? this.#selectedObject() : null;
  }

  #selectedObject() {
    if (!this.selected) return null;
    return this.host.groundTruth().find((a) => a.id === this.selected) ||
      this.host.predictions().find((p) => p.id === this.selected) || null;
  }

  #selectedIsGt() {
    return this.host.groundTruth().some((a) => a.id === this.selected);
  }

  #selectedBox() {
    const obj = this.#selectedObject();
    return obj ? boxOf(obj) : null;
  }

  #closeForm() {
    // Keys go back to the page (a focused field, even hidden, would keep them).
    if (document.activeElement === this.input) this.input.blur();
    this.form.hidden = true;
  }

  select(id) {
    if (id !== this.selected) {
      this.nudge.flush();  // saved for the object they moved
      this.poly.vertex = null;
    }
    this.selected = id;
    this.#closeForm();
    this.redraw();
  }

  // --- the pointer --------------------------------------------------------------------

  /** The image pixel under a pointer event, clamped to the image. */
  point(e) {
    const r = this.host.figure().getBoundingClientRect();
    const { width: w, height: ht } = this.host.item;
    return { x: clamp((e.clientX - r.left) * w / r.width, 0, w),
             y: clamp((e.clientY - r.top) * ht / r.height, 0, ht) };
  }

  #listen() {
    const view = this.host.view;
    const stage = view.viewport;
    // In edit mode the main button draws and moves; space+drag (or the middle button)
    // still pans, and the wheel still zooms.
    view.panGate = (e) => !this.editing || this.space || e.button === 1;
    let drag = null;
    stage.addEventListener("pointerdown", (e) => {
      if (!this.editing || this.space || e.button !== 0 || this.busy) return;
      // Arrow-key moves not yet saved: saved first (this press is spent on that).
      if (this.nudge.waiting) { this.nudge.flush(); e.preventDefault(); return; }
      const at = this.point(e);
      const handle = e.target.dataset && e.target.dataset.handle;
      const shape = this.poly.press(e, at);
      if (shape === "done") {
        e.preventDefault();
        return;
      }
      if (shape) {
        drag = shape;
      } else if (e.shiftKey) {
        // Shift+drag draws even over a box (a person inside a car's box).
        this.pending = null;
        this.form.hidden = true;
        drag = { kind: "draw", from: at, sx: e.clientX, sy: e.clientY };
      } else if (handle && this.#selectedIsGt()) {
        drag = { kind: handle, from: at, box: { ...this.#selectedBox() }, sx: e.clientX, sy: e.clientY };
      } else {
        const id = e.target.dataset && e.target.dataset.annotation;
        if (id) {
          this.select(id);
          // A mask is selected (to relabel or delete) but not moved.
          if (this.#selectedIsGt() && this.#selectedBox()) {
            drag = { kind: "move", from: at, box: { ...this.#selectedBox() }, sx: e.clientX, sy: e.clientY };
          }
        } else {
          this.pending = null;
          this.form.hidden = true;
          drag = { kind: "draw", from: at, sx: e.clientX, sy: e.clientY };
        }
      }
      if (!drag) return;
      drag.id = e.pointerId;
      stage.setPointerCapture(e.pointerId);
      e.preventDefault();
    });
    stage.addEventListener("pointermove", (e) => {
      if (!drag || e.pointerId !== drag.id) return;
      const at = this.point(e);
      this.draft = drag.poly ? this.poly.dragged(drag, at) : this.#dragged(drag, at);
      this.redraw();
    });
    const end = (e) => {
      if (!drag || e.pointerId !== drag.id) return;
      const d = drag;
      drag = null;
      const box = this.draft;
      this.draft = null;
      const moved = Math.hypot(e.clientX - d.sx, e.clientY - d.sy) >= MIN_DRAW_PX;
      if (d.poly) {
        if (e.type === "pointercancel") this.redraw();
        else this.poly.release(d, box, moved);
        return;
      }
      if (e.type === "pointercancel" || !box || !moved) {
        if (d.kind === "draw") this.select(null);
        else this.redraw();
        return;
      }
      if (d.kind === "draw") {
        if (box.width < MIN_SIDE || box.height < MIN_SIDE) { this.redraw(); return; }
        this.pending = box;
        this.selected = null;
        this.askLabel("");
      } else if (!same(box, d.box)) {
        this.updateSelected({ geometry: box }, box);
      } else {
        this.redraw();
      }
    };
    stage.addEventListener("pointerup", end);
    stage.addEventListener("pointercancel", end);
    document.addEventListener("keyup", (e) => { if (e.key === " ") this.space = false; });
    window.addEventListener("blur", () => { this.space = false; });
  }

  /** The box a drag makes so far: drawn corner to corner, moved, or one handle's edges
   * moved; whole image pixels, inside the image. */
  #dragged(d, at) {
    const { width: w, height: ht } = this.host.item;
    if (d.kind === "draw") {
      const x0 = Math.round(Math.min(d.from.x, at.x)), y0 = Math.round(Math.min(d.from.y, at.y));
      const x1 = Math.round(Math.max(d.from.x, at.x)), y1 = Math.round(Math.max(d.from.y, at.y));
      return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
    }
    const b = d.box;
    const dx = Math.round(at.x - d.from.x), dy = Math.round(at.y - d.from.y);
    if (d.kind === "move") {
      return { x: clamp(b.x + dx, 0, Math.max(0, w - b.width)),
               y: clamp(b.y + dy, 0, Math.max(0, ht - b.height)), width: b.width, height: b.height };
    }
    const [l, t, r, bo] = HANDLES[d.kind];
    let x0 = b.x, y0 = b.y, x1 = b.x + b.width, y1 = b.y + b.height;
    if (l) x0 = clamp(Math.round(b.x + dx), 0, x1 - MIN_SIDE);
    if (r) x1 = clamp(Math.round(x1 + dx), x0 + MIN_SIDE, w);
    if (t) y0 = clamp(Math.round(b.y + dy), 0, y1 - MIN_SIDE);
    if (bo) y1 = clamp(Math.round(y1 + dy), y0 + MIN_SIDE, ht);
    // An edge not dragged keeps its stored value exactly (no rounding of the rest).
    return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
  }

  // --- the label form -------------------------------------------------------------------

  askLabel(value) {
    this.form.hidden = false;
    this.input.value = value;
    this.redraw();
    this.input.focus();
    this.input.select();
  }

  async submitLabel() {
    const label = this.input.value.trim();
    if (!label) { this.say("A label is needed.", "error"); return; }
    if (this.pending) {
      const b = this.pending;
      const type = b.vertices ? b.type : "box";
      const ok = await this.save([{ op: "add", annotation: {
        type, label, reference_id: this.host.item.reference_id,
        geometry: b.vertices ? { vertices: b.vertices } : b } }],
      `new ${type} “${label}”`);
      if (ok) { this.pending = null; this.#closeForm(); this.selected = ok.edits[0].id; }
    } else if (this.#selectedIsGt()) {
      // The same label again changes nothing (the server would refuse it as such).
      if (label === this.#selectedObject().label) { this.#closeForm(); this.redraw(); return; }
      const ok = await this.updateSelected({ label }, null);
      if (ok) this.#closeForm();
    }
    this.redraw();
  }

  async updateSelected(change, draft, what = null) {
    const id = this.selected;
    // Until saved, the shape stays where it was dragged to.
    this.pending = null;
    this.draft = draft;
    what ??= change.label !== undefined ? `label → “${change.label}”` : "new geometry";
    const ok = await this.save([{ op: "update", id, expected: this.tokens.get(id), ...change }],
                               what);
    if (ok) this.draft = null;
    this.redraw();
    return ok;
  }

  // --- saving, undo and redo --------------------------------------------------------------

  /** POST `ops` as one edit; on success push the undo step (`record`: "undo", "redo"
   * or a new edit) and re-read the labels. Returns the result, or null. */
  save(ops, what, record = "edit") {
    return this.#serial(() => this.#save(ops, what, record));
  }

  /** Run `task` after the edits before it: edits (and undo keys pressed quickly one
   * after another) go to the server one at a time, each with the tokens the last gave. */
  #serial(task) {
    const next = this.queue.then(task, task);
    this.queue = next.catch(() => null);
    return next;
  }

  async #save(ops, what, record) {
    this.busy = true;
    this.say("Saving…", "muted");
    try {
      const result = await api(`/datasets/${encodeURIComponent(this.dataset)}/item/edits`, {
        method: "POST", body: { reference_id: this.host.item.reference_id, edits: ops } });
      for (const o of result.edits) {
        this.tokens.set(o.id, o.version);
        this.own.set(o.id, o.version);
      }
      const inverse = result.edits.map((o) => o.inverse).reverse();
      if (record === "undo") this.redoStack.push(inverse);
      else this.undoStack.push(inverse);
      if (record === "edit") this.redoStack = [];
      this.draft = null;
      await this.host.reload();
      await this.host.changed(result);
      // Said once the page shows what was saved (tests wait for it too).
      this.say(`Saved: ${what} (version ${result.version}).`, "ok");
      return result;
    } catch (err) {
      this.#failed(err, what);
      return null;
    } finally {
      this.busy = false;
      this.#buttons();
    }
  }

  #failed(err, what) {
    if (!(err instanceof ApiError)) { this.say(`Not saved: ${err.message}`, "error"); return; }
    if (err.status === 409) {
      // Stale: nothing was written. Say what is stored now; the unsaved change stays
      // drawn until the user reloads.
      const info = err.body.info || {};
      const cur = info.current;
      const points = verticesOf(cur);
      const where = boxOf(cur || {}) ? ` at ${fmt(boxOf(cur))}` : points ? ` with ${points.length} points` : "";
      const now = cur === null ? "it has been deleted" : cur ? `it is now “${cur.label}”${where}` : "";
      const reload = h("button", { type: "button", class: "small", id: "edit-reload" }, "Reload");
      reload.addEventListener("click", () => location.reload());
      this.status.replaceChildren(
        h("span", {}, `Not saved (${what}): someone changed this object since the page read it` +
          `${now ? ` — ${now}` : ""}. Reload to see the current labels, then redo your change. `),
        reload);
      this.status.className = "edit-status conflict";
      this.status.hidden = false;
      return;
    }
    this.say(`Not saved (${what}): ${err.message}`, "error");
  }

  say(text, kind) {
    this.status.replaceChildren(text);
    this.status.className = `edit-status ${kind}`;
    this.status.hidden = !text;
  }

  #buttons() {
    document.getElementById("undo").disabled = !this.undoStack.length;
    document.getElementById("redo").disabled = !this.redoStack.length;
  }

  /** Send back the newest saved edit's inverse, each operation naming the token this
   * page's own last edit of its annotation gave, so several undos go back one after
   * another, and an undo over someone else's later change is a 409, not an overwrite. */
  async undo() {
    this.nudge.flush();  // the moves not yet saved are the last edit
    await this.#replay(this.undoStack, "undo");
  }

  async redo() { await this.#replay(this.redoStack, "redo"); }

  #replay(stack, record) {
    return this.#serial(async () => {
      if (!stack.length) return;
      this.poly.vertex = null;  // the point picked may be gone, or another, once undone
      const ops = stack.at(-1).map((op) => (
        op.id && this.own.has(op.id) ? { ...op, expected: this.own.get(op.id) } : op));
      const ok = await this.#save(ops, record, record);
      if (ok) stack.pop();  // #save pushed the step reversing this one on the other stack
    });
  }

  async remove() {
    if (!this.#selectedIsGt()) return;
    const id = this.selected;
    const ok = await this.save([{ op: "delete", id, expected: this.tokens.get(id) }], "delete");
    if (ok) this.select(null);
  }

  /** Make prediction `pred` a ground-truth annotation (the tutorial's missed person). */
  async accept(pred) {
    const ok = await this.save([{ op: "accept_prediction", prediction_id: pred.id }],
                               `accept prediction “${pred.label}”`);
    if (ok && this.editing) this.select(ok.edits[0].id);
  }

  // --- keys -------------------------------------------------------------------------------

  /** The editor's keys; true when `e` was one of them. */
  handleKey(e) {
    const mod = e.ctrlKey || e.metaKey;
    const key = e.key.toLowerCase();
    if (mod && !e.altKey && ((key === "z" && e.shiftKey) || (key === "y" && !e.shiftKey))) {
      this.redo();
      return true;
    }
    if (mod && !e.altKey && key === "z") { this.undo(); return true; }
    if (this.editing && this.nudge.key(e)) return true;
    if (mod || e.altKey) return false;
    if (key === "e") { this.toggle(); return true; }
    if (key === "a") {
      const target = this.#acceptTarget();
      if (target) { this.accept(target); return true; }
      return false;
    }
    if (!this.editing) return false;
    if (this.poly.key(e)) return true;
    // Space pans, unless a control has the focus (a checkbox takes it as a click).
    if (e.key === " " && !(e.target.closest && e.target.closest("button, input, a, select"))) {
      this.space = true;
      return true;
    }
    if (e.key === "Escape") {
      if (this.pending || this.draft || !this.form.hidden) this.cancel();
      else this.select(null);
      return true;
    }
    if ((e.key === "Delete" || e.key === "Backspace") && this.#selectedIsGt()) {
      this.remove();
      return true;
    }
    if (key === "l" && this.#selectedIsGt()) {
      this.askLabel(this.#selectedObject().label);
      return true;
    }
    return false;
  }

  #acceptTarget() {
    const preds = this.host.predictions();
    return preds.find((p) => p.id === this.selected) || preds.find((p) => p.id === this.host.hot()) || null;
  }

  /** The dataset's labels, offered while typing one. */
  async #loadLabels() {
    const list = document.getElementById("edit-labels");
    try {
      const info = await api(`/datasets/${encodeURIComponent(this.dataset)}/info`);
      const labels = Object.keys(info.labels || {}).sort();
      list.replaceChildren(...labels.map((l) => h("option", { value: l })));
    } catch {
      // Without suggestions any label can still be typed.
    }
  }
}

function fmt(b) {
  const r = (v) => Math.round(v * 10) / 10;
  return `${r(b.width)}×${r(b.height)} at (${r(b.x)}, ${r(b.y)})`;
}

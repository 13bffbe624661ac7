// Arrow keys in the item page's edit mode: the selected box, polygon or line (or the
// point picked on it) moves a pixel a press, ten with Shift; Alt+arrows resize a box by
// its right and bottom edges. Presses in a row are one edit: the shape moves on screen at
// once and is saved when the keys rest (one update, one undo step, one history entry),
// not a request per press. Esc drops the unsaved moves; selecting another object, undo
// and leaving edit mode save them first.
import { verticesOf } from "./editpoly.js";
import { boxOf } from "./overlay.js";

const REST_MS = 600;  // no arrow for this long: the moves so far are saved
const MIN_SIDE = 1;  // image pixels
const STEPS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };

const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);

/** The arrow keys of `editor` (an Editor of edit.js). */
export class Nudger {
  constructor(editor) {
    this.ed = editor;
    this.timer = null;
    this.what = null;  // "moved" or "resized": what the unsaved presses did
  }

  /** Whether presses are waiting to be saved. */
  get waiting() { return this.what !== null; }

  /** Handle an arrow key (edit mode, a ground-truth shape selected); true when used. */
  key(e) {
    const ed = this.ed;
    if (e.key === "Escape" && this.waiting) { ed.cancel(); return true; }
    const step = STEPS[e.key];
    const obj = ed.selectedGt();
    if (!step || !obj || e.ctrlKey || e.metaKey) return false;
    // A drag in progress owns the draft (the key is still the editor's: it must not
    // step to another item mid-drag).
    if (ed.draft && !this.waiting) return true;
    const k = e.shiftKey ? 10 : 1;
    const [dx, dy] = [step[0] * k, step[1] * k];
    const { width: w, height: ht } = ed.host.item;
    const verts = verticesOf(obj);
    if (verts) {
      if (e.altKey) return false;
      const v = (ed.draft && ed.draft.vertices ? ed.draft.vertices : verts).map((p) => ({ ...p }));
      const picked = ed.poly.vertex;
      const moving = picked !== null && picked < v.length ? [v[picked]] : v;
      // The shape (or the point) stops at the image's edges.
      const xs = moving.map((p) => p.x), ys = moving.map((p) => p.y);
      const mx = clamp(dx, -Math.min(...xs), w - Math.max(...xs));
      const my = clamp(dy, -Math.min(...ys), ht - Math.max(...ys));
      for (const p of moving) { p.x += mx; p.y += my; }
      this.#moved({ vertices: v }, "moved");
      return true;
    }
    const b = ed.draft && !ed.draft.vertices ? ed.draft : boxOf(obj);
    if (!b) return false;  // a mask: not reshaped
    let box;
    if (e.altKey) {
      box = { x: b.x, y: b.y, width: clamp(b.width + dx, MIN_SIDE, w - b.x),
              height: clamp(b.height + dy, MIN_SIDE, ht - b.y) };
    } else {
      box = { x: clamp(b.x + dx, 0, Math.max(0, w - b.width)),
              y: clamp(b.y + dy, 0, Math.max(0, ht - b.height)), width: b.width, height: b.height };
    }
    this.#moved(box, e.altKey ? "resized" : "moved");
    return true;
  }

  #moved(draft, what) {
    this.ed.draft = draft;
    this.what = this.what && this.what !== what ? "moved and resized" : what;
    this.ed.redraw();
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), REST_MS);
  }

  /** Save the presses waiting, now. */
  flush() {
    clearTimeout(this.timer);
    this.timer = null;
    const ed = this.ed;
    if (!this.waiting) return;
    if (ed.busy) {
      // The edit before is still being saved: its new token is not known yet.
      this.timer = setTimeout(() => this.flush(), REST_MS / 4);
      return;
    }
    const what = this.what;
    const draft = ed.draft;
    this.what = null;
    if (!draft) return;
    const geometry = draft.vertices ? { vertices: draft.vertices } : draft;
    ed.updateSelected({ geometry }, draft, `${what} by the arrow keys`);
  }

  /** Forget the presses waiting (Esc): the shape goes back to what is stored. */
  drop() {
    clearTimeout(this.timer);
    this.timer = null;
    this.what = null;
  }
}

// Polygons and lines in the item page's edit mode. edit.js owns the mode, the label form,
// saving, undo and redo; this adds what a shape of points needs: drag a vertex or the
// whole shape, drag (or click) an edge's midpoint handle to insert a vertex, Alt/Shift+
// click a vertex (or click it, then Delete) to remove it, and draw a new shape point by
// point. Every change is sent as the whole new vertex list in one update, so the inverse
// the server returns (the old list, and the old area) restores the shape exactly.
// Coordinates are image pixels: a vertex dragged or drawn lands on a whole pixel inside
// the image; the vertices not touched keep their stored values, fractions included.
import { s } from "./dom.js";
import { lineOf, polygonOf } from "./overlay.js";

const HANDLE_PX = 10;  // a vertex handle's diameter on screen, at any zoom
const MID_PX = 8;  // an edge's midpoint handle
const MIDS_FROM_PX = 28;  // no midpoint handle on an edge shorter than this on screen
const HIT_PX = 12;  // how wide a selected line can be grabbed
/** The fewest points each shape keeps (the server refuses fewer). */
export const FEWEST = { polygon: 3, line: 2 };

const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);
const pointsAttr = (v) => v.map((p) => `${p.x},${p.y}`).join(" ");
const sameVertices = (a, b) => a.length === b.length &&
  a.every((p, i) => p.x === b[i].x && p.y === b[i].y);

/** The editable points of an object: a polygon's or a line's; null for anything else. */
export function verticesOf(ann) {
  return (ann && (polygonOf(ann) || lineOf(ann))) || null;
}

/** The middle of edge `i` (from vertex `i` to the next, the last closing a polygon). */
function midpoint(v, i) {
  const a = v[i], b = v[(i + 1) % v.length];
  return { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
}

/** The polygon and line tools of `editor` (an Editor of edit.js). */
export class PolyTool {
  constructor(editor) {
    this.ed = editor;
    this.vertex = null;  // the vertex clicked on the selected shape: Delete removes it
    this.drawing = null;  // a new shape: {type, points, hover}
    const view = editor.host.view;
    view.viewport.addEventListener("pointermove", (e) => {
      if (!this.drawing) return;
      this.drawing.hover = editor.point(e);
      editor.redraw();
    });
    // While drawing, a double-click finishes the shape instead of zooming in.
    const gate = view.dblclickGate;
    view.dblclickGate = (e) => !this.drawing && gate(e);
    view.viewport.addEventListener("dblclick", () => { if (this.drawing) this.finish(); });
  }

  /** Forget a shape half drawn and a vertex picked (Esc, leaving edit mode, another
   * object selected). */
  reset() {
    const was = this.drawing;
    this.drawing = null;
    this.vertex = null;
    this.ed.host.view.viewport.classList.remove("drawing-shape");
    if (was) this.ed.say("", "muted");
  }

  // --- the pointer ----------------------------------------------------------------------

  /** A press of the main button in edit mode at image point `at`: "done" when it was
   * used up (a point drawn, a vertex removed), a drag to follow (`poly` says which), or
   * null when it is not about a polygon or a line. */
  press(e, at) {
    const ed = this.ed;
    if (this.drawing) {
      this.#addPoint(at);
      return "done";
    }
    const data = e.target.dataset || {};
    const start = { from: at, sx: e.clientX, sy: e.clientY };
    const obj = ed.selectedGt();
    const verts = verticesOf(obj);
    if (verts && data.vertex !== undefined) {
      const i = Number(data.vertex);
      if (e.altKey || e.shiftKey) {
        this.removeVertex(i);
        return "done";
      }
      return { poly: "vertex", index: i, vertices: verts, ...start };
    }
    if (verts && data.mid !== undefined) {
      return { poly: "insert", index: Number(data.mid) + 1, vertices: verts, ...start };
    }
    if (verts && data.handle === "poly-move") return { poly: "move", vertices: verts, ...start };
    if (e.shiftKey) return null;  // shift+drag draws a box, even over a shape
    // A press on a ground-truth polygon or line selects it, and a drag moves it.
    const id = data.annotation;
    const target = id && ed.host.groundTruth().find((a) => a.id === id);
    if (!verticesOf(target)) return null;
    ed.select(id);
    return { poly: "move", vertices: verticesOf(target), ...start };
  }

  /** The vertices a drag gives so far, as the edit layer's draft. */
  dragged(d, at) {
    const { width: w, height: ht } = this.ed.host.item;
    const dx = at.x - d.from.x, dy = at.y - d.from.y;
    const placed = (p) => ({ x: clamp(Math.round(p.x + dx), 0, w), y: clamp(Math.round(p.y + dy), 0, ht) });
    const v = d.vertices.map((p) => ({ x: p.x, y: p.y }));
    if (d.poly === "vertex") {
      v[d.index] = placed(d.vertices[d.index]);
    } else if (d.poly === "insert") {
      v.splice(d.index, 0, placed(midpoint(d.vertices, d.index - 1)));
    } else {
      // The whole shape moves by whole pixels and stops at the image's edges.
      const xs = d.vertices.map((p) => p.x), ys = d.vertices.map((p) => p.y);
      const mx = clamp(Math.round(dx), Math.ceil(-Math.min(...xs)), Math.floor(w - Math.max(...xs)));
      const my = clamp(Math.round(dy), Math.ceil(-Math.min(...ys)), Math.floor(ht - Math.max(...ys)));
      for (const p of v) { p.x += mx; p.y += my; }
    }
    return { vertices: v };
  }

  /** The end of drag `d`: save what it changed. A click on a vertex picks it, a click on
   * a midpoint handle inserts a vertex right there. */
  release(d, draft, moved) {
    const ed = this.ed;
    if (!moved) {
      if (d.poly === "vertex") this.vertex = d.index;
      if (d.poly !== "insert") { ed.redraw(); return; }
      draft = this.dragged(d, d.from);
    }
    if (!draft || sameVertices(draft.vertices, d.vertices)) { ed.redraw(); return; }
    const what = { vertex: "vertex moved", insert: "vertex added", move: "moved" }[d.poly];
    this.vertex = d.poly === "move" ? null : d.index;
    ed.updateSelected({ geometry: { vertices: draft.vertices } }, draft, what);
  }

  /** Remove vertex `i` of the selected shape, unless it has no points to spare. */
  removeVertex(i) {
    const ed = this.ed;
    const obj = ed.selectedGt();
    const verts = verticesOf(obj);
    if (!verts || i < 0 || i >= verts.length) return;
    const fewest = FEWEST[obj.type];
    if (verts.length <= fewest) {
      ed.say(`A ${obj.type} keeps at least ${fewest} points: Delete with no point picked ` +
             `deletes the whole ${obj.type}.`, "error");
      this.vertex = null;
      ed.redraw();
      return;
    }
    const vertices = verts.filter((_, j) => j !== i);
    this.vertex = null;
    ed.updateSelected({ geometry: { vertices } }, { vertices }, "vertex deleted");
  }

  // --- drawing a new shape --------------------------------------------------------------

  /** Start drawing a new `type` ("polygon" or "line"). */
  start(type) {
    const ed = this.ed;
    ed.cancel();
    ed.select(null);
    this.drawing = { type, points: [], hover: null };
    ed.host.view.viewport.classList.add("drawing-shape");
    const close = type === "polygon" ? ", a double-click or a click on the first point" : " or a double-click";
    ed.say(`New ${type}: click to add points; Enter${close} finishes; Backspace removes the ` +
           "last point; Esc cancels.", "muted");
    ed.redraw();
  }

  #addPoint(at) {
    const d = this.drawing;
    const p = { x: Math.round(at.x), y: Math.round(at.y) };
    const scale = this.ed.host.view.scale;  // screen pixels per image pixel
    const near = (q) => q && Math.hypot(q.x - p.x, q.y - p.y) * scale < HANDLE_PX;
    if (d.type === "polygon" && d.points.length >= FEWEST.polygon && near(d.points[0])) {
      this.finish();
      return;
    }
    if (near(d.points.at(-1))) return;  // the second press of a double-click
    d.points.push(p);
    this.ed.redraw();
  }

  /** Close the shape being drawn and ask for its label (edit.js saves it as an add). */
  finish() {
    const d = this.drawing;
    if (!d) return;
    const fewest = FEWEST[d.type];
    if (d.points.length < fewest) {
      this.ed.say(`A ${d.type} needs at least ${fewest} points; Esc cancels.`, "error");
      return;
    }
    this.reset();
    this.ed.pending = { type: d.type, vertices: d.points };
    this.ed.askLabel("");
  }

  // --- keys -------------------------------------------------------------------------------

  /** The keys of these tools (edit mode, no modifier); true when `e` was one of them. */
  key(e) {
    const d = this.drawing;
    if (d) {
      if (e.key === "Escape") { this.reset(); this.ed.redraw(); return true; }
      if (e.key === "Enter") { this.finish(); return true; }
      if (e.key === "Backspace" || e.key === "Delete") {
        d.points.pop();
        this.ed.redraw();
        return true;
      }
    } else if (this.vertex !== null && verticesOf(this.ed.selectedGt())) {
      if (e.key === "Delete" || e.key === "Backspace") { this.removeVertex(this.vertex); return true; }
      if (e.key === "Escape") { this.vertex = null; this.ed.redraw(); return true; }
    }
    const key = e.key.toLowerCase();
    if (key === "p" || key === "o") {
      this.start(key === "p" ? "polygon" : "line");
      return true;
    }
    return false;
  }

  // --- the edit layer ---------------------------------------------------------------------

  /** Draw into the edit `layer` what these tools show: a shape being drawn, one drawn and
   * waiting for its label, or the selected polygon or line with its handles. False when
   * there is none of these (edit.js draws boxes). */
  draw(layer) {
    const ed = this.ed;
    const k = 1 / ed.host.view.scale;  // image pixels per screen pixel
    const d = this.drawing;
    if (d) {
      const pts = d.hover ? [...d.points, d.hover] : d.points;
      layer.append(s("polyline", { class: "edit-poly drawing", points: pointsAttr(pts),
                                   "vector-effect": "non-scaling-stroke" }));
      if (d.type === "polygon" && pts.length >= 3) {
        layer.append(s("line", { class: "edit-close", x1: pts.at(-1).x, y1: pts.at(-1).y,
                                 x2: pts[0].x, y2: pts[0].y, "vector-effect": "non-scaling-stroke" }));
      }
      d.points.forEach((p, i) => {
        const closer = i === 0 && d.type === "polygon" && d.points.length >= FEWEST.polygon;
        layer.append(this.#handle(p, (HANDLE_PX / 2) * k, `edit-vertex${closer ? " closer" : ""}`));
      });
      return true;
    }
    if (ed.pending) {
      if (!ed.pending.vertices) return false;
      layer.append(this.#shape(ed.pending.type, ed.pending.vertices));
      return true;
    }
    if (ed.draft && !ed.draft.vertices) return false;  // a box being drawn
    const obj = ed.selectedObject();
    const stored = verticesOf(obj);
    if (!stored) return false;
    const v = ed.draft ? ed.draft.vertices : stored;
    if (this.vertex !== null && this.vertex >= v.length) this.vertex = null;
    const outline = this.#shape(obj.type, v);
    layer.append(outline);
    if (!ed.selectedGt()) return true;  // a prediction: shown, not edited
    outline.classList.add("movable");
    outline.dataset.handle = "poly-move";
    if (obj.type === "line") {
      // A line is only its stroke: a wider, invisible one makes it easy to grab.
      const hit = s("polyline", { class: "edit-hit", points: pointsAttr(v), "stroke-width": HIT_PX,
                                  "vector-effect": "non-scaling-stroke" });
      hit.dataset.handle = "poly-move";
      layer.append(hit);
    }
    const edges = obj.type === "polygon" ? v.length : v.length - 1;
    for (let i = 0; i < edges; i++) {
      const a = v[i], b = v[(i + 1) % v.length];
      if (Math.hypot(b.x - a.x, b.y - a.y) / k < MIDS_FROM_PX) continue;
      const mid = this.#handle(midpoint(v, i), (MID_PX / 2) * k, "edit-mid");
      mid.dataset.mid = String(i);
      mid.append(s("title", {}, "Drag or click to add a point here"));
      layer.append(mid);
    }
    v.forEach((p, i) => {
      const handle = this.#handle(p, (HANDLE_PX / 2) * k, `edit-vertex${i === this.vertex ? " active" : ""}`);
      handle.dataset.vertex = String(i);
      handle.append(s("title", {}, "Drag to move; Alt/Shift+click (or click, then Delete) removes it"));
      layer.append(handle);
    });
    return true;
  }

  #shape(type, v) {
    return s(type === "line" ? "polyline" : "polygon", {
      class: `edit-poly ${type}`, points: pointsAttr(v), "vector-effect": "non-scaling-stroke" });
  }

  #handle(p, r, className) {
    return s("circle", { class: className, cx: p.x, cy: p.y, r, "vector-effect": "non-scaling-stroke" });
  }
}

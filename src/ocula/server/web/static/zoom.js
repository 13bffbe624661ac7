// Zoom and pan of one image with its boxes. The image and the SVG of boxes fill one
// container; zooming sets that container's size (the image's pixels times the scale) and
// panning moves it, so the boxes, drawn in the SVG's viewBox of image pixels, stay on
// their pixels at every zoom. No CSS scale transform: the browser resamples the image at
// its drawn size (sharp), and non-scaling strokes stay as thick as at any zoom.

const MAX_SCALE = 32;  // image pixels drawn 32 CSS pixels wide at most
const PIXELATED_FROM = 3;  // from here on, show pixels as squares rather than blurred
const WHEEL_RATE = 0.0015;  // zoom factor per wheel pixel, as exp(rate * delta)
const STEP = 1.25;  // one press of + / −

/** Zoom and pan of `content` (an element sized by this) inside `viewport`, for an image
 * of `width` × `height` pixels. `onChange(view)` runs after every change. */
export class ZoomView {
  constructor(viewport, content, width, height, onChange = () => {}) {
    Object.assign(this, { viewport, content, width, height, onChange });
    this.scale = 1;
    this.x = 0;
    this.y = 0;
    this.fitted = true;
    // Whether a press of the main button pans (edit mode keeps it for drawing: there
    // space+drag or the middle button pans).
    this.panGate = () => true;
    // Whether a double-click zooms (not while edit mode draws a shape point by point).
    this.dblclickGate = () => true;
    this.#listen();
    this.fit();
    new ResizeObserver(() => (this.fitted ? this.fit() : this.#apply())).observe(viewport);
  }

  /** The scale at which the whole image fits the viewport. */
  get fitScale() {
    const { clientWidth: vw, clientHeight: vh } = this.viewport;
    return Math.min(vw / this.width, vh / this.height) || 1;
  }

  /** Show the whole image, centred. */
  fit() {
    const s = this.fitScale;
    this.#set(s, (this.viewport.clientWidth - this.width * s) / 2,
              (this.viewport.clientHeight - this.height * s) / 2);
    this.fitted = true;
    this.#apply();
  }

  /** Zoom by `factor` keeping the viewport point (`cx`, `cy`) over the same image pixel
   * (the viewport's centre without a point). */
  zoomBy(factor, cx = this.viewport.clientWidth / 2, cy = this.viewport.clientHeight / 2) {
    const s = this.#clampScale(this.scale * factor);
    const k = s / this.scale;
    this.#set(s, cx - (cx - this.x) * k, cy - (cy - this.y) * k);
    this.fitted = false;
    this.#apply();
  }

  /** Move by (`dx`, `dy`) viewport pixels. */
  panBy(dx, dy) {
    this.#set(this.scale, this.x + dx, this.y + dy);
    this.fitted = false;
    this.#apply();
  }

  /** Centre the image rectangle `box` ({x, y, width, height} in image pixels), zoomed so
   * that it fills about half of the viewport (never below the fit scale). */
  focus(box) {
    const { clientWidth: vw, clientHeight: vh } = this.viewport;
    const s = this.#clampScale(Math.max(this.fitScale, Math.min(
      vw / (2 * Math.max(box.width, 1)), vh / (2 * Math.max(box.height, 1)))));
    const cx = box.x + box.width / 2, cy = box.y + box.height / 2;
    this.#set(s, vw / 2 - cx * s, vh / 2 - cy * s);
    this.fitted = false;
    this.#apply();
  }

  #clampScale(s) {
    return Math.min(Math.max(s, Math.min(this.fitScale, 1) / 2), Math.max(MAX_SCALE, this.fitScale));
  }

  /** Set scale and offset, keeping some of the image over the viewport's centre so a
   * pan cannot lose it off screen. */
  #set(s, x, y) {
    const { clientWidth: vw, clientHeight: vh } = this.viewport;
    this.scale = s;
    this.x = Math.min(Math.max(x, vw / 2 - this.width * s), vw / 2);
    this.y = Math.min(Math.max(y, vh / 2 - this.height * s), vh / 2);
  }

  #apply() {
    const st = this.content.style;
    st.width = `${this.width * this.scale}px`;
    st.height = `${this.height * this.scale}px`;
    st.transform = `translate(${this.x}px, ${this.y}px)`;
    this.content.classList.toggle("pixelated", this.scale >= PIXELATED_FROM);
    this.onChange(this);
  }

  #listen() {
    const vp = this.viewport;
    vp.addEventListener("wheel", (e) => {
      e.preventDefault();
      const px = e.deltaMode === 1 ? e.deltaY * 16 : e.deltaMode === 2 ? e.deltaY * 400 : e.deltaY;
      const r = vp.getBoundingClientRect();
      this.zoomBy(Math.exp(-px * WHEEL_RATE), e.clientX - r.left, e.clientY - r.top);
    }, { passive: false });
    vp.addEventListener("dblclick", (e) => {
      if (!this.dblclickGate(e)) return;
      const r = vp.getBoundingClientRect();
      this.zoomBy(e.shiftKey ? 1 / 2 : 2, e.clientX - r.left, e.clientY - r.top);
    });
    let drag = null;
    vp.addEventListener("pointerdown", (e) => {
      if (!(e.button === 0 || e.button === 1) || !this.panGate(e)) return;
      if (e.button === 1) e.preventDefault();  // not the browser's autoscroll
      drag = { id: e.pointerId, x: e.clientX, y: e.clientY };
      vp.setPointerCapture(e.pointerId);
      vp.classList.add("dragging");
    });
    vp.addEventListener("pointermove", (e) => {
      if (!drag || e.pointerId !== drag.id) return;
      this.panBy(e.clientX - drag.x, e.clientY - drag.y);
      drag.x = e.clientX;
      drag.y = e.clientY;
    });
    const end = (e) => {
      if (!drag || e.pointerId !== drag.id) return;
      drag = null;
      vp.classList.remove("dragging");
    };
    vp.addEventListener("pointerup", end);
    vp.addEventListener("pointercancel", end);
  }

  /** + / − / 0 zoom in, out and fit (arrows are left alone: they step through items). */
  handleKey(e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return false;  // the browser's own zoom
    if (e.key === "+" || e.key === "=") this.zoomBy(STEP);
    else if (e.key === "-" || e.key === "_") this.zoomBy(1 / STEP);
    else if (e.key === "0") this.fit();
    else return false;
    return true;
  }

  /** Zoom one step in (`+1`) or out (`-1`) around the centre. */
  step(direction) {
    this.zoomBy(direction > 0 ? STEP : 1 / STEP);
  }
}

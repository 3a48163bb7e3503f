"use strict";
// The drawing pad, for both pages: white strokes on black, as the models' preprocessing expects, drawn with a
// mouse, pen or finger. new DrawingPad(canvas, {start, move, end}): `start` is told as a stroke begins, `move` as
// it goes on, `end` as it is released. `picture` (an image drawn under the strokes, scaled to fit) is the draw
// page's dropped file; a new stroke takes it away.
const PAD_STROKE = 18;

class DrawingPad {
  constructor(canvas, handlers = {}) {
    this.canvas = canvas;
    this.context = canvas.getContext("2d");
    this.strokes = [];   // each stroke: a list of [x, y] points; redrawn for undo
    this.current = null;
    this.picture = null;
    this.version = 0;    // one more with each stroke, Clear, Undo and drop: a drop read after another of them is stale
    this.decoding = 0;   // dropped files the browser is still reading
    canvas.addEventListener("pointerdown", (event) => {
      canvas.setPointerCapture(event.pointerId);
      this.version += 1;
      if (handlers.start) handlers.start();
      this.picture = null;
      this.current = [this.point(event)];
      this.strokes.push(this.current);
      this.redraw();
    });
    canvas.addEventListener("pointermove", (event) => {
      if (!this.current) return;
      this.current.push(this.point(event));
      this.redraw();
      if (handlers.move) handlers.move();
    });
    const release = () => {
      if (!this.current) return;
      this.current = null;
      if (handlers.end) handlers.end();
    };
    canvas.addEventListener("pointerup", release);
    canvas.addEventListener("pointercancel", release);
  }

  // The draw pages' Clear and Undo buttons (#clear and #undo) and drops on the pad. `changed()` is told first of each
  // (the page's new epoch); then `drawn()` after an Undo that leaves strokes, `empty()` after Clear or an Undo that
  // leaves none, and `dropped(file, picture)` once the browser has read a dropped file: PICTURE is what the pad now
  // shows, scaled to fit, or null for a file the browser cannot draw (a .npy array: the draw page's server may still
  // read it). A drop drawn on, cleared, undone or dropped on again while it was read is never told.
  wire({ changed, drawn, empty, dropped }) {
    document.getElementById("clear").addEventListener("click", () => { this.version += 1; changed(); this.clear(); empty(); });
    document.getElementById("undo").addEventListener("click", () => {
      this.version += 1;
      changed();
      if (this.strokes.length) this.strokes.pop(); else this.picture = null;   // right after a drop, Undo takes the image away
      this.redraw();
      if (this.strokes.length) drawn(); else empty();
    });
    this.canvas.addEventListener("dragover", (event) => { event.preventDefault(); this.canvas.classList.add("dragover"); });
    this.canvas.addEventListener("dragleave", () => this.canvas.classList.remove("dragover"));
    this.canvas.addEventListener("drop", async (event) => {
      event.preventDefault();
      this.canvas.classList.remove("dragover");
      const file = event.dataTransfer.files[0];
      if (!file) return;
      const version = ++this.version;
      changed();
      this.clear();   // the pad now stands for the dropped file, not the old drawing
      this.decoding += 1;
      const picture = await createImageBitmap(file).catch(() => null);
      this.decoding -= 1;
      if (version !== this.version) return;
      this.picture = picture;
      this.redraw();
      dropped(file, picture);
    });
  }

  point(event) {   // the pointer on the canvas' own pixels, whatever its size on screen
    const box = this.canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * this.canvas.width / box.width, (event.clientY - box.top) * this.canvas.height / box.height];
  }

  clear() { this.strokes.length = 0; this.current = null; this.picture = null; this.redraw(); }

  redraw() {
    const { canvas, context } = this;
    context.fillStyle = "#000";
    context.fillRect(0, 0, canvas.width, canvas.height);
    if (this.picture) {
      const scale = Math.min(canvas.width / this.picture.width, canvas.height / this.picture.height);
      const width = this.picture.width * scale, height = this.picture.height * scale;
      context.drawImage(this.picture, (canvas.width - width) / 2, (canvas.height - height) / 2, width, height);
    }
    Object.assign(context, { strokeStyle: "#fff", lineWidth: PAD_STROKE, lineCap: "round", lineJoin: "round" });
    for (const stroke of this.strokes) {
      context.beginPath();
      stroke.forEach(([x, y], i) => i ? context.lineTo(x, y) : context.moveTo(x, y));
      if (stroke.length === 1) context.lineTo(stroke[0][0] + 0.1, stroke[0][1]);
      context.stroke();
    }
  }
}

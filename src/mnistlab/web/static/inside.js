"use strict";
// Loaded by the draw page (index.html) and the lab (lab.html) alike: one renderer of the inside view for both,
// after decode.js (the answer's arrays) and colours.js (its colour maps).
// The inside view of one model. insideView(explanation, input, selection) returns its
// element; `selection` ({layer, index} of the enlarged CNN map, or {}) is the caller's, kept across drawings.

function paragraph(text) { const p = document.createElement("p"); p.textContent = text; return p; }
function heading(text) { const h = document.createElement("h3"); h.textContent = text; return h; }

function insideView(explanation, input, selection) {
  const view = document.createElement("div");
  view.className = "inside";
  view.dataset.family = explanation.family;
  view.append(heading("Inside"), paragraph(insideNote(explanation)));
  const label = (c) => explanation.labels[c];
  if (explanation.family === "mlp") renderMlp(view, explanation);
  if (explanation.family === "cnn") renderCnn(view, explanation, selection);
  if (explanation.family === "rnn") renderRnn(view, explanation, label, input);
  // Which pixels decided it: the predicted class, then the runner-up, on one colour scale (the larger
  // of the two maps' largest magnitudes), so that a runner-up the model hardly considered looks as faint
  // as it is; each map says its class's probability, and the bar under them gives the scale.
  const attributions = explanation.attributions, maps = decode(attributions.maps), box = document.createElement("div");
  const top = scaleOf(maps.data);
  box.className = "attribution";
  view.append(heading("Which pixels decided it"));
  attributions.classes.forEach((c, k) => {
    const part = maps.data.subarray(784 * k, 784 * (k + 1)), role = k ? "runner-up" : "prediction";
    const figure = document.createElement("figure"), caption = document.createElement("figcaption");
    const canvas = paint(28, 28, (i) => part[i] / top, signed, "attribution-" + role);
    canvas.title = role + " " + label(c);
    caption.className = "probability";
    caption.textContent = "'" + label(c) + "' " + (100 * explanation.probabilities[c]).toFixed(1) + "%";
    figure.append(canvas, caption);
    box.append(figure);
  });
  const scale = document.createElement("div"), bar = document.createElement("span");
  scale.className = "scale";
  bar.className = "colour-bar";
  bar.title = "both maps: blue lowers the class, red raises it";
  const end = (text) => { const s = document.createElement("span"); s.textContent = text; return s; };
  scale.append(end("-" + top.toPrecision(2)), bar, end("+" + top.toPrecision(2)));
  scale.dataset.top = top;
  view.append(box, scale, paragraph(explanation.notes.attribution + " Right: the same for the runner-up, '" + label(attributions.classes[1]) + "', on the same scale (probability per pixel)."));
  return view;
}

// What the inside view shows, in words: the server's, except for a bidirectional RNN (it has no
// belief after each row): its note speaks of a heat map and of hidden states that are not drawn here.
const BIDIRECTIONAL_NOTE = "This RNN is bidirectional: it reads the 28 rows both ways, top to bottom and bottom to top, "
  + "and decides from both readings together, so there is no belief after each row to show.";
function insideNote(explanation) {
  return explanation.family === "rnn" && !explanation.reading.beliefs ? BIDIRECTIONAL_NOTE : explanation.notes.inside;
}

function renderMlp(view, explanation) {
  explanation.layers.forEach((layer) => {
    const values = decode(layer.values).data, columns = Math.ceil(Math.sqrt(values.length)), top = scaleOf(values);
    view.append(heading(layer.name + ": " + values.length + " units"));
    view.append(paint(columns, Math.ceil(values.length / columns), (i) => i < values.length ? values[i] / top : 0, hot, "units"));
  });
  if (!explanation.templates) return;
  const templates = decode(explanation.templates.weights), row = document.createElement("div");
  view.append(heading("Templates of the most active first-layer units"));
  row.className = "maps";
  explanation.templates.units.forEach((unit, k) => {
    const part = templates.data.subarray(784 * k, 784 * (k + 1)), top = scaleOf(part);
    const canvas = paint(28, 28, (i) => part[i] / top, signed, "template");
    canvas.title = "unit " + unit;
    row.append(canvas);
  });
  view.append(row);
}

function renderCnn(view, explanation, selection) {
  const kernels = explanation.kernels ? decode(explanation.kernels.weights) : null;
  // The enlarged map has its place kept right under the tiles (empty until one is clicked): it shows
  // where the user is looking, and filling it moves nothing.
  const enlarged = document.createElement("div");
  view.append(paragraph("Click a tile to enlarge it under the tiles; a first-layer tile shows the kernel that made it (red +, blue -)."));
  const tiles = [];
  explanation.layers.forEach((layer, layerIndex) => {
    const [height, width, channels] = layer.shape, values = decode(layer.values).data, top = scaleOf(values);
    view.append(heading(layer.name + ": " + channels + " maps " + height + "x" + width + " (" + layer.kind + ")"));
    const row = document.createElement("div");
    row.className = "maps";
    for (let channel = 0; channel < channels; channel++) {
      const valueAt = (i) => values[i * channels + channel] / top;
      const tile = paint(width, height, valueAt, hot, "fmap");
      tile.dataset.layer = layerIndex; tile.dataset.index = channel;
      tile.title = layer.name + " map " + channel;
      tile.onclick = () => {   // a property, not a listener: paint() clears it when the canvas is used again
        selection.layer = layerIndex; selection.index = channel;
        enlarge();
        enlarged.scrollIntoView({ block: "nearest" });
      };
      row.append(tile);
      tiles.push({ tile, layer, layerIndex, channel, width, height, valueAt });
    }
    view.append(row);
  });
  view.append(enlarged);
  function enlarge() {
    enlarged.innerHTML = "";
    const item = tiles.find((t) => t.layerIndex === selection.layer && t.channel === selection.index);
    for (const t of tiles) t.tile.classList.toggle("selected", t === item);   // none until a tile is clicked
    enlarged.className = item ? "enlarged" : "enlarged empty";
    if (!item) { enlarged.textContent = "the clicked tile, enlarged"; return; }
    const big = paint(item.width, item.height, item.valueAt, hot, "big");
    const side = document.createElement("div");
    side.append(paragraph(item.layer.name + " map " + item.channel + " (" + item.height + "x" + item.width + ")"));
    if (item.layerIndex === 0 && kernels) {  // the first layer's map is this kernel slid over the input
      const [, kh, kw] = kernels.shape, part = kernels.data.subarray(kh * kw * item.channel, kh * kw * (item.channel + 1)), top = scaleOf(part);
      side.append(paragraph("made by this " + kh + "x" + kw + " kernel:"), paint(kw, kh, (i) => part[i] / top, signed, "kernel"));
    }
    enlarged.append(big, side);
  }
  enlarge();
}

function renderRnn(view, explanation, label, pixels) {
  const reading = explanation.reading, input = decode(pixels);
  if (!reading.beliefs) return;   // bidirectional: no belief after each row (insideNote says so)
  const wrap = document.createElement("div");
  wrap.className = "reading";
  const inputFrame = document.createElement("div"), beliefFrame = document.createElement("div");
  inputFrame.className = beliefFrame.className = "frame";
  inputFrame.append(paint(28, 28, (i) => input.data[i], gray, "rows"));
  const caption = paragraph("");
  wrap.append(inputFrame);
  const beliefs = decode(reading.beliefs).data;
  beliefFrame.append(paint(10, 28, (i) => beliefs[i], hot, "beliefs"));
  const digits = document.createElement("div");
  digits.className = "digits";
  for (let c = 0; c < 10; c++) {   // digits as they are; Fashion-MNIST's garments by class number, named on hover
    const s = document.createElement("span");
    s.textContent = /^\d$/.test(String(label(c))) ? label(c) : c;
    s.title = label(c);
    digits.append(s);
  }
  beliefFrame.append(digits);
  wrap.append(beliefFrame);
  const marks = [inputFrame, beliefFrame].map((frame) => { const m = document.createElement("div"); m.className = "rowmark"; frame.append(m); return m; });
  function mark(row) {   // row: 1..28, the rows read so far
    for (const m of marks) m.style.top = (112 * (row - 0.5) / 28) + "px";
    const part = beliefs.subarray(10 * (row - 1), 10 * row);
    let best = 0; part.forEach((v, c) => { if (v > part[best]) best = c; });
    caption.textContent = "after row " + row + " of 28: '" + label(best) + "' (" + (100 * part[best]).toFixed(0) + "%)";
  }
  for (const frame of [inputFrame, beliefFrame]) {
    frame.addEventListener("mousemove", (event) => {
      const box = frame.querySelector("canvas").getBoundingClientRect();
      mark(Math.min(28, Math.max(1, Math.ceil(28 * (event.clientY - box.top) / box.height))));
    });
    frame.addEventListener("mouseleave", () => mark(28));
  }
  view.append(heading("Belief while reading, row by row"), wrap, caption);
  mark(28);
}
// ---- end of the inside view ----

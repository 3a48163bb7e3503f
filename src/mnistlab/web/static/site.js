"use strict";
// The shared site's page (site.html): the pad (pad.js), each model's answer as the user draws and under it the
// inside of the network (inside.js), all computed in this browser: the pad's pixels are made into the 28x28 input
// as `serve` makes them (preprocess.js), and each model runs in a worker of its own (site-worker.js).
//
// The same rule as the draw page: a page never shows an answer older than the user's last action. Every action
// that makes earlier answers wrong (a new stroke, Undo, Clear, a dropped file) starts a new epoch; an answer of an
// older epoch, or older than the one on screen, is dropped. At most one drawing is being answered at a time, and
// only the newest waits behind it.

let epoch = 0, requestsSent = 0, newestShown = 0, inFlight = false, queued = false;
// What the pad shows changes with every pen move, stroke, Undo, Clear and drop: each change is a new version, and a
// version is answered once. Lifting the pen changes nothing: the answer of the last move is the stroke's.
let drawingVersion = 0, sentVersion = -1;
const MAX_TIMINGS = 1000;     // window.mnistlab.timings keeps the newest
const models = [];            // models.json's entries, each with its worker
const insideViews = {};       // model id -> its inside element for the drawing on screen
const selectedMap = {};       // model id -> {layer, index} of the enlarged CNN map
let answersShown = null;      // model id -> answer on screen, or null
let insideFailed = false;
// Read by the browser tests and the benchmark, to wait for the state they assert instead of racing it.
window.mnistlab = {
  ready: false, sent: 0, answered: 0, dropped: 0, shown: 0, insideFor: 0,
  get busy() { return inFlight || queued || pad.decoding > 0 || this.answered < this.sent; },
  // Per drawing whose inside views were shown: its version, and when (ms on the page's clock, from navigation
  // start) it was sent, its first answer shown and its inside views shown; and the version and time of the last
  // release of the pen.
  timings: [],
  released: null,
};

function newEpoch() { epoch += 1; drawingVersion += 1; queued = false; forget(); }
// The inside views leave the page; their canvases are kept for the next ones (colours.js: recycle).
function forget() { for (const key of Object.keys(insideViews)) { recycle(insideViews[key]); delete insideViews[key]; } }

const padCanvas = document.getElementById("pad");
const pad = new DrawingPad(padCanvas, {
  start: newEpoch,
  move: () => { drawingVersion += 1; requestAnswer(); },
  end: () => { window.mnistlab.released = { at: performance.now(), version: drawingVersion }; requestAnswer(); },
});

const { showEmpty, showError } = emptying(() => { forget(); answersShown = null; showCards(); });

pad.wire({
  changed: newEpoch,
  drawn: requestAnswer,
  empty: showEmpty,
  // What is answered is what the pad shows: the file as the browser decodes it (PNG, JPEG, GIF, WebP...).
  dropped: (file, picture) => {
    if (picture) requestAnswer(); else showError(file.name + ": not an image this browser reads; drop a PNG or JPEG");
  },
});

// The pad's pixels as the models' 28x28 input (preprocess.js), or a NoDigit error.
function padInput() {
  const { data, width, height } = pad.context.getImageData(0, 0, padCanvas.width, padCanvas.height);
  return toMnist(grayOf(data, width, height), width, height).image;
}

function requestAnswer() {
  if (!window.mnistlab.ready) return;   // drawn while the models load: answered as soon as they are ready (start)
  if (!pad.strokes.length && !pad.picture) return;
  if (drawingVersion === sentVersion) return;   // this drawing is being answered, or was
  if (inFlight) { queued = true; return; }
  answer(epoch);
}

// Ask every model's worker for the drawing on the pad: each card shows its model's answer as it comes, then all
// cards their inside views, unless a newer drawing already waits (it will show its own).
async function answer(sentInEpoch) {
  const id = ++requestsSent, version = drawingVersion;
  sentVersion = version;
  window.mnistlab.sent = requestsSent;
  inFlight = true;
  const started = performance.now();
  let firstShownAt = null, image;
  try {
    image = padInput();
  } catch (error) {
    finish(id, sentInEpoch, () => showError(error.message));
    return;
  }
  const current = () => sentInEpoch === epoch && id >= newestShown;
  const results = await Promise.all(models.map((model) => ask(model, { kind: SiteMessage.INSIDE, image, patch: model.occlusion_patch }, (partial) => {
    if (!current()) return;
    if (newestShown < id) { newestShown = id; answersShown = {}; insideFailed = false; forget(); showInput(image); setStatus(""); }
    answersShown[model.id] = { prediction: partial.prediction, probabilities: partial.probabilities, labels: model.labels };
    showCard(model);
    firstShownAt = firstShownAt || performance.now();
    window.mnistlab.shown = id;
  }).catch((error) => ({ error }))));
  finish(id, sentInEpoch, () => {
    const failed = results.find((result) => result.error);
    if (failed) { newestShown = id; showError("a model failed: " + failed.error.message); return; }
    if (queued) return;   // a newer drawing is next: its inside views, not these, are the ones to draw
    newestShown = id;
    answersShown = {};
    forget();   // the views being replaced lend their canvases to the new ones
    models.forEach((model, k) => {
      const result = results[k];
      answersShown[model.id] = { prediction: result.prediction, probabilities: result.probabilities, labels: model.labels };
      insideViews[model.id] = insideView(explanationOf(model, result, image), { shape: [28, 28], data: image }, selectedMap[model.id] || (selectedMap[model.id] = {}));
      showCard(model);
    });
    showInput(image);
    window.mnistlab.shown = id;
    window.mnistlab.insideFor = id;
    const timings = window.mnistlab.timings;
    timings.push({ version, sent: started, answered: firstShownAt, shown: performance.now() });
    if (timings.length > MAX_TIMINGS) timings.shift();
  });
}

function finish(id, sentInEpoch, outcome) {
  if (sentInEpoch === epoch && id >= newestShown) outcome(); else window.mnistlab.dropped += 1;
  window.mnistlab.answered += 1;
  inFlight = false;
  if (queued) { queued = false; requestAnswer(); }
}

// What the draw page's server sends for one model (explain.Explainer.explain), from the worker's arrays, for inside.js.
function explanationOf(model, result, image) {
  const views = model.outputs.filter((output) => output.role === "view");
  const explanation = {
    family: model.family,
    labels: model.labels,
    prediction: result.prediction,
    probabilities: result.probabilities,
    layers: views.map((view, k) => ({ name: view.name, kind: view.kind, shape: view.shape, values: { shape: view.shape, data: result.views[k] } })),
    attributions: { classes: [result.prediction, result.runnerUp], maps: { shape: [2, 28, 28], data: result.maps } },
    notes: { inside: model.notes.inside, attribution: model.notes.attribution[result.prediction] },
  };
  if (model.family === "mlp" && model.templates) {
    // The first layer's most active units (Explainer._templates: by activation, ties in unit order).
    const first = result.views[0], units = Array.from(first.keys()).sort((a, b) => first[b] - first[a] || a - b).slice(0, model.templates.count);
    const weights = new Float32Array(784 * units.length);
    units.forEach((unit, k) => weights.set(model.templates.unpacked.subarray(784 * unit, 784 * (unit + 1)), 784 * k));
    explanation.templates = { units, weights: { shape: [units.length, 28, 28], data: weights } };
  }
  if (model.family === "cnn" && model.kernels) explanation.kernels = { weights: { shape: model.kernels.shape, data: unpack(model.kernels) } };
  if (model.family === "rnn") explanation.reading = { beliefs: result.beliefs ? { shape: [28, 10], data: result.beliefs } : null };
  return explanation;
}

// site.py's packed weights ({shape, scales, int8: base64}) as floats.
function unpack(packed) {
  const bytes = Uint8Array.from(atob(packed.int8), (c) => c.charCodeAt(0)), values = new Int8Array(bytes.buffer);
  const per = values.length / packed.scales.length, data = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = values[i] * packed.scales[Math.floor(i / per)];
  return data;
}

// ---------------------------------------------------------------------------
// The workers: one per model, each message answered by the reply with its id.

let messages = 0;
function ask(model, message, onAnswer) {
  const id = ++messages;
  return new Promise((resolve, reject) => {
    model.pending.set(id, { resolve, reject, onAnswer });
    model.worker.postMessage({ ...message, id });
  });
}

function startWorker(model) {
  model.worker = new Worker("static/site-worker.js");
  model.pending = new Map();
  model.worker.onmessage = (event) => {
    const reply = event.data, waiting = model.pending.get(reply.id);
    if (!waiting) return;
    if (reply.kind === SiteMessage.ANSWER) { if (waiting.onAnswer) waiting.onAnswer(reply); return; }
    model.pending.delete(reply.id);
    if (reply.kind === SiteMessage.ERROR) waiting.reject(new Error(model.family.toUpperCase() + ": " + reply.error));
    else waiting.resolve(reply);
  };
  model.worker.onerror = (event) => {
    for (const waiting of model.pending.values()) waiting.reject(new Error(model.family.toUpperCase() + ": " + event.message));
    model.pending.clear();
  };
  return ask(model, { kind: SiteMessage.LOAD, url: new URL("models/" + model.file, location.href).href, inputShape: model.input_shape, outputs: model.outputs });
}

// ---------------------------------------------------------------------------
// What is on screen besides the pad.

// Written straight into the input's canvas: paint() could take a spare canvas that a card still shows.
function showInput(pixels) {
  const small = document.getElementById("input28").getContext("2d"), picture = small.createImageData(28, 28);
  for (let i = 0; i < 784; i++) {
    const value = 255 * pixels[i];
    picture.data[4 * i] = picture.data[4 * i + 1] = picture.data[4 * i + 2] = value;
    picture.data[4 * i + 3] = 255;
  }
  small.putImageData(picture, 0, 0);
}

function cardOf(model) {
  const shown = answersShown ? answersShown[model.id] : null;
  return modelCard(model, shown || null, (shown && insideViews[model.id]) || insideWaiting(shown, insideFailed));
}

function showCards() { document.getElementById("models").replaceChildren(...models.map(cardOf)); }

// One model's card redrawn, the others left as they are.
function showCard(model) {
  const old = document.querySelector('.model[data-model="' + model.id + '"]');
  if (old) old.replaceWith(cardOf(model)); else showCards();
}

// The line over the cards: the models' data, said once.
function describeModels() {
  const line = document.getElementById("chosen");
  line.replaceChildren(models.length === 1 ? "One model, trained on " : models.length + " models, trained on ", ...datasetsSaid(models), ".");
  titleFor(models);
}

async function start() {
  try {
    const response = await fetch("models/models.json");
    if (!response.ok) throw new Error("models/models.json: " + response.status + " " + response.statusText);
    const manifest = await response.json();
    document.getElementById("made-with").textContent = manifest.mnistlab + ", " + manifest.built.slice(0, 10);
    for (const entry of manifest.models) {
      if (entry.templates) entry.templates.unpacked = unpack(entry.templates.weights);
      models.push(entry);
    }
    describeModels();
    showCards();
    await Promise.all(models.map(startWorker));
    window.mnistlab.ready = true;
    setStatus("");
    requestAnswer();   // drawn while the models loaded
  } catch (error) {
    showError("cannot load the models: " + error.message);
  }
}

// For the parity tests and the benchmark: every model's probabilities for COUNT 28x28 inputs, as the page computes them.
window.mnistlabSite = {
  models,
  padInput,
  classify: (images, count) => Promise.all(models.map((model) => ask(model, { kind: SiteMessage.CLASSIFY, images, count }).then((reply) => reply.probabilities))),
  inside: (image) => Promise.all(models.map((model) => ask(model, { kind: SiteMessage.INSIDE, image, patch: model.occlusion_patch }))),
};

pad.redraw();
start();

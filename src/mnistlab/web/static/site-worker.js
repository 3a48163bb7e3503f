"use strict";
// One model of the shared site, in a Web Worker of its own (site.js starts one per model): the models answer side
// by side, and the page's pen never waits for them. It runs the model's inside-view graph (models/N-FAMILY.onnx:
// each layer the inside view shows, the RNN's belief after each row, then the probabilities) on onnxruntime-web.
//
// The messages, in and out, are site-messages.js' SiteMessage.

importScripts("site-messages.js", "../ort/ort.wasm.min.js");
// One thread: threads need a cross-origin-isolated page, which a plain static host cannot make; the models
// run in parallel as workers instead.
ort.env.wasm.numThreads = 1;
ort.env.wasm.wasmPaths = new URL("../ort/", self.location.href).href;

let session = null, inputName = null, inputShape = null, outputs = null;
const CLASSIFY_BATCH = 100;

self.onmessage = async (event) => {
  const message = event.data;
  try {
    if (message.kind === SiteMessage.LOAD) {
      session = await ort.InferenceSession.create(message.url, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
      inputName = session.inputNames[0];
      inputShape = message.inputShape;
      outputs = message.outputs;
      self.postMessage({ kind: SiteMessage.LOADED, id: message.id });
    } else if (message.kind === SiteMessage.INSIDE) {
      await inside(message);
    } else if (message.kind === SiteMessage.CLASSIFY) {
      const probabilities = await classify(message.images, message.count);
      self.postMessage({ kind: SiteMessage.CLASSIFIED, id: message.id, probabilities }, [probabilities.buffer]);
    }
  } catch (error) {
    self.postMessage({ kind: SiteMessage.ERROR, id: message.id, error: String((error && error.message) || error) });
  }
};

// Every output of the graph for COUNT 28x28 inputs laid end to end in IMAGES (Float32Array); with `onlyLast`, the
// probabilities alone (the runtime then copies none of the layers' outputs out of its memory).
async function run(images, count, onlyLast = false) {
  const feeds = { [inputName]: new ort.Tensor("float32", images, [count, ...inputShape]) };
  const names = onlyLast ? session.outputNames.slice(-1) : session.outputNames;
  const results = await session.run(feeds, names);
  return names.map((name) => results[name].data);
}

async function classify(images, count) {
  const probabilities = new Float32Array(count * 10);
  for (let start = 0; start < count; start += CLASSIFY_BATCH) {
    const size = Math.min(CLASSIFY_BATCH, count - start);
    const [last] = await run(images.subarray(784 * start, 784 * (start + size)), size, true);
    probabilities.set(last, 10 * start);
  }
  return probabilities;
}

// explain.Explainer._explain, for one image: every view, then the occlusion map (Explainer._occlusion) of the
// predicted class and the runner-up. A block with no ink is left out of the batch: blanking it changes nothing,
// so its score is the image's own and its map is 0, as Python computes it; a drawing covers about half the blocks.
async function inside(message) {
  const image = message.image, size = message.patch;
  const all = await run(image, 1);
  const probabilities = Float32Array.from(all[all.length - 1]);
  const ranked = Array.from(probabilities.keys()).sort((a, b) => probabilities[b] - probabilities[a] || a - b);
  const prediction = ranked[0], runnerUp = ranked[1];
  self.postMessage({ kind: SiteMessage.ANSWER, id: message.id, probabilities, prediction });
  const views = [], copies = [];
  let beliefs = null;
  outputs.forEach((output, k) => {
    if (output.role === "view") { const copy = Float32Array.from(all[k]); views.push(copy); copies.push(copy.buffer); }
    if (output.role === "beliefs") { beliefs = Float32Array.from(all[k]); copies.push(beliefs.buffer); }
  });
  const corners = [];
  for (let row = 0; row < 28; row += size) {
    for (let column = 0; column < 28; column += size) {
      let hasInk = false;
      for (let y = row; y < Math.min(28, row + size) && !hasInk; y++) {
        for (let x = column; x < Math.min(28, column + size); x++) if (image[28 * y + x] !== 0) { hasInk = true; break; }
      }
      if (hasInk) corners.push([row, column]);
    }
  }
  const maps = new Float32Array(2 * 784);
  if (corners.length) {
    const occluded = new Float32Array(784 * corners.length);
    corners.forEach(([row, column], index) => {
      const copy = occluded.subarray(784 * index, 784 * (index + 1));
      copy.set(image);
      for (let y = row; y < Math.min(28, row + size); y++) copy.fill(0, 28 * y + column, 28 * y + Math.min(28, column + size));
    });
    const [scores] = await run(occluded, corners.length, true);
    corners.forEach(([row, column], index) => {
      [prediction, runnerUp].forEach((target, position) => {
        const drop = (probabilities[target] - scores[10 * index + target]) / (size * size);
        for (let y = row; y < Math.min(28, row + size); y++) {
          maps.fill(drop, 784 * position + 28 * y + column, 784 * position + 28 * y + Math.min(28, column + size));
        }
      });
    });
  }
  copies.push(maps.buffer);
  self.postMessage({ kind: SiteMessage.INSIDE_SHOWN, id: message.id, probabilities, prediction, runnerUp, views, beliefs, maps, blocks: corners.length }, copies);
}

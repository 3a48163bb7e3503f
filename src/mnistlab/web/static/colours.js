"use strict";
// Colour maps and pictures, for both pages: a value to [r, g, b], and canvases painted with them.
// "hot" for activations (brighter is larger), red/white/blue for signed values, grey for pixels.
// Each writes into OUT when given (paint's one array for all its pixels: no garbage per pixel), else a new array.
function hot(v, out = [0, 0, 0]) { out[0] = 255 * Math.min(1, 3 * v); out[1] = 255 * Math.min(1, Math.max(0, 3 * v - 1)); out[2] = 255 * Math.max(0, 3 * v - 2); return out; }
function signed(v, out = [0, 0, 0]) {
  if (v >= 0) { out[0] = 255; out[1] = out[2] = 255 * (1 - v); } else { out[0] = out[1] = 255 * (1 + v); out[2] = 255; }
  return out;
}
function gray(v, out = [0, 0, 0]) { out[0] = out[1] = out[2] = 255 * v; return out; }

// Canvases of views the page has dropped, by size, for the next view to paint on (recycle(element) gives them):
// making a canvas costs far more than painting a small one does, and a CNN's inside view has 320 of them.
const spareCanvases = new Map();
function recycle(element) {
  for (const canvas of element.querySelectorAll("canvas")) {
    const key = canvas.width + "x" + canvas.height;
    if (!spareCanvases.has(key)) spareCanvases.set(key, []);
    spareCanvases.get(key).push(canvas);
  }
}

// A WIDTH x HEIGHT canvas whose pixel i is colour(valueAt(i)): a spare one of that size, cleared of what its last
// view set on it (class, title, data, click handler), or a new one.
function paint(width, height, valueAt, colour, className) {
  const spare = spareCanvases.get(width + "x" + height);
  const canvas = (spare && spare.pop()) || document.createElement("canvas");
  canvas.width = width; canvas.height = height;
  canvas.className = className || "";
  canvas.removeAttribute("title");
  canvas.onclick = null;
  for (const key of Object.keys(canvas.dataset)) delete canvas.dataset[key];
  const context2d = canvas.getContext("2d"), image = context2d.createImageData(width, height);
  const data = image.data, rgb = [0, 0, 0];   // written in place: an inside view paints some 70,000 pixels per drawing
  for (let i = 0; i < width * height; i++) {
    colour(valueAt(i), rgb);
    data[4 * i] = rgb[0]; data[4 * i + 1] = rgb[1]; data[4 * i + 2] = rgb[2]; data[4 * i + 3] = 255;
  }
  context2d.putImageData(image, 0, 0);
  return canvas;
}

// Rows of pixels as a grey picture, from LOW (black) to HIGH (white): a model's 28x28 input, a test digit.
function grayPicture(rows, low = 0, high = 1, className) {
  const flat = rows.flat();
  return paint(rows[0].length, rows.length, (i) => (flat[i] - low) / (high - low), gray, className);
}

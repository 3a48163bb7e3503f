"use strict";
// Colour maps and pictures, for both pages: a value to [r, g, b], and canvases painted with them.
// "hot" for activations (brighter is larger), red/white/blue for signed values, grey for pixels.
function hot(v) { return [255 * Math.min(1, 3 * v), 255 * Math.min(1, Math.max(0, 3 * v - 1)), 255 * Math.max(0, 3 * v - 2)]; }
function signed(v) { return v >= 0 ? [255, 255 * (1 - v), 255 * (1 - v)] : [255 * (1 + v), 255 * (1 + v), 255]; }
function gray(v) { return [255 * v, 255 * v, 255 * v]; }

// A WIDTH x HEIGHT canvas whose pixel i is colour(valueAt(i)).
function paint(width, height, valueAt, colour, className) {
  const canvas = document.createElement("canvas");
  canvas.width = width; canvas.height = height;
  if (className) canvas.className = className;
  const context2d = canvas.getContext("2d"), image = context2d.createImageData(width, height);
  for (let i = 0; i < width * height; i++) image.data.set([...colour(valueAt(i)), 255], 4 * i);
  context2d.putImageData(image, 0, 0);
  return canvas;
}

// Rows of pixels as a grey picture, from LOW (black) to HIGH (white): a model's 28x28 input, a test digit.
function grayPicture(rows, low = 0, high = 1, className) {
  const flat = rows.flat();
  return paint(rows[0].length, rows.length, (i) => (flat[i] - low) / (high - low), gray, className);
}

"use strict";
// Answers' arrays, for both pages: nested lists, or (large ones) {shape, min, max, uint8: base64 bytes scaled from
// min to max}, as mnistlab.ml.explain.to_json writes them; or (the shared site's, computed in the browser) already
// {shape, data: Float32Array}. decode(array) -> {shape, data: Float32Array}.
function decode(array) {
  if (array.data instanceof Float32Array) return array;
  if (Array.isArray(array)) {
    const shape = [];
    for (let level = array; Array.isArray(level); level = level[0]) shape.push(level.length);
    return { shape, data: Float32Array.from(array.flat(Infinity)) };
  }
  const raw = atob(array.uint8), data = new Float32Array(raw.length), step = (array.max - array.min) / 255;
  for (let i = 0; i < raw.length; i++) data[i] = array.min + raw.charCodeAt(i) * step;
  return { shape: array.shape, data };
}

// The largest magnitude of DATA (1 for all zeros): what a map is scaled by.
function scaleOf(data) { let top = 0; for (const v of data) top = Math.max(top, Math.abs(v)); return top || 1; }

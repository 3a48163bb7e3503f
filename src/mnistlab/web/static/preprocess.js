"use strict";
// The shared site's preprocessing: mnistlab.ml.preprocess.to_mnist, step for step, on the pad's pixels, so that the
// site's models see the 28x28 input that `serve` makes of the same drawing (tests/test_site.py compares the two on
// the same strokes). A comment names each Python step it follows; where the Python relies on a library's own
// arithmetic (Pillow's gray conversion and its resampling, Python's rounding), that arithmetic is written out.

const FRAME = 28, BOX = 20, INK_THRESHOLD = 0.1, MIN_CONTRAST = 0.1, DENOISE_MIN_SIDE = 56;

class NoDigit extends Error {}

// images._rgb_gray on an opaque canvas: Pillow's convert("L") (ITU-R 601-2 luma in 16-bit fixed point,
// Convert.c's L24), then / 255.
function grayOf(rgba, width, height) {
  const gray = new Float64Array(width * height);
  for (let i = 0; i < gray.length; i++) {
    gray[i] = ((rgba[4 * i] * 19595 + rgba[4 * i + 1] * 38470 + rgba[4 * i + 2] * 7471 + 0x8000) >> 16) / 255;
  }
  return gray;
}

// NumPy's median: the middle of the sorted values, or the mean of the two middle ones.
function median(values) {
  const sorted = Float64Array.from(values).sort();
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

// _border: the first row, the last row, the first column, the last column (corners twice).
function border(image, width, height) {
  const values = [];
  for (let x = 0; x < width; x++) values.push(image[x]);
  for (let x = 0; x < width; x++) values.push(image[(height - 1) * width + x]);
  for (let y = 0; y < height; y++) values.push(image[y * width]);
  for (let y = 0; y < height; y++) values.push(image[y * width + width - 1]);
  return values;
}

// median3x3: scipy.ndimage.median_filter(size=3) with its "reflect" edges (the edge pixel repeated).
function median3x3(image, width, height) {
  const out = new Float64Array(image.length), window = new Float64Array(9);
  const at = (x, y) => image[Math.min(height - 1, Math.max(0, y)) * width + Math.min(width - 1, Math.max(0, x))];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let k = 0;
      for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) window[k++] = at(x + dx, y + dy);
      window.sort();
      out[y * width + x] = window[4];
    }
  }
  return out;
}

// Python's round(): halves to the even neighbour.
function roundHalfEven(x) {
  const floor = Math.floor(x), part = x - floor;
  if (part !== 0.5) return part < 0.5 ? floor : floor + 1;
  return floor % 2 === 0 ? floor : floor + 1;
}

// Pillow's resampling filters (Resample.c): their support, and the weight of a distance.
function sinc(x) { if (x === 0) return 1; x *= Math.PI; return Math.sin(x) / x; }
const LANCZOS = { support: 3, weight: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) };
const BILINEAR = { support: 1, weight: (x) => { x = Math.abs(x); return x < 1 ? 1 - x : 0; } };

// Resample.c's precompute_coeffs: for each output pixel, the first input pixel it reads and its normalised weights.
function coefficients(inSize, outSize, filter) {
  const scale = inSize / outSize, filterScale = Math.max(scale, 1), support = filter.support * filterScale;
  const result = [];
  for (let out = 0; out < outSize; out++) {
    const centre = (out + 0.5) * scale;
    const first = Math.max(0, Math.trunc(centre - support + 0.5));
    const last = Math.min(inSize, Math.trunc(centre + support + 0.5));
    const weights = [];
    let total = 0;
    const ss = 1 / filterScale;   // multiplied, as Resample.c does: a division can differ in the last bit
    for (let x = first; x < last; x++) {
      const w = filter.weight((x - centre + 0.5) * ss);
      weights.push(w);
      total += w;
    }
    if (total !== 0) for (let k = 0; k < weights.length; k++) weights[k] /= total;
    result.push({ first, weights });
  }
  return result;
}

// Pillow's Image.resize of a float32 ("F") image: rows first (ResampleHorizontal_32bpc, sums in double, stored as
// float32), over only the rows the columns' pass reads, then columns; a direction whose size is unchanged is skipped.
function resizeF(image, width, height, newWidth, newHeight, filter) {
  let current = image, currentWidth = width;
  const vertical = coefficients(height, newHeight, filter);
  const firstRow = vertical[0].first;
  const lastRow = vertical[newHeight - 1].first + vertical[newHeight - 1].weights.length;
  let rowOffset = 0;
  if (newWidth !== width) {
    const horizontal = coefficients(width, newWidth, filter), rows = lastRow - firstRow;
    const temp = new Float32Array(newWidth * rows);
    for (let y = 0; y < rows; y++) {
      for (let x = 0; x < newWidth; x++) {
        const { first, weights } = horizontal[x];
        let sum = 0;
        for (let k = 0; k < weights.length; k++) sum += current[(y + firstRow) * currentWidth + first + k] * weights[k];
        temp[y * newWidth + x] = sum;
      }
    }
    current = temp;
    currentWidth = newWidth;
    rowOffset = firstRow;
  }
  if (newHeight === height) return current;
  const out = new Float32Array(currentWidth * newHeight);
  for (let y = 0; y < newHeight; y++) {
    const { first, weights } = vertical[y];
    for (let x = 0; x < currentWidth; x++) {
      let sum = 0;
      for (let k = 0; k < weights.length; k++) sum += current[(first - rowOffset + k) * currentWidth + x] * weights[k];
      out[y * currentWidth + x] = sum;
    }
  }
  return out;
}

// to_mnist: a gray image (width x height, values in [0, 1]) -> the 28x28 input, Float32Array(784).
function toMnist(gray, width, height) {
  const inverted = median(border(gray, width, height)) > 0.5;
  let ink = inverted ? gray.map((v) => 1 - v) : gray;
  if (Math.min(width, height) >= DENOISE_MIN_SIDE) {
    const edge = border(ink, width, height);
    if (Math.max(...edge) - Math.min(...edge) > 0) ink = median3x3(ink, width, height);
  }
  const edge = border(ink, width, height);
  const background = median(edge);
  const noise = 1.4826 * median(edge.map((v) => Math.abs(v - background)));
  const floor = Math.min(background + 3 * noise, 0.95);
  let peak = -Infinity;
  for (const v of ink) if (v > peak) peak = v;
  if (peak - floor < MIN_CONTRAST) throw new NoDigit("no digit found (the pad is blank or has almost no contrast); draw a digit");
  // The ink's bounding box, then the contrast stretched over that box alone.
  const threshold = floor + INK_THRESHOLD * (peak - floor);
  let top = height, bottom = -1, left = width, right = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (ink[y * width + x] > threshold) {
        if (y < top) top = y;
        if (y > bottom) bottom = y;
        if (x < left) left = x;
        if (x > right) right = x;
      }
    }
  }
  bottom += 1; right += 1;
  const boxHeight = bottom - top, boxWidth = right - left;
  const cropped = new Float64Array(boxHeight * boxWidth);
  for (let y = 0; y < boxHeight; y++) {
    for (let x = 0; x < boxWidth; x++) {
      const v = (ink[(top + y) * width + left + x] - floor) / (peak - floor);
      cropped[y * boxWidth + x] = Math.min(1, Math.max(0, v));
    }
  }
  const scale = BOX / Math.max(boxHeight, boxWidth);
  const newHeight = Math.max(1, roundHalfEven(boxHeight * scale)), newWidth = Math.max(1, roundHalfEven(boxWidth * scale));
  let patch = cropped;
  if (newHeight !== boxHeight || newWidth !== boxWidth) {
    const resized = resizeF(Float32Array.from(cropped), boxWidth, boxHeight, newWidth, newHeight, scale < 1 ? LANCZOS : BILINEAR);
    patch = Float64Array.from(resized, (v) => Math.min(1, Math.max(0, v)));
  }
  return { image: centred(patch, newWidth, newHeight), inverted, box: [top, left, bottom, right] };
}

// NumPy's sum of a contiguous run of float64s (pairwise_sum in its loops_utils.h): eight running sums by blocks of
// up to 128 values, halves above that. The centring rounds the centre of mass half to even, and a symmetric drawing
// puts it exactly on a half: summing in NumPy's order keeps the last bit, and the pixel, the same as Python's.
function pairwiseSum(values, start = 0, count = values.length - start) {
  if (count < 8) {
    let sum = 0;
    for (let i = start; i < start + count; i++) sum += values[i];
    return sum;
  }
  if (count <= 128) {
    const r = Array.from(values.subarray ? values.subarray(start, start + 8) : values.slice(start, start + 8));
    let i = 8;
    for (; i < count - (count % 8); i += 8) for (let j = 0; j < 8; j++) r[j] += values[start + i + j];
    let sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < count; i++) sum += values[start + i];
    return sum;
  }
  let half = Math.floor(count / 2);
  half -= half % 8;
  return pairwiseSum(values, start, half) + pairwiseSum(values, start + half, count - half);
}

// _centred: the patch in a 28x28 frame with its centre of mass at pixel (14, 14), clipped where it does not fit.
// Its sums as NumPy makes them: each row's pairwise (sum(axis=1)); each column's row after row (sum(axis=0) over
// a 2-D array), pairwise where the patch is one column wide; the weighted sums and the total pairwise.
function centred(patch, width, height) {
  const total = pairwiseSum(patch);
  const rowWeighted = new Float64Array(height), columnSums = new Float64Array(width);
  for (let y = 0; y < height; y++) rowWeighted[y] = pairwiseSum(patch, y * width, width) * y;
  if (width === 1) columnSums[0] = pairwiseSum(patch);
  else for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) columnSums[x] += patch[y * width + x];
  const columnWeighted = columnSums.map((sum, x) => sum * x);
  const offsetRow = roundHalfEven(FRAME / 2 - pairwiseSum(rowWeighted) / total);
  const offsetColumn = roundHalfEven(FRAME / 2 - pairwiseSum(columnWeighted) / total);
  const frame = new Float32Array(FRAME * FRAME);
  for (let y = Math.max(0, offsetRow); y < Math.min(FRAME, offsetRow + height); y++) {
    for (let x = Math.max(0, offsetColumn); x < Math.min(FRAME, offsetColumn + width); x++) {
      frame[y * FRAME + x] = patch[(y - offsetRow) * width + x - offsetColumn];
    }
  }
  return frame;
}

"use strict";
// The lab's plots (SVG): a run's curves, and setups' means over seeds with their 95% bands.

const finite = (value) => value !== null && value !== undefined && isFinite(value);

// One plot's frame, shared by a run's curves and the compare view's bands: axes, labels, and the x and y of a point.
// FIRST_EPOCH: 1 for curves, 0 for dynamics (measured before training too).
function plotFrame(svg, values, range, lastEpoch, title, firstEpoch = 1) {
  const [width, height, left, bottom, top] = [340, 200, 40, 22, 14];
  let [low, high] = range || [Math.min(...values.filter(finite), Infinity), Math.max(...values.filter(finite), -Infinity)];
  if (!isFinite(low) || !isFinite(high)) [low, high] = [0, 1];
  if (high - low < 1e-9) [low, high] = [low - 0.5, high + 0.5];
  const x = (epoch) => left + (lastEpoch <= firstEpoch ? (width - left - 10) / 2 : (epoch - firstEpoch) / (lastEpoch - firstEpoch) * (width - left - 10));
  const y = (value) => top + (1 - (value - low) / (high - low)) * (height - top - bottom);
  const ns = "http://www.w3.org/2000/svg";
  const node = (tag, attributes) => { const child = document.createElementNS(ns, tag); for (const [k, v] of Object.entries(attributes)) child.setAttribute(k, v); return child; };
  svg.replaceChildren();
  svg.append(node("line", { x1: left, y1: height - bottom, x2: width - 5, y2: height - bottom, stroke: cssColour("--line") }));
  const label = (text, attributes) => { const t = node("text", attributes); t.textContent = text; svg.append(t); };
  label(title, { x: left, y: 10 });
  label(high.toPrecision(3), { x: 2, y: top + 4 });
  label(low.toPrecision(3), { x: 2, y: height - bottom });
  label(`epoch ${firstEpoch}…${lastEpoch}`, { x: width - 80, y: height - 6 });
  return { x, y, node, low, high };
}

function drawCurve(svg, rows, keys, title, epochs, range) {
  const values = rows.flatMap((row) => keys.map((key) => row[key]));
  const lastEpoch = Math.max(epochs || 1, rows.length ? rows[rows.length - 1].epoch : 1);
  const { x, y, node } = plotFrame(svg, values, range, lastEpoch, title);
  keys.forEach((key, index) => {
    const colour = cssColour(index === 0 ? "--train" : "--val");
    const points = rows.filter((row) => finite(row[key]));
    if (points.length > 1) svg.append(node("polyline", { points: points.map((row) => `${x(row.epoch)},${y(row[key])}`).join(" "), fill: "none", stroke: colour, "stroke-width": 2 }));
    for (const row of points) svg.append(node("circle", { class: "point", cx: x(row.epoch), cy: y(row[key]), r: 3, fill: colour }));
  });
}

// Bands: per setup, its mean over seeds per epoch (a line, class "mean") and the 95% t-interval shaded
// (a path, class "band"; none where an epoch has one seed, so no interval).
// SERIES_OF(setup): its rows (default: its curve of METRIC); FIRST_EPOCH as plotFrame's.
function drawBands(svg, setups, metric, title, seriesOf = (setup) => setup.bands[metric], firstEpoch = 1) {
  const series = setups.map((setup) => seriesOf(setup) || []);
  // Two seeds give a t-interval 12.7 standard errors wide: such a band is drawn, cut to the plot, but does not set
  // its scale, so that it does not squash the other curves (the legend says "2 seeds: a wide band").
  const values = series.flat().flatMap((row) => (row.n === 2 ? [row.mean] : [row.mean, row.ci_low, row.ci_high]));
  const lastEpoch = Math.max(firstEpoch, ...series.map((rows) => (rows.length ? rows[rows.length - 1].epoch : firstEpoch)));
  const { x, y: scale, node, low, high } = plotFrame(svg, values, null, lastEpoch, title, firstEpoch);
  const y = (value) => scale(Math.min(high, Math.max(low, value)));
  const opacity = cssColour("--band-opacity");
  series.forEach((rows, index) => {
    const colour = setupColour(index);
    const banded = rows.filter((row) => finite(row.ci_low) && finite(row.ci_high));
    if (banded.length) {
      // A single epoch is a band a few pixels wide, so that it shows.
      const edges = banded.length === 1 ? [{ ...banded[0], at: x(banded[0].epoch) - 3 }, { ...banded[0], at: x(banded[0].epoch) + 3 }] : banded.map((row) => ({ ...row, at: x(row.epoch) }));
      const upper = edges.map((row) => `${row.at.toFixed(1)},${y(row.ci_high).toFixed(1)}`);
      const lower = edges.slice().reverse().map((row) => `${row.at.toFixed(1)},${y(row.ci_low).toFixed(1)}`);
      svg.append(node("path", { class: "band", "data-setup": index, d: `M${upper.join("L")}L${lower.join("L")}Z`, fill: colour, "fill-opacity": opacity, stroke: "none" }));
    }
    const means = rows.filter((row) => finite(row.mean));
    if (means.length > 1) svg.append(node("polyline", { class: "mean", "data-setup": index, points: means.map((row) => `${x(row.epoch)},${y(row.mean)}`).join(" "), fill: "none", stroke: colour, "stroke-width": 2 }));
    for (const row of means) svg.append(node("circle", { class: "point", cx: x(row.epoch), cy: y(row.mean), r: 2.5, fill: colour }));
  });
}

const SETUP_COLOURS = 6;
const setupColour = (index) => cssColour(`--setup-${index % SETUP_COLOURS}`);
const BAND_METRICS = [["val_accuracy", "validation accuracy"], ["val_loss", "validation loss"], ["accuracy", "training accuracy (as Keras reports it: dropout on)"], ["loss", "training loss"]];

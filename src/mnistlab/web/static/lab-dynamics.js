"use strict";
// A run's dynamics (its dynamics.json, GET api/runs/ID/dynamics): small multiples, a row per kernel and per
// activation, a column per quantity with one scale for the column, so that the rows compare at a glance; and each
// histogram over epochs as a heat map. Asked again after each epoch while the run trains (lab-run.js).

// [key, column title, logarithmic scale]: updates and gradients span orders of magnitude, norms do not.
const WEIGHT_FIGURES = [["norm", "weight norm", false], ["update_ratio", "update / weight", true], ["gradient_norm", "gradient norm", true]];
const SHARE_FIGURES = [["dead", "never firing"], ["saturated", "saturated"]];

// LIVE_EPOCH: the epoch whose end asked (while the run trains); its answer holds that epoch's measurements.
async function showDynamics(runId, generation, liveEpoch = null) {
  // The newest ask wins: an epoch that ends while an older answer is on its way makes that answer stale.
  const asked = (state.dynamicsAsked = (state.dynamicsAsked || 0) + 1);
  let record;
  try {
    record = await api(`api/runs/${runId}/dynamics`, { signal: state.controller.signal });
  } catch (error) {
    if (error.name !== "AbortError" && current(generation) && asked === state.dynamicsAsked) {
      $("#dynamics").replaceChildren(element("p", { class: error.status === 404 ? "muted" : "error", text: error.message }));
    }
    return;
  }
  if (!current(generation) || asked !== state.dynamicsAsked) return;
  $("#dynamics").replaceChildren(...dynamicsTables(record));
  $("#dynamics").classList.remove("muted");
  const shownEpoch = record.epochs[record.epochs.length - 1].epoch;
  window.lab.dynamicsShown = { run: runId, epoch: shownEpoch };
  if (liveEpoch !== null && shownEpoch >= liveEpoch) window.lab.dynamicsLive += 1;
}

function dynamicsTables(record) {
  const epochs = record.epochs;
  const kernels = record.weights.filter((weight) => /kernel$/.test(weight.name));
  const weightScales = WEIGHT_FIGURES.map(([key, , log]) => columnScale(kernels.flatMap((weight) => epochs.map((epoch) => (epoch.weights[weight.name] || {})[key])), log));
  const weights = element("table", { class: "dynamics", id: "dynamics-weights" });
  weights.append(element("tr", {}, element("th", { text: "kernel" }), ...WEIGHT_FIGURES.map(([, title]) => element("th", { text: title })), element("th", { text: "its values over epochs" })));
  for (const weight of kernels) {
    const figures = epochs.map((epoch) => epoch.weights[weight.name] || {});
    weights.append(element("tr", { "data-weight": weight.name }, element("td", { text: `${weight.name} (${weight.shape.join("×")})` }),
      ...WEIGHT_FIGURES.map(([key], column) => element("td", {}, sparkline(epochs.map((epoch, i) => [epoch.epoch, figures[i][key]]), weightScales[column]))),
      element("td", {}, heatMap(figures.map((figure) => figure.histogram)))));
  }
  const watched = record.layers.filter((layer) => epochs.some((epoch) => SHARE_FIGURES.some(([key]) => finite((epoch.layers[layer.name] || {})[key]))));
  const layers = element("table", { class: "dynamics", id: "dynamics-layers" });
  layers.append(element("tr", {}, element("th", { text: "layer output" }), element("th", { text: "share of units or outputs (0–100%)" }), element("th", { text: "its values over epochs" })));
  for (const layer of watched) {
    const figures = epochs.map((epoch) => epoch.layers[layer.name] || {});
    const [key, title] = SHARE_FIGURES.find(([name]) => figures.some((figure) => finite(figure[name])));
    layers.append(element("tr", { "data-layer": layer.name }, element("td", { text: `${layer.name} (${layer.activation}): ${title}` }),
      element("td", {}, sparkline(epochs.map((epoch, i) => [epoch.epoch, figures[i][key]]), { low: 0, high: 1, log: false, percent: true })),
      element("td", {}, heatMap(figures.map((figure) => figure.histogram)))));
  }
  const seconds = epochs.reduce((sum, epoch) => sum + (epoch.seconds || 0), 0);
  const note = element("p", { class: "muted", text: `epoch 0 to ${epochs[epochs.length - 1].epoch}; biases are in \`mnistlab dynamics\` and the JSON; measuring took ${seconds.toFixed(2)} s in all.` });
  return [weights, layers, note];
}

// One scale for a column: its least and largest finite values (positive ones, on a logarithmic scale).
function columnScale(values, log) {
  const usable = values.filter((value) => finite(value) && (!log || value > 0)).map((value) => (log ? Math.log10(value) : value));
  if (!usable.length) return { low: 0, high: 1, log };
  let [low, high] = [Math.min(...usable), Math.max(...usable)];
  if (high - low < 1e-9) [low, high] = [low - 0.5, high + 0.5];
  return { low, high, log };
}

// A small plot of [epoch, value] points on SCALE, epoch 0 at the left; its scale's ends written at its left.
function sparkline(points, scale) {
  const [width, height, left, pad] = [170, 56, 44, 5];
  const lastEpoch = Math.max(1, ...points.map(([epoch]) => epoch));
  const shown = (value) => (scale.percent ? `${(100 * value).toFixed(0)}%` : scale.log ? `1e${value.toFixed(1)}` : value.toPrecision(3));
  const x = (epoch) => left + (epoch / lastEpoch) * (width - left - pad);
  const y = (value) => pad + (1 - ((scale.log ? Math.log10(value) : value) - scale.low) / (scale.high - scale.low)) * (height - 2 * pad);
  const ns = "http://www.w3.org/2000/svg";
  const node = (tag, attributes) => { const child = document.createElementNS(ns, tag); for (const [k, v] of Object.entries(attributes)) child.setAttribute(k, v); return child; };
  const svg = node("svg", { class: "sparkline", viewBox: `0 0 ${width} ${height}`, width, height });
  for (const [value, at] of [[scale.high, pad + 8], [scale.low, height - pad]]) {
    const label = node("text", { x: 2, y: at }); label.textContent = shown(value); svg.append(label);
  }
  const usable = points.filter(([, value]) => finite(value) && (!scale.log || value > 0));
  if (usable.length > 1) svg.append(node("polyline", { points: usable.map(([epoch, value]) => `${x(epoch).toFixed(1)},${y(value).toFixed(1)}`).join(" "), fill: "none", stroke: cssColour("--train"), "stroke-width": 1.5 }));
  for (const [epoch, value] of usable) svg.append(node("circle", { class: "point", cx: x(epoch), cy: y(value), r: 2, fill: cssColour("--train") }));
  return svg;
}

// Each epoch's histogram as a column (low values at the bottom), rebinned onto the range of all epochs, its
// counts as shares of the column's values; painted with the inside view's "hot" map (colours.js).
function heatMap(histograms) {
  const usable = histograms.filter((histogram) => histogram && histogram.counts.some((count) => count > 0));
  if (!usable.length) return element("span", { class: "muted", text: "–" });
  const rows = usable[0].counts.length;
  const low = Math.min(...usable.map((histogram) => histogram.range[0]));
  const high = Math.max(...usable.map((histogram) => histogram.range[1]));
  const span = high - low || 1;
  const columns = histograms.map((histogram) => {
    const column = new Array(rows).fill(0);
    if (!histogram) return column;
    const total = histogram.counts.reduce((sum, count) => sum + count, 0) || 1;
    const width = (histogram.range[1] - histogram.range[0]) / histogram.counts.length;
    histogram.counts.forEach((count, bin) => {
      const centre = histogram.range[0] + (bin + 0.5) * width;
      column[Math.min(rows - 1, Math.floor(((centre - low) / span) * rows))] += count / total;
    });
    return column;
  });
  const largest = Math.max(...columns.flat()) || 1;
  const canvas = paint(columns.length, rows, (i) => Math.sqrt(columns[i % columns.length][rows - 1 - Math.floor(i / columns.length)] / largest), hot, "heat-map");
  canvas.title = `values from ${low.toPrecision(3)} (bottom) to ${high.toPrecision(3)} (top), epoch 0 to ${histograms.length - 1} left to right`;
  return canvas;
}

"use strict";
// The compare view: #/compare?setup=A&setup=B[&dataset=&backend=&by=backend]

function compareHash(request) {
  const parameters = new URLSearchParams();
  for (const setup of request.setups) parameters.append("setup", setup);
  for (const key of ["dataset", "backend", "by"]) if (request[key]) parameters.set(key, request[key]);
  return `#/compare?${parameters}`;
}

async function showCompare(parameters) {
  const generation = newGeneration();
  const view = document.getElementById("view");
  view.replaceChildren(document.getElementById("compare-view").content.cloneNode(true));
  const form = $("#compare-form");
  const request = { setups: parameters.getAll("setup"), dataset: parameters.get("dataset") || "", backend: parameters.get("backend") || "", by: parameters.get("by") || "" };
  form.setups.value = request.setups.join(", ");
  form.by.checked = request.by === "backend";
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const setups = form.setups.value.split(",").map((part) => part.trim()).filter(Boolean);
    location.hash = compareHash({ setups, dataset: form.dataset.value, backend: form.backend.value, by: form.by.checked ? "backend" : "" });
  });
  form.preset.addEventListener("change", () => {
    if (!form.preset.value) return;
    form.setups.value = [...form.setups.value.split(",").map((part) => part.trim()).filter(Boolean), form.preset.value].join(", ");
    form.preset.value = "";
  });
  let schema;
  try {
    schema = state.schema || (state.schema = await api("api/schema", { signal: state.controller.signal }));
  } catch (error) {
    if (error.name !== "AbortError" && current(generation)) $("#compare-error").textContent = error.message;
    return;
  }
  if (!current(generation)) return;
  for (const preset of schema.presets) form.preset.append(element("option", { value: preset.name, text: preset.name }));
  for (const name of ["dataset", "backend"]) {
    for (const choice of schema.run[name].choices.filter((choice) => choice !== "auto")) form[name].append(element("option", { value: choice, text: choice }));
    form[name].value = request[name];
  }
  if (!request.setups.length) {
    $("#compare-error").textContent = "";
    window.lab.compareShown = 0;
    return;
  }
  const query = new URLSearchParams(compareHash(request).slice("#/compare?".length));
  let answer;
  try {
    answer = await api(`api/compare?${query}`, { signal: state.controller.signal });
  } catch (error) {
    if (error.name === "AbortError" || !current(generation)) return;
    $("#compare-error").textContent = error.message;
    window.lab.compareShown = 0;
    return;
  }
  if (!current(generation)) return;
  renderCompare(answer);
  window.lab.compareShown = answer.setups.length;
}

// A setup as the page names it: what sets it apart from its preset (the selector may be a bare config hash).
const setupLabel = (setup, by) => by ? `${setup.setup} on ${setup.backend}` : setup.setup;

function renderCompare(answer) {
  $("#compare-result").hidden = false;
  const labels = new Map(answer.setups.map((setup) => [setup.name, setupLabel(setup, answer.by)]));
  const swatch = (index) => element("span", { class: "swatch", style: `background: ${setupColour(index)}` });
  $("#compare-legend").replaceChildren(...answer.setups.map((setup, index) => element("span", {}, swatch(index), `${labels.get(setup.name)} (${setup.test.n} seed${setup.test.n === 1 ? "" : "s"}${setup.test.n === 2 ? ": a wide band, cut to the plot" : ""})`)));
  $("#band-curves").replaceChildren(...BAND_METRICS.map(([metric, title]) => {
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("class", "curve bands");
    svg.setAttribute("id", `bands-${metric}`);
    svg.setAttribute("viewBox", "0 0 340 200");
    drawBands(svg, answer.setups, metric, title);
    return svg;
  }));
  $("#dynamics-bands").replaceChildren(...dynamicsBands(answer.setups));
  $("#compare-setups tbody").replaceChildren(...answer.setups.map((setup, index) => {
    const runs = element("td");
    setup.run_ids.forEach((runId, position) => runs.append(element("span", { class: "chip status-done" }, element("a", { href: `#/run/${runId}`, text: `s${setup.seeds[position]}` }))));
    if (setup.repeats.count) runs.append(element("div", { class: "muted repeats", text: setup.repeats.words }));
    const test = setup.test;
    const interval = test.ci_low === null ? " (1 seed: no interval)" : ` [${test.ci_low.toFixed(2)}, ${test.ci_high.toFixed(2)}]`;
    const params = setup.params === null ? "–" : Array.isArray(setup.params) ? setup.params.map((count) => count.toLocaleString("en")).join(" / ") : setup.params.toLocaleString("en");
    return element("tr", { "data-setup": index }, element("td", {}, swatch(index), labels.get(setup.name), element("div", { class: "muted", text: `${setup.name} · ${setup.dataset}, ${setup.backend}` })), runs,
      element("td", { class: "number", text: String(test.n) }), element("td", { class: "number", text: percent(test.mean) + interval }),
      element("td", { class: "number", text: params }), bookCell(setup.book_test, setup.book_comparable, setup.book_reason, setup.book_test_in_ci, "", setup.book_where));
  }));
  $("#compare-pairs tbody").replaceChildren(...answer.comparisons.map((pair) => {
    const numbers = pair.difference === undefined;
    const kind = pair.significant === null ? "none" : pair.significant ? "yes" : "no";
    return element("tr", { class: "pair" }, element("td", { text: labels.get(pair.a) || pair.a }), element("td", { text: labels.get(pair.b) || pair.b }),
      element("td", { class: "number", text: numbers ? "–" : `${pair.difference >= 0 ? "+" : ""}${pair.difference.toFixed(2)} points [${pair.ci_low.toFixed(2)}, ${pair.ci_high.toFixed(2)}]` }),
      element("td", { class: "number", text: numbers ? "–" : Number(pair.p_value).toPrecision(3) }),
      element("td", { class: "number", text: numbers ? "–" : pair.cohens_d === null ? "∞ (no spread)" : Number(pair.cohens_d).toFixed(2) }),
      element("td", { class: `verdict verdict-${kind}`, "data-significant": String(pair.significant), text: pair.verdict }));
  }));
  if (!answer.comparisons.length) $("#compare-pairs tbody").replaceChildren(element("tr", {}, element("td", { colspan: 6, class: "muted", text: "one setup: name another to compare" })));
}

// Inside training over seeds: for each kernel and layer all the setups have, its figures' means and 95% bands,
// epoch 0 (before training) first; one plot per figure, the setups in their colours.
const DYNAMICS_BAND_FIGURES = { weights: [["norm", "norm"], ["update_ratio", "update / weight"], ["gradient_norm", "gradient norm"]], layers: [["dead", "never firing (share)"], ["saturated", "saturated (share)"]] };

function dynamicsBands(setups) {
  const measured = setups.filter((setup) => setup.dynamics);
  if (!measured.length) return [element("p", { class: "muted", text: "No dynamics recorded for these runs (dynamics=false, or runs made before them)." })];
  const plots = [];
  for (const [part, figures] of Object.entries(DYNAMICS_BAND_FIGURES)) {
    const names = Object.keys(measured[0].dynamics[part]).filter((name) => measured.every((setup) => setup.dynamics[part][name]));
    for (const name of names) {
      for (const [figure, title] of figures) {
        if (!measured.every((setup) => setup.dynamics[part][name][figure])) continue;
        const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
        svg.setAttribute("class", "curve bands");
        svg.setAttribute("data-dynamics", `${part}:${name}:${figure}`);
        svg.setAttribute("viewBox", "0 0 340 200");
        drawBands(svg, setups, figure, `${name}: ${title}`, (setup) => setup.dynamics && setup.dynamics[part][name] && setup.dynamics[part][name][figure], 0);
        plots.push(svg);
      }
    }
  }
  if (measured.length < setups.length) plots.push(element("p", { class: "muted", text: `${setups.length - measured.length} of the setups have no dynamics recorded.` }));
  return plots;
}

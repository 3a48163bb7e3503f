"use strict";
// The runs view (#/): the launch form, made from /api/schema, and the runs folded by setup, followed live.

async function showRuns() {
  const generation = newGeneration();
  const view = document.getElementById("view");
  view.replaceChildren(document.getElementById("runs-view").content.cloneNode(true));
  const schema = state.schema || (state.schema = await api("api/schema", { signal: state.controller.signal }));
  if (!current(generation)) return;
  buildForm(schema);
  buildFilters(schema);
  await refreshList(generation);
  follow(`api/events?after=${state.listSeq}`, (event) => {
    if (!current(generation)) return;
    if (event.kind === EventKind.STEP || event.kind === EventKind.EPOCH) {
      const bar = document.querySelector(`.chip[data-run-id="${event.run_id}"] .bar > i`);
      if (bar) bar.style.width = `${progressFraction(event) * 100}%`;
    } else if (event.kind === EventKind.STATUS) {
      scheduleList(generation);
      if (event.status === RunStatus.DONE) scheduleDrawLinks();
    }
  });
}

function scheduleList(generation) {
  clearTimeout(state.listTimer);
  state.listTimer = setTimeout(() => refreshList(generation), 150);  // a burst of status events, one listing
}

let listController = null;
async function refreshList(generation) {
  if (listController) listController.abort();  // a newer filter or event: the older answer is stale
  listController = new AbortController();
  const parameters = new URLSearchParams();
  const q = $("#filter-q").value.trim();
  if (q) parameters.set("q", q);
  for (const [id, name] of [["filter-status", "status"], ["filter-family", "family"], ["filter-dataset", "dataset"]]) {
    const value = document.getElementById(id).value;
    if (value) parameters.set(name, value);
  }
  parameters.set("sort", $("#sort").value);
  parameters.set("order", $("#order").value);
  let answer;
  try {
    answer = await api(`api/runs?${parameters}`, { signal: listController.signal });
  } catch (error) {
    if (error.name === "AbortError" || !current(generation)) return;
    $("#runs-error").textContent = error.message;
    return;
  }
  if (!current(generation)) return;
  $("#runs-error").textContent = "";
  state.listSeq = Math.max(state.listSeq, answer.seq);
  renderList(answer);
}

function renderList(answer) {
  const body = $("#runs tbody");
  const rows = answer.groups.map((group) => {
    const row = element("tr", { "data-key": group.key });
    const pick = element("input", { type: "checkbox", class: "pick", title: "compare this setup" });
    pick.checked = state.picked.has(group.key);
    if (pick.checked) state.picked.set(group.key, group);   // as it is now: its seeds, and the one a site shows
    pick.addEventListener("change", () => {
      if (pick.checked) state.picked.set(group.key, group); else state.picked.delete(group.key);
      pickedChanged();
    });
    row.append(element("td", {}, pick), element("td", { class: "setup", title: group.setup, text: group.setup }));
    const members = element("td", { class: "members" });
    for (const member of group.members) members.append(statusChip(member));
    if (group.repeats.count) members.append(element("div", { class: "muted repeats", text: group.repeats.words }));
    row.append(members, element("td", { text: group.dataset }), element("td", { text: group.backend }), element("td", { class: "number n", text: String(group.n) }));
    const test = group.test;
    const interval = test.ci_low === null ? (test.n === 1 ? " (1 seed: no interval)" : "") : ` [${test.ci_low.toFixed(2)}, ${test.ci_high.toFixed(2)}]`;
    // The mean, then its interval: on one line where the column has room, else the interval under it.
    row.append(test.mean === null ? element("td", { class: "number test", text: "–" }) : element("td", { class: "number test" }, percent(test.mean) + (interval ? " " : ""), element("span", { class: "interval", text: interval.trim() })));
    row.append(bookCell(group.book_test, group.book_comparable, group.book_reason, group.book_in_interval, "number"));
    row.append(element("td", { class: "number", text: percent(group.val_mean) }), element("td", { class: "number", text: group.seconds_mean === null ? "–" : group.seconds_mean.toFixed(1) }));
    return row;
  });
  body.replaceChildren(...rows);
  pickedChanged();
  $("#runs-summary").textContent = `${answer.groups.length} setup(s), ${answer.shown_runs} of ${answer.total_runs} run(s). Runs that differ only by seed share a row: n seeds (a seed trained again counts once, its newest run; the others are repeats), mean and 95% t-interval of their test accuracy (as mnistlab runs compare and reproduce compute it); the book's figure with a verdict only for runs on full MNIST with the book's epochs and settings, 3 seeds or more.`;
  window.lab.listShown += 1;
}

// The book's figure: with its verdict where the runs are the book's setup (full MNIST, the book's epochs and settings,
// 3 seeds or more: book.comparable on the server), else greyed with the reason in a few words.
function bookCell(figure, comparable, reason, inside, className = "", where = "") {
  if (figure === null || figure === undefined) return element("td", { class: className, text: "–" });
  const shown = `${Number(figure).toFixed(1)}%${where ? ` (${where})` : ""}`;  // one format: 98.0%, as 98.5%
  if (!comparable) {
    return element("td", { class: `${className} book not-comparable`, title: reason, "data-comparable": "false" }, shown, element("div", { class: "reason", text: `not comparable: ${reason}` }));
  }
  const verdict = inside === null ? "no verdict" : inside ? "inside" : "outside";
  return element("td", { class: `${className} book`, "data-comparable": "true", text: `${shown} · ${verdict}` });
}

function buildFilters(schema) {
  for (const status of schema.statuses) $("#filter-status").append(element("option", { value: status, text: status }));
  for (const family of Object.keys(schema.families)) $("#filter-family").append(element("option", { value: family, text: family }));
  for (const dataset of schema.run.dataset.choices.filter((name) => name !== "auto")) $("#filter-dataset").append(element("option", { value: dataset, text: dataset }));
  for (const sort of schema.sorts) $("#sort").append(element("option", { value: sort, text: `sort by ${sort}` }));
  const generation = state.generation;
  for (const id of ["filter-status", "filter-family", "filter-dataset", "sort", "order"]) document.getElementById(id).addEventListener("change", () => refreshList(generation));
  $("#filter-q").addEventListener("input", () => scheduleList(generation));
  pickedChanged();
  $("#compare-picked").addEventListener("click", () => { location.hash = compareHash(pickedRequest([...state.picked.values()])); });
  $("#site-picked").addEventListener("click", downloadSite);
}

// Compare needs two ticked setups; a shared site one to six, each with a finished seed (its `site_run`).
function pickedChanged() {
  const picked = [...state.picked.values()];
  $("#compare-picked").disabled = picked.length < 2;
  $("#site-picked").disabled = siteBuilding || picked.length < 1 || picked.length > 6 || picked.some((group) => group.site_run === null);
}

let siteBuilding = false;   // one site at a time from this page (the lab builds one at a time for everyone)

// POST /api/site with each ticked setup's best seed, and the zip it answers saved as a download.
async function downloadSite() {
  const runs = [...state.picked.values()].map((group) => group.site_run);
  siteBuilding = true;
  $("#site-picked").disabled = true;
  $("#site-status").textContent = `building a web page of ${runs.length} run(s): some seconds each…`;
  window.lab.sitesAsked += 1;
  try {
    const response = await fetch("api/site", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ runs }) });
    if (!response.ok) {
      const answer = await response.json().catch(() => null);
      throw new Error((answer && answer.error) || `the lab answered ${response.status}`);
    }
    const link = element("a", { href: URL.createObjectURL(await response.blob()), download: "mnistlab-site.zip" });
    document.body.append(link);
    link.click();
    link.remove();
    $("#site-status").textContent = "saved mnistlab-site.zip: unzip it and publish the folder (docs/site.md)";
  } catch (error) {
    $("#site-status").textContent = `no web page: ${error.message}`;
  } finally {
    siteBuilding = false;
    window.lab.sitesAnswered += 1;
    pickedChanged();
  }
}

// The runs view's ticked rows as a compare request: each by its config hash; the dataset and backend where they
// share one; split by backend where two share a config hash (they differ by backend alone).
function pickedRequest(groups) {
  const hashes = groups.map((group) => group.config_hash);
  const shared = (key) => new Set(groups.map((group) => group[key])).size === 1 ? groups[0][key] : "";
  const splitByBackend = new Set(hashes).size < hashes.length;
  return { setups: [...new Set(hashes)], dataset: shared("dataset"), backend: splitByBackend ? "" : shared("backend"), by: splitByBackend ? "backend" : "" };
}

// The form: made from /api/schema (the knobs' one declaration); only what the user changed is sent as "set".
function buildForm(schema) {
  const form = $("#launch");
  form.preset.append(element("option", { value: "", text: "(none: the family's defaults)" }));
  for (const preset of schema.presets) form.preset.append(element("option", { value: preset.name, text: preset.name }));
  for (const family of Object.keys(schema.families)) form.family.append(element("option", { value: family, text: family }));
  for (const name of ["dataset", "backend", "executor"]) {
    for (const choice of schema.run[name].choices) form[name].append(element("option", { value: choice, text: choice }));
    form[name].value = schema.run[name].default;
  }
  form.preset.value = "listing-1.3.2";
  form.preset.addEventListener("change", () => fillKnobs(schema));
  form.family.addEventListener("change", () => fillKnobs(schema));
  form.addEventListener("submit", (event) => { event.preventDefault(); launch(schema); });
  // What Launch will start, in one line beside it (the knobs folded below say how many of them changed).
  for (const kind of ["input", "change"]) form.addEventListener(kind, () => summarizeLaunch(form));
  fillKnobs(schema);
  summarizeLaunch(form);
}

function summarizeLaunch(form) {
  const request = launchRequest(form);
  const family = form.family.value;
  const changed = request.set.filter((assignment) => !assignment.startsWith("family="));
  const runs = request.seeds.length;
  const parts = [`${runs} run${runs === 1 ? "" : "s"} of ${request.preset || `the ${family}'s defaults`}`, `seed${runs === 1 ? "" : "s"} ${request.seeds.join(", ")}`];
  if (request.epochs !== undefined) parts.push(`${request.epochs} epoch${request.epochs === 1 ? "" : "s"}`);
  parts.push(request.limit === undefined ? "all training images" : `the first ${request.limit} training images`);
  parts.push(`dataset ${request.dataset}`, `backend ${request.backend}`, `${request.executor} executor`);
  if (changed.length) parts.push(`changed: ${changed.join(", ")}`);
  $("#launch-summary").textContent = parts.join(" · ");
  $("#knobs-changed").textContent = changed.length ? `(${changed.length} changed)` : "(as the preset has them)";
}

function fillKnobs(schema) {
  const form = $("#launch");
  const preset = schema.presets.find((candidate) => candidate.name === form.preset.value);
  form.family.disabled = Boolean(preset);
  if (preset) form.family.value = preset.family;
  const family = form.family.value;
  const values = preset ? preset.values : schema.families[family].defaults;
  form.epochs.value = values.epochs;
  const knobs = $("#knobs");
  knobs.replaceChildren();
  for (const key of schema.families[family].keys) {
    const initial = shownValue(values[key.name]);
    let input;
    const choices = key.choices.length ? key.choices : key.type === "bool" ? ["true", "false"] : null;
    if (choices) {
      input = element("select");
      for (const choice of choices) input.append(element("option", { value: choice, text: choice }));
    } else {
      input = element("input", { type: "text", placeholder: key.type.includes("none") ? "none" : "" });
    }
    input.name = `knob-${key.name}`;
    input.value = initial;
    input.dataset.key = key.name;
    input.dataset.initial = initial;
    input.addEventListener("input", () => input.classList.toggle("changed", input.value !== input.dataset.initial));
    input.addEventListener("change", () => input.classList.toggle("changed", input.value !== input.dataset.initial));
    const help = key.help + (key.bounds ? ` (${key.bounds})` : "");
    knobs.append(element("label", { class: "field" }, element("span", { class: "name", text: `${key.name} · ${key.type}` }), input, element("small", { text: help }), element("span", { class: "error", "data-error-for": key.name })));
  }
}

function launchRequest(form) {
  const assignments = [];
  if (!form.preset.value && form.family.value !== "mlp") assignments.push(`family=${form.family.value}`);
  for (const input of form.querySelectorAll("[data-key]")) {
    if (input.value !== input.dataset.initial) assignments.push(`${input.dataset.key}=${input.value}`);
  }
  const seedsText = form.seeds.value.trim();
  const seeds = seedsText === "" ? [0] : seedsText.split(",").map((part) => part.trim()).map((part) => /^-?\d+$/.test(part) ? Number(part) : part);
  const request = { preset: form.preset.value || null, set: assignments, seeds, dataset: form.dataset.value, backend: form.backend.value, executor: form.executor.value };
  if (form.epochs.value !== "") request.epochs = Number(form.epochs.value);
  if (form.limit.value !== "") request.limit = Number(form.limit.value);
  return request;
}

async function launch(schema) {
  const form = $("#launch");
  for (const target of form.querySelectorAll(".error")) target.textContent = "";
  $("#launch-result").textContent = "";
  const button = $("#launch-button");
  button.disabled = true;
  const generation = state.generation;
  try {
    const answer = await postJson("api/runs", launchRequest(form), state.controller.signal);
    if (!current(generation)) return;
    window.lab.launched.push(...answer.runs);
    $("#launch-result").textContent = answer.runs.map((run) => `run ${run.run_id}: ${run.status}`).join(", ");
    scheduleList(generation);
  } catch (error) {
    if (error.name === "AbortError" || !current(generation)) return;
    const beside = error.field && form.querySelector(`[data-error-for="${CSS.escape(error.field)}"]`);
    (beside || $("#launch-error")).textContent = error.message;
    if (beside && beside.closest("details")) beside.closest("details").open = true;  // a knob's error: its field shown
    if (beside) beside.closest("label, details").scrollIntoView({ block: "nearest" });
  } finally {
    button.disabled = false;
  }
}

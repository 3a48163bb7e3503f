"use strict";
// The lab's page (lab.html): what its views share (requests, state, rendering helpers), the header's draw links,
// and the routes to the views: lab-runs.js (the runs and the launch form), lab-run.js (a run's page),
// lab-compare.js (setups compared, with plots.js), lab-tables.js (the chapter's tables).

// ---------------------------------------------------------------------------
// Requests: every call to the lab's API (api.js), its JSON answer or an Error carrying the server's {error, field}.

const api = apiClient("the lab");

function postJson(path, body, signal) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), signal });
}

// ---------------------------------------------------------------------------
// State: what is shown, and the requests and streams that belong to it. A user action
// (navigating, changing a filter) starts a new generation: answers of older ones are dropped.

const state = { generation: 0, controller: null, streams: [], schema: null, listSeq: 0, listTimer: null, picked: new Map() };
// For tests and the screenshot script: what the page has shown (never read by the page itself).
window.lab = { listShown: 0, runShown: null, points: 0, livePoints: 0, pointDelays: [], insideShown: null, reportShown: null, dynamicsShown: null, dynamicsLive: 0, launched: [], compareShown: null, tablesShown: null, drawLinks: null, sitesAsked: 0, sitesAnswered: 0 };

function newGeneration() {
  state.generation += 1;
  if (state.controller) state.controller.abort();
  state.controller = new AbortController();
  for (const stream of state.streams) stream.close();
  state.streams = [];
  clearTimeout(state.listTimer);
  return state.generation;
}

function current(generation) { return generation === state.generation; }

function follow(path, onEvent) {
  const stream = new EventSource(path);
  stream.onmessage = (message) => onEvent(JSON.parse(message.data));
  stream.onerror = () => { document.getElementById("connection").textContent = stream.readyState === EventSource.CLOSED ? "live updates stopped" : "reconnecting…"; };
  stream.onopen = () => { document.getElementById("connection").textContent = ""; };
  state.streams.push(stream);
  return stream;
}

// ---------------------------------------------------------------------------
// Rendering helpers

const $ = (selector, root = document) => root.querySelector(selector);
function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value; else if (key === "text") node.textContent = value; else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}
const percent = (value, digits = 2) => value === null || value === undefined ? "–" : `${Number(value).toFixed(digits)}%`;
const shownValue = (value) => value === null || value === undefined ? "" : Array.isArray(value) ? value.join(",") : String(value);
const cssColour = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

function statusChip(member) {
  // A repeat of a seed (the newest finished run of a seed counts; the others are repeats) says so, and is no seed of the row's n.
  const repeat = member.repeat_of !== null && member.repeat_of !== undefined;
  const chip = element("span", { class: `chip status-${member.status}${repeat ? " repeat" : ""}`, "data-run-id": member.run_id, "data-status": member.status });
  if (repeat) chip.title = `a repeat of seed ${member.seed}: run ${member.repeat_of} counts`;
  const accuracy = member.test_accuracy === null || member.test_accuracy === undefined ? member.status : percent(100 * member.test_accuracy);
  chip.append(element("a", { href: `#/run/${member.run_id}`, text: `s${member.seed}${repeat ? " repeat" : ""}: ${accuracy}` }));
  if (member.status === RunStatus.RUNNING) {
    const bar = element("span", { class: "bar" }, element("i", { style: `width: ${progressFraction(member.progress) * 100}%` }));
    chip.append(bar);
  }
  if (member.status === RunStatus.QUEUED || member.status === RunStatus.RUNNING) {
    const cancel = element("button", { type: "button", class: "cancel", title: "cancel this run", text: "×" });
    cancel.addEventListener("click", () => cancelRun(member.run_id, document.getElementById("runs-error")));
    chip.append(cancel);
  }
  return chip;
}

function progressFraction(event) {
  if (!event || !event.epochs && !event.steps) return 0;
  const epochs = event.epochs || 1;
  if (event.kind === EventKind.EPOCH || event.phase === StepPhase.VALIDATION) return Math.min(1, event.epoch / epochs);
  return Math.min(1, ((event.epoch - 1) + (event.step / (event.steps || 1))) / (event.epochs || event.epoch));
}

async function cancelRun(runId, errorTarget) {
  errorTarget.textContent = "";
  try {
    await api(`api/runs/${runId}`, { method: "DELETE" });
  } catch (error) {
    errorTarget.textContent = error.message;
  }
}

// ---------------------------------------------------------------------------
// The header's draw links: per family, the run `mnistlab serve` would choose (pages.choose_runs): finished, on
// digits, a seed's newest run (no repeat), with a saved model, the best validation accuracy; each opens its draw page.

const DRAW_FAMILIES = ["mlp", "cnn", "rnn"], DIGITS = ["mnist", "mnist-mini"];
let drawLinksTimer = null;
function scheduleDrawLinks() { clearTimeout(drawLinksTimer); drawLinksTimer = setTimeout(refreshDrawLinks, 500); }

async function refreshDrawLinks() {
  let runs, folded;
  try {
    [runs, folded] = await Promise.all([api("api/runs?status=done&fold=false"), api("api/runs?status=done")]);
  } catch (error) {
    return;  // the header keeps what it had; the views say what is wrong
  }
  const repeats = new Set(folded.groups.flatMap((group) => group.members.filter((member) => member.repeat_of !== null && member.repeat_of !== undefined).map((member) => member.run_id)));
  const candidates = runs.groups.filter((group) => DIGITS.includes(group.dataset) && group.members[0].status === RunStatus.DONE && !repeats.has(group.members[0].run_id))
    .map((group) => ({ id: group.members[0].run_id, family: group.family, dataset: group.dataset, setup: group.setup, val: group.val_mean === null ? -1 : group.val_mean }))
    .sort((a, b) => b.val - a.val);
  const links = [];
  for (const family of DRAW_FAMILIES) {
    for (const run of candidates.filter((candidate) => candidate.family === family).slice(0, 5)) {  // the first with a saved model
      let detail;
      try { detail = await api(`api/runs/${run.id}`); } catch (error) { continue; }
      if (!detail.has_model) continue;
      const validation = run.val < 0 ? "" : `, validation ${percent(run.val, 1)}`;
      links.push(element("a", { href: `draw/${run.id}/`, "data-family": family, "data-run-id": run.id, title: `run ${run.id}: ${run.setup} on ${run.dataset}${validation}`, text: `${family.toUpperCase()} #${run.id}` }));
      break;
    }
  }
  const box = $("#draw-links");
  box.replaceChildren("Draw with the best:", ...links);
  box.hidden = !links.length;
  window.lab.drawLinks = links.length;
}

// ---------------------------------------------------------------------------
// Routing: #/ the runs, #/run/ID a run, #/compare?setup=... setups compared, #/tables the chapter's tables

function route() {
  const match = location.hash.match(/^#\/run\/(\d+)/);
  if (match) showRun(Number(match[1]));
  else if (location.hash.startsWith("#/compare")) showCompare(new URLSearchParams(location.hash.split("?")[1] || ""));
  else if (location.hash.startsWith("#/tables")) showTables();
  else showRuns();
}
window.addEventListener("hashchange", route);
// Once every script of the page has run (the views are defined in the files after this one).
document.addEventListener("DOMContentLoaded", () => { route(); refreshDrawLinks(); });

"use strict";
// A run's page: settings, live curves, confusion matrix, mistakes, inside view

async function showRun(runId) {
  const generation = newGeneration();
  const view = document.getElementById("view");
  view.replaceChildren(document.getElementById("run-view").content.cloneNode(true));
  let run;
  try {
    run = await api(`api/runs/${runId}`, { signal: state.controller.signal });
  } catch (error) {
    if (error.name !== "AbortError" && current(generation)) $("#run-error").textContent = error.message;
    return;
  }
  if (!current(generation)) return;
  const history = new Map(run.history.map((row) => [row.epoch, row]));
  renderRunHeader(run);
  renderSettings(run);
  renderCurves(history, run.settings.epochs);
  window.lab.runShown = runId;
  $("#cancel").addEventListener("click", () => cancelRun(runId, $("#run-error")));
  $("#resume").addEventListener("click", async () => {
    try {
      const answer = await api(`api/runs/${runId}/resume`, { method: "POST" });
      location.hash = `#/run/${answer.run_id}`;
    } catch (error) { $("#run-error").textContent = error.message; }
  });
  showDynamics(runId, generation);
  if (run.status === RunStatus.QUEUED || run.status === RunStatus.RUNNING) followRun(run, history, generation);
  if (run.status === RunStatus.DONE && run.has_model) {
    $("#finished").hidden = false;
    $("#inside-section").hidden = false;
    $("#explain").addEventListener("click", () => showInside(runId, generation));
    setUpPad(runId, generation);
    loadReport(runId, generation);
    showInside(runId, generation);
  }
}

// A run in progress, as its worker reports it: the curves drawn epoch by epoch, the step under way, its status.
function followRun(run, history, generation) {
  const runId = run.run_id;
  follow(`api/runs/${runId}/events`, (event) => {
    if (!current(generation)) return;
    if (event.kind === EventKind.SNAPSHOT) {
      for (const row of event.history) history.set(row.epoch, row);
      renderCurves(history, run.settings.epochs);
    } else if (event.kind === EventKind.EPOCH) {
      history.set(event.epoch, event);
      $("#live-step").textContent = `epoch ${event.epoch}/${event.epochs} done`;
      renderCurves(history, run.settings.epochs);
      showDynamics(runId, generation, event.epoch);  // the epoch's measurements are in its dynamics file by now
      window.lab.livePoints += 1;  // drawn while the run was still going
      window.lab.pointDelays.push(Date.now() / 1000 - event.time);
    } else if (event.kind === EventKind.STEP) {
      if (history.has(event.epoch)) return;  // older than the epoch already drawn
      const where = `epoch ${event.epoch}/${event.epochs}`;
      const loss = event.loss === undefined ? "" : `: loss ${event.loss.toFixed(4)}`;
      $("#live-step").textContent = event.phase === StepPhase.VALIDATION ? `${where}: validating`
        : event.step === 0 ? `${where}: starting${event.epoch === 1 ? " (Keras compiles its step on the first call)" : ""}`
        : `${where}, step ${event.step}/${event.steps}${event.phase === StepPhase.WORKING ? " (working)" : ""}${loss}`;
    } else if (event.kind === EventKind.STATUS) {
      run.status = event.status;
      renderRunHeader(run);
    } else if (event.kind === EventKind.END) {
      for (const stream of state.streams) stream.close();
      showRun(runId);  // the finished run as the store has it: metrics, report, inside view
    }
  });
}

function renderRunHeader(run) {
  $("#run-title").textContent = `Run ${run.run_id}: ${run.setup}`;
  const accuracy = run.test_accuracy === null ? "" : ` · test ${percent(100 * run.test_accuracy)}, validation ${percent(100 * run.val_accuracy)}, train (last epoch) ${percent(100 * run.train_accuracy)}`;
  const status = element("span", { class: `chip status-${run.status}`, id: "status-chip", "data-status": run.status, text: run.status });
  // A repeat of a seed is no other seed: it says which run of its seed counts (the newest finished one).
  const sibling = (other) => `#${other.id} (s${other.seed}, ${other.status}${other.repeat_of === null ? "" : `, a repeat: #${other.repeat_of} counts`})`;
  const others = (run.repeat_of === null ? "" : ` · a repeat of seed ${run.seed}: run #${run.repeat_of} counts`) + (run.siblings.length ? ` · other runs of this setup: ${run.siblings.map(sibling).join(", ")}` : "");
  $("#run-status").replaceChildren(status, document.createTextNode(` ${run.model} · ${run.dataset}, ${run.backend}, seed ${run.seed}${accuracy}${run.seconds ? ` · ${run.seconds.toFixed(1)} s` : ""}${run.error ? ` · ${run.error}` : ""}${others}`));
  $("#cancel").hidden = !(run.status === RunStatus.QUEUED || run.status === RunStatus.RUNNING);
  $("#resume").hidden = !(run.status === RunStatus.INTERRUPTED || run.status === RunStatus.FAILED);
  const link = $("#draw-link");
  link.hidden = !(run.status === RunStatus.DONE && run.has_model);
  link.href = `draw/${run.run_id}/`;
}

function renderSettings(run) {
  const table = $("#settings");
  table.replaceChildren();
  for (const [key, value] of Object.entries(run.settings)) {
    const changed = run.changed[key];
    const row = element("tr", changed ? { class: "changed-key" } : {});
    row.append(element("td", { text: key }), element("td", { text: (shownValue(value) || "none") + (changed ? `  (preset: ${shownValue(changed.preset) || "none"})` : "") }));
    table.append(row);
  }
}

// Curves: one SVG per quantity, the epochs on x; a circle per epoch point (class "point").
function renderCurves(history, epochs) {
  const rows = [...history.values()].sort((a, b) => a.epoch - b.epoch);
  drawCurve($("#curve-loss"), rows, ["loss", "val_loss"], "loss", epochs, null);
  drawCurve($("#curve-accuracy"), rows, ["accuracy", "val_accuracy"], "accuracy", epochs, [0, 1]);
  window.lab.points = rows.length;
}

async function loadReport(runId, generation) {
  let report;
  try {
    report = await api(`api/runs/${runId}/report`, { signal: state.controller.signal });
  } catch (error) {
    if (error.name !== "AbortError" && current(generation)) $("#run-error").textContent = error.message;
    return;
  }
  if (!current(generation)) return;
  const maximum = Math.max(...report.confusion.flat());
  const table = element("table", { class: "confusion" });
  table.append(element("tr", {}, element("td", { text: "true \\ predicted" }), ...report.labels.map((name) => element("td", { text: name.length > 6 ? name.slice(0, 6) + "…" : name, title: name }))));
  report.confusion.forEach((counts, row) => {
    table.append(element("tr", {}, element("td", { text: report.labels[row] }), ...counts.map((count, column) => {
      const strength = maximum ? count / maximum : 0;
      const colour = row === column ? `rgba(43, 138, 62, ${0.15 + 0.85 * strength})` : count ? `rgba(201, 42, 42, ${0.15 + 0.85 * Math.sqrt(strength)})` : "transparent";
      return element("td", { text: String(count), style: `background: ${colour}` });
    })));
  });
  $("#confusion").replaceChildren(table, element("p", { class: "muted", text: `${report.test_samples} ${report.dataset} test images, ${percent(100 * report.accuracy)} right.` }));
  $("#confusion").classList.remove("muted");
  $("#mistakes").replaceChildren(...report.mistakes.map((mistake) => element("figure", {},
    grayPicture(mistake.pixels, 0, 255, "digit"),
    element("figcaption", { text: `${mistake.label_name} read as ${mistake.predicted_name} (${percent(100 * mistake.confidence, 0)})` }))));
  $("#mistakes").classList.remove("muted");
  window.lab.reportShown = runId;
}

// The run page's drawing pad (pad.js): on each release the drawing goes to the inside view as a PNG.
function setUpPad(runId, generation) {
  const canvas = $("#lab-pad");
  const pad = new DrawingPad(canvas, { end: () => canvas.toBlob((blob) => showInside(runId, generation, blob)) });
  $("#pad-clear").addEventListener("click", () => {
    // The drawing is gone, and with it its inside view (an answer still on its way is dropped too).
    pad.clear();
    state.insideAsked = (state.insideAsked || 0) + 1;
    window.lab.insideShown = null;
    $("#inside").textContent = "Draw a digit in the box, or show a test digit.";
    $("#inside").classList.add("muted");
  });
  pad.redraw();
}

async function showInside(runId, generation, drawing = null) {
  // The newest ask wins: a test digit typed, or a stroke released, after this one makes its answer stale.
  const asked = (state.insideAsked = (state.insideAsked || 0) + 1);
  const index = Number($("#test-index").value);
  $("#inside").textContent = "computing…";
  let answer;
  try {
    answer = drawing
      ? await api(`api/runs/${runId}/explain`, { method: "POST", headers: { "Content-Type": "image/png" }, body: drawing, signal: state.controller.signal })
      : await postJson(`api/runs/${runId}/explain`, { test_index: index }, state.controller.signal);
  } catch (error) {
    if (error.name !== "AbortError" && current(generation) && asked === state.insideAsked) $("#inside").replaceChildren(element("span", { class: "error", text: error.message }));
    return;
  }
  if (!current(generation) || asked !== state.insideAsked) return;  // a newer digit or drawing was asked for
  const truth = answer.label === null ? "" : `, labelled ${answer.labels[answer.label]}`;
  const what = drawing ? "Your drawing" : `Test digit ${index}${truth}`;
  const said = element("p", { text: `${what}: the ${answer.family.toUpperCase()} says ${answer.labels[answer.prediction]} (${percent(100 * answer.probabilities[answer.prediction], 1)}), runner-up ${answer.labels[answer.runner_up]}.` });
  // The draw page's inside view (the same renderer, colours and scale), beside the input the model saw; the enlarged
  // CNN map stays chosen from one digit to the next on this run's page.
  if (state.insideSelectionFor !== runId) Object.assign(state, { insideSelection: {}, insideSelectionFor: runId });
  const seen = element("figure", {}, grayPicture(answer.input, 0, 1, "input28"), element("figcaption", { text: "what the model sees (28x28)" }));
  $("#inside").replaceChildren(said, element("div", { class: "seen" }, seen, insideView(answer, answer.input, state.insideSelection)));
  $("#inside").classList.remove("muted");
  window.lab.insideShown = drawing ? { run: runId, drawn: true, prediction: answer.prediction } : { run: runId, index, drawn: false, prediction: answer.prediction };
}

"use strict";
// The draw page (index.html): the pad (pad.js), each model's prediction as the user draws, and under it the inside
// of the network (inside.js); requests through api.js.

// Answers arrive late on a slow connection. Every action that makes earlier answers wrong
// (a new stroke, Undo, Clear, a dropped file) starts a new "epoch"; an answer from an older
// epoch, or older than the one on screen, is dropped, so the page never shows a prediction
// for a drawing the user has since changed. Within one stroke, answers for the stroke so far
// are shown: that is the live update, and the answer for the finished stroke follows.
let epoch = 0;
let requestsSent = 0, newestShown = 0;
let inFlight = false, queued = false;
// Read by the browser tests to wait for the state they assert instead of racing it.
window.mnistlab = {
  answered: 0, dropped: 0, sent: 0,
  get busy() { return inFlight || queued || pad.decoding > 0 || this.answered < this.sent; },
  shown: 0,          // the request whose prediction is on screen
  insideFor: 0,      // the request whose inside view is on screen
  get insideBusy() { return insideInFlight || insidePending !== null || insideRetry !== null; },
  insideRefused: 0,  // how often the server said "busy" (503) to an inside-view request
};

// The inside view is asked for after each prediction is shown, so predictions stay as fast as
// they are; it follows the same rules (never older than the user's last action), with at most
// one request in flight and only the newest drawing waiting behind it.
let insideInFlight = false, insidePending = null, insideShownFor = 0;
let insideRetry = null;   // the timer of a request the server refused as busy, asked again when it said
const INSIDE_BUSY = "inside view busy (a class is drawing): trying again";
const insideViews = {};   // model id -> its inside element for this epoch's drawing, kept while cards are redrawn
const selectedMap = {};   // model id -> {layer, index} of the enlarged CNN map

// An inside view from before the user's last action is not carried onto the next cards.
function newEpoch() { epoch += 1; queued = false; insidePending = null; forgetInside(); }

// The pad. A stroke starts a new epoch (and a dropped image gives way to it); each move and the release ask for a
// prediction of the drawing so far. A dropped image is drawn on the pad scaled to fit (pad.picture), so that the pad
// shows what was classified: the pen draws white on black, so a stroke after a drop starts a new drawing (over a
// photo's light paper it would not even show), and Undo or Clear takes the image away.
const padCanvas = document.getElementById("pad");
const pad = new DrawingPad(padCanvas, { start: newEpoch, move: requestPrediction, end: requestPrediction });
const { showEmpty, showError } = emptying(() => { forgetInside(); predictionsShown = null; showCards(); });

pad.wire({ changed: newEpoch, drawn: requestPrediction, empty: showEmpty, dropped: (file) => send(file, epoch, true) });

// At most one drawing request in flight; the latest drawing is sent when it returns.
function requestPrediction() {
  if (!pad.strokes.length) return;
  if (inFlight) { queued = true; return; }
  inFlight = true;
  // The epoch of the drawing as it is now: toBlob answers later, and a Clear or Undo
  // in between must still make this answer stale.
  const drawnInEpoch = epoch;
  padCanvas.toBlob((blob) => send(blob, drawnInEpoch, false));
}

// Every request to the server (api.js): a GET, or a POST of a drawing or dropped file. Who this page is, for the
// server's explanation queue: a newer request replaces this page's older waiting one.
const clientId = (crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2));
const ask = apiClient("the server");

function api(path, body) {
  if (body === undefined) return ask(path);
  return ask(path, { method: "POST", headers: { "Content-Type": body.type || "application/octet-stream", "X-Client-Id": clientId }, body });
}

async function send(blob, sentInEpoch, fromDrop) {
  const id = ++requestsSent;
  window.mnistlab.sent = requestsSent;
  inFlight = true;
  let outcome = null;
  try {
    const result = await api("api/predict", blob);
    outcome = () => {
      if (fromDrop && !pad.picture) { pad.picture = grayPicture(result.input); pad.redraw(); }
      showPrediction(result);
      window.mnistlab.shown = id;
      requestInside(blob, id, sentInEpoch);
    };
  } catch (error) {
    outcome = () => showError(error.message);   // no cards, input or inside view of an earlier drawing stay beside it
  } finally {
    if (sentInEpoch === epoch && id > newestShown) {
      newestShown = id;
      outcome();
    } else {
      window.mnistlab.dropped += 1;
    }
    window.mnistlab.answered += 1;
    inFlight = false;
    if (queued) { queued = false; requestPrediction(); }
  }
}

async function requestInside(blob, id, inEpoch) {
  if (insideInFlight) { insidePending = { blob, id, inEpoch }; return; }
  insideInFlight = true;
  const stillWanted = () => inEpoch === epoch && id >= insideShownFor && id === window.mnistlab.shown;
  let retryInSeconds = null;
  try {
    const result = await api("api/explain", blob);
    if (stillWanted()) {
      insideShownFor = id;
      for (const explanation of result.explanations) renderInside(explanation, result.input);
      window.mnistlab.insideFor = id;
      if (document.getElementById("status").textContent === INSIDE_BUSY) setStatus("");
    }
  } catch (error) {
    if (error.status === 503) {
      // The server is explaining other drawings: say so, and ask again when it says to.
      window.mnistlab.insideRefused += 1;
      if (stillWanted()) { setStatus(INSIDE_BUSY); retryInSeconds = error.retryAfter; }
    } else if (error.status !== 409) {  // 409: replaced by this page's newer request, which answers instead
      // The prediction on screen stays; an inside view of an earlier moment does not.
      if (stillWanted()) showInsideError(error.message);
    }
  } finally {
    insideInFlight = false;
    const next = insidePending;
    insidePending = null;
    if (next && next.inEpoch === epoch) requestInside(next.blob, next.id, next.inEpoch);
    else if (retryInSeconds !== null) {
      insideRetry = setTimeout(() => { insideRetry = null; if (stillWanted() && !insideInFlight) requestInside(blob, id, inEpoch); }, 1000 * retryInSeconds);
    }
  }
}

// ---------------------------------------------------------------------------

// The draw page's inside views: each model's, in its card, replacing the card's "waiting" line.
function renderInside(explanation, input) {
  const view = insideView(explanation, input, selectedMap[explanation.model] || (selectedMap[explanation.model] = {}));
  insideViews[explanation.model] = view;
  const card = document.querySelector('.model[data-model="' + explanation.model + '"]');
  if (card) card.querySelector(".inside, .waiting-inside").replaceWith(view);
}

// What is on screen besides the pad: the status line, the 28x28 input, the cards and their inside views.
function showInput(pixels) {
  const small = document.getElementById("input28").getContext("2d");
  small.clearRect(0, 0, 28, 28);
  small.drawImage(grayPicture(pixels), 0, 0);
}

// The cards: one per model, from /api/models, shown before the first stroke with the size they keep (a grey
// "–" for the guess, ten empty bars, a line where the inside view will be), so that an answer or an inside
// view fills them in place and nothing moves under the pen. predictionsShown: the answer on screen, or null.
let predictionsShown = null;
let insideFailed = false;   // the inside view of the answer on screen failed: its cards say so, not "on its way"

function showPrediction(result) {
  setStatus("");
  showInput(result.input);
  predictionsShown = result.predictions;
  insideFailed = false;
  showCards();
}

function showCards() {
  const byModel = new Map((predictionsShown || []).map((prediction) => [prediction.model, prediction]));
  const ids = [...new Set([...modelOrder, ...byModel.keys()])];
  document.getElementById("models").replaceChildren(...ids.map((id) => card(modelInfo[id] || { id, family: byModel.get(id).family }, byModel.get(id))));
}

function card(model, prediction) {
  const keep = prediction && insideViews[model.id];
  return modelCard(model, prediction, keep || insideWaiting(prediction, insideFailed));
}

function forgetInside() { for (const key of Object.keys(insideViews)) delete insideViews[key]; }

function showInsideError(text) {
  forgetInside();
  insideFailed = true;
  showCards();
  setStatus("inside view: " + text, true);
}

const modelInfo = {};  // id -> what /api/models says of it (settings, test accuracy, dataset)
let modelOrder = [];   // the ids, in /api/models' order

// The line over the cards: which runs these are, and what their dataset is. chosen_by is the server's
// "best validation accuracy in the run store" (serve chose, per family) or "run 13, opened from the lab".
function describeModels(models, chosenBy) {
  const line = document.getElementById("chosen"), trained = datasetsSaid(models);
  const parts = [];
  if (chosenBy && /^run \d+/.test(chosenBy)) parts.push((models.length === 1 ? "Model: " : "Models: ") + chosenBy);
  else if (chosenBy) parts.push("Models: per family, the run with the " + chosenBy);
  line.replaceChildren();
  if (parts.length) line.append(parts[0] + (trained.length ? "; trained on " : "."), ...trained, trained.length ? "." : "");
  else if (trained.length) line.append("Trained on ", ...trained, ".");
}

async function listModels() {
  try {
    const { models, chosen_by } = await api("api/models");
    for (const model of models) modelInfo[model.id] = model;
    modelOrder = models.map((model) => model.id);
    if (!models.length) setStatus("no models loaded", true);
    describeModels(models, chosen_by);
    titleFor(models);
    showCards();
  } catch (error) {
    showError(error.message);
  }
}

// Opened from the lab (/draw/RUN_ID/): the way back to it.
if (/\/draw\/\d+\/$/.test(location.pathname)) document.getElementById("site").hidden = false;
pad.redraw();
listModels();

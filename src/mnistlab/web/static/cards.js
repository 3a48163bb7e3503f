"use strict";
// The models' cards and the status line under the pad, for the draw page (draw.js) and the shared site (site.js).
// The cards: one per model, shown before the
// first answer with the size they keep (a grey "–" for the guess, ten empty bars, a line where the inside view
// will be), so that an answer or an inside view fills them in place and nothing moves under the pen.

// What a dataset's name means, said where a page first names it (the line over the cards) and on hover on a card.
const DATASETS = {
  "mnist-mini": "the built-in 2,400-digit sample of MNIST; its 600 test digits give the test accuracy",
  "mnist": "the MNIST digits: 60,000 for training, 10,000 for the test accuracy",
  "fashion-mnist": "Zalando's Fashion-MNIST clothes: 60,000 for training, 10,000 for the test accuracy",
};

function datasetName(name) {
  const span = document.createElement("span");
  span.className = "dataset";
  span.textContent = name;
  if (DATASETS[name]) span.title = name + ": " + DATASETS[name];
  return span;
}

// The datasets of MODELS, each named once (with what it is) and joined as a sentence's words: "a, b and c".
function datasetsSaid(models) {
  const datasets = [...new Set(models.map((model) => model.dataset))], parts = [];
  datasets.forEach((name, k) => {
    if (k) parts.push(k === datasets.length - 1 ? " and " : ", ");
    parts.push(datasetName(name));
    if (DATASETS[name]) parts.push(" (" + DATASETS[name] + ")");
  });
  return parts;
}

// The page's heading and the window's title follow the models' data (one page never mixes datasets): digits, or
// clothes.
function titleFor(models) {
  const datasets = [...new Set(models.map((model) => model.dataset))];
  const what = datasets.every((d) => d === "mnist" || d === "mnist-mini") ? "a digit"
    : datasets.every((d) => d === "fashion-mnist") ? "a piece of clothing" : "an image like those of " + datasets.join(", ");
  document.querySelector("h1").textContent = "Draw " + what;
  document.title = "mnistlab: draw " + what + " (" + models.map((model) => model.family.toUpperCase()).join(", ") + ")";
}

// What a card says where its inside view will be, until it is there: before any answer, while it comes, or that it
// failed (the status line says why).
function insideWaiting(answered, failed) {
  if (!answered) return "Inside: what the layers compute and which pixels decided it, once you draw.";
  return failed ? "Inside: not shown (the message under the pad says why)." : "Inside: on its way…";
}

// One model's card. MODEL: {id, family, description, test_accuracy, dataset, over_seeds (its setup's test
// accuracy over seeds, {n, mean, ci_low, ci_high} in %, or absent)}; PREDICTION: {prediction, probabilities,
// labels} or null; INSIDE: its inside view's element, or the words of the line that waits for it.
function modelCard(model, prediction, inside) {
  const element = document.createElement("div");
  element.className = "model" + (prediction ? " answered" : "");
  element.dataset.family = model.family;
  element.dataset.model = model.id;
  const title = document.createElement("h2");
  title.textContent = model.family.toUpperCase();
  const about = document.createElement("p");
  about.className = "about";
  about.append(model.description || "");
  if (model.test_accuracy != null) about.append(" · test " + (100 * model.test_accuracy).toFixed(1) + "% on ", datasetName(model.dataset));
  const seeds = model.over_seeds;
  if (seeds && seeds.ci_low != null) {
    const span = document.createElement("span");
    span.className = "seeds";
    span.textContent = " · " + seeds.n + " seeds: " + seeds.ci_low.toFixed(1) + "–" + seeds.ci_high.toFixed(1) + "%";
    span.title = "its setup's test accuracy over " + seeds.n + " seeds: mean " + seeds.mean.toFixed(2) + "%, 95% interval of the mean";
    about.append(span);
  }
  const guess = document.createElement("p");
  const labels = prediction ? prediction.labels : null;
  guess.className = "guess" + (prediction ? "" : " waiting");
  guess.textContent = prediction ? (labels ? labels[prediction.prediction] : prediction.prediction) : "–";
  guess.title = prediction ? "" : "draw to see what this model reads";
  element.append(title, about, guess);
  for (let digit = 0; digit < 10; digit++) {
    const p = prediction ? prediction.probabilities[digit] : 0;
    const bar = document.createElement("div");
    bar.className = "bar" + (prediction && digit === prediction.prediction ? " best" : "");
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.width = (prediction ? Math.max(1, Math.round(p * 120)) : 0) + "px";
    const label = document.createElement("span");
    label.textContent = (labels ? labels[digit] : digit) + " " + (prediction ? (100 * p).toFixed(1).padStart(5) + "%" : "    – ");
    bar.append(label, fill);
    element.append(bar);
  }
  if (typeof inside !== "string") element.append(inside);
  else {
    const waiting = document.createElement("p");
    waiting.className = "waiting-inside";
    waiting.textContent = inside;
    element.append(waiting);
  }
  return element;
}

// The line under the pad: what went wrong (red), what is under way, or nothing.
function setStatus(text, isError = false) {
  const status = document.getElementById("status");
  status.textContent = text;
  status.classList.toggle("error", isError && text !== "");
}

// How a page shows that nothing of an earlier drawing stands: FORGET drops its answers and inside views and redraws
// empty cards; the 28x28 input is emptied; the status line then says nothing (showEmpty) or an error (showError).
function emptying(forget) {
  const emptied = () => {
    forget();
    document.getElementById("input28").getContext("2d").clearRect(0, 0, 28, 28);
  };
  return { showEmpty: () => { emptied(); setStatus(""); }, showError: (text) => { emptied(); setStatus(text, true); } };
}

"use strict";
// The messages between the shared site's page (site.js) and its model workers (site-worker.js), named once for both
// (the worker loads this file with importScripts, the page with a script tag). Each message carries an `id`; its
// answer carries the same one.
const SiteMessage = Object.freeze({
  LOAD: "load",             // page -> worker: {url, inputShape, outputs}: open the model's graph
  LOADED: "loaded",         // worker -> page: the graph is open
  INSIDE: "inside",         // page -> worker: {image, patch}: one 28x28 input's answer, then its inside view
  ANSWER: "answer",         // worker -> page: {probabilities, prediction}, at once, before the inside view
  INSIDE_SHOWN: "inside-view",  // worker -> page: {probabilities, prediction, runnerUp, views, beliefs, maps, blocks}
  CLASSIFY: "classify",     // page -> worker: {images, count}: many inputs' probabilities at once
  CLASSIFIED: "classified", // worker -> page: {probabilities}
  ERROR: "error",           // worker -> page: {error}: the one line to show
});

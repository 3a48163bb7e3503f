"""Concurrent requests' images, batched into one call per model.

A model costs far less per image in a batch than called once per image
(BENCHMARKS.md: the CNN listing on JAX, about 0.5 ms for one image and
0.2 ms per image in a batch of 32). The server's request threads hand their
28x28 image to a `Batcher` and wait; one thread takes every image waiting
(up to `max_batch`), calls each model once, and gives each request its row.

There is no wait bound: the thread takes what is there as soon as the models
are free, so a lone request is answered at once, and under load the batches
grow by themselves while the previous one runs. Batches are padded to a few
fixed sizes (`BUCKETS`), so each model compiles a handful of shapes, all of
them at warm-up, never in front of a visitor. Padding rows are zeros and do
not change the other rows (each image is computed on its own).

The queue is bounded: past `max_queue` waiting images a request is refused
with a 503 (ServerBusy) at once, rather than memory growing without end.
"""

import concurrent.futures
import queue
import threading

import numpy as np

from mnistlab.core.errors import ExplainBusy, ServerBusy, Superseded

BUCKETS = (1, 2, 4, 8, 16, 32, 64)


def bucket(count):
    """The smallest batch size in BUCKETS that holds COUNT images."""
    return next(size for size in BUCKETS if size >= count)


class Batcher:
    """One thread that runs every model on the images waiting, for many request threads."""

    def __init__(self, predictors, max_batch=BUCKETS[-1], max_queue=1024):
        if max_batch not in BUCKETS:
            raise ValueError(f"max_batch must be one of {BUCKETS}")
        self.predictors = list(predictors)
        self.max_batch = max_batch
        self._waiting = queue.Queue(max_queue)
        self.batches = 0  # how many model rounds ran, and on how many images: for tests and logs
        self.images = 0
        self._closing, self._closed = threading.Lock(), False
        self._thread = threading.Thread(target=self._run, name="mnistlab-batcher", daemon=True)
        self._thread.start()

    def predict(self, image):
        """Each model's probabilities (a list of (10,) arrays, in predictor order) for one 28x28 image."""
        future = concurrent.futures.Future()
        with self._closing:  # a request after close() would wait for ever: nobody serves the queue then
            if self._closed:
                raise ServerBusy(
                    "these models were closed (the server is stopping, or the lab let them go); try again in a moment"
                )
            try:
                self._waiting.put_nowait((np.asarray(image, dtype=np.float32), future))
            except queue.Full:
                raise ServerBusy("the server has more drawings waiting than it holds; try again in a moment") from None
        return future.result()

    def busy(self):
        """Whether images wait for the models (the explainer then waits too)."""
        return not self._waiting.empty()

    def warm(self):
        """Compile every model for every batch size, before the first visitor."""
        blank = np.zeros((BUCKETS[-1], 28, 28), dtype=np.float32)
        for size in BUCKETS:
            if size <= self.max_batch:
                for predictor in self.predictors:
                    predictor.predict(blank[:size])

    def close(self):
        """Answer what waits, then stop; a later predict() is refused (ServerBusy), not left waiting."""
        with self._closing:
            if self._closed:
                return
            self._closed = True
            self._waiting.put(None)
        self._thread.join(timeout=10)

    def _run(self):
        while True:
            first = self._waiting.get()
            if first is None:
                return
            items = [first]
            while len(items) < self.max_batch:
                try:
                    item = self._waiting.get_nowait()
                except queue.Empty:
                    break
                if item is None:  # close() while requests wait: answer them, then stop
                    self._answer(items)
                    return
                items.append(item)
            self._answer(items)

    def run(self, images):
        """Each model's probabilities ((N, 10) arrays, in predictor order) for N 28x28 images, in this thread.

        In batches of at most `max_batch`, each padded to its bucket: the call the
        Batcher's thread makes, for a caller that gathers its own batch (a worker
        process reading every request waiting on its pipe, `Engine.predict_many`).
        """
        images = np.asarray(images, dtype=np.float32)
        outputs = [[] for _ in self.predictors]
        for start in range(0, len(images), self.max_batch):
            chunk = images[start : start + self.max_batch]
            padded = np.zeros((bucket(len(chunk)), 28, 28), dtype=np.float32)
            padded[: len(chunk)] = chunk
            for output, predictor in zip(outputs, self.predictors):
                output.append(predictor.predict(padded)[: len(chunk)])
        self.batches += 1
        self.images += len(images)
        return [np.concatenate(output) for output in outputs]

    def _answer(self, items):
        try:
            outputs = self.run(np.stack([image for image, _ in items]))
        except BaseException as error:  # every waiting request learns of it; the thread goes on
            for _, future in items:
                future.set_exception(error)
            return
        for row, (_, future) in enumerate(items):
            future.set_result([output[row] for output in outputs])


class ExplainQueue:
    """Explanations one at a time, behind the predictions, at most one waiting per client.

    An explanation costs tens of times a prediction (the CNN's integrated
    gradients), and a class of learners asks for one after every shown
    prediction. So: one thread explains, and it starts the next explanation
    only when no prediction is waiting (`busy()`, the Batcher's queue), so
    predictions are never queued behind explanations. A client's newer request
    replaces its older waiting one (answered 409: the page wants only the
    newest), and past `max_waiting` clients a request is refused at once with
    503 and Retry-After, which the page shows as "inside view busy" and retries.
    """

    def __init__(self, explain, busy=lambda: False, max_waiting=8):
        self._explain = explain  # image -> answer dict
        self._busy = busy
        self.max_waiting = max_waiting
        self._waiting = {}  # client -> (image, future), oldest first
        self._condition = threading.Condition()
        self._closed = False
        self.done = 0
        self._thread = threading.Thread(target=self._run, name="mnistlab-explainer", daemon=True)
        self._thread.start()

    def explain(self, client, image):
        """The explanation of IMAGE for CLIENT (blocking); Superseded or ServerBusy when it cannot be."""
        future = concurrent.futures.Future()
        with self._condition:
            replaced = self._waiting.pop(client, None)
            if replaced is None and len(self._waiting) >= self.max_waiting:
                raise ExplainBusy("the inside view is busy (other drawings are being explained); it will try again")
            self._waiting[client] = (image, future)
            self._condition.notify()
        if replaced is not None:
            replaced[1].set_exception(Superseded("replaced by this client's newer drawing"))
        return future.result()

    def close(self):
        with self._condition:
            self._closed = True
            self._condition.notify()
        self._thread.join(timeout=10)

    def _run(self):
        while True:
            with self._condition:
                while not self._waiting and not self._closed:
                    self._condition.wait()
                if self._closed:
                    for _, future in self._waiting.values():
                        future.set_exception(ServerBusy("the server is stopping"))
                    return
            # Predictions first: wait while any is queued (each wait is short, a batch's time).
            while self._busy():
                threading.Event().wait(0.002)
            with self._condition:
                if not self._waiting:
                    continue
                client = next(iter(self._waiting))
                image, future = self._waiting.pop(client)
            try:
                future.set_result(self._explain(image))
            except BaseException as error:
                future.set_exception(error)
            self.done += 1


__all__ = ["Batcher", "ExplainBusy", "ExplainQueue", "ServerBusy", "Superseded", "bucket"]

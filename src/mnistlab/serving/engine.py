"""What the server computes, without HTTP: request bytes in, answer bytes out.

An `Engine` holds the loaded models, their `Batcher` (predictions batched per
model) and their `ExplainQueue` (explanations one at a time, behind the
predictions). `answer(kind, client, body, content_type)` decodes the body,
preprocesses it as `mnistlab predict` does, runs the models and returns a
`Reply`: HTTP status, Retry-After and the JSON bytes. The same engine runs in
the server's own process (`serve --workers 0`) or in each worker process of
`mnistlab.serving.workers` (whose front only moves bytes to it and back), so the
answers are the same whatever the number of workers.
"""

import collections
import dataclasses
import hashlib
import json
import threading
import time

import numpy as np

from mnistlab.core.errors import MnistlabError, RequestError
from mnistlab.ml import data, explain, image_limits, preprocess
from mnistlab.ml.predict import top_k
from mnistlab.serving import batching

EXPLANATION_CACHE = 256  # explanations kept by input (about 130 KB each for the three listings)
# A JSON body of 28x28 numbers takes about 20 KB, even spelled out and indented; parsing the 5 MB
# an upload may be would cost ~100 ms of CPU and tens of MB of Python lists.
MAX_JSON_BYTES = 256 * 1024
PRIVATE_FIELDS = ("run_dir",)  # of Predictor.describe(): kept from the API's answers


@dataclasses.dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    retry_after: int | None = None


def error_reply(error: MnistlabError) -> Reply:
    return Reply(
        error.http_status,
        _json({"error": str(error), "field": getattr(error, "field", None)}),
        getattr(error, "retry_after_seconds", None),
    )


def internal_error_reply(error: BaseException) -> Reply:
    """A bug: still JSON, naming the error's type (its text may hold paths), and the server goes on."""
    return Reply(500, _json({"error": f"internal error: {type(error).__name__}", "field": None}))


def load_predictors(run_dirs, runtime="keras", log=print):
    """Each run's Predictor, called once (its first call compiles), with one log line per model."""
    from mnistlab.ml.predict import Predictor

    predictors = []
    for run_dir in run_dirs:
        started = time.perf_counter()
        predictor = Predictor(run_dir, runtime=runtime)
        predictor.predict(warm_digit()[None])
        predictors.append(predictor)
        described = predictor.describe()
        accuracy = (
            ""
            if described["test_accuracy"] is None
            else f", test accuracy {100 * described['test_accuracy']:.1f}% on {described['dataset']}"
        )
        log(
            f"loaded {described['family']} from {described['run_dir']} ({runtime}{accuracy}) in {time.perf_counter() - started:.1f} s"
        )
    return predictors


def warm_digit():
    """A plain stroke: what the models and the inside view are first called on, before any visitor."""
    digit = np.zeros((28, 28), dtype=np.float32)
    digit[6:22, 12:16] = 1.0
    return digit


class Engine:
    """The models, their queues, and the bytes-in, bytes-out answers of /api/predict and /api/explain."""

    def __init__(self, predictors, warm=True):
        self.models = {predictor.describe()["id"]: predictor for predictor in predictors}
        self.batcher = batching.Batcher(self.models.values())
        if warm:
            self.batcher.warm()
        self._explainers, self._building = {}, threading.Lock()
        self._predicting, self._predicting_lock = 0, threading.Lock()  # predict_many calls under way
        self.explanations = batching.ExplainQueue(self._explain_all, busy=self.busy)
        # The page asks again for a drawing it was refused (503), and a pointer move that does
        # not change the 28x28 input asks for the same explanation: those are answered from here.
        self._cache, self._cache_lock = collections.OrderedDict(), threading.Lock()
        self.cache_hits = self.cache_misses = 0

    def describe(self):
        """What /api/models shows of each model: its run's name (its id), settings and accuracy; no path on this machine,
        since anyone who can open the page reads it (the log line of each model at start names its directory)."""
        return [
            {key: value for key, value in predictor.describe().items() if key not in PRIVATE_FIELDS}
            for predictor in self.models.values()
        ]

    def warm_inside_views(self, log=print):
        """Compile each model's inside view (its probe and gradients compile on first use), with a log line each."""
        for model_id, predictor in self.models.items():
            if predictor.runtime != "keras":
                continue
            started = time.perf_counter()
            self.explainer(model_id).explain(warm_digit())
            log(f"inside view of the {predictor.family} ready in {time.perf_counter() - started:.1f} s")

    def predict_many(self, requests):
        """The replies to several /api/predict requests ((body, content_type) pairs) at once, in this thread.

        Each body is decoded, the good ones go through each model in one batched
        call (`Batcher.run`), and each gets its own reply: a bad body its error,
        the others their answer, the same bytes `answer("predict", ...)` gives.
        While it runs, explanations wait (`busy`), as behind the Batcher's queue.
        """
        replies, images, prepared = [None] * len(requests), [], []
        with self._predicting_lock:
            self._predicting += 1
        try:
            for position, (body, content_type) in enumerate(requests):
                try:
                    image28, info = decode(body, content_type)
                except MnistlabError as error:
                    replies[position] = error_reply(error)
                    continue
                except Exception as error:  # noqa: BLE001 - a bug answers 500; the others go on
                    replies[position] = internal_error_reply(error)
                    continue
                images.append(image28)
                prepared.append((position, image28, info))
            if images:
                try:
                    outputs = self.batcher.run(np.stack(images))
                except Exception as error:  # noqa: BLE001 - every request of the batch learns of it
                    for position, _, _ in prepared:
                        replies[position] = internal_error_reply(error)
                    return replies
                for row, (position, image28, info) in enumerate(prepared):
                    replies[position] = self._reply(
                        image28, info, self._predictions_of([output[row] for output in outputs])
                    )
            return replies
        finally:
            with self._predicting_lock:
                self._predicting -= 1

    def busy(self):
        """Whether predictions wait or run: explanations start only when none does."""
        return self._predicting > 0 or self.batcher.busy()

    def answer(self, kind, client, body, content_type) -> Reply:
        """The reply to one request: KIND 'predict' or 'explain', from CLIENT (whose newer explain replaces its older)."""
        try:
            image28, info = decode(body, content_type)
            if kind == "predict":
                result = self._predictions(image28)
            elif kind == "explain":
                result = self._cached_explanation(client, image28)
            else:
                raise ValueError(f"unknown kind {kind!r}")
            return self._reply(image28, info, result)
        except MnistlabError as error:
            return error_reply(error)
        except Exception as error:  # noqa: BLE001 - a bug answers 500; the engine goes on
            return internal_error_reply(error)

    def _cached_explanation(self, client, image28):
        key = hashlib.blake2b(image28.tobytes(), digest_size=16).digest()
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                self.cache_hits += 1
                return self._cache[key]
            self.cache_misses += 1
        result = self.explanations.explain(client, image28)
        with self._cache_lock:
            self._cache[key] = result
            while len(self._cache) > EXPLANATION_CACHE:
                self._cache.popitem(last=False)
        return result

    def forget_explanations(self):
        """Empty the explanation cache (the next explanation of any drawing is computed again)."""
        with self._cache_lock:
            self._cache.clear()

    def counts_reply(self) -> Reply:
        """`counts()` as a reply (the health check's answer, which is not a client's request)."""
        return Reply(200, _json(self.counts()))

    def counts(self):
        """What the engine has done: batches, images, explanations and how many came from the cache."""
        return {
            "batches": self.batcher.batches,
            "images": self.batcher.images,
            "explained": self.explanations.done,
            "explain_cache_hits": self.cache_hits,
            "explain_cache_misses": self.cache_misses,
        }

    def close(self):
        self.batcher.close()
        self.explanations.close()

    def explainer(self, model_id):
        """Each model's Explainer, built on first use (most requests only predict)."""
        with self._building:
            if model_id not in self._explainers:
                self._explainers[model_id] = explain.for_predictor(self.models[model_id])
            return self._explainers[model_id]

    @staticmethod
    def _reply(image28, info, result):
        # The input as float64 before rounding: a float32 0.7521 prints as 0.7520999908447266,
        # twice the bytes and three times the time to write.
        return Reply(
            200, _json({"input": np.round(image28.astype(np.float64), 4).tolist(), "preprocess": info, **result})
        )

    def _predictions(self, image28):
        return self._predictions_of(self.batcher.predict(image28))

    def _predictions_of(self, each_model):
        results = []
        for (model_id, predictor), probabilities in zip(self.models.items(), each_model):
            names = data.class_names(predictor.config.dataset)
            results.append(
                {
                    "model": model_id,
                    "family": predictor.family,
                    "preset": predictor.preset,
                    "prediction": int(probabilities.argmax()),
                    "probabilities": [round(float(p), 6) for p in probabilities],
                    "labels": list(names),
                    "top": top_k(probabilities, 3, names),
                }
            )
        return {"predictions": results}

    def _explain_all(self, image28):
        return {
            "explanations": [
                {
                    "model": model_id,
                    "preset": predictor.preset,
                    **explain.to_json(self.explainer(model_id).explain(image28), compact=True),
                }
                for model_id, predictor in self.models.items()
            ]
        }


def _json(payload):
    # Serialised here, not by FastAPI: its encoder walks each of the 784 input values in Python.
    return json.dumps(payload, separators=(",", ":")).encode()


def decode(body, content_type):
    """Request body -> (28x28 image, preprocessing info); a bad one raises an error carrying its HTTP status.

    Images are read within the server's limits (`image_limits.SERVER`), whatever their size or compression.
    """
    if content_type == "application/json" or body[:1] in (b"{", b"["):
        return decode_json(body)
    return preprocess.prepare_file(body, name="upload", limits=image_limits.SERVER)


def decode_json(body):
    """A JSON body {"pixels": 28x28} -> (28x28 image in [0, 1], preprocessing info); the lab's inside view takes it too."""
    if len(body) > MAX_JSON_BYTES:
        raise RequestError(
            f"a JSON body is at most {MAX_JSON_BYTES // 1024} KiB (28x28 numbers take about 20), this one is {len(body):,} bytes",
            413,
        )
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError, and integers past Python's 4,300 digits
        raise RequestError(f"malformed JSON ({str(error)[:120]})") from None
    except RecursionError:
        raise RequestError("malformed JSON: nested too deeply") from None
    if not isinstance(payload, dict) or "pixels" not in payload:
        raise RequestError('JSON body must be an object {"pixels": [[...28 numbers...] x 28]}')
    try:
        pixels = np.asarray(payload["pixels"], dtype=np.float64)
    except (TypeError, ValueError):
        raise RequestError("pixels must be a 28x28 array of numbers") from None
    if pixels.shape != (28, 28):
        raise RequestError(f"pixels must be 28x28, got {'x'.join(map(str, pixels.shape)) or 'a single number'}")
    if not np.all(np.isfinite(pixels)):
        raise RequestError("pixels must be finite numbers")
    if pixels.max() > 1.0:
        pixels = pixels / 255.0  # 0-255 values are accepted too
    pixels = np.clip(pixels, 0, 1)
    if pixels.max() < 0.1:
        raise RequestError("the 28x28 image is empty: draw a digit first", 422)
    # A ready 28x28 array is taken as the model input, as is (already MNIST-style).
    return pixels.astype(np.float32), {"inverted": False, "source_shape": [28, 28], "preprocessed": False}

"""Predictions from a trained run, on Keras or ONNX Runtime, for files and 28x28 arrays."""

import json
import pathlib
import threading

import numpy as np

from mnistlab import data, preprocess, train
from mnistlab.errors import MnistlabError

RUNTIMES = ("keras", "onnx")
ONNX_NAME = "model.onnx"


class Predictor:
    """One run's model, ready to classify 28x28 images in [0, 1].

    Keras: the model is loaded in this process' backend (a .keras file loads
    on any of them) and called through its compiled predict step. ONNX: the
    run's model.onnx (written by `mnistlab export RUN_DIR --format onnx`) on
    ONNX Runtime. Calls are serialised per model, so one Predictor can serve
    many threads.
    """

    def __init__(self, run_dir, runtime="keras"):
        if runtime not in RUNTIMES:
            raise MnistlabError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
        self.run_dir = pathlib.Path(run_dir)
        self.runtime = runtime
        self.config, self.preset = train.read_run_config(self.run_dir)
        metrics_path = self.run_dir / "metrics.json"
        self.metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
        self._lock = threading.Lock()
        if runtime == "onnx":
            self._session, self._input_name = _onnx_session(self.run_dir / ONNX_NAME, self.run_dir)
        else:
            self._model = _load_keras_model(self.run_dir)

    @property
    def family(self):
        return self.config.model

    def describe(self):
        return {
            "id": self.run_dir.name,
            "family": self.family,
            "preset": self.preset,
            "run_dir": str(self.run_dir),
            "runtime": self.runtime,
            "dataset": self.config.dataset,
            "test_accuracy": self.metrics.get("test_accuracy"),
            "description": self.config.describe(),
        }

    def predict(self, images):
        """(N, 28, 28) floats in [0, 1] -> (N, 10) class probabilities."""
        images = np.asarray(images, dtype=np.float32)
        if images.ndim == 2:
            images = images[None]
        inputs = images.reshape((len(images),) + tuple(self.config.input_shape))
        with self._lock:
            if self.runtime == "onnx":
                output = self._session.run(None, {self._input_name: inputs})[0]
            else:
                output = self._model.predict_on_batch(inputs)
        return np.asarray(output, dtype=np.float64)


def _load_keras_model(run_dir):
    import keras

    model_path = run_dir / "model.keras"
    if not model_path.exists():
        raise MnistlabError(f"{run_dir}: no model.keras; the run did not finish (or diverged)")
    return keras.saving.load_model(model_path)


def _onnx_session(path, run_dir):
    if not path.exists():
        raise MnistlabError(f"{run_dir}: no {ONNX_NAME}; run `mnistlab export {run_dir} --format onnx` first")
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session, session.get_inputs()[0].name


def activate_for(run_dirs, runtime, backend="auto"):
    """Choose this process' Keras backend for serving/predicting a set of runs (before Keras is imported)."""
    from mnistlab import backend as backend_lib

    if runtime == "onnx":
        return None
    if backend in (None, "auto"):
        # One process, one backend: every .keras model loads on any backend;
        # JAX has the fastest compiled single-image calls here.
        backend = "jax"
    return backend_lib.activate(backend_lib.resolve(backend, "mlp"))


def top_k(probabilities, k):
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [{"class": int(c), "probability": float(probabilities[c])} for c in order]


def predict_files(run_dir, paths, top=3, runtime="keras", show_input_dir=None, predictor=None):
    """Classify image files; one dict per file with the top classes and preprocessing details."""
    if not 1 <= top <= data.NUM_CLASSES:
        raise MnistlabError(f"--top must be between 1 and {data.NUM_CLASSES}, got {top}")
    prepared = [(path, *preprocess.prepare_file(path)) for path in paths]  # fail on a bad file before loading the model
    predictor = predictor or Predictor(run_dir, runtime=runtime)
    probabilities = predictor.predict(np.stack([image for _, image, _ in prepared]))
    results = []
    for (path, image, info), probs in zip(prepared, probabilities):
        result = {"image": str(path), "prediction": int(probs.argmax()), "top": top_k(probs, top), "preprocess": info}
        if show_input_dir:
            out = pathlib.Path(show_input_dir) / (pathlib.Path(path).stem + "-input.png")
            preprocess.save_input_png(image, out)
            result["input_png"] = str(out)
        results.append(result)
    return results


def latest_runs_per_family(store_path=None):
    """The latest finished run with a saved model for each family, from the run store."""
    from mnistlab.store import Store

    chosen = {}
    with Store(store_path) as store:
        for run in reversed(store.runs(status="done")):
            if run["model"] in chosen or not run["run_dir"]:
                continue
            if (pathlib.Path(run["run_dir"]) / "model.keras").exists():
                chosen[run["model"]] = run["run_dir"]
    if not chosen:
        raise MnistlabError("no finished runs with a saved model in the run store; train some first (e.g. `mnistlab listings`) or pass run directories")
    return [chosen[family] for family in ("mlp", "cnn", "rnn") if family in chosen]

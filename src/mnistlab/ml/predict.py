"""Predictions from a trained run, on Keras or ONNX Runtime, for files and 28x28 arrays."""

import pathlib
import threading

import numpy as np

from mnistlab.core import presets
from mnistlab.core.config import RUNTIMES
from mnistlab.core.errors import ConfigError, MissingExtra, RequestError, RunDirError
from mnistlab.ml import backend as backend_lib
from mnistlab.ml import data, preprocess
from mnistlab.record import rundir

ONNX_NAME = "model.onnx"


class Predictor:
    """One run's model, ready to classify 28x28 images in [0, 1].

    Keras: the model is loaded in this process' backend (a .keras file loads
    on any of them) and called through its compiled predict step. ONNX: the
    run's model.onnx (written by `mnistlab export RUN_DIR --format onnx`) on
    ONNX Runtime. Calls are serialised per model, so one Predictor can serve
    many threads.
    """

    def __init__(self, run_dir: str | pathlib.Path, runtime: str = "keras"):
        if runtime not in RUNTIMES:
            raise ConfigError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
        self.run_dir = pathlib.Path(run_dir)
        self.runtime = runtime
        self.config, self.preset = rundir.read_config(self.run_dir)
        self.metrics = rundir.read_metrics(self.run_dir) or {}
        self._lock = threading.Lock()
        if runtime == "onnx":
            path = self.run_dir / ONNX_NAME
            if not path.exists():
                raise RunDirError(
                    f"{self.run_dir}: no {ONNX_NAME}; run `mnistlab export {self.run_dir} --format onnx` first"
                )
            self._session = onnx_session(path)
            self._input_name = self._session.get_inputs()[0].name
        else:
            import keras

            self._model = keras.saving.load_model(rundir.model_path(self.run_dir))

    @property
    def family(self) -> str:
        return self.config.family

    def describe(self) -> dict:
        return {
            "id": self.run_dir.name,
            "family": self.family,
            "preset": self.preset,
            "run_dir": str(self.run_dir),
            "runtime": self.runtime,
            "dataset": self.config.dataset,
            "test_accuracy": self.metrics.get("test_accuracy"),
            "description": presets.describe(self.config, self.preset),
        }

    def predict(self, images: np.ndarray) -> np.ndarray:
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

    def copy_of_keras_model(self):
        """A copy of the Keras model with its own weights, for views of its inside; an ONNX session has none.

        A copy, so that explaining never touches this model's variables while
        it predicts in another thread: on JAX, Keras' predict step donates the
        variables' buffers and replaces them, so a second user of the same
        variables can read a deleted buffer.
        """
        if self.runtime == "onnx":
            raise RequestError(
                "the inside view needs the Keras runtime (ONNX gives no layer outputs): serve without --runtime onnx",
                409,
            )
        import keras

        with self._lock:
            copy = keras.models.clone_model(self._model)
            copy.set_weights(self._model.get_weights())
        return copy


def onnx_session(path):
    """An ONNX Runtime session on the CPU for PATH."""
    try:
        import onnxruntime
    except ImportError:
        raise MissingExtra("the ONNX runtime", "onnx") from None
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def activate_for(run_dirs, runtime, backend="auto"):
    """Choose this process' Keras backend for serving/predicting a set of runs (before Keras is imported)."""
    if runtime == "onnx":
        return None
    if backend in (None, "auto"):
        # One process, one backend: every .keras model loads on any backend;
        # JAX has the fastest compiled single-image calls here.
        backend = "jax"
    return backend_lib.activate(backend_lib.resolve(backend, "mlp"))


def top_k(probabilities, k, names=None):
    """The K most probable classes: index, name (a digit, or Fashion-MNIST's garment) and probability."""
    names = names or data.class_names(None)
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [{"class": int(c), "label": names[c], "probability": float(probabilities[c])} for c in order]


def predict_files(
    run_dir,
    paths,
    top: int = 3,
    runtime: str = "keras",
    backend: str = "auto",
    show_input_dir=None,
    predictor: "Predictor | None" = None,
) -> list[dict]:
    """Classify image files; one dict per file with the top classes and preprocessing details."""
    if not 1 <= top <= data.NUM_CLASSES:
        raise ConfigError(f"--top must be between 1 and {data.NUM_CLASSES}, got {top}")
    prepared = [(path, *preprocess.prepare_file(path)) for path in paths]  # fail on a bad file before loading the model
    if predictor is None:
        activate_for([run_dir], runtime, backend)
        predictor = Predictor(run_dir, runtime=runtime)
    probabilities = predictor.predict(np.stack([image for _, image, _ in prepared]))
    results = []
    for (path, image, info), probs in zip(prepared, probabilities):
        names = data.class_names(predictor.config.dataset)
        result = {
            "image": str(path),
            "prediction": int(probs.argmax()),
            "label": names[int(probs.argmax())],
            "top": top_k(probs, top, names),
            "preprocess": info,
        }
        if show_input_dir:
            out = pathlib.Path(show_input_dir) / (pathlib.Path(path).stem + "-input.png")
            preprocess.save_input_png(image, out)
            result["input_png"] = str(out)
        results.append(result)
    return results


IMAGE_SUFFIXES = (
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".npy",
)  # what predict's images are


def predict_runs(paths, top: int = 3, runtime: str = "keras", backend: str = "auto", show_input_dir=None) -> list[dict]:
    """`mnistlab predict RUN_DIR... IMAGE...`: every image through every run; one dict per (run, image), with its run_dir."""
    run_dirs = [path for path in paths if (pathlib.Path(path) / rundir.CONFIG_FILE).is_file()]
    images = [path for path in paths if path not in run_dirs]
    # A first path that is no image and no run directory was meant as a run: say what is wrong with it.
    first = pathlib.Path(paths[0]) if paths else None
    if (
        not run_dirs
        and first is not None
        and (first.is_dir() or not first.exists())
        and first.suffix.lower() not in IMAGE_SUFFIXES
    ):
        rundir.check(first)  # names it: no such directory, or no config.json in it
    if not run_dirs:
        raise ConfigError(
            f"no run directory given: pass one or more directories that `mnistlab train` wrote, then images (e.g. `mnistlab predict RUN_DIR digit.png`); {paths[0]} is not one"
        )
    if not images:
        raise ConfigError(
            "no image files given: pass run directories, then images (e.g. `mnistlab predict RUN_DIR digit.png`)"
        )
    results = []
    for run_dir in run_dirs:
        results += [
            {"run_dir": str(run_dir), **result}
            for result in predict_files(
                run_dir, images, top=top, runtime=runtime, backend=backend, show_input_dir=show_input_dir
            )
        ]
    return results

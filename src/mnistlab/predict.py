"""Predictions from a trained run, on Keras or ONNX Runtime, for files and 28x28 arrays."""

import pathlib
import threading

import numpy as np

from mnistlab import backend as backend_lib
from mnistlab import data, presets, preprocess, rundir, seeds
from mnistlab.config import RUNTIMES
from mnistlab.errors import ConfigError, MissingExtra, RequestError, RunDirError
from mnistlab.store import Store

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
                raise RunDirError(f"{self.run_dir}: no {ONNX_NAME}; run `mnistlab export {self.run_dir} --format onnx` first")
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
            raise RequestError("the inside view needs the Keras runtime (ONNX gives no layer outputs): serve without --runtime onnx", 409)
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


def predict_files(run_dir, paths, top: int = 3, runtime: str = "keras", backend: str = "auto", show_input_dir=None, predictor: "Predictor | None" = None) -> list[dict]:
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
        result = {"image": str(path), "prediction": int(probs.argmax()), "label": names[int(probs.argmax())], "top": top_k(probs, top, names), "preprocess": info}
        if show_input_dir:
            out = pathlib.Path(show_input_dir) / (pathlib.Path(path).stem + "-input.png")
            preprocess.save_input_png(image, out)
            result["input_png"] = str(out)
        results.append(result)
    return results


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".npy")  # what predict's images are


def predict_runs(paths, top: int = 3, runtime: str = "keras", backend: str = "auto", show_input_dir=None) -> list[dict]:
    """`mnistlab predict RUN_DIR... IMAGE...`: every image through every run; one dict per (run, image), with its run_dir."""
    run_dirs = [path for path in paths if (pathlib.Path(path) / rundir.CONFIG_FILE).is_file()]
    images = [path for path in paths if path not in run_dirs]
    # A first path that is no image and no run directory was meant as a run: say what is wrong with it.
    first = pathlib.Path(paths[0]) if paths else None
    if not run_dirs and first is not None and (first.is_dir() or not first.exists()) and first.suffix.lower() not in IMAGE_SUFFIXES:
        rundir.check(first)  # names it: no such directory, or no config.json in it
    if not run_dirs:
        raise ConfigError(f"no run directory given: pass one or more directories that `mnistlab train` wrote, then images (e.g. `mnistlab predict RUN_DIR digit.png`); {paths[0]} is not one")
    if not images:
        raise ConfigError("no image files given: pass run directories, then images (e.g. `mnistlab predict RUN_DIR digit.png`)")
    results = []
    for run_dir in run_dirs:
        results += [{"run_dir": str(run_dir), **result} for result in predict_files(run_dir, images, top=top, runtime=runtime, backend=backend, show_input_dir=show_input_dir)]
    return results


# What a page shows: its datasets share their labels (a digit page takes MNIST and its sample;
# a clothes page, Fashion-MNIST). Any other name is a page of that dataset alone.
PAGE_DATASETS = {"digits": ("mnist", "mnist-mini"), "fashion-mnist": ("fashion-mnist",)}
DEFAULT_PAGE = "digits"


def page_datasets(page):
    """The dataset names of PAGE ('digits', 'fashion-mnist', or any dataset name)."""
    return PAGE_DATASETS.get(page, (page,))


def choose_runs(store_path=None, page=DEFAULT_PAGE) -> list[dict]:
    """Per family, the finished run on PAGE's datasets with a saved model and the best validation accuracy (never the test set's).

    One dict per family: run_dir, family, dataset, val_accuracy and why it was chosen.
    """
    datasets = page_datasets(page)
    chosen, others = {}, set()
    with Store(store_path) as store:
        servable = [run for run in store.runs(status="done") if run["run_dir"] and (pathlib.Path(run["run_dir"]) / rundir.MODEL_FILE).exists()]
    # One candidate per seed, as every statistic counts runs (seeds.select_counted): the best of a seed's
    # repeats would be chosen on noise, not on its setup.
    for run in seeds.select_counted(servable)[0]:
        if run["dataset"] not in datasets:
            others.add(run["dataset"])
            continue
        score = run["val_accuracy"] if run["val_accuracy"] is not None else -1.0
        if run["model"] not in chosen or score > chosen[run["model"]]["val_accuracy"]:
            chosen[run["model"]] = {"run_dir": run["run_dir"], "family": run["model"], "dataset": run["dataset"], "val_accuracy": score}
    if not chosen:
        elsewhere = f"; the store has runs on {', '.join(sorted(others))} (choose one with --dataset)" if others else ""
        raise RunDirError(f"no finished runs on {' or '.join(datasets)} with a saved model in the run store{elsewhere}; train some first (e.g. `mnistlab listings`) or pass run directories")
    for run in chosen.values():
        run["why"] = f"best validation accuracy ({100 * run['val_accuracy']:.1f}%) among the {run['family']} runs on {' or '.join(datasets)}"
    return [chosen[family] for family in ("mlp", "cnn", "rnn") if family in chosen]


def best_runs_per_family(store_path=None, page=DEFAULT_PAGE) -> list[str]:
    """The run directories `choose_runs` picks."""
    return [run["run_dir"] for run in choose_runs(store_path, page)]


def check_one_page(run_dirs):
    """The dataset the runs share a page on, or a one-line error: a page never mixes digits and clothes."""
    pages = {}
    for run_dir in run_dirs:
        dataset = rundir.read_config(run_dir)[0].dataset
        page = next((name for name, names in PAGE_DATASETS.items() if dataset in names), dataset)
        pages.setdefault(page, []).append(str(run_dir))
    if len(pages) > 1:
        listed = "; ".join(f"{page}: {', '.join(dirs)}" for page, dirs in pages.items())
        raise ConfigError(f"these runs were trained on different kinds of images ({listed}); serve the runs of one dataset at a time")
    return next(iter(pages))

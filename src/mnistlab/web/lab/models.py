"""A finished run's model, opened by the lab: its report on the test set, its inside view, its draw page.

Each is built on first use and kept for the KEPT_MODELS runs opened last. Every model opens on the lab's one
Keras backend (`Lab.keras_backend`): a .keras file loads on any backend, and a process cannot switch once
Keras runs.
"""

import collections
import dataclasses
import pathlib
import threading

import numpy as np

from mnistlab.core import fileio
from mnistlab.core.errors import RequestError
from mnistlab.ml import data, explain
from mnistlab.record import rundir
from mnistlab.record.store import Store
from mnistlab.serving import engine as engine_lib
from mnistlab.web import serve
from mnistlab.web.errors import shown
from mnistlab.web.lab.datasets import BUILTIN_DATASETS

KEPT_MODELS = 4  # runs whose model (inside view, report, draw page) the lab keeps loaded


@dataclasses.dataclass(frozen=True)
class DrawApp:
    """`mnistlab serve`'s app for one run, and the engine it answers with (closed when the run is let go)."""

    app: object
    engine: engine_lib.Engine


class ModelCache:
    """The models of the runs opened last, each with what was asked of it: report, explainer, draw app."""

    def __init__(self, store_path, datasets, keras_backend):
        """`datasets`: the lab's `Datasets` (test digits); `keras_backend()`: the backend every model opens on."""
        self.store_path = store_path
        self.datasets = datasets
        self.keras_backend = keras_backend
        self._models = collections.OrderedDict()  # run id -> {"lock", "report", "explainer", "draw"}
        self._lock = threading.Lock()

    def close(self):
        with self._lock:
            for entry in self._models.values():
                _close(entry)
            self._models.clear()

    def run_dir(self, run_id):
        """The run directory of a finished run with a saved model, or a 409 saying why there is none."""
        with Store(self.store_path) as store:
            row = store.get(run_id)
        if (
            row["status"] != "done"
            or not row["run_dir"]
            or not (pathlib.Path(row["run_dir"]) / rundir.MODEL_FILE).exists()
        ):
            raise RequestError(f"run {run_id} is {row['status']}: only a finished run has a model to look into", 409)
        return row["run_dir"]

    def _kept(self, run_id, what, build):
        """The run's WHAT (report, explainer, draw app), built once; the few runs used last are kept."""
        with self._lock:
            entry = self._models.setdefault(run_id, {"lock": threading.Lock()})
            self._models.move_to_end(run_id)
            while len(self._models) > KEPT_MODELS:
                _, evicted = self._models.popitem(last=False)
                _close(evicted)
        with entry["lock"]:  # one build per run at a time: a second request waits for the first's
            if what not in entry:
                entry[what] = build()
            return entry[what]

    def report(self, run_id):
        """The test set through the run's model: confusion matrix and the most confident mistakes (with the dataset's class names)."""
        run_dir = self.run_dir(run_id)
        return self._kept(run_id, "report", lambda: _report_of(run_dir, self.keras_backend()))

    def explain(self, run_id, request, content_type="application/json"):
        """The inside view (mnistlab.ml.explain) of the run's model for {"test_index": i}, {"pixels": 28x28},
        or an image's bytes (a drawing on the run page, a photo), preprocessed as `mnistlab predict` and the draw page do."""
        run_dir = self.run_dir(run_id)
        explainer = self._kept(
            run_id, "explainer", lambda: explain.explainer_for(run_dir, backend=self.keras_backend())
        )
        label = None
        if isinstance(request, dict) and "test_index" in request:
            image, label = self._test_digit(explainer.config.dataset, request["test_index"])
        elif isinstance(request, bytes):
            image, _ = engine_lib.decode(request, content_type)
        else:
            try:
                encoded = fileio.dumps(request).encode()
            except RecursionError:  # parsed, but too deep to write again: no 28x28 list of numbers is
                raise RequestError('pixels must be 28 rows of 28 numbers in [0, 1]: {"pixels": [[...] x 28]}') from None
            image, _ = engine_lib.decode_json(encoded)
        explanation = explainer.explain(image)
        return {"input": np.round(image, 4).tolist(), "label": label, **explain.to_json(explanation, compact=True)}

    def _test_digit(self, dataset, index):
        """(test digit INDEX of DATASET in [0, 1], its label where the dataset is a built-in one)."""
        builtin = dataset in BUILTIN_DATASETS
        loaded = self.datasets.load(dataset) if builtin else data.load_dataset(dataset)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(loaded.x_test):
            raise RequestError(f"test_index must be an integer in [0, {len(loaded.x_test) - 1}], got {shown(index)}")
        return loaded.x_test[index].astype(np.float32) / 255.0, int(loaded.y_test[index]) if builtin else None

    def draw_app(self, run_id):
        """`mnistlab serve`'s app for this run alone (the draw page and its API), built on first use."""
        run_dir = self.run_dir(run_id)

        def build():
            from mnistlab.ml.predict import Predictor

            self.keras_backend()
            engine = engine_lib.Engine([Predictor(run_dir)], warm=False)
            return DrawApp(serve.create_app(engine=engine, chosen_by=f"run {run_id}, opened from the lab"), engine)

        return self._kept(run_id, "draw", build).app


def _close(entry):
    """Stop a draw app's batcher and explainer threads, so that its model can go."""
    if "draw" in entry:
        entry["draw"].engine.close()


def _report_of(run_dir, backend):
    from mnistlab.outputs import report

    probabilities, labels, images, dataset_name = report.predict_test_set(run_dir, backend=backend)
    predictions = probabilities.argmax(axis=1)
    matrix = report.confusion_matrix(labels, predictions)
    names = data.class_names(dataset_name)
    return {
        "dataset": dataset_name,
        "labels": list(names),
        "confusion": matrix.tolist(),
        "test_samples": int(len(labels)),
        "accuracy": float((predictions == labels).mean()),
        "per_class": report.per_class_accuracy(matrix).tolist(),
        "mistakes": [
            {
                "index": int(index),
                "label": int(labels[index]),
                "predicted": int(predictions[index]),
                "confidence": float(probabilities[index, predictions[index]]),
                "label_name": names[labels[index]],
                "predicted_name": names[predictions[index]],
                "pixels": images[index].tolist(),
            }
            for index in report.confident_mistakes(probabilities, labels)
        ],
    }

"""Training and evaluation: one loop for every model family.

`train(config)` pins the backend, loads and splits the data, builds the model
from the registry, fits it with a held-out validation split, evaluates once
on the test set and returns a `Result`: the metrics, the per-epoch history
and the trained model, as Keras' `fit` returns a `History`. It writes
nothing itself: a `Recorder` (in practice `rundir.Recorder`) is told the
run's start, each epoch and its end, and writes the run directory and the
store's index. `run_model.train_and_save` is the usual pairing of the two.
"""

import dataclasses
import sys
import time
import typing

from mnistlab.core import presets
from mnistlab.core.config import Config
from mnistlab.core.errors import MnistlabError
from mnistlab.core.events import RunStatus
from mnistlab.ml import backend as backend_lib
from mnistlab.ml import callbacks as callbacks_lib
from mnistlab.ml import data


@dataclasses.dataclass
class Prepared:
    """The arrays one run trains, validates and tests on, in the model's input layout."""

    x_train: object
    y_train: object
    x_val: object
    y_val: object
    x_test: object
    y_test: object


def prepare(dataset, config):
    x_train, y_train = dataset.x_train, dataset.y_train
    if config.limit is not None:
        x_train, y_train = x_train[: config.limit], y_train[: config.limit]
    x_train, y_train, x_val, y_val = data.split_validation(x_train, y_train, config.validation_split, config.seed)
    shape = config.input_shape
    return Prepared(
        x_train=data.prepare_images(x_train, shape),
        y_train=data.one_hot(y_train),
        x_val=data.prepare_images(x_val, shape),
        y_val=data.one_hot(y_val),
        x_test=data.prepare_images(dataset.x_test, shape),
        y_test=data.one_hot(dataset.y_test),
    )


class Recorder(typing.Protocol):
    """What `train()` tells about a run, in this order: start, epoch after each epoch, then finish or fail."""

    def start(self, config: Config, preset: str | None, dataset_name: str, dataset_hash: str) -> None: ...

    def epoch(self, row: dict) -> None: ...

    def dynamics(self, record: dict) -> None:
        """The run's dynamics so far (ml/dynamics.py), whole, at the start and after each epoch."""

    def finish(self, metrics: dict, model, predictions: dict | None = None) -> dict:
        """Record a run that ended (done or diverged); return the metrics as recorded (with run id, directory...).

        `predictions`: the per-example test predictions (`compact_predictions`), for a run that was evaluated."""

    def fail(self, status: str, error: str) -> None:
        """Record a run that raised (`failed`) or was stopped (`interrupted`)."""


class _NoRecorder:
    """What train() talks to when nobody records the run."""

    def start(self, config, preset, dataset_name, dataset_hash):
        pass

    def epoch(self, row):
        pass

    def dynamics(self, record):
        pass

    def finish(self, metrics, model, predictions=None):
        return metrics

    def fail(self, status, error):
        pass


@dataclasses.dataclass
class Result:
    """What one training gives back: `metrics` as recorded, `history` (a row per epoch), the trained `model`
    and its per-example test `predictions` (`compact_predictions`; None for a run that diverged)."""

    metrics: dict
    history: list[dict]
    model: object
    predictions: dict | None = None


def compact_predictions(probabilities, labels):
    """What a run keeps of each test example, compactly: its predicted class (uint8), the
    probability it gave the true class (float16: 3 significant digits is what an atlas shows)
    and the label (uint8), in the dataset's test order. 4 bytes an example: 40 KB for 10,000 digits."""
    import numpy as np

    probabilities = np.asarray(probabilities)
    labels = np.asarray(labels)
    return {
        "predicted": probabilities.argmax(axis=1).astype(np.uint8),
        "true_probability": probabilities[np.arange(len(labels)), labels].astype(np.float16),
        "labels": labels.astype(np.uint8),
    }


def train(
    config: Config,
    dataset=None,
    preset=None,
    recorder: Recorder | None = None,
    callbacks=(),
    verbose=None,
    progress=None,
) -> Result:
    """Train one run and return its Result (metrics, history, model).

    `dataset`: a loaded `data.Dataset` (default: load `config.dataset`).
    `preset`: the preset name the config came from, for the record.
    `recorder`: told start / epoch / finish or fail (a `Recorder`, e.g. `rundir.Recorder`); none by default.
    `callbacks`: more Keras callbacks for `fit` (TensorBoard, early stopping...).
    `verbose`: Keras' fit verbosity (default: a progress bar on a terminal, one line per epoch otherwise).
    `progress`: a function told each epoch's row and, within an epoch, the step reached (the lab's live curves).
    """
    recorder = recorder or _NoRecorder()
    preset = presets.kept(preset, config)
    config = backend_lib.pin(config)
    backend_lib.check_precision(config)
    backend_lib.activate(config.backend)
    from mnistlab.ml import models

    # The model is built before the data is read so that a config Keras cannot
    # build fails at once.
    backend_lib.seed_everything(config.seed)
    model = models.build_model(config)
    if dataset is None:
        dataset = data.load_dataset(config.dataset)
    config = config.replace(dataset=data.pinned_name(config.dataset, dataset))
    arrays = prepare(dataset, config)
    if len(arrays.x_train) == 0:
        raise MnistlabError(
            f"no training samples left (limit={config.limit}, validation_split={config.validation_split}); raise --limit"
        )

    dataset_hash = dataset.content_hash()
    recorder.start(config, preset, dataset.name, dataset_hash)
    try:
        metrics, history, predictions = _fit_and_evaluate(
            config, model, arrays, dataset.y_test, recorder, callbacks, verbose, progress
        )
    except KeyboardInterrupt:
        recorder.fail(RunStatus.INTERRUPTED.value, "interrupted by the user")
        raise
    except Exception as error:
        recorder.fail(RunStatus.FAILED.value, f"{type(error).__name__}: {error}")
        raise
    metrics.update(_identity(config, preset, dataset, dataset_hash, model))
    with backend_lib.saving_without_tensorflow_probe():
        metrics = recorder.finish(metrics, model, predictions)
    return Result(metrics=metrics, history=history, model=model, predictions=predictions)


def _identity(config, preset, dataset, dataset_hash, model):
    """What identifies a run in its metrics: its setup, data, backend, seed, size and library versions."""
    return {
        "preset": preset,
        "family": config.family,
        "description": config.describe(),
        "config_hash": config.config_hash(),
        "dataset": dataset.name,
        "dataset_hash": dataset_hash,
        "backend": config.backend,
        "seed": config.seed,
        "params": int(model.count_params()),
        "versions": backend_lib.library_versions(),
    }


def _fit_and_evaluate(config, model, arrays, test_labels, recorder, callbacks, verbose, progress=None):
    """Fit, then evaluate on the test set unless the loss diverged; (metrics, history rows, test predictions or None)."""
    from mnistlab.ml import models

    compiled = models.fit_steps_to_epoch(model, config, len(arrays.x_train))
    epochs = callbacks_lib.epoch_callback(recorder, progress)
    if progress is not None:
        model.steps_per_execution = min(model.steps_per_execution, callbacks_lib.PROGRESS_STEPS_PER_EXECUTION)
        compiled = {**compiled, "steps_per_execution": model.steps_per_execution}
        callbacks = [callbacks_lib.step_callback(progress), *callbacks]
    watchers = _dynamics_watchers(config, model, arrays, recorder)
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    x, y, batch_size, validation = _fit_data(arrays, config)
    started = time.perf_counter()
    # A tf.data pipeline from fit_inputs shuffles itself; fit's own shuffle is for arrays.
    model.fit(
        x,
        y,
        batch_size=batch_size,
        epochs=config.epochs,
        validation_data=validation,
        shuffle=y is not None,
        callbacks=[*watchers, epochs, *callbacks],
        verbose=verbose,
    )
    train_seconds = time.perf_counter() - started
    last = epochs.rows[-1]
    metrics = {
        "status": (RunStatus.DIVERGED if epochs.diverged_at else RunStatus.DONE).value,
        "epochs": len(epochs.rows),
        "train_samples": int(len(arrays.x_train)),
        "val_samples": int(len(arrays.x_val)),
        "test_samples": int(len(arrays.x_test)),
        # The book's "train accuracy": what fit() reports for the last epoch, dropout on.
        "train_accuracy": last["accuracy"],
        "train_loss": last["loss"],
        "val_accuracy": last["val_accuracy"],
        "val_loss": last["val_loss"],
        "test_accuracy": None,
        "test_loss": None,
        "train_seconds": round(train_seconds, 3),
        "mean_epoch_seconds": round(sum(row["seconds"] for row in epochs.rows) / len(epochs.rows), 4),
        "compile": compiled,
    }
    # What a reader of the result should know to read it right (said where the result is printed).
    steps = len(epochs.rows) * -(-len(arrays.x_train) // config.batch_size)
    notes = [note for note in (config.batch_norm_note(steps),) if note]
    if notes:
        metrics["notes"] = notes
    predictions = None
    if epochs.diverged_at:
        metrics["diverged_at_epoch"] = epochs.diverged_at
    else:
        predictions = _evaluate(model, arrays, test_labels, metrics)
    metrics["seconds"] = round(time.perf_counter() - started, 3)
    return metrics, epochs.rows, predictions


def _fit_data(arrays, config):
    """fit's x, y, batch_size and validation_data (None without a validation split) for the prepared arrays."""
    x, y, batch_size = backend_lib.fit_inputs(arrays.x_train, arrays.y_train, config.batch_size)
    validation = None
    if len(arrays.x_val):
        x_val, y_val, _ = backend_lib.fit_inputs(arrays.x_val, arrays.y_val, config.batch_size, shuffle=False)
        validation = x_val if y_val is None else (x_val, y_val)
    return x, y, batch_size, validation


def _dynamics_watchers(config, model, arrays, recorder):
    """The dynamics' callback (ml/dynamics.py), where the config asks for them, to be called before the epoch's row
    is told: whoever hears that an epoch ended finds its measurements on disk."""
    if not config.dynamics:
        return []
    from mnistlab.ml import dynamics

    return [dynamics.recorder_callback(model, config, arrays.x_train, arrays.y_train, recorder.dynamics)]


def _evaluate(model, arrays, test_labels, metrics):
    """Test the model: its loss and accuracy into METRICS, with what each part cost; the compact predictions.

    One pass over the test set gives both evaluate's figures and the per-example answers (Keras' evaluate
    keeps only the totals; a second pass would cost its compilation again)."""
    from mnistlab.ml import models

    evaluating = time.perf_counter()
    metrics["test_loss"], metrics["test_accuracy"], probabilities = models.evaluate_and_predict(
        model, arrays.x_test, arrays.y_test
    )
    compacting = time.perf_counter()
    predictions = compact_predictions(probabilities, test_labels)
    metrics["evaluate_seconds"] = round(compacting - evaluating, 4)
    # What keeping them adds (the file is written by the Recorder).
    metrics["predictions_seconds"] = round(time.perf_counter() - compacting, 4)
    return predictions

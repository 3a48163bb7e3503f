"""Training and evaluation: one loop for every model family.

`train(config)` resolves the backend, loads and splits the data, builds the
model from the registry, fits it with a held-out validation split, evaluates
once on the test set and writes a self-describing run directory:

    config.json   the resolved config (backend and dataset as actually used)
    history.csv   per-epoch loss/accuracy/val_loss/val_accuracy/seconds
    metrics.json  final figures, status, timings, library versions
    model.keras   the trained model

Each file is written atomically. A run directory without metrics.json is a
run that did not finish.
"""

import csv
import dataclasses
import datetime
import io
import json
import math
import os
import pathlib
import platform
import sys
import time

from mnistlab import backend as backend_lib
from mnistlab import data, fileio
from mnistlab.config import Config
from mnistlab.errors import MnistlabError

EVAL_BATCH_SIZE = 1024  # inference needs no small batches; large ones are faster
HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds")


def runs_root():
    return pathlib.Path(os.environ.get("MNISTLAB_RUNS", "runs"))


def default_run_dir(config, name=None):
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    label = (name or config.model).replace("@", "-")
    base = runs_root() / f"{stamp}-{label}-{config.backend}-s{config.seed}"
    candidate, counter = base, 1
    while candidate.exists():
        counter += 1
        candidate = base.with_name(f"{base.name}-{counter}")
    return candidate


def machine_description():
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count()}


@dataclasses.dataclass
class Prepared:
    """The arrays one run trains, validates and tests on, in the model's input layout."""

    x_train: object
    y_train: object
    x_val: object
    y_val: object
    x_test: object
    y_test: object
    test_labels: object


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
        test_labels=dataset.y_test,
    )


def resolve_config(config):
    """Pin backend 'auto' to the backend this process will use, and activate it."""
    name = backend_lib.resolve(config.backend, config.model)
    backend_lib.check_precision(config)
    backend_lib.activate(name)
    return config.replace(backend=name)


def _make_callbacks(run_dir, on_epoch):
    import keras

    class RunRecorder(keras.callbacks.Callback):
        """Writes history.csv after every epoch and stops on a non-finite loss."""

        def __init__(self):
            super().__init__()
            self.rows = []
            self.diverged_at = None
            self._started = None

        def on_epoch_begin(self, epoch, logs=None):
            self._started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            row = {"epoch": epoch + 1, "seconds": round(time.perf_counter() - self._started, 4)}
            for key in HISTORY_COLUMNS[1:-1]:
                row[key] = float(logs[key]) if key in logs else None
            self.rows.append(row)
            if run_dir is not None:
                write_history(run_dir / "history.csv", self.rows)
            if on_epoch is not None:
                on_epoch(row)
            if not math.isfinite(row["loss"]):
                self.diverged_at = epoch + 1
                self.model.stop_training = True

    return RunRecorder()


def write_history(path, rows):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    fileio.write_text(path, buffer.getvalue())


def _open_store(store):
    from mnistlab.store import Store

    if store is True:
        return Store()
    return store if isinstance(store, Store) else Store(store)


def train(config: Config, run_dir=None, name=None, dataset=None, verbose=None, on_epoch=None, save=True, store=True, group=None):
    """Train one run and return its metrics dict (also written to RUN_DIR/metrics.json).

    `dataset` may be a loaded `data.Dataset` (then config.dataset is only
    recorded); `verbose` is Keras' fit verbosity (default: a progress bar on a
    terminal, one line per epoch otherwise); `on_epoch(row)` is called after
    each epoch with that epoch's history row. A saved run is recorded in the
    run store (`store`: True for the default store, a path, a Store, or
    False), under `group` when given (a sweep or table name).
    """
    config = resolve_config(config)
    from mnistlab import models

    # The model is built before the data is read so that a config Keras cannot
    # build fails at once.
    backend_lib.seed_everything(config.seed)
    model = models.build_model(config)
    if dataset is None:
        dataset = data.load_dataset(config.dataset)
    config = config.replace(dataset=dataset.name if config.dataset in ("auto", None) else config.dataset)
    arrays = prepare(dataset, config)
    if len(arrays.x_train) == 0:
        raise MnistlabError(f"no training samples left (limit={config.limit}, validation_split={config.validation_split}); raise --limit")

    dataset_hash = dataset.content_hash()
    run_store = run_id = None
    if save:
        # Absolute, so that the store's record of it holds from any directory.
        run_dir = (pathlib.Path(run_dir) if run_dir else default_run_dir(config, name)).resolve()
        if (run_dir / "metrics.json").exists():
            raise MnistlabError(f"{run_dir} already holds a finished run; choose another --out")
        run_store = _open_store(store) if store else None
        run_dir.mkdir(parents=True, exist_ok=True)
        fileio.write_json(run_dir / "config.json", {**config.to_dict(), "preset": name})
        if run_store is not None:
            run_id = run_store.start_run(config, dataset_hash, preset=name, group=group, run_dir=run_dir, machine=machine_description())
    else:
        run_dir = None

    def epoch_done(row):
        if run_store is not None:
            run_store.record_epoch(run_id, row)
        if on_epoch is not None:
            on_epoch(row)

    try:
        with backend_lib.fast_input_pipeline():
            metrics = _fit_and_evaluate(config, model, arrays, dataset, dataset_hash, run_dir, name, verbose, epoch_done)
    except KeyboardInterrupt:
        if run_store is not None:
            run_store.finish_run(run_id, "interrupted", error="interrupted by the user")
        raise
    except Exception as error:
        if run_store is not None:
            run_store.finish_run(run_id, "failed", error=f"{type(error).__name__}: {error}")
        raise
    if run_store is not None:
        metrics["status"] = run_store.finish_run(run_id, metrics["status"], metrics)
        metrics["run_id"] = run_id
        if store is not run_store:
            run_store.close()
    return metrics


def _fit_and_evaluate(config, model, arrays, dataset, dataset_hash, run_dir, name, verbose, on_epoch):
    from mnistlab import models

    recorder = _make_callbacks(run_dir, on_epoch)
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    validation = (arrays.x_val, arrays.y_val) if len(arrays.x_val) else None
    started = time.perf_counter()
    model.fit(
        arrays.x_train,
        arrays.y_train,
        batch_size=config.batch_size,
        epochs=config.epochs,
        validation_data=validation,
        callbacks=[recorder],
        verbose=verbose,
    )
    train_seconds = time.perf_counter() - started
    last = recorder.rows[-1]
    metrics = {
        "status": "diverged" if recorder.diverged_at else "done",
        "preset": name,
        "model": config.model,
        "description": config.describe(),
        "config_hash": config.config_hash(),
        "dataset": dataset.name,
        "dataset_hash": dataset_hash,
        "backend": config.backend,
        "seed": config.seed,
        "epochs": len(recorder.rows),
        "params": int(model.count_params()),
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
        "seconds": None,
        "train_seconds": round(train_seconds, 3),
        "mean_epoch_seconds": round(sum(r["seconds"] for r in recorder.rows) / len(recorder.rows), 4),
        "versions": backend_lib.library_versions(),
        "compile": models.compile_options(config),
        "machine": machine_description(),
        "finished_at": None,
        "run_dir": str(run_dir) if run_dir else None,
    }
    if recorder.diverged_at:
        metrics["diverged_at_epoch"] = recorder.diverged_at
    else:
        test_loss, test_accuracy = model.evaluate(arrays.x_test, arrays.y_test, batch_size=EVAL_BATCH_SIZE, verbose=0)
        metrics["test_accuracy"], metrics["test_loss"] = float(test_accuracy), float(test_loss)
        if run_dir is not None:
            with fileio.atomic_path(run_dir / "model.keras") as temp_path:
                model.save(temp_path)
    metrics["seconds"] = round(time.perf_counter() - started, 3)
    metrics["finished_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    if run_dir is not None:
        fileio.write_json(run_dir / "metrics.json", metrics)
    return metrics


def read_run_config(run_dir):
    """The Config a run directory was trained with (no Keras import)."""
    path = pathlib.Path(run_dir) / "config.json"
    payload = fileio.read_bytes(path, MnistlabError, "not a run directory (no config.json); pass the directory `mnistlab train` wrote")
    try:
        values = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise MnistlabError(f"{path}: not valid JSON ({error})") from None
    preset = values.pop("preset", None)
    return Config.from_dict(values), preset


def load_model(run_dir):
    """Activate the run's backend and load its model.keras."""
    run_dir = pathlib.Path(run_dir)
    config, _ = read_run_config(run_dir)
    backend_lib.activate(backend_lib.resolve(config.backend, config.model))
    model_path = run_dir / "model.keras"
    if not model_path.exists():
        raise MnistlabError(f"{run_dir}: no model.keras; the run did not finish (or diverged)")
    import keras

    return keras.saving.load_model(model_path), config


def evaluate(run_dir, dataset=None):
    """Reload a run's model and evaluate it on a test set (the run's dataset by default)."""
    model, config = load_model(run_dir)
    if dataset is None or isinstance(dataset, str):
        dataset = data.load_dataset(dataset or config.dataset)
    x_test = data.prepare_images(dataset.x_test, config.input_shape)
    test_loss, test_accuracy = model.evaluate(x_test, data.one_hot(dataset.y_test), batch_size=EVAL_BATCH_SIZE, verbose=0)
    return {"run_dir": str(run_dir), "dataset": dataset.name, "test_accuracy": float(test_accuracy), "test_loss": float(test_loss), "test_samples": len(x_test)}

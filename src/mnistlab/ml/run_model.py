"""A run's model: train and record it, load it, evaluate it, backfill its predictions.

The record layer (rundir, store) knows files and rows, not Keras; these are the operations that need a
backend, on top of it.
"""

import sys
import time

from mnistlab.core.config import Config
from mnistlab.core.errors import AlreadyDone, MissingExtra, RunDirError
from mnistlab.ml import backend as backend_lib
from mnistlab.ml import data, train
from mnistlab.record.rundir import (
    Index,
    Recorder,
    give_finished_run,
    model_path,
    read_config,
    read_metrics,
    write_predictions,
)


def load_model(run_dir, backend=None):
    """Activate the run's backend (or BACKEND: a .keras file loads on any) if Keras is not running yet, and load its model: (model, config)."""
    config, _ = read_config(run_dir)
    path = model_path(run_dir)
    backend_lib.activate(backend or backend_lib.resolve(config.backend, config.family))
    import keras

    return keras.saving.load_model(path), config


def evaluate(run_dir, dataset=None) -> dict:
    """Reload a run's model and evaluate it on a test set (the run's dataset by default)."""
    model, config = load_model(run_dir)
    from mnistlab.ml import models  # imports Keras: only once the run's backend is active

    if dataset is None or isinstance(dataset, str):
        dataset = data.load_dataset(dataset or config.dataset)
    x_test = data.prepare_images(dataset.x_test, config.input_shape)
    # As train() evaluates a run (one pass that also yields the answers), so the figures match its record.
    test_loss, test_accuracy, _ = models.evaluate_and_predict(model, x_test, data.one_hot(dataset.y_test))
    return {
        "run_dir": str(run_dir),
        "dataset": dataset.name,
        "test_accuracy": test_accuracy,
        "test_loss": test_loss,
        "test_samples": len(x_test),
    }


def write_predictions_from_model(run_dir) -> dict:
    """Backfill predictions.npz for a run trained before runs kept them: reload its model, predict its test set.

    Returns {"run_dir", "test_samples", "seconds"}. The run's dataset must still hash as it did (else its
    answers would be for other digits)."""
    metrics = read_metrics(run_dir) or {}
    model, config = load_model(run_dir)
    from mnistlab.ml import models  # imports Keras: only once the run's backend is active

    dataset = data.load_dataset(config.dataset)
    recorded = metrics.get("dataset_hash")
    if recorded and recorded != dataset.content_hash():
        raise RunDirError(
            f"{run_dir}: its dataset {config.dataset!r} no longer has the content the run was trained on; its predictions cannot be rebuilt here"
        )
    started = time.perf_counter()
    probabilities = models.predict(model, data.prepare_images(dataset.x_test, config.input_shape))
    write_predictions(
        run_dir, train.compact_predictions(probabilities, dataset.y_test), recorded or dataset.content_hash()
    )
    return {
        "run_dir": str(run_dir),
        "test_samples": int(len(dataset.y_test)),
        "seconds": round(time.perf_counter() - started, 3),
    }


def train_and_save(
    config: Config,
    dataset=None,
    preset: str | None = None,
    run_dir=None,
    index: Index | None = None,
    group: str | None = None,
    force: bool = False,
    callbacks=(),
    verbose=None,
    tensorboard=None,
    log=None,
) -> dict:
    """Train CONFIG and record it: the run directory, and the store when `index` is given.

    With an index, a run whose key already finished is not trained again
    (AlreadyDone names it) unless `force`; a forced repeat is recorded as a
    second finished run. `tensorboard`: a directory for TensorBoard logs.
    The first line logged says which backend runs and why. Returns the
    metrics, as written to metrics.json.
    """
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    # The backend first (the README says so): offline, loading the default dataset says more lines after it.
    name, why = backend_lib.choose(config.backend, config.family)
    log(f"backend {name} ({why})")
    if dataset is None:
        dataset = data.load_dataset(config.dataset)
    if index is not None and not force:
        pinned = backend_lib.pin(config)
        done = index.done_run(pinned.run_key(dataset.content_hash()))
        if done is not None and run_dir is not None:
            # The user named a directory and wants it: the finished run is given there, not trained again.
            return {**read_metrics(done["run_dir"]), "given_at": str(give_finished_run(done, run_dir))}
        if done is not None:
            raise AlreadyDone(
                f"this run is already done as run {done['id']} ({done['run_dir']}); use --force to train it again"
            )
    callbacks = list(callbacks)
    if tensorboard:
        if not backend_lib.installed("tensorboard"):
            raise MissingExtra("--tensorboard", "tensorboard")
        backend_lib.activate(name)
        import keras

        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(tensorboard)))
    recorder = Recorder(run_dir, index=index, group=group)
    return train.train(
        config.replace(backend=name),
        dataset=dataset,
        preset=preset,
        recorder=recorder,
        callbacks=callbacks,
        verbose=verbose,
    ).metrics


def save_model(run_dir, model):
    """RUN_DIR/model.keras, saved as a finished run's is (without Keras probing for TensorFlow)."""
    from mnistlab.record import rundir

    with backend_lib.saving_without_tensorflow_probe():
        rundir.save_model(run_dir, model)

"""The run directory: the record of one run, complete enough to reload, report and re-index it.

    config.json   the resolved config (backend and dataset as actually used) and the preset
    history.csv   per-epoch loss/accuracy/val_loss/val_accuracy/seconds, written after each epoch
    dynamics.json each layer's weights, gradients and outputs at epoch 0 and after each epoch (ml/dynamics.py),
                  rewritten whole after each epoch; absent for runs with dynamics=false and those made before it
    model.keras   the trained model (a finished run only)
    predictions.npz  per test example, in the dataset's order: predicted class (uint8), probability of the
                  true class (float16), the label, and the dataset's content hash (a finished run only)
    worker.log    a worker process' stderr, where the run trained in one (sweeps, reproduce)
    metrics.json  written last: status, final figures, run id, timings, versions, machine, pid

Each file is written atomically. A directory without metrics.json is a run
that has not finished (or was killed). The run store is only an index of
these directories (`mnistlab runs reindex` rebuilds it from them).

`Recorder` is the one writer of run records: `train.train()` hands it the
run's start, epochs and end, and it writes the directory and, when given an
index (the run store), records the run there too, so that the file, the
returned metrics and the store always say the same. The directory is written
whole (metrics.json last) before the index is told, so an index that fails
leaves a complete record that `runs reindex` finds.
"""

import csv
import datetime
import io
import json
import os
import pathlib
import shutil
import socket
import time
import typing

from mnistlab.core import fileio, paths, provenance
from mnistlab.core.config import Config
from mnistlab.core.errors import AlreadyDone, RunDirError

CONFIG_FILE = "config.json"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
MODEL_FILE = "model.keras"
PREDICTIONS_FILE = "predictions.npz"
DYNAMICS_FILE = "dynamics.json"
WORKER_LOG = "worker.log"  # a worker process' stderr, for runs trained in one (sweeps, reproduce, the lab)
HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds")
RECORD_FILES = (
    CONFIG_FILE,
    HISTORY_FILE,
    DYNAMICS_FILE,
    MODEL_FILE,
    PREDICTIONS_FILE,
    WORKER_LOG,
    METRICS_FILE,
)  # metrics.json last: it marks a finished run


def new_path(config, preset=None, root=None):
    """A fresh, empty run directory <root>/<time>-<preset or family>-<backend>-s<seed>[-N].

    Created here, so that parallel workers starting the same second never share one.
    """
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    label = (preset or config.family).replace("@", "-")
    base = pathlib.Path(root or paths.runs_root()) / f"{stamp}-{label}-{config.backend}-s{config.seed}"
    base.parent.mkdir(parents=True, exist_ok=True)
    candidate, counter = base, 1
    while True:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            counter += 1
            candidate = base.with_name(f"{base.name}-{counter}")


def machine_description():
    """The machine a run trained on, as its record keeps it: `provenance.machine()` and the host's name."""
    return {**provenance.machine(), "host": socket.gethostname()}


# --------------------------------------------------------------------------
# Reading


def check(run_dir):
    """The run directory as a Path, or a one-line error saying what is wrong with it."""
    run_dir = pathlib.Path(run_dir)
    if not run_dir.exists():
        raise RunDirError(
            f"{run_dir}: does not exist; pass a directory that `mnistlab train` wrote (see `mnistlab runs list`)"
        )
    if not (run_dir / CONFIG_FILE).is_file():
        raise RunDirError(
            f"{run_dir}: not a run directory (no {CONFIG_FILE}); pass the directory `mnistlab train` wrote"
        )
    return run_dir


def _read_json(path):
    payload = fileio.read_bytes(path, RunDirError)
    try:
        return json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunDirError(f"{path}: not valid JSON ({error})") from None


def read_config(run_dir) -> tuple[Config, str | None]:
    """(Config, preset name or None) of a run directory; no Keras import."""
    values = _read_json(check(run_dir) / CONFIG_FILE)
    preset = values.pop("preset", None)
    return Config.from_dict(values), preset


def read_metrics(run_dir) -> dict | None:
    """metrics.json as a dict, or None for a run that has not finished."""
    path = pathlib.Path(run_dir) / METRICS_FILE
    return _read_json(path) if path.exists() else None


def read_dynamics(run_dir) -> dict | None:
    """The run's dynamics record (ml/dynamics.py), or None for a run that has none (dynamics=false, or older)."""
    path = pathlib.Path(run_dir) / DYNAMICS_FILE
    return _read_json(path) if path.is_file() else None


def read_history(run_dir) -> list[dict]:
    path = pathlib.Path(run_dir) / HISTORY_FILE
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return [{key: _number(key, value) for key, value in row.items()} for row in csv.DictReader(handle)]


def _number(key, text):
    if text in ("", None):
        return None
    return int(text) if key == "epoch" else float(text)


def model_path(run_dir):
    """RUN_DIR/model.keras, or the one error that says why there is none."""
    path = check(run_dir) / MODEL_FILE
    if not path.exists():
        raise RunDirError(f"{run_dir}: no {MODEL_FILE}; the run did not finish (or diverged)")
    return path


PREDICTION_FIELDS = ("predicted", "true_probability", "labels", "dataset_hash")


def read_predictions(run_dir, fields=PREDICTION_FIELDS) -> dict | None:
    """predictions.npz as {"predicted", "true_probability", "labels", "dataset_hash"} (or only `fields`), or None for
    a run without one (older runs, and runs that did not finish: `write_predictions_from_model` backfills them)."""
    import numpy as np

    path = pathlib.Path(run_dir) / PREDICTIONS_FILE
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return {field: str(arrays[field]) if field == "dataset_hash" else arrays[field] for field in fields}
    except (OSError, KeyError, ValueError) as error:
        raise RunDirError(
            f"{path}: not a predictions file mnistlab wrote ({error}); write it again with `mnistlab runs predictions {run_dir}`"
        ) from None


def find(root=None):
    """Every run directory below ROOT (default: the runs root), oldest first."""
    root = pathlib.Path(root or paths.runs_root())
    if not root.is_dir():
        raise RunDirError(f"{root}: not a directory of runs")
    return sorted(
        (config.parent for config in root.rglob(CONFIG_FILE)), key=lambda path: (path.stat().st_mtime, str(path))
    )


# --------------------------------------------------------------------------
# Writing


def write_config(run_dir, config, preset=None):
    fileio.write_json(pathlib.Path(run_dir) / CONFIG_FILE, {**config.to_dict(), "preset": preset})


def write_history(run_dir, rows):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    fileio.write_text(pathlib.Path(run_dir) / HISTORY_FILE, buffer.getvalue())


def save_model(run_dir, model):
    # The caller (train, runs.save_model) keeps Keras from probing for TensorFlow while it saves (backend.saving_without_tensorflow_probe).
    with fileio.atomic_path(pathlib.Path(run_dir) / MODEL_FILE) as temp_path:
        model.save(temp_path)


def write_predictions(run_dir, predictions, dataset_hash):
    """RUN_DIR/predictions.npz from `train.compact_predictions`' arrays, with the test set's identity
    (its dataset's content hash), so that an atlas of several runs can check they answered the same digits."""
    import numpy as np

    with fileio.atomic_path(pathlib.Path(run_dir) / PREDICTIONS_FILE) as temp_path:
        # Not compressed: 3 bytes an example is compact already, and an atlas of 30 runs reads them in milliseconds.
        np.savez(
            temp_path,
            predicted=np.asarray(predictions["predicted"], dtype=np.uint8),
            true_probability=np.asarray(predictions["true_probability"], dtype=np.float16),
            labels=np.asarray(predictions["labels"], dtype=np.uint8),
            dataset_hash=np.array(dataset_hash),
        )


def pack(run_dir):
    """The run's files as {name: bytes}, to ship a run made on another machine back to the driver."""
    run_dir = pathlib.Path(run_dir)
    return {name: (run_dir / name).read_bytes() for name in RECORD_FILES if (run_dir / name).exists()}


def unpack(files, run_dir):
    """Write files from `pack` into RUN_DIR, metrics.json last (so the directory reads finished only when it is)."""
    run_dir = pathlib.Path(run_dir)
    for name in RECORD_FILES:
        if name in files:
            fileio.write_bytes(run_dir / name, files[name])
    return run_dir


class Index(typing.Protocol):
    """What the Recorder and `train_and_save` need of an index of runs (`store.Store` is one; its methods say
    which keywords they take)."""

    def start_run(self, config: Config, dataset_hash: str, **details) -> int: ...

    def finish_run(self, run_id: int, status: str, **results) -> str: ...

    def done_run(self, key: str) -> dict | None: ...


class Recorder:
    """Writes one run's directory and, given an `index` (the run store), records it there.

    A `train.Recorder`: `train.train()` calls start(), epoch() after each
    epoch, then finish() or fail(). `run_id` is for a run whose index row a
    driver process has already opened (sweeps).
    """

    def __init__(self, run_dir=None, index: Index | None = None, group=None, run_id=None):
        self.run_dir = pathlib.Path(run_dir) if run_dir else None
        self.index = index
        self.group = group
        self.run_id = run_id
        self.history = []
        self.started_at = None

    def start(self, config, preset, dataset_name, dataset_hash):
        # Absolute, so that the store's record of it holds from any directory.
        self.run_dir = (self.run_dir or new_path(config, preset)).resolve()
        if (self.run_dir / METRICS_FILE).exists():
            raise RunDirError(f"{self.run_dir} already holds a finished run; choose another --out")
        self.config, self.preset, self.dataset_name, self.dataset_hash = config, preset, dataset_name, dataset_hash
        self.started_at = time.time()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_config(self.run_dir, config, preset)
        if self.index is not None and self.run_id is None:
            self.run_id = self.index.start_run(
                config,
                dataset_hash,
                preset=preset,
                group=self.group,
                run_dir=self.run_dir,
                machine=machine_description(),
            )

    def epoch(self, row):
        self.history.append(row)
        write_history(self.run_dir, self.history)

    def dynamics(self, record):
        # Compact (no indent): about 1,500 numbers an epoch for the MLP listing.
        fileio.write_text(self.run_dir / DYNAMICS_FILE, fileio.dumps(record, "dynamics") + "\n")

    def finish(self, metrics, model, predictions=None):
        """Save the model (and test predictions) of a finished run, write metrics.json last, then index it; return the metrics."""
        if model is not None and metrics["status"] == "done":
            save_model(self.run_dir, model)
        if predictions is not None and metrics["status"] == "done":
            write_predictions(self.run_dir, predictions, self.dataset_hash)
        return self._close(metrics)

    def fail(self, status, error):
        """Record a run that raised (`failed`) or was stopped (`interrupted`)."""
        return self._close({"status": status, "error": error})

    def _close(self, metrics):
        # What identifies the run, from what the recorder was told at start:
        # the directory alone is then enough to index it again.
        identity = {
            "preset": self.preset,
            "family": self.config.family,
            "config_hash": self.config.config_hash(),
            "dataset": self.dataset_name,
            "dataset_hash": self.dataset_hash,
            "backend": self.config.backend,
            "seed": self.config.seed,
        }
        metrics = {
            **identity,
            **metrics,
            "run_id": self.run_id,
            "group": self.group,
            "run_dir": str(self.run_dir),
            "machine": metrics.get("machine") or machine_description(),
            "pid": os.getpid(),  # with machine.host: the process that trained it, as the index records it
            "started_at": iso_time(self.started_at),
            "finished_at": iso_time(time.time()),
        }
        # The record first: whatever happens to the index, the directory is whole.
        fileio.write_json(self.run_dir / METRICS_FILE, metrics)
        if self.index is not None:
            self.index.finish_run(
                self.run_id, metrics["status"], metrics, history=self.history, error=metrics.get("error")
            )
        return metrics


def write_failure(run_dir, config, preset, dataset_hash, error, run_id=None, group=None, status="failed"):
    """Write metrics.json (status failed, or interrupted for a run stopped on purpose) for a run whose worker died before it could; return the metrics.

    For the sweep driver, which learns of such a death from the worker's exit.
    """
    run_dir = pathlib.Path(run_dir)
    if not (run_dir / CONFIG_FILE).exists():
        write_config(run_dir, config, preset)
    now = time.time()
    metrics = {
        "status": status,
        "error": error,
        "preset": preset,
        "family": config.family,
        "config_hash": config.config_hash(),
        "dataset": config.dataset,
        "dataset_hash": dataset_hash,
        "backend": config.backend,
        "seed": config.seed,
        "run_id": run_id,
        "group": group,
        "run_dir": str(run_dir),
        "machine": machine_description(),
        "pid": os.getpid(),
        "started_at": iso_time((run_dir / CONFIG_FILE).stat().st_mtime),
        "finished_at": iso_time(now),
    }
    fileio.write_json(run_dir / METRICS_FILE, metrics)
    return metrics


def iso_time(timestamp):
    """A time as run records write it: ISO 8601 in UTC, to the microsecond (so an index rebuilt from it is exact)."""
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).isoformat(timespec="microseconds")


def timestamp_of(text):
    """The POSIX time of an `iso_time` text (or of an older record's, to the second)."""
    return datetime.datetime.fromisoformat(text).timestamp()


def give_finished_run(done, out):
    """Make OUT the finished run DONE (a store row): a link to its directory (a copy where links cannot be made,
    as on Windows without the right); return OUT. A link is no second record: reindex does not follow it."""
    out, source = pathlib.Path(out), pathlib.Path(done["run_dir"]).resolve()
    if out.exists() or out.is_symlink():
        if out.resolve() == source:
            return out
        if not out.is_dir() or any(out.iterdir()):
            raise AlreadyDone(
                f"this run is already done as run {done['id']} ({source}), and {out} holds something else; choose another --out, or --force to train it again"
            )
        out.rmdir()
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        out.symlink_to(os.path.relpath(source, out.parent.resolve()), target_is_directory=True)
    except OSError:
        shutil.copytree(source, out)
    return out

"""Training in-process on JAX: run directories, reload, determinism, divergence."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from mnistlab.core import presets
from mnistlab.core.config import Config
from mnistlab.core.errors import MnistlabError
from mnistlab.ml import backend as backend_lib
from mnistlab.ml import run_model, train
from mnistlab.record import rundir

METRIC_KEYS = {
    "test_accuracy",
    "test_loss",
    "train_accuracy",
    "train_loss",
    "val_accuracy",
    "params",
    "epochs",
    "seconds",
    "backend",
    "seed",
    "dataset",
    "versions",
    "status",
}


def quick_config(**changes):
    return presets.get("listing-1.3.2").build_config(**{"epochs": 2, **changes})


def test_run_directory_is_complete_and_reloadable(tmp_path, small_dataset):
    run_dir = tmp_path / "run"
    metrics = run_model.train_and_save(
        quick_config(), run_dir=run_dir, preset="listing-1.3.2", dataset=small_dataset, verbose=0
    )
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "config.json",
        "dynamics.json",
        "history.csv",
        "metrics.json",
        "model.keras",
        "predictions.npz",
    ]
    assert METRIC_KEYS <= set(metrics)
    # The book's parameter count and the split of mini-600's 600 digits at validation_split 0.1.
    assert (
        metrics["status"] == "done"
        and metrics["params"] == presets.book()["listings"]["1.3.2"]["total_params"]
        and metrics["backend"] == "jax"
    )
    assert metrics["train_samples"] == 540 and metrics["val_samples"] == 60
    with open(run_dir / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [1, 2]

    # The resolved config reloads without guessing: backend and dataset are pinned.
    config, preset = rundir.read_config(run_dir)
    assert preset == "listing-1.3.2" and config.backend == "jax" and config.dataset == "mini-600"
    assert config.replace(backend="auto", dataset="auto") == quick_config()

    # Save/load round trip: the reloaded model scores what the run reported.
    evaluated = run_model.evaluate(run_dir, dataset=small_dataset)
    assert evaluated["test_accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-6)


def test_train_returns_the_metrics_the_history_and_the_model(small_dataset):
    result = train.train(quick_config(epochs=2), dataset=small_dataset, verbose=0)
    assert [row["epoch"] for row in result.history] == [1, 2]
    # The model is the trained one: scoring it on the test set gives the reported accuracy.
    x_test = result.model.predict(np.asarray(small_dataset.x_test, "float32").reshape(-1, 784) / 255, verbose=0)
    assert float((x_test.argmax(axis=1) == small_dataset.y_test).mean()) == pytest.approx(
        result.metrics["test_accuracy"], abs=1e-6
    )


def test_same_seed_gives_identical_metrics(small_dataset):
    runs = [train.train(quick_config(seed=seed), dataset=small_dataset, verbose=0).metrics for seed in (5, 5, 6)]
    keys = ("train_accuracy", "train_loss", "val_accuracy", "test_accuracy", "test_loss")
    assert [runs[0][k] for k in keys] == [runs[1][k] for k in keys]
    assert [runs[0][k] for k in keys] != [runs[2][k] for k in keys]


def test_limit_uses_the_first_samples(small_dataset):
    metrics = train.train(quick_config(limit=100, epochs=1), dataset=small_dataset, verbose=0).metrics
    assert metrics["train_samples"] == 90 and metrics["val_samples"] == 10
    # 90 images at batch 128 are one step an epoch: one step per call, so Keras' bar reads 1/1, not 32/1.
    assert metrics["compile"]["steps_per_execution"] == 1


def test_divergence_stops_and_is_reported(tmp_path, small_dataset):
    config = Config(
        family="mlp",
        hidden_units=(32,),
        activation="linear",
        output_activation="linear",
        loss="mean_squared_error",
        optimizer="sgd",
        learning_rate=50.0,
        epochs=5,
    )
    metrics = run_model.train_and_save(config, run_dir=tmp_path / "run", dataset=small_dataset, verbose=0)
    assert metrics["status"] == "diverged" and metrics["epochs"] < 5
    assert metrics["test_accuracy"] is None
    assert not (tmp_path / "run" / "model.keras").exists()
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["status"] == "diverged"


def test_refuses_to_overwrite_a_finished_run(tmp_path, small_dataset):
    run_dir = tmp_path / "run"
    run_model.train_and_save(quick_config(epochs=1), run_dir=run_dir, dataset=small_dataset, verbose=0)
    before = (run_dir / "metrics.json").read_text()
    with pytest.raises(MnistlabError, match="already holds a finished run"):
        run_model.train_and_save(quick_config(epochs=1), run_dir=run_dir, dataset=small_dataset, verbose=0)
    assert (run_dir / "metrics.json").read_text() == before


def test_evaluate_rejects_a_non_run(tmp_path):
    with pytest.raises(MnistlabError, match="not a run directory"):
        run_model.evaluate(tmp_path)


def test_other_backend_in_the_same_process_is_refused():
    with pytest.raises(MnistlabError, match="already running on jax"):
        train.train(quick_config(backend="torch"))


@pytest.mark.slow
def test_listing_132_learns_mnist_mini(mini):
    metrics = train.train(presets.get("listing-1.3.2").build_config(), dataset=mini, verbose=0).metrics
    assert metrics["test_accuracy"] >= 0.90


def test_bf16_refused_where_the_cpu_has_no_bf16(small_dataset):
    from mnistlab.ml import backend

    if backend.bf16_supported():
        pytest.skip("this machine has bf16")
    with pytest.raises(MnistlabError, match="bf16 instructions"):
        train.train(quick_config(precision="bf16"), dataset=small_dataset)


def test_bf16_trains_and_records_compile_options(small_dataset):
    from mnistlab.ml import backend

    if not backend.bf16_supported():
        pytest.skip("no bf16 on this CPU")
    metrics = train.train(quick_config(precision="bf16", epochs=1), dataset=small_dataset, verbose=0).metrics
    assert metrics["test_accuracy"] > 0.3
    # 540 training images at batch 128: 5 steps an epoch, so 5 steps per call (not 32).
    assert metrics["compile"] == {"jit_compile": "auto", "steps_per_execution": 5}


TF_PIPELINE_CHECK = """
import os, sys
os.environ["KERAS_BACKEND"] = "tensorflow"
import numpy as np, keras
from keras import layers
from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter
from mnistlab.ml import backend

original = ArrayDataAdapter.get_tf_dataset
rng = np.random.default_rng(0)
x = rng.random((300, 8), dtype=np.float32)
y = keras.utils.to_categorical(rng.integers(0, 3, 300), 3)
xv, yv = x[:50], y[:50]

def trained(fast):
    backend.seed_everything(7)
    model = keras.Sequential([keras.Input((8,)), layers.Dense(16, activation="relu"), layers.Dropout(0.3), layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", steps_per_execution=4)
    if fast:
        inputs, targets, batch = backend.fit_inputs(x, y, 32)
        assert inputs.options().autotune.enabled is False and targets is None
        validation, _, _ = backend.fit_inputs(xv, yv, 32, shuffle=False)
    else:
        inputs, targets, batch, validation = x, y, 32, (xv, yv)
    history = model.fit(inputs, targets, batch_size=batch, epochs=3, validation_data=validation, shuffle=targets is not None, verbose=0).history
    return [w.copy() for w in model.get_weights()], history

plain, plain_history = trained(False)
fast, fast_history = trained(True)
assert ArrayDataAdapter.get_tf_dataset is original, "nothing process-wide may change"
assert all(np.array_equal(a, b) for a, b in zip(plain, fast)), "same seed must learn the same weights"
assert plain_history == fast_history
print("ok")
"""


@pytest.mark.slow  # a TensorFlow process
def test_tensorflow_input_pipeline_learns_the_same_model(tmp_path):
    # Runs in its own process: this test process is on JAX, and Keras fixes its backend per process.
    script = tmp_path / "check.py"
    script.write_text(TF_PIPELINE_CHECK)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


def test_input_pipeline_is_the_arrays_off_tensorflow():
    tensorflow_loaded = "tensorflow" in sys.modules
    x, y = np.zeros((10, 4), np.float32), np.zeros((10, 2), np.float32)
    inputs, targets, batch = backend_lib.fit_inputs(x, y, 4)
    assert inputs is x and targets is y and batch == 4
    assert ("tensorflow" in sys.modules) == tensorflow_loaded, "a JAX run must not pay for importing TensorFlow"


def _store_row(store_path, run_id):
    from mnistlab.record.store import Store

    with Store(store_path) as store:
        return store.get(run_id)


@pytest.mark.parametrize(
    "case", ["done", "diverged", pytest.param("repeat", marks=pytest.mark.slow)]
)  # repeat: two trainings
def test_metrics_file_json_output_and_store_agree(tmp_path, case, capsys):
    """One writer: metrics.json, `train --json` and the store say the same, whatever the run's end.

    In this process, but for the repeat: three fresh processes, as a user types them one after the other."""
    from conftest import run_cli, run_main

    def run(*args):
        return run_cli(*args) if case == "repeat" else run_main(capsys, *args)

    store = tmp_path / "runs.db"
    args = [
        "train",
        "--set",
        "family=mlp",
        "--set",
        "hidden_units=16",
        "--epochs",
        "2",
        "--limit",
        "300",
        "--dataset",
        "mnist-mini",
        "--json",
        "--store",
        store,
    ]
    if case == "diverged":
        args += [
            "--set",
            "activation=linear",
            "--set",
            "output_activation=linear",
            "--set",
            "loss=mean_squared_error",
            "--set",
            "optimizer=sgd",
            "--set",
            "learning_rate=1e6",
        ]
    if case == "repeat":
        first = run_cli(*args, "--out", tmp_path / "first")
        assert first.returncode == 0, first.stderr
        # Named a directory: the finished run is given there (the README tour's next commands read it), said in one line.
        given = run_cli(*args, "--out", tmp_path / "given")
        assert given.returncode == 0 and "already done as run 1" in given.stderr and "--force" in given.stderr, (
            given.stderr
        )
        assert (tmp_path / "given").resolve() == (tmp_path / "first").resolve()
        assert json.loads(given.stdout)["test_accuracy"] == json.loads(first.stdout)["test_accuracy"]
        # Named none: nothing is trained again, and the message says how to.
        refused = run_cli(*args)
        assert refused.returncode == 2 and "already done as run 1" in refused.stderr and "--force" in refused.stderr
        args.append("--force")
    result = run(*args, "--out", tmp_path / "run")
    assert result.returncode == (3 if case == "diverged" else 0), result.stderr
    printed = json.loads(result.stdout)
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    row = _store_row(store, printed["run_id"])
    expected = "diverged" if case == "diverged" else "done"
    assert printed["status"] == written["status"] == row["status"] == expected
    assert row["id"] == printed["run_id"] == written["run_id"] and row["run_dir"] == str(tmp_path / "run")
    if case != "diverged":
        # What all three say is the model's own score: the saved model, reloaded and tested, agrees.
        assert run_model.evaluate(tmp_path / "run")["test_accuracy"] == pytest.approx(row["test_accuracy"], abs=1e-6)
    if case == "repeat":
        assert printed["run_id"] == 2 and row["run_key"].endswith("#2")


def test_reindex_rebuilds_a_deleted_store(tmp_path, small_dataset):
    from mnistlab.record.store import Store

    store_path = tmp_path / "runs.db"
    with Store(store_path) as store:
        for seed in (0, 1):
            run_model.train_and_save(
                quick_config(epochs=1, seed=seed),
                dataset=small_dataset,
                preset="listing-1.3.2",
                run_dir=tmp_path / "runs" / f"s{seed}",
                index=store,
                verbose=0,
            )
        (tmp_path / "runs" / "killed").mkdir()  # a run that never finished: config only
        rundir.write_config(tmp_path / "runs" / "killed", quick_config(seed=2), "listing-1.3.2")
        before = [
            (
                run["id"],
                run["status"],
                run["test_accuracy"],
                run["run_dir"],
                run["config_hash"],
                len(store.epochs(run["id"])),
            )
            for run in store.runs()
        ]
    for leftover in tmp_path.glob("runs.db*"):
        leftover.unlink()
    with Store(store_path) as store:
        assert store.reindex(tmp_path / "runs") == 3
        after = [
            (
                run["id"],
                run["status"],
                run["test_accuracy"],
                run["run_dir"],
                run["config_hash"],
                len(store.epochs(run["id"])),
            )
            for run in store.runs()
        ]
        assert after[:2] == before
        assert after[2][1] == "interrupted"
        assert (
            store.done_run(
                quick_config(epochs=1, seed=0, backend="jax", dataset="mini-600").run_key(small_dataset.content_hash())
            )["id"]
            == before[0][0]
        )


DETERMINISM = """
import json, os, sys
os.environ["KERAS_BACKEND"] = sys.argv[1]
from mnistlab.ml import data, run_model, train
from mnistlab.core.config import Config
mini = data.load_mnist_mini()
tiny = {"mlp": dict(hidden_units=(16,)), "cnn": dict(filters=(4, 4), pool_after=(0,)), "rnn": dict(rnn_units=(8,))}
out = {}
for family, knobs in tiny.items():
    runs = [train.train(Config(family=family, epochs=2, limit=300, seed=seed, dropout_rate=0.2, **knobs), dataset=mini, verbose=0).metrics for seed in (4, 4, 5)]
    keys = ("train_loss", "val_loss", "test_accuracy", "test_loss")
    out[family] = [[run[key] for key in keys] for run in runs]
print(json.dumps(out))
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "tensorflow", "torch"])
def test_each_family_is_deterministic_on_each_backend(backend):
    """Same seed, same numbers; another seed, other numbers: MLP, CNN and RNN (dropout on) on every backend."""
    if backend == "torch":
        pytest.importorskip("torch")
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    result = subprocess.run(
        [sys.executable, "-c", DETERMINISM, backend], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for family, (first, again, other) in json.loads(result.stdout.strip().splitlines()[-1]).items():
        assert first == again, (backend, family)
        assert first != other, (backend, family)


def test_a_jax_run_never_imports_tensorflow(tmp_path):
    code = (
        "import os, sys; os.environ['KERAS_BACKEND'] = 'jax'\n"
        "from mnistlab.ml import run_model\nfrom mnistlab.core.config import Config\n"
        f"run_model.train_and_save(Config(hidden_units=(8,), epochs=1, limit=200, dataset='mnist-mini'), run_dir={str(tmp_path / 'run')!r}, verbose=0, log=lambda m: None)\n"
        "print('tensorflow' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "False", result.stdout + result.stderr[-2000:]
    assert (tmp_path / "run" / "model.keras").exists()


def test_kernel_initializer_sets_how_hidden_weights_start():
    """he_normal draws with std sqrt(2 / fan_in) (He et al. 2015); Keras' default glorot_uniform has std sqrt(2 / (fan_in + fan_out))."""
    from mnistlab.ml import models

    for name, expected in (("he_normal", np.sqrt(2 / 784)), ("glorot_uniform", np.sqrt(2 / (784 + 256)))):
        model = models.build_model(
            Config(hidden_units=(256,)).with_overrides([f"kernel_initializer={name}"]), compile=False
        )
        first = next(layer for layer in model.layers if layer.name.startswith("dense"))
        assert np.asarray(first.kernel).std() == pytest.approx(
            expected, rel=0.05 if name == "glorot_uniform" else 0.1
        ), name

"""A run's dynamics (ml/dynamics.py), checked against NumPy: weight norms, updates and histograms from the weights
Keras saved at each epoch; the loss' gradient from a forward and backward pass written out by hand, on each backend;
never-firing and saturated shares on layers built to have known ones. Recording changes nothing of the run."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import assert_one_line_error, env_without_backend, run_main
from mnistlab.core.config import Config
from mnistlab.ml import dynamics

SMALL = dict(family="mlp", hidden_units=(16,), epochs=2, limit=300, dataset="mnist-mini")
NAMES = ["dense/kernel", "dense/bias", "logits/kernel", "logits/bias"]  # its weights: one hidden layer, the logits


def _numpy_histogram(values):
    values = np.asarray(values, dtype=np.float64).ravel()
    values = (
        values[:: -(-values.size // dynamics.HISTOGRAM_VALUES)] if values.size > dynamics.HISTOGRAM_VALUES else values
    )
    counts, _ = np.histogram(values, bins=dynamics.HISTOGRAM_BINS, range=(values.min(), values.max()))
    return counts.tolist()


def test_norms_updates_and_histograms_equal_numpy_from_the_weights_keras_saved(tmp_path, mini):
    import keras

    from mnistlab.ml import run_model
    from mnistlab.record import rundir

    class SaveWeights(keras.callbacks.Callback):  # Keras' own copies, at the start and after each epoch
        def on_train_begin(self, logs=None):
            self.model.save_weights(tmp_path / "epoch0.weights.h5")

        def on_epoch_end(self, epoch, logs=None):
            self.model.save_weights(tmp_path / f"epoch{epoch + 1}.weights.h5")

    run_dir = tmp_path / "run"
    metrics = run_model.train_and_save(
        Config(**SMALL), run_dir=run_dir, dataset=mini, verbose=0, callbacks=[SaveWeights()]
    )
    record = rundir.read_dynamics(run_dir)
    assert [epoch["epoch"] for epoch in record["epochs"]] == [0, 1, 2] and metrics["epochs"] == 2

    from mnistlab.ml import models

    saved = []
    for epoch in range(3):
        model = models.build_model(Config(**SMALL), compile=False)
        model.load_weights(tmp_path / f"epoch{epoch}.weights.h5")
        saved.append({name: np.asarray(v.numpy()) for name, v in zip(NAMES, model.trainable_variables)})
    # Named as a fresh process names the layers, whatever models this process built before (this one has many).
    assert [weight["name"] for weight in record["weights"]] == NAMES
    for epoch in (1, 2):
        for name, value in saved[epoch].items():
            figures = record["epochs"][epoch]["weights"][name]
            before = saved[epoch - 1][name]
            assert figures["norm"] == pytest.approx(np.linalg.norm(value), rel=1e-5)
            if np.linalg.norm(before) > 0:
                assert figures["update_ratio"] == pytest.approx(
                    np.linalg.norm(value - before) / np.linalg.norm(before), rel=1e-4
                )
            else:  # a bias starts at 0: no ratio to a zero norm
                assert figures["update_ratio"] is None
            assert figures["histogram"]["counts"] == _numpy_histogram(value), name
            assert figures["histogram"]["range"] == pytest.approx([value.min(), value.max()])
    # The file holds every epoch's figures as a reader wants them, and costs little.
    assert (run_dir / rundir.DYNAMICS_FILE).stat().st_size < 60_000


def _numpy_gradient_norms(weights, x, y):
    """The MLP listing's loss (Dense, ReLU, Dense, softmax, mean cross-entropy) differentiated by hand."""
    w1, b1, w2, b2 = weights
    hidden_in = x @ w1 + b1
    hidden = np.maximum(hidden_in, 0)
    logits = hidden @ w2 + b2
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    d_logits = (p - y) / len(x)
    d_hidden = (d_logits @ w2.T) * (hidden_in > 0)
    grads = [x.T @ d_hidden, d_hidden.sum(axis=0), hidden.T @ d_logits, d_logits.sum(axis=0)]
    return [float(np.linalg.norm(grad)) for grad in grads]


GRADIENT_SCRIPT = """
import json, sys
import numpy as np
from mnistlab.core.config import Config
from mnistlab.ml import backend, dynamics
config = Config(family="mlp", hidden_units=(12,), dropout_rate=0.3, backend=sys.argv[1])
backend.activate(config.backend)
from mnistlab.ml import models
model = models.build_model(config)
rng = np.random.default_rng(3)
x = rng.random((40, 784), dtype=np.float32)
y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 40)]
probe = dynamics.Probe(model, config.loss, x, y)
measured = probe.measure(0)
print(json.dumps({
    "weights": [np.asarray(v.numpy()).tolist() for v in model.trainable_variables],
    "norms": [measured["weights"][name]["gradient_norm"] for name in probe.weight_names],
    "x": x.tolist(), "y": y.tolist(),
}))
"""


def _script_answer(script, capsys, monkeypatch):
    """What SCRIPT prints last, run on JAX in this process (the tests' own backend: a fresh one would prove nothing
    more)."""
    monkeypatch.setattr(sys, "argv", ["-c", "jax"])
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    capsys.readouterr()
    exec(compile(script, "<script>", "exec"), {"__name__": "__main__"})
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


# Runs the scripts given as a JSON list on stdin, one after the other, and prints what each printed last.
EACH_SCRIPT = """
import contextlib, io, json, sys
answers = []
for script in json.loads(sys.stdin.read()):
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(script, "<script>", "exec"), {"__name__": "__main__"})
    answers.append(json.loads(printed.getvalue().strip().splitlines()[-1]))
print(json.dumps(answers))
"""


@pytest.fixture(scope="module")
def other_backend_answer():
    """answer(SCRIPT, BACKEND): what SCRIPT prints last on a backend other than JAX, in a fresh process with
    KERAS_BACKEND set. The first test that asks for a backend runs every script of this file in one process for it:
    the process' start and the backend's import cost more than the scripts."""
    found = {}

    def answer(script, backend):
        if backend not in found:
            scripts = [GRADIENT_SCRIPT, LAYER_FIGURES]
            result = subprocess.run(
                [sys.executable, "-c", EACH_SCRIPT, backend],
                input=json.dumps(scripts),
                capture_output=True,
                text=True,
                env=env_without_backend({"KERAS_BACKEND": backend}),
                timeout=600,
            )
            assert result.returncode == 0, result.stderr[-3000:]
            found[backend] = dict(zip(scripts, json.loads(result.stdout.strip().splitlines()[-1])))
        return found[backend][script]

    return answer


def _gradient_parity(answer, backend):
    weights = [np.asarray(w, dtype=np.float64) for w in answer["weights"]]
    expected = _numpy_gradient_norms(weights, np.asarray(answer["x"]), np.asarray(answer["y"]))
    assert answer["norms"] == pytest.approx(expected, rel=1e-4), backend


def test_the_gradient_norm_equals_a_numpy_backward_pass_on_jax(capsys, monkeypatch):
    _gradient_parity(_script_answer(GRADIENT_SCRIPT, capsys, monkeypatch), "jax")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "torch"])
def test_the_gradient_norm_equals_a_numpy_backward_pass_on_other_backends(backend, other_backend_answer):
    _gradient_parity(other_backend_answer(GRADIENT_SCRIPT, backend), backend)


def test_never_firing_and_saturated_shares_are_exact_on_layers_built_to_have_them():
    import keras

    inputs = keras.Input((5,))
    dead_layer = keras.layers.Dense(10, activation="relu", name="ten_relu")
    saturated_layer = keras.layers.Dense(8, activation="sigmoid", name="eight_sigmoid")
    model = keras.Model(inputs, saturated_layer(dead_layer(inputs)))
    # No input reaches the units (zero kernels): their biases decide. 3 of 10 ReLU units below 0: never fire;
    # 2 of 8 sigmoid units at +-10: within 1% of a limit for every image (sigmoid(10) = 0.99995).
    dead_layer.set_weights([np.zeros((5, 10)), np.array([-1.0] * 3 + [0.5] * 7)])
    saturated_layer.set_weights([np.zeros((10, 8)), np.array([10.0, -10.0] + [0.3] * 6)])
    x = np.random.default_rng(0).random((16, 5), dtype=np.float32)
    y = np.eye(8, dtype=np.float32)[np.arange(16) % 8]
    measured = dynamics.Probe(model, "categorical_crossentropy", x, y).measure(0)["layers"]
    assert measured["ten_relu"]["dead"] == 0.3 and measured["ten_relu"]["saturated"] is None
    assert measured["eight_sigmoid"]["saturated"] == 0.25 and measured["eight_sigmoid"]["dead"] is None
    # And by hand, on outputs made to be so: a unit is dead only if it is 0 for every image and position.
    outputs = np.ones((4, 3, 6), dtype=np.float32)
    outputs[:, :, :2] = 0
    outputs[0, 0, 2] = 0  # silent once: not dead
    assert dynamics.unit_shares(outputs, "relu") == {"dead": 2 / 6, "saturated": None}


LAYER_FIGURES = """
import json, os, sys
os.environ["KERAS_BACKEND"] = sys.argv[1]
import keras, numpy as np
from mnistlab.ml import dynamics
keras.utils.set_random_seed(3)
inputs = keras.Input((28, 28, 1))
wide = keras.layers.Conv2D(16, 3, activation="relu", name="wide")(inputs)  # 64 x 26 x 26 x 16: strided histogram
squashed = keras.layers.Dense(6, activation="tanh", name="squashed")(keras.layers.Flatten()(wide))
model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax", name="probabilities")(squashed))
kernel, bias = model.get_layer("wide").get_weights()
bias[:4] = -1000.0  # 4 of 16 filters can never fire on inputs in [0, 1): a never-firing share of 0.25
model.get_layer("wide").set_weights([kernel, bias])
x = np.random.default_rng(1).random((64, 28, 28, 1), dtype=np.float32)
y = np.eye(10, dtype=np.float32)[np.arange(64) % 10]
measured = dynamics.Probe(model, "categorical_crossentropy", x, y).measure(0)["layers"]
outputs = keras.Model(inputs, [model.get_layer(n).output for n in ("wide", "squashed", "probabilities")]).predict(x, verbose=0)
print(json.dumps({"measured": measured, "outputs": [np.asarray(o, np.float32).tolist() for o in outputs]}))
"""


def _layer_figures_parity(answer):
    """Each layer's mean, std, never-firing and saturated shares and histogram, reduced inside the backend's
    compiled forward pass (ANSWER: what LAYER_FIGURES printed), equal NumPy's on the layer outputs Keras' predict
    gives."""
    for name, output in zip(("wide", "squashed", "probabilities"), answer["outputs"]):
        output = np.asarray(output, dtype=np.float32)
        figures = answer["measured"][name]
        assert figures["mean"] == pytest.approx(float(output.mean(dtype=np.float64)), rel=1e-5, abs=1e-7), name
        assert figures["std"] == pytest.approx(float(output.std(dtype=np.float64)), rel=1e-4), name
        units = output.reshape(-1, output.shape[-1])
        if name == "wide":
            assert figures["dead"] == float(np.mean(np.all(units <= 0, axis=0))) >= 0.25  # and those of its own
            assert figures["saturated"] is None
        else:
            low = -1.0 if name == "squashed" else 0.0
            margin = 0.01 * (1.0 - low)
            expected = float(np.mean((output <= low + margin) | (output >= 1.0 - margin)))
            assert figures["saturated"] == pytest.approx(expected, abs=1.5 / output.size) and figures["dead"] is None
        # The histogram: the same bins (a value within float32 rounding of an edge may fall either side).
        counts = _numpy_histogram(output)
        strided = (
            output.ravel()[:: -(-output.size // dynamics.HISTOGRAM_VALUES)]
            if output.size > dynamics.HISTOGRAM_VALUES
            else output
        )
        assert figures["histogram"]["range"] == pytest.approx([strided.min(), strided.max()], rel=1e-5, abs=1e-6)
        assert sum(figures["histogram"]["counts"]) == sum(counts), name
        assert np.abs(np.subtract(figures["histogram"]["counts"], counts)).sum() <= 4, name


def test_layer_figures_reduced_where_computed_equal_numpy_on_jax(capsys, monkeypatch):
    _layer_figures_parity(_script_answer(LAYER_FIGURES, capsys, monkeypatch))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "torch"])
def test_layer_figures_reduced_where_computed_equal_numpy_on_other_backends(backend, other_backend_answer):
    _layer_figures_parity(other_backend_answer(LAYER_FIGURES, backend))


def test_recording_changes_nothing_of_the_run_and_can_be_switched_off(tmp_path, mini, capsys):
    from mnistlab.ml import run_model
    from mnistlab.record import rundir

    watched = run_model.train_and_save(Config(**SMALL), run_dir=tmp_path / "watched", dataset=mini, verbose=0)
    unwatched = run_model.train_and_save(
        Config(**SMALL, dynamics=False), run_dir=tmp_path / "unwatched", dataset=mini, verbose=0
    )
    assert rundir.read_dynamics(tmp_path / "unwatched") is None
    assert rundir.read_dynamics(tmp_path / "watched") is not None
    for key in ("train_loss", "val_loss", "test_accuracy", "test_loss"):
        assert watched[key] == unwatched[key], key
    assert watched["config_hash"] == unwatched["config_hash"]  # a run setting: the same setup either way

    # The terminal's view: one line per weight and per layer output, first and last epoch.
    shown = run_main(capsys, "dynamics", tmp_path / "watched")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "epoch 0 (before training) -> epoch 2" in lines[0]
    assert any(line.split()[0] == "dense/kernel" and line.split()[1] == "784x16" for line in lines[1:]), lines
    assert any(line.split()[:2] == ["activation", "relu"] and "%" in line for line in lines), lines
    as_json = json.loads(run_main(capsys, "dynamics", tmp_path / "watched", "--json").stdout)
    assert len(as_json) == 1 and len(as_json[0]["epochs"]) == 3
    # A run without them (switched off, or recorded before them): one line that says so.
    assert_one_line_error(run_main(capsys, "dynamics", tmp_path / "unwatched"), "no dynamics recorded")
    # As the command line says it, the switch is the same Config.
    assert Config(**SMALL).with_overrides(["dynamics=false"]) == Config(**SMALL, dynamics=False)
    # Its report opens as any run's, without the section.
    report = run_main(capsys, "report", tmp_path / "unwatched", "--out", tmp_path / "unwatched.html")
    assert report.returncode == 0, report.stderr
    assert "Confusion matrix" in (tmp_path / "unwatched.html").read_text()
    assert "Inside training" not in (tmp_path / "unwatched.html").read_text()


def test_the_probe_is_256_training_images_chosen_by_the_seed_and_the_same_every_epoch():
    first, again, other = (dynamics.probe_indices(54_000, seed) for seed in (3, 3, 4))
    assert len(first) == dynamics.PROBE_SIZE == 256 and len(set(first.tolist())) == 256
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert np.all(np.diff(first) > 0) and first.max() < 54_000
    assert np.array_equal(dynamics.probe_indices(100, 3), np.arange(100))  # fewer images than a probe: all of them
    # Its own random stream: the seed's other draws (the validation split, the weights) are not moved by it.
    assert not np.array_equal(first, np.sort(np.random.default_rng(3).choice(54_000, size=256, replace=False)))


def test_bands_over_seeds_are_the_mean_and_t_interval_of_each_epoch():
    from scipy import stats as scipy_stats

    from conftest import made_up_dynamics
    from mnistlab.analysis import dynamics as dynamics_view

    rng = np.random.default_rng(7)
    records = [made_up_dynamics(rng, 3) for _ in range(3)] + [None]  # a run without dynamics adds nothing
    banded = dynamics_view.bands_over_seeds(records)
    assert banded["runs"] == 3 and set(banded["weights"]) == {"conv2d/kernel"} and set(banded["layers"]) == {"conv2d"}
    for epoch in range(4):
        values = np.array([record["epochs"][epoch]["weights"]["conv2d/kernel"]["norm"] for record in records[:3]])
        half = scipy_stats.t.ppf(0.975, 2) * values.std(ddof=1) / np.sqrt(3)
        row = banded["weights"]["conv2d/kernel"]["norm"][epoch]
        assert row["epoch"] == epoch and row["n"] == 3
        assert row["mean"] == pytest.approx(values.mean()) and row["ci_low"] == pytest.approx(values.mean() - half)
    # No update before training: epoch 0 has none, and a share's band is cut to [0, 1].
    assert banded["weights"]["conv2d/kernel"]["update_ratio"][0]["n"] == 0
    assert all(0 <= row["ci_low"] for row in banded["layers"]["conv2d"]["dead"] if row["ci_low"] is not None)
    assert "saturated" not in banded["layers"]["conv2d"]  # a ReLU never saturates: no band
    assert dynamics_view.bands_over_seeds([None, None]) is None

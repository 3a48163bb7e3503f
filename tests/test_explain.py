"""The inside views are the networks' own numbers: checked against a NumPy forward pass from the saved weights.

The NumPy code here is written from the layers' definitions (Dense, a valid
3x3 convolution, 2x2 max pooling, the SimpleRNN recurrence
h_t = tanh(x_t W + h_{t-1} U + b), softmax), not from mnistlab's code; the
weights are read from the run's model.keras. JAX runs are explained in this
process; TensorFlow runs are trained and explained in a TensorFlow process
through `mnistlab explain`, and checked here from its JSON.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, assert_one_line_error, png_bytes, run_main

TOLERANCE = 1e-4


# --------------------------------------------------------------------------
# NumPy, from the layer definitions


def softmax(logits):
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def relu(x):
    return np.maximum(x, 0)


def weights_of(run_dir):
    """The weights of each kind of layer, in order (layer class -> [[float64 arrays] per layer]; the output Dense as "logits").

    By class, not name: Keras numbers layer names per process (dense_3 where other models came first).
    """
    import keras

    model = keras.saving.load_model(pathlib.Path(run_dir) / "model.keras")
    kinds = {}
    for layer in model.layers:
        if layer.get_weights():
            kind = "logits" if layer.name == "logits" else type(layer).__name__
            kinds.setdefault(kind, []).append([np.asarray(w, dtype=np.float64) for w in layer.get_weights()])
    return kinds, model


def mlp_forward(weights, image):
    """Hidden activations per layer, and probabilities."""
    x, hidden = image.reshape(784).astype(np.float64), []
    for kernel, bias in weights["Dense"]:
        x = relu(x @ kernel + bias)
        hidden.append(x)
    kernel, bias = weights["logits"][0]
    return hidden, softmax(x @ kernel + bias)


def first_convolution(weights, image):
    """relu(valid 3x3 convolution + bias) of a 28x28 image, then 2x2 max pooling."""
    kernel, bias = weights["Conv2D"][0]
    windows = np.lib.stride_tricks.sliding_window_view(image.astype(np.float64), kernel.shape[:2])  # (26, 26, 3, 3)
    maps = relu(np.einsum("ijab,abf->ijf", windows, kernel[:, :, 0, :]) + bias)
    rows, columns = maps.shape[0] // 2 * 2, maps.shape[1] // 2 * 2
    pooled = maps[:rows, :columns].reshape(rows // 2, 2, columns // 2, 2, -1).max(axis=(1, 3))
    return maps, pooled


def simple_rnn_reading(weights, image):
    """The hidden state after each row, and the softmax of the output layer applied to each."""
    kernel, recurrent, bias = weights["SimpleRNN"][0]
    state, states = np.zeros(kernel.shape[1]), []
    for row in image.astype(np.float64):
        state = np.tanh(row @ kernel + state @ recurrent + bias)
        states.append(state)
    states = np.array(states)
    logits_kernel, logits_bias = weights["logits"][0]
    return states, softmax(states @ logits_kernel + logits_bias)


def check_against_numpy(family, weights, explanation, image):
    """Every explained number that NumPy can recompute, to 1e-4."""
    layers = explanation["layers"]
    if family == "mlp":
        hidden, probabilities = mlp_forward(weights, image)
        assert len(layers) == len(hidden)
        for view, expected in zip(layers, hidden):
            np.testing.assert_allclose(np.asarray(view["values"]), expected, atol=TOLERANCE)
        first_kernel = weights["Dense"][0][0]
        for unit, template in zip(explanation["templates"]["units"], np.asarray(explanation["templates"]["weights"])):
            np.testing.assert_allclose(template, first_kernel[:, unit].reshape(28, 28), atol=TOLERANCE)
        # The templates are those of the most active units.
        assert sorted(explanation["templates"]["activations"], reverse=True)[0] == pytest.approx(hidden[0].max(), abs=TOLERANCE)
    elif family == "cnn":
        maps, pooled = first_convolution(weights, image)
        np.testing.assert_allclose(np.asarray(layers[0]["values"]), maps, atol=TOLERANCE)
        np.testing.assert_allclose(np.asarray(layers[1]["values"]), pooled, atol=TOLERANCE)
        kernel = weights["Conv2D"][0][0]
        np.testing.assert_allclose(np.asarray(explanation["kernels"]["weights"]), np.transpose(kernel[:, :, 0, :], (2, 0, 1)), atol=TOLERANCE)
        probabilities = None
    else:
        states, beliefs = simple_rnn_reading(weights, image)
        np.testing.assert_allclose(np.asarray(explanation["reading"]["hidden"]), states, atol=TOLERANCE)
        np.testing.assert_allclose(np.asarray(explanation["reading"]["beliefs"]), beliefs, atol=TOLERANCE)
        probabilities = beliefs[-1]
    if probabilities is not None:
        np.testing.assert_allclose(np.asarray(explanation["probabilities"]), probabilities, atol=TOLERANCE)
    # Integrated gradients: the map sums to f(x) - f(blank) within 5% (or 0.005 for a class that hardly moves).
    attributions = explanation["attributions"]
    assert attributions["method"] == "integrated-gradients"
    assert attributions["classes"] == [explanation["prediction"], explanation["runner_up"]]
    for total, difference in zip(np.asarray(attributions["maps"]).reshape(2, -1).sum(axis=1), attributions["differences"]):
        assert abs(total - difference) <= max(0.05 * abs(difference), 0.005), (total, difference)


@pytest.fixture(scope="module")
def digit(mini):
    return (mini.x_test[1] / 255.0).astype(np.float32)


@pytest.mark.parametrize("family", ["mlp", "cnn", "rnn"])
def test_jax_run_inside_matches_numpy(trained_runs, digit, family):
    from mnistlab import explain

    explanation = explain.explain_run(trained_runs[family], digit)
    weights, model = weights_of(trained_runs[family])
    check_against_numpy(family, weights, explanation, digit)
    prediction = np.asarray(model.predict_on_batch(digit.reshape((1,) + tuple(model.input_shape[1:]))))[0]
    np.testing.assert_allclose(explanation["probabilities"], prediction, atol=TOLERANCE)
    assert explanation["prediction"] == int(prediction.argmax())
    if family == "rnn":  # what it believes after the 28th row is its prediction
        np.testing.assert_allclose(explanation["reading"]["beliefs"][-1], prediction, atol=TOLERANCE)
    # The differences the attributions add up to are the model's own, from a blank image.
    blank = np.asarray(model.predict_on_batch(np.zeros((1,) + tuple(model.input_shape[1:]), np.float32)))[0]
    classes = explanation["attributions"]["classes"]
    np.testing.assert_allclose(explanation["attributions"]["differences"], prediction[classes] - blank[classes], atol=TOLERANCE)


TENSORFLOW_RUNS = textwrap.dedent("""
    import sys
    from mnistlab import data, rundir
    from mnistlab.config import Config
    mini = data.load_mnist_mini()
    small = data.Dataset("mini-600", mini.x_train[:600], mini.y_train[:600], mini.x_test[:200], mini.y_test[:200], "test")
    root = sys.argv[1]
    configs = [Config(family="mlp", hidden_units=(32, 16), epochs=1, dataset="mnist-mini", backend="tensorflow"),
               Config(family="cnn", filters=(8, 8), epochs=1, dataset="mnist-mini", backend="tensorflow"),
               Config(family="rnn", rnn_units=(16,), optimizer="adam", epochs=1, dataset="mnist-mini", backend="tensorflow")]
    for config in configs:
        rundir.train_and_save(config, run_dir=f"{root}/{config.family}", dataset=small, verbose=0)
    from mnistlab import cli
    sys.exit(cli.main(["explain", *[f"{root}/{c.family}" for c in configs], sys.argv[2], "--out", f"{root}/inside", "--backend", "tensorflow"]))
""")


def test_tensorflow_run_inside_matches_numpy(tmp_path, mini):
    image_path = tmp_path / "digit.npy"
    np.save(image_path, mini.x_test[1])
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    result = subprocess.run([sys.executable, "-c", TENSORFLOW_RUNS, str(tmp_path), str(image_path)], capture_output=True, text=True, env=env, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    for family in ("mlp", "cnn", "rnn"):
        run_dir = tmp_path / family
        assert json.loads((run_dir / "config.json").read_text())["backend"] == "tensorflow"
        record = json.loads((tmp_path / "inside" / f"digit-{family}-{family}.json").read_text())
        weights, _ = weights_of(run_dir)
        check_against_numpy(family, weights, record, np.asarray(record["input"]))
        assert (tmp_path / "inside" / f"digit-{family}-{family}.png").stat().st_size > 10_000


def test_occlusion_scores_blocks_by_the_drop_they_cause(trained_runs, digit):
    from mnistlab import explain

    explainer = explain.explainer_for(trained_runs["mlp"])
    weights, _ = weights_of(trained_runs["mlp"])
    _, probabilities = mlp_forward(weights, digit)
    target = int(probabilities.argmax())
    result = explainer.attribute(digit, [target], method="occlusion")
    assert result["method"] == "occlusion"
    occluded = digit.copy()
    occluded[12:16, 8:12] = 0  # the block at row 12, column 8
    _, after = mlp_forward(weights, occluded)
    assert result["maps"][0, 12:16, 8:12] == pytest.approx(np.full((4, 4), (probabilities[target] - after[target]) / 16), abs=TOLERANCE)
    assert np.all(result["maps"][0, :4, :4] == 0) or digit[:4, :4].max() > 0  # a blank corner changes nothing


@pytest.mark.parametrize(
    "settings, expect",
    [
        ({"family": "cnn", "filters": (4, 4), "padding": "same", "pooling": "average", "batch_norm": True}, {"shapes": [[28, 28, 4], [14, 14, 4], [14, 14, 4], [7, 7, 4]]}),
        ({"family": "cnn", "filters": (4,), "kernel_size": (5, 3), "pool_size": (3, 2), "pool_after": (0,)}, {"shapes": [[24, 26, 4], [8, 13, 4]]}),
        ({"family": "rnn", "rnn_units": (8, 6), "cell": "lstm"}, {"hidden": (28, 6), "beliefs": True}),
        ({"family": "rnn", "rnn_units": (6,), "cell": "gru", "bidirectional": True}, {"hidden": (28, 12), "beliefs": False}),
        ({"family": "mlp", "hidden_units": (16, 8, 4), "activation": "tanh"}, {"shapes": [[16], [8], [4]]}),
    ],
)
def test_every_variant_has_an_inside(settings, expect, digit):
    """Keras computes the shapes; what is undefined (a bidirectional RNN's belief after t rows) says so."""
    from mnistlab import explain, models
    from mnistlab.config import Config

    config = Config(**settings)
    explanation = explain.Explainer(models.build_model(config), config).explain(digit)
    if "shapes" in expect:
        assert [view["shape"] for view in explanation["layers"]] == expect["shapes"]
    if "hidden" in expect:
        reading = explanation["reading"]
        assert reading["hidden"].shape == expect["hidden"]
        assert (reading["beliefs"] is not None) == expect["beliefs"]
        if not expect["beliefs"]:
            assert "no belief after t rows is defined" in reading["note"] and "backward" in explanation["notes"]["inside"]
        else:
            assert reading["beliefs"].shape == (28, 10)
    assert explanation["attributions"]["maps"].shape == (2, 28, 28)
    assert explanation["attributions"]["complete"]


def test_cli_writes_a_sheet_and_json_per_image_and_model(trained_runs, mini, tmp_path, capsys):
    images = []
    for index in (0, 1):
        canvas = np.zeros((280, 280), np.uint8)
        canvas[60:220, 60:220] = np.asarray(Image.fromarray(mini.x_test[index]).resize((160, 160)))
        images.append(tmp_path / f"photo{index}.png")
        images[-1].write_bytes(png_bytes(canvas))
    dotted = shutil.copytree(trained_runs["mlp"], tmp_path / "run-listing-1.3.2")  # run names hold dots
    result = run_main(capsys, "explain", dotted, trained_runs["rnn"], *images, "--out", tmp_path / "inside", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(pathlib.Path(row["image"]).name, row["family"]) for row in rows] == [("photo0.png", "mlp"), ("photo1.png", "mlp"), ("photo0.png", "rnn"), ("photo1.png", "rnn")]
    assert sorted(path.name for path in (tmp_path / "inside").iterdir()) == sorted(
        f"photo{index}-{family}-{name}.{kind}" for index in (0, 1) for family, name in (("mlp", "run-listing-1.3.2"), ("rnn", "rnn")) for kind in ("png", "json"))
    for row in rows:
        assert pathlib.Path(row["sheet"]).stat().st_size > 10_000
        record = json.loads(pathlib.Path(row["json"]).read_text())
        assert record["prediction"] == row["prediction"] and record["preprocess"]["inverted"] is False
    # The same preprocessing and prediction as `mnistlab predict`.
    predicted = json.loads(run_main(capsys, "predict", trained_runs["rnn"], *images, "--json").stdout)
    assert [p["prediction"] for p in predicted] == [row["prediction"] for row in rows if row["family"] == "rnn"]


def test_cli_explain_bad_input_is_one_line(trained_runs, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    assert_one_line_error(run_main(capsys, "explain", trained_runs["mlp"], corrupt, "--out", tmp_path / "out"), "corrupt.png")
    assert not (tmp_path / "out").exists()  # nothing written for a bad input
    assert_one_line_error(run_main(capsys, "explain", trained_runs["mlp"], "--out", tmp_path / "out"), "no image files given")
    assert_one_line_error(run_main(capsys, "explain", tmp_path / "missing-run", corrupt, "--out", tmp_path / "out"), "missing-run")

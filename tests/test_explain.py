"""The inside views are the networks' own numbers: checked against a NumPy forward pass from the saved weights.

The NumPy code here is written from the layers' definitions (Dense, a valid
3x3 convolution, 2x2 max pooling, the SimpleRNN recurrence
h_t = tanh(x_t W + h_{t-1} U + b), softmax), not from mnistlab's code; the
weights are read from the run's model.keras. JAX runs are explained in this
process; TensorFlow runs are trained and explained in a TensorFlow process
through `mnistlab explain`, and checked here from its JSON.

Integrated gradients are held to the rule docs/use.md states: each class's
map sums to f(x) - f(blank) within max(5% of |f(x) - f(blank)|, 0.0001),
the steps doubling from 32 up to 1,024 while it does not, and `complete`
false where it still does not. A model built so that its path integrand is
a steep exponential (its exact integral known in closed form) needs the
doubling; one steeper still cannot make it by 1,024 steps.
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

from conftest import REPO, assert_one_line_error, drawn_png, png_bytes, run_main

TOLERANCE = 1e-4
# The completeness rule as docs/use.md words it (written here, not read from mnistlab.ml.explain).
RELATIVE_BOUND, FLOOR, FIRST_STEPS, MOST_STEPS = 0.05, 1e-4, 32, 1024


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
        assert sorted(explanation["templates"]["activations"], reverse=True)[0] == pytest.approx(
            hidden[0].max(), abs=TOLERANCE
        )
    elif family == "cnn":
        maps, pooled = first_convolution(weights, image)
        np.testing.assert_allclose(np.asarray(layers[0]["values"]), maps, atol=TOLERANCE)
        np.testing.assert_allclose(np.asarray(layers[1]["values"]), pooled, atol=TOLERANCE)
        kernel = weights["Conv2D"][0][0]
        np.testing.assert_allclose(
            np.asarray(explanation["kernels"]["weights"]), np.transpose(kernel[:, :, 0, :], (2, 0, 1)), atol=TOLERANCE
        )
        probabilities = None
    else:
        states, beliefs = simple_rnn_reading(weights, image)
        np.testing.assert_allclose(np.asarray(explanation["reading"]["hidden"]), states, atol=TOLERANCE)
        np.testing.assert_allclose(np.asarray(explanation["reading"]["beliefs"]), beliefs, atol=TOLERANCE)
        probabilities = beliefs[-1]
    if probabilities is not None:
        np.testing.assert_allclose(np.asarray(explanation["probabilities"]), probabilities, atol=TOLERANCE)
    attributions = explanation["attributions"]
    assert attributions["method"] == "integrated-gradients"
    assert attributions["classes"] == [explanation["prediction"], explanation["runner_up"]]
    check_completeness_record(attributions)


def check_completeness_record(attributions):
    """The record says what the maps do: its gaps are NumPy's, `complete` follows the documented rule, the steps its doubling."""
    maps = np.asarray(attributions["maps"], dtype=np.float64)
    sums = maps.reshape(len(maps), -1).sum(axis=1)
    differences = np.asarray(attributions["differences"], dtype=np.float64)
    gaps = np.abs(sums - differences)
    np.testing.assert_allclose(attributions["sums"], sums, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(attributions["gaps"], gaps, rtol=1e-4, atol=1e-7)
    for relative, gap, difference in zip(attributions["relative_gaps"], gaps, differences):
        assert relative == pytest.approx(gap / abs(difference), rel=1e-4, abs=1e-7) if difference else relative is None
    within = [bool(gap <= max(RELATIVE_BOUND * abs(difference), FLOOR)) for gap, difference in zip(gaps, differences)]
    assert attributions["complete_per_class"] == within
    assert attributions["complete"] == all(within)
    assert attributions["backend"] in ("jax", "tensorflow", "torch")
    for steps, complete in zip(attributions["steps_per_class"], within):
        # 32, 64, ... 1,024; a class short of the bound has used them all.
        assert steps in [FIRST_STEPS * 2**k for k in range(6)] and (complete or steps == MOST_STEPS), (steps, complete)
    assert attributions["steps"] == max(attributions["steps_per_class"])


@pytest.fixture(scope="module")
def digit(mini):
    return (mini.x_test[1] / 255.0).astype(np.float32)


@pytest.mark.parametrize("family", ["mlp", "cnn", "rnn"])
def test_jax_run_inside_matches_numpy(trained_runs, digit, family):
    from mnistlab.ml import explain

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
    np.testing.assert_allclose(
        explanation["attributions"]["differences"], prediction[classes] - blank[classes], atol=TOLERANCE
    )
    assert explanation["attributions"]["backend"] == "jax"


TENSORFLOW_RUNS = textwrap.dedent("""
    import sys
    from mnistlab.ml import data
    from mnistlab.ml import run_model
    from mnistlab.core.config import Config
    mini = data.load_mnist_mini()
    small = data.Dataset("mini-600", mini.x_train[:600], mini.y_train[:600], mini.x_test[:200], mini.y_test[:200], "test")
    root = sys.argv[1]
    configs = [Config(family="mlp", hidden_units=(32, 16), epochs=1, dataset="mnist-mini", backend="tensorflow"),
               Config(family="cnn", filters=(8, 8), epochs=1, dataset="mnist-mini", backend="tensorflow"),
               Config(family="rnn", rnn_units=(16,), optimizer="adam", epochs=1, dataset="mnist-mini", backend="tensorflow")]
    for config in configs:
        run_model.train_and_save(config, run_dir=f"{root}/{config.family}", dataset=small, verbose=0)
    from mnistlab.cli import main as cli
    sys.exit(cli.main(["explain", *[f"{root}/{c.family}" for c in configs], sys.argv[2], "--out", f"{root}/inside", "--backend", "tensorflow"]))
""")


@pytest.mark.slow  # a TensorFlow process; the JAX runs' inside is checked in the quick loop
def test_tensorflow_run_inside_matches_numpy(tmp_path, mini):
    image_path = tmp_path / "digit.npy"
    np.save(image_path, mini.x_test[1])
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    result = subprocess.run(
        [sys.executable, "-c", TENSORFLOW_RUNS, str(tmp_path), str(image_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for family in ("mlp", "cnn", "rnn"):
        run_dir = tmp_path / family
        assert json.loads((run_dir / "config.json").read_text())["backend"] == "tensorflow"
        record = json.loads((tmp_path / "inside" / f"digit-{family}-{family}.json").read_text())
        weights, _ = weights_of(run_dir)
        check_against_numpy(family, weights, record, np.asarray(record["input"]))
        assert record["attributions"]["backend"] == "tensorflow"
        assert (tmp_path / "inside" / f"digit-{family}-{family}.png").stat().st_size > 10_000


def test_occlusion_scores_blocks_by_the_drop_they_cause(trained_runs, digit):
    from mnistlab.ml import explain

    explainer = explain.explainer_for(trained_runs["mlp"])
    weights, _ = weights_of(trained_runs["mlp"])
    _, probabilities = mlp_forward(weights, digit)
    target = int(probabilities.argmax())
    result = explainer.attribute(digit, [target], method="occlusion")
    assert result["method"] == "occlusion"
    occluded = digit.copy()
    occluded[12:16, 8:12] = 0  # the block at row 12, column 8
    _, after = mlp_forward(weights, occluded)
    assert result["maps"][0, 12:16, 8:12] == pytest.approx(
        np.full((4, 4), (probabilities[target] - after[target]) / 16), abs=TOLERANCE
    )
    assert np.all(result["maps"][0, :4, :4] == 0) or digit[:4, :4].max() > 0  # a blank corner changes nothing


@pytest.mark.parametrize(
    "settings, expect",
    [
        (
            {"family": "cnn", "filters": (4, 4), "padding": "same", "pooling": "average", "batch_norm": True},
            {"shapes": [[28, 28, 4], [14, 14, 4], [14, 14, 4], [7, 7, 4]]},
        ),
        (
            {"family": "cnn", "filters": (4,), "kernel_size": (5, 3), "pool_size": (3, 2), "pool_after": (0,)},
            {"shapes": [[24, 26, 4], [8, 13, 4]]},
        ),
        ({"family": "rnn", "rnn_units": (8, 6), "cell": "lstm"}, {"hidden": (28, 6), "beliefs": True}),
        (
            {"family": "rnn", "rnn_units": (6,), "cell": "gru", "bidirectional": True},
            {"hidden": (28, 12), "beliefs": False},
        ),
        ({"family": "mlp", "hidden_units": (16, 8, 4), "activation": "tanh"}, {"shapes": [[16], [8], [4]]}),
    ],
)
def test_every_variant_has_an_inside(settings, expect, digit):
    """Keras computes the shapes; what is undefined (a bidirectional RNN's belief after t rows) says so."""
    from mnistlab.core.config import Config
    from mnistlab.ml import explain, models

    config = Config(**settings)
    explanation = explain.Explainer(models.build_model(config), config).explain(digit)
    if "shapes" in expect:
        assert [view["shape"] for view in explanation["layers"]] == expect["shapes"]
    if "hidden" in expect:
        reading = explanation["reading"]
        assert reading["hidden"].shape == expect["hidden"]
        assert (reading["beliefs"] is not None) == expect["beliefs"]
        if not expect["beliefs"]:
            assert "there is no belief after t rows" in reading["note"] and "backward" in explanation["notes"]["inside"]
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
    assert [(pathlib.Path(row["image"]).name, row["family"]) for row in rows] == [
        ("photo0.png", "mlp"),
        ("photo1.png", "mlp"),
        ("photo0.png", "rnn"),
        ("photo1.png", "rnn"),
    ]
    assert sorted(path.name for path in (tmp_path / "inside").iterdir()) == sorted(
        f"photo{index}-{family}-{name}.{kind}"
        for index in (0, 1)
        for family, name in (("mlp", "run-listing-1.3.2"), ("rnn", "rnn"))
        for kind in ("png", "json")
    )
    for row in rows:
        assert pathlib.Path(row["sheet"]).stat().st_size > 10_000
        record = json.loads(pathlib.Path(row["json"]).read_text())
        assert record["prediction"] == row["prediction"] and record["preprocess"]["inverted"] is False
        # The JSON says how the attributions were made and how close they came: backend, steps and gaps per class.
        assert record["attributions"]["backend"] == "jax"
        check_completeness_record(record["attributions"])
    # The same preprocessing and prediction as `mnistlab predict`.
    predicted = json.loads(run_main(capsys, "predict", trained_runs["rnn"], *images, "--json").stdout)
    assert [p["prediction"] for p in predicted] == [row["prediction"] for row in rows if row["family"] == "rnn"]


def test_cli_explain_bad_input_is_one_line(trained_runs, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    assert_one_line_error(
        run_main(capsys, "explain", trained_runs["mlp"], corrupt, "--out", tmp_path / "out"), "corrupt.png"
    )
    assert not (tmp_path / "out").exists()  # nothing written for a bad input
    assert_one_line_error(
        run_main(capsys, "explain", trained_runs["mlp"], "--out", tmp_path / "out"), "no image files given"
    )
    assert_one_line_error(
        run_main(capsys, "explain", tmp_path / "missing-run", corrupt, "--out", tmp_path / "out"), "missing-run"
    )


# --------------------------------------------------------------------------
# Completeness: the steps double where the path is sharply curved, and `complete` says whether it worked


def sharp_explainer(image, steepness, final_probability):
    """An MLP whose class-0 probability climbs steeply along the path from a blank image to IMAGE.

    Hidden unit 0 computes w . (alpha * image) = alpha (w = image / |image|^2);
    class 0's logit is steepness * alpha - bias and the other nine are 0, so
    p0(alpha) = e^(s alpha - b) / (e^(s alpha - b) + 9), with b chosen so that
    p0(1) = FINAL_PROBABILITY. Its path integrand d p0 / d alpha is about
    e^(s (alpha - 1)): concentrated in the last 1/s of the path, where a few
    midpoints miss it. Returns the explainer and alpha -> the ten probabilities
    of alpha * image, in NumPy.
    """
    from mnistlab.core.config import Config
    from mnistlab.ml import explain, models

    config = Config(family="mlp", hidden_units=(4,))
    model = models.build_model(config)
    flat = image.reshape(784).astype(np.float64)
    hidden_kernel = np.zeros((784, 4))
    hidden_kernel[:, 0] = flat / (flat @ flat)
    logits_kernel, logits_bias = np.zeros((4, 10)), np.zeros(10)
    logits_kernel[0, 0] = steepness
    logits_bias[0] = -(steepness - np.log(9 * final_probability / (1 - final_probability)))
    model.set_weights([w.astype(np.float32) for w in (hidden_kernel, np.zeros(4), logits_kernel, logits_bias)])

    def probabilities_at(alpha):
        logits = np.zeros(10)
        logits[0] = steepness * alpha + logits_bias[0]
        return softmax(logits)

    return explain.Explainer(model, config), probabilities_at


def path_derivatives(probabilities_at, steepness, alphas):
    """d p_c(alpha * image) / d alpha for classes 0 and 1, from the softmax's derivative: (len(alphas), 2)."""
    rows = []
    for alpha in alphas:
        p = probabilities_at(alpha)
        rows.append([steepness * p[0] * (1 - p[0]), -steepness * p[0] * p[1]])
    return np.array(rows)


STEEP = 50  # 32 midpoints miss class 0's integral by 9%, 64 by 2%
TOO_STEEP = 5000  # even 1,024 midpoints (1/1024 apart) miss a rise 1/5000 wide


def test_steps_double_until_the_map_sums_to_the_difference(digit):
    explainer, probabilities_at = sharp_explainer(digit, STEEP, 0.03)
    exact = probabilities_at(1.0)[:2] - probabilities_at(0.0)[:2]  # f(x) - f(blank): what each map must sum to
    # The case needs doubling: 32 midpoints of the exact integrand are over 5% off, though by less than
    # 0.005 in probability (an absolute allowance of that size let such maps count as complete).
    midpoints = (np.arange(FIRST_STEPS) + 0.5) / FIRST_STEPS
    at_32 = path_derivatives(probabilities_at, STEEP, midpoints).mean(axis=0)
    assert abs(at_32[0] - exact[0]) > RELATIVE_BOUND * abs(exact[0]) and abs(at_32[0] - exact[0]) < 0.005, (
        at_32,
        exact,
    )

    explanation = explainer.explain(digit, classes=[0, 1])
    attributions = explanation["attributions"]
    assert attributions["steps"] > FIRST_STEPS and attributions["steps_per_class"][0] > FIRST_STEPS
    sums = np.asarray(attributions["maps"], np.float64).reshape(2, -1).sum(axis=1)
    for total, difference in zip(sums, exact):
        assert abs(total - difference) <= RELATIVE_BOUND * abs(difference), (total, difference)
    # The map itself: pixel i's share of the integral is x_i w_i = x_i^2 / |x|^2 (the path is linear in alpha).
    shares = digit.astype(np.float64) ** 2 / (digit.astype(np.float64) ** 2).sum()
    np.testing.assert_allclose(attributions["maps"][0], shares * sums[0], rtol=1e-3, atol=1e-8)
    np.testing.assert_allclose(attributions["differences"], exact, atol=1e-6)
    assert attributions["complete"] is True and attributions["complete_per_class"] == [True, True]
    check_completeness_record(attributions)
    assert "within 5%" in explanation["notes"]["attribution"]


def test_a_path_too_sharp_for_the_cap_is_not_complete(digit):
    explainer, probabilities_at = sharp_explainer(digit, TOO_STEEP, 0.03)
    explanation = explainer.explain(digit, classes=[0, 1])
    attributions = explanation["attributions"]
    assert attributions["steps_per_class"] == [MOST_STEPS, MOST_STEPS] and attributions["max_steps"] == MOST_STEPS
    assert attributions["complete"] is False and attributions["complete_per_class"] == [False, False]
    exact = probabilities_at(1.0)[:2] - probabilities_at(0.0)[:2]
    assert all(
        abs(total - difference) > RELATIVE_BOUND * abs(difference)
        for total, difference in zip(attributions["sums"], exact)
    )
    check_completeness_record(attributions)
    # The words say so, with how far off each class is.
    note = explanation["notes"]["attribution"]
    assert "only roughly" in note and "1,024 steps" in note
    assert f"'0' is {100 * attributions['relative_gaps'][0]:.0f}% off" in note


OTHER_BACKEND = textwrap.dedent("""
    import json, sys, warnings
    sys.path.insert(0, "tests")
    import numpy as np
    import keras
    from mnistlab.ml import data, explain, models
    from mnistlab.core.config import Config
    from test_explain import STEEP, sharp_explainer

    digit = (data.load_mnist_mini().x_test[1] / 255.0).astype(np.float32)
    built = [(config, models.build_model(config)) for config in (Config(family="mlp", hidden_units=(16,)), Config(family="cnn", filters=(4, 4)), Config(family="rnn", rnn_units=(8,)))]
    # Once with Python's default warning filters, as a user runs it (the parent reads stderr) ...
    for config, model in built:
        explain.Explainer(model, config).explain(digit)
    print("EXPLAINED", file=sys.stderr, flush=True)
    # ... and once recording every warning.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        explained = [explain.Explainer(model, config).explain(digit) for config, model in built]
        sharp, probabilities_at = sharp_explainer(digit, STEEP, 0.03)
        steep = sharp.explain(digit, classes=[0, 1])["attributions"]
    print(json.dumps({
        "backend": keras.backend.backend(),
        "recorded": [{"category": w.category.__name__, "message": str(w.message), "file": w.filename} for w in caught],
        "attributions": [explanation["attributions"].get("backend") for explanation in explained],
        "steep": {"steps": steep.get("steps_per_class"), "sums": steep["sums"], "exact": list(probabilities_at(1.0)[:2] - probabilities_at(0.0)[:2]), "complete": steep["complete"]},
    }))
""")


@pytest.mark.slow  # a process per backend; JAX's is the quick loop's
@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_other_backends_explain_without_warnings_and_double_their_steps(backend):
    """No warning per explanation (Keras warned on torch that the probe got an array where it expected a list)."""
    env = {**os.environ, "KERAS_BACKEND": backend}
    result = subprocess.run(
        [sys.executable, "-c", OTHER_BACKEND], capture_output=True, text=True, env=env, timeout=600, cwd=REPO
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    default_filters = result.stderr.split("EXPLAINED")[0]
    assert "Warning" not in default_filters, default_filters[-3000:]
    # Recording all of them: nothing, but for NumPy 2's DeprecationWarning raised inside Keras' own conversion
    # of torch tensors to NumPy (every Keras predict on torch raises it; Python's default filters hide it).
    unexpected = [
        w
        for w in report["recorded"]
        if not (w["category"] == "DeprecationWarning" and f"{os.sep}keras{os.sep}" in w["file"])
    ]
    assert unexpected == [], unexpected
    assert not any("structure" in w["message"] for w in report["recorded"])
    assert report["backend"] == backend and report["attributions"] == [backend] * 3
    steep = report["steep"]
    assert steep["steps"][0] > FIRST_STEPS and steep["complete"]
    for total, difference in zip(steep["sums"], steep["exact"]):
        assert abs(total - difference) <= RELATIVE_BOUND * abs(difference), (total, difference)


# --------------------------------------------------------------------------
# The sheet: one colour scale for both maps, each with its class's probability, and whole titles


def test_sheet_draws_both_maps_on_one_scale_with_their_probabilities(trained_runs, digit, tmp_path, drawn):
    from mnistlab.ml import explain
    from mnistlab.outputs import sheets

    explanation = explain.explain_run(trained_runs["mlp"], digit)
    sheets.write_sheet(explanation, digit, tmp_path / "sheet.png", "a sheet")
    (figure,) = drawn
    maps = np.asarray(explanation["attributions"]["maps"])
    limit = float(np.abs(maps).max())  # the stronger map sets the one scale
    images = {}
    for axes in figure.axes:
        for picture in axes.get_images():
            for position, values in enumerate(maps):
                if picture.get_array().shape == values.shape and np.allclose(picture.get_array(), values):
                    images[position] = (axes, picture)
    assert sorted(images) == [0, 1], "both attribution maps are drawn"
    for position, (axes, picture) in images.items():
        assert picture.get_clim() == pytest.approx((-limit, limit)), (position, picture.get_clim(), limit)
        probability = 100 * explanation["probabilities"][explanation["attributions"]["classes"][position]]
        assert f"({probability:.1f}%)" in axes.get_title().replace("\n", " ")
    bars = [picture.colorbar for _, picture in images.values() if picture.colorbar is not None]
    assert (
        len(bars) == 1
        and bars[0].mappable.norm.vmin == pytest.approx(-limit)
        and bars[0].mappable.norm.vmax == pytest.approx(limit)
    )


def overlaps(first, second):
    """Whether two display-space boxes share any area (touching edges do not count)."""
    return first.x0 < second.x1 and second.x0 < first.x1 and first.y0 < second.y1 and second.y0 < first.y1


@pytest.mark.parametrize("listing", ["listing-1.3.2", "listing-1.4.1", "listing-1.5.1"])
def test_sheet_titles_are_whole_and_apart(listing, digit, tmp_path, drawn):
    """Every title inside the figure, and clear of the other titles and of the other panels (it was drawn over: "plates of...")."""
    from mnistlab.core import presets
    from mnistlab.ml import explain, models
    from mnistlab.outputs import sheets

    config = presets.get(
        listing
    ).build_config()  # the listing's widths: its unit numbers and layer names, as long as they come
    explanation = explain.Explainer(models.build_model(config), config).explain(digit)
    sheets.write_sheet(
        explanation,
        digit,
        tmp_path / "sheet.png",
        f"digit.png: {config.family.upper()} ({listing}) says {explanation['labels'][explanation['prediction']]}",
    )
    (figure,) = drawn
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    whole = figure.bbox
    titles = [(axes, axes.title) for axes in figure.axes if axes.title.get_text()]
    assert len(titles) >= 6
    boxes = [(axes, title.get_text(), title.get_window_extent(renderer)) for axes, title in titles]
    boxes.append((None, figure._suptitle.get_text(), figure._suptitle.get_window_extent(renderer)))
    for owner, text, box in boxes:
        assert whole.x0 <= box.x0 and box.x1 <= whole.x1 and whole.y0 <= box.y0 and box.y1 <= whole.y1, (
            text,
            box,
            whole,
        )
        for other_owner, other_text, other_box in boxes:
            if other_text != text:
                assert not overlaps(box, other_box), (text, other_text)
        for panel in figure.axes:
            if panel is not owner and panel.get_visible():
                assert not overlaps(box, panel.get_window_extent(renderer)), (text, panel.get_title())


# --------------------------------------------------------------------------
# The page: the same, on its canvases


def signed_colour(value):
    """The page's red/white/blue for a value in [-1, 1] (web/static/colours.js's `signed`)."""
    return [255, 255 * (1 - value), 255 * (1 - value)] if value >= 0 else [255 * (1 + value), 255 * (1 + value), 255]


def decoded(array):
    """A compact JSON array: uint8 bytes scaled back to min..max (as the page decodes it)."""
    import base64

    raw = np.frombuffer(base64.b64decode(array["uint8"]), np.uint8).astype(np.float64)
    return (array["min"] + raw * ((array["max"] - array["min"]) / 255)).reshape(array["shape"])


CANVAS_PIXELS = """(selector) => {
  const canvas = document.querySelector(selector);
  return Array.from(canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data);
}"""


def test_page_draws_both_maps_on_one_scale_with_their_probabilities(live_server, browser_page, mini):
    page = browser_page
    page.goto(live_server + "/")
    image = drawn_png(mini)
    page.evaluate(
        """(bytes) => {
        const file = new File([new Uint8Array(bytes)], "digit.png", {type: "image/png"}), transfer = new DataTransfer();
        transfer.items.add(file);
        document.getElementById("pad").dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));
    }""",
        list(image),
    )
    page.wait_for_function(
        "window.mnistlab.insideFor > 0 && window.mnistlab.insideFor === window.mnistlab.shown && !window.mnistlab.insideBusy",
        timeout=60000,
    )
    # The same request the page made, answered by the server for this test (explanations are deterministic).
    answer = page.request.post(live_server + "/api/explain", data=image, headers={"Content-Type": "image/png"}).json()
    for explanation in answer["explanations"]:
        card = f'.model[data-model="{explanation["model"]}"] .inside'
        maps = decoded(explanation["attributions"]["maps"])
        top = np.abs(maps).max()
        for position, role in enumerate(("prediction", "runner-up")):
            pixels = np.array(page.evaluate(CANVAS_PIXELS, f"{card} canvas.attribution-{role}"), np.float64).reshape(
                28, 28, 4
            )[..., :3]
            expected = np.array([signed_colour(value / top) for value in maps[position].ravel()]).reshape(28, 28, 3)
            assert np.abs(pixels - expected).max() <= 2, (explanation["family"], role)
        captions = page.eval_on_selector_all(
            f"{card} .attribution figcaption", "captions => captions.map(c => c.textContent)"
        )
        labels, probabilities = explanation["labels"], explanation["probabilities"]
        assert captions == [
            f"'{labels[c]}' {100 * probabilities[c]:.1f}%" for c in explanation["attributions"]["classes"]
        ]
        assert float(page.get_attribute(f"{card} .scale", "data-top")) == pytest.approx(top, rel=1e-6)

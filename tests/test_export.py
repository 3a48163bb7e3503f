"""Export to ONNX (checked against Keras), Keras and SavedModel."""

import numpy as np
import pytest

from conftest import assert_one_line_error, drawn_png, run_cli, run_cli_in_one_process, run_main

# The export each parity test checks, by the test's name.
EXPORT_OF = {
    "test_onnx_export_matches_keras": "onnx",
    "test_the_inside_views_onnx_graph_gives_what_keras_shows": "onnx-inside",
}


@pytest.fixture(scope="module")
def exported(request, trained_runs, tmp_path_factory):
    """{(family, format): (what `mnistlab export` gave, the file it wrote)} for each export that this module's chosen
    tests check, all made by one TensorFlow process: each alone is a process, TensorFlow's import and tf2onnx's, for
    seconds of exporting."""
    folder = tmp_path_factory.mktemp("exported")
    wanted = [
        (item.callspec.params["family"], EXPORT_OF[item.originalname])
        for item in request.session.items
        if item.module is request.module and item.originalname in EXPORT_OF
    ]
    commands, outs = [], []
    for family, export_format in wanted:
        if export_format == "onnx":  # where it goes by default: the run's model.onnx, which serve --runtime onnx reads
            commands.append(["export", trained_runs[family], "--format", export_format])
            outs.append(trained_runs[family] / "model.onnx")
        else:
            outs.append(folder / f"{family}-inside.onnx")
            commands.append(["export", trained_runs[family], "--format", export_format, "--out", outs[-1]])
    # The process' own home, data cache and runs root, as a test's (module fixtures come before `isolated_dirs`).
    places = {name: str(folder / name) for name in ("home", "cache", "runs")}
    env = {"HOME": places["home"], "MNISTLAB_DATA": places["cache"], "MNISTLAB_RUNS": places["runs"]}
    return dict(zip(wanted, zip(run_cli_in_one_process(commands, env=env), outs)))


# An export is seconds, and a TensorFlow process with tf2onnx more: the MLP's in the quick loop, all three in the full
# run, every export of the module in one process (`exported`).
@pytest.mark.parametrize(
    "family", ["mlp", pytest.param("cnn", marks=pytest.mark.slow), pytest.param("rnn", marks=pytest.mark.slow)]
)
def test_onnx_export_matches_keras(trained_runs, mini, family, exported):
    result, _ = exported[family, "onnx"]
    assert result.returncode == 0, result.stderr
    assert "max |difference|" in result.stdout
    assert "on 600 mnist-mini test digits" in result.stdout  # what it checked, exactly (mnist-mini has 600)
    # tf2onnx's "TF freezing failed" and NumPy's np.object FutureWarning read as errors on a good export.
    assert "freezing" not in result.stderr and "FutureWarning" not in result.stderr, result.stderr
    difference = float(result.stdout.split("max |difference| ")[1].split(",")[0])
    assert difference <= 1e-4
    assert (trained_runs[family] / "model.onnx").exists()
    from mnistlab.ml.predict import Predictor

    image = np.zeros((1, 28, 28), np.float32)
    image[0, 6:22, 12:16] = 1
    keras_probs = Predictor(trained_runs[family]).predict(image)
    onnx_probs = Predictor(trained_runs[family], runtime="onnx").predict(image)
    np.testing.assert_allclose(keras_probs, onnx_probs, atol=1e-4)
    # ... and `serve --runtime onnx` answers the page's requests with the same probabilities.
    from fastapi.testclient import TestClient

    from mnistlab.web.serve import create_app

    drawing = drawn_png(mini)
    answers = {}
    for runtime in ("keras", "onnx"):
        response = TestClient(create_app([Predictor(trained_runs[family], runtime=runtime)])).post(
            "/api/predict", content=drawing, headers={"content-type": "image/png"}
        )
        assert response.status_code == 200, response.text
        answers[runtime] = response.json()["predictions"][0]["probabilities"]
    np.testing.assert_allclose(answers["keras"], answers["onnx"], atol=1e-4)


def test_keras_export_is_the_runs_model_file(tmp_path, trained_runs, capsys):
    result = run_main(capsys, "export", trained_runs["mlp"], "--format", "keras", "--out", tmp_path / "copy.keras")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "copy.keras").read_bytes() == (trained_runs["mlp"] / "model.keras").read_bytes()
    assert_one_line_error(run_main(capsys, "export", tmp_path, "--format", "onnx"), "not a run directory")


@pytest.mark.slow  # a TensorFlow process; the quick loop exports the MLP to ONNX
def test_saved_model_export_is_written_once(tmp_path, trained_runs, capsys):
    result = run_cli("export", trained_runs["cnn"], "--format", "saved_model", "--out", tmp_path / "sm")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "sm" / "saved_model.pb").exists()
    # Refused before TensorFlow loads the model: so here, in this JAX process, at once.
    assert_one_line_error(
        run_main(capsys, "export", trained_runs["cnn"], "--format", "saved_model", "--out", tmp_path / "sm"),
        "already exists",
    )


@pytest.mark.slow  # exports on TensorFlow with tf2onnx; the quick loop exports the MLP to ONNX
@pytest.mark.parametrize("family", ["rnn", "mlp", "cnn"])
def test_the_inside_views_onnx_graph_gives_what_keras_shows(trained_runs, mini, family, exported):
    """`export --format onnx-inside`: one graph with every tensor the inside view shows (the RNN's belief after each
    row included) and the probabilities, made in a TensorFlow process; here each output equals the same probe
    model's on JAX (this process), and the last the run's predictions."""
    result, out = exported[family, "onnx-inside"]
    assert result.returncode == 0, result.stderr
    assert "outputs)" in result.stdout and "max |difference|" in result.stdout, result.stdout
    from mnistlab.ml import explain, predict
    from mnistlab.ml.predict import Predictor

    predictor = Predictor(trained_runs[family])
    probe = explain.Explainer(predictor.copy_of_keras_model(), predictor.config).probe
    images = (mini.x_test[:16].astype(np.float32) / 255.0).reshape((16, *predictor.config.input_shape))
    expected = probe.predict(images, verbose=0)
    session = predict.onnx_session(out)
    actual = session.run(None, {session.get_inputs()[0].name: images})
    assert len(actual) == len(expected) >= 2
    for keras_output, onnx_output in zip(expected, actual):
        np.testing.assert_allclose(onnx_output, keras_output, atol=1e-4)
    np.testing.assert_allclose(actual[-1], predictor.predict(mini.x_test[:16].astype(np.float32) / 255.0), atol=1e-4)

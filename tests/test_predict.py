"""`mnistlab predict` on people's image files.

In this process (JAX): a fresh process adds nothing the CLI tests do not check (test_cli: errors in a fresh
process; the tour: `predict` as printed).
"""

import json

import numpy as np
from PIL import Image

from conftest import assert_one_line_error, run_main


def test_predict_cli_json_and_show_input(tmp_path, trained_runs, mini, capsys):
    Image.fromarray(255 - mini.x_test[0]).resize((140, 140)).save(tmp_path / "dark-on-light.png")
    np.save(tmp_path / "clean.npy", mini.x_test[0])
    result = run_main(
        capsys,
        "predict",
        trained_runs["mlp"],
        tmp_path / "dark-on-light.png",
        tmp_path / "clean.npy",
        "--top",
        "3",
        "--json",
        "--show-input",
        tmp_path / "seen",
    )
    assert result.returncode == 0, result.stderr
    predictions = json.loads(result.stdout)
    assert len(predictions) == 2 and len(predictions[0]["top"]) == 3
    assert predictions[0]["prediction"] == predictions[1]["prediction"]
    assert predictions[0]["preprocess"]["inverted"] and not predictions[1]["preprocess"]["inverted"]
    assert (tmp_path / "seen" / "dark-on-light-input.png").exists()
    top = [item["probability"] for item in predictions[1]["top"]]
    assert top == sorted(top, reverse=True) and 0 < sum(top) <= 1 + 1e-6
    assert (
        predictions[1]["prediction"] == predictions[1]["top"][0]["class"] == int(mini.y_test[0])
    )  # the digit it really is
    assert predictions[1]["label"] == str(int(mini.y_test[0]))


def test_predict_cli_errors(tmp_path, trained_runs, capsys):
    (tmp_path / "notes.txt").write_text("not an image")
    assert_one_line_error(
        run_main(capsys, "predict", trained_runs["mlp"], tmp_path / "notes.txt"), "notes.txt", "not an image"
    )
    assert_one_line_error(run_main(capsys, "predict", trained_runs["mlp"], tmp_path / "missing.png"), "file not found")
    assert_one_line_error(
        run_main(capsys, "predict", trained_runs["mlp"], tmp_path / "notes.txt", "--runtime", "onnx"), "not an image"
    )


def test_fashion_predictions_name_the_garments():
    from mnistlab.ml import data
    from mnistlab.ml.predict import top_k

    top = top_k(
        np.array([0.05, 0.6, 0.05, 0.05, 0.05, 0.05, 0.05, 0.04, 0.03, 0.03]), 2, data.class_names("fashion-mnist")
    )
    assert [item["label"] for item in top] == ["Trouser", "T-shirt/top"]

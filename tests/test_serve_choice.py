"""Models that fit the page: with no runs named, serve and explain take digit models for the digit page."""

import pytest

from mnistlab.analysis import pages
from mnistlab.core.config import Config
from mnistlab.core.errors import ConfigError, RunDirError
from mnistlab.record import rundir
from mnistlab.record.store import Store


def _run(store, tmp_path, family, dataset, validation):
    config = Config(family=family, dataset=dataset, backend="jax")
    run_dir = tmp_path / f"{family}-{dataset}-{validation}"
    rundir.write_config(run_dir, config)
    (run_dir / rundir.MODEL_FILE).write_bytes(b"")  # choosing reads only the record, not the model
    run_id = store.start_run(config, "ab" * 32, run_dir=run_dir)
    store.finish_run(run_id, "done", {"val_accuracy": validation, "test_accuracy": validation, "run_dir": str(run_dir)})
    return str(run_dir)


def test_the_best_fashion_run_never_reaches_the_digit_page(tmp_path):
    with Store(tmp_path / "runs.db") as store:
        digits = _run(store, tmp_path, "mlp", "mnist-mini", 0.90)
        mnist = _run(store, tmp_path, "cnn", "mnist", 0.95)
        fashion = [_run(store, tmp_path, family, "fashion-mnist", 0.99) for family in ("mlp", "cnn")]
    chosen = pages.choose_runs(tmp_path / "runs.db")
    assert [run["run_dir"] for run in chosen] == [digits, mnist]
    assert "mnist or mnist-mini" in chosen[0]["why"] and "90.0%" in chosen[0]["why"]
    assert pages.best_runs_per_family(tmp_path / "runs.db", "fashion-mnist") == fashion


def test_a_store_of_clothes_only_says_how_to_serve_them(tmp_path):
    with Store(tmp_path / "runs.db") as store:
        _run(store, tmp_path, "mlp", "fashion-mnist", 0.8)
    with pytest.raises(
        RunDirError, match=r"no finished runs on mnist or mnist-mini.*fashion-mnist \(choose one with --dataset\)"
    ):
        pages.choose_runs(tmp_path / "runs.db")


def test_one_page_never_mixes_digits_and_clothes(tmp_path):
    with Store(tmp_path / "runs.db") as store:
        digit_runs = [_run(store, tmp_path, "mlp", "mnist-mini", 0.9), _run(store, tmp_path, "cnn", "mnist", 0.9)]
        fashion = _run(store, tmp_path, "rnn", "fashion-mnist", 0.9)
    assert pages.check_one_page(digit_runs) == "digits"
    with pytest.raises(ConfigError, match="different kinds of images"):
        pages.check_one_page([*digit_runs, fashion])


def test_explain_chooses_by_dataset_as_serve_does(tmp_path, monkeypatch, capsys):
    """`mnistlab explain IMAGE` with no run: digits by default, `--dataset fashion-mnist` for clothes (the error says so)."""
    import numpy as np

    from conftest import assert_one_line_error, png_bytes, run_main
    from mnistlab.ml import explain

    with Store(tmp_path / "runs.db") as store:
        fashion = _run(store, tmp_path, "mlp", "fashion-mnist", 0.8)
    image = tmp_path / "shirt.png"
    image.write_bytes(png_bytes(np.pad(np.full((14, 14), 255, dtype=np.uint8), 7)))
    assert_one_line_error(
        run_main(capsys, "explain", image, "--out", tmp_path / "out", "--store", tmp_path / "runs.db"),
        "choose one with --dataset",
    )

    class Chosen(Exception):
        pass

    def explainer_for(run_dir, backend="auto"):
        raise Chosen(str(run_dir))  # the run it would explain with (these runs' models are empty files)

    monkeypatch.setattr(explain, "explainer_for", explainer_for)
    with pytest.raises(Chosen) as chosen:
        run_main(
            capsys,
            "explain",
            image,
            "--out",
            tmp_path / "out",
            "--store",
            tmp_path / "runs.db",
            "--dataset",
            "fashion-mnist",
        )
    assert str(chosen.value) == fashion

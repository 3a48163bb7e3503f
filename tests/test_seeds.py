"""Seeds as the unit: bands against NumPy, exact verdicts, tables out in four formats that agree, the
disagreement atlas against NumPy from the runs' models, and reproductions across backends."""

import csv
import html.parser
import io
import json
import math
import pathlib
import re
import shutil
import subprocess

import numpy as np
import pytest
from scipy import stats as scipy_stats

from conftest import assert_one_line_error, made_up_history, record_run, reproduced_table, run_cli, run_main
from mnistlab.analysis import atlas, bands, tables
from mnistlab.core import presets, stats
from mnistlab.core.errors import ConfigError
from mnistlab.jobs import reproduce
from mnistlab.ml import run_model
from mnistlab.record import rundir
from mnistlab.record.store import Store

TABLE = "table-1.4.1"


def setup_config(preset, seed, **changes):
    return presets.get(preset).build_config(
        seed=seed, dataset="mnist-mini", backend=changes.pop("backend", "jax"), **changes
    )


# --------------------------------------------------------------------------
# 1. Curves with seed bands


def test_bands_are_the_t_interval_over_seeds_per_epoch_as_numpy_computes_it():
    rng = np.random.default_rng(1)
    # Four seeds, one of which stopped after 3 of 5 epochs: epochs 4-5 are over the three that reached them.
    histories = [made_up_history(rng, 5, 0.8) for _ in range(3)] + [made_up_history(rng, 3, 0.8)]
    result = bands.bands(histories)
    for metric in bands.METRICS:
        assert [row["epoch"] for row in result[metric]] == [1, 2, 3, 4, 5]
        for row in result[metric]:
            values = np.array(
                [history[row["epoch"] - 1][metric] for history in histories if len(history) >= row["epoch"]]
            )
            half = scipy_stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
            assert row["n"] == len(values) == (4 if row["epoch"] <= 3 else 3)
            assert row["mean"] == pytest.approx(values.mean(), abs=1e-12)
            assert row["ci_low"] == pytest.approx(values.mean() - half, abs=1e-12) and row["ci_high"] == pytest.approx(
                values.mean() + half, abs=1e-12
            )
    one = bands.bands([histories[0]])["val_accuracy"][0]
    assert (
        one["n"] == 1 and one["mean"] == histories[0][0]["val_accuracy"] and one["ci_low"] is None
    )  # one seed: no interval


def _three_setups(mini, accuracies):
    """Setups named by preset, each with its test accuracies (one run per seed)."""
    rng = np.random.default_rng(0)
    with Store() as index:
        for preset, values in accuracies.items():
            for seed, value in enumerate(values):
                record_run(
                    index,
                    setup_config(preset, seed, epochs=4),
                    preset,
                    mini,
                    value,
                    made_up_history(rng, 4, value - 0.1),
                    params=len(preset),
                )


def test_compare_setups_gives_the_numbers_and_verdicts_of_runs_compare_exactly(mini, capsys):
    accuracies = {
        "table-1.4.1-row1": [0.900, 0.910, 0.920],  # A
        "table-1.4.1-row2": [0.800, 0.805, 0.812],  # far below A: a difference
        "table-1.4.1-row3": [0.905, 0.910, 0.915],  # A's mean, other spread: "not significant"
        "table-1.4.1-row4": [0.700, 0.900],  # two seeds: numbers, no verdict
    }
    _three_setups(mini, accuracies)
    result = bands.compare_setups(list(accuracies))
    by_pair = {(c["a"], c["b"]): c for c in result["comparisons"]}
    a, b, c, d = (np.array(values) * 100 for values in accuracies.values())
    expected = scipy_stats.ttest_ind(a, b, equal_var=False)
    differ = by_pair[("table-1.4.1-row1", "table-1.4.1-row2")]
    assert differ["p_value"] == pytest.approx(expected.pvalue, rel=1e-12) and differ["difference"] == pytest.approx(
        a.mean() - b.mean(), abs=1e-12
    )
    assert differ["significant"] is True and differ["verdict"].startswith("the difference is significant at 95%")
    same = by_pair[("table-1.4.1-row1", "table-1.4.1-row3")]
    assert same["difference"] == pytest.approx(0.0, abs=1e-9) and same["p_value"] == pytest.approx(1.0)
    assert same["significant"] is False and same["verdict"].startswith("the difference is not significant at 95%")
    two = by_pair[("table-1.4.1-row1", "table-1.4.1-row4")]
    assert two["significant"] is None and two["verdict"].startswith("no verdict: 3 and 2 runs")
    assert two["p_value"] == pytest.approx(
        scipy_stats.ttest_ind(a, d, equal_var=False).pvalue, rel=1e-12
    )  # the numbers are still given
    # The same numbers as `mnistlab runs compare A B`, field by field.
    for (name_a, name_b), comparison in by_pair.items():
        cli = json.loads(run_main(capsys, "runs", "compare", name_a, name_b, "--json").stdout)
        for key in (
            "n_a",
            "n_b",
            "mean_a",
            "mean_b",
            "difference",
            "ci_low",
            "ci_high",
            "p_value",
            "degrees_of_freedom",
            "cohens_d",
            "significant",
            "verdict",
        ):
            assert cli[key] == comparison[key], key
    # Beside them: parameters, the book's figure of a table row, the final interval over seeds.
    first = result["setups"][0]
    assert (
        first["params"] == len("table-1.4.1-row1")
        and first["book_test"] == presets.get("table-1.4.1-row1").book_test_accuracy
        and first["book_where"] == "Table 1.4.1 row 1"
    )
    summary = stats.summarize(a, bounds=(0, 100))
    assert first["test"]["ci_low"] == pytest.approx(summary["ci_low"]) and first["test"]["n"] == 3


def test_compare_report_draws_bands_and_says_the_verdicts(mini, tmp_path, capsys):
    _three_setups(mini, {"table-1.4.1-row1": [0.90, 0.91, 0.92], "table-1.4.1-row2": [0.80, 0.805, 0.812]})
    out = tmp_path / "compare.html"
    result = run_main(capsys, "report", "table-1.4.1-row1", "table-1.4.1-row2", "--out", out)
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert (
        "Learning curves with seed bands" in text
        and "the difference is significant at 95%" in text
        and "Table 1.4.1 row 1" in text
    )
    assert (tmp_path / "compare_files" / "bands.png").read_bytes()[:4] == b"\x89PNG"
    assert "Runs without predictions" in text  # constructed runs kept none: the report says so
    assert "Inside training" not in text  # nor dynamics: no section, rather than an empty one
    from conftest import made_up_dynamics
    from mnistlab.core import fileio

    rng = np.random.default_rng(1)
    with Store() as index:
        for run in index.runs():
            fileio.write_json(pathlib.Path(run["run_dir"]) / "dynamics.json", made_up_dynamics(rng, 3))
    assert run_main(capsys, "report", "table-1.4.1-row1", "table-1.4.1-row2", "--out", out).returncode == 0
    assert "Inside training" in out.read_text()
    assert (tmp_path / "compare_files" / "dynamics.png").read_bytes()[:4] == b"\x89PNG"
    assert_one_line_error(
        run_main(capsys, "report", "table-1.4.1-row1", "--format", "csv"), "--format csv exports a table"
    )


# --------------------------------------------------------------------------
# 2. Tables in and out


class _Cells(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self._row, self._cell = [], None, None

    def handle_starttag(self, tag, attributes):
        if tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._row is not None:
            self._row.append(self._cell)
            self._cell = None
        elif tag == "tr":
            self.rows.append(self._row)

    def handle_data(self, text):
        if self._cell is not None:
            self._cell += text


def _latex_rows(text):
    body = text.split("\\midrule\n", 1)[1].split("\\bottomrule", 1)[0]
    unescape = {value: key for key, value in tables.LATEX_SPECIALS.items()}
    rows = []
    for line in body.strip().splitlines():
        cells = [cell.strip() for cell in line.removesuffix("\\\\").strip().split(" & ")]
        rows.append(
            [re.sub("|".join(re.escape(k) for k in unescape), lambda m: unescape[m.group(0)], cell) for cell in cells]
        )
    return rows


def test_table_formats_agree_with_each_other_and_with_the_table_file(mini, capsys, tmp_path):
    written, rows = reproduced_table(mini)
    exported = {}
    for format in ("csv", "latex", "json"):
        result = run_main(capsys, "report", TABLE, "--format", format)
        assert result.returncode == 0, result.stderr
        exported[format] = result.stdout
    # The HTML report's table is this export's (test_tables_and_the_atlas_group_by_backend checks the report holds it).
    exported["html"] = tables.table_export(tables.table_data(TABLE), "html")
    parsed_html = _Cells()
    parsed_html.feed(exported["html"])
    header, html_rows = parsed_html.rows[0], parsed_html.rows[1:]
    csv_rows = list(csv.reader(io.StringIO(exported["csv"])))
    latex = _latex_rows(exported["latex"])
    data = json.loads(exported["json"])
    assert csv_rows[0] == header == list(tables.header(data))
    as_json = [[tables.cells(row)[column] for column in header] for row in data["rows"]]
    assert csv_rows[1:] == html_rows == latex == as_json  # every format, cell by cell
    # ... and what `mnistlab reproduce` wrote: its CSV's numbers, row by row.
    with open(written["csv"], newline="") as handle:
        reproduced = list(csv.DictReader(handle))
    assert len(reproduced) == len(as_json) == 4
    for mine, theirs in zip((dict(zip(header, row)) for row in as_json), reproduced):
        assert (
            mine["row"],
            mine["settings"],
            mine["test mean"],
            mine["test 95% CI"],
            mine["book test"],
            mine["seeds"],
        ) == (
            theirs["row"],
            theirs["settings"],
            theirs["test mean"],
            theirs["test 95% CI"],
            theirs["book test"],
            theirs["runs"],
        )
        assert mine["comparable"] == theirs["comparable"] == "no"  # mnist-mini, 2 epochs: the book's figure, no verdict
        assert (
            mine["verdict"]
            == f"not comparable: {theirs['comparable reason']}"
            == "not comparable: book: MNIST, 10 epochs; this: mnist-mini, 2 epochs"
        )
        assert theirs["book test in CI"] == "n/a"
    assert [row["run_dirs"] for row in data["rows"]] == [row["run_dirs"] for row in rows]  # each cell knows its runs


def test_latex_compiles_as_a_booktabs_table(mini, tmp_path):
    reproduced_table(mini)
    text = tables.table_export(tables.table_data(TABLE), "latex")
    assert "\\toprule" in text and "\\midrule" in text and "\\bottomrule" in text
    if shutil.which("pdflatex") is None:
        pytest.skip(
            "pdflatex is not installed (Debian: apt-get install texlive-latex-base texlive-latex-recommended); the LaTeX was checked for its booktabs rules only"
        )
    (tmp_path / "table.tex").write_text(text)
    (tmp_path / "paper.tex").write_text(
        "\\documentclass{article}\\usepackage{booktabs}\\begin{document}\\input{table.tex}\\end{document}\n"
    )
    result = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "paper.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-2000:]
    assert (tmp_path / "paper.pdf").read_bytes()[:4] == b"%PDF"


def test_latex_escapes_what_tex_would_read_as_commands():
    assert tables.latex_escape("dropout(0.2) & 50% #1 a_b") == r"dropout(0.2) \& 50\% \#1 a\_b"


# --------------------------------------------------------------------------
# 3. The disagreement atlas


def _write_runs_with(tmp_path, predicted, labels, backends=None):
    """Run directories holding exactly these predictions (one row of PREDICTED per run)."""
    run_dirs = []
    for position, answers in enumerate(predicted):
        config = setup_config("listing-1.3.2", position, backend=(backends or ["jax"] * len(predicted))[position])
        run_dir = tmp_path / f"run{position}"
        recorder = rundir.Recorder(run_dir)
        recorder.start(config, "listing-1.3.2", "mnist-mini", "ab" * 32)
        probability = np.where(np.asarray(answers) == labels, 0.9, 0.05).astype(np.float16)
        recorder.finish(
            {"status": "done", "test_accuracy": float(np.mean(np.asarray(answers) == labels))},
            None,
            {
                "predicted": np.asarray(answers, np.uint8),
                "true_probability": probability,
                "labels": labels.astype(np.uint8),
            },
        )
        run_dirs.append(run_dir)
    return run_dirs


def test_atlas_of_constructed_predictions(tmp_path):
    labels = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 1])
    predicted = np.array(
        [
            [0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 7, 1],
            [0, 1, 2, 3, 4, 5, 6, 7, 8, 4, 7, 1],
            [0, 1, 2, 5, 4, 5, 6, 7, 8, 4, 7, 2],
        ]
    )
    result = atlas.disagreement(_write_runs_with(tmp_path, predicted, labels))
    assert (result["test_digits"], result["disagreed"], result["all_wrong"]) == (12, 3, 2)
    # Most contested first: #9 (0, 4, 4) and #3 and #11 (two alike, one not) tie at 2 alike; ties in index order.
    assert [digit["index"] for digit in result["disagreed_digits"]] == [3, 9, 11]
    assert {digit["index"]: digit["answers"] for digit in result["all_wrong_digits"]} == {9: [0, 4, 4], 10: [7, 7, 7]}
    assert result["all_wrong_digits"][0]["label"] in (1, 9)
    per_class = {entry["class"]: (entry["test_digits"], entry["disagreed"]) for entry in result["per_class"]}
    assert per_class[1] == (3, 1) and per_class[3] == (1, 1) and per_class[9] == (1, 1) and per_class[0] == (1, 0)
    assert result["accuracy"] == pytest.approx([10 / 12, 10 / 12, 8 / 12])


def test_atlas_says_whether_backends_disagree_beyond_seed_noise(tmp_path):
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 10, 2000)
    base = {backend: labels.copy() for backend in ("jax", "tensorflow", "torch")}
    for backend, answers in base.items():  # each backend its own systematic mistakes
        flipped = rng.random(len(labels)) < 0.2
        answers[flipped] = (answers[flipped] + 1) % 10

    def seeds_of(answers):
        runs = []
        for _ in range(3):
            noisy = answers.copy()
            flipped = rng.random(len(labels)) < 0.01
            noisy[flipped] = (noisy[flipped] + 2) % 10
            runs.append(noisy)
        return runs

    backends = [backend for backend in base for _ in range(3)]
    differ = atlas.disagreement(
        _write_runs_with(
            tmp_path / "differ", [run for answers in base.values() for run in seeds_of(answers)], labels, backends
        ),
        by="backend",
    )
    assert (
        differ["groups_test"]["differ"] is True
        and differ["groups_test"]["across_groups_rate"] > differ["groups_test"]["within_group_rate"]
    )
    assert set(differ["groups"]) == {"jax", "tensorflow", "torch"} and all(
        group["run_count"] == 3 for group in differ["groups"].values()
    )
    shared = base["jax"]  # every backend makes the same mistakes: only seed noise
    alike = atlas.disagreement(
        _write_runs_with(tmp_path / "alike", seeds_of(shared) + seeds_of(shared) + seeds_of(shared), labels, backends),
        by="backend",
    )
    assert (
        alike["groups_test"]["differ"] is False and "no difference beyond seed noise" in alike["groups_test"]["verdict"]
    )


def test_atlas_refuses_runs_of_different_test_sets_and_names_runs_without_predictions(tmp_path):
    labels = np.arange(10)
    first, second = _write_runs_with(tmp_path / "a", [labels, labels], labels)
    (second / rundir.PREDICTIONS_FILE).unlink()
    result = atlas.disagreement([first, second])
    assert result["missing"] == [str(second)] and len(result["runs"]) == 1
    with pytest.raises(ConfigError, match="none of the 1 run"):
        atlas.disagreement([second])
    other = tmp_path / "b"
    [third] = _write_runs_with(other, [labels], labels)
    rundir.write_predictions(
        third, {"predicted": labels, "true_probability": labels.astype(np.float16), "labels": labels}, "cd" * 32
    )
    with pytest.raises(ConfigError, match="another test set"):
        atlas.disagreement([first, third])


@pytest.mark.parametrize("overrides", [{}, {"loss": "mean_squared_error"}, {"kernel_l2": 0.01}, {"activity_l2": 0.01}])
def test_one_pass_gives_evaluates_figures_and_the_answers(mini, overrides):
    """The run's evaluation and its predictions come from one pass; its figures are Keras' evaluate's."""
    from mnistlab.ml import data, models

    config = presets.get("listing-1.3.2").build_config(hidden_units=(16,), backend="jax", **overrides)
    model = models.build_model(config)
    inputs = data.prepare_images(
        np.concatenate([mini.x_test] * 2), config.input_shape
    )  # 1,200: a batch of 1,024 and a rest
    labels = data.one_hot(np.concatenate([mini.y_test] * 2))
    loss, accuracy = models.evaluate(model, inputs, labels)
    one_loss, one_accuracy, probabilities = models.evaluate_and_predict(model, inputs, labels)
    assert one_accuracy == accuracy  # to the bit
    assert one_loss == pytest.approx(loss, rel=1e-6)
    np.testing.assert_allclose(probabilities, models.predict(model, inputs), rtol=1e-6)


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory, mini):
    """Two tiny MLP runs (seeds 0 and 1) trained and recorded as `mnistlab train` does."""
    root = tmp_path_factory.mktemp("trained")
    run_dirs = []
    with Store(root / "runs.db") as index:
        for seed in range(2):
            config = presets.get("listing-1.3.2").build_config(
                seed=seed, epochs=1, limit=600, hidden_units=(32, 32), backend="jax", dataset="mnist-mini"
            )
            metrics = run_model.train_and_save(
                config,
                dataset=mini,
                preset="listing-1.3.2",
                run_dir=root / f"seed{seed}",
                index=index,
                verbose=0,
                log=lambda message: None,
            )
            run_dirs.append(root / f"seed{seed}")
    return root, run_dirs, metrics


def test_every_run_keeps_its_test_predictions_and_the_atlas_is_numpy_on_its_models(trained_runs, mini, capsys):
    root, run_dirs, metrics = trained_runs
    # What it cost is in the record (the 1% budget is measured on full runs: benchmarks/seeds_bench.py).
    assert 0 <= metrics["predictions_seconds"] < metrics["evaluate_seconds"] < metrics["seconds"]
    assert rundir.PREDICTIONS_FILE in rundir.RECORD_FILES and rundir.RECORD_FILES[-1] == rundir.METRICS_FILE
    import keras

    from mnistlab.ml import data

    answers = []
    for run_dir in run_dirs:
        model = keras.saving.load_model(run_dir / rundir.MODEL_FILE)
        probabilities = model.predict(data.prepare_images(mini.x_test, (784,)), verbose=0)
        kept = rundir.read_predictions(run_dir)
        np.testing.assert_array_equal(kept["predicted"], probabilities.argmax(axis=1))
        np.testing.assert_allclose(
            kept["true_probability"], probabilities[np.arange(len(mini.y_test)), mini.y_test], atol=1e-3
        )
        assert kept["dataset_hash"] == mini.content_hash() and (kept["labels"] == mini.y_test).all()
        answers.append(probabilities.argmax(axis=1))
    answers = np.stack(answers)
    disagree = np.flatnonzero((answers != answers[0]).any(axis=0))
    all_wrong = np.flatnonzero((answers != mini.y_test).all(axis=0))
    result = json.loads(
        run_main(capsys, "runs", "disagree", "listing-1.3.2", "--store", root / "runs.db", "--json").stdout
    )
    assert sorted(digit["index"] for digit in result["disagreed_digits"]) == disagree.tolist() and result[
        "disagreed"
    ] == len(disagree)
    assert sorted(digit["index"] for digit in result["all_wrong_digits"]) == all_wrong.tolist()
    for digit in result["all_wrong_digits"]:
        assert digit["answers"] == answers[:, digit["index"]].tolist() and digit["label"] == mini.y_test[digit["index"]]
    for entry in result["per_class"]:
        in_class = mini.y_test == entry["class"]
        assert entry["disagreed"] == int((answers[:, in_class] != answers[0, in_class]).any(axis=0).sum()) and entry[
            "test_digits"
        ] == int(in_class.sum())
    assert result["accuracy"] == pytest.approx((answers == mini.y_test).mean(axis=1).tolist())
    text = run_main(capsys, "runs", "disagree", "listing-1.3.2", "--store", root / "runs.db").stdout
    assert f"disagree on {len(disagree)} (" in text and f"all wrong on {len(all_wrong)}" in text


def test_predictions_are_backfilled_from_the_model(trained_runs, capsys):
    _, run_dirs, _ = trained_runs
    kept = rundir.read_predictions(run_dirs[0])
    moved = run_dirs[0] / "kept.npz"
    shutil.copy(run_dirs[0] / rundir.PREDICTIONS_FILE, moved)
    (run_dirs[0] / rundir.PREDICTIONS_FILE).unlink()
    try:
        result = run_main(capsys, "runs", "predictions", run_dirs[0])
        assert result.returncode == 0 and "wrote predictions.npz (600 test digits" in result.stdout, result.stderr
        again = rundir.read_predictions(run_dirs[0])
        np.testing.assert_array_equal(again["predicted"], kept["predicted"])
        assert again["dataset_hash"] == kept["dataset_hash"]
    finally:
        shutil.copy(moved, run_dirs[0] / rundir.PREDICTIONS_FILE)
        moved.unlink()


# --------------------------------------------------------------------------
# 4. Do backends agree?


def test_reproduce_plans_each_row_on_each_backend(mini):
    jobs = reproduce.plan_table(
        TABLE, mini, seeds=3, choice=reproduce.TableChoice(rows=[3, 4], backends=["jax", "tensorflow", "torch"])
    )
    assert len(jobs) == 18 and len({job.key for job in jobs}) == 18
    assert {(job.preset, job.config.backend) for job in jobs} == {
        (f"{TABLE}-row{row}", backend) for row in (3, 4) for backend in ("jax", "tensorflow", "torch")
    }
    assert reproduce.parse_rows("3,4", TABLE) == [3, 4] and reproduce.parse_rows("2-4", TABLE) == [2, 3, 4]
    with pytest.raises(ConfigError, match="has rows 1 to"):
        reproduce.parse_rows("9", TABLE)
    stem, context = tables.table_naming(
        TABLE, "mnist-mini", 3, 1, 600, rows=[3, 4], backends=["jax", "tensorflow", "torch"]
    )
    assert stem.endswith("-r3+4-jax+tensorflow+torch") and "rows 3, 4, on jax, tensorflow, torch" in context
    with pytest.raises(ConfigError, match="--backends takes distinct names"):
        reproduce.reproduce(TABLE, dataset="mnist-mini", choice=reproduce.TableChoice(backends=["jax", "mxnet"]))


def _row_on(backend, values, row=3):
    return {
        "row": row,
        "preset": f"{TABLE}-row{row}",
        "backend": backend,
        "test": stats.summarize(values, bounds=(0, 100)),
    }


def test_backend_comparisons_say_whether_backends_differ_beyond_seed_noise():
    alike = tables.backend_comparisons(
        [
            _row_on("jax", [90.1, 90.3, 90.2]),
            _row_on("tensorflow", [90.2, 90.1, 90.3]),
            _row_on("torch", [90.3, 90.2, 90.1]),
        ]
    )
    assert alike[0]["differ"] is False and alike[0]["verdict"].startswith(
        "no difference between backends beyond seed noise"
    )
    assert len(alike[0]["pairs"]) == 3 and alike[0]["threshold"] == pytest.approx(0.05 / 3)
    apart = tables.backend_comparisons(
        [
            _row_on("jax", [90.1, 90.3, 90.2]),
            _row_on("tensorflow", [90.2, 90.1, 90.3]),
            _row_on("torch", [85.0, 85.2, 85.1]),
        ]
    )
    assert apart[0]["differ"] is True and apart[0]["verdict"].startswith("backends differ beyond seed noise")
    pair = next(p for p in apart[0]["pairs"] if (p["a"], p["b"]) == ("jax", "torch"))
    assert pair["p_value"] == pytest.approx(
        scipy_stats.ttest_ind([90.1, 90.3, 90.2], [85.0, 85.2, 85.1], equal_var=False).pvalue, rel=1e-12
    )
    two = tables.backend_comparisons([_row_on("jax", [90.1, 90.3]), _row_on("torch", [85.0, 85.2])])
    assert two[0]["differ"] is None and two[0]["verdict"].startswith("no verdict")
    assert tables.backend_comparisons([_row_on("jax", [90.1, 90.3, 90.2])]) == []  # one backend: nothing to compare


def test_tables_and_the_atlas_group_by_backend(mini, capsys, tmp_path):
    written, rows = reproduced_table(mini, backends=("jax", "torch"))
    data = tables.table_data(TABLE, table_json=written["json"])
    assert data["several_backends"] and data["backends"] == ["jax", "torch"] and "backend" in tables.header(data)
    assert [(row["row"], row["backend"]) for row in data["rows"]] == [
        (row, backend) for row in (1, 2, 3, 4) for backend in ("jax", "torch")
    ]
    assert len(data["backend_comparisons"]) == 4 and all(
        answer["differ"] is not None for answer in data["backend_comparisons"]
    )
    assert "Do the backends agree?" in written["md"].read_text()
    result = json.loads(run_main(capsys, "runs", "disagree", f"{TABLE}-row3", "--by", "backend", "--json").stdout)
    assert set(result["groups"]) == {"jax", "torch"} and result["groups_test"] is not None
    out = tmp_path / "table.html"
    assert run_main(capsys, "report", TABLE, "--out", out, "--table-json", written["json"]).returncode == 0
    text = out.read_text()
    assert (
        "Do the backends agree?" in text
        and "The digits the seeds disagree on" in text
        and "digits every run gets wrong" in text
    )
    assert tables.to_html(data, page=False) in text  # the report's table is `--format html`'s
    assert "<th></th>" not in text  # every column has a header (the atlas' groups column only with --by)


@pytest.mark.slow
def test_reproduce_runs_rows_on_every_backend(tmp_path):
    """The real thing, small: a row of Table 1.4.1 on JAX, TensorFlow and PyTorch, one seed, 1 epoch on 200 digits
    (one row shows every backend's path; the rows' own planning is test_sweep's and the tour's)."""
    store_path = tmp_path / "runs.db"
    result = run_cli(
        "reproduce",
        TABLE,
        "--rows",
        "3",
        "--backends",
        "jax,tensorflow,torch",
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--limit",
        "200",
        "--dataset",
        "mnist-mini",
        "--store",
        store_path,
        "--out",
        tmp_path / "tables",
        "--workers",
        "2",
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    saved = json.loads(next((tmp_path / "tables").glob("*-r3-jax+tensorflow+torch.json")).read_text())
    assert [(row["row"], row["backend"], row["runs"]) for row in saved["rows"]] == [
        (3, backend, 1) for backend in ("jax", "tensorflow", "torch")
    ]
    assert all((rundir.read_predictions(row["run_dirs"][0]) or {}).get("dataset_hash") for row in saved["rows"])
    assert "| backend |" in result.stdout and "no verdict" in result.stdout

"""The book's figure is held against runs only on the book's data (issue 31): full MNIST, the book's epochs and
settings, at least 3 seeds (`book.comparable`). Elsewhere the figure is shown with the reason and no verdict, on
every surface: the lab's API (runs view, compare view), `runs compare`, the reports, and the table exports.

Four reproductions of Table 1.4.1 (constructed runs, no training), 3 seeds each, all with accuracies whose
interval would put the book's figure outside (or, for the last, inside) it: mnist-mini at 2 epochs,
Fashion-MNIST at the book's 10 epochs, MNIST at 2 epochs, and MNIST as in the book. Only the last gets a verdict.
"""

import csv
import dataclasses
import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from conftest import made_up_history, made_up_predictions, record_run, run_main
from mnistlab.analysis import book, tables
from mnistlab.core import paths, presets
from mnistlab.jobs import reproduce
from mnistlab.record.store import Store
from mnistlab.web import lab as lab_lib

TABLE = "table-1.4.1"
ROW = f"{TABLE}-row3"  # the book: 99.4% test
BOOK_EPOCHS = presets.get(ROW).config["epochs"]  # 10


def datasets(mini):
    """Three datasets of distinct content, named as runs record them: the built-in sample, Fashion-MNIST and MNIST
    (a run records `mnist` only when it trained on the official file, checked by its sha256: data.load_mnist)."""
    fashion = dataclasses.replace(mini, name="fashion-mnist", x_train=255 - mini.x_train, x_test=255 - mini.x_test)
    mnist = dataclasses.replace(
        mini, name="mnist", x_train=mini.x_train[::-1].copy(), y_train=mini.y_train[::-1].copy()
    )
    return mini, fashion, mnist


# (name, dataset, epochs, test accuracy level): the levels put 99.4% outside the first three intervals, inside the last.
CASES = (
    ("mini", 0, 2, 0.93),
    ("fashion", 1, BOOK_EPOCHS, 0.90),
    ("mnist-short", 2, 2, 0.97),
    ("mnist-book", 2, BOOK_EPOCHS, 0.994),
)
REASONS = {
    "mini": f"book: MNIST, {BOOK_EPOCHS} epochs; this: mnist-mini, 2 epochs",
    "fashion": f"book: MNIST, {BOOK_EPOCHS} epochs; this: fashion-mnist, {BOOK_EPOCHS} epochs",
    "mnist-short": f"book: MNIST, {BOOK_EPOCHS} epochs; this: MNIST, 2 epochs",
}


@pytest.fixture
def reproduced(mini):
    """Each case reproduced as `mnistlab reproduce TABLE --seeds 3` writes it: {case: {"json", "config_hash", "dataset", ...}}."""
    rng = np.random.default_rng(7)
    found = {}
    for name, which, epochs, level in CASES:
        dataset = datasets(mini)[which]
        jobs = reproduce.plan_table(TABLE, dataset, seeds=3, choice=reproduce.TableChoice(epochs=epochs, backend="jax"))
        with Store() as index:
            for job in jobs:
                value = level + 0.001 * (job.config.seed - 1)  # 3 seeds, 0.1 points apart
                record_run(
                    index,
                    job.config,
                    job.preset,
                    dataset,
                    value,
                    made_up_history(rng, epochs, value - 0.05),
                    made_up_predictions(rng, dataset.y_test, value),
                    group=f"{TABLE}-{name}",
                )
            rows = tables.summarize_rows(TABLE, jobs, index)
        stem, context = tables.table_naming(TABLE, dataset.name, 3, epochs)
        meta = {"dataset": dataset.name, "dataset_hash": dataset.content_hash(), "seeds": 3, "epochs": epochs}
        written = tables.write_outputs(paths.tables_dir() / name, stem, TABLE, rows, context, meta)
        job = next(job for job in jobs if job.preset == ROW)
        found[name] = {
            **written,
            "rows": rows,
            "config_hash": job.config.config_hash(),
            "dataset": dataset.name,
            "dataset_hash": dataset.content_hash(),
        }
    return found


def test_the_rule_itself(mini):
    """`book.comparable` on store-like rows: the book's data, its setup, its epochs and 3 seeds, and nothing less."""
    preset = presets.get(ROW)
    config = preset.build_config()

    def runs(count=3, dataset="mnist", hashes=("h",), **changes):
        changed = config.replace(**changes)
        return [
            {
                "dataset": dataset,
                "dataset_hash": hashes[seed % len(hashes)],
                "config_hash": changed.config_hash(),
                "seed": seed,
                "config_json": json.dumps(changed.to_dict()),
            }
            for seed in range(count)
        ]

    assert book.comparable(runs(), ROW) == (True, f"MNIST as in the book ({BOOK_EPOCHS} epochs), 3 seeds")
    assert book.comparable(runs(), preset)[0] is True  # a Preset or its name
    assert book.comparable(runs(2), ROW) == (
        False,
        f"book: MNIST, {BOOK_EPOCHS} epochs; this: MNIST, {BOOK_EPOCHS} epochs, 2 seeds (a verdict needs 3)",
    )
    assert book.comparable(runs(limit=600), ROW) == (
        False,
        f"book: MNIST, {BOOK_EPOCHS} epochs; this: MNIST, {BOOK_EPOCHS} epochs, first 600 images",
    )
    assert book.comparable(runs(dropout_rate=0.4), ROW) == (
        False,
        f"book: MNIST, {BOOK_EPOCHS} epochs; this: MNIST, {BOOK_EPOCHS} epochs, +dropout_rate=0.4",
    )
    assert book.comparable(runs(epochs=6, dataset="mnist-mini"), ROW) == (
        False,
        f"book: MNIST, {BOOK_EPOCHS} epochs; this: mnist-mini, 6 epochs",
    )
    # A path, even to a file called mnist.npz, is recorded as the path: not the official file.
    assert book.comparable(runs(dataset="/data/mnist.npz"), ROW) == (
        False,
        f"book: MNIST, {BOOK_EPOCHS} epochs; this: mnist.npz, {BOOK_EPOCHS} epochs",
    )
    assert book.comparable(runs(hashes=("a", "b")), ROW)[0] is False  # "mnist" of two contents is not one dataset
    # A seed counts once: three runs of one seed are one seed.
    assert book.comparable([{**run, "seed": 0} for run in runs()], ROW)[0] is False
    assert book.comparable(runs(), "no-such-preset") == (False, "the book gives no figure for this setup")
    assert book.book_figure(ROW) == (99.4, "Table 1.4.1 row 3") and book.book_figure("listing-1.3.2") == (
        98.5,
        "Listing 1.3.2",
    )
    assert book.BOOK_TRAINING_IMAGES == 60_000


def _row3(rows):
    return next(row for row in rows if row["row"] == 3)


def test_reproduced_tables_and_their_exports_hold_only_the_book_setup_against_the_book(reproduced, capsys, tmp_path):
    for name, found in reproduced.items():
        held = name == "mnist-book"
        row = _row3(found["rows"])
        assert row["comparable"] is held and row["book_test_in_ci"] is (True if held else None), name
        assert row["comparable_reason"] == (
            f"MNIST as in the book ({BOOK_EPOCHS} epochs), 3 seeds" if held else REASONS[name]
        )
        # The markdown `reproduce` prints, and its CSV.
        markdown = found["md"].read_text()
        assert ("Not held against the book" in markdown) is not held and (REASONS.get(name, "") in markdown)
        with open(found["csv"], newline="") as handle:
            written = {int(record["row"]): record for record in csv.DictReader(handle)}
        assert (written[3]["book test in CI"], written[3]["comparable"]) == (("yes", "yes") if held else ("n/a", "no"))
        assert written[3]["comparable reason"] == ("" if held else REASONS[name])
        # `mnistlab report TABLE --format csv|latex|json` (and the HTML table), from the same file.
        exported = {}
        for format in ("csv", "latex", "json"):
            result = run_main(capsys, "report", TABLE, "--format", format, "--table-json", found["json"])
            assert result.returncode == 0, result.stderr
            exported[format] = result.stdout
        data = json.loads(exported["json"])
        cells = _row3(data["rows"])
        assert (cells["comparable"], cells["comparable_reason"], cells["book_test_in_ci"]) == (
            held,
            row["comparable_reason"],
            True if held else None,
        )
        verdict = "book inside CI" if held else f"not comparable: {REASONS[name]}"
        assert cells["cells"]["verdict"] == verdict and cells["cells"]["book test"] == "99.4"
        csv_row3 = next(record for record in csv.DictReader(io.StringIO(exported["csv"])) if record["row"] == "3")
        assert (csv_row3["comparable"], csv_row3["verdict"]) == ("yes" if held else "no", verdict)
        assert tables.latex_escape(verdict) in exported["latex"] and "Comparable" in exported["latex"]
        if not held:  # no row of a table off the book's data reads "outside" (every row's interval is below its figure)
            assert "outside" not in exported["latex"] and all(
                record["verdict"].startswith("not comparable: ") for record in data["rows"]
            )
        page = tables.table_export(tables.table_data(TABLE, table_json=found["json"]), "html")
        assert ("class='not-comparable'" in page) is not held
    # A table file written before the rule (no "comparable" in its rows) is read by the same rule.
    old = json.loads(reproduced["fashion"]["json"].read_text())
    for row in old["rows"]:
        for key in ("comparable", "comparable_reason", "repeats"):
            row.pop(key)
        row["book_test_in_ci"] = False  # what the old code wrote
    (tmp_path / "old.json").write_text(json.dumps(old))
    again = _row3(tables.table_data(TABLE, table_json=tmp_path / "old.json")["rows"])
    assert (again["comparable"], again["comparable_reason"], again["book_test_in_ci"]) == (
        False,
        REASONS["fashion"],
        None,
    )


def test_the_table_report_greys_the_book_figure_where_it_is_not_held_against_the_runs(reproduced, capsys, tmp_path):
    for name in ("mini", "mnist-book"):
        out = tmp_path / f"{name}.html"
        result = run_main(capsys, "report", TABLE, "--out", out, "--table-json", reproduced[name]["json"])
        assert result.returncode == 0, result.stderr
        text = out.read_text()
        if name == "mini":
            assert (
                "class='not-comparable'" in text
                and f"not comparable: {REASONS['mini']}" in text
                and "book outside CI" not in text
            )
        else:
            assert "class='not-comparable'" not in text and "book inside CI" in text


def test_runs_compare_and_the_compare_report_say_the_verdict_only_for_the_book_setup(reproduced, capsys, tmp_path):
    mnist = reproduced["mnist-book"]
    for name, found in reproduced.items():
        # Each side by its config hash (a preset name matches the setup on every dataset) on the case's dataset.
        other = _hash_of("table-1.4.1-row4", found)
        result = run_main(
            capsys, "runs", "compare", found["config_hash"], other, "--dataset", found["dataset"], "--json"
        )
        assert result.returncode == 0, result.stderr
        answer = json.loads(result.stdout)
        held = name == "mnist-book"
        assert answer["book_a"]["comparable"] is held and answer["book_a"]["inside"] is (True if held else None), name
        assert answer["book_a"]["reason"] == (
            f"MNIST as in the book ({BOOK_EPOCHS} epochs), 3 seeds" if held else REASONS[name]
        )
        assert answer["book_a"]["book_test"] == 99.4 and answer["n_a"] == 3
        text = run_main(capsys, "runs", "compare", found["config_hash"], other, "--dataset", found["dataset"]).stdout
        first = text.splitlines()[0]
        assert (
            first.endswith("book 99.4% (Table 1.4.1 row 3): inside the interval")
            if held
            else first.endswith(f"book 99.4% (Table 1.4.1 row 3): not comparable: {REASONS[name]}")
        ), text
        assert "outside" not in text
    # Several setups (bands.compare_setups): the text, the JSON, and the HTML report.
    short = reproduced["mnist-short"]
    text = run_main(
        capsys,
        "runs",
        "compare",
        mnist["config_hash"],
        short["config_hash"],
        _hash_of("table-1.4.1-row1", mnist),
        "--dataset",
        "mnist",
    ).stdout
    lines = text.splitlines()
    assert lines[0].endswith("inside the interval") and lines[1].endswith(
        f"not comparable: {REASONS['mnist-short']}"
    ), text
    answer = json.loads(
        run_main(
            capsys,
            "runs",
            "compare",
            mnist["config_hash"],
            short["config_hash"],
            _hash_of("table-1.4.1-row1", mnist),
            "--dataset",
            "mnist",
            "--json",
        ).stdout
    )
    # Row 1 on MNIST as in the book: held against its 98.5%, which lies outside [99.15, 99.65].
    assert [(setup["book_comparable"], setup["book_test_in_ci"]) for setup in answer["setups"]] == [
        (True, True),
        (False, None),
        (True, False),
    ]
    assert lines[2].endswith("book 98.5% (Table 1.4.1 row 1): outside the interval"), text
    out = tmp_path / "compare.html"
    assert (
        run_main(
            capsys, "report", mnist["config_hash"], short["config_hash"], "--dataset", "mnist", "--out", out
        ).returncode
        == 0
    )
    page = out.read_text()
    assert f"not comparable: {REASONS['mnist-short']}" in page and "class='not-comparable'" in page


def _hash_of(preset, found):
    return presets.get(preset).build_config(epochs=json.loads(found["json"].read_text())["epochs"]).config_hash()


def test_the_labs_runs_and_compare_views_say_the_verdict_only_for_the_book_setup(reproduced):
    lab = lab_lib.Lab(paths.store_path(), workers=0)
    with TestClient(lab_lib.create_app(lab), base_url="http://127.0.0.1:8100") as client:
        groups = client.get("/api/runs").json()["groups"]
        for name, found in reproduced.items():
            held = name == "mnist-book"
            [group] = [
                group
                for group in groups
                if group["config_hash"] == found["config_hash"]
                and group["key"].split(":")[1] == found["dataset_hash"][:16]
                and group["preset"] == ROW
            ]
            assert group["n"] == 3 and group["book_test"] == 99.4 and group["book_where"] == "Table 1.4.1 row 3"
            assert (group["book_comparable"], group["book_in_interval"]) == ((True, True) if held else (False, None)), (
                name
            )
            assert group["book_reason"] == (
                f"MNIST as in the book ({BOOK_EPOCHS} epochs), 3 seeds" if held else REASONS[name]
            )
            compared = client.get(
                "/api/compare", params=[("setup", found["config_hash"]), ("dataset", found["dataset"])]
            ).json()
            [setup] = compared["setups"]
            assert (setup["book_comparable"], setup["book_test_in_ci"], setup["book_reason"]) == (
                held,
                True if held else None,
                group["book_reason"],
            )
        # No row of a run off the book's data says "outside": the mnist-mini runs of the README's tour read the figure and why.
        assert all(
            group["book_in_interval"] is None
            for group in groups
            if group["dataset"] != "mnist"
            or group["config_hash"] != _hash_of(group["preset"], reproduced["mnist-book"])
        )

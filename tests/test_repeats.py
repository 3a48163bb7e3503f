"""A seed counts once (issue 27): a forced repeat of a setup and seed (`bash scripts/run-main.sh`, the tour's --force)
is a second finished run of one seed, never a second seed. Every statistic counts the newest finished run per
(setup, seed, backend, dataset) (`seeds.select_counted`) and says the repeats it set aside, and whether they agreed:
`runs compare`, `bands.compare_setups`, the reproduced tables, the atlas, and the lab's runs and compare views.

The store: setup A with seed 0 trained three times (0.90, 0.91, then 0.92: the newest counts) and seeds 1 and 2
once; setup B with seed 0 trained twice, deterministically, and seeds 1 and 2 once.
"""

import json
import pathlib
import sqlite3

import numpy as np
import pytest
from fastapi.testclient import TestClient

from conftest import made_up_history, made_up_predictions, record_run, run_main
from mnistlab.analysis import bands, pages, seeds, tables
from mnistlab.core import paths, stats
from mnistlab.jobs import reproduce
from mnistlab.record.store import Store
from mnistlab.web import lab as lab_lib

TABLE = "table-1.4.1"
A, B = f"{TABLE}-row3", f"{TABLE}-row4"
# (preset, seed, test accuracy), in the order they finished.
RUNS = (
    (A, 0, 0.90),
    (A, 1, 0.93),
    (A, 0, 0.91),
    (A, 2, 0.94),
    (A, 0, 0.92),
    (B, 0, 0.80),
    (B, 1, 0.82),
    (B, 0, 0.80),
    (B, 2, 0.81),
)
COUNTED_A = [92.0, 93.0, 94.0]  # in %: seed 0's newest run, seeds 1 and 2
COUNTED_B = [80.0, 82.0, 81.0]


@pytest.fixture
def store_with_repeats(mini):
    """RUNS recorded as `mnistlab train` (--force for a repeat) records them; the jobs of a reproduction of both rows."""
    rng = np.random.default_rng(4)
    jobs = reproduce.plan_table(
        TABLE, mini, seeds=3, choice=reproduce.TableChoice(epochs=2, backend="jax", rows=[3, 4])
    )
    by_setup = {(job.preset, job.config.seed): job for job in jobs}
    with Store() as index:
        for preset, seed, value in RUNS:
            job = by_setup[(preset, seed)]
            record_run(
                index,
                job.config,
                preset,
                mini,
                value,
                made_up_history(rng, 2, value - 0.05),
                made_up_predictions(rng, mini.y_test, value),
                group=TABLE,
            )
        assert len(index.runs(status="done")) == len(RUNS)  # every one finished; the store keyed the repeats KEY#ID
        assert sum("#" in run["run_key"] for run in index.runs()) == 3
    return jobs


def test_the_newest_run_of_a_seed_counts_and_the_others_are_repeats(store_with_repeats):
    with Store() as index:
        rows = index.runs(status="done", preset=A)
    counted, repeats = seeds.select_counted(rows)
    # In the order they came (by id): seeds 1 and 2, then seed 0's newest run.
    assert [run["seed"] for run in counted] == [1, 2, 0] and len(repeats) == 2
    assert [100 * run["test_accuracy"] for run in sorted(counted, key=lambda run: run["seed"])] == pytest.approx(
        COUNTED_A
    )
    newest = max((run for run in rows if run["seed"] == 0), key=lambda run: run["finished_at"])
    assert all(repeat["repeat_of"] == newest["id"] for repeat in repeats)
    summary = seeds.repeats_summary(counted, repeats)
    assert (summary["count"], summary["seeds"], summary["agreement"]) == (2, [0], "differ")
    assert (
        summary["largest_difference"] == pytest.approx(2.0)
        and summary["words"] == "2 repeats of seed 0 set aside: they differ from the counted runs by up to 2.00 points"
    )
    with Store() as index:
        deterministic = seeds.repeats_summary(*seeds.select_counted(index.runs(status="done", preset=B)))
    assert (
        deterministic["agreement"] == "deterministic"
        and deterministic["words"] == "1 repeat of seed 0 set aside: deterministic, the same test accuracy"
    )
    assert seeds.repeats_summary(counted, []) == {
        "count": 0,
        "seeds": [],
        "agreement": None,
        "largest_difference": None,
        "words": "",
    }


def test_runs_compare_counts_three_seeds_not_five(store_with_repeats, capsys):
    answer = json.loads(run_main(capsys, "runs", "compare", A, B, "--json").stdout)
    expected = stats.compare(COUNTED_A, COUNTED_B)
    assert (answer["n_a"], answer["n_b"]) == (3, 3)
    assert (
        answer["mean_a"] == pytest.approx(np.mean(COUNTED_A))
        and answer["cohens_d"] == pytest.approx(expected["cohens_d"])
        and answer["p_value"] == pytest.approx(expected["p_value"])
    )
    assert answer["repeats_a"]["count"] == 2 and answer["repeats_a"]["agreement"] == "differ"
    assert answer["repeats_b"]["count"] == 1 and answer["repeats_b"]["agreement"] == "deterministic"
    text = run_main(capsys, "runs", "compare", A, B).stdout
    assert (
        "over 3 seeds (2 repeats of seed 0 set aside: they differ from the counted runs by up to 2.00 points)" in text
    )
    assert (
        "over 3 seeds (1 repeat of seed 0 set aside: deterministic, the same test accuracy)" in text
        and "over 5" not in text
    )


def test_compare_setups_and_the_atlas_count_each_seed_once(store_with_repeats, capsys):
    result = bands.compare_setups([A, B])
    a, b = result["setups"]
    assert (a["test"]["n"], b["test"]["n"]) == (3, 3) and sorted(a["seeds"]) == [0, 1, 2] and len(a["run_dirs"]) == 3
    assert (
        a["test"]["mean"] == pytest.approx(np.mean(COUNTED_A))
        and a["repeats"]["count"] == 2
        and b["repeats"]["agreement"] == "deterministic"
    )
    assert result["comparisons"][0]["n_a"] == 3 and result["comparisons"][0]["cohens_d"] == pytest.approx(
        stats.compare(COUNTED_A, COUNTED_B)["cohens_d"]
    )
    # The bands are over the counted runs' histories: 3 a epoch.
    assert all(row["n"] == 3 for row in a["bands"]["val_accuracy"])
    atlas = json.loads(run_main(capsys, "runs", "disagree", A, "--json").stdout)
    assert len(atlas["runs"]) == 3


def test_a_reproduced_table_row_is_three_seeds_with_its_repeats_said(store_with_repeats):
    with Store() as index:
        rows = tables.summarize_rows(TABLE, store_with_repeats, index)
    row3 = next(row for row in rows if row["row"] == 3)
    assert (row3["runs"], row3["planned"], row3["test"]["n"]) == (3, 3, 3)
    assert row3["test"]["mean"] == pytest.approx(np.mean(COUNTED_A))  # seed 0's newest run, not its first
    assert row3["repeats"]["count"] == 2 and row3["repeats"]["agreement"] == "differ"
    assert "Repeats of a seed count once (the newest run): row 3: 2 repeats of seed 0" in tables.markdown(
        TABLE, rows, "test"
    )


def test_the_labs_runs_view_folds_repeats_as_repeats_and_compare_counts_seeds(store_with_repeats):
    lab = lab_lib.Lab(paths.store_path(), workers=0)
    with TestClient(lab_lib.create_app(lab), base_url="http://127.0.0.1:8100") as client:
        groups = {group["preset"]: group for group in client.get("/api/runs").json()["groups"]}
        a = groups[A]
        assert (
            (a["n"], a["runs"]) == (3, 5)
            and a["test"]["n"] == 3
            and a["test"]["mean"] == pytest.approx(np.mean(COUNTED_A))
        )
        assert a["repeats"]["count"] == 2 and a["repeats"]["agreement"] == "differ" and a["seeds"] == [0, 1, 2]
        repeats = [member for member in a["members"] if member["repeat_of"] is not None]
        counted = [member for member in a["members"] if member["repeat_of"] is None]
        assert [member["seed"] for member in repeats] == [0, 0] and sorted(member["seed"] for member in counted) == [
            0,
            1,
            2,
        ]
        assert {member["repeat_of"] for member in repeats} == {
            next(member["run_id"] for member in counted if member["seed"] == 0)
        }
        assert (
            groups[B]["n"] == 3
            and groups[B]["repeats"]["agreement"] == "deterministic"
            and groups[B]["test"]["ci_low"] < groups[B]["test"]["ci_high"]
        )
        # A repeat's own page says which run of its seed counts; the counted run's lists its repeats as such.
        counted_id = next(member["run_id"] for member in counted if member["seed"] == 0)
        repeat = client.get(f"/api/runs/{repeats[0]['run_id']}").json()
        assert repeat["repeat_of"] == counted_id
        page = client.get(f"/api/runs/{counted_id}").json()
        assert page["repeat_of"] is None and sorted(other["repeat_of"] == counted_id for other in page["siblings"]) == [
            False,
            False,
            True,
            True,
        ]
        compared = client.get("/api/compare", params=[("setup", A), ("setup", B)]).json()
        assert [setup["test"]["n"] for setup in compared["setups"]] == [3, 3] and compared["comparisons"][0]["n_a"] == 3
        assert [setup["repeats"]["count"] for setup in compared["setups"]] == [2, 1]


def test_the_server_chooses_among_the_counted_runs(store_with_repeats):
    """`serve` with no run named takes per family the best validation run: a repeat of a seed is no second
    candidate, even where it validated best (it would be chosen on noise, not on its setup)."""
    with Store() as index:
        servable = index.runs(status="done")
    for run in servable:  # constructed runs keep no model: give each one, so that any could be chosen
        (pathlib.Path(run["run_dir"]) / "model.keras").write_bytes(b"")
    # The older runs of a repeated seed (recorded first: lower ids) validated best.
    older = [
        run["id"]
        for preset, seed in ((A, 0), (B, 0))
        for run in sorted(
            (run for run in servable if (run["preset"], run["seed"]) == (preset, seed)), key=lambda run: run["id"]
        )[:-1]
    ]
    assert len(older) == 3
    with sqlite3.connect(paths.store_path()) as db:
        db.executemany("UPDATE runs SET val_accuracy = 0.999 WHERE id = ?", [(run_id,) for run_id in older])
    [chosen] = pages.choose_runs(page="mnist-mini")
    assert chosen["run_dir"] not in {run["run_dir"] for run in servable if run["id"] in older}

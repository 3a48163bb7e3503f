"""The run directory is the record: delete the index, rebuild it from the directories, and nothing changes."""

import json
import pathlib

import numpy as np

from conftest import made_up_dynamics, run_main
from mnistlab.analysis import tables
from mnistlab.core import paths
from mnistlab.jobs import reproduce
from mnistlab.outputs import report
from mnistlab.record import rundir
from mnistlab.record.store import Store

TABLE = "table-1.4.1"


def _record_runs(dataset, store_path):
    """Runs written by the real writer (rundir.Recorder with the store as its index), with made-up figures."""
    jobs = reproduce.plan_table(TABLE, dataset, seeds=3, choice=reproduce.TableChoice(epochs=2))
    with Store(store_path) as index:
        for number, job in enumerate(jobs):
            recorder = rundir.Recorder(rundir.new_path(job.config, job.preset), index=index, group=TABLE)
            recorder.start(job.config, job.preset, dataset.name, job.dataset_hash)
            for epoch in (1, 2):
                accuracy = 0.5 + 0.01 * number + 0.1 * epoch
                recorder.epoch(
                    {
                        "epoch": epoch,
                        "loss": 1 / epoch,
                        "accuracy": accuracy,
                        "val_loss": 1.1 / epoch,
                        "val_accuracy": accuracy - 0.02,
                        "seconds": 0.5,
                    }
                )
                if number == 0:  # one run with its dynamics (dynamics.json), read after the rebuild as before
                    recorder.dynamics(made_up_dynamics(np.random.default_rng(0), epoch))
            if number == 5:
                recorder.fail("failed", "ValueError: made up for the test")
                continue
            # Test predictions too (predictions.npz, one of RECORD_FILES): the atlas in the report reads them.
            predicted = np.where(
                np.arange(len(dataset.y_test)) % (number + 2) == 0, (dataset.y_test + 1) % 10, dataset.y_test
            )
            predictions = {
                "predicted": predicted,
                "true_probability": np.full(len(predicted), 0.5, np.float16),
                "labels": dataset.y_test,
            }
            recorder.finish(
                {
                    "status": "done",
                    "epochs": 2,
                    "test_accuracy": 0.7 + 0.005 * number,
                    "train_accuracy": 0.72,
                    "val_accuracy": 0.69,
                    "test_loss": 0.3,
                    "seconds": 1.0 + number,
                    "mean_epoch_seconds": 0.5,
                    "params": 80266,
                },
                None,
                predictions,
            )
        # A forced repeat of a finished run: recorded as a done repeat, and so again after the rebuild (the newest
        # run of its seed, it is the one the table counts: seeds.select_counted).
        job = jobs[0]
        recorder = rundir.Recorder(rundir.new_path(job.config, job.preset), index=index, group=TABLE)
        recorder.start(job.config, job.preset, dataset.name, job.dataset_hash)
        predictions = {
            "predicted": dataset.y_test,
            "true_probability": np.full(len(dataset.y_test), 0.5, np.float16),
            "labels": dataset.y_test,
        }
        recorder.finish({"status": "done", "epochs": 2, "test_accuracy": 0.71, "seconds": 2.0}, None, predictions)
    return jobs


def _views(capsys, jobs, store_path, tmp_path, name):
    listing = run_main(capsys, "runs", "list", "--store", store_path)
    assert listing.returncode == 0, listing.stderr
    with Store(store_path) as store:
        rows = tables.summarize_rows(TABLE, jobs, store)
        records = {run["id"]: store.show(run["id"]) for run in store.runs()}
    table_json = tmp_path / f"{name}.json"
    table_json.write_text(json.dumps({"rows": rows, "context": "made-up runs"}))
    out = tmp_path / f"{name}.html"
    report.table_report(TABLE, out, store_path=store_path, table_json=table_json)
    html = out.read_text().replace(f"{name}_files", "FILES")
    first = min(records)
    dynamics = run_main(capsys, "dynamics", str(first), "--store", store_path, "--json")
    assert dynamics.returncode == 0 and json.loads(dynamics.stdout)[0]["epochs"], dynamics.stdout + dynamics.stderr
    return listing.stdout, rows, records, html, dynamics.stdout


def test_deleting_the_index_and_reindexing_changes_nothing(capsys, mini, tmp_path):
    store_path = paths.store_path()
    jobs = _record_runs(mini, store_path)
    before = _views(capsys, jobs, store_path, tmp_path, "before")
    assert before[0].count(" done ") == 12 and before[0].count(" failed ") == 1  # 11 of the table, and the repeat
    assert sum(row["runs"] for row in before[1]) == 11

    for suffix in ("", "-wal", "-shm"):
        store_path.with_name(store_path.name + suffix).unlink(missing_ok=True)
    result = run_main(capsys, "runs", "reindex", "--store", store_path)
    assert result.returncode == 0 and "Indexed 13 run directories" in result.stdout, result.stdout + result.stderr

    assert all((pathlib.Path(row["run_dirs"][0]) / rundir.PREDICTIONS_FILE).exists() for row in before[1])
    assert "The digits the seeds disagree on" in before[3]
    assert "<th></th>" not in before[3]  # one backend: the atlas table has no column without a header

    after = _views(capsys, jobs, store_path, tmp_path, "after")
    assert after[0] == before[0]  # runs list
    assert after[1] == before[1]  # the table, row by row, with its run ids and directories
    assert after[2] == before[2]  # every run's record: host, pid, times, status, metrics, epochs, repeat key
    assert after[3] == before[3]  # the report
    assert after[4] == before[4]  # a run's dynamics, as `mnistlab dynamics RUN --json` reads them


def test_a_run_directory_is_complete_before_the_index_hears_of_it(mini, tmp_path):
    """An index that fails when told the end leaves a whole directory that reindex brings back."""

    class BrokenIndex:
        def start_run(self, *args, **kwargs):
            return 7

        def finish_run(self, *args, **kwargs):
            raise OSError("disk full")

        def done_run(self, key):
            return None

    jobs = reproduce.plan_table(TABLE, mini, seeds=1, choice=reproduce.TableChoice(epochs=1))
    recorder = rundir.Recorder(tmp_path / "runs" / "one", index=BrokenIndex())
    recorder.start(jobs[0].config, jobs[0].preset, mini.name, jobs[0].dataset_hash)
    recorder.epoch({"epoch": 1, "loss": 1.0, "accuracy": 0.5, "val_loss": 1.0, "val_accuracy": 0.5, "seconds": 0.1})
    try:
        recorder.finish({"status": "done", "epochs": 1, "test_accuracy": 0.6}, None)
    except OSError:
        pass
    metrics = rundir.read_metrics(tmp_path / "runs" / "one")
    assert metrics["status"] == "done" and metrics["run_id"] == 7
    with Store(tmp_path / "new.db") as store:
        assert store.reindex(tmp_path / "runs") == 1
        assert store.get(7)["status"] == "done" and store.get(7)["test_accuracy"] == 0.6


def test_a_metric_of_an_unknown_type_is_refused_by_its_key(tmp_path, mini):
    import numpy as np
    import pytest

    from mnistlab.core import fileio

    # NumPy's numbers are numbers: they are written as such, not as their repr.
    assert (
        fileio.dumps({"accuracy": np.float32(0.5), "counts": np.arange(3)}) == '{"accuracy": 0.5, "counts": [0, 1, 2]}'
    )
    with pytest.raises(TypeError, match=r"metrics\.params is a builtins\.object"):
        fileio.dumps({"status": "done", "params": object()}, "metrics")
    jobs = reproduce.plan_table(TABLE, mini, seeds=1, choice=reproduce.TableChoice(epochs=1))
    recorder = rundir.Recorder(tmp_path / "run")
    recorder.start(jobs[0].config, jobs[0].preset, mini.name, jobs[0].dataset_hash)
    with pytest.raises(TypeError, match=r"metrics\.timings\[0\]"):
        recorder.finish({"status": "done", "timings": [{1, 2}]}, None)
    assert rundir.read_metrics(tmp_path / "run") is None  # nothing half-written: the run reads unfinished

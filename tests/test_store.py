"""The run store: schema, keys, reaping, and consistency when a writer is killed mid-write."""

import json
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from mnistlab.core.config import Config
from mnistlab.core.errors import MnistlabError
from mnistlab.record import store as store_lib
from mnistlab.record.store import Store

HASH = "ab" * 32


def test_schema_and_wal(tmp_path):
    with Store(tmp_path / "runs.db") as store:
        assert store.schema_version == store_lib.SCHEMA_VERSION
        assert store._connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.integrity_check() == "ok"


def test_run_lifecycle(tmp_path):
    with Store(tmp_path / "runs.db") as store:
        config = Config(seed=3, dataset="mnist-mini", backend="jax")
        run_id = store.start_run(config, HASH, preset="listing-1.3.2", group="g")
        assert store.get(run_id)["status"] == "running"
        epoch = {"epoch": 1, "loss": 0.5, "accuracy": 0.8, "val_loss": 0.4, "val_accuracy": 0.85, "seconds": 1.0}
        assert (
            store.finish_run(run_id, "done", {"test_accuracy": 0.9, "train_accuracy": 0.8}, history=[epoch]) == "done"
        )
        key = config.run_key(HASH)
        assert store.done_run(key)["id"] == run_id
        assert [e["epoch"] for e in store.epochs(run_id)] == [1]
        # A second finished run of the same key is a done repeat, never a failure;
        # the key's run stays the first one.
        again = store.start_run(config, HASH)
        assert store.get(again)["attempt"] == 2
        assert store.finish_run(again, "done", {"test_accuracy": 0.9}) == "done"
        assert store.count("done") == 2 and store.done_run(key)["id"] == run_id
        assert store.get(again)["run_key"] == f"{key}#{again}"
        with pytest.raises(sqlite3.IntegrityError):
            store._connection.execute("UPDATE runs SET run_key = ? WHERE id = ?", (key, again))


def test_unknown_run_and_newer_schema(tmp_path):
    path = tmp_path / "runs.db"
    with Store(path) as store:
        with pytest.raises(MnistlabError, match="no run with id 42"):
            store.get(42)
        store._connection.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(MnistlabError, match="newer mnistlab"):
        Store(path)


def test_migrates_a_version_zero_file(tmp_path):
    path = tmp_path / "old.db"
    sqlite3.connect(path).execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)").connection.commit()
    with Store(path) as store:
        assert store.schema_version == store_lib.SCHEMA_VERSION
        assert store.count() == 0


def test_a_store_of_the_first_schema_migrates_and_keeps_its_runs(tmp_path):
    """A runs.db written by the first schema (built here from migrations/0001_*.py): it opens, migrates to the
    present schema (queued runs, the family column) and keeps its rows, ids, epochs and the next id."""
    from mnistlab.record import migrations

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        migrations.get(1).apply(db)
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        for run_id, family, status in ((3, "cnn", "done"), (7, "rnn", "interrupted")):
            db.execute(
                "INSERT INTO runs (id, run_key, config_hash, model, config_json, dataset, dataset_hash, backend, seed,"
                " status, started_at, updated_at, test_accuracy) VALUES (?, ?, 'h', ?, ?, 'mnist-mini', ?, 'jax', 0,"
                " ?, 1.0, 2.0, 0.5)",
                (
                    run_id,
                    f"h:{HASH[:16]}:jax:{run_id}",
                    family,
                    json.dumps(Config(family=family).to_dict()),
                    HASH,
                    status,
                ),
            )
        db.execute("INSERT INTO epochs (run_id, epoch, loss, accuracy) VALUES (3, 1, 0.5, 0.8)")
    db.close()
    with Store(path) as store:
        assert store.schema_version == store_lib.SCHEMA_VERSION >= 3
        assert [(run["id"], run["family"], run["status"]) for run in store.runs()] == [
            (3, "cnn", "done"),
            (7, "rnn", "interrupted"),
        ]
        assert "model" not in store.get(3) and store.get(3)["test_accuracy"] == 0.5
        assert [(row["epoch"], row["loss"]) for row in store.epochs(3)] == [(1, 0.5)]
        assert [run["id"] for run in store.summaries(store_lib.RunFilter(family="rnn"))] == [7]
        queued = store.queue_run(Config(seed=1), HASH)  # a status the first schema did not have
        assert queued["run_id"] == 8 and store.get(8)["status"] == "queued"  # ids go on after the old ones


def test_not_a_database(tmp_path):
    path = tmp_path / "runs.db"
    path.write_bytes(b"x" * 4096)
    with pytest.raises(MnistlabError, match="not a usable run store"):
        Store(path)


def test_reap_marks_dead_processes_interrupted(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with Store(tmp_path / "runs.db") as store:
        alive_id = store.start_run(Config(), HASH)  # this process: alive
        dead_id = store.start_run(Config(seed=1), HASH, pid=dead.pid)
        assert store.reap() == 1
        assert store.get(dead_id)["status"] == "interrupted"
        assert store.get(alive_id)["status"] == "running"


WRITER = textwrap.dedent(
    """
    import sys
    from mnistlab.core.config import Config
    from mnistlab.record.store import Store
    store = Store(sys.argv[1])
    seed = 0
    while True:
        run_id = store.start_run(Config(seed=seed), "ab" * 32)
        history = [{"epoch": epoch, "loss": 1.0 / epoch, "accuracy": 0.5} for epoch in range(1, 6)]
        store.finish_run(run_id, "done", {"test_accuracy": 0.9, "train_accuracy": 0.8}, history=history)
        seed += 1
        if seed == 3:
            print("ready", flush=True)
    """
)


@pytest.mark.parametrize("delay", [0.05, 0.21, 0.5])
def test_kill_9_mid_write_leaves_the_store_consistent(tmp_path, delay):
    path = tmp_path / "runs.db"
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True) for _ in range(2)
    ]
    try:
        for writer in writers:
            assert writer.stdout.readline().strip() == "ready"
        time.sleep(delay)
    finally:
        # Always, even when the test fails: the writers loop forever.
        for writer in writers:
            writer.kill()
            writer.wait()
    with Store(path) as store:
        assert store.integrity_check() == "ok"
        reaped = store.reap()
        assert store.count("running") == 0
        assert store.count("interrupted") == reaped <= 2
        for run in store.runs(status="done"):
            assert len(store.epochs(run["id"])) == 5
        # Two writers with the same seeds: one done run per key, repeats keyed apart.
        keys = [run["run_key"] for run in store.runs(status="done")]
        assert len(keys) == len(set(keys))


def hold_write_lock_script():
    """The child that holds a write transaction: benchmarks/store_read.py's own (one script for both)."""
    from conftest import load_script

    return load_script("benchmarks/store_read.py").HOLD


def test_a_reader_never_waits_for_a_writer(tmp_path):
    """Opening and reading an up-to-date store takes no write lock: it answers while another process holds one.

    The writer holds its lock far longer (30 s) than a read may take; the read is checked against the
    writer still holding it when the read is done, not against a clock.
    """
    path = tmp_path / "runs.db"
    with Store(path) as store:
        run_id = store.start_run(Config(seed=1), HASH)
    writer = subprocess.Popen(
        [sys.executable, "-c", hold_write_lock_script(), str(path), "30"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout.readline().strip() == "holding"
        with Store(path) as store:
            assert store.get(run_id)["status"] == "running"
            assert [run["id"] for run in store.runs()] == [run_id]
        assert writer.poll() is None  # the read was done while the writer still held its lock
    finally:
        writer.kill()
        writer.wait()


def test_reindex_records_where_each_run_directory_really_is(tmp_path):
    from mnistlab.record import rundir

    runs = tmp_path / "runs"
    directory = runs / "moved-copy"
    directory.mkdir(parents=True)
    config = Config(seed=2)
    (directory / rundir.CONFIG_FILE).write_text(json.dumps({"preset": None, **config.to_dict()}))
    metrics = {"status": "done", "run_id": 7, "test_accuracy": 0.5, "run_dir": "/etc", "dataset_hash": HASH}
    (directory / rundir.METRICS_FILE).write_text(json.dumps(metrics))
    with Store(runs / "runs.db") as store:
        assert store.reindex(runs) == 1
        assert store.get(7)["run_dir"] == str(directory.resolve())
        assert store.show(7)["metrics"]["run_dir"] == str(directory.resolve())


def test_reindex_is_refused_while_a_run_is_training(tmp_path):
    with Store(tmp_path / "runs.db") as store:
        run_id = store.start_run(Config(), HASH)  # running, in this (living) process
        with pytest.raises(MnistlabError, match=f"runs {run_id} .* still training"):
            store.reindex(tmp_path)
        assert store.get(run_id)["status"] == "running"  # nothing changed
        store.finish_run(run_id, "done", {"test_accuracy": 0.5})
        store.reindex(tmp_path)

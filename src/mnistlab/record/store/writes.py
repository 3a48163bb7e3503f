"""Writing runs: a run starts `running`, ends `done`, `failed`, `diverged` or `interrupted`; the dead are reaped.

The key of a run is (config hash, dataset hash, backend, seed); a partial unique index allows at most one `done`
run per key, which is the run a resumed sweep finds and skips. A second finished run of the same key (a forced
repeat, or two sweeps racing) is recorded as done too, keyed as a repeat (`KEY#ID`), never as a failure.
"""

import json
import time

from mnistlab.core import fileio
from mnistlab.core.config import Config
from mnistlab.core.events import FINISHED, STORED_STATUSES, RunStatus
from mnistlab.record import rundir
from mnistlab.record.store import connection
from mnistlab.record.store.queries import RUN_COLUMNS, RunFilter, find

FINAL_STATUSES = tuple(status for status in STORED_STATUSES if RunStatus(status) in FINISHED)
# Where a finished run's metrics say nothing of these, the row keeps what it had.
KEPT_UNLESS_GIVEN = ("versions_json", "machine_json", "run_dir", "host", "pid", "started_at")


def setup_values(config, dataset_hash: str, preset=None, group=None) -> dict:
    """The columns that say what a run is: its key, config, dataset and backend."""
    return {
        "run_key": config.run_key(dataset_hash),
        "config_hash": config.config_hash(),
        "preset": preset,
        "group_name": group,
        "family": config.family,
        "config_json": json.dumps(config.to_dict()),
        "dataset": config.dataset,
        "dataset_hash": dataset_hash,
        "backend": config.backend,
        "seed": config.seed,
    }


def insert(db, values: dict) -> int:
    """A new row of VALUES (column: value); its id."""
    _check_columns(values)
    statement = f"INSERT INTO runs ({', '.join(values)}) VALUES ({', '.join('?' for _ in values)})"
    return db.execute(statement, list(values.values())).lastrowid


def update(db, run_id: int, values: dict, status: str | None = None) -> int:
    """Set VALUES (column: value) on run RUN_ID (only while it is STATUS, if given); how many rows changed."""
    _check_columns(values)
    condition = "id = ?" + (" AND status = ?" if status else "")
    statement = f"UPDATE runs SET {', '.join(f'{column} = ?' for column in values)} WHERE {condition}"
    return db.execute(statement, [*values.values(), run_id, *([status] if status else [])]).rowcount


def _check_columns(values):
    unknown = [column for column in values if column not in RUN_COLUMNS]
    if unknown:
        raise ValueError(f"no column {', '.join(unknown)} in the runs table")


def next_attempt(db, key: str) -> int:
    return db.execute("SELECT COUNT(*) FROM runs WHERE run_key = ?", (key,)).fetchone()[0] + 1


def start_run(
    db, config: Config, dataset_hash: str, preset=None, group=None, run_dir=None, machine=None, pid=None, started_at=0.0
) -> int:
    """Record a run as `running` (since STARTED_AT, 0: now); its id."""
    now = time.time()
    values = setup_values(config, dataset_hash, preset, group)
    with connection.write(db):
        return insert(
            db,
            {
                **values,
                "status": "running",
                "attempt": next_attempt(db, values["run_key"]),
                "host": connection.this_host(),
                "pid": pid or connection.this_pid(),
                "machine_json": json.dumps(machine) if machine else None,
                "run_dir": str(run_dir) if run_dir else None,
                "started_at": started_at or now,
                "updated_at": now,
            },
        )


def finish_run(
    db, run_id: int, status: str, metrics: dict | None = None, history=None, error: str | None = None
) -> str:
    """Close a run with its final status, metrics and per-epoch history; the status."""
    if status not in FINAL_STATUSES:
        raise ValueError(f"final status must be one of {FINAL_STATUSES}, got {status!r}")
    with connection.write(db):
        close_run(db, run_id, status, metrics or {}, history, error)
    return status


def close_run(db, run_id, status, metrics, history, error):
    """Inside a write: the run's final row and epochs.

    Where the metrics carry them (every run directory's do), the host, pid and times are the record's: the index
    then says what the directory says, and a rebuilt index says the same.
    """
    if status == "done":
        _key_as_repeat_if_done_before(db, run_id)
    update(db, run_id, _final_values(status, error, metrics))
    db.execute("DELETE FROM epochs WHERE run_id = ?", (run_id,))
    db.executemany(
        "INSERT INTO epochs (run_id, epoch, loss, accuracy, val_loss, val_accuracy, seconds) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (
                run_id,
                row["epoch"],
                *(row.get(key) for key in ("loss", "accuracy", "val_loss", "val_accuracy", "seconds")),
            )
            for row in history or ()
        ],
    )


def _key_as_repeat_if_done_before(db, run_id):
    # The same run finished before (a forced repeat, or two sweeps racing): keep the first as the key's run and
    # record this one as a done repeat of it.
    key = db.execute("SELECT run_key FROM runs WHERE id = ?", (run_id,)).fetchone()["run_key"]
    if db.execute("SELECT 1 FROM runs WHERE run_key = ? AND status = 'done' AND id != ?", (key, run_id)).fetchone():
        update(db, run_id, {"run_key": f"{key}#{run_id}"})


def _final_values(status, error, metrics):
    finished_at = rundir.timestamp_of(metrics["finished_at"]) if metrics.get("finished_at") else time.time()
    values = {
        "status": status,
        "error": error,
        "metrics_json": fileio.dumps(metrics, "metrics") if metrics else None,
        **{
            key: metrics.get(key)
            for key in ("test_accuracy", "test_loss", "train_accuracy", "val_accuracy", "mean_epoch_seconds", "seconds")
        },
        "versions_json": json.dumps(metrics["versions"]) if metrics.get("versions") else None,
        "machine_json": json.dumps(metrics["machine"]) if metrics.get("machine") else None,
        "run_dir": metrics.get("run_dir"),
        "host": (metrics.get("machine") or {}).get("host"),
        "pid": metrics.get("pid"),
        "started_at": rundir.timestamp_of(metrics["started_at"]) if metrics.get("started_at") else None,
        "updated_at": finished_at,
        "finished_at": finished_at,
    }
    return {key: value for key, value in values.items() if value is not None or key not in KEPT_UNLESS_GIVEN}


def reap(db, starting_pid: int | None = None) -> int:
    """Mark `running` rows of dead processes on this host as `interrupted`; how many.

    `starting_pid`: the pid of a process that is starting now, so none of the rows with it are its own: a
    restarted process can get its dead predecessor's pid (a container's PID 1).
    """
    rows = find(db, RunFilter(status="running", host=connection.this_host()), columns=("id", "pid"))
    dead = [
        row["id"]
        for row in rows
        if row["pid"] is None or row["pid"] == starting_pid or not connection.pid_alive(row["pid"])
    ]
    if dead:
        with connection.write(db):
            for run_id in dead:
                values = {
                    "status": "interrupted",
                    "error": "process ended without finishing",
                    "finished_at": time.time(),
                }
                update(db, run_id, values, status="running")
    return len(dead)

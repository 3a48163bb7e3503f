"""Rebuilding the index from the run directories: a lost or corrupt runs.db loses nothing.

Each run comes back as its directory records it: its run id (so `runs show 12` means the same run before and
after), host, pid, times, status, metrics and history. A directory without metrics.json is a run that never
finished: it comes back as `interrupted`. The old index is replaced in one transaction, after every directory
has been read; queued runs (no directory yet) are kept.
"""

import json

from mnistlab.core.errors import StoreError
from mnistlab.record import rundir
from mnistlab.record.store import connection
from mnistlab.record.store.queries import RunFilter, find, live_runs
from mnistlab.record.store.writes import FINAL_STATUSES, close_run, insert, setup_values


def reindex(db, root=None) -> int:
    """Rebuild the index from the run directories below ROOT (default: the runs root); how many."""
    live = live_runs(db)
    if live:
        shown = ", ".join(f"{row['id']} (pid {row['pid']})" for row in live[:5])
        raise StoreError(
            f"runs {shown} are still training and writing this index; reindex when they have finished (or stop them)"
        )
    records = [record_of(directory) for directory in rundir.find(root)]
    # Runs with ids first, in id order: ids are kept, and a repeat stays the later one.
    records.sort(key=lambda r: (r["metrics"].get("run_id") is None, r["metrics"].get("run_id") or 0, r["started_at"]))
    with connection.write(db):
        queued = find(db, RunFilter(status="queued"))  # the lab's queue survives a reindex
        db.execute("DELETE FROM epochs")
        db.execute("DELETE FROM runs")
        taken = {record["metrics"]["run_id"] for record in records if record["metrics"].get("run_id")}
        for record in records:
            _insert_record(db, record, taken)
        for row in queued:
            if _id_taken(db, row["id"]):
                row["id"] = None  # a directory claimed its id: the next free one
            insert(db, row)
    return len(records)


def _id_taken(db, run_id):
    return db.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is not None


def _insert_record(db, record, taken):
    # The directory is where the record was found, whatever its metrics.json says: a moved copy is indexed where
    # it now lies, and a crafted one cannot point the index elsewhere.
    config, metrics = record["config"], record["metrics"]
    if metrics:
        metrics = {**metrics, "run_dir": str(record["run_dir"])}
    wanted = metrics.get("run_id")
    run_id = wanted if wanted and not _id_taken(db, wanted) else None
    if run_id is None:  # no id recorded (or two directories claim one): the next id free of every recorded one
        run_id = max([*taken, db.execute("SELECT COALESCE(MAX(id), 0) FROM runs").fetchone()[0]]) + 1
        taken.add(run_id)
    values = setup_values(config, metrics.get("dataset_hash") or "unknown", record["preset"], metrics.get("group"))
    key = values["run_key"]
    repeats = db.execute("SELECT COUNT(*) FROM runs WHERE run_key = ? OR run_key LIKE ?", (key, key + "#%"))
    insert(
        db,
        {
            "id": run_id,
            **values,
            "status": "running",
            "attempt": repeats.fetchone()[0] + 1,
            "host": (metrics.get("machine") or {}).get("host"),
            "pid": metrics.get("pid"),
            "machine_json": json.dumps(metrics["machine"]) if metrics.get("machine") else None,
            "run_dir": str(record["run_dir"]),
            "started_at": record["started_at"],
            "updated_at": record["started_at"],
        },
    )
    status = metrics.get("status", "interrupted")
    error = metrics.get("error") or (
        None if metrics else "the run directory has no metrics.json: the run never finished"
    )
    close_run(db, run_id, status if status in FINAL_STATUSES else "interrupted", metrics, record["history"], error)


def record_of(directory) -> dict:
    """What the index needs from one run directory."""
    config, preset = rundir.read_config(directory)
    metrics = rundir.read_metrics(directory) or {}
    started = metrics.get("started_at")
    started_at = rundir.timestamp_of(started) if started else (directory / rundir.CONFIG_FILE).stat().st_mtime
    return {
        "config": config,
        "preset": preset,
        "metrics": metrics,
        "history": rundir.read_history(directory),
        "run_dir": directory.resolve(),
        "started_at": started_at,
    }

"""The lab's queue: a `queued` row is a run that a worker will start.

A queued row holds the config and how to run it (`launch`) and has no run directory yet; it becomes `running`
when a worker takes it (`start_queued`), so queued runs outlive the lab process.
"""

import json
import time

from mnistlab.core.config import Config
from mnistlab.core.errors import StoreError
from mnistlab.record.store import connection
from mnistlab.record.store.queries import RunFilter, find
from mnistlab.record.store.writes import insert, next_attempt, setup_values, update


def queue_run(db, config: Config, dataset_hash: str, preset=None, group=None, launch: dict | None = None) -> dict:
    """Queue a run, or find the run that already answers for its key: {"run_id", "status", "repeat"}.

    The repeat rule at launch: a key with a done run is that run; a key queued or running is that run (two
    launches of one setup and seed make one run); otherwise a new `queued` row, a new attempt of the key.
    """
    values = setup_values(config, dataset_hash, preset, group)
    now = time.time()
    with connection.write(db):
        row = db.execute(
            "SELECT id, status FROM runs WHERE run_key = ? AND status IN ('done', 'queued', 'running') ORDER BY status = 'done' DESC, id LIMIT 1",
            (values["run_key"],),
        ).fetchone()
        if row is not None:
            return {"run_id": row["id"], "status": row["status"], "repeat": True}
        run_id = insert(
            db,
            {
                **values,
                "status": "queued",
                "attempt": next_attempt(db, values["run_key"]),
                "started_at": now,
                "updated_at": now,
                "launch_json": json.dumps(launch or {}),
            },
        )
        return {"run_id": run_id, "status": "queued", "repeat": False}


def queued(db) -> list[dict]:
    """The queued runs, first queued first."""
    return find(db, RunFilter(status="queued"))


def start_queued(db, path, run_id, run_dir=None, machine=None, pid=None) -> int:
    """A queued run taken by a worker of this process: now `running`, with its directory; its id."""
    now = time.time()
    values = {
        "status": "running",
        "run_dir": str(run_dir) if run_dir else None,
        "machine_json": json.dumps(machine) if machine else None,
        "host": connection.this_host(),
        "pid": pid or connection.this_pid(),
        "started_at": now,
        "updated_at": now,
    }
    with connection.write(db):
        changed = update(db, run_id, values, status="queued")
    if changed != 1:
        raise StoreError(f"run {run_id} is no longer queued in {path}")
    return run_id


def cancel_queued(db, run_id) -> bool:
    """Remove a run that is still queued (it never ran: nothing of it is recorded); False if it is not queued."""
    with connection.write(db):
        return db.execute("DELETE FROM runs WHERE id = ? AND status = 'queued'", (run_id,)).rowcount == 1


def fail_queued(db, run_id, error) -> bool:
    """A queued run that could not be started (its Ray cluster unreachable, say): `failed`, with why; False if it
    is not queued. It never ran, so no run directory records it, and `runs reindex` does not bring it back."""
    now = time.time()
    values = {"status": "failed", "error": error, "finished_at": now, "updated_at": now}
    with connection.write(db):
        return update(db, run_id, values, status="queued") == 1

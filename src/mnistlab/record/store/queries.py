"""Reading the store: which runs (a `RunFilter`), one run, its epochs; rows out as dicts, never SQL in.

Every statement that reads the index is here, built from declared column names; callers choose rows with a
`RunFilter` and columns with a named view (`RUN_COLUMNS`, `SUMMARY_COLUMNS`).
"""

import dataclasses
import json

from mnistlab.core.errors import UnknownRun
from mnistlab.record.store import connection

# Every column of the runs table (schema version 3), in the table's order.
RUN_COLUMNS = (
    "id",
    "run_key",
    "config_hash",
    "preset",
    "group_name",
    "family",
    "config_json",
    "dataset",
    "dataset_hash",
    "backend",
    "seed",
    "status",
    "attempt",
    "error",
    "host",
    "pid",
    "machine_json",
    "versions_json",
    "metrics_json",
    "test_accuracy",
    "test_loss",
    "train_accuracy",
    "val_accuracy",
    "mean_epoch_seconds",
    "seconds",
    "run_dir",
    "started_at",
    "updated_at",
    "finished_at",
    "launch_json",
)
# A run in a view over many (the lab's list, a setup's runs): what tells runs apart and their figures, without
# the metrics, machine and versions of each.
NOT_IN_SUMMARIES = ("run_key", "group_name", "attempt", "host", "pid", "run_dir", "updated_at", "test_loss")
NOT_IN_SUMMARIES += ("metrics_json", "machine_json", "versions_json", "launch_json", "mean_epoch_seconds")
SUMMARY_COLUMNS = tuple(column for column in RUN_COLUMNS if column not in NOT_IN_SUMMARIES)
JSON_COLUMNS = ("config_json", "metrics_json", "machine_json", "versions_json", "launch_json")


@dataclasses.dataclass(frozen=True)
class RunFacets:
    """What people pick runs by in lists and pages (the lab's runs view too): each field given must hold (None: any)."""

    status: str | None = None
    preset: str | None = None
    family: str | None = None
    dataset: str | None = None
    backend: str | None = None


@dataclasses.dataclass(frozen=True)
class RunFilter(RunFacets):
    """Which runs: each field given must hold (None: any); rows come in id order, the first LIMIT of them."""

    group: str | None = None
    config_hash: str | None = None
    config_hash_prefix: str | None = None  # `runs compare 3fa2`: the setups whose hash starts so
    dataset_hash: str | None = None
    seed: int | None = None
    run_key: str | None = None
    host: str | None = None
    limit: int | None = None

    def where(self) -> tuple[str, list]:
        """(SQL condition, its bound values): the fields' names are ours, the values are bound."""
        clauses, values = [], []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None or field.name == "limit":
                continue
            if field.name == "config_hash_prefix":
                clauses.append("config_hash LIKE ?")
                value = value + "%"
            else:
                clauses.append(f"{'group_name' if field.name == 'group' else field.name} = ?")
            values.append(value)
        return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), values


def find(db, where: RunFilter = RunFilter(), columns=RUN_COLUMNS) -> list[dict]:
    """The runs WHERE holds, in id order: COLUMNS of each (names of RUN_COLUMNS)."""
    unknown = [column for column in columns if column not in RUN_COLUMNS]
    if unknown:
        raise ValueError(f"no column {', '.join(unknown)} in the runs table")
    condition, values = where.where()
    tail = f" LIMIT {int(where.limit)}" if where.limit else ""
    statement = f"SELECT {', '.join(columns)} FROM runs {condition} ORDER BY id{tail}"
    return [dict(row) for row in db.execute(statement, values)]


def count(db, status: str | None = None) -> int:
    """How many runs (of STATUS, if given)."""
    if status is None:
        return db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    return db.execute("SELECT COUNT(*) FROM runs WHERE status = ?", (status,)).fetchone()[0]


def get(db, run_id: int, path) -> dict:
    row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        raise UnknownRun(f"no run with id {run_id} in {path}; `mnistlab runs list` shows the ids")
    return dict(row)


def epochs(db, run_id: int) -> list[dict]:
    """Run RUN_ID's per-epoch rows, first epoch first."""
    return [dict(row) for row in db.execute("SELECT * FROM epochs WHERE run_id = ? ORDER BY epoch", (run_id,))]


def show(db, run_id: int, path) -> dict:
    """One run with its epochs, the JSON columns decoded (under their names without _json)."""
    run = get(db, run_id, path)
    run["epochs"] = epochs(db, run_id)
    for key in JSON_COLUMNS:
        value = run.pop(key, None)
        if value:
            run[key.removesuffix("_json")] = json.loads(value)
    return run


def done_run(db, key: str) -> dict | None:
    """The finished run of KEY (the first one, where it was repeated), or None."""
    found = find(db, RunFilter(run_key=key, status="done", limit=1))
    return found[0] if found else None


def live_runs(db) -> list[dict]:
    """The `running` rows whose process still lives on this host."""
    rows = find(db, RunFilter(status="running", host=connection.this_host()), columns=("id", "pid"))
    return [row for row in rows if row["pid"] is not None and connection.pid_alive(row["pid"])]


def schema_version(db) -> int:
    """The schema version the file is at (`mnistlab.record.migrations`)."""
    return int(db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()["value"])


def integrity_check(db) -> str:
    """SQLite's own check of the file: "ok", or what is wrong."""
    return db.execute("PRAGMA integrity_check").fetchone()[0]

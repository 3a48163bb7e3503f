"""The run store: every run, with its config, history and metrics, in one SQLite file.

Why SQLite: it is embedded (nothing to start), transactional (a run killed at
any moment, even by `kill -9`, leaves the file consistent: a transaction is
in or out), and in WAL mode many processes can write while others read.

A run is `running` from the moment it starts; it becomes `done`, `failed`,
`diverged` or `interrupted`. A process that dies without saying so leaves a
`running` row whose pid no longer lives on its host: `reap()` (run whenever a
store is opened for a sweep or listed) marks it `interrupted`.

The key of a run is (config hash, dataset hash, backend, seed); a partial
unique index allows at most one `done` run per key, so a resumed sweep can
never record a finished run twice.
"""

import contextlib
import json
import os
import pathlib
import socket
import sqlite3
import time

from mnistlab.errors import MnistlabError

SCHEMA_VERSION = 1
STATUSES = ("running", "done", "failed", "diverged", "interrupted")
FINAL_STATUSES = STATUSES[1:]

# Each entry upgrades the schema from version N-1 to N; a new version appends
# one and the store migrates old files in place on open.
MIGRATIONS = {
    1: """
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_key TEXT NOT NULL,
            config_hash TEXT NOT NULL,
            preset TEXT,
            group_name TEXT,
            model TEXT NOT NULL,
            config_json TEXT NOT NULL,
            dataset TEXT NOT NULL,
            dataset_hash TEXT NOT NULL,
            backend TEXT NOT NULL,
            seed INTEGER NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'diverged', 'interrupted')),
            attempt INTEGER NOT NULL DEFAULT 1,
            error TEXT,
            host TEXT,
            pid INTEGER,
            machine_json TEXT,
            versions_json TEXT,
            metrics_json TEXT,
            test_accuracy REAL,
            test_loss REAL,
            train_accuracy REAL,
            val_accuracy REAL,
            mean_epoch_seconds REAL,
            seconds REAL,
            run_dir TEXT,
            started_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            finished_at REAL
        );
        CREATE UNIQUE INDEX runs_one_done_per_key ON runs (run_key) WHERE status = 'done';
        CREATE INDEX runs_by_key ON runs (run_key, status);
        CREATE INDEX runs_by_preset ON runs (preset);
        CREATE TABLE epochs (
            run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            epoch INTEGER NOT NULL,
            loss REAL,
            accuracy REAL,
            val_loss REAL,
            val_accuracy REAL,
            seconds REAL,
            PRIMARY KEY (run_id, epoch)
        );
    """,
}


def default_path():
    """$MNISTLAB_STORE, else runs.db beside the run directories."""
    if os.environ.get("MNISTLAB_STORE"):
        return pathlib.Path(os.environ["MNISTLAB_STORE"])
    from mnistlab.train import runs_root

    return runs_root() / "runs.db"


def run_key(config_hash, dataset_hash, backend, seed):
    return f"{config_hash}:{dataset_hash[:16]}:{backend}:{seed}"


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed, not yet reaped by its parent) is not running.
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return True


class Store:
    def __init__(self, path=None):
        self.path = pathlib.Path(path) if path else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                self._open()
                break
            except sqlite3.OperationalError as error:
                # Switching a new file to WAL needs a moment of exclusive
                # access, and SQLite answers "locked" at once rather than
                # waiting: wait here instead.
                if "locked" in str(error) and time.monotonic() < deadline:
                    self._connection.close()
                    time.sleep(0.05)
                    continue
                raise MnistlabError(f"{self.path}: not a usable run store ({error}); point --store elsewhere or move the file away") from None
            except sqlite3.DatabaseError as error:
                raise MnistlabError(f"{self.path}: not a usable run store ({error}); point --store elsewhere or move the file away") from None

    def _open(self):
        self._connection = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self._connection.row_factory = sqlite3.Row
        if self._connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            self._connection.execute("PRAGMA journal_mode=WAL")
        # NORMAL is crash-safe in WAL mode (a crash loses at most the last
        # commit, never consistency) and much faster than FULL.
        self._connection.execute("PRAGMA synchronous=NORMAL")
        self._connection.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def close(self):
        self._connection.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @contextlib.contextmanager
    def _write(self):
        """One write transaction, taking the write lock up front (no upgrade deadlocks)."""
        self._connection.execute("BEGIN IMMEDIATE")
        try:
            yield self._connection
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        self._connection.execute("COMMIT")

    def _migrate(self):
        with self._write() as db:
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = int(row["value"]) if row else 0
            if version > SCHEMA_VERSION:
                raise MnistlabError(f"{self.path}: written by a newer mnistlab (schema {version} > {SCHEMA_VERSION}); upgrade mnistlab")
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[target].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (str(target),))

    @property
    def schema_version(self):
        return int(self._connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()["value"])

    # ------------------------------------------------------------------
    # Writing

    def start_run(self, config, dataset_hash, preset=None, group=None, run_dir=None, machine=None, versions=None, pid=None):
        """Record a run as `running`; return its id."""
        now = time.time()
        key = run_key(config.config_hash(), dataset_hash, config.backend, config.seed)
        with self._write() as db:
            attempt = db.execute("SELECT COUNT(*) FROM runs WHERE run_key = ?", (key,)).fetchone()[0] + 1
            cursor = db.execute(
                """INSERT INTO runs (run_key, config_hash, preset, group_name, model, config_json, dataset, dataset_hash, backend, seed,
                                     status, attempt, host, pid, machine_json, versions_json, run_dir, started_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    key, config.config_hash(), preset, group, config.model, json.dumps(config.to_dict()), config.dataset, dataset_hash,
                    config.backend, config.seed, attempt, socket.gethostname(), pid or os.getpid(),
                    json.dumps(machine) if machine else None, json.dumps(versions) if versions else None,
                    str(run_dir) if run_dir else None, now, now,
                ),
            )
            return cursor.lastrowid

    def record_epoch(self, run_id, row):
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO epochs (run_id, epoch, loss, accuracy, val_loss, val_accuracy, seconds) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, row["epoch"], row.get("loss"), row.get("accuracy"), row.get("val_loss"), row.get("val_accuracy"), row.get("seconds")),
            )
            db.execute("UPDATE runs SET updated_at = ? WHERE id = ?", (time.time(), run_id))

    def finish_run(self, run_id, status, metrics=None, error=None):
        if status not in FINAL_STATUSES:
            raise ValueError(f"final status must be one of {FINAL_STATUSES}, got {status!r}")
        metrics = metrics or {}
        now = time.time()
        with self._write() as db:
            if status == "done":
                # Another worker may have finished the same key meanwhile
                # (two sweeps racing): keep the first, record this one as a
                # duplicate failure rather than violate the unique index.
                key = db.execute("SELECT run_key FROM runs WHERE id = ?", (run_id,)).fetchone()["run_key"]
                if db.execute("SELECT 1 FROM runs WHERE run_key = ? AND status = 'done' AND id != ?", (key, run_id)).fetchone():
                    status, error = "failed", "duplicate: the same run finished elsewhere first"
            db.execute(
                """UPDATE runs SET status = ?, error = ?, metrics_json = ?, test_accuracy = ?, test_loss = ?, train_accuracy = ?,
                          val_accuracy = ?, mean_epoch_seconds = ?, seconds = ?, versions_json = COALESCE(?, versions_json),
                          machine_json = COALESCE(?, machine_json), run_dir = COALESCE(?, run_dir), updated_at = ?, finished_at = ?
                   WHERE id = ?""",
                (
                    status, error, json.dumps(metrics, default=str) if metrics else None, metrics.get("test_accuracy"), metrics.get("test_loss"),
                    metrics.get("train_accuracy"), metrics.get("val_accuracy"), metrics.get("mean_epoch_seconds"), metrics.get("seconds"),
                    json.dumps(metrics["versions"]) if metrics.get("versions") else None,
                    json.dumps(metrics["machine"]) if metrics.get("machine") else None, metrics.get("run_dir"), now, now, run_id,
                ),
            )
        return status

    def last_id(self):
        return self._connection.execute("SELECT COALESCE(MAX(id), 0) FROM runs").fetchone()[0]

    def record_failure(self, config, dataset_hash, error, since_id, preset=None, group=None):
        """Make sure a failed attempt of `config` shows as failed, with its error.

        The attempt's own process records its failure when it gets that far;
        if it died first (no row since `since_id`, or a row still `running`),
        this records or closes the row for it.
        """
        key = run_key(config.config_hash(), dataset_hash, config.backend, config.seed)
        rows = self._connection.execute("SELECT id, status FROM runs WHERE run_key = ? AND id > ?", (key, since_id)).fetchall()
        if not rows:
            run_id = self.start_run(config, dataset_hash, preset=preset, group=group)
            return self.finish_run(run_id, "failed", error=error)
        for row in rows:
            if row["status"] == "running":
                self.finish_run(row["id"], "failed", error=error)
        return "failed"

    def reap(self):
        """Mark `running` rows of dead processes on this host as `interrupted`; return how many."""
        host = socket.gethostname()
        rows = self._connection.execute("SELECT id, pid FROM runs WHERE status = 'running' AND host = ?", (host,)).fetchall()
        dead = [row["id"] for row in rows if row["pid"] is None or not _pid_alive(row["pid"])]
        if dead:
            with self._write() as db:
                db.executemany(
                    "UPDATE runs SET status = 'interrupted', error = 'process ended without finishing', finished_at = ? WHERE id = ? AND status = 'running'",
                    [(time.time(), run_id) for run_id in dead],
                )
        return len(dead)

    # ------------------------------------------------------------------
    # Reading

    def get(self, run_id):
        row = self._connection.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise MnistlabError(f"no run with id {run_id} in {self.path}; `mnistlab runs list` shows the ids")
        return dict(row)

    def epochs(self, run_id):
        return [dict(row) for row in self._connection.execute("SELECT * FROM epochs WHERE run_id = ? ORDER BY epoch", (run_id,))]

    def done_run(self, key):
        row = self._connection.execute("SELECT * FROM runs WHERE run_key = ? AND status = 'done'", (key,)).fetchone()
        return dict(row) if row else None

    def runs(self, status=None, preset=None, config_hash=None, group=None, dataset_hash=None, backend=None, limit=None):
        clauses, values = [], []
        for column, value in (("status", status), ("preset", preset), ("group_name", group), ("dataset_hash", dataset_hash), ("backend", backend)):
            if value is not None:
                clauses.append(f"{column} = ?")
                values.append(value)
        if config_hash is not None:
            clauses.append("config_hash LIKE ?")
            values.append(config_hash + "%")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        tail = f" LIMIT {int(limit)}" if limit else ""
        return [dict(row) for row in self._connection.execute(f"SELECT * FROM runs {where} ORDER BY id{tail}", values)]

    def count(self, status=None):
        if status is None:
            return self._connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        return self._connection.execute("SELECT COUNT(*) FROM runs WHERE status = ?", (status,)).fetchone()[0]

    def integrity_check(self):
        return self._connection.execute("PRAGMA integrity_check").fetchone()[0]

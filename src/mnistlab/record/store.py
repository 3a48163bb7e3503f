"""The run store: an index of run directories, with config, history and metrics, in one SQLite file.

The run directory is the record of a run (`mnistlab.record.rundir`); this store
indexes them for listing, comparing and resuming, and `reindex()` rebuilds
it from the directories, so a lost or corrupt runs.db loses nothing. Only the
process that drives the runs writes it: `mnistlab train` itself, or the
sweep's driver for the runs its workers train (locally or on Ray).

Why SQLite: it is embedded (nothing to start), transactional (a run killed at
any moment, even by `kill -9`, leaves the file consistent: a transaction is
in or out), and in WAL mode many processes can write while others read.

A run is `running` from the moment it starts; it becomes `done`, `failed`,
`diverged` or `interrupted`. The lab (`mnistlab.web.lab`) queues runs first: a
`queued` row holds the config and how to run it (`launch`), has no run
directory yet, and becomes `running` when a worker takes it (`start_queued`),
so queued runs outlive the lab process. A process that dies without saying so leaves a
`running` row whose pid no longer lives on its host: `reap()` (run whenever a
store is opened for a sweep or listed) marks it `interrupted`.

The key of a run is (config hash, dataset hash, backend, seed); a partial
unique index allows at most one `done` run per key, which is the run a
resumed sweep finds and skips. A second finished run of the same key (a
forced repeat, or two sweeps racing) is recorded as done too, keyed as a
repeat (`KEY#ID`), never as a failure.
"""

import contextlib
import datetime
import json
import os
import socket
import sqlite3
import time

from mnistlab.core import fileio, paths, presets
from mnistlab.core.config import RUN_STATUSES, Config
from mnistlab.core.errors import StoreError, UnknownRun
from mnistlab.record import rundir

SCHEMA_VERSION = 2
STATUSES = RUN_STATUSES
FINAL_STATUSES = ("done", "failed", "diverged", "interrupted")

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
    # 2: the lab's queue. SQLite cannot change a CHECK constraint in place, so
    # the runs table is rebuilt (ids and the id sequence kept) with 'queued' as
    # a status and the launch column; epochs are copied aside first, since
    # dropping the old runs table would cascade to them.
    2: """
        CREATE TABLE runs_v2 (
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
            status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'diverged', 'interrupted')),
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
            finished_at REAL,
            launch_json TEXT
        );
        INSERT INTO runs_v2 SELECT *, NULL FROM runs;
        DELETE FROM sqlite_sequence WHERE name = 'runs_v2';
        UPDATE sqlite_sequence SET name = 'runs_v2' WHERE name = 'runs';
        CREATE TABLE epochs_copy AS SELECT * FROM epochs;
        DROP TABLE epochs;
        DROP TABLE runs;
        ALTER TABLE runs_v2 RENAME TO runs;
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
        INSERT INTO epochs SELECT * FROM epochs_copy;
        DROP TABLE epochs_copy;
        CREATE UNIQUE INDEX runs_one_done_per_key ON runs (run_key) WHERE status = 'done';
        CREATE INDEX runs_by_key ON runs (run_key, status);
        CREATE INDEX runs_by_preset ON runs (preset);
        CREATE INDEX runs_by_status ON runs (status)
    """,
}


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
    def __init__(self, path: str | os.PathLike | None = None):
        self.path = paths.store_path(path)
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
                raise StoreError(
                    f"{self.path}: not a usable run store ({error}); point --store elsewhere or move the file away"
                ) from None
            except sqlite3.DatabaseError as error:
                raise StoreError(
                    f"{self.path}: not a usable run store ({error}); point --store elsewhere or move the file away"
                ) from None

    def _open(self):
        self._connection = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self._connection.row_factory = sqlite3.Row
        # Asking the journal mode takes no lock; switching it (a new file) takes a moment of exclusive access.
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

    def _stored_version(self):
        """The schema version the file says, read without a lock (0 for a new file)."""
        try:
            row = self._connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.OperationalError as error:
            if "no such table" not in str(error):
                raise
            return 0
        return int(row["value"]) if row else 0

    def _migrate(self):
        # Read first, lock only to change: an open of an up-to-date store (every open but the first
        # after an upgrade) takes no write lock, so a reader never waits behind a writer (WAL).
        version = self._stored_version()
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: written by a newer mnistlab (schema {version} > {SCHEMA_VERSION}); upgrade mnistlab"
            )
        if version == SCHEMA_VERSION:
            return
        with self._write() as db:
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = int(row["value"]) if row else 0
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: written by a newer mnistlab (schema {version} > {SCHEMA_VERSION}); upgrade mnistlab"
                )
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

    def start_run(
        self,
        config: Config,
        dataset_hash: str,
        preset: str | None = None,
        group: str | None = None,
        run_dir=None,
        machine: dict | None = None,
        pid: int | None = None,
        started_at: float | None = None,
    ) -> int:
        """Record a run as `running`; return its id."""
        now = time.time()
        key = config.run_key(dataset_hash)
        with self._write() as db:
            attempt = db.execute("SELECT COUNT(*) FROM runs WHERE run_key = ?", (key,)).fetchone()[0] + 1
            cursor = db.execute(
                """INSERT INTO runs (run_key, config_hash, preset, group_name, model, config_json, dataset, dataset_hash, backend, seed,
                                     status, attempt, host, pid, machine_json, run_dir, started_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?)""",
                (
                    key,
                    config.config_hash(),
                    preset,
                    group,
                    config.family,
                    json.dumps(config.to_dict()),
                    config.dataset,
                    dataset_hash,
                    config.backend,
                    config.seed,
                    attempt,
                    socket.gethostname(),
                    pid or os.getpid(),
                    json.dumps(machine) if machine else None,
                    str(run_dir) if run_dir else None,
                    started_at or now,
                    now,
                ),
            )
            return cursor.lastrowid

    def finish_run(
        self,
        run_id: int,
        status: str,
        metrics: dict | None = None,
        history: list[dict] | None = None,
        error: str | None = None,
    ) -> str:
        """Close a run with its final status, metrics and per-epoch history; return the status.

        Where the metrics carry them (every run directory's do), the host, pid
        and times are the record's: the index then says what the directory
        says, and a rebuilt index says the same.
        """
        if status not in FINAL_STATUSES:
            raise ValueError(f"final status must be one of {FINAL_STATUSES}, got {status!r}")
        with self._write() as db:
            self._close(db, run_id, status, metrics or {}, history, error)
        return status

    def _close(self, db, run_id, status, metrics, history, error):
        now = time.time()
        if status == "done":
            # The same run finished before (a forced repeat, or two sweeps
            # racing): keep the first as the key's run and record this one
            # as a done repeat of it.
            key = db.execute("SELECT run_key FROM runs WHERE id = ?", (run_id,)).fetchone()["run_key"]
            if db.execute(
                "SELECT 1 FROM runs WHERE run_key = ? AND status = 'done' AND id != ?", (key, run_id)
            ).fetchone():
                db.execute("UPDATE runs SET run_key = ? WHERE id = ?", (f"{key}#{run_id}", run_id))
        finished_at = rundir.timestamp_of(metrics["finished_at"]) if metrics.get("finished_at") else now
        db.execute(
            """UPDATE runs SET status = ?, error = ?, metrics_json = ?, test_accuracy = ?, test_loss = ?, train_accuracy = ?,
                      val_accuracy = ?, mean_epoch_seconds = ?, seconds = ?, versions_json = COALESCE(?, versions_json),
                      machine_json = COALESCE(?, machine_json), run_dir = COALESCE(?, run_dir), host = COALESCE(?, host),
                      pid = COALESCE(?, pid), started_at = COALESCE(?, started_at), updated_at = ?, finished_at = ?
               WHERE id = ?""",
            (
                status,
                error,
                fileio.dumps(metrics, "metrics") if metrics else None,
                metrics.get("test_accuracy"),
                metrics.get("test_loss"),
                metrics.get("train_accuracy"),
                metrics.get("val_accuracy"),
                metrics.get("mean_epoch_seconds"),
                metrics.get("seconds"),
                json.dumps(metrics["versions"]) if metrics.get("versions") else None,
                json.dumps(metrics["machine"]) if metrics.get("machine") else None,
                metrics.get("run_dir"),
                (metrics.get("machine") or {}).get("host"),
                metrics.get("pid"),
                rundir.timestamp_of(metrics["started_at"]) if metrics.get("started_at") else None,
                finished_at,
                finished_at,
                run_id,
            ),
        )
        db.execute("DELETE FROM epochs WHERE run_id = ?", (run_id,))
        db.executemany(
            "INSERT INTO epochs (run_id, epoch, loss, accuracy, val_loss, val_accuracy, seconds) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    run_id,
                    row["epoch"],
                    row.get("loss"),
                    row.get("accuracy"),
                    row.get("val_loss"),
                    row.get("val_accuracy"),
                    row.get("seconds"),
                )
                for row in history or ()
            ],
        )

    # ------------------------------------------------------------------
    # The lab's queue: a queued row is a run that a worker will start

    def queue_run(
        self,
        config: Config,
        dataset_hash: str,
        preset: str | None = None,
        group: str | None = None,
        launch: dict | None = None,
    ) -> dict:
        """Queue a run, or find the run that already answers for its key: {"run_id", "status", "repeat"}.

        The repeat rule at launch: a key with a done run is that run; a key
        queued or running is that run (two launches of one setup and seed make
        one run); otherwise a new `queued` row, a new attempt of the key.
        """
        key = config.run_key(dataset_hash)
        now = time.time()
        with self._write() as db:
            row = db.execute(
                "SELECT id, status FROM runs WHERE run_key = ? AND status IN ('done', 'queued', 'running') ORDER BY status = 'done' DESC, id LIMIT 1",
                (key,),
            ).fetchone()
            if row is not None:
                return {"run_id": row["id"], "status": row["status"], "repeat": True}
            attempt = db.execute("SELECT COUNT(*) FROM runs WHERE run_key = ?", (key,)).fetchone()[0] + 1
            cursor = db.execute(
                """INSERT INTO runs (run_key, config_hash, preset, group_name, model, config_json, dataset, dataset_hash, backend, seed,
                                     status, attempt, started_at, updated_at, launch_json)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)""",
                (
                    key,
                    config.config_hash(),
                    preset,
                    group,
                    config.family,
                    json.dumps(config.to_dict()),
                    config.dataset,
                    dataset_hash,
                    config.backend,
                    config.seed,
                    attempt,
                    now,
                    now,
                    json.dumps(launch or {}),
                ),
            )
            return {"run_id": cursor.lastrowid, "status": "queued", "repeat": False}

    def start_queued(self, run_id: int, run_dir=None, machine: dict | None = None, pid: int | None = None) -> int:
        """A queued run taken by a worker of this process: now `running`, with its directory; return its id."""
        now = time.time()
        with self._write() as db:
            cursor = db.execute(
                "UPDATE runs SET status = 'running', run_dir = ?, machine_json = ?, host = ?, pid = ?, started_at = ?, updated_at = ? WHERE id = ? AND status = 'queued'",
                (
                    str(run_dir) if run_dir else None,
                    json.dumps(machine) if machine else None,
                    socket.gethostname(),
                    pid or os.getpid(),
                    now,
                    now,
                    run_id,
                ),
            )
        if cursor.rowcount != 1:
            raise StoreError(f"run {run_id} is no longer queued in {self.path}")
        return run_id

    def cancel_queued(self, run_id: int) -> bool:
        """Remove a run that is still queued (it never ran: nothing of it is recorded); False if it is not queued."""
        with self._write() as db:
            return db.execute("DELETE FROM runs WHERE id = ? AND status = 'queued'", (run_id,)).rowcount == 1

    def fail_queued(self, run_id: int, error: str) -> bool:
        """A queued run that could not be started (its Ray cluster unreachable, say): `failed`, with why; False if it is not queued.

        It never ran, so no run directory records it, and `runs reindex` does not bring it back.
        """
        now = time.time()
        with self._write() as db:
            return (
                db.execute(
                    "UPDATE runs SET status = 'failed', error = ?, finished_at = ?, updated_at = ? WHERE id = ? AND status = 'queued'",
                    (error, now, now, run_id),
                ).rowcount
                == 1
            )

    def queued(self) -> list[dict]:
        """The queued runs, first queued first."""
        return [dict(row) for row in self._connection.execute("SELECT * FROM runs WHERE status = 'queued' ORDER BY id")]

    def reap(self, starting_pid: int | None = None) -> int:
        """Mark `running` rows of dead processes on this host as `interrupted`; return how many.

        `starting_pid`: the pid of a process that is starting now, so none of the rows with it
        are its own: a restarted process can get its dead predecessor's pid (a container's PID 1).
        """
        host = socket.gethostname()
        rows = self._connection.execute(
            "SELECT id, pid FROM runs WHERE status = 'running' AND host = ?", (host,)
        ).fetchall()
        dead = [
            row["id"] for row in rows if row["pid"] is None or row["pid"] == starting_pid or not _pid_alive(row["pid"])
        ]
        if dead:
            with self._write() as db:
                db.executemany(
                    "UPDATE runs SET status = 'interrupted', error = 'process ended without finishing', finished_at = ? WHERE id = ? AND status = 'running'",
                    [(time.time(), run_id) for run_id in dead],
                )
        return len(dead)

    # ------------------------------------------------------------------
    # Reading

    def get(self, run_id: int) -> dict:
        row = self._connection.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise UnknownRun(f"no run with id {run_id} in {self.path}; `mnistlab runs list` shows the ids")
        return dict(row)

    def show(self, run_id: int) -> dict:
        """One run with its epochs, the JSON columns decoded."""
        run = self.get(run_id)
        run["epochs"] = self.epochs(run_id)
        for key in ("config_json", "metrics_json", "machine_json", "versions_json", "launch_json"):
            value = run.pop(key, None)
            if value:
                run[key.removesuffix("_json")] = json.loads(value)
        return run

    def epochs(self, run_id: int) -> list[dict]:
        return [
            dict(row)
            for row in self._connection.execute("SELECT * FROM epochs WHERE run_id = ? ORDER BY epoch", (run_id,))
        ]

    def done_run(self, key: str) -> dict | None:
        """The finished run of KEY (the first one, where it was repeated), or None."""
        row = self._connection.execute("SELECT * FROM runs WHERE run_key = ? AND status = 'done'", (key,)).fetchone()
        return dict(row) if row else None

    def runs(
        self,
        status: str | None = None,
        preset: str | None = None,
        config_hash: str | None = None,
        group: str | None = None,
        dataset_hash: str | None = None,
        backend: str | None = None,
        limit: int | None = None,
    ) -> list[dict]:
        clauses, values = [], []
        for column, value in (
            ("status", status),
            ("preset", preset),
            ("group_name", group),
            ("dataset_hash", dataset_hash),
            ("backend", backend),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                values.append(value)
        if config_hash is not None:
            clauses.append("config_hash LIKE ?")
            values.append(config_hash + "%")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        tail = f" LIMIT {int(limit)}" if limit else ""
        return [dict(row) for row in self._connection.execute(f"SELECT * FROM runs {where} ORDER BY id{tail}", values)]

    def select(self, columns: str, where: str = "", values=()) -> list[dict]:
        """Rows of a few COLUMNS ("id, seed, status"), WHERE a condition of `?` placeholders holds, in id order.

        For views over many runs (the lab's list) that need neither the metrics
        nor the machine of each; columns and condition are the caller's code, the
        values are bound.
        """
        condition = f"WHERE {where}" if where else ""
        return [
            dict(row)
            for row in self._connection.execute(f"SELECT {columns} FROM runs {condition} ORDER BY id", list(values))
        ]

    def reindex(self, root=None) -> int:
        """Rebuild the index from the run directories below ROOT (default: the runs root); return how many.

        Each run comes back as its directory records it: its run id (so
        `runs show 12` means the same run before and after), host, pid, times,
        status, metrics and history. A directory without metrics.json is a run
        that never finished: it comes back as `interrupted`. The old index is
        replaced in one transaction, after every directory has been read.
        """
        live = self.live_runs()
        if live:
            shown = ", ".join(f"{row['id']} (pid {row['pid']})" for row in live[:5])
            raise StoreError(
                f"runs {shown} are still training and writing this index; reindex when they have finished (or stop them)"
            )
        records = [_record_of(directory) for directory in rundir.find(root)]
        # Runs with ids first, in id order: ids are kept, and a repeat stays the later one.
        records.sort(
            key=lambda r: (r["metrics"].get("run_id") is None, r["metrics"].get("run_id") or 0, r["started_at"])
        )
        with self._write() as db:
            # Queued runs have no directory yet: they are kept as they are (the lab's queue survives a reindex).
            queued = [dict(row) for row in db.execute("SELECT * FROM runs WHERE status = 'queued' ORDER BY id")]
            db.execute("DELETE FROM epochs")
            db.execute("DELETE FROM runs")
            taken = {record["metrics"]["run_id"] for record in records if record["metrics"].get("run_id")}
            for record in records:
                self._insert_record(db, record, taken)
            for row in queued:
                if db.execute("SELECT 1 FROM runs WHERE id = ?", (row["id"],)).fetchone():
                    row["id"] = None  # a directory claimed its id: the next free one
                db.execute(
                    f"INSERT INTO runs ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})", list(row.values())
                )
        return len(records)

    def live_runs(self) -> list[dict]:
        """The `running` rows whose process still lives on this host."""
        rows = self._connection.execute(
            "SELECT id, pid FROM runs WHERE status = 'running' AND host = ?", (socket.gethostname(),)
        ).fetchall()
        return [dict(row) for row in rows if row["pid"] is not None and _pid_alive(row["pid"])]

    def _insert_record(self, db, record, taken):
        # The directory is where the record was found, whatever its metrics.json says: a moved copy is
        # indexed where it now lies, and a crafted one cannot point the index elsewhere.
        config, metrics = record["config"], record["metrics"]
        if metrics:
            metrics = {**metrics, "run_dir": str(record["run_dir"])}
        wanted = metrics.get("run_id")
        run_id = wanted if wanted and not db.execute("SELECT 1 FROM runs WHERE id = ?", (wanted,)).fetchone() else None
        if run_id is None:  # no id recorded (or two directories claim one): the next id free of every recorded one
            run_id = max([*taken, db.execute("SELECT COALESCE(MAX(id), 0) FROM runs").fetchone()[0]]) + 1
            taken.add(run_id)
        dataset_hash = metrics.get("dataset_hash") or "unknown"
        key = config.run_key(dataset_hash)
        attempt = (
            db.execute("SELECT COUNT(*) FROM runs WHERE run_key = ? OR run_key LIKE ?", (key, key + "#%")).fetchone()[0]
            + 1
        )
        host = (metrics.get("machine") or {}).get("host")
        db.execute(
            """INSERT INTO runs (id, run_key, config_hash, preset, group_name, model, config_json, dataset, dataset_hash, backend, seed,
                                 status, attempt, host, pid, machine_json, run_dir, started_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?)""",
            (
                run_id,
                key,
                config.config_hash(),
                record["preset"],
                metrics.get("group"),
                config.family,
                json.dumps(config.to_dict()),
                config.dataset,
                dataset_hash,
                config.backend,
                config.seed,
                attempt,
                host,
                metrics.get("pid"),
                json.dumps(metrics["machine"]) if metrics.get("machine") else None,
                str(record["run_dir"]),
                record["started_at"],
                record["started_at"],
            ),
        )
        status = metrics.get("status", "interrupted")
        error = metrics.get("error") or (
            None if metrics else "the run directory has no metrics.json: the run never finished"
        )
        self._close(
            db, run_id, status if status in FINAL_STATUSES else "interrupted", metrics, record["history"], error
        )

    def count(self, status: str | None = None) -> int:
        if status is None:
            return self._connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        return self._connection.execute("SELECT COUNT(*) FROM runs WHERE status = ?", (status,)).fetchone()[0]

    def integrity_check(self):
        return self._connection.execute("PRAGMA integrity_check").fetchone()[0]


def describe_run(row):
    """A store row's settings in one short line: the preset and what differs from it."""
    return presets.describe(Config.from_dict(json.loads(row["config_json"])), row["preset"])


def _when(timestamp):
    return "-" if timestamp is None else datetime.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def format_run(run):
    """A run from `Store.show` as readable lines."""

    def percent(value):
        return "n/a" if value is None else f"{100 * value:.2f}%"

    config = Config.from_dict(run["config"])
    lines = [
        f"run {run['id']}: {run['status']}" + (f" ({run['error']})" if run.get("error") else ""),
        f"  setup       {presets.describe(config, run['preset'])}",
        f"  model       {config.describe()}",
        f"  data        {run['dataset']} (content {run['dataset_hash'][:12]}), backend {run['backend']}, seed {run['seed']}",
        f"  accuracy    test {percent(run['test_accuracy'])}, validation {percent(run['val_accuracy'])}, train (last epoch) {percent(run['train_accuracy'])}",
        f"  time        started {_when(run['started_at'])}, finished {_when(run['finished_at'])}, {run['seconds'] or 0:.1f} s",
        f"  directory   {run['run_dir']}",
        f"  group       {run['group_name'] or '-'}; config hash {run['config_hash']}",
    ]
    if run["epochs"]:
        lines.append("  epoch   loss    acc     val_loss val_acc  seconds")
        for row in run["epochs"]:
            values = [row[key] for key in ("loss", "accuracy", "val_loss", "val_accuracy", "seconds")]
            lines.append(
                f"  {row['epoch']:>5} " + " ".join("    n/a " if value is None else f"{value:8.4f}" for value in values)
            )
    return "\n".join(lines)


def _record_of(directory):
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

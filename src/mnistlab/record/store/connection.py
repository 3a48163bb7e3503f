"""The run store's SQLite connection: WAL, one write transaction at a time, the schema brought up to date on open.

Why SQLite: it is embedded (nothing to start), transactional (a run killed at any moment, even by `kill -9`,
leaves the file consistent: a transaction is in or out), and in WAL mode many processes can write while others
read.
"""

import contextlib
import os
import socket
import sqlite3
import time

from mnistlab.core.errors import StoreError
from mnistlab.record import migrations

BUSY_SECONDS = 60  # how long a statement waits for another process's write lock


def connect(path) -> sqlite3.Connection:
    """A connection to the store at PATH (created if new), in WAL mode, its schema migrated."""
    deadline = time.monotonic() + BUSY_SECONDS
    while True:
        connection = sqlite3.connect(path, timeout=BUSY_SECONDS, isolation_level=None)
        try:
            _prepare(connection, path)
            return connection
        except sqlite3.OperationalError as error:
            connection.close()
            # Switching a new file to WAL needs a moment of exclusive access, and SQLite answers "locked" at
            # once rather than waiting: wait here instead.
            if "locked" in str(error) and time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            raise _unusable(path, error) from None
        except sqlite3.DatabaseError as error:
            connection.close()
            raise _unusable(path, error) from None
        except BaseException:
            connection.close()
            raise


def _unusable(path, error):
    return StoreError(f"{path}: not a usable run store ({error}); point --store elsewhere or move the file away")


def _prepare(connection, path):
    connection.row_factory = sqlite3.Row
    # Asking the journal mode takes no lock; switching it (a new file) takes a moment of exclusive access.
    if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        connection.execute("PRAGMA journal_mode=WAL")
    # NORMAL is crash-safe in WAL mode (a crash loses at most the last commit, never consistency) and much
    # faster than FULL.
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA foreign_keys=ON")
    migrate(connection, path)


@contextlib.contextmanager
def write(db):
    """One write transaction, taking the write lock up front (no upgrade deadlocks)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def stored_version(db) -> int:
    """The schema version the file says, read without a lock (0 for a new file)."""
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.OperationalError as error:
        if "no such table" not in str(error):
            raise
        return 0
    return int(row["value"]) if row else 0


def migrate(db, path):
    """Apply the migrations above the file's schema version (`mnistlab.record.migrations`), in one transaction.

    Read first, lock only to change: an open of an up-to-date store (every open but the first after an upgrade)
    takes no write lock, so a reader never waits behind a writer (WAL).
    """
    version = stored_version(db)
    _refuse_newer(version, path)
    if version == migrations.SCHEMA_VERSION:
        return
    with write(db):
        db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        version = stored_version(db)  # again, under the lock: another process may have migrated it meanwhile
        _refuse_newer(version, path)
        for migration in migrations.after(version):
            migration.apply(db)
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (str(migration.version),)
            )


def _refuse_newer(version, path):
    if version > migrations.SCHEMA_VERSION:
        raise StoreError(
            f"{path}: written by a newer mnistlab (schema {version} > {migrations.SCHEMA_VERSION}); upgrade mnistlab"
        )


def this_host() -> str:
    return socket.gethostname()


def this_pid() -> int:
    return os.getpid()


def pid_alive(pid) -> bool:
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

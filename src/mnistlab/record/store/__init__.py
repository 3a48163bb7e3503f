"""The run store: an index of run directories, with config, history and metrics, in one SQLite file.

The run directory is the record of a run (`mnistlab.record.rundir`); this store indexes them for listing,
comparing and resuming, and `reindex()` rebuilds it from the directories, so a lost or corrupt runs.db loses
nothing. Only the process that drives the runs writes it: `mnistlab train` itself, or the sweep's driver for the
runs its workers train (locally or on Ray), or the lab's workers.

`Store` is the interface: typed methods in, rows (dicts) out, no SQL from callers. Behind it, one module per
job: `connection` (SQLite, WAL, the write lock, migrations from `mnistlab.record.migrations`), `queries` (which
runs: a `RunFilter`), `writes` (start, finish, reap), `queue` (the lab's queued runs), `reindex` (the index
rebuilt from the directories), `display` (a run in words).

A run is `running` from the moment it starts; it becomes `done`, `failed`, `diverged` or `interrupted`. The lab
queues runs first: a `queued` row holds the config and how to run it, has no run directory yet, and becomes
`running` when a worker takes it. A process that dies without saying so leaves a `running` row whose pid no
longer lives on its host: `reap()` marks it `interrupted`. Reaping writes, so readers never reap: the writers
do (a sweep's driver as it starts, the lab as it starts its workers).
"""

import functools
import os

from mnistlab.core import paths
from mnistlab.core.config import Config
from mnistlab.core.events import STORED_STATUSES
from mnistlab.record.migrations import SCHEMA_VERSION
from mnistlab.record.store import connection, queries, queue, reindex, writes
from mnistlab.record.store.display import describe_run, format_run, run_seconds, seconds_in_words
from mnistlab.record.store.queries import RUN_COLUMNS, SUMMARY_COLUMNS, RunFacets, RunFilter
from mnistlab.record.store.writes import FINAL_STATUSES

STATUSES = STORED_STATUSES

__all__ = [
    "FINAL_STATUSES",
    "RUN_COLUMNS",
    "SCHEMA_VERSION",
    "STATUSES",
    "SUMMARY_COLUMNS",
    "RunFacets",
    "RunFilter",
    "Store",
    "describe_run",
    "format_run",
    "run_seconds",
    "seconds_in_words",
]


def _with_connection(function):
    """A Store method that calls FUNCTION with the store's connection as its first argument; `help()`, editors
    and `inspect.signature` show FUNCTION's own signature and docstring."""

    @functools.wraps(function)
    def method(store, *args, **kwargs):
        return function(store._connection, *args, **kwargs)

    return method


class Store:
    """The index of runs in the SQLite file at PATH (default: `paths.store_path()`), opened and migrated."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = paths.store_path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = connection.connect(self.path)

    def close(self):
        self._connection.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def schema_version(self) -> int:
        return queries.schema_version(self._connection)

    # -- writing (`writes`) -------------------------------------------
    # The methods that take a run's setup (config, dataset hash, preset, group) are the functions of `writes` and
    # `queue` themselves, bound to the connection: their parameters are declared once, there.

    start_run = _with_connection(writes.start_run)

    finish_run = _with_connection(writes.finish_run)

    def reap(self, starting_pid: int | None = None) -> int:
        """Mark `running` rows of dead processes on this host `interrupted`; how many (`writes.reap`)."""
        return writes.reap(self._connection, starting_pid)

    # -- the lab's queue (`queue`) --------------------------------------

    queue_run = _with_connection(queue.queue_run)

    def start_queued(self, run_id: int, run_dir=None, machine: dict | None = None, pid: int | None = None) -> int:
        """A queued run taken by a worker of this process: now `running`, with its directory; its id."""
        return queue.start_queued(self._connection, self.path, run_id, run_dir, machine, pid)

    def cancel_queued(self, run_id: int) -> bool:
        """Remove a run that is still queued; False if it is not queued."""
        return queue.cancel_queued(self._connection, run_id)

    def fail_queued(self, run_id: int, error: str) -> bool:
        """A queued run that could not be started: `failed`, with why; False if it is not queued."""
        return queue.fail_queued(self._connection, run_id, error)

    def queued(self) -> list[dict]:
        """The queued runs, first queued first."""
        return queue.queued(self._connection)

    # -- reading (`queries`) --------------------------------------------

    def find(self, where: RunFilter = RunFilter()) -> list[dict]:
        """The runs WHERE holds, whole rows, in id order."""
        return queries.find(self._connection, where)

    def summaries(self, where: RunFilter = RunFilter()) -> list[dict]:
        """The runs WHERE holds, in id order, each as SUMMARY_COLUMNS (no metrics, machine or versions): for views
        over many runs, as the lab's list and a setup's runs."""
        return queries.find(self._connection, where, SUMMARY_COLUMNS)

    def done_runs_of(self, config: Config, dataset_hash: str) -> list[dict]:
        """The finished runs (repeats too) of CONFIG's setup, seed, backend and dataset, on data of DATASET_HASH."""
        where = RunFilter(
            status="done",
            config_hash=config.config_hash(),
            dataset=config.dataset,
            dataset_hash=dataset_hash,
            backend=config.backend,
            seed=config.seed,
        )
        return queries.find(self._connection, where)

    def runs(self, **where) -> list[dict]:
        """`find` by keywords, RunFilter's fields: `runs(status="done", preset="listing-1.3.2")`."""
        return queries.find(self._connection, RunFilter(**where))

    def get(self, run_id: int) -> dict:
        return queries.get(self._connection, run_id, self.path)

    def show(self, run_id: int) -> dict:
        """One run with its epochs, the JSON columns decoded."""
        return queries.show(self._connection, run_id, self.path)

    def epochs(self, run_id: int) -> list[dict]:
        return queries.epochs(self._connection, run_id)

    def done_run(self, key: str) -> dict | None:
        """The finished run of KEY (the first one, where it was repeated), or None."""
        return queries.done_run(self._connection, key)

    def count(self, status: str | None = None) -> int:
        return queries.count(self._connection, status)

    def live_runs(self) -> list[dict]:
        """The `running` rows whose process still lives on this host."""
        return queries.live_runs(self._connection)

    def integrity_check(self) -> str:
        return queries.integrity_check(self._connection)

    # -- rebuilding (`reindex`) -----------------------------------------

    def reindex(self, root=None) -> int:
        """Rebuild the index from the run directories below ROOT (default: the runs root); how many."""
        return reindex.reindex(self._connection, root)

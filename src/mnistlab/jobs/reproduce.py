"""Reproduce the chapter's result tables across seeds and compare them with the book.

`reproduce("table-1.4.1", seeds=3)` plans every row x seed, runs what the
store does not already hold, and summarises each row from exactly the
planned runs: so an interrupted reproduction, started again, ends with the
same table as an uninterrupted one.
"""

import dataclasses
import datetime
import json
import pathlib

from mnistlab.analysis.tables import markdown, summarize_rows, table_naming, write_outputs
from mnistlab.core import paths, presets
from mnistlab.core.config import BACKENDS
from mnistlab.core.errors import ConfigError
from mnistlab.jobs import sweep
from mnistlab.ml import data
from mnistlab.record.store import Store

ALL = "all"
BACKEND_NAMES = tuple(name for name in BACKENDS if name != "auto")  # what --backends may name


def expand_tables(table):
    if table == ALL:
        return list(presets.TABLES)
    if table not in presets.TABLES:
        raise ConfigError(f"unknown table {table!r}; choose one of {', '.join(presets.TABLES)} or {ALL}")
    return [table]


def parse_rows(text, table):
    """--rows "3,4" (or "2-4") as row numbers of TABLE, checked against the book's table."""
    count = len(presets.table_rows(table))
    numbers = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            low, _, high = part.partition("-")
            numbers += list(range(int(low), int(high or low) + 1))
        except ValueError:
            raise ConfigError(f"--rows takes row numbers like 3,4 or 2-4, got {text!r}") from None
    outside = [number for number in numbers if not 1 <= number <= count]
    if outside or not numbers:
        raise ConfigError(
            f"{table} has rows 1 to {count}; --rows {text} names {', '.join(map(str, outside)) or 'none'}"
        )
    return sorted(set(numbers))


@dataclasses.dataclass(frozen=True)
class TableChoice:
    """Which runs of a table a reproduction holds, besides its seeds: each field None (or its default) is the book's.

    `epochs`, `limit`: how long and on how many training images (None: each row's own, every image); `backend`:
    the Keras backend of every run, or `backends`: every row on each of these (each run trains in its own process,
    so one reproduction can hold every backend); `mlp_reading`: how Table 1.3.2's widths are read; `rows`: row
    numbers of one table (None: every row).
    """

    epochs: int | None = None
    limit: int | None = None
    backend: str = "auto"
    mlp_reading: str = presets.LISTING_READING
    rows: list[int] | None = None
    backends: list[str] | None = None

    def check(self, tables):
        if self.rows and len(tables) > 1:
            raise ConfigError("--rows names rows of one table; give the table instead of all")
        if self.backends:
            unknown = [name for name in self.backends if name not in BACKEND_NAMES]
            if unknown or len(set(self.backends)) != len(self.backends):
                raise ConfigError(
                    f"--backends takes distinct names among {', '.join(BACKEND_NAMES)}, got {','.join(self.backends)}"
                )


def plan_table(table, dataset, seeds, choice=TableChoice()):
    """Jobs for every row of `table` that CHOICE holds, every seed in `seeds` (an int N means 0..N-1)."""
    seeds = sweep.seed_list(seeds)
    changes = {"epochs": choice.epochs, "limit": choice.limit}
    changes = {key: value for key, value in changes.items() if value}
    configs = []
    for preset in presets.table_rows(table, choice.mlp_reading):
        if choice.rows and preset.row not in choice.rows:
            continue
        for backend in choice.backends or [choice.backend]:
            for seed in seeds:
                configs.append((preset.name, preset.build_config(seed=seed, backend=backend, **changes)))
    return sweep.plan(configs, dataset, group=table)


def reproduce(
    table,
    seeds=3,
    dataset="auto",
    choice=TableChoice(),
    workers=1,
    executor="local",
    address=None,
    store_path=None,
    out_dir=None,
    log=None,
):
    """Run (or resume) the reproduction of one table or `all`, the runs CHOICE holds; return
    {table: {"rows", "paths", "markdown"}}. With `backends` chosen, the tables say whether the backends differ
    beyond seed noise.
    """
    tables = expand_tables(table)
    choice.check(tables)
    loaded = data.load_dataset(dataset or "auto")
    plans = {name: plan_table(name, loaded, seeds, choice) for name in tables}
    jobs = [job for name in tables for job in plans[name]]
    sweep.run(jobs, store_path=store_path, workers=workers, executor=executor, address=address, log=log)
    results = {}
    with Store(store_path) as store:
        out_dir = pathlib.Path(out_dir) if out_dir else paths.tables_dir(store.path)
        seed_count = len(sweep.seed_list(seeds))
        for name in tables:
            summary = summarize_rows(name, plans[name], store, choice.mlp_reading)
            first = plans[name][0].config
            stem, context = table_naming(
                name,
                loaded.name,
                seed_count,
                first.epochs,
                choice.limit,
                choice.mlp_reading,
                choice.rows,
                choice.backends,
            )
            meta = {
                "dataset": loaded.name,
                "dataset_hash": loaded.content_hash(),
                "seeds": seed_count,
                "epochs": first.epochs,
                "limit": choice.limit,
                "mlp_reading": choice.mlp_reading,
                "rows_chosen": choice.rows,
                "backends": choice.backends,
                # Where the numbers come from: when the table was written, and the machines and versions its runs recorded.
                "written": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                **_provenance_of(store, summary),
            }
            written = write_outputs(out_dir, stem, name, summary, context, meta)
            results[name] = {"rows": summary, "paths": written, "markdown": markdown(name, summary, context)}
    return results


def _provenance_of(store, rows):
    """{"machines", "versions"}: each distinct machine and set of library versions the table's runs recorded."""
    machines, versions = [], []
    for run_id in (run_id for row in rows for run_id in row["run_ids"]):
        run = store.get(run_id)
        for seen, column in ((machines, "machine_json"), (versions, "versions_json")):
            value = json.loads(run[column]) if run[column] else None
            if value is not None and value not in seen:
                seen.append(value)
    return {"machines": machines, "versions": versions}


LISTINGS = ("listing-1.3.2", "listing-1.4.1", "listing-1.5.1")


def listings(dataset="auto", epochs=None, limit=None, seed=0, store_path=None, log=None):
    """The main job: train the book's three listings, in processes apart (jobs.runner); (dataset name, outcomes).

    Always trains (a repeat is recorded as a second finished run), with each
    run's progress shown.
    """
    loaded = data.load_dataset(dataset or "auto")
    changes = {"seed": seed, **({"epochs": epochs} if epochs else {}), **({"limit": limit} if limit else {})}
    configs = [(name, presets.get(name).build_config(**changes)) for name in LISTINGS]
    jobs = sweep.plan(configs, loaded, group="listings")
    return loaded.name, sweep.run(jobs, store_path=store_path, force=True, quiet=False, log=log)

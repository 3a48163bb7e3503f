"""Reproduce the chapter's result tables across seeds and compare them with the book.

`reproduce("table-1.4.1", seeds=3)` plans every row x seed, runs what the
store does not already hold, and summarises each row from exactly the
planned runs: so an interrupted reproduction, started again, ends with the
same table as an uninterrupted one.
"""

import csv
import io
import json
import pathlib

from mnistlab import data, fileio, paths, presets, stats, sweep
from mnistlab.config import Config
from mnistlab.errors import ConfigError
from mnistlab.store import Store

ALL = "all"
PERCENT = (0.0, 100.0)  # accuracies in %: an interval never leaves these


def expand_tables(table):
    if table == ALL:
        return list(presets.TABLES)
    if table not in presets.TABLES:
        raise ConfigError(f"unknown table {table!r}; choose one of {', '.join(presets.TABLES)} or {ALL}")
    return [table]


def plan_table(table, dataset, seeds, epochs=None, limit=None, backend="auto", mlp_reading=presets.LISTING_READING):
    """Jobs for every row of `table` and every seed in `seeds` (an int N means 0..N-1)."""
    seeds = sweep.seed_list(seeds)
    configs = []
    for preset in presets.table_rows(table, mlp_reading):
        changes = {"backend": backend}
        if epochs:
            changes["epochs"] = epochs
        if limit:
            changes["limit"] = limit
        for seed in seeds:
            configs.append((preset.name, preset.build_config(seed=seed, **changes)))
    return sweep.plan(configs, dataset, group=table)


def summarize_rows(table, jobs, store, mlp_reading=presets.LISTING_READING):
    """One dict per table row, from the store's done runs of exactly these jobs."""
    rows = []
    by_preset = {}
    for job in jobs:
        by_preset.setdefault(job.preset, []).append(job)
    for preset in presets.table_rows(table, mlp_reading):
        runs = [store.done_run(job.key) for job in by_preset.get(preset.name, [])]
        finished = [run for run in runs if run is not None]
        test = stats.summarize([100 * run["test_accuracy"] for run in finished], bounds=PERCENT)
        train = stats.summarize([100 * run["train_accuracy"] for run in finished], bounds=PERCENT)
        epoch_seconds = [run["mean_epoch_seconds"] for run in finished if run["mean_epoch_seconds"] is not None]
        rows.append(
            {
                "preset": preset.name,
                "row": preset.row,
                "settings": preset.summary,
                "book_train": preset.book_train_accuracy,
                "book_test": preset.book_test_accuracy,
                "runs": len(finished),
                "planned": len(runs),
                "test": test,
                "train": train,
                "book_test_in_ci": stats.inside(preset.book_test_accuracy, test),
                "mean_epoch_seconds": sum(epoch_seconds) / len(epoch_seconds) if epoch_seconds else None,
                "run_ids": [run["id"] for run in finished],
                "run_dirs": [run["run_dir"] for run in finished],  # the record of each run; the ids only find them in an index
            }
        )
    return rows


def _fmt(value, digits=2):
    return "n/a" if value is None else f"{value:.{digits}f}"


def _ci(summary):
    return "n/a" if summary["ci_low"] is None else f"[{summary['ci_low']:.2f}, {summary['ci_high']:.2f}]"


COLUMNS = ("row", "settings", "book train", "book test", "test mean", "test std", "test 95% CI", "train mean", "train std", "train 95% CI", "book test in CI", "runs", "epoch s")


def table_records(rows):
    """Rows as flat records with the printed column names."""
    records = []
    for row in rows:
        in_ci = row["book_test_in_ci"]
        records.append(
            dict(
                zip(
                    COLUMNS,
                    (
                        row["row"], row["settings"], _fmt(row["book_train"]), _fmt(row["book_test"], 1),
                        _fmt(row["test"]["mean"]), _fmt(row["test"]["std"]), _ci(row["test"]),
                        _fmt(row["train"]["mean"]), _fmt(row["train"]["std"]), _ci(row["train"]),
                        "n/a" if in_ci is None else ("yes" if in_ci else "no"),
                        f"{row['runs']}/{row['planned']}", _fmt(row["mean_epoch_seconds"], 1),
                    ),
                )
            )
        )
    return records


def markdown(table, rows, context):
    lines = [f"### {table}: book vs measured ({context})", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for record in table_records(rows):
        lines.append("| " + " | ".join(str(record[c]) for c in COLUMNS) + " |")
    lines.append("")
    lines.append("Accuracies in %. Train accuracy is the last epoch's as Keras reports it (dropout on), as in the book. The interval is the 95% t-interval of the mean over seeds, cut to [0, 100]; n/a with a single seed. 'book test in CI' needs at least 3 seeds (n/a below).")
    return "\n".join(lines) + "\n"


def write_outputs(out_dir, stem, table, rows, context, meta):
    out_dir = pathlib.Path(out_dir)
    written = {}
    written["md"] = out_dir / f"{stem}.md"
    fileio.write_text(written["md"], markdown(table, rows, context))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(table_records(rows))
    written["csv"] = out_dir / f"{stem}.csv"
    fileio.write_text(written["csv"], buffer.getvalue())
    written["json"] = out_dir / f"{stem}.json"
    fileio.write_json(written["json"], {"table": table, "context": context, **meta, "rows": rows})
    return written


def table_naming(table, dataset_name, seed_count, epochs, limit=None, mlp_reading=presets.LISTING_READING):
    """(file stem, header context) of a reproduced table: every setting that changes it is in both."""
    reading = mlp_reading if table == "table-1.3.2" else None
    context = f"{dataset_name}, {seed_count} seed(s), {epochs} epoch{'' if epochs == 1 else 's'}" + (f", first {limit} training samples" if limit else "") + (f", MLP widths read as {reading}" if reading else "")
    stem = f"{table}-{dataset_name}-s{seed_count}-e{epochs}" + (f"-n{limit}" if limit else "") + (f"-{reading}" if reading else "")
    return stem, context


def reproduce(table, seeds=3, dataset="auto", epochs=None, limit=None, workers=1, executor="local", address=None, store_path=None, out_dir=None, backend="auto", mlp_reading=presets.LISTING_READING, log=None):
    """Run (or resume) the reproduction of one table or `all`; return {table: {"rows", "paths", "markdown"}}."""
    tables = expand_tables(table)
    loaded = data.load_dataset(dataset or "auto")
    plans = {name: plan_table(name, loaded, seeds, epochs, limit, backend, mlp_reading) for name in tables}
    jobs = [job for name in tables for job in plans[name]]
    sweep.run(jobs, store_path=store_path, workers=workers, executor=executor, address=address, log=log)
    results = {}
    with Store(store_path) as store:
        out_dir = pathlib.Path(out_dir) if out_dir else paths.tables_dir(store.path)
        seed_count = len(sweep.seed_list(seeds))
        for name in tables:
            rows = summarize_rows(name, plans[name], store, mlp_reading)
            first = plans[name][0].config
            stem, context = table_naming(name, loaded.name, seed_count, first.epochs, limit, mlp_reading)
            meta = {"dataset": loaded.name, "dataset_hash": loaded.content_hash(), "seeds": seed_count, "epochs": first.epochs, "limit": limit, "mlp_reading": mlp_reading}
            written = write_outputs(out_dir, stem, name, rows, context, meta)
            results[name] = {"rows": rows, "paths": written, "markdown": markdown(name, rows, context)}
    return results


LISTINGS = ("listing-1.3.2", "listing-1.4.1", "listing-1.5.1")


def listings(dataset="auto", epochs=None, limit=None, seed=0, store_path=None, log=None):
    """The main job: train the book's three listings, each in its own process; (dataset name, outcomes).

    Always trains (a repeat is recorded as a second finished run), with each
    run's progress shown.
    """
    loaded = data.load_dataset(dataset or "auto")
    changes = {"seed": seed, **({"epochs": epochs} if epochs else {}), **({"limit": limit} if limit else {})}
    configs = [(name, presets.get(name).build_config(**changes)) for name in LISTINGS]
    jobs = sweep.plan(configs, loaded, group="listings")
    return loaded.name, sweep.run(jobs, store_path=store_path, force=True, quiet=False, log=log)


def select_runs(store, spec, dataset=None):
    """Done runs of one setup named by a preset, a config-hash prefix or group=NAME.

    A name that matches several setups is refused with the setups listed by
    their settings, so the user can pick one.
    """
    if spec.startswith("group="):
        runs = store.runs(status="done", group=spec.split("=", 1)[1])
    elif spec in presets.all_presets() or "@" in spec:
        runs = store.runs(status="done", preset=spec)
    else:
        runs = store.runs(status="done", config_hash=spec)
    if dataset:
        runs = [run for run in runs if run["dataset"] == dataset]
    if not runs:
        raise ConfigError(f"no finished runs match {spec!r}; give a preset name, a config hash (see `mnistlab runs list`) or group=NAME")
    setups = {}
    for run in runs:
        setups.setdefault((run["config_hash"], run["dataset"], run["backend"]), run)
    if len(setups) > 1:
        listed = "; ".join(f"{run['config_hash'][:8]} = {_run_description(run)} on {run['dataset']} with {run['backend']}" for run in setups.values())
        # Suggest --dataset only where the setups differ by dataset: otherwise it cannot help.
        by_dataset = " or add --dataset" if len({key[1] for key in setups}) > 1 else ""
        raise ConfigError(f"{spec!r} matches {len(setups)} setups ({listed}); name one by its config hash{by_dataset}")
    return runs


def _run_description(run):
    return presets.describe(Config.from_dict(json.loads(run["config_json"])), run["preset"])


def compare(a, b, store_path=None, dataset=None):
    """Is A's test accuracy over seeds different from B's? Welch's t-test on the store's done runs."""
    with Store(store_path) as store:
        store.reap()
        sides = [select_runs(store, spec, dataset) for spec in (a, b)]
    result = stats.compare([100 * run["test_accuracy"] for run in sides[0]], [100 * run["test_accuracy"] for run in sides[1]])
    result["a"], result["b"] = a, b
    result["setup_a"], result["setup_b"] = (_run_description(side[0]) for side in sides)
    return result

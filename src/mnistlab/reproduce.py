"""Reproduce the chapter's result tables across seeds and compare them with the book.

`reproduce("table-1.4.1", seeds=3)` plans every row x seed, runs what the
store does not already hold, and summarises each row from exactly the
planned runs: so an interrupted reproduction, started again, ends with the
same table as an uninterrupted one.
"""

import csv
import io
import pathlib

from mnistlab import fileio, presets, stats, sweep
from mnistlab.errors import ConfigError
from mnistlab.store import Store

ALL = "all"


def expand_tables(table):
    if table == ALL:
        return list(presets.TABLES)
    if table not in presets.TABLES:
        raise ConfigError(f"unknown table {table!r}; choose one of {', '.join(presets.TABLES)} or {ALL}")
    return [table]


def plan_table(table, dataset, seeds, epochs=None, limit=None, backend="auto", mlp_reading=presets.LISTING_READING):
    """Jobs for every row of `table` and every seed in `seeds` (an int N means 0..N-1)."""
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if not seeds:
        raise ConfigError("seeds must be at least 1")
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


def summarize(table, jobs, store, mlp_reading=presets.LISTING_READING):
    """One dict per table row, from the store's done runs of exactly these jobs."""
    rows = []
    by_preset = {}
    for job in jobs:
        by_preset.setdefault(job.preset, []).append(job)
    for preset in presets.table_rows(table, mlp_reading):
        runs = [store.done_run(job.key) for job in by_preset.get(preset.name, [])]
        finished = [run for run in runs if run is not None]
        test = stats.summarize([100 * run["test_accuracy"] for run in finished])
        train = stats.summarize([100 * run["train_accuracy"] for run in finished])
        epoch_seconds = [run["mean_epoch_seconds"] for run in finished if run["mean_epoch_seconds"] is not None]
        rows.append(
            {
                "preset": preset.name,
                "row": preset.row,
                "settings": preset.description.split(": ", 1)[1],
                "book_train": preset.book_train_accuracy,
                "book_test": preset.book_test_accuracy,
                "runs": len(finished),
                "planned": len(runs),
                "test": test,
                "train": train,
                "book_test_in_ci": stats.inside(preset.book_test_accuracy, test),
                "mean_epoch_seconds": sum(epoch_seconds) / len(epoch_seconds) if epoch_seconds else None,
                "run_ids": [run["id"] for run in finished],
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
    lines.append("Accuracies in %. Train accuracy is the last epoch's as Keras reports it (dropout on), as in the book. The interval is the 95% t-interval of the mean over seeds; n/a with a single seed.")
    return "\n".join(lines) + "\n"


def write_outputs(out_dir, stem, table, rows, context, meta):
    out_dir = pathlib.Path(out_dir)
    paths = {}
    paths["md"] = out_dir / f"{stem}.md"
    fileio.write_text(paths["md"], markdown(table, rows, context))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(table_records(rows))
    paths["csv"] = out_dir / f"{stem}.csv"
    fileio.write_text(paths["csv"], buffer.getvalue())
    paths["json"] = out_dir / f"{stem}.json"
    fileio.write_json(paths["json"], {"table": table, "context": context, **meta, "rows": rows})
    return paths


def reproduce(table, seeds=3, dataset="auto", epochs=None, limit=None, workers=1, executor="local", address=None, store_path=None, out_dir=None, backend="auto", mlp_reading=presets.LISTING_READING, log=None):
    """Run (or resume) the reproduction of one table or `all`; return {table: {"rows", "paths", "markdown"}}."""
    tables = expand_tables(table)
    loaded = sweep.resolve_dataset(dataset)
    plans = {name: plan_table(name, loaded, seeds, epochs, limit, backend, mlp_reading) for name in tables}
    jobs = [job for name in tables for job in plans[name]]
    sweep.run(jobs, store_path=store_path, workers=workers, executor=executor, address=address, log=log)
    results = {}
    with Store(store_path) as store:
        out_dir = pathlib.Path(out_dir) if out_dir else store.path.parent / "tables"
        seed_count = seeds if isinstance(seeds, int) else len(seeds)
        for name in tables:
            rows = summarize(name, plans[name], store, mlp_reading)
            first = plans[name][0].config
            context = f"{loaded.name}, {seed_count} seed(s), {first.epochs} epochs" + (f", first {limit} training samples" if limit else "")
            stem = f"{name}-{loaded.name}-s{seed_count}-e{first.epochs}" + (f"-n{limit}" if limit else "")
            meta = {"dataset": loaded.name, "dataset_hash": loaded.content_hash(), "seeds": seed_count, "epochs": first.epochs, "limit": limit, "mlp_reading": mlp_reading}
            paths = write_outputs(out_dir, stem, name, rows, context, meta)
            results[name] = {"rows": rows, "paths": paths, "markdown": markdown(name, rows, context)}
    return results

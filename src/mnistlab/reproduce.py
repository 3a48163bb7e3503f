"""Reproduce the chapter's result tables across seeds and compare them with the book.

`reproduce("table-1.4.1", seeds=3)` plans every row x seed, runs what the
store does not already hold, and summarises each row from exactly the
planned runs: so an interrupted reproduction, started again, ends with the
same table as an uninterrupted one.
"""

import csv
import datetime
import io
import itertools
import json
import pathlib

from mnistlab import book, data, fileio, paths, presets, seeds, stats, sweep
from mnistlab.config import BACKENDS, Config
from mnistlab.errors import ConfigError
from mnistlab.store import Store

ALL = "all"
BACKEND_NAMES = tuple(name for name in BACKENDS if name != "auto")  # what --backends may name
PERCENT = (0.0, 100.0)  # accuracies in %: an interval never leaves these


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
        raise ConfigError(f"{table} has rows 1 to {count}; --rows {text} names {', '.join(map(str, outside)) or 'none'}")
    return sorted(set(numbers))


def plan_table(table, dataset, seeds, epochs=None, limit=None, backend="auto", mlp_reading=presets.LISTING_READING, rows=None, backends=None):
    """Jobs for every row of `table` (or the row numbers in `rows`), every seed in `seeds` (an int N means
    0..N-1) and every backend in `backends` (default: the one `backend`; each run trains in its own process,
    so one reproduction can hold every backend)."""
    seeds = sweep.seed_list(seeds)
    configs = []
    for preset in presets.table_rows(table, mlp_reading):
        if rows and preset.row not in rows:
            continue
        for chosen in backends or [backend]:
            changes = {"backend": chosen}
            if epochs:
                changes["epochs"] = epochs
            if limit:
                changes["limit"] = limit
            for seed in seeds:
                configs.append((preset.name, preset.build_config(seed=seed, **changes)))
    return sweep.plan(configs, dataset, group=table)


def summarize_rows(table, jobs, store, mlp_reading=presets.LISTING_READING):
    """One dict per table row and backend planned, in the table's order, from the store's done runs of exactly these jobs
    (of each, the run that counts: `seeds.select_counted`; a forced repeat is counted once, and said)."""
    rows = []
    by_preset = {}
    for job in jobs:
        by_preset.setdefault((job.preset, job.config.backend), []).append(job)
    for preset in presets.table_rows(table, mlp_reading):
        for (name, backend), planned in by_preset.items():
            if name != preset.name:
                continue
            runs, repeats = seeds.counted_of_jobs(store, planned)
            finished = [run for run in runs if run is not None]
            rows.append(_row(preset, backend, runs, finished, repeats))
    return rows


def _row(preset, backend, runs, finished, repeats=()):
    test = stats.summarize([100 * run["test_accuracy"] for run in finished if run["test_accuracy"] is not None], bounds=PERCENT)
    # A run may record no train accuracy (one whose metrics say less, as a made-up or an old record): it adds none.
    train = stats.summarize([100 * run["train_accuracy"] for run in finished if run["train_accuracy"] is not None], bounds=PERCENT)
    epoch_seconds = [run["mean_epoch_seconds"] for run in finished if run["mean_epoch_seconds"] is not None]
    against = book.against_book(finished, preset, test)
    return {
        "preset": preset.name,
        "row": preset.row,
        "settings": preset.summary,
        "backend": backend,
        "book_train": preset.book_train_accuracy,
        "book_test": preset.book_test_accuracy,
        "runs": len(finished),
        "planned": len(runs),
        "test": test,
        "train": train,
        # The verdict only where the runs are the book's setup (book.comparable); elsewhere None, and why.
        "comparable": against["comparable"],
        "comparable_reason": against["reason"],
        "book_test_in_ci": against["inside"],
        "repeats": seeds.repeats_summary(finished, repeats),
        "mean_epoch_seconds": sum(epoch_seconds) / len(epoch_seconds) if epoch_seconds else None,
        "run_ids": [run["id"] for run in finished],
        "run_dirs": [run["run_dir"] for run in finished],  # the record of each run; the ids only find them in an index
    }


def backend_comparisons(rows):
    """Per table row reproduced on several backends: do the backends differ beyond seed noise?

    Welch's t-test for every pair of backends (what `runs compare` computes, from the
    row's n, mean and standard deviation), and one answer per row: the backends differ
    where a pair's p-value is below 0.05 / (number of pairs) (Bonferroni: with three
    backends, three chances of a false alarm). No answer below 3 seeds a side.
    """
    by_row = {}
    for row in rows:
        by_row.setdefault(row["row"], []).append(row)
    answers = []
    for number, cells in by_row.items():
        cells = [cell for cell in cells if cell.get("backend")]
        if len({cell["backend"] for cell in cells}) < 2:
            continue
        pairs = []
        for a, b in itertools.combinations(cells, 2):
            if a["test"]["n"] < 2 or b["test"]["n"] < 2:
                pairs.append({"a": a["backend"], "b": b["backend"], "n_a": a["test"]["n"], "n_b": b["test"]["n"], "p_value": None, "significant": None})
                continue
            pairs.append({"a": a["backend"], "b": b["backend"], **stats.compare_summaries(a["test"], b["test"])})
        threshold = (1 - stats.CONFIDENCE) / len(pairs)
        decided = all(pair["significant"] is not None for pair in pairs)
        differ = any(pair["p_value"] < threshold for pair in pairs) if decided else None
        smallest = min((pair["p_value"] for pair in pairs if pair["p_value"] is not None), default=None)
        if differ is None:
            verdict = f"no verdict: a verdict needs at least {stats.MIN_RUNS_FOR_VERDICT} seeds on each backend"
        else:
            verdict = (f"backends differ beyond seed noise (smallest p = {smallest:.3g} < {threshold:.3g}, Bonferroni over {len(pairs)} pairs)" if differ
                       else f"no difference between backends beyond seed noise (smallest p = {smallest:.3g}, Bonferroni threshold {threshold:.3g})")
        answers.append({"row": number, "preset": cells[0]["preset"], "backends": [cell["backend"] for cell in cells], "pairs": pairs, "threshold": threshold, "differ": differ, "verdict": verdict})
    return answers


def _fmt(value, digits=2):
    return "n/a" if value is None else f"{value:.{digits}f}"


def _ci(summary):
    return "n/a" if summary["ci_low"] is None else f"[{summary['ci_low']:.2f}, {summary['ci_high']:.2f}]"


COLUMNS = ("row", "settings", "book train", "book test", "test mean", "test std", "test 95% CI", "train mean", "train std", "train 95% CI", "book test in CI", "comparable", "runs", "epoch s", "comparable reason")
# The markdown leaves the reason out of the table (one note under it says it once).
MARKDOWN_LEFT_OUT = ("comparable reason",)


def several_backends(rows):
    return len({row.get("backend") for row in rows}) > 1


def columns_for(rows):
    """The printed columns: COLUMNS, with a backend column after the settings where the rows hold several backends."""
    return COLUMNS[:2] + ("backend",) + COLUMNS[2:] if several_backends(rows) else COLUMNS


def table_records(rows):
    """Rows as flat records with the printed column names (`columns_for(rows)`)."""
    records = []
    with_backend = several_backends(rows)
    for row in rows:
        in_ci = row["book_test_in_ci"]
        record = dict(
            zip(
                COLUMNS,
                (
                    row["row"], row["settings"], _fmt(row["book_train"]), _fmt(row["book_test"], 1),
                    _fmt(row["test"]["mean"]), _fmt(row["test"]["std"]), _ci(row["test"]),
                    _fmt(row["train"]["mean"]), _fmt(row["train"]["std"]), _ci(row["train"]),
                    "n/a" if in_ci is None else ("yes" if in_ci else "no"),
                    "yes" if row["comparable"] else "no",
                    f"{row['runs']}/{row['planned']}", _fmt(row["mean_epoch_seconds"], 1),
                    "" if row["comparable"] else row["comparable_reason"],
                ),
            )
        )
        if with_backend:
            record["backend"] = row["backend"]
        records.append(record)
    return records


def markdown(table, rows, context):
    columns = [column for column in columns_for(rows) if column not in MARKDOWN_LEFT_OUT]
    lines = [f"### {table}: book vs measured ({context})", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for record in table_records(rows):
        lines.append("| " + " | ".join(str(record[c]) for c in columns) + " |")
    lines.append("")
    lines.append("Accuracies in %. Train accuracy is the last epoch's as Keras reports it (dropout on), as in the book. The interval is the 95% t-interval of the mean over seeds, cut to [0, 100]; n/a with a single seed. "
                 f"'book test in CI' is said only where a row is 'comparable' with the book: full MNIST ({book.BOOK_TRAINING_IMAGES:,} training images), the book's epochs and settings, at least {stats.MIN_RUNS_FOR_VERDICT} seeds (n/a elsewhere).")
    by_reason = {}
    for row in rows:
        if not row["comparable"]:
            by_reason.setdefault(row["comparable_reason"], {})[row["row"]] = None
    if by_reason:
        notes = [f"row{'s' if len(numbers) > 1 else ''} {', '.join(map(str, numbers))}: {reason}" for reason, numbers in by_reason.items()]
        lines += ["", "Not held against the book (its figure is shown, without a verdict): " + "; ".join(notes) + "."]
    repeats = [f"row {row['row']}" + (f" on {row['backend']}" if several_backends(rows) else "") + f": {row['repeats']['words']}" for row in rows if (row.get("repeats") or {}).get("count")]
    if repeats:
        lines += ["", "Repeats of a seed count once (the newest run): " + "; ".join(repeats) + "."]
    comparisons = backend_comparisons(rows)
    if comparisons:
        lines += ["", "Do the backends agree? (Welch's t-test for each pair of backends, on test accuracy over seeds)", ""]
        for answer in comparisons:
            pairs = "; ".join(f"{pair['a']} - {pair['b']} = {pair['difference']:+.2f} points (p = {pair['p_value']:.3g})" for pair in answer["pairs"] if pair.get("difference") is not None)
            lines.append(f"- row {answer['row']}: {answer['verdict']}" + (f". {pairs}" if pairs else ""))
    return "\n".join(lines) + "\n"


def with_book_rule(saved):
    """SAVED (a table file `reproduce` wrote) with each row's "comparable" and "comparable_reason", and its verdict
    only where comparable: as written since the rule was, or for a file from before, by the same rule
    (`book.comparable`) on the runs the file records: its dataset and content, epochs, limit, and one seed per run."""
    rows = []
    for row in saved["rows"]:
        if "comparable" not in row:
            try:
                config = presets.get(row["preset"]).build_config(**{key: saved[key] for key in ("epochs", "limit") if saved.get(key)})
                runs = [{"dataset": saved.get("dataset"), "dataset_hash": saved.get("dataset_hash"), "config_hash": config.config_hash(),
                         "seed": seed, "config_json": json.dumps(config.to_dict())} for seed in range(row["runs"])]
            except ConfigError:  # a row of a preset this mnistlab does not know: no book figure to hold it against
                runs = []
            against = book.against_book(runs, row["preset"], row["test"])
            row = {**row, "comparable": against["comparable"], "comparable_reason": against["reason"], "book_test_in_ci": against["inside"]}
        rows.append(row)
    return {**saved, "rows": rows}


def write_outputs(out_dir, stem, table, rows, context, meta):
    out_dir = pathlib.Path(out_dir)
    written = {}
    written["md"] = out_dir / f"{stem}.md"
    fileio.write_text(written["md"], markdown(table, rows, context))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns_for(rows))
    writer.writeheader()
    writer.writerows(table_records(rows))
    written["csv"] = out_dir / f"{stem}.csv"
    fileio.write_text(written["csv"], buffer.getvalue())
    written["json"] = out_dir / f"{stem}.json"
    fileio.write_json(written["json"], {"table": table, "context": context, **meta, "rows": rows, "backend_comparisons": backend_comparisons(rows)})
    return written


def table_naming(table, dataset_name, seed_count, epochs, limit=None, mlp_reading=presets.LISTING_READING, rows=None, backends=None):
    """(file stem, header context) of a reproduced table: every setting that changes it is in both."""
    reading = mlp_reading if table == "table-1.3.2" else None
    context = f"{dataset_name}, {seed_count} seed(s), {epochs} epoch{'' if epochs == 1 else 's'}" + (f", first {limit} training samples" if limit else "") + (f", MLP widths read as {reading}" if reading else "")
    stem = f"{table}-{dataset_name}-s{seed_count}-e{epochs}" + (f"-n{limit}" if limit else "") + (f"-{reading}" if reading else "")
    if rows:
        context += ", rows " + ", ".join(map(str, rows))
        stem += "-r" + "+".join(map(str, rows))
    if backends:
        context += ", on " + ", ".join(backends)
        stem += "-" + "+".join(backends)
    return stem, context


def reproduce(table, seeds=3, dataset="auto", epochs=None, limit=None, workers=1, executor="local", address=None, store_path=None, out_dir=None, backend="auto", mlp_reading=presets.LISTING_READING, log=None, rows=None, backends=None):
    """Run (or resume) the reproduction of one table or `all`; return {table: {"rows", "paths", "markdown"}}.

    `rows`: row numbers (one table only); `backends`: run each row on each of these backends (each run in
    its own process), and the tables say whether the backends differ beyond seed noise.
    """
    tables = expand_tables(table)
    if rows and len(tables) > 1:
        raise ConfigError("--rows names rows of one table; give the table instead of all")
    if backends:
        unknown = [name for name in backends if name not in BACKEND_NAMES]
        if unknown or len(set(backends)) != len(backends):
            raise ConfigError(f"--backends takes distinct names among {', '.join(BACKEND_NAMES)}, got {','.join(backends)}")
    loaded = data.load_dataset(dataset or "auto")
    plans = {name: plan_table(name, loaded, seeds, epochs, limit, backend, mlp_reading, rows=rows, backends=backends) for name in tables}
    jobs = [job for name in tables for job in plans[name]]
    sweep.run(jobs, store_path=store_path, workers=workers, executor=executor, address=address, log=log)
    results = {}
    with Store(store_path) as store:
        out_dir = pathlib.Path(out_dir) if out_dir else paths.tables_dir(store.path)
        seed_count = len(sweep.seed_list(seeds))
        for name in tables:
            summary = summarize_rows(name, plans[name], store, mlp_reading)
            first = plans[name][0].config
            stem, context = table_naming(name, loaded.name, seed_count, first.epochs, limit, mlp_reading, rows=rows, backends=backends)
            meta = {"dataset": loaded.name, "dataset_hash": loaded.content_hash(), "seeds": seed_count, "epochs": first.epochs, "limit": limit, "mlp_reading": mlp_reading, "rows_chosen": rows, "backends": backends,
                    # Where the numbers come from: when the table was written, and the machines and versions its runs recorded.
                    "written": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), **_provenance_of(store, summary)}
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
    """The main job: train the book's three listings, each in its own process; (dataset name, outcomes).

    Always trains (a repeat is recorded as a second finished run), with each
    run's progress shown.
    """
    loaded = data.load_dataset(dataset or "auto")
    changes = {"seed": seed, **({"epochs": epochs} if epochs else {}), **({"limit": limit} if limit else {})}
    configs = [(name, presets.get(name).build_config(**changes)) for name in LISTINGS]
    jobs = sweep.plan(configs, loaded, group="listings")
    return loaded.name, sweep.run(jobs, store_path=store_path, force=True, quiet=False, log=log)


def find_runs(store, spec, dataset=None, backend=None):
    """Done runs named by a preset, a config-hash prefix, group=NAME or a run directory, however many setups they are."""
    if spec.startswith("group="):
        runs = store.runs(status="done", group=spec.split("=", 1)[1])
    elif spec in presets.all_presets() or "@" in spec:
        runs = store.runs(status="done", preset=spec)
    elif pathlib.Path(spec).is_dir():
        wanted = str(pathlib.Path(spec).resolve())
        runs = [run for run in store.runs(status="done") if run["run_dir"] and str(pathlib.Path(run["run_dir"]).resolve()) == wanted]
    else:
        runs = store.runs(status="done", config_hash=spec)
    if dataset:
        runs = [run for run in runs if run["dataset"] == dataset]
    if backend:
        runs = [run for run in runs if run["backend"] == backend]
    if not runs:
        raise ConfigError(f"no finished runs match {spec!r}; give a preset name, a config hash (see `mnistlab runs list`), group=NAME or a run directory")
    return runs


def select_runs(store, spec, dataset=None, backend=None):
    """Done runs of one setup named by a preset, a config-hash prefix or group=NAME.

    A name that matches several setups is refused with the setups listed by
    their settings, so the user can pick one.
    """
    runs = find_runs(store, spec, dataset, backend)
    setups = {}
    for run in runs:
        setups.setdefault((run["config_hash"], run["dataset"], run["backend"]), run)
    if len(setups) > 1:
        listed = "; ".join(f"{run['config_hash'][:8]} = {_run_description(run)} on {run['dataset']} with {run['backend']}" for run in setups.values())
        # Suggest --dataset only where the setups differ by dataset: otherwise it cannot help.
        by_dataset = " or add --dataset" if len({key[1] for key in setups}) > 1 else ""
        by_dataset += " or add --backend" if len({key[2] for key in setups}) > 1 else ""
        raise ConfigError(f"{spec!r} matches {len(setups)} setups ({listed}); name one by its config hash{by_dataset}")
    return runs


def _run_description(run):
    return presets.describe(Config.from_dict(json.loads(run["config_json"])), run["preset"])


def compare_runs(runs_a, runs_b):
    """Welch's t-test of two lists of store rows' test accuracies (in %): what `runs compare`, the report's
    comparison of setups and the backend comparison of a table all compute. The rows are the runs that
    count (`seeds.select_counted`): one per seed."""
    return stats.compare([100 * run["test_accuracy"] for run in runs_a], [100 * run["test_accuracy"] for run in runs_b])


def compare(a, b, store_path=None, dataset=None, backend=None):
    """Is A's test accuracy over seeds different from B's? Welch's t-test on the store's done runs, one per seed
    (a repeat of a seed is set aside, and said: "repeats_a"); beside each side, the book's figure ("book_a")
    and the verdict against it only where the side is the book's setup (`book.against_book`)."""
    with Store(store_path) as store:
        store.reap()
        sides = [seeds.select_counted(select_runs(store, spec, dataset, backend)) for spec in (a, b)]
    result = compare_runs(*(counted for counted, _ in sides))
    result["a"], result["b"] = a, b
    for name, (counted, repeats) in zip(("a", "b"), sides):
        result[f"setup_{name}"] = _run_description(counted[0])
        result[f"repeats_{name}"] = seeds.repeats_summary(counted, repeats)
        test = stats.summarize([100 * run["test_accuracy"] for run in counted], bounds=PERCENT)
        result[f"book_{name}"] = book.against_book(counted, counted[0]["preset"], test)
    return result

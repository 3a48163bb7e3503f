"""A reproduced chapter table as data: its rows from the store's runs (one per table row and backend, from
exactly the planned jobs), whether backends differ beyond seed noise, the book's rule on a file written before
it, and the name and context every setting of a reproduction gives its files.

A row (as `summarize_rows` makes it and `mnistlab reproduce` saves it in tables/<stem>.json): its preset, row
number and settings, backend, runs counted of those planned, test and train accuracy over seeds (`stats.summarize`,
in %), the book's figures, whether the runs are comparable with the book (`book.comparable`) and the verdict
where they are, the repeats of a seed set aside, and the run ids and directories behind it. `tables` writes it.
"""

import itertools
import json

from mnistlab.analysis import book, seeds
from mnistlab.core import presets, stats
from mnistlab.core.errors import ConfigError


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
    test = stats.summarize(
        [100 * run["test_accuracy"] for run in finished if run["test_accuracy"] is not None], bounds=stats.PERCENT
    )
    # A run may record no train accuracy (one whose metrics say less, as a made-up or an old record): it adds none.
    train = stats.summarize(
        [100 * run["train_accuracy"] for run in finished if run["train_accuracy"] is not None], bounds=stats.PERCENT
    )
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
                pairs.append(stats.too_few_to_compare(a["backend"], b["backend"], a["test"]["n"], b["test"]["n"]))
                continue
            pairs.append({"a": a["backend"], "b": b["backend"], **stats.compare_summaries(a["test"], b["test"])})
        threshold = (1 - stats.CONFIDENCE) / len(pairs)
        decided = all(pair["significant"] is not None for pair in pairs)
        differ = any(pair["p_value"] < threshold for pair in pairs) if decided else None
        smallest = min((pair["p_value"] for pair in pairs if pair["p_value"] is not None), default=None)
        if differ is None:
            verdict = f"no verdict: a verdict needs at least {stats.MIN_RUNS_FOR_VERDICT} seeds on each backend"
        else:
            verdict = (
                f"backends differ beyond seed noise (smallest p = {smallest:.3g} < {threshold:.3g}, Bonferroni over {len(pairs)} pairs)"
                if differ
                else f"no difference between backends beyond seed noise (smallest p = {smallest:.3g}, Bonferroni threshold {threshold:.3g})"
            )
        answers.append(
            {
                "row": number,
                "preset": cells[0]["preset"],
                "backends": [cell["backend"] for cell in cells],
                "pairs": pairs,
                "threshold": threshold,
                "differ": differ,
                "verdict": verdict,
            }
        )
    return answers


def with_book_rule(saved):
    """SAVED (a table file `reproduce` wrote) with each row's "comparable" and "comparable_reason", and its verdict
    only where comparable: as written since the rule was, or for a file from before, by the same rule
    (`book.comparable`) on the runs the file records: its dataset and content, epochs, limit, and one seed per run."""
    rows = []
    for row in saved["rows"]:
        if "comparable" not in row:
            try:
                config = presets.get(row["preset"]).build_config(
                    **{key: saved[key] for key in ("epochs", "limit") if saved.get(key)}
                )
                runs = [
                    {
                        "dataset": saved.get("dataset"),
                        "dataset_hash": saved.get("dataset_hash"),
                        "config_hash": config.config_hash(),
                        "seed": seed,
                        "config_json": json.dumps(config.to_dict()),
                    }
                    for seed in range(row["runs"])
                ]
            except ConfigError:  # a row of a preset this mnistlab does not know: no book figure to hold it against
                runs = []
            against = book.against_book(runs, row["preset"], row["test"])
            row = {
                **row,
                "comparable": against["comparable"],
                "comparable_reason": against["reason"],
                "book_test_in_ci": against["inside"],
            }
        rows.append(row)
    return {**saved, "rows": rows}


def table_naming(
    table, dataset_name, seed_count, epochs, limit=None, mlp_reading=presets.LISTING_READING, rows=None, backends=None
):
    """(file stem, header context) of a reproduced table: every setting that changes it is in both."""
    reading = mlp_reading if table == "table-1.3.2" else None
    context = (
        f"{dataset_name}, {seed_count} seed(s), {epochs} epoch{'' if epochs == 1 else 's'}"
        + (f", first {limit} training samples" if limit else "")
        + (f", MLP widths read as {reading}" if reading else "")
    )
    stem = (
        f"{table}-{dataset_name}-s{seed_count}-e{epochs}"
        + (f"-n{limit}" if limit else "")
        + (f"-{reading}" if reading else "")
    )
    if rows:
        context += ", rows " + ", ".join(map(str, rows))
        stem += "-r" + "+".join(map(str, rows))
    if backends:
        context += ", on " + ", ".join(backends)
        stem += "-" + "+".join(backends)
    return stem, context

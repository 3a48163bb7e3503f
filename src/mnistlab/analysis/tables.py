"""A reproduced chapter table as one data structure, and every format it goes out in.

`table_data(table)` reads the table file `mnistlab reproduce` wrote (tables/<stem>.json,
the latest by default) into one structure: per row (and backend) its settings, n
seeds, test accuracy mean with its 95% t-interval, the book's figure, whether the
row is comparable with it (`book.comparable`: full MNIST, the book's epochs and
settings, at least 3 seeds) and the verdict (is the book's figure inside the
interval) where it is, or why not where it is not (the figure then shown greyed
in HTML), the run directories behind the cell, and where the table was reproduced on several
backends, whether they differ beyond seed noise. `table_export(data, format)`
writes it as CSV, LaTeX (a booktabs tabular), HTML or JSON: every format is made
from the same formatted cells (`cells`), so they cannot disagree.
"""

import csv
import html
import io
import itertools
import json
import pathlib

from mnistlab.analysis import book, seeds
from mnistlab.core import fileio, paths, presets, stats
from mnistlab.core.errors import ConfigError, MnistlabError, NotFound

FORMATS = ("html", "csv", "latex", "json")
# How each format goes out as a file: its name's suffix and its media type (the lab's downloads).
SUFFIXES = {"html": ".html", "csv": ".csv", "latex": ".tex", "json": ".json"}
MEDIA_TYPES = {
    "html": "text/html; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "latex": "application/x-latex; charset=utf-8",
    "json": "application/json",
}
GREYED = "#8a9099"  # the colour of a book figure shown without a verdict (HTML)
HEADER = ("row", "settings", "backend", "seeds", "test mean", "test 95% CI", "book test", "comparable", "verdict")


def latest_table_json(table, store_path=None):
    """The newest table file `mnistlab reproduce TABLE` wrote beside the store."""
    if table not in presets.TABLES:
        raise NotFound(f"no chapter table {table!r}; the tables are {', '.join(presets.TABLES)}")
    directory = paths.tables_dir(store_path)
    candidates = sorted(directory.glob(f"{table}-*.json"), key=lambda path: (path.stat().st_mtime, path.name))
    if not candidates:
        raise NotFound(f"no reproduction of {table} found in {directory}; run `mnistlab reproduce {table}` first")
    return candidates[-1]


def verdict_words(in_ci, comparable=True, reason=""):
    """The verdict cell: the book's figure inside or outside the interval where the row is comparable with the
    book, else why it is not held against it (e.g. "book: MNIST, 10 epochs; this: fashion-mnist, 10 epochs")."""
    if not comparable:
        return book.verdict_words(comparable, reason, in_ci)
    if in_ci is None:
        return "no verdict"
    return "book inside CI" if in_ci else "book outside CI"


def table_data(table, store_path=None, table_json=None):
    """The reproduced TABLE as one plain structure (see the module's docstring)."""
    path = pathlib.Path(table_json) if table_json else latest_table_json(table, store_path)
    try:
        saved = json.loads(fileio.read_bytes(path, MnistlabError))
    except json.JSONDecodeError as error:
        raise MnistlabError(f"{path}: not a table file `mnistlab reproduce` wrote ({error})") from None
    if saved.get("table", table) != table:
        raise ConfigError(f"{path} holds {saved['table']}, not {table}")
    saved = with_book_rule(saved)  # a file from before the rule: the same rule on what it records
    rows = []
    for row in saved["rows"]:
        test = row["test"]
        rows.append(
            {
                "row": row["row"],
                "preset": row["preset"],
                "settings": row["settings"],
                "backend": row.get("backend"),
                "seeds": row["runs"],
                "planned": row["planned"],
                "test_mean": test["mean"],
                "test_std": test["std"],
                "test_ci_low": test["ci_low"],
                "test_ci_high": test["ci_high"],
                "book_test": row["book_test"],
                "book_train": row["book_train"],
                "comparable": row["comparable"],
                "comparable_reason": row["comparable_reason"],
                "book_test_in_ci": row["book_test_in_ci"],
                "verdict": verdict_words(row["book_test_in_ci"], row["comparable"], row["comparable_reason"]),
                "repeats": row.get("repeats"),
                "run_ids": row.get("run_ids", []),
                "run_dirs": row.get("run_dirs", []),
            }
        )
    return {
        "table": table,
        "context": saved.get("context"),
        "source": str(path),
        "dataset": saved.get("dataset"),
        "epochs": saved.get("epochs"),
        "several_backends": several_backends(saved["rows"]),
        "backends": sorted({row["backend"] for row in rows if row["backend"]}),
        "rows": rows,
        "backend_comparisons": backend_comparisons(saved["rows"]),
    }


def _number(value, digits=2):
    return "n/a" if value is None else f"{value:.{digits}f}"


def cells(row):
    """One row's printed cells, by HEADER column: what every format shows."""
    interval = "n/a" if row["test_ci_low"] is None else f"[{row['test_ci_low']:.2f}, {row['test_ci_high']:.2f}]"
    return {
        "row": str(row["row"]),
        "settings": row["settings"],
        "backend": row["backend"] or "",
        "seeds": f"{row['seeds']}/{row['planned']}",
        "test mean": _number(row["test_mean"]),
        "test 95% CI": interval,
        "book test": _number(row["book_test"], 1),
        "comparable": "yes" if row["comparable"] else "no",
        "verdict": row["verdict"],
    }


def header(data):
    return [column for column in HEADER if column != "backend" or data["several_backends"]]


def to_csv(data):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header(data), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(cells(row) for row in data["rows"])
    return buffer.getvalue()


LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text):
    return "".join(LATEX_SPECIALS.get(character, character) for character in str(text))


def to_latex(data):
    """A booktabs tabular (\\usepackage{booktabs}), ready to \\input in a paper."""
    columns = header(data)
    align = "".join(
        "l"
        if column in ("settings", "backend", "verdict")
        else ("c" if column in ("test 95% CI", "comparable") else "r")
        for column in columns
    )
    titles = {
        "row": "Row",
        "settings": "Settings",
        "backend": "Backend",
        "seeds": "Seeds",
        "test mean": "Test (\\%)",
        "test 95% CI": "95\\% CI",
        "book test": "Book (\\%)",
        "comparable": "Comparable",
        "verdict": "Verdict",
    }
    lines = [
        f"% {latex_escape(data['table'])}: {latex_escape(data['context'] or '')}. Generated by mnistlab report --format latex.",
        f"\\begin{{tabular}}{{{align}}}",
        "\\toprule",
        " & ".join(titles[column] for column in columns) + r" \\",
        "\\midrule",
    ]
    for row in data["rows"]:
        shown = cells(row)
        lines.append(" & ".join(latex_escape(shown[column]) for column in columns) + r" \\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


def to_html(data, page=True):
    """An HTML table (a whole page, or with page=False the <table> alone, for a report); each row carries
    its run ids and directories (data-run-ids, data-run-dirs), so a page can link a cell to its runs. The book's
    figure of a row not comparable with the book is greyed, with the reason as its title."""
    columns = header(data)
    head = "".join(f"<th>{html.escape(column)}</th>" for column in columns)
    body = []
    for row in data["rows"]:
        shown = cells(row)
        attributes = f" data-run-ids='{html.escape(json.dumps(row['run_ids']))}' data-run-dirs='{html.escape(json.dumps(row['run_dirs']))}' data-comparable='{str(row['comparable']).lower()}'"
        greyed = (
            {}
            if row["comparable"]
            else {
                "book test": f" class='not-comparable' style='color: {GREYED}' title='{html.escape(row['comparable_reason'])}'"
            }
        )
        body.append(
            f"<tr{attributes}>"
            + "".join(f"<td{greyed.get(column, '')}>{html.escape(shown[column])}</td>" for column in columns)
            + "</tr>"
        )
    table = f"<table class='mnistlab-table'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    if not page:
        return table
    title = html.escape(f"{data['table']} ({data['context']})")
    return f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title></head><body><h1>{title}</h1>{table}</body></html>\n"


def to_json(data):
    """The structure, with the header and each row's printed cells (what the other formats show) beside its figures."""
    shown = {**data, "header": header(data), "rows": [{**row, "cells": cells(row)} for row in data["rows"]]}
    return fileio.dumps(shown, "table", indent=2) + "\n"


def table_export(data, format):
    """TABLE DATA (`table_data`) as text in FORMAT: html, csv, latex or json."""
    writers = {"html": to_html, "csv": to_csv, "latex": to_latex, "json": to_json}
    if format not in writers:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    return writers[format](data)


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
                pairs.append(
                    {
                        "a": a["backend"],
                        "b": b["backend"],
                        "n_a": a["test"]["n"],
                        "n_b": b["test"]["n"],
                        "p_value": None,
                        "significant": None,
                    }
                )
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


def _fmt(value, digits=2):
    return "n/a" if value is None else f"{value:.{digits}f}"


def _ci(summary):
    return "n/a" if summary["ci_low"] is None else f"[{summary['ci_low']:.2f}, {summary['ci_high']:.2f}]"


COLUMNS = (
    "row",
    "settings",
    "book train",
    "book test",
    "test mean",
    "test std",
    "test 95% CI",
    "train mean",
    "train std",
    "train 95% CI",
    "book test in CI",
    "comparable",
    "runs",
    "epoch s",
    "comparable reason",
)


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
                    row["row"],
                    row["settings"],
                    _fmt(row["book_train"]),
                    _fmt(row["book_test"], 1),
                    _fmt(row["test"]["mean"]),
                    _fmt(row["test"]["std"]),
                    _ci(row["test"]),
                    _fmt(row["train"]["mean"]),
                    _fmt(row["train"]["std"]),
                    _ci(row["train"]),
                    "n/a" if in_ci is None else ("yes" if in_ci else "no"),
                    "yes" if row["comparable"] else "no",
                    f"{row['runs']}/{row['planned']}",
                    _fmt(row["mean_epoch_seconds"], 1),
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
    lines = [
        f"### {table}: book vs measured ({context})",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for record in table_records(rows):
        lines.append("| " + " | ".join(str(record[c]) for c in columns) + " |")
    lines.append("")
    lines.append(
        "Accuracies in %. Train accuracy is the last epoch's as Keras reports it (dropout on), as in the book. The interval is the 95% t-interval of the mean over seeds, cut to [0, 100]; n/a with a single seed. "
        f"'book test in CI' is said only where a row is 'comparable' with the book: full MNIST ({book.BOOK_TRAINING_IMAGES:,} training images), the book's epochs and settings, at least {stats.MIN_RUNS_FOR_VERDICT} seeds (n/a elsewhere)."
    )
    by_reason = {}
    for row in rows:
        if not row["comparable"]:
            by_reason.setdefault(row["comparable_reason"], {})[row["row"]] = None
    if by_reason:
        notes = [
            f"row{'s' if len(numbers) > 1 else ''} {', '.join(map(str, numbers))}: {reason}"
            for reason, numbers in by_reason.items()
        ]
        lines += ["", "Not held against the book (its figure is shown, without a verdict): " + "; ".join(notes) + "."]
    repeats = [
        f"row {row['row']}"
        + (f" on {row['backend']}" if several_backends(rows) else "")
        + f": {row['repeats']['words']}"
        for row in rows
        if (row.get("repeats") or {}).get("count")
    ]
    if repeats:
        lines += ["", "Repeats of a seed count once (the newest run): " + "; ".join(repeats) + "."]
    comparisons = backend_comparisons(rows)
    if comparisons:
        lines += [
            "",
            "Do the backends agree? (Welch's t-test for each pair of backends, on test accuracy over seeds)",
            "",
        ]
        for answer in comparisons:
            pairs = "; ".join(
                f"{pair['a']} - {pair['b']} = {pair['difference']:+.2f} points (p = {pair['p_value']:.3g})"
                for pair in answer["pairs"]
                if pair.get("difference") is not None
            )
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
    fileio.write_json(
        written["json"],
        {"table": table, "context": context, **meta, "rows": rows, "backend_comparisons": backend_comparisons(rows)},
    )
    return written


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

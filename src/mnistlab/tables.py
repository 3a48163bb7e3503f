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
import json
import pathlib

from mnistlab import book, fileio, paths, presets, reproduce
from mnistlab.errors import ConfigError, MnistlabError, NotFound

FORMATS = ("html", "csv", "latex", "json")
# How each format goes out as a file: its name's suffix and its media type (the lab's downloads).
SUFFIXES = {"html": ".html", "csv": ".csv", "latex": ".tex", "json": ".json"}
MEDIA_TYPES = {"html": "text/html; charset=utf-8", "csv": "text/csv; charset=utf-8", "latex": "application/x-latex; charset=utf-8", "json": "application/json"}
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
    saved = reproduce.with_book_rule(saved)  # a file from before the rule: the same rule on what it records
    rows = []
    for row in saved["rows"]:
        test = row["test"]
        rows.append({
            "row": row["row"], "preset": row["preset"], "settings": row["settings"], "backend": row.get("backend"),
            "seeds": row["runs"], "planned": row["planned"],
            "test_mean": test["mean"], "test_std": test["std"], "test_ci_low": test["ci_low"], "test_ci_high": test["ci_high"],
            "book_test": row["book_test"], "book_train": row["book_train"],
            "comparable": row["comparable"], "comparable_reason": row["comparable_reason"], "book_test_in_ci": row["book_test_in_ci"],
            "verdict": verdict_words(row["book_test_in_ci"], row["comparable"], row["comparable_reason"]),
            "repeats": row.get("repeats"),
            "run_ids": row.get("run_ids", []), "run_dirs": row.get("run_dirs", []),
        })
    return {
        "table": table, "context": saved.get("context"), "source": str(path), "dataset": saved.get("dataset"), "epochs": saved.get("epochs"),
        "several_backends": reproduce.several_backends(saved["rows"]),
        "backends": sorted({row["backend"] for row in rows if row["backend"]}),
        "rows": rows,
        "backend_comparisons": reproduce.backend_comparisons(saved["rows"]),
    }


def _number(value, digits=2):
    return "n/a" if value is None else f"{value:.{digits}f}"


def cells(row):
    """One row's printed cells, by HEADER column: what every format shows."""
    interval = "n/a" if row["test_ci_low"] is None else f"[{row['test_ci_low']:.2f}, {row['test_ci_high']:.2f}]"
    return {
        "row": str(row["row"]), "settings": row["settings"], "backend": row["backend"] or "", "seeds": f"{row['seeds']}/{row['planned']}",
        "test mean": _number(row["test_mean"]), "test 95% CI": interval, "book test": _number(row["book_test"], 1),
        "comparable": "yes" if row["comparable"] else "no", "verdict": row["verdict"],
    }


def header(data):
    return [column for column in HEADER if column != "backend" or data["several_backends"]]


def to_csv(data):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header(data), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(cells(row) for row in data["rows"])
    return buffer.getvalue()


LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text):
    return "".join(LATEX_SPECIALS.get(character, character) for character in str(text))


def to_latex(data):
    """A booktabs tabular (\\usepackage{booktabs}), ready to \\input in a paper."""
    columns = header(data)
    align = "".join("l" if column in ("settings", "backend", "verdict") else ("c" if column in ("test 95% CI", "comparable") else "r") for column in columns)
    titles = {"row": "Row", "settings": "Settings", "backend": "Backend", "seeds": "Seeds", "test mean": "Test (\\%)", "test 95% CI": "95\\% CI", "book test": "Book (\\%)",
              "comparable": "Comparable", "verdict": "Verdict"}
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
        greyed = {} if row["comparable"] else {"book test": f" class='not-comparable' style='color: {GREYED}' title='{html.escape(row['comparable_reason'])}'"}
        body.append(f"<tr{attributes}>" + "".join(f"<td{greyed.get(column, '')}>{html.escape(shown[column])}</td>" for column in columns) + "</tr>")
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

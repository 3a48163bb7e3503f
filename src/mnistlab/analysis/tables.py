"""A reproduced chapter table, and every format it goes out in: the one table writer.

`mnistlab reproduce` writes each table it reproduces as three files beside the store (`write_outputs`):
tables/<stem>.md (the markdown it prints), .csv and .json (the rows, `table_rows.summarize_rows`, with the
reproduction's settings and provenance). `table_data(table)` reads a table file (the latest by default) into
one structure: per row (and backend) its settings, n seeds, test accuracy mean with its 95% t-interval, the
book's figure, whether the row is comparable with it (`book.comparable`: full MNIST, the book's epochs and
settings, at least 3 seeds) and the verdict (is the book's figure inside the interval) where it is, or why not
where it is not (the figure then shown greyed in HTML), the run directories behind the cell, and where the
table was reproduced on several backends, whether they differ beyond seed noise. `table_export(data, format)`
writes it as CSV, LaTeX (a booktabs tabular), HTML or JSON.

Every output is made of the cells of one column declaration (`table_columns.COLUMNS`), so none can disagree;
the files `reproduce` writes show more columns (`WRITTEN`) than the exports (`EXPORTED`).
"""

import csv
import html
import io
import json
import pathlib

from mnistlab.analysis import book
from mnistlab.analysis.table_columns import (
    COLUMNS,
    EXPORTED,
    WRITTEN,
    cells,
    columns,
    flat_row,
    several_backends,
    verdict_words,
)
from mnistlab.analysis.table_rows import backend_comparisons, summarize_rows, table_naming, with_book_rule
from mnistlab.core import fileio, paths, presets, stats
from mnistlab.core.errors import ConfigError, MnistlabError, NotFound

__all__ = [
    "FORMATS",
    "GREYED",
    "LATEX_SPECIALS",
    "MEDIA_TYPES",
    "SUFFIXES",
    "backend_comparisons",
    "cells",
    "header",
    "latest_table_json",
    "latex_escape",
    "markdown",
    "summarize_rows",
    "table_data",
    "table_export",
    "table_naming",
    "table_records",
    "to_csv",
    "to_html",
    "to_json",
    "to_latex",
    "verdict_words",
    "with_book_rule",
    "write_outputs",
]

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
# The markdown leaves the reason out of the table (one note under it says it once).
MARKDOWN_LEFT_OUT = ("comparable reason",)


def latest_table_json(table, store_path=None):
    """The newest table file `mnistlab reproduce TABLE` wrote beside the store."""
    if table not in presets.TABLES:
        raise NotFound(f"no chapter table {table!r}; the tables are {', '.join(presets.TABLES)}")
    directory = paths.tables_dir(store_path)
    candidates = sorted(directory.glob(f"{table}-*.json"), key=lambda path: (path.stat().st_mtime, path.name))
    if not candidates:
        raise NotFound(f"no reproduction of {table} found in {directory}; run `mnistlab reproduce {table}` first")
    return candidates[-1]


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
    rows = [flat_row(row) for row in saved["rows"]]
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


def header(data):
    """The exports' columns of table DATA (`table_data`)."""
    return columns(EXPORTED, data["several_backends"])


def _csv_text(names, records, lineterminator="\n"):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=names, extrasaction="ignore", lineterminator=lineterminator)
    writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue()


def to_csv(data):
    return _csv_text(header(data), (cells(row) for row in data["rows"]))


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
    names = header(data)
    lines = [
        f"% {latex_escape(data['table'])}: {latex_escape(data['context'] or '')}. Generated by mnistlab report --format latex.",
        f"\\begin{{tabular}}{{{''.join(COLUMNS[name].align for name in names)}}}",
        "\\toprule",
        " & ".join(COLUMNS[name].title for name in names) + r" \\",
        "\\midrule",
    ]
    for row in data["rows"]:
        shown = cells(row)
        lines.append(" & ".join(latex_escape(shown[name]) for name in names) + r" \\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


def to_html(data, page=True):
    """An HTML table (a whole page, or with page=False the <table> alone, for a report); each row carries
    its run ids and directories (data-run-ids, data-run-dirs), so a page can link a cell to its runs. The book's
    figure of a row not comparable with the book is greyed, with the reason as its title."""
    names = header(data)
    head = "".join(f"<th>{html.escape(name)}</th>" for name in names)
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
            + "".join(f"<td{greyed.get(name, '')}>{html.escape(shown[name])}</td>" for name in names)
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


def table_records(rows):
    """Table ROWS (`summarize_rows`) as flat records of the files `reproduce` writes: their columns' cells."""
    names = columns(WRITTEN, several_backends(rows))
    return [cells(flat_row(row), names) for row in rows]


def markdown(table, rows, context):
    """The markdown `mnistlab reproduce` prints and writes: the table, then notes on what it cannot say in cells."""
    names = [name for name in columns(WRITTEN, several_backends(rows)) if name not in MARKDOWN_LEFT_OUT]
    lines = [
        f"### {table}: book vs measured ({context})",
        "",
        "| " + " | ".join(names) + " |",
        "|" + "---|" * len(names),
    ]
    for record in table_records(rows):
        lines.append("| " + " | ".join(record[name] for name in names) + " |")
    lines.append("")
    lines.append(
        "Accuracies in %. Train accuracy is the last epoch's as Keras reports it (dropout on), as in the book. The interval is the 95% t-interval of the mean over seeds, cut to [0, 100]; n/a with a single seed. "
        f"'book test in CI' is said only where a row is 'comparable' with the book: full MNIST ({book.BOOK_TRAINING_IMAGES:,} training images), the book's epochs and settings, at least {stats.MIN_RUNS_FOR_VERDICT} seeds (n/a elsewhere)."
    )
    return "\n".join(lines + _markdown_notes(rows)) + "\n"


def _markdown_notes(rows):
    """The lines under the markdown table: the rows not held against the book, the repeats, the backends."""
    lines, by_reason = [], {}
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
    return lines


def write_outputs(out_dir, stem, table, rows, context, meta):
    """The files `mnistlab reproduce` writes of a table: OUT_DIR/STEM.md (`markdown`), .csv and .json; their paths."""
    out_dir = pathlib.Path(out_dir)
    written = {}
    written["md"] = out_dir / f"{stem}.md"
    fileio.write_text(written["md"], markdown(table, rows, context))
    # The csv module's own line ends (\r\n), as these files have always had.
    csv_text = _csv_text(columns(WRITTEN, several_backends(rows)), table_records(rows), lineterminator="\r\n")
    written["csv"] = out_dir / f"{stem}.csv"
    fileio.write_text(written["csv"], csv_text)
    written["json"] = out_dir / f"{stem}.json"
    fileio.write_json(
        written["json"],
        {"table": table, "context": context, **meta, "rows": rows, "backend_comparisons": backend_comparisons(rows)},
    )
    return written

"""The one column declaration of a reproduced table: each column's header, the one formatter of its cell, and how
LaTeX titles and aligns it. Every output of a table (`tables`) is made of these cells, so none can disagree.

A cell is formatted from a table row's figures as one flat dict (`flat_row`: what `tables.table_data` gives per
row). Two outputs take different columns of the one list, as they always have (`EXPORTED`, `WRITTEN`).
"""

import dataclasses
from collections.abc import Callable

from mnistlab.analysis import book


def number(value, digits=2):
    return "n/a" if value is None else f"{value:.{digits}f}"


def interval(low, high):
    return "n/a" if low is None else f"[{low:.2f}, {high:.2f}]"


def yes_no(value):
    """A yes-or-no that may not be known (no verdict): yes, no or n/a."""
    return "n/a" if value is None else ("yes" if value else "no")


def verdict_words(in_ci, comparable=True, reason=""):
    """The verdict cell: the book's figure inside or outside the interval where the row is comparable with the
    book, else why it is not held against it (e.g. "book: MNIST, 10 epochs; this: fashion-mnist, 10 epochs")."""
    if not comparable:
        return book.verdict_words(comparable, reason, in_ci)
    if in_ci is None:
        return "no verdict"
    return "book inside CI" if in_ci else "book outside CI"


def _seeds(row):
    return f"{row['seeds']}/{row['planned']}"


@dataclasses.dataclass(frozen=True)
class Column:
    name: str  # its header
    cell: Callable[[dict], str]  # its cell, from a flat row
    title: str  # its LaTeX header
    align: str = "r"  # its LaTeX alignment: l, c or r


COLUMNS = {
    column.name: column
    for column in (
        Column("row", lambda row: str(row["row"]), "Row"),
        Column("settings", lambda row: row["settings"], "Settings", "l"),
        Column("backend", lambda row: row["backend"] or "", "Backend", "l"),
        Column("seeds", _seeds, "Seeds"),
        Column("book train", lambda row: number(row["book_train"]), "Book train (\\%)"),
        Column("book test", lambda row: number(row["book_test"], 1), "Book (\\%)"),
        Column("test mean", lambda row: number(row["test_mean"]), "Test (\\%)"),
        Column("test std", lambda row: number(row["test_std"]), "Test SD"),
        Column("test 95% CI", lambda row: interval(row["test_ci_low"], row["test_ci_high"]), "95\\% CI", "c"),
        Column("train mean", lambda row: number(row["train_mean"]), "Train (\\%)"),
        Column("train std", lambda row: number(row["train_std"]), "Train SD"),
        Column("train 95% CI", lambda row: interval(row["train_ci_low"], row["train_ci_high"]), "Train 95\\% CI", "c"),
        Column("book test in CI", lambda row: yes_no(row["book_test_in_ci"]), "Book in CI", "c"),
        Column("comparable", lambda row: "yes" if row["comparable"] else "no", "Comparable", "c"),
        Column("verdict", lambda row: row["verdict"], "Verdict", "l"),
        Column("runs", _seeds, "Runs"),  # the files `reproduce` writes call the seeds column so
        Column("epoch s", lambda row: number(row["mean_epoch_seconds"], 1), "Epoch (s)"),
        Column("comparable reason", lambda row: "" if row["comparable"] else row["comparable_reason"], "Why not", "l"),
    )
}

# What each output shows, in its order; "backend" only where a table holds several backends.
EXPORTED = ("row", "settings", "backend", "seeds", "test mean", "test 95% CI", "book test", "comparable", "verdict")
WRITTEN = (
    "row",
    "settings",
    "backend",
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


def several_backends(rows):
    return len({row.get("backend") for row in rows}) > 1


def columns(view, with_backend):
    """VIEW's column names: without "backend" unless WITH_BACKEND (a table of several backends)."""
    return [name for name in view if name != "backend" or with_backend]


def cells(row, names=EXPORTED):
    """A flat row's printed cells (header: text), of the columns NAMES."""
    return {name: COLUMNS[name].cell(row) for name in names}


def flat_row(row):
    """A table row as `summarize_rows` makes it and a table file saves it (`table_rows`), as one flat dict of its
    figures: what each cell is formatted from, and `tables.table_data`'s row."""
    test, train = row["test"], row.get("train") or {}
    return {
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
        "train_mean": train.get("mean"),
        "train_std": train.get("std"),
        "train_ci_low": train.get("ci_low"),
        "train_ci_high": train.get("ci_high"),
        "mean_epoch_seconds": row.get("mean_epoch_seconds"),
    }

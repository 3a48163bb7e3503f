"""The report of a reproduced table: the table (as `mnistlab report TABLE --format` exports it), per-row learning
curves (mean and band across seeds), the comparison with the book, whether backends differ, the disagreement
atlas of each row's seeds, and the digit-level figures for the row with the best *validation* accuracy (never
chosen on the test set)."""

import html
import json
import pathlib

import numpy as np

from mnistlab.analysis import tables
from mnistlab.core import fileio
from mnistlab.outputs import plots
from mnistlab.outputs.report_atlas import atlas_sections
from mnistlab.outputs.report_html import figures_dir, html_table, image, page, welch_cells
from mnistlab.outputs.run_report import curves_figure, digit_sections
from mnistlab.record import rundir
from mnistlab.record.store import Store


def book_comparison_figure(rows, path, title):
    plt = plots.plt
    figure, axis = plt.subplots(figsize=(max(6, 0.55 * len(rows) + 2), 4.5))
    positions = np.arange(len(rows))
    means = np.array([row["test"]["mean"] if row["test"]["mean"] is not None else np.nan for row in rows])
    lows = np.array([row["test"]["ci_low"] if row["test"]["ci_low"] is not None else np.nan for row in rows])
    highs = np.array([row["test"]["ci_high"] if row["test"]["ci_high"] is not None else np.nan for row in rows])
    errors = np.vstack([means - lows, highs - means])
    axis.errorbar(
        positions,
        means,
        yerr=np.nan_to_num(errors),
        fmt="o",
        color="tab:blue",
        capsize=4,
        label="measured test (mean, 95% CI)",
    )
    # The book's figure: red where the row is held against it (full MNIST, the book's epochs, 3 seeds or more:
    # book.comparable), grey where it is only shown.
    held = np.array([bool(row.get("comparable")) for row in rows])
    figures = np.array([np.nan if row["book_test"] is None else row["book_test"] for row in rows], dtype=float)
    if held.any():
        axis.plot(positions[held], figures[held], "r*", markersize=11, label="book test")
    if not held.all():
        axis.plot(
            positions[~held],
            figures[~held],
            "*",
            color=tables.GREYED,
            markersize=11,
            label="book test (not comparable: other data, epochs or settings, or under 3 seeds)",
        )
    axis.set_xticks(positions)
    axis.set_xticklabels([f"row {row['row']}" for row in rows], rotation=45 if len(rows) > 6 else 0)
    axis.set_ylabel("test accuracy %")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend()
    return plots.save_figure(figure, path)


def _row_run_dirs(row, store_path):
    """A table row's run directories: as the table file records them, or (files from before it did) found by run id in the index."""
    if "run_dirs" in row:
        return row["run_dirs"]
    with Store(store_path) as store:
        return [store.get(run_id)["run_dir"] for run_id in row["run_ids"]]


def table_report(table, out, store_path=None, table_json=None):
    """HTML report of a reproduced table: the table (as `mnistlab report TABLE --format` exports it), curves per
    row, the book comparison, whether backends differ, each row's atlas, and the best-validation row's digits."""
    reproduced = tables.table_data(table, store_path=store_path, table_json=table_json)
    summary = tables.with_book_rule(json.loads(pathlib.Path(reproduced["source"]).read_text()))
    rows = summary["rows"]
    figures = figures_dir(out)
    sections = [(f"{table} vs the book ({summary['context']})", tables.to_html(reproduced, page=False))]
    comparison_path = book_comparison_figure(rows, figures / "book-comparison.png", f"{table}: measured vs book")
    sections.append(("Comparison with the book", image(comparison_path, "book comparison")))
    if reproduced["backend_comparisons"]:
        sections.append(("Do the backends agree?", _backend_table(reproduced["backend_comparisons"])))
    curves, atlas_rows, best = _row_curves(rows, reproduced["several_backends"], figures, store_path)
    sections += curves
    if atlas_rows:
        sections += atlas_sections(
            list(atlas_rows.items()),
            figures,
            f"row {best[1]['row']}" if best else None,
            by="backend" if reproduced["several_backends"] else None,
        )
    if best is not None and (pathlib.Path(best[2][0]["run_dir"]) / rundir.MODEL_FILE).exists():
        sections += _best_row_sections(*best[1:], figures)
    fileio.write_text(out, page(f"mnistlab report: {table}", sections))
    return {"html": str(out), "figures": sorted(str(p) for p in figures.iterdir()), "table_json": reproduced["source"]}


def _row_curves(rows, several_backends, figures, store_path):
    """(a learning-curves section per row, {row label: its run directories} for the atlas, (validation, row, runs)
    of the row with the best mean validation accuracy, or None)."""
    sections, atlas_rows, best = [], {}, None
    for row in rows:
        # The run directories are the record: histories and metrics come from them.
        runs = [
            {"run_dir": run_dir, "metrics": rundir.read_metrics(run_dir) or {}, "history": rundir.read_history(run_dir)}
            for run_dir in _row_run_dirs(row, store_path)
        ]
        histories = [run["history"] for run in runs if run["history"]]
        if not histories:
            continue
        label = f"row {row['row']}" + (f" on {row['backend']}" if several_backends else "")
        stem = f"row{row['row']}" + (f"-{row['backend']}" if several_backends else "")
        path = curves_figure(
            histories,
            figures / f"curves-{stem}.png",
            f"{label.capitalize()}: {row['settings']} ({len(histories)} seed(s))",
        )
        sections.append((f"Learning curves, {label}", image(path, f"learning curves {label}")))
        # One atlas per row: its seeds, on every backend it ran on (grouped by backend then).
        atlas_rows.setdefault(f"row {row['row']}", []).extend(run["run_dir"] for run in runs)
        validation = np.mean(
            [run["metrics"]["val_accuracy"] for run in runs if run["metrics"].get("val_accuracy") is not None]
            or [np.nan]
        )
        if best is None or validation > best[0]:
            best = (validation, row, runs)
    return sections, atlas_rows, best


def _best_row_sections(row, runs, figures):
    run = runs[0]
    seed = run["metrics"].get("seed")
    _, digits = digit_sections(run["run_dir"], figures, f"row {row['row']} seed {seed}")
    note = f"<p>Row {row['row']} ({html.escape(row['settings'])}) has the best mean <em>validation</em> accuracy; its seed-{seed} run is shown.</p>"
    return [("Best row by validation accuracy", note), *digits]


def _backend_table(comparisons):
    lines = []
    for answer in comparisons:
        for pair in answer["pairs"]:
            lines.append(
                (
                    answer["row"],
                    f"{pair['a']} - {pair['b']}",
                    f"{pair['n_a']} / {pair['n_b']}",
                    *welch_cells(pair),
                    answer["verdict"],
                )
            )
    note = "<p>Welch's t-test per pair of backends on test accuracy over seeds (what <code>mnistlab runs compare</code> computes); a row's backends differ where a pair's p is below 0.05 / pairs (Bonferroni). No verdict below 3 seeds a backend.</p>"
    return note + html_table(["row", "backends", "seeds", "difference (points)", "95% CI", "p", "verdict"], lines)

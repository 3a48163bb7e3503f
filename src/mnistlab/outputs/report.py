"""Reports: one self-contained HTML file (images embedded) plus the PNGs beside it.

- `run_report(run_dir, out)`: learning curves, confusion matrix, the most
  confidently misclassified test digits, per-class accuracy.
- `table_report(table, out)`: the table as reproduced (`tables`), per-row learning
  curves (mean and band across seeds), the comparison with the book, whether
  backends differ, the disagreement atlas of each row's seeds, and the
  digit-level figures for the row with the best *validation* accuracy (never
  chosen on the test set).
- `compare_report(selectors, out)`: several setups side by side (`bands`): learning
  curves with 95% bands over seeds, final accuracy with its interval, parameter
  counts, the book's figure, Welch's verdicts, and the atlas of their runs.
"""

import base64
import html
import json
import pathlib

import numpy as np

from mnistlab.analysis import atlas as atlas_lib
from mnistlab.analysis import bands as bands_lib
from mnistlab.analysis import tables
from mnistlab.core import fileio, presets
from mnistlab.core.errors import ConfigError, MnistlabError, NotFound, RunDirError
from mnistlab.core.presets import TABLES
from mnistlab.ml import data, run_model
from mnistlab.outputs import plots
from mnistlab.record import rundir
from mnistlab.record.store import Store

TOP_MISTAKES = 16


# --------------------------------------------------------------------------
# Numbers


def predict_test_set(run_dir, dataset=None, backend=None):
    """(probabilities, labels, images, dataset name) for a run's test set (on BACKEND if given, else the run's own)."""
    model, config = run_model.load_model(run_dir, backend=backend)
    from mnistlab.ml import models  # imports Keras: only once the run's backend is active

    dataset = dataset or data.load_dataset(config.dataset)
    probabilities = models.predict(model, data.prepare_images(dataset.x_test, config.input_shape))
    return probabilities, dataset.y_test, dataset.x_test, dataset.name


def confusion_matrix(labels, predictions, num_classes=data.NUM_CLASSES):
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def per_class_accuracy(matrix):
    totals = matrix.sum(axis=1)
    return np.divide(np.diag(matrix), totals, out=np.zeros(len(matrix)), where=totals > 0)


def confident_mistakes(probabilities, labels, top=TOP_MISTAKES):
    """Indexes of wrong predictions, most confident first."""
    predictions = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predictions != labels)
    confidence = probabilities[wrong, predictions[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")][:top]


# --------------------------------------------------------------------------
# Figures


def curves_figure(histories, path, title):
    """Loss and accuracy per epoch, train and validation; mean line and min-max band over runs.

    A short run gets a marker at every epoch (a 1-epoch run is one point,
    which a line alone does not draw, and its band is an error bar), and the
    epoch axis has whole-number ticks only (no epoch 1.5).
    """
    from matplotlib.ticker import MaxNLocator

    few_epochs = 25  # up to here each epoch is a marker; longer curves read better as lines
    plt = plots.plt
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, metric in zip(axes, ("loss", "accuracy")):
        longest = 0
        for key, color, label in ((metric, "tab:blue", "train"), (f"val_{metric}", "tab:orange", "validation")):
            series = [[row[key] for row in history if row.get(key) is not None] for history in histories]
            length = min((len(s) for s in series), default=0)
            if length == 0:
                continue
            longest = max(longest, length)
            values = np.array([s[:length] for s in series])
            epochs = np.arange(1, length + 1)
            mean = values.mean(axis=0)
            axis.plot(
                epochs,
                mean,
                color=color,
                marker="o" if length <= few_epochs else None,
                markersize=4,
                label=label + (f" (mean of {len(values)})" if len(values) > 1 else ""),
            )
            if len(values) > 1 and length > 1:
                axis.fill_between(epochs, values.min(axis=0), values.max(axis=0), color=color, alpha=0.2)
            elif len(values) > 1:  # one epoch: a band of no width would not show; the same min-max as an error bar
                axis.errorbar(
                    epochs,
                    mean,
                    yerr=[mean - values.min(axis=0), values.max(axis=0) - mean],
                    fmt="none",
                    ecolor=color,
                    capsize=4,
                    alpha=0.6,
                )
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        if 0 < longest <= few_epochs:
            axis.set_xlim(0.5, longest + 0.5)  # half an epoch either side: the first and last markers are not cut
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    return plots.save_figure(figure, path)


def confusion_figure(matrix, path, title, names):
    plt = plots.plt
    figure, axis = plt.subplots(figsize=(7.5, 6.5))
    image = axis.imshow(matrix, cmap="Blues")
    for (row, column), count in np.ndenumerate(matrix):
        axis.text(
            column,
            row,
            str(count),
            ha="center",
            va="center",
            fontsize=7,
            color="white" if count > matrix.max() / 2 else "black",
        )
    axis.set_xticks(
        range(len(matrix)),
        names,
        rotation=45 if max(map(len, names)) > 2 else 0,
        ha="right" if max(map(len, names)) > 2 else "center",
    )
    axis.set_yticks(range(len(matrix)), names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title)
    figure.colorbar(image)
    return plots.save_figure(figure, path)


def mistakes_figure(images, labels, probabilities, indexes, path, names):
    plt = plots.plt
    columns = 8
    rows = max(1, int(np.ceil(len(indexes) / columns)))
    figure = plt.figure(figsize=(columns * 1.3, rows * 1.9 + 0.4))
    for position, index in enumerate(indexes):
        axis = figure.add_subplot(rows, columns, position + 1)
        axis.imshow(images[index], cmap="gray")
        predicted = int(probabilities[index].argmax())
        axis.set_title(
            f"true {names[int(labels[index])]}\npred {names[predicted]} ({probabilities[index, predicted]:.0%})",
            fontsize=8,
        )
        axis.axis("off")
    if not len(indexes):
        figure.text(0.5, 0.5, "no misclassified test images", ha="center")
    figure.suptitle("Most confidently misclassified test images")
    figure.tight_layout()
    return plots.save_figure(figure, path)


def per_class_figure(accuracies, path, names):
    plt = plots.plt
    figure, axis = plt.subplots(figsize=(7, 3.5))
    axis.bar(range(len(accuracies)), 100 * accuracies, color="tab:blue")
    for digit, value in enumerate(accuracies):
        axis.text(digit, 100 * value + 0.3, f"{100 * value:.1f}", ha="center", fontsize=8)
    axis.set_xticks(
        range(len(accuracies)),
        names,
        rotation=30 if max(map(len, names)) > 2 else 0,
        ha="right" if max(map(len, names)) > 2 else "center",
    )
    axis.set_xlabel("class")
    axis.set_ylabel("test accuracy %")
    axis.set_ylim(max(0, 100 * accuracies.min() - 10), 101)
    axis.set_title("Per-class test accuracy")
    return plots.save_figure(figure, path)


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


# --------------------------------------------------------------------------
# HTML


def _embed(path):
    return "data:image/png;base64," + base64.b64encode(pathlib.Path(path).read_bytes()).decode("ascii")


class _Markup(str):
    """A table cell that is HTML already (a greyed book figure), not text to escape."""


def _html_table(header, rows):
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{c if isinstance(c, _Markup) else html.escape(str(c))}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _book_cell(setup):
    """A setup's book figure: with its verdict where the setup is held against the book, else greyed with the reason."""
    if setup["book_test"] is None:
        return "n/a"
    figure = f"{setup['book_test']:.1f} ({setup['book_where']})"
    if setup["book_comparable"]:
        return figure
    return _Markup(
        f"<span class='not-comparable' style='color:{tables.GREYED}' title='{html.escape(setup['book_reason'])}'>{html.escape(figure)}"
        f"<br><small>not comparable: {html.escape(setup['book_reason'])}</small></span>"
    )


def _page(title, sections):
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "img{max-width:100%;border:1px solid #ddd;margin:.5em 0}table{border-collapse:collapse;font-size:.85em}"
        "td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left}th{background:#f3f3f3}"
    )
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{style}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for heading, content in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>{content}")
    parts.append("</body></html>")
    return "\n".join(parts)


def _image(path, alt):
    return f"<img src='{_embed(path)}' alt='{html.escape(alt)}'>"


def _figures_dir(out):
    out = pathlib.Path(out)
    directory = out.with_name(out.stem + "_files")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _digit_sections(run_dir, figures, label):
    probabilities, labels, images, dataset_name = predict_test_set(run_dir)
    predictions = probabilities.argmax(axis=1)
    matrix = confusion_matrix(labels, predictions)
    accuracies = per_class_accuracy(matrix)
    names = data.class_names(dataset_name)
    confusion_path = confusion_figure(
        matrix, figures / "confusion-matrix.png", f"Confusion matrix, {label} ({dataset_name} test)", names
    )
    mistakes_path = mistakes_figure(
        images, labels, probabilities, confident_mistakes(probabilities, labels), figures / "misclassified.png", names
    )
    per_class_path = per_class_figure(accuracies, figures / "per-class-accuracy.png", names)
    accuracy = float((predictions == labels).mean())
    return accuracy, [
        ("Confusion matrix", _image(confusion_path, "confusion matrix")),
        ("Most confidently misclassified test digits", _image(mistakes_path, "misclassified digits")),
        (
            "Per-class accuracy",
            _image(per_class_path, "per-class accuracy")
            + _html_table(
                ["class", "accuracy %", "test images"],
                [(names[d], f"{100 * a:.2f}", int(matrix[d].sum())) for d, a in enumerate(accuracies)],
            ),
        ),
    ]


def report(targets, out, store_path=None, table_json=None, by=None, dataset=None, backend=None):
    """A table's report for table-1.x.y, a run directory's for one run directory, else a comparison of setups
    (presets, config hashes, group=NAME) with their seed bands."""
    targets = [targets] if isinstance(targets, (str, pathlib.Path)) else list(targets)
    if len(targets) == 1 and not by and not backend:
        target = str(targets[0])
        if target in TABLES:
            return table_report(target, out, store_path=store_path, table_json=table_json)
        if pathlib.Path(target).is_dir():
            return run_report(target, out)
        if target.startswith("table-") and "@" not in target and "-row" not in target:  # a table's name, mistyped
            raise NotFound(f"{target} is no table of the chapter; the tables are {', '.join(TABLES)}")
    if any(str(target) in TABLES for target in targets):
        raise MnistlabError(
            f"a table's report takes the table alone: mnistlab report {next(t for t in targets if str(t) in TABLES)} --out ..."
        )
    return compare_report(
        [str(target) for target in targets], out, store_path=store_path, by=by, dataset=dataset, backend=backend
    )


def _percent(value):
    return "n/a" if value is None else f"{100 * value:.2f}%"


def run_report(run_dir, out):
    """HTML report of one run directory."""
    run_dir = rundir.check(run_dir)
    metrics = rundir.read_metrics(run_dir)
    if metrics is None:
        raise RunDirError(f"{run_dir}: no metrics.json; report on a finished run directory")
    figures = _figures_dir(out)
    label = metrics.get("preset") or metrics.get("description") or metrics["family"]
    curves_path = curves_figure(
        [rundir.read_history(run_dir)], figures / "learning-curves.png", f"Learning curves: {label}"
    )
    accuracy, digit_sections = _digit_sections(run_dir, figures, label)
    config, preset = rundir.read_config(run_dir)
    summary_rows = [("setup", presets.describe(config, preset)), ("model", config.describe())]
    summary_rows += [
        (key.replace("_", " "), metrics.get(key)) for key in ("dataset", "backend", "seed", "epochs", "params")
    ]
    summary_rows += [
        (key.replace("_", " "), _percent(metrics.get(key)))
        for key in ("train_accuracy", "val_accuracy", "test_accuracy")
    ]
    summary_rows += [
        ("test loss", f"{metrics['test_loss']:.4f}" if metrics.get("test_loss") is not None else "n/a"),
        ("seconds", metrics.get("seconds")),
        ("mean epoch seconds", metrics.get("mean_epoch_seconds")),
        ("config hash", metrics.get("config_hash")),
    ]
    sections = [
        ("Run", _html_table(["", ""], summary_rows)),
        ("Learning curves", _image(curves_path, "learning curves")),
        *digit_sections,
    ]
    fileio.write_text(out, _page(f"mnistlab report: {label}", sections))
    return {"html": str(out), "figures": sorted(str(p) for p in figures.iterdir()), "test_accuracy": accuracy}


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
    figures = _figures_dir(out)
    sections = [(f"{table} vs the book ({summary['context']})", tables.to_html(reproduced, page=False))]
    comparison_path = book_comparison_figure(rows, figures / "book-comparison.png", f"{table}: measured vs book")
    sections.append(("Comparison with the book", _image(comparison_path, "book comparison")))
    if reproduced["backend_comparisons"]:
        sections.append(("Do the backends agree?", _backend_table(reproduced["backend_comparisons"])))
    best = None
    atlas_rows = {}
    for row in rows:
        # The run directories are the record: histories and metrics come from them.
        runs = [
            {"run_dir": run_dir, "metrics": rundir.read_metrics(run_dir) or {}, "history": rundir.read_history(run_dir)}
            for run_dir in _row_run_dirs(row, store_path)
        ]
        histories = [run["history"] for run in runs if run["history"]]
        if not histories:
            continue
        label = f"row {row['row']}" + (f" on {row['backend']}" if reproduced["several_backends"] else "")
        stem = f"row{row['row']}" + (f"-{row['backend']}" if reproduced["several_backends"] else "")
        path = curves_figure(
            histories,
            figures / f"curves-{stem}.png",
            f"{label.capitalize()}: {row['settings']} ({len(histories)} seed(s))",
        )
        sections.append((f"Learning curves, {label}", _image(path, f"learning curves {label}")))
        # One atlas per row: its seeds, on every backend it ran on (grouped by backend then).
        atlas_rows.setdefault(f"row {row['row']}", []).extend(run["run_dir"] for run in runs)
        validation = np.mean(
            [run["metrics"]["val_accuracy"] for run in runs if run["metrics"].get("val_accuracy") is not None]
            or [np.nan]
        )
        if best is None or validation > best[0]:
            best = (validation, row, runs)
    if atlas_rows:
        sections += _atlas_sections(
            list(atlas_rows.items()),
            figures,
            f"row {best[1]['row']}" if best else None,
            by="backend" if reproduced["several_backends"] else None,
        )
    if best is not None and (pathlib.Path(best[2][0]["run_dir"]) / rundir.MODEL_FILE).exists():
        _, row, runs = best
        run = runs[0]
        seed = run["metrics"].get("seed")
        _, digit_sections = _digit_sections(run["run_dir"], figures, f"row {row['row']} seed {seed}")
        note = f"<p>Row {row['row']} ({html.escape(row['settings'])}) has the best mean <em>validation</em> accuracy; its seed-{seed} run is shown.</p>"
        sections.append(("Best row by validation accuracy", note))
        sections.extend(digit_sections)
    fileio.write_text(out, _page(f"mnistlab report: {table}", sections))
    return {"html": str(out), "figures": sorted(str(p) for p in figures.iterdir()), "table_json": reproduced["source"]}


def _backend_table(comparisons):
    lines = []
    for answer in comparisons:
        for pair in answer["pairs"]:
            difference = "n/a" if pair.get("difference") is None else f"{pair['difference']:+.2f}"
            interval = "n/a" if pair.get("ci_low") is None else f"[{pair['ci_low']:+.2f}, {pair['ci_high']:+.2f}]"
            p_value = "n/a" if pair.get("p_value") is None else f"{pair['p_value']:.3g}"
            lines.append(
                (
                    answer["row"],
                    f"{pair['a']} - {pair['b']}",
                    f"{pair['n_a']} / {pair['n_b']}",
                    difference,
                    interval,
                    p_value,
                    answer["verdict"],
                )
            )
    note = "<p>Welch's t-test per pair of backends on test accuracy over seeds (what <code>mnistlab runs compare</code> computes); a row's backends differ where a pair's p is below 0.05 / pairs (Bonferroni). No verdict below 3 seeds a backend.</p>"
    return note + _html_table(["row", "backends", "seeds", "difference (points)", "95% CI", "p", "verdict"], lines)


# --------------------------------------------------------------------------
# Seeds as the unit: bands, comparisons of setups, the disagreement atlas


SETUP_COLORS = (
    "tab:blue",
    "tab:orange",
    "tab:green",
    "tab:red",
    "tab:purple",
    "tab:brown",
    "tab:pink",
    "tab:gray",
    "tab:olive",
    "tab:cyan",
)


def bands_figure(setups, path, title, metrics=("val_accuracy", "val_loss")):
    """Per setup, the mean over seeds of each metric per epoch and its 95% t-interval as a shaded band
    (an error bar where there is one epoch, whose band would have no width)."""
    from matplotlib.ticker import MaxNLocator

    plt = plots.plt
    figure, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4))
    for axis, metric in zip(np.atleast_1d(axes), metrics):
        longest = 0
        for position, setup in enumerate(setups):
            color = SETUP_COLORS[position % len(SETUP_COLORS)]
            rows = [row for row in setup["bands"][metric] if row["mean"] is not None]
            if not rows:
                continue
            longest = max(longest, len(rows))
            epochs = np.array([row["epoch"] for row in rows])
            mean = np.array([row["mean"] for row in rows])
            low = np.array([np.nan if row["ci_low"] is None else row["ci_low"] for row in rows])
            high = np.array([np.nan if row["ci_high"] is None else row["ci_high"] for row in rows])
            count = max(row["n"] for row in rows)
            axis.plot(
                epochs,
                mean,
                color=color,
                marker="o" if len(rows) <= 25 else None,
                markersize=4,
                label=f"{setup['name']} (n={count})",
            )
            if len(rows) > 1:
                axis.fill_between(epochs, low, high, color=color, alpha=0.2, linewidth=0)
            elif not np.isnan(low).all():
                axis.errorbar(
                    epochs, mean, yerr=[mean - low, high - mean], fmt="none", ecolor=color, capsize=4, alpha=0.7
                )
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        if 0 < longest <= 25:
            axis.set_xlim(0.5, longest + 0.5)
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric.replace("_", " "))
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle(title + " (mean and 95% t-interval over seeds)")
    figure.tight_layout()
    return plots.save_figure(figure, path)


def _answers_text(answers, names, short, most=3):
    """How the runs answered, commonest first: "4×5 9×3 +1" (answer × runs; +k: k runs gave rarer answers)."""
    counts = {}
    for answer in answers:
        counts[answer] = counts.get(answer, 0) + 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    shown = " ".join(f"{(names[answer] if not short else str(answer))}×{count}" for answer, count in ranked[:most])
    rest = sum(count for _, count in ranked[most:])
    return shown + (f" +{rest}" if rest else "")


def atlas_grid_figure(digits, images, names, path, title, columns=8, limit=32):
    """A grid of test digits from an atlas: each with its index, label and how the runs answered (answer x count).

    One image (a mosaic of the digits) with captions, rather than an axes per digit: a
    report draws several of these, and 32 axes take seconds where one takes a fraction.
    """
    plt = plots.plt
    digits = digits[:limit]
    short = max(map(len, names)) > 2  # garment names are long: answers by class number
    rows = max(1, int(np.ceil(len(digits) / columns)))
    size, caption = images.shape[1], 14  # pixels of a digit, and of the caption band under it
    gap = 10  # pixels between digits, so neighbouring captions do not run into each other
    mosaic = np.full((rows * (size + caption), columns * (size + gap)), 255, dtype=np.uint8)
    figure, axis = plt.subplots(figsize=(columns * 1.45, rows * 1.55 + 0.4))
    for position, digit in enumerate(digits):
        row, column = divmod(position, columns)
        top, left = row * (size + caption), column * (size + gap) + gap // 2
        mosaic[top : top + size, left : left + size] = images[digit["index"]]
        label = names[digit["label"]] if not short else digit["label"]
        axis.text(
            left + size / 2,
            top + size + 1,
            f"#{digit['index']} is {label}\n{_answers_text(digit['answers'], names, short)}",
            ha="center",
            va="top",
            fontsize=6.5,
        )
    axis.imshow(mosaic, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    if not digits:
        axis.text(mosaic.shape[1] / 2, mosaic.shape[0] / 2, "none", ha="center", va="center")
    axis.axis("off")
    axis.set_title(title, fontsize=9)
    return plots.save_figure(figure, path)


def per_class_disagreement_figure(atlas, path, title):
    plt = plots.plt
    names = atlas["class_names"]
    rates = np.array([100 * entry["rate"] for entry in atlas["per_class"]])
    figure, axis = plt.subplots(figsize=(7, 3.2))
    axis.bar(range(len(rates)), rates, color="tab:purple")
    for digit, value in enumerate(rates):
        axis.text(digit, value, f"{value:.1f}", ha="center", va="bottom", fontsize=8)
    rotate = max(map(len, names)) > 2
    axis.set_xticks(range(len(rates)), names, rotation=30 if rotate else 0, ha="right" if rotate else "center")
    axis.set_ylabel("digits disagreed on %")
    axis.set_title(title, fontsize=10)
    return plots.save_figure(figure, path)


def _atlas_sections(groups, figures, shown_label=None, by=None):
    """Per (label, run dirs) group, the atlas' numbers; the image grids of the group labelled SHOWN_LABEL (else the first with predictions)."""
    sections, lines, missing, shown = [], [], [], None
    for label, run_dirs in groups:
        try:
            result = atlas_lib.disagreement(run_dirs, by=by)
        except ConfigError as error:
            missing.append((label, str(error)))
            continue
        lines.append(
            (
                label,
                result["run_count"],
                result["test_digits"],
                f"{result['disagreed']} ({100 * result['disagreement_rate']:.2f}%)",
                result["all_wrong"],
                (result.get("groups_test") or {}).get("verdict", "") if by else "",
                len(result["missing"]),
            )
        )
        if shown is None or label == shown_label:
            shown = (label, result)
    if lines:
        header = [
            "runs of",
            "runs",
            "test digits",
            "disagreed on",
            "all wrong",
            "groups" if by else "",
            "without predictions",
        ]
        sections.append(
            (
                "The digits the seeds disagree on",
                "<p>Per group of runs: the test digits they do not all answer alike, and those every run gets wrong (candidates for label noise). <code>mnistlab runs disagree</code> gives the same as JSON.</p>"
                + _html_table(header, lines),
            )
        )
    if missing:
        sections.append(
            (
                "Runs without predictions",
                "<p>Runs trained before runs kept their test predictions have no atlas; <code>mnistlab runs predictions RUN_DIR...</code> writes them from the saved models.</p>"
                + _html_table(["runs of", "why"], missing),
            )
        )
    if shown is not None:
        label, result = shown
        sections += _atlas_images(result, figures, label)
    return sections


def _atlas_images(result, figures, label, stem="atlas"):
    try:
        images = atlas_lib.images_of(result)
    except MnistlabError as error:  # the dataset is not here (or changed): the numbers stand, the pictures cannot
        return [(f"Atlas images, {label}", f"<p>{html.escape(str(error))}</p>")]
    names = result["class_names"]
    contested = atlas_grid_figure(
        result["disagreed_digits"],
        images,
        names,
        figures / f"{stem}-disagreed.png",
        f"{label}: the most contested of {result['disagreed']} digits the {len(result['runs'])} runs disagree on (answer × runs)",
    )
    wrong = atlas_grid_figure(
        result["all_wrong_digits"],
        images,
        names,
        figures / f"{stem}-all-wrong.png",
        f"{label}: {result['all_wrong']} digits every run gets wrong (label noise?)",
    )
    per_class = per_class_disagreement_figure(
        result, figures / f"{stem}-per-class.png", f"{label}: digits disagreed on, per class"
    )
    return [
        (f"Atlas, {label}: digits the runs disagree on", _image(contested, "digits the runs disagree on")),
        (f"Atlas, {label}: digits every run gets wrong", _image(wrong, "digits every run gets wrong")),
        (f"Atlas, {label}: disagreement per class", _image(per_class, "disagreement per class")),
    ]


def _fmt_interval(summary):
    return "n/a" if summary["ci_low"] is None else f"[{summary['ci_low']:.2f}, {summary['ci_high']:.2f}]"


def compare_report(selectors, out, store_path=None, by=None, dataset=None, backend=None):
    """HTML report comparing setups over seeds (`bands.compare_setups`): bands, final accuracy, verdicts, atlas."""
    result = bands_lib.compare_setups(selectors, store_path=store_path, dataset=dataset, by=by, backend=backend)
    setups = result["setups"]
    figures = _figures_dir(out)
    title = " vs ".join(setup["name"] for setup in setups)
    bands_path = bands_figure(setups, figures / "bands.png", "Validation accuracy and loss per epoch")
    train_path = bands_figure(
        setups, figures / "bands-train.png", "Training accuracy and loss per epoch", metrics=("accuracy", "loss")
    )
    summary_rows = []
    for setup in setups:
        test = setup["test"]
        in_ci = setup["book_test_in_ci"]
        seed_count = f"{test['n']}" + (
            f" ({setup['repeats']['words']})" if setup["repeats"]["count"] else ""
        )  # a repeat of a seed counts once
        summary_rows.append(
            (
                setup["name"],
                setup["setup"],
                setup["dataset"],
                setup["backend"],
                seed_count,
                "n/a" if test["mean"] is None else f"{test['mean']:.2f}",
                _fmt_interval(test),
                setup["params"] if setup["params"] is not None else "n/a",
                _book_cell(setup),
                "n/a" if in_ci is None else ("yes" if in_ci else "no"),
            )
        )
    comparison_rows = []
    for comparison in result["comparisons"]:
        difference = "n/a" if comparison.get("difference") is None else f"{comparison['difference']:+.2f}"
        interval = (
            "n/a"
            if comparison.get("ci_low") is None
            else f"[{comparison['ci_low']:+.2f}, {comparison['ci_high']:+.2f}]"
        )
        p_value = "n/a" if comparison.get("p_value") is None else f"{comparison['p_value']:.3g}"
        comparison_rows.append((comparison["a"], comparison["b"], difference, interval, p_value, comparison["verdict"]))
    sections = [
        (
            "Learning curves with seed bands",
            _image(bands_path, "validation bands") + _image(train_path, "training bands"),
        ),
        (
            "Final test accuracy over seeds",
            _html_table(
                [
                    "name",
                    "setup",
                    "dataset",
                    "backend",
                    "seeds",
                    "test mean %",
                    "95% CI",
                    "parameters",
                    "book test %",
                    "book in CI",
                ],
                summary_rows,
            ),
        ),
        (
            "Welch's t-test, pair by pair",
            "<p>The same numbers as <code>mnistlab runs compare A B</code>; no verdict below 3 seeds a side.</p>"
            + _html_table(["A", "B", "A - B (points)", "95% CI", "p", "verdict"], comparison_rows),
        ),
    ]
    run_dirs = [run_dir for setup in setups for run_dir in setup["run_dirs"]]
    groups = (
        [("all setups", run_dirs)] + [(setup["name"], setup["run_dirs"]) for setup in setups]
        if len(setups) > 1
        else [(setups[0]["name"], run_dirs)]
    )
    sections += _atlas_sections(groups, figures, by=by)
    fileio.write_text(out, _page(f"mnistlab report: {title}", sections))
    return {"html": str(out), "figures": sorted(str(p) for p in figures.iterdir()), "comparison": result}

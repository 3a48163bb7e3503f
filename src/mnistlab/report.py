"""Reports: one self-contained HTML file (images embedded) plus the PNGs beside it.

- `run_report(run_dir, out)`: learning curves, confusion matrix, the most
  confidently misclassified test digits, per-class accuracy.
- `table_report(table, out)`: per-row learning curves (mean and band across
  seeds), the comparison with the book, and the digit-level figures for the
  row with the best *validation* accuracy (never chosen on the test set).
"""

import base64
import html
import json
import pathlib

import numpy as np

from mnistlab import data, fileio, paths, plots, presets, rundir
from mnistlab.errors import MnistlabError, RunDirError
from mnistlab.presets import TABLES
from mnistlab.reproduce import COLUMNS, table_records
from mnistlab.store import Store

TOP_MISTAKES = 16


# --------------------------------------------------------------------------
# Numbers


def predict_test_set(run_dir, dataset=None, backend=None):
    """(probabilities, labels, images, dataset name) for a run's test set (on BACKEND if given, else the run's own)."""
    model, config = rundir.load_model(run_dir, backend=backend)
    from mnistlab import models  # imports Keras: only once the run's backend is active

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
            axis.plot(epochs, mean, color=color, marker="o" if length <= few_epochs else None, markersize=4,
                      label=label + (f" (mean of {len(values)})" if len(values) > 1 else ""))
            if len(values) > 1 and length > 1:
                axis.fill_between(epochs, values.min(axis=0), values.max(axis=0), color=color, alpha=0.2)
            elif len(values) > 1:  # one epoch: a band of no width would not show; the same min-max as an error bar
                axis.errorbar(epochs, mean, yerr=[mean - values.min(axis=0), values.max(axis=0) - mean], fmt="none", ecolor=color, capsize=4, alpha=0.6)
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
        axis.text(column, row, str(count), ha="center", va="center", fontsize=7, color="white" if count > matrix.max() / 2 else "black")
    axis.set_xticks(range(len(matrix)), names, rotation=45 if max(map(len, names)) > 2 else 0, ha="right" if max(map(len, names)) > 2 else "center")
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
        axis.set_title(f"true {names[int(labels[index])]}\npred {names[predicted]} ({probabilities[index, predicted]:.0%})", fontsize=8)
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
    axis.set_xticks(range(len(accuracies)), names, rotation=30 if max(map(len, names)) > 2 else 0, ha="right" if max(map(len, names)) > 2 else "center")
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
    axis.errorbar(positions, means, yerr=np.nan_to_num(errors), fmt="o", color="tab:blue", capsize=4, label="measured test (mean, 95% CI)")
    axis.plot(positions, [row["book_test"] for row in rows], "r*", markersize=11, label="book test")
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


def _html_table(header, rows):
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _page(title, sections):
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "img{max-width:100%;border:1px solid #ddd;margin:.5em 0}table{border-collapse:collapse;font-size:.85em}"
        "td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left}th{background:#f3f3f3}"
    )
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{style}</style></head><body>", f"<h1>{html.escape(title)}</h1>"]
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
    confusion_path = confusion_figure(matrix, figures / "confusion-matrix.png", f"Confusion matrix, {label} ({dataset_name} test)", names)
    mistakes_path = mistakes_figure(images, labels, probabilities, confident_mistakes(probabilities, labels), figures / "misclassified.png", names)
    per_class_path = per_class_figure(accuracies, figures / "per-class-accuracy.png", names)
    accuracy = float((predictions == labels).mean())
    return accuracy, [
        ("Confusion matrix", _image(confusion_path, "confusion matrix")),
        ("Most confidently misclassified test digits", _image(mistakes_path, "misclassified digits")),
        ("Per-class accuracy", _image(per_class_path, "per-class accuracy") + _html_table(["class", "accuracy %", "test images"], [(names[d], f"{100 * a:.2f}", int(matrix[d].sum())) for d, a in enumerate(accuracies)])),
    ]


def report(target, out, store_path=None, table_json=None):
    """A table's report for table-1.x.y, else a run directory's."""
    if target in TABLES:
        return table_report(target, out, store_path=store_path, table_json=table_json)
    if pathlib.Path(target).is_dir():
        return run_report(target, out)
    raise MnistlabError(f"{target!r} is neither a run directory nor one of {', '.join(TABLES)}")


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
    curves_path = curves_figure([rundir.read_history(run_dir)], figures / "learning-curves.png", f"Learning curves: {label}")
    accuracy, digit_sections = _digit_sections(run_dir, figures, label)
    config, preset = rundir.read_config(run_dir)
    summary_rows = [("setup", presets.describe(config, preset)), ("model", config.describe())]
    summary_rows += [(key.replace("_", " "), metrics.get(key)) for key in ("dataset", "backend", "seed", "epochs", "params")]
    summary_rows += [(key.replace("_", " "), _percent(metrics.get(key))) for key in ("train_accuracy", "val_accuracy", "test_accuracy")]
    summary_rows += [("test loss", f"{metrics['test_loss']:.4f}" if metrics.get("test_loss") is not None else "n/a"), ("seconds", metrics.get("seconds")), ("mean epoch seconds", metrics.get("mean_epoch_seconds")), ("config hash", metrics.get("config_hash"))]
    sections = [("Run", _html_table(["", ""], summary_rows)), ("Learning curves", _image(curves_path, "learning curves")), *digit_sections]
    fileio.write_text(out, _page(f"mnistlab report: {label}", sections))
    return {"html": str(out), "figures": sorted(str(p) for p in figures.iterdir()), "test_accuracy": accuracy}


def latest_table_json(table, store_path=None):
    directory = paths.tables_dir(store_path)
    candidates = sorted(directory.glob(f"{table}-*.json"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise MnistlabError(f"no reproduction of {table} found in {directory}; run `mnistlab reproduce {table}` first")
    return candidates[-1]


def _row_run_dirs(row, store_path):
    """A table row's run directories: as the table file records them, or (files from before it did) found by run id in the index."""
    if "run_dirs" in row:
        return row["run_dirs"]
    with Store(store_path) as store:
        return [store.get(run_id)["run_dir"] for run_id in row["run_ids"]]


def table_report(table, out, store_path=None, table_json=None):
    """HTML report of a reproduced table: curves per row, the book comparison, and the best-validation row's digits."""
    table_json = pathlib.Path(table_json) if table_json else latest_table_json(table, store_path)
    summary = json.loads(table_json.read_text())
    rows = summary["rows"]
    figures = _figures_dir(out)
    sections = []
    records = table_records(rows)
    sections.append((f"{table} vs the book ({summary['context']})", _html_table(COLUMNS, [[r[c] for c in COLUMNS] for r in records])))
    comparison_path = book_comparison_figure(rows, figures / "book-comparison.png", f"{table}: measured vs book")
    sections.append(("Comparison with the book", _image(comparison_path, "book comparison")))
    best = None
    for row in rows:
        # The run directories are the record: histories and metrics come from them.
        runs = [{"run_dir": run_dir, "metrics": rundir.read_metrics(run_dir) or {}, "history": rundir.read_history(run_dir)} for run_dir in _row_run_dirs(row, store_path)]
        histories = [run["history"] for run in runs if run["history"]]
        if not histories:
            continue
        path = curves_figure(histories, figures / f"curves-row{row['row']}.png", f"Row {row['row']}: {row['settings']} ({len(histories)} seed(s))")
        sections.append((f"Learning curves, row {row['row']}", _image(path, f"learning curves row {row['row']}")))
        validation = np.mean([run["metrics"]["val_accuracy"] for run in runs if run["metrics"].get("val_accuracy") is not None] or [np.nan])
        if best is None or validation > best[0]:
            best = (validation, row, runs[0])
    if best is not None and (pathlib.Path(best[2]["run_dir"]) / rundir.MODEL_FILE).exists():
        _, row, run = best
        seed = run["metrics"].get("seed")
        _, digit_sections = _digit_sections(run["run_dir"], figures, f"row {row['row']} seed {seed}")
        note = f"<p>Row {row['row']} ({html.escape(row['settings'])}) has the best mean <em>validation</em> accuracy; its seed-{seed} run is shown.</p>"
        sections.append(("Best row by validation accuracy", note))
        sections.extend(digit_sections)
    fileio.write_text(out, _page(f"mnistlab report: {table}", sections))
    return {"html": str(out), "figures": sorted(str(p) for p in figures.iterdir()), "table_json": str(table_json)}

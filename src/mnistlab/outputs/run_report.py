"""The report of one run directory: learning curves, confusion matrix, the most confidently misclassified test
digits, per-class accuracy; and those numbers and figures for the table report's best row."""

import numpy as np

from mnistlab.core import fileio, presets
from mnistlab.core.errors import RunDirError
from mnistlab.ml import data, run_model
from mnistlab.outputs import dynamics_report, plots
from mnistlab.outputs.report_html import figures_dir, html_table, image, page, percent_text
from mnistlab.record import rundir

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


def digit_sections(run_dir, figures, label):
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
        ("Confusion matrix", image(confusion_path, "confusion matrix")),
        ("Most confidently misclassified test digits", image(mistakes_path, "misclassified digits")),
        (
            "Per-class accuracy",
            image(per_class_path, "per-class accuracy")
            + html_table(
                ["class", "accuracy %", "test images"],
                [(names[d], f"{100 * a:.2f}", int(matrix[d].sum())) for d, a in enumerate(accuracies)],
            ),
        ),
    ]


def run_report(run_dir, out):
    """HTML report of one run directory."""
    run_dir = rundir.check(run_dir)
    metrics = rundir.read_metrics(run_dir)
    if metrics is None:
        raise RunDirError(f"{run_dir}: no metrics.json; report on a finished run directory")
    figures = figures_dir(out)
    label = metrics.get("preset") or metrics.get("description") or metrics["family"]
    curves_path = curves_figure(
        [rundir.read_history(run_dir)], figures / "learning-curves.png", f"Learning curves: {label}"
    )
    accuracy, digits = digit_sections(run_dir, figures, label)
    config, preset = rundir.read_config(run_dir)
    summary_rows = [("setup", presets.describe(config, preset)), ("model", config.describe())]
    summary_rows += [
        (key.replace("_", " "), metrics.get(key)) for key in ("dataset", "backend", "seed", "epochs", "params")
    ]
    summary_rows += [
        (key.replace("_", " "), percent_text(metrics.get(key)))
        for key in ("train_accuracy", "val_accuracy", "test_accuracy")
    ]
    summary_rows += [
        ("test loss", f"{metrics['test_loss']:.4f}" if metrics.get("test_loss") is not None else "n/a"),
        ("seconds", metrics.get("seconds")),
        ("mean epoch seconds", metrics.get("mean_epoch_seconds")),
        ("config hash", metrics.get("config_hash")),
    ]
    inside = dynamics_report.run_section(rundir.read_dynamics(run_dir), figures, label)
    sections = [
        ("Run", html_table(None, summary_rows)),
        ("Learning curves", image(curves_path, "learning curves")),
        *([inside] if inside else []),
        *digits,
    ]
    fileio.write_text(out, page(f"mnistlab report: {label}", sections))
    return {"html": str(out), "figures": sorted(str(p) for p in figures.iterdir()), "test_accuracy": accuracy}

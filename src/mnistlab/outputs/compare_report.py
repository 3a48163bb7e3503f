"""The report comparing setups over seeds (`mnistlab.analysis.bands`): learning curves with 95% bands over
seeds, final accuracy with its interval, parameter counts, the book's figure, Welch's verdicts, and the atlas of
their runs."""

import numpy as np

from mnistlab.analysis import bands as bands_lib
from mnistlab.core import fileio
from mnistlab.outputs import dynamics_report, plots
from mnistlab.outputs.report_atlas import atlas_sections
from mnistlab.outputs.report_html import (
    book_cell,
    figures_dir,
    html_table,
    image,
    interval_text,
    number_text,
    page,
    welch_cells,
    yes_no_text,
)

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
        scale = []  # what sets the axis: every mean, and the bands of 3 seeds or more (2 give a band 12.7 SE wide)
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
            scale += [*mean, *([] if count == 2 else [*low, *high])]
            axis.plot(
                epochs,
                mean,
                color=color,
                marker="o" if len(rows) <= 25 else None,
                markersize=4,
                label=f"{setup['name']} (n={count}{': a wide band, cut to the plot' if count == 2 else ''})",
            )
            if len(rows) > 1:
                axis.fill_between(epochs, low, high, color=color, alpha=0.2, linewidth=0)
            elif not np.isnan(low).all():
                axis.errorbar(
                    epochs, mean, yerr=[mean - low, high - mean], fmt="none", ecolor=color, capsize=4, alpha=0.7
                )
        finite = [value for value in scale if np.isfinite(value)]
        if finite:
            margin = 0.05 * ((max(finite) - min(finite)) or 1.0)
            axis.set_ylim(min(finite) - margin, max(finite) + margin)
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


SUMMARY_HEADER = (
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
)


def compare_report(selectors, out, store_path=None, by=None, dataset=None, backend=None):
    """HTML report comparing setups over seeds (`bands.compare_setups`): bands, final accuracy, verdicts, atlas."""
    result = bands_lib.compare_setups(selectors, store_path=store_path, dataset=dataset, by=by, backend=backend)
    setups = result["setups"]
    figures = figures_dir(out)
    title = " vs ".join(setup["name"] for setup in setups)
    bands_path = bands_figure(setups, figures / "bands.png", "Validation accuracy and loss per epoch")
    train_path = bands_figure(
        setups, figures / "bands-train.png", "Training accuracy and loss per epoch", metrics=("accuracy", "loss")
    )
    comparison_rows = [
        (comparison["a"], comparison["b"], *welch_cells(comparison), comparison["verdict"])
        for comparison in result["comparisons"]
    ]
    sections = [
        (
            "Learning curves with seed bands",
            image(bands_path, "validation bands") + image(train_path, "training bands"),
        ),
        ("Final test accuracy over seeds", html_table(SUMMARY_HEADER, [_summary_row(setup) for setup in setups])),
        (
            "Welch's t-test, pair by pair",
            "<p>The same numbers as <code>mnistlab runs compare A B</code>; no verdict below 3 seeds a side.</p>"
            + html_table(["A", "B", "A - B (points)", "95% CI", "p", "verdict"], comparison_rows),
        ),
    ]
    run_dirs = [run_dir for setup in setups for run_dir in setup["run_dirs"]]
    groups = (
        [("all setups", run_dirs)] + [(setup["name"], setup["run_dirs"]) for setup in setups]
        if len(setups) > 1
        else [(setups[0]["name"], run_dirs)]
    )
    inside = dynamics_report.dynamics_section(
        [(setup["name"], setup["dynamics"]) for setup in setups],
        figures,
        "The mean over seeds, the 95% interval shaded.",
    )
    sections += [inside] if inside else []
    sections += atlas_sections(groups, figures, by=by)
    fileio.write_text(out, page(f"mnistlab report: {title}", sections))
    return {"html": str(out), "figures": sorted(str(p) for p in figures.iterdir()), "comparison": result}


def _summary_row(setup):
    """One setup's cells, by SUMMARY_HEADER."""
    test = setup["test"]
    seed_count = f"{test['n']}" + (
        f" ({setup['repeats']['words']})" if setup["repeats"]["count"] else ""
    )  # a repeat of a seed counts once
    return (
        setup["name"],
        setup["setup"],
        setup["dataset"],
        setup["backend"],
        seed_count,
        number_text(test["mean"]),
        interval_text(test),
        setup["params"] if setup["params"] is not None else "n/a",
        book_cell(setup),
        yes_no_text(setup["book_test_in_ci"]),
    )

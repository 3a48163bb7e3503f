"""One PNG sheet per image and model: the inside of the network as `mnistlab.ml.explain` sees it.

Row one is the same for every family: the 28x28 input, the attribution maps
for the predicted class and the runner-up, and the ten probabilities. Then
the family's own views: the MLP's hidden units as grids and its first-layer
templates; the CNN's first-layer kernels and every feature map per layer;
the RNN's hidden state and its belief after each row.

The two attribution maps share one colour scale (the larger of their
largest magnitudes), shown by one colour bar, and each says its class's
probability: a runner-up at 0.0% looks as faint as it is, not as strong as
the winner. Panel titles are wrapped to their panel's width, so that none
runs into its neighbour.
"""

import json
import math
import pathlib
import textwrap

import numpy as np

from mnistlab.analysis import pages
from mnistlab.core import fileio
from mnistlab.core.config import ATTRIBUTION_METHODS
from mnistlab.core.errors import ConfigError
from mnistlab.ml import explain, preprocess
from mnistlab.outputs import plots
from mnistlab.record import rundir

COLUMNS = 4
TITLE_CHARACTERS = 40  # per line of a panel title: a 4-inch panel holds about 45 at 9 points


def mosaic(maps, columns=None):
    """(n, h, w) maps -> one 2D image of tiles with a blank (NaN) line between them."""
    count, height, width = maps.shape
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    sheet = np.full((rows * (height + 1) - 1, columns * (width + 1) - 1), np.nan)
    for index, tile in enumerate(maps):
        row, column = divmod(index, columns)
        sheet[row * (height + 1) : row * (height + 1) + height, column * (width + 1) : column * (width + 1) + width] = (
            tile
        )
    return sheet


def unit_grid(values):
    """A layer's unit activations (n,) as a near-square grid, one cell per unit."""
    columns = math.ceil(math.sqrt(len(values)))
    grid = np.full(columns * math.ceil(len(values) / columns), np.nan)
    grid[: len(values)] = values
    return grid.reshape(-1, columns)


def panels(explanation, image):
    """The sheet's panels: (title, kind, data, options) in reading order."""
    items = [("input (28x28)", "image", image, {"cmap": "gray", "vmin": 0, "vmax": 1})]
    items += _attribution_panels(explanation)
    items.append(("probabilities", "bars", explanation["probabilities"], {}))
    family_panels = {"mlp": _mlp_panels, "cnn": _cnn_panels}.get(explanation["family"], _rnn_panels)
    return items + family_panels(explanation)


def _attribution_panels(explanation):
    labels = explanation["labels"]
    attributions = explanation["attributions"]
    method = "integrated gradients" if attributions["method"] == "integrated-gradients" else "occlusion"
    maps = np.asarray(attributions["maps"])
    shared_limit = float(np.max(np.abs(maps))) or 1.0  # one scale for both maps: the stronger one sets it
    roles = {explanation["prediction"]: "predicted", explanation.get("runner_up"): "runner-up"}
    items = []
    for position, (target, values) in enumerate(zip(attributions["classes"], maps)):
        probability = 100 * float(explanation["probabilities"][target])
        title = f"{method}: '{labels[target]}', {roles.get(target, 'class')} ({probability:.1f}%)"
        caption = f"sums to {attributions['sums'][position]:+.3f}"
        if attributions.get("differences") is not None:
            caption += f"; p(x) - p(blank) = {attributions['differences'][position]:+.3f}"
        options = {"limit": shared_limit, "colour_bar": position == len(maps) - 1, "caption": caption}
        items.append((title, "attribution", values, options))
    return items


def _mlp_panels(explanation):
    items = [
        (
            f"{layer['name']}: {layer['shape'][0]} {layer['kind']}",
            "image",
            unit_grid(layer["values"]),
            {"cmap": "magma"},
        )
        for layer in explanation["layers"]
    ]
    templates = explanation["templates"]
    units = ", ".join(str(unit) for unit in templates["units"])
    title = f"templates of the most active {templates['layer']} units ({units})"
    return items + [(title, "signed", mosaic(templates["weights"], columns=4), {})]


def _cnn_panels(explanation):
    kernels = explanation["kernels"]
    items = [(f"{kernels['layer']} kernels", "signed", mosaic(kernels["weights"]), {})]
    for layer in explanation["layers"]:
        height, width, channels = layer["shape"]
        title = f"{layer['name']}: {channels} maps {height}x{width}\n{layer['kind']}"
        items.append((title, "image", mosaic(np.transpose(layer["values"], (2, 0, 1))), {"cmap": "magma"}))
    return items


def _rnn_panels(explanation):
    items = [
        (f"{layer['name']}: hidden state after each row", "heat", layer["values"], {"cmap": "coolwarm"})
        for layer in explanation["layers"]
    ]
    beliefs = explanation["reading"]["beliefs"]
    if beliefs is not None:
        items.append(("belief after reading t rows", "beliefs", beliefs, {}))
    return items


def write_sheet(explanation, image, path, title):
    """Draw the sheet for one explanation and save it (atomically) as PNG."""
    items = panels(explanation, image)
    rows = math.ceil(len(items) / COLUMNS)
    figure = plots.plt.figure(figsize=(4 * COLUMNS, 3.9 * rows + 1.4))
    for position, (panel_title, kind, values, options) in enumerate(items):
        axes = figure.add_subplot(rows, COLUMNS, position + 1)
        axes.set_title(wrap_title(panel_title), fontsize=9)
        _draw(axes, kind, values, options, explanation)
    figure.suptitle(title, fontsize=12)
    notes = explanation["notes"]
    figure.text(
        0.02,
        0.005,
        "\n".join(textwrap.wrap(notes["inside"] + " " + notes["attribution"], 190)),
        fontsize=8,
        va="bottom",
    )
    figure.tight_layout(rect=(0, 0.06, 1, 0.97))
    return plots.save_figure(figure, path)


def wrap_title(title, width=TITLE_CHARACTERS):
    """A panel title in lines of at most WIDTH characters (its own line breaks kept)."""
    return "\n".join(textwrap.fill(line, width) for line in title.split("\n"))


def _draw(axes, kind, values, options, explanation):
    labels = explanation["labels"]
    if kind == "bars":
        colors = ["#2a7" if digit == explanation["prediction"] else "#3b7dd8" for digit in range(len(values))]
        axes.barh(range(len(values)), values, color=colors)
        axes.set_yticks(range(len(values)), [str(label)[:12] for label in labels], fontsize=7)
        axes.invert_yaxis()
        axes.set_xlim(0, 1)
        return
    if kind == "beliefs":
        image = axes.imshow(values, cmap="viridis", vmin=0, vmax=1, aspect="auto")
        axes.set_xticks(range(len(labels)), [str(label)[:3] for label in labels], fontsize=7)
        axes.set_ylabel("rows read")
        axes.set_yticks([0, 6, 13, 20, 27], ["1", "7", "14", "21", "28"])
        axes.figure.colorbar(image, ax=axes, fraction=0.046)
        return
    if kind == "heat":
        limit = float(np.nanmax(np.abs(values))) or 1.0
        axes.imshow(values, cmap=options["cmap"], vmin=-limit, vmax=limit, aspect="auto", interpolation="nearest")
        axes.set_ylabel("rows read")
        axes.set_yticks([0, 6, 13, 20, 27], ["1", "7", "14", "21", "28"])
        axes.set_xlabel("unit")
        return
    if kind == "attribution":  # red raises the class, blue lowers it, on the scale both maps share
        limit = options["limit"]
        picture = axes.imshow(values, cmap="bwr", vmin=-limit, vmax=limit, interpolation="nearest")
        if options["colour_bar"]:
            # Inside the panel's own box (to its right): the panel keeps its size, and the layout sees the bar.
            bar = axes.figure.colorbar(picture, cax=axes.inset_axes([1.04, 0.0, 0.05, 1.0]))
            bar.set_label("probability per pixel (both maps)", fontsize=7)
            bar.ax.tick_params(labelsize=7)
        axes.text(0.5, -0.02, options["caption"], transform=axes.transAxes, ha="center", va="top", fontsize=8)
        axes.axis("off")
        return
    if kind == "signed":  # red raises, blue lowers: one symmetric scale around zero
        limit = float(np.nanmax(np.abs(values))) or 1.0
        axes.imshow(values, cmap="bwr", vmin=-limit, vmax=limit, interpolation="nearest")
    else:
        axes.imshow(values, interpolation="nearest", **options)
    axes.axis("off")


def split_paths(paths):
    """Command-line paths -> (run directories, image files): a directory with a config.json is a run."""
    run_dirs = [path for path in paths if (pathlib.Path(path) / rundir.CONFIG_FILE).is_file()]
    images = [path for path in paths if path not in run_dirs]
    if not images:
        raise ConfigError(
            "no image files given: pass run directories, then images (e.g. `mnistlab explain RUN_DIR digit.png --out inside/`)"
        )
    return run_dirs, images


def explain_files(
    run_dirs, images, out_dir, method="auto", backend="auto", store_path=None, dataset=None
) -> list[dict]:
    """Per image and run: a PNG sheet and the numbers as JSON in OUT_DIR, with `predict`'s preprocessing.

    No run directories: per family, the run with the best validation accuracy in the store among
    the runs on `dataset`'s page (default: digits, as `serve` chooses).
    """
    if method not in ATTRIBUTION_METHODS:
        raise ConfigError(f"--method must be one of {', '.join(ATTRIBUTION_METHODS)}, got {method!r}")
    prepared = [
        (pathlib.Path(path), *preprocess.prepare_file(path)) for path in images
    ]  # a bad file fails before loading models
    run_dirs = [rundir.check(run_dir) for run_dir in run_dirs] or [
        pathlib.Path(run_dir) for run_dir in pages.best_runs_per_family(store_path, dataset or pages.DEFAULT_PAGE)
    ]
    for run_dir in run_dirs:
        rundir.model_path(run_dir)  # a run without a model fails before any work
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for run_dir in run_dirs:
        explainer = explain.explainer_for(run_dir, backend)
        _, preset = rundir.read_config(run_dir)
        for path, image, info in prepared:
            explanation = explainer.explain(image, method=method)
            stem = (
                f"{path.stem}-{explainer.family}-{run_dir.name}"  # run names hold dots (listing-1.3.2): no with_suffix
            )
            sheet, numbers = out_dir / f"{stem}.png", out_dir / f"{stem}.json"
            title = f"{path.name}: {explainer.family.upper()} ({preset or run_dir.name}) says {explanation['labels'][explanation['prediction']]}"
            write_sheet(explanation, image, sheet, title)
            record = {"image": str(path), "run_dir": str(run_dir), "preprocess": info, "input": image, **explanation}
            fileio.write_text(numbers, json.dumps(explain.to_json(record)))
            results.append(
                {
                    "image": str(path),
                    "run_dir": str(run_dir),
                    "family": explainer.family,
                    "prediction": explanation["prediction"],
                    "label": explanation["labels"][explanation["prediction"]],
                    "runner_up": explanation["runner_up"],
                    "attribution": explanation["attributions"]["method"],
                    "sheet": str(sheet),
                    "json": str(numbers),
                }
            )
    return results

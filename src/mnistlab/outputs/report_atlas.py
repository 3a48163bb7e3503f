"""The disagreement atlas in a report: per group of runs, the digits they disagree on and those all get wrong,
as numbers and as image grids (`mnistlab.analysis.atlas`)."""

import html

import numpy as np

from mnistlab.analysis import atlas as atlas_lib
from mnistlab.core.errors import ConfigError, MnistlabError
from mnistlab.outputs import plots
from mnistlab.outputs.report_html import html_table, image


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


def atlas_sections(groups, figures, shown_label=None, by=None):
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
                *([(result.get("groups_test") or {}).get("verdict", "")] if by else []),
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
            *(["groups"] if by else []),  # a column only where the groups were split (an unheaded one was empty)
            "without predictions",
        ]
        sections.append(
            (
                "The digits the seeds disagree on",
                "<p>Per group of runs: the test digits they do not all answer alike, and those every run gets wrong (candidates for label noise). <code>mnistlab runs disagree</code> gives the same as JSON.</p>"
                + html_table(header, lines),
            )
        )
    if missing:
        sections.append(
            (
                "Runs without predictions",
                "<p>Runs trained before runs kept their test predictions have no atlas; <code>mnistlab runs predictions RUN_DIR...</code> writes them from the saved models.</p>"
                + html_table(["runs of", "why"], missing),
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
        (f"Atlas, {label}: digits the runs disagree on", image(contested, "digits the runs disagree on")),
        (f"Atlas, {label}: digits every run gets wrong", image(wrong, "digits every run gets wrong")),
        (f"Atlas, {label}: disagreement per class", image(per_class, "disagreement per class")),
    ]

"""The book's figure for a setup, and when runs are held against it: one rule that every surface calls.

The book's test accuracies (Listings 1.3.2, 1.4.1, 1.5.1 and the rows of Tables 1.3.2, 1.4.1, 1.5.1)
are each for full MNIST (60,000 training images) at the listing's or row's epochs and settings. Runs
are held against such a figure ("inside" or "outside" their 95% interval) only where they are that:

- on MNIST, the real one: the dataset recorded as `mnist`, which a run records only when it trained on
  the official file, checked by its sha256 (`data.load_mnist`, also what `auto` loads when it can; a
  path, even to a file called mnist.npz, is recorded as that path), and all on one content (dataset hash);
- as the book trained it: the config hash is the preset's own (`Preset.build_config().config_hash()`), so
  `limit` unset (all 60,000 images), the book's epochs and every other knob the preset's; seed, dataset
  and backend are not in the hash;
- over at least `stats.MIN_RUNS_FOR_VERDICT` (3) distinct seeds: below that the interval says nothing.

Anywhere else the book's figure is still shown, greyed, with the reason in a few words ("book: MNIST, 20
epochs; this: mnist-mini, 6 epochs"). `comparable(runs, preset)` is the rule; `book_figure(preset)` the
figure and where the book gives it; `against_book(runs, preset, test)` both, with the verdict, as the
fields every surface shows (the lab's runs and compare views, `runs compare`, the reports, the tables).
"""

import functools
import json
import pathlib

from mnistlab.core import presets, stats
from mnistlab.core.config import RUN_KEYS
from mnistlab.core.errors import ConfigError

BOOK_DATASET = "mnist"  # what a run on the official MNIST records as its dataset
# The book's training set: the label counts it prints for MNIST's training split (60,000).
BOOK_TRAINING_IMAGES = sum(presets.book()["mnist_label_counts"]["train"].values())


def _preset(preset):
    """A Preset from a name (or a Preset), or None: no preset, or one this mnistlab does not know."""
    if preset is None or isinstance(preset, presets.Preset):
        return preset
    try:
        return presets.get(preset)
    except ConfigError:  # a preset of an older or newer mnistlab: no book figure to hold runs against
        return None


def book_figure(preset):
    """(the book's test accuracy in %, where the book gives it: "Table 1.4.1 row 3", "Listing 1.3.2"), or
    (None, None) for no preset, an unknown one, or one the book gives no test accuracy for."""
    preset = _preset(preset)
    if preset is None or preset.book_test_accuracy is None:
        return None, None
    where = (
        f"{preset.table.replace('table-', 'Table ')} row {preset.row}"
        if preset.table
        else preset.name.replace("listing-", "Listing ")
    )
    return preset.book_test_accuracy, where


@functools.lru_cache(maxsize=256)
def _book_config(name):
    """The preset's own config (as a dict) and its hash: what the book trained."""
    config = presets.get(name).build_config()
    return config.to_dict(), config.config_hash()


def _dataset_words(name):
    if name == BOOK_DATASET:
        return "MNIST"
    return pathlib.Path(str(name)).name or str(name)  # a path: its last part is enough to say which


def _config_words(raw, book_config):
    """How a run's recorded config (RAW, a dict) differs from the book's besides its epochs, in a few words: the
    training images ("first 600 images"), then up to two other knobs ("+dropout_rate=0.2")."""
    words = []
    limit = raw.get("limit")
    if limit:
        words.append(f"first {limit:,} images")
    changed = [
        key
        for key, value in raw.items()
        if key not in RUN_KEYS and key not in ("epochs", "limit") and book_config.get(key) != value
    ]
    for key in changed[:2]:
        value = raw[key]
        words.append(f"+{key}={','.join(map(str, value)) if isinstance(value, list) else value}")
    if len(changed) > 2:
        words.append(f"+{len(changed) - 2} more")
    return words


def comparable(runs, preset):
    """(whether RUNS may be held against PRESET's figure in the book, why, in a few words): the module's rule.

    RUNS are the runs that count (store rows, or rows with the same fields: "dataset", "dataset_hash",
    "config_hash", "seed" and "config_json"); a repeat of a seed does not add one (`seeds.select_counted`).
    """
    preset = _preset(preset)
    if preset is None or preset.book_test_accuracy is None:
        return False, "the book gives no figure for this setup"
    runs = list(runs)
    if not runs:
        return False, "no finished runs"
    book_config, book_hash = _book_config(preset.name)
    book_epochs = book_config["epochs"]
    datasets = sorted({run["dataset"] for run in runs})
    contents = {run["dataset_hash"] for run in runs}
    seed_count = len({run["seed"] for run in runs})  # distinct seeds: a repeat of one adds none
    on_mnist = datasets == [BOOK_DATASET] and len(contents) == 1
    as_in_book = all(run["config_hash"] == book_hash for run in runs)
    enough = seed_count >= stats.MIN_RUNS_FOR_VERDICT
    if on_mnist and as_in_book and enough:
        return True, f"MNIST as in the book ({book_epochs} epochs), {seed_count} seeds"
    # Each setup's recorded config once (the runs of one setup share it): what the reason names.
    configs = [
        json.loads(text) for text in {run["config_hash"]: run.get("config_json") for run in runs}.values() if text
    ]
    raw = configs[0] if configs else {}
    epochs = sorted({config.get("epochs") for config in configs if config.get("epochs") is not None})
    this = [
        ", ".join(_dataset_words(name) for name in datasets)
        + (f" ({len(contents)} contents)" if len(contents) > 1 else "")
    ]
    if epochs:
        this.append(f"{'/'.join(map(str, epochs))} epoch{'s' if epochs != [1] else ''}")
    if not as_in_book:  # the epochs may be all that differs; where nothing shows, a knob the record does not name does
        this += _config_words(raw, book_config) or ([] if epochs and epochs != [book_epochs] else ["other settings"])
    if not enough:
        this.append(f"{seed_count} seed{'s' if seed_count != 1 else ''} (a verdict needs {stats.MIN_RUNS_FOR_VERDICT})")
    return False, f"book: MNIST, {book_epochs} epochs; this: {', '.join(this)}"


def against_book(runs, preset, test):
    """The fields every surface shows beside runs of PRESET whose test accuracy over seeds is TEST
    (`stats.summarize`, in %): {"book_test", "book_where", "comparable", "reason", "inside"}.

    "inside" (the verdict: the book's figure in the interval) is True or False only where `comparable`
    holds; None elsewhere, where the figure is shown greyed with the reason.
    """
    figure, where = book_figure(preset)
    held, reason = comparable(runs, preset)
    return {
        "book_test": figure,
        "book_where": where,
        "comparable": held,
        "reason": reason,
        "inside": stats.inside(figure, test) if held else None,
    }


def verdict_words(held, reason, inside):
    """The verdict against the book in a few words (HELD, REASON, INSIDE: `against_book`'s "comparable", "reason",
    "inside"): "inside the interval", "outside the interval", "no verdict", or for runs not held against it,
    why ("not comparable: book: MNIST, 20 epochs; this: mnist-mini, 2 epochs")."""
    if not held:
        return f"not comparable: {reason}"
    if inside is None:
        return "no verdict"
    return "inside the interval" if inside else "outside the interval"

"""Setups compared over seeds: which finished runs a selector names, and Welch's t-test between two sets.

`runs compare`, the compare view and the report's comparisons all select and compare through here.
"""

import json
import pathlib

from mnistlab.analysis import book, seeds
from mnistlab.core import presets, stats
from mnistlab.core.config import Config
from mnistlab.core.errors import ConfigError
from mnistlab.record.store import Store


def find_runs(store, spec, dataset=None, backend=None):
    """Done runs named by a preset, a config-hash prefix, group=NAME or a run directory, however many setups they are."""
    if spec.startswith("group="):
        runs = store.runs(status="done", group=spec.split("=", 1)[1])
    elif spec in presets.all_presets() or "@" in spec:
        runs = store.runs(status="done", preset=spec)
    elif pathlib.Path(spec).is_dir():
        wanted = str(pathlib.Path(spec).resolve())
        runs = [
            run
            for run in store.runs(status="done")
            if run["run_dir"] and str(pathlib.Path(run["run_dir"]).resolve()) == wanted
        ]
    else:
        runs = store.runs(status="done", config_hash_prefix=spec)
    if dataset:
        runs = [run for run in runs if run["dataset"] == dataset]
    if backend:
        runs = [run for run in runs if run["backend"] == backend]
    if not runs:
        raise ConfigError(
            f"no finished runs match {spec!r}; give a preset name, a config hash (see `mnistlab runs list`), group=NAME or a run directory"
        )
    return runs


def select_runs(store, spec, dataset=None, backend=None):
    """Done runs of one setup named by a preset, a config-hash prefix or group=NAME.

    A name that matches several setups is refused with the setups listed by
    their settings, so the user can pick one.
    """
    runs = find_runs(store, spec, dataset, backend)
    setups = {}
    for run in runs:
        setups.setdefault((run["config_hash"], run["dataset"], run["backend"]), run)
    if len(setups) > 1:
        listed = "; ".join(
            f"{run['config_hash'][:8]} = {_run_description(run)} on {run['dataset']} with {run['backend']}"
            for run in setups.values()
        )
        # Suggest --dataset only where the setups differ by dataset: otherwise it cannot help.
        by_dataset = " or add --dataset" if len({key[1] for key in setups}) > 1 else ""
        by_dataset += " or add --backend" if len({key[2] for key in setups}) > 1 else ""
        raise ConfigError(f"{spec!r} matches {len(setups)} setups ({listed}); name one by its config hash{by_dataset}")
    return runs


def _run_description(run):
    return presets.describe(Config.from_dict(json.loads(run["config_json"])), run["preset"])


def compare_runs(runs_a, runs_b):
    """Welch's t-test of two lists of store rows' test accuracies (in %): what `runs compare`, the report's
    comparison of setups and the backend comparison of a table all compute. The rows are the runs that
    count (`seeds.select_counted`): one per seed."""
    return stats.compare([100 * run["test_accuracy"] for run in runs_a], [100 * run["test_accuracy"] for run in runs_b])


def compare(a, b, store_path=None, dataset=None, backend=None):
    """Is A's test accuracy over seeds different from B's? Welch's t-test on the store's done runs, one per seed
    (a repeat of a seed is set aside, and said: "repeats_a"); beside each side, the book's figure ("book_a")
    and the verdict against it only where the side is the book's setup (`book.against_book`)."""
    with Store(store_path) as store:
        sides = [seeds.select_counted(select_runs(store, spec, dataset, backend)) for spec in (a, b)]
    result = compare_runs(*(counted for counted, _ in sides))
    result["a"], result["b"] = a, b
    for name, (counted, repeats) in zip(("a", "b"), sides):
        result[f"setup_{name}"] = _run_description(counted[0])
        result[f"repeats_{name}"] = seeds.repeats_summary(counted, repeats)
        test = stats.summarize([100 * run["test_accuracy"] for run in counted], bounds=stats.PERCENT)
        result[f"book_{name}"] = book.against_book(counted, counted[0]["preset"], test)
    return result

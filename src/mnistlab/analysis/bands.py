"""Seeds as the unit of a comparison: learning curves with 95% bands, final accuracy with its interval, Welch's verdict.

`bands(histories)` gives, per epoch, the mean and the 95% t-interval over seeds
of each history column (the same interval `stats.summarize` gives a table
cell). `compare_setups(selectors)` puts several setups side by side: per
setup its runs, parameter count, the book's figure where the setup is a book
preset (with a verdict only where the runs are the book's setup:
`book.comparable`), its final test accuracy over seeds and its bands; and per
pair of setups the numbers `mnistlab runs compare` gives (the same function),
with no verdict below 3 seeds a side. A seed counts once (`seeds.select_counted`:
the newest of its finished runs; the others are said as repeats). Everything is
plain data (lists, dicts, numbers), for the report, the CLI's JSON and the lab.
"""

import itertools
import json

from mnistlab.analysis import book, compare, dynamics, seeds
from mnistlab.core import presets, stats
from mnistlab.core.config import Config
from mnistlab.core.errors import ConfigError
from mnistlab.record import rundir
from mnistlab.record.store import Store

METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")
# Where each quantity can lie: a band is cut there (a 95% t-interval of 2 seeds can reach past 100% or below 0).
BOUNDS = {
    "accuracy": (0.0, 1.0),
    "val_accuracy": (0.0, 1.0),
    "loss": (0.0, float("inf")),
    "val_loss": (0.0, float("inf")),
}


def bands(histories, metrics=METRICS, confidence=stats.CONFIDENCE):
    """{metric: [{"epoch", "n", "mean", "std", "ci_low", "ci_high"}, ...]} over the runs' histories.

    Epoch k is summarised over the runs that reached it (a run that diverged or was
    stopped early adds nothing after its last epoch), so `n` may fall at the end.
    With one run an epoch has its mean and no interval (None).
    """
    longest = max((len(history) for history in histories), default=0)
    result = {}
    for metric in metrics:
        rows = []
        for position in range(longest):
            values = [history[position].get(metric) for history in histories if len(history) > position]
            summary = stats.summarize(
                [value for value in values if value is not None], confidence, bounds=BOUNDS.get(metric)
            )
            rows.append({"epoch": position + 1, **summary})
        result[metric] = rows
    return result


def _setup_of(run):
    config = Config.from_dict(json.loads(run["config_json"]))
    return presets.describe(config, run["preset"])


def setups_of(selectors, store_path=None, dataset=None, by=None, backend=None):
    """[(name, runs)]: each selector's done runs (repeats of a seed too), one setup each (as `runs compare` selects them);
    with by="backend", each selector's runs split by backend (so a setup run on three backends is three)."""
    groups = []
    with Store(store_path) as store:
        for spec in selectors:
            if by == "backend":
                runs = compare.find_runs(store, spec, dataset, backend)
                for name in sorted({run["backend"] for run in runs}):
                    groups.append((f"{spec} on {name}", compare.select_runs(store, spec, dataset, backend=name)))
            elif by is None:
                groups.append((spec, compare.select_runs(store, spec, dataset, backend)))
            else:
                raise ConfigError(f"cannot group setups by {by!r}; --by takes backend")
    return groups


def describe_setup(name, runs, repeats=()):
    """One setup's side of the comparison: runs (those that count, one per seed; REPEATS set aside), parameters,
    book figure, final test accuracy over seeds, bands."""
    run_dirs = [run["run_dir"] for run in runs]
    metrics = [rundir.read_metrics(run_dir) or {} for run_dir in run_dirs]
    histories = [rundir.read_history(run_dir) for run_dir in run_dirs]
    params = sorted({m["params"] for m in metrics if m.get("params") is not None})
    test = stats.summarize([100 * run["test_accuracy"] for run in runs], bounds=stats.PERCENT)
    against = book.against_book(runs, runs[0]["preset"], test)
    return {
        "name": name,
        "setup": _setup_of(runs[0]),
        "preset": runs[0]["preset"],
        "config_hash": runs[0]["config_hash"],
        "dataset": runs[0]["dataset"],
        "backend": runs[0]["backend"],
        "seeds": [run["seed"] for run in runs],
        "run_ids": [run["id"] for run in runs],
        "run_dirs": run_dirs,
        "params": params[0] if len(params) == 1 else (params or None),
        "repeats": seeds.repeats_summary(runs, repeats),
        "book_test": against["book_test"],
        "book_where": against["book_where"],
        # The verdict only where the runs are the book's setup; elsewhere None, and why (shown greyed beside the figure).
        "book_comparable": against["comparable"],
        "book_reason": against["reason"],
        "book_test_in_ci": against["inside"],
        "test": test,
        "bands": bands(histories),
        # Inside training over the same seeds: the kernels' norms, updates and gradients, the units' shares.
        "dynamics": dynamics.bands_over_seeds([rundir.read_dynamics(run_dir) for run_dir in run_dirs]),
    }


def compare_setups(selectors, store_path=None, dataset=None, by=None, backend=None):
    """Several setups side by side (see the module's docstring): {"setups": [...], "comparisons": [...], "by"}."""
    groups = [
        (name, *seeds.select_counted(runs)) for name, runs in setups_of(selectors, store_path, dataset, by, backend)
    ]
    if not groups:
        raise ConfigError("name at least one setup to compare")
    setups = [describe_setup(name, counted, repeats) for name, counted, repeats in groups]
    comparisons = []
    for (a, runs_a), (b, runs_b) in itertools.combinations(zip(setups, [counted for _, counted, _ in groups]), 2):
        if a["test"]["n"] < 2 or b["test"]["n"] < 2:
            comparisons.append(
                {
                    **stats.too_few_to_compare(a["name"], b["name"], a["test"]["n"], b["test"]["n"]),
                    "verdict": f"no comparison: {a['test']['n']} and {b['test']['n']} runs (Welch's test needs 2 a side, a verdict {stats.MIN_RUNS_FOR_VERDICT})",
                }
            )
            continue
        # The same function on the same runs as `mnistlab runs compare A B`: the same numbers.
        comparisons.append({"a": a["name"], "b": b["name"], **compare.compare_runs(runs_a, runs_b)})
    return {"setups": setups, "comparisons": comparisons, "by": by}

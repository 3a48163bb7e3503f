"""The disagreement atlas: which test digits a group of runs answer differently.

Every finished run keeps its per-example test predictions (RUN_DIR/predictions.npz:
predicted class, probability of the true class, label, the dataset's content hash).
For any group of runs (the seeds of one setup, several setups, several backends)
`disagreement(run_dirs)` gives, as plain data (lists and numbers, ready for JSON):

- the test digits the runs do not all answer alike;
- the digits every run gets wrong, with their label and each run's answer
  (candidates for label noise);
- per class, how often the runs disagree;
- with `by="backend"` (or any run field), the same per group, and whether the
  groups disagree with each other more than runs within a group do (seed noise):
  a permutation test on the pairwise disagreement rates.

Pure NumPy on arrays of one byte per digit: 30 runs x 10,000 digits take
milliseconds (benchmarks/seeds_bench.py).
"""

import json
import pathlib

import numpy as np

from mnistlab.core import fileio
from mnistlab.core.errors import ConfigError, RunDirError
from mnistlab.ml import data
from mnistlab.record import rundir

PERMUTATIONS = 2000  # label shuffles of the groups test; seeded, so an atlas is the same each time it is asked
PERMUTATION_SEED = 0
LEVEL = 0.05  # the groups test's significance level (the 95% used everywhere else)


def _run_info(run_dir):
    """Who a run is, from its metrics.json and the raw config.json (an atlas of 30 runs does not validate
    30 configs: `Config.from_dict` is only needed where an older record lacks the figures)."""
    metrics = rundir.read_metrics(run_dir) or {}
    raw = json.loads(fileio.read_bytes(pathlib.Path(run_dir) / rundir.CONFIG_FILE, RunDirError))
    config_hash, setup = metrics.get("config_hash"), metrics.get("description")
    if config_hash is None or setup is None:
        config, _ = rundir.read_config(run_dir)
        config_hash, setup = config_hash or config.config_hash(), setup or config.describe()
    return {
        "run_dir": str(run_dir),
        "preset": raw.get("preset"),
        "setup": setup,
        "config_hash": config_hash,
        "backend": metrics.get("backend") or raw.get("backend"),
        "seed": raw.get("seed"),
        "dataset": metrics.get("dataset") or raw.get("dataset"),
    }


def load(run_dirs):
    """(runs, predictions (R, N) uint8, true-class probabilities (R, N) float16, labels (N,), missing run dirs).

    Runs without predictions.npz are left out and named in `missing`; every other run must
    have answered the same test set (one dataset content hash), else the atlas would compare
    answers to different digits.
    """
    runs, predicted, probabilities, missing = [], [], [], []
    labels, dataset_hash = None, None
    for run_dir in run_dirs:
        run_dir = rundir.check(run_dir)
        # The labels once: runs of one dataset hash answered the same test set.
        record = rundir.read_predictions(
            run_dir, rundir.PREDICTION_FIELDS if labels is None else ("predicted", "true_probability", "dataset_hash")
        )
        if record is None:
            missing.append(str(run_dir))
            continue
        if dataset_hash is None:
            labels, dataset_hash = record["labels"], record["dataset_hash"]
        elif record["dataset_hash"] != dataset_hash or len(record["predicted"]) != len(labels):
            raise ConfigError(
                f"{run_dir} answered another test set than {runs[0]['run_dir']} (dataset hash {record['dataset_hash'][:12]} vs {dataset_hash[:12]}); an atlas compares runs on one dataset: add --dataset"
            )
        runs.append(_run_info(run_dir))
        predicted.append(record["predicted"])
        probabilities.append(record["true_probability"])
    if not runs:
        raise ConfigError(
            f"none of the {len(missing)} run(s) has {rundir.PREDICTIONS_FILE} (runs trained before runs kept their test predictions); write them with `mnistlab runs predictions RUN_DIR...`"
        )
    return runs, np.stack(predicted), np.stack(probabilities), labels, dataset_hash, missing


def pairwise_disagreement(predicted):
    """(R, R) matrix: the fraction of test digits on which runs i and j give different classes."""
    # Run by run against all the others: R passes over (R, N) bytes, no (R, R, N) array held at once.
    return np.stack([np.count_nonzero(predicted != row, axis=1) for row in predicted]) / predicted.shape[1]


def _core(predicted, labels, num_classes):
    """The atlas of one group of runs, from its (R, N) predictions."""
    disagree = (predicted != predicted[0]).any(axis=0)
    wrong = predicted != labels
    all_wrong = wrong.all(axis=0)
    class_counts = np.bincount(labels, minlength=num_classes)
    class_disagree = np.bincount(labels[disagree], minlength=num_classes)
    return disagree, all_wrong, wrong, class_counts, class_disagree


def _summary(predicted, labels, names):
    disagree, all_wrong, wrong, class_counts, class_disagree = _core(predicted, labels, len(names))
    total = len(labels)
    return {
        "run_count": int(len(predicted)),
        "disagreed": int(disagree.sum()),
        "disagreement_rate": float(disagree.mean()) if total else 0.0,
        "all_wrong": int(all_wrong.sum()),
        "accuracy": [float(1 - row.mean()) for row in wrong],
        "per_class": [
            {
                "class": digit,
                "name": names[digit],
                "test_digits": int(class_counts[digit]),
                "disagreed": int(class_disagree[digit]),
                "rate": float(class_disagree[digit] / class_counts[digit]) if class_counts[digit] else 0.0,
            }
            for digit in range(len(names))
        ],
    }


def groups_test(predicted, group_of, permutations=PERMUTATIONS, seed=PERMUTATION_SEED, by="group"):
    """Do runs of different groups disagree more than runs of one group?

    The statistic is the mean disagreement rate of pairs across groups minus that of pairs
    within a group (seed noise). Its p-value: the share of random relabelings of the runs
    (group sizes kept) whose statistic is at least as large. Pairs of runs are not
    independent, so a t-test on pair rates would be wrong; a permutation test is exact
    under "the group makes no difference". None where a group has fewer than 2 runs
    (no seed noise to compare with).
    """
    group_of = np.asarray(group_of)
    _, codes, sizes = np.unique(group_of, return_inverse=True, return_counts=True)
    if len(sizes) < 2 or sizes.min() < 2:
        return None
    matrix = pairwise_disagreement(predicted)
    upper = np.triu_indices(len(codes), 1)
    rates = matrix[upper]

    def statistic(labelings):
        # One row per labeling of the runs, all at once: mean rate of pairs across groups minus within.
        same = labelings[:, upper[0]] == labelings[:, upper[1]]
        within = (rates * same).sum(axis=1) / same.sum(axis=1)
        across = (rates * ~same).sum(axis=1) / (~same).sum(axis=1)
        return across - within

    observed = statistic(codes[None, :])[0]
    rng = np.random.default_rng(seed)
    shuffled = statistic(rng.permuted(np.tile(codes, (permutations, 1)), axis=1))
    # +1 on both sides: the observed labeling is one of the relabelings (never p = 0).
    p_value = float((np.count_nonzero(shuffled >= observed - 1e-12) + 1) / (permutations + 1))
    same = codes[upper[0]] == codes[upper[1]]
    differ = p_value < LEVEL
    return {
        "test": f"permutation test on pairwise disagreement ({permutations} relabelings)",
        "within_group_rate": float(rates[same].mean()),
        "across_groups_rate": float(rates[~same].mean()),
        "difference": float(observed),
        "p_value": p_value,
        "differ": bool(differ),
        "verdict": (
            f"runs of different {by}s disagree {'more' if differ else 'no more'} than runs of one {by}"
            f" ({100 * rates[~same].mean():.2f}% vs {100 * rates[same].mean():.2f}% of digits, p = {p_value:.3g})"
            + ("" if differ else ": no difference beyond seed noise")
        ),
    }


def disagreement(run_dirs, by=None, examples=None):
    """The atlas of RUN_DIRS as plain data (see the module's docstring).

    `by`: a run field ("backend", "preset", "config_hash", "seed") to group the runs by.
    `examples`: how many disagreed and all-wrong digits to list in full (default: all).
    """
    runs, predicted, probabilities, labels, dataset_hash, missing = load(run_dirs)
    names = data.class_names(runs[0]["dataset"])
    disagree, all_wrong, _, _, _ = _core(predicted, labels, len(names))
    # Most contested first: where the runs' answers split most evenly (fewest agreeing with the most common answer).
    disagreed = np.flatnonzero(disagree)
    if len(disagreed):
        columns = predicted[:, disagreed]
        counts = np.zeros((len(disagreed), len(names)), dtype=np.int32)
        np.add.at(counts, (np.broadcast_to(np.arange(len(disagreed)), columns.shape), columns), 1)
        majority = counts.max(axis=1)
        disagreed = disagreed[np.argsort(majority, kind="stable")]
    wrong_everywhere = np.flatnonzero(all_wrong)
    # Where every run is wrong, the most confident (lowest mean probability of the label) first.
    wrong_everywhere = wrong_everywhere[
        np.argsort(probabilities[:, wrong_everywhere].astype(np.float64).mean(axis=0), kind="stable")
    ]
    limit = slice(None) if examples is None else slice(0, examples)

    def digits(indexes):
        # Whole columns at once: converting 30 answers x 1,000s of digits one number at a time is most of the time.
        answers = predicted[:, indexes].T.tolist()
        shown = np.round(probabilities[:, indexes].astype(np.float64), 4).T.tolist()
        return [
            {"index": index, "label": label, "answers": answer, "true_probability": probability}
            for index, label, answer, probability in zip(indexes.tolist(), labels[indexes].tolist(), answers, shown)
        ]

    result = {
        "runs": runs,
        "missing": missing,
        "dataset": runs[0]["dataset"],
        "dataset_hash": dataset_hash,
        "class_names": list(names),
        "test_digits": int(len(labels)),
        **_summary(predicted, labels, names),
        "disagreed_digits": digits(disagreed[limit]),
        "all_wrong_digits": digits(wrong_everywhere[limit]),
    }
    if by:
        if by not in runs[0]:
            raise ConfigError(
                f"cannot group runs by {by!r}; choose one of {', '.join(key for key in runs[0] if key != 'run_dir')}"
            )
        group_of = [str(run[by]) for run in runs]
        result["by"] = by
        result["groups"] = {
            group: {**_summary(predicted[members], labels, names), "run_dirs": [runs[i]["run_dir"] for i in members]}
            for group, members in _members(group_of).items()
        }
        result["groups_test"] = groups_test(predicted, group_of, by=by.replace("_", " "))
    return result


def _members(group_of):
    members = {}
    for position, group in enumerate(group_of):
        members.setdefault(group, []).append(position)
    return members


def images_of(atlas):
    """The test images the atlas' digits index, from the dataset its runs used (checked by content hash)."""
    config, _ = rundir.read_config(atlas["runs"][0]["run_dir"])
    dataset = data.load_dataset(config.dataset)
    if dataset.content_hash() != atlas["dataset_hash"]:
        raise ConfigError(
            f"the dataset {config.dataset!r} here is not the one the runs answered (content hash differs); its images cannot be shown"
        )
    return dataset.x_test

"""Which finished runs a draw page serves: per family, the best counted run on the page's datasets."""

import pathlib

from mnistlab.analysis import seeds
from mnistlab.core.errors import ConfigError, RunDirError
from mnistlab.record import rundir
from mnistlab.record.store import Store

# What a page shows: its datasets share their labels (a digit page takes MNIST and its sample;
# a clothes page, Fashion-MNIST). Any other name is a page of that dataset alone.
PAGE_DATASETS = {"digits": ("mnist", "mnist-mini"), "fashion-mnist": ("fashion-mnist",)}


DEFAULT_PAGE = "digits"


def page_datasets(page):
    """The dataset names of PAGE ('digits', 'fashion-mnist', or any dataset name)."""
    return PAGE_DATASETS.get(page, (page,))


def choose_runs(store_path=None, page=DEFAULT_PAGE) -> list[dict]:
    """Per family, the finished run on PAGE's datasets with a saved model and the best validation accuracy (never the test set's).

    One dict per family: run_dir, family, dataset, val_accuracy and why it was chosen.
    """
    datasets = page_datasets(page)
    chosen, others = {}, set()
    with Store(store_path) as store:
        servable = [
            run
            for run in store.runs(status="done")
            if run["run_dir"] and (pathlib.Path(run["run_dir"]) / rundir.MODEL_FILE).exists()
        ]
    # One candidate per seed, as every statistic counts runs (seeds.select_counted): the best of a seed's
    # repeats would be chosen on noise, not on its setup.
    for run in seeds.select_counted(servable)[0]:
        if run["dataset"] not in datasets:
            others.add(run["dataset"])
            continue
        score = run["val_accuracy"] if run["val_accuracy"] is not None else -1.0
        if run["family"] not in chosen or score > chosen[run["family"]]["val_accuracy"]:
            chosen[run["family"]] = {
                "run_dir": run["run_dir"],
                "family": run["family"],
                "dataset": run["dataset"],
                "val_accuracy": score,
            }
    if not chosen:
        elsewhere = f"; the store has runs on {', '.join(sorted(others))} (choose one with --dataset)" if others else ""
        raise RunDirError(
            f"no finished runs on {' or '.join(datasets)} with a saved model in the run store{elsewhere}; train some first (e.g. `mnistlab listings`) or pass run directories"
        )
    for run in chosen.values():
        run["why"] = (
            f"best validation accuracy ({100 * run['val_accuracy']:.1f}%) among the {run['family']} runs on {' or '.join(datasets)}"
        )
    return [chosen[family] for family in ("mlp", "cnn", "rnn") if family in chosen]


def best_runs_per_family(store_path=None, page=DEFAULT_PAGE) -> list[str]:
    """The run directories `choose_runs` picks."""
    return [run["run_dir"] for run in choose_runs(store_path, page)]


def check_one_page(run_dirs):
    """The dataset the runs share a page on, or a one-line error: a page never mixes digits and clothes."""
    pages = {}
    for run_dir in run_dirs:
        dataset = rundir.read_config(run_dir)[0].dataset
        page = next((name for name, names in PAGE_DATASETS.items() if dataset in names), dataset)
        pages.setdefault(page, []).append(str(run_dir))
    if len(pages) > 1:
        listed = "; ".join(f"{page}: {', '.join(dirs)}" for page, dirs in pages.items())
        raise ConfigError(
            f"these runs were trained on different kinds of images ({listed}); serve the runs of one dataset at a time"
        )
    return next(iter(pages))

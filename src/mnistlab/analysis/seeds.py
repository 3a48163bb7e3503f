"""Which finished runs count as seeds: per setup, seed, backend and dataset, the newest; the others are repeats.

The store keeps every finished run: a forced repeat (`bash scripts/run-main.sh` always retrains, the tour
uses `--force`) or two sweeps racing leave several `done` runs of one setup and seed (the store keys the
later ones `KEY#ID`). They are one seed, not several: counted as seeds they make a zero-width interval
out of one run and an effect size out of nothing. So every statistic (`runs compare`, the reproduced
tables, `bands.compare_setups`, the atlas, the lab's runs and compare views, the reports, the server's
choice of runs) counts one run per (config hash, seed, backend, dataset hash), the newest finished one,
through `select_counted`; the others are set aside as repeats. A repeat is still a fact worth showing:
`repeats_summary` says how many were set aside and whether they agree with the run that counts (the
same test accuracy: training is deterministic there) or by how much they differ.
"""

# Test accuracies (fractions) closer than this are the same result: a deterministic repeat.
SAME_RESULT = 1e-9


def identity(run):
    """What makes two finished runs one seed: (config hash, seed, backend, dataset hash), and the dataset's name
    (one content under two names, which only a made-up hash gives, is not merged)."""
    return (run["config_hash"], run["seed"], run["backend"], run["dataset_hash"], run["dataset"])


def _newness(run):
    # Finished last is newest; the id breaks ties (and orders runs that record no end).
    return (run.get("finished_at") or 0.0, run.get("id") or 0)


def select_counted(runs):
    """(counted, repeats) of RUNS (store rows): per `identity`, the newest finished (`done`) run counts; the
    other finished runs of it are repeats, each a copy with "repeat_of" (the id of the run that counts).

    Counted runs keep the order they came in; runs that did not finish are in neither list.
    """
    finished = [run for run in runs if run.get("status", "done") == "done"]
    newest = {}
    for run in finished:
        key = identity(run)
        if key not in newest or _newness(run) > _newness(newest[key]):
            newest[key] = run
    counted = [run for run in finished if newest[identity(run)] is run]
    repeats = [
        {**run, "repeat_of": newest[identity(run)].get("id")} for run in finished if newest[identity(run)] is not run
    ]
    return counted, repeats


def repeats_summary(counted, repeats):
    """{"count", "seeds", "agreement", "largest_difference", "words"}: the repeats set aside, and whether they
    agree with the runs that count: "deterministic" (the same test accuracy), "differ" (by up to
    `largest_difference` points), or None (no repeats, or no accuracies to compare)."""
    if not repeats:
        return {"count": 0, "seeds": [], "agreement": None, "largest_difference": None, "words": ""}
    accuracy_of = {run.get("id"): run.get("test_accuracy") for run in counted}
    differences = [
        abs(run["test_accuracy"] - accuracy_of[run["repeat_of"]])
        for run in repeats
        if run.get("test_accuracy") is not None and accuracy_of.get(run["repeat_of"]) is not None
    ]
    seeds = sorted({run["seed"] for run in repeats})
    count = len(repeats)
    which = f"{count} repeat{'s' if count != 1 else ''} of seed{'s' if len(seeds) != 1 else ''} {', '.join(map(str, seeds))} set aside"
    if not differences:
        agreement, largest, words = None, None, which
    elif max(differences) <= SAME_RESULT:
        agreement, largest, words = "deterministic", 0.0, f"{which}: deterministic, the same test accuracy"
    else:
        agreement, largest = "differ", 100 * max(differences)
        words = f"{which}: they differ from the counted runs by up to {largest:.2f} points"
    return {"count": count, "seeds": seeds, "agreement": agreement, "largest_difference": largest, "words": words}


def counted_of_jobs(store, jobs):
    """([the counted run of each planned job, or None], repeats): a sweep's or reproduction's jobs read back
    from STORE (a `store.Store`), each the newest finished run of its setup, seed, backend and dataset."""
    rows = {}
    for job in jobs:
        for row in store.done_runs_of(job.config, job.dataset_hash):
            rows[row["id"]] = row  # a job planned twice reads the same runs: each once
    counted, repeats = select_counted(list(rows.values()))
    by_identity = {identity(run): run for run in counted}
    return [
        by_identity.get(
            (job.config.config_hash(), job.config.seed, job.config.backend, job.dataset_hash, job.config.dataset)
        )
        for job in jobs
    ], repeats

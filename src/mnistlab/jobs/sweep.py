"""Many runs: planning jobs, skipping finished ones, and running the rest locally or on Ray.

A job is one config (with its seed) to train. Its key, (config hash,
dataset hash, backend, seed), is what the store remembers: a job whose key
already has a `done` run is skipped, so an interrupted sweep started again
does only the missing runs.

This module's process, the driver, is the only writer of the run store and
of the run root: it opens each run's row, hands the training to a worker, and
records what comes back.
- local (default): K worker threads, each starting one child process per run
  (`mnistlab.jobs.runner`, which also lets each run pick its own Keras backend).
  The children are on this machine and write their run directories in place.
- ray: each run is a Ray task (on a local Ray cluster or an existing one at
  `address`) that trains in a scratch directory on whichever node runs it and
  returns the run directory's files; the driver writes them into its own run
  root. Nodes need mnistlab installed, and no shared filesystem.

A failed run is retried once, then left recorded as failed; the sweep goes on.

The lab (`mnistlab.web.lab`) runs its launches through here too, one job per
call: a job may name a row the lab queued (`queued_run_id`), which the driver
then starts instead of opening a new one; its `Watch`: `on_start` hands the lab a way to
stop each run, `on_progress` the run's live progress (from a local worker's
pipe, or from a Ray task through a queue actor), and a run stopped so ends
`interrupted`, not failed.
"""

import concurrent.futures
import dataclasses
import itertools
import pathlib
import queue
import sys
import threading
import tomllib
from collections.abc import Callable

from mnistlab.analysis import seeds as seeds_lib  # "seeds" is also what a sweep is run with
from mnistlab.core import fileio, presets, stats
from mnistlab.core.config import EXECUTORS, Config
from mnistlab.core.errors import ConfigError, RunFailed
from mnistlab.core.events import RunStatus
from mnistlab.jobs import ray_executor, runner
from mnistlab.jobs.ray_executor import connect_ray  # noqa: F401 - the lab starts Ray through the sweep
from mnistlab.ml import backend as backend_lib
from mnistlab.ml import data
from mnistlab.record import rundir
from mnistlab.record.store import Store

MAX_ATTEMPTS = 2  # the first try and one retry


@dataclasses.dataclass
class Job:
    config: Config
    preset: str | None
    group: str | None
    key: str
    label: str  # a short name for progress lines
    dataset_hash: str
    queued_run_id: int | None = None  # a row already queued in the store (the lab's): the first attempt starts it


def plan(configs, dataset, group=None):
    """Jobs for (preset, config) pairs on a loaded dataset, with backends resolved and keys computed."""
    dataset_hash = dataset.content_hash()
    jobs = []
    for preset, config in configs:
        preset = presets.kept(preset, config)
        config = backend_lib.pin(
            config.replace(dataset=data.pinned_name(config.dataset, dataset)), in_this_process=False
        )
        label = f"{presets.describe(config, preset)} seed {config.seed}"
        jobs.append(Job(config, preset, group, config.run_key(dataset_hash), label, dataset_hash))
    return jobs


@dataclasses.dataclass
class Outcome:
    job: Job
    status: str  # done, diverged, failed, skipped
    metrics: dict | None = None
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class Watch:
    """How a caller that watches its runs (the lab) steers them, and what it is told.

    `attempts`: tries per run (1: no retry; None: MAX_ATTEMPTS, read when the runs start). `on_start(run_id, stop)`:
    told each run as it starts, with a function that stops it. `on_progress(run_id, event)`: each progress event of
    a run's training (local or on Ray). `cancelled(run_id)`: why a run that ended without its result was stopped on
    purpose, or None (a stopped run is recorded `interrupted`, with that reason). `trainers`: the `runner.Trainers`
    of the caller's worker (one local worker), kept after the runs.
    """

    attempts: int | None = None
    on_start: Callable[[int, Callable[[], None]], None] | None = None
    on_progress: Callable[[int, dict], None] | None = None
    cancelled: Callable[[int], str | None] | None = None
    trainers: runner.Trainers | None = None


def run(
    jobs, store_path=None, workers=1, executor="local", address=None, log=None, force=False, quiet=True, watch=None
):
    """Run every job not already done in the store (every job, if `force`); one Outcome per job, in order.

    `watch`: a `Watch`, for a caller that steers and follows its runs (the lab).

    Each finished run's "[i/N]" line goes to `log` when one is given, else to stderr on a terminal only: piped
    (`2>&1 | tee`), it would land between the lines of the results table. Failures are said either way.
    """
    every_run_told = log is not None or sys.stderr.isatty()
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    if executor not in EXECUTORS:
        raise ConfigError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    with Store(store_path) as store:
        reaped = store.reap()
        if reaped:
            log(f"marked {reaped} run(s) of a previous, killed sweep as interrupted")
        outcomes, todo = _skipped_and_todo(store, jobs, force)
        store_path = store.path
    log(
        f"{len(jobs)} runs planned: {len(jobs) - len(todo)} already done, {len(todo)} to run with {workers} {executor} worker(s)"
    )
    if todo:
        execute = ray_executor.run_ray if executor == "ray" else _run_local
        driver = _Driver(store_path, log, every_run_told, watch or Watch())
        for index, outcome in execute(todo, driver, workers, address, quiet):
            outcomes[index] = outcome
    return [outcomes[index] for index in range(len(jobs))]


def _skipped_and_todo(store, jobs, force):
    """({index: Outcome} of the jobs already done, [(index, job)] of those to run); a job listed twice is refused."""
    outcomes, todo, seen = {}, [], set()
    for index, job in enumerate(jobs):
        done = None if force else store.done_run(job.key)
        if done is not None:
            outcomes[index] = Outcome(
                job,
                "skipped",
                metrics={"test_accuracy": done["test_accuracy"], "run_id": done["id"], "run_dir": done["run_dir"]},
            )
        elif job.key in seen:
            raise ConfigError(f"the sweep lists the same run twice ({job.label}); remove the duplicate")
        else:
            seen.add(job.key)
            todo.append((index, job))
    return outcomes, todo


class _Driver:
    """The one writer: opens a run's row and directory, then records how it ended."""

    def __init__(self, store_path, log, every_run_told, watch):
        self.store_path = store_path
        self.log = log
        self.every_run_told = every_run_told
        self.trainers = watch.trainers  # the caller's runner.Trainers for a local run, or None: each worker its own
        self.attempts = MAX_ATTEMPTS if watch.attempts is None else watch.attempts  # MAX_ATTEMPTS: the one setting
        self.on_start = watch.on_start or (lambda run_id, stop: None)
        self.on_progress = watch.on_progress
        self.cancelled = watch.cancelled or (lambda run_id: None)
        self._lock = threading.Lock()
        self._counter = itertools.count(1)

    def open(self, job):
        run_dir = rundir.new_path(job.config, job.preset).resolve()
        with Store(self.store_path) as store:
            if job.queued_run_id is not None:
                # The lab's queued row becomes this run; a retry would open a row of its own.
                run_id, job.queued_run_id = job.queued_run_id, None
                store.start_queued(run_id, run_dir=run_dir, machine=rundir.machine_description())
            else:
                run_id = store.start_run(
                    job.config,
                    job.dataset_hash,
                    preset=job.preset,
                    group=job.group,
                    run_dir=run_dir,
                    machine=rundir.machine_description(),
                )
        return run_dir, run_id

    def progress_of(self, run_id):
        """The runner's on_progress for one run, or None where nobody listens."""
        if self.on_progress is None:
            return None
        return lambda event: self.on_progress(run_id, event)

    def finished(self, job, run_id, run_dir, metrics):
        with Store(self.store_path) as store:
            status = store.finish_run(
                run_id, metrics["status"], metrics, history=rundir.read_history(run_dir), error=metrics.get("error")
            )
        return Outcome(job, status, metrics=metrics)

    def failed(self, job, run_id, run_dir, error):
        # A worker that died wrote no metrics.json: the driver records the
        # failure in the directory too, which stays the whole record.
        reason = self.cancelled(run_id)  # why it was stopped on purpose, if it was
        recorded = rundir.read_metrics(run_dir)
        if (
            reason or (recorded or {}).get("status") == RunStatus.INTERRUPTED
        ):  # stopped: by the lab, or by Ctrl+C reaching the worker too
            status, message = RunStatus.INTERRUPTED.value, reason or recorded.get("error") or "interrupted"
        else:
            status, message = RunStatus.FAILED.value, str(error)
        metrics = recorded or rundir.write_failure(
            run_dir, job.config, job.preset, job.dataset_hash, message, run_id=run_id, group=job.group, status=status
        )
        with Store(self.store_path) as store:
            store.finish_run(run_id, status, metrics, history=rundir.read_history(run_dir), error=message)
        if getattr(error, "traceback", None) and status == RunStatus.FAILED:
            self.log(error.traceback.rstrip())
        return Outcome(job, status, error=message)

    def retries(self, job, outcome, attempt, error):
        """Whether a failed run is tried again (up to `attempts` times in all: once more by default), said in the
        log. The one retry rule of both executors; a run stopped on purpose is never retried."""
        if outcome.status == RunStatus.FAILED and attempt < self.attempts:
            self.log(f"  {job.label}: failed ({error}); retrying once")
            return True
        return False

    def progress(self, total, outcome):
        with self._lock:
            position = next(self._counter)
            if self.every_run_told or outcome.status not in (RunStatus.DONE, RunStatus.DIVERGED):
                self.log(_progress_line(position, total, outcome))


def _run_local(todo, driver, workers, address, quiet):
    # Each worker keeps its training processes for its next run of the same backend (runner.Trainers): its own
    # for this sweep, or the caller's (one worker), which outlive it.
    trainers = driver.trainers
    if trainers is not None and workers != 1:
        raise ValueError("a caller's trainers serve one worker")
    idle = queue.SimpleQueue()
    for _ in range(workers):
        idle.put(trainers if trainers is not None else runner.Trainers())

    def work(item):
        index, job = item
        trainers = idle.get()
        try:
            for attempt in range(1, driver.attempts + 1):
                run_dir, run_id = driver.open(job)
                try:
                    on_start = lambda child, run_id=run_id: driver.on_start(run_id, child.kill)  # noqa: E731
                    progress = driver.progress_of(run_id)
                    metrics = runner.run_job(
                        job, run_dir, run_id, quiet=quiet, on_start=on_start, on_progress=progress, trainers=trainers
                    )
                    outcome = driver.finished(job, run_id, run_dir, metrics)
                    break
                except RunFailed as error:
                    outcome = driver.failed(job, run_id, run_dir, error)
                    if not driver.retries(job, outcome, attempt, error):
                        break
        finally:
            idle.put(trainers)
        driver.progress(len(todo), outcome)
        return index, outcome

    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            yield from pool.map(work, todo)
    finally:
        if trainers is None:
            for _ in range(workers):
                idle.get().close()


def _progress_line(position, total, outcome):
    if outcome.status in (RunStatus.DONE, RunStatus.DIVERGED):
        accuracy = outcome.metrics.get("test_accuracy")
        shown = f"test {100 * accuracy:.2f}%" if accuracy is not None else outcome.status
        return f"[{position}/{total}] {outcome.job.label}: {shown} ({outcome.metrics.get('seconds', 0):.0f} s)"
    return f"[{position}/{total}] {outcome.job.label}: FAILED: {outcome.error}"


# --------------------------------------------------------------------------
# Sweep files


def seed_list(seeds):
    """A seed count N (meaning 0..N-1) or an explicit list, as a list."""
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if not seeds:
        raise ConfigError("seeds must be at least 1")
    return seeds


def load_sweep_file(path, changes=None, seeds=None):
    """Read a sweep TOML file into (name, dataset spec, seeds, grid keys, [(preset, Config)]).

    `changes` (e.g. {"epochs": 1, "limit": 500}) override every run's config
    and `seeds` the file's seeds: to try a sweep small before running it.

    ```toml
    name = "dropout-vs-optimizer"   # group name in the store (default: the file name)
    preset = "listing-1.3.2"        # base config (default: Config's defaults)
    seeds = 3                       # or a list: [0, 1, 2]
    dataset = "fashion-mnist"
    [set]                           # fixed overrides for every run
    epochs = 5
    [grid]                          # every combination of these
    dropout_rate = [0.2, 0.45]
    optimizer = ["adam", "sgd"]
    ```
    """
    text = fileio.read_bytes(path, ConfigError, "sweep file not found").decode("utf-8", errors="replace")
    try:
        spec = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from None
    allowed = {"name", "preset", "seeds", "dataset", "set", "grid", "backend"}
    unknown = set(spec) - allowed
    if unknown:
        raise ConfigError(f"{path}: unknown sweep settings {sorted(unknown)}; allowed: {', '.join(sorted(allowed))}")
    base_preset = spec.get("preset")
    base = presets.get(base_preset).build_config() if base_preset else Config()
    fixed = spec.get("set", {})
    grid = spec.get("grid", {})
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{path}: grid.{key} must be a non-empty list of values")
    seeds = seed_list(seeds if seeds is not None else spec.get("seeds", 1))
    if "backend" in spec:
        fixed = {**fixed, "backend": spec["backend"]}
    fixed = {**fixed, **(changes or {})}
    try:
        base = base.replace(**fixed)
        configs = []
        for combination in itertools.product(*grid.values()) if grid else [()]:
            point = base.replace(**dict(zip(grid, combination)))
            for seed in seeds:
                configs.append((base_preset, point.replace(seed=seed)))
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
    return spec.get("name", pathlib.Path(path).stem), spec.get("dataset", "auto"), seeds, list(grid), configs


def run_file(
    path, dataset=None, store_path=None, workers=1, executor="local", address=None, changes=None, seeds=None, log=None
):
    """Run a sweep file (what `mnistlab sweep` does): plan, run, and summarise each grid point over seeds.

    Returns {"name", "dataset", "seeds", "points": [{"label", "summary"}], "outcomes"}.
    """
    name, dataset_spec, seed_values, grid_keys, configs = load_sweep_file(path, changes, seeds)
    loaded = data.load_dataset(dataset or dataset_spec)
    jobs = plan(configs, loaded, group=name)
    outcomes = run(jobs, store_path=store_path, workers=workers, executor=executor, address=address, log=log)
    points = {}
    with Store(store_path) as store:
        counted, _ = seeds_lib.counted_of_jobs(
            store, jobs
        )  # of each job, the run that counts (the newest, where repeated)
        for job, finished in zip(jobs, counted):
            label = ", ".join(f"{key}={getattr(job.config, key)}" for key in grid_keys) or presets.describe(
                job.config, job.preset
            )
            points.setdefault(label, []).append(None if finished is None else 100 * finished["test_accuracy"])
    summaries = [
        {"label": label, "summary": stats.summarize(values, bounds=stats.PERCENT)} for label, values in points.items()
    ]
    return {"name": name, "dataset": loaded.name, "seeds": seed_values, "points": summaries, "outcomes": outcomes}

"""Many runs: planning jobs, skipping finished ones, and running the rest locally or on Ray.

A job is one config (with its seed) to train. Its key, (config hash,
dataset hash, backend, seed), is what the store remembers: a job whose key
already has a `done` run is skipped, so an interrupted sweep started again
does only the missing runs.

Executors:
- local (default): K worker threads, each starting one child process per run
  (`mnistlab.runner`), which also lets each run pick its own Keras backend.
- ray: each run is a Ray task requesting its CPUs/GPUs, on a local Ray
  cluster or an existing one (`address`). Tasks run the same child process;
  on a multi-node cluster the store path must be on a shared filesystem and
  mnistlab installed on every node.

A failed run is retried once, then left recorded as failed; the sweep goes on.
"""

import concurrent.futures
import dataclasses
import itertools
import pathlib
import sys
import threading
import tomllib

from mnistlab import backend as backend_lib
from mnistlab import data, fileio, presets, runner
from mnistlab.config import Config
from mnistlab.errors import ConfigError, MnistlabError
from mnistlab.store import Store, run_key

EXECUTORS = ("local", "ray")
MAX_ATTEMPTS = 2  # the first try and one retry


@dataclasses.dataclass
class Job:
    config: Config
    preset: str | None
    group: str | None
    key: str
    label: str  # a short name for progress lines
    dataset_hash: str


def plan(configs, dataset, group=None):
    """Jobs for (preset, config) pairs on a loaded dataset, with backends resolved and keys computed."""
    dataset_hash = dataset.content_hash()
    jobs = []
    for preset, config in configs:
        config = config.replace(dataset=dataset.name if config.dataset in ("auto", None) else config.dataset)
        config = config.replace(backend=backend_lib.resolve(config.backend, config.model, in_this_process=False))
        key = run_key(config.config_hash(), dataset_hash, config.backend, config.seed)
        jobs.append(Job(config, preset, group, key, f"{preset or config.describe()} seed {config.seed}", dataset_hash))
    return jobs


def resolve_dataset(spec):
    """Load the dataset once, resolving 'auto', so that every run of a sweep uses the same one."""
    return data.load_dataset(spec or "auto")


@dataclasses.dataclass
class Outcome:
    job: Job
    status: str  # done, diverged, failed, skipped
    metrics: dict | None = None
    error: str | None = None


def run(jobs, store_path=None, workers=1, executor="local", address=None, cpus_per_run=1, gpus_per_run=0, log=None):
    """Run every job not already done in the store; return one Outcome per job, in order."""
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    if executor not in EXECUTORS:
        raise ConfigError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    with Store(store_path) as store:
        reaped = store.reap()
        if reaped:
            log(f"marked {reaped} run(s) of a previous, killed sweep as interrupted")
        outcomes = {}
        todo = []
        seen = set()
        for index, job in enumerate(jobs):
            done = store.done_run(job.key)
            if done is not None:
                outcomes[index] = Outcome(job, "skipped", metrics={"test_accuracy": done["test_accuracy"], "run_id": done["id"]})
            elif job.key in seen:
                raise ConfigError(f"the sweep lists the same run twice ({job.label}); remove the duplicate")
            else:
                seen.add(job.key)
                todo.append((index, job))
        store_path = store.path
    log(f"{len(jobs)} runs planned: {len(jobs) - len(todo)} already done, {len(todo)} to run with {workers} {executor} worker(s)")
    if todo:
        runner_fn = _run_ray if executor == "ray" else _run_local
        for index, outcome in runner_fn(todo, store_path, workers, address, cpus_per_run, gpus_per_run, log):
            outcomes[index] = outcome
    return [outcomes[index] for index in range(len(jobs))]


def _train_job(job, store_path):
    """Train one job in a child process; the child records it in the store.

    A failure raises MnistlabError, after making sure the attempt is recorded
    as failed even when the child died before it could say so.
    """
    with Store(store_path) as store:
        since_id = store.last_id()
    try:
        return runner.run_isolated(job.config, preset=job.preset, store=str(store_path), group=job.group, quiet=True)
    except MnistlabError as error:
        with Store(store_path) as store:
            store.record_failure(job.config, job.dataset_hash, str(error), since_id, preset=job.preset, group=job.group)
        raise


def _outcome_from(job, metrics):
    return Outcome(job, metrics.get("status", "done"), metrics=metrics)


def _run_local(todo, store_path, workers, address, cpus_per_run, gpus_per_run, log):
    total = len(todo)
    counter = itertools.count(1)
    lock = threading.Lock()

    def work(item):
        index, job = item
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                metrics = _train_job(job, store_path)
                outcome = _outcome_from(job, metrics)
                break
            except MnistlabError as error:
                outcome = Outcome(job, "failed", error=str(error))
                if attempt < MAX_ATTEMPTS:
                    log(f"  {job.label}: failed ({error}); retrying once")
        with lock:
            log(_progress_line(next(counter), total, outcome))
        return index, outcome

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(work, todo)


def _progress_line(position, total, outcome):
    if outcome.status in ("done", "diverged"):
        accuracy = outcome.metrics.get("test_accuracy")
        shown = f"test {100 * accuracy:.2f}%" if accuracy is not None else outcome.status
        return f"[{position}/{total}] {outcome.job.label}: {shown} ({outcome.metrics.get('seconds', 0):.0f} s)"
    return f"[{position}/{total}] {outcome.job.label}: FAILED: {outcome.error}"


def _run_ray(todo, store_path, workers, address, cpus_per_run, gpus_per_run, log):
    try:
        import ray
    except ImportError:
        raise MnistlabError("the ray executor needs Ray: pip install 'ray>=2.9'") from None
    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            # A private local cluster on loopback, sized to the worker count.
            ray.init(num_cpus=workers * cpus_per_run, num_gpus=None if gpus_per_run else 0, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    log(f"ray: {ray.cluster_resources().get('CPU', 0):.0f} CPUs in the cluster")
    remote_train = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=0)(_ray_task)
    pending = {}
    attempts = {}
    for index, job in todo:
        pending[remote_train.remote(job, str(store_path))] = (index, job)
        attempts[index] = 1
    position = 0
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            index, job = pending.pop(ready[0])
            try:
                outcome = _outcome_from(job, ray.get(ready[0]))
            except Exception as error:  # RayTaskError wraps the task's exception
                cause = getattr(error, "cause", None) or error
                if not isinstance(cause, MnistlabError):
                    # The Ray worker itself died: record the attempt here.
                    with Store(store_path) as store:
                        store.record_failure(job.config, job.dataset_hash, str(cause), 0, preset=job.preset, group=job.group)
                if attempts[index] < MAX_ATTEMPTS:
                    attempts[index] += 1
                    log(f"  {job.label}: failed ({cause}); retrying once")
                    pending[remote_train.remote(job, str(store_path))] = (index, job)
                    continue
                outcome = Outcome(job, "failed", error=str(cause))
            position += 1
            log(_progress_line(position, len(todo), outcome))
            yield index, outcome
    finally:
        if started_here:
            ray.shutdown()


def _ray_task(job, store_path):
    return _train_job(job, store_path)


# --------------------------------------------------------------------------
# Sweep files


def load_sweep_file(path):
    """Read a sweep TOML file into (name, dataset spec, seeds, [(preset, Config)]).

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
    seeds = spec.get("seeds", 1)
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if "backend" in spec:
        fixed = {**fixed, "backend": spec["backend"]}
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

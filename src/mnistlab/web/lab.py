"""The lab: launch, watch and open runs in the browser, over the run store the CLI uses (FastAPI).

    GET    /                        the page (web/lab.html): the runs view, the launch form, run pages
    GET    /api/schema              the form: presets, each family's knobs (from their one declaration), run settings
    POST   /api/runs                launch {"preset", "set", "seeds", "epochs", "limit", "dataset", "backend", "executor"}
    GET    /api/runs                runs folded by setup (seeds together): ?status, preset, family, dataset, backend, q, sort, order, fold
    GET    /api/runs/{id}           settings, status, metrics, history, live progress
    GET    /api/runs/{id}/events    Server-Sent Events: the run's progress as its training worker reports it
    GET    /api/events              the same for every run (the runs view's live progress)
    DELETE /api/runs/{id}           cancel a queued or running run
    POST   /api/runs/{id}/resume    queue an interrupted or failed run again (same setup and seed)
    GET    /api/runs/{id}/report    confusion matrix and most confident mistakes on the test set
    POST   /api/runs/{id}/explain   the inside view of the run's model for a test digit, 28x28 pixels or a drawing (PNG)
    GET    /api/compare             setups side by side over seeds (bands.compare_setups): ?setup=A&setup=B, by, backend, dataset
    GET    /api/tables              the chapter's tables, and which the store has a reproduction of
    GET    /api/tables/{table}      a reproduced table as `mnistlab report TABLE --format F` writes it: ?format=html|csv|latex|json
    GET    /draw/{id}/              the draw page of `mnistlab serve`, with this run
    GET    /healthz, /openapi.json, /docs

How a launch goes. The request is checked by the code the CLI uses
(`presets.configure`, the knobs' declaration, `data.load_dataset`,
`sweep.plan`); a bad value is a 4xx `{"error", "field"}` and queues nothing.
Each seed becomes a `queued` row of the run store (`Store.queue_run`), which
applies the repeat rule: a setup and seed already done is that run, one
already queued or running is that one. `--workers` threads take queued rows
in order and train each through the sweep driver (`sweep.run`, one job per
call, no retry): the driver, in this process, is the one writer of the store;
the training runs in its own child process (`mnistlab.jobs.runner`), which writes
its run directory and pipes progress lines (each epoch, and within an epoch
about every second) back here, where `Hub` hands them to the browsers over
Server-Sent Events. Nothing is re-read from the store to find progress.

Nothing lost. The queue is the store: after Ctrl+C or kill -9, queued rows
are still queued and the next lab trains them. A run that was training ends
`interrupted` (Ctrl+C: its worker is stopped and says so; kill -9: the child
dies with the lab, and the store's reaper marks its row at the next start);
its directory has no metrics.json, and POST /api/runs/{id}/resume queues the
same setup and seed again, as a new attempt of the same key.

Security: the lab trusts no one by default, as Jupyter does. Every request,
on a loopback address too, needs the token printed at start (`?token=`, then a
cookie whose name carries the port, or `Authorization: token T` / `Bearer T`);
`MNISTLAB_LAB_TOKEN` sets it, `--no-token` drops it on loopback only. On
loopback a request must also name a loopback host (no DNS rebinding), and one
that changes anything must come from the lab's own origin (no cross-site
launches). No page of it may be framed; no referrer leaves it. A launch names
its dataset (the built-in ones, or those given at start), never a path; the Ray
cluster is the one given at start (`--ray-address`), never one a request names.
"""

import asyncio
import collections
import contextlib
import hmac
import http.cookies
import json
import os
import pathlib
import secrets
import threading
import time
import typing
import urllib.parse
from typing import Literal

import numpy as np
from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from mnistlab.analysis import bands, book, seeds, tables
from mnistlab.core import config as config_lib
from mnistlab.core import fileio, presets, stats
from mnistlab.core.config import Config
from mnistlab.core.errors import ConfigError, DataError, MnistlabError, NotFound, QueueFull, RequestError
from mnistlab.jobs import sweep
from mnistlab.ml import backend as backend_lib
from mnistlab.ml import data, explain, predict
from mnistlab.record import rundir
from mnistlab.record.store import Store
from mnistlab.serving import engine
from mnistlab.web import serve

PAGE = pathlib.Path(__file__).parent / "lab.html"
DEFAULT_PORT = 8100
LOOPBACK_HOSTS = serve.LOOPBACK_NAMES
TOKEN_COOKIE = "mnistlab_lab_token"  # + "_PORT": two labs on one machine keep their own
TOKEN_VARIABLE = (
    "MNISTLAB_LAB_TOKEN"  # as JUPYTER_TOKEN: a token chosen by the user (still printed in the address to open)
)
BUILTIN_DATASETS = ("auto", "mnist", "fashion-mnist", "mnist-mini")
LAUNCH_FIELDS = ("preset", "set", "seeds", "epochs", "limit", "dataset", "backend", "executor")
MAX_SEEDS = 50  # per launch: a typo of 1000 seeds should not fill the queue
MAX_QUEUED = 1000  # runs waiting at once; past it a launch is answered 429
MAX_LAUNCH_BYTES = 64 * 1024  # a launch body is a few hundred bytes
MAX_RUN_ID = 2**63 - 1  # SQLite's integers: a larger id is no run (and not an OverflowError)
HEARTBEAT_SECONDS = 15  # an SSE comment this often keeps proxies from closing a quiet stream
KEPT_MODELS = 4  # runs whose model (inside view, report, draw page) the lab keeps loaded
PERCENT = (0.0, 100.0)
SORTS = ("started", "test", "n", "setup")
LIST_COLUMNS = "id, config_hash, preset, model, config_json, dataset, dataset_hash, backend, seed, status, error, test_accuracy, val_accuracy, train_accuracy, seconds, started_at, finished_at"


# --------------------------------------------------------------------------
# Live progress: events from the training workers, to every browser that follows


class Hub:
    """Progress events by run, numbered in one sequence, for Server-Sent Events.

    Training workers publish from their threads; followers are async generators
    on the server's event loop, woken through `call_soon_threadsafe`. Per run the
    hub keeps the status events, every epoch and the latest step (enough to draw
    a run's curve for a browser that comes late); across runs, the last
    `recent` events, for the runs view.
    """

    def __init__(self, recent=2000):
        self._lock = threading.Lock()
        self._sequence = 0
        self._by_run = {}
        self._recent = collections.deque(maxlen=recent)
        self._waiters = set()
        self._latest = {}  # run id -> its latest step or epoch event (the runs view's progress column)

    @property
    def sequence(self):
        return self._sequence

    def publish(self, run_id, event):
        with self._lock:
            self._sequence += 1
            event = {**event, "run_id": run_id, "seq": self._sequence}
            kept = self._by_run.setdefault(run_id, [])
            if event["kind"] == "step" and kept and kept[-1]["kind"] == "step":
                kept[-1] = event  # only the latest step within an epoch is worth replaying
            else:
                kept.append(event)
            if event["kind"] in ("step", "epoch"):
                self._latest[run_id] = event
            elif event["kind"] == "status" and event["status"] not in ("queued", "running"):
                self._latest.pop(run_id, None)
            self._recent.append(event)
            waiters = list(self._waiters)
        for loop, flag in waiters:
            loop.call_soon_threadsafe(flag.set)

    def latest(self, run_id):
        return self._latest.get(run_id)

    def _since(self, run_id, after):
        events = self._recent if run_id is None else self._by_run.get(run_id, ())
        return [event for event in events if event["seq"] > after]

    async def follow(self, run_id=None, after=0):
        """Events of RUN_ID (every run's, for None) numbered after AFTER, as they come; None now and then as a heartbeat."""
        loop = asyncio.get_running_loop()
        while True:
            flag = asyncio.Event()
            with self._lock:
                # Registered before looking, so that nothing published in between is missed.
                self._waiters.add((loop, flag))
                new = self._since(run_id, after)
            try:
                if not new:
                    try:
                        await asyncio.wait_for(flag.wait(), HEARTBEAT_SECONDS)
                    except TimeoutError:
                        yield None
                        continue
                    with self._lock:
                        new = self._since(run_id, after)
            finally:
                with self._lock:
                    self._waiters.discard((loop, flag))
            for event in new:
                after = event["seq"]
                yield event


# --------------------------------------------------------------------------
# The lab: the queue's workers, launches, the runs view


class Lab:
    """The run store seen from the lab: launches into its queue, workers that train from it, views of its runs."""

    def __init__(self, store_path=None, workers=1, log=None, ray_address=None, datasets=None):
        """`ray_address`: the Ray cluster of every Ray run (None: a private local Ray); `datasets`: {name: path}
        of the datasets a launch may name besides the built-in ones (a request names one, never a path)."""
        if workers < 0:
            raise ConfigError(f"workers must be >= 0, got {workers}", field="workers")
        with Store(store_path) as store:  # a store that cannot be opened is refused here, with its one-line error
            self.store_path = store.path
        self.workers = (
            workers  # 0: a lab that queues and shows, and trains nothing (tests; a machine kept for browsing)
        )
        self.log = log or (lambda message: None)
        self.hub = Hub()
        self._lock = threading.Condition()
        self._taken = set()  # queued ids a worker has taken and not finished
        self._stops = {}  # run id -> a function that stops its training
        self._cancelled = {}  # run id -> why it was stopped
        self._threads = []
        self._stopping = False
        self.backend = None
        self._datasets = {}
        self._descriptions = {}
        self._summaries = {}
        self._models = collections.OrderedDict()  # run id -> {"explainer", "report", "draw"}: the few runs opened last
        self._models_lock = threading.Lock()
        self._ray_lock = threading.Lock()
        self._ray_started = False
        self.ray_address = ray_address
        self._launch_lock = threading.Lock()
        self.datasets = dict(datasets or {})
        clash = sorted(set(self.datasets) & set(BUILTIN_DATASETS))
        if clash:
            raise ConfigError(
                f"dataset name {clash[0]!r} is a built-in dataset's; give yours another name (--dataset NAME=PATH)",
                field="dataset",
            )

    # -- lifecycle -----------------------------------------------------

    def start(self):
        """Mark the runs of a lab that died as interrupted, then start the workers on what is queued."""
        self.keras_backend()
        with Store(self.store_path) as store:
            # A restarted lab can get its predecessor's pid (a container's PID 1): those rows are its dead runs.
            reaped = store.reap(starting_pid=os.getpid())
            queued = len(store.queued())
        if reaped:
            self.log(
                f"marked {reaped} run(s) of a lab or sweep that was killed as interrupted (POST /api/runs/ID/resume, or Resume on its page, trains it again)"
            )
        if queued:
            self.log(f"{queued} queued run(s) waiting")
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._work, name=f"mnistlab-lab-worker-{index}", daemon=True)
            for index in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()

    def stop_taking(self):
        """Take no more queued runs (the lab is stopping); the runs in progress go on until `stop`."""
        with self._lock:
            self._stopping = True
            self._lock.notify_all()

    def stop(self, timeout=60):
        """Stop taking queued runs, stop the trainings in progress (they end interrupted), and wait for the workers."""
        with self._lock:
            self._stopping = True
            for run_id, stop in list(self._stops.items()):
                self._cancelled.setdefault(run_id, "the lab stopped")
                stop()
            self._lock.notify_all()
        for thread in self._threads:
            thread.join(timeout)
        with self._models_lock:
            for entry in self._models.values():
                _close_draw_app(entry)
            self._models.clear()
        if self._ray_started:
            import ray

            ray.shutdown()

    def keras_backend(self):
        """The one Keras backend of every model this process opens (reports, inside views, draw pages).

        A .keras file loads on any backend, and a process cannot switch once Keras runs:
        a CNN run trained on TensorFlow opens here on this one, as every other run does.
        """
        if self.backend is None:
            self.backend = predict.activate_for([], "keras")
        return self.backend

    # -- the queue's workers -------------------------------------------

    def _work(self):
        while True:
            with self._lock:
                row = None
                while not self._stopping:
                    row = self._next_queued()
                    if row is not None:
                        break
                    self._lock.wait(1.0)
                if self._stopping:
                    return
                self._taken.add(row["id"])
            try:
                self._train(row)
            except Exception as error:  # noqa: BLE001 - said in the log and on the run; the worker goes on with the queue
                message = str(error) if isinstance(error, MnistlabError) else f"{type(error).__name__}: {error}"
                self.log(f"lab worker: run {row['id']} could not run: {message}")
                # Still queued (it failed before starting, e.g. its Ray cluster is unreachable): mark it failed,
                # or the next worker would take it again at once, for ever.
                with Store(self.store_path) as store:
                    store.fail_queued(row["id"], message)
                self.hub.publish(row["id"], {"kind": "status", "status": "failed", "error": message})
            finally:
                with self._lock:
                    self._taken.discard(row["id"])
                    self._stops.pop(row["id"], None)

    def _next_queued(self):
        with Store(self.store_path) as store:
            return next((row for row in store.queued() if row["id"] not in self._taken), None)

    def _train(self, row):
        run_id = row["id"]
        config = Config.from_dict(json.loads(row["config_json"]))
        launch = json.loads(row["launch_json"] or "{}")
        # The cluster is the one given at start, whatever an older row's launch says.
        executor, address = launch.get("executor", "local"), self.ray_address
        job = sweep.Job(
            config,
            row["preset"],
            row["group_name"],
            row["run_key"],
            f"run {run_id}: {presets.describe(config, row['preset'])} seed {config.seed}",
            row["dataset_hash"],
            queued_run_id=run_id,
        )
        if executor == "ray":
            self._connect_ray(address)
        outcome = sweep.run(
            [job],
            store_path=self.store_path,
            workers=1,
            executor=executor,
            address=address,
            log=self.log,
            attempts=1,
            on_start=self._started,
            on_progress=self.hub.publish,
            cancelled=self._cancelled.get,
        )[0]
        if outcome.status == "skipped":
            # The same setup and seed finished elsewhere (a CLI sweep) while this one waited: that run answers for it.
            with Store(self.store_path) as store:
                store.cancel_queued(run_id)
            self.hub.publish(run_id, {"kind": "status", "status": "done", "repeat_of": outcome.metrics["run_id"]})
            return
        with Store(self.store_path) as store:
            finished = store.get(run_id)
        self.hub.publish(
            run_id,
            {
                "kind": "status",
                "status": finished["status"],
                "error": finished["error"],
                "test_accuracy": finished["test_accuracy"],
                "time": time.time(),
            },
        )

    def _started(self, run_id, stop):
        with self._lock:
            self._stops[run_id] = stop
            stopped = self._stopping or run_id in self._cancelled
        if stopped:  # cancelled (or the lab stopping) while it was being started
            stop()
        self.hub.publish(run_id, {"kind": "status", "status": "running", "time": time.time()})

    def _connect_ray(self, address):
        with self._ray_lock:
            _, started = sweep.connect_ray(address, max(self.workers, 1))
            self._ray_started = self._ray_started or started

    # -- launching -----------------------------------------------------

    def launch(self, request):
        """Check a launch request as the CLI checks its options, and queue one run per seed: [{"run_id", "status"}]."""
        jobs, launch = self.plan(request)
        answers = []
        # One launch at a time counts and queues, so that launches side by side cannot pass the bound together.
        with self._launch_lock, Store(self.store_path) as store:
            waiting = store.count("queued")
            if waiting + len(jobs) > MAX_QUEUED:
                raise QueueFull(
                    f"{waiting} runs are waiting in the queue and this launch has {len(jobs)}; at most {MAX_QUEUED} may wait: launch again when some have trained",
                    retry_after=60,
                )
            for job in jobs:
                answer = store.queue_run(job.config, job.dataset_hash, preset=job.preset, launch=launch)
                answers.append({"run_id": answer["run_id"], "status": answer["status"]})
                if not answer["repeat"]:
                    self.hub.publish(answer["run_id"], {"kind": "status", "status": "queued", "time": time.time()})
        with self._lock:
            self._lock.notify_all()
        return answers

    def plan(self, request):
        """(sweep jobs, how to run them) for a launch request; a ConfigError (naming its field) for anything wrong."""
        if not isinstance(request, dict):
            raise ConfigError(
                'a launch is a JSON object: {"preset", "set", "seeds", "epochs", "limit", "dataset", "backend", "executor"}',
                field=None,
            )
        if "address" in request:  # joining a cluster a request names would run what it sends back, in this process
            raise ConfigError(
                "a launch cannot name a Ray cluster: the lab uses the one given at its start (mnistlab lab --ray-address ADDRESS)",
                field="address",
            )
        unknown = [key for key in request if key not in LAUNCH_FIELDS]
        if unknown:
            raise ConfigError(
                f"unknown launch field {unknown[0]!r}; the fields are {', '.join(LAUNCH_FIELDS)}", field=unknown[0]
            )
        preset = request.get("preset") or None
        if preset is not None and not isinstance(preset, str):
            raise ConfigError(f"preset must be a preset name, got {preset!r}", field="preset")
        assignments = request.get("set") or []
        if not isinstance(assignments, list) or not all(isinstance(item, str) for item in assignments):
            raise ConfigError('set must be a list of "key=value" strings, as --set takes them', field="set")
        for assignment in assignments:
            # Where and how a run runs are a launch's own fields (a dataset a name, never a path): not `set`.
            key = config_lib.RENAMED_KEYS.get(
                assignment.partition("=")[0].strip(), assignment.partition("=")[0].strip()
            )
            if key == "dataset":
                _refuse_dataset(self.dataset_names())
            if key in config_lib.RUN_KEYS:
                raise ConfigError(
                    f"{key} is a launch field of its own ({'seeds' if key == 'seed' else key}), not a `set` key",
                    field="set",
                )
        seeds = _seeds(request.get("seeds", [0]))
        executor = request.get("executor") or "local"
        if not isinstance(executor, str) or executor not in config_lib.EXECUTORS:
            raise ConfigError(
                f"executor must be one of {', '.join(config_lib.EXECUTORS)}, got {executor!r}", field="executor"
            )
        if executor == "ray" and not backend_lib.installed("ray"):
            raise ConfigError(
                "executor ray needs the 'ray' extra: in your mnistlab clone, pip install -e \".[ray]\"",
                field="executor",
            )
        changes = {key: request.get(key) for key in ("epochs", "limit", "dataset", "backend")}
        for key, value in changes.items():
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int if key in ("epochs", "limit") else str)
            ):
                raise ConfigError(
                    f"{key} must be {'an integer' if key in ('epochs', 'limit') else 'a string'}, got {_shown(value)}",
                    field=key,
                )
        if changes["dataset"] is not None:
            changes["dataset"] = self.dataset_path(changes["dataset"])
        configs = [(preset, presets.configure(preset, assignments, seed=seed, **changes)) for seed in seeds]
        dataset = self._dataset(configs[0][1].dataset)
        return sweep.plan(configs, dataset), {"executor": executor}

    def dataset_names(self):
        return (*BUILTIN_DATASETS, *self.datasets)

    def dataset_path(self, name):
        """What a dataset name of a request stands for. Anything but a name the lab knows gets one answer,
        whether or not a file of that name exists (no file-existence oracle)."""
        if name in BUILTIN_DATASETS:
            return name
        if name in self.datasets:
            return str(self.datasets[name])
        return _refuse_dataset(self.dataset_names())

    def _dataset(self, spec):
        """A loaded dataset (the built-in ones loaded once: their content is what keys a run)."""
        if spec in self._datasets:
            return self._datasets[spec]
        try:
            loaded = data.load_dataset(spec, notice=self.log)
        except DataError as error:
            raise ConfigError(str(error), field="dataset") from None
        if spec in BUILTIN_DATASETS:
            self._datasets[spec] = loaded
        return loaded

    def cancel(self, run_id):
        """Cancel a queued run (it is removed: it never ran) or stop a running one (it ends interrupted)."""
        with self._lock:
            if run_id not in self._taken:
                with Store(self.store_path) as store:
                    if store.cancel_queued(run_id):
                        self.hub.publish(run_id, {"kind": "status", "status": "cancelled", "time": time.time()})
                        return {"run_id": run_id, "status": "cancelled"}
                    status = store.get(run_id)["status"]
                raise RequestError(
                    f"run {run_id} is {status}: only queued and running runs of this lab can be cancelled", 409
                )
            self._cancelled[run_id] = "cancelled"
            stop = self._stops.get(run_id)
        if stop is not None:  # else it is being started: _started stops it
            stop()
        return {"run_id": run_id, "status": "cancelling"}

    def resume(self, run_id):
        """Queue an interrupted or failed run again: the same setup and seed, as a new attempt of its key."""
        with Store(self.store_path) as store:
            row = store.get(run_id)
        if row["status"] not in ("interrupted", "failed"):
            raise RequestError(f"run {run_id} is {row['status']}: only interrupted or failed runs are resumed", 409)
        config = Config.from_dict(json.loads(row["config_json"]))
        launch = {"executor": json.loads(row["launch_json"] or "{}").get("executor", "local")}
        with Store(self.store_path) as store:
            answer = store.queue_run(
                config, row["dataset_hash"], preset=row["preset"], group=row["group_name"], launch=launch
            )
        if not answer["repeat"]:
            self.hub.publish(
                answer["run_id"], {"kind": "status", "status": "queued", "time": time.time(), "resumes": run_id}
            )
        with self._lock:
            self._lock.notify_all()
        return {"run_id": answer["run_id"], "status": answer["status"]}

    # -- views ---------------------------------------------------------

    def describe(self, row):
        """What sets a run apart from its preset ('listing-1.4.1 +padding=same'), once per setup."""
        key = (row["config_hash"], row["preset"], row["model"])
        if key not in self._descriptions:
            self._descriptions[key] = presets.describe(Config.from_dict(json.loads(row["config_json"])), row["preset"])
        return self._descriptions[key]

    def list_runs(
        self,
        status=None,
        preset=None,
        family=None,
        dataset=None,
        backend=None,
        q=None,
        sort="started",
        order="desc",
        fold=True,
    ):
        """The runs view: runs that differ only by seed folded into one row (n, mean, 95% interval), filtered and sorted."""
        if sort not in SORTS:
            raise ConfigError(f"sort must be one of {', '.join(SORTS)}, got {sort!r}", field="sort")
        if order not in ("asc", "desc"):
            raise ConfigError(f"order must be asc or desc, got {order!r}", field="order")
        clauses, values = [], []
        for column, value in (("preset", preset), ("model", family), ("dataset", dataset), ("backend", backend)):
            if value:
                clauses.append(f"{column} = ?")
                values.append(value)
        with Store(self.store_path) as store:
            sequence = self.hub.sequence  # events after this one are news to the page
            rows = store.select(LIST_COLUMNS, " AND ".join(clauses), values)
        groups = {}
        for row in rows:
            groups.setdefault(
                (row["config_hash"], row["dataset_hash"], row["backend"]) if fold else row["id"], []
            ).append(row)
        needle = (q or "").lower()
        shown = []
        for members in groups.values():
            if status and not any(member["status"] == status for member in members):
                continue
            group = self._group(members)
            if needle and needle not in group["setup"].lower():
                continue
            shown.append(group)
        key = {
            "started": lambda g: g["started_at"],
            "test": lambda g: (g["test"]["mean"] is not None, g["test"]["mean"] or 0),
            "n": lambda g: g["n"],
            "setup": lambda g: g["setup"],
        }[sort]
        shown.sort(key=key, reverse=order == "desc")
        return {
            "groups": shown,
            "total_runs": len(rows),
            "shown_runs": sum(len(group["members"]) for group in shown),
            "seq": sequence,
        }

    def _group(self, members):
        first = members[0]
        # One run per seed: the newest finished one counts; a repeat of a seed is shown as such, never as a seed.
        done, repeats = seeds.select_counted(members)
        repeat_of = {repeat["id"]: repeat["repeat_of"] for repeat in repeats}
        test = self._summary(tuple(100 * member["test_accuracy"] for member in done))
        # The book's figure; a verdict against it only where the runs are the book's setup (book.comparable).
        against = book.against_book(done, first["preset"], test)
        statuses = collections.Counter(member["status"] for member in members)
        return {
            "key": f"{first['config_hash']}:{first['dataset_hash'][:16]}:{first['backend']}",
            "setup": self.describe(first),
            "config_hash": first["config_hash"],
            "preset": first["preset"],
            "family": first["model"],
            "dataset": first["dataset"],
            "backend": first["backend"],
            "n": len(done),
            "runs": len(members),
            "repeats": seeds.repeats_summary(done, repeats),
            "statuses": dict(statuses),
            "seeds": sorted({member["seed"] for member in members}),
            "test": test,
            "val_mean": _mean([100 * member["val_accuracy"] for member in done if member["val_accuracy"] is not None]),
            "train_mean": _mean(
                [100 * member["train_accuracy"] for member in done if member["train_accuracy"] is not None]
            ),
            "seconds_mean": _mean([member["seconds"] for member in done if member["seconds"] is not None]),
            "book_test": against["book_test"],
            "book_where": against["book_where"],
            "book_comparable": against["comparable"],
            "book_reason": against["reason"],
            "book_in_interval": against["inside"],
            "started_at": max(member["started_at"] for member in members),
            "members": [
                {
                    "run_id": member["id"],
                    "seed": member["seed"],
                    "status": member["status"],
                    "error": member["error"],
                    "repeat_of": repeat_of.get(member["id"]),
                    "test_accuracy": member["test_accuracy"],
                    "seconds": member["seconds"],
                    "progress": self.hub.latest(member["id"]) if member["status"] == "running" else None,
                }
                for member in sorted(members, key=lambda member: (member["seed"], member["id"]))
            ],
        }

    def _summary(self, values):
        """stats.summarize of these accuracies, once per distinct set: the t quantile costs more than the rest of a row."""
        if values not in self._summaries:
            if len(self._summaries) > 100_000:
                self._summaries.clear()
            self._summaries[values] = stats.summarize(values, bounds=PERCENT)
        return self._summaries[values]

    def run_detail(self, run_id):
        """One run: settings and what differs from its preset, status, metrics, history (as far as it went), its setup's other runs."""
        with Store(self.store_path) as store:
            run = store.show(run_id)
            setup = store.select(
                "id, seed, status, test_accuracy, config_hash, dataset, dataset_hash, backend, finished_at",
                "config_hash = ? AND dataset_hash = ? AND backend = ?",
                [run["config_hash"], run["dataset_hash"], run["backend"]],
            )
        # Which of the setup's finished runs are repeats of a seed (seeds.select_counted: the newest counts), this one included.
        repeat_of = {repeat["id"]: repeat["repeat_of"] for repeat in seeds.select_counted(setup)[1]}
        siblings = [
            {
                "id": other["id"],
                "seed": other["seed"],
                "status": other["status"],
                "test_accuracy": other["test_accuracy"],
                "repeat_of": repeat_of.get(other["id"]),
            }
            for other in setup
            if other["id"] != run_id
        ]
        config = Config.from_dict(run["config"])
        history = run.pop("epochs")
        if not history and run.get("run_dir"):
            history = rundir.read_history(run["run_dir"])  # a run in progress: its directory has the epochs so far
        base = (
            presets.get(run["preset"]).build_config().to_dict()
            if run["preset"]
            else Config(family=config.family).to_dict()
        )
        changed = {
            key: {"preset": base.get(key), "run": value}
            for key, value in config.to_dict().items()
            if key not in config_lib.RUN_KEYS and base.get(key) != value
        }
        return {
            "run_id": run_id,
            "status": run["status"],
            "error": run["error"],
            "preset": run["preset"],
            "setup": presets.describe(config, run["preset"]),
            "model": config.describe(),
            "family": config.family,
            "settings": config.to_dict(),
            "changed": changed,
            "dataset": run["dataset"],
            "backend": run["backend"],
            "seed": run["seed"],
            "attempt": run["attempt"],
            "metrics": run.get("metrics"),
            "history": history,
            "progress": self.hub.latest(run_id),
            "test_accuracy": run["test_accuracy"],
            "val_accuracy": run["val_accuracy"],
            "train_accuracy": run["train_accuracy"],
            "seconds": run["seconds"],
            "started_at": run["started_at"],
            "finished_at": run["finished_at"],
            "run_dir": run["run_dir"],
            "launch": run.get("launch"),
            "labels": list(data.class_names(run["dataset"])),
            "has_model": bool(run["run_dir"]) and (pathlib.Path(run["run_dir"]) / rundir.MODEL_FILE).exists(),
            "siblings": siblings,
            "repeat_of": repeat_of.get(run_id),
        }

    # -- a finished run's model: report, inside view, draw page --------

    def _finished_run_dir(self, run_id):
        with Store(self.store_path) as store:
            row = store.get(run_id)
        if (
            row["status"] != "done"
            or not row["run_dir"]
            or not (pathlib.Path(row["run_dir"]) / rundir.MODEL_FILE).exists()
        ):
            raise RequestError(f"run {run_id} is {row['status']}: only a finished run has a model to look into", 409)
        return row["run_dir"]

    def _kept(self, run_id, what, build):
        """The run's WHAT (report, explainer, draw app), built once; the few runs used last are kept."""
        with self._models_lock:
            entry = self._models.setdefault(run_id, {"lock": threading.Lock()})
            self._models.move_to_end(run_id)
            while len(self._models) > KEPT_MODELS:
                _, evicted = self._models.popitem(last=False)
                _close_draw_app(evicted)
        with entry["lock"]:  # one build per run at a time: a second request waits for the first's
            if what not in entry:
                entry[what] = build()
            return entry[what]

    def report(self, run_id):
        """The test set through the run's model: confusion matrix and the most confident mistakes (with the dataset's class names)."""
        run_dir = self._finished_run_dir(run_id)
        return self._kept(run_id, "report", lambda: _report_of(run_dir, self.keras_backend()))

    def explain(self, run_id, request, content_type="application/json"):
        """The inside view (mnistlab.ml.explain) of the run's model for {"test_index": i}, {"pixels": 28x28},
        or an image's bytes (a drawing on the run page, a photo), preprocessed as `mnistlab predict` and the draw page do."""
        run_dir = self._finished_run_dir(run_id)
        explainer = self._kept(
            run_id, "explainer", lambda: explain.explainer_for(run_dir, backend=self.keras_backend())
        )
        label = None
        if isinstance(request, dict) and "test_index" in request:
            index = request["test_index"]
            test = (
                self._dataset(explainer.config.dataset).x_test
                if explainer.config.dataset in BUILTIN_DATASETS
                else data.load_dataset(explainer.config.dataset).x_test
            )
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(test):
                raise RequestError(f"test_index must be an integer in [0, {len(test) - 1}], got {index!r}")
            image = test[index].astype(np.float32) / 255.0
            label = (
                int(self._dataset(explainer.config.dataset).y_test[index])
                if explainer.config.dataset in BUILTIN_DATASETS
                else None
            )
        elif isinstance(request, bytes):
            image, _ = engine.decode(request, content_type)
        else:
            try:
                encoded = fileio.dumps(request).encode()
            except RecursionError:  # parsed, but too deep to write again: no 28x28 list of numbers is
                raise RequestError('pixels must be 28 rows of 28 numbers in [0, 1]: {"pixels": [[...] x 28]}') from None
            image, _ = engine.decode_json(encoded)
        explanation = explainer.explain(image)
        return {"input": np.round(image, 4).tolist(), "label": label, **explain.to_json(explanation, compact=True)}

    def draw_app(self, run_id):
        """`mnistlab serve`'s app for this run alone (the draw page and its API), built on first use."""
        run_dir = self._finished_run_dir(run_id)

        def build():
            from mnistlab.ml.predict import Predictor

            self.keras_backend()
            return serve.create_app([Predictor(run_dir)], chosen_by=f"run {run_id}, opened from the lab", warm=False)

        return self._kept(run_id, "draw", build)

    # -- seeds as the unit: setups compared, the chapter's tables ------

    def compare(self, selectors, by=None, backend=None, dataset=None):
        """Setups side by side over their seeds: `bands.compare_setups`, the numbers of `mnistlab runs compare` and `report A B`."""
        if not selectors:
            raise RequestError(
                "name the setups to compare: ?setup=A&setup=B (presets, config hashes or group=NAME)", 422
            )
        return bands.compare_setups(
            selectors, store_path=self.store_path, dataset=dataset or None, by=by or None, backend=backend or None
        )

    def tables(self):
        """The chapter's tables, each with the reproduction the lab exports (the newest `mnistlab reproduce` wrote) where there is one."""
        listed = []
        for table in presets.TABLES:
            try:
                reproduced = tables.table_data(table, store_path=self.store_path)
            except NotFound:
                listed.append({"table": table, "reproduced": False})
                continue
            except (
                MnistlabError
            ) as error:  # a table file that cannot be read: said beside its table, the others still listed
                listed.append({"table": table, "reproduced": False, "error": str(error)})
                continue
            listed.append(
                {
                    "table": table,
                    "reproduced": True,
                    "context": reproduced["context"],
                    "source": reproduced["source"],
                    "rows": len(reproduced["rows"]),
                }
            )
        return {"tables": listed, "formats": list(tables.FORMATS)}

    def table(self, table, format):
        """(text, file name) of the reproduced TABLE in FORMAT: what `mnistlab report TABLE --format FORMAT` writes."""
        reproduced = tables.table_data(table, store_path=self.store_path)
        return tables.table_export(reproduced, format), pathlib.Path(reproduced["source"]).stem + tables.SUFFIXES[
            format
        ]


def _refuse_dataset(names):
    raise ConfigError(
        f"dataset must be one of {', '.join(names)}; other datasets are given when the lab starts: mnistlab lab --dataset NAME=PATH",
        field="dataset",
    )


def _shown(value, limit=60):
    """A client's value in an error message, cut short (a message never carries a whole body back)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _seeds(value):
    if isinstance(value, bool) or not isinstance(value, (int, list)):
        raise ConfigError(
            f"seeds must be a list of integers (or a count N, meaning 0..N-1), got {_shown(value)}", field="seeds"
        )
    if isinstance(value, list) and len(value) > MAX_SEEDS:
        raise ConfigError(f"seeds must be at most {MAX_SEEDS} different integers, got {len(value)}", field="seeds")
    if isinstance(value, list) and not all(isinstance(seed, int) and not isinstance(seed, bool) for seed in value):
        raise ConfigError(f"seeds must be integers, got {_shown(value)}", field="seeds")
    if isinstance(value, int) and not 1 <= value <= MAX_SEEDS:
        raise ConfigError(f"seeds as a count must be in [1, {MAX_SEEDS}], got {_shown(value)}", field="seeds")
    if isinstance(value, list) and not all(0 <= seed <= config_lib.MAX_SEED for seed in value):
        raise ConfigError(f"seeds must be in [0, {config_lib.MAX_SEED}], got {_shown(value)}", field="seeds")
    try:
        seeds = sweep.seed_list(value)
    except ConfigError as error:
        raise ConfigError(str(error), field="seeds") from None
    if len(seeds) > MAX_SEEDS or len(set(seeds)) != len(seeds):
        raise ConfigError(
            f"seeds must be at most {MAX_SEEDS} different integers, got {len(seeds)}"
            + (" with repeats" if len(set(seeds)) != len(seeds) else ""),
            field="seeds",
        )
    return seeds


def _mean(values):
    return sum(values) / len(values) if values else None


def _close_draw_app(entry):
    """Stop a draw app's batcher and explainer threads, so that its model can go."""
    engine = getattr(getattr(entry.get("draw"), "state", None), "engine", None)
    if engine is not None:
        engine.close()


def _report_of(run_dir, backend):
    from mnistlab.outputs import report

    probabilities, labels, images, dataset_name = report.predict_test_set(run_dir, backend=backend)
    predictions = probabilities.argmax(axis=1)
    matrix = report.confusion_matrix(labels, predictions)
    mistakes = report.confident_mistakes(probabilities, labels)
    names = data.class_names(dataset_name)
    return {
        "dataset": dataset_name,
        "labels": list(names),
        "confusion": matrix.tolist(),
        "test_samples": int(len(labels)),
        "accuracy": float((predictions == labels).mean()),
        "per_class": report.per_class_accuracy(matrix).tolist(),
        "mistakes": [
            {
                "index": int(index),
                "label": int(labels[index]),
                "predicted": int(predictions[index]),
                "confidence": float(probabilities[index, predictions[index]]),
                "label_name": names[labels[index]],
                "predicted_name": names[predictions[index]],
                "pixels": images[index].tolist(),
            }
            for index in mistakes
        ],
    }


# --------------------------------------------------------------------------
# The web app


def schema(datasets=BUILTIN_DATASETS):
    """What the launch form is made of: presets, each family's knobs (their one declaration), the run settings."""
    form_keys = [
        key
        for key in config_lib.VALID_KEYS
        if key not in config_lib.RUN_KEYS and key not in ("epochs", "limit", "family")
    ]
    families = {}
    for family in config_lib.FAMILIES:
        described = {key["name"]: key for key in config_lib.describe_keys(family)}
        properties = config_lib.json_schema(family)["properties"]
        families[family] = {
            "defaults": Config(family=family).to_dict(),
            "keys": [{**described[name], "schema": properties[name]} for name in form_keys if name in described],
        }
    return {
        "presets": [
            {
                "name": preset.name,
                "description": preset.description,
                "family": preset.config["family"],
                "values": preset.build_config().to_dict(),
                "book_test_accuracy": preset.book_test_accuracy,
            }
            for preset in presets.all_presets().values()
        ],
        "families": families,
        "run": {
            "seeds": {
                "default": [0],
                "help": "seeds to train, e.g. 0,1,2: each is one run; runs differing only by seed fold into one row",
            },
            "epochs": {"help": config_lib.KNOBS["epochs"].help, "minimum": 1},
            "limit": {"help": config_lib.KNOBS["limit"].help, "minimum": 1},
            "dataset": {
                "choices": list(datasets),
                "default": "auto",
                "help": "mnist, fashion-mnist, mnist-mini, auto (mnist, or mnist-mini offline), or a dataset given when the lab started",
            },
            "backend": {
                "choices": list(config_lib.BACKENDS),
                "default": "auto",
                "help": config_lib.KNOBS["backend"].help,
            },
            "executor": {
                "choices": list(config_lib.EXECUTORS),
                "default": "local",
                "help": "local processes on this machine, or Ray tasks (needs the 'ray' extra) on a local Ray or the cluster given at start (--ray-address)",
            },
        },
        "statuses": list(config_lib.RUN_STATUSES),
        "sorts": list(SORTS),
        "config_schema": config_lib.json_schema(),
    }


def launch_schema():
    """The JSON Schema of a launch (POST /api/runs), for /openapi.json: its fields, the run settings' schemas and the
    keys `set` takes, all from the knobs' one declaration (`config.json_schema()`)."""
    knobs = config_lib.json_schema()["properties"]
    settable = [name for name in config_lib.VALID_KEYS if name not in config_lib.RUN_KEYS]
    run = schema()["run"]
    properties = {
        "preset": {
            "anyOf": [{"type": "string"}, {"type": "null"}],
            "description": "a listing or table row of the book (`mnistlab presets` lists them); none: the family's defaults",
        },
        "set": {
            "type": "array",
            "description": "key=value overrides, as --set takes them; the keys and their values are the knobs' (x-knobs)",
            "items": {
                "type": "string",
                "pattern": f"^({'|'.join(settable)})=",
                "x-knobs": {name: knobs[name] for name in settable},
            },
        },
        "seeds": {
            "anyOf": [
                {"type": "array", "items": {"type": "integer"}, "maxItems": MAX_SEEDS},
                {"type": "integer", "minimum": 1, "maximum": MAX_SEEDS},
            ],
            "default": [0],
            "description": run["seeds"]["help"] + "; a count N means 0..N-1",
        },
        **{
            name: {key: value for key, value in knobs[name].items() if key != "default"} for name in ("epochs", "limit")
        },
        "dataset": {"type": "string", "description": run["dataset"]["help"]},
        "backend": {key: value for key, value in knobs["backend"].items() if key != "default"},
        "executor": {
            "type": "string",
            "enum": run["executor"]["choices"],
            "default": run["executor"]["default"],
            "description": run["executor"]["help"],
        },
    }
    return {"title": "Launch", "type": "object", "properties": properties, "additionalProperties": False}


def _event_stream(events):
    """Server-Sent Events from an async iterator of events (None: a heartbeat comment)."""

    async def stream():
        async for event in events:
            if event is None:
                yield ": keepalive\n\n"
                continue
            yield f"id: {event.get('seq', 0)}\ndata: {fileio.dumps(event)}\n\n"

    # No buffering on the way (nginx honours X-Accel-Buffering): a point is on screen as it comes.
    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


class Guard:
    """ASGI middleware: the token, loopback Host names on loopback, same origin for changes, no framing, no referrer.

    Pure ASGI rather than FastAPI's @middleware: that one buffers through a
    task per request and has trouble with streams that never end (SSE).
    """

    SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
    # On every answer: no page of the lab inside another site's frame (clickjacking), and no address of
    # it (which may carry ?token=) sent to another site as a referrer.
    HEADERS = (
        (b"x-frame-options", b"DENY"),
        (b"content-security-policy", b"frame-ancestors 'none'"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-content-type-options", b"nosniff"),
    )

    def __init__(self, app, token=None, loopback_only=False):
        self.app = app
        self.token = token
        self.loopback_only = loopback_only

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self.app(scope, receive, send)
        if scope["type"] != "http":  # websockets and whatever comes next: the lab serves none
            if scope["type"] == "websocket":
                return await send({"type": "websocket.close", "code": 1008})
            return None
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
        refusal = self._refusal(scope, headers, query)
        if refusal is not None:
            status, message = refusal
            return await JSONResponse(
                {"error": message, "field": None},
                status_code=status,
                headers=dict((k.decode(), v.decode()) for k, v in self.HEADERS),
            )(scope, receive, send)
        given_in_query = self.token is not None and query.get("token", [None])[0] is not None

        async def send_guarded(message):
            if message["type"] == "http.response.start":
                extra = list(self.HEADERS)
                if given_in_query:  # the page's own requests (fetch, EventSource) then carry it as a cookie
                    cookie = f"{token_cookie(scope)}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                    extra.append((b"set-cookie", cookie.encode("latin-1")))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        return await self.app(scope, receive, send_guarded)

    def _refusal(self, scope, headers, query):
        host = headers.get("host", "")
        if self.loopback_only and serve.hostname(host) not in LOOPBACK_HOSTS:
            return 403, f"this lab answers to a loopback name (127.0.0.1 or localhost), not {_shown(host)}"
        if self.token is not None:
            given = (
                query.get("token", [None])[0]
                or _authorization(headers.get("authorization", ""))
                or _cookie(headers.get("cookie", ""), token_cookie(scope))
            )
            if not given or not hmac.compare_digest(given.encode("utf-8", "replace"), self.token.encode()):
                return (
                    401,
                    "this lab needs its token: open the address printed at its start (…/?token=…), or send Authorization: token TOKEN",
                )
        if scope["method"] not in self.SAFE_METHODS:
            origin = headers.get("origin")
            own = f"{scope.get('scheme', 'http')}://{host}"
            if origin is not None and origin != own:
                return (
                    403,
                    f"a change from another origin ({_shown(origin)}) is refused: use the lab's own page at {_shown(own)}",
                )
            if origin is None and headers.get("sec-fetch-site") not in (None, "same-origin", "none"):
                return 403, "a change from another site is refused: use the lab's own page"
        return None


def token_cookie(scope):
    """The token cookie's name, with the port the lab listens on: cookies ignore ports, so two labs on one
    machine would otherwise overwrite each other's."""
    server = scope.get("server") or (None, None)
    return f"{TOKEN_COOKIE}_{server[1]}" if server[1] else TOKEN_COOKIE


def _authorization(value):
    """The token of an `Authorization: token T` (Jupyter's) or `Authorization: Bearer T` header."""
    scheme, _, credentials = value.partition(" ")
    return credentials.strip() if scheme.lower() in ("bearer", "token") else None


def _cookie(value, name):
    jar = http.cookies.SimpleCookie()
    try:
        jar.load(value)
    except http.cookies.CookieError:
        return None
    return jar[name].value if name in jar else None


class DrawPages:
    """/draw/{run_id}/...: `mnistlab serve`'s app for that run (its page asks its API by relative paths)."""

    def __init__(self, lab):
        self.lab = lab

    async def __call__(self, scope, receive, send):
        path = scope["path"][len(scope.get("root_path", "")) :]
        run_text, _, rest = path.lstrip("/").partition("/")
        # isdigit() alone takes "²" (which int() refuses); a run id is ASCII digits, and at most SQLite's integers.
        if not (run_text.isascii() and run_text.isdigit() and len(run_text) <= 18):
            return await JSONResponse({"error": "the draw page is /draw/RUN_ID/", "field": None}, status_code=404)(
                scope, receive, send
            )
        if not rest and not path.endswith("/"):
            return await RedirectResponse(f"{scope.get('root_path', '')}/{run_text}/", status_code=307)(
                scope, receive, send
            )
        try:
            app = await asyncio.to_thread(self.lab.draw_app, int(run_text))
        except MnistlabError as error:
            return await JSONResponse({"error": str(error), "field": None}, status_code=error.http_status)(
                scope, receive, send
            )
        child = {**scope, "root_path": f"{scope.get('root_path', '')}/{run_text}"}
        return await app(child, receive, send)


# A run id in a path: a positive SQLite integer (a larger one is a 422, not an OverflowError).
RunId = typing.Annotated[int, Path(ge=1, le=MAX_RUN_ID, description="a run's id (mnistlab runs list)")]


async def read_at_most(request, limit, what):
    """The request's body, refused with 413 past LIMIT bytes, before more of it is read."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise RequestError(f"{what} is at most {limit // 1024} KiB, this one is {int(declared):,} bytes", 413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise RequestError(f"{what} is at most {limit // 1024} KiB", 413)
    return bytes(body)


def json_body(raw):
    """A JSON body as Python values (an empty body is {}), or a 400 saying what is wrong with it."""
    try:
        return json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError, and integers past Python's 4,300 digits
        raise RequestError(f"malformed JSON ({_shown(str(error), 120)})") from None
    except RecursionError:
        raise RequestError("malformed JSON: nested too deeply") from None


def create_app(lab, token=None, loopback_only=True):
    """The lab's web app over LAB (a `Lab`); started and stopped with the app (its lifespan).

    `token`: required of every request when given (non-loopback addresses).
    `loopback_only`: refuse requests naming a host other than 127.0.0.1,
    localhost or ::1 (the DNS-rebinding check of a lab on a loopback address).
    """

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await asyncio.to_thread(lab.start)
        try:
            yield
        finally:
            await asyncio.to_thread(lab.stop)

    app = FastAPI(
        title="mnistlab lab",
        version="1",
        description="Launch, watch and open mnistlab runs.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.lab = lab

    @app.exception_handler(MnistlabError)
    async def user_error(request, error):
        return JSONResponse(
            {"error": str(error), "field": getattr(error, "field", None)},
            status_code=error.http_status,
            headers=getattr(error, "headers", None),
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, error):
        return JSONResponse({"error": str(error.detail), "field": None}, status_code=error.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, error):
        first = error.errors()[0] if error.errors() else {}
        field = str(first.get("loc", ["", ""])[-1]) if first.get("loc") else None
        where = f"{field}: " if field else ""
        return JSONResponse(
            {"error": f"invalid request: {where}{first.get('msg', error)}", "field": field}, status_code=422
        )

    @app.exception_handler(Exception)
    async def unexpected_error(request, error):  # a bug: still JSON, and the lab keeps serving
        lab.log(f"internal error on {request.method} {request.url.path}: {type(error).__name__}: {error}")
        return JSONResponse({"error": f"internal error: {type(error).__name__}", "field": None}, status_code=500)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page():
        return HTMLResponse(PAGE.read_text())

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def api_page():
        return HTMLResponse(API_PAGE)

    @app.get("/healthz")
    def healthz():
        return {"status": "ok", "workers": lab.workers, "store": str(lab.store_path)}

    @app.get("/api/schema")
    def get_schema():
        return schema(lab.dataset_names())

    @app.post(
        "/api/runs",
        status_code=202,
        openapi_extra={
            "requestBody": {"required": False, "content": {"application/json": {"schema": launch_schema()}}}
        },
    )
    async def launch(request: Request):
        body = json_body(await read_at_most(request, MAX_LAUNCH_BYTES, "a launch"))
        return {"runs": await asyncio.to_thread(lab.launch, body)}

    @app.get("/api/runs")
    def list_runs(
        status: str | None = None,
        preset: str | None = None,
        family: str | None = None,
        dataset: str | None = None,
        backend: str | None = None,
        q: str | None = None,
        sort: str = "started",
        order: str = "desc",
        fold: bool = True,
    ):
        answer = lab.list_runs(
            status=status,
            preset=preset,
            family=family,
            dataset=dataset,
            backend=backend,
            q=q,
            sort=sort,
            order=order,
            fold=fold,
        )
        # Serialised here: FastAPI's own encoder walks every value in Python, several times json.dumps' cost for 1,000 runs.
        return Response(fileio.dumps(answer, separators=(",", ":")), media_type="application/json")

    @app.get("/api/runs/{run_id}")
    def get_run(run_id: RunId):
        return lab.run_detail(run_id)

    @app.delete("/api/runs/{run_id}", status_code=202)
    def cancel(run_id: RunId):
        return lab.cancel(run_id)

    @app.post("/api/runs/{run_id}/resume", status_code=202)
    def resume(run_id: RunId):
        return lab.resume(run_id)

    @app.get("/api/runs/{run_id}/events")
    async def run_events(run_id: RunId):
        # The sequence first, then the store: an event published while the store is read is
        # then still followed (the page may see a status twice, never miss the last one).
        after = lab.hub.sequence
        detail = await asyncio.to_thread(
            lab.run_detail, run_id
        )  # a 404-style error for an unknown run, before the stream starts

        async def events():
            yield {
                "kind": "snapshot",
                "status": detail["status"],
                "history": detail["history"],
                "progress": detail["progress"],
                "seq": after,
            }
            if detail["status"] not in ("queued", "running"):
                yield {"kind": "end", "status": detail["status"], "seq": after}
                return
            async for event in lab.hub.follow(run_id, after=after):
                yield event
                if event is not None and event["kind"] == "status" and event["status"] not in ("queued", "running"):
                    yield {"kind": "end", "status": event["status"], "seq": event["seq"]}
                    return

        return _event_stream(events())

    @app.get("/api/events")
    async def all_events(after: int = 0):
        return _event_stream(lab.hub.follow(None, after=after))

    @app.get("/api/runs/{run_id}/report")
    def run_report(run_id: RunId):
        return lab.report(run_id)

    @app.post("/api/runs/{run_id}/explain")
    async def run_explain(run_id: RunId, request: Request):
        content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        raw = await serve.read_limited(request)  # at most the draw page's upload limit (413 past it)
        if content_type.startswith("image/"):  # a drawing from the run page, as the draw page sends it
            return await asyncio.to_thread(lab.explain, run_id, raw, content_type)
        return await asyncio.to_thread(lab.explain, run_id, json_body(raw))

    @app.get("/api/compare")
    def compare(
        setup: list[str] = Query(
            default=[], description="a setup: a preset, a config hash or group=NAME; two or more to compare"
        ),
        by: Literal["backend"] | None = None,
        backend: str | None = None,
        dataset: str | None = None,
    ):
        # Serialised as list_runs is (bands for every epoch of every setup: many numbers).
        return Response(
            fileio.dumps(lab.compare(setup, by=by, backend=backend, dataset=dataset), separators=(",", ":")),
            media_type="application/json",
        )

    @app.get("/api/tables")
    def list_tables():
        return lab.tables()

    @app.get("/api/tables/{table}")
    def get_table(table: str, format: Literal[tables.FORMATS] = "json"):
        text, filename = lab.table(table, format)
        return Response(
            text.encode("utf-8"),
            media_type=tables.MEDIA_TYPES[format],
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    app.mount("/draw", DrawPages(lab))
    app.mount(
        "/static", StaticFiles(directory=serve.STATIC), name="static"
    )  # the draw page's own files: one inside view
    return Guard(app, token=token, loopback_only=loopback_only)


API_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>mnistlab lab API</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 46em; margin: 2em auto">
<h1>mnistlab lab API</h1>
<p>The schema is <a href="openapi.json">/openapi.json</a> (OpenAPI 3), served from here with nothing fetched from elsewhere.
Every error is <code>{"error": "...", "field": "..."}</code> with a 4xx status; <code>field</code> names the launch field or config key at fault.</p>
<ul>
<li><code>POST /api/runs</code> <code>{"preset", "set": ["key=value"], "seeds": [0, 1], "epochs", "limit", "dataset", "backend", "executor", "address"}</code>:
202 <code>{"runs": [{"run_id", "status"}]}</code>, status <code>queued</code>, or that of the run the same setup and seed already has.</li>
<li><code>GET /api/runs</code>: runs folded by setup; <code>?status=&amp;preset=&amp;family=&amp;dataset=&amp;backend=&amp;q=&amp;sort=started|test|n|setup&amp;order=asc|desc&amp;fold=false</code>.</li>
<li><code>GET /api/runs/{id}</code>, <code>DELETE /api/runs/{id}</code> (cancel), <code>POST /api/runs/{id}/resume</code>.</li>
<li><code>GET /api/runs/{id}/events</code>, <code>GET /api/events</code>: Server-Sent Events, one JSON object per event
(<code>kind</code>: snapshot, status, step, epoch, end).</li>
<li><code>GET /api/runs/{id}/report</code>, <code>POST /api/runs/{id}/explain</code> <code>{"test_index": i}</code>, <code>{"pixels": 28x28}</code>, or a drawing's PNG bytes (<code>Content-Type: image/png</code>), preprocessed as the draw page's.</li>
<li><code>GET /api/compare?setup=A&amp;setup=B&amp;by=backend&amp;backend=&amp;dataset=</code>: setups side by side over their seeds
(per epoch mean and 95% band, final test accuracy with its interval, parameters, the book's figure, Welch's test for each pair: the numbers of <code>mnistlab runs compare</code>).</li>
<li><code>GET /api/tables</code>, <code>GET /api/tables/{table}?format=html|csv|latex|json</code>: a reproduced table as a download, the bytes <code>mnistlab report TABLE --format F</code> writes.</li>
<li><code>GET /api/schema</code>: the launch form's knobs; <code>GET /healthz</code>.</li>
</ul></body></html>"""


def is_loopback(host):
    return host in LOOPBACK_HOSTS


def choose_token(host, no_token=False, environ=os.environ):
    """The lab's token: MNISTLAB_LAB_TOKEN if set, else a fresh random one; None only for --no-token on loopback."""
    if no_token:
        if not is_loopback(host):
            raise ConfigError(
                f"--no-token is for a loopback address only; a lab on {host} is reachable from other machines and needs its token",
                field="no_token",
            )
        return None
    chosen = environ.get(TOKEN_VARIABLE, "")
    if chosen and len(chosen) < 16:
        raise ConfigError(
            f"{TOKEN_VARIABLE} must be at least 16 characters (it is all that stands between the lab and other users)",
            field="token",
        )
    return chosen or secrets.token_urlsafe(24)


def parse_datasets(specs):
    """--dataset NAME=PATH options as {name: path}: the datasets a launch may name besides the built-in ones."""
    datasets = {}
    for spec in specs or ():
        name, equals, where = spec.partition("=")
        if not equals or not name or not where:
            raise ConfigError(
                f"--dataset takes NAME=PATH (a name launches use, and an idx directory or .npz file), got {spec!r}",
                field="dataset",
            )
        path = pathlib.Path(where).expanduser()
        if not path.exists():
            raise ConfigError(f"--dataset {name}: no such file or directory: {path}", field="dataset")
        datasets[name] = path.resolve()
    return datasets


def run(
    host="127.0.0.1",
    port=DEFAULT_PORT,
    workers=1,
    store_path=None,
    log=print,
    no_token=False,
    ray_address=None,
    datasets=None,
):
    """Serve the lab until interrupted (Ctrl+C: queued runs stay queued, runs in progress end interrupted)."""
    import uvicorn

    from mnistlab.web import serve

    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    token = choose_token(host, no_token)
    datasets = parse_datasets(datasets)
    listening = serve.bind(host, port)  # before anything is loaded: a busy port is one line, at once
    lab = Lab(store_path, workers=workers, log=log, ray_address=ray_address, datasets=datasets)
    app = create_app(lab, token=token, loopback_only=is_loopback(host))
    shown = f"[{host}]" if ":" in host else host
    if not is_loopback(host):
        log(f"warning: listening on {host}, reachable from other machines; every request needs the token")
    if token is None:
        log("warning: --no-token: any process or user of this machine can launch, cancel and read runs")
        log(f"open http://{shown}:{port}/ (Ctrl+C stops; queued runs stay queued)")
    else:
        log(f"open http://{shown}:{port}/?token={token} (Ctrl+C stops; queued runs stay queued)")
    log(
        f"runs in {lab.store_path}, at most {workers} training at once"
        + (f"; Ray runs on {ray_address}" if ray_address else "")
    )

    class LabServer(uvicorn.Server):
        def handle_exit(self, sig, frame):
            # At the signal, not after uvicorn's wait for open connections (the page's event stream
            # is always open): from now no worker takes a queued run, so queued runs stay queued.
            lab.stop_taking()
            super().handle_exit(sig, frame)

    LabServer(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5)).run(sockets=[listening])

"""The lab's queue: queued rows of the run store, and the worker threads that train them through the sweep driver.

Each seed of a launch becomes a `queued` row (`Store.queue_run`, which applies the repeat rule: a setup and
seed already done is that run, one already queued or running is that one). `workers` threads take queued rows
in order and train each through the sweep driver (`sweep.run`, one job per call, no retry): the driver, in
this process, is the one writer of the store; the training runs in its own child process, which pipes its
progress back here, to the `Hub`. Nothing is lost: after Ctrl+C or kill -9 queued rows are still queued, and
a run that was training ends `interrupted` (resumed as a new attempt of the same key).
"""

import json
import os
import threading

from mnistlab.core import events, presets
from mnistlab.core.config import Config
from mnistlab.core.errors import MnistlabError, QueueFull, RequestError
from mnistlab.core.events import RunStatus
from mnistlab.jobs import runner, sweep
from mnistlab.record.store import Store

MAX_QUEUED = 1000  # runs waiting at once; past it a launch is answered 429


class TrainingQueue:
    """Launches into the store's queue, and the workers that train from it."""

    def __init__(self, store_path, hub, workers=1, log=None, ray_address=None):
        """`workers`: 0 is a lab that queues and shows, and trains nothing (tests; a machine kept for browsing).
        `ray_address`: the Ray cluster of every Ray run (None: a private local Ray)."""
        self.store_path = store_path
        self.hub = hub
        self.workers = workers
        self.log = log or (lambda message: None)
        self.ray_address = ray_address
        self._lock = threading.Condition()
        self._taken = set()  # queued ids a worker has taken and not finished
        self._stops = {}  # run id -> a function that stops its training
        self._cancelled = {}  # run id -> why it was stopped
        self._threads = []
        self._stopping = False
        self._launch_lock = threading.Lock()
        self._ray_lock = threading.Lock()
        self._ray_started = False

    # -- lifecycle -----------------------------------------------------

    def start(self):
        """Mark the runs of a lab that died as interrupted, then start the workers on what is queued."""
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
        if self._ray_started:
            import ray

            ray.shutdown()

    # -- launching, cancelling, resuming -------------------------------

    def queue(self, jobs, launch):
        """Queue one run per sweep job (`launch`: how to run them): [{"run_id", "status"}]."""
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
                    self.hub.publish(answer["run_id"], events.StatusEvent(RunStatus.QUEUED).to_json())
        self._wake()
        return answers

    def cancel(self, run_id):
        """Cancel a queued run (it is removed: it never ran) or stop a running one (it ends interrupted)."""
        with self._lock:
            if run_id not in self._taken:
                with Store(self.store_path) as store:
                    if store.cancel_queued(run_id):
                        self.hub.publish(run_id, events.StatusEvent(RunStatus.CANCELLED).to_json())
                        return {"run_id": run_id, "status": RunStatus.CANCELLED.value}
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
        if row["status"] not in (RunStatus.INTERRUPTED, RunStatus.FAILED):
            raise RequestError(f"run {run_id} is {row['status']}: only interrupted or failed runs are resumed", 409)
        config = Config.from_dict(json.loads(row["config_json"]))
        launch = {"executor": json.loads(row["launch_json"] or "{}").get("executor", "local")}
        with Store(self.store_path) as store:
            answer = store.queue_run(
                config, row["dataset_hash"], preset=row["preset"], group=row["group_name"], launch=launch
            )
        if not answer["repeat"]:
            self.hub.publish(
                answer["run_id"], events.StatusEvent(RunStatus.QUEUED, extra={"resumes": run_id}).to_json()
            )
        self._wake()
        return {"run_id": answer["run_id"], "status": answer["status"]}

    def _wake(self):
        with self._lock:
            self._lock.notify_all()

    # -- the workers ---------------------------------------------------

    def _work(self):
        # The worker keeps its training process for its next run of the same backend: a launch after the first
        # starts training without starting Python and Keras again.
        with runner.Trainers() as trainers:
            self._take_and_train(trainers)

    def _take_and_train(self, trainers):
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
                self._train(row, trainers)
            except Exception as error:  # noqa: BLE001 - said in the log and on the run; the worker goes on with the queue
                self._failed(row["id"], error)
            finally:
                with self._lock:
                    self._taken.discard(row["id"])
                    self._stops.pop(row["id"], None)

    def _failed(self, run_id, error):
        message = str(error) if isinstance(error, MnistlabError) else f"{type(error).__name__}: {error}"
        self.log(f"lab worker: run {run_id} could not run: {message}")
        # Still queued (it failed before starting, e.g. its Ray cluster is unreachable): mark it failed,
        # or the next worker would take it again at once, for ever.
        with Store(self.store_path) as store:
            store.fail_queued(run_id, message)
        self.hub.publish(run_id, events.StatusEvent(RunStatus.FAILED, time=None, extra={"error": message}).to_json())

    def _next_queued(self):
        with Store(self.store_path) as store:
            return next((row for row in store.queued() if row["id"] not in self._taken), None)

    def _train(self, row, trainers):
        run_id = row["id"]
        config = Config.from_dict(json.loads(row["config_json"]))
        # The cluster is the one given at start, whatever an older row's launch says.
        executor = json.loads(row["launch_json"] or "{}").get("executor", "local")
        describe = f"run {run_id}: {presets.describe(config, row['preset'])} seed {config.seed}"
        job = sweep.Job(
            config,
            row["preset"],
            row["group_name"],
            row["run_key"],
            describe,
            row["dataset_hash"],
            queued_run_id=run_id,
        )
        if executor == "ray":
            with self._ray_lock:
                _, started = sweep.connect_ray(self.ray_address, max(self.workers, 1))
                self._ray_started = self._ray_started or started
        outcome = sweep.run(
            [job],
            store_path=self.store_path,
            workers=1,
            executor=executor,
            address=self.ray_address,
            log=self.log,
            watch=sweep.Watch(
                attempts=1,
                on_start=self._started,
                on_progress=self.hub.publish,
                cancelled=self._cancelled.get,
                trainers=trainers,
            ),
        )[0]
        self._finished(run_id, outcome)

    def _finished(self, run_id, outcome):
        if outcome.status == "skipped":
            # The same setup and seed finished elsewhere (a CLI sweep) while this one waited: that run answers for it.
            with Store(self.store_path) as store:
                store.cancel_queued(run_id)
            self.hub.publish(
                run_id,
                events.StatusEvent(RunStatus.DONE, time=None, extra={"repeat_of": outcome.metrics["run_id"]}).to_json(),
            )
            return
        with Store(self.store_path) as store:
            finished = store.get(run_id)
        self.hub.publish(
            run_id,
            events.StatusEvent(
                RunStatus(finished["status"]),
                extra={"error": finished["error"], "test_accuracy": finished["test_accuracy"]},
            ).to_json(),
        )

    def _started(self, run_id, stop):
        with self._lock:
            self._stops[run_id] = stop
            stopped = self._stopping or run_id in self._cancelled
        if stopped:  # cancelled (or the lab stopping) while it was being started
            stop()
        self.hub.publish(run_id, events.StatusEvent(RunStatus.RUNNING).to_json())

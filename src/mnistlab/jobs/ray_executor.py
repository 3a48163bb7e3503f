"""The Ray executor: each run a Ray task on any node of a cluster, its files shipped back to the driver.

The driver (`sweep.run`) stays the one writer: a node trains in a scratch directory and returns the run's
files, which the driver unpacks into its own run root and records in its store.
"""

import contextlib
import pathlib
import tempfile
import threading

from mnistlab.core import fileio
from mnistlab.core.errors import MissingExtra, RunFailed
from mnistlab.jobs import runner
from mnistlab.record import rundir

PROGRESS_QUEUE = 1000  # Ray progress events waiting for the driver at most (past it, a task drops its events)


def run_ray(todo, driver, workers, address, quiet):
    ray, started_here = connect_ray(address, workers)
    remote_train = ray.remote(num_cpus=1, max_retries=0)(_ray_task)
    pending, attempts, relay = {}, {}, None

    def submit(index, job):
        run_dir, run_id = driver.open(job)
        reference = remote_train.remote(job, run_dir.name, run_id, relay.queue if relay else None)
        pending[reference] = (index, job, run_dir, run_id)
        attempts[index] = attempts.get(index, 0) + 1
        driver.on_start(run_id, lambda: ray.cancel(reference, force=True))

    try:  # from here on, whatever fails (a run that cannot start too) closes the relay and the Ray started here
        driver.log(f"ray: {ray.cluster_resources().get('CPU', 0):.0f} CPUs in the cluster")
        relay = _ProgressRelay(driver.on_progress) if driver.on_progress is not None else None
        for index, job in todo:
            submit(index, job)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            index, job, run_dir, run_id = pending.pop(ready[0])
            if relay is not None:
                relay.flush()  # the task's last events before its outcome, never after
            try:
                result = ray.get(ready[0])
            except Exception as error:  # the Ray worker itself died: its first line as the message, all of it kept
                text = str(error).strip() or type(error).__name__
                result = {
                    "error": f"Ray task failed ({type(error).__name__}): {text.splitlines()[0]}",
                    "traceback": text,
                    "files": {},
                }
            # Whatever the node wrote comes back into this machine's run root.
            rundir.unpack(result["files"], run_dir)
            if "error" in result:
                outcome = driver.failed(
                    job, run_id, run_dir, RunFailed(result["error"], traceback=result.get("traceback"))
                )
                if driver.retries(job, outcome, attempts[index], result["error"]):
                    submit(index, job)
                    continue
            else:
                metrics = {**result["metrics"], "run_dir": str(run_dir)}
                fileio.write_json(run_dir / rundir.METRICS_FILE, metrics)  # the node's scratch path replaced by ours
                outcome = driver.finished(job, run_id, run_dir, metrics)
            driver.progress(len(todo), outcome)
            yield index, outcome
    finally:
        if relay is not None:
            relay.close()
        if started_here:
            ray.shutdown()


class _ProgressRelay:
    """A Ray task's progress events to the driver's `on_progress`, wherever the task runs.

    A node shares no filesystem nor pipe with the driver, so each task puts its
    events, (run id, event), on a queue actor (`ray.util.queue.Queue`, which
    asks for no CPU, so that it never waits behind the trainings for one), and
    a thread here takes them off as they come.
    """

    def __init__(self, on_progress):
        from ray.util.queue import Queue

        self.on_progress = on_progress
        self.queue = Queue(maxsize=PROGRESS_QUEUE, actor_options={"num_cpus": 0})
        self._lock = threading.Lock()  # one taker at a time, so that events keep their order
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pass_on, name="mnistlab-ray-progress", daemon=True)
        self._thread.start()

    def _pass_on(self):
        from ray.exceptions import RayError
        from ray.util.queue import Empty

        while not self._stop.is_set():
            with self._lock:
                try:
                    run_id, event = self.queue.get(timeout=0.5)
                except Empty:
                    continue
                except RayError:  # the queue actor is gone: Ray is shutting down
                    return
                self.on_progress(run_id, event)

    def flush(self):
        """Pass on every event waiting now (a task that has returned has put all of its own)."""
        from ray.util.queue import Empty

        with self._lock:
            while True:
                try:
                    run_id, event = self.queue.get_nowait()
                except Empty:
                    return
                self.on_progress(run_id, event)

    def close(self):
        import ray

        self._stop.set()
        self._thread.join(timeout=5)
        from ray.exceptions import RayError

        with contextlib.suppress(RayError):  # Ray already down: the actor went with it
            ray.kill(self.queue.actor)


def connect_ray(address=None, workers=1):
    """(the ray module, whether this call started it): joined to the cluster at ADDRESS, or a private local one of WORKERS CPUs.

    Where Ray already runs in this process (the lab starts it once for all its
    Ray runs), that connection is used as it is.
    """
    try:
        import ray
    except ImportError:
        raise MissingExtra("--executor ray", "ray") from None
    if ray.is_initialized():
        return ray, False
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        # A private local cluster on loopback, sized to the worker count.
        ray.init(
            address="local",
            num_cpus=workers,
            num_gpus=0,
            include_dashboard=False,
            log_to_driver=False,
            _node_ip_address="127.0.0.1",
        )
    return ray, True


def _ray_task(job, run_name, run_id, progress_queue=None):
    """On a Ray node: train in a scratch directory and return the run's files (the node writes nothing of the driver's).

    `progress_queue`: where the driver listens for this run's progress (a `_ProgressRelay`'s queue), or None.
    """
    on_progress = None
    if progress_queue is not None:
        from ray.exceptions import RayError
        from ray.util.queue import Full

        def on_progress(event):
            # A full queue means the driver is behind: this event is dropped, the next (a later
            # step, or the epoch) says more. A RayError means the driver is gone, and this run's
            # result with it. Neither is a reason to stop the training.
            with contextlib.suppress(Full, RayError):
                progress_queue.put_nowait((run_id, event))

    with tempfile.TemporaryDirectory(prefix="mnistlab-") as scratch:
        run_dir = pathlib.Path(scratch) / run_name
        try:
            metrics = runner.run_job(job, run_dir, run_id, quiet=True, on_progress=on_progress)
        except RunFailed as error:
            return {
                "error": str(error),
                "traceback": error.traceback,
                "files": rundir.pack(run_dir) if run_dir.exists() else {},
            }
        return {"metrics": metrics, "files": rundir.pack(run_dir)}

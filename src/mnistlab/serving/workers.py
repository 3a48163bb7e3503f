"""`mnistlab serve --workers N`: the models in N processes, the HTTP in one.

Why processes: one request costs about a millisecond of Python (PNG
decoding, preprocessing, JSON), which holds the GIL, so one process uses
about one core however many it has. Here the front process (uvicorn) only
reads each request's bytes and hands them over a pipe to a worker process,
which runs an `engine.Engine` (decoding, the batched models, the inside view)
and sends the answer's bytes back. Each worker's native thread pools are
sized so that the workers together use the cores once, not N times over.

Why not uvicorn's own `--workers`: when one of its processes dies, the
requests it held die with their connections. Here the front holds every
connection, so a worker that dies (a crash, the kernel's OOM killer) has each
of its requests in flight answered 503 with Retry-After at once, and a new
worker is started in its place. A worker that stops reading (stopped, swapped
out, starved) fills its pipe: writes that might then block go through that
worker's own sending thread, so that the event loop, and /healthz, go on.

Predictions go to the model worker with the fewest requests in flight.
Explanations go to a process of their own, the explain worker, which runs at
a lower scheduling priority once loaded (nice 10): an explanation costs tens of
predictions (the CNN's integrated gradients), and on a machine whose cores
the predictions fill, a queue inside each worker is not enough; the kernel
has to give the predictions the cores first. The explain worker takes what
the predictions leave, and past its queue answers 503 (the page retries).
Every explanation reaching one process also means a client's newer request
always replaces its older waiting one.
"""

import asyncio
import concurrent.futures
import contextlib
import itertools
import json
import multiprocessing
import threading
import time
import zlib

from mnistlab.core import processes
from mnistlab.core.errors import ExplainBusy, ServerBusy
from mnistlab.serving import engine as engine_lib
from mnistlab.serving import messages, pipes, worker_process

# Explanations the front lets reach the explain worker at once: its queue holds 8 pages and
# explains one, so more would only wait to be refused there. Past it, 503 at the front.
EXPLAIN_IN_FLIGHT = 16
# Seconds each worker has to answer /healthz: one that does not (stopped, or stuck) is reported as
# such, and the answer comes all the same, within this.
HEALTH_TIMEOUT = 1.0


class _Worker:
    """The front's handle on one worker process: its pipe, its requests in flight, what it serves."""

    def __init__(self, number, explains=False):
        self.number = number
        self.explains = explains  # the explain worker (explanations only, at a lower priority)
        self.name = "explain worker" if explains else f"model worker {number}"
        self.process = None
        self.connection = None
        self.sending = threading.Lock()
        self.in_flight = {}  # request id -> (event loop, future)
        # Requests handed to the sending thread, not yet written to the pipe (the event loop's thread alone
        # touches it).
        self.sends_waiting = 0
        self.pipe_bytes = 0  # the pipe's send buffer: a write blocks when what the worker has not read fills it
        # Writes that might block happen in this worker's own thread, never in the event loop.
        self.sender = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"mnistlab-send-{self.name.replace(' ', '-')}"
        )
        self.ready = threading.Event()
        self.models = None
        self.pid = None
        self.probe = None  # the health request still waiting for this worker's answer, if any

    @property
    def load(self):
        """The requests it holds and those still waiting to be written to it (a stopped worker's pile up there)."""
        return len(self.in_flight) + self.sends_waiting


class WorkerPool:
    """N worker processes, each an Engine over the same runs; replaced when one dies."""

    def __init__(
        self,
        run_dirs,
        runtime="keras",
        workers=2,
        log=print,
        max_in_flight=1024,
        inside_views=True,
        explain_worker=None,
    ):
        """`workers` model worker processes; `explain_worker`: explanations in a process of their own,
        at a lower priority (default: with the keras runtime, the only one with an inside view);
        False leaves them to the model workers. `inside_views`: compile the inside views at start."""
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.run_dirs = [str(run_dir) for run_dir in run_dirs]
        self.runtime = runtime
        self.count = workers
        self.log = log
        self.max_in_flight = max_in_flight
        self.inside_views = inside_views and runtime == "keras"
        self.restarts = 0
        self._workers = [_Worker(number) for number in range(workers)]
        if explain_worker is None:
            explain_worker = runtime == "keras"
        self._explainer = _Worker(workers, explains=True) if explain_worker else None
        if self._explainer is not None:
            self._workers.append(self._explainer)
        self._ids = itertools.count()
        self._closing = False
        self._starting = False
        self._context = multiprocessing.get_context(
            "spawn"
        )  # a fresh interpreter: one Keras backend each, no forked locks

    @property
    def has_explain_worker(self):
        return self._explainer is not None

    # -- starting and stopping -------------------------------------------------

    def start(self, timeout=600):
        """Start every worker and wait until each has loaded and warmed its models."""
        self._starting = True
        for worker in self._workers:
            self._spawn(worker)
        try:
            for worker in self._workers:
                if not worker.ready.wait(timeout):
                    raise ServerBusy(f"{worker.name} did not get ready in {timeout} s")
                if worker.models is None:
                    raise RuntimeError(
                        f"{worker.name} stopped while loading its models ({processes.how_it_ended(worker.process.exitcode)}); the lines above say why"
                    )
        except BaseException:
            self.close()
            raise
        finally:
            self._starting = False
        return self

    def _spawn(self, worker):
        parent, child = self._context.Pipe()
        threads = worker_process.threads_per_worker(self.count)
        # A model worker warms its inside views only when it is the one explaining; the explain
        # worker does not warm the batched predictions (it predicts one drawing at a time).
        role = "explain" if worker.explains else ("both" if self._explainer is None else "predict")
        inside_views = self.inside_views and role != "predict"
        process = self._context.Process(
            target=worker_process.worker_main,
            args=(child, self.run_dirs, self.runtime, threads, inside_views, role),
            name=f"mnistlab-{worker.name.replace(' ', '-')}",
            daemon=True,
        )
        worker.ready.clear()
        worker.models = None
        process.start()
        child.close()
        worker.process, worker.connection, worker.pid = process, parent, process.pid
        worker.pipe_bytes = pipes.buffer_bytes(parent)
        threading.Thread(
            target=self._read,
            args=(worker, parent, process),
            name=f"mnistlab-worker-{worker.number}-reader",
            daemon=True,
        ).start()

    def close(self):
        """Stop every worker (each answers what it holds first); closing twice does nothing more."""
        if self._closing:
            return
        self._closing = True

        def stop(worker):
            with contextlib.suppress(OSError, ValueError), worker.sending:
                worker.connection.send_bytes(messages.encode(messages.Stop()))

        # From each worker's sending thread: the write to a worker that stopped reading blocks until it is
        # killed below, and must not block closing.
        for worker in self._workers:
            worker.sender.submit(stop, worker)
        for worker in self._workers:
            if worker.process is None:
                continue
            worker.process.join(timeout=10)
            if worker.process.is_alive():
                worker.process.kill()
        for worker in self._workers:
            worker.sender.shutdown(wait=False, cancel_futures=True)

    # -- what the front asks --------------------------------------------------

    def describe(self):
        for worker in self._workers:
            if worker.models is not None:
                return worker.models
        return []

    def status(self):
        return {
            "workers": [
                {
                    "number": worker.number,
                    "role": "explain" if worker.explains else "predict",
                    "pid": worker.pid,
                    "ready": worker.ready.is_set() and worker.models is not None,
                    "in_flight": len(worker.in_flight),
                }
                for worker in self._workers
            ],
            "restarts": self.restarts,
        }

    async def health(self, timeout=HEALTH_TIMEOUT):
        """Every worker asked at once for its `Engine.counts()`, each given TIMEOUT seconds: {"workers": each one's
        `status()` line with "ok" (and "error" when not), "restarts", "counts": summed over those that answered}.

        A worker that does not answer in time is reported, not waited for. Its
        question stays pending: the next call waits on that same one rather than
        sending another, so that a stopped worker's pipe never fills with them.
        """
        loop = asyncio.get_running_loop()

        async def check(worker, line):
            if not (worker.ready.is_set() and worker.models is not None):
                return {**line, "ok": False, "error": "not ready (loading its models)"}
            if worker.probe is None or worker.probe.get_loop() is not loop:
                worker.probe = asyncio.ensure_future(self._send(worker, messages.AskCounts))
            probe = worker.probe
            done, _ = await asyncio.wait({probe}, timeout=timeout)
            if not done:
                return {**line, "ok": False, "error": f"no answer within {timeout:g} s"}
            if worker.probe is probe:
                worker.probe = None
            reply = probe.result()
            if reply.status != 200:
                return {**line, "ok": False, "error": json.loads(reply.body).get("error", f"answered {reply.status}")}
            return {**line, "ok": True, "counts": json.loads(reply.body)}

        status = self.status()
        checked = await asyncio.gather(*(check(worker, line) for worker, line in zip(self._workers, status["workers"])))
        totals = {}
        for line in checked:
            for key, value in line.pop("counts", {}).items():
                totals[key] = totals.get(key, 0) + value
        return {"workers": checked, "restarts": status["restarts"], "counts": totals}

    def _ready(self):
        return [worker for worker in self._workers if worker.ready.is_set() and worker.models is not None]

    async def answer(self, kind, client, body, content_type) -> engine_lib.Reply:
        kind = messages.Kind(kind)

        def ask(request_id):
            return messages.Ask(request_id, kind, client, body, content_type)

        ready = self._ready()
        if kind == "explain" and self._explainer is not None:
            if self._explainer not in ready:
                return engine_lib.error_reply(ExplainBusy("the inside view is restarting; it will try again"))
            if self._explainer.load >= EXPLAIN_IN_FLIGHT:
                return engine_lib.error_reply(
                    ExplainBusy("the inside view is busy (other drawings are being explained); it will try again")
                )
            return await self._send(self._explainer, ask)
        ready = [worker for worker in ready if not worker.explains]
        if not ready:
            return engine_lib.error_reply(
                ServerBusy("no model worker is ready (one is restarting); try again in a moment")
            )
        if sum(worker.load for worker in self._workers) >= self.max_in_flight:
            return engine_lib.error_reply(
                ServerBusy("the server has more drawings waiting than it holds; try again in a moment")
            )
        if kind == "explain":  # no explain worker: a client's explanations always to the same model worker
            worker = ready[zlib.crc32(client.encode()) % len(ready)]
        else:
            worker = min(ready, key=lambda candidate: candidate.load)
        return await self._send(worker, ask)

    async def _send(self, worker, message_for):
        """MESSAGE_FOR(request_id) (an `Ask` or `AskCounts`) sent to WORKER; its `Answer` as a Reply."""
        if self._closing:
            return engine_lib.error_reply(ServerBusy("the server is stopping; try again in a moment"))
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        request_id = next(self._ids)
        message = messages.encode(message_for(request_id))
        # This worker process's pipe, as chosen: a write still waiting when it dies fails (503) rather than reach
        # its replacement, which is still loading.
        connection = worker.connection

        def write():
            worker.in_flight[request_id] = (loop, future)
            connection.send_bytes(message)

        def send():
            with worker.sending:
                write()

        try:
            # A model worker reads its pipe all the time: while what it has not read leaves room for this request
            # and no other write is under way, the write cannot block, and a thread hop would cost more than it saves.
            if (
                not worker.explains
                and worker.sends_waiting == 0
                and pipes.fits(connection, len(message), worker.pipe_bytes)
                and worker.sending.acquire(blocking=False)
            ):
                try:
                    write()
                finally:
                    worker.sending.release()
            else:
                # A starved explain worker, or a stopped one (SIGSTOP, swapped out), stops reading, its pipe fills
                # and a write blocks: in the event loop it would stop every other request and /healthz with it.
                # An explanation is counted at once against EXPLAIN_IN_FLIGHT.
                worker.sends_waiting += 1
                try:
                    await loop.run_in_executor(worker.sender, send)
                finally:
                    worker.sends_waiting -= 1
        except (OSError, ValueError):  # the worker died between choosing and sending
            worker.in_flight.pop(request_id, None)
            return engine_lib.error_reply(ServerBusy(f"the {worker.name} stopped; try again in a moment"))
        return await future

    # -- the reader thread of each worker -------------------------------------

    def _read(self, worker, connection, process):
        while True:
            try:
                message = messages.decode(connection.recv_bytes())
            except (EOFError, OSError):
                break
            if isinstance(message, messages.Answer):
                waiting = worker.in_flight.pop(message.request_id, None)
                if waiting is not None:
                    _resolve(*waiting, engine_lib.Reply(message.status, message.body, message.retry_after))
            elif isinstance(message, messages.Log):
                self.log(f"{worker.name}: {message.text}" if len(self._workers) > 1 else message.text)
            elif isinstance(message, messages.Ready):
                worker.models = message.models
                worker.ready.set()
        # The pipe closed: the worker ended. Its requests in flight are answered now, not left hanging.
        process.join(timeout=5)
        worker.ready.clear()
        with worker.sending:
            stranded, worker.in_flight = worker.in_flight, {}
        for waiting in stranded.values():
            _resolve(
                *waiting,
                engine_lib.error_reply(
                    ServerBusy("the model worker answering this request stopped; try again in a moment")
                ),
            )
        if self._closing:
            return
        if self._starting and worker.models is None:
            worker.ready.set()  # it died while loading, at start: start() reports it, rather than retrying for ever
            return
        self.restarts += 1
        self.log(
            f"{worker.name} (pid {worker.pid}) ended ({processes.how_it_ended(process.exitcode)}); starting a new one"
        )
        if worker.models is None:
            time.sleep(1)  # a replacement that died loading: do not spin
        self._spawn(worker)


def _resolve(loop, future, reply):
    def settle():
        if not future.done():
            future.set_result(reply)

    with contextlib.suppress(RuntimeError):  # the loop closed: the server is gone, nobody waits
        loop.call_soon_threadsafe(settle)

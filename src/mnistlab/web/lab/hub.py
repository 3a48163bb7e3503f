"""Live progress: the training workers' events, numbered in one sequence, to every browser that follows (SSE)."""

import asyncio
import collections
import threading
import time

from mnistlab.core.events import EventKind, RunStatus

HEARTBEAT_SECONDS = 15  # an SSE comment this often keeps proxies from closing a quiet stream
RECENT_EVENTS = 2000  # across runs, for the runs view
FINISHED_SECONDS = 300  # a finished run's events are kept this long (a page that follows it reads its end)
FINISHED_RUNS = 200  # and for this many finished runs at most: the hub stays small however long the lab runs
LIVE = (RunStatus.QUEUED, RunStatus.RUNNING)  # a run in these may still send events


def finished(event):
    """Whether EVENT says its run has ended (a status other than queued or running)."""
    return event["kind"] == EventKind.STATUS and event["status"] not in LIVE


class Hub:
    """Progress events by run, numbered in one sequence, for Server-Sent Events.

    Training workers publish from their threads; followers are async generators on the server's event loop,
    woken through `call_soon_threadsafe`. Per run the hub keeps the status events, every epoch and the latest
    step (enough to draw a run's curve for a browser that comes late), until FINISHED_SECONDS after the run
    ended (and for FINISHED_RUNS ended runs at most); across runs, the last RECENT_EVENTS events.
    """

    def __init__(self, recent=RECENT_EVENTS, clock=time.monotonic):
        self._lock = threading.Lock()
        self._sequence = 0
        self._by_run = {}
        self._ended = collections.OrderedDict()  # run id -> when it ended, oldest first
        self._recent = collections.deque(maxlen=recent)
        self._waiters = set()
        self._latest = {}  # run id -> its latest step or epoch event (the runs view's progress column)
        self._clock = clock

    @property
    def sequence(self):
        return self._sequence

    def runs_kept(self):
        """The runs whose events the hub keeps."""
        with self._lock:
            return set(self._by_run)

    def publish(self, run_id, event):
        with self._lock:
            self._sequence += 1
            event = {**event, "run_id": run_id, "seq": self._sequence}
            kept = self._by_run.setdefault(run_id, [])
            if event["kind"] == EventKind.STEP and kept and kept[-1]["kind"] == EventKind.STEP:
                kept[-1] = event  # only the latest step within an epoch is worth replaying
            else:
                kept.append(event)
            if event["kind"] in (EventKind.STEP, EventKind.EPOCH):
                self._latest[run_id] = event
            elif finished(event):
                self._latest.pop(run_id, None)
            self._ended.pop(run_id, None)
            if finished(event):
                self._ended[run_id] = self._clock()
            self._prune()
            self._recent.append(event)
            waiters = list(self._waiters)
        for loop, flag in waiters:
            loop.call_soon_threadsafe(flag.set)

    def _prune(self):
        """Drop the events of runs that ended FINISHED_SECONDS ago, and of the oldest past FINISHED_RUNS."""
        now = self._clock()
        while self._ended:
            run_id, ended = next(iter(self._ended.items()))
            if now - ended < FINISHED_SECONDS and len(self._ended) <= FINISHED_RUNS:
                break
            del self._ended[run_id]
            self._by_run.pop(run_id, None)

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

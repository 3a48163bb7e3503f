"""The lab's hub keeps a run's events while a page may still follow it, and lets a finished run's go: after
FINISHED_SECONDS, and past FINISHED_RUNS finished runs, so that a lab that runs for weeks does not grow."""

from mnistlab.web.lab import hub as hub_lib


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def run_through(hub, run_id, status="done"):
    hub.publish(run_id, {"kind": "status", "status": "running"})
    hub.publish(run_id, {"kind": "epoch", "epoch": 1})
    hub.publish(run_id, {"kind": "status", "status": status})


def test_a_finished_runs_events_go_a_while_after_it_ends():
    clock = Clock()
    hub = hub_lib.Hub(clock=clock)
    run_through(hub, 1)
    hub.publish(2, {"kind": "status", "status": "running"})  # still training
    assert hub.runs_kept() == {1, 2}  # a page that opens run 1 now still reads its end
    clock.now = hub_lib.FINISHED_SECONDS - 1
    hub.publish(2, {"kind": "step", "epoch": 1, "step": 3})
    assert hub.runs_kept() == {1, 2}
    clock.now = hub_lib.FINISHED_SECONDS + 1
    hub.publish(2, {"kind": "step", "epoch": 1, "step": 4})
    assert hub.runs_kept() == {2}  # the running run's events stay, however long it trains
    assert hub.latest(2)["step"] == 4 and hub.latest(1) is None


def test_at_most_so_many_finished_runs_are_kept():
    hub = hub_lib.Hub(clock=Clock())  # no time passes: the bound alone
    for run_id in range(1, hub_lib.FINISHED_RUNS + 51):
        run_through(hub, run_id, status="failed" if run_id % 2 else "done")
    kept = hub.runs_kept()
    assert len(kept) == hub_lib.FINISHED_RUNS and min(kept) == 51  # the oldest went first


def test_a_run_queued_again_is_kept_again():
    clock = Clock()
    hub = hub_lib.Hub(clock=clock)
    run_through(hub, 7, status="cancelled")
    hub.publish(7, {"kind": "status", "status": "queued"})  # the same id back in the queue: live again
    clock.now = hub_lib.FINISHED_SECONDS + 1
    hub.publish(8, {"kind": "status", "status": "queued"})
    assert hub.runs_kept() == {7, 8}

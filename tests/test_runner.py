"""A training in its own process: the result comes back; a user's error as one line, a bug with its traceback."""

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import process_stat, still_running
from mnistlab.core.config import Config, knobs
from mnistlab.core.errors import RunDirError, RunFailed
from mnistlab.jobs import runner

TINY = dict(hidden_units=(8,), epochs=1, limit=200, dataset="mnist-mini", backend="jax")


def test_result_comes_back_and_the_run_directory_is_written(tmp_path):
    metrics = runner.run_isolated(Config(**TINY), tmp_path / "run", run_id=7, group="g", quiet=True)
    assert metrics["status"] == "done" and metrics["run_id"] == 7 and metrics["group"] == "g"
    assert (tmp_path / "run" / "metrics.json").exists() and (tmp_path / "run" / "model.keras").exists()


@pytest.mark.slow  # a training process; the quick loop runs two
def test_a_user_error_is_one_line_without_traceback(tmp_path):
    with pytest.raises(RunFailed, match="no-such-dataset") as caught:
        runner.run_isolated(
            Config(**{**TINY, "dataset": str(tmp_path / "no-such-dataset.npz")}), tmp_path / "run", quiet=True
        )
    assert caught.value.traceback is None


def test_a_bug_brings_its_traceback(tmp_path):
    # config.json taken by a directory: the worker's write fails, which no user input explains.
    (tmp_path / "run" / "config.json").mkdir(parents=True)
    with pytest.raises(RunFailed, match="IsADirectoryError") as caught:
        runner.run_isolated(Config(**TINY), tmp_path / "run", quiet=True)
    assert caught.value.traceback.startswith("Traceback") and "rundir.py" in caught.value.traceback


def test_a_run_directory_that_cannot_be_made_is_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(RunDirError, match="cannot create the run directory"):
        runner.run_isolated(Config(**TINY), blocker, quiet=True)


@pytest.mark.slow  # a training process; the quick loop runs two
def test_the_workers_stderr_is_kept_in_its_run_directory(tmp_path):
    runner.run_isolated(Config(**TINY), tmp_path / "run", quiet=False)
    log = (tmp_path / "run" / "worker.log").read_text()
    assert "val_accuracy: " in log  # Keras' epoch line, written by the worker to its stderr


def test_a_child_stopped_as_it_starts_is_a_run_that_ended_not_a_broken_pipe(tmp_path):
    """The lab stops a run cancelled (or the lab stopping) in on_start, before its request is written:
    that must end as RunFailed saying how the child ended (the lab records it interrupted), never as a
    BrokenPipeError that leaves its row `running`."""

    def stop_at_once(child):
        child.kill()
        child.wait()  # its end of the pipe is closed before the request is written

    with pytest.raises(RunFailed, match=r"killed by signal 9 \(SIGKILL\)"):
        runner.run_isolated(
            Config(family="mlp", hidden_units=(8,), epochs=1, limit=100, dataset="mnist-mini"),
            tmp_path / "run",
            on_start=stop_at_once,
        )


@pytest.mark.slow  # two training processes and four runs; the quick loop runs one of each kind
def test_a_kept_child_trains_the_next_run_as_a_fresh_one_would(tmp_path):
    """Trainers keep a child for the next run of its backend: that run's numbers and layer names are a fresh
    process's, each run's log holds its own lines only, and a child whose run failed is not kept. The first run
    trains from a thread that ends before the next starts, as each run of the lab does: the child outlives it."""
    import json
    import threading
    import zipfile

    def layer_names(run_dir):
        with zipfile.ZipFile(run_dir / "model.keras") as archive:
            return [layer["config"]["name"] for layer in json.loads(archive.read("config.json"))["config"]["layers"]]

    fresh = runner.run_isolated(Config(**TINY, seed=1), tmp_path / "fresh", quiet=False)
    pids = []
    keep_pid = lambda child: pids.append(child.pid)  # noqa: E731
    with runner.Trainers() as trainers:
        first = threading.Thread(
            target=runner.run_isolated,
            args=(Config(**TINY, seed=2), tmp_path / "a"),
            kwargs=dict(quiet=False, on_start=keep_pid, trainers=trainers),
        )
        first.start()
        first.join()
        assert (tmp_path / "a" / "metrics.json").exists()
        again = runner.run_isolated(
            Config(**TINY, seed=1), tmp_path / "b", quiet=False, on_start=keep_pid, trainers=trainers
        )
        with pytest.raises(RunFailed, match="no-such-dataset"):
            runner.run_isolated(
                Config(**{**TINY, "dataset": str(tmp_path / "no-such-dataset.npz")}),
                tmp_path / "c",
                quiet=True,
                on_start=keep_pid,
                trainers=trainers,
            )
        assert trainers.take("jax") is None  # c failed: its child was let go, and the next run gets a fresh one
    assert pids[0] == pids[1] == pids[2]  # kept for b and c
    for key in ("train_loss", "val_loss", "test_loss", "test_accuracy"):
        assert again[key] == fresh[key], key
    assert layer_names(tmp_path / "b") == layer_names(tmp_path / "fresh")
    for run in ("a", "b"):
        assert (tmp_path / run / "worker.log").read_text().count("val_accuracy: ") == 1, run


# A process that watches its parent as a training process does, then would sleep for ten minutes.
WATCHING_CHILD = """
import os, time
from mnistlab.jobs import runner
runner._die_with_parent(os.getppid())
print("watching", flush=True)
time.sleep(600)
"""
# Its parent: says the child's pid once the child watches, then waits for it.
PARENT = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]], stdout=subprocess.PIPE, text=True)
assert child.stdout.readline() == "watching\\n"
print(child.pid, flush=True)
child.wait()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the child is looked for in Linux's /proc")
def test_a_training_process_ends_when_its_parent_is_killed():
    """A sweep or lab killed with kill -9 takes its trainings with it, so no orphan finishes a run nobody records;
    and it is the parent process that counts, not the thread that started the child (see the kept-child test)."""
    parent = subprocess.Popen([sys.executable, "-c", PARENT, WATCHING_CHILD], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    started = process_stat(child)[19]
    parent.kill()
    parent.wait()
    deadline = time.time() + 60  # a wait for the state, not a bound on how fast: the child would sleep 10 minutes
    while still_running(child, started) and time.time() < deadline:
        time.sleep(0.05)
    orphan = still_running(child, started)
    if orphan:
        os.kill(child, signal.SIGKILL)
    assert not orphan, "the child outlived its parent"


@pytest.mark.slow  # a training process
@pytest.mark.skipif(sys.platform == "win32", reason="no SIGPIPE on Windows")
def test_a_training_process_whose_parent_is_gone_records_no_failure(tmp_path):
    """The parent's pipe broken as the child writes its progress (the parent died, and the child's watcher has not
    ended it yet): the child ends there, leaving its run unfinished for the store to reap as interrupted, not a
    failure of its own ("failed: BrokenPipeError") in its run directory."""
    import json

    config = Config(hidden_units=(16,), epochs=knobs.MAX_EPOCHS, limit=300, dataset="mnist-mini", backend="jax")
    # Its parent is this process, alive: only the broken pipe can end the child.
    request = runner.request_for(config, tmp_path / "run", quiet=True, progress=True)
    child = subprocess.Popen(
        [sys.executable, "-m", "mnistlab.jobs.runner"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        child.stdin.write(json.dumps(request).encode() + b"\n")
        child.stdin.flush()
        assert child.stdout.readline().startswith(runner.PROGRESS_PREFIX.encode())  # training, and saying so
        child.stdout.close()  # as a dead parent's end of the pipe
        assert child.wait(timeout=120) == -signal.SIGPIPE
    finally:
        if child.poll() is None:
            child.kill()
    assert (tmp_path / "run" / "config.json").exists() and not (tmp_path / "run" / "metrics.json").exists()

"""Run one training in its own Python process.

Keras fixes its backend at import, so runs that need different backends (the
CNN on TensorFlow, the MLP on JAX) each get a fresh interpreter. The child is
`python -m mnistlab.jobs.runner` reading a JSON request on stdin and writing the
metrics as the last line of stdout; asked for progress (the lab), it also
writes one `MNISTLAB_PROGRESS {json}` line per event as training goes, which
the parent reads from the pipe as they come. The child writes only its run directory;
the parent, which drives the runs, is the one that records them in the store.
"""

import contextlib
import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import traceback

from mnistlab.core import fileio, processes
from mnistlab.core.config import Config
from mnistlab.core.errors import MnistlabError, RunDirError, RunFailed
from mnistlab.ml import train
from mnistlab.record import rundir

RESULT_PREFIX = "MNISTLAB_RESULT "
PROGRESS_PREFIX = "MNISTLAB_PROGRESS "


def _die_with_parent(parent_pid):
    """Ask Linux to SIGKILL this process when its parent dies.

    So a sweep killed with `kill -9` takes its trainings with it, and their
    store rows (still `running`, with a dead pid) are reaped as interrupted,
    instead of orphans finishing unseen. The child asks for it itself, first
    thing, rather than through subprocess' preexec_fn, which would make the
    parent fork a process full of JAX or TensorFlow threads (unsafe, and
    Python warns) instead of spawning. If the parent died before the call,
    nobody is left to collect the result: stop now.
    """
    if not sys.platform.startswith("linux"):
        return  # elsewhere orphans finish on their own
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return
    PR_SET_PDEATHSIG = 1
    prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
    if parent_pid and os.getppid() != parent_pid:
        os._exit(1)


LOG_TAIL_LINES = 12  # of the worker's log, quoted in the message of a run that died


def run_job(job, run_dir, run_id, **options):
    """`run_isolated` for a planned job (a `sweep.Job`: its config, preset and group) and its store row."""
    return run_isolated(job.config, run_dir, preset=job.preset, run_id=run_id, group=job.group, **options)


def run_isolated(config, run_dir, preset=None, run_id=None, group=None, quiet=False, on_start=None, on_progress=None):
    """Train `config` in a child process that writes RUN_DIR; return its metrics dict.

    `on_start(child)`: told the child's `subprocess.Popen` once it runs (the lab
    kills it to cancel a run). `on_progress(event)`: told each progress event
    of `train.train` (epoch rows, steps within an epoch) as the child makes it.

    The child's stderr (progress, warnings, native log lines) goes to
    RUN_DIR/worker.log, and to this process' stderr too unless `quiet`. A
    failure raises RunFailed: with the child's one-line message for a user
    error, its traceback when the failure is a bug, and for a child that died
    without a word, how it ended (signal or exit code, and whether the kernel
    killed it for memory) and the last lines of its log.
    """
    run_dir = _made(run_dir)
    log_path = run_dir / rundir.WORKER_LOG
    request = {
        "config": config.to_dict(),
        "preset": preset,
        "run_dir": str(run_dir),
        "run_id": run_id,
        "group": group,
        "verbose": 0 if quiet else 2,
        "parent_pid": os.getpid(),
        "progress": on_progress is not None,
    }
    kills_before = processes.oom_kills()
    with open(log_path, "ab") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "mnistlab.jobs.runner"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        relay = threading.Thread(
            target=_relay, args=(child.stderr, log, None if quiet else sys.stderr.buffer), daemon=True
        )
        relay.start()
        if on_start is not None:
            on_start(child)
        # Not communicate(): the relay thread is the one reader of stderr. A child stopped by
        # on_start (a run cancelled, or the lab stopping, as it started) has closed its end: that
        # is how it ended, said below as for any child that ends early, not a BrokenPipeError.
        with contextlib.suppress(BrokenPipeError):
            child.stdin.write(json.dumps(request).encode())
        with contextlib.suppress(BrokenPipeError):
            child.stdin.close()
        result = _read_output(child.stdout, on_progress)
        child.stdout.close()
        child.wait()
        relay.join()
    if result is None:
        cause = processes.how_it_ended(child.returncode, kills_before, processes.oom_kills())
        raise RunFailed(
            f"training {preset or config.family} (seed {config.seed}) died in its worker process: {cause}; its log is {log_path}"
            + _tail(log_path)
        )
    if "error" in result:
        raise RunFailed(result["error"], traceback=result.get("traceback"))
    return result


def _made(run_dir):
    run_dir = pathlib.Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunDirError(
            f"{run_dir}: cannot create the run directory ({error.strerror}); choose another --out"
        ) from None
    return run_dir


def _read_output(stdout, on_progress):
    """The child's result, read line by line as they come: progress events are passed on at once."""
    result = None
    for raw in stdout:
        line = raw.decode("utf-8", errors="replace")
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX) :])
        elif line.startswith(PROGRESS_PREFIX) and on_progress is not None:
            on_progress(json.loads(line[len(PROGRESS_PREFIX) :]))
    return result


def _relay(source, log, terminal):
    """Copy the child's stderr into its log (and to the terminal), line by line, as it comes."""
    for line in iter(source.readline, b""):
        log.write(line)
        log.flush()
        if terminal is not None:
            try:
                terminal.write(line)
                terminal.flush()
            except (OSError, ValueError):
                terminal = None  # the terminal went away: the log still gets everything
    source.close()


def _tail(path, lines=LOG_TAIL_LINES):
    try:
        text = pathlib.Path(path).read_text(errors="replace").rstrip()
    except OSError:
        return ""
    if not text:
        return " (empty: it died before writing anything)"
    return "; its last lines:\n" + "\n".join("  | " + line for line in text.splitlines()[-lines:])


def _progress_writer(stream):
    """A `progress` function for train.train writing one PROGRESS_PREFIX line per event to STREAM (flushed: the parent reads as they come)."""
    lock = threading.Lock()  # Keras may call the step hook from its own thread

    def write(event):
        line = PROGRESS_PREFIX + fileio.dumps(event) + "\n"
        with lock:
            stream.write(line)
            stream.flush()

    return write


def _child():
    request = json.loads(sys.stdin.read())
    _die_with_parent(request.get("parent_pid"))
    try:
        config = Config.from_dict(request["config"])
        recorder = rundir.Recorder(request["run_dir"], run_id=request.get("run_id"), group=request.get("group"))
        # Keras' own progress to stderr, so that stdout carries only our lines.
        sys.stdout = sys.stderr
        progress = _progress_writer(sys.__stdout__) if request.get("progress") else None
        metrics = train.train(
            config, preset=request["preset"], recorder=recorder, verbose=request["verbose"], progress=progress
        ).metrics
    except MnistlabError as error:  # the user's: one line
        result = {"error": str(error)}
    except Exception as error:  # a bug: the parent shows the traceback
        result = {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}
    else:
        result = metrics
    finally:
        sys.stdout = sys.__stdout__
    try:
        line = fileio.dumps(result)
    except TypeError as error:  # a metric of an unknown type: a bug, said with its key
        line = fileio.dumps({"error": f"TypeError: {error}", "traceback": traceback.format_exc()})
    print(RESULT_PREFIX + line, flush=True)
    return 0 if "error" not in result else 2


if __name__ == "__main__":
    sys.exit(_child())

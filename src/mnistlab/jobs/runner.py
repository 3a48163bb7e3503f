"""Run trainings in Python processes of their own.

Keras fixes its backend at import, so runs that need different backends (the CNN on TensorFlow, the MLP on JAX)
each need an interpreter of that backend. The child is `python -m mnistlab.jobs.runner`: it reads one JSON request
a line on stdin and answers each with its metrics on one `MNISTLAB_RESULT {json}` line of stdout; asked for
progress (the lab), it also writes one `MNISTLAB_PROGRESS {json}` line per event as training goes, which the
parent reads from the pipe as they come. After each run it writes an end mark on stderr, so that the parent knows
where that run's log ends. The child writes only its run directories; the parent, which drives the runs, is the
one that records them in the store.

A caller holding `Trainers` (each worker of a sweep) keeps its child for the next run of the same backend; any
other call gets a child that exits after its run.
"""

import contextlib
import gc
import json
import os
import pathlib
import select
import signal
import subprocess
import sys
import threading
import time
import traceback

from mnistlab.core import fileio, processes
from mnistlab.core.config import Config
from mnistlab.core.errors import MnistlabError, RunDirError, RunFailed
from mnistlab.ml import backend as backend_lib
from mnistlab.ml import train
from mnistlab.record import rundir

RESULT_PREFIX = "MNISTLAB_RESULT "
PROGRESS_PREFIX = "MNISTLAB_PROGRESS "


def _die_with_parent(parent_pid):
    """Exit as soon as the parent process dies.

    So a sweep or lab killed with `kill -9` takes its trainings with it, and their store rows (still `running`,
    with a dead pid) are reaped as interrupted, instead of orphans finishing unseen. Not Linux's PR_SET_PDEATHSIG:
    it fires when the parent *thread* that started the child exits, and a kept child outlives the thread of the run
    that started it (a sweep's pool thread, each lab run's); it would be killed between runs, or as its next one
    starts. A thread of the child waits on a pidfd of the parent process instead (Linux 5.3 and later), or looks
    at its parent once a second elsewhere (macOS). If the parent died before this call, nobody is left to collect
    the result: stop now. Not on Windows, where orphans finish on their own: a virtual environment's python.exe
    is a launcher that starts the real interpreter as its child, so the child's parent is the launcher, and a
    dead parent's pid stays the child's `getppid()`.
    """
    if not parent_pid or sys.platform == "win32":
        return
    # A write to the parent's pipes (progress on stdout, the log on stderr) after it died ends this process too,
    # as the watcher below would: as a BrokenPipeError it became the run's failure, and a lab killed with kill -9
    # left "failed: BrokenPipeError" in a run directory that should read unfinished (its row is reaped as
    # interrupted). The parent reads both pipes to their end, so only its death breaks them.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        handle = os.pidfd_open(parent_pid)
    except (AttributeError, OSError):  # not Linux 5.3+, or the parent is gone already
        handle = None
    # Checked after the pidfd is open: a parent still ours now is the process the pidfd refers to.
    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(
        target=_exit_when_gone, args=(parent_pid, handle), name="mnistlab-parent-watch", daemon=True
    ).start()


def _exit_when_gone(parent_pid, handle):
    if handle is not None:
        watch = select.poll()  # not select.select: it cannot take a descriptor numbered past 1023
        watch.register(handle, select.POLLIN)
        watch.poll()  # a pidfd reads ready once its process has ended
    else:
        while os.getppid() == parent_pid:
            time.sleep(1)
    os._exit(1)


LOG_TAIL_LINES = 12  # of the worker's log, quoted in the message of a run that died
END_OF_RUN = b"MNISTLAB_END_OF_RUN\n"  # on the child's stderr after each run: where that run's log ends
CLOSE_SECONDS = 30  # a kept child asked to exit (its stdin closed) has this long before it is killed


def run_job(job, run_dir, run_id, **options):
    """`run_isolated` for a planned job (a `sweep.Job`: its config, preset and group) and its store row."""
    return run_isolated(job.config, run_dir, preset=job.preset, run_id=run_id, group=job.group, **options)


class _Child:
    """A training process, and the thread that copies its stderr into the log of the run it is on."""

    def __init__(self):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mnistlab.jobs.runner"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._lock = threading.Lock()
        self._log = self._terminal = None
        self._run_ended = threading.Event()
        self._relay = threading.Thread(target=self._copy_stderr, daemon=True)
        self._relay.start()

    def begin(self, log, terminal):
        """Copy the child's stderr into LOG (and to TERMINAL, unless None) from now on."""
        with self._lock:
            self._log, self._terminal = log, terminal
            self._run_ended.clear()

    def end(self):
        """Wait until the run's last line is in its log: its end mark, or the child gone. The child writes the mark
        before its result, so once the result is read this waits only for the copy thread to catch up."""
        self._run_ended.wait()
        with self._lock:
            self._log = self._terminal = None

    def _copy_stderr(self):
        for line in iter(self.process.stderr.readline, b""):
            if line == END_OF_RUN:
                self._run_ended.set()
                continue
            with self._lock:
                log, terminal = self._log, self._terminal
                if log is None:  # between runs (a kept child's last words as it exits): this process' stderr
                    terminal = sys.stderr.buffer
                if log is not None:
                    log.write(line)
                    log.flush()
                if terminal is not None:
                    try:
                        terminal.write(line)
                        terminal.flush()
                    except (OSError, ValueError):  # the terminal went away: the log still gets everything
                        if log is not None:
                            self._terminal = None
        self.process.stderr.close()
        self._run_ended.set()

    def ask(self, request, last):
        """Send REQUEST; LAST: no other will follow (the child exits after it)."""
        # A child stopped by on_start (a run cancelled, or the lab stopping, as it started) has closed its end:
        # that is how it ended, said by the caller as for any child that ends early, not a BrokenPipeError.
        with contextlib.suppress(BrokenPipeError, OSError, ValueError):
            self.process.stdin.write(json.dumps(request).encode() + b"\n")
            self.process.stdin.flush()
        if last:
            with contextlib.suppress(BrokenPipeError, OSError, ValueError):
                self.process.stdin.close()

    def close(self):
        """Let the child exit (its stdin closed), or kill it if it will not; wait for it."""
        with contextlib.suppress(BrokenPipeError, OSError, ValueError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout=CLOSE_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._relay.join()
        self.process.stdout.close()


class Trainers:
    """Training processes kept for the next run, one per backend: a sweep's worker holds a set.

    Starting a Python with Keras and its backend costs about as much CPU as a short run on mnist-mini; a child
    kept for the next run of its backend pays it once per worker, not once per run.
    Only a child whose run succeeded is kept: one that failed or was stopped is let go.
    """

    def __init__(self):
        self._kept = {}

    def take(self, backend):
        child = self._kept.pop(backend, None)
        if child is not None and child.process.poll() is not None:
            child.close()  # died while idle: the run gets a fresh one
            return None
        return child

    def keep(self, backend, child):
        self._kept[backend] = child

    def close(self):
        while self._kept:
            self._kept.popitem()[1].close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def run_isolated(
    config,
    run_dir,
    preset=None,
    run_id=None,
    group=None,
    quiet=False,
    on_start=None,
    on_progress=None,
    trainers=None,
):
    """Train `config` in a child process that writes RUN_DIR; return its metrics dict.

    `on_start(child)`: told the child's `subprocess.Popen` once it runs (the lab
    kills it to cancel a run). `on_progress(event)`: told each progress event
    of `train.train` (epoch rows, steps within an epoch) as the child makes it.
    `trainers`: a `Trainers` whose child of the run's backend trains it, and
    keeps it for the next run; without, a child of its own, which exits after.

    The child's stderr for this run (progress, warnings, native log lines) goes to
    RUN_DIR/worker.log, and to this process' stderr too unless `quiet`. A
    failure raises RunFailed: with the child's one-line message for a user
    error, its traceback when the failure is a bug, and for a child that died
    without a word, how it ended (signal or exit code, and whether the kernel
    killed it for memory) and the last lines of its log.
    """
    run_dir = _made(run_dir)
    log_path = run_dir / rundir.WORKER_LOG
    try:
        # Chosen here, once: a kept child runs one backend and must not take "auto" for whatever it already runs.
        backend = backend_lib.resolve(config.backend, config.family, in_this_process=False)
    except MnistlabError as error:
        raise RunFailed(str(error)) from None
    request = request_for(
        config.replace(backend=backend), run_dir, preset, run_id, group, quiet, progress=on_progress is not None
    )
    kills_before = processes.oom_kills()
    child = (trainers.take(backend) if trainers is not None else None) or _Child()
    result = _exchange(child, request, log_path, quiet, on_start, on_progress, last=trainers is None)
    if result is None or "error" in result or trainers is None:
        child.close()
    else:
        trainers.keep(backend, child)
    if result is None:
        cause = processes.how_it_ended(child.process.returncode, kills_before, processes.oom_kills())
        raise RunFailed(
            f"training {preset or config.family} (seed {config.seed}) died in its worker process: {cause}; its log is {log_path}"
            + _tail(log_path)
        )
    if "error" in result:
        raise RunFailed(result["error"], traceback=result.get("traceback"))
    return result


def request_for(config, run_dir, preset=None, run_id=None, group=None, quiet=False, progress=False):
    """What a training process is asked, a JSON object on one line of its stdin: CONFIG (its backend resolved) to
    train into RUN_DIR, with this process as the parent it dies with, and PROGRESS lines on its stdout if asked."""
    return {
        "config": config.to_dict(),
        "preset": preset,
        "run_dir": str(run_dir),
        "run_id": run_id,
        "group": group,
        "verbose": 0 if quiet else 2,
        "parent_pid": os.getpid(),
        "progress": progress,
    }


def _exchange(child, request, log_path, quiet, on_start, on_progress, last):
    """Send CHILD its REQUEST and read its result (None: it ended without one), its stderr into LOG_PATH."""
    try:
        with open(log_path, "ab") as log:
            child.begin(log, None if quiet else sys.stderr.buffer)
            if on_start is not None:
                on_start(child.process)
            child.ask(request, last=last)
            result = _read_output(child.process.stdout, on_progress)
            child.end()
    except BaseException:  # Ctrl+C, or a progress listener's error: the child goes with the run
        child.process.kill()
        child.close()
        raise
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
    """The child's result, read line by line as they come (progress events are passed on at once); None if the
    child ended without one. Reading stops at the result: a kept child waits there for its next request."""
    for raw in iter(stdout.readline, b""):
        line = raw.decode("utf-8", errors="replace")
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
        if line.startswith(PROGRESS_PREFIX) and on_progress is not None:
            on_progress(json.loads(line[len(PROGRESS_PREFIX) :]))
    return None


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


def _train(request):
    """One request's run: its metrics, or {"error": ...} (with "traceback" for a bug)."""
    if "keras" in sys.modules:
        # A kept child's next run: drop the last one's model and Keras' counters, so that this run's numbers and
        # its layers' names are those of a fresh process.
        import keras

        keras.backend.clear_session()
        gc.collect()
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
        return {"error": str(error)}
    except Exception as error:  # a bug: the parent shows the traceback
        return {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}
    finally:
        sys.stdout = sys.__stdout__
    return metrics


def _child():
    """Train each request read from stdin (a JSON object a line) until stdin closes."""
    first = True
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        if first:
            _die_with_parent(request.get("parent_pid"))
            first = False
        result = _train(request)
        try:
            answer = fileio.dumps(result)
        except TypeError as error:  # a metric of an unknown type: a bug, said with its key
            answer = fileio.dumps({"error": f"TypeError: {error}", "traceback": traceback.format_exc()})
        # The end mark first, then the result: once the parent has the result, this run's log is complete.
        sys.stderr.flush()
        sys.stderr.buffer.write(END_OF_RUN)
        sys.stderr.buffer.flush()
        print(RESULT_PREFIX + answer, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_child())

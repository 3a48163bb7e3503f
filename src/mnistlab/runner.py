"""Run one training in its own Python process.

Keras fixes its backend at import, so runs that need different backends (the
CNN on TensorFlow, the MLP on JAX) each get a fresh interpreter. The child is
`python -m mnistlab.runner` reading a JSON request on stdin and writing the
metrics as the last line of stdout. The child writes only its run directory;
the parent, which drives the runs, is the one that records them in the store.
"""

import json
import os
import subprocess
import sys
import traceback

from mnistlab import rundir, train
from mnistlab.config import Config
from mnistlab.errors import MnistlabError, RunFailed

RESULT_PREFIX = "MNISTLAB_RESULT "


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
    import signal

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return
    PR_SET_PDEATHSIG = 1
    prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
    if parent_pid and os.getppid() != parent_pid:
        os._exit(1)


def run_isolated(config, run_dir, preset=None, run_id=None, group=None, quiet=False):
    """Train `config` in a child process that writes RUN_DIR; return its metrics dict.

    Progress goes to this process' stderr (nowhere if `quiet`). A failure
    raises RunFailed: with the child's one-line message for a user error,
    and with its traceback when the failure is a bug.
    """
    request = {"config": config.to_dict(), "preset": preset, "run_dir": str(run_dir), "run_id": run_id, "group": group, "verbose": 0 if quiet else 2, "parent_pid": os.getpid()}
    completed = subprocess.run(
        [sys.executable, "-m", "mnistlab.runner"],
        input=json.dumps(request),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL if quiet else None,
        text=True,
    )
    result = None
    for line in completed.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX) :])
    if result is None:
        raise RunFailed(f"training {preset or config.family} (seed {config.seed}) died in its worker process (exit {completed.returncode})")
    if "error" in result:
        raise RunFailed(result["error"], traceback=result.get("traceback"))
    return result


def _child():
    request = json.loads(sys.stdin.read())
    _die_with_parent(request.get("parent_pid"))
    try:
        config = Config.from_dict(request["config"])
        recorder = rundir.Recorder(request["run_dir"], run_id=request.get("run_id"), group=request.get("group"))
        # Progress to stderr so that stdout carries only the result line.
        sys.stdout = sys.stderr
        metrics = train.train(config, preset=request["preset"], recorder=recorder, verbose=request["verbose"])
    except MnistlabError as error:  # the user's: one line
        result = {"error": str(error)}
    except Exception as error:  # a bug: the parent shows the traceback
        result = {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}
    else:
        result = metrics
    finally:
        sys.stdout = sys.__stdout__
    print(RESULT_PREFIX + json.dumps(result, default=str), flush=True)
    return 0 if "error" not in result else 2


if __name__ == "__main__":
    sys.exit(_child())

"""Run one training in its own Python process.

Keras fixes its backend at import, so runs that need different backends (the
CNN on TensorFlow, the MLP on JAX) each get a fresh interpreter. The child is
`python -m mnistlab.runner` reading a JSON request on stdin and writing the
metrics as the last line of stdout.
"""

import json
import os
import subprocess
import sys

from mnistlab.errors import MnistlabError

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


def run_isolated(config, preset=None, run_dir=None, verbose=2, env=None, timeout=None, store=True, group=None, quiet=False):
    """Train `config` (a Config) in a child process and return its metrics dict.

    The child records the run in `store` (True: the default store, a path,
    or False). Its progress goes to this process' stderr (nowhere if
    `quiet`); a failure raises MnistlabError with the child's error line.
    """
    request = {
        "config": config.to_dict(),
        "preset": preset,
        "run_dir": str(run_dir) if run_dir else None,
        "verbose": 0 if quiet else verbose,
        "store": store if isinstance(store, bool) else str(store),
        "group": group,
        "parent_pid": os.getpid(),
    }
    completed = subprocess.run(
        [sys.executable, "-m", "mnistlab.runner"],
        input=json.dumps(request),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL if quiet else None,
        text=True,
        env=env,
        timeout=timeout,
    )
    result = None
    for line in completed.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX) :])
    if result is None:
        raise MnistlabError(f"training {preset or config.model} (seed {config.seed}) died in its worker process (exit {completed.returncode})")
    if "error" in result:
        raise MnistlabError(result["error"])
    return result


def _child():
    request = json.loads(sys.stdin.read())
    _die_with_parent(request.get("parent_pid"))
    from mnistlab import train
    from mnistlab.config import Config

    try:
        config = Config.from_dict(request["config"])
        # Progress to stderr so that stdout carries only the result line.
        sys.stdout = sys.stderr
        metrics = train.train(config, run_dir=request["run_dir"], name=request["preset"], verbose=request["verbose"], store=request.get("store", True), group=request.get("group"))
        sys.stdout = sys.__stdout__
    except Exception as error:  # reported to the parent, which retries or records it
        sys.stdout = sys.__stdout__
        message = str(error) if isinstance(error, MnistlabError) else f"{type(error).__name__}: {error}"
        print(RESULT_PREFIX + json.dumps({"error": message}), flush=True)
        return 2
    print(RESULT_PREFIX + json.dumps(metrics), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_child())

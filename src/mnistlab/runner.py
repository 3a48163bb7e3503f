"""Run one training in its own Python process.

Keras fixes its backend at import, so runs that need different backends (the
CNN on TensorFlow, the MLP on JAX) each get a fresh interpreter. The child is
`python -m mnistlab.runner` reading a JSON request on stdin and writing the
metrics as the last line of stdout.
"""

import json
import subprocess
import sys

from mnistlab.errors import MnistlabError

RESULT_PREFIX = "MNISTLAB_RESULT "


def run_isolated(config, preset=None, run_dir=None, verbose=2, env=None, timeout=None):
    """Train `config` (a Config) in a child process and return its metrics dict.

    The child's progress goes to this process' stderr; a failure raises
    MnistlabError with the child's last error line.
    """
    request = {"config": config.to_dict(), "preset": preset, "run_dir": str(run_dir) if run_dir else None, "verbose": verbose}
    completed = subprocess.run(
        [sys.executable, "-m", "mnistlab.runner"],
        input=json.dumps(request),
        stdout=subprocess.PIPE,
        stderr=None,
        text=True,
        env=env,
        timeout=timeout,
    )
    result = None
    for line in completed.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX) :])
    if result is None:
        raise MnistlabError(f"training {preset or config.model} failed in its worker process (exit {completed.returncode})")
    if "error" in result:
        raise MnistlabError(result["error"])
    return result


def _child():
    from mnistlab import train
    from mnistlab.config import Config

    request = json.loads(sys.stdin.read())
    try:
        config = Config.from_dict(request["config"])
        # Progress to stderr so that stdout carries only the result line.
        sys.stdout = sys.stderr
        metrics = train.train(config, run_dir=request["run_dir"], name=request["preset"], verbose=request["verbose"])
        sys.stdout = sys.__stdout__
    except MnistlabError as error:
        sys.stdout = sys.__stdout__
        print(RESULT_PREFIX + json.dumps({"error": str(error)}), flush=True)
        return 2
    print(RESULT_PREFIX + json.dumps(metrics), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_child())

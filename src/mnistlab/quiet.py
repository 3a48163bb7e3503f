"""Keep the libraries' native log lines out of a learner's terminal.

TensorFlow, XLA and absl write C++ log lines straight to file descriptor 2
("I0000 ... oneDNN custom operations are on", "E0000 ... NodeDef mentions
attribute ...", "WARNING: All log messages before absl::InitializeLog()"),
whatever TF_CPP_MIN_LOG_LEVEL says, and read as errors though nothing is
wrong. The command line (not the library) routes descriptor 2 through a
filter for the length of one command: known-harmless lines are dropped,
everything else passes unchanged, in order. `--verbose` turns it off.
Worker processes inherit the filtered descriptor, so their noise goes too.
"""

import contextlib
import os
import re
import sys
import threading

NOISE = tuple(
    re.compile(pattern)
    for pattern in (
        r"^WARNING: All log messages before absl::InitializeLog\(\) is called",
        r"^[IWEF]\d{4} [\d:.]+\s+\d+ [\w.\-/]+:\d+\] ",  # absl/glog-format C++ lines (TensorFlow, XLA)
        r"^WARNING:tensorflow:",
        r"TF freezing failed|Attempting to fix freezing errors",  # tf2onnx, on exports that then succeed
        r"FutureWarning: In the future `np\.object` will be defined",  # an old NumPy alias probed by a dependency
        r"RAY_AUTH|token authentication",  # Ray's notice about cluster tokens on a loopback cluster
    )
)


def is_noise(line):
    return any(pattern.search(line) for pattern in NOISE)


@contextlib.contextmanager
def filtered_stderr(enabled=True):
    """Within the block, lines written to descriptor 2 that `is_noise` are dropped."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    original = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump():
        dropping_context = False
        with os.fdopen(read_end, "rb") as source:
            for raw in source:
                line = raw.decode("utf-8", errors="replace")
                # A dropped Python warning is followed by its indented source line.
                if dropping_context and line[:1].isspace():
                    dropping_context = False
                    continue
                dropping_context = False
                if is_noise(line):
                    dropping_context = "Warning:" in line
                    continue
                os.write(original, raw)

    thread = threading.Thread(target=pump, name="mnistlab-stderr-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(original, 2)  # closes our copy of the pipe's write end: the pump sees the end
        thread.join(timeout=2)  # a leftover daemon (Ray) may hold a copy; do not wait for it
        os.close(original)

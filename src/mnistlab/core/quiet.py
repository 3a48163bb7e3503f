"""Keep the libraries' known-harmless native log lines out of a learner's terminal, and nothing else.

TensorFlow, XLA and absl write C++ log lines straight to file descriptor 2,
whatever TF_CPP_MIN_LOG_LEVEL says, and some read as errors though nothing
is wrong. The command line (not the library) routes descriptor 2 through a
filter for the length of one command. It drops only what `BENIGN` lists,
each entry with why it is harmless; everything else passes unchanged and in
order: every F (fatal) and E (error) line that is not listed, every warning,
every traceback. `--verbose` turns the filter off. Worker processes inherit
the filtered descriptor.

The filter never holds its process up: if the terminal goes away, the pump
goes on draining the pipe (and drops what it cannot write), so a program
writing to stderr never blocks on a full pipe.
"""

import contextlib
import dataclasses
import os
import re
import sys
import threading

# absl/glog's C++ line header: level letter, MMDD, time, thread id, file:line]
_HEADER = r"\d{4} [\d:.]+\s+\d+ [\w.\-/]+:\d+\] "


@dataclasses.dataclass(frozen=True)
class Benign:
    pattern: str  # matched from the line's start
    why: str
    # A Python warning prints its source line next, indented: dropped with it.
    with_source_line: bool = False

    def matches(self, line):
        return re.match(self.pattern, line) is not None


BENIGN = (
    Benign(
        r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$",
        "absl's notice that its logging is not configured yet; it says nothing about the run",
    ),
    Benign(
        "I" + _HEADER,
        "info-level C++ lines (TensorFlow, XLA), e.g. 'oneDNN custom operations are on': notes, not problems (only level I; W, E and F lines pass)",
    ),
    Benign(
        "E"
        + _HEADER
        + r"NodeDef mentions attribute use_unbounded_threadpool which is not in the op definition: Op<name=MapDataset",
        "tf.data's Python side sets a MapDataset attribute that this TensorFlow's C++ op registry does not declare; the op ignores it (it appears once per TensorFlow fit, results unchanged)",
    ),
    Benign(
        r"\S*keras/src/export/tf2onnx_lib\.py:\d+: FutureWarning: In the future `np\.object` will be defined as the corresponding NumPy scalar\.$",
        "Keras' ONNX export probes NumPy for the removed np.object alias with hasattr() and handles its absence; NumPy warns on the probe itself",
        with_source_line=True,
    ),
    Benign(
        r"(WARNING:tf2onnx[^ ]*:)?.*TF freezing failed\. Attempting to fix freezing errors\.$",
        "tf2onnx's first freezing attempt of a Keras 3 graph fails and its own second attempt succeeds; export then checks the ONNX model against Keras",
    ),
    Benign(
        r"(WARNING:tf2onnx[^ ]*:)?Removed MatMul \S+/AssignVariableOp$",
        "tf2onnx drops the variable assignments that a recurrent layer's graph carries (the state it would write back), which inference never runs; export then checks every output against Keras",
    ),
)


def benign_entry(line):
    """The BENIGN entry LINE (one line, without or with its newline) matches, or None."""
    line = line.rstrip("\r\n")
    return next((entry for entry in BENIGN if entry.matches(line)), None)


def is_benign(line):
    """Whether LINE is on the known-harmless list."""
    return benign_entry(line) is not None


def _pump(read_end, original):
    """Copy lines from the pipe to the original stderr, dropping benign ones; never stop reading.

    The pump owns its copy of the original descriptor and closes it when the
    pipe ends, which can be after the block (a child still holding the pipe).
    """
    writable, source_line_next = True, False
    with os.fdopen(read_end, "rb") as source, os.fdopen(original, "wb", buffering=0, closefd=True):
        for raw in source:
            try:
                line = raw.decode("utf-8", errors="replace")
                if source_line_next and line[:1].isspace():  # the dropped warning's source line
                    source_line_next = False
                    continue
                entry = benign_entry(line)
                source_line_next = bool(entry and entry.with_source_line)
                if entry is not None or not writable:
                    continue
                os.write(original, raw)
            except OSError:
                # The terminal is gone (closed, broken pipe): keep draining so
                # that the process writing never blocks, but write no more.
                writable = False


@contextlib.contextmanager
def filtered_stderr(enabled=True):
    """Within the block, lines written to descriptor 2 that `is_benign` are dropped; the rest pass."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    original = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    thread = threading.Thread(target=_pump, args=(read_end, original), name="mnistlab-stderr-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(original, 2)  # closes our copy of the pipe's write end: the pump sees the end
        thread.join(timeout=2)  # a leftover child (a Ray worker) may hold a copy; do not wait for it

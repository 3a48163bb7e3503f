"""The stderr filter drops exactly its known-benign lines, passes every other line, and never blocks."""

import subprocess
import sys
import textwrap

import pytest

from mnistlab.core import quiet

# Real lines, as TensorFlow, XLA and absl print them.
BENIGN_LINES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796162067.476568    7029 port.cc:153] oneDNN custom operations are on. You may see slightly different numerical results due to floating-point round-off errors from different computation orders.",
    "E0000 00:00:1796162071.992580    7029 node_def_util.cc:682] NodeDef mentions attribute use_unbounded_threadpool which is not in the op definition: Op<name=MapDataset; signature=input_dataset:variant, other_arguments: -> handle:variant>",
    "/work/main/.venv/lib/python3.11/site-packages/keras/src/export/tf2onnx_lib.py:21: FutureWarning: In the future `np.object` will be defined as the corresponding NumPy scalar.",
]
KEPT_LINES = [
    "F0000 00:00:1796162071.992580    7029 cuda_dnn.cc:535] Check failed: status == CUDNN_STATUS_SUCCESS (7 vs. 0)",
    "E0000 00:00:1796162072.101011    7029 bfc_allocator.cc:485] Allocator (GPU_0_bfc) ran out of memory trying to allocate 2.00GiB",
    "W0000 00:00:1796162072.101011    7029 bfc_allocator.cc:296] Allocator (GPU_0_bfc) ran out of memory trying to allocate 1.50GiB with freed_by_count=0.",
    "E0000 00:00:1796162071.992580    7029 node_def_util.cc:682] NodeDef mentions attribute some_other_attribute which is not in the op definition: Op<name=Conv2D>",
    "WARNING:tensorflow:5 out of the last 5 calls to <function f> triggered tf.function retracing.",
    "ray: token authentication is disabled for this Ray cluster.",
    "Traceback (most recent call last):",
    "RuntimeWarning: overflow encountered in exp",
    "/site-packages/somewhere/else.py:3: FutureWarning: In the future `np.object` will be defined as the corresponding NumPy scalar.",
    '  if not hasattr(np, "object"):',  # a source line after a warning that was kept
]


@pytest.mark.parametrize("line", BENIGN_LINES)
def test_known_benign_lines_are_dropped(line):
    assert quiet.is_benign(line) and quiet.is_benign(line + "\n")


@pytest.mark.parametrize("line", KEPT_LINES)
def test_errors_fatal_lines_and_warnings_pass(line):
    assert not quiet.is_benign(line)


def test_every_benign_entry_says_why():
    assert all(len(entry.why) > 30 for entry in quiet.BENIGN)


def _run(body, timeout=30):
    script = textwrap.dedent(
        """
        import os, sys
        from mnistlab.core import quiet
        """
    ) + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout)


def test_through_descriptor_two_only_benign_lines_go_and_order_is_kept():
    # A dropped Python warning takes its indented source line with it.
    lines = BENIGN_LINES + ['  if not hasattr(np, "object"):'] + KEPT_LINES
    body = f"""
        lines = {lines!r}
        with quiet.filtered_stderr():
            for line in lines:
                os.write(2, (line + "\\n").encode())
        """
    completed = _run(body)
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr.splitlines() == KEPT_LINES


def test_a_closed_terminal_never_blocks_the_writer():
    # The original stderr is a pipe whose reader has gone: every write to it
    # fails. The filter must keep draining, so 4 MB (far more than a pipe
    # holds) written to descriptor 2 still returns.
    body = """
        reader, writer = os.pipe()
        os.dup2(writer, 2)
        os.close(reader)
        import signal
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        with quiet.filtered_stderr():
            for _ in range(4096):
                os.write(2, b"x" * 1023 + b"\\n")
        print("returned")
        """
    completed = _run(body, timeout=60)
    assert completed.stdout.strip() == "returned", completed.stderr

"""The committed docs/chapter1.ipynb shows the chapter, not the machine that ran it.

Its outputs (stored by `python scripts/run_notebook.py --save`, for readers
on GitHub) must carry no native log lines (absl/TensorFlow's C++ format, or
absl's notice before its first line) and no absolute paths of the machine
that executed it. This reads the committed file; it does not run it
(tests/test_notebook.py does).
"""

import json
import re

from conftest import REPO

NOTEBOOK = REPO / "docs" / "chapter1.ipynb"
# absl/glog C++ lines: level letter, MMDD, a space (I0000 00:00:17... port.cc:153] ...); absl's notice.
LOG_LINES = (re.compile(r"^[IWEF]\d{4} ", re.MULTILINE), re.compile(r"WARNING: All log messages"))
MACHINE_PATHS = re.compile(r"/(?:work|tmp|home|root)/")


def output_texts():
    """(cell number, text) for every text output of every code cell: streams, text forms of results, errors; not images."""
    notebook = json.loads(NOTEBOOK.read_text())
    for number, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        for output in cell.get("outputs", []):
            if output["output_type"] == "stream":
                yield number, "".join(output["text"]) if isinstance(output["text"], list) else output["text"]
            elif output["output_type"] == "error":
                yield number, "\n".join(output["traceback"])
            else:
                for kind, value in output.get("data", {}).items():
                    if (
                        kind.startswith("text/") or kind == "application/json"
                    ):  # base64 images could hold "/tmp/" by chance
                        yield number, "".join(value) if isinstance(value, list) else str(value)


def test_the_committed_notebook_was_executed():
    """Otherwise the checks below would pass on a notebook without outputs."""
    notebook = json.loads(NOTEBOOK.read_text())
    code_cells = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert code_cells and all(cell.get("outputs") for cell in code_cells), [
        cell["source"][:60] for cell in code_cells if not cell.get("outputs")
    ]
    assert not any(output["output_type"] == "error" for cell in code_cells for output in cell["outputs"])


def test_outputs_carry_no_native_log_lines():
    found = [
        (number, line)
        for number, text in output_texts()
        for line in text.splitlines()
        if any(pattern.search(line) for pattern in LOG_LINES)
    ]
    assert not found, found[:5]


def test_outputs_carry_no_machine_paths():
    found = [
        (number, line) for number, text in output_texts() for line in text.splitlines() if MACHINE_PATHS.search(line)
    ]
    assert not found, found[:5]

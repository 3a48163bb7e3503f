"""Execute docs/chapter1.ipynb top to bottom (nbclient); --save writes the outputs back into the notebook.

    python scripts/run_notebook.py            # run it, fail on any error, print the time it took
    python scripts/run_notebook.py --save     # also store the outputs, for readers on GitHub

The notebook's runs go to a temporary directory (MNISTLAB_RUNS), never into the repository.
--save refuses outputs that carry native log lines (absl/TensorFlow) or this
machine's paths: what readers see must be the chapter's, not this machine's.
"""

import argparse
import os
import pathlib
import re
import sys
import tempfile
import time

import nbformat
from nbclient import NotebookClient

REPO = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "docs" / "chapter1.ipynb"
# absl/glog's C++ line header (level letter, MMDD, time...), and absl's notice before its first line.
LOG_LINE = re.compile(r"^(?:[IWEF]\d{4} \d|WARNING: All log messages before absl::InitializeLog)", re.MULTILINE)
# Absolute paths of a machine: the temporary directory, homes, checkouts like /work/...
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:work|tmp|home|root|Users|private|var/folders)/")
TEXT_KINDS = ("text/plain", "text/html", "text/markdown", "text/latex", "application/json")


def output_texts(notebook):
    """(cell number, text) of every text an output carries: streams, results' text forms, errors (not images)."""
    for number, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if output.get("output_type") == "stream":
                yield number, output.get("text", "")
            elif output.get("output_type") == "error":
                yield number, "\n".join(output.get("traceback", []))
            else:
                data = output.get("data", {})
                yield from ((number, str(data[kind])) for kind in TEXT_KINDS if kind in data)


def unclean_outputs(notebook):
    """What would not do in committed outputs: each as 'cell N: the line'."""
    found = []
    for number, text in output_texts(notebook):
        for line in text.splitlines():
            if LOG_LINE.search(line) or MACHINE_PATH.search(line):
                found.append(f"cell {number}: {line[:200]}")
    return found


def execute(path=NOTEBOOK, work=None, timeout=600):
    """Run every cell of PATH in a fresh kernel; return (executed notebook, seconds)."""
    notebook = nbformat.read(path, as_version=4)
    work = work or tempfile.mkdtemp(prefix="mnistlab-notebook-")
    os.environ["MNISTLAB_RUNS"] = str(work)  # the kernel inherits it
    os.environ.setdefault("MNISTLAB_DATA", str(pathlib.Path(work) / "data"))
    start = time.perf_counter()
    NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(work)}}
    ).execute()
    return notebook, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--save", action="store_true", help="write the executed notebook back to docs/chapter1.ipynb")
    args = parser.parse_args(argv)
    notebook, seconds = execute()
    print(f"{NOTEBOOK.relative_to(REPO)} ran top to bottom in {seconds:.0f} s")
    if args.save:
        unclean = unclean_outputs(notebook)
        if unclean:
            print("not saved: outputs carry log lines or machine paths:\n  " + "\n  ".join(unclean), file=sys.stderr)
            return 1
        for cell in notebook.cells:  # outputs only: execution counts and timings would churn every run
            cell.metadata.pop("execution", None)
        nbformat.write(notebook, NOTEBOOK)
    return 0


if __name__ == "__main__":
    sys.exit(main())

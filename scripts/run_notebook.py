"""Execute docs/chapter1.ipynb top to bottom (nbclient); --save writes the outputs back into the notebook.

    python scripts/run_notebook.py            # run it, fail on any error, print the time it took
    python scripts/run_notebook.py --save     # also store the outputs, for readers on GitHub

The notebook's runs go to a temporary directory (MNISTLAB_RUNS), never into the repository.
"""

import argparse
import os
import pathlib
import sys
import tempfile
import time

import nbformat
from nbclient import NotebookClient

REPO = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "docs" / "chapter1.ipynb"


def execute(path=NOTEBOOK, work=None, timeout=600):
    """Run every cell of PATH in a fresh kernel; return (executed notebook, seconds)."""
    notebook = nbformat.read(path, as_version=4)
    work = work or tempfile.mkdtemp(prefix="mnistlab-notebook-")
    os.environ["MNISTLAB_RUNS"] = str(work)  # the kernel inherits it
    os.environ.setdefault("MNISTLAB_DATA", str(pathlib.Path(work) / "data"))
    start = time.perf_counter()
    NotebookClient(notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(work)}}).execute()
    return notebook, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--save", action="store_true", help="write the executed notebook back to docs/chapter1.ipynb")
    args = parser.parse_args(argv)
    notebook, seconds = execute()
    print(f"{NOTEBOOK.relative_to(REPO)} ran top to bottom in {seconds:.0f} s")
    if args.save:
        for cell in notebook.cells:  # outputs only: execution counts and timings would churn every run
            cell.metadata.pop("execution", None)
        nbformat.write(notebook, NOTEBOOK)
    return 0


if __name__ == "__main__":
    sys.exit(main())

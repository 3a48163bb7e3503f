"""Do the backends agree at full size? Table 1.4.1 on Fashion-MNIST, 3 seeds, on several backends.

    python scripts/reproduce_fashion_backends.py [--rows 3] [--backends jax,tensorflow,torch] [RUNS_ROOT]

Runs, as a user would (each step one `mnistlab` command):

  1. mnistlab reproduce table-1.4.1 --rows ROWS --seeds 3 --dataset fashion-mnist --backends BACKENDS
     (the book's CNN, 10 epochs of the 60,000 training images, each run in its own process)
  2. mnistlab runs disagree table-1.4.1-rowN --by backend --json     -> docs/seeds/fashion/atlas-rowN.json

and writes the reproduced table (.md/.csv/.json, with every run's directory and its seconds per
epoch) to docs/seeds/fashion/. Fashion-MNIST comes from `apt-get install dataset-fashion-mnist`
(or Keras' download). RUNS_ROOT (default /tmp/mnistlab-fashion-backends) holds the runs and their
store: passing it again resumes (finished runs are not trained again), so a first pass over a
subset can be extended later. docs/experiments.md's "backends-fashion" block is rendered from
these files by scripts/render_docs.py.

The issue asked for rows 3 and 4 on jax, tensorflow and torch (18 runs, about two hours on the
2-core machine it ran on, where a JAX run of this CNN takes 11 minutes); the defaults are the
largest subset that fits in about an hour: row 3 on the three backends, 3 seeds each (9 runs).
"""

import argparse
import os
import pathlib
import sys

from make_seeds_figures import (
    mnistlab,  # one `mnistlab` command, echoed, its failure a one-line exit (scripts/ is on the path)
)

REPO = pathlib.Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "seeds" / "fashion"
TABLE = "table-1.4.1"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="3", help="rows of Table 1.4.1 (default 3)")
    parser.add_argument(
        "--backends", default="jax,tensorflow,torch", help="backends, comma-separated (default jax,tensorflow,torch)"
    )
    parser.add_argument(
        "root",
        nargs="?",
        default="/tmp/mnistlab-fashion-backends",
        help="runs root (default /tmp/mnistlab-fashion-backends)",
    )
    args = parser.parse_args()
    root = pathlib.Path(args.root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MNISTLAB_RUNS": str(root)}
    env.pop("KERAS_BACKEND", None)  # each run's backend is the one --backends names
    store = root / "runs.db"
    OUT.mkdir(parents=True, exist_ok=True)
    mnistlab(
        "reproduce",
        TABLE,
        "--rows",
        args.rows,
        "--seeds",
        3,
        "--dataset",
        "fashion-mnist",
        "--backends",
        args.backends,
        "--store",
        store,
        "--out",
        OUT,
        env=env,
    )
    for row in args.rows.split(","):
        atlas = mnistlab(
            "runs",
            "disagree",
            f"{TABLE}-row{row}",
            "--dataset",
            "fashion-mnist",
            "--by",
            "backend",
            "--json",
            "--store",
            store,
            env=env,
            capture=True,
        )
        (OUT / f"atlas-row{row}.json").write_text(atlas)
    print(f"wrote {OUT}; now: python scripts/render_docs.py", file=sys.stderr)


if __name__ == "__main__":
    main()

"""The figures and files docs/experiments.md shows for "seeds as the unit", from a real (small) reproduction.

    python scripts/make_seeds_figures.py [RUNS_ROOT]

Runs, as a user would (each step one `mnistlab` command):

  1. mnistlab reproduce table-1.3.2 --rows 2,4 --seeds 3 --dataset mnist-mini --backends jax,tensorflow,torch
     (two MLP rows, the book's 20 epochs, on the built-in mnist-mini: 18 runs, minutes on two cores)
  2. mnistlab report table-1.3.2-row2 table-1.3.2-row4 --backend jax      -> docs/seeds/bands.png
  3. mnistlab report table-1.3.2 --format latex / csv                      -> docs/seeds/table-1.3.2.tex, .csv
  4. mnistlab runs disagree table-1.3.2-row2 --by backend --json          -> docs/seeds/atlas.json
     (one setup's 9 runs: within a backend the runs differ by seed only)
  5. mnistlab report table-1.3.2 (the HTML report)                          -> docs/seeds/atlas-*.png

and writes the reproduced table (.md/.csv/.json, with every run's directory) to docs/seeds/tables/.
RUNS_ROOT (default /tmp/mnistlab-seeds-docs) holds the runs and their store: passing it again
resumes (finished runs are not trained again). docs/experiments.md's generated block is then
rendered from these files by scripts/render_docs.py.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "seeds"
TABLE = "table-1.3.2"
ROWS = (2, 4)
BACKENDS = "jax,tensorflow,torch"
SETUPS = [f"{TABLE}-row{row}" for row in ROWS]


def mnistlab(*args, env, capture=False):
    command = [sys.executable, "-m", "mnistlab", *map(str, args)]
    print("$ mnistlab " + " ".join(map(str, args)), file=sys.stderr, flush=True)
    result = subprocess.run(command, env=env, text=True, capture_output=capture)
    if result.returncode != 0:
        raise SystemExit(
            f"error: mnistlab {' '.join(map(str, args))} failed ({result.returncode})"
            + (f": {result.stderr[-2000:]}" if capture else "")
        )
    return result.stdout if capture else None


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/mnistlab-seeds-docs").resolve()
    root.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MNISTLAB_RUNS": str(root)}
    env.pop("KERAS_BACKEND", None)  # each run's backend is the one --backends names
    store = root / "runs.db"
    tables_dir = OUT / "tables"
    mnistlab(
        "reproduce",
        TABLE,
        "--rows",
        ",".join(map(str, ROWS)),
        "--seeds",
        3,
        "--dataset",
        "mnist-mini",
        "--backends",
        BACKENDS,
        "--workers",
        2,
        "--store",
        store,
        "--out",
        tables_dir,
        env=env,
    )
    table_json = next(tables_dir.glob(f"{TABLE}-*-r{'+'.join(map(str, ROWS))}-{BACKENDS.replace(',', '+')}.json"))

    compare_html = root / "compare.html"
    mnistlab("report", *SETUPS, "--backend", "jax", "--out", compare_html, "--store", store, env=env)
    shutil.copy(root / "compare_files" / "bands.png", OUT / "bands.png")

    for format, suffix in (("latex", "tex"), ("csv", "csv")):
        mnistlab(
            "report",
            TABLE,
            "--format",
            format,
            "--table-json",
            table_json,
            "--out",
            OUT / f"{TABLE}.{suffix}",
            "--store",
            store,
            env=env,
        )

    atlas = json.loads(
        mnistlab("runs", "disagree", SETUPS[0], "--by", "backend", "--json", "--store", store, env=env, capture=True)
    )
    # The whole atlas lists every contested digit with 9 answers each; docs keep the first 24 of each kind.
    atlas["disagreed_digits"], atlas["all_wrong_digits"] = (
        atlas["disagreed_digits"][:24],
        atlas["all_wrong_digits"][:24],
    )
    (OUT / "atlas.json").write_text(json.dumps(atlas, indent=1) + "\n")

    table_html = root / "table.html"
    mnistlab("report", TABLE, "--table-json", table_json, "--out", table_html, "--store", store, env=env)
    for name in ("atlas-disagreed.png", "atlas-all-wrong.png", "atlas-per-class.png"):
        shutil.copy(root / "table_files" / name, OUT / name)
    print(f"Wrote {', '.join(sorted(path.name for path in OUT.iterdir()))} in {OUT}")


if __name__ == "__main__":
    main()

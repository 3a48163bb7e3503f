"""Accuracy parity: what `mnistlab train` learns against the book's script, per listing, over seeds.

    python benchmarks/parity.py [--seeds 3] [--families mlp cnn rnn] [--bf16 cnn] [--dataset fashion-mnist]

The mnistlab side is the path users run: `mnistlab train LISTING --seed S
--json` in its own process (default backend, the 10% validation hold-out, the
recorder and the store), on the full dataset. The book's side is the book's
listing as written (bench.py's port of it to Keras 3 on TensorFlow), trained on
all the training images. Each side records per-seed train and test accuracy;
Welch's t-test compares the test accuracies. Raw results (with date, commit and
machine) go to benchmarks/parity-results.json, after each training; the page,
benchmarks/parity.md, is rendered from them (also by scripts/render_docs.py).
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench  # noqa: E402

RESULTS = HERE / "parity-results.json"
PAGE = HERE / "parity.md"


def worker_parity(spec):
    """The book's script for one seed: test and last-epoch train accuracy."""
    os.environ["KERAS_BACKEND"] = spec["backend"]
    from mnistlab.core import presets
    from mnistlab.ml import backend as backend_lib

    family = spec["family"]
    config = presets.get(bench.LISTINGS[family]).build_config()
    x, y, x_test, y_test, source = bench.training_data(bench.FULL_SAMPLES, family)
    backend_lib.seed_everything(spec["seed"])
    model = bench.build_for(spec, config)
    history = bench.fit_for(spec, model, x, y, config.epochs)
    probabilities = model.predict(x_test, batch_size=1024, verbose=0)
    return {
        "test_accuracy": float((probabilities.argmax(1) == y_test).mean()),
        "train_accuracy": float(history.history["accuracy"][-1]),
        "epochs": config.epochs,
        "train_samples": int(len(x)),
        "data": source,
    }


def mnistlab_train(listing, seed, dataset, precision, runs_root):
    """`mnistlab train` as a user runs it; its metrics."""
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    env["MNISTLAB_RUNS"] = str(runs_root)
    args = [
        sys.executable,
        "-m",
        "mnistlab",
        "train",
        listing,
        "--seed",
        str(seed),
        "--dataset",
        dataset,
        "--precision",
        precision,
        "--json",
        "--force",
    ]
    completed = subprocess.run(args, capture_output=True, text=True, env=env)
    if completed.returncode != 0:
        return {
            "error": completed.stderr.strip().splitlines()[-1]
            if completed.stderr.strip()
            else f"exit {completed.returncode}"
        }
    metrics = json.loads(completed.stdout)
    return {
        key: metrics[key]
        for key in (
            "test_accuracy",
            "train_accuracy",
            "val_accuracy",
            "epochs",
            "train_samples",
            "backend",
            "dataset",
            "run_dir",
        )
    }


def render(results):
    from mnistlab.core import stats

    lines = [
        "# Accuracy parity: `mnistlab train` against the book's script",
        "",
        f"Measured by `python benchmarks/parity.py` on {results['date']} at commit `{results['commit'][:10]}`; raw results in",
        "`benchmarks/parity-results.json` (machine: "
        + ", ".join(f"{key} {value}" for key, value in results["machine"].items())
        + ").",
        f"Each side trained for the book's epochs on {results['dataset']}, seeds {', '.join(map(str, results['seeds']))}; test accuracy on the full test set.",
        "The book's script trains on all the training images; `mnistlab train` holds 10% out for validation, as users run it.",
        "",
        "| listing | path | train samples | test % per seed | train % (last epoch) per seed | mean test | vs the book's script (Welch, 95%) |",
        "|---|---|---|---|---|---|---|",
    ]
    for listing, paths in results["listings"].items():
        book = [100 * run["test_accuracy"] for run in paths.get("book script", []) if "test_accuracy" in run]
        for label, runs in paths.items():
            done = [run for run in runs if "test_accuracy" in run]
            test = [100 * run["test_accuracy"] for run in done]
            train = [100 * run["train_accuracy"] for run in done]
            if label == "book script":
                verdict = "baseline"
            elif len(test) >= 2 and len(book) >= 2:
                comparison = stats.compare(test, book)
                verdict = f"{comparison['difference']:+.2f} points [{comparison['ci_low']:+.2f}, {comparison['ci_high']:+.2f}]; {comparison['verdict']}"
            else:
                verdict = "too few runs"
            samples = ", ".join(sorted({str(run["train_samples"]) for run in done})) or "-"
            mean = f"{sum(test) / len(test):.2f}" if test else "-"
            lines.append(
                f"| {listing} | {label} | {samples} | {', '.join(f'{v:.2f}' for v in test)} | {', '.join(f'{v:.2f}' for v in train)} | {mean} | {verdict} |"
            )
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--families", nargs="+", default=list(bench.LISTINGS), choices=list(bench.LISTINGS))
    parser.add_argument(
        "--bf16",
        nargs="*",
        default=["cnn"],
        help="families to also check with --precision bf16 (default: cnn, where bf16 is faster)",
    )
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker_parity(json.loads(args.worker))), flush=True)
        return

    from mnistlab.core import fileio, provenance

    results = {
        **provenance.stamp(HERE.parent),
        "dataset": args.dataset,
        "seeds": list(range(args.seeds)),
        "listings": {},
    }
    with tempfile.TemporaryDirectory(prefix="mnistlab-parity-") as runs_root:
        for family in args.families:
            listing = bench.LISTINGS[family]
            paths = {"book script": None, "mnistlab train": "float32"}
            if family in args.bf16:
                paths["mnistlab train --precision bf16"] = "bf16"
            results["listings"][listing] = {label: [] for label in paths}
            for label, precision in paths.items():
                for seed in results["seeds"]:
                    if precision is None:
                        result = bench.run_worker(
                            {"kind": "parity", "family": family, "seed": seed, "path": "book", "backend": "tensorflow"},
                            script=__file__,
                        )
                    else:
                        result = mnistlab_train(listing, seed, args.dataset, precision, runs_root)
                    print(f"{listing} {label} seed {seed}: {result}", file=sys.stderr, flush=True)
                    results["listings"][listing][label].append({"seed": seed, **result})
                    # Written after each training, so that a long run leaves its results as it goes.
                    fileio.write_json(RESULTS, results)
                    fileio.write_text(PAGE, render(results))
    print(render(results))


if __name__ == "__main__":
    main()

"""Accuracy parity of the speed-ups: the book's script vs mnistlab's default path (and bf16),
trained for the book's epochs on the same seeds, compared with Welch's t-test.

    python benchmarks/parity.py [--seeds 3] [--families mlp cnn rnn] [--bf16 cnn] [--out benchmarks/parity.md]

Each training runs in its own process (bench.py's worker), on the full
training set, and is evaluated on the full test set.
"""

import argparse
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import bench  # noqa: E402


def worker_parity(spec):
    """Train one path for the book's epochs with one seed; return the test accuracy."""
    import os

    os.environ["KERAS_BACKEND"] = spec["backend"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from mnistlab import backend as backend_lib
    from mnistlab import presets

    family = spec["family"]
    config = presets.get(bench.LISTINGS[family]).build_config(precision=spec.get("precision", "float32"))
    x, y, x_test, y_test, source = bench.training_data(bench.FULL_SAMPLES, family)
    backend_lib.seed_everything(spec["seed"])
    model = bench.build_for(spec, config)
    history = bench.fit_for(spec, model, x, y, config.epochs)
    probabilities = model.predict(x_test, batch_size=1024, verbose=0)
    return {"test_accuracy": float((probabilities.argmax(1) == y_test).mean()), "train_accuracy": float(history.history["accuracy"][-1]), "epochs": config.epochs, "data": source}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--families", nargs="+", default=list(bench.LISTINGS), choices=list(bench.LISTINGS))
    parser.add_argument("--bf16", nargs="*", default=["cnn"], help="families to also check in bf16 (default: cnn, where bf16 is faster)")
    parser.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parent / "parity.md"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker_parity(json.loads(args.worker))), flush=True)
        return

    from mnistlab import fileio, stats
    from mnistlab.backend import AUTO_BACKEND

    lines = ["# Accuracy parity of the speed-ups", "", f"`python benchmarks/parity.py {' '.join(sys.argv[1:])}`: each path trained for the book's epochs on the full training set, seeds 0..{args.seeds - 1}, test accuracy on the full test set. Welch's t-test against the book's script.", ""]
    lines += ["| listing | path | test accuracy % per seed | mean | difference vs book | verdict |", "|---|---|---|---|---|---|"]
    raw = {}
    sources = set()
    for family in args.families:
        paths = [("book script (TF, as written)", {"path": "book", "backend": "tensorflow"}), (f"mnistlab default ({AUTO_BACKEND[family]})", {"path": "mnistlab", "backend": AUTO_BACKEND[family]})]
        if family in args.bf16:
            paths.append((f"mnistlab bf16 ({AUTO_BACKEND[family]})", {"path": "mnistlab", "backend": AUTO_BACKEND[family], "precision": "bf16"}))
        accuracies = {}
        for label, spec in paths:
            accuracies[label] = []
            for seed in range(args.seeds):
                result = bench.run_worker({"kind": "parity", "family": family, "seed": seed, **spec}, script=__file__)
                sources.add(result.get("data", "?"))
                print(f"{family} {label} seed {seed}: {result}", file=sys.stderr, flush=True)
                if "test_accuracy" in result:
                    accuracies[label].append(100 * result["test_accuracy"])
        raw[family] = accuracies
        book_values = accuracies[paths[0][0]]
        for label, values in accuracies.items():
            if label == paths[0][0] or len(values) < 2 or len(book_values) < 2:
                verdict, difference = "baseline" if label == paths[0][0] else "too few runs", ""
            else:
                comparison = stats.compare(values, book_values)
                difference = f"{comparison['difference']:+.2f} [{comparison['ci_low']:+.2f}, {comparison['ci_high']:+.2f}]"
                verdict = comparison["verdict"]
            mean = sum(values) / len(values) if values else float("nan")
            lines.append(f"| {bench.LISTINGS[family]} | {label} | {', '.join(f'{v:.2f}' for v in values)} | {mean:.2f} | {difference} | {verdict} |")
        # Written after each listing, so that a long run leaves its results as it goes.
        footer = ["", f"Data: {', '.join(sorted(sources))}. Machine: {bench.machine_description()}.", ""]
        fileio.write_text(args.out, "\n".join(lines + footer) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

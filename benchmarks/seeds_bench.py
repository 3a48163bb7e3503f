"""Seeds as the unit: how fast the disagreement atlas answers, and what keeping per-example predictions costs a run.

Two measurements:

  atlas        `atlas.disagreement(run_dirs)` for 30 runs of 10,000 test digits (the
               size of MNIST's test set), from constructed run directories (config.json,
               metrics.json, predictions.npz as the Recorder writes them; the answers are
               made up: 2% wrong per run, a few hundred digits contested), read from disk
               each call; also grouped by backend (3 x 10 runs, with the permutation test)
  predictions  one real training of Listing 1.3.2 (the MLP, the book's 20 epochs): the
               share of the run's time keeping its answers to the 10,000 test digits takes
               (metrics.json's predictions_seconds over seconds; the answers come from the
               evaluation's own pass), beside what a second pass (Keras' evaluate) would
               have taken. The MLP is the cheapest run per epoch, so its share is the
               largest of the three listings. MNIST's
               training images are not on this machine: the run trains on MNIST's 10,000
               test images tiled 6 times (60,000 images, the real size, so the timing is
               the real one; its accuracy means nothing).

Writes the raw results with date, commit and machine to benchmarks/seeds-results.json;
BENCHMARKS.md shows them (scripts/render_docs.py).

Usage: python benchmarks/seeds_bench.py [--runs 30] [--digits 10000] [--skip-training]
"""

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time

import numpy as np

from mnistlab.core import provenance

REPO = pathlib.Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "seeds-results.json"
TARGET_MS = 200
REPEATS = 20
BACKENDS = ("jax", "tensorflow", "torch")


def constructed_runs(root, runs, digits, seed=0):
    """RUNS run directories of one setup whose predictions.npz hold made-up answers to DIGITS test digits."""
    from mnistlab.core import fileio, presets
    from mnistlab.record import rundir

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, digits).astype(np.uint8)
    hard = rng.random(digits) < 0.03  # the digits seeds tend to get wrong
    run_dirs = []
    for number in range(runs):
        backend = BACKENDS[number % len(BACKENDS)]
        config = presets.get("listing-1.3.2").build_config(seed=number, backend=backend, dataset="mnist")
        run_dir = pathlib.Path(root) / f"run{number:02d}"
        run_dir.mkdir()
        rundir.write_config(run_dir, config, "listing-1.3.2")
        wrong = (hard & (rng.random(digits) < 0.5)) | (rng.random(digits) < 0.005)
        predicted = np.where(wrong, (labels + rng.integers(1, 10, digits)) % 10, labels).astype(np.uint8)
        probability = np.where(wrong, rng.random(digits) * 0.5, 0.5 + rng.random(digits) * 0.5).astype(np.float16)
        rundir.write_predictions(
            run_dir, {"predicted": predicted, "true_probability": probability, "labels": labels}, "ab" * 32
        )
        # What train() records of every run (the atlas names runs from it).
        fileio.write_json(
            run_dir / rundir.METRICS_FILE,
            {
                "status": "done",
                "backend": backend,
                "seed": number,
                "dataset": "mnist",
                "preset": "listing-1.3.2",
                "config_hash": config.config_hash(),
                "description": config.describe(),
                "dataset_hash": "ab" * 32,
            },
        )
        run_dirs.append(run_dir)
    return run_dirs


def timed(call, repeats):
    call()  # the first call reads the files into the page cache; the rest are what a user asking again sees
    milliseconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = call()
        milliseconds.append(1000 * (time.perf_counter() - started))
    values = np.asarray(milliseconds)
    return result, {
        "n": repeats,
        "p50_ms": round(float(np.percentile(values, 50)), 1),
        "p90_ms": round(float(np.percentile(values, 90)), 1),
        "max_ms": round(float(values.max()), 1),
    }


def atlas_timing(runs, digits):
    from mnistlab.analysis import atlas

    with tempfile.TemporaryDirectory(prefix="mnistlab-seeds-bench-") as scratch:
        run_dirs = constructed_runs(scratch, runs, digits)
        started = time.perf_counter()
        atlas.disagreement(run_dirs)
        first_ms = round(1000 * (time.perf_counter() - started), 1)
        plain, plain_timing = timed(lambda: atlas.disagreement(run_dirs), REPEATS)
        grouped, grouped_timing = timed(lambda: atlas.disagreement(run_dirs, by="backend"), REPEATS)
    return {
        "runs": runs,
        "digits": digits,
        "first_call_ms": first_ms,
        "atlas": plain_timing,
        "atlas_by_backend": grouped_timing,
        "disagreed": plain["disagreed"],
        "all_wrong": plain["all_wrong"],
        "groups_test": grouped["groups_test"]["test"],
    }


def prediction_file_bytes(digits):
    from mnistlab.record import rundir

    with tempfile.TemporaryDirectory(prefix="mnistlab-seeds-bench-") as scratch:
        labels = np.zeros(digits, np.uint8)
        rundir.write_predictions(
            scratch, {"predicted": labels, "true_probability": labels.astype(np.float16), "labels": labels}, "ab" * 32
        )
        return os.path.getsize(pathlib.Path(scratch) / rundir.PREDICTIONS_FILE)


def predictions_cost(backend="jax"):
    """Listing 1.3.2 trained at full size on MNIST's test images tiled 6 times; what its test predictions cost.

    A run evaluates and predicts its test set in one pass (`models.evaluate_and_predict`); keeping the
    answers adds their compaction (metrics' predictions_seconds) and a 40 KB file. For comparison, Keras'
    own evaluate on the same model afterwards (a first call, as a run's was): what a second pass would
    have cost had the run evaluated with it and predicted besides.
    """
    from mnistlab.core import presets
    from mnistlab.ml import data, models, train
    from mnistlab.record import rundir

    mnist_dir = pathlib.Path(os.environ.get("MNISTLAB_MNIST_TEST_DIR", "/work/shared/data/mnist"))
    images = data.read_idx_images(mnist_dir / "t10k-images-idx3-ubyte.gz")
    labels = data.read_idx_labels(mnist_dir / "t10k-labels-idx1-ubyte.gz")
    dataset = data.Dataset(
        "mnist-test-tiled",
        np.tile(images, (6, 1, 1)),
        np.tile(labels, 6),
        images,
        labels,
        "MNIST's test images tiled 6 times (timing only)",
    )
    with tempfile.TemporaryDirectory(prefix="mnistlab-seeds-bench-") as scratch:
        config = presets.get("listing-1.3.2").build_config(backend=backend)
        run_dir = pathlib.Path(scratch) / "run"
        result = train.train(
            config, dataset=dataset, preset="listing-1.3.2", recorder=rundir.Recorder(run_dir), verbose=0
        )
        metrics = result.metrics
        x_test, y_test = data.prepare_images(images, config.input_shape), data.one_hot(labels)
        started = time.perf_counter()
        keras_loss, keras_accuracy = models.evaluate(result.model, x_test, y_test)
        keras_seconds = time.perf_counter() - started
        file_bytes = (run_dir / rundir.PREDICTIONS_FILE).stat().st_size
    return {
        "preset": "listing-1.3.2",
        "backend": backend,
        "epochs": metrics["epochs"],
        "train_samples": metrics["train_samples"],
        "test_samples": metrics["test_samples"],
        "run_seconds": metrics["seconds"],
        "evaluate_seconds": metrics["evaluate_seconds"],
        "predictions_seconds": metrics["predictions_seconds"],
        "share": round(metrics["predictions_seconds"] / metrics["seconds"], 6),
        "keras_evaluate_seconds": round(keras_seconds, 4),
        "second_pass_share": round(keras_seconds / metrics["seconds"], 5),
        "same_accuracy_as_keras": keras_accuracy == metrics["test_accuracy"],
        "loss_relative_difference": abs(keras_loss - metrics["test_loss"]) / keras_loss,
        "file_bytes": int(file_bytes),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--digits", type=int, default=10000)
    parser.add_argument("--skip-training", action="store_true", help="only the atlas timing")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--conditions", help="what else the machine was doing, recorded with the results")
    args = parser.parse_args()
    os.environ.setdefault("KERAS_BACKEND", "jax")
    timing = atlas_timing(args.runs, args.digits)
    timing["file_bytes"] = prediction_file_bytes(args.digits)
    result = {
        **provenance.stamp(REPO),
        "what": f"atlas.disagreement over {args.runs} runs x {args.digits:,} test digits (constructed predictions.npz), read from disk each call; {REPEATS} calls after one warm-up",
        "conditions": args.conditions,
        "atlas": timing,
        "target_ms": TARGET_MS,
        "target_met": timing["atlas"]["p50_ms"] <= TARGET_MS,
        "predictions": None if args.skip_training else predictions_cost(),
    }
    if args.skip_training and pathlib.Path(args.out).exists():  # keep the last training measurement
        result["predictions"] = json.loads(pathlib.Path(args.out).read_text()).get("predictions")
    from mnistlab.core import fileio

    fileio.write_json(args.out, result)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

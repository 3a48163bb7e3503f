"""Measure how often `mnistlab predict` on a photo-like rendering of a digit gives
the same class as the model on the clean 28x28 digit.

Usage: python scripts/measure_photo_agreement.py RUN_DIR [RUN_DIR...] [--dataset D] [--count 1000]
Writes the figures as JSON to stdout.
"""

import argparse
import json

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+")
    parser.add_argument("--dataset", default="mnist-mini")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from mnistlab import data, predict, preprocess

    predict.activate_for(args.run_dirs, "keras")
    dataset = data.load_dataset(args.dataset)
    digits, labels = dataset.x_test[: args.count], dataset.y_test[: args.count]
    rng = np.random.default_rng(args.seed)
    photos = np.stack([preprocess.prepare_file(preprocess.render_photo_like(d, rng), name="photo")[0] for d in digits])
    clean = digits.astype(np.float32) / 255
    results = {"dataset": dataset.name, "count": int(len(digits)), "models": {}}
    for run_dir in args.run_dirs:
        predictor = predict.Predictor(run_dir)
        on_clean = predictor.predict(clean).argmax(axis=1)
        on_photo = predictor.predict(photos).argmax(axis=1)
        results["models"][predictor.family] = {
            "run_dir": run_dir,
            "agreement": float((on_clean == on_photo).mean()),
            "clean_accuracy": float((on_clean == labels).mean()),
            "photo_accuracy": float((on_photo == labels).mean()),
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

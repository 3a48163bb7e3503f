"""Measure how often `mnistlab predict` on a photo-like rendering of a digit gives
the same class as the model on the clean 28x28 digit.

Usage: python scripts/measure_photo_agreement.py RUN_DIR [RUN_DIR...] [--dataset D] [--count 1000] [--out JSON]
Writes the figures as JSON (with date, commit and machine) to --out, else to stdout;
docs/use.md is rendered from docs/use/photo-agreement.json (scripts/render_docs.py).
"""

import argparse
import io
import json
import pathlib

import numpy as np
from PIL import Image


def render_photo_like(digit, rng):
    """A 28x28 MNIST digit rendered the way people photograph one: dark ink on
    light, slightly noisy paper, enlarged and off-centre on a larger canvas,
    saved as JPEG. Used to measure that `to_mnist` undoes all of that."""
    scale = rng.uniform(3, 7)
    size = max(28, int(round(28 * scale)))
    enlarged = (
        np.asarray(
            Image.fromarray(np.asarray(digit, dtype=np.uint8)).resize((size, size), Image.Resampling.BICUBIC),
            dtype=np.float64,
        )
        / 255
    )
    height, width = int(size * rng.uniform(1.3, 2.5)), int(size * rng.uniform(1.3, 2.5))
    paper, ink = rng.uniform(0.7, 0.95), rng.uniform(0.05, 0.3)
    canvas = np.full((height, width), paper)
    top, left = rng.integers(0, height - size + 1), rng.integers(0, width - size + 1)
    canvas[top : top + size, left : left + size] = paper - (paper - ink) * np.clip(enlarged, 0, 1)
    canvas += rng.normal(0, 0.02, canvas.shape)
    buffer = io.BytesIO()
    Image.fromarray((np.clip(canvas, 0, 1) * 255).round().astype(np.uint8)).save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+")
    parser.add_argument("--dataset", default="mnist-mini")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the JSON here (default: print it)")
    args = parser.parse_args()

    from mnistlab.core import provenance
    from mnistlab.ml import data, predict, preprocess

    predict.activate_for(args.run_dirs, "keras")
    dataset = data.load_dataset(args.dataset)
    digits, labels = dataset.x_test[: args.count], dataset.y_test[: args.count]
    rng = np.random.default_rng(args.seed)
    photos = np.stack([preprocess.prepare_file(render_photo_like(d, rng), name="photo")[0] for d in digits])
    clean = digits.astype(np.float32) / 255
    identity = np.stack([preprocess.to_mnist(digit / 255.0)[0] for digit in digits])
    results = {
        **provenance.stamp(pathlib.Path(__file__).resolve().parent.parent),
        "dataset": dataset.name,
        "count": int(len(digits)),
        "reprocessed_mean_abs_difference": float(np.abs(identity - digits / 255.0).mean()),
        "models": {},
    }
    for run_dir in args.run_dirs:
        predictor = predict.Predictor(run_dir)
        on_clean = predictor.predict(clean).argmax(axis=1)
        on_photo = predictor.predict(photos).argmax(axis=1)
        results["models"][predictor.family] = {
            "run_dir": run_dir,
            "preset": predictor.preset,
            "epochs": predictor.metrics.get("epochs"),
            "trained_on": predictor.config.dataset,
            "reprocessed_same_class": float((predictor.predict(identity).argmax(axis=1) == on_clean).mean()),
            "agreement": float((on_clean == on_photo).mean()),
            "clean_accuracy": float((on_clean == labels).mean()),
            "photo_accuracy": float((on_photo == labels).mean()),
        }
    text = json.dumps(results, indent=2) + "\n"
    if args.out:
        pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(args.out).write_text(text)
    else:
        print(text, end="")


if __name__ == "__main__":
    main()

"""How long the inside view of one drawing takes, for the three listings: in the server, and through HTTP.

Two measurements, side by side in one run, on the same 30 drawings (mnist-mini
test digits drawn on the page's 280x280 canvas, as PNGs):

  in process   the MLP's, CNN's and RNN's Explainer in turn, as the server's
               worker thread calls them: per drawing, the three
               together; with where the time goes per model (the probe's
               forward pass, the attribution, the compact JSON)
  HTTP         `mnistlab serve` in its own process, as a user runs it; one
               client sends each drawing to POST /api/explain (the page
               sends one at a time), and to POST /api/predict for comparison

The runs: those given (e.g. the listings the README's main command trains),
else the three listings trained here for 3 epochs on the built-in mnist-mini
(time depends on the architecture, and a little on the weights: integrated
gradients take more steps where the softmax is sharp). Writes the raw results
with date, commit and machine to benchmarks/explain-results.json; BENCHMARKS.md
shows them (scripts/render_docs.py).

Usage: python benchmarks/explain_bench.py [RUN_DIR ...] [--drawings 30]
"""

import argparse
import http.client
import json
import os
import pathlib
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from serve_load import drawing_png, mean_ms, serving  # noqa: E402  (the load test's drawing, timing and server helpers)

from mnistlab.core import provenance  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "explain-results.json"
TARGET_P50_MS = 150
STAGE_REPEATS = 20  # calls per stage in the breakdown (BENCHMARKS.md says "mean of 20 calls")


def train_listings(root, epochs=3):
    from mnistlab.core import presets
    from mnistlab.ml import data, run_model

    mini = data.load_mnist_mini()
    run_dirs = []
    for name in ("listing-1.3.2", "listing-1.4.1", "listing-1.5.1"):
        run_model.train_and_save(
            presets.get(name).build_config(epochs=epochs),
            dataset=mini,
            preset=name,
            run_dir=root / name,
            verbose=0,
            log=lambda message: None,
        )
        run_dirs.append(str(root / name))
    return run_dirs


def drawings(count):
    from mnistlab.ml import data

    mini = data.load_mnist_mini()
    return [drawing_png(mini, index) for index in range(count)]


def summary(milliseconds):
    values = np.asarray(milliseconds)
    return {
        "n": int(len(values)),
        "p50_ms": round(float(np.percentile(values, 50)), 1),
        "p90_ms": round(float(np.percentile(values, 90)), 1),
        "max_ms": round(float(values.max()), 1),
    }


def in_process(run_dirs, payloads):
    """Each model's explanation of each drawing (with the compact JSON the server sends), after one warm-up each; and its stages."""
    from mnistlab.ml import explain, predict, preprocess

    predict.activate_for(run_dirs, "keras")
    predictors = [predict.Predictor(run_dir) for run_dir in run_dirs]
    explainers = {predictor.family: explain.for_predictor(predictor) for predictor in predictors}
    images = [preprocess.prepare_file(payload, name="drawing")[0] for payload in payloads]
    for explainer in explainers.values():
        explainer.explain(images[0])
    totals, per_model, steps = [], {p.family: [] for p in predictors}, {p.family: [] for p in predictors}
    for image in images:
        together = 0.0
        for predictor in predictors:
            started = time.perf_counter()
            explanation = explainers[predictor.family].explain(image)
            json.dumps(explain.to_json(explanation, compact=True))
            elapsed = 1000 * (time.perf_counter() - started)
            together += elapsed
            per_model[predictor.family].append(elapsed)
            steps[predictor.family].append(explanation["attributions"].get("steps"))
        totals.append(together)
    stages = {}
    for predictor in predictors:
        explainer = explainers[predictor.family]
        image = images[1]
        batch = np.stack([image, np.zeros_like(image)]).reshape((2,) + explainer.input_shape)
        explanation = explainer.explain(image)
        stages[predictor.family] = {
            "probe_forward_ms": mean_ms(lambda: explainer.probe.predict_on_batch(batch), STAGE_REPEATS),
            "attribution_ms": mean_ms(
                lambda: explainer.attribute(image, explanation["attributions"]["classes"]), STAGE_REPEATS
            ),
            "compact_json_ms": mean_ms(lambda: json.dumps(explain.to_json(explanation, compact=True)), STAGE_REPEATS),
        }
    described = [p.describe() for p in predictors]
    return {
        "three_models": summary(totals),
        "per_model": {family: summary(values) for family, values in per_model.items()},
        "ig_steps": {family: sorted(set(values)) for family, values in steps.items()},
        "stages": stages,
    }, described


def over_http(run_dirs, payloads):
    """`mnistlab serve` in its own process; one keep-alive client, each drawing to /api/explain and /api/predict."""
    with serving(run_dirs) as port:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        results = {}
        for endpoint in ("/api/explain", "/api/predict"):
            latencies, sizes = [], []
            for payload in [payloads[0]] + payloads:  # the first, again, is the warm-up
                started = time.perf_counter()
                connection.request("POST", endpoint, body=payload, headers={"content-type": "image/png"})
                response = connection.getresponse()
                body = response.read()
                if response.status != 200:
                    raise RuntimeError(f"{endpoint}: {response.status} {body[:200]!r}")
                latencies.append(1000 * (time.perf_counter() - started))
                sizes.append(len(body))
            results[endpoint] = {**summary(latencies[1:]), "response_kb": round(float(np.mean(sizes[1:])) / 1024, 1)}
        connection.close()
        return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "run_dirs",
        nargs="*",
        help="the MLP, CNN and RNN runs (default: the listings, trained here for 3 epochs on mnist-mini)",
    )
    parser.add_argument("--drawings", type=int, default=30)
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument(
        "--conditions",
        help="what else the machine was doing, recorded with the results (e.g. 'while a CI run was going')",
    )
    args = parser.parse_args()
    os.environ.setdefault("KERAS_BACKEND", "jax")
    payloads = drawings(args.drawings)
    with tempfile.TemporaryDirectory(prefix="mnistlab-explain-bench-") as scratch:
        run_dirs = args.run_dirs or train_listings(pathlib.Path(scratch))
        http_results = over_http(run_dirs, payloads)
        library, described = in_process(run_dirs, payloads)
    result = {
        **provenance.stamp(REPO),
        "what": f"the inside view of one drawing for the three models: {args.drawings} drawings (mnist-mini test digits on a 280x280 canvas, PNG)",
        "runs": [
            {key: model[key] for key in ("family", "preset", "dataset", "test_accuracy", "description")}
            for model in described
        ],
        "trained_here": not args.run_dirs,
        "conditions": args.conditions,
        "in_process": library,
        "http": http_results,
        "target_p50_ms": TARGET_P50_MS,
        "target_met": library["three_models"]["p50_ms"] <= TARGET_P50_MS
        and http_results["/api/explain"]["p50_ms"] <= TARGET_P50_MS,
    }
    from mnistlab.core import fileio

    fileio.write_json(args.out, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

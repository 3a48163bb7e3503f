"""Load on `mnistlab serve`, measured from outside: requests/s and latency at 1, 10 and 50 clients.

Trains the book's three listings briefly on the built-in data (speed does
not depend on how well they learned, only on their architecture), starts
`mnistlab serve` on loopback in its own process, as a user would, and sends
the page's kind of request, a 280x280 PNG drawing, from keep-alive clients
(threads in this process, on the same machine: their own CPU use is part of
the figure). Each level is bounded in count and time. Writes the raw results
(date, commit, machine) to benchmarks/serve-results.json; BENCHMARKS.md shows
them (scripts/render_docs.py).

Usage: python benchmarks/serve_load.py [--requests-per-client 20] [--seconds 60]
"""

import argparse
import concurrent.futures
import contextlib
import http.client
import io
import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

from mnistlab import provenance

REPO = pathlib.Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "serve-results.json"
LEVELS = (1, 10, 50)


def train_listings(root):
    from mnistlab import data, presets, rundir

    mini = data.load_mnist_mini()
    run_dirs = []
    for name in ("listing-1.3.2", "listing-1.4.1", "listing-1.5.1"):
        run_dir = root / name
        rundir.train_and_save(presets.get(name).build_config(epochs=1, limit=600), dataset=mini, preset=name, run_dir=run_dir, verbose=0, log=lambda message: None)
        run_dirs.append(str(run_dir))
    return run_dirs, mini


def drawing_png(mini, index=1):
    """Test digit INDEX drawn on the page's canvas, as the page sends it."""
    from PIL import Image

    canvas = np.zeros((280, 280, 4), np.uint8)  # the page's canvas: white ink, as RGBA
    ink = np.asarray(Image.fromarray(mini.x_test[index]).resize((200, 200)))
    canvas[40:240, 40:240, :3] = ink[..., None]
    canvas[..., 3] = 255
    buffer = io.BytesIO()
    Image.fromarray(canvas, "RGBA").save(buffer, format="PNG")
    return buffer.getvalue()


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def client(port, payload, count, deadline):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    latencies, failures = [], 0
    for _ in range(count):
        if time.perf_counter() > deadline:
            break
        started = time.perf_counter()
        connection.request("POST", "/api/predict", body=payload, headers={"content-type": "image/png"})
        response = connection.getresponse()
        response.read()
        latencies.append(time.perf_counter() - started)
        failures += response.status != 200
    connection.close()
    return latencies, failures


def measure(port, payload, clients, per_client, seconds):
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=clients) as pool:
        outcomes = list(pool.map(lambda _: client(port, payload, per_client, deadline), range(clients)))
    wall = time.perf_counter() - started
    latencies = np.array(sorted(sum((latency for latency, _ in outcomes), [])))
    return {
        "clients": clients,
        "requests": int(len(latencies)),
        "failures": int(sum(failures for _, failures in outcomes)),
        "requests_per_second": round(len(latencies) / wall, 1),
        "p50_ms": round(1000 * float(np.percentile(latencies, 50)), 1),
        "p95_ms": round(1000 * float(np.percentile(latencies, 95)), 1),
        "p99_ms": round(1000 * float(np.percentile(latencies, 99)), 1),
    }


def mean_ms(work, repeats):
    """Mean milliseconds of WORK over REPEATS calls, after one call to warm it up."""
    work()
    started = time.perf_counter()
    for _ in range(repeats):
        work()
    return round(1000 * (time.perf_counter() - started) / repeats, 3)


def profile_request(run_dirs, payload, repeats=300):
    """Where one request's time goes, in this process: decode + preprocess, each model, the JSON answer (ms each)."""
    from mnistlab import predict, preprocess

    predictors = [predict.Predictor(run_dir) for run_dir in run_dirs]
    image, _ = preprocess.prepare_file(payload, name="drawing")
    timings = {"decode_and_preprocess": mean_ms(lambda: preprocess.prepare_file(payload, name="drawing"), repeats)}
    for predictor in predictors:
        timings[f"model_{predictor.family}"] = mean_ms(lambda: predictor.predict(image[None]), repeats)
    answer = {"input": np.round(image, 4).tolist(), "predictions": [{"probabilities": [0.1] * 10, "top": [{"class": 1}] * 3} for _ in predictors]}
    timings["json_answer"] = mean_ms(lambda: json.dumps(answer, separators=(",", ":")), repeats)
    return timings


@contextlib.contextmanager
def serving(run_dirs, source=None):
    """`mnistlab serve RUN_DIRS` in its own process, as a user starts it (from SOURCE's src/ if given); yields its port once it answers."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    if source:
        env["PYTHONPATH"] = str(source)
    server = subprocess.Popen([sys.executable, "-m", "mnistlab", "serve", *run_dirs, "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(480):
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/healthz")
                connection.getresponse().read()
                connection.close()
                break
            except OSError:
                time.sleep(0.5)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


def serve_and_measure(run_dirs, payload, source, args):
    """Start `mnistlab serve` (from SOURCE's src/ if given), warm it up, measure each level."""
    with serving(run_dirs, source) as port:
        measure(port, payload, 10, 10, 30)  # warm-up: compiled model calls, thread pool
        return [measure(port, payload, clients, max(args.requests_per_client, 200 // clients), args.seconds) for clients in LEVELS]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests-per-client", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60, help="time cap per level")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--baseline-src", metavar="DIR", help="also measure the server from another checkout's src/ (e.g. the commit before a change), in the same run")
    args = parser.parse_args()
    os.environ.setdefault("KERAS_BACKEND", "jax")
    with tempfile.TemporaryDirectory(prefix="mnistlab-serve-load-") as scratch:
        run_dirs, mini = train_listings(pathlib.Path(scratch))
        payload = drawing_png(mini)
        servers = {"current": None}
        if args.baseline_src:
            servers["baseline"] = args.baseline_src
        measured = {name: serve_and_measure(run_dirs, payload, source, args) for name, source in servers.items()}
        profile = profile_request(run_dirs, payload)
    levels = measured["current"]
    result = {
        **provenance.stamp(REPO),
        "request": "POST /api/predict, a 280x280 RGBA PNG drawing, three models (the book's listings) per request, keep-alive",
        "levels": levels,
        "profile_ms": profile,
        "baseline": {"src": args.baseline_src, "levels": measured["baseline"]} if args.baseline_src else None,
    }
    pathlib.Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    for name, rows in measured.items():
        print(name)
        for level in rows:
            print(f"{level['clients']:>3} clients: {level['requests_per_second']:>7.1f} requests/s, p50 {level['p50_ms']} ms, p95 {level['p95_ms']} ms, p99 {level['p99_ms']} ms, {level['failures']} failures")


if __name__ == "__main__":
    main()

"""The lab's two promises, measured: the runs view of 1,000 runs, and how late a curve's point arrives.

  list     a store of 1,000 finished runs (250 setups x 4 seeds, each with its metrics and a
           20-epoch history, as sweeps record them); `GET /api/runs` (folded, sorted by start)
           timed in the server's process (`Lab.list_runs`, what the endpoint calls) and
           through HTTP to the lab on uvicorn, after one warm-up call; target: 100 ms p50.
  curve    a real training launched through the lab (the listing's MLP on mnist-mini, 5
           epochs of the first 6,000 images); one client follows GET /api/runs/{id}/events
           over HTTP, and each epoch's delay is the time its event is received minus the
           time the training worker made it at the epoch's end (same machine, same clock);
           also the longest gap between two progress events while it trains.
           Target: a point at most 2 s after its epoch ends, progress at least every 2 s.

Writes benchmarks/lab-results.json with date, commit and machine; BENCHMARKS.md shows it
(scripts/render_docs.py).

Usage: python benchmarks/lab_bench.py [--runs 1000] [--calls 50] [--epochs 5]
"""

import argparse
import http.client
import json
import os
import pathlib
import sys
import tempfile
import threading
import time

import numpy as np

from mnistlab.core import provenance

REPO = pathlib.Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "lab-results.json"
TARGET_LIST_P50_MS = 100
TARGET_DELAY_S = 2.0


def summary(values, unit="ms", digits=1):
    values = np.asarray(values, dtype=float)
    return {
        "n": int(len(values)),
        f"p50_{unit}": round(float(np.percentile(values, 50)), digits),
        f"p90_{unit}": round(float(np.percentile(values, 90)), digits),
        f"max_{unit}": round(float(values.max()), digits),
    }


def fill_store(store_path, count, seeds=4):
    """COUNT finished runs of COUNT/SEEDS setups (the listing's MLP with its dropout and width varied), as sweeps record them."""
    from mnistlab.core import presets
    from mnistlab.ml import data
    from mnistlab.record.store import Store

    dataset_hash = data.load_mnist_mini().content_hash()
    base = presets.get("listing-1.3.2").build_config(epochs=20, dataset="mnist-mini", backend="jax")
    rng = np.random.default_rng(0)
    with Store(store_path) as store:
        for setup in range(count // seeds):
            config = base.replace(dropout_rate=round(0.01 * (setup % 90), 2), hidden_units=(128 + setup // 90, 256))
            for seed in range(seeds):
                run = config.replace(seed=seed)
                run_id = store.start_run(run, dataset_hash, preset="listing-1.3.2", group="bench")
                accuracy = float(0.9 + 0.05 * rng.random())
                history = [
                    {
                        "epoch": epoch,
                        "loss": 1 / epoch,
                        "accuracy": accuracy,
                        "val_loss": 1 / epoch,
                        "val_accuracy": accuracy,
                        "seconds": 1.0,
                    }
                    for epoch in range(1, 21)
                ]
                metrics = {
                    "status": "done",
                    "test_accuracy": accuracy,
                    "val_accuracy": accuracy,
                    "train_accuracy": accuracy,
                    "seconds": 20.0,
                    "mean_epoch_seconds": 1.0,
                    "epochs": 20,
                    "machine": {"host": "bench"},
                    "versions": {"keras": "3"},
                    "config_hash": run.config_hash(),
                }
                store.finish_run(run_id, "done", metrics, history=history)


def served(app):
    import uvicorn

    with __import__("socket").socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return server, thread, port


def get(port, path):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, body


def measure_list(work, runs, calls):
    from mnistlab.web import lab as lab_lib

    store_path = work / "list" / "runs.db"
    started = time.perf_counter()
    fill_store(store_path, runs)
    filled = time.perf_counter() - started
    lab = lab_lib.Lab(store_path, workers=0)
    cold_started = time.perf_counter()
    answer = lab.list_runs()
    cold_ms = 1000 * (time.perf_counter() - cold_started)
    in_process = []
    for _ in range(calls):
        started = time.perf_counter()
        lab.list_runs()
        in_process.append(1000 * (time.perf_counter() - started))
    server, thread, port = served(lab_lib.create_app(lab))
    try:
        get(port, "/api/runs")
        over_http, size = [], 0
        for _ in range(calls):
            started = time.perf_counter()
            status, body = get(port, "/api/runs")
            over_http.append(1000 * (time.perf_counter() - started))
            assert status == 200, body[:200]
            size = len(body)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    return {
        "runs": runs,
        "setups": len(answer["groups"]),
        "store_filled_s": round(filled, 1),
        "first_call_ms": round(cold_ms, 1),
        "in_process": summary(in_process),
        "http": {**summary(over_http), "response_kb": round(size / 1024, 1)},
    }


def measure_curve(work, epochs):
    """Launch a real run through the lab and follow its events over HTTP: each epoch's delay, the longest gap between events."""
    from mnistlab.web import lab as lab_lib

    lab = lab_lib.Lab(work / "curve" / "runs.db", workers=1)
    server, thread, port = served(lab_lib.create_app(lab))
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        request = {"preset": "listing-1.3.2", "epochs": epochs, "limit": 6000, "dataset": "mnist-mini"}
        connection.request("POST", "/api/runs", body=json.dumps(request), headers={"Content-Type": "application/json"})
        run_id = json.loads(connection.getresponse().read())["runs"][0]["run_id"]
        connection.close()
        stream = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        stream.request("GET", f"/api/runs/{run_id}/events")
        response = stream.getresponse()
        delays, gaps, previous, step_events = [], [], None, 0
        while True:
            line = response.fp.readline().decode()
            if not line:
                break
            if not line.startswith("data: "):
                continue
            received = time.time()
            event = json.loads(line[6:])
            if event["kind"] in ("step", "epoch"):
                if previous is not None:  # within an epoch, and from one epoch's end to the next one's first step
                    gaps.append(event["time"] - previous["time"])
                previous = event
                step_events += event["kind"] == "step"
            if event["kind"] == "epoch":
                delays.append(1000 * (received - event["time"]))
            if event["kind"] == "end":
                break
        stream.close()
        status, body = get(port, f"/api/runs/{run_id}")
        run = json.loads(body)
    finally:
        server.should_exit = True
        thread.join(timeout=60)
    return {
        "what": request,
        "status": run["status"],
        "mean_epoch_seconds": round(float(np.mean([row["seconds"] for row in run["history"]])), 2),
        "epoch_delay": summary(delays),
        "step_events": step_events,
        "longest_gap_s": round(max(gaps), 2) if gaps else None,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args(argv)
    os.environ.pop("KERAS_BACKEND", None)
    with tempfile.TemporaryDirectory(prefix="mnistlab-lab-bench-") as scratch:
        work = pathlib.Path(scratch)
        os.environ["MNISTLAB_RUNS"] = str(work / "runs")
        listing = measure_list(work, args.runs, args.calls)
        print(
            f"list of {listing['runs']} runs: p50 {listing['in_process']['p50_ms']} ms in process, {listing['http']['p50_ms']} ms over HTTP",
            flush=True,
        )
        curve = measure_curve(work, args.epochs)
        print(
            f"curve: epoch points {curve['epoch_delay']['p50_ms']} ms p50 (max {curve['epoch_delay']['max_ms']} ms) after their epoch ended; longest gap between progress events {curve['longest_gap_s']} s",
            flush=True,
        )
    results = {
        **provenance.stamp(REPO),
        "list": listing,
        "curve": curve,
        "target_list_p50_ms": TARGET_LIST_P50_MS,
        "target_delay_s": TARGET_DELAY_S,
        "targets_met": {
            "list": listing["in_process"]["p50_ms"] <= TARGET_LIST_P50_MS
            and listing["http"]["p50_ms"] <= TARGET_LIST_P50_MS,
            "curve": curve["epoch_delay"]["max_ms"] <= 1000 * TARGET_DELAY_S
            and (curve["longest_gap_s"] or 0) <= TARGET_DELAY_S,
        },
    }
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    sys.exit(main())

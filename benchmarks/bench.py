"""mnistlab's speed benchmark: one command, one run, one machine, ratios side by side.

    python benchmarks/bench.py                 # full size (60,000 images), writes BENCHMARKS.md
    python benchmarks/bench.py --quick         # reduced size, for a quick check
    python benchmarks/bench.py --families mlp  # only some listings
    python benchmarks/bench.py --render results.json   # rewrite BENCHMARKS.md from a saved run

For each of the book's three listings it measures steady-state training epoch
time (scaled to 60,000 images at batch 128) and samples/s of:
  - book:      the listing as written in the book, only ported to Keras 3, on TensorFlow
               (Sequential model, compile and fit with Keras' defaults)
  - mnistlab:  mnistlab's own path (models.build_model + compile options) on each backend,
               and its default (`--backend auto`), in fp32 and in bf16 mixed precision
  - pytorch:   an idiomatic plain PyTorch loop of the same model (DataLoader, optimizer.step)
plus inference: the 10,000 test images (batched) and single-image latency (p50/p99)
for the Keras direct call and ONNX Runtime; the machine's peak fp32 and bf16
matmul throughput; and each model's FLOPs, counted from the Keras model, with
the achieved fraction of peak. Every measurement runs in its own process
(Keras fixes its backend per process). The same script runs unchanged on a GPU
machine (it records what the device is).
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parent.parent
LISTINGS = {"mlp": "listing-1.3.2", "cnn": "listing-1.4.1", "rnn": "listing-1.5.1"}
FULL_SAMPLES = 60000
BATCH_SIZE = 128
# Paths that take minutes per full epoch on a CPU are timed on a subset and scaled.
SLOW_CAP = {("jax", "cnn"): 6000, ("torch", "cnn"): 12000}
NO_PIPELINE_FIX = "mnistlab tensorflow, Keras' default tf.data (no input-pipeline fix)"
# The speed issue's targets for this 2-core CPU, checked against every full run.
TARGETS = {
    "mlp": {"epoch_seconds": 0.65, "vs_book": 4.5, "test_set_seconds": 0.5},
    "cnn": {"epoch_seconds": 13.0, "vs_book": 1.6, "test_set_seconds": 3.0},
    "rnn": {"epoch_seconds": 5.2, "vs_book": 1.6},
}
SINGLE_IMAGE_P50_MS = 1.0
NOTES = pathlib.Path(__file__).resolve().parent / "notes.md"


# --------------------------------------------------------------------------
# Helpers shared by workers


def training_data(samples, family):
    from mnistlab.core import config as config_lib
    from mnistlab.ml import data

    try:
        dataset = data.load_dataset("fashion-mnist", allow_download=False)
        source = "fashion-mnist"
    except Exception:  # no Fashion-MNIST here: real digits repeated to size
        dataset = data.load_mnist_mini()
        source = "mnist-mini (tiled)"
    reps = -(-samples // len(dataset.x_train))
    x = np.concatenate([dataset.x_train] * reps)[:samples]
    y = np.concatenate([dataset.y_train] * reps)[:samples]
    shape = config_lib.INPUT_SHAPES[family]
    return (
        data.prepare_images(x, shape),
        data.one_hot(y),
        data.prepare_images(dataset.x_test, shape),
        dataset.y_test,
        source,
    )


def count_forward_flops(model):
    """Multiply-adds x 2 per sample, from the Keras layers' own shapes."""
    from keras import layers

    total = 0
    for layer in model.layers:
        inner = layer.forward_layer if isinstance(layer, layers.Bidirectional) else layer
        copies = 2 if isinstance(layer, layers.Bidirectional) else 1
        if isinstance(inner, layers.Dense):
            total += 2 * inner.input.shape[-1] * inner.units
        elif isinstance(inner, layers.Conv2D):
            out = layer.output.shape
            kh, kw = inner.kernel_size
            total += 2 * kh * kw * layer.input.shape[-1] * inner.filters * out[1] * out[2]
        elif isinstance(inner, (layers.SimpleRNN, layers.LSTM, layers.GRU)):
            gates = {layers.SimpleRNN: 1, layers.LSTM: 4, layers.GRU: 3}[type(inner)]
            steps, features = layer.input.shape[1], layer.input.shape[2]
            total += copies * steps * gates * 2 * (features + inner.units) * inner.units
    return int(total)


def steady_epoch_seconds(epoch_times):
    """Mean of the epochs after the first (which includes compilation).

    The mean, not the median: a stall that hits some epochs (TensorFlow's
    tf.data one, see benchmarks/notes.md) is part of what a long run costs.
    """
    steady = epoch_times[1:] or epoch_times
    return statistics.fmean(steady)


def build_for(spec, config):
    """The model a measurement trains: the book's listing compiled as the book does, or mnistlab's."""
    from mnistlab.ml import models

    if spec["path"] != "book":
        return models.build_model(config)
    model = book_listing(spec["family"])
    model.compile(loss="categorical_crossentropy", optimizer=config.optimizer, metrics=["accuracy"])
    return model


def fit_for(spec, model, x, y, epochs, callbacks=()):
    """fit() as that path runs it: Keras' default input pipeline for the book's script (and the
    'no fix' row), mnistlab's (backend.fit_inputs, as train() uses) otherwise."""
    from mnistlab.ml import backend as backend_lib

    keras_default = spec["path"] == "book" or spec.get("pipeline") == "keras"
    verbose = "auto" if spec["path"] == "book" else 0  # the book's script keeps fit's progress bar
    inputs, targets, batch_size = (x, y, BATCH_SIZE) if keras_default else backend_lib.fit_inputs(x, y, BATCH_SIZE)
    return model.fit(
        inputs,
        targets,
        batch_size=batch_size,
        epochs=epochs,
        verbose=verbose,
        shuffle=targets is not None,
        callbacks=list(callbacks),
    )


# --------------------------------------------------------------------------
# Workers (each runs in its own process)


def worker_keras(spec):
    """mnistlab's path or the book's listing on one backend: epoch times, inference, latency."""
    os.environ["KERAS_BACKEND"] = spec["backend"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    from mnistlab.core import presets
    from mnistlab.ml import backend as backend_lib

    family = spec["family"]
    config = presets.get(LISTINGS[family]).build_config(precision=spec.get("precision", "float32"))
    x, y, x_test, y_test, source = training_data(spec["samples"], family)
    backend_lib.seed_everything(0)
    model = build_for(spec, config)
    times = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.started)

    fit_for(spec, model, x, y, spec["epochs"], callbacks=[Timer()])
    result = {
        "epoch_seconds_measured": steady_epoch_seconds(times),
        "epoch_times": times,
        "samples": len(x),
        "data": source,
    }
    if spec.get("inference"):
        batch = 1024 if spec["path"] != "book" else 32  # the book evaluates with Keras' default batch
        model.predict(x_test[:batch], batch_size=batch, verbose=0)
        started = time.perf_counter()
        probabilities = model.predict(x_test, batch_size=batch, verbose=0)
        result["test_set_seconds"] = time.perf_counter() - started
        result["test_accuracy_after_benchmark"] = float((probabilities.argmax(1) == y_test).mean())
        one = x_test[:1]
        latencies = []
        for _ in range(30):
            model.predict_on_batch(one)
        for _ in range(300):
            started = time.perf_counter()
            model.predict_on_batch(one)
            latencies.append(time.perf_counter() - started)
        result["single_p50_ms"] = 1000 * float(np.percentile(latencies, 50))
        result["single_p99_ms"] = 1000 * float(np.percentile(latencies, 99))
        # The plain direct call, model(x), as most code would write it.
        direct = []
        for _ in range(10):
            keras.ops.convert_to_numpy(model(one, training=False))
        for _ in range(100):
            started = time.perf_counter()
            keras.ops.convert_to_numpy(model(one, training=False))
            direct.append(time.perf_counter() - started)
        result["direct_p50_ms"] = 1000 * float(np.percentile(direct, 50))
        result["direct_p99_ms"] = 1000 * float(np.percentile(direct, 99))
        result["flops_forward"] = count_forward_flops(model)
        if spec.get("onnx") and spec["backend"] == "tensorflow":
            result.update(onnx_latency(model, x_test))
    return result


def onnx_latency(model, x_test):
    import tempfile

    import onnxruntime

    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "model.onnx")
        model.export(path, format="onnx", verbose=False)
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    one = x_test[:1]
    for _ in range(30):
        session.run(None, {name: one})
    latencies = []
    for _ in range(300):
        started = time.perf_counter()
        session.run(None, {name: one})
        latencies.append(time.perf_counter() - started)
    started = time.perf_counter()
    session.run(None, {name: x_test})
    return {
        "onnx_single_p50_ms": 1000 * float(np.percentile(latencies, 50)),
        "onnx_single_p99_ms": 1000 * float(np.percentile(latencies, 99)),
        "onnx_test_set_seconds": time.perf_counter() - started,
    }


def book_listing(family):
    """The book's listings as written (Sequential, separate Activation layers), ported to Keras 3."""
    import keras
    from keras.layers import Activation, Conv2D, Dense, Dropout, Flatten, Input, MaxPooling2D, SimpleRNN

    model = keras.Sequential()
    if family == "mlp":
        model.add(Input(shape=(784,)))
        model.add(Dense(256))
        model.add(Activation("relu"))
        model.add(Dropout(0.45))
        model.add(Dense(256))
        model.add(Activation("relu"))
        model.add(Dropout(0.45))
        model.add(Dense(10))
        model.add(Activation("softmax"))
    elif family == "cnn":
        model.add(Input(shape=(28, 28, 1)))
        model.add(Conv2D(filters=64, kernel_size=3, activation="relu"))
        model.add(MaxPooling2D(2))
        model.add(Conv2D(filters=64, kernel_size=3, activation="relu"))
        model.add(MaxPooling2D(2))
        model.add(Conv2D(filters=64, kernel_size=3, activation="relu"))
        model.add(Flatten())
        model.add(Dropout(0.2))
        model.add(Dense(10))
        model.add(Activation("softmax"))
    else:
        model.add(Input(shape=(28, 28)))
        model.add(SimpleRNN(units=256, dropout=0.2))
        model.add(Dense(10))
        model.add(Activation("softmax"))
    return model


def worker_torch(spec):
    """An idiomatic plain PyTorch training loop of the same model."""
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    family = spec["family"]
    x, y, _, _, source = training_data(spec["samples"], family)
    if family == "mlp":
        model = nn.Sequential(
            nn.Linear(784, 256),
            nn.ReLU(),
            nn.Dropout(0.45),
            nn.Linear(256, 256),
            nn.ReLU(),
            nn.Dropout(0.45),
            nn.Linear(256, 10),
        )
        inputs = torch.from_numpy(x)
    elif family == "cnn":
        model = nn.Sequential(
            nn.Conv2d(1, 64, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3),
            nn.ReLU(),
            nn.Flatten(),
            nn.Dropout(0.2),
            nn.Linear(576, 10),
        )
        inputs = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()  # NCHW, PyTorch's layout
    else:

        class RNNClassifier(nn.Module):
            def __init__(self):
                super().__init__()
                self.dropout = nn.Dropout(0.2)
                self.rnn = nn.RNN(28, 256, batch_first=True)
                self.head = nn.Linear(256, 10)

            def forward(self, batch):
                _, hidden = self.rnn(self.dropout(batch))
                return self.head(hidden[-1])

        model = RNNClassifier()
        inputs = torch.from_numpy(x)
    labels = torch.from_numpy(y.argmax(1))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(device)
    optimizer = (
        torch.optim.SGD(model.parameters(), lr=0.01)
        if family == "rnn"
        else torch.optim.Adam(model.parameters(), lr=1e-3)
    )
    loader = DataLoader(TensorDataset(inputs, labels), batch_size=BATCH_SIZE, shuffle=True)
    loss_fn = nn.CrossEntropyLoss()
    times = []
    model.train()
    for _ in range(spec["epochs"]):
        started = time.perf_counter()
        for batch, target in loader:
            batch, target = batch.to(device, non_blocking=True), target.to(device, non_blocking=True)
            optimizer.zero_grad()
            loss = loss_fn(model(batch), target)
            loss.backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return {
        "epoch_seconds_measured": steady_epoch_seconds(times),
        "epoch_times": times,
        "samples": len(x),
        "data": source,
    }


def worker_peak(spec):
    """Best matmul throughput in GFLOP/s for fp32 and bf16 (torch: the GPU if there is one, else all cores)."""
    import torch

    results = {}
    on_gpu = torch.cuda.is_available()
    device = "cuda" if on_gpu else "cpu"
    size = spec.get("size", 8192 if on_gpu else 2048)

    def finish():
        if on_gpu:
            torch.cuda.synchronize()

    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a = torch.randn(size, size, dtype=dtype, device=device)
        b = torch.randn(size, size, dtype=dtype, device=device)
        for _ in range(3):
            a @ b
        finish()
        best = float("inf")
        for _ in range(spec.get("repeats", 10)):
            started = time.perf_counter()
            a @ b
            finish()
            best = min(best, time.perf_counter() - started)
        results[f"{name}_gflops"] = 2 * size**3 / best / 1e9
    results["torch_threads"] = torch.get_num_threads()
    results["peak_device"] = torch.cuda.get_device_name() if on_gpu else "cpu"
    results["peak_size"] = size
    return results


WORKERS = {"keras": worker_keras, "torch": worker_torch, "peak": worker_peak}


def run_worker(spec, timeout=3600, script=__file__):
    """Run one measurement in a fresh process; returns its result dict (or an error)."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    completed = subprocess.run(
        [sys.executable, script, "--worker", json.dumps(spec)], capture_output=True, text=True, env=env, timeout=timeout
    )
    for line in reversed(completed.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"error": (completed.stderr.strip().splitlines() or ["no output"])[-1]}


# --------------------------------------------------------------------------
# The suite


def machine_description():
    description = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in lscpu.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("Model name", "Thread(s) per core", "Core(s) per socket"):
                description[key.strip()] = value.strip()
            if key.strip() == "Flags":
                flags = value.split()
                description["simd"] = " ".join(f for f in flags if f.startswith(("avx", "amx", "fma")))
    except OSError:
        pass
    try:
        gpu = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        if gpu.returncode == 0 and gpu.stdout.strip():
            description["gpu"] = gpu.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 0
    description["memory_gib"] = round(memory / 2**30, 1)
    return description


def plan(families, quick):
    epochs = 2 if quick else 4
    samples = 6000 if quick else FULL_SAMPLES
    measurements = []
    for family in families:
        measurements.append(
            ("book (TF, as written)", {"kind": "keras", "path": "book", "backend": "tensorflow", "family": family})
        )
        for backend_name in ("jax", "tensorflow", "torch"):
            measurements.append(
                (
                    f"mnistlab {backend_name}",
                    {
                        "kind": "keras",
                        "path": "mnistlab",
                        "backend": backend_name,
                        "family": family,
                        "inference": True,
                        "onnx": backend_name == "tensorflow",
                    },
                )
            )
        # The same TensorFlow path on Keras' default tf.data pipeline: what the input-pipeline fix is worth.
        measurements.append(
            (
                NO_PIPELINE_FIX,
                {"kind": "keras", "path": "mnistlab", "backend": "tensorflow", "family": family, "pipeline": "keras"},
            )
        )
        measurements.append(
            (
                "mnistlab bf16 (default backend)",
                {"kind": "keras", "path": "mnistlab", "backend": "auto", "family": family, "precision": "bf16"},
            )
        )
        measurements.append(("plain PyTorch loop", {"kind": "torch", "family": family}))
    for label, spec in measurements:
        if spec.get("backend") == "auto":
            from mnistlab.ml.backend import AUTO_BACKEND

            spec["backend"] = AUTO_BACKEND[spec["family"]]
        cap = SLOW_CAP.get((spec.get("backend", "torch-loop"), spec["family"]))
        spec["samples"] = min(samples, cap) if cap else samples
        spec["epochs"] = epochs
    return measurements


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced size: 6,000 images, 2 epochs")
    parser.add_argument("--families", nargs="+", default=list(LISTINGS), choices=list(LISTINGS))
    parser.add_argument("--out", default=str(REPO / "BENCHMARKS.md"))
    parser.add_argument("--json", default=None, help="also write raw results here")
    parser.add_argument(
        "--render",
        metavar="JSON",
        help="only rewrite --out from the raw results of an earlier run (after editing benchmarks/notes.md)",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        spec = json.loads(args.worker)
        print("RESULT " + json.dumps(WORKERS[spec["kind"]](spec)), flush=True)
        return
    if args.render:
        from mnistlab.core import fileio

        fileio.write_text(args.out, render(json.loads(pathlib.Path(args.render).read_text())))
        return

    started = time.time()
    from mnistlab.ml.backend import AUTO_BACKEND

    machine = machine_description()
    print(f"machine: {machine}", file=sys.stderr)
    peak = run_worker({"kind": "peak"})
    print(f"peak: {peak}", file=sys.stderr)
    results = []
    for label, spec in plan(args.families, args.quick):
        print(
            f"measuring {spec['family']}: {label} ({spec['samples']} images x {spec['epochs']} epochs) ...",
            file=sys.stderr,
            flush=True,
        )
        result = run_worker(spec)
        if "epoch_seconds_measured" in result:
            result["epoch_seconds"] = result["epoch_seconds_measured"] * FULL_SAMPLES / result["samples"]
        print(f"  -> {result.get('epoch_seconds', result.get('error'))}", file=sys.stderr, flush=True)
        results.append({"label": label, **spec, **result})
    report = {
        "machine": machine,
        "peak": peak,
        "results": results,
        "quick": args.quick,
        "auto_backend": AUTO_BACKEND,
        "wall_seconds": time.time() - started,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(report, indent=2))
    text = render(report)
    from mnistlab.core import fileio

    fileio.write_text(args.out, text)
    print(text)


def _find(results, family, label):
    for result in results:
        if result["family"] == family and result["label"] == label and "epoch_seconds" in result:
            return result
    return None


def render(report):
    peak, results, machine = report["peak"], report["results"], report["machine"]
    fp32_peak = peak.get("fp32_gflops")
    lines = [
        "# Benchmarks",
        "",
        f"Measured by `python benchmarks/bench.py{' --quick' if report['quick'] else ''}` on {report['date']}, in one run ({report['wall_seconds'] / 60:.0f} min); every figure in the tables comes from that run (the notes after them say where theirs come from).",
        "",
        "**Machine:** " + ", ".join(f"{k}: {v}" for k, v in machine.items()),
        "",
        f"**Peak matmul throughput** (torch on {peak.get('peak_device', 'cpu')}, {peak.get('torch_threads')} threads, {peak.get('peak_size', 2048)}x{peak.get('peak_size', 2048)}): fp32 {peak.get('fp32_gflops', 0):.0f} GFLOP/s, bf16 {peak.get('bf16_gflops', 0):.0f} GFLOP/s.",
        "",
        "Epoch time is the steady state (mean of the epochs after the first, which includes compilation) of one training epoch at batch 128, scaled to 60,000 images"
        + (" (quick mode: measured on 6,000)" if report["quick"] else "")
        + "; rows marked * were timed on a subset because they take minutes per epoch. FLOP limit = 3 x forward FLOPs x 60,000 / fp32 peak.",
        "",
    ]
    for family in LISTINGS:
        rows = [r for r in results if r["family"] == family]
        if not rows:
            continue
        book = _find(results, family, "book (TF, as written)")
        plain = _find(results, family, "plain PyTorch loop")
        default_label = f"mnistlab {report['auto_backend'][family]}"
        default = _find(results, family, default_label)
        flops = next((r.get("flops_forward") for r in rows if r.get("flops_forward")), None)
        limit = 3 * flops * FULL_SAMPLES / (fp32_peak * 1e9) if flops and fp32_peak else None
        lines.append(f"## {LISTINGS[family]} ({family})")
        lines.append("")
        if flops:
            lines.append(
                f"Forward pass: {flops / 1e6:.2f} MFLOP per image (counted from the Keras layers); fp32 FLOP limit per epoch: {limit:.2f} s."
            )
            lines.append("")
        lines.append(
            "| path | epoch (s) | each epoch after the first (s) | images/s | vs book | vs plain PyTorch | vs FLOP limit | fraction of fp32 peak |"
        )
        lines.append("|---|---|---|---|---|---|---|---|")
        for row in rows:
            if "epoch_seconds" not in row:
                lines.append(f"| {row['label']} | failed: {row.get('error', '?')[:80]} | | | | | | |")
                continue
            seconds = row["epoch_seconds"]
            star = "*" if row["samples"] < (6000 if report["quick"] else FULL_SAMPLES) else ""
            label = row["label"] + (" (default)" if row["label"] == default_label else "")
            each_epoch = ", ".join(f"{t * FULL_SAMPLES / row['samples']:.1f}" for t in row["epoch_times"][1:])
            fraction = (3 * flops * FULL_SAMPLES / seconds) / (fp32_peak * 1e9) if flops and fp32_peak else None
            lines.append(
                f"| {label}{star} | {seconds:.2f} | {each_epoch} | {FULL_SAMPLES / seconds:,.0f} | "
                + (f"{book['epoch_seconds'] / seconds:.2f}x" if book else "n/a")
                + " | "
                + (f"{plain['epoch_seconds'] / seconds:.2f}x" if plain else "n/a")
                + " | "
                + (f"{seconds / limit:.2f}x" if limit else "n/a")
                + " | "
                + (f"{100 * fraction:.0f}%" if fraction is not None else "n/a")
                + " |"
            )
        lines.append("")
        lines.append(
            "Ratios: 'vs book' and 'vs plain PyTorch' are how many times faster than that baseline (higher is better); 'vs FLOP limit' is epoch time / limit (1.00x = at the fp32 peak)."
        )
        lines.append("")
        inference = [r for r in rows if r.get("single_p50_ms") is not None]
        if inference:
            lines.append("| inference | 10,000 test images (s) | single image p50 (ms) | p99 (ms) |")
            lines.append("|---|---|---|---|")
            for row in inference:
                lines.append(
                    f"| Keras {row['backend']}, predict_on_batch (compiled; what mnistlab serves with) | {row['test_set_seconds']:.2f} | {row['single_p50_ms']:.2f} | {row['single_p99_ms']:.2f} |"
                )
                lines.append(
                    f"| Keras {row['backend']}, direct call model(x) | | {row['direct_p50_ms']:.2f} | {row['direct_p99_ms']:.2f} |"
                )
                if row.get("onnx_single_p50_ms") is not None:
                    lines.append(
                        f"| ONNX Runtime | {row['onnx_test_set_seconds']:.2f} | {row['onnx_single_p50_ms']:.2f} | {row['onnx_single_p99_ms']:.2f} |"
                    )
            lines.append("")
        if default:
            lines.append(
                f"Default path ({default_label}): {default['epoch_seconds']:.2f} s per epoch"
                + (f", {book['epoch_seconds'] / default['epoch_seconds']:.2f}x the book's script" if book else "")
                + (f", {plain['epoch_seconds'] / default['epoch_seconds']:.2f}x plain PyTorch." if plain else ".")
            )
            lines.append("")
    lines += targets_table(report)
    if NOTES.exists():
        lines += ["", NOTES.read_text().strip()]
    return "\n".join(lines) + "\n"


def targets_table(report):
    """The speed issue's targets, each read from this run's own measurements."""
    results, fp32_peak = report["results"], report["peak"].get("fp32_gflops")
    where = "Every figure from the tables above (this run, this machine)."
    if report["quick"]:
        where += " Quick mode: 6,000 images, 2 epochs; the targets are for full-size runs, so read these as a smoke check only."
    lines = ["## Against the targets", "", where, "", "| target | measured | met? |", "|---|---|---|"]

    def add(target, measured, met):
        lines.append(f"| {target} | {measured} | {'yes' if met else 'no'} |")

    for family, target in TARGETS.items():
        default = _find(results, family, f"mnistlab {report['auto_backend'][family]}")
        book = _find(results, family, "book (TF, as written)")
        plain = _find(results, family, "plain PyTorch loop")
        bf16 = _find(results, family, "mnistlab bf16 (default backend)")
        if not default:
            continue
        name, seconds = LISTINGS[family], default["epoch_seconds"]
        add(
            f"{name}: epoch <= {target['epoch_seconds']} s",
            f"{seconds:.2f} s ({default['backend']})",
            seconds <= target["epoch_seconds"],
        )
        if book:
            ratio = book["epoch_seconds"] / seconds
            add(
                f"{name}: >= {target['vs_book']}x the book's script",
                f"{ratio:.2f}x (book {book['epoch_seconds']:.2f} s)",
                ratio >= target["vs_book"],
            )
        if plain:
            add(
                f"{name}: faster than plain PyTorch",
                f"{plain['epoch_seconds'] / seconds:.2f}x",
                seconds < plain["epoch_seconds"],
            )
        flops = default.get("flops_forward")
        if bf16 and flops and fp32_peak:
            limit = 3 * flops * FULL_SAMPLES / (fp32_peak * 1e9)
            add(
                f"{name}: bf16 faster than the fp32 FLOP limit",
                f"{bf16['epoch_seconds']:.2f} s vs {limit:.2f} s",
                bf16["epoch_seconds"] < limit,
            )
        if default.get("single_p50_ms") is not None:
            add(
                f"{name}: single image p50 <= {SINGLE_IMAGE_P50_MS:g} ms in-process",
                f"{default['single_p50_ms']:.2f} ms",
                default["single_p50_ms"] <= SINGLE_IMAGE_P50_MS,
            )
        if "test_set_seconds" in target and default.get("test_set_seconds") is not None:
            add(
                f"{name}: 10,000 test images <= {target['test_set_seconds']:g} s",
                f"{default['test_set_seconds']:.2f} s",
                default["test_set_seconds"] <= target["test_set_seconds"],
            )
    return lines


if __name__ == "__main__":
    main()

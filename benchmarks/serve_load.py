"""Load on `mnistlab serve`, measured from outside: requests/s and latency at 1, 10 and 50 clients.

Trains the book's three listings briefly on the built-in data (speed does
not depend on how well they learned, only on their architecture), starts
`mnistlab serve` on loopback in its own process, as a user would, and sends
the page's kind of request, a 280x280 PNG drawing, from keep-alive clients
(threads in this process, on the same machine: their own CPU use is part of
the figure). Each level is bounded in count and time. Writes the raw results
(date, commit, machine) to benchmarks/serve-results.json; BENCHMARKS.md shows
them (scripts/render_docs.py).

Usage: python benchmarks/serve_load.py [--seconds 10] [--workers 0,1,2] [--baseline-src [NAME=]DIR]...
"""

import argparse
import asyncio
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

from mnistlab.core import provenance

REPO = pathlib.Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "serve-results.json"
LEVELS = (1, 10, 50)


def train_listings(root):
    from mnistlab.core import presets
    from mnistlab.ml import data, run_model

    mini = data.load_mnist_mini()
    run_dirs = []
    for name in ("listing-1.3.2", "listing-1.4.1", "listing-1.5.1"):
        run_dir = root / name
        run_model.train_and_save(
            presets.get(name).build_config(epochs=1, limit=600),
            dataset=mini,
            preset=name,
            run_dir=run_dir,
            verbose=0,
            log=lambda message: None,
        )
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


def stroke_frames(mini, index, frames=6):
    """Test digit INDEX as a learner draws it, top to bottom: the PNG the page sends after each stroke update."""
    from PIL import Image

    ink = np.asarray(Image.fromarray(mini.x_test[index]).resize((200, 200)))
    rows = np.flatnonzero(ink.max(axis=1) > 64)
    pngs = []
    for frame in range(1, frames + 1):
        shown = ink.copy()
        shown[rows[0] + (rows[-1] - rows[0]) * frame // frames + 1 :] = 0
        canvas = np.zeros((280, 280, 4), np.uint8)
        canvas[40:240, 40:240, :3] = shown[..., None]
        canvas[..., 3] = 255
        buffer = io.BytesIO()
        Image.fromarray(canvas, "RGBA").save(buffer, format="PNG")
        pngs.append(buffer.getvalue())
    return pngs


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- the load: its own process (asyncio, raw keep-alive HTTP/1.1), so that the clients'
# -- cost is small and not tangled with the server's; it shares the machine's cores.


async def _post(reader, writer, path, body, client_id):
    writer.write(
        b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\nX-Client-Id: %s\r\nContent-Length: %d\r\n\r\n"
        % (path, client_id, len(body))
        + body
    )
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def _predicting_client(port, payloads, number, deadline, count, out):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    client_id = b"load-%d" % number
    for request in range(count):
        if time.perf_counter() > deadline:
            break
        started = time.perf_counter()
        status = await _post(reader, writer, b"/api/predict", payloads[(number + request) % len(payloads)], client_id)
        out.append((time.perf_counter() - started, status))
    writer.close()


async def _learner(port, drawings, number, deadline, predictions, explanations, draw_seconds, pause_seconds):
    """One learner of the class, as the page behaves: while drawing, one prediction in flight, the next
    sent when it returns; after each shown prediction an explanation, one in flight, the newest waiting
    (and after a 503, again when Retry-After says)."""
    predict_connection = await asyncio.open_connection("127.0.0.1", port)
    explain_connection = await asyncio.open_connection("127.0.0.1", port)
    client_id = b"learner-%d" % number
    wanted, wake = [None], asyncio.Event()

    async def explaining():
        while time.perf_counter() < deadline:
            await wake.wait()
            wake.clear()
            body, wanted[0] = wanted[0], None
            if body is None:
                continue
            started = time.perf_counter()
            status = await _post(*explain_connection, b"/api/explain", body, client_id)
            explanations.append((time.perf_counter() - started, status))
            if status == 503 and wanted[0] is None:
                await asyncio.sleep(1.0)
                wanted[0] = body
            if wanted[0] is not None:
                wake.set()

    explainer = asyncio.create_task(explaining())
    drawing = number
    await asyncio.sleep((number % 10) * pause_seconds / 10)  # the class does not start in step
    while time.perf_counter() < deadline:
        frames = drawings[drawing % len(drawings)]
        stroke_end = time.perf_counter() + draw_seconds
        update = 0
        while time.perf_counter() < min(stroke_end, deadline):
            body = frames[min(update * len(frames) // 12, len(frames) - 1)]  # about 12 updates per drawing
            started = time.perf_counter()
            status = await _post(*predict_connection, b"/api/predict", body, client_id)
            predictions.append((time.perf_counter() - started, status))
            if status == 200:
                wanted[0] = body
                wake.set()
            update += 1
            await asyncio.sleep(1 / 60)  # the next pointer move
        drawing += 1
        await asyncio.sleep(pause_seconds)  # looking at the answer before drawing again
    explainer.cancel()
    for _, writer in (predict_connection, explain_connection):
        writer.close()


async def _attacker(port, bombs, number, deadline, out):
    """A hostile client: sends large-dimension PNGs (tiny files, huge pictures) to /api/predict without a pause."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    client_id = b"attacker-%d" % number
    request = number
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        status = await _post(reader, writer, b"/api/predict", bombs[request % len(bombs)], client_id)
        out.append((time.perf_counter() - started, status))
        request += 1
    writer.close()


def _attack_summary(samples, wall):
    """What the hostile clients got: each answer's status counted, and how long each took."""
    latencies = np.array(sorted(latency for latency, _ in samples)) if samples else np.zeros(1)
    statuses = {}
    for _, status in samples:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    return {
        "requests": len(samples),
        "statuses": statuses,
        "server_errors": sum(status >= 500 for _, status in samples),
        "p50_ms": round(1000 * float(np.percentile(latencies, 50)), 1),
        "p99_ms": round(1000 * float(np.percentile(latencies, 99)), 1),
        "max_ms": round(1000 * float(latencies.max()), 1),
        "requests_per_second": round(len(samples) / wall, 1),
    }


def _summary(samples, wall):
    latencies = np.array(sorted(latency for latency, _ in samples)) if samples else np.zeros(1)
    statuses = [status for _, status in samples]
    return {
        "requests": len(samples),
        "errors": sum(status >= 500 and status != 503 for status in statuses)
        + sum(400 <= status < 500 and status != 409 for status in statuses),
        "shed_503": sum(status == 503 for status in statuses),
        "replaced_409": sum(status == 409 for status in statuses),
        "requests_per_second": round(len(samples) / wall, 1),
        "p50_ms": round(1000 * float(np.percentile(latencies, 50)), 1),
        "p99_ms": round(1000 * float(np.percentile(latencies, 99)), 1),
    }


def load_process_main(spec):
    """The client process: run one load described by SPEC (a dict), print its summary as JSON."""
    payloads = [pathlib.Path(path).read_bytes() for path in spec["payloads"]]
    deadline = time.perf_counter() + spec["seconds"]

    async def predicting():
        out = []
        await asyncio.gather(
            *(
                _predicting_client(spec["port"], payloads, number, deadline, spec["count"], out)
                for number in range(spec["clients"])
            )
        )
        return {"predict": out}

    async def classroom():
        frames = max(1, spec["frames"])
        drawings = [payloads[start : start + frames] for start in range(0, len(payloads), frames)]
        predictions, explanations, attacks = [], [], []
        bombs = [pathlib.Path(path).read_bytes() for path in spec.get("bombs", ())]
        await asyncio.gather(
            *(
                _learner(
                    spec["port"],
                    drawings,
                    number,
                    deadline,
                    predictions,
                    explanations,
                    spec["draw_seconds"],
                    spec["pause_seconds"],
                )
                for number in range(spec["clients"])
            ),
            *(_attacker(spec["port"], bombs, number, deadline, attacks) for number in range(spec.get("attackers", 0))),
        )
        return {"predict": predictions, "explain": explanations, **({"attack": attacks} if bombs else {})}

    started = time.perf_counter()
    samples = asyncio.run(predicting() if spec["mode"] == "predict" else classroom())
    wall = time.perf_counter() - started
    summaries = {
        kind: (_attack_summary if kind == "attack" else _summary)(values, wall) for kind, values in samples.items()
    }
    print(json.dumps({"clients": spec["clients"], "seconds": round(wall, 2), **summaries}))


def run_load(spec):
    """SPEC's load from its own process; its summary."""
    done = subprocess.run(
        [sys.executable, __file__, "--load", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=spec["seconds"] + 120,
        check=True,
    )
    return json.loads(done.stdout)


def mean_ms(work, repeats):
    """Mean milliseconds of WORK over REPEATS calls, after one call to warm it up."""
    work()
    started = time.perf_counter()
    for _ in range(repeats):
        work()
    return round(1000 * (time.perf_counter() - started) / repeats, 3)


def profile_request(run_dirs, payload, repeats=300):
    """Where one request's time goes, in this process: decode + preprocess, each model, the JSON answer (ms each)."""
    from mnistlab.ml import predict, preprocess

    predictors = [predict.Predictor(run_dir) for run_dir in run_dirs]
    image, _ = preprocess.prepare_file(payload, name="drawing")
    timings = {"decode_and_preprocess": mean_ms(lambda: preprocess.prepare_file(payload, name="drawing"), repeats)}
    for predictor in predictors:
        timings[f"model_{predictor.family}"] = mean_ms(lambda: predictor.predict(image[None]), repeats)
    answer = {
        "input": np.round(image, 4).tolist(),
        "predictions": [{"probabilities": [0.1] * 10, "top": [{"class": 1}] * 3} for _ in predictors],
    }
    timings["json_answer"] = mean_ms(lambda: json.dumps(answer, separators=(",", ":")), repeats)
    return timings


@contextlib.contextmanager
def serving(run_dirs, source=None, workers=None, log_path=None):
    """`mnistlab serve RUN_DIRS [--workers N]` in its own process, as a user starts it (from SOURCE's src/ if given); yields its port once it answers."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    if source:
        env["PYTHONPATH"] = str(source)
    command = [sys.executable, "-m", "mnistlab", "serve", *run_dirs, "--port", str(port)]
    if workers is not None:
        command += ["--workers", str(workers)]
    log = open(log_path or os.devnull, "w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(480):
            if server.poll() is not None:
                raise RuntimeError(f"the server stopped (exit {server.returncode}); see {log_path}")
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
        server.wait(timeout=60)
        log.close()


def measure_server(name, run_dirs, payload_paths, classroom_paths, source, workers, args, scratch):
    """Start one server, warm it up, then: predict-only at each level, and the classroom replay."""
    with serving(run_dirs, source, workers, log_path=scratch / f"{name}.log") as port:
        load = {"port": port, "payloads": payload_paths, "mode": "predict", "count": 10**9}
        run_load({**load, "clients": 10, "seconds": 3})  # warm-up: compiled model calls, thread pools
        levels = [
            {"clients": clients, **run_load({**load, "clients": clients, "seconds": args.seconds})}
            for clients in LEVELS
        ]
        classroom = run_load(
            {
                "port": port,
                "payloads": classroom_paths,
                "mode": "classroom",
                "clients": args.learners,
                "seconds": args.classroom_seconds,
                "frames": FRAMES,
                "draw_seconds": 1.5,
                "pause_seconds": 2.0,
                "count": 0,
            }
        )
    return {
        "server": name,
        "source": str(source) if source else "this checkout",
        "workers": workers,
        "levels": levels,
        "classroom": classroom,
    }


FRAMES = 6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10, help="length of each predict-only level")
    parser.add_argument("--learners", type=int, default=50)
    parser.add_argument("--classroom-seconds", type=float, default=20)
    parser.add_argument("--workers", default="0,1,2", help="the worker counts to measure, comma-separated")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument(
        "--baseline-src",
        metavar="[NAME=]DIR",
        action="append",
        default=[],
        help="also measure the server from another checkout's src/ (e.g. the commit before a change), in the same run, with its default workers; NAME labels it (default: baseline); may be given more than once",
    )
    parser.add_argument("--load", help=argparse.SUPPRESS)  # the client process
    args = parser.parse_args()
    if args.load:
        return load_process_main(json.loads(args.load))
    os.environ.setdefault("KERAS_BACKEND", "jax")
    with tempfile.TemporaryDirectory(prefix="mnistlab-serve-load-") as scratch:
        scratch = pathlib.Path(scratch)
        run_dirs, mini = train_listings(scratch)
        payload_paths = []
        for index in range(8):
            path = scratch / f"drawing-{index}.png"
            path.write_bytes(drawing_png(mini, index))
            payload_paths.append(str(path))
        classroom_paths = []
        for index in range(10):
            for frame, png in enumerate(stroke_frames(mini, index, FRAMES)):
                path = scratch / f"learner-{index}-{frame}.png"
                path.write_bytes(png)
                classroom_paths.append(str(path))
        servers = [(f"workers={count}", None, int(count)) for count in args.workers.split(",")]
        for other in args.baseline_src:
            name, _, source = other.rpartition("=")
            servers.append((name or "baseline", source, None))
        measured = []
        for name, source, workers in servers:
            measured.append(
                measure_server(name, run_dirs, payload_paths, classroom_paths, source, workers, args, scratch)
            )
            print(json.dumps(measured[-1]), flush=True)
        profile = profile_request(run_dirs, pathlib.Path(payload_paths[1]).read_bytes())
    result = {
        **provenance.stamp(REPO),
        "request": "POST /api/predict, a 280x280 RGBA PNG drawing, three models (the book's listings) per request, keep-alive",
        "clients_note": "the clients run in one asyncio process on the same machine as the server: they share its cores",
        "classroom": f"{args.learners} learners, each: drawing for 1.5 s (a prediction in flight at a time, the next after the answer and the next pointer move, {FRAMES} stroke stages of a test digit), then 2 s looking; an explanation after each shown prediction, one in flight, the newest waiting, again after Retry-After on a 503",
        "servers": measured,
        "profile_ms": profile,
    }
    pathlib.Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    for server in measured:
        print(server["server"])
        for level in server["levels"]:
            print(
                f"  {level['clients']:>3} clients: {level['predict']['requests_per_second']:>7.1f} requests/s, p50 {level['predict']['p50_ms']} ms, p99 {level['predict']['p99_ms']} ms, {level['predict']['errors']} errors, {level['predict']['shed_503']} shed"
            )
        room = server["classroom"]
        print(
            f"  classroom: predict p50 {room['predict']['p50_ms']} ms p99 {room['predict']['p99_ms']} ms ({room['predict']['shed_503']} shed, {room['predict']['errors']} errors); explain p50 {room['explain']['p50_ms']} ms p99 {room['explain']['p99_ms']} ms, {room['explain']['shed_503']} of {room['explain']['requests']} shed"
        )


if __name__ == "__main__":
    main()

"""The shared site's promises, measured on the path a user runs: its size, its first answer, its answer per stroke.

  build    the book's three listings trained by `mnistlab train` (one epoch of mnist-mini: a network's size
           does not depend on its data or epochs), then `mnistlab site` of the three;
           target: at most 20 MB on disk, 6 MB gzip-compressed (each file, as a static host sends it)
  parity   the page's probabilities for 1,000 digits (mnist-mini's 600 test digits and 400 training ones)
           against Keras' in a process of its own: the largest difference, the share of equal classes
  first    the site served by `python -m http.server`, opened in a fresh headless Chromium context (an empty
           cache) each time; a stroke is drawn as soon as the pad is on the page; the time from navigation
           start to the first answer shown, on the page's clock; target: 2 s
  stroke   one page, STROKES strokes drawn with the mouse at a hand's pace (a point every 16 ms, one
           screen frame), each after Clear; per stroke, the time from the pen's release to the answers and
           the inside views of all three models shown for the finished drawing (the page's preprocessing,
           the three workers, the rendering; 0 when they were on screen as the pen lifted); also per
           drawing whose inside views were shown while drawing, from sending to shown; target: 30 ms p50
           per stroke

Writes benchmarks/site-results.json with date, commit and machine; BENCHMARKS.md shows it
(scripts/render_docs.py).

Usage: python benchmarks/site_bench.py [--strokes 40] [--loads 5]
"""

import argparse
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

from mnistlab.core import provenance

REPO = pathlib.Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "site-results.json"
LISTINGS = ("listing-1.3.2", "listing-1.4.1", "listing-1.5.1")
TARGET_BYTES = 20e6
TARGET_GZIP_BYTES = 6e6
TARGET_FIRST_MS = 2000
TARGET_STROKE_P50_MS = 30
FRAME_MS = 16
# Strokes in the pad's pixels: digits a learner draws (a seven, a one, a zero, a four), each a list of points.
STROKES = (
    [(70 + 14 * k, 70) for k in range(11)] + [(210 - 6 * k, 70 + 12 * k) for k in range(15)],
    [(140, 40 + 10 * k) for k in range(21)],
    [(140 + 60 * np.sin(a), 140 - 90 * np.cos(a)) for a in np.linspace(0, 2 * np.pi, 40)],
    [(180 - 8 * k, 40 + 12 * k) for k in range(12)] + [(92 + 10 * k, 172) for k in range(13)],
)


def mnistlab(*args, env):
    result = subprocess.run(
        [sys.executable, "-m", "mnistlab", *map(str, args)], capture_output=True, text=True, env=env
    )
    if result.returncode != 0:
        sys.exit(f"mnistlab {' '.join(map(str, args))} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def percentiles(values):
    values = np.asarray(values, dtype=float)
    return {
        "n": int(len(values)),
        "p50_ms": round(float(np.percentile(values, 50)), 1),
        "p90_ms": round(float(np.percentile(values, 90)), 1),
        "max_ms": round(float(values.max()), 1),
    }


def draw(page, points, pace_ms=FRAME_MS):
    pad = page.locator("#pad").bounding_box()
    page.mouse.move(pad["x"] + points[0][0], pad["y"] + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.wait_for_timeout(pace_ms)
        page.mouse.move(pad["x"] + x, pad["y"] + y)
    page.mouse.up()


def settled(page):
    page.wait_for_function(
        "() => window.mnistlab.sent > 0 && !window.mnistlab.busy && window.mnistlab.insideFor === window.mnistlab.shown",
        timeout=60000,
    )


def first_answers(browser, url, loads):
    """Per fresh load: ms from navigation start to the first answer shown for a stroke drawn as the pad appears."""
    times = []
    for _ in range(loads):
        context = browser.new_context()
        page = context.new_page()
        page.goto(url, wait_until="domcontentloaded")
        draw(page, STROKES[0], pace_ms=0)
        page.wait_for_function("() => window.mnistlab.timings.length > 0", timeout=60000)
        times.append(page.evaluate("() => window.mnistlab.timings[0].answered"))
        context.close()
    return times


KERAS_PROBABILITIES = """
import sys, numpy as np
from mnistlab.ml import predict
images = np.load(sys.argv[1])["images"]
predict.activate_for([], "keras")
np.savez(sys.argv[2], **{run: predict.Predictor(run).predict(images) for run in sys.argv[3:]})
"""


def page_parity(browser, url, run_dirs, scratch, env):
    """The page's probabilities for 1,000 digits (mnist-mini's 600 test digits and 400 of its training digits) against
    Keras' (`predict.Predictor`, in a process of its own): the largest difference and the share of equal classes."""
    import base64

    from mnistlab.ml import data

    mini = data.load_mnist_mini()
    images = (np.concatenate([mini.x_test, mini.x_train[:400]]).astype(np.float32) / 255.0)[:1000]
    np.savez(scratch / "images.npz", images=images)
    subprocess.run(
        [sys.executable, "-c", KERAS_PROBABILITIES, scratch / "images.npz", scratch / "keras.npz", *map(str, run_dirs)],
        env=env,
        check=True,
        capture_output=True,
    )
    expected = np.load(scratch / "keras.npz")
    page = browser.new_page()
    page.goto(url)
    page.wait_for_function("() => window.mnistlab.ready", timeout=60000)
    answers = page.evaluate(
        "async (text) => (await window.mnistlabSite.classify(new Float32Array(Uint8Array.from(atob(text), (c) => c.charCodeAt(0)).buffer), 1000)).map((p) => Array.from(p))",
        base64.b64encode(images.tobytes()).decode("ascii"),
    )
    page.close()
    rows = []
    for run_dir, probabilities in zip(run_dirs, answers):
        keras = expected[str(run_dir)]
        actual = np.asarray(probabilities).reshape(len(images), 10)
        rows.append(
            {
                "run": run_dir.name,
                "digits": len(images),
                "max_abs_difference": float(np.abs(actual - keras).max()),
                "same_class": float((actual.argmax(axis=1) == keras.argmax(axis=1)).mean()),
            }
        )
    return rows


def strokes(browser, url, count):
    """Per stroke: ms from the pen's release to the finished drawing's answers and inside views shown; and per
    drawing answered while drawing: ms from sending to the answers, and to the inside views, shown."""
    page = browser.new_page(viewport={"width": 1200, "height": 1400})
    page.goto(url)
    page.wait_for_function("() => window.mnistlab.ready", timeout=60000)
    per_stroke = []
    for k in range(count):
        page.click("#clear")
        draw(page, STROKES[k % len(STROKES)])
        settled(page)
        # The finished stroke's drawing is the pad as the pen left it (release changes nothing): the answer of that
        # version, shown when it was shown, or at once if it was on screen before the pen was lifted.
        finished = page.evaluate(
            "() => { const r = window.mnistlab.released; const t = window.mnistlab.timings.find((t) => t.version === r.version); return t ? Math.max(0, t.shown - r.at) : null; }"
        )
        if finished is None:
            sys.exit("the finished stroke's inside views were never shown")
        per_stroke.append(finished)
    timings = page.evaluate("() => window.mnistlab.timings")
    errors = page.inner_text("#status")
    page.close()
    return (
        per_stroke,
        [t["answered"] - t["sent"] for t in timings if t["answered"] is not None],  # drawings whose views were drawn
        [t["shown"] - t["sent"] for t in timings],
        errors,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strokes", type=int, default=40)
    parser.add_argument("--loads", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from mnistlab.web import site

    with tempfile.TemporaryDirectory(prefix="mnistlab-site-bench-") as scratch:
        scratch = pathlib.Path(scratch)
        env = {**os.environ, "MNISTLAB_RUNS": str(scratch / "runs")}
        env.pop("KERAS_BACKEND", None)
        run_dirs = []
        for listing in LISTINGS:
            run_dir = scratch / "runs" / listing
            mnistlab("train", listing, "--epochs", 1, "--dataset", "mnist-mini", "--out", run_dir, env=env)
            run_dirs.append(run_dir)
        started = time.perf_counter()
        mnistlab("site", *run_dirs, "--out", scratch / "site", env=env)
        build_seconds = time.perf_counter() - started
        size = site.site_size(scratch / "site")
        models = json.loads((scratch / "site" / "models" / "models.json").read_text())["models"]
        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "http.server",
                str(port),
                "--bind",
                "127.0.0.1",
                "--directory",
                str(scratch / "site"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1)
        url = f"http://127.0.0.1:{port}/"
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=os.environ.get("MNISTLAB_CHROMIUM") or shutil.which("chromium"),
                    headless=True,
                    args=["--no-sandbox", "--disable-gpu"],
                )
                parity_in_page = page_parity(browser, url, run_dirs, scratch, env)
                first = first_answers(browser, url, args.loads)
                per_stroke, answered, shown, errors = strokes(browser, url, args.strokes)
                browser_version = browser.version
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=10)
    if errors:
        sys.exit(f"the page showed an error: {errors}")
    results = {
        "what": "the book's three listings (1 epoch of mnist-mini) as one site, from `python -m http.server` on loopback, "
        f"in headless Chromium {browser_version}",
        **provenance.stamp(REPO),
        "build_seconds": round(build_seconds, 1),
        "size": {**size, "files_by_kind": _by_kind(models)},
        "parity": [{"family": m["family"], **m["parity"]} for m in models],
        "page_parity": [{"family": m["family"], **row} for m, row in zip(models, parity_in_page)],
        "first_answer_ms": [round(value, 1) for value in first],
        "per_stroke": percentiles(per_stroke),
        "while_drawing": {"answer": percentiles(answered), "answer_and_inside": percentiles(shown)},
        "targets": {
            "bytes": TARGET_BYTES,
            "gzip_bytes": TARGET_GZIP_BYTES,
            "first_answer_ms": TARGET_FIRST_MS,
            "stroke_p50_ms": TARGET_STROKE_P50_MS,
        },
    }
    results["targets_met"] = {
        "size": size["bytes"] <= TARGET_BYTES and size["gzip_bytes"] <= TARGET_GZIP_BYTES,
        "first_answer": max(first) <= TARGET_FIRST_MS,
        "stroke": results["per_stroke"]["p50_ms"] <= TARGET_STROKE_P50_MS,
    }
    OUT.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))


def _by_kind(models):
    return {m["family"]: m["file"] for m in models}


if __name__ == "__main__":
    main()

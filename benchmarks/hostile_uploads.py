"""What one upload costs the server, whatever it is: CPU time and peak memory of its answer or refusal.

Each upload goes through the server's own path, `engine.decode` (what a
worker does with a request's bytes before the models: reading the image
within `image_limits.SERVER`, then `to_mnist`), in a fresh process of its own,
so that its peak memory (the process's high-water mark beyond what it held
before) is its own. CPU is that thread's time, the best of five runs. The
uploads: the page's own drawing; the bombs of the issue (a 5000 x 5000 PNG,
gray, and RGBA with one transparent pixel); a 12 megapixel phone photo; and
the costliest uploads found within the 5 MB upload limit, accepted or not
(noise at the pixel limit, a JPEG of maximal entropy, progressive JPEGs,
repeated scans, text-chunk and metadata bombs). With --baseline-src, the same
uploads through another checkout's src/ too (e.g. the commit before a change),
in the same run. Writes the raw results (date, commit, machine) to
benchmarks/hostile-uploads.json.

Usage: python benchmarks/hostile_uploads.py [--out FILE] [--only NAME,...] [--baseline-src [NAME=]DIR]
"""

import argparse
import io
import json
import os
import pathlib
import re
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np
from PIL import Image

from mnistlab.ml import image_limits

REPO = pathlib.Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "hostile-uploads.json"
UPLOAD_LIMIT = 5 * 1024 * 1024  # serve.MAX_UPLOAD_BYTES: what reaches the engine at most
RUNS = 5


# -- the uploads ------------------------------------------------------------


def _encoded(array, fmt, mode=None, **options):
    buffer = io.BytesIO()
    (Image.fromarray(array, mode) if mode else Image.fromarray(array)).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _digit(height, width):
    """A "7" as a mask: a bar and a diagonal, a third of the picture's size, in its middle."""
    mask = np.zeros((height, width), bool)
    top, left, size = height // 3, width // 3, min(height, width) // 3
    thickness = max(2, size // 12)
    mask[top : top + thickness, left : left + size] = True
    for row in range(size):
        column = left + size - (2 * row) // 3
        mask[top + row, max(0, column - thickness) : column + thickness] = True
    return mask


def canvas_png():
    """The page's request: a digit drawn white on its 280 x 280 canvas, an opaque RGBA PNG (what toBlob sends)."""
    canvas = np.zeros((280, 280, 4), np.uint8)
    canvas[..., 3] = 255
    canvas[_digit(280, 280), :3] = 255
    return _encoded(canvas, "PNG", "RGBA")


def gray_png(side=5000):
    """The issue's bomb: a white digit on black, SIDE x SIDE gray pixels, which deflate compresses a thousandfold."""
    image = np.zeros((side, side), np.uint8)
    image[_digit(side, side)] = 255
    return _encoded(image, "PNG")


def rgba_png_one_transparent(side=5000):
    """The issue's second bomb: the same as opaque RGBA but for one transparent pixel (which sent it down a second, Pillow, decode)."""
    image = np.zeros((side, side, 4), np.uint8)
    image[..., 3] = 255
    image[_digit(side, side), :3] = 255
    image[0, 0, 3] = 0
    return _encoded(image, "PNG", "RGBA")


def photo(width, height, noise=10, seed=0):
    """A phone photo of a digit, roughly: gray paper with sensor noise, a dark stroke, RGB."""
    rng = np.random.default_rng(seed)
    paper = np.clip(180 + rng.integers(-noise, noise + 1, (height, width), dtype=np.int16), 0, 255).astype(np.uint8)
    paper[_digit(height, width)] = 30
    return np.repeat(paper[..., None], 3, axis=2)


def photo_jpeg(width=4000, height=3000, **options):
    """A 12 megapixel phone photo (4000 x 3000), baseline JPEG at quality 90, as phones write them."""
    return _encoded(photo(width, height), "JPEG", quality=options.pop("quality", 90), **options)


def noise_png(side=1000):
    """A gray PNG of the most pixels accepted, of noise (the costliest content for to_mnist's median filter) around a digit."""
    rng = np.random.default_rng(1)
    image = rng.integers(0, 60, (side, side), dtype=np.uint8)
    image[_digit(side, side)] = 255
    return _encoded(image, "PNG")


def noise_rgba_png(side=1000):
    """The same in RGBA with noisy alpha and one transparent pixel: read by its alpha channel, the costliest PNG found."""
    rng = np.random.default_rng(3)
    image = np.zeros((side, side, 4), np.uint8)
    image[..., :3] = rng.integers(0, 60, (side, side, 1), dtype=np.uint8)
    image[..., 3] = rng.integers(200, 256, (side, side), dtype=np.uint8)
    image[_digit(side, side), :3] = 255
    image[0, 0, 3] = 0
    return _encoded(image, "PNG", "RGBA")


def noise_webp(side=1000):
    """The gray noise again, as lossless WebP (libwebp's slowest decoding per pixel)."""
    rng = np.random.default_rng(4)
    image = rng.integers(0, 60, (side, side), dtype=np.uint8)
    image[_digit(side, side)] = 255
    return _encoded(image, "WEBP", lossless=True)


def entropy_jpeg(side=4000):
    """A JPEG of maximal entropy just under the upload limit: SIDE x SIDE of colour noise, no chroma subsampling (16 megapixels: the most accepted)."""
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    image[_digit(side, side)] = 255
    for quality in range(95, 4, -5):
        payload = _encoded(image, "JPEG", quality=quality, subsampling=0)
        if len(payload) <= UPLOAD_LIMIT:
            return payload
    raise RuntimeError("no quality fits the upload limit")


def progressive_jpeg(width=4000, height=3000, budget=None):
    """A progressive JPEG photo; with BUDGET bytes, the best quality within it."""
    image = photo(width, height)
    for quality in range(90, 4, -5):
        payload = _encoded(image, "JPEG", quality=quality, progressive=True)
        if budget is None or len(payload) <= budget:
            return payload
    raise RuntimeError("no quality fits the budget")


def scan_bomb(repeats=1000):
    """A small progressive JPEG with one of its scans repeated: each one a pass over every block, for 38 bytes (libjpeg warns, and decodes on)."""
    payload = _encoded(np.full((1500, 2000, 3), 128, np.uint8), "JPEG", quality=90, progressive=True)
    scans = [match.start() for match in re.finditer(b"\xff\xda", payload)]
    end = payload.rindex(b"\xff\xd9")
    return payload[:end] + payload[scans[4] : scans[5]] * repeats + payload[end:]


def _png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def text_bomb_png(chunks=200):
    """The page's drawing with CHUNKS compressed text chunks of 1 MB each (1 KB each in the file) before its pixels."""
    payload = canvas_png()
    text = _png_chunk(b"zTXt", b"comment\x00\x00" + zlib.compress(b"\x00" * (1 << 20), 9))
    return payload[:33] + text * chunks + payload[33:]


def chunk_bomb_png():
    """The page's drawing with the rest of the upload limit in empty text chunks (12 bytes each: 400,000 of them)."""
    payload = canvas_png()
    empty = _png_chunk(b"tEXt", b"")
    return payload[:33] + empty * ((UPLOAD_LIMIT - len(payload)) // len(empty)) + payload[33:]


def _drawing_jpeg():
    image = np.zeros((280, 280), np.uint8)
    image[_digit(280, 280)] = 255
    return _encoded(image, "JPEG", quality=90)


def photoshop_bomb_jpeg():
    """A drawing as JPEG with the upload limit filled by Photoshop (APP13) segments of empty resource blocks (Pillow walks each in Python)."""
    payload = _drawing_jpeg()
    blocks = b"Photoshop 3.0\x00" + b"8BIM\x04\x04\x00\x00\x00\x00\x00\x00" * 5400
    segment = b"\xff\xed" + struct.pack(">H", len(blocks) + 2) + blocks
    return payload[:2] + segment * ((UPLOAD_LIMIT - len(payload)) // len(segment)) + payload[2:]


def comment_bomb_jpeg():
    """A drawing as JPEG with the upload limit filled by one-byte comment segments (Pillow reads each marker in Python)."""
    payload = _drawing_jpeg()
    comment = b"\xff\xfe\x00\x03a"
    return payload[:2] + comment * ((UPLOAD_LIMIT - len(payload)) // len(comment)) + payload[2:]


def comment_bomb_gif():
    """A drawing as GIF with the upload limit filled by one-byte comment extensions (the server reads no GIF: refused)."""
    image = np.zeros((280, 280), np.uint8)
    image[_digit(280, 280)] = 255
    payload = _encoded(image, "GIF")
    start = payload.index(b"\x2c")  # the image descriptor
    comment = b"\x21\xfe\x01a\x00"
    return payload[:start] + comment * ((UPLOAD_LIMIT - len(payload)) // len(comment)) + payload[start:]


def json_bomb():
    """An upload-limit's worth of JSON numbers (a 28x28 JSON body takes about 20 KB)."""
    return b'{"pixels": [' + b"0," * ((UPLOAD_LIMIT - 20) // 2) + b"0]}"


CASES = {
    "canvas_png": ("the page's drawing: 280 x 280 RGBA PNG", canvas_png, "image/png"),
    "gray_png_5000": ("5000 x 5000 gray PNG", gray_png, "image/png"),
    "rgba_png_5000_one_transparent": (
        "5000 x 5000 RGBA PNG, one pixel transparent",
        rgba_png_one_transparent,
        "image/png",
    ),
    "photo_jpeg_12mp": ("12 megapixel photo: 4000 x 3000 baseline JPEG, quality 90", photo_jpeg, "image/jpeg"),
    "noise_png_1000": (
        "1000 x 1000 gray PNG of noise: the most pixels accepted, the costliest content",
        noise_png,
        "image/png",
    ),
    "noise_rgba_png_1000": (
        "1000 x 1000 RGBA PNG of noise, noisy alpha, one pixel transparent",
        noise_rgba_png,
        "image/png",
    ),
    "noise_webp_1000": ("1000 x 1000 lossless WebP of noise", noise_webp, "image/webp"),
    "entropy_jpeg_16mp": (
        "4000 x 4000 colour JPEG of noise (4:4:4), just under the 5 MB upload limit",
        entropy_jpeg,
        "image/jpeg",
    ),
    "photo_jpeg_48mp": (
        "48 megapixel photo: 8000 x 6000 baseline JPEG",
        lambda: photo_jpeg(8000, 6000, quality=50),
        "image/jpeg",
    ),
    "progressive_jpeg_12mp": ("12 megapixel progressive JPEG photo", progressive_jpeg, "image/jpeg"),
    "progressive_jpeg_4mp": (
        "2000 x 2000 progressive JPEG photo, just under 1 MiB",
        lambda: progressive_jpeg(2000, 2000, budget=1 << 20),
        "image/jpeg",
    ),
    "scan_bomb_jpeg": ("2000 x 1500 progressive JPEG with one scan repeated 1000 times", scan_bomb, "image/jpeg"),
    "text_bomb_png": ("the drawing with 200 zTXt chunks of 1 MB each (200 KB in the file)", text_bomb_png, "image/png"),
    "chunk_bomb_png": ("the drawing with 400,000 empty text chunks", chunk_bomb_png, "image/png"),
    "photoshop_bomb_jpeg": (
        "a drawing as JPEG with 5 MB of Photoshop resource blocks",
        photoshop_bomb_jpeg,
        "image/jpeg",
    ),
    "comment_bomb_jpeg": ("a drawing as JPEG with a million comment segments", comment_bomb_jpeg, "image/jpeg"),
    "comment_bomb_gif": ("a drawing as GIF with a million comment extensions", comment_bomb_gif, "image/gif"),
    "json_5mb": ("5 MB of JSON numbers", json_bomb, "application/json"),
}


# -- one measurement, in a process of its own --------------------------------


def _resident_peak_kib(reset=False):
    """The process's peak resident memory (KiB); RESET: from now on, where Linux allows it (else since the start).

    Linux's VmHWM, reset by writing 5 to /proc/self/clear_refs: getrusage's ru_maxrss is no use
    here, as a child process starts from its parent's peak (this script's parent builds 400 MB of
    pixels to encode the bombs).
    """
    import resource

    try:
        if reset:
            pathlib.Path("/proc/self/clear_refs").write_text("5")
        status = pathlib.Path("/proc/self/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))
    except (OSError, AttributeError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure(path, content_type):
    """The answer to one upload through engine.decode: status, message, CPU (best of RUNS) and peak memory beyond the process's before it."""
    import time
    import tracemalloc

    from mnistlab.core.errors import MnistlabError
    from mnistlab.serving import engine

    payload = pathlib.Path(path).read_bytes()
    engine.decode(canvas_png(), "image/png")  # every module and codec this path uses, loaded
    engine.decode(_drawing_jpeg(), "image/jpeg")
    before = _resident_peak_kib(reset=True)

    def once():
        try:
            _, info = engine.decode(payload, content_type)
            return (
                200,
                f"a 28x28 input from {info['source_shape'][1]} x {info['source_shape'][0]} pixels decoded",
                info["source_shape"],
            )
        except MnistlabError as error:
            return error.http_status, str(error), None

    times = []
    for _ in range(RUNS):
        started = time.thread_time()
        status, message, decoded = once()
        times.append(1000 * (time.thread_time() - started))
    peak_rss = (_resident_peak_kib() - before) / 1024
    tracemalloc.start()
    once()
    traced = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return {
        "status": status,
        "answer": message,
        "decoded": decoded,
        "cpu_ms": round(min(times), 2),
        "cpu_ms_runs": [round(value, 2) for value in times],
        "peak_rss_mib": round(peak_rss, 1),
        "traced_peak_mib": round(traced, 1),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--only", help="comma-separated case names (nothing is written)")
    parser.add_argument(
        "--baseline-src",
        metavar="[NAME=]DIR",
        help="also measure each upload through another checkout's src/, e.g. the commit before a change; NAME labels it (default: baseline)",
    )
    parser.add_argument("--measure", nargs=2, metavar=("FILE", "CONTENT_TYPE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return
    from mnistlab.core import provenance

    names = args.only.split(",") if args.only else list(CASES)
    baseline_name, _, baseline_src = (args.baseline_src or "").rpartition("=")
    baseline_name = baseline_name or "baseline"

    def measured_by(path, content_type, source=None):
        env = {**os.environ, "PYTHONPATH": str(pathlib.Path(source).resolve())} if source else None
        done = subprocess.run(
            [sys.executable, __file__, "--measure", str(path), content_type],
            capture_output=True,
            text=True,
            timeout=900,
            check=True,
            env=env,
        )
        return json.loads(done.stdout.splitlines()[-1])

    results = []
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            description, build, content_type = CASES[name]
            payload = build()
            path = pathlib.Path(folder) / name
            path.write_bytes(payload)
            measured = measured_by(path, content_type)
            results.append(
                {"case": name, "upload": description, "bytes": len(payload), "content_type": content_type, **measured}
            )
            print(
                f"{name:32} {len(payload) / 1024:8.0f} KiB  {measured['status']}  {measured['cpu_ms']:8.2f} ms  rss +{measured['peak_rss_mib']:5.1f} MiB  traced {measured['traced_peak_mib']:5.1f} MiB  {measured['answer'][:90]}",
                flush=True,
            )
            if baseline_src:
                before = measured_by(path, content_type, baseline_src)
                results[-1][baseline_name] = {
                    key: before[key] for key in ("status", "answer", "decoded", "cpu_ms", "peak_rss_mib")
                }
                print(
                    f"{'  ' + baseline_name:32} {'':12}  {before['status']}  {before['cpu_ms']:8.2f} ms  rss +{before['peak_rss_mib']:5.1f} MiB  {before['answer'][:90]}",
                    flush=True,
                )
    limits = {key: value for key, value in vars(image_limits.SERVER).items() if key != "formats_named"}
    result = {
        **provenance.stamp(REPO),
        "what": "each upload through engine.decode (a worker's path before the models), in a fresh process: CPU of that thread, best of 5 runs; peak resident memory beyond the process's before (Linux's VmHWM, reset first); tracemalloc's peak (Python and NumPy only)",
        "limits": limits,
        "photo_pixels": image_limits.PHOTO_PIXELS,
        **({"baseline": baseline_name} if baseline_src else {}),  # each case's figures through it, under that name
        "cases": results,
    }
    if not args.only:
        pathlib.Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

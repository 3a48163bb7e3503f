"""A class of 50 drawing while 4 hostile clients keep sending 5000x5000 PNGs (grey, and RGBA with one transparent
pixel: tiny files, huge pictures), against `mnistlab serve` as a user starts it (2 model workers).

    python benchmarks/classroom_under_attack.py [--seconds 20] [--baseline-src DIR]

Writes benchmarks/classroom-under-attack.json: the learners' predict latencies (p50, p99) and errors, and each
hostile request's status and latency. The target (issue "Hold under hostile input"): predict p99 at most 150 ms
with no 5xx, each large image refused or answered within 100 ms. The class is serve_load.py's replay.
`--baseline-src DIR` measures another checkout's server (its src/) the same way, in the same run.
"""

import argparse
import io
import json
import os
import pathlib
import tempfile

import numpy as np
import serve_load
from PIL import Image

from mnistlab.core import provenance

REPO = pathlib.Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "classroom-under-attack.json"
SIDE = 5000


def bombs(scratch):
    """The two hostile files: a grey 5000x5000 PNG, and an RGBA one with a single transparent pixel."""
    paths = []
    grey = np.zeros((SIDE, SIDE), np.uint8)
    grey[SIDE // 3 : 2 * SIDE // 3, SIDE // 2 - 200 : SIDE // 2 + 200] = 255  # a stroke, so it is a "digit"
    rgba = np.zeros((SIDE, SIDE, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[0, 0, 3] = 0
    rgba[SIDE // 3 : 2 * SIDE // 3, SIDE // 2 - 200 : SIDE // 2 + 200, :3] = 255
    for name, array, mode in (("grey", grey, "L"), ("rgba", rgba, "RGBA")):
        buffer = io.BytesIO()
        Image.fromarray(array, mode).save(buffer, format="PNG", optimize=True)
        path = scratch / f"bomb-{name}.png"
        path.write_bytes(buffer.getvalue())
        paths.append(str(path))
    return paths


def measure(name, run_dirs, classroom_paths, bomb_paths, source, args, scratch):
    with serve_load.serving(run_dirs, source, 2 if source is None else None, log_path=scratch / f"{name}.log") as port:
        serve_load.run_load(
            {
                "port": port,
                "payloads": classroom_paths[:8],
                "mode": "predict",
                "count": 10**9,
                "clients": 10,
                "seconds": 3,
            }
        )  # warm-up
        room = serve_load.run_load(
            {
                "port": port,
                "payloads": classroom_paths,
                "mode": "classroom",
                "clients": args.learners,
                "seconds": args.seconds,
                "frames": serve_load.FRAMES,
                "draw_seconds": 1.5,
                "pause_seconds": 2.0,
                "count": 0,
                "bombs": bomb_paths,
                "attackers": args.attackers,
            }
        )
    return {"server": name, "source": str(source) if source else "this checkout", **room}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--learners", type=int, default=50)
    parser.add_argument("--attackers", type=int, default=4)
    parser.add_argument("--baseline-src", metavar="DIR")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    os.environ.setdefault("KERAS_BACKEND", "jax")
    with tempfile.TemporaryDirectory(prefix="mnistlab-attack-") as scratch:
        scratch = pathlib.Path(scratch)
        run_dirs, mini = serve_load.train_listings(scratch)
        classroom_paths = []
        for index in range(10):
            for frame, png in enumerate(serve_load.stroke_frames(mini, index, serve_load.FRAMES)):
                path = scratch / f"learner-{index}-{frame}.png"
                path.write_bytes(png)
                classroom_paths.append(str(path))
        bomb_paths = bombs(scratch)
        sizes = {pathlib.Path(path).name: pathlib.Path(path).stat().st_size for path in bomb_paths}
        servers = [measure("this checkout (workers=2)", run_dirs, classroom_paths, bomb_paths, None, args, scratch)]
        if args.baseline_src:
            servers.append(measure("baseline", run_dirs, classroom_paths, bomb_paths, args.baseline_src, args, scratch))
    result = {
        **provenance.stamp(REPO),
        "load": f"{args.learners} learners as serve_load.py's classroom replay, for {args.seconds:g} s, while {args.attackers} clients send "
        f"{SIDE}x{SIDE} PNGs (grey and RGBA with one transparent pixel) to /api/predict without a pause",
        "bomb_bytes": sizes,
        "servers": servers,
    }
    pathlib.Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    for server in servers:
        print(server["server"])
        print(
            f"  learners: predict p50 {server['predict']['p50_ms']} ms, p99 {server['predict']['p99_ms']} ms, {server['predict']['errors']} errors, {server['predict']['shed_503']} shed"
        )
        print(
            f"  attackers: {server['attack']['requests']} requests, statuses {server['attack']['statuses']}, p99 {server['attack']['p99_ms']} ms, max {server['attack']['max_ms']} ms"
        )


if __name__ == "__main__":
    main()

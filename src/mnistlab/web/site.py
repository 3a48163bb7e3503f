"""A shared site: trained runs as a static web page that draws, answers and shows the inside, with no server.

`build_site(RUNS, OUT)` writes a folder that any static host serves (GitHub Pages, `python -m http.server`,
a university web space) and that needs no other network: the draw page (index.html and its static files,
the same pad and inside view as `serve`'s page), each run's inside-view graph as ONNX (`export_for_page`:
every layer the inside view shows, the RNN's belief after each row, the probabilities, each checked
against Keras), models.json (what each model is, was trained on and scored, and what its graph's outputs
are), and the browser runtime (onnxruntime-web, pinned and verified: `site_runtime`) with its licence.
The page runs each model in a Web Worker of its own, so the pen never waits for a network, and the
models answer side by side; its Content-Security-Policy allows only its own files.

The folder is written beside OUT and renamed into place whole: an error leaves nothing half-written.
"""

import base64
import datetime
import gzip
import json
import pathlib
import shutil
import tempfile

import numpy as np

from mnistlab import __version__
from mnistlab.analysis import seeds
from mnistlab.core import fileio, paths, presets, stats
from mnistlab.core.errors import ConfigError, RunDirError
from mnistlab.record import rundir
from mnistlab.web import site_runtime, templating

MAX_MODELS = 6  # cards side by side on one page; each model is a worker and a download
STATIC = pathlib.Path(__file__).resolve().parent / "static"
PAGE = templating.SITE_PAGE
# The page's own files, from the draw page's static folder: the pad, the inside view and its colours are
# the ones `serve`'s page loads; site.js, site-worker.js and preprocess.js are the site's own.
STATIC_FILES = (
    "common.css",
    "draw.css",
    "inside.css",
    "site.css",
    "decode.js",
    "colours.js",
    "inside.js",
    "pad.js",
    "cards.js",
    "preprocess.js",
    "site.js",
    "site-messages.js",
    "site-worker.js",
    "favicon.svg",
)
# The runtime files the page loads (the loader, its glue module, its WebAssembly) and the licence.
# The runtime files the page loads (the loader, its glue module, its WebAssembly), and the licence, as a text file
# (a file without an extension reaches a browser as a download from some hosts).
RUNTIME_FILES = {
    "ort.wasm.min.js": "ort.wasm.min.js",
    "ort-wasm-simd-threaded.mjs": "ort-wasm-simd-threaded.mjs",
    "ort-wasm-simd-threaded.wasm": "ort-wasm-simd-threaded.wasm",
    "LICENSE": "LICENSE.txt",
}
MANIFEST = "models.json"
MANIFEST_FORMAT = 1


def build_site(runs, out, store_path=None, cache=None, fetch=None, log=None):
    """Write the site of RUNS (run directories or store ids) to the folder OUT; returns what was written.

    OUT must not exist or be empty. CACHE and FETCH are `site_runtime.runtime_files`'s (where the runtime
    is kept, and how it is fetched the first time). LOG(line) is told each step."""
    from mnistlab.ml import export

    log = log or (lambda line: None)
    run_dirs = resolve_runs(runs, store_path)
    out = pathlib.Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out} exists and is not an empty folder; choose another --out or delete it")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        building = pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    except OSError as error:
        raise ConfigError(f"{out}: cannot write there ({error.strerror}); choose another --out") from None
    building.chmod(0o755)  # mkdtemp's is 0700: a web server running as another user must read the folder
    try:
        runtime = site_runtime.runtime_files(cache, fetch)  # before the exports: offline, say so at once
        (building / "models").mkdir()
        models = []
        for number, run_dir in enumerate(run_dirs, start=1):
            config, _ = rundir.read_config(run_dir)
            name = f"{number}-{config.family}.onnx"
            log(f"exporting {run_dir} ({config.family}) to models/{name}")
            result, layout = export.export_for_page(run_dir, building / "models" / name)
            models.append(_model_entry(run_dir, name, result, layout, store_path))
        manifest = {
            "format": MANIFEST_FORMAT,
            "mnistlab": __version__,
            "runtime": f"{site_runtime.PACKAGE} {site_runtime.VERSION}",
            "built": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "models": models,
        }
        fileio.write_text(building / "models" / MANIFEST, json.dumps(manifest, separators=(",", ":")))
        (building / "ort").mkdir()
        for name, copied in RUNTIME_FILES.items():
            shutil.copyfile(runtime[name], building / "ort" / copied)
        (building / "static").mkdir()
        for name in STATIC_FILES:
            shutil.copyfile(STATIC / name, building / "static" / name)
        fileio.write_text(building / "index.html", templating.page_html(PAGE))
        if out.exists():
            out.rmdir()  # empty, checked above
        building.rename(out)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return {"out": str(out), "models": models, **site_size(out)}


def resolve_runs(runs, store_path=None):
    """The run directories of RUNS (each a run directory, or a run id of the store), checked: each holds a model."""
    if not runs:
        raise ConfigError("name at least one run: mnistlab site RUN... --out DIR")
    if len(runs) > MAX_MODELS:
        raise ConfigError(f"a site holds at most {MAX_MODELS} models, got {len(runs)}; choose fewer runs")
    run_dirs = []
    for given in runs:
        run_dir = pathlib.Path(given)
        if not run_dir.is_dir() and str(given).isascii() and str(given).isdigit():
            run_dir = _run_dir_of_id(int(given), store_path)
        rundir.read_config(run_dir)  # a run directory, or one line saying what it is not
        if not rundir.model_path(run_dir).is_file():
            raise RunDirError(f"{run_dir}: no trained model in it (did its training finish?); choose a finished run")
        run_dirs.append(run_dir)
    return run_dirs


def _run_dir_of_id(run_id, store_path):
    """The run directory of store id RUN_ID, or one line saying why there is none."""
    from mnistlab.record.store import Store

    if run_id > 2**63 - 1:  # SQLite's integers
        raise RunDirError(f"no run {run_id} in the store; `mnistlab runs list` shows the ids")
    with Store(store_path) as store:
        row = store.show(run_id)
    if not row.get("run_dir"):
        raise RunDirError(f"run {run_id} is {row.get('status')} and has no run directory yet; choose a finished run")
    return pathlib.Path(row["run_dir"])


def _model_entry(run_dir, file_name, export_result, layout, store_path):
    """What models.json says of one model: who it is, its data and scores, and how to read its graph's outputs."""
    config, preset = rundir.read_config(run_dir)
    metrics = rundir.read_metrics(run_dir) or {}
    outputs = export_result["outputs"]
    views = layout["views"]
    roles = [{"role": "view", **view} for view in views]
    if layout["beliefs"]:
        roles.append({"role": "beliefs", "shape": [28, len(layout["labels"])]})
    roles.append({"role": "probabilities", "shape": [len(layout["labels"])]})
    entry = {
        # The page's key for the model (its card, its views): unique in the site, as two runs' names need not be.
        "id": file_name.removesuffix(".onnx"),
        "run": run_dir.name,
        "file": file_name,
        "family": config.family,
        "preset": preset,
        "description": presets.describe(config, preset),
        "dataset": config.dataset,
        "backend": config.backend,
        "seed": config.seed,
        "input_shape": list(config.input_shape),
        "test_accuracy": metrics.get("test_accuracy"),
        "over_seeds": accuracy_over_seeds(run_dir, config, metrics, store_path),
        "labels": layout["labels"],
        "outputs": [{"output": name, **role} for name, role in zip(outputs, roles)],
        "notes": layout["notes"],
        "occlusion_patch": layout["occlusion_patch"],
        "parity": {
            "samples": export_result["samples"],
            "dataset": export_result["parity_dataset"],
            "max_abs_difference": export_result["max_abs_difference"],
        },
    }
    if layout["kernels"] is not None:
        entry["kernels"] = _packed(layout["kernels"])
    if layout["templates"] is not None:
        entry["templates"] = {
            "layer": layout["templates"]["layer"],
            "count": layout["templates"]["count"],
            "weights": _packed(layout["templates"]["weights"]),
        }
    return entry


def _packed(array):
    """ARRAY for the page, as {"shape", "scales", "int8": base64}: each first-axis slice scaled to -127..127 by
    its own largest magnitude. The page draws these weights as pictures, each on its own scale, so 8 bits
    lose nothing it shows, and an MLP's 200,704 first-layer weights take 268 KB instead of 2 MB of JSON."""
    array = np.asarray(array, dtype=np.float64)
    flat = array.reshape(len(array), -1)
    scales = np.abs(flat).max(axis=1)
    scales[scales == 0] = 1.0
    quantised = np.round(flat / scales[:, None] * 127).astype(np.int8)
    return {
        "shape": list(array.shape),
        "scales": [float(scale) / 127 for scale in scales],
        "int8": base64.b64encode(quantised.tobytes()).decode("ascii"),
    }


def accuracy_over_seeds(run_dir, config, metrics, store_path=None):
    """The test accuracy of this run's setup over its seeds (the counted runs of the store: `seeds.select_counted`),
    as {"n", "mean", "ci_low", "ci_high"} in %, when the store holds at least two; else None."""
    path = paths.store_path(store_path)
    if not path.is_file() or metrics.get("test_accuracy") is None:
        return None
    from mnistlab.record.store import Store

    with Store(path) as store:
        rows = store.runs(
            status="done",
            config_hash=config.config_hash(),
            dataset=config.dataset,
            backend=config.backend,
            dataset_hash=metrics.get("dataset_hash"),
        )
    counted, _ = seeds.select_counted(rows)
    if len(counted) < 2 or not any(pathlib.Path(row["run_dir"]).resolve() == run_dir.resolve() for row in rows):
        return None
    summary = stats.summarize([100 * row["test_accuracy"] for row in counted], bounds=stats.PERCENT)
    return {key: summary[key] for key in ("n", "mean", "ci_low", "ci_high")}


def site_size(folder):
    """The folder's size on disk and over the wire (each file gzip-compressed, as a static host sends it)."""
    files = [path for path in pathlib.Path(folder).rglob("*") if path.is_file()]
    raw = sum(path.stat().st_size for path in files)
    compressed = sum(len(gzip.compress(path.read_bytes(), compresslevel=6)) for path in files)
    return {"files": len(files), "bytes": raw, "gzip_bytes": compressed}

"""Commands that use finished runs: report, figures, predict, explain, serve, lab, export, site."""

import pathlib
import sys

from mnistlab.analysis import tables
from mnistlab.cli import options
from mnistlab.cli.common import given, need, print_json
from mnistlab.core import addresses, fileio, presets
from mnistlab.core import config as config_lib
from mnistlab.core.errors import ConfigError


def cmd_report(args):
    """HTML report (with PNGs) of a run directory, a reproduced table, or several setups compared over seeds; a
    table also as CSV, LaTeX or JSON"""
    from mnistlab.outputs import report

    if args.format != "html":
        if len(args.targets) != 1 or args.targets[0] not in presets.TABLES:
            raise ConfigError(
                f"--format {args.format} exports a table: mnistlab report {presets.TABLES[1]} --format {args.format}"
            )
        text = tables.table_export(
            tables.table_data(args.targets[0], store_path=args.store, table_json=args.table_json), args.format
        )
        if args.out:
            fileio.write_text(args.out, text)
            print(f"Wrote {args.out}")
        else:
            sys.stdout.write(text)
        return
    if not args.out:
        raise ConfigError("an HTML report needs --out FILE.html (its PNGs go beside it)")
    result = report.report(
        args.targets,
        args.out,
        store_path=args.store,
        **given(args, "table_json", "by", "dataset", "backend"),
    )
    print(
        f"Wrote {result['html']} and {len(result['figures'])} PNGs in {pathlib.Path(result['html']).with_name(pathlib.Path(result['html']).stem + '_files')}"
    )


def cmd_figures(args):
    """the chapter's teaching figures: activations, gradient descent, reshaping"""
    from mnistlab.outputs import figures

    for path in figures.write_all(args.out):
        print(f"Wrote {path}")


def cmd_predict(args):
    """classify your own digit images with a trained run"""
    from mnistlab.ml import predict

    results = predict.predict_runs(
        args.paths, top=args.top, runtime=args.runtime, backend=args.backend, show_input_dir=args.show_input
    )
    if args.json:
        return print_json(results)
    several, previous = len({result["run_dir"] for result in results}) > 1, None
    for result in results:
        if several and result["run_dir"] != previous:
            print(f"{result['run_dir']}:")
            previous = result["run_dir"]
        ranked = ", ".join(f"{item['label']} ({100 * item['probability']:.1f}%)" for item in result["top"])
        print(f"{result['image']}: {result['label']}   top {len(result['top'])}: {ranked}")
        if result.get("input_png"):
            print(f"  model input written to {result['input_png']}")


def cmd_explain(args):
    """see inside the networks: per-layer views and attribution maps for your images, as PNG sheets and JSON"""
    from mnistlab.outputs import sheets

    run_dirs, images = sheets.split_paths(args.paths)
    results = sheets.explain_files(
        run_dirs,
        images,
        args.out,
        **given(args, "method", "backend"),
        store_path=args.store,
        dataset=args.dataset,
    )
    if args.json:
        return print_json(results)
    for result in results:
        print(
            f"{result['image']}: {result['family']} says {result['label']} (runner-up {result['runner_up']}, {result['attribution']}) -> {result['sheet']}"
        )


def cmd_serve(args):
    """the draw-a-digit web page and JSON API (needs the 'serve' extra)"""
    need("fastapi", "mnistlab serve", "serve")
    need("uvicorn", "mnistlab serve", "serve")
    from mnistlab.web import serve

    serve.run(
        args.run_dirs,
        store_path=args.store,
        log=lambda line: print(line, flush=True),
        **given(args, "host", "port", "runtime", "dataset", "workers"),
    )


def cmd_lab(args):
    """launch, watch and open runs in the browser (needs the 'serve' extra)"""
    need("fastapi", "mnistlab lab", "serve")
    need("uvicorn", "mnistlab lab", "serve")
    from mnistlab.web import lab

    lab.run(
        store_path=args.store,
        datasets=args.dataset,
        log=lambda line: print(line, flush=True),
        **given(args, "host", "port", "workers", "no_token", "ray_address"),
    )


def cmd_export(args):
    """export a run to ONNX, Keras or a TensorFlow SavedModel"""
    from mnistlab.ml import export

    result = export.export(args.run_dir, args.format, args.out)
    message = f"Wrote {result['path']}" + (
        f" ({len(result['outputs'])} outputs)" if result["format"] == "onnx-inside" else ""
    )
    if "max_abs_difference" in result:
        message += f" (ONNX vs Keras on {result['samples']} {result['parity_dataset']} test digits: max |difference| {result['max_abs_difference']:.1e}, same class on {100 * result['argmax_agreement']:.1f}%)"
    print(message)


def cmd_site(args):
    """a static web page of trained runs: draw a digit, see each model's answer and inside, in the browser (no
    server)"""
    from mnistlab.web import site

    result = site.build_site(args.runs, args.out, store_path=args.store, log=lambda line: print(line, flush=True))
    print(
        f"Wrote {result['out']}: {len(result['models'])} model{'s' if len(result['models']) != 1 else ''}, "
        f"{result['bytes'] / 1e6:.1f} MB ({result['gzip_bytes'] / 1e6:.1f} MB gzip-compressed over the wire)"
    )
    print(f"Try it: python -m http.server --directory {result['out']} 8000, then open http://localhost:8000/")


# --------------------------------------------------------------------------
# The command line of these commands


def cmd_dynamics(args):
    """inside training: each weight's norm, update and gradient and each layer's units, first and last epoch"""
    from mnistlab.analysis import dynamics
    from mnistlab.record import rundir, store

    found = []
    for given_run in args.runs:
        run_dir = pathlib.Path(given_run)
        if not run_dir.is_dir() and given_run.isascii() and given_run.isdigit():  # a run id of the store
            with store.Store(args.store) as index:
                run_dir = pathlib.Path(index.show(int(given_run))["run_dir"])
        config, preset = rundir.read_config(run_dir)
        record = rundir.read_dynamics(run_dir)
        if record is None:
            raise ConfigError(
                f"{run_dir}: no dynamics recorded (a run made with dynamics=false, or before mnistlab recorded them); "
                "train it again to have them"
            )
        title = f"{run_dir.name} ({preset or config.family}, {config.backend}, seed {config.seed})"
        found.append((run_dir, title, record))
    if args.json:
        return print_json([{"run_dir": str(run_dir), **record} for run_dir, _, record in found])
    for position, (_, title, record) in enumerate(found):
        print(("\n" if position else "") + "\n".join(dynamics.summary_lines(record, title)))


def add_parsers(commands):
    """This module's commands, each with its options and the function that runs it."""
    for add in (
        _add_report,
        _add_figures,
        _add_predict,
        _add_explain,
        _add_dynamics,
        _add_serve,
        _add_lab,
        _add_export,
        _add_site,
    ):
        add(commands)


def _add_report(commands):
    sub = options.command(commands, "report", cmd_report)
    options.one_or_more(
        sub,
        "targets",
        "TARGET",
        "a run directory; table-1.3.2 / table-1.4.1 / table-1.5.1; or setups to compare (presets, config hashes, group=NAME)",
    )
    sub.add_argument(
        "--out",
        help="the file to write (HTML: PNGs go to <name>_files/ beside it); other formats default to standard output",
    )
    options.one_of(
        sub,
        "--format",
        tables.FORMATS,
        "a table's format (default html, the full report); csv, latex (booktabs) and json export the table alone",
    )
    sub.add_argument("--by", choices=("backend",), help="compare each setup per backend")
    sub.add_argument("--dataset", help="only runs on this dataset name (comparisons)")
    options.backend_option(sub, "only runs on this backend (comparisons)", any_backend=False)
    sub.add_argument("--table-json", help="which reproduction of the table (default: the latest)")
    options.store_option(sub)


def _add_figures(commands):
    sub = options.command(commands, "figures", cmd_figures)
    sub.add_argument("--out", default="figures", help="directory (default figures/)")


def _add_predict(commands):
    sub = options.command(commands, "predict", cmd_predict)
    options.runs_then_images(
        sub,
        "one or more run directories written by `mnistlab train`, then image files (PNG, JPEG, BMP, GIF, TIFF, WebP or .npy)",
    )
    sub.add_argument("--top", type=int, default=3, help="how many classes to show (default 3)")
    options.one_of(
        sub,
        "--runtime",
        config_lib.RUNTIMES,
        "keras (default) or onnx (needs `mnistlab export` first and the 'onnx' extra)",
    )
    options.backend_option(sub, "Keras backend for the keras runtime")
    sub.add_argument("--show-input", metavar="DIR", help="write the 28x28 input each model saw as PNGs here")
    options.json_option(sub)


def _add_explain(commands):
    sub = options.command(commands, "explain", cmd_explain)
    options.runs_then_images(
        sub,
        "run directories, then image files (PNG, JPEG, BMP, GIF, TIFF, WebP or .npy); with no run directory, per family the run with the best validation accuracy in the store",
    )
    sub.add_argument("--out", required=True, help="directory for the sheets (IMAGE-FAMILY-RUN.png) and numbers (.json)")
    options.one_of(
        sub,
        "--method",
        config_lib.ATTRIBUTION_METHODS,
        "attribution: integrated gradients from a blank image (auto, where the backend has gradients) or occlusion",
    )
    options.backend_option(sub, "Keras backend to run the models on")
    sub.add_argument(
        "--dataset",
        help="with no run directory named, the best runs on this data: digits (default: mnist or mnist-mini), fashion-mnist, or another dataset name",
    )
    options.store_option(sub)
    options.json_option(sub)


def _add_dynamics(commands):
    sub = options.command(commands, "dynamics", cmd_dynamics)
    options.runs_or_ids(sub, "run directories, or run ids of the store")
    options.json_option(sub, "print every epoch's figures and histograms as JSON")


def _add_serve(commands):
    sub = options.command(commands, "serve", cmd_serve)
    sub.add_argument(
        "run_dirs",
        nargs="*",
        help="runs to serve (default: per family, the finished run with the best validation accuracy)",
    )
    sub.add_argument(
        "--host", default=addresses.DEFAULT_HOST, help=f"default {addresses.DEFAULT_HOST} (this machine only)"
    )
    sub.add_argument("--port", type=int, default=addresses.SERVE_PORT, help=f"default {addresses.SERVE_PORT}")
    options.one_of(sub, "--runtime", config_lib.RUNTIMES, "keras (default) or onnx")
    sub.add_argument(
        "--dataset",
        help="with no runs named, serve the best runs on this page's data: digits (default: mnist or mnist-mini), fashion-mnist, or another dataset name",
    )
    options.store_option(sub)
    sub.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="model worker processes, each with its share of the cores, plus one explain worker at a lower priority (default: 2, or 1 on one core; 0: the models and explanations in the server's own process)",
    )


def _add_lab(commands):
    sub = options.command(commands, "lab", cmd_lab)
    sub.add_argument(
        "--host",
        default=addresses.DEFAULT_HOST,
        help=f"default {addresses.DEFAULT_HOST} (this machine only); every address asks every request for the token printed at start",
    )
    sub.add_argument("--port", type=int, default=addresses.LAB_PORT, help=f"default {addresses.LAB_PORT}")
    sub.add_argument("--workers", type=int, default=1, help="runs training at once (default 1); the rest wait queued")
    sub.add_argument(
        "--no-token",
        action="store_true",
        help="ask no token (loopback addresses only): any process or user of this machine can then launch, cancel and read runs",
    )
    sub.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="the Ray cluster that runs launched with executor ray train on (default: a private local Ray)",
    )
    sub.add_argument(
        "--dataset",
        action="append",
        metavar="NAME=PATH",
        help="a dataset launches may name besides the built-in ones: an idx directory or .npz file (repeatable)",
    )
    options.store_option(sub)


def _add_export(commands):
    sub = options.command(commands, "export", cmd_export)
    sub.add_argument("run_dir", help="a run directory written by `mnistlab train`")
    options.one_of(
        sub,
        "--format",
        config_lib.EXPORT_FORMATS,
        "default onnx (needs the 'onnx' extra); onnx-inside: the inside view's graph, each layer shown and the probabilities",
    )
    sub.add_argument(
        "--out", help="default: RUN_DIR/model.onnx, RUN_DIR/inside.onnx, RUN_DIR/exported.keras or RUN_DIR/saved_model"
    )


def _add_site(commands):
    sub = options.command(commands, "site", cmd_site)
    options.runs_or_ids(sub, "run directories (or store ids), up to 6: one card each")
    sub.add_argument("--out", required=True, help="the folder to write (new or empty): serve it from any static host")

"""The command line's arguments: one small function per command group, help on every option.

Each command names its handler in `mnistlab.cli.main` (`handler="train"` -> `cli.cmd_train`).
Choice lists come from the library (config, presets), never copied.
"""

import argparse
import importlib.metadata

from mnistlab.core import config as config_lib
from mnistlab.core import presets


def _names(text):
    """A comma-separated list: "jax,tensorflow" -> ["jax", "tensorflow"]."""
    return [name.strip() for name in text.split(",") if name.strip()]


def _knob_option(sub, key, default_text, **options):
    """A flag for one config knob, its type, choices and help taken from the knob's declaration."""
    spec = config_lib.KNOBS[key]
    kind = {int: int, float: float}.get(spec.base_type)
    if kind:
        options.setdefault("type", kind)
    if spec.choices:
        options.setdefault("choices", spec.choices)
    sub.add_argument("--" + key.replace("_", "-"), help=f"{spec.help} (default: {default_text})", **options)


def _config_options(sub):
    sub.add_argument("preset", nargs="?", help="preset name (see `mnistlab presets`); omit to start from the defaults")
    sub.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set hidden_units=512,512 (repeatable; keys: "
        + ", ".join(key for key in config_lib.VALID_KEYS if key not in config_lib.RUN_KEYS)
        + "; `mnistlab keys` explains each)",
    )
    _knob_option(sub, "backend", "KERAS_BACKEND if set, else the fastest measured for the model family")


def _dataset_option(sub):
    _knob_option(sub, "dataset", "auto: MNIST if available, else mnist-mini")


def _store_option(sub):
    sub.add_argument(
        "--store",
        help="run store (default: $MNISTLAB_STORE if set, else runs.db in the runs root, $MNISTLAB_RUNS or ./runs)",
    )


def _size_options(sub, seeds=False):
    _knob_option(sub, "epochs", "the config's, e.g. the book's")
    _knob_option(sub, "limit", "every training image")
    if seeds:
        sub.add_argument("--seeds", type=int, help="seeds per setting (default: the file's)")


def _executor_options(sub):
    sub.add_argument("--workers", type=int, default=1, help="runs at once (default 1)")
    sub.add_argument(
        "--executor",
        choices=config_lib.EXECUTORS,
        default="local",
        help="local processes (default) or Ray tasks (needs the 'ray' extra)",
    )
    sub.add_argument("--address", help="address of an existing Ray cluster (default: start a local one)")
    _store_option(sub)


def _add_model_commands(commands):
    sub = commands.add_parser("presets", help="list the book's listings and table rows")
    sub.add_argument("--json", action="store_true", help="print as JSON")
    sub.set_defaults(handler="presets")
    sub = commands.add_parser("keys", help="every config key with its type, default, choices and meaning")
    sub.add_argument("family", nargs="?", choices=config_lib.FAMILIES, help="only the keys that apply to this family")
    sub.set_defaults(handler="keys")
    sub = commands.add_parser("data", help="print label counts and write a 5x5 sample grid")
    _dataset_option(sub)
    sub.add_argument("--out", default="mnist-samples.png", help="PNG to write (default mnist-samples.png)")
    sub.add_argument("--seed", type=int, default=0, help="which samples to show (default 0)")
    sub.set_defaults(handler="data")
    sub = commands.add_parser("summary", help="print the Keras model summary")
    _config_options(sub)
    sub.set_defaults(handler="summary")
    sub = commands.add_parser("plot", help="write the model diagram (PNG or SVG; needs Graphviz)")
    _config_options(sub)
    sub.add_argument("--out", required=True, help="diagram file, .png or .svg")
    sub.set_defaults(handler="plot")


def _add_training_commands(commands):
    sub = commands.add_parser("train", help="train a preset or config and save the run")
    _config_options(sub)
    _dataset_option(sub)
    _size_options(sub)
    _knob_option(sub, "batch_size", "the config's, 128 in the book")
    _knob_option(sub, "seed", "0")
    _knob_option(sub, "precision", "float32; bf16 needs a GPU or a CPU with bf16 instructions")
    sub.add_argument(
        "--out",
        help="run directory (default: <runs root>/<time>-<preset>-<backend>-s<seed>; the runs root is $MNISTLAB_RUNS or ./runs)",
    )
    sub.add_argument("--force", action="store_true", help="train even when the same run is already done in the store")
    sub.add_argument("--tensorboard", metavar="DIR", help="also write TensorBoard logs to DIR")
    sub.add_argument("--json", action="store_true", help="print the metrics as JSON instead of progress")
    _store_option(sub)
    sub.set_defaults(handler="train")
    sub = commands.add_parser("evaluate", help="reload a run and evaluate it on a test set")
    sub.add_argument("run_dir", help="a run directory written by `mnistlab train`")
    _dataset_option(sub)
    sub.add_argument("--json", action="store_true", help="print as JSON")
    sub.set_defaults(handler="evaluate")
    sub = commands.add_parser(
        "listings", help="the main job: train the three book listings and print their test accuracies"
    )
    _dataset_option(sub)
    _size_options(sub)
    sub.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    _store_option(sub)
    sub.set_defaults(handler="listings")
    sub = commands.add_parser(
        "reproduce", help="reproduce a table of the chapter across seeds and compare with the book"
    )
    sub.add_argument("table", choices=(*presets.TABLES, "all"), help="which table, or all three")
    sub.add_argument("--seeds", type=int, default=3, help="seeds per row (default 3)")
    _dataset_option(sub)
    _size_options(sub)
    sub.add_argument("--backend", choices=config_lib.BACKENDS, help="Keras backend for every run (default auto)")
    sub.add_argument(
        "--backends",
        type=_names,
        metavar="B1,B2,...",
        help="run every row on each of these backends, e.g. jax,tensorflow,torch; the table says whether they differ beyond seed noise",
    )
    sub.add_argument("--rows", help="only these rows of the table, e.g. 3,4 or 2-4 (default: every row)")
    sub.add_argument(
        "--mlp-reading",
        choices=presets.MLP_READINGS,
        default=presets.LISTING_READING,
        help="how Table 1.3.2's three widths are read (see README)",
    )
    sub.add_argument("--out", help="directory for the .md/.csv/.json table (default: tables/ beside the store)")
    _executor_options(sub)
    sub.set_defaults(handler="reproduce")
    sub = commands.add_parser("sweep", help="run a grid of configs x seeds from a TOML file")
    sub.add_argument("file", help="sweep file (see sweeps/)")
    _dataset_option(sub)
    _size_options(sub, seeds=True)
    _executor_options(sub)
    sub.set_defaults(handler="sweep")


def _add_runs_commands(commands):
    runs = commands.add_parser("runs", help="list, show, compare, disagree on and re-index stored runs").add_subparsers(
        dest="runs_command", required=True, metavar="list|show|compare|disagree|predictions|reindex"
    )
    sub = runs.add_parser("list", help="list runs with their settings")
    sub.add_argument("--status", choices=config_lib.RUN_STATUSES, help="only runs with this status")
    sub.add_argument("--preset", help="only runs of this preset")
    sub.add_argument("--group", help="only runs of this sweep or table")
    sub.add_argument("--last", type=int, help="only the last N")
    sub.add_argument("--json", action="store_true", help="print the raw records as JSON")
    sub.set_defaults(handler="runs_list")
    sub = runs.add_parser("show", help="everything stored about one run")
    sub.add_argument("run_id", type=int, help="the run's id (see `mnistlab runs list`)")
    sub.add_argument("--json", action="store_true", help="print the raw record as JSON")
    sub.set_defaults(handler="runs_show")
    sub = runs.add_parser("compare", help="is A's test accuracy over seeds different from B's?")
    sub.add_argument("a", help="preset name, config hash (prefix) or group=NAME")
    sub.add_argument("b", nargs="*", help="the same kinds of name as A (more than one: every pair is compared)")
    sub.add_argument("--dataset", help="only runs on this dataset name")
    sub.add_argument("--backend", choices=config_lib.BACKENDS[1:], help="only runs on this backend")
    sub.add_argument(
        "--by",
        choices=("backend",),
        help="split each setup by backend and compare every pair (with A alone: do A's backends agree?)",
    )
    sub.add_argument("--json", action="store_true", help="print as JSON")
    sub.set_defaults(handler="runs_compare")
    sub = runs.add_parser(
        "disagree",
        help="the disagreement atlas: the test digits a group of runs answer differently, and those every run gets wrong",
    )
    sub.add_argument(
        "selectors",
        nargs="+",
        metavar="SELECTOR",
        help="preset name, config hash (prefix), group=NAME or a run directory; several are taken together",
    )
    sub.add_argument("--dataset", help="only runs on this dataset name")
    sub.add_argument(
        "--by",
        choices=("backend", "preset", "config_hash", "seed"),
        help="also per group of runs, and whether the groups disagree beyond seed noise",
    )
    sub.add_argument(
        "--examples", type=int, default=20, help="how many digits to list of each kind (default 20; --json lists all)"
    )
    sub.add_argument("--json", action="store_true", help="print the whole atlas as JSON")
    sub.set_defaults(handler="runs_disagree")
    sub = runs.add_parser(
        "predictions",
        help="write predictions.npz (per-example test predictions) for runs trained before runs kept them",
    )
    sub.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories with a model.keras")
    sub.add_argument("--force", action="store_true", help="write it again where it exists")
    sub.set_defaults(handler="runs_predictions")
    sub = runs.add_parser("reindex", help="rebuild the store from the run directories (nothing is lost with runs.db)")
    sub.add_argument("root", nargs="?", help="directory of run directories (default: $MNISTLAB_RUNS or runs/)")
    sub.set_defaults(handler="runs_reindex")
    for sub in runs.choices.values():
        _store_option(sub)


def _add_use_commands(commands):
    sub = commands.add_parser(
        "report",
        help="HTML report (with PNGs) of a run directory, a reproduced table, or several setups compared over seeds; a table also as CSV, LaTeX or JSON",
    )
    sub.add_argument(
        "targets",
        nargs="+",
        metavar="TARGET",
        help="a run directory; table-1.3.2 / table-1.4.1 / table-1.5.1; or setups to compare (presets, config hashes, group=NAME)",
    )
    sub.add_argument(
        "--out",
        help="the file to write (HTML: PNGs go to <name>_files/ beside it); other formats default to standard output",
    )
    sub.add_argument(
        "--format",
        choices=("html", "csv", "latex", "json"),
        default="html",
        help="a table's format (default html, the full report); csv, latex (booktabs) and json export the table alone",
    )
    sub.add_argument("--by", choices=("backend",), help="compare each setup per backend")
    sub.add_argument("--dataset", help="only runs on this dataset name (comparisons)")
    sub.add_argument("--backend", choices=config_lib.BACKENDS[1:], help="only runs on this backend (comparisons)")
    sub.add_argument("--table-json", help="which reproduction of the table (default: the latest)")
    _store_option(sub)
    sub.set_defaults(handler="report")
    sub = commands.add_parser(
        "figures", help="the chapter's teaching figures: activations, gradient descent, reshaping"
    )
    sub.add_argument("--out", default="figures", help="directory (default figures/)")
    sub.set_defaults(handler="figures")
    sub = commands.add_parser("predict", help="classify your own digit images with a trained run")
    sub.add_argument(
        "paths",
        nargs="+",
        metavar="RUN_DIR_OR_IMAGE",
        help="one or more run directories written by `mnistlab train`, then image files (PNG, JPEG, BMP, GIF, TIFF, WebP or .npy)",
    )
    sub.add_argument("--top", type=int, default=3, help="how many classes to show (default 3)")
    sub.add_argument(
        "--runtime",
        choices=config_lib.RUNTIMES,
        default="keras",
        help="keras (default) or onnx (needs `mnistlab export` first and the 'onnx' extra)",
    )
    sub.add_argument(
        "--backend", choices=config_lib.BACKENDS, default="auto", help="Keras backend for the keras runtime"
    )
    sub.add_argument("--show-input", metavar="DIR", help="write the 28x28 input each model saw as PNGs here")
    sub.add_argument("--json", action="store_true", help="print as JSON")
    sub.set_defaults(handler="predict")
    sub = commands.add_parser(
        "explain",
        help="see inside the networks: per-layer views and attribution maps for your images, as PNG sheets and JSON",
    )
    sub.add_argument(
        "paths",
        nargs="+",
        metavar="RUN_DIR_OR_IMAGE",
        help="run directories, then image files (PNG, JPEG, BMP, GIF, TIFF, WebP or .npy); with no run directory, per family the run with the best validation accuracy in the store",
    )
    sub.add_argument("--out", required=True, help="directory for the sheets (IMAGE-FAMILY-RUN.png) and numbers (.json)")
    sub.add_argument(
        "--method",
        choices=config_lib.ATTRIBUTION_METHODS,
        default="auto",
        help="attribution: integrated gradients from a blank image (auto, where the backend has gradients) or occlusion",
    )
    sub.add_argument(
        "--backend", choices=config_lib.BACKENDS, default="auto", help="Keras backend to run the models on"
    )
    sub.add_argument(
        "--dataset",
        help="with no run directory named, the best runs on this data: digits (default: mnist or mnist-mini), fashion-mnist, or another dataset name",
    )
    _store_option(sub)
    sub.add_argument("--json", action="store_true", help="print as JSON")
    sub.set_defaults(handler="explain")
    sub = commands.add_parser("serve", help="the draw-a-digit web page and JSON API (needs the 'serve' extra)")
    sub.add_argument(
        "run_dirs",
        nargs="*",
        help="runs to serve (default: per family, the finished run with the best validation accuracy)",
    )
    sub.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (this machine only)")
    sub.add_argument("--port", type=int, default=8000, help="default 8000")
    sub.add_argument("--runtime", choices=config_lib.RUNTIMES, default="keras", help="keras (default) or onnx")
    sub.add_argument(
        "--dataset",
        help="with no runs named, serve the best runs on this page's data: digits (default: mnist or mnist-mini), fashion-mnist, or another dataset name",
    )
    _store_option(sub)
    sub.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="model worker processes, each with its share of the cores, plus one explain worker at a lower priority (default: 2, or 1 on one core; 0: the models and explanations in the server's own process)",
    )
    sub.set_defaults(handler="serve")
    sub = commands.add_parser("lab", help="launch, watch and open runs in the browser (needs the 'serve' extra)")
    sub.add_argument(
        "--host",
        default="127.0.0.1",
        help="default 127.0.0.1 (this machine only); every address asks every request for the token printed at start",
    )
    sub.add_argument("--port", type=int, default=8100, help="default 8100")
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
    _store_option(sub)
    sub.set_defaults(handler="lab")
    sub = commands.add_parser("export", help="export a run to ONNX, Keras or a TensorFlow SavedModel")
    sub.add_argument("run_dir", help="a run directory written by `mnistlab train`")
    sub.add_argument(
        "--format", choices=config_lib.EXPORT_FORMATS, default="onnx", help="default onnx (needs the 'onnx' extra)"
    )
    sub.add_argument("--out", help="default: RUN_DIR/model.onnx, RUN_DIR/exported.keras or RUN_DIR/saved_model")
    sub.set_defaults(handler="export")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="mnistlab",
        description="Build, train, compare and use the MLP, CNN and RNN of Chapter 1 of Advanced Deep Learning with Keras.",
    )
    parser.add_argument("--version", action="version", version=f"mnistlab {importlib.metadata.version('mnistlab')}")
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="also show the libraries' own log lines (TensorFlow, XLA, absl), hidden by default",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_model_commands, _add_training_commands, _add_runs_commands, _add_use_commands):
        add(commands)
    return parser

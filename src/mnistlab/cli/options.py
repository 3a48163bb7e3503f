"""Options several commands share (config knobs, dataset, store, sizes, executors); choices come from the library."""

import inspect

from mnistlab.core import config as config_lib


def command(parent, name, run, **defaults):
    """The parser of command NAME, run by the function RUN: the command's help is RUN's docstring (one place says
    what a command does), and DEFAULTS go with it (`when_interrupted`: how to go on after Ctrl+C)."""
    # No help under python -OO, which strips docstrings: the command still runs.
    sub = parent.add_parser(name, help=" ".join((inspect.getdoc(run) or "").split()) or None)
    sub.set_defaults(func=run, **defaults)
    return sub


def names(text):
    """A comma-separated list: "jax,tensorflow" -> ["jax", "tensorflow"]."""
    return [name.strip() for name in text.split(",") if name.strip()]


def knob_option(sub, key, default_text, **options):
    """A flag for one config knob, its type, choices and help taken from the knob's declaration."""
    spec = config_lib.KNOBS[key]
    kind = {int: int, float: float}.get(spec.base_type)
    if kind:
        options.setdefault("type", kind)
    if spec.choices:
        options.setdefault("choices", spec.choices)
    sub.add_argument("--" + key.replace("_", "-"), help=f"{spec.help} (default: {default_text})", **options)


def config_options(sub):
    sub.add_argument("preset", nargs="?", help="preset name (see `mnistlab presets`); omit to start from the defaults")
    sub.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set hidden_units=512,512 (repeatable; keys: "
        + ", ".join(key for key in config_lib.VALID_KEYS if key not in config_lib.RUN_KEYS)
        + "; `mnistlab keys` explains each)",
    )
    knob_option(sub, "backend", "KERAS_BACKEND if set, else the fastest measured for the model family")


def dataset_option(sub):
    knob_option(sub, "dataset", "auto: MNIST if available, else mnist-mini")


def store_option(sub):
    sub.add_argument(
        "--store",
        help="run store (default: $MNISTLAB_STORE if set, else runs.db in the runs root, $MNISTLAB_RUNS or ./runs)",
    )


def size_options(sub, seeds=False):
    knob_option(sub, "epochs", "the config's, e.g. the book's")
    knob_option(sub, "limit", "every training image")
    if seeds:
        sub.add_argument("--seeds", type=int, help="seeds per setting (default: the file's)")


def executor_options(sub):
    sub.add_argument("--workers", type=int, default=1, help="runs at once (default 1)")
    one_of(sub, "--executor", config_lib.EXECUTORS, "local processes (default) or Ray tasks (needs the 'ray' extra)")
    sub.add_argument("--address", help="address of an existing Ray cluster (default: start a local one)")
    store_option(sub)


def one_of(sub, flag, choices, help):
    """FLAG takes one of CHOICES, a tuple of the library's that lists its default first: the default is said once,
    where the choices are declared."""
    sub.add_argument(flag, choices=choices, default=choices[0], help=help)


def one_or_more(sub, dest, metavar, help):
    """A positional argument given once or more, shown as METAVAR and read as the list args.DEST."""
    sub.add_argument(dest, nargs="+", metavar=metavar, help=help)


def runs_or_ids(sub, help):
    """Runs named by directory or by id in the store, and the --store that the ids are read from."""
    one_or_more(sub, "runs", "RUN", help)
    store_option(sub)


def json_option(sub, help="print as JSON"):
    sub.add_argument("--json", action="store_true", help=help)


def backend_option(sub, help, any_backend=True):
    """--backend for commands that load finished runs: auto (default) or a backend; without any_backend, one
    backend to filter runs by (no default)."""
    if any_backend:
        sub.add_argument("--backend", choices=config_lib.BACKENDS, default="auto", help=help)
    else:
        sub.add_argument("--backend", choices=config_lib.BACKENDS[1:], help=help)


def runs_then_images(sub, help):
    one_or_more(sub, "paths", "RUN_DIR_OR_IMAGE", help)

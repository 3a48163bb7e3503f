"""What the commands share: JSON and percent printing, the config from the command line, a missing extra's error."""

from mnistlab.core import fileio, presets
from mnistlab.core.errors import MissingExtra
from mnistlab.ml import backend

EXIT_DIVERGED = 3


def print_json(obj):
    print(fileio.dumps(obj, indent=2))


def given(args, *names):
    """The command line's values of NAMES, as keywords for a library call whose parameters have those names."""
    return {name: getattr(args, name) for name in names}


def percent(value):
    return "n/a" if value is None else f"{100 * value:.1f}%"


def config_from_args(args):
    """A preset (or the defaults) with the command line's overrides applied and validated."""
    changes = {
        key: getattr(args, key, None)
        for key in ("epochs", "batch_size", "seed", "dataset", "backend", "limit", "precision")
    }
    return presets.configure(getattr(args, "preset", None), getattr(args, "set", None) or [], **changes)


def need(module, what, extra):
    if not backend.installed(module):
        raise MissingExtra(what, extra)

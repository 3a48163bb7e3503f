"""Run configuration: one flat, validated dataclass that every run writes beside itself.

A config says everything needed to rebuild and retrain a run: the model family and its knobs, the training
settings, the seed, dataset and backend.

Each knob is declared once, as a field of `Config` (`model`) made with `knob(...)` (`knobs`): its type (the
annotation), default, help, choices, aliases, bounds, the family it belongs to and the names it had before.
Everything else reads that declaration: validation and `--set` parsing (`parsing`), what a CNN's knobs build
(`geometry`), `mnistlab keys`, the CLI's help, the table in docs/configuration.md and the JSON schema of the
lab's form (`schema`). Unknown keys and bad values raise `ConfigError` naming the valid ones.

Why a dataclass with field metadata rather than pydantic: the core install (and `config_hash()`, which old runs
are found by) must not depend on the web extra, and the knobs are flat scalars, tuples of ints and choices, for
which the schema is a short function; the rules live in one declaration all the same.

No Keras import here: the CLI validates a config before it picks a backend. This package's names are imported
from it (`from mnistlab.core.config import Config, KNOBS, ...`), whichever module declares them.
"""

from mnistlab.core.config.knobs import (  # the lists other packages read; the bounds stay with the knobs
    ACTIVATIONS,
    ATTRIBUTION_METHODS,
    BACKENDS,
    EXECUTORS,
    EXPORT_FORMATS,
    FAMILIES,
    INPUT_SHAPES,
    RUNTIMES,
)
from mnistlab.core.config.model import (
    CHOICES,
    DEFAULT_ACTIVATIONS,
    KEY_FAMILY,
    KNOBS,
    RENAMED_KEYS,
    RUN_KEYS,
    VALID_KEYS,
    Config,
    parse_value,
)
from mnistlab.core.config.schema import describe_keys, json_schema
from mnistlab.core.errors import ConfigError

__all__ = [
    "ACTIVATIONS",
    "ATTRIBUTION_METHODS",
    "BACKENDS",
    "CHOICES",
    "DEFAULT_ACTIVATIONS",
    "EXECUTORS",
    "EXPORT_FORMATS",
    "FAMILIES",
    "INPUT_SHAPES",
    "KEY_FAMILY",
    "KNOBS",
    "RENAMED_KEYS",
    "RUNTIMES",
    "RUN_KEYS",
    "VALID_KEYS",
    "Config",
    "ConfigError",
    "describe_keys",
    "json_schema",
    "parse_value",
]

"""What a launch is made of, from the knobs' one declaration: the lab's form (GET /api/schema) and the launch's
JSON Schema in /openapi.json."""

from mnistlab.core import config as config_lib
from mnistlab.core import events, presets
from mnistlab.core.config import Config
from mnistlab.web.lab.datasets import BUILTIN_DATASETS
from mnistlab.web.lab.launch import MAX_SEEDS
from mnistlab.web.lab.views import SORTS


def schema(datasets=BUILTIN_DATASETS):
    """The launch form: presets, each family's knobs (their one declaration), the run settings; DATASETS: the names."""
    return {
        "presets": [
            {
                "name": preset.name,
                "description": preset.description,
                "family": preset.config["family"],
                "values": preset.build_config().to_dict(),
                "book_test_accuracy": preset.book_test_accuracy,
            }
            for preset in presets.all_presets().values()
        ],
        "families": _families(),
        "run": _run_settings(datasets),
        "statuses": list(events.STORED_STATUSES),
        "sorts": list(SORTS),
        "config_schema": config_lib.json_schema(),
    }


def _families():
    """Per family: its defaults, and the knobs of the form (the run settings are fields of their own)."""
    form_keys = [
        key
        for key in config_lib.VALID_KEYS
        if key not in config_lib.RUN_KEYS and key not in ("epochs", "limit", "family")
    ]
    families = {}
    for family in config_lib.FAMILIES:
        described = {key["name"]: key for key in config_lib.describe_keys(family)}
        properties = config_lib.json_schema(family)["properties"]
        families[family] = {
            "defaults": Config(family=family).to_dict(),
            "keys": [{**described[name], "schema": properties[name]} for name in form_keys if name in described],
        }
    return families


def _run_settings(datasets):
    return {
        "seeds": {
            "default": [0],
            "help": "seeds to train, e.g. 0,1,2: each is one run; runs differing only by seed fold into one row",
        },
        "epochs": {"help": config_lib.KNOBS["epochs"].help, "minimum": 1},
        "limit": {"help": config_lib.KNOBS["limit"].help, "minimum": 1},
        "dataset": {
            "choices": list(datasets),
            "default": "auto",
            "help": "mnist, fashion-mnist, mnist-mini, auto (mnist, or mnist-mini offline), or a dataset given when the lab started",
        },
        "backend": {
            "choices": list(config_lib.BACKENDS),
            "default": "auto",
            "help": config_lib.KNOBS["backend"].help,
        },
        "executor": {
            "choices": list(config_lib.EXECUTORS),
            "default": "local",
            "help": "local processes on this machine, or Ray tasks (needs the 'ray' extra) on a local Ray or the cluster given at start (--ray-address)",
        },
    }


def launch_schema():
    """The JSON Schema of a launch (POST /api/runs): its fields, the run settings' schemas and the keys `set`
    takes, all from the knobs' one declaration (`config.json_schema()`)."""
    knobs = config_lib.json_schema()["properties"]
    settable = [name for name in config_lib.VALID_KEYS if name not in config_lib.RUN_KEYS]
    run = _run_settings(BUILTIN_DATASETS)
    properties = {
        "preset": {
            "anyOf": [{"type": "string"}, {"type": "null"}],
            "description": "a listing or table row of the book (`mnistlab presets` lists them); none: the family's defaults",
        },
        "set": {
            "type": "array",
            "description": "key=value overrides, as --set takes them; the keys and their values are the knobs' (x-knobs)",
            "items": {
                "type": "string",
                "pattern": f"^({'|'.join(settable)})=",
                "x-knobs": {name: knobs[name] for name in settable},
            },
        },
        "seeds": {
            "anyOf": [
                {"type": "array", "items": {"type": "integer"}, "maxItems": MAX_SEEDS},
                {"type": "integer", "minimum": 1, "maximum": MAX_SEEDS},
            ],
            "default": [0],
            "description": run["seeds"]["help"] + "; a count N means 0..N-1",
        },
        **{
            name: {key: value for key, value in knobs[name].items() if key != "default"} for name in ("epochs", "limit")
        },
        "dataset": {"type": "string", "description": run["dataset"]["help"]},
        "backend": {key: value for key, value in knobs["backend"].items() if key != "default"},
        "executor": {
            "type": "string",
            "enum": run["executor"]["choices"],
            "default": run["executor"]["default"],
            "description": run["executor"]["help"],
        },
    }
    return {"title": "Launch", "type": "object", "properties": properties, "additionalProperties": False}

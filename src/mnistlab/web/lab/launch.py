"""A launch request checked: its own fields here, every config value by the Config's own code.

A launch is {"preset", "set", "seeds", "epochs", "limit", "dataset", "backend", "executor"}. What makes a run's
config (the preset, the `set` assignments, epochs, limit, backend, each seed) goes to `presets.configure`, as
the CLI's options do, so that a value one refuses the other refuses with the same words and the same `field`;
what is the lab's alone is checked here: the fields' JSON shapes, how many seeds, the executor, and that a
dataset is a name the lab knows, never a path, and a Ray cluster never one a request names.
"""

from mnistlab.core import config as config_lib
from mnistlab.core import presets
from mnistlab.core.errors import ConfigError
from mnistlab.jobs import sweep
from mnistlab.ml import backend as backend_lib
from mnistlab.web.errors import shown

LAUNCH_FIELDS = ("preset", "set", "seeds", "epochs", "limit", "dataset", "backend", "executor")
CONFIG_FIELDS = ("epochs", "limit", "backend")  # launch fields that are config knobs: the Config checks them
MAX_SEEDS = 50  # per launch: a typo of 1000 seeds should not fill the queue
MAX_LAUNCH_BYTES = 64 * 1024  # a launch body is a few hundred bytes


def check(request, datasets):
    """([(preset, Config)] one per seed, executor) of a launch REQUEST, or a ConfigError naming its field.

    `datasets`: the lab's `Datasets` (the names a launch may give)."""
    _check_fields(request)
    preset = request.get("preset") or None
    if preset is not None and not isinstance(preset, str):
        raise ConfigError(f"preset must be a preset name, got {shown(preset)}", field="preset")
    assignments = _assignments(request.get("set") or [], datasets)
    seeds = seed_list(request.get("seeds", [0]))
    executor = _executor(request.get("executor") or "local")
    changes = {key: _one_value(key, request.get(key)) for key in CONFIG_FIELDS}
    if request.get("dataset") is not None:
        changes["dataset"] = datasets.path(request["dataset"])
    configs = []
    for seed in seeds:
        try:
            config = presets.configure(preset, assignments, seed=_one_value("seeds", seed, "each seed"), **changes)
        except ConfigError as error:
            error.field = "seeds" if error.field == "seed" else error.field
            raise
        configs.append((preset, config))
    if len({config.seed for _, config in configs}) != len(configs):
        raise ConfigError(
            f"seeds must be at most {MAX_SEEDS} different integers, got {len(seeds)} with repeats", "seeds"
        )
    return configs, executor


def _check_fields(request):
    if not isinstance(request, dict):
        raise ConfigError("a launch is a JSON object: {" + ", ".join(f'"{name}"' for name in LAUNCH_FIELDS) + "}")
    if "address" in request:  # joining a cluster a request names would run what it sends back, in this process
        raise ConfigError(
            "a launch cannot name a Ray cluster: the lab uses the one given at its start (mnistlab lab --ray-address ADDRESS)",
            field="address",
        )
    unknown = [key for key in request if key not in LAUNCH_FIELDS]
    if unknown:
        raise ConfigError(
            f"unknown launch field {shown(unknown[0])}; the fields are {', '.join(LAUNCH_FIELDS)}", field=unknown[0]
        )


def _assignments(assignments, datasets):
    """`set`: "key=value" strings, as --set takes them, of knobs that are no launch field of their own."""
    if not isinstance(assignments, list) or not all(isinstance(item, str) for item in assignments):
        raise ConfigError('set must be a list of "key=value" strings, as --set takes them', field="set")
    for assignment in assignments:
        key = assignment.partition("=")[0].strip()
        key = config_lib.RENAMED_KEYS.get(key, key)
        if key == "dataset":  # a name, never a path: the launch's own field
            datasets.refuse()
        if key in config_lib.RUN_KEYS:
            raise ConfigError(
                f"{key} is a launch field of its own ({'seeds' if key == 'seed' else key}), not a `set` key",
                field="set",
            )
    return assignments


def _one_value(field, value, what=None):
    """VALUE, if it is one JSON value (a number, string, boolean or null): the Config checks what it is."""
    if isinstance(value, (list, dict)):
        kind = "list" if isinstance(value, list) else "object"
        raise ConfigError(f"{what or field} must be one value, got a JSON {kind}", field=field)
    return value


def seed_list(value):
    """The seeds of a launch: a list of at most MAX_SEEDS, or a count N in [1, MAX_SEEDS] meaning 0..N-1."""
    if isinstance(value, bool) or not isinstance(value, (int, list)):
        raise ConfigError(
            f"seeds must be a list of integers (or a count N, meaning 0..N-1), got {shown(value)}", field="seeds"
        )
    if isinstance(value, int) and not 1 <= value <= MAX_SEEDS:
        raise ConfigError(f"seeds as a count must be in [1, {MAX_SEEDS}], got {shown(value)}", field="seeds")
    if isinstance(value, list) and len(value) > MAX_SEEDS:
        raise ConfigError(f"seeds must be at most {MAX_SEEDS} different integers, got {len(value)}", field="seeds")
    try:
        return sweep.seed_list(value)
    except ConfigError as error:
        raise ConfigError(str(error), field="seeds") from None


def _executor(executor):
    if not isinstance(executor, str) or executor not in config_lib.EXECUTORS:
        raise ConfigError(
            f"executor must be one of {', '.join(config_lib.EXECUTORS)}, got {shown(executor)}", field="executor"
        )
    if executor == "ray" and not backend_lib.installed("ray"):
        raise ConfigError(
            "executor ray needs the 'ray' extra: in your mnistlab clone, pip install -e \".[ray]\"", field="executor"
        )
    return executor

"""The package's shape: no import cycles, no Keras at import time, one source for shared lists."""

import pathlib
import subprocess
import sys

import pytest

from mnistlab import arguments, config, sweep

MODULES = sorted(path.stem for path in (pathlib.Path(__file__).resolve().parent.parent / "src" / "mnistlab").glob("*.py") if path.stem != "__main__")


@pytest.mark.parametrize("module", MODULES)
def test_each_module_imports_alone(module):
    # A fresh interpreter per module: a cycle shows up as an ImportError whatever was imported first.
    result = subprocess.run([sys.executable, "-c", f"import mnistlab.{module}"], capture_output=True, text=True, env={"KERAS_BACKEND": "jax", "PATH": ""}, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def test_light_modules_do_not_import_keras():
    # The CLI validates a config and reads data before it has chosen a backend.
    code = "import sys, mnistlab.cli, mnistlab.config, mnistlab.data, mnistlab.presets, mnistlab.store, mnistlab.rundir, mnistlab.sweep, mnistlab.explain; print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr


def test_cli_choice_lists_come_from_the_library():
    assert sweep.EXECUTORS is config.EXECUTORS
    parser = arguments.build_parser()
    train_parser = parser._subparsers._group_actions[0].choices["train"]
    backend = next(action for action in train_parser._actions if action.dest == "backend")
    assert tuple(backend.choices) == config.BACKENDS


def test_every_config_key_has_help():
    assert set(config.KEY_HELP) == set(config.VALID_KEYS)


def test_every_command_has_its_handler():
    from mnistlab import cli

    parser = arguments.build_parser()
    commands = parser._subparsers._group_actions[0].choices
    handlers = {sub.get_default("handler") for sub in commands.values()}
    handlers |= {sub.get_default("handler") for sub in commands["runs"]._subparsers._group_actions[0].choices.values()}
    handlers.discard(None)
    assert handlers and all(callable(getattr(cli, f"cmd_{name}", None)) for name in handlers)


def test_verbose_shows_what_the_filter_hides(tmp_path):
    """The stderr filter drops TensorFlow's native lines, and --verbose brings them back."""
    import os

    args = ["train", "listing-1.4.1", "--set", "filters=4", "--set", "pool_after=0", "--epochs", "1", "--limit", "200", "--dataset", "mnist-mini"]
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    quiet = subprocess.run([sys.executable, "-m", "mnistlab", *args, "--out", str(tmp_path / "a")], capture_output=True, text=True, env=env, timeout=300)
    loud = subprocess.run([sys.executable, "-m", "mnistlab", "--verbose", *args, "--out", str(tmp_path / "b"), "--force"], capture_output=True, text=True, env=env, timeout=300)
    assert quiet.returncode == loud.returncode == 0, quiet.stderr + loud.stderr
    assert "backend tensorflow" in quiet.stderr and "oneDNN custom operations" not in quiet.stderr
    assert "oneDNN custom operations" in loud.stderr


def _all_parsers(parser):
    yield parser
    for action in parser._actions:
        if isinstance(action, type(parser._subparsers._group_actions[0])) if parser._subparsers else False:
            for sub in action.choices.values():
                yield from _all_parsers(sub)


def test_every_option_has_help():
    missing = []
    for parser in _all_parsers(arguments.build_parser()):
        for action in parser._actions:
            if action.option_strings and action.dest not in ("help", "version") and not action.help:
                missing.append(f"{parser.prog} {action.option_strings[0]}")
    assert not missing, missing

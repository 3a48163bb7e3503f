"""The package's shape: no Keras at import time, every command and option as documented.

The layers, and so the absence of import cycles, are tests/test_architecture.py's (import-linter).
"""

import subprocess
import sys

import pytest

from conftest import env_without_backend
from mnistlab.cli import arguments


def test_light_modules_do_not_import_keras():
    # The CLI validates a config and reads data before it has chosen a backend.
    code = "import sys, mnistlab.cli.main, mnistlab.core.config, mnistlab.ml.data, mnistlab.core.presets, mnistlab.record.store, mnistlab.record.rundir, mnistlab.jobs.sweep, mnistlab.ml.explain; print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr


# The choices README.md and docs/use.md name, written here by hand (not read from the
# library): an option whose list drifts from the documented one, in any command, fails.
DOCUMENTED_CHOICES = {
    "--backend": ("auto", "jax", "tensorflow", "torch"),
    "--executor": ("local", "ray"),
    "--runtime": ("keras", "onnx"),
    "--format": ("onnx", "onnx-inside", "keras", "saved_model"),  # docs/use.md
}


def test_every_commands_choices_are_the_documented_ones():
    found = {}
    for parser in _all_parsers(arguments.build_parser()):
        for action in parser._actions:
            for option in set(action.option_strings) & set(DOCUMENTED_CHOICES):
                choices = tuple(action.choices or ())
                if (parser.prog, option) == ("mnistlab report", "--format"):
                    # The report's formats (docs/experiments.md), not export's.
                    assert choices == ("html", "csv", "latex", "json"), choices
                    continue
                if option == "--backend" and (action.help or "").startswith("only runs on"):
                    # A filter of recorded runs (report, runs disagree): runs name a real backend, never auto.
                    assert choices == DOCUMENTED_CHOICES["--backend"][1:], (parser.prog, choices)
                    continue
                found.setdefault(option, {})[parser.prog] = choices
    assert set(found) == set(DOCUMENTED_CHOICES), found
    for option, expected in DOCUMENTED_CHOICES.items():
        assert found[option] and all(choices == expected for choices in found[option].values()), (option, found[option])
    assert len(found["--backend"]) >= 5  # train, sweep, reproduce, predict, explain, ...


def test_every_command_has_its_handler():
    parser = arguments.build_parser()
    commands = parser._subparsers._group_actions[0].choices
    runs = commands.pop("runs")._subparsers._group_actions[0].choices
    handlers = {name: sub.get_default("func") for name, sub in {**commands, **runs}.items()}
    assert len(handlers) >= 20 and all(callable(handler) for handler in handlers.values()), handlers


@pytest.mark.slow  # two TensorFlow processes
def test_verbose_shows_what_the_filter_hides():
    """The stderr filter drops TensorFlow's native lines, and --verbose brings them back; the command's own output is the same."""
    args = ["summary", "listing-1.4.1"]  # the CNN: auto chooses TensorFlow
    # TensorFlow's I-level lines on (its oneDNN notice appears only on some CPUs; its CPU-feature line on every x86 one).
    env = {**env_without_backend(), "TF_CPP_MIN_LOG_LEVEL": "0"}
    quiet = subprocess.run(
        [sys.executable, "-m", "mnistlab", *args], capture_output=True, text=True, env=env, timeout=300
    )
    loud = subprocess.run(
        [sys.executable, "-m", "mnistlab", "--verbose", *args], capture_output=True, text=True, env=env, timeout=300
    )
    assert quiet.returncode == loud.returncode == 0, quiet.stderr + loud.stderr
    native = "oneDNN custom operations" if "oneDNN custom operations" in loud.stderr else "cpu_feature_guard.cc"
    assert native not in quiet.stderr and native in loud.stderr, quiet.stderr + loud.stderr
    assert quiet.stdout == loud.stdout and "Total params: 80,266" in quiet.stdout


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

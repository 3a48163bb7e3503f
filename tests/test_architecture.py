"""The layers of docs/architecture.md hold: import-linter's contract in pyproject.toml, checked by `lint-imports`."""

import importlib
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from conftest import REPO

# The import-linter CLI of the interpreter running the tests (.venv/bin in the README's setup).
LINT_IMPORTS = pathlib.Path(sys.executable).parent / "lint-imports"


def lint_imports(package_root=None):
    """`lint-imports` on the contract in pyproject.toml, for the package under PACKAGE_ROOT (default: src/)."""
    if not LINT_IMPORTS.exists():
        pytest.fail(f"{LINT_IMPORTS} is missing: the test extra installs import-linter (bash scripts/setup.sh all)")
    env = {**os.environ, "PYTHONPATH": str(package_root or REPO / "src")}
    # --no-cache: nothing written into the checkout.
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(REPO / "pyproject.toml"), "--no-cache", "--no-logo"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )


def test_imports_point_down_the_layers():
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 10 kept, 0 broken." in result.stdout, result.stdout


@pytest.fixture
def scratch_package(tmp_path):
    """A copy of the package to break; src/ is never touched."""
    shutil.copytree(
        REPO / "src" / "mnistlab",
        tmp_path / "mnistlab",
        ignore=shutil.ignore_patterns("__pycache__", "datasets", "static", "*.html", "*.json"),
    )
    return tmp_path


@pytest.mark.parametrize(
    "module, added, reported",
    [
        # The bottom package reaching up to the command line.
        ("core/errors.py", "from mnistlab.cli import main\n", "mnistlab.core is not allowed to import mnistlab.cli"),
        # A function-level import that dodges a cycle at run time is still an arrow up.
        (
            "core/config/__init__.py",
            "\n\ndef _late():\n    from mnistlab.ml import train\n    return train\n",
            "mnistlab.core is not allowed to import mnistlab.ml",
        ),
        # The record knows files and rows, not Keras.
        (
            "record/rundir.py",
            "from mnistlab.ml import models\n",
            "mnistlab.record is not allowed to import mnistlab.ml",
        ),
        # Inside a package: two modules of one line do not import each other, and a lower one does not reach up.
        (
            "outputs/report.py",
            "from mnistlab.outputs import figures\n",
            "mnistlab.outputs.report is not allowed to import mnistlab.outputs.figures",
        ),
        (
            "jobs/runner.py",
            "from mnistlab.jobs import sweep\n",
            "mnistlab.jobs.runner is not allowed to import mnistlab.jobs.sweep",
        ),
    ],
)
def test_an_upward_import_breaks_the_contract(scratch_package, module, added, reported):
    with open(scratch_package / "mnistlab" / module, "a") as source:
        source.write(added)
    result = lint_imports(scratch_package)
    assert result.returncode == 1, result.stdout + result.stderr
    assert reported in result.stdout, result.stdout


def test_a_module_without_a_layer_breaks_the_contract(scratch_package):
    (scratch_package / "mnistlab" / "newcomer.py").write_text("from mnistlab.core import errors\n")
    (scratch_package / "mnistlab" / "ml" / "stray.py").write_text("from mnistlab.ml import data\n")
    result = lint_imports(scratch_package)
    assert (
        result.returncode == 1 and "- mnistlab.newcomer" in result.stdout and "- mnistlab.ml.stray" in result.stdout
    ), result.stdout + result.stderr


def modules_declaring_all():
    """Each module of src/mnistlab whose source assigns `__all__`, as a dotted name (read from the files, not imported)."""
    source = REPO / "src"
    for path in sorted((source / "mnistlab").rglob("*.py")):
        if "__all__ =" in path.read_text():
            yield ".".join(path.relative_to(source).with_suffix("").parts).removesuffix(".__init__")


@pytest.mark.parametrize("module_name", list(modules_declaring_all()))
def test_every_name_in_all_is_defined(module_name):
    # ruff's F822 skips __init__.py (outside its preview), where a package's names are gathered: a name listed but
    # no longer imported made `from package import *` fail (mnistlab.core.config listed 17 such names).

    module = importlib.import_module(module_name)
    assert module.__all__ and not [name for name in module.__all__ if not hasattr(module, name)]

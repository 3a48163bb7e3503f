"""The layers of docs/architecture.md hold: import-linter's contract in pyproject.toml, checked by `lint-imports`."""

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
    return subprocess.run([str(LINT_IMPORTS), "--config", str(REPO / "pyproject.toml"), "--no-cache", "--no-logo"], capture_output=True, text=True, env=env, cwd=REPO, timeout=120)


def test_imports_point_down_the_layers():
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 1 kept, 0 broken." in result.stdout, result.stdout


@pytest.fixture
def scratch_package(tmp_path):
    """A copy of the package to break; src/ is never touched."""
    shutil.copytree(REPO / "src" / "mnistlab", tmp_path / "mnistlab", ignore=shutil.ignore_patterns("__pycache__", "datasets", "web"))
    return tmp_path


@pytest.mark.parametrize(
    "module, added, reported",
    [
        # A leaf reaching up to the command line.
        ("errors.py", "from mnistlab import cli\n", "mnistlab.errors is not allowed to import mnistlab.cli"),
        # A function-level import that dodges a cycle at run time is still an arrow up.
        ("config.py", "\n\ndef _late():\n    from mnistlab import train\n    return train\n", "mnistlab.config is not allowed to import mnistlab.train"),
        # Two modules of one line do not import each other.
        ("report.py", "from mnistlab import figures\n", "mnistlab.report is not allowed to import mnistlab.figures"),
    ],
)
def test_an_upward_import_breaks_the_contract(scratch_package, module, added, reported):
    with open(scratch_package / "mnistlab" / module, "a") as source:
        source.write(added)
    result = lint_imports(scratch_package)
    assert result.returncode == 1, result.stdout + result.stderr
    assert reported in result.stdout, result.stdout


def test_a_module_without_a_layer_breaks_the_contract(scratch_package):
    (scratch_package / "mnistlab" / "newcomer.py").write_text("from mnistlab import errors\n")
    result = lint_imports(scratch_package)
    assert result.returncode == 1 and "- mnistlab.newcomer" in result.stdout, result.stdout + result.stderr

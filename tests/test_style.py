"""Every line is formatted and checked by ruff (pyproject.toml's [tool.ruff]): one style, no unused or undefined names."""

import pathlib
import subprocess
import sys

import pytest

from conftest import REPO

# The ruff of the interpreter running the tests (.venv/bin in the README's setup; the test extra installs it).
RUFF = pathlib.Path(sys.executable).parent / "ruff"


def ruff(*args):
    if not RUFF.exists():
        pytest.fail(f"{RUFF} is missing: the test extra installs ruff (bash scripts/setup.sh all)")
    # --no-cache: nothing written into the checkout.
    return subprocess.run([str(RUFF), *args, "--no-cache", "."], capture_output=True, text=True, cwd=REPO, timeout=120)


def test_ruff_check_passes():
    result = ruff("check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_leaves_every_file_as_it_is():
    result = ruff("format", "--check")
    assert result.returncode == 0, "run `.venv/bin/ruff format .`\n" + result.stdout + result.stderr


def test_ruff_check_catches_an_undefined_name(tmp_path):
    """The check can fail: a file with an undefined name, checked with the project's own settings."""
    (tmp_path / "broken.py").write_text("def f():\n    return undefined_name\n")
    result = subprocess.run(
        [str(RUFF), "check", "--no-cache", "--config", str(REPO / "pyproject.toml"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and "F821" in result.stdout, result.stdout + result.stderr

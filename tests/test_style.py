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


PACKAGE = REPO / "src" / "mnistlab"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def modules():
    return sorted(PACKAGE.rglob("*.py"))


def long_functions(source):
    """(name, lines) of each function in SOURCE longer than MAX_FUNCTION_LINES."""
    import ast

    return [
        (node.name, node.end_lineno - node.lineno + 1)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]


def test_no_module_over_400_lines_and_no_function_over_60():
    too_long = [
        f"{path.relative_to(PACKAGE)}: {len(path.read_text().splitlines())} lines"
        for path in modules()
        if len(path.read_text().splitlines()) > MAX_MODULE_LINES
    ]
    too_long += [
        f"{path.relative_to(PACKAGE)}: {name}() is {lines} lines"
        for path in modules()
        for name, lines in long_functions(path.read_text())
    ]
    assert not too_long, "split these by job (docs/architecture.md):\n" + "\n".join(too_long)


def test_the_function_length_check_can_fail():
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    assert long_functions(f"def short():\n    pass\n\n\ndef long():\n{body}\n") == [("long", MAX_FUNCTION_LINES + 1)]


def test_the_package_root_holds_subpackages_and_at_most_four_modules():
    root_modules = [path.name for path in PACKAGE.glob("*.py")]
    assert len(root_modules) <= 4, root_modules
    assert {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists()} >= {
        *("core", "record", "ml", "analysis", "jobs", "outputs", "serving", "web", "cli")
    }

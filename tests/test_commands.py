"""Every `pip install` the project prints or documents works from a clone: none names mnistlab on an index."""

import re

import pytest

from conftest import REPO
from mnistlab.core import errors

# Where a user reads install commands: the README, the docs, and the messages the code prints.
SOURCES = [
    REPO / "README.md",
    REPO / "BENCHMARKS.md",
    *sorted((REPO / "docs").rglob("*.md")),
    *sorted((REPO / "src" / "mnistlab").rglob("*.py")),
    *sorted((REPO / "scripts").glob("*")),
]
PIP_INSTALL = re.compile(r"pip install ([^`\n]*)")
# What may follow `pip install` and name mnistlab: the clone itself (., ".[extra]") or a wheel the project built.
FROM_THE_CLONE = re.compile(
    r"""^(-e )?["']?\.(\[[a-z,]+\])?["']?$|^["']?dist/mnistlab-[\w.]+-py3-none-any\.whl(\[[a-z,]+\])?["']?$"""
)


def _install_commands():
    found = []
    for path in SOURCES:
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
            for match in PIP_INSTALL.finditer(line):
                found.append((f"{path.relative_to(REPO)}:{number}", match.group(1)))
    found.append(
        ("errors.MissingExtra", PIP_INSTALL.search(str(errors.MissingExtra("mnistlab serve", "serve"))).group(1))
    )
    return found


def _targets(arguments):
    """The package arguments of one pip install (options and their values dropped)."""
    words = re.findall(r"""["'][^"']*["']|\S+""", arguments.split(";")[0].split("#")[0].split(" (")[0].split(" 2>")[0])
    targets, skip = [], False
    for word in words:
        if skip:
            skip = False
            continue
        if word in ("-c", "-r", "--index-url", "--extra-index-url", "-d", "--target"):
            skip = True
        elif word == "-e":
            targets.append("-e")
        elif not word.startswith("-") and not word.startswith("$") and not word.startswith('"$'):
            targets.append(word)
    joined = []
    for word in targets:  # "-e" belongs to the next target
        if joined and joined[-1] == "-e":
            joined[-1] = f"-e {word}"
        else:
            joined.append(word)
    return joined


def test_install_commands_are_found():
    commands = _install_commands()
    assert len(commands) >= 6  # the README's three, the lock's, the wheel's, the extras message
    assert any("dist/mnistlab-" in arguments for _, arguments in commands)


@pytest.mark.parametrize("where, arguments", _install_commands())
def test_no_install_command_takes_mnistlab_from_an_index(where, arguments):
    for target in _targets(arguments):
        if "mnistlab" in target or target.strip("\"'").startswith("."):
            assert FROM_THE_CLONE.match(target), (
                f'{where}: `pip install {arguments}` would fetch mnistlab from a package index (or is malformed); install from the clone: pip install -e ".[extra]"'
            )


def test_the_documented_wheel_is_the_one_pip_builds():
    from mnistlab import __version__

    readme = (REPO / "README.md").read_text()
    assert f"dist/mnistlab-{__version__}-py3-none-any.whl" in readme
    assert "pip wheel --no-deps -w dist ." in readme

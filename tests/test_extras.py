"""Without an optional extra, the command that needs it ends with one line naming the install command."""

import os

import pytest

from conftest import REPO, assert_one_line_error, run_cli

# Hides packages from the child process as if they were not installed.
HIDE = """
import importlib.abc, os, sys

class Hide(importlib.abc.MetaPathFinder):
    blocked = set(os.environ["MNISTLAB_TEST_HIDE"].split(","))

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Hide())
"""


@pytest.fixture
def without(tmp_path):
    (tmp_path / "hide").mkdir()
    (tmp_path / "hide" / "sitecustomize.py").write_text(HIDE)

    def env(*modules):
        return {
            "PYTHONPATH": os.pathsep.join([str(tmp_path / "hide"), *filter(None, [os.environ.get("PYTHONPATH")])]),
            "MNISTLAB_TEST_HIDE": ",".join(modules),
        }

    return env


def readme_install_command(extra):
    """The command README's Install section gives for one extra (it shows serve's), for EXTRA."""
    install = (REPO / "README.md").read_text().split("## Install", 1)[1].split("##", 1)[0]
    command = next(line.split("#")[0].strip() for line in install.splitlines() if "one extra" in line)
    assert command == 'pip install -e ".[serve]"', command
    return command.replace("[serve]", f"[{extra}]")


@pytest.mark.parametrize(
    "hidden, args, extra",
    [
        (("fastapi", "uvicorn"), ("serve", "somewhere"), "serve"),
        (
            ("ray",),
            (
                "sweep",
                "sweeps/dropout-vs-optimizer.toml",
                "--executor",
                "ray",
                "--epochs",
                "1",
                "--limit",
                "100",
                "--seeds",
                "1",
                "--dataset",
                "mnist-mini",
            ),
            "ray",
        ),
        (
            ("torch",),
            (
                "train",
                "--set",
                "hidden_units=8",
                "--epochs",
                "1",
                "--limit",
                "100",
                "--dataset",
                "mnist-mini",
                "--backend",
                "torch",
            ),
            "torch",
        ),
    ],
)
def test_missing_extra_is_one_line(tmp_path, without, hidden, args, extra):
    result = run_cli(*args, env=without(*hidden))
    assert_one_line_error(result, f"'{extra}' extra", readme_install_command(extra))
    # A user's mistake, not a crash: the CLI's exit code for those, and nothing half-printed.
    assert result.returncode == 2 and result.stdout == "", (result.returncode, result.stdout)


def test_keras_backend_torch_without_torch(tmp_path, without):
    env = {**without("torch"), "KERAS_BACKEND": "torch"}
    result = run_cli(
        "train",
        "listing-1.3.2",
        "--epochs",
        "1",
        "--limit",
        "200",
        "--dataset",
        "mnist-mini",
        "--out",
        tmp_path / "run",
        env=env,
        keep_backend=True,
    )
    assert_one_line_error(result, "'torch' extra")
    assert not (tmp_path / "run").exists()


def test_export_onnx_without_the_onnx_extra(tmp_path, without, trained_runs):
    result = run_cli(
        "export",
        trained_runs["mlp"],
        "--format",
        "onnx",
        "--out",
        tmp_path / "m.onnx",
        env=without("tf2onnx", "onnx", "onnxruntime"),
    )
    assert_one_line_error(result, "'onnx' extra")
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.slow  # fresh processes on other backends
def test_keras_backend_environment_is_honoured(tmp_path):
    """KERAS_BACKEND=torch picks torch (Keras' convention), and the first line says why."""
    pytest.importorskip("torch")
    result = run_cli(
        "train",
        "listing-1.3.2",
        "--epochs",
        "1",
        "--limit",
        "500",
        "--dataset",
        "mnist-mini",
        "--json",
        "--out",
        tmp_path / "run",
        env={"KERAS_BACKEND": "torch"},
        keep_backend=True,
    )
    assert result.returncode == 0, result.stderr
    assert "backend torch (KERAS_BACKEND)" in result.stderr.splitlines()[0]
    assert '"backend": "torch"' in (tmp_path / "run" / "metrics.json").read_text()

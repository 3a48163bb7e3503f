"""A training in its own process: the result comes back; a user's error as one line, a bug with its traceback."""

import pytest

from mnistlab import runner
from mnistlab.config import Config
from mnistlab.errors import RunFailed

TINY = dict(hidden_units=(8,), epochs=1, limit=200, dataset="mnist-mini", backend="jax")


def test_result_comes_back_and_the_run_directory_is_written(tmp_path):
    metrics = runner.run_isolated(Config(**TINY), tmp_path / "run", run_id=7, group="g", quiet=True)
    assert metrics["status"] == "done" and metrics["run_id"] == 7 and metrics["group"] == "g"
    assert (tmp_path / "run" / "metrics.json").exists() and (tmp_path / "run" / "model.keras").exists()


def test_a_user_error_is_one_line_without_traceback(tmp_path):
    with pytest.raises(RunFailed, match="no-such-dataset") as caught:
        runner.run_isolated(Config(**{**TINY, "dataset": str(tmp_path / "no-such-dataset.npz")}), tmp_path / "run", quiet=True)
    assert caught.value.traceback is None


def test_a_bug_brings_its_traceback(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(RunFailed, match="FileExistsError") as caught:
        runner.run_isolated(Config(**TINY), blocker, quiet=True)
    assert caught.value.traceback.startswith("Traceback") and "rundir.py" in caught.value.traceback

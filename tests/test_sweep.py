"""Sweeps and reproductions: planning, skipping, resuming after kill -9, retries, and Ray."""

import contextlib
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from conftest import assert_one_line_error, process_stat, run_cli, still_running, write_npz
from mnistlab.analysis import tables
from mnistlab.core.config import Config, knobs
from mnistlab.core.errors import ConfigError
from mnistlab.jobs import reproduce, sweep
from mnistlab.record.store import Store

TINY = "[set]\nhidden_units = [16]\nepochs = 1\nlimit = 300\n"


def write_sweep(tmp_path, body, name="tiny.toml"):
    path = tmp_path / name
    path.write_text(body)
    return path


def test_sweep_file_is_a_grid_times_seeds(tmp_path):
    path = write_sweep(
        tmp_path,
        'preset = "listing-1.3.2"\nseeds = 2\ndataset = "mnist-mini"\n'
        + TINY
        + '[grid]\ndropout_rate = [0.2, 0.45]\noptimizer = ["adam", "sgd", "rmsprop"]\n',
    )
    name, dataset, seeds, grid_keys, configs = sweep.load_sweep_file(path)
    assert (name, dataset, seeds, grid_keys) == ("tiny", "mnist-mini", [0, 1], ["dropout_rate", "optimizer"])
    assert len(configs) == 12
    assert {c.optimizer for _, c in configs} == {"adam", "sgd", "rmsprop"}
    assert all(c.hidden_units == (16,) and c.epochs == 1 for _, c in configs)


@pytest.mark.parametrize(
    "body, message",
    [
        ("seeds = [\n", "not valid TOML"),
        ("colour = 1\n", "unknown sweep settings"),
        ("[grid]\ndropout = [0.1]\n", "unknown config key 'dropout'"),
        ("[grid]\ndropout_rate = 0.1\n", "must be a non-empty list"),
        ("[set]\noptimizer = 'adamw'\n", "optimizer must be one of"),
    ],
)
def test_bad_sweep_files(tmp_path, body, message):
    with pytest.raises(ConfigError, match=message):
        sweep.load_sweep_file(write_sweep(tmp_path, body))


def test_plan_keys_and_backends(mini, monkeypatch):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    jobs = reproduce.plan_table("table-1.4.1", mini, seeds=2, choice=reproduce.TableChoice(epochs=1, limit=100))
    assert len(jobs) == 8 and len({job.key for job in jobs}) == 8
    # Each run gets a fresh worker process: auto is the CNN's fastest, whatever this process runs...
    assert {job.config.backend for job in jobs} == {"tensorflow"}
    # ... unless the user chose one with KERAS_BACKEND, as Keras' own convention has it.
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    assert {job.config.backend for job in reproduce.plan_table("table-1.4.1", mini, seeds=1)} == {"torch"}
    assert all(job.config.dataset == "mnist-mini" for job in jobs)
    with pytest.raises(ConfigError, match="unknown table"):
        reproduce.expand_tables("table-2.1")


@pytest.mark.slow  # a training failed and retried in worker processes: the full suite's, not the quick loop's
def test_failed_run_is_retried_once_then_recorded(tmp_path, mini, capsys):
    vanishing = write_npz(tmp_path / "vanishing.npz", mini)
    configs = [
        (None, Config(hidden_units=(8,), epochs=1, limit=200, dataset=str(vanishing), seed=seed)) for seed in (0, 1)
    ]
    jobs = sweep.plan(configs, mini, group="g")
    vanishing.unlink()  # every attempt of both runs now fails in its worker
    jobs[1] = sweep.plan(
        [(None, Config(hidden_units=(8,), epochs=1, limit=200, dataset="mnist-mini", seed=1))], mini, group="g"
    )[0]
    capsys.readouterr()
    outcomes = sweep.run(jobs, store_path=tmp_path / "runs.db")
    assert [o.status for o in outcomes] == ["failed", "done"]
    assert "vanishing.npz" in outcomes[0].error
    messages = capsys.readouterr().err.splitlines()
    assert sum("retrying once" in m for m in messages) == 1
    # stderr is not a terminal here (piped, as into `tee`): the failure is said, the finished run's "[i/N]" line
    # is not (it would land in the results table); given a log, or on a terminal, every run is told.
    told = [m for m in messages if m.startswith("[")]
    assert len(told) == 1 and "FAILED" in told[0] and "vanishing.npz" in told[0], messages
    with Store(tmp_path / "runs.db") as store:
        failed = store.runs(status="failed")
        assert len(failed) == 2 and [r["attempt"] for r in failed] == [1, 2]
        assert all("vanishing.npz" in r["error"] for r in failed)
        assert store.count("done") == 1


def test_a_terminal_is_told_each_finished_run(tmp_path, monkeypatch):
    """The other side of the test above: on a terminal (or to a log the caller gives) each run's line is said."""
    import types

    told = []
    monkeypatch.setattr(sweep, "_run_local", lambda todo, driver, *rest: [(0, _told(driver, todo[0][1]))])
    job = types.SimpleNamespace(key="k", label="row 3 seed 0")
    with Store(tmp_path / "runs.db"):
        pass
    monkeypatch.setattr(sys, "stderr", types.SimpleNamespace(isatty=lambda: True, write=told.append, flush=lambda: 0))
    sweep.run([job], store_path=tmp_path / "runs.db")
    assert "[1/1] row 3 seed 0: test 97.00% (3 s)" in told, told


def _told(driver, job):
    outcome = sweep.Outcome(job, "done", metrics={"test_accuracy": 0.97, "seconds": 3})
    driver.progress(1, outcome)
    return outcome


def _done_count(path):
    if not path.exists():
        return 0
    with Store(path) as store:
        return store.count("done")


REPRODUCE = (
    "reproduce",
    "table-1.4.1",
    "--rows",
    "3,4",
    "--seeds",
    "2",
    "--epochs",
    "1",
    "--limit",
    "300",
    "--dataset",
    "mnist-mini",
    "--workers",
    "2",
    # JAX, whose compiled steps the suite's compilation cache keeps (the CNN's default is TensorFlow): what is
    # tested is the resume, not a backend.
    "--backend",
    "jax",
)


def _trainings_of(pid):
    """{pid: start time} of PID's training processes (`python -m mnistlab.jobs.runner`), from Linux's /proc."""
    trainings = {}
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        child = int(stat.parent.name)
        fields = process_stat(child)
        with contextlib.suppress(OSError):
            if fields and int(fields[1]) == pid and b"mnistlab.jobs.runner" in (stat.parent / "cmdline").read_bytes():
                trainings[child] = fields[19]
    return trainings


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the training processes are found in Linux's /proc")
def test_reproduce_resumes_after_kill_9(tmp_path):
    store_path = tmp_path / "runs.db"
    env = {**os.environ, "MNISTLAB_STORE": str(store_path)}
    env.pop("KERAS_BACKEND", None)
    driver = subprocess.Popen(
        [sys.executable, "-m", "mnistlab", *REPRODUCE], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 300
    while _done_count(store_path) < 1 and time.time() < deadline:
        time.sleep(0.2)
    trainings = _trainings_of(driver.pid)
    assert trainings, "the sweep's training processes"
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    # The training processes die with their parent, so that no orphan finishes a run nobody records.
    deadline = time.time() + 60
    while any(still_running(*training) for training in trainings.items()) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(still_running(*training) for training in trainings.items()), trainings
    done_before = _done_count(store_path)
    assert 1 <= done_before < 4

    result = run_cli(*REPRODUCE, env={"MNISTLAB_STORE": str(store_path)})
    assert result.returncode == 0, result.stderr
    assert f"{done_before} already done, {4 - done_before} to run" in result.stderr
    assert result.stdout.count("| filters 64-64-64") == 2 and "book test" in result.stdout
    with Store(store_path) as store:
        done = store.runs(status="done")
        assert len(done) == 4 and len({r["run_key"] for r in done}) == 4
        assert store.count("running") == 0

    # Once more: nothing left to do, same table.
    again = run_cli(*REPRODUCE, env={"MNISTLAB_STORE": str(store_path)})
    assert "4 already done, 0 to run" in again.stderr
    tables = sorted((tmp_path / "tables").glob("*.json"))
    rows = json.loads(tables[0].read_text())["rows"]
    assert all(row["runs"] == 2 and row["test"]["ci_low"] is not None for row in rows)


DRIVER = """
import sys
from mnistlab.core import presets
from mnistlab.jobs import runner
from mnistlab.analysis import tables
config = presets.get("listing-1.3.2").build_config(epochs=1000, dataset="mnist-mini", backend="jax")
runner.run_isolated(config, sys.argv[1], quiet=True)
"""


def _training_pid(run_dir, parent):
    """The training child's pid, once it has started writing its run directory."""
    if not (run_dir / "config.json").exists():
        return None
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            return int(stat.parent.name)
    return None


def _process_gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")  # a zombie has stopped running
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux's")
def test_training_process_dies_with_its_parent(tmp_path):
    run_dir = tmp_path / "run"
    env = dict(os.environ)
    env.pop("KERAS_BACKEND", None)
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(run_dir)], env=env)
    deadline = time.time() + 120
    while (pid := _training_pid(run_dir, driver.pid)) is None and time.time() < deadline:
        time.sleep(0.2)
    assert pid is not None, "the training never started"
    assert not _process_gone(pid)
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    deadline = time.time() + 10
    while not _process_gone(pid) and time.time() < deadline:
        time.sleep(0.1)
    assert _process_gone(pid), "the training outlived its parent"


@pytest.mark.slow
def test_ray_executor_shares_the_store_with_local(tmp_path):
    pytest.importorskip("ray")
    store_path = tmp_path / "runs.db"
    path = write_sweep(tmp_path, 'seeds = 2\ndataset = "mnist-mini"\n' + TINY)
    local = run_cli("sweep", path, "--store", store_path, "--workers", "1")
    assert local.returncode == 0, local.stderr
    with Store(store_path) as store:
        local_runs = {r["seed"]: r["test_accuracy"] for r in store.runs(status="done")}
        # Forget seed 1 so that Ray has something to run.
        store._connection.execute("DELETE FROM runs WHERE seed = 1")
    remote = run_cli("sweep", path, "--store", store_path, "--workers", "2", "--executor", "ray")
    assert remote.returncode == 0, remote.stderr
    assert "1 already done, 1 to run with 2 ray worker(s)" in remote.stderr
    with Store(store_path) as store:
        done = store.runs(status="done")
        assert len(done) == 2
        # Deterministic training: Ray's run of seed 1 reproduces the local one exactly.
        assert {r["seed"]: r["test_accuracy"] for r in done} == local_runs


@pytest.mark.slow
def test_runs_list_show_compare(tmp_path):
    store_path = tmp_path / "runs.db"
    path = write_sweep(tmp_path, 'seeds = 2\ndataset = "mnist-mini"\n' + TINY + "[grid]\noptimizer = ['adam', 'sgd']\n")
    result = run_cli("sweep", path, "--store", store_path, "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert "optimizer=adam" in result.stdout and "optimizer=sgd" in result.stdout
    listing = run_cli("runs", "list", "--store", store_path)
    assert listing.stdout.count(" done ") == 4
    # Each run shows what sets it apart, not just "mlp".
    assert listing.stdout.count("mlp 16 relu adam") == 2 and listing.stdout.count("mlp 16 relu sgd") == 2
    show = json.loads(run_cli("runs", "show", "1", "--store", store_path, "--json").stdout)
    assert show["status"] == "done" and len(show["epochs"]) == 1 and show["config"]["optimizer"] in ("adam", "sgd")
    with Store(store_path) as store:
        # Each of the two workers kept its training process for its next run: four runs, at most two processes.
        pids = {
            json.loads((store_path.parent / r["run_dir"] / "metrics.json").read_text())["pid"] for r in store.runs()
        }
        assert 1 <= len(pids) <= 2, pids
        hashes = {
            r["config"]: r["hash"]
            for r in (
                {"config": json.loads(r["config_json"])["optimizer"], "hash": r["config_hash"]} for r in store.runs()
            )
        }
    compare = run_cli("runs", "compare", hashes["adam"], hashes["sgd"], "--store", store_path, "--json")
    assert compare.returncode == 0, compare.stderr
    verdict = json.loads(compare.stdout)
    assert verdict["n_a"] == verdict["n_b"] == 2 and verdict["mean_a"] > verdict["mean_b"]
    # Two seeds a side: the numbers, but no verdict (a verdict needs 3 seeds a side).
    assert verdict["significant"] is None and verdict["p_value"] < 0.05
    assert verdict["verdict"].startswith("no verdict: 2 and 2 runs")
    assert_one_line_error(
        run_cli("runs", "compare", "listing-1.3.2", hashes["sgd"], "--store", store_path), "no finished runs match"
    )
    # A group with two setups: refused with the setups named by their settings.
    assert_one_line_error(
        run_cli("runs", "compare", "group=tiny", hashes["sgd"], "--store", store_path),
        "matches 2 setups",
        "mlp 16 relu adam",
        "mlp 16 relu sgd",
    )
    readable = run_cli("runs", "show", "1", "--store", store_path).stdout
    assert readable.startswith("run 1: done") and "epoch   loss" in readable
    assert_one_line_error(run_cli("runs", "show", "99", "--store", store_path), "no run with id 99")


def test_table_files_name_every_setting_that_changes_them():
    """The two readings of Table 1.3.2 (and any dataset, seeds, epochs, limit) get different files and headers."""
    named = {
        reading: tables.table_naming("table-1.3.2", "mnist-mini", 3, 20, None, reading)
        for reading in ("listing", "three-hidden")
    }
    assert named["listing"][0] != named["three-hidden"][0]
    assert "read as three-hidden" in named["three-hidden"][1] and "read as listing" in named["listing"][1]
    stems = {
        tables.table_naming("table-1.4.1", *settings)[0]
        for settings in (
            ("mnist", 3, 10),
            ("mnist", 2, 10),
            ("mnist", 3, 1),
            ("mnist-mini", 3, 10),
            ("mnist", 3, 10, 500),
        )
    }
    assert len(stems) == 5


def _children_running(module):
    """pids of this process' children whose command line runs MODULE."""
    found = []
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        parent = int(stat.rsplit(") ", 1)[1].split()[1])
        if parent == os.getpid() and module.encode() in command:
            found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_a_worker_killed_with_sigkill_is_named_with_its_log(tmp_path, mini, monkeypatch):
    """kill -9 of a training worker: the message names the signal and the worker's log, which its run directory holds."""
    import threading

    # As many epochs as a run may have, so that it is still training when the watcher sees it on any machine.
    config = Config(hidden_units=(16,), epochs=knobs.MAX_EPOCHS, limit=300, dataset="mnist-mini", backend="jax")
    jobs = sweep.plan([(None, config)], mini)
    killed = []

    def kill_first_worker():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            started = list((tmp_path / "runs").rglob("config.json"))
            pids = _children_running("mnistlab.jobs.runner")
            if started and pids:  # the worker has begun the run (its recorder wrote config.json)
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.2)

    watcher = threading.Thread(target=kill_first_worker)
    watcher.start()
    try:
        # No retry: the long run would only be trained again.
        (outcome,) = sweep.run(
            jobs, store_path=tmp_path / "runs.db", log=lambda message: None, quiet=True, watch=sweep.Watch(attempts=1)
        )
    finally:
        watcher.join()
    assert killed, "the worker was never seen running"
    assert outcome.status == "failed"
    assert "killed by signal 9 (SIGKILL)" in outcome.error and "worker.log" in outcome.error
    run_dir = pathlib.Path(outcome.error.split("its log is ", 1)[1].split(";")[0]).parent
    assert (run_dir / "worker.log").is_file()
    # The directory is the record of the failure too, and says the same as the store.
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "failed" and "SIGKILL" in metrics["error"]
    with Store(tmp_path / "runs.db") as store:
        assert store.get(metrics["run_id"])["error"] == metrics["error"]


@pytest.mark.parametrize(
    "returncode, before, after, words",
    [
        (-9, 3, 4, "killed by the kernel: out of memory?"),
        (-9, 3, 3, "the kernel's out-of-memory killer did not act"),
        (-9, None, None, "or the kernel for lack of memory"),
        (-15, 0, 0, "killed by signal 15 (SIGTERM)"),
        (3, None, None, "exit code 3"),
    ],
)
def test_how_a_worker_ended_in_words(returncode, before, after, words):
    from mnistlab.core import processes

    assert words in processes.how_it_ended(returncode, before, after)

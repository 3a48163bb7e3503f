"""A reproduction on a two-node Ray cluster whose worker node cannot write the driver's directories.

The head node offers no CPUs, so every training runs on the second node.
That node is started in its own mount namespace where the driver's run
root and store are read-only, as they would be on another machine: every
run must still land in the driver's store and run root, through the driver,
and its live progress (the lab's curves) must reach the driver as it trains.
"""

import json
import os
import pathlib
import secrets
import shutil
import subprocess
import sys
import time

import pytest

from conftest import free_port, run_cli, wait_until_listening
from mnistlab.record.store import Store

pytestmark = [
    pytest.mark.slow,  # a two-node cluster and two trainings: over a minute
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mount namespaces are Linux's"),
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("unshare") is None,
        reason="needs root and unshare(1) to give the worker node its own mounts",
    ),
]

PROBE = """
import ray, sys
ray.init(address=sys.argv[1], log_to_driver=False)

@ray.remote(num_cpus=1)
def try_to_write(path):
    try:
        open(path, "w").close()
        return "wrote"
    except OSError as error:
        return f"refused: {error.strerror}"

print(ray.get(try_to_write.remote(sys.argv[2])))
"""


# A run on the worker node, its progress events timed where the driver receives them.
PROGRESS = """
import json, sys, time
from mnistlab.ml import data
from mnistlab.core import presets
from mnistlab.jobs import sweep
dataset = data.load_dataset("mnist-mini")
jobs = sweep.plan([("listing-1.4.1", presets.configure("listing-1.4.1", ["filters=16,16,16"], seed=0, epochs=3, limit=2000, batch_size=32))], dataset, group="progress")
received = []
outcome = sweep.run(jobs, store_path=sys.argv[2], executor="ray", address=sys.argv[1], log=lambda line: None,
                    watch=sweep.Watch(on_progress=lambda run_id, event: received.append({"run_id": run_id, "received": time.time(), **event})))[0]
print(json.dumps({"status": outcome.status, "ended": time.time(), "events": received}))
"""


@pytest.fixture(scope="module")
def two_node_cluster(tmp_path_factory):
    pytest.importorskip("ray")
    ray_cli = str(pathlib.Path(sys.executable).parent / "ray")
    driver_dir = tmp_path_factory.mktemp("cluster") / "driver"
    driver_dir.mkdir()
    port = free_port()
    # The cluster's authentication said outright, for the nodes and for every process that joins them (the tests
    # pass `access` on). Left unsaid, each Ray command decides for itself: since Ray 2.5x, `ray start` turns token
    # authentication on when ~/.ray/auth_token exists (any local ray.init writes one) while `ray status` does
    # not, so on a machine that has used Ray the worker node was never seen to join.
    access = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **access}
    common = ["--node-ip-address=127.0.0.1", "--disable-usage-stats", "--block"]
    # --block: each node lives as long as its process, which the fixture stops.
    head = subprocess.Popen(
        [ray_cli, "start", "--head", f"--port={port}", "--num-cpus=0", "--include-dashboard=false", *common],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = None
    try:
        # The head's GCS port open before the worker node looks for it (a fixed pause was a guess at a machine's speed).
        wait_until_listening(port, head)
        readonly = f"mount --bind {driver_dir} {driver_dir} && mount -o remount,ro,bind {driver_dir} {driver_dir} && exec {ray_cli} start --address=127.0.0.1:{port} --num-cpus=2 {' '.join(common)}"
        worker = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", readonly],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        address = f"127.0.0.1:{port}"
        deadline = time.time() + 90
        while time.time() < deadline:
            status = subprocess.run(
                [ray_cli, "status", f"--address={address}"], capture_output=True, text=True, env=env
            )
            if "2.0 CPU" in status.stdout:
                break
            time.sleep(1)
        else:
            pytest.fail("the worker node never joined: " + status.stdout[-1000:] + status.stderr[-1000:])
        yield address, driver_dir, access
    finally:
        for node in (worker, head):
            if node is not None:
                node.terminate()
                try:
                    node.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    node.kill()


def test_reproduction_on_two_nodes_lands_in_the_drivers_store_and_run_root(two_node_cluster):
    address, driver_dir, access = two_node_cluster
    # The worker node really cannot write here.
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, address, str(driver_dir / "probe")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **access},
    )
    assert probe.stdout.strip() == "refused: Read-only file system", probe.stdout + probe.stderr[-2000:]

    store_path = driver_dir / "runs.db"
    args = (
        "reproduce",
        "table-1.5.1",
        "--rows",
        "1,2",
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--limit",
        "300",
        "--dataset",
        "mnist-mini",
        "--executor",
        "ray",
        "--address",
        address,
        "--store",
        store_path,
    )
    result = run_cli(*args, env={"MNISTLAB_RUNS": str(driver_dir / "runs"), **access})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 runs planned: 0 already done, 2 to run" in result.stderr
    with Store(store_path) as store:
        done = store.runs(status="done")
        assert len(done) == 2 and store.count() == 2
        assert len({run["run_key"] for run in done}) == 2
    for run in done:
        run_dir = driver_dir / "runs" / os.path.basename(run["run_dir"])
        assert run["run_dir"] == str(run_dir)
        assert sorted(path.name for path in run_dir.iterdir()) == [
            "config.json",
            "dynamics.json",
            "history.csv",
            "metrics.json",
            "model.keras",
            "predictions.npz",
            "worker.log",
        ]  # the worker's log, its predictions and its dynamics come back from its node too
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert metrics["run_id"] == run["id"] and metrics["run_dir"] == str(run_dir) and metrics["status"] == "done"
    assert "1/1" in result.stdout


def test_a_run_on_another_node_sends_its_progress_to_the_driver_as_it_trains(two_node_cluster):
    """The lab's live curves for Ray runs: each epoch's event reaches the driver while the run goes on, in order."""
    address, driver_dir, access = two_node_cluster
    result = subprocess.run(
        [sys.executable, "-c", PROGRESS, address, str(driver_dir / "progress.db")],
        capture_output=True,
        text=True,
        # A guard against a hang, not a bound on speed: beside two CPU-bound processes this takes minutes.
        timeout=900,
        env={**os.environ, "MNISTLAB_RUNS": str(driver_dir / "runs"), **access},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["status"] == "done"
    epochs = [event for event in answer["events"] if event["kind"] == "epoch"]
    assert [event["epoch"] for event in epochs] == [1, 2, 3]
    # Sent from the node as each epoch ended (its own clock, the same machine's here), received after
    # it was sent, and the first before the last epoch ended: live, not replayed at the end. (No bound
    # in seconds: a slower machine takes longer for everything; the order is what says "live".)
    assert all(event["received"] >= event["time"] for event in epochs)
    assert epochs[0]["received"] < epochs[-1]["time"]
    assert all(event["run_id"] == epochs[0]["run_id"] for event in answer["events"])

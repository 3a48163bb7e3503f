"""A reproduction on a two-node Ray cluster whose worker node cannot write the driver's directories.

The head node offers no CPUs, so every training runs on the second node.
That node is started in its own mount namespace where the driver's run
root and store are read-only, as they would be on another machine: every
run must still land in the driver's store and run root, through the driver.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import pytest

from conftest import free_port, run_cli
from mnistlab.store import Store

pytestmark = [
    pytest.mark.slow,  # a two-node cluster and two trainings: over a minute
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mount namespaces are Linux's"),
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare(1) to give the worker node its own mounts"),
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


@pytest.fixture
def two_node_cluster(tmp_path):
    pytest.importorskip("ray")
    ray_cli = str(pathlib.Path(sys.executable).parent / "ray")
    driver_dir = tmp_path / "driver"
    driver_dir.mkdir()
    port = free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    common = ["--node-ip-address=127.0.0.1", "--disable-usage-stats", "--block"]
    # --block: each node lives as long as its process, which the fixture stops.
    head = subprocess.Popen([ray_cli, "start", "--head", f"--port={port}", "--num-cpus=0", "--include-dashboard=false", *common], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = None
    try:
        time.sleep(3)
        readonly = f"mount --bind {driver_dir} {driver_dir} && mount -o remount,ro,bind {driver_dir} {driver_dir} && exec {ray_cli} start --address=127.0.0.1:{port} --num-cpus=2 {' '.join(common)}"
        worker = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", readonly], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        address = f"127.0.0.1:{port}"
        deadline = time.time() + 90
        while time.time() < deadline:
            status = subprocess.run([ray_cli, "status", f"--address={address}"], capture_output=True, text=True, env=env)
            if "2.0 CPU" in status.stdout:
                break
            time.sleep(1)
        else:
            pytest.fail("the worker node never joined: " + status.stdout[-1000:] + status.stderr[-1000:])
        yield address, driver_dir
    finally:
        for node in (worker, head):
            if node is not None:
                node.terminate()
                try:
                    node.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    node.kill()


def test_reproduction_on_two_nodes_lands_in_the_drivers_store_and_run_root(two_node_cluster):
    address, driver_dir = two_node_cluster
    # The worker node really cannot write here.
    probe = subprocess.run([sys.executable, "-c", PROBE, address, str(driver_dir / "probe")], capture_output=True, text=True, timeout=120)
    assert probe.stdout.strip() == "refused: Read-only file system", probe.stdout + probe.stderr[-2000:]

    store_path = driver_dir / "runs.db"
    args = ("reproduce", "table-1.5.1", "--rows", "1,2", "--seeds", "1", "--epochs", "1", "--limit", "300", "--dataset", "mnist-mini", "--executor", "ray", "--address", address, "--store", store_path)
    result = run_cli(*args, env={"MNISTLAB_RUNS": str(driver_dir / "runs")})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 runs planned: 0 already done, 2 to run" in result.stderr
    with Store(store_path) as store:
        done = store.runs(status="done")
        assert len(done) == 2 and store.count() == 2
        assert len({run["run_key"] for run in done}) == 2
    for run in done:
        run_dir = driver_dir / "runs" / os.path.basename(run["run_dir"])
        assert run["run_dir"] == str(run_dir)
        assert sorted(path.name for path in run_dir.iterdir()) == ["config.json", "history.csv", "metrics.json", "model.keras", "predictions.npz", "worker.log"]  # the worker's log and its predictions come back from its node too
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert metrics["run_id"] == run["id"] and metrics["run_dir"] == str(run_dir) and metrics["status"] == "done"
    assert "1/1" in result.stdout

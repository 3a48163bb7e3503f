"""The README's tour runs exactly as printed, offline, from a directory laid out like a clone's top.

Commands run in this process where a fresh one proves nothing more (they are
JAX here); those that need their own process (another backend, a server, workers
that choose their backend) run in one. The one change to the README's lines: `serve` and `lab` get a free port (each is started,
asked /healthz, and stopped).
"""

import http.client
import json
import os
import pathlib
import shlex
import shutil
import subprocess
import sys
import time

import pytest

from conftest import REPO, cache_with_runtime, env_without_backend, free_port, run_cli, run_main, runtime_or_skip
from mnistlab.record.store import Store

# site exports on TensorFlow, and this process runs JAX. reproduce's workers choose their backend as a user's do
# (the CNN's "auto" is TensorFlow): under this process' KERAS_BACKEND=jax they would train on JAX, at twice the cost;
# the report then reloads those TensorFlow runs.
OWN_PROCESS = ("--backend", "serve", "lab", "site", "reproduce", "report")
SERVERS = ("serve", "lab")


def tour_commands():
    text = (REPO / "README.md").read_text()
    block = text.split("## A tour", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [shlex.split(line, comments=True)[1:] for line in block.splitlines() if line.startswith("mnistlab ")]


def serve_answers(tmp_path, args):
    """Start a server of the tour on a free port, and ask it /healthz: the lab with the token that its first line
    prints (as a user opens it), the draw page with none."""
    port = free_port()
    env = env_without_backend()
    server = subprocess.Popen(
        [sys.executable, "-m", "mnistlab", *args, "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        opened = next((line for line in server.stdout if "open http://" in line), None)
        if opened is None:
            pytest.fail(
                f"mnistlab {' '.join(args)} printed no address to open; it ended with {server.wait(timeout=30)}"
            )
        address = opened.split("open ", 1)[1].split()[0]
        path = "/healthz" + (address[address.index("?") :] if "?" in address else "")
        deadline = time.time() + 120
        while time.time() < deadline and server.poll() is None:
            try:
                # http.client: urllib's urlopen is disabled in the tests (no downloads).
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", path)
                return json.loads(connection.getresponse().read())
            except OSError:
                time.sleep(0.5)
        pytest.fail(
            "serve did not answer: " + (server.stdout.read() if server.poll() is not None else "still starting")
        )
    finally:
        server.terminate()
        server.wait(timeout=30)


def main_job(tmp_path):
    """What `bash scripts/run-main.sh --epochs 1` runs after its set-up (its README form, with the documented
    --epochs 1), in a fresh process as a user's: the three listings, offline on mnist-mini."""
    result = run_cli("listings", "--epochs", "1", env={"MNISTLAB_RUNS": str(tmp_path / "runs")})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "MNIST unavailable" in result.stderr and "mnist-mini" in result.stderr
    accuracies = {}
    for name in ("listing-1.3.2", "listing-1.4.1", "listing-1.5.1"):
        line = next((line for line in result.stdout.splitlines() if line.startswith(name) and "%" in line), None)
        assert line, result.stdout
        accuracies[name] = float(line.split("%")[1].split()[-1])  # the columns: ... train acc, test acc, book test
    # Quiet by default: none of TensorFlow's, XLA's or absl's own log lines (the CNN runs on TensorFlow).
    for noise in ("absl::InitializeLog", "oneDNN custom operations", "NodeDef mentions", "I0000 ", "E0000 ", "W0000 "):
        assert noise not in result.stdout + result.stderr, noise
    return accuracies


@pytest.mark.slow
def test_the_readme_tour_runs_offline_as_printed(tmp_path, capsys, monkeypatch, browser_page):
    """As a new user goes: the main job, then the tour as printed. (Running the main job again repeats each seed:
    tests/test_repeats.py has how repeats count, and the determinism tests that a repeat gives the same numbers.)"""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs" / "examples").mkdir(parents=True)
    shutil.copy(REPO / "docs" / "examples" / "seven.png", tmp_path / "docs" / "examples" / "seven.png")
    first = main_job(tmp_path)
    # One epoch of the 2,160 training digits: each of the book's three networks far above chance (10%).
    assert first["listing-1.3.2"] >= 60 and first["listing-1.4.1"] >= 50 and first["listing-1.5.1"] >= 25, first
    with Store(tmp_path / "runs" / "runs.db") as store:
        assert store.count("done") == 3
    commands = tour_commands()
    # `mnistlab site` takes the browser runtime from the data cache, where setup.sh put it: the tour's own data cache
    # links to it (the tests never fetch it).
    runtime_or_skip()
    cache_with_runtime(pathlib.Path(os.environ["MNISTLAB_DATA"]))
    assert len(commands) >= 15 and {"train", "reproduce", "serve", "predict", "explain"} <= {
        args[0] for args in commands
    }
    for args in commands:
        if args[0] in SERVERS:
            assert serve_answers(tmp_path, args)["status"] == "ok"
            continue
        result = run_cli(*args) if any(flag in args for flag in OWN_PROCESS) else run_main(capsys, *args)
        assert result.returncode == 0, f"mnistlab {' '.join(args)}\n{result.stderr[-3000:]}"
        if args[:2] == ["train", "listing-1.3.2"]:
            # What the tour's comment promises on the built-in data.
            accuracy = float(result.stdout.split("Test accuracy: ")[1].split("%")[0])
            assert 90 <= accuracy <= 97, result.stdout
        if "batch_norm=true" in args:
            # Batch norm's moving statistics caught up in the 51 steps (momentum 0.9): the test is not at chance.
            accuracy = float(result.stdout.split("Test accuracy: ")[1].split("%")[0])
            assert accuracy >= 60 and "note:" not in result.stdout, result.stdout
        if args[0] == "predict":
            # The shipped example is a seven, and the listing's MLP reads it so.
            assert result.stdout.split(": ", 1)[1].startswith("7 "), result.stdout
        if args[0] == "report" and "--format" not in args:
            # The table's report as a browser shows it: the book comparison, the 2 reproduced rows' curves, the best row's
            # atlas (contested digits, digits all get wrong, per class), confusion, mistakes, per-class.
            report_page = tmp_path / args[args.index("--out") + 1]
            browser_page.goto(report_page.as_uri())
            browser_page.wait_for_load_state("load")
            loaded = browser_page.evaluate("Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)")
            assert len(loaded) == 9 and all(loaded)
            text = browser_page.inner_text("body")
            assert (
                "Comparison with the book" in text
                and "best mean validation accuracy" in text
                and "The digits the seeds disagree on" in text
            )
        if args[0] == "report" and "latex" in args:
            assert "\\toprule" in (tmp_path / args[args.index("--out") + 1]).read_text()
        if args[0] == "site":
            site = tmp_path / args[args.index("--out") + 1]
            assert (site / "index.html").is_file() and (site / "ort" / "LICENSE.txt").is_file(), result.stdout
            assert [
                model["family"] for model in json.loads((site / "models" / "models.json").read_text())["models"]
            ] == ["mlp"]
        if args[:2] == ["runs", "disagree"]:
            assert "disagree on" in result.stdout and "all wrong on" in result.stdout, result.stdout
    # After the main job and the tour: each of the main job's setups is one seed, once, with no repeat.
    from fastapi.testclient import TestClient

    from mnistlab.web import lab as lab_lib

    with TestClient(
        lab_lib.create_app(lab_lib.Lab(tmp_path / "runs" / "runs.db", workers=0)), base_url="http://127.0.0.1:8100"
    ) as client:
        groups = client.get("/api/runs").json()["groups"]
    main_job_groups = [group for group in groups if group["setup"].endswith("+epochs=1")]
    assert len(main_job_groups) == 3, [group["setup"] for group in groups]
    for group in main_job_groups:
        assert group["n"] == 1 and group["repeats"]["count"] == 0, group
    # mnist-mini and short epochs: the book's figure is shown with why it is not held against, and no verdict.
    assert all(group["book_comparable"] is False and group["book_in_interval"] is None for group in groups)


@pytest.mark.slow  # a fresh process training five epochs
def test_the_readme_python_example_runs_as_printed(tmp_path):
    text = (REPO / "README.md").read_text()
    example = text.split("Everything the CLI does is a library call:", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    env = env_without_backend()
    result = subprocess.run(
        [sys.executable, "-c", example], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # The example's two prints, between Keras' per-epoch lines ("17/17 - 1s - ... - loss: ...").
    first, second = [
        line
        for line in result.stdout.splitlines()
        if " - " not in line and line.strip() and not line.startswith("Epoch ")
    ]
    accuracy, epochs, params = first.split()
    assert 0.5 < float(accuracy) <= 1 and epochs == "5" and int(params) == 784 * 512 + 512 + 512 * 512 + 512 + 5130
    assert second.split()[2] == "1"  # the first run in this store

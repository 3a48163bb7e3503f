"""The README's tour runs as written, offline, on the built-in data (1 epoch, small limits).

Commands run in this process where a fresh one proves nothing more (they are
JAX here); those that need their own process (another backend, a server) run
in one. The only changes to the README's lines: the built-in dataset, 1 epoch
and 300 training images for anything that trains, 2 seeds for the
reproduction, RUN_DIR and my-digit.png filled in.
"""

import http.client
import json
import os
import shlex
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, run_cli, run_main

TRAINING = ("train", "reproduce", "listings")
OWN_PROCESS = ("--backend", "serve")


def tour_commands():
    text = (REPO / "README.md").read_text()
    block = text.split("## A tour", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [shlex.split(line, comments=True)[1:] for line in block.splitlines() if line.startswith("mnistlab ")]


def adapted(args, run_dir, image):
    args = [run_dir if arg == "RUN_DIR" else image if arg == "my-digit.png" else arg for arg in args]
    if args[0] in TRAINING or args[0] == "data":
        if "--dataset" not in args:
            args += ["--dataset", "mnist-mini"]
    if args[0] in TRAINING:
        if "--epochs" in args:
            index = args.index("--epochs")
            del args[index : index + 2]
        args += ["--epochs", "1", "--limit", "300"]
    if args[0] == "reproduce":
        args[args.index("--seeds") + 1] = "2"
    return args


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_answers(tmp_path, args):
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    server = subprocess.Popen([sys.executable, "-m", "mnistlab", *args, "--port", str(port)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and server.poll() is None:
            try:
                # http.client: urllib's urlopen is disabled in the tests (no downloads).
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", "/healthz")
                return json.loads(connection.getresponse().read())
            except OSError:
                time.sleep(0.5)
        pytest.fail("serve did not answer: " + (server.stdout.read() if server.poll() is not None else "still starting"))
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_readme_tour_runs_offline(tmp_path, capsys, monkeypatch, mini):
    monkeypatch.chdir(tmp_path)
    image = str(tmp_path / "digit.png")
    Image.fromarray(255 - np.asarray(Image.fromarray(mini.x_test[0]).resize((140, 140)))).save(image)
    commands = tour_commands()
    assert len(commands) >= 15 and {"train", "reproduce", "serve", "predict"} <= {args[0] for args in commands}
    run_dir = None
    for args in commands:
        args = adapted(args, run_dir, image)
        if args[0] == "serve":
            assert serve_answers(tmp_path, args)["status"] == "ok"
            continue
        result = run_cli(*args) if any(flag in args for flag in OWN_PROCESS) else run_main(capsys, *args)
        assert result.returncode == 0, f"mnistlab {' '.join(args)}\n{result.stderr[-3000:]}"
        if args[0] == "train" and run_dir is None:
            run_dir = result.stdout.split(" saved in ")[1].strip()

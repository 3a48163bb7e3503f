"""The command line end to end, each call in a fresh process as a user runs it."""

import json
import re

import numpy as np
import pytest
from PIL import Image

from conftest import assert_one_line_error, run_cli, run_main, write_npz


def test_presets_lists_listings_and_rows(capsys):
    result = run_main(capsys, "presets")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith(("listing-", "table-"))]
    assert len(lines) == 29
    assert "book train 99.39% / test 98.5%" in next(line for line in lines if line.startswith("table-1.3.2-row16 "))


def test_summary_gives_the_books_totals(capsys):
    for preset, total in (("listing-1.3.2", "269,322"), ("listing-1.4.1", "80,266"), ("listing-1.5.1", "75,530")):
        result = run_main(capsys, "summary", preset)
        # Readable in an 80-column terminal, the Param # column whole.
        assert "Param #" in result.stdout and max(len(line) for line in result.stdout.splitlines()) <= 80
        assert result.returncode == 0, result.stderr
        assert f"Total params: {total}" in result.stdout


def test_summary_from_set_only(capsys):
    result = run_main(
        capsys,
        "summary",
        "--set",
        "family=rnn",
        "--set",
        "cell=lstm",
        "--set",
        "rnn_units=32,16",
        "--set",
        "bidirectional=true",
    )
    assert result.returncode == 0, result.stderr
    assert "Bidirectional" in result.stdout


def test_data_prints_book_format_and_writes_grid(tmp_path, capsys):
    out = tmp_path / "grid.png"
    result = run_main(capsys, "data", "--dataset", "mnist-mini", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "Train labels:  {0: 240, 1: 240" in result.stdout
    assert "Test labels:  {0: 60" in result.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_writes_png_and_svg_that_render_whole(tmp_path, capsys, browser_page):
    for name in ("cnn.png", "rnn.svg"):
        result = run_main(
            capsys, "plot", "listing-1.4.1" if name.startswith("cnn") else "listing-1.5.1", "--out", tmp_path / name
        )
        assert result.returncode == 0, result.stderr
        assert (tmp_path / name).stat().st_size > 1000
    assert_one_line_error(run_main(capsys, "plot", "listing-1.4.1", "--out", tmp_path / "x.pdf"), ".png or .svg")
    # In a browser, the whole drawing lies inside the SVG's own box (the output layer included).
    browser_page.goto((tmp_path / "rnn.svg").as_uri())
    svg, drawing = browser_page.evaluate("""() => {
        const box = (e) => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
        return [box(document.querySelector('svg')), box(document.querySelector('#graph0'))];
    }""")
    assert (
        drawing[0] >= svg[0] - 1 and drawing[1] >= svg[1] - 1 and drawing[2] <= svg[2] + 1 and drawing[3] <= svg[3] + 1
    ), (svg, drawing)
    assert "output" in browser_page.text_content("svg")
    # Every node is a layer: no stray node made of a graph attribute (a bare `dpi` drew one).
    nodes = browser_page.evaluate("Array.from(document.querySelectorAll('g.node title')).map(t => t.textContent)")
    assert nodes and "dpi" not in nodes, nodes


def test_train_prints_book_style_result(tmp_path):
    result = run_cli(
        "train",
        "--set",
        "family=mlp",
        "--set",
        "hidden_units=64",
        "--epochs",
        "1",
        "--limit",
        "300",
        "--dataset",
        "mnist-mini",
        "--out",
        tmp_path / "run",
    )
    assert result.returncode == 0, result.stderr
    assert "Test accuracy: " in result.stdout and "Train accuracy (last epoch" in result.stdout


def test_ctrl_c_says_what_it_left_and_how_to_go_on(tmp_path, capsys, monkeypatch):
    """Ctrl+C mid-training: the run is kept as interrupted, and the one line says so, with the command to go on."""
    from mnistlab.cli import training_commands
    from mnistlab.ml import train
    from mnistlab.record.store import Store

    def pressed_ctrl_c(*args, **kwargs):
        """Ctrl+C in the middle (it stands for a command, whose docstring is its help, and for training)."""
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "_fit_and_evaluate", pressed_ctrl_c)
    store = tmp_path / "runs.db"
    args = ["train", "--set", "family=mlp", "--set", "hidden_units=16", "--epochs", "1", "--limit", "300"]
    result = run_main(capsys, *args, "--dataset", "mnist-mini", "--store", store, "--out", tmp_path / "my run")
    typed = f"mnistlab {' '.join(args)} --dataset mnist-mini --store {store} --out '{tmp_path / 'my run'}'"
    assert result.returncode == 130 and result.stderr.splitlines()[-1] == (
        "interrupted; the run is kept as interrupted (`mnistlab runs list` shows it); "
        f"`{typed}` trains it again from the start"
    ), result.stderr
    with Store(store) as index:
        assert [run["status"] for run in index.runs()] == ["interrupted"]
    # A command of many runs keeps those done; one with nothing to keep says only that it stopped.
    monkeypatch.setattr(training_commands, "cmd_reproduce", pressed_ctrl_c)
    result = run_main(capsys, "reproduce", "table-1.4.1", "--rows", "3")
    assert result.returncode == 130 and result.stderr.strip() == (
        "interrupted; the runs already done are kept; `mnistlab reproduce table-1.4.1 --rows 3` runs the rest"
    )
    monkeypatch.setattr(training_commands, "cmd_evaluate", pressed_ctrl_c)
    assert run_main(capsys, "evaluate", tmp_path).stderr.strip() == "interrupted"


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "torch"])
def test_other_backends_train_from_the_cli(tmp_path, backend):
    # Same seed, same numbers on each backend: test_train's test_each_family_is_deterministic_on_each_backend.
    # Here: --backend reaches the run, and the run says which backend and versions trained it.
    result = run_cli(
        "train",
        "--set",
        "family=cnn",
        "--set",
        "filters=8,8",
        "--epochs",
        "1",
        "--limit",
        "300",
        "--dataset",
        "mnist-mini",
        "--backend",
        backend,
        "--json",
        "--out",
        tmp_path / "a",
    )
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["backend"] == backend and backend in metrics["versions"]
    assert (
        0 <= metrics["test_accuracy"] <= 1 and metrics["status"] == "done"
    )  # one epoch of 300 digits: maybe still at chance
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["test_accuracy"] == metrics["test_accuracy"]
    # The run's dynamics, recorded end to end on this backend: epoch 0 and 1, every conv kernel, finite figures.
    recorded = json.loads((tmp_path / "a" / "dynamics.json").read_text())
    assert [epoch["epoch"] for epoch in recorded["epochs"]] == [0, 1]
    last = recorded["epochs"][-1]
    assert {"conv2d/kernel", "conv2d_1/kernel"} <= set(last["weights"])
    kernels = [figures for name, figures in last["weights"].items() if name.endswith("/kernel")]
    assert all(figures["gradient_norm"] > 0 and figures["update_ratio"] > 0 for figures in kernels)  # biases start at 0
    assert all(0 <= figures["dead"] <= 1 for figures in last["layers"].values() if figures["dead"] is not None)


# --------------------------------------------------------------------------
# User mistakes: one line, non-zero exit, nothing written


@pytest.mark.parametrize(
    "args, fragments",
    [
        (("train", "listing-9"), ("unknown preset",)),
        (("train", "listing-1.3.2", "--set", "dropuot_rate=0.3"), ("unknown config key", "dropout_rate")),
        (("train", "listing-1.3.2", "--set", "optimizer=adamw"), ("optimizer must be one of sgd, adam, rmsprop",)),
        (("train", "listing-1.3.2", "--set", "filters=3"), ("filters applies to cnn models",)),
        (("train", "listing-1.3.2", "--epochs", "0"), ("epochs must be in [1, 1000]",)),
        (("train", "listing-1.3.2", "--dataset", "nowhere/at/all"), ("nowhere/at/all: no such file or directory",)),
        (("train", "listing-1.3.2", "--dataset", "fashion"), ("did you mean fashion-mnist?",)),
        (("train", "listing-1.3.2", "--dataset", "mnist"), ("cannot download",)),
        (
            (
                "summary",
                "--set",
                "family=cnn",
                "--set",
                "filters=8,8,8,8",
                "--set",
                "kernel_size=5",
                "--set",
                "pool_after=0,1,2",
            ),
            ("cannot be built",),
        ),
        (("evaluate", "."), ("not a run directory",)),
        (("evaluate", "no/such/run"), ("does not exist",)),
    ],
)
def test_user_errors_are_one_line(tmp_path, capsys, args, fragments):
    # In this process: the errors come before any training; test_error_wiring_in_a_fresh_process covers the process.
    result = run_main(capsys, *args, "--out", tmp_path / "run") if args[0] == "train" else run_main(capsys, *args)
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "run").exists()


def test_error_wiring_in_a_fresh_process(tmp_path):
    assert_one_line_error(
        run_cli("train", "listing-1.3.2", "--set", "optimizer=adamw", "--out", tmp_path / "run"),
        "optimizer must be one of",
    )
    assert not (tmp_path / "run").exists()


def test_corrupt_dataset_file_is_one_line_and_writes_nothing(tmp_path, capsys, mini):
    bad = write_npz(tmp_path / "bad.npz", mini, y_train=np.zeros(7, np.int64))
    result = run_main(capsys, "train", "listing-1.3.2", "--dataset", bad, "--out", tmp_path / "run")
    assert_one_line_error(result, "bad.npz", "7 train labels for 2400 images")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow  # TensorBoard's writer imports TensorFlow
def test_version_keys_and_tensorboard(tmp_path, capsys):
    from mnistlab import __version__

    assert run_main(capsys, "keys", "rnn").returncode == 0
    listing = run_main(capsys, "keys", "cnn").stdout
    assert "padding" in listing and "hidden_units" not in listing and "valid, same" in listing
    result = run_cli("--version")
    assert result.stdout.strip() == f"mnistlab {__version__}"
    logs = tmp_path / "tb"
    result = run_cli(
        "train",
        "--set",
        "hidden_units=8",
        "--epochs",
        "1",
        "--limit",
        "200",
        "--dataset",
        "mnist-mini",
        "--tensorboard",
        logs,
        "--out",
        tmp_path / "run",
    )
    assert result.returncode == 0, result.stderr
    assert any(path.name.startswith("events.out.tfevents") for path in logs.rglob("*"))


# --------------------------------------------------------------------------
# What the commands print is true


def test_runs_list_on_an_empty_store_says_so_and_creates_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MNISTLAB_RUNS")
    result = run_main(capsys, "runs", "list")
    assert result.returncode == 0 and "No runs yet" in result.stdout
    assert not (tmp_path / "runs").exists()


def test_runs_list_columns_stay_in_line_with_long_settings(tmp_path, capsys):
    from mnistlab.core import paths, presets
    from mnistlab.record import rundir
    from mnistlab.record.store import Store

    with Store() as index:
        for overrides in (
            [],
            ["padding=same", "pooling=average", "batch_norm=true", "filters=32,64,128", "kernel_size=3,5"],
        ):
            config = (
                presets.get("listing-1.4.1")
                .build_config(seed=1, dataset="mnist-mini", backend="jax")
                .with_overrides(overrides)
            )
            recorder = rundir.Recorder(rundir.new_path(config, "listing-1.4.1"), index=index)
            recorder.start(config, "listing-1.4.1", "mnist-mini", "ab" * 32)
            recorder.finish({"status": "done", "test_accuracy": 0.5, "seconds": 1.0}, None)
    lines = run_main(capsys, "runs", "list", "--store", paths.store_path()).stdout.splitlines()
    assert len(lines) == 3
    # Every column starts where its header does.
    for column in ("dataset", "backend"):
        at = lines[0].index(column)
        assert all(line[at : at + len("mnist-mini")].startswith(("mnist-mini", "jax")) for line in lines[1:]), lines


def test_runs_list_shows_how_long_an_unfinished_run_took(tmp_path, capsys, monkeypatch):
    """A run stopped 13 s into training has no result's time: the list shows its start to its end, not 0.0."""
    import time

    from mnistlab.core import paths, presets
    from mnistlab.record import rundir
    from mnistlab.record.store import Store

    config = presets.get("listing-1.3.2").build_config(dataset="mnist-mini", backend="jax")
    started = time.time()
    with Store() as index:
        recorder = rundir.Recorder(rundir.new_path(config, "listing-1.3.2"), index=index)
        with monkeypatch.context() as now:  # the clock stands still while it starts, however slow the disk
            now.setattr(time, "time", lambda: started)
            recorder.start(config, "listing-1.3.2", "mnist-mini", "ab" * 32)
        with monkeypatch.context() as later:
            later.setattr(time, "time", lambda: started + 13.0)
            recorder.fail("interrupted", "interrupted by the user")
        index.queue_run(config.with_overrides(["seed=1"]), "ab" * 32, preset="listing-1.3.2")
    lines = run_main(capsys, "runs", "list", "--store", paths.store_path()).stdout.splitlines()
    assert lines[1].split()[1] == "interrupted" and 12.5 <= float(lines[1].split()[-1]) <= 13.5, lines
    assert lines[2].split()[1] == "queued" and lines[2].split()[-1] == "-", lines  # not started: no time yet
    shown = run_main(capsys, "runs", "show", "1", "--store", paths.store_path()).stdout
    assert " 0.0 s" not in shown and "13." in shown, shown


def test_store_help_names_the_default_it_uses(capsys):
    from mnistlab.cli import arguments

    help_text = " ".join(arguments.build_parser()._subparsers._group_actions[0].choices["train"].format_help().split())
    assert "$MNISTLAB_RUNS" in help_text and "runs/runs.db" not in help_text


def test_one_epoch_is_not_said_in_plural():
    from mnistlab.analysis import tables

    assert "1 epoch," in tables.table_naming("table-1.4.1", "mnist-mini", 3, 1)[1] + ","
    assert "2 epochs" in tables.table_naming("table-1.4.1", "mnist-mini", 3, 2)[1]


def test_compare_suggests_dataset_only_where_datasets_differ(tmp_path):
    from mnistlab.analysis import compare
    from mnistlab.core.errors import ConfigError
    from mnistlab.jobs import reproduce
    from mnistlab.record.store import Store

    with Store(tmp_path / "runs.db") as store:
        for epochs, dataset in ((1, "mnist-mini"), (2, "mnist-mini"), (1, "fashion-mnist")):
            config = reproduce.presets.get("listing-1.4.1").build_config(epochs=epochs, dataset=dataset, backend="jax")
            run_id = store.start_run(config, "ab" * 32, preset="listing-1.4.1")
            store.finish_run(run_id, "done", {"test_accuracy": 0.5})
        with pytest.raises(ConfigError) as same_dataset:
            compare.select_runs(store, "listing-1.4.1", "mnist-mini")
        with pytest.raises(ConfigError) as two_datasets:
            compare.select_runs(store, "listing-1.4.1", None)
    assert "matches 2 setups" in str(same_dataset.value) and "--dataset" not in str(same_dataset.value)
    assert "matches 3 setups" in str(two_datasets.value) and "or add --dataset" in str(two_datasets.value)


def test_predict_takes_several_runs(tmp_path, capsys, small_dataset):
    from mnistlab.core import presets
    from mnistlab.ml import run_model

    for name in ("a", "b"):
        run_model.train_and_save(
            presets.get("listing-1.3.2").build_config(epochs=1, hidden_units=(16, 16)),
            dataset=small_dataset,
            run_dir=tmp_path / name,
            verbose=0,
            log=lambda message: None,
        )
    image = tmp_path / "digit.png"
    Image.fromarray(255 - small_dataset.x_test[0]).resize((140, 140)).save(image)
    result = run_main(capsys, "predict", tmp_path / "a", tmp_path / "b", image, "--json")
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout)
    assert [answer["run_dir"] for answer in answers] == [str(tmp_path / "a"), str(tmp_path / "b")]
    assert_one_line_error(run_main(capsys, "predict", image), "no run directory given")


@pytest.mark.parametrize(
    "args, fragments",
    [
        (
            ("report", "table-1.4.2", "--out", "r.html"),
            ("table-1.4.2 is no table of the chapter", "table-1.3.2, table-1.4.1, table-1.5.1"),
        ),
        (("predict", "runs/none-such", "docs/examples/seven.png"), ("runs/none-such: does not exist",)),
    ],
)
def test_errors_point_the_right_way(tmp_path, capsys, monkeypatch, args, fragments):
    """A mistyped table is told the tables; a run directory given but missing is named as such (issue: errors that point the wrong way)."""
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(run_main(capsys, *args), *fragments)


@pytest.mark.parametrize("command", ["serve", "lab"])
def test_a_busy_port_is_said_in_one_line_before_anything_is_loaded(tmp_path, command):
    """`serve --port P` and `lab --port P` on a port in use: one line naming the port, at once; no model loaded, no
    address printed (they used to load every model, print "open http://...", then fail with Errno 98)."""
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        result = run_cli(command, "--port", port, env={"MNISTLAB_RUNS": str(tmp_path / "runs")})
    finally:
        taken.close()
    assert_one_line_error(result, f"port {port} on 127.0.0.1 is in use", "--port")
    assert "open http" not in result.stdout + result.stderr and "chose" not in result.stdout + result.stderr


def test_train_says_its_backend_on_its_first_line_even_offline(capsys):
    """The README: `mnistlab train` says on its first line which backend and why; offline, the default dataset's
    "MNIST unavailable ... mnist-mini" notice comes after it."""
    result = run_main(capsys, "train", "listing-1.3.2", "--epochs", "1", "--limit", "300", "--set", "hidden_units=16")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("backend jax ("), lines[:3]
    assert any("MNIST unavailable" in line for line in lines[1:]), lines[:5]


def test_keys_lists_each_key_in_aligned_columns_with_the_familys_own_defaults(capsys):
    """`keys cnn`: one key a line, its type, default and meaning each starting at the same column (no column runs
    into the next), and the defaults of a CNN (family cnn, its filters), not the MLP's."""
    result = run_main(capsys, "keys", "cnn")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    starts = {(line.index(" default "), len(line.split()[0])) for line in lines}
    assert len({column for column, _ in starts}) == 1, starts  # "default" at one column on every line
    type_columns = {re.match(r"\S+\s+", line).end() for line in lines}
    assert len(type_columns) == 1, type_columns  # the type at one column too: no key runs into it
    rows = {line.split()[0]: line.split("default", 1)[1].split()[0] for line in lines}
    assert rows["family"] == "cnn" and "filters" in rows and "hidden_units" not in rows, rows

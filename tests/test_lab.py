"""The lab's API (mnistlab.web.lab): validation as the CLI's, the repeat rule, cancel, the token and origin checks,
the folded runs view, Server-Sent Events, the OpenAPI schema of a launch, tables downloaded as the CLI writes them,
setups compared as `bands.compare_setups` does, and (slow) real trainings: live progress, cancel, kill -9 and restart.

Most tests use a lab with no workers: it queues and shows, and trains nothing, so they cost no training.
"""

import csv
import http.client
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import jsonschema
import numpy as np
import pytest
from fastapi.testclient import TestClient

from conftest import drawn_png, env_without_backend, free_port, made_up_history, record_run, reproduced_table, run_main
from mnistlab.analysis import bands, tables
from mnistlab.core import config as config_lib
from mnistlab.core import presets, stats
from mnistlab.core.config import knobs
from mnistlab.record.store import Store
from mnistlab.web import lab as lab_lib

LOOPBACK = "http://127.0.0.1:8100"
TABLE = "table-1.4.1"
SMALL = {"preset": "listing-1.3.2", "epochs": 1, "limit": 600, "dataset": "mnist-mini"}


@pytest.fixture
def lab(tmp_path):
    return lab_lib.Lab(tmp_path / "runs" / "runs.db", workers=0)


@pytest.fixture
def client(lab):
    with TestClient(lab_lib.create_app(lab), base_url=LOOPBACK) as client:
        yield client


def store_rows(lab):
    with Store(lab.store_path) as store:
        return store.runs()


def record_done(lab, request, accuracies):
    """Finished runs in the store, one per seed of REQUEST, with these test accuracies (as a sweep would record them)."""
    jobs, _ = lab.plan(request)
    with Store(lab.store_path) as store:
        for job, accuracy in zip(jobs, accuracies):
            run_id = store.start_run(job.config, job.dataset_hash, preset=job.preset)
            store.finish_run(
                run_id,
                "done",
                {"test_accuracy": accuracy, "val_accuracy": accuracy, "train_accuracy": accuracy, "seconds": 1.0},
            )
    return jobs


def test_the_form_schema_is_the_knob_declaration(client):
    from mnistlab.core import config as config_lib

    schema = client.get("/api/schema").json()
    mlp = {key["name"]: key for key in schema["families"]["mlp"]["keys"]}
    assert (
        mlp["hidden_units"]["default"] == "256,256"
        and mlp["hidden_units"]["help"] == config_lib.KNOBS["hidden_units"].help
    )
    assert mlp["activation"]["choices"] == list(config_lib.ACTIVATIONS)
    assert "filters" not in mlp and "filters" in {key["name"] for key in schema["families"]["cnn"]["keys"]}
    assert "listing-1.4.1" in {preset["name"] for preset in schema["presets"]}
    assert schema["run"]["executor"]["choices"] == ["local", "ray"]
    assert client.get("/openapi.json").json()["paths"]["/api/runs"]
    assert client.get("/healthz").json()["status"] == "ok"


@pytest.mark.parametrize(
    ("change", "field", "cli_args"),
    [
        ({"set": ["dropout_rate=2"]}, "dropout_rate", ["--set", "dropout_rate=2"]),
        ({"set": ["dropout_rat=0.1"]}, "set", ["--set", "dropout_rat=0.1"]),
        ({"set": ["filters=8,8"]}, "filters", ["--set", "filters=8,8"]),
        ({"epochs": 0}, "epochs", ["--epochs", "0"]),
        ({"dataset": "no-such-data"}, "dataset", None),  # the lab takes dataset names only; the CLI takes paths too
        ({"preset": "listing-9"}, "preset", None),
        ({"seeds": ["a"]}, "seeds", None),
        ({"executor": "slurm"}, "executor", None),
        ({"colour": "red"}, "colour", None),
    ],
)
def test_a_bad_launch_names_its_field_with_the_clis_message_and_queues_nothing(
    client, lab, capsys, change, field, cli_args
):
    answer = client.post("/api/runs", json={**SMALL, **change})
    assert answer.status_code == 400 and answer.json()["field"] == field, answer.text
    assert store_rows(lab) == []
    if cli_args:  # the CLI refuses the same value with the same words
        result = run_main(capsys, "train", "listing-1.3.2", "--epochs", "1", *cli_args)
        assert result.returncode == 2 and answer.json()["error"] in result.stderr


def test_two_launches_of_one_setup_and_seed_are_one_run_and_a_done_one_is_reused(client, lab):
    first = client.post("/api/runs", json={**SMALL, "seeds": [0, 1]})
    assert first.status_code == 202 and [run["status"] for run in first.json()["runs"]] == ["queued", "queued"]
    again = client.post("/api/runs", json={**SMALL, "seeds": [1]}).json()["runs"]
    assert again == [first.json()["runs"][1]]
    done = record_done(lab, {**SMALL, "seeds": [7]}, [0.9])
    with Store(lab.store_path) as store:
        done_id = store.done_run(done[0].key)["id"]
    assert client.post("/api/runs", json={**SMALL, "seeds": [7]}).json()["runs"] == [
        {"run_id": done_id, "status": "done"}
    ]
    assert len(store_rows(lab)) == 3


def test_a_queued_run_is_cancelled_and_a_finished_one_cannot_be(client, lab):
    run_id = client.post("/api/runs", json=SMALL).json()["runs"][0]["run_id"]
    assert client.get(f"/api/runs/{run_id}").json()["status"] == "queued"
    answer = client.delete(f"/api/runs/{run_id}")
    assert answer.status_code == 202 and answer.json()["status"] == "cancelled"
    assert store_rows(lab) == []
    record_done(lab, SMALL, [0.9])
    done_id = store_rows(lab)[0]["id"]
    refused = client.delete(f"/api/runs/{done_id}")
    assert refused.status_code == 409 and "done" in refused.json()["error"]
    assert client.post(f"/api/runs/{done_id}/resume").status_code == 409


def test_runs_differing_only_by_seed_fold_into_one_row_with_the_clis_statistics(client, lab):
    record_done(lab, {**SMALL, "seeds": [0, 1, 2]}, [0.90, 0.92, 0.91])
    record_done(lab, {**SMALL, "set": ["dropout_rate=0.2"], "seeds": [0]}, [0.80])
    answer = client.get("/api/runs", params={"sort": "test", "order": "desc"}).json()
    assert answer["total_runs"] == 4 and [group["n"] for group in answer["groups"]] == [3, 1]
    folded = answer["groups"][0]
    expected = stats.summarize([90.0, 92.0, 91.0], bounds=(0.0, 100.0))
    assert folded["test"]["mean"] == pytest.approx(expected["mean"]) and folded["test"]["ci_low"] == pytest.approx(
        expected["ci_low"]
    )
    assert folded["seeds"] == [0, 1, 2] and folded["book_test"] == 98.5
    # 98.5% lies outside [88.5, 93.5], but these runs are 1 epoch of 600 mnist-mini images: the figure, and no verdict.
    assert folded["book_comparable"] is False and folded["book_in_interval"] is None
    assert folded["book_reason"] == "book: MNIST, 20 epochs; this: mnist-mini, 1 epoch, first 600 images"
    single = answer["groups"][1]
    assert (
        single["setup"] == "listing-1.3.2 +dropout_rate=0.2 +epochs=1 +limit=600"
    )  # what sets it apart from its preset
    assert single["test"]["ci_low"] is None and single["book_in_interval"] is None  # one seed: no interval, no verdict
    assert [group["n"] for group in client.get("/api/runs", params={"q": "dropout_rate=0.2"}).json()["groups"]] == [1]
    assert client.get("/api/runs", params={"family": "cnn"}).json()["groups"] == []
    assert len(client.get("/api/runs", params={"fold": "false"}).json()["groups"]) == 4
    assert client.get("/api/runs", params={"sort": "colour"}).json()["field"] == "sort"


def test_a_loopback_lab_refuses_other_host_names_and_changes_from_other_origins(client, lab):
    assert client.get("/healthz", headers={"Host": "evil.example:8100"}).status_code == 403  # DNS rebinding
    refused = client.post("/api/runs", json=SMALL, headers={"Origin": "http://evil.example"})
    assert refused.status_code == 403 and "origin" in refused.json()["error"]
    assert client.post("/api/runs", json=SMALL, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert store_rows(lab) == []
    assert client.post("/api/runs", json=SMALL, headers={"Origin": LOOPBACK}).status_code == 202  # the page itself
    assert client.post("/api/runs", json={**SMALL, "seeds": [1]}).status_code == 202  # a script: no Origin
    assert len(store_rows(lab)) == 2


def test_a_lab_on_another_address_needs_its_token_and_the_same_origin(lab):
    app = lab_lib.create_app(lab, token="s3cret", loopback_only=False)
    with TestClient(app, base_url="http://10.1.2.3:8100") as client:
        assert client.get("/healthz").status_code == 401
        assert client.get("/", params={"token": "wrong"}).status_code == 401
        assert client.get("/api/runs", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        page = client.get("/", params={"token": "s3cret"})
        assert page.status_code == 200 and lab_lib.TOKEN_COOKIE in page.headers["set-cookie"]
        assert client.get("/api/runs").status_code == 200  # the cookie the page got
        assert client.post("/api/runs", json=SMALL, headers={"Origin": "http://evil.example"}).status_code == 403
        assert client.post("/api/runs", json=SMALL, headers={"Origin": "http://10.1.2.3:8100"}).status_code == 202
        client.cookies.clear()
        assert client.post("/api/runs", json=SMALL).status_code == 401
    assert len(store_rows(lab)) == 1


def test_events_are_streamed_as_published_then_the_stream_ends(client, lab):
    run_id = client.post("/api/runs", json=SMALL).json()["runs"][0]["run_id"]

    def worker_reports():
        lab.hub.publish(run_id, {"kind": "status", "status": "running"})
        for step in (2, 4):
            lab.hub.publish(run_id, {"kind": "step", "epoch": 1, "step": step, "steps": 5, "loss": 2.0})
        lab.hub.publish(run_id, {"kind": "epoch", "epoch": 1, "loss": 1.5, "time": time.time()})
        lab.hub.publish(run_id, {"kind": "status", "status": "done"})

    kinds = []
    with client.stream("GET", f"/api/runs/{run_id}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("data: "):
                kinds.append(json.loads(line[6:])["kind"])
                if kinds == ["snapshot"]:  # subscribed (the stream follows what comes after its snapshot): publish now
                    threading.Thread(target=worker_reports, daemon=True).start()
    # A follower that lags gets the latest step of an epoch, not every one: one or two steps, the rest in order.
    assert [kind for index, kind in enumerate(kinds) if kind != "step" or kinds[index - 1] != "step"] == [
        "snapshot",
        "status",
        "step",
        "epoch",
        "status",
        "end",
    ]


def test_the_openapi_schema_describes_a_launch_body_from_the_knobs_declaration(client):
    operation = client.get("/openapi.json").json()["paths"]["/api/runs"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert tuple(body["properties"]) == lab_lib.LAUNCH_FIELDS and body["additionalProperties"] is False
    knobs = body["properties"]["set"]["items"]
    settable = [name for name in config_lib.VALID_KEYS if name not in config_lib.RUN_KEYS]
    assert list(knobs["x-knobs"]) == settable and "dropout_rate" in settable and "filters" in settable
    assert knobs["x-knobs"]["dropout_rate"]["description"] == config_lib.KNOBS["dropout_rate"].help
    assert body["properties"]["backend"]["enum"] == list(config_lib.BACKENDS)
    # The schema says what the server takes: a launch it queues is valid, a misspelt knob or an unknown field is not.
    validator = jsonschema.Draft202012Validator(body)
    assert validator.is_valid({**SMALL, "set": ["dropout_rate=0.2", "filters=8,8"], "seeds": [0, 1]})
    assert not validator.is_valid({**SMALL, "set": ["dropout_rat=0.1"]}) and not validator.is_valid(
        {**SMALL, "colour": "red"}
    )
    assert re.search(knobs["pattern"], "hidden_units=64,64") and not re.search(
        knobs["pattern"], "seed=3"
    )  # seeds have their own field


def test_a_reproduced_table_downloads_as_the_cli_writes_it_in_every_format(client, lab, mini, capsys, tmp_path):
    written, rows = reproduced_table(mini)  # in the lab's store (the tests' default one) and its tables/
    assert lab.store_path == tmp_path / "runs" / "runs.db"
    listed = client.get("/api/tables").json()
    assert [(entry["table"], entry["reproduced"]) for entry in listed["tables"]] == [
        (table, table == TABLE) for table in presets.TABLES
    ]
    downloaded = {}
    for format in tables.FORMATS:
        answer = client.get(f"/api/tables/{TABLE}", params={"format": format})
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == tables.MEDIA_TYPES[format]
        assert (
            answer.headers["content-disposition"]
            == f'attachment; filename="{written["json"].stem}{tables.SUFFIXES[format]}"'
        )
        downloaded[format] = answer.content
    for format in (
        "csv",
        "latex",
        "json",
    ):  # byte for byte the file `mnistlab report TABLE --format F --out FILE` writes
        out = tmp_path / f"cli.{format}"
        assert run_main(capsys, "report", TABLE, "--format", format, "--out", out).returncode == 0
        assert downloaded[format] == out.read_bytes(), format
    # HTML: the table `report --format html`'s page holds (test_seeds checks the report embeds this export).
    assert downloaded["html"] == tables.table_export(tables.table_data(TABLE), "html").encode()
    data = json.loads(downloaded["json"])
    shown = [[tables.cells(row)[column] for column in tables.header(data)] for row in data["rows"]]
    assert list(csv.reader(io.StringIO(downloaded["csv"].decode())))[1:] == shown
    # Each cell names its runs by id (the page links them), the same runs as the table file's directories.
    with Store(lab.store_path) as store:
        for row, reproduced in zip(data["rows"], rows):
            assert len(row["run_ids"]) == row["seeds"] == 3
            assert (
                [store.get(run_id)["run_dir"] for run_id in row["run_ids"]] == row["run_dirs"] == reproduced["run_dirs"]
            )


def test_a_table_nobody_reproduced_an_unknown_one_or_format_is_a_json_error_naming_the_choices(client, mini):
    missing = client.get(f"/api/tables/{TABLE}", params={"format": "csv"})
    assert missing.status_code == 404 and f"mnistlab reproduce {TABLE}" in missing.json()["error"]
    reproduced_table(mini)
    unknown = client.get("/api/tables/table-9.9.9", params={"format": "csv"})
    assert unknown.status_code == 404 and all(table in unknown.json()["error"] for table in presets.TABLES)
    bad_format = client.get(f"/api/tables/{TABLE}", params={"format": "xlsx"})
    assert bad_format.status_code == 422 and bad_format.json()["field"] == "format"
    assert all(f"'{format}'" in bad_format.json()["error"] for format in tables.FORMATS)


def record_setups(mini, accuracies, epochs=3):
    """Finished runs (constructed, no training) of each preset, one per seed, with these test accuracies."""
    rng = np.random.default_rng(2)
    with Store() as index:
        for preset, values in accuracies.items():
            for seed, value in enumerate(values):
                config = presets.get(preset).build_config(seed=seed, dataset="mnist-mini", backend="jax", epochs=epochs)
                record_run(
                    index,
                    config,
                    preset,
                    mini,
                    value,
                    made_up_history(rng, epochs, value - 0.1),
                    params=100 + len(values),
                )


def test_compare_is_bands_compare_setups_on_the_same_runs(client, lab, mini):
    accuracies = {
        "table-1.4.1-row1": [0.90, 0.91, 0.92],
        "table-1.4.1-row2": [0.80, 0.805, 0.812],
        "table-1.4.1-row3": [0.85, 0.86],
    }
    record_setups(mini, accuracies)
    answer = client.get("/api/compare", params=[("setup", name) for name in accuracies])
    assert answer.status_code == 200, answer.text
    assert answer.json() == json.loads(json.dumps(bands.compare_setups(list(accuracies), store_path=lab.store_path)))
    first = answer.json()["setups"][0]
    assert first["params"] == 103 and first["book_where"] == "Table 1.4.1 row 1" and first["test"]["n"] == 3
    assert len(first["bands"]["val_accuracy"]) == 3 and first["bands"]["val_accuracy"][0]["ci_low"] is not None
    verdicts = {(c["a"], c["b"]): c for c in answer.json()["comparisons"]}
    assert verdicts[("table-1.4.1-row1", "table-1.4.1-row2")]["significant"] is True
    assert verdicts[("table-1.4.1-row1", "table-1.4.1-row3")]["significant"] is None  # two seeds: numbers, no verdict
    assert verdicts[("table-1.4.1-row1", "table-1.4.1-row3")]["p_value"] is not None
    nobody = client.get("/api/compare", params={"setup": "table-1.5.1-row1"})
    assert nobody.status_code == 400 and "no finished runs match 'table-1.5.1-row1'" in nobody.json()["error"]
    assert client.get("/api/compare").status_code == 422
    assert client.get("/api/compare", params={"setup": "table-1.4.1-row1", "by": "colour"}).json()["field"] == "by"


# --------------------------------------------------------------------------
# Real trainings


def wait_for(predicate, timeout=240, every=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out waiting")


@pytest.mark.slow
def test_a_launch_trains_with_live_progress_and_a_running_run_is_cancelled(tmp_path):
    lab = lab_lib.Lab(tmp_path / "runs.db", workers=1)
    with TestClient(lab_lib.create_app(lab), base_url=LOOPBACK) as client:
        # The second waits behind the first, and is long: a run as short as the first may start and end between two
        # looks at it (its worker's process is kept from the first), and it is to be cancelled while it runs.
        [first] = [run["run_id"] for run in client.post("/api/runs", json={**SMALL, "seeds": [0]}).json()["runs"]]
        long_run = {**SMALL, "epochs": knobs.MAX_EPOCHS, "seeds": [1]}
        [second] = [run["run_id"] for run in client.post("/api/runs", json=long_run).json()["runs"]]
        events = []
        with client.stream("GET", f"/api/runs/{first}/events") as stream:
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
                    if events[-1]["kind"] == "end":
                        break
        kinds = [event["kind"] for event in events]
        # The epoch's point comes from the worker before the run ends (test evaluation, saving), each step at most 2 s apart.
        assert kinds.index("epoch") < kinds.index("end") and events[-1]["status"] == "done", kinds
        assert {"step", "epoch"} <= set(kinds)
        run = client.get(f"/api/runs/{first}").json()
        assert run["status"] == "done" and len(run["history"]) == 1 and run["has_model"]
        # The second is running (or about to): cancelling stops its worker; it ends interrupted, with its directory saying so.
        wait_for(lambda: client.get(f"/api/runs/{second}").json()["status"] == "running")
        assert client.delete(f"/api/runs/{second}").json()["status"] == "cancelling"
        stopped = wait_for(
            lambda: (lambda run: run if run["status"] != "running" else None)(client.get(f"/api/runs/{second}").json())
        )
        assert (stopped["status"], stopped["error"]) == ("interrupted", "cancelled")
        assert (
            json.loads((tmp_path / "runs.db").parent.joinpath(stopped["run_dir"], "metrics.json").read_text())["status"]
            == "interrupted"
        )
        report = client.get(f"/api/runs/{first}/report").json()
        assert (
            sum(map(sum, report["confusion"])) == report["test_samples"]
            and report["mistakes"][0]["label_name"] in report["labels"]
        )
        inside = client.post(f"/api/runs/{first}/explain", json={"test_index": 0}).json()
        assert inside["family"] == "mlp" and inside["layers"] and inside["label"] is not None
        assert client.post(f"/api/runs/{first}/explain", json={"test_index": -1}).status_code == 400
        # A drawing from the run page's pad (PNG bytes): preprocessed as the draw page's, then explained.
        from mnistlab.ml import data, explain
        from mnistlab.serving import engine

        png = drawn_png(data.load_dataset("mnist-mini"), 3)
        drawn = client.post(f"/api/runs/{first}/explain", content=png, headers={"Content-Type": "image/png"}).json()
        image, _ = engine.decode(png, "image/png")
        np.testing.assert_allclose(drawn["input"], image, atol=1e-4)
        alone = explain.explainer_for(run["run_dir"]).explain(image)
        assert drawn["prediction"] == alone["prediction"] and drawn["label"] is None
        refused = client.post(
            f"/api/runs/{first}/explain", content=b"not a picture", headers={"Content-Type": "image/png"}
        )
        assert refused.status_code == 415 and refused.json()["error"]
        assert client.get(f"/draw/{first}/api/models").json()["models"][0]["family"] == "mlp"


PROCESS_TOKEN = "the-lab-process-token-of-the-tests"


def lab_process(tmp_path, port):
    env = env_without_backend({"MNISTLAB_RUNS": str(tmp_path / "runs"), "MNISTLAB_LAB_TOKEN": PROCESS_TOKEN})
    return subprocess.Popen(
        [sys.executable, "-m", "mnistlab", "lab", "--port", str(port), "--workers", "1"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def call(port, method, path, body=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/json", "Authorization": f"token {PROCESS_TOKEN}"}
    connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def answering(port, server):
    def ready():
        if server.poll() is not None:
            raise AssertionError("the lab stopped: " + server.stdout.read())
        try:
            return call(port, "GET", "/healthz")[0] == 200
        except OSError:
            return False

    wait_for(ready, timeout=120)


def mid_run_with_a_queue(port, server, queued_seeds):
    """A lab answering, with a long run launched and mid-run (an epoch written, more to come), and runs of QUEUED_SEEDS queued behind it."""
    answering(port, server)
    # As many epochs as a run may have: on a fast machine 40 small epochs ended between two polls (the kill then
    # found metrics.json written), while 1,000 take seconds on any machine.
    running = call(port, "POST", "/api/runs", {**SMALL, "epochs": knobs.MAX_EPOCHS})[1]["runs"][0]["run_id"]
    queued = [run["run_id"] for run in call(port, "POST", "/api/runs", {**SMALL, "seeds": queued_seeds})[1]["runs"]]
    wait_for(lambda: call(port, "GET", f"/api/runs/{running}")[1]["history"])
    return running, queued


@pytest.mark.slow
def test_kill_9_mid_run_loses_and_duplicates_nothing(tmp_path):
    port = free_port()
    server = lab_process(tmp_path, port)
    try:
        running, queued = mid_run_with_a_queue(port, server, [1])
    finally:
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
    store_path = tmp_path / "runs" / "runs.db"
    with Store(store_path) as store:
        assert [store.get(run_id)["status"] for run_id in [running, *queued]] == [
            "running",
            "queued",
        ]  # as the kill left them
        run_dir = store.get(running)["run_dir"]
    port = free_port()
    server = lab_process(tmp_path, port)
    try:
        answering(port, server)
        interrupted = call(port, "GET", f"/api/runs/{running}")[1]
        assert interrupted["status"] == "interrupted" and not (tmp_path / run_dir / "metrics.json").exists()
        assert all(
            call(port, "GET", f"/api/runs/{run_id}")[1]["status"] in ("queued", "running", "done") for run_id in queued
        )
        wait_for(lambda: all(call(port, "GET", f"/api/runs/{run_id}")[1]["status"] == "done" for run_id in queued))
        status, resumed = call(port, "POST", f"/api/runs/{running}/resume")
        assert status == 202 and resumed["status"] == "queued" and resumed["run_id"] not in (running, *queued)
        assert (
            call(port, "GET", f"/api/runs/{resumed['run_id']}")[1]["attempt"] == 2
        )  # the same setup and seed, a second attempt
        assert call(port, "DELETE", f"/api/runs/{resumed['run_id']}")[0] == 202
    finally:
        server.terminate()  # as Ctrl+C: what runs is stopped and says so, what is queued stays queued
        server.wait(timeout=60)
    with Store(store_path) as store:
        rows = store.runs()
        assert store.count("running") == 0 and store.get(running)["status"] == "interrupted"
        done_keys = [row["run_key"] for row in rows if row["status"] == "done"]
        assert len(done_keys) == len(set(done_keys)) == 1
        assert len({row["run_dir"] for row in rows if row["run_dir"]}) == len(
            [row for row in rows if row["run_dir"]]
        )  # one directory per run


@pytest.mark.slow
def test_ctrl_c_mid_run_leaves_it_interrupted_and_the_queue_queued(tmp_path):
    port = free_port()
    server = lab_process(tmp_path, port)
    try:
        running, queued = mid_run_with_a_queue(port, server, [1, 2])
        server.send_signal(signal.SIGINT)  # what Ctrl+C in its terminal sends
        output = server.communicate(timeout=90)[0]
    finally:
        if server.poll() is None:
            server.kill()
    assert server.returncode in (0, -signal.SIGINT, 130) and "Traceback" not in output, output
    with Store(tmp_path / "runs" / "runs.db") as store:
        stopped = store.get(running)
        assert stopped["status"] == "interrupted" and [store.get(run_id)["status"] for run_id in queued] == [
            "queued",
            "queued",
        ]
        assert store.count() == 3
    # The run directory says so too: the record, not only the index.
    assert json.loads((tmp_path / "runs" / stopped["run_dir"] / "metrics.json").read_text())["status"] == "interrupted"


def test_a_run_id_nobody_has_is_a_404_everywhere_it_is_named(client):
    for method, path in (
        ("get", "/api/runs/987654"),
        ("get", "/api/runs/987654/events"),
        ("delete", "/api/runs/987654"),
        ("get", "/api/runs/987654/report"),
    ):
        answer = getattr(client, method)(path)
        assert answer.status_code == 404 and "no run with id 987654" in answer.json()["error"], (path, answer.text)

"""The lab against a hostile or careless client: the token on every address, no framing, no Ray address or dataset
path from a request, bounded bodies, knobs and queue, and 4xx (never 5xx) for odd paths and bodies.

Each test here failed before the change it guards (issue "Hold under hostile input"); the lab has no workers, so
nothing trains.
"""

import json

import pytest
from fastapi.testclient import TestClient

from mnistlab.core.errors import ConfigError
from mnistlab.record.store import Store
from mnistlab.web import lab as lab_lib

LOOPBACK = "http://127.0.0.1:8100"
TOKEN = "a-token-of-the-test-0123456789"
SMALL = {"preset": "listing-1.3.2", "epochs": 1, "limit": 600, "dataset": "mnist-mini"}
AUTHORIZED = {"Authorization": f"token {TOKEN}"}


@pytest.fixture
def lab(tmp_path):
    return lab_lib.Lab(tmp_path / "runs" / "runs.db", workers=0)


@pytest.fixture
def client(lab):
    """A lab on loopback with its token, as `mnistlab lab` starts it by default."""
    with TestClient(lab_lib.create_app(lab, token=TOKEN, loopback_only=True), base_url=LOOPBACK) as client:
        yield client


def queued(lab):
    with Store(lab.store_path) as store:
        return store.runs()


def test_a_lab_on_loopback_asks_every_request_for_its_token(client, lab):
    assert client.get("/healthz").status_code == 401
    assert client.post("/api/runs", json=SMALL).status_code == 401
    assert client.get("/api/runs", headers={"Authorization": "token wrong"}).status_code == 401
    assert client.get("/api/runs", headers={"Authorization": f"token {TOKEN}"}).status_code == 200  # Jupyter's form
    assert client.get("/api/runs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    page = client.get("/", params={"token": TOKEN})
    assert page.status_code == 200
    # The cookie's name carries the port: two labs on one machine keep their own.
    assert page.headers["set-cookie"].startswith(f"{lab_lib.TOKEN_COOKIE}_8100={TOKEN};")
    assert client.get("/api/runs").status_code == 200  # with the cookie the page got
    assert queued(lab) == []


def test_the_token_comes_from_the_environment_or_is_made_and_no_token_is_for_loopback_only():
    assert len(lab_lib.choose_token("127.0.0.1")) >= 24
    assert lab_lib.choose_token("127.0.0.1") != lab_lib.choose_token("127.0.0.1")
    assert lab_lib.choose_token("0.0.0.0", environ={"MNISTLAB_LAB_TOKEN": TOKEN}) == TOKEN
    assert lab_lib.choose_token("::1", no_token=True) is None
    with pytest.raises(ConfigError, match="loopback address only"):
        lab_lib.choose_token("0.0.0.0", no_token=True)
    with pytest.raises(ConfigError, match="at least 16 characters"):
        lab_lib.choose_token("127.0.0.1", environ={"MNISTLAB_LAB_TOKEN": "short"})


def test_no_page_of_the_lab_can_be_framed_or_leak_its_address(client):
    for response in (
        client.get("/", params={"token": TOKEN}),
        client.get("/healthz"),
        client.get("/api/runs/1", headers=AUTHORIZED),
    ):
        assert response.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["referrer-policy"] == "no-referrer"


def test_the_page_takes_the_token_out_of_the_address_bar(client):
    page = client.get("/", params={"token": TOKEN}).text
    assert 'history.replaceState(null, "", location.pathname + location.hash)' in page


def test_a_websocket_is_refused(client):
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect):
        with client.websocket_connect("/api/events", headers=AUTHORIZED) as socket:
            socket.receive_text()


def test_a_ray_address_in_a_launch_is_refused(client, lab):
    refused = client.post(
        "/api/runs", json={**SMALL, "executor": "ray", "address": "ray://anyhost:10001"}, headers=AUTHORIZED
    )
    assert refused.status_code == 400 and refused.json()["field"] == "address"
    assert "--ray-address" in refused.json()["error"]
    assert queued(lab) == []


@pytest.mark.parametrize("path", ["/nonexistent/x.npz", "/etc/shadow", "/root", "../../etc/passwd", "mnist.npz"])
def test_a_dataset_is_a_name_and_every_other_value_gets_the_same_answer(client, lab, path):
    refused = client.post("/api/runs", json={**SMALL, "dataset": path}, headers=AUTHORIZED)
    assert refused.status_code == 400 and refused.json()["field"] == "dataset"
    # The same words whatever the path is, so that no answer says whether a file exists.
    assert refused.json()["error"] == (
        "dataset must be one of auto, mnist, fashion-mnist, mnist-mini; other datasets are given when the lab starts: mnistlab lab --dataset NAME=PATH"
    )
    assert queued(lab) == []


def test_a_dataset_given_at_start_is_launched_by_its_name(tmp_path):
    import numpy as np

    images = np.zeros((40, 28, 28), np.uint8)
    labels = np.arange(40) % 10
    path = tmp_path / "tiny.npz"
    np.savez(path, x_train=images, y_train=labels, x_test=images[:10], y_test=labels[:10])
    datasets = lab_lib.parse_datasets([f"tiny={path}"])
    lab = lab_lib.Lab(tmp_path / "runs.db", workers=0, datasets=datasets)
    with TestClient(lab_lib.create_app(lab, token=TOKEN), base_url=LOOPBACK) as client:
        answer = client.post("/api/runs", json={**SMALL, "dataset": "tiny", "limit": 30}, headers=AUTHORIZED)
        assert answer.status_code == 202, answer.text
        assert "tiny" in client.get("/api/schema", headers=AUTHORIZED).json()["run"]["dataset"]["choices"]
    assert queued(lab)[0]["dataset"] == str(path.resolve())
    with pytest.raises(ConfigError, match="no such file or directory"):
        lab_lib.parse_datasets([f"other={tmp_path / 'missing.npz'}"])
    with pytest.raises(ConfigError, match="built-in"):
        lab_lib.Lab(tmp_path / "runs.db", workers=0, datasets={"mnist": path})


def test_a_launch_body_is_at_most_64_kib(client, lab):
    padded = json.dumps({**SMALL, "set": ["dropout_rate=0.1"] * 8000}).encode()
    assert len(padded) > lab_lib.MAX_LAUNCH_BYTES
    refused = client.post("/api/runs", content=padded, headers={**AUTHORIZED, "Content-Type": "application/json"})
    assert refused.status_code == 413 and "64 KiB" in refused.json()["error"]
    assert queued(lab) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"epochs": 10**30}, "epochs"),
        ({"epochs": 1001}, "epochs"),
        ({"set": ["hidden_units=1000000000"]}, "hidden_units"),
        ({"set": ["hidden_units=" + ",".join(["8"] * 17)]}, "hidden_units"),
        ({"preset": "listing-1.4.1", "set": ["kernel_size=100000"]}, "kernel_size"),
        ({"set": ["dropout_rate=nan"]}, "dropout_rate"),
        ({"set": ["learning_rate=inf"]}, "learning_rate"),
        ({"set": ["batch_size=100000"]}, "batch_size"),
        ({"seeds": [10**20]}, "seeds"),
        ({"seeds": 10**6}, "seeds"),
        ({"seeds": list(range(51))}, "seeds"),
        ({"limit": 10**12}, "limit"),
        ({"executor": ["local"]}, "executor"),
    ],
)
def test_every_knob_has_a_bound_and_every_number_is_finite(client, lab, change, field):
    refused = client.post("/api/runs", json={**SMALL, **change}, headers=AUTHORIZED)
    assert refused.status_code == 400, refused.text  # the lab's answer to a bad value, as for every other
    assert refused.json()["field"] == field
    assert len(refused.json()["error"]) < 300  # one line, not the body echoed back
    assert queued(lab) == []


def test_a_nan_in_the_body_itself_is_refused(client, lab):
    refused = client.post(
        "/api/runs",
        content=b'{"preset": "listing-1.3.2", "epochs": NaN}',
        headers={**AUTHORIZED, "Content-Type": "application/json"},
    )
    assert refused.status_code == 400 and refused.json()["field"] == "epochs"


def test_at_most_a_thousand_runs_wait_then_429_with_retry_after(client, lab, monkeypatch):
    monkeypatch.setattr(lab_lib.queue, "MAX_QUEUED", 4)
    assert client.post("/api/runs", json={**SMALL, "seeds": 3}, headers=AUTHORIZED).status_code == 202
    refused = client.post("/api/runs", json={**SMALL, "seeds": [3, 4]}, headers=AUTHORIZED)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "60"
    assert "at most 4" in refused.json()["error"]
    assert client.post("/api/runs", json={**SMALL, "seeds": [3]}, headers=AUTHORIZED).status_code == 202
    assert len(queued(lab)) == 4


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/draw/%C2%B2/", None, 404),
        ("GET", "/draw/99999999999999999999999/", None, 404),
        ("GET", "/api/runs/99999999999999999999", None, 422),
        ("GET", "/api/runs/0", None, 422),
        ("DELETE", "/api/runs/99999999999999999999", None, 422),
        ("GET", "/api/runs/123456", None, 404),
        ("POST", "/api/runs", b"[" * 60_000, 400),
        ("POST", "/api/runs", b"\xff\xfe", 400),
        ("POST", "/api/runs", b"[]", 400),
        ("POST", "/api/runs/1/explain", b"[" * 60_000, 400),
    ],
)
def test_odd_paths_and_bodies_get_a_4xx(client, method, path, body, status):
    response = client.request(method, path, content=body, headers={**AUTHORIZED, "Content-Type": "application/json"})
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error", "field"}


def test_nested_json_in_an_explain_body_is_a_400_not_a_500(client, lab):
    with Store(lab.store_path) as store:
        from mnistlab.core.config import Config

        run_id = store.start_run(Config(), "0" * 64)
        store.finish_run(run_id, "done", {"test_accuracy": 0.5})
    response = client.post(
        f"/api/runs/{run_id}/explain", content=b"[" * 60_000, headers={**AUTHORIZED, "Content-Type": "application/json"}
    )
    assert response.status_code in (400, 404, 409, 422), response.text


@pytest.mark.parametrize(
    "assignment", ["dataset=/nonexistent/x.npz", "dataset=/etc/passwd", "dataset=/etc", "dataset=mnist-mini"]
)
def test_set_cannot_name_a_dataset_path_either(client, lab, assignment):
    refused = client.post("/api/runs", json={**SMALL, "set": [assignment]}, headers=AUTHORIZED)
    assert refused.status_code == 400 and refused.json()["field"] == "dataset"
    assert refused.json()["error"].startswith("dataset must be one of auto, mnist, fashion-mnist, mnist-mini;")
    assert queued(lab) == []


def test_run_settings_are_launch_fields_not_set_keys(client, lab):
    refused = client.post("/api/runs", json={**SMALL, "set": ["seed=5"]}, headers=AUTHORIZED)
    assert refused.status_code == 400 and refused.json()["field"] == "set" and "seeds" in refused.json()["error"]


@pytest.mark.parametrize("body", [b'{"seeds": [' + b"9" * 5000 + b"]}", b'{"epochs": ' + b"9" * 5000 + b"}"])
def test_an_integer_json_cannot_read_is_a_400(client, body):
    refused = client.post("/api/runs", content=body, headers={**AUTHORIZED, "Content-Type": "application/json"})
    assert (
        refused.status_code == 400
        and "malformed JSON" in refused.json()["error"]
        and len(refused.json()["error"]) < 300
    )


def test_launches_side_by_side_cannot_pass_the_queue_bound(lab, monkeypatch):
    import concurrent.futures

    monkeypatch.setattr(lab_lib.queue, "MAX_QUEUED", 10)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(
                lambda seed: _launch_or_refusal(lab, {**SMALL, "seeds": list(range(seed * 8, seed * 8 + 8))}), range(4)
            )
        )
    assert len(queued(lab)) <= 10 and answers.count("refused") >= 3, answers


def _launch_or_refusal(lab, request):
    from mnistlab.core.errors import QueueFull

    try:
        lab.launch(request)
        return "queued"
    except QueueFull:
        return "refused"

"""One error shape for both apps: every refused request, whichever app and whatever refuses it (a route, the
request's validation, the guard, the lab's /draw mount, an unknown path), answers JSON `{"error": "...", "field": ...}`:
`error` one line, `field` always there, the field at fault or null (mnistlab.web.errors)."""

import re

import pytest
from fastapi.testclient import TestClient

from mnistlab.web import lab as lab_lib
from mnistlab.web import serve

TOKEN = "a-token-of-the-error-test-012345"
LOOPBACK = "http://127.0.0.1:8100"
AUTHORIZED = {"Authorization": f"token {TOKEN}"}
SMALL = {"preset": "listing-1.3.2", "epochs": 1, "limit": 600, "dataset": "mnist-mini"}
NO_FIELD = object()  # the case names no field: whatever `field` is, it is null

# (what, method, path, request keywords, status, field)
SERVE_CASES = [
    (
        "a text file",
        "POST",
        "/api/predict",
        {"content": b"not an image at all", "headers": {"content-type": "text/plain"}},
        415,
        None,
    ),
    ("an empty upload", "POST", "/api/explain", {"content": b"", "headers": {"content-type": "image/png"}}, 400, None),
    (
        "malformed JSON",
        "POST",
        "/api/predict",
        {"content": b"{", "headers": {"content-type": "application/json"}},
        400,
        None,
    ),
    ("pixels of the wrong shape", "POST", "/api/predict", {"json": {"pixels": [[1, 2], [3, 4]]}}, 400, None),
    ("an upload over the limit", "POST", "/api/predict", {"content": b"x" * (serve.MAX_UPLOAD_BYTES + 1)}, 413, None),
    ("a path that is no route", "GET", "/api/models/mlp", {}, 404, None),
    ("a method the route has not", "DELETE", "/api/models", {}, 405, None),
]
LAB_CASES = [
    ("a bad launch value", "POST", "/api/runs", {"json": {**SMALL, "epochs": 0}}, 400, "epochs"),
    ("a launch field that is none", "POST", "/api/runs", {"json": {**SMALL, "colour": "red"}}, 400, "colour"),
    ("a launch that is no object", "POST", "/api/runs", {"json": [1, 2]}, 400, None),
    (
        "malformed JSON",
        "POST",
        "/api/runs",
        {"content": b"{", "headers": {"content-type": "application/json"}},
        400,
        None,
    ),
    ("a launch over the limit", "POST", "/api/runs", {"content": b" " * (lab_lib.MAX_LAUNCH_BYTES + 1)}, 413, None),
    ("an unknown run", "GET", "/api/runs/987654", {}, 404, None),
    ("an unknown run's draw page", "GET", "/draw/987654/", {}, 404, None),
    ("a draw page that is no run's", "GET", "/draw/seven/", {}, 404, None),
    ("a run id out of range", "GET", "/api/runs/0", {}, 422, "run_id"),
    ("a query value the route refuses", "GET", "/api/tables/table-1.4.1", {"params": {"format": "pdf"}}, 422, "format"),
    ("a sort that is none", "GET", "/api/runs", {"params": {"sort": "colour"}}, 400, "sort"),
    ("a path that is no route", "GET", "/api/nothing", {}, 404, None),
    ("a method the route has not", "PUT", "/api/runs", {}, 405, None),
]
# Refused by the guard, before any route: no token, another host name, another origin.
LAB_GUARD_CASES = [
    ("no token", "GET", "/api/runs", {"headers": {"Authorization": "token wrong"}}, 401, None),
    ("another host name", "GET", "/api/runs", {"headers": {**AUTHORIZED, "Host": "rebound.example:8100"}}, 403, None),
    (
        "another origin",
        "POST",
        "/api/runs",
        {"json": SMALL, "headers": {**AUTHORIZED, "Origin": "http://evil.example"}},
        403,
        None,
    ),
]


def assert_the_one_shape(response, status, field, what):
    assert response.status_code == status, (what, response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), what
    body = response.json()
    assert set(body) == {"error", "field"}, (what, body)
    assert isinstance(body["error"], str) and body["error"] and "\n" not in body["error"], (what, body)
    assert len(body["error"]) < 400, (what, body)  # a message never carries the request back
    assert body["field"] == field, (what, body)


@pytest.fixture(scope="module")
def lab_client(tmp_path_factory):
    lab = lab_lib.Lab(tmp_path_factory.mktemp("error-shape") / "runs.db", workers=0)
    with TestClient(lab_lib.create_app(lab, token=TOKEN), base_url=LOOPBACK, headers=AUTHORIZED) as client:
        yield client


@pytest.mark.parametrize(("what", "method", "path", "request_", "status", "field"), LAB_CASES + LAB_GUARD_CASES)
def test_the_lab_refuses_in_the_one_shape(lab_client, what, method, path, request_, status, field):
    assert_the_one_shape(lab_client.request(method, path, **request_), status, field, what)


@pytest.mark.parametrize(("what", "method", "path", "request_", "status", "field"), SERVE_CASES)
def test_serve_refuses_in_the_one_shape(client, what, method, path, request_, status, field):
    assert_the_one_shape(client.request(method, path, **request_), status, field, what)


def test_a_loopback_serve_refuses_another_host_in_the_one_shape(app):
    guarded = serve.create_app(engine=app.state.engine, allowed_hosts=serve.allowed_hosts_for("127.0.0.1"))
    refused = TestClient(guarded).get("/api/models", headers={"Host": "rebound.example"})
    assert_the_one_shape(refused, 403, None, "another host name")


def test_both_apps_say_one_error_the_same_way(client, lab_client):
    """The same refusal (an unknown path) from both apps: the same body, the same headers that matter."""
    from_serve, from_lab = client.get("/api/nothing"), lab_client.get("/api/nothing")
    assert from_serve.json() == from_lab.json() == {"error": "Not Found", "field": None}
    for header in ("content-type", "x-frame-options", "x-content-type-options"):
        assert from_serve.headers[header] == from_lab.headers[header], header


def test_both_apps_document_the_one_shape_for_every_operation(client, lab_client):
    for schema in (client.get("/openapi.json").json(), lab_client.get("/openapi.json").json()):
        for path, operations in schema["paths"].items():
            for method, operation in operations.items():
                refused = operation["responses"]["4XX"]["content"]["application/json"]["schema"]
                assert refused["required"] == ["error", "field"], (method, path)


def test_serve_names_values_in_its_words_not_pythons(client):
    """A message says what was sent in the API's own terms ("got 2x2"), never as a Python repr ("[2, 2]")."""
    refused = client.post("/api/predict", json={"pixels": [[1, 2], [3, 4]]})
    assert refused.status_code == 400 and not re.search(r"\[\d+(, \d+)*\]", refused.json()["error"]), refused.text

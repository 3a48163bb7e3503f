"""The JSON API: predictions, every bad input as a 4xx JSON error, and load."""

import base64
import concurrent.futures
import json
import pathlib
import time

import numpy as np
import pytest

from conftest import bomb_png, drawn_png, png_bytes


def test_api_predicts_png_and_json(client, mini):
    response = client.post("/api/predict", content=drawn_png(mini), headers={"content-type": "image/png"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [p["family"] for p in body["predictions"]] == ["mlp", "cnn", "rnn"]
    assert all(len(p["probabilities"]) == 10 and abs(sum(p["probabilities"]) - 1) < 1e-3 for p in body["predictions"])
    assert np.asarray(body["input"]).shape == (28, 28)
    pixels = (mini.x_test[1] / 255).tolist()
    response = client.post("/api/predict", json={"pixels": pixels})
    assert response.status_code == 200 and len(response.json()["predictions"]) == 3
    assert client.get("/api/models").json()["models"][1]["family"] == "cnn"
    health = client.get("/healthz").json()
    assert (health["status"], health["models"], health["counts"]["images"] >= 2) == ("ok", 3, True)
    assert "/api/predict" in client.get("/openapi.json").json()["paths"]
    assert "canvas" in client.get("/").text


@pytest.mark.parametrize(
    "payload, content_type, status, message",
    [
        (b"x" * (5 * 1024 * 1024 + 1), "image/png", 413, "over the 5 MB limit"),
        (b"GIF89a but not really an image at all", "image/gif", 415, "not an image"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "image/png", 400, "truncated or corrupt"),
        (bomb_png(), "image/png", 413, "too large"),
        (png_bytes(np.zeros((280, 280), np.uint8)), "image/png", 422, "no digit found"),
        (b'{"pixels": [[0, 1], ', "application/json", 400, "malformed JSON"),
        (b'{"pixels": [[0, 1]]}', "application/json", 400, "must be 28x28"),
        (b'{"pixels": ' + json.dumps(np.zeros((28, 28)).tolist()).encode() + b"}", "application/json", 422, "empty"),
        (b"", "image/png", 400, "empty request body"),
    ],
)
@pytest.mark.parametrize("endpoint", ["/api/predict", "/api/explain"])
def test_api_bad_inputs_are_4xx_json(client, mini, payload, content_type, status, message, endpoint):
    response = client.post(endpoint, content=payload, headers={"content-type": content_type})
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    # ... and the server keeps serving.
    assert (
        client.post("/api/predict", content=drawn_png(mini), headers={"content-type": "image/png"}).status_code == 200
    )


def decoded(array):
    """An array of the compact explain JSON: uint8 bytes scaled back to min..max."""
    if isinstance(array, list):
        return np.asarray(array)
    raw = np.frombuffer(base64.b64decode(array["uint8"]), np.uint8).reshape(array["shape"])
    return array["min"] + raw / 255.0 * (array["max"] - array["min"])


def test_api_explain_shows_each_models_inside(client, mini, trained_runs):
    from mnistlab.ml import explain

    pixels = (mini.x_test[1] / 255).tolist()
    predictions = client.post("/api/predict", json={"pixels": pixels}).json()["predictions"]
    response = client.post("/api/explain", json={"pixels": pixels})
    assert response.status_code == 200, response.text
    explanations = response.json()["explanations"]
    assert [e["family"] for e in explanations] == ["mlp", "cnn", "rnn"]
    for prediction, inside in zip(predictions, explanations):
        assert inside["model"] == prediction["model"] and inside["prediction"] == prediction["prediction"]
        assert decoded(inside["attributions"]["maps"]).shape == (2, 28, 28)
        assert inside["notes"]["inside"] and inside["notes"]["attribution"]
    mlp, cnn, rnn = explanations
    assert decoded(mlp["templates"]["weights"]).shape == (8, 28, 28)
    assert [layer["shape"] for layer in cnn["layers"]] == [[26, 26, 8], [13, 13, 8], [11, 11, 8], [5, 5, 8]]
    beliefs = decoded(rnn["reading"]["beliefs"])
    assert beliefs.shape == (28, 10) and int(beliefs[-1].argmax()) == predictions[2]["prediction"]
    # The compact encoding loses only the 8-bit rounding of the full numbers.
    full = explain.explain_run(trained_runs["cnn"], np.asarray(pixels, np.float32))
    first = cnn["layers"][0]["values"]
    assert np.abs(decoded(first) - full["layers"][0]["values"]).max() <= (first["max"] - first["min"]) / 255 + 1e-6
    assert "/api/explain" in client.get("/openapi.json").json()["paths"]


def test_api_unknown_route_and_method_are_json(client):
    assert client.get("/nope").json()["error"] == "Not Found"
    assert client.get("/api/predict").status_code == 405


def test_50_clients_at_once_are_all_answered(live_server, mini):
    """50 keep-alive clients, 2 requests each, at once, two different digits: every answer a 200 with its own digit's predictions, in bounded time.

    A check, not the measurement: benchmarks/serve_load.py measures requests/s and
    latency (BENCHMARKS.md), about 200-300 ms p50 at 50 clients on 2 cores. The
    bounds here are loose, so that a 10x regression fails and a slow CI machine does not.
    """
    import httpx

    other = next(index for index, label in enumerate(mini.y_test) if label != mini.y_test[1])
    payloads = [drawn_png(mini), drawn_png(mini, index=other)]

    def predictions(http, payload):
        response = http.post("/api/predict", content=payload, headers={"content-type": "image/png"})
        assert response.status_code == 200, response.text
        return [p["prediction"] for p in response.json()["predictions"]]

    with httpx.Client(base_url=live_server, timeout=60) as http:
        alone = [predictions(http, payload) for payload in payloads]  # one at a time
    assert alone[0] != alone[1], alone  # else a mixed-up answer would go unseen

    def client_session(number):
        answers = []
        with httpx.Client(base_url=live_server, timeout=60) as http:
            for request in range(2):
                which = (number + request) % 2
                started = time.perf_counter()
                got = predictions(http, payloads[which])
                answers.append((time.perf_counter() - started, which, got))
        return answers

    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        answers = sum(pool.map(client_session, range(50)), [])
    assert len(answers) == 100
    assert [(which, got) for _, which, got in answers if got != alone[which]] == []
    latencies = sorted(latency for latency, _, _ in answers)
    # Latencies are the benchmark's (benchmarks/serve_load.py), not a test's: a machine twice as slow is not a bug.
    print(
        f"\n100 requests from 50 clients: p50 {1000 * np.percentile(latencies, 50):.0f} ms, p95 {1000 * np.percentile(latencies, 95):.0f} ms"
    )


def test_concurrent_bombs_never_lift_the_size_guard(client, mini):
    """50 requests at once, half decompression bombs: each bomb refused, each digit answered.

    The size guard is per call (no Pillow global), so one request cannot
    lift another's limit however the thread pool interleaves them.
    """
    bomb, digit = bomb_png(), drawn_png(mini)

    def post(index):
        payload = bomb if index % 2 else digit
        return index, client.post("/api/predict", content=payload, headers={"content-type": "image/png"})

    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(post, range(50)))
    for index, response in answers:
        if index % 2:
            assert response.status_code == 413 and "too large" in response.json()["error"]
        else:
            assert response.status_code == 200 and len(response.json()["predictions"]) == 3


def test_api_page_works_offline(client):
    page = client.get("/docs")
    assert page.status_code == 200 and 'href="/openapi.json"' in page.text
    assert "cdn" not in page.text.lower() and "https://" not in page.text


def test_models_describe_settings_and_accuracy(client):
    models = client.get("/api/models").json()["models"]
    assert [m["family"] for m in models] == ["mlp", "cnn", "rnn"]
    assert all(m["test_accuracy"] is not None and m["dataset"] == "mnist-mini" for m in models)
    assert models[1]["description"].startswith("cnn conv 8-8")


def test_serve_picks_the_best_validation_run_not_the_latest(tmp_path):
    from mnistlab.analysis import pages
    from mnistlab.core.config import Config
    from mnistlab.record.store import Store

    with Store(tmp_path / "runs.db") as store:
        for seed, validation in ((0, 0.97), (1, 0.13)):  # the latest run is the bad one
            run_dir = tmp_path / f"run{seed}"
            run_dir.mkdir()
            (run_dir / "model.keras").write_bytes(b"model")
            run_id = store.start_run(Config(seed=seed, dataset="mnist-mini"), "ab" * 32, run_dir=run_dir)
            store.finish_run(
                run_id, "done", {"val_accuracy": validation, "test_accuracy": validation, "run_dir": str(run_dir)}
            )
    assert pages.best_runs_per_family(tmp_path / "runs.db") == [str(tmp_path / "run0")]


@pytest.mark.parametrize("megabytes", [6, 20])
def test_oversized_upload_gets_the_413_json_from_urllib(live_server, megabytes):
    """urllib (like requests) sends the whole body, with Connection: close, before it reads the answer."""
    import urllib.error
    import urllib.request

    # An opener of its own: the tests' no-network guard replaces urlopen only.
    opener = urllib.request.build_opener()
    request = urllib.request.Request(
        live_server + "/api/predict", data=b"x" * (megabytes << 20), headers={"content-type": "image/png"}
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        opener.open(request, timeout=60)
    assert caught.value.code == 413
    assert "over the 5 MB limit" in json.loads(caught.value.read())["error"]


def onnx_run(run_dir, destination):
    """A copy of RUN_DIR (an MLP) with a model.onnx of its own: softmax(x @ W) with fixed weights, built with onnx.helper.

    Quicker than a tf2onnx export, and independent of it (tests/test_export.py checks the export).
    """
    import shutil

    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    destination = pathlib.Path(shutil.copytree(run_dir, destination))
    weights = np.random.default_rng(0).normal(size=(784, 10)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
        ],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 784])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 10])],
        [numpy_helper.from_array(weights, "w")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), destination / "model.onnx")
    return destination, weights


def test_api_explain_on_the_onnx_runtime_is_a_409_json(tmp_path, trained_runs, mini):
    """An ONNX session has no layer outputs: /api/explain says so with a 409 and its JSON error, not a 500; predictions still answer."""
    pytest.importorskip("onnxruntime")
    from fastapi.testclient import TestClient

    from mnistlab.ml.predict import Predictor
    from mnistlab.web.serve import create_app

    run_dir, weights = onnx_run(trained_runs["mlp"], tmp_path / "onnx-mlp")
    client = TestClient(create_app([Predictor(run_dir, runtime="onnx")]))
    pixels = mini.x_test[1] / 255
    response = client.post("/api/explain", json={"pixels": pixels.tolist()})
    assert response.status_code == 409, response.text
    assert response.json() == {
        "error": "the inside view needs the Keras runtime (ONNX gives no layer outputs): serve without --runtime onnx",
        "field": None,
    }
    # The same app predicts, with the ONNX model's numbers (NumPy's softmax of x @ W).
    answer = client.post("/api/predict", json={"pixels": pixels.tolist()})
    assert answer.status_code == 200, answer.text
    logits = pixels.reshape(1, 784).astype(np.float32) @ weights
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(answer.json()["predictions"][0]["probabilities"], expected[0], atol=1e-5)


def test_explain_beside_predictions_from_many_clients(live_server, mini):
    """Explanations run beside predictions of the same models: every answer is a 200 (on JAX, a
    shared model would have its weight buffers donated by one thread while another reads them)."""
    import httpx

    payload = drawn_png(mini)

    def client(endpoint):
        with httpx.Client(base_url=live_server, timeout=60) as http:
            return [
                http.post(endpoint, content=payload, headers={"content-type": "image/png"}).status_code
                for _ in range(8)
            ]

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sum(pool.map(client, ["/api/predict", "/api/explain"] * 4), [])
    assert statuses == [200] * 64, statuses

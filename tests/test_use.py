"""Using trained models: preprocessing, predict, the web API, export, and the page in a browser."""

import concurrent.futures
import io
import json
import socket
import struct
import threading
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from conftest import assert_one_line_error, run_cli
from mnistlab import preprocess, train
from mnistlab.config import Config

# --------------------------------------------------------------------------
# Preprocessing on synthetic images


def digit_like(height=28, width=28, box=(6, 8, 22, 18)):
    """A white bar-shaped 'digit' on black."""
    image = np.zeros((height, width))
    top, left, bottom, right = box
    image[top:bottom, left:right] = 1.0
    return image


def centre_of_mass(image):
    total = image.sum()
    return (image.sum(axis=1) * np.arange(image.shape[0])).sum() / total, (image.sum(axis=0) * np.arange(image.shape[1])).sum() / total


def png_bytes(array, mode=None):
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="PNG") if mode else Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_off_centre_digit_is_centred_and_scaled():
    image = np.zeros((100, 60))
    image[5:45, 35:50] = 1.0  # tall bar in the top right
    out, info = preprocess.to_mnist(image)
    assert out.shape == (28, 28) and out.dtype == np.float32
    rows, columns = np.nonzero(out > 0.5)
    assert rows.max() - rows.min() + 1 == pytest.approx(20, abs=1)  # longer side 20 px
    assert columns.max() - columns.min() + 1 == pytest.approx(20 * 15 / 40, abs=1)  # aspect kept
    assert np.allclose(centre_of_mass(out), (14, 14), atol=0.6)
    assert info["bounding_box"] == [5, 35, 45, 50] and not info["inverted"]


def test_light_background_is_inverted():
    dark_on_light = 1.0 - digit_like()
    out, info = preprocess.to_mnist(dark_on_light)
    assert info["inverted"]
    np.testing.assert_allclose(out, preprocess.to_mnist(digit_like())[0], atol=1e-6)


def test_tiny_and_huge_images():
    tiny = np.zeros((5, 5))
    tiny[1:4, 2] = 1
    out, _ = preprocess.to_mnist(tiny)
    assert (out > 0.3).sum() >= 10  # scaled up to 20 px tall
    huge = np.zeros((3000, 2000), dtype=np.uint8)
    huge[500:2500, 900:1200] = 255
    out, info = preprocess.prepare_file(png_bytes(huge), name="huge")
    assert out.shape == (28, 28) and info["source_shape"] == [3000, 2000]


def test_rgba_transparent_canvas_and_16_bit():
    rgba = np.zeros((80, 80, 4), dtype=np.uint8)
    rgba[10:70, 30:45] = [0, 0, 0, 255]  # black ink on a transparent canvas
    from_rgba, _ = preprocess.prepare_file(png_bytes(rgba, "RGBA"))
    gray16 = (digit_like(80, 80, (10, 30, 70, 45)) * 65535).astype(np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(gray16).save(buffer, format="PNG")
    from_16, _ = preprocess.prepare_file(buffer.getvalue())
    from_float, _ = preprocess.to_mnist(digit_like(80, 80, (10, 30, 70, 45)))
    np.testing.assert_allclose(from_rgba, from_float, atol=1e-6)
    np.testing.assert_allclose(from_16, from_float, atol=1e-4)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP"])
def test_every_format_reads(fmt):
    image = (digit_like(56, 56, (8, 20, 48, 34)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image).convert("RGB").save(buffer, format=fmt)
    out, _ = preprocess.prepare_file(buffer.getvalue(), name=fmt)
    assert out.max() == pytest.approx(1.0, abs=0.05) and out.sum() > 20


def test_npy_inputs(tmp_path):
    for array in (digit_like(), (digit_like() * 255).astype(np.uint8), (digit_like() * 65535).astype(np.uint16)):
        path = tmp_path / "digit.npy"
        np.save(path, array)
        out, _ = preprocess.prepare_file(path)
        np.testing.assert_allclose(out, preprocess.to_mnist(digit_like())[0], atol=1e-4)


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"hello, not an image", "not an image"),
        (png_bytes(np.zeros((50, 50), np.uint8))[:60], "truncated or corrupt"),
        (png_bytes(np.zeros((50, 50), np.uint8)), "no digit found"),
        (b"", "empty file"),
    ],
)
def test_bad_images(payload, message):
    with pytest.raises(preprocess.ImageError, match=message):
        preprocess.prepare_file(payload, name="x")


def bomb_png(width=20000, height=20000):
    """A PNG header declaring 20000x20000 pixels: a decompression bomb, in 60 bytes."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused():
    with pytest.raises(preprocess.ImageError, match="too large"):
        preprocess.prepare_file(bomb_png(), name="bomb.png")


def test_photo_like_digits_agree_with_clean(mini, trained_runs):
    """The measurement of the issue, on 200 mnist-mini digits: photo-like vs clean predictions."""
    from mnistlab.predict import Predictor

    predictor = Predictor(trained_runs["mlp"])
    rng = np.random.default_rng(0)
    digits = mini.x_test[:200]
    photos = np.stack([preprocess.prepare_file(preprocess.render_photo_like(d, rng))[0] for d in digits])
    clean = predictor.predict(digits / 255.0).argmax(axis=1)
    assert (predictor.predict(photos).argmax(axis=1) == clean).mean() >= 0.9


# --------------------------------------------------------------------------
# Trained models for the rest (small, trained once per session)


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory, mini):
    root = tmp_path_factory.mktemp("trained")
    configs = {
        "mlp": Config(model="mlp", hidden_units=(64,), epochs=4, dataset="mnist-mini"),
        "cnn": Config(model="cnn", filters=(8, 8), epochs=2, dataset="mnist-mini"),
        "rnn": Config(model="rnn", rnn_units=(32,), optimizer="adam", epochs=2, dataset="mnist-mini"),
    }
    for family, config in configs.items():
        train.train(config, run_dir=root / family, name=f"tiny-{family}", dataset=mini, verbose=0, store=False)
    return {family: root / family for family in configs}


def test_predict_cli_json_and_show_input(tmp_path, trained_runs, mini):
    Image.fromarray(255 - mini.x_test[0]).resize((140, 140)).save(tmp_path / "dark-on-light.png")
    np.save(tmp_path / "clean.npy", mini.x_test[0])
    result = run_cli("predict", trained_runs["mlp"], tmp_path / "dark-on-light.png", tmp_path / "clean.npy", "--top", "3", "--json", "--show-input", tmp_path / "seen")
    assert result.returncode == 0, result.stderr
    predictions = json.loads(result.stdout)
    assert len(predictions) == 2 and len(predictions[0]["top"]) == 3
    assert predictions[0]["prediction"] == predictions[1]["prediction"]
    assert predictions[0]["preprocess"]["inverted"] and not predictions[1]["preprocess"]["inverted"]
    assert (tmp_path / "seen" / "dark-on-light-input.png").exists()
    assert abs(sum(item["probability"] for item in predictions[0]["top"]) - 1) < 0.5


def test_predict_cli_errors(tmp_path, trained_runs):
    (tmp_path / "notes.txt").write_text("not an image")
    assert_one_line_error(run_cli("predict", trained_runs["mlp"], tmp_path / "notes.txt"), "notes.txt", "not an image")
    assert_one_line_error(run_cli("predict", trained_runs["mlp"], tmp_path / "missing.png"), "file not found")
    assert_one_line_error(run_cli("predict", trained_runs["mlp"], tmp_path / "notes.txt", "--runtime", "onnx"), "not an image")


# --------------------------------------------------------------------------
# The API


@pytest.fixture(scope="session")
def app(trained_runs):
    from mnistlab.predict import Predictor
    from mnistlab.serve import create_app

    return create_app([Predictor(trained_runs[family]) for family in ("mlp", "cnn", "rnn")])


@pytest.fixture
def client(app):
    from fastapi.testclient import TestClient

    return TestClient(app)


def drawn_png(mini):
    canvas = np.zeros((280, 280), dtype=np.uint8)
    canvas[40:240, 40:240] = np.asarray(Image.fromarray(mini.x_test[1]).resize((200, 200)))
    return png_bytes(canvas)


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
    assert client.get("/healthz").json() == {"status": "ok", "models": 3}
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
def test_api_bad_inputs_are_4xx_json(client, mini, payload, content_type, status, message):
    response = client.post("/api/predict", content=payload, headers={"content-type": content_type})
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    # ... and the server keeps serving.
    assert client.post("/api/predict", content=drawn_png(mini), headers={"content-type": "image/png"}).status_code == 200


def test_api_unknown_route_and_method_are_json(client):
    assert client.get("/nope").json()["error"] == "Not Found"
    assert client.get("/api/predict").status_code == 405


@pytest.fixture(scope="session")
def live_server(app):
    """The app on a real uvicorn server on loopback, in a thread."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_load_50_clients_20_requests_each(live_server, mini):
    import httpx

    payload = drawn_png(mini)

    def client_session(_):
        latencies = []
        with httpx.Client(base_url=live_server, timeout=60) as http:
            for _ in range(20):
                started = time.perf_counter()
                response = http.post("/api/predict", content=payload, headers={"content-type": "image/png"})
                latencies.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text
        return latencies

    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        latencies = sorted(sum(pool.map(client_session, range(50)), []))
    assert len(latencies) == 1000
    print(f"\nload test: 1000 requests from 50 clients, p50 {1000 * np.percentile(latencies, 50):.0f} ms, p95 {1000 * np.percentile(latencies, 95):.0f} ms")


def draw_stroke(page, points):
    """Press, move through POINTS (pixels from the pad's top-left corner), release."""
    pad = page.locator("#pad").bounding_box()
    page.mouse.move(pad["x"] + points[0][0], pad["y"] + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(pad["x"] + x, pad["y"] + y)
    page.mouse.up()


SEVEN_TOP = [(70 + 14 * step, 70) for step in range(11)]
SEVEN_DIAGONAL = [(210 - 6 * step, 70 + 12 * step) for step in range(15)]
ONE = [(140, 40 + 10 * step) for step in range(21)]


def wait_until_settled(page):
    """Wait until every request the page sent has been answered and none is queued."""
    page.wait_for_function("window.mnistlab && window.mnistlab.sent > 0 && !window.mnistlab.busy", timeout=30000)


def slow_network(page, latency_ms=800):
    """Chromium's own network emulation: every response arrives LATENCY_MS late."""
    session = page.context.new_cdp_session(page)
    session.send("Network.enable")
    session.send("Network.emulateNetworkConditions", {"offline": False, "latency": latency_ms, "downloadThroughput": -1, "uploadThroughput": -1})


# Records every time the cards are drawn, with the 28x28 input shown at that moment.
RECORD_RENDERS = """() => {
  window.renders = [];
  new MutationObserver(() => {
    if (document.querySelectorAll('.model').length)
      window.renders.push({at: performance.now(), input: document.getElementById('input28').toDataURL()});
  }).observe(document.getElementById('models'), {childList: true});
}"""


def act(page, script):
    """Run SCRIPT in the page and return the page's clock just before it ran."""
    return page.evaluate(f"() => {{ const at = performance.now(); {script}; return at; }}")


def test_page_draws_and_shows_three_predictions(live_server, browser_page):
    page = browser_page
    page.goto(live_server + "/")
    draw_stroke(page, SEVEN_TOP + SEVEN_DIAGONAL)
    wait_until_settled(page)
    families = page.eval_on_selector_all(".model", "cards => cards.map(c => c.dataset.family)")
    assert families == ["mlp", "cnn", "rnn"]
    assert page.locator(".model .bar").count() == 30
    assert page.locator("#status").inner_text() == ""
    page.click("#clear")
    assert page.locator(".model").count() == 0
    draw_stroke(page, ONE)
    page.click("#clear")
    wait_until_settled(page)
    assert page.locator(".model").count() == 0


def test_page_clear_drops_a_late_answer(live_server, browser_page):
    page = browser_page
    page.goto(live_server + "/")
    slow_network(page)
    draw_stroke(page, SEVEN_TOP + SEVEN_DIAGONAL)
    page.click("#clear")  # the stroke's answers are still on their way
    wait_until_settled(page)
    assert page.evaluate("window.mnistlab.dropped") >= 1
    assert page.locator(".model").count() == 0


def test_page_undo_never_shows_the_undone_stroke(live_server, browser_page):
    page = browser_page
    page.goto(live_server + "/")
    draw_stroke(page, ONE)
    wait_until_settled(page)
    one_alone = page.evaluate("document.getElementById('input28').toDataURL()")
    page.evaluate(RECORD_RENDERS)
    slow_network(page)
    draw_stroke(page, SEVEN_TOP)
    undo_at = act(page, "document.getElementById('undo').click()")
    wait_until_settled(page)
    after_undo = [render["input"] for render in page.evaluate("window.renders") if render["at"] > undo_at]
    assert after_undo and all(shown == one_alone for shown in after_undo)
    assert page.locator(".model").count() == 3


def test_page_drop_after_draw_shows_only_the_file(live_server, browser_page, mini):
    page = browser_page
    page.goto(live_server + "/")
    page.evaluate(RECORD_RENDERS)
    slow_network(page)
    draw_stroke(page, SEVEN_TOP + SEVEN_DIAGONAL)
    file_bytes = list(drawn_png(mini))
    drop_at = act(
        page,
        f"""const file = new File([new Uint8Array({file_bytes})], "digit.png", {{type: "image/png"}});
        const transfer = new DataTransfer();
        transfer.items.add(file);
        document.getElementById("pad").dispatchEvent(new DragEvent("drop", {{dataTransfer: transfer, bubbles: true, cancelable: true}}))""",
    )
    wait_until_settled(page)
    after_drop = [render["input"] for render in page.evaluate("window.renders") if render["at"] > drop_at]
    assert len(set(after_drop)) == 1, "an answer for the old drawing was shown after the drop"
    assert page.locator(".model").count() == 3


# --------------------------------------------------------------------------
# Export


def test_onnx_export_matches_keras_and_serves(tmp_path, trained_runs, client):
    for family in ("mlp", "cnn", "rnn"):
        result = run_cli("export", trained_runs[family], "--format", "onnx")
        assert result.returncode == 0, result.stderr
        assert "max |difference|" in result.stdout
        difference = float(result.stdout.split("max |difference| ")[1].split(",")[0])
        assert difference <= 1e-4
        assert (trained_runs[family] / "model.onnx").exists()
    from mnistlab.predict import Predictor

    image = np.zeros((1, 28, 28), np.float32)
    image[0, 6:22, 12:16] = 1
    for family in ("mlp", "cnn", "rnn"):
        keras_probs = Predictor(trained_runs[family]).predict(image)
        onnx_probs = Predictor(trained_runs[family], runtime="onnx").predict(image)
        np.testing.assert_allclose(keras_probs, onnx_probs, atol=1e-4)


def test_keras_and_saved_model_export(tmp_path, trained_runs):
    result = run_cli("export", trained_runs["mlp"], "--format", "keras", "--out", tmp_path / "copy.keras")
    assert result.returncode == 0 and (tmp_path / "copy.keras").stat().st_size > 1000
    result = run_cli("export", trained_runs["cnn"], "--format", "saved_model", "--out", tmp_path / "sm")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "sm" / "saved_model.pb").exists()
    assert_one_line_error(run_cli("export", trained_runs["cnn"], "--format", "saved_model", "--out", tmp_path / "sm"), "already exists")
    assert_one_line_error(run_cli("export", tmp_path, "--format", "onnx"), "not a run directory")

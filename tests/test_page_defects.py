"""The draw-a-digit page in Chromium, for defects it had: a selected outline on every CNN tile, a failed
drop that left the earlier drawing's results, a dropped image never shown on the pad, a bidirectional
RNN card that described what it did not draw, a /favicon.ico 404, errors in the console, and a
"Draw a digit" title over models of clothes."""

import base64
import io
import json
import threading

import numpy as np
import pytest
from PIL import Image
from test_page import ONE, SEVEN_DIAGONAL, SEVEN_TOP, draw_stroke, wait_for_inside, wait_until_settled

from conftest import drawn_png, png_bytes, serving_in_thread

SEVEN = SEVEN_TOP + SEVEN_DIAGONAL

# Drops a file on the pad as a browser does: a DragEvent whose DataTransfer holds it.
DROP = """([data, name, type]) => {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, {type}));
  document.getElementById("pad").dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));
}"""

# The pad's pixels as a list of rows of grey levels (the red channel; the pad is drawn in greys).
PAD_PIXELS = """() => {
  const pad = document.getElementById("pad"), pixels = pad.getContext("2d").getImageData(0, 0, pad.width, pad.height).data;
  return Array.from({length: pad.height}, (_, y) => Array.from({length: pad.width}, (_, x) => pixels[4 * (y * pad.width + x)]));
}"""

INPUT_IS_BLANK = (
    "() => document.getElementById('input28').getContext('2d').getImageData(0, 0, 28, 28).data.every((v) => v === 0)"
)


def drop_file(page, data, name, mime):
    """Drop DATA on the pad as file NAME and wait until the page has its answer (or error) on screen."""
    before = page.evaluate("window.mnistlab.sent")
    page.evaluate(DROP, [base64.b64encode(data).decode(), name, mime])
    page.wait_for_function(f"window.mnistlab.sent > {before} && !window.mnistlab.busy", timeout=30000)


def selected_tiles(page):
    return page.eval_on_selector_all(
        '.inside[data-family="cnn"] .fmap.selected', "tiles => tiles.map(t => [t.dataset.layer, t.dataset.index])"
    )


def test_the_title_follows_the_models_dataset(live_server, browser_page):
    page = browser_page
    page.goto(live_server + "/")
    page.wait_for_function("document.title.includes('(')")  # the models listed
    assert page.locator("h1").text_content() == "Draw a digit" and page.title().startswith("mnistlab: draw a digit (")
    models = json.loads(page.evaluate("fetch('api/models').then((r) => r.text())"))
    for model in models["models"]:
        model["dataset"] = "fashion-mnist"
    # The same page over Fashion-MNIST runs (what `serve --dataset fashion-mnist` lists).
    page.route(
        "**/api/models",
        lambda route: route.fulfill(status=200, content_type="application/json", body=json.dumps(models)),
    )
    page.goto(live_server + "/")
    page.wait_for_function("document.title.includes('clothing')")
    assert page.locator("h1").text_content() == "Draw a piece of clothing"


def test_no_feature_map_is_selected_until_one_is_clicked(live_server, browser_page):
    page = browser_page
    page.goto(live_server + "/")
    draw_stroke(page, SEVEN)
    wait_for_inside(page)
    cnn = page.locator('.inside[data-family="cnn"]')
    assert cnn.locator(".fmap").count() > 0
    assert selected_tiles(page) == []
    cnn.locator(".fmap").nth(3).click()
    assert selected_tiles(page) == [["0", "3"]]
    cnn.locator('.fmap[data-layer="2"]').first.click()
    assert selected_tiles(page) == [["2", "0"]]


@pytest.mark.parametrize(
    ("name", "mime", "make", "said"),
    [
        ("notes.txt", "text/plain", lambda: b"not an image at all\n", "not an image"),
        ("blank.png", "image/png", lambda: png_bytes(np.zeros((280, 280), np.uint8)), "no digit found"),
    ],
    ids=["text-file", "blank-png"],
)
def test_a_failed_drop_shows_its_error_and_nothing_of_the_earlier_drawing(
    live_server, browser_page, name, mime, make, said
):
    page = browser_page
    page.goto(live_server + "/")
    draw_stroke(page, SEVEN)
    wait_for_inside(page)
    assert page.locator(".model").count() == 3 and not page.evaluate(INPUT_IS_BLANK)
    drop_file(page, make(), name, mime)
    assert page.locator(".model.answered").count() == 0, "the earlier drawing's predictions are still shown"
    assert page.locator(".inside").count() == 0
    assert page.evaluate(INPUT_IS_BLANK), "the earlier drawing's input is still shown"
    assert max(map(max, page.evaluate(PAD_PIXELS))) < 20, "the earlier drawing is still on the pad"
    status = page.locator("#status")
    assert said in status.inner_text()
    assert status.get_attribute("class") == "error"


def test_a_dropped_image_is_shown_on_the_pad_and_drawing_after_it_starts_anew(live_server, browser_page, mini):
    page = browser_page
    page.goto(live_server + "/")
    # A digit drawn alone on a cleared pad: what the pad shows after drawing it, whatever was there before.
    draw_stroke(page, ONE)
    wait_until_settled(page)
    one_alone = page.evaluate("document.getElementById('pad').toDataURL()")
    # A wide image (560x280, the digit in the middle): drawn scaled to fit, 280x140 in the middle of the pad.
    digit = np.asarray(Image.open(io.BytesIO(drawn_png(mini))))
    wide = np.zeros((280, 560), np.uint8)
    wide[:, 140:420] = digit
    drop_file(page, png_bytes(wide), "wide.png", "image/png")
    assert page.locator(".model").count() == 3 and page.locator("#status").inner_text() == ""
    expected = np.zeros((280, 280), np.float64)
    expected[70:210, :] = np.asarray(Image.fromarray(wide).resize((280, 140), Image.BILINEAR), np.float64)
    shown = np.asarray(page.evaluate(PAD_PIXELS), np.float64)
    assert shown.max() > 200, "the pad does not show the dropped image"
    assert np.abs(shown - expected).mean() < 6, np.abs(shown - expected).mean()
    # Drawing after the drop starts a new drawing: the pad then shows the stroke alone.
    draw_stroke(page, ONE)
    wait_until_settled(page)
    assert page.evaluate("document.getElementById('pad').toDataURL()") == one_alone
    assert page.locator(".model").count() == 3


# --------------------------------------------------------------------------
# A bidirectional RNN alone, served from a thread; the server records every path it was asked for.


@pytest.fixture(scope="module")
def bidirectional_server(tmp_path_factory, mini):

    from mnistlab.core.config import Config
    from mnistlab.ml import run_model
    from mnistlab.ml.predict import Predictor
    from mnistlab.web.serve import create_app

    run_dir = tmp_path_factory.mktemp("bidirectional") / "rnn"
    config = Config(
        family="rnn", rnn_units=(8,), bidirectional=True, optimizer="adam", epochs=1, limit=300, dataset="mnist-mini"
    )
    run_model.train_and_save(config, run_dir=run_dir, dataset=mini, verbose=0)
    app, paths = create_app([Predictor(run_dir)]), []

    async def recording(scope, receive, send):
        if scope["type"] == "http":
            paths.append(scope["path"])
        await app(scope, receive, send)

    for url in serving_in_thread(recording):
        yield url, paths


def test_a_bidirectional_rnn_card_says_once_that_it_has_no_belief_per_row_and_draws_none(
    bidirectional_server, browser_page
):
    url, _ = bidirectional_server
    page = browser_page
    page.goto(url + "/")
    draw_stroke(page, SEVEN)
    wait_for_inside(page)
    inside = page.locator('.inside[data-family="rnn"]')
    text = inside.inner_text()
    assert text.count("both ways") == 1, text
    assert text.count("no belief after each row") == 1, text
    for absent in ("heat map", "hidden states", "after row", "Belief while reading"):
        assert absent not in text, (absent, text)
    assert inside.locator("canvas.beliefs, canvas.rows, .rowmark").count() == 0
    assert inside.locator(".attribution canvas").count() == 2  # which pixels decided it: that is there


def test_the_page_has_its_own_icon_and_never_asks_for_favicon_ico(bidirectional_server, browser_page):
    url, paths = bidirectional_server
    page = browser_page
    page.goto(url + "/")
    # A whole round trip (prediction and inside view) after the load: a browser asks for an icon right after loading.
    draw_stroke(page, SEVEN)
    wait_for_inside(page)
    assert "/favicon.ico" not in paths, paths
    icons = page.eval_on_selector_all('link[rel="icon"]', "links => links.map(l => l.getAttribute('href'))")
    assert len(icons) == 1 and icons[0].startswith("data:image/svg+xml,"), icons


def test_a_whole_session_logs_no_console_error(live_server, browser_page):
    page = browser_page
    messages, page_errors, responses = [], [], []
    page.on("console", lambda message: messages.append(message))
    page.on("pageerror", lambda error: page_errors.append(error))
    page.on("response", lambda response: responses.append(response))
    page.goto(live_server + "/")
    draw_stroke(page, SEVEN)
    wait_for_inside(page)
    page.locator('.inside[data-family="cnn"] .fmap').nth(2).click()
    page.click("#undo")
    draw_stroke(page, ONE)
    wait_for_inside(page)
    page.click("#clear")
    drop_file(page, b"not an image\n", "notes.txt", "text/plain")
    assert "not an image" in page.locator("#status").inner_text()
    assert page_errors == []
    # The one refused request is the failed drop's (415). Chromium itself reports every 4xx answer in the
    # console as "Failed to load resource"; that line, for that request, is the only error allowed.
    assert [(response.url, response.status) for response in responses if response.status >= 400] == [
        (live_server + "/api/predict", 415)
    ]
    unexpected = [
        (message.text, message.location.get("url"))
        for message in messages
        if message.type == "error"
        and not (
            message.text.startswith("Failed to load resource")
            and message.location.get("url") == live_server + "/api/predict"
        )
    ]
    assert unexpected == []


def test_a_busy_inside_view_says_so_and_comes_when_the_server_has_room(live_server, app, browser_page, monkeypatch):
    """503 from /api/explain (the class fills the explanation queue): the page says 'inside view busy', asks again after Retry-After, then shows it."""
    from mnistlab.serving import batching

    explanations = app.state.engine.explanations
    real, full, clients = explanations.explain, threading.Event(), []
    full.set()

    def busy_while_full(client, image):
        clients.append(client)
        if full.is_set():
            raise batching.ExplainBusy(
                "the inside view is busy (other drawings are being explained); it will try again"
            )
        return real(client, image)

    monkeypatch.setattr(explanations, "explain", busy_while_full)
    app.state.engine.forget_explanations()  # an earlier test's same drawing would be answered from the cache, never queued
    page = browser_page
    page.goto(live_server + "/")
    page.wait_for_function("document.querySelectorAll('#pad').length === 1")
    draw_stroke(page, SEVEN_TOP + SEVEN_DIAGONAL)
    wait_until_settled(page)
    page.wait_for_function(
        "document.getElementById('status').textContent.startsWith('inside view busy')", timeout=30000
    )
    refused = page.evaluate("window.mnistlab.insideRefused")
    full.clear()  # the queue has room again: the page's next try is answered
    wait_for_inside(page)
    assert refused >= 1 and page.inner_text("#status") == ""
    # The page named itself: one id on every request, not its connection's address.
    assert len(set(clients)) == 1 and ":" not in clients[0]

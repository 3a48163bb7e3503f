"""The draw-a-digit page in Chromium: predictions appear, and no answer older than the user's last action is shown."""

import re

from conftest import drawn_png


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
    session.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": latency_ms, "downloadThroughput": -1, "uploadThroughput": -1},
    )


# Records every time the cards are drawn, with the 28x28 input shown at that moment.
RECORD_RENDERS = """() => {
  window.renders = [];
  new MutationObserver(() => {
    if (document.querySelectorAll('.model.answered').length)
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
    # Each card says what was trained and how well: settings, test accuracy, dataset.
    about = page.eval_on_selector_all(".model .about", "cards => cards.map(c => c.textContent)")
    assert all("test " in text and "% on mnist-mini" in text for text in about), about
    page.click("#clear")
    # The cards stay, one per model, waiting for the next drawing: no prediction on them.
    assert page.locator(".model").count() == 3 and page.locator(".model.answered").count() == 0
    draw_stroke(page, ONE)
    page.click("#clear")
    wait_until_settled(page)
    assert page.locator(".model.answered").count() == 0


def test_page_clear_drops_a_late_answer(live_server, browser_page):
    page = browser_page
    page.goto(live_server + "/")
    slow_network(page)
    draw_stroke(page, SEVEN_TOP + SEVEN_DIAGONAL)
    page.click("#clear")  # the stroke's answers are still on their way
    wait_until_settled(page)
    assert page.evaluate("window.mnistlab.dropped") >= 1
    assert page.locator(".model.answered").count() == 0


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


def test_page_clear_right_after_the_last_move_drops_its_answer(live_server, browser_page):
    """Clear in the same moment as the last pointer move: the snapshot is still being encoded
    (canvas.toBlob answers later) when Clear runs; its answer must not bring the cards back."""
    page = browser_page
    page.goto(live_server + "/")
    page.evaluate("""() => {
        const pad = document.getElementById("pad"), box = pad.getBoundingClientRect();
        const at = (x, y) => ({clientX: box.left + x, clientY: box.top + y, pointerId: 1, bubbles: true});
        pad.dispatchEvent(new PointerEvent("pointerdown", at(140, 40)));
        for (let y = 50; y <= 240; y += 10) pad.dispatchEvent(new PointerEvent("pointermove", at(140, y)));
        document.getElementById("clear").click();  // before toBlob has called back
    }""")
    wait_until_settled(page)
    assert page.evaluate("window.mnistlab.dropped") >= 1
    assert page.locator(".model.answered").count() == 0


def wait_for_inside(page):
    """Wait until the inside view on screen is that of the prediction on screen, and none is on its way."""
    wait_until_settled(page)
    page.wait_for_function(
        "window.mnistlab.insideFor > 0 && window.mnistlab.insideFor === window.mnistlab.shown && !window.mnistlab.insideBusy",
        timeout=30000,
    )


# Per canvas row: the brightness (r + g + b) of each pixel.
ROW_BRIGHTNESS = """([selector, row]) => {
  const canvas = document.querySelector(selector), context = canvas.getContext("2d");
  const pixels = context.getImageData(0, row, canvas.width, 1).data;
  return Array.from({length: canvas.width}, (_, x) => pixels[4 * x] + pixels[4 * x + 1] + pixels[4 * x + 2]);
}"""


def test_page_shows_the_inside_of_each_network(live_server, browser_page):
    page = browser_page
    page.goto(live_server + "/")
    draw_stroke(page, SEVEN_TOP + SEVEN_DIAGONAL)
    wait_for_inside(page)
    assert page.eval_on_selector_all(".model .inside", "views => views.map(v => v.dataset.family)") == [
        "mlp",
        "cnn",
        "rnn",
    ]
    # Every model: an attribution map for its prediction and its runner-up, and words tied to the chapter.
    assert page.locator(".inside .attribution canvas").count() == 6
    assert "28 time steps" in page.locator('.inside[data-family="rnn"]').inner_text()
    # The RNN's belief after the 28th row is its prediction: the brightest cell of the heat map's last row.
    guess = page.locator('.model[data-family="rnn"] .guess').inner_text()
    last_row = page.evaluate(ROW_BRIGHTNESS, ['.inside[data-family="rnn"] canvas.beliefs', 27])
    assert len(last_row) == 10 and last_row.index(max(last_row)) == int(guess), (last_row, guess)
    assert "after row 28 of 28: '" + guess + "'" in page.locator('.inside[data-family="rnn"]').inner_text()
    # The MLP's hidden units and templates; the CNN's maps, one tile per map of every layer.
    assert page.locator('.inside[data-family="mlp"] canvas.units').count() == 1
    assert page.locator('.inside[data-family="mlp"] canvas.template').count() == 8
    assert page.locator('.inside[data-family="cnn"] .fmap').count() == 4 * 8
    # Clicking a first-layer map enlarges it, with the kernel behind it; a deeper map has no single kernel.
    cnn = page.locator('.inside[data-family="cnn"]')
    assert cnn.locator(".enlarged canvas").count() == 0
    cnn.locator(".fmap").nth(3).click()
    assert cnn.locator(".enlarged canvas.big").is_visible()
    assert (
        cnn.locator(".enlarged canvas.big").bounding_box()["width"]
        > 4 * cnn.locator(".fmap").nth(3).bounding_box()["width"]
    )
    assert cnn.locator(".enlarged canvas.kernel").count() == 1
    # Keras numbers layer names per process (conv2d_9 where other models came first).
    assert re.match(r"conv2d(_\d+)? map 3 \(26x26\)", cnn.locator(".enlarged").inner_text())
    cnn.locator('.fmap[data-layer="2"]').first.click()
    assert cnn.locator(".enlarged canvas.kernel").count() == 0
    # Clear takes the inside away with the predictions.
    page.click("#clear")
    assert page.locator(".inside").count() == 0


def test_a_drop_cleared_while_the_browser_reads_it_is_never_shown_or_sent(live_server, browser_page, mini):
    """Clear in the same moment as a drop: the browser is still decoding the file (createImageBitmap answers later)
    when Clear runs; the pad must stay empty and nothing be sent for the file (pad.js: a stale drop is never told)."""
    page = browser_page
    page.goto(live_server + "/")
    page.wait_for_function("document.querySelectorAll('.model').length === 3")
    file_bytes = list(drawn_png(mini))
    act(
        page,
        f"""const file = new File([new Uint8Array({file_bytes})], "digit.png", {{type: "image/png"}});
        const transfer = new DataTransfer();
        transfer.items.add(file);
        document.getElementById("pad").dispatchEvent(new DragEvent("drop", {{dataTransfer: transfer, bubbles: true, cancelable: true}}));
        document.getElementById("clear").click()""",
    )
    page.wait_for_function("!window.mnistlab.busy && pad.decoding === 0")
    assert page.evaluate("pad.picture === null && window.mnistlab.sent === 0")
    assert page.inner_text("#status") == ""

"""The draw page in Chromium, for what a user walking through it met: cards that jumped below the fold when the
inside view arrived (and an enlarged CNN map that landed off-screen), a garbled line about how the models were
chosen, a dataset name ("mnist-mini") never said what it is, and (one site) the way back to the lab only where
there is a lab."""

import json

from test_page import SEVEN_DIAGONAL, SEVEN_TOP, draw_stroke, wait_for_inside, wait_until_settled

# Where each card and the parts of it a user reads are, in page coordinates (scrolling does not count).
CARD_BOXES = """() => [...document.querySelectorAll('.model')].map((card) => {
  const at = (element) => { const r = element.getBoundingClientRect(); return [r.x + scrollX, r.y + scrollY, r.width]; };
  return {family: card.dataset.family, card: at(card), guess: at(card.querySelector('.guess')), lastBar: at(card.querySelectorAll('.bar')[9])};
})"""

PAGE_Y = "(selector) => document.querySelector(selector).getBoundingClientRect().y + scrollY"


def assert_same_places(before, after, when):
    assert [card["family"] for card in before] == [card["family"] for card in after], when
    for old, new in zip(before, after):
        for part in ("card", "guess", "lastBar"):
            moved = [abs(a - b) for a, b in zip(old[part], new[part])]
            assert max(moved) <= 1, f"{when}: the {old['family']} card's {part} moved from {old[part]} to {new[part]}"


def test_the_cards_are_there_from_the_start_and_never_move_under_the_pen(live_server, browser_page):
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(live_server + "/")
    page.wait_for_function("document.title.includes('(')")  # /api/models answered
    before = page.evaluate(CARD_BOXES)
    # Before the first stroke: one card per model, at the size it keeps, and on screen.
    assert [card["family"] for card in before] == ["mlp", "cnn", "rnn"], before
    assert all(card["lastBar"][1] < 900 for card in before), before
    pad = page.locator("#pad").bounding_box()
    draw_stroke(page, SEVEN_TOP + SEVEN_DIAGONAL)
    wait_until_settled(page)
    assert page.locator(".model.answered").count() == 3
    assert_same_places(before, page.evaluate(CARD_BOXES), "after the answer")
    wait_for_inside(page)
    assert page.locator(".model .inside").count() == 3
    assert_same_places(before, page.evaluate(CARD_BOXES), "after the inside view")
    assert page.locator("#pad").bounding_box() == pad
    # A clicked CNN tile is enlarged right under the tiles, in view, and nothing else moves.
    cnn = page.locator('.inside[data-family="cnn"]')
    below = page.evaluate(PAGE_Y, '.inside[data-family="cnn"] .attribution')
    tile = cnn.locator(".fmap").nth(3)
    tile_y = page.evaluate(PAGE_Y, '.inside[data-family="cnn"] .fmap:nth-child(4)')
    tile.click()
    big = cnn.locator(".enlarged canvas.big")
    assert big.is_visible()
    box = big.bounding_box()  # in the window: scrolled into view where it was not
    assert box["y"] >= 0 and box["y"] + box["height"] <= 900, box
    assert 0 < page.evaluate(PAGE_Y, '.inside[data-family="cnn"] .enlarged canvas.big') - tile_y < 250
    assert page.evaluate(PAGE_Y, '.inside[data-family="cnn"] .attribution') == below, (
        "the enlarged map pushed the rest down"
    )
    assert_same_places(before, page.evaluate(CARD_BOXES), "after a tile was clicked")
    # Clear: the cards stay where they are, waiting for the next drawing.
    page.click("#clear")
    assert page.locator(".model.answered").count() == 0
    assert_same_places(before, page.evaluate(CARD_BOXES), "after Clear")


def models_answer(page, live_server, chosen_by, keep=None):
    """/api/models as the server answers it, with CHOSEN_BY (and only the models of the families in KEEP)."""
    answer = json.loads(page.evaluate("fetch('api/models').then((r) => r.text())"))
    answer["chosen_by"] = chosen_by
    if keep:
        answer["models"] = [model for model in answer["models"] if model["family"] in keep]
    return answer


def test_the_line_over_the_cards_says_which_runs_and_what_their_dataset_is(live_server, browser_page):
    page = browser_page
    page.goto(live_server + "/")
    page.wait_for_function("document.title.includes('(')")
    # As `mnistlab serve` words it when it chose the runs, and as the lab's draw page of run 13 does.
    for chosen_by, keep, expected in (
        ("run 13, opened from the lab", ("rnn",), "Model: run 13, opened from the lab; trained on mnist-mini"),
        (
            "best validation accuracy in the run store",
            None,
            "Models: per family, the run with the best validation accuracy in the run store; trained on mnist-mini",
        ),
    ):
        answer = models_answer(page, live_server, chosen_by, keep)
        body = json.dumps(answer)
        page.route(
            "**/api/models",
            lambda route, request, body=body: route.fulfill(status=200, content_type="application/json", body=body),
        )
        page.goto(live_server + "/")
        page.wait_for_function("document.title.includes('(')")
        line = page.locator("#chosen").inner_text()
        assert line.startswith(expected), line
        assert "the run with the run" not in line
        page.unroute("**/api/models")
    # mnist-mini is said once what it is, where the page first names it; each card's name says it on hover.
    assert "mnist-mini (the built-in 2,400-digit sample of MNIST" in page.locator("#chosen").inner_text()
    titles = page.eval_on_selector_all(".model .about .dataset", "names => names.map((n) => n.title)")
    assert titles and all("built-in 2,400-digit sample of MNIST" in title for title in titles), titles


def test_plain_serve_has_no_lab_to_link_back_to(live_server, browser_page):
    page = browser_page
    page.goto(live_server + "/")
    page.wait_for_function("document.title.includes('(')")
    assert not page.locator("#lab-link").is_visible()
    assert "the lab" not in page.locator("body").inner_text()

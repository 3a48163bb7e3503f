"""The lab and the draw page as one site: the lab's run page shows a model's inside as the draw page does (one
renderer, web/static/inside.js, loaded by both), and
the two link each other where they run together (the lab's header to the best runs' draw pages, a run page to its
draw page, the lab's draw page back to the lab)."""

import json

import pytest

from conftest import serving_in_thread
from mnistlab.core.config import Config
from mnistlab.record import rundir
from mnistlab.record.store import Store
from mnistlab.web import lab as lab_lib
from mnistlab.web import serve, templating


def test_both_pages_load_the_one_inside_view_from_static_files():
    """One renderer for both pages: the draw page and the lab load web/static/inside.js and inside.css, served by
    both apps (the lab's draw pages through serve's), and neither page carries a copy of it."""
    from fastapi.testclient import TestClient

    draw, lab = templating.page_html(serve.PAGE), templating.page_html(lab_lib.PAGE)
    for page in (draw, lab):
        assert (
            '<script src="static/inside.js"></script>' in page
            and '<link rel="stylesheet" href="static/inside.css">' in page
        )
        assert "function insideView(" not in page
    code = (serve.STATIC / "inside.js").read_text()
    assert "function insideView(" in code
    with TestClient(lab_lib.create_app(lab_lib.Lab(None, workers=0)), base_url="http://127.0.0.1:8100") as client:
        answer = client.get("/static/inside.js")
        assert answer.status_code == 200 and answer.text == code and "javascript" in answer.headers["content-type"]
        assert client.get("/static/inside.css").status_code == 200
        assert client.get("/static/../lab.html").status_code == 404


def register(store, run_dir, dataset):
    """A trained run directory, recorded in STORE as a finished run (as a sweep records it); its id."""
    config, preset = rundir.read_config(run_dir)
    metrics = json.loads((run_dir / rundir.METRICS_FILE).read_text())
    run_id = store.start_run(config, dataset.content_hash(), preset=preset, run_dir=run_dir)
    store.finish_run(run_id, "done", {**metrics, "run_dir": str(run_dir)})
    return run_id


@pytest.fixture(scope="module")
def lab_with_models(tmp_path_factory, trained_runs, mini):
    """A lab over the trained MLP, CNN and RNN, and a finished MLP run with a better validation accuracy and no saved model."""
    root = tmp_path_factory.mktemp("lab-with-models")
    with Store(root / "runs.db") as store:
        ids = {family: register(store, trained_runs[family], mini) for family in ("mlp", "cnn", "rnn")}
        config = Config(family="mlp", hidden_units=(32,), epochs=1, dataset="mnist-mini")
        no_model = store.start_run(config, mini.content_hash(), run_dir=root / "deleted-run")
        store.finish_run(
            no_model, "done", {"test_accuracy": 0.99, "val_accuracy": 0.99, "train_accuracy": 0.99, "seconds": 1.0}
        )
    lab = lab_lib.Lab(root / "runs.db", workers=0)
    for url in serving_in_thread(lab_lib.create_app(lab)):
        yield url, ids, no_model


# An element tree as a list of lines: tag, classes, a canvas' size and pixels (with PIXELS), a leaf's text.
SIGNATURE = """([root, pixels]) => [...root.querySelectorAll('*')].map((e) => [e.tagName, e.className,
  e.tagName === 'CANVAS' ? e.width + 'x' + e.height + (pixels ? ' ' + e.toDataURL() : '') : '', e.children.length ? '' : e.textContent].join(' | '))"""
RENDERED = f"(explanation) => ({SIGNATURE})([insideView(explanation, explanation.input, {{}}), true])"
SHOWN = f"() => ({SIGNATURE})([document.querySelector('#inside .inside'), false])"
EXPLAIN = "(runId) => fetch(`api/runs/${runId}/explain`, {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify({test_index: 0})}).then((r) => r.json())"

FAMILY_PARTS = {
    "rnn": ("canvas.beliefs", ".rowmark", ".digits"),  # the belief heat map its words speak of
    "mlp": ("canvas.units", "canvas.template"),  # the templates its words name
    "cnn": (".fmap", ".enlarged"),
}


@pytest.mark.parametrize("family", ["rnn", "mlp", "cnn"])
def test_a_run_pages_inside_view_is_the_draw_pages(lab_with_models, browser_page, family):
    url, ids, _ = lab_with_models
    run_id = ids[family]
    page = browser_page
    page.goto(f"{url}/#/run/{run_id}")
    page.wait_for_function(f"window.lab.insideShown && window.lab.insideShown.run === {run_id}", timeout=120_000)
    shown = page.locator("#inside .inside")
    assert shown.count() == 1 and shown.get_attribute("data-family") == family
    # The draw page's colours and colour scale, and what the words beside them describe.
    for part in (
        ".scale .colour-bar",
        ".attribution canvas.attribution-prediction",
        ".attribution canvas.attribution-runner-up",
        *FAMILY_PARTS[family],
    ):
        assert shown.locator(part).count() >= 1, part
    # The same answer drawn by each page: the same elements, words and pixels.
    explanation = page.evaluate(EXPLAIN, run_id)
    in_lab, lab_shown = page.evaluate(RENDERED, explanation), page.evaluate(SHOWN)
    page.goto(f"{url}/draw/{run_id}/")
    page.wait_for_function("document.title.includes('(')", timeout=120_000)
    in_draw_page = page.evaluate(RENDERED, explanation)
    assert in_lab == in_draw_page
    assert [line.split(" | ")[:2] for line in lab_shown] == [line.split(" | ")[:2] for line in in_draw_page]


def test_the_lab_and_its_draw_pages_link_each_other(lab_with_models, browser_page):
    url, ids, no_model = lab_with_models
    page = browser_page
    page.goto(url + "/")
    page.wait_for_function(
        "window.lab.listShown >= 1 && window.lab.drawLinks !== undefined && window.lab.drawLinks !== null",
        timeout=30_000,
    )
    # The header: per family, the best run (by validation accuracy) that has a model to draw with.
    links = page.eval_on_selector_all(
        "#draw-links a", "links => links.map((a) => [a.dataset.family, a.getAttribute('href')])"
    )
    assert links == [[family, f"draw/{ids[family]}/"] for family in ("mlp", "cnn", "rnn")], (links, no_model)
    # A run's page links its draw page; the draw page, opened from the lab, links back.
    rnn = ids["rnn"]
    page.goto(f"{url}/#/run/{rnn}")
    page.wait_for_function(f"window.lab.runShown === {rnn}")
    assert (
        page.locator("#draw-link").is_visible() and page.locator("#draw-link").get_attribute("href") == f"draw/{rnn}/"
    )
    page.click("#draw-link")
    page.wait_for_function("document.title.includes('(')", timeout=120_000)
    assert page.url == f"{url}/draw/{rnn}/"
    assert (
        page.locator("#chosen").inner_text().startswith(f"Model: run {rnn}, opened from the lab; trained on mnist-mini")
    )
    back = page.locator("#lab-link")
    assert back.is_visible() and back.inner_text() == "← the lab" and back.get_attribute("href") == "../../"
    back.click()
    page.wait_for_function("window.lab && window.lab.listShown >= 1")
    assert page.url == url + "/"

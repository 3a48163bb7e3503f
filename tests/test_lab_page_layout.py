"""The lab's runs view in Chromium, for what a user met: the book's figures in two formats ("98%" beside "98.5%"),
a runs table wider than a 1400 px window while runs trained, and a Launch button below some 30 knobs."""

import os

import numpy as np
import pytest

from conftest import made_up_history, record_run, serving_in_thread
from mnistlab.core import presets
from mnistlab.record.store import Store
from mnistlab.web import lab as lab_lib


@pytest.fixture
def lab_url(tmp_path):
    lab = lab_lib.Lab(tmp_path / "runs.db", workers=0)
    for url in serving_in_thread(lab_lib.create_app(lab)):
        yield lab, url


def record_setup(store, mini, preset, seeds, **knobs):
    for seed in seeds:
        config = presets.get(preset).build_config(seed=seed, dataset="mnist-mini", backend="jax", epochs=2, **knobs)
        record_run(store, config, preset, mini, 0.9 + seed / 100, made_up_history(np.random.default_rng(seed), 2, 0.8))


def open_runs(page, url, width=1400, height=900):
    page.set_viewport_size({"width": width, "height": height})
    page.goto(url + "/")
    page.wait_for_function("window.lab.listShown >= 1")


def test_the_book_figures_share_one_format(lab_url, mini, browser_page):
    lab, url = lab_url
    with Store(lab.store_path) as store:
        record_setup(store, mini, "listing-1.5.1", (0,))  # the book: 98.0 (JSON 98.0, which JavaScript prints "98")
        record_setup(store, mini, "listing-1.3.2", (0,))  # the book: 98.5
    open_runs(browser_page, url)
    figures = sorted(
        cell.split("\n")[0].strip()
        for cell in browser_page.eval_on_selector_all("#runs td.book", "cells => cells.map((c) => c.innerText)")
    )
    assert figures == ["98.0%", "98.5%"], figures


def test_the_runs_table_fits_a_1400_px_window_while_runs_train(lab_url, mini, browser_page):
    lab, url = lab_url
    with Store(lab.store_path) as store:
        record_setup(store, mini, "listing-1.5.1", (0, 1, 2), rnn_units=(48,), dropout_rate=0.1, learning_rate=0.003)
        # Three seeds training now (rows of a live process: this one; recorded after the lab started, so not reaped).
        for seed in (0, 1, 2):
            config = presets.get("table-1.3.2-row9").build_config(
                seed=seed,
                dataset="mnist-mini",
                epochs=6,
                limit=2000,
                dropout_rate=0.2,
                learning_rate=0.0005,
                batch_size=64,
            )
            store.start_run(config, mini.content_hash(), preset="table-1.3.2-row9", pid=os.getpid())
    page = browser_page
    open_runs(page, url)
    assert page.locator('.chip[data-status="running"]').count() == 3
    widths = page.evaluate(
        "[document.documentElement.scrollWidth, innerWidth, document.getElementById('runs').getBoundingClientRect().right]"
    )
    assert widths[0] <= widths[1] and widths[2] <= widths[1], widths
    # A long setup is cut, and whole on hover.
    for cell in page.locator("#runs td.setup").all():
        assert cell.get_attribute("title") == cell.text_content()


def test_launch_is_in_view_without_scrolling_in_a_900_px_high_window(lab_url, browser_page):
    _, url = lab_url
    page = browser_page
    open_runs(page, url, width=1280, height=900)
    button = page.locator("#launch-button").bounding_box()
    assert button["y"] + button["height"] <= 900, button
    # Beside it, what it will launch; the knobs are folded under "More settings", which says how many changed.
    assert page.inner_text("#launch-summary").startswith("1 run of listing-1.3.2 · seed 0 · 20 epochs")
    assert not page.locator("input[name=knob-dropout_rate]").is_visible()
    page.fill("input[name=seeds]", "0,1,2")
    page.click("#knobs-box summary")
    page.fill("input[name=knob-dropout_rate]", "0.2")
    assert page.inner_text("#launch-summary").startswith("3 runs of listing-1.3.2 · seeds 0, 1, 2")
    assert "changed: dropout_rate=0.2" in page.inner_text("#launch-summary") and "(1 changed)" in page.inner_text(
        "#knobs-box summary"
    )

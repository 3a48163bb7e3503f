"""The lab's page in Chromium: a bad value shown beside its field, a queued run cancelled, and (slow) a
two-seed launch watched live to its folded row, its run page and inside view, and its draw page.

The page's own state (window.lab: what it has shown) says when to look; every wait is for the state asserted.
"""

import pytest

from conftest import serving_in_thread
from mnistlab import lab as lab_lib
from mnistlab.store import Store


@pytest.fixture
def quiet_lab(tmp_path):
    """A lab that queues and shows, and trains nothing (no workers)."""
    lab = lab_lib.Lab(tmp_path / "runs.db", workers=0)
    for url in serving_in_thread(lab_lib.create_app(lab)):
        yield lab, url


def open_form(page, url):
    page.goto(url + "/")
    page.wait_for_function("window.lab.listShown >= 1")


def fill_small_launch(page, seeds):
    page.fill("input[name=seeds]", seeds)
    page.fill("input[name=epochs]", "1")
    page.fill("input[name=limit]", "600")
    page.select_option("select[name=dataset]", "mnist-mini")


def test_a_bad_value_is_shown_beside_its_field_and_queues_nothing(quiet_lab, browser_page):
    lab, url = quiet_lab
    open_form(browser_page, url)
    fill_small_launch(browser_page, "0")
    browser_page.fill("input[name=knob-dropout_rate]", "2")
    browser_page.click("#launch-button")
    beside = browser_page.locator('[data-error-for="dropout_rate"]')
    beside.wait_for(state="visible")
    assert beside.inner_text() == "dropout_rate must be in [0, 1), got 2.0"
    browser_page.fill("input[name=seeds]", "0,x")
    browser_page.fill("input[name=knob-dropout_rate]", "0.45")
    browser_page.click("#launch-button")
    browser_page.locator('[data-error-for="seeds"]').wait_for(state="visible")
    assert browser_page.locator('[data-error-for="dropout_rate"]').inner_text() == ""  # the older error went with its cause
    with Store(lab.store_path) as store:
        assert store.count() == 0


def test_a_queued_run_is_cancelled_from_the_runs_view(quiet_lab, browser_page):
    lab, url = quiet_lab
    open_form(browser_page, url)
    fill_small_launch(browser_page, "0")
    browser_page.click("#launch-button")
    chip = browser_page.locator('.chip[data-status="queued"]')
    chip.wait_for()
    chip.locator("button.cancel").click()
    chip.wait_for(state="detached")
    with Store(lab.store_path) as store:
        assert store.count() == 0


@pytest.mark.slow
def test_a_two_seed_launch_is_watched_live_and_folds_into_one_row(tmp_path, browser_page):
    lab = lab_lib.Lab(tmp_path / "runs.db", workers=2)
    for url in serving_in_thread(lab_lib.create_app(lab)):
        open_form(browser_page, url)
        fill_small_launch(browser_page, "0,1")
        browser_page.click("#launch-button")
        browser_page.wait_for_function("window.lab.launched.length === 2")
        first = browser_page.evaluate("window.lab.launched[0].run_id")
        browser_page.goto(f"{url}/#/run/{first}")
        # A point of the curve arrives from the worker while the run still goes (test evaluation and saving follow).
        browser_page.wait_for_function("window.lab.livePoints >= 1", timeout=240_000)
        assert browser_page.locator("#curve-loss circle.point").count() >= 1
        browser_page.wait_for_function(f"window.lab.reportShown === {first} && window.lab.insideShown && window.lab.insideShown.run === {first}", timeout=240_000)
        assert browser_page.locator("#status-chip").get_attribute("data-status") == "done"
        assert browser_page.locator("#mistakes figure").count() > 0 and browser_page.locator("#inside .layer").count() >= 2
        browser_page.goto(f"{url}/#/")
        browser_page.wait_for_function("[...document.querySelectorAll('#runs td.n')].some((cell) => cell.textContent === '2')", timeout=240_000)
        assert browser_page.locator("#runs tbody tr").count() == 1
        browser_page.goto(f"{url}/draw/{first}/")
        browser_page.wait_for_function("document.getElementById('chosen').textContent.includes('opened from the lab')", timeout=120_000)

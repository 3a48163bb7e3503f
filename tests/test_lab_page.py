"""The lab's page in Chromium: a bad value shown beside its field, a queued run cancelled, setups compared with
their seed bands drawn and a table downloaded as the CLI writes it, and (slow) a two-seed launch watched live
(each point on screen within 2 s of its epoch's end) to its folded row, its run page and inside view, and its draw page.

The page's own state (window.lab: what it has shown) says when to look; every wait is for the state asserted.
"""

import pathlib

import numpy as np
import pytest

from conftest import made_up_dynamics, made_up_history, record_run, reproduced_table, run_cli, serving_in_thread
from mnistlab.analysis import bands
from mnistlab.core import fileio, paths, presets
from mnistlab.record.store import Store
from mnistlab.web import lab as lab_lib

TABLE = "table-1.4.1"


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
    browser_page.click("#knobs-box summary")  # the knobs are folded under "More settings"
    browser_page.fill("input[name=knob-dropout_rate]", "2")
    browser_page.click("#knobs-box summary")  # folded again: the error opens them to show its field
    assert "(1 changed)" in browser_page.inner_text(
        "#knobs-box summary"
    ) and "changed: dropout_rate=2" in browser_page.inner_text("#launch-summary")
    browser_page.click("#launch-button")
    beside = browser_page.locator('[data-error-for="dropout_rate"]')
    beside.wait_for(state="visible")
    assert beside.inner_text() == "dropout_rate must be in [0, 1), got 2.0"
    browser_page.fill("input[name=seeds]", "0,x")
    browser_page.fill("input[name=knob-dropout_rate]", "0.45")
    browser_page.click("#launch-button")
    browser_page.locator('[data-error-for="seeds"]').wait_for(state="visible")
    assert (
        browser_page.locator('[data-error-for="dropout_rate"]').inner_text() == ""
    )  # the older error went with its cause
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


def band_paths(page, metric):
    return page.eval_on_selector_all(
        f"#bands-{metric} path.band", "paths => paths.map((path) => [path.dataset.setup, path.getAttribute('d')])"
    )


def test_setups_are_compared_with_their_seed_bands_and_a_table_downloads_as_the_cli_writes_it(
    tmp_path, mini, browser_page
):
    reproduced_table(mini)  # Table 1.4.1's four rows x 3 seeds, constructed (no training), and its table files
    rng = np.random.default_rng(5)
    with Store() as index:  # rows 1 and 2 with their dynamics, made up as the recorder writes them
        for row, level in ((1, 1.0), (2, 2.0)):
            for run in index.runs(preset=f"{TABLE}-row{row}"):
                fileio.write_json(pathlib.Path(run["run_dir"]) / "dynamics.json", made_up_dynamics(rng, 2, level=level))
    with Store() as index:  # and a setup of two seeds: numbers, no verdict
        for seed in (0, 1):
            config = presets.get("listing-1.3.2").build_config(seed=seed, dataset="mnist-mini", backend="jax", epochs=2)
            record_run(
                index,
                config,
                "listing-1.3.2",
                mini,
                0.8 + 0.01 * seed,
                made_up_history(np.random.default_rng(seed), 2, 0.7),
            )
    problems = []
    browser_page.on("pageerror", lambda error: problems.append(str(error)))
    browser_page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    lab = lab_lib.Lab(paths.store_path(), workers=0)
    for url in serving_in_thread(lab_lib.create_app(lab)):
        # From the runs view: two rows ticked, compared.
        browser_page.goto(url + "/")
        browser_page.wait_for_function("window.lab.listShown >= 1")
        # Runs on mnist-mini: each row shows the book's figure greyed with why, and no row says "outside" (issue 31).
        assert browser_page.locator(
            '#runs td.book[data-comparable="false"]'
        ).count() == 5 and "outside" not in browser_page.inner_text("#runs")
        for preset in (f"{TABLE}-row1", f"{TABLE}-row2"):
            browser_page.locator(
                "#runs tbody tr", has_text=presets.describe(presets.get(preset).build_config(), preset)
            ).first.locator("input.pick").check()
        browser_page.click("#compare-picked")
        browser_page.wait_for_function("window.lab.compareShown !== null")
        assert browser_page.evaluate("window.lab.compareShown") == 2, browser_page.inner_text("#compare-error")
        expected = bands.compare_setups([f"{TABLE}-row1", f"{TABLE}-row2"], dataset="mnist-mini", backend="jax")
        for metric in ("val_accuracy", "loss"):
            drawn = band_paths(browser_page, metric)
            # One shaded band per setup, over both epochs: an outline of 2 upper and 2 lower points.
            assert [setup for setup, _ in drawn] == ["0", "1"] and all(
                d.startswith("M") and d.count("L") == 3 and d.endswith("Z") for _, d in drawn
            ), drawn
        assert browser_page.locator("#bands-val_accuracy polyline.mean").count() == 2
        # Inside training over seeds: the kernel's three figures and the ReLU's never-firing share, each setup's
        # band from epoch 0 to 2 (3 upper and 3 lower points), the means apart as the made-up levels are.
        assert browser_page.locator("#dynamics-bands svg[data-dynamics]").count() == 4
        norms = browser_page.locator('#dynamics-bands svg[data-dynamics="weights:conv2d/kernel:norm"] path.band')
        assert norms.count() == 2 and all(norms.nth(i).get_attribute("d").count("L") == 5 for i in range(2))
        assert browser_page.locator('svg[data-dynamics="layers:conv2d:dead"] polyline.mean').count() == 2
        verdict = browser_page.locator("#compare-pairs td.verdict")
        assert verdict.inner_text() == expected["comparisons"][0]["verdict"] and verdict.get_attribute(
            "data-significant"
        ) in ("true", "false")
        first_setup = browser_page.locator('#compare-setups tr[data-setup="0"]').inner_text()
        assert "Table 1.4.1 row 1" in first_setup and f"{expected['setups'][0]['params']:,}" in first_setup
        assert browser_page.locator('#compare-setups tr[data-setup="0"] a[href^="#/run/"]').count() == 3
        # Two seeds against three: the numbers, and no verdict (the page says so, as the CLI does).
        browser_page.goto(f"{url}/#/compare?setup={TABLE}-row1&setup=listing-1.3.2")
        browser_page.wait_for_function(
            "document.querySelectorAll('#compare-pairs td.verdict').length === 1 && window.lab.compareShown === 2"
        )
        verdict = browser_page.locator("#compare-pairs td.verdict")
        assert verdict.get_attribute("data-significant") == "null" and verdict.inner_text().startswith(
            "no verdict: 3 and 2 runs"
        )
        # Two seeds of 2 epochs on mnist-mini: the book's figure greyed, with why, and no verdict against it.
        book_cell = browser_page.locator('#compare-setups tr[data-setup="1"] td.book')
        assert (
            book_cell.get_attribute("data-comparable") == "false" and "98.5% (Listing 1.3.2)" in book_cell.inner_text()
        )
        assert (
            "not comparable: book: MNIST, 20 epochs; this: mnist-mini, 2 epochs, 2 seeds (a verdict needs 3)"
            in book_cell.inner_text()
        )
        # The tables view: each row's runs linked, and the CSV button's file is the CLI's, byte for byte.
        browser_page.goto(f"{url}/#/tables")
        browser_page.wait_for_function("window.lab.tablesShown !== null")
        box = browser_page.locator(f'section[data-table="{TABLE}"]')
        run_links = box.locator("a.run-link")
        assert run_links.count() == 12 and run_links.first.get_attribute("href").startswith("#/run/")
        with browser_page.expect_download() as download:
            box.locator('a.download[data-format="csv"]').click()
        downloaded = download.value.path().read_bytes()
        assert download.value.suggested_filename.endswith(".csv")
        out = tmp_path / "cli.csv"
        result = run_cli("report", TABLE, "--format", "csv", "--out", out)
        assert result.returncode == 0, result.stderr
        assert downloaded == out.read_bytes()
        # A cell's run link opens that run's page.
        run_id = int(run_links.first.get_attribute("href").rsplit("/", 1)[1])
        run_links.first.click()
        browser_page.wait_for_function(f"window.lab.runShown === {run_id}")
    assert problems == []


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
        # Live: points came from the run's events as it trained (livePoints counts no replayed snapshot). How many
        # seconds after the epoch's end is the benchmark's to say, not a test's (machines differ twice over).
        delays = browser_page.evaluate("window.lab.pointDelays")
        assert delays and all(delay >= -0.5 for delay in delays), delays
        # Inside training, live: the epoch's measurements shown as its event arrived, a row per kernel (the listing's
        # two hidden layers and logits), its norm, update and gradient at epochs 0 and 1 (no update before epoch 1),
        # the ReLUs' never-firing share.
        from playwright.sync_api import expect

        browser_page.wait_for_function("window.lab.dynamicsLive >= 1", timeout=240_000)
        # Waited for, not read once: the run may end just then, and the finished run's view is drawn anew.
        expect(browser_page.locator("#dynamics-weights tr[data-weight]")).to_have_count(3)
        expect(browser_page.locator("#dynamics-weights tr[data-weight] svg.sparkline")).to_have_count(9)
        expect(browser_page.locator("#dynamics-weights svg.sparkline circle.point")).to_have_count(3 * (2 + 1 + 2))
        expect(browser_page.locator("#dynamics-layers td", has_text="never firing")).to_have_count(2)
        browser_page.wait_for_function(
            f"window.lab.reportShown === {first} && window.lab.insideShown && window.lab.insideShown.run === {first}",
            timeout=240_000,
        )
        assert browser_page.locator("#status-chip").get_attribute("data-status") == "done"
        assert (
            browser_page.locator("#mistakes figure").count() > 0
            and browser_page.locator("#inside .inside").count() == 1
        )
        # A digit drawn on the run page's own pad: its inside view replaces the test digit's. (The pad is below
        # the fold: scrolled to first, as a user would; the mouse reaches only what is in the window.)
        browser_page.locator("#lab-pad").scroll_into_view_if_needed()
        box = browser_page.locator("#lab-pad").bounding_box()
        browser_page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.2)
        browser_page.mouse.down()
        for step in range(1, 11):
            browser_page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * (0.2 + 0.06 * step))
        browser_page.mouse.up()
        browser_page.wait_for_function(
            f"window.lab.insideShown.run === {first} && window.lab.insideShown.drawn", timeout=120_000
        )
        assert browser_page.locator("#inside p").first.text_content().startswith("Your drawing: the MLP says")
        browser_page.click("#pad-clear")  # the drawing gone, its inside view goes too
        browser_page.wait_for_function(
            "window.lab.insideShown === null && document.querySelectorAll('#inside .inside').length === 0"
        )
        browser_page.goto(f"{url}/#/")
        browser_page.wait_for_function(
            "[...document.querySelectorAll('#runs td.n')].some((cell) => cell.textContent === '2')", timeout=240_000
        )
        assert browser_page.locator("#runs tbody tr").count() == 1
        browser_page.goto(f"{url}/draw/{first}/")
        browser_page.wait_for_function(
            "document.getElementById('chosen').textContent.includes('opened from the lab')", timeout=120_000
        )

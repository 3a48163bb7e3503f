"""Reports and teaching figures: the numbers behind them, and the HTML as a browser shows it."""

import numpy as np
import pytest

from conftest import run_main
from mnistlab.core import presets
from mnistlab.outputs import figures, report


def test_one_minimum_example_and_minimum():
    facts = presets.book()["gradient_descent_figures"]["one_minimum"]
    coefficients = np.array(
        presets.facts()["gradient_descent"]["one_minimum"]["coefficients"], dtype=float
    )  # checked against the book by test_book_facts
    # The book's step: x = -0.5, gradient -2, learning rate 0.01 -> -0.48.
    assert np.polyval(np.polyder(coefficients), -0.5) == pytest.approx(-2.0)
    assert figures.gradient_descent_path(coefficients, -0.5, 0.01, steps=1)[1] == pytest.approx(-0.48)
    good = figures.gradient_descent_path(coefficients, -0.5, figures.ONE_MINIMUM_RATES["good (0.3)"], steps=60)
    assert good[-1] == pytest.approx(facts["minimum"]["x"], abs=1e-6)
    assert np.polyval(coefficients, good[-1]) == pytest.approx(facts["minimum"]["y"])
    too_large = figures.gradient_descent_path(
        coefficients, -0.5, figures.ONE_MINIMUM_RATES["too large (1.02)"], steps=60
    )
    assert abs(too_large[-1] - 0.5) > abs(-0.5 - 0.5)  # moves away: diverges


def test_two_minima_small_rate_local_larger_rate_global():
    facts = presets.book()["gradient_descent_figures"]["two_minima"]
    coefficients = np.array(presets.facts()["gradient_descent"]["two_minima"]["coefficients"], dtype=float)
    small, larger = (
        figures.gradient_descent_path(coefficients, figures.TWO_MINIMA_START, rate, steps=500)[-1]
        for rate in figures.TWO_MINIMA_RATES.values()
    )
    assert round(small, 2) == facts["minima_x"][0] == -1.51
    assert round(larger, 2) == facts["global"] == 1.66


def test_activations_match_their_formulas():
    x = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(figures.activation("relu", x), [0, 0, 3])
    np.testing.assert_allclose(figures.activation("sigmoid", np.array([0.0])), [0.5])
    np.testing.assert_allclose(figures.activation("selu", np.array([1.0])), [1.0507009873554805])
    np.testing.assert_allclose(figures.activation("softplus", np.array([0.0])), [np.log(2)])


def test_figures_command_writes_four_pngs(tmp_path, capsys):
    result = run_main(capsys, "figures", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    for name in figures.FIGURES:
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_confusion_and_mistakes():
    labels = np.array([0, 1, 2, 2])
    probabilities = np.array([[0.9, 0.1, 0], [0.2, 0.8, 0], [0.6, 0.1, 0.3], [0.1, 0.7, 0.2]])
    matrix = report.confusion_matrix(labels, probabilities.argmax(axis=1))
    assert matrix[2, 0] == 1 and matrix[2, 1] == 1 and matrix.trace() == 2
    np.testing.assert_allclose(report.per_class_accuracy(matrix)[:3], [1, 1, 0])
    assert list(report.confident_mistakes(probabilities, labels)) == [3, 2]  # 0.7 before 0.6


def _images_loaded(page, path):
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page.evaluate("Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)")


def test_run_report_opens_in_chromium(tmp_path, capsys, browser_page, mini):
    """A run's report, as a browser shows it: curves, its dynamics, confusion matrix, mistakes, per-class accuracy.

    (A table's report, from a real reproduction, is opened in Chromium by the README tour's test.)
    """
    from mnistlab.ml import run_model

    run_dir = tmp_path / "run"
    run_model.train_and_save(
        presets.get("listing-1.3.2").build_config(epochs=2, hidden_units=(32, 32), limit=600),
        dataset=mini,
        run_dir=run_dir,
        verbose=0,
        log=lambda message: None,
    )
    run_html = tmp_path / "run.html"
    result = run_main(capsys, "report", run_dir, "--out", run_html)
    assert result.returncode == 0, result.stderr
    loaded = _images_loaded(browser_page, run_html)
    assert len(loaded) == 5 and all(loaded)
    text = browser_page.inner_text("body")
    assert "Per-class accuracy" in text and "Confusion matrix" in text and "Inside training" in text
    # No header row without a name: the run's own table is name and value rows (docs/report-screenshot.png had one).
    assert (
        browser_page.evaluate(
            "() => [...document.querySelectorAll('th')].filter((th) => !th.textContent.trim()).length"
        )
        == 0
    )

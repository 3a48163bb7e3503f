"""Reports and teaching figures: the numbers behind them, and the HTML as a browser shows it."""

import json

import numpy as np
import pytest

from conftest import run_cli
from mnistlab import figures, presets, report


def test_polynomials_parse_from_the_book():
    facts = presets.book()["gradient_descent_figures"]
    np.testing.assert_allclose(figures.parse_polynomial(facts["one_minimum"]["function"]), [1, -1, -1])
    np.testing.assert_allclose(figures.parse_polynomial(facts["two_minima"]["function"]), [1, -0.2, -5, 0, 4])


def test_one_minimum_example_and_minimum():
    facts = presets.book()["gradient_descent_figures"]["one_minimum"]
    coefficients = figures.parse_polynomial(facts["function"])
    # The book's step: x = -0.5, gradient -2, learning rate 0.01 -> -0.48.
    assert np.polyval(np.polyder(coefficients), -0.5) == pytest.approx(-2.0)
    assert figures.gradient_descent_path(coefficients, -0.5, 0.01, steps=1)[1] == pytest.approx(-0.48)
    good = figures.gradient_descent_path(coefficients, -0.5, figures.ONE_MINIMUM_RATES["good (0.3)"], steps=60)
    assert good[-1] == pytest.approx(facts["minimum"]["x"], abs=1e-6)
    assert np.polyval(coefficients, good[-1]) == pytest.approx(facts["minimum"]["y"])
    too_large = figures.gradient_descent_path(coefficients, -0.5, figures.ONE_MINIMUM_RATES["too large (1.02)"], steps=60)
    assert abs(too_large[-1] - 0.5) > abs(-0.5 - 0.5)  # moves away: diverges


def test_two_minima_small_rate_local_larger_rate_global():
    facts = presets.book()["gradient_descent_figures"]["two_minima"]
    coefficients = figures.parse_polynomial(facts["function"])
    small, larger = (figures.gradient_descent_path(coefficients, figures.TWO_MINIMA_START, rate, steps=500)[-1] for rate in figures.TWO_MINIMA_RATES.values())
    assert round(small, 2) == facts["minima_x"][0] == -1.51
    assert round(larger, 2) == facts["global"] == 1.66


def test_activations_match_their_formulas():
    x = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(figures.activation("relu", x), [0, 0, 3])
    np.testing.assert_allclose(figures.activation("sigmoid", np.array([0.0])), [0.5])
    np.testing.assert_allclose(figures.activation("selu", np.array([1.0])), [1.0507009873554805])
    np.testing.assert_allclose(figures.activation("softplus", np.array([0.0])), [np.log(2)])


def test_figures_command_writes_four_pngs(tmp_path):
    result = run_cli("figures", "--out", tmp_path)
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


def test_run_and_table_reports_open_in_chromium(tmp_path, browser_page):
    store = tmp_path / "runs.db"
    reproduced = run_cli("reproduce", "table-1.5.1", "--seeds", "2", "--epochs", "2", "--limit", "300", "--dataset", "mnist-mini", "--workers", "2", "--store", store)
    assert reproduced.returncode == 0, reproduced.stderr

    table_html = tmp_path / "table.html"
    result = run_cli("report", "table-1.5.1", "--out", table_html, "--store", store)
    assert result.returncode == 0, result.stderr
    loaded = _images_loaded(browser_page, table_html)
    # Book comparison, 4 rows of curves, confusion, mistakes, per-class.
    assert len(loaded) == 8 and all(loaded)
    text = browser_page.inner_text("body")
    assert "Comparison with the book" in text and "best mean validation accuracy" in text
    assert len(list((tmp_path / "table_files").glob("*.png"))) == 8

    table_json = json.loads(next((tmp_path / "tables").glob("table-1.5.1-*.json")).read_text())
    run_dir = json.loads(run_cli("runs", "show", str(table_json["rows"][0]["run_ids"][0]), "--store", store, "--json").stdout)["run_dir"]
    run_html = tmp_path / "run.html"
    result = run_cli("report", run_dir, "--out", run_html)
    assert result.returncode == 0, result.stderr
    loaded = _images_loaded(browser_page, run_html)
    assert len(loaded) == 4 and all(loaded)
    assert "Per-class accuracy" in browser_page.inner_text("body")

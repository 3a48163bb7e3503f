"""The facts code computes with (book/facts.json) say what the book's wording (book/chapter1.json) says.

The code reads fields, never prose; these tests read the prose, independently,
and check every field against it.
"""

import re

import numpy as np
import pytest

from mnistlab.core import presets
from mnistlab.outputs import figures


def _polynomial(text):
    """'y = x^4 - 0.2x^3 - 5x^2 + 4' -> coefficients, highest power first."""
    terms = re.findall(r"([+-]?[0-9.]*)(x(?:\^(\d+))?)?", text.split("=", 1)[1].replace(" ", ""))
    coefficients = {}
    for number, has_x, power in terms:
        if not number and not has_x:
            continue
        value = float(number) if number not in ("", "+", "-") else (-1.0 if number == "-" else 1.0)
        degree = int(power) if power else (1 if has_x else 0)
        coefficients[degree] = coefficients.get(degree, 0.0) + value
    return [coefficients.get(degree, 0.0) for degree in range(max(coefficients), -1, -1)]


def test_every_regularizer_cell_of_the_tables_is_declared_with_its_value():
    cells = {
        dict(zip(table["columns"], row))["regularizer"]
        for table in presets.book()["tables"].values()
        for row in table["rows"]
        if "regularizer" in table["columns"]
    }
    declared = presets.facts()["regularizers"]
    assert cells == set(declared)
    for cell, keys in declared.items():
        match = re.fullmatch(r"(dropout|l2)\(([0-9.]+)\)", cell)
        expected = (
            {}
            if cell == "none"
            else {"dropout_rate" if match.group(1) == "dropout" else "kernel_l2": float(match.group(2))}
        )
        assert keys == expected, cell


def test_selu_constants_are_the_books():
    constants = dict(re.findall(r"([ka]) = ([0-9.]+)", presets.book()["activations"]["selu"]))
    selu = presets.facts()["selu"]
    assert selu["scale"] == float(constants["k"]) and selu["alpha"] == float(constants["a"])
    x = np.array([-1.0, 2.0])
    assert figures.activation("selu", x) == pytest.approx(
        [selu["scale"] * selu["alpha"] * (np.exp(-1) - 1), selu["scale"] * 2]
    )


@pytest.mark.parametrize("name", ["one_minimum", "two_minima"])
def test_gradient_descent_polynomials_are_the_books(name):
    text = presets.book()["gradient_descent_figures"][name]["function"]
    assert presets.facts()["gradient_descent"][name]["coefficients"] == _polynomial(text)


def test_the_worked_example_is_the_books_and_holds():
    example = presets.book()["gradient_descent_figures"]["one_minimum"]["example"]
    start, slope, rate, after = (float(v) for v in re.findall(r"-?[0-9]+\.?[0-9]*", example))
    fields = presets.facts()["gradient_descent"]["one_minimum"]
    assert (fields["start"], fields["slope"], fields["learning_rate"], fields["next"]) == (start, slope, rate, after)
    path = figures.gradient_descent_path(
        np.array(fields["coefficients"], dtype=float), fields["start"], fields["learning_rate"], steps=1
    )
    assert path[1] == pytest.approx(fields["next"])

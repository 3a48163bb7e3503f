"""The chapter's teaching figures: activations, gradient descent, input reshaping.

The functions, minima and the worked example come from the book's facts
(`book/chapter1.json`); `gradient_descent_path` recomputes them so that the
figures show what the numbers say.
"""

import pathlib
import re
import textwrap

import numpy as np

from mnistlab.core import presets
from mnistlab.outputs import plots

ACTIVATION_NAMES = ("relu", "elu", "selu", "softplus", "sigmoid", "tanh")
# Learning rates for the one-minimum figure: too small, good, too large (diverges: > 1 for curvature 2).
ONE_MINIMUM_RATES = {"too small (0.01)": 0.01, "good (0.3)": 0.3, "too large (1.02)": 1.02}
# Two minima, started left of both: a small rate settles in the nearer, local
# minimum; a larger one jumps over the bump into the global minimum.
TWO_MINIMA_START = -3.0
TWO_MINIMA_RATES = {"small (0.01)": 0.01, "larger (0.04)": 0.04}


def gradient_descent_path(coefficients, start, learning_rate, steps=60):
    """x_{k+1} = x_k - learning_rate * dy/dx(x_k), stopped early if it flies off."""
    derivative = np.polyder(coefficients)
    path = [start]
    for _ in range(steps):
        x = path[-1] - learning_rate * np.polyval(derivative, path[-1])
        path.append(float(x))
        if abs(x) > 1e3:
            break
    return np.array(path)


def activation(name, x):
    """The activation functions of Table 1.3.1, with SELU's constants as the book gives them (facts.json)."""
    if name == "relu":
        return np.maximum(0, x)
    if name == "softplus":
        return np.log1p(np.exp(x))
    if name == "sigmoid":
        return 1 / (1 + np.exp(-x))
    if name == "tanh":
        return np.tanh(x)
    if name == "elu":
        return np.where(x >= 0, x, 1.0 * (np.exp(x) - 1))
    if name == "selu":
        selu = presets.facts()["selu"]
        return selu["scale"] * np.where(x >= 0, x, selu["alpha"] * (np.exp(x) - 1))
    raise ValueError(f"unknown activation {name!r}")


def activations_figure(path):
    plt = plots.plt
    formulas = presets.book()["activations"]
    x = np.linspace(-4, 4, 401)
    figure, axes = plt.subplots(2, 3, figsize=(12, 7))
    for axis, name in zip(axes.flat, ACTIVATION_NAMES):
        axis.plot(x, activation(name, x), color="tab:blue")
        axis.axhline(0, color="gray", linewidth=0.5)
        axis.axvline(0, color="gray", linewidth=0.5)
        formula = formulas[name] if name != "elu" else formulas[name].replace("a tunable", "a = 1")
        # SELU's constants are printed to 31 digits in the book; 4 are enough to read.
        formula = re.sub(r"\d+\.\d{5,}", lambda match: f"{float(match.group()):.4f}", formula)
        axis.set_title(f"{name}\n" + "\n".join(textwrap.wrap(formula, 40)), fontsize=9)
        axis.grid(alpha=0.3)
    figure.suptitle("Activation functions (Table 1.3.1)")
    figure.tight_layout()
    return plots.save_figure(figure, path)


def one_minimum_figure(path):
    plt = plots.plt
    facts = presets.book()["gradient_descent_figures"]["one_minimum"]
    fields = presets.facts()["gradient_descent"]["one_minimum"]
    coefficients = np.array(fields["coefficients"], dtype=float)
    start, rate = fields["start"], fields["learning_rate"]
    x = np.linspace(-1.5, 2.5, 300)
    figure, axis = plt.subplots(figsize=(8, 5.5))
    axis.plot(x, np.polyval(coefficients, x), color="black", label=facts["function"])
    for (label, learning_rate), color in zip(ONE_MINIMUM_RATES.items(), ("tab:orange", "tab:green", "tab:red")):
        path_x = gradient_descent_path(coefficients, start, learning_rate, steps=12)
        path_x = path_x[np.abs(path_x) < 2.5]
        axis.plot(
            path_x, np.polyval(coefficients, path_x), "o-", color=color, markersize=4, label=f"learning rate {label}"
        )
    minimum = facts["minimum"]
    axis.plot(
        [minimum["x"]], [minimum["y"]], "k*", markersize=14, label=f"minimum y = {minimum['y']} at x = {minimum['x']}"
    )
    first_step = gradient_descent_path(coefficients, start, rate, steps=1)
    # The book's worked first step, recomputed, as a note under the plot (clear of the legend).
    axis.plot(
        [start], [np.polyval(coefficients, start)], "o", markersize=10, markerfacecolor="none", markeredgecolor="black"
    )
    figure.text(
        0.5,
        -0.02,
        f"Circled, the book's worked example: {facts['example']} (computed: {first_step[0]:g} -> {first_step[1]:g})",
        ha="center",
        va="top",
        fontsize=8,
        wrap=True,
    )
    axis.set_xlabel("x")
    axis.set_ylabel("y")
    axis.set_ylim(-2, 5)
    axis.set_title("Gradient descent: too small, good and too large learning rates (12 steps)")
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axis.grid(alpha=0.3)
    return plots.save_figure(figure, path)


def two_minima_figure(path):
    plt = plots.plt
    facts = presets.book()["gradient_descent_figures"]["two_minima"]
    coefficients = np.array(presets.facts()["gradient_descent"]["two_minima"]["coefficients"], dtype=float)
    x = np.linspace(-3.1, 2.6, 400)
    figure, axis = plt.subplots(figsize=(8, 5.5))
    axis.plot(x, np.polyval(coefficients, x), color="black", label=facts["function"])
    for (label, learning_rate), color in zip(TWO_MINIMA_RATES.items(), ("tab:orange", "tab:green")):
        path_x = gradient_descent_path(coefficients, TWO_MINIMA_START, learning_rate, steps=200)
        axis.plot(
            path_x[:40],
            np.polyval(coefficients, path_x[:40]),
            "o-",
            color=color,
            markersize=3,
            alpha=0.8,
            label=f"learning rate {label}: ends at x = {path_x[-1]:.2f}",
        )
    curve = np.polyval(coefficients, x)
    # Room under the lower minimum for the notes, which sit centred under their stars, clear of the x axis.
    axis.set_ylim(curve.min() - 0.12 * np.ptp(curve), curve.max() + 0.05 * np.ptp(curve))
    for minimum_x in facts["minima_x"]:
        kind = "global" if minimum_x == facts["global"] else "local"
        axis.plot([minimum_x], [np.polyval(coefficients, minimum_x)], "k*", markersize=12)
        axis.annotate(
            f"{kind} minimum x = {minimum_x}",
            (minimum_x, np.polyval(coefficients, minimum_x)),
            textcoords="offset points",
            xytext=(0, -10),
            ha="center",
            va="top",
            fontsize=8,
        )
    axis.set_xlabel("x")
    axis.set_ylabel("y")
    axis.set_title(f"Two minima, started at x = {TWO_MINIMA_START}: {facts['note']}")
    axis.legend(fontsize=8, loc="upper center")
    axis.grid(alpha=0.3)
    return plots.save_figure(figure, path)


def reshaping_figure(path, image=None, label=None):
    """One digit as the MLP (784-vector), CNN (28x28x1) and RNN (28 steps x 28) see it."""
    plt = plots.plt
    if image is None:
        from mnistlab.ml import data

        mini = data.load_mnist_mini()
        image, label = mini.x_test[0], int(mini.y_test[0])
    figure = plt.figure(figsize=(12, 5))
    grid = figure.add_gridspec(2, 3, height_ratios=[1, 5])
    vector_axis = figure.add_subplot(grid[0, :])
    vector_axis.imshow(image.reshape(1, 784), cmap="gray", aspect="auto")
    vector_axis.set_yticks([])
    vector_axis.set_title(
        f"MLP input: the digit {label} flattened to a 784-vector (x.reshape(-1, 784) / 255)", fontsize=9
    )
    cnn_axis = figure.add_subplot(grid[1, 0])
    cnn_axis.imshow(image, cmap="gray")
    cnn_axis.set_title("CNN input: 28 x 28 x 1 image\n(x.reshape(-1, 28, 28, 1) / 255)", fontsize=9)
    rnn_axis = figure.add_subplot(grid[1, 1])
    rnn_axis.imshow(image, cmap="gray", aspect="auto")
    rnn_axis.set_yticks(range(0, 28, 3))
    rnn_axis.set_ylabel("timestep (one image row per step)")
    rnn_axis.set_xlabel("28 features per step")
    rnn_axis.set_title("RNN input: 28 timesteps x 28 features\n(x.reshape(-1, 28, 28) / 255)", fontsize=9)
    values_axis = figure.add_subplot(grid[1, 2])
    steps = range(0, 28, 4)
    baselines = [-step / 4 * 1.2 for step in steps]  # top to bottom, like the rows
    for step, baseline in zip(steps, baselines):
        values_axis.plot(image[step] / 255 + baseline, label=f"t={step + 1}")
    values_axis.set_title("Some RNN timesteps as the 28 values fed at that step", fontsize=9)
    # Each line named at its own baseline (no legend to sit over the lines).
    values_axis.set_yticks(baselines, [f"t={step + 1}" for step in steps], fontsize=8)
    figure.tight_layout()
    return plots.save_figure(figure, path)


FIGURES = {
    "activations.png": activations_figure,
    "gradient-descent-one-minimum.png": one_minimum_figure,
    "gradient-descent-two-minima.png": two_minima_figure,
    "input-reshaping.png": reshaping_figure,
}


def write_all(out_dir):
    out_dir = pathlib.Path(out_dir)
    return [builder(out_dir / name) for name, builder in FIGURES.items()]

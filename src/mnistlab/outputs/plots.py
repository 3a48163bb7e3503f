"""Figures drawn with matplotlib (headless), each saved atomically."""

import matplotlib

matplotlib.use("Agg")  # no display on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mnistlab.core import fileio  # noqa: E402


def save_figure(figure, path):
    """Save and close a figure; the format follows the file extension."""
    with fileio.atomic_path(path) as temp_path:
        figure.savefig(temp_path, bbox_inches="tight", dpi=100)
    plt.close(figure)
    return path


def sample_grid(images, labels, path, seed=0, rows=5, columns=5):
    """Listing 1.3.1's figure: rows x columns random training digits with their labels."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(images), size=min(rows * columns, len(images)), replace=False)
    figure = plt.figure(figsize=(columns, rows + 0.4))
    for position, index in enumerate(chosen):
        axes = figure.add_subplot(rows, columns, position + 1)
        axes.imshow(images[index], cmap="gray")
        axes.set_title(f"{int(labels[index])}", fontsize=10)
        axes.axis("off")
    figure.tight_layout()
    return save_figure(figure, path)

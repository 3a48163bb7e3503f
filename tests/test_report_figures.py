"""Learning curves that show what a short run did: a marker per epoch, and whole-number epoch ticks.

A 1-epoch run is one point per curve; drawn as a line alone it is an empty
plot. A 2-epoch run's axis must not read 1.2, 1.4, ...: there is no epoch 1.2.
The figures are inspected as matplotlib drew them (the Axes behind the saved PNG).
"""

import numpy as np
import pytest


def history(epochs, seed=0):
    """One run's history rows, as the store gives them: loss and accuracy, train and validation, per epoch."""
    rng = np.random.default_rng(seed)
    return [
        {
            "epoch": epoch,
            "loss": 1.0 / epoch + rng.uniform(0, 0.1),
            "accuracy": 0.8 + 0.01 * epoch + rng.uniform(0, 0.01),
            "val_loss": 1.1 / epoch + rng.uniform(0, 0.1),
            "val_accuracy": 0.78 + 0.01 * epoch + rng.uniform(0, 0.01),
        }
        for epoch in range(1, epochs + 1)
    ]


def curves(histories, tmp_path, drawn):
    from mnistlab.outputs import report

    path = report.curves_figure(histories, tmp_path / "curves.png", "curves")
    assert path.stat().st_size > 0
    (figure,) = drawn
    figure.canvas.draw()  # ticks are placed when drawn
    return [axis for axis in figure.axes if axis.get_xlabel() == "epoch"]


def data_lines(axis):
    """The curves (not the legend's samples, not grid lines): the Line2D artists with a label of their own."""
    return [line for line in axis.get_lines() if not line.get_label().startswith("_")]


def test_one_epoch_curves_are_points_that_show(tmp_path, drawn):
    axes = curves([history(1)], tmp_path, drawn)
    assert len(axes) == 2
    for axis in axes:
        lines = data_lines(axis)
        assert [line.get_label() for line in lines] == ["train", "validation"]
        for line in lines:
            assert list(line.get_xdata()) == [1]
            # One point: a line of it has no length, so only a marker draws it.
            assert line.get_marker() not in (None, "", " ", "None") and line.get_markersize() > 0, line.get_marker()
        low, high = axis.get_xlim()
        assert low < 1 < high  # the point is inside the plot, not on its edge


def test_one_epoch_of_several_seeds_shows_their_spread(tmp_path, drawn):
    """Over seeds the band is min-max; at one epoch a band has no width, so the spread must show some other way."""
    from matplotlib.collections import LineCollection, PolyCollection

    runs = [history(1, seed) for seed in range(3)]
    (loss_axis, _) = curves(runs, tmp_path, drawn)
    losses = np.array([run[0]["loss"] for run in runs])
    spans = []
    for collection in loss_axis.collections:
        if isinstance(collection, LineCollection):
            spans += [sorted(segment[:, 1]) for segment in collection.get_segments() if len(segment)]
        elif isinstance(collection, PolyCollection):
            for path in collection.get_paths():
                xs, ys = path.vertices[:, 0], path.vertices[:, 1]
                if np.ptp(xs) > 0:  # a band with width, which can be seen
                    spans.append([ys.min(), ys.max()])
    # The train loss's spread over the three seeds, from the histories themselves.
    assert any(np.allclose(span, [losses.min(), losses.max()]) for span in spans), spans


@pytest.mark.parametrize("epochs", [2, 3, 7])
def test_epoch_ticks_are_whole_numbers(tmp_path, drawn, epochs):
    for axis in curves([history(epochs)], tmp_path, drawn):
        low, high = axis.get_xlim()
        ticks = [tick for tick in axis.get_xticks() if low <= tick <= high]
        assert ticks, "no epoch ticks"
        assert all(float(tick).is_integer() for tick in ticks), ticks
        assert min(ticks) >= 1 and max(ticks) <= epochs, ticks  # no epoch 0 or past the last


def test_long_runs_stay_lines(tmp_path, drawn):
    for axis in curves([history(60)], tmp_path, drawn):
        for line in data_lines(axis):
            assert len(line.get_xdata()) == 60
            assert line.get_marker() in (None, "", " ", "None")

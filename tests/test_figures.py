"""The chapter's teaching figures: no text drawn over other text or over the axes' own labels, every note inside
its plot, no legend over a line."""

import numpy as np
import pytest

from mnistlab.outputs import figures, plots


def _text_boxes(figure):
    """(label, bbox) of every visible text block: titles, labels, annotations, legends."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    boxes = []
    for axis in figure.axes:
        for text in [axis.title, *axis.texts]:
            if text.get_visible() and text.get_text().strip():
                boxes.append((text.get_text()[:40], text.get_window_extent(renderer)))
        legend = axis.get_legend()
        if legend is not None:
            boxes.append(("legend", legend.get_window_extent(renderer)))
    for text in figure.texts:
        if text.get_text().strip():
            boxes.append((text.get_text()[:40], text.get_window_extent(renderer)))
    for axis in figure.axes:  # the axes' own words: the tick labels drawn (within the limits) and axis labels
        drawn = [
            tick.label1
            for ruler in (axis.xaxis, axis.yaxis)
            for tick in ruler.get_major_ticks()
            if min(ruler.get_view_interval()) <= tick.get_loc() <= max(ruler.get_view_interval())
        ]
        for text in [*drawn, axis.xaxis.label, axis.yaxis.label]:
            if text.get_visible() and text.get_text().strip():
                boxes.append((f"axis text {text.get_text()[:20]}", text.get_window_extent(renderer)))
    return boxes


def _misplaced(figure):
    """Notes outside their plot, and legends drawn over a plotted line's points."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    found = []
    for axis in figure.axes:
        inside = axis.get_window_extent(renderer)
        for text in axis.texts:
            box = text.get_window_extent(renderer)
            if not (inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1):
                found.append(f"note {text.get_text()[:30]!r} outside its plot")
        legend = axis.get_legend()
        if legend is None:
            continue
        box = legend.get_window_extent(renderer)
        for line in axis.get_lines():
            points = axis.transData.transform(np.column_stack(line.get_data()).astype(float))
            covered = (
                (points[:, 0] > box.x0) & (points[:, 0] < box.x1) & (points[:, 1] > box.y0) & (points[:, 1] < box.y1)
            )
            if covered.any():
                found.append(f"legend over the line {line.get_label()!r}")
    return found


@pytest.mark.parametrize("name", list(figures.FIGURES))
def test_no_text_overlaps_other_text(name, tmp_path, monkeypatch):
    measured = []
    save = plots.save_figure
    monkeypatch.setattr(
        plots,
        "save_figure",
        lambda figure, path: (measured.append((_text_boxes(figure), _misplaced(figure))), save(figure, path))[1],
    )
    figures.FIGURES[name](tmp_path / name)
    ((boxes, misplaced),) = measured
    overlaps = [(a, b) for i, (a, box_a) in enumerate(boxes) for b, box_b in boxes[i + 1 :] if box_a.overlaps(box_b)]
    assert not overlaps, overlaps
    assert not misplaced, misplaced
    assert (tmp_path / name).stat().st_size > 10_000

"""The chapter's teaching figures: no text drawn over other text, every title within the figure."""

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
    return boxes


@pytest.mark.parametrize("name", list(figures.FIGURES))
def test_no_text_overlaps_other_text(name, tmp_path, monkeypatch):
    measured = []
    save = plots.save_figure
    monkeypatch.setattr(
        plots, "save_figure", lambda figure, path: (measured.append(_text_boxes(figure)), save(figure, path))[1]
    )
    figures.FIGURES[name](tmp_path / name)
    (boxes,) = measured
    overlaps = [(a, b) for i, (a, box_a) in enumerate(boxes) for b, box_b in boxes[i + 1 :] if box_a.overlaps(box_b)]
    assert not overlaps, overlaps
    assert (tmp_path / name).stat().st_size > 10_000

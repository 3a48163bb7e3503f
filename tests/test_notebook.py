"""docs/chapter1.ipynb runs top to bottom on the built-in data, so it never rots."""

import re

import pytest

from conftest import REPO, load_script


@pytest.mark.slow  # about 40-100 s: every cell, with three short trainings and a reproduction
def test_chapter_notebook_runs_top_to_bottom(tmp_path):
    (tmp_path / "home").mkdir(exist_ok=True)  # the kernel's IPython wants a writable HOME (conftest points it here)
    notebook, seconds = load_script("scripts/run_notebook.py").execute(work=tmp_path)  # any cell's error fails here
    text = "\n".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )
    # The book's parameter counts, from the models Keras builds.
    for count in ("269,322", "80,266", "75,530"):
        assert f"{count} parameters (book: {count})" in text
    assert "Train labels:  {0: 240" in text
    assert (
        re.search(r"row 16 \(256-256-256, dropout\(0.45\), adam\), 3 seeds", text)
        and "verdict: the book's figure is" in text
    )
    assert "after 28 rows it believes" in text
    images = sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    assert (
        images >= 3 + 4 + 2
    )  # the sample grid, the three inside sheets, the figures (and the diagram where Graphviz is)
    assert (
        not list(REPO.glob("docs/*.keras")) and (tmp_path / "runs.db").exists()
    )  # its runs stay in its work directory
    print(
        f"the notebook took {seconds:.0f} s"
    )  # its time is a benchmark's to judge (machines differ twice over), not a test's

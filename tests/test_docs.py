"""Published figures come from committed results: every generated page matches what its results give."""

import importlib.util

from conftest import REPO


def test_pages_match_their_committed_results():
    spec = importlib.util.spec_from_file_location("render_docs", REPO / "scripts" / "render_docs.py")
    render_docs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render_docs)
    stale = [path for path, text in render_docs.rendered().items() if (REPO / path).read_text() != text]
    assert not stale, f"{stale} differ from their results; run python scripts/render_docs.py"

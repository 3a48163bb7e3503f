"""The pages load their code and styles from web/static/: no long inline script in either page, every file a page
names is served by its app (the lab's behind its token, as the page itself gets it), every static file is one a
page loads, and the package ships them all. The pages as browsers get them: written from web/templates/."""

import fnmatch
import html.parser
import pathlib
import re
import tomllib

import pytest
from fastapi.testclient import TestClient

from conftest import REPO
from mnistlab.web import lab as lab_lib
from mnistlab.web import pages, serve, templating

MAX_INLINE_LINES = 30
TOKEN = "a-token-of-the-static-test-0123"
LOOPBACK = "http://127.0.0.1:8100"


class PageParts(html.parser.HTMLParser):
    """A page's inline scripts and styles (their text) and the static files it names (script src, link href)."""

    def __init__(self):
        super().__init__()
        self.inline_scripts, self.styles, self.files, self._open = [], [], [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        named = attrs.get("src") if tag == "script" else attrs.get("href") if tag == "link" else None
        if named and not named.startswith("data:"):
            self.files.append(named)
        if tag in ("script", "style") and not attrs.get("src"):
            self._open = self.inline_scripts if tag == "script" else self.styles
            self._open.append("")

    def handle_data(self, data):
        if self._open is not None:
            self._open[-1] += data

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._open = None


def parts(page):
    """The parts of PAGE: a page's template name, or a file."""
    parser = PageParts()
    parser.feed(page.read_text() if isinstance(page, pathlib.Path) else templating.page_html(page))
    return parser


@pytest.mark.parametrize(
    "page", [templating.DRAW_PAGE, templating.LAB_PAGE, templating.SITE_PAGE], ids=["draw page", "lab", "shared site"]
)
def test_a_page_keeps_its_code_and_styles_in_static_files(page):
    found = parts(page)
    long = [script for script in found.inline_scripts if len(script.strip().splitlines()) > MAX_INLINE_LINES]
    assert not long, f"{page}: an inline script of {len(long[0].strip().splitlines())} lines; move it to web/static/"
    assert not found.styles, f"{page}: an inline <style>; its rules belong in web/static/"
    assert found.files and all(name.startswith("static/") for name in found.files), found.files


def test_a_long_inline_script_is_caught(tmp_path):
    page = tmp_path / "page.html"
    page.write_text("<html><script>\n" + "let a = 1;\n" * (MAX_INLINE_LINES + 1) + "</script></html>")
    assert len(parts(page).inline_scripts[0].strip().splitlines()) > MAX_INLINE_LINES


def test_the_lab_serves_every_file_its_page_loads_behind_its_token(tmp_path):
    lab = lab_lib.Lab(tmp_path / "runs.db", workers=0)
    with TestClient(lab_lib.create_app(lab, token=TOKEN), base_url=LOOPBACK) as client:
        assert client.get("/static/lab.js").status_code == 401  # the token guards the page's files too
        page = client.get("/", params={"token": TOKEN})  # as the address printed at start opens it: then a cookie
        assert page.status_code == 200
        for name in parts(templating.LAB_PAGE).files:
            answer = client.get("/" + name)
            assert answer.status_code == 200 and answer.text == (pages.WEB / name).read_text(), name


def test_serve_serves_every_file_the_draw_page_loads(client):
    for name in parts(templating.DRAW_PAGE).files:
        answer = client.get("/" + name)
        assert answer.status_code == 200 and answer.text == (serve.STATIC.parent / name).read_text(), name
    assert client.get("/static/../index.html").status_code == 404


def test_every_static_file_is_loaded_by_a_page():
    loaded = {
        pathlib.PurePosixPath(name).name
        for page in (templating.DRAW_PAGE, templating.LAB_PAGE, templating.SITE_PAGE)
        for name in parts(page).files
    }
    # The shared site's model worker, started by its page's script, and what the worker loads beside the runtime.
    assert 'new Worker("static/site-worker.js")' in (pages.STATIC / "site.js").read_text()
    worker = (pages.STATIC / "site-worker.js").read_text()
    loaded |= {"site-worker.js"} | set(
        re.search(r"importScripts\(([^)]*)\)", worker).group(1).replace('"', "").split(", ")
    )
    loaded.discard("../ort/ort.wasm.min.js")
    present = {path.name for path in pages.STATIC.rglob("*") if path.is_file()}
    assert present == loaded, f"not loaded by any page: {sorted(present - loaded)}; missing: {sorted(loaded - present)}"


def test_the_package_ships_every_page_and_static_file():
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "mnistlab.web"
    ]
    shipped = [path for path in pages.WEB.rglob("*") if path.is_file() and path.suffix not in (".py", ".pyc")]
    for path in shipped:
        relative = path.relative_to(pages.WEB).as_posix()
        # The lab's modules are a package of their own: only web/'s data files need package data.
        if relative.startswith("lab/") or "__pycache__" in relative:
            continue
        assert any(
            fnmatch.fnmatch(relative, pattern) and relative.count("/") == pattern.count("/") for pattern in patterns
        ), relative


def test_no_two_scripts_of_a_page_declare_the_same_global_name():
    """A page's scripts share one global scope: a second `function scaleOf` silently replaces the first, and the
    page breaks where the first was meant (it did: the lab's dynamics table and the inside view's colour scale)."""
    import re

    for page in (templating.DRAW_PAGE, templating.LAB_PAGE, templating.SITE_PAGE):
        parts = PageParts()
        parts.feed(templating.page_html(page))
        declared = {}
        for name in parts.files:
            if not name.endswith(".js"):
                continue
            text = (REPO / "src" / "mnistlab" / "web" / name).read_text()
            for found in re.findall(r"^(?:async\s+)?(?:function\s+(\w+)|(?:const|let|var|class)\s+(\w+))", text, re.M):
                declared.setdefault(found[0] or found[1], []).append(name)
        twice = {name: files for name, files in declared.items() if len(files) > 1}
        assert not twice, f"{page}: {twice}"

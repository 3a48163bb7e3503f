"""The shared site (`mnistlab site`): a static folder whose page draws, answers and shows the inside in Chromium,
with the same numbers as Keras, as `serve`'s page and as `mnistlab explain --method occlusion`.

The site is built by the CLI in its own process (export runs on TensorFlow; this process runs JAX), from the
session's three small trained runs, and served by `python -m http.server`, as docs/site.md says to. The browser
runtime comes from the user's data cache, where scripts/setup.sh puts it; the tests never fetch it.
"""

import base64
import contextlib
import json
import os
import pathlib
import subprocess
import sys
import urllib.parse

import numpy as np
import pytest
from PIL import Image
from test_page import SEVEN_DIAGONAL, SEVEN_TOP, draw_stroke

from conftest import (
    REPO,
    assert_one_line_error,
    cache_with_runtime,
    free_port,
    run_cli,
    runtime_or_skip,
    wait_until_listening,
)
from mnistlab.ml import preprocess
from mnistlab.web import site_runtime

FAMILIES = ("mlp", "cnn", "rnn")
PARITY = 1e-4


@pytest.fixture(scope="module")
def site(trained_runs, tmp_path_factory):
    runtime_or_skip()
    root = tmp_path_factory.mktemp("site")
    out = root / "site"
    result = run_cli(
        "site",
        *(trained_runs[family] for family in FAMILIES),
        "--out",
        out,
        env={"MNISTLAB_DATA": str(cache_with_runtime(root / "cache")), "MNISTLAB_RUNS": str(root / "runs")},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Wrote {out}: 3 models" in result.stdout and "python -m http.server" in result.stdout, result.stdout
    # Every line the export prints is known: no stray library noise.
    assert "Removed MatMul" not in result.stdout + result.stderr
    return out


@contextlib.contextmanager
def static_server(folder):
    """`python -m http.server` on FOLDER, on loopback: what docs/site.md tells a user to run."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_listening(port, server)
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="module")
def site_url(site):
    with static_server(site) as url:
        yield url


def open_site(page, url):
    """Open the site, counting any Content-Security-Policy violation and every address the page asks for."""
    asked = []
    page.on("request", lambda request: asked.append(request.url))
    page.add_init_script(
        "window.cspViolations = []; document.addEventListener('securitypolicyviolation', (e) => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    page.wait_for_function("() => window.mnistlab && window.mnistlab.ready", timeout=60000)
    return asked, errors


SEVEN = SEVEN_TOP + SEVEN_DIAGONAL
ZERO = [(140 + 60 * np.sin(a), 140 - 90 * np.cos(a)) for a in np.linspace(0, 2 * np.pi, 40)]
# A one that runs off the pad's bottom edge: the border then holds ink, and the preprocessing's median filter runs.
ONE_TO_THE_EDGE = [(150, 60 + 12 * step) for step in range(20)]
DRAWINGS = {"seven": SEVEN, "zero": ZERO, "one to the edge": ONE_TO_THE_EDGE}


def settled(page):
    page.wait_for_function(
        "() => window.mnistlab.sent > 0 && !window.mnistlab.busy && window.mnistlab.insideFor === window.mnistlab.shown",
        timeout=60000,
    )


def keras_probabilities(trained_runs, family, images):
    from mnistlab.ml.predict import Predictor

    return Predictor(trained_runs[family]).predict(images)


def as_base64(images):
    return base64.b64encode(np.ascontiguousarray(images, dtype=np.float32).tobytes()).decode("ascii")


FROM_BASE64 = "(text) => new Float32Array(Uint8Array.from(atob(text), (c) => c.charCodeAt(0)).buffer)"


@pytest.mark.slow
def test_a_digit_drawn_with_the_mouse_is_answered_offline_from_a_static_server(
    site, site_url, browser_page, trained_runs
):
    """The done-when: a site of three runs, served by `python -m http.server`, answers a drawing, with the inside view;
    nothing is asked of any other address, and the page's own policy is never broken."""
    page = browser_page
    asked, errors = open_site(page, site_url)
    draw_stroke(page, SEVEN)
    settled(page)
    assert page.eval_on_selector_all(".model", "cards => cards.map(c => c.dataset.family)") == list(FAMILIES)
    assert page.locator(".model.answered").count() == 3 and page.locator(".model .inside").count() == 3
    about = page.eval_on_selector_all(".model .about", "cards => cards.map(c => c.textContent)")
    assert all("test " in text and "% on mnist-mini" in text for text in about), about
    # The inside view as serve's page draws it: the CNN's maps (one tile per channel of each view), the RNN's belief
    # after each row, the two attribution maps of each model.
    manifest = json.loads((site / "models" / "models.json").read_text())
    cnn = next(model for model in manifest["models"] if model["family"] == "cnn")
    channels = sum(output["shape"][-1] for output in cnn["outputs"] if output["role"] == "view")
    assert page.locator('.model[data-family="cnn"] canvas.fmap').count() == channels
    assert page.locator('.model[data-family="rnn"] canvas.beliefs').count() == 1
    assert page.locator(".model canvas[title^='prediction']").count() == 3
    # The answers are Keras' on the page's own 28x28 input.
    image = np.asarray(page.evaluate("() => Array.from(padInput())"), dtype=np.float32).reshape(1, 28, 28)
    shown = page.evaluate(
        "() => Object.fromEntries(models.map((m) => [m.family, Array.from(answersShown[m.id].probabilities)]))"
    )
    for family in FAMILIES:
        expected = keras_probabilities(trained_runs, family, image)[0]
        assert np.abs(np.asarray(shown[family]) - expected).max() <= PARITY, family
    assert page.inner_text("#status") == "" and not errors
    assert page.evaluate("() => window.cspViolations") == []
    outside = [url for url in asked if not url.startswith(site_url) and not url.startswith("data:")]
    assert outside == [], outside
    # The page's files are the folder's, and the folder holds no server code.
    assert {path.suffix for path in site.rglob("*") if path.is_file()} <= {
        ".html",
        ".js",
        ".mjs",
        ".wasm",
        ".css",
        ".svg",
        ".json",
        ".onnx",
        ".txt",
    }
    content_security = page.get_attribute("meta[http-equiv='Content-Security-Policy']", "content")
    assert "default-src 'none'" in content_security and "script-src 'self' 'wasm-unsafe-eval'" in content_security


@pytest.mark.slow
def test_the_page_gives_keras_probabilities_for_1000_digits_of_each_family(site_url, browser_page, trained_runs, mini):
    """mnist-mini's 600 test digits and 400 of its training digits, through each model's graph in the page."""
    images = np.concatenate([mini.x_test, mini.x_train[:400]]).astype(np.float32) / 255.0
    assert len(images) == 1000
    page = browser_page
    open_site(page, site_url)
    answers = page.evaluate(
        f"async (text) => (await window.mnistlabSite.classify(({FROM_BASE64})(text), 1000)).map((p) => Array.from(p))",
        as_base64(images),
    )
    for family, probabilities in zip(FAMILIES, answers):
        expected = keras_probabilities(trained_runs, family, images)
        actual = np.asarray(probabilities).reshape(1000, 10)
        assert np.abs(actual - expected).max() <= PARITY, family
        assert (actual.argmax(axis=1) == expected.argmax(axis=1)).mean() >= 0.999, family


@pytest.mark.slow
@pytest.mark.parametrize("drawing", DRAWINGS)
def test_the_same_strokes_on_the_site_and_on_serve_give_the_same_answers(drawing, site_url, live_server, browser_page):
    """The same mouse strokes on both pages: the same 28x28 input, the same top answer, probabilities within 1e-4."""
    page = browser_page
    served = []
    page.on("response", lambda response: served.append(response) if response.url.endswith("/api/predict") else None)
    page.goto(live_server + "/")
    draw_stroke(page, DRAWINGS[drawing])
    page.wait_for_function("() => window.mnistlab && window.mnistlab.sent > 0 && !window.mnistlab.busy", timeout=60000)
    serve_answer = served[-1].json()
    open_site(page, site_url)
    draw_stroke(page, DRAWINGS[drawing])
    settled(page)
    site_input = np.asarray(page.evaluate("() => Array.from(padInput())")).reshape(28, 28)
    # serve sends its input rounded to 4 decimals (serving.engine): equal to that rounding.
    assert np.abs(site_input - np.asarray(serve_answer["input"])).max() <= 0.5e-4 + 1e-7
    shown = page.evaluate(
        "() => Object.fromEntries(models.map((m) => [m.family, Array.from(answersShown[m.id].probabilities)]))"
    )
    for prediction in serve_answer["predictions"]:
        probabilities = np.asarray(shown[prediction["family"]])
        assert int(probabilities.argmax()) == prediction["prediction"], prediction["family"]
        assert np.abs(probabilities - np.asarray(prediction["probabilities"])).max() <= PARITY, prediction["family"]


@pytest.mark.slow
def test_the_inside_view_equals_keras_and_its_occlusion_map_equals_explain_occlusion(
    site_url, browser_page, trained_runs, mini
):
    """Each view, the RNN's beliefs and both occlusion maps, for three test digits, against the Explainer in Keras."""
    from mnistlab.ml import explain

    page = browser_page
    open_site(page, site_url)
    for index in (0, 1, 2):
        image = mini.x_test[index].astype(np.float32) / 255.0
        results = page.evaluate(
            f"""async (text) => (await window.mnistlabSite.inside(({FROM_BASE64})(text))).map((r) => ({{
                prediction: r.prediction, runnerUp: r.runnerUp, maps: Array.from(r.maps),
                views: r.views.map((v) => Array.from(v)), beliefs: r.beliefs ? Array.from(r.beliefs) : null}}))""",
            as_base64(image),
        )
        for family, result in zip(FAMILIES, results):
            explainer = explain.explainer_for(trained_runs[family])
            expected = explainer.explain(image, method="occlusion")
            assert [result["prediction"], result["runnerUp"]] == expected["attributions"]["classes"], family
            maps = np.asarray(result["maps"]).reshape(2, 28, 28)
            assert np.abs(maps - expected["attributions"]["maps"]).max() <= PARITY, family
            for view, layer in zip(result["views"], expected["layers"]):
                assert np.abs(np.asarray(view) - layer["values"].ravel()).max() <= PARITY, (family, layer["name"])
            if family == "rnn":
                assert np.abs(np.asarray(result["beliefs"]) - expected["reading"]["beliefs"].ravel()).max() <= PARITY


# -- the preprocessing port, on its own (no site, no models): in the quick loop --------------------------------


def odd_images():
    """Gray images that take every branch of to_mnist: drawn strokes, light paper (inverted), a noisy photo-like
    page (median filter, contrast stretch), a small digit (bilinear upscale), a lopsided one (clipped centring)."""
    rng = np.random.default_rng(7)
    canvas = np.zeros((280, 280))
    canvas[60:220, 130:150] = 1.0
    canvas[60:80, 90:190] = 0.8
    paper = 1.0 - canvas
    photo = np.clip(0.8 + 0.05 * rng.standard_normal((300, 240)), 0, 1)
    photo[80:230, 100:120] = 0.15 + 0.05 * rng.random((150, 20))
    small = np.zeros((12, 9))
    small[2:10, 3:6] = rng.random((8, 3))
    lopsided = np.zeros((60, 60))
    lopsided[5:55, 2:6] = 1.0
    lopsided[50:55, 2:58] = 1.0
    # Mirror-symmetric shapes: the centre of mass falls on a half pixel, where the centring's rounding turns on the
    # last bit of NumPy's sums (a bar 30 x 21, scaled to 20 x 14; a ring).
    bar = np.zeros((40, 40))
    bar[5:35, 9:30] = 1.0
    yy, xx = np.mgrid[0:64, 0:64]
    ring = ((np.hypot(yy - 31.5, xx - 31.5) < 24) & (np.hypot(yy - 31.5, xx - 31.5) > 15)).astype(float)
    return {
        "canvas": canvas,
        "paper": paper,
        "photo": photo,
        "small": small,
        "lopsided": lopsided,
        "bar": bar,
        "ring": ring,
    }


def test_the_pages_preprocessing_is_to_mnist(browser_page):
    """preprocess.js' toMnist against preprocess.to_mnist (Python, NumPy, Pillow) on gray images taking each branch,
    and its gray conversion against Pillow's on a coloured canvas."""
    page = browser_page
    page.set_content("<html><body></body></html>")
    page.add_script_tag(path=str(REPO / "src" / "mnistlab" / "web" / "static" / "preprocess.js"))
    for name, gray in odd_images().items():
        expected, info = preprocess.to_mnist(gray)
        result = page.evaluate(
            "([values, width, height]) => { const r = toMnist(Float64Array.from(values), width, height); return {image: Array.from(r.image), inverted: r.inverted, box: r.box}; }",
            [gray.ravel().tolist(), gray.shape[1], gray.shape[0]],
        )
        assert result["inverted"] == info["inverted"] and result["box"] == info["bounding_box"], name
        assert np.abs(np.asarray(result["image"]).reshape(28, 28) - expected).max() <= 1e-6, name
    rgba = np.random.default_rng(3).integers(0, 256, (40, 30, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    pillow = np.asarray(Image.fromarray(rgba, "RGBA").convert("L"), dtype=np.float64) / 255.0
    gray = page.evaluate("([values, w, h]) => Array.from(grayOf(values, w, h))", [rgba.ravel().tolist(), 30, 40])
    assert np.array_equal(np.asarray(gray).reshape(40, 30), pillow)
    blank = page.evaluate(
        "() => { try { toMnist(new Float64Array(100), 10, 10); return 'answered'; } catch (e) { return e.message; } }"
    )
    assert blank.startswith("no digit found")


# -- the command ---------------------------------------------------------------------------------------------


def test_site_refuses_what_it_cannot_build_in_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch, mini):
    """Each refusal of the command, in this process (each comes before any export): one line, a non-zero exit."""
    from conftest import made_up_history, record_run, run_main
    from mnistlab.core.config import Config
    from mnistlab.record import rundir
    from mnistlab.record.store import Store

    with Store() as store:  # a finished run (its model file stands in: every refusal comes before it is read)
        run = pathlib.Path(
            record_run(
                store,
                Config(family="mlp", epochs=1),
                None,
                mini,
                0.9,
                made_up_history(np.random.default_rng(0), 1, 0.9),
            )["run_dir"]
        )
        queued = store.queue_run(Config(family="mlp", epochs=2), "0" * 16)["run_id"]
    (run / rundir.MODEL_FILE).write_bytes(b"")
    not_a_run = tmp_path / "not-a-run"
    not_a_run.mkdir()
    assert_one_line_error(run_main(capsys, "site", not_a_run, "--out", tmp_path / "out"), str(not_a_run))
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    assert_one_line_error(run_main(capsys, "site", run, "--out", taken), "exists and is not an empty folder", "--out")
    assert [path.name for path in taken.iterdir()] == ["keep.txt"]
    assert_one_line_error(run_main(capsys, "site", *([run] * 7), "--out", tmp_path / "out"), "at most 6")
    # --out where nothing can be written (under a file); a run id the store has queued; one past SQLite's integers.
    (tmp_path / "a-file").write_text("")
    assert_one_line_error(
        run_main(capsys, "site", run, "--out", tmp_path / "a-file" / "site"), "cannot write there", "--out"
    )
    assert_one_line_error(
        run_main(capsys, "site", queued, "--out", tmp_path / "out"), f"run {queued} is queued and has no run directory"
    )
    assert_one_line_error(run_main(capsys, "site", str(2**64), "--out", tmp_path / "out"), f"no run {2**64}")
    # Offline without the runtime cached (this test's data cache is empty) and without npm: one line naming the
    # file to place by hand, and nothing left behind.
    monkeypatch.setenv("PATH", "/nonexistent")
    result = run_main(capsys, "site", run, "--out", tmp_path / "out")
    assert_one_line_error(result, f"{site_runtime.PACKAGE}-{site_runtime.VERSION}.tgz")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.building-*"))


def test_a_run_of_a_setup_with_seeds_shows_its_interval(mini):
    """models.json's over_seeds: the setup's test accuracy over its counted seeds, from the store (checked against
    NumPy's mean and SciPy's t quantile), and none for a run with no other seed."""
    import scipy.stats

    from conftest import made_up_history, record_run
    from mnistlab.core.config import Config
    from mnistlab.record import rundir
    from mnistlab.record.store import Store
    from mnistlab.web import site

    rng = np.random.default_rng(0)
    config = Config(family="mlp", hidden_units=(16,), epochs=1, dataset="mnist-mini", backend="jax")
    accuracies = [0.91, 0.93, 0.92]
    lone = Config(family="mlp", hidden_units=(8,), epochs=1, dataset="mnist-mini", backend="jax")
    with Store() as store:
        seeded = [
            record_run(store, config.replace(seed=seed), None, mini, value, made_up_history(rng, 1, value))
            for seed, value in enumerate(accuracies)
        ]
        alone = record_run(store, lone, None, mini, 0.9, made_up_history(rng, 1, 0.9))
    run_dir = pathlib.Path(seeded[0]["run_dir"])
    over = site.accuracy_over_seeds(run_dir, rundir.read_config(run_dir)[0], rundir.read_metrics(run_dir))
    values = 100 * np.asarray(accuracies)
    half = scipy.stats.t.ppf(0.975, 2) * values.std(ddof=1) / np.sqrt(3)
    assert over["n"] == 3 and abs(over["mean"] - values.mean()) < 1e-9
    assert abs(over["ci_low"] - (values.mean() - half)) < 1e-9 and abs(over["ci_high"] - (values.mean() + half)) < 1e-9
    lone_dir = pathlib.Path(alone["run_dir"])
    assert site.accuracy_over_seeds(lone_dir, lone, rundir.read_metrics(lone_dir)) is None


def test_the_site_files_exist_and_the_page_loads_only_them():
    """Every file site.py copies is in the package, and site.html loads exactly the page's scripts and styles."""
    from mnistlab.web import site, templating

    for name in site.STATIC_FILES:
        assert (site.STATIC / name).is_file(), name
    page = templating.page_html(site.PAGE)
    loaded = {
        urllib.parse.urlsplit(part.split('"', 1)[0]).path for part in page.split('src="')[1:] + page.split('href="')[1:]
    }
    local = {path for path in loaded if path.startswith("static/")}
    assert local == {f"static/{name}" for name in site.STATIC_FILES if name != "site-worker.js"}


# -- the lab's "Share as a web page": the same site, as a zip ------------------------------------------------


@pytest.fixture
def lab_client(tmp_path):
    from fastapi.testclient import TestClient

    from mnistlab.web import lab as lab_lib

    lab = lab_lib.Lab(tmp_path / "runs" / "runs.db", workers=0)
    with TestClient(lab_lib.create_app(lab), base_url="http://127.0.0.1:8100") as client:
        yield lab, client


def test_the_labs_site_request_is_bounded_and_named_before_any_work(lab_client):
    lab, client = lab_client
    for body, field in (
        ({}, "runs"),
        ({"runs": []}, "runs"),
        ({"runs": list(range(1, 8))}, "runs"),
        ({"runs": ["1"]}, "runs"),
        ({"runs": [1, 1]}, "runs"),
        ({"runs": [0]}, "runs"),
    ):
        answer = client.post("/api/site", json=body)
        assert answer.status_code == 400 and answer.json()["field"] == field, (body, answer.text)
    assert client.post("/api/site", json={"runs": [12345]}).status_code == 404
    assert client.post("/api/site", content=b"{", headers={"Content-Type": "application/json"}).status_code == 400
    oversized = client.post(
        "/api/site", content=b"[" + b"1," * 4000 + b"1]", headers={"Content-Type": "application/json"}
    )
    assert oversized.status_code == 413


def test_the_lab_names_each_setups_site_run_and_builds_one_site_at_a_time(lab_client, mini):
    """The runs view's rows name the seed a site shows (the best on validation); while a site is being built, another
    request is told to come back (429, Retry-After), before any work. (The zip itself: the Chromium test below.)"""
    from conftest import made_up_history, record_run
    from mnistlab.core.config import Config
    from mnistlab.record.store import Store

    lab, client = lab_client
    with Store(lab.store_path) as store:
        runs = [
            record_run(
                store,
                Config(family="mlp", epochs=1, seed=seed),
                None,
                mini,
                0.9,
                made_up_history(np.random.default_rng(seed), 1, level),
            )
            for seed, level in ((0, 0.80), (1, 0.95), (2, 0.85))
        ]
        ids = {row["seed"]: row["id"] for row in store.runs()}
    for run in runs:
        (pathlib.Path(run["run_dir"]) / "model.keras").write_bytes(b"")
    [group] = client.get("/api/runs").json()["groups"]
    assert group["site_run"] == ids[1]  # seed 1: the best validation accuracy
    lab.sites._building.acquire()
    try:
        busy = client.post("/api/site", json={"runs": [ids[1]]})
    finally:
        lab.sites._building.release()
    assert busy.status_code == 429 and int(busy.headers["Retry-After"]) > 0


@pytest.mark.slow
def test_the_labs_runs_view_downloads_the_ticked_setups_as_a_site(tmp_path, trained_runs, browser_page):
    """Two setups ticked in the runs view, "Share as a web page": the zip of `mnistlab site`'s folder, built by the lab,
    their models in the order ticked."""
    import zipfile

    from conftest import serving_in_thread
    from mnistlab.record.store import Store
    from mnistlab.web import lab as lab_lib

    runtime_or_skip()
    cache_with_runtime(pathlib.Path(os.environ["MNISTLAB_DATA"]))
    lab = lab_lib.Lab(tmp_path / "runs.db", workers=0)
    with Store(lab.store_path) as store:
        store.reindex(trained_runs["mlp"].parent)
    page = browser_page
    for url in serving_in_thread(lab_lib.create_app(lab)):
        page.goto(url + "/")
        page.wait_for_function("window.lab.listShown >= 1")
        assert page.is_disabled("#site-picked")
        for family in ("rnn", "mlp"):
            page.locator("#runs tbody tr", has_text=family).first.locator("input.pick").check()
        assert page.is_enabled("#site-picked")
        with page.expect_download(timeout=300000) as download:
            page.click("#site-picked")
        assert download.value.suggested_filename == "mnistlab-site.zip"
        path = tmp_path / "site.zip"
        download.value.save_as(path)
        page.wait_for_function("window.lab.sitesAnswered === 1")
        assert "saved mnistlab-site.zip" in page.inner_text("#site-status")
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("mnistlab-site/models/models.json"))
    assert {
        "mnistlab-site/index.html",
        "mnistlab-site/ort/LICENSE.txt",
        "mnistlab-site/models/1-rnn.onnx",
        "mnistlab-site/models/2-mlp.onnx",
    } <= names
    assert [model["family"] for model in manifest["models"]] == ["rnn", "mlp"]

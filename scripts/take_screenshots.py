"""Every screenshot in docs/, from the current code.

    python scripts/take_screenshots.py [--only serve|lab|site] [RUNS_ROOT]

docs/serve-screenshot.png: `mnistlab serve` with no runs named (per family, the best validation
run in RUNS_ROOT's store), a 7 drawn with the mouse, the inside view of all three networks and a
first-layer CNN map clicked. docs/report-screenshot.png: the top of `mnistlab report` for the CNN
run served. docs/lab-*.png: `mnistlab lab` on RUNS_ROOT's store: three seeds of Listing 1.3.2
(6 epochs of 2,000 mnist-mini images) launched from the form and watched as they train (the runs
view, a run's live curves), then a finished run's page (curves, confusion matrix, mistakes, inside
view; its "Inside training" section alone is docs/lab-dynamics.png) and the runs view with the three folded into one row; then three seeds of the same listing without dropout,
and docs/lab-compare.png: the two setups ticked and compared (curves with 95% seed bands, Welch's verdict).
docs/site-screenshot.png: `mnistlab site` of the runs serve picks, served by `python -m http.server`, a 7 drawn
with the mouse, the inside view of all three computed in the browser, a first-layer CNN map clicked.
`--only` takes one of the three sets.

RUNS_ROOT (default: a temporary directory) holds the runs and their store; where it has no
finished runs on digits, the three book listings are trained there first on the built-in
mnist-mini (`mnistlab listings --dataset mnist-mini`: offline, a few minutes on two cores).
Passing the same RUNS_ROOT again reuses them.

Fails (exit 1, a message, no screenshot replaced) when the page shows an error (an element of
class "error" with text, or "internal error" anywhere), the server answers 5xx or logs a
traceback, the browser logs an error, or the server stops.
"""

import http.client
import json
import os
import pathlib
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from playwright.sync_api import sync_playwright

REPO = pathlib.Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
STORE = "runs.db"

# The page's own state (see window.mnistlab in src/mnistlab/web/static/draw.js), or an error on screen.
ERROR_SHOWN = "[...document.querySelectorAll('.error')].some((e) => e.textContent.trim())"
PREDICTED = f"({ERROR_SHOWN}) || (window.mnistlab.sent > 0 && !window.mnistlab.busy && document.querySelectorAll('.model').length === 3)"
INSIDE_SHOWN = f"({ERROR_SHOWN}) || (window.mnistlab.insideFor === window.mnistlab.shown && !window.mnistlab.insideBusy && document.querySelectorAll('.inside').length === 3)"


class Failed(Exception):
    """Something on the page or in the server that a published screenshot must not show."""


def mnistlab(*args, env, **kwargs):
    return subprocess.run([sys.executable, "-m", "mnistlab", *map(str, args)], env=env, **kwargs)


def chosen_runs(runs, env):
    """Per family, the run `mnistlab serve` picks from RUNS' store: {family: run_dir}; {} when none."""
    code = "import json, sys; from mnistlab.analysis import pages; print(json.dumps({r['family']: r['run_dir'] for r in pages.choose_runs(sys.argv[1])}))"
    result = subprocess.run([sys.executable, "-c", code, str(runs / STORE)], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        return {}
    return json.loads(result.stdout.strip().splitlines()[-1])


def ensure_runs(runs, env):
    chosen = chosen_runs(runs, env)
    if set(chosen) != {"mlp", "cnn", "rnn"}:
        print(f"training the three listings on mnist-mini in {runs}", flush=True)
        mnistlab("listings", "--dataset", "mnist-mini", "--store", runs / STORE, env=env, check=True)
        chosen = chosen_runs(runs, env)
    if set(chosen) != {"mlp", "cnn", "rnn"}:
        raise Failed(f"no MLP, CNN and RNN runs on digits in {runs} after training them")
    return chosen


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


LAB_TOKEN = secrets.token_urlsafe(24)  # the lab asks for its token on every address


def wait_for_health(server, port, log, query=""):
    deadline = time.time() + 300
    while time.time() < deadline:
        if server.poll() is not None:
            raise Failed(f"the server stopped (exit {server.returncode}):\n{log.read_text()}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz" + query)
            status = connection.getresponse().status
        except OSError:
            status = None  # not listening yet: the models are still loading
        if status == 200:
            return
        time.sleep(0.5)
    raise Failed(f"the server did not answer /healthz within 300 s:\n{log.read_text()}")


class Watch:
    """What the browser saw go wrong: console errors, page errors, 5xx answers."""

    def __init__(self, page):
        self.problems = []
        page.on("console", lambda message: self.console(message))
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("response", lambda response: self.response(response))

    def console(self, message):
        if message.type == "error":
            self.problems.append(f"console error: {message.text} ({message.location.get('url')})")

    def response(self, response):
        if response.status >= 500:
            self.problems.append(f"the server answered {response.status} to {response.request.method} {response.url}")

    def check(self, page, what):
        shown = page.eval_on_selector_all(
            ".error", "elements => elements.map((e) => e.textContent.trim()).filter(Boolean)"
        )
        if "internal error" in page.inner_text("body"):
            shown.append("'internal error' on the page")
        problems = self.problems + [f"the page shows: {text}" for text in shown]
        if problems:
            raise Failed(f"{what}:\n  " + "\n  ".join(problems))


def draw_seven(page):
    """A 7 drawn on the page's pad with the mouse: the top bar, then the diagonal."""
    box = page.locator("#pad").bounding_box()
    x, y = box["x"], box["y"]
    page.mouse.move(x + 70, y + 60)
    page.mouse.down()
    for i in range(1, 11):
        page.mouse.move(x + 70 + 14 * i, y + 60)
    for i in range(1, 16):
        page.mouse.move(x + 210 - 6 * i, y + 60 + 13 * i)
    page.mouse.up()


def serve_screenshot(browser, url, out):
    page = browser.new_page(viewport={"width": 1050, "height": 720})
    watch = Watch(page)
    page.goto(url)
    page.wait_for_function(f"({ERROR_SHOWN}) || document.getElementById('chosen').textContent.length > 0")
    watch.check(page, "the page on loading")
    draw_seven(page)
    page.wait_for_function(PREDICTED, timeout=60000)
    watch.check(page, "the page after drawing a 7")
    page.wait_for_function(INSIDE_SHOWN, timeout=120000)
    watch.check(page, "the page's inside view")
    page.locator('.inside[data-family="cnn"] .fmap').nth(5).click()  # an enlarged first-layer map with its kernel
    page.mouse.move(0, 0)
    watch.check(page, "the page after clicking a CNN map")
    page.screenshot(path=str(out), full_page=True)
    watch.check(page, "the page as it was taken")
    page.close()


# The shared site's page state (src/mnistlab/web/static/site.js), or an error on screen. Function-form: the site's
# Content-Security-Policy refuses Playwright's evaluation of a bare expression.
SITE_READY = f"() => ({ERROR_SHOWN}) || (window.mnistlab && window.mnistlab.ready)"
SITE_INSIDE_SHOWN = f"() => ({ERROR_SHOWN}) || (window.mnistlab.sent > 0 && !window.mnistlab.busy && window.mnistlab.insideFor === window.mnistlab.shown && document.querySelectorAll('.inside').length === 3)"


def site_screenshot(browser, url, out):
    page = browser.new_page(viewport={"width": 1050, "height": 720})
    watch = Watch(page)
    page.goto(url)
    page.wait_for_function(SITE_READY, timeout=60000)
    watch.check(page, "the site on loading")
    draw_seven(page)
    page.wait_for_function(SITE_INSIDE_SHOWN, timeout=60000)
    watch.check(page, "the site after drawing a 7")
    page.locator('.inside[data-family="cnn"] .fmap').nth(5).click()
    page.mouse.move(0, 0)
    watch.check(page, "the site after clicking a CNN map")
    page.screenshot(path=str(out), full_page=True)
    watch.check(page, "the site as it was taken")
    page.close()


def site_shots(runs, env, work, chromium, shots):
    chosen = ensure_runs(runs, env)
    site = work / "site"
    mnistlab("site", chosen["mlp"], chosen["cnn"], chosen["rnn"], "--out", site, env=env, check=True)
    port, log = free_port(), work / "site-server.log"
    with open(log, "w") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(site)],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        time.sleep(1)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium,
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            site_screenshot(browser, f"http://127.0.0.1:{port}/", shots["site-screenshot.png"])
            browser.close()
    finally:
        server.terminate()
        server.wait()


def report_screenshot(browser, cnn_run, env, work, out):
    html = work / "report.html"
    mnistlab("report", cnn_run, "--out", html, env=env, check=True)
    page = browser.new_page(viewport={"width": 1050, "height": 720})
    watch = Watch(page)
    page.goto(html.as_uri())
    page.wait_for_load_state("load")
    page.screenshot(path=str(out), full_page=False)
    watch.check(page, f"the report of {cnn_run}")
    page.close()


LAB_SHOTS = (
    "lab-runs-live.png",
    "lab-run-live.png",
    "lab-run.png",
    "lab-dynamics.png",
    "lab-runs.png",
    "lab-compare.png",
)
LAB_FAILED = (
    "[...document.querySelectorAll('.chip')].some((chip) => ['failed', 'diverged'].includes(chip.dataset.status))"
)


def lab_screenshots(browser, url, shots):
    page = browser.new_page(viewport={"width": 1280, "height": 820})
    watch = Watch(page)
    page.goto(
        url + f"?token={LAB_TOKEN}"
    )  # as the lab prints it; the page keeps it as a cookie and drops it from the address
    page.wait_for_function(f"({ERROR_SHOWN}) || window.lab.listShown >= 1")
    watch.check(page, "the lab on loading")
    launch_three_seeds(page)
    page.wait_for_function(f"({ERROR_SHOWN}) || window.lab.launched.length === 3")
    watch.check(page, "the lab after launching")
    launched = page.evaluate("window.lab.launched.map((run) => run.run_id)")
    # The runs view while they train: a progress bar that has moved.
    page.wait_for_function(
        f"({ERROR_SHOWN}) || ({LAB_FAILED}) || [...document.querySelectorAll('.chip .bar > i')].some((bar) => parseFloat(bar.style.width) > 20)",
        timeout=300000,
    )
    page.evaluate("document.querySelector('details').open = false")  # the knobs folded: the runs beside the form
    watch.check(page, "the runs view while training")
    page.screenshot(path=str(shots["lab-runs-live.png"]), full_page=False)
    # A run's page while it trains: its live curve.
    # The running one least far along: the others may end before its page has seen an epoch go by.
    running = page.evaluate(
        "Number([...document.querySelectorAll('.chip[data-status=running]')].sort((a, b) => parseFloat(a.querySelector('.bar > i').style.width) - parseFloat(b.querySelector('.bar > i').style.width))[0].dataset.runId)"
    )
    page.goto(f"{url}#/run/{running}")
    page.wait_for_function(
        f"({ERROR_SHOWN}) || (window.lab.livePoints >= 1 && document.getElementById('status-chip').dataset.status === 'running')",
        timeout=300000,
    )
    watch.check(page, f"run {running}'s page while it trains")
    page.screenshot(path=str(shots["lab-run-live.png"]), full_page=False)
    # Finished: the same page with the confusion matrix, mistakes and the inside view.
    page.wait_for_function(
        f"({ERROR_SHOWN}) || (window.lab.reportShown === {running} && window.lab.insideShown && window.lab.insideShown.run === {running})",
        timeout=300000,
    )
    watch.check(page, f"run {running}'s page when done")
    page.screenshot(path=str(shots["lab-run.png"]), full_page=True)
    # Its dynamics: the section alone, as docs/dynamics.md shows it.
    page.wait_for_function(
        f"({ERROR_SHOWN}) || (window.lab.dynamicsShown && window.lab.dynamicsShown.run === {running})"
    )
    watch.check(page, f"run {running}'s dynamics")
    page.locator("#dynamics-section").screenshot(path=str(shots["lab-dynamics.png"]))
    # All three done: one folded row, n = 3, with its interval and the book's verdict.
    page.goto(f"{url}#/")
    page.wait_for_function(
        f"({ERROR_SHOWN}) || ({LAB_FAILED}) || [...document.querySelectorAll('#runs td.n')].some((cell) => cell.textContent === '3')",
        timeout=600000,
    )
    page.evaluate("document.querySelector('details').open = false")
    watch.check(page, "the runs view when done")
    if page.evaluate(LAB_FAILED):
        raise Failed(f"a launched run failed ({launched}): see the lab's log")
    page.screenshot(path=str(shots["lab-runs.png"]), full_page=False)
    # A second setup (no dropout), then the two compared over their seeds.
    page.evaluate("document.querySelector('details').open = true")
    launch_three_seeds(page, dropout_rate="0")
    page.wait_for_function(f"({ERROR_SHOWN}) || window.lab.launched.length === 6")
    page.wait_for_function(
        f"({ERROR_SHOWN}) || ({LAB_FAILED}) || [...document.querySelectorAll('#runs td.n')].filter((cell) => cell.textContent === '3').length === 2",
        timeout=600000,
    )
    watch.check(page, "the runs view with two setups done")
    if page.evaluate(LAB_FAILED):
        raise Failed(f"a launched run failed ({page.evaluate('window.lab.launched')}): see the lab's log")
    for tick in page.locator("#runs tbody tr input.pick").all():
        tick.check()
    page.click("#compare-picked")
    page.wait_for_function(f"({ERROR_SHOWN}) || window.lab.compareShown === 2", timeout=120000)
    watch.check(page, "the compare view")
    page.screenshot(path=str(shots["lab-compare.png"]), full_page=True)
    page.close()


def launch_three_seeds(page, **knobs):
    """Three seeds of Listing 1.3.2 (6 epochs of 2,000 mnist-mini digits), with KNOBS changed, launched from the form."""
    page.fill("input[name=seeds]", "0,1,2")
    page.fill("input[name=epochs]", "6")
    page.fill("input[name=limit]", "2000")
    page.select_option("select[name=dataset]", "mnist-mini")
    for name, value in knobs.items():
        page.fill(f"input[name=knob-{name}]", value)
    page.click("#launch-button")


def lab_shots(runs, env, work, chromium, shots):
    port, log = free_port(), work / "lab.log"
    with open(log, "w") as log_file:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mnistlab",
                "lab",
                "--port",
                str(port),
                "--workers",
                "2",
                "--store",
                str(runs / STORE),
            ],
            env={**env, "MNISTLAB_LAB_TOKEN": LAB_TOKEN},
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_health(server, port, log, query=f"?token={LAB_TOKEN}")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium,
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            lab_screenshots(browser, f"http://127.0.0.1:{port}/", shots)
            browser.close()
        if server.poll() is not None:
            raise Failed(f"the lab stopped (exit {server.returncode}):\n{log.read_text()}")
    finally:
        server.terminate()
        server.wait()
    if "Traceback" in log.read_text() or "internal error" in log.read_text():
        raise Failed(f"the lab logged an error:\n{log.read_text()}")


def serve_shots(runs, env, work, chromium, shots):
    chosen = ensure_runs(runs, env)
    port, log = free_port(), work / "server.log"
    with open(log, "w") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "mnistlab", "serve", "--port", str(port), "--store", str(runs / STORE)],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_health(server, port, log)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium,
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            serve_screenshot(browser, f"http://127.0.0.1:{port}/", shots["serve-screenshot.png"])
            report_screenshot(browser, chosen["cnn"], env, work, shots["report-screenshot.png"])
            browser.close()
        if server.poll() is not None:
            raise Failed(f"the server stopped (exit {server.returncode}):\n{log.read_text()}")
    finally:
        server.terminate()
        server.wait()
    if "Traceback" in log.read_text():
        raise Failed(f"the server logged a traceback:\n{log.read_text()}")


def main(argv):
    only = None
    if argv[:1] == ["--only"] and len(argv) >= 2 and argv[1] in ("serve", "lab", "site"):
        only, argv = argv[1], argv[2:]
    if len(argv) > 1 or (argv and argv[0].startswith("-")):
        sys.exit(__doc__)
    work = pathlib.Path(tempfile.mkdtemp(prefix="mnistlab-screenshots-"))
    runs = pathlib.Path(argv[0]).resolve() if argv else work / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items() if key not in ("KERAS_BACKEND", "MNISTLAB_STORE")}
    env["MNISTLAB_RUNS"] = str(runs)
    chromium = os.environ.get("MNISTLAB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("take_screenshots: Chromium is not installed (apt-get install chromium)")
    shots = {}
    if only in (None, "site"):
        shots["site-screenshot.png"] = work / "site-screenshot.png"
    if only in (None, "serve"):
        shots.update(
            {
                "serve-screenshot.png": work / "serve-screenshot.png",
                "report-screenshot.png": work / "report-screenshot.png",
            }
        )
    if only in (None, "lab"):
        shots.update({name: work / name for name in LAB_SHOTS})
    try:
        if only in (None, "lab"):
            lab_shots(runs, env, work, chromium, shots)
        if only in (None, "serve"):
            serve_shots(runs, env, work, chromium, shots)
        if only in (None, "site"):
            site_shots(runs, env, work, chromium, shots)
    except (Failed, subprocess.CalledProcessError) as error:
        sys.exit(f"take_screenshots: {error}\n(no screenshot in docs/ was replaced; the work is in {work})")
    for name, taken in shots.items():
        shutil.copyfile(taken, DOCS / name)
        print(f"wrote docs/{name}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])

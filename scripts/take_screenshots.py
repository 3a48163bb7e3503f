"""Screenshots for docs/ (usage: python scripts/take_screenshots.py RUNS_ROOT [REPORT_HTML]): the draw-a-digit page with the inside view of all three networks (serve with no runs named: best validation run per family), and a run report."""
import os, socket, subprocess, sys, time, pathlib, http.client
from playwright.sync_api import sync_playwright
REPO = pathlib.Path(__file__).resolve().parent.parent
runs = pathlib.Path(sys.argv[1])
with socket.socket() as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
env = {**os.environ, "MNISTLAB_RUNS": str(runs)}
env.pop("KERAS_BACKEND", None)
server = subprocess.Popen([sys.executable, "-m", "mnistlab", "serve", "--port", str(port)], env=env)
try:
    for _ in range(240):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2); c.request("GET", "/healthz"); c.getresponse().read(); break
        except OSError: time.sleep(0.5)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1050, "height": 720})
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_function("document.getElementById('chosen').textContent.length > 0")
        box = page.locator("#pad").bounding_box()
        x, y = box["x"], box["y"]
        page.mouse.move(x + 70, y + 60); page.mouse.down()
        for i in range(1, 11): page.mouse.move(x + 70 + 14 * i, y + 60)
        for i in range(1, 16): page.mouse.move(x + 210 - 6 * i, y + 60 + 13 * i)
        page.mouse.up()
        page.wait_for_function("window.mnistlab.sent > 0 && !window.mnistlab.busy && document.querySelectorAll('.model').length === 3")
        page.wait_for_function("window.mnistlab.insideFor === window.mnistlab.shown && !window.mnistlab.insideBusy && document.querySelectorAll('.inside').length === 3")
        page.locator('.inside[data-family="cnn"] .fmap').nth(5).click()  # an enlarged first-layer map with its kernel
        page.mouse.move(0, 0)
        page.screenshot(path=str(REPO / "docs" / "serve-screenshot.png"), full_page=True)
        if len(sys.argv) > 2:
            report = pathlib.Path(sys.argv[2])
            page.goto(report.as_uri())
            page.screenshot(path=str(REPO / "docs" / "report-screenshot.png"), full_page=False)
        browser.close()
finally:
    server.terminate(); server.wait()
print("ok")

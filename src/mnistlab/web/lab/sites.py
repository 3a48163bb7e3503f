"""The lab's shared sites: ticked runs as a zip of the folder `mnistlab site` writes (docs/site.md).

Built by `python -m mnistlab site` in a child process: the export runs on TensorFlow, which the lab's own process
may not run (it opens models on one backend), and the child's memory goes when it ends. One site at a time (a
build is some seconds of CPU per model); another request meanwhile is told to try again (429, Retry-After).
"""

import io
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
import zipfile

from mnistlab.core.errors import ConfigError, RequestError
from mnistlab.web import site

BUILD_TIMEOUT_S = 600
RETRY_AFTER_S = 10
FOLDER = "mnistlab-site"  # the folder inside the zip


class SiteBusy(RequestError):
    """Another site is being built: try again in RETRY_AFTER_S seconds."""

    retry_after_seconds = RETRY_AFTER_S  # the error reply's Retry-After

    def __init__(self):
        super().__init__("a site is being built for another request; try again in a few seconds", 429)


class SiteBuilder:
    """Zips of `mnistlab site` folders of the store's finished runs, one build at a time."""

    def __init__(self, store_path, run_dir_of):
        """`run_dir_of(run_id)`: a finished run's directory with its model, or the RequestError saying why not."""
        self.store_path = store_path
        self.run_dir_of = run_dir_of
        self._building = threading.Lock()

    def zip_of(self, request) -> bytes:
        """The zip of the site of {"runs": [run ids]} (at most `site.MAX_MODELS`, one card each)."""
        run_ids = _run_ids(request)
        run_dirs = [self.run_dir_of(run_id) for run_id in run_ids]  # 404 or 409 before any work
        if not self._building.acquire(blocking=False):
            raise SiteBusy()
        try:
            return self._build(run_dirs)
        finally:
            self._building.release()

    def _build(self, run_dirs):
        with tempfile.TemporaryDirectory(prefix="mnistlab-lab-site-") as scratch:
            out = pathlib.Path(scratch) / FOLDER
            environment = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
            try:
                result = subprocess.run(
                    [sys.executable, "-m", "mnistlab", "site", *map(str, run_dirs), "--out", str(out)]
                    + ["--store", str(self.store_path)],
                    capture_output=True,
                    text=True,
                    env=environment,
                    timeout=BUILD_TIMEOUT_S,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise RequestError(f"building the site took over {BUILD_TIMEOUT_S} s; try fewer runs", 503) from None
            if result.returncode != 0:
                said = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
                if not said:  # no one line of its own: a bug, answered 500 with the child's last words in the lab's log
                    raise RuntimeError(f"mnistlab site ended with {result.returncode}: {result.stderr[-2000:]}")
                # The command's own one line (a run it cannot export, the runtime missing offline): the lab says it.
                raise RequestError(said[-1][len("error: ") :], 409)
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for path in sorted(out.rglob("*")):
                    if path.is_file():
                        archive.write(path, f"{FOLDER}/{path.relative_to(out).as_posix()}")
            return buffer.getvalue()


def _run_ids(request):
    runs = request.get("runs") if isinstance(request, dict) else None
    if not isinstance(runs, list) or not runs:
        raise ConfigError('the body must be {"runs": [run ids]}, one to 6 finished runs', field="runs")
    if len(runs) > site.MAX_MODELS:
        raise ConfigError(f"a site holds at most {site.MAX_MODELS} runs, got {len(runs)}", field="runs")
    if not all(type(run) is int and 1 <= run < 2**63 for run in runs) or len(set(runs)) != len(runs):
        raise ConfigError("runs must be distinct run ids (positive integers)", field="runs")
    return runs

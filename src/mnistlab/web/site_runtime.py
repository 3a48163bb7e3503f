"""The runtime a shared site runs its networks on in the browser: onnxruntime-web, one pinned release.

Fetched the first time by npm (`npm pack`, by package name, from the registry npm is set up for), checked
against the integrity hash the registry publishes for that release (pinned here: a tarball that differs in one
byte is refused), and cached beside the datasets, as MNIST is: download, verify, cache. Offline, or without npm,
one line names the file to place by hand. Only the files the page loads are taken out of the package: the
WebAssembly build's loader, its glue module and its binary, and the package's own metadata (its licence).
"""

import base64
import hashlib
import io
import pathlib
import shutil
import subprocess
import tarfile
import tempfile

from mnistlab.core import fileio, paths
from mnistlab.core.errors import MnistlabError

PACKAGE = "onnxruntime-web"
VERSION = "1.31.1"
# `npm view onnxruntime-web@1.31.1 dist.integrity`: the registry's Subresource-Integrity string of the tarball.
INTEGRITY = "sha512-5GeH+bWQ+HxM10z7erGlsWqryrwMbSvm/1tkIsKTT48g0fI19VXVVC435t4t7VsPdSQeS7NmuZPXrQ73k82URw=="
TARBALL = f"{PACKAGE}-{VERSION}.tgz"
# What the page loads (ort.wasm.min.js imports the glue module, which fetches the binary), and package.json,
# whose "license" (MIT) is written beside them. Nothing else of the package's 30 MB is copied.
FILES = (
    "package/dist/ort.wasm.min.js",
    "package/dist/ort-wasm-simd-threaded.mjs",
    "package/dist/ort-wasm-simd-threaded.wasm",
    "package/package.json",
)
NPM_TIMEOUT_S = 600
LICENCE = """onnxruntime-web {version}: MIT License (its package.json: "license": "{licence}")

Copyright (c) Microsoft Corporation

Permission is hereby granted, free of charge, to any person obtaining a copy of this software and associated
documentation files (the "Software"), to deal in the Software without restriction, including without limitation
the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of the Software, and
to permit persons to whom the Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or substantial portions
of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO
THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF
CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS
IN THE SOFTWARE.
"""


class RuntimeUnavailable(MnistlabError):
    """The browser runtime is not cached and cannot be fetched, or what was fetched is not the pinned release."""


def integrity_of(payload):
    """PAYLOAD's Subresource-Integrity string, as npm publishes it: "sha512-" and the base64 digest."""
    return "sha512-" + base64.b64encode(hashlib.sha512(payload).digest()).decode("ascii")


def runtime_dir(cache=None):
    """Where the runtime's files are kept once verified: DATA_CACHE/onnxruntime-web-VERSION/."""
    return pathlib.Path(cache or paths.data_cache()) / f"{PACKAGE}-{VERSION}"


def runtime_files(cache=None, fetch=None):
    """{file name: path} of the runtime's files in the cache, fetching and verifying the release the first time.

    FETCH(destination) writes the tarball there (default: `npm pack`); a tarball already at
    DATA_CACHE/onnxruntime-web-VERSION.tgz (placed by hand) is used as it is, once verified."""
    directory = runtime_dir(cache)
    wanted = {pathlib.PurePosixPath(member).name: directory / pathlib.PurePosixPath(member).name for member in FILES}
    wanted["LICENSE"] = directory / "LICENSE"
    if all(path.is_file() for path in wanted.values()):
        return wanted
    tarball = directory.parent / TARBALL
    if not tarball.is_file():
        (fetch or npm_pack)(tarball)
    payload = tarball.read_bytes()
    found = integrity_of(payload)
    if found != INTEGRITY:
        raise RuntimeUnavailable(
            f"{tarball}: not the published {PACKAGE} {VERSION} (its integrity is {found[:30]}..., expected {INTEGRITY[:30]}...); delete it and run again"
        )
    _extract(payload, directory)
    return wanted


def _extract(payload, directory):
    """The FILES of the verified tarball into DIRECTORY, each written whole or not at all, and the licence."""
    import json

    directory.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(payload), mode="r:gz") as archive:
        contents = {}
        for member in FILES:
            try:
                handle = archive.extractfile(member)
            except KeyError:
                handle = None
            if handle is None:
                raise RuntimeUnavailable(f"{PACKAGE} {VERSION}: its package has no {member}")
            contents[pathlib.PurePosixPath(member).name] = handle.read()
    licence = json.loads(contents["package.json"]).get("license", "unknown")
    # The licence last: runtime_files takes the cache as complete only when every file is there.
    for name, content in contents.items():
        fileio.write_bytes(directory / name, content)
    fileio.write_bytes(directory / "LICENSE", LICENCE.format(version=VERSION, licence=licence).encode())


def npm_pack(destination):
    """Fetch the pinned release's tarball with npm to DESTINATION (npm checks it too; runtime_files checks again)."""
    destination = pathlib.Path(destination)
    by_hand = (
        f"place {TARBALL} (from `npm pack {PACKAGE}@{VERSION}` on a machine online) at {destination} to work offline"
    )
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeUnavailable(f"{PACKAGE} {VERSION} is not cached and npm is not installed; {by_hand}")
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=destination.parent, prefix=".npm-pack-") as scratch:
        try:
            result = subprocess.run(
                [npm, "pack", f"{PACKAGE}@{VERSION}", "--silent", "--pack-destination", scratch],
                capture_output=True,
                text=True,
                timeout=NPM_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise RuntimeUnavailable(f"npm could not fetch {PACKAGE} {VERSION} ({error}); {by_hand}") from None
        packed = pathlib.Path(scratch) / TARBALL
        if result.returncode != 0 or not packed.is_file():
            reason = (result.stderr.strip().splitlines() or ["no tarball written"])[-1]
            raise RuntimeUnavailable(f"npm could not fetch {PACKAGE} {VERSION} ({reason}); {by_hand}")
        fileio.write_bytes(destination, packed.read_bytes())
    return destination

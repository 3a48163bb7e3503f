"""The shared site's browser runtime (web/site_runtime.py): fetched once, checked against the pinned integrity
hash, cached; refused when one byte differs; offline, one line naming the file to place by hand.

No network here: the "registry" is a tarball these tests build, laid out as the npm package is, and the check is
against its own integrity string computed independently (hashlib + base64, as the Subresource-Integrity spec
defines it), with the module's pin pointed at it."""

import base64
import hashlib
import io
import json
import tarfile

import pytest

from mnistlab.web import site_runtime


def _package(extra=b""):
    """A tarball shaped like onnxruntime-web's: its FILES and one file the site must not copy."""
    contents = {
        "package/dist/ort.wasm.min.js": b"/* loader */" + extra,
        "package/dist/ort-wasm-simd-threaded.mjs": b"/* glue */",
        "package/dist/ort-wasm-simd-threaded.wasm": b"\0asm\1\0\0\0",
        "package/package.json": json.dumps({"name": "onnxruntime-web", "license": "MIT"}).encode(),
        "package/dist/ort.all.js": b"/* 6 MB the page does not load */",
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in contents.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _sri(payload):
    return "sha512-" + base64.b64encode(hashlib.sha512(payload).digest()).decode()


def test_the_release_is_fetched_once_verified_and_only_the_pages_files_kept(tmp_path, monkeypatch):
    payload = _package()
    monkeypatch.setattr(site_runtime, "INTEGRITY", _sri(payload))
    fetched = []

    def fetch(destination):
        fetched.append(destination)
        destination.write_bytes(payload)

    files = site_runtime.runtime_files(tmp_path, fetch=fetch)
    assert sorted(files) == [
        "LICENSE",
        "ort-wasm-simd-threaded.mjs",
        "ort-wasm-simd-threaded.wasm",
        "ort.wasm.min.js",
        "package.json",
    ]
    assert files["ort-wasm-simd-threaded.wasm"].read_bytes() == b"\0asm\1\0\0\0"
    assert "MIT" in files["LICENSE"].read_text() and "Microsoft" in files["LICENSE"].read_text()
    assert not (site_runtime.runtime_dir(tmp_path) / "ort.all.js").exists()
    # Cached: asked again, nothing is fetched.
    assert site_runtime.runtime_files(tmp_path, fetch=fetch) == files and len(fetched) == 1


def test_a_tarball_that_differs_in_one_byte_is_refused_and_nothing_is_cached(tmp_path, monkeypatch):
    monkeypatch.setattr(site_runtime, "INTEGRITY", _sri(_package()))
    tampered = _package(extra=b" ")
    with pytest.raises(site_runtime.RuntimeUnavailable, match="not the published onnxruntime-web .*delete it"):
        site_runtime.runtime_files(tmp_path, fetch=lambda destination: destination.write_bytes(tampered))
    assert not site_runtime.runtime_dir(tmp_path).exists()


def test_offline_one_line_names_the_file_to_place_by_hand(tmp_path, monkeypatch):
    monkeypatch.setattr(site_runtime.shutil, "which", lambda name: None)  # no npm on this machine
    with pytest.raises(site_runtime.RuntimeUnavailable) as raised:
        site_runtime.runtime_files(tmp_path)
    message = str(raised.value)
    assert "\n" not in message and f"place {site_runtime.TARBALL}" in message
    assert str(tmp_path / site_runtime.TARBALL) in message
    # Placed there by hand, it is used as it is (once verified).
    payload = _package()
    monkeypatch.setattr(site_runtime, "INTEGRITY", _sri(payload))
    (tmp_path / site_runtime.TARBALL).write_bytes(payload)
    assert site_runtime.runtime_files(tmp_path)["ort.wasm.min.js"].read_bytes() == b"/* loader */"


def test_the_pinned_integrity_is_the_registrys_form():
    """sha512, base64 of a 64-byte digest: what `npm view PACKAGE@VERSION dist.integrity` prints."""
    algorithm, digest = site_runtime.INTEGRITY.split("-", 1)
    assert algorithm == "sha512" and len(base64.b64decode(digest)) == 64
    assert site_runtime.integrity_of(b"abc") == _sri(b"abc")

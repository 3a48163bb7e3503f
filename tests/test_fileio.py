"""Atomic writes and the one-line errors of reading a user's file."""

import os

import pytest

from mnistlab.core import fileio
from mnistlab.core.errors import DataError


def test_write_replaces_whole_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "metrics.json"
    fileio.write_json(path, {"a": 1})
    fileio.write_json(path, {"a": 2})
    assert path.read_text() == '{\n  "a": 2\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with fileio.atomic_path(path) as temp_path:
            temp_path.write_bytes(b"half of the new one")
            raise RuntimeError("the writer died")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]


def test_atomic_path_keeps_the_extension_last(tmp_path):
    # Keras and matplotlib choose the format from the extension.
    with fileio.atomic_path(tmp_path / "diagram.svg") as temp_path:
        assert temp_path.name.endswith(".svg")
        temp_path.write_text("<svg/>")


@pytest.mark.parametrize("make, message", [(lambda p: None, "file not found"), (lambda p: p.mkdir(), "is a directory")])
def test_read_errors_are_one_line_of_the_given_kind(tmp_path, make, message):
    path = tmp_path / "input"
    make(path)
    with pytest.raises(DataError, match=message) as caught:
        fileio.read_bytes(path, DataError)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_atomic_path_never_changes_the_process_umask(tmp_path, monkeypatch):
    """Other threads create files while one is written: a moment of umask 0 would make theirs world-writable."""
    calls = []
    monkeypatch.setattr(os, "umask", lambda mask: calls.append(mask) or 0o022)
    fileio.write_json(tmp_path / "a.json", {"a": 1})
    with fileio.atomic_path(tmp_path / "b.bin") as temp_path:
        temp_path.write_bytes(b"b")
    assert calls == []


def test_whatever_wrote_the_file_it_is_synced_before_the_rename_and_the_directory_after(tmp_path, monkeypatch):
    """A file written by another library (Keras, NumPy, Pillow) through atomic_path reaches the disk before it
    replaces the old one: fsync of the file, then the rename, then fsync of the directory."""
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(
        os,
        "fsync",
        lambda descriptor: (
            events.append(("fsync", os.path.realpath(f"/proc/self/fd/{descriptor}"))) or real_fsync(descriptor)
        ),
    )
    monkeypatch.setattr(
        os, "replace", lambda source, target: events.append(("replace", str(target))) or real_replace(source, target)
    )
    path = tmp_path / "predictions.npz"
    with fileio.atomic_path(path) as temp_path:
        import numpy as np

        np.savez(temp_path, a=np.arange(3))  # a writer that is not ours
        written = os.path.realpath(temp_path)
    assert events == [("fsync", written), ("replace", str(path)), ("fsync", os.path.realpath(tmp_path))]

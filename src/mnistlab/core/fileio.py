"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

import contextlib
import json
import os
import pathlib
import secrets


@contextlib.contextmanager
def atomic_path(path, suffix=None):
    """Yield a temporary path beside `path`; move it into place only on success.

    The temporary file lives in the same directory so that `os.replace` is an
    atomic rename on POSIX. On any exception the temporary file is removed and
    `path` is left exactly as it was. Whatever wrote the temporary file (Keras,
    NumPy, Pillow, ours), its bytes reach the disk before the rename, and the
    rename before this returns: after a power cut the file is the old one or the
    new one, never an empty or torn one.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Keep the real extension last: some writers (Keras, matplotlib) choose the
    # format from it.
    suffix = suffix if suffix is not None else "".join(path.suffixes)
    temp_path = _new_file_beside(path, suffix)
    try:
        yield temp_path
        _sync(temp_path)
        os.replace(temp_path, path)
        _sync_directory(path.parent)
    finally:
        if temp_path.exists():
            temp_path.unlink()


def _new_file_beside(path, suffix):
    """A new empty file next to PATH with the mode a plain open() gives (0666 less the umask, applied by the
    kernel): never the process-wide umask read by setting it, which other threads would create files under."""
    while True:
        candidate = path.parent / f".{path.stem}.{secrets.token_hex(6)}.part{suffix}"
        try:
            os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return candidate
        except FileExistsError:
            continue


def _sync(path):
    """fsync a file (or each file of a directory a writer made, such as a SavedModel) to the disk."""
    if path.is_dir():
        for inner in sorted(path.rglob("*")):
            if inner.is_file():
                _sync(inner)
        _sync_directory(path)
        return
    _fsync(path)


def _sync_directory(directory):
    """fsync a directory, so that a rename into it is on the disk (POSIX; Windows has no such call)."""
    if os.name != "nt":
        _fsync(directory)


def _fsync(path):
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def read_bytes(path, error=None, missing_hint=""):
    """Read a file the user pointed at; a missing or unreadable file raises `error` (a
    MnistlabError subclass) with one line naming it."""
    from mnistlab.core.errors import MnistlabError

    error = error or MnistlabError
    try:
        return pathlib.Path(path).read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: {missing_hint or 'file not found'}") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, not a file") from None
    except OSError as failure:
        raise error(f"{path}: cannot read ({failure.strerror})") from None


def write_bytes(path, payload):
    with atomic_path(path) as temp_path:
        temp_path.write_bytes(payload)  # atomic_path syncs it before the rename


def write_text(path, text):
    write_bytes(path, text.encode("utf-8"))


def plain(value, key="value"):
    """VALUE as JSON's own types: NumPy scalars and arrays become numbers and lists, paths strings.

    Anything else is refused with a TypeError naming its key (`metrics.params`),
    rather than written as its repr and read back as a string.
    """
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, dict):
        return {str(name): plain(item, f"{key}.{name}") for name, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item, f"{key}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "dtype") and hasattr(value, "tolist"):  # a NumPy scalar or array, without importing NumPy
        return plain(value.tolist(), key)
    raise TypeError(
        f"{key} is a {type(value).__module__}.{type(value).__qualname__}, which has no JSON form; record numbers, strings, lists or dicts"
    )


def dumps(obj, name="value", **options):
    """json.dumps of `plain(obj, name)`: what every JSON file and answer of mnistlab is written with."""
    return json.dumps(plain(obj, name), **options)


def write_json(path, obj):
    write_text(path, dumps(obj, pathlib.Path(path).stem, indent=2) + "\n")

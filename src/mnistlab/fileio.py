"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

import contextlib
import json
import os
import pathlib
import tempfile


@contextlib.contextmanager
def atomic_path(path, suffix=None):
    """Yield a temporary path beside `path`; move it into place only on success.

    The temporary file lives in the same directory so that `os.replace` is an
    atomic rename on POSIX. On any exception the temporary file is removed and
    `path` is left exactly as it was.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Keep the real extension last: some writers (Keras, matplotlib) choose the
    # format from it.
    suffix = suffix if suffix is not None else "".join(path.suffixes)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{suffix}", dir=path.parent)
    os.close(handle)
    temp_path = pathlib.Path(temp_name)
    # mkstemp creates 0600 files; give the result the mode a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temp_path, 0o666 & ~umask)
    try:
        yield temp_path
        os.replace(temp_path, path)
    finally:
        if temp_path.exists():
            temp_path.unlink()


def read_bytes(path, error=None, missing_hint=""):
    """Read a file the user pointed at; a missing or unreadable file raises `error` (a
    MnistlabError subclass) with one line naming it."""
    from mnistlab.errors import MnistlabError

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
        with open(temp_path, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())


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
    raise TypeError(f"{key} is a {type(value).__module__}.{type(value).__qualname__}, which has no JSON form; record numbers, strings, lists or dicts")


def dumps(obj, name="value", **options):
    """json.dumps of `plain(obj, name)`: what every JSON file and answer of mnistlab is written with."""
    return json.dumps(plain(obj, name), **options)


def write_json(path, obj):
    write_text(path, dumps(obj, pathlib.Path(path).stem, indent=2) + "\n")

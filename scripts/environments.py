"""A machine's set-up environments, kept so that a fresh clone copies one instead of installing it again.

`bash scripts/setup.sh` installs gigabytes of packages into .venv: unpacking them costs CPU even from pip's
wheel cache. A machine that has set up the same environment before (the same Python,
profile, dependencies in pyproject.toml and lock) keeps it in its cache folder, and a fresh clone takes it
as hard links: no unpacking, and no new disk. The copy then points at its own clone: the scripts in .venv/bin,
pyvenv.cfg and the editable install of mnistlab name the clone they were made in, and are rewritten. Those
files are written anew (a new file, then a rename), so the kept environment is never changed through its
links; nor is it by pip later (pip removes and writes files, it does not write into them).

    python scripts/environments.py take PROFILE      copy the kept environment into .venv; exit 1 if none
    python scripts/environments.py keep PROFILE      keep .venv (just installed and checked) for the next clone

Run by scripts/setup.sh with the Python it sets up with, from the clone's top. MNISTLAB_FRESH_ENVIRONMENT=1
in setup.sh's environment skips both: every set-up installs.
"""

import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tomllib

KEPT = 2  # environments kept per machine, the most recently made: the others are removed
LOCK = pathlib.Path("requirements/ci-lock.txt")
VENV = pathlib.Path(".venv")


def _cache_root():
    cache_home = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(cache_home) / "mnistlab" / "environments"


def key(profile):
    """What the environment depends on: the Python, the profile, what pyproject.toml installs, and the lock."""
    project = tomllib.loads(pathlib.Path("pyproject.toml").read_text())
    installs = {
        "profile": profile,
        "python": [os.path.realpath(sys.executable), sys.version],
        "project": {
            name: project["project"].get(name) for name in ("dependencies", "optional-dependencies", "scripts")
        },
        "build": project.get("build-system"),
        "lock": LOCK.read_text() if LOCK.exists() else None,
    }
    return hashlib.sha256(json.dumps(installs, sort_keys=True).encode()).hexdigest()[:20]


def _files_naming_the_clone(venv):
    """The files of VENV that name the clone it was made in."""
    yield from (venv / "bin").iterdir()
    yield venv / "pyvenv.cfg"
    for site_packages in venv.glob("lib/python3.*/site-packages"):
        yield from site_packages.glob("*.pth")
        yield from site_packages.glob("__editable__*")
        yield from site_packages.glob("mnistlab-*.dist-info/*")


def _repoint(venv, origin, clone):
    """Rewrite ORIGIN as CLONE in VENV's files that name it, each as a new file (its link to the kept one broken).

    Only where the path ends there (a slash, quote, white space or the end follows): /a/clone2 is not /a/clone's.
    """
    pattern = re.compile(re.escape(origin.encode()) + rb"(?=[/\"'\s]|\Z)")
    for path in _files_naming_the_clone(venv):
        if not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        if origin.encode() not in data:
            continue
        fresh = path.with_name(path.name + ".repointed")
        fresh.write_bytes(pattern.sub(lambda match: clone.encode(), data))
        shutil.copymode(path, fresh)
        os.replace(fresh, path)


def take(profile):
    kept = _cache_root() / key(profile)
    if VENV.exists() or not (kept / "origin").is_file():
        return 1
    partial = pathlib.Path(".venv.partial")
    shutil.rmtree(partial, ignore_errors=True)
    # cp -al: hard links, as git and pip's cache do it (Python's copytree would copy 3.8 GB).
    if subprocess.run(["cp", "-al", str(kept / "venv"), str(partial)], stderr=subprocess.DEVNULL).returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        return 1  # another filesystem, most likely: install instead
    try:
        _repoint(partial, (kept / "origin").read_text(), str(pathlib.Path.cwd()))
        partial.rename(VENV)
    except OSError as error:
        print(f"setup: the kept environment could not be copied ({error}); installing instead", file=sys.stderr)
        shutil.rmtree(partial, ignore_errors=True)
        return 1
    return 0


def keep(profile):
    root = _cache_root()
    kept = root / key(profile)
    if kept.exists():
        return 0
    partial = root / f"{kept.name}.partial-{os.getpid()}"
    try:
        partial.mkdir(parents=True)
        if subprocess.run(["cp", "-al", str(VENV), str(partial / "venv")], stderr=subprocess.DEVNULL).returncode:
            raise OSError("cannot link .venv into the cache (another filesystem?)")
        for stamp in (partial / "venv").glob(".mnistlab-*"):
            stamp.unlink()  # each clone writes its own, after taking the copy
        (partial / "origin").write_text(str(pathlib.Path.cwd()))
        partial.rename(kept)
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)
        return 0  # nothing kept: the next clone installs, as before
    made = sorted(
        (path for path in root.iterdir() if (path / "origin").is_file()), key=lambda path: path.stat().st_mtime
    )
    for old in made[:-KEPT]:
        shutil.rmtree(old, ignore_errors=True)
    return 0


if __name__ == "__main__":
    action, profile = sys.argv[1:3]
    sys.exit({"take": take, "keep": keep}[action](profile))

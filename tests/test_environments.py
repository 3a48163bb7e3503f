"""scripts/environments.py: a fresh clone copies the environment its machine keeps, pointed at itself, and the kept one
never changes through the copy's links."""

import os
import shutil

from conftest import REPO, load_script

environments = load_script("scripts/environments.py")


def _clone(root, name):
    """A directory laid out as a clone's top: what `key` reads."""
    clone = root / name
    (clone / "requirements").mkdir(parents=True)
    shutil.copy(REPO / "pyproject.toml", clone / "pyproject.toml")
    (clone / "requirements" / "ci-lock.txt").write_text("keras==3.15.1\n")
    return clone


def _installed_venv(clone):
    """What pip leaves in CLONE/.venv, in the files that name the clone."""
    venv = clone / ".venv"
    site = venv / "lib" / "python3.11" / "site-packages"
    (site / "mnistlab-0.1.0.dist-info" / "licenses").mkdir(parents=True)
    (venv / "bin").mkdir()
    (venv / "bin" / "pytest").write_text(f"#!{clone}/.venv/bin/python\nimport sys\n")
    (venv / "bin" / "pytest").chmod(0o755)
    (venv / "bin" / "python").symlink_to("/usr/bin/python3")
    (venv / "pyvenv.cfg").write_text(f"home = /usr/bin\ncommand = /usr/bin/python3 -m venv {clone}/.venv\n")
    (site / "__editable__.mnistlab-0.1.0.pth").write_text(f"{clone}/src\n")
    (site / "mnistlab-0.1.0.dist-info" / "direct_url.json").write_text(
        f'{{"dir_info": {{"editable": true}}, "url": "file://{clone}"}}'
    )
    (site / "numpy.py").write_text(f"# not a file that names the clone, though it says {clone}2\n")
    (venv / ".mnistlab-all").touch()
    return venv


def test_a_fresh_clone_takes_the_kept_environment_pointed_at_itself(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first = _clone(tmp_path, "first")
    venv = _installed_venv(first)
    monkeypatch.chdir(first)
    assert environments.keep("all") == 0
    [kept] = (tmp_path / "cache" / "mnistlab" / "environments").iterdir()
    assert (kept / "origin").read_text() == str(first) and not (kept / "venv" / ".mnistlab-all").exists()

    second = _clone(tmp_path, "second")
    monkeypatch.chdir(second)
    assert environments.take("all") == 0
    taken = second / ".venv"
    site = taken / "lib" / "python3.11" / "site-packages"
    assert (taken / "bin" / "pytest").read_text().startswith(f"#!{second}/.venv/bin/python\n")
    assert os.access(taken / "bin" / "pytest", os.X_OK) and (taken / "bin" / "python").is_symlink()
    assert f"venv {second}/.venv" in (taken / "pyvenv.cfg").read_text()
    assert (site / "__editable__.mnistlab-0.1.0.pth").read_text() == f"{second}/src\n"
    assert f'"file://{second}"' in (site / "mnistlab-0.1.0.dist-info" / "direct_url.json").read_text()
    assert not (taken / ".mnistlab-all").exists()  # setup.sh writes the clone's own stamp once it checked the copy
    # A path that only begins like the first clone's is not the first clone's.
    assert (site / "numpy.py").read_text().endswith(f"{first}2\n")
    # The copy is hard links, but what was rewritten is a file of its own: the kept environment still names the first.
    assert (site / "numpy.py").stat().st_ino == (
        venv / "lib" / "python3.11" / "site-packages" / "numpy.py"
    ).stat().st_ino
    kept_site = kept / "venv" / "lib" / "python3.11" / "site-packages"
    assert (kept_site / "__editable__.mnistlab-0.1.0.pth").read_text() == f"{first}/src\n"
    assert (kept / "venv" / "bin" / "pytest").read_text().startswith(f"#!{first}/.venv/bin/python\n")

    # A clone that has its own .venv, or whose dependencies differ, installs: nothing is taken.
    assert environments.take("all") == 1
    third = _clone(tmp_path, "third")
    (third / "requirements" / "ci-lock.txt").write_text("keras==3.15.2\n")
    monkeypatch.chdir(third)
    assert environments.take("all") == 1 and not (third / ".venv").exists()
    assert environments.take("core") == 1


def test_the_key_follows_what_is_installed_not_the_tools_settings(tmp_path, monkeypatch):
    clone = _clone(tmp_path, "clone")
    monkeypatch.chdir(clone)
    before = environments.key("all")
    pyproject = clone / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n[tool.some-linter]\nline-length = 99\n")
    assert environments.key("all") == before
    pyproject.write_text(pyproject.read_text().replace('"numpy>=1.26"', '"numpy>=2"', 1))
    assert environments.key("all") != before

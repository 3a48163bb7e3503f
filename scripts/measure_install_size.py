"""Measure the disk size of a fresh virtual environment with mnistlab's core, and with `all`.

Installs into temporary environments exactly as scripts/setup.sh does here
(with requirements/ci-lock.txt as constraints on Linux x86_64 / Python 3.11)
and records the size, the package count and any CUDA package, with date,
commit and machine, in docs/install/sizes.json. The README's install table
is rendered from that file (scripts/render_docs.py).

Usage: python scripts/measure_install_size.py
"""

import json
import pathlib
import platform
import subprocess
import sys
import tempfile

from mnistlab.core import provenance

REPO = pathlib.Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "install" / "sizes.json"
PROFILES = {"core": "", "all": "[all]"}


def size_of(path):
    return sum(entry.stat().st_size for entry in path.rglob("*") if entry.is_file() and not entry.is_symlink())


def main():
    rows = []
    for profile, extras in PROFILES.items():
        with tempfile.TemporaryDirectory(prefix=f"mnistlab-size-{profile}-") as scratch:
            venv = pathlib.Path(scratch) / "venv"
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            python = venv / "bin" / "python"
            constraints = (
                ["-c", str(REPO / "requirements" / "ci-lock.txt")]
                if platform.system() == "Linux" and platform.machine() == "x86_64" and sys.version_info[:2] == (3, 11)
                else []
            )
            subprocess.run(
                [
                    str(python),
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    *constraints,
                    f"{REPO}{extras}",
                ],
                check=True,
            )
            listed = subprocess.run(
                [str(python), "-m", "pip", "list", "--format", "json"], capture_output=True, text=True, check=True
            ).stdout
            packages = [entry["name"].lower() for entry in json.loads(listed)]
            rows.append(
                {
                    "profile": profile,
                    "megabytes": round(size_of(venv) / 1e6),
                    "packages": len(packages),
                    "cuda_packages": sorted(name for name in packages if name.startswith(("nvidia-", "cuda-"))),
                    "constraints": bool(constraints),
                }
            )
            print(f"{profile}: {rows[-1]['megabytes']} MB, {len(packages)} packages", flush=True)
    result = {**provenance.stamp(REPO), "rows": rows}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"Wrote {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()

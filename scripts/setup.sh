#!/usr/bin/env bash
# Set up mnistlab on a fresh machine: system packages (when we may install
# them), a virtual environment in .venv, and the package with its test tools.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: Graphviz draws model diagrams, Debian's dataset-fashion-mnist
# provides the full-size offline dataset, Chromium runs the browser tests.
want=(graphviz dataset-fashion-mnist chromium)
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  missing=()
  for package in "${want[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]} with apt-get" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
else
  for tool in dot; do
    command -v "$tool" >/dev/null 2>&1 || echo "setup: Graphviz is missing; install it (apt-get install graphviz) for model diagrams" >&2
  done
fi

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "setup: mnistlab needs Python 3.11 or newer ($python is $("$python" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
# Quiet unless it fails; the stamp skips the install when pyproject.toml is unchanged.
stamp=.venv/.mnistlab-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing Python packages into .venv (first time: a few minutes)" >&2
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]" 2>&1 | grep -v "^WARNING: Location" >&2 || true
  .venv/bin/python -c "import importlib.util as u, sys; sys.exit(any(u.find_spec(m) is None for m in ('mnistlab', 'keras', 'jax', 'tensorflow', 'torch', 'pytest')))" && touch "$stamp"
fi

#!/usr/bin/env bash
# Set up mnistlab in .venv on a fresh machine. Safe to run again: it installs only what is missing.
#
#   bash scripts/setup.sh core   what the main job needs: the core package, and Graphviz for diagrams
#   bash scripts/setup.sh all    everything, for the test suite: every extra, the test tools, Chromium
#
# On Linux x86_64 with Python 3.11 the Python packages are held to requirements/ci-lock.txt,
# the set CI tests (scripts/lock.sh writes it); elsewhere pip takes the newest versions the
# ranges in pyproject.toml allow (docs/install.md shows what resolves where).
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${1:-all}
case "$profile" in
  core) system=(graphviz); extras="" ;;
  all) system=(graphviz chromium); extras="[all,test]" ;;
  *) echo "setup: unknown profile '$profile'; use core or all" >&2; exit 2 ;;
esac

# System packages, when we may install them: Graphviz draws model diagrams; Chromium runs the browser tests.
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  missing=()
  for package in "${system[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]} with apt-get" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
elif ! command -v dot >/dev/null 2>&1; then
  echo "setup: Graphviz is missing; install it (apt-get install graphviz, brew install graphviz) for model diagrams" >&2
fi

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] <= (3, 13)))'; then
  echo "setup: mnistlab needs Python 3.11, 3.12 or 3.13 ($python is $("$python" --version 2>&1)); set PYTHON=/path/to/python3.12" >&2
  exit 1
fi
# A fresh clone on a machine that set up the same environment before (the same Python, profile, dependencies
# and lock) copies the one the machine keeps, as hard links, instead of installing it again (scripts/environments.py).
took=""
if [ ! -x .venv/bin/python ]; then
  if [ -z "${MNISTLAB_FRESH_ENVIRONMENT:-}" ] && "$python" scripts/environments.py take "$profile"; then
    took=1
    echo "setup: .venv copied from the environment this machine keeps for this set-up (MNISTLAB_FRESH_ENVIRONMENT=1 installs afresh)" >&2
  else
    "$python" -m venv .venv
  fi
fi

constraints=()
lock=requirements/ci-lock.txt
if [ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] && .venv/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  constraints=(-c "$lock")
fi
modules="'mnistlab', 'keras', 'jax', 'tensorflow'"
[ "$profile" = all ] && modules="$modules, 'torch', 'ray', 'fastapi', 'onnxruntime', 'tensorboard', 'pytest', 'playwright', 'hypothesis', 'schemathesis'"
installed() { .venv/bin/python -c "import importlib.util as u, sys; sys.exit(any(u.find_spec(m) is None for m in ($modules)))"; }
# The stamp skips the install when nothing it depends on changed.
stamp=.venv/.mnistlab-$profile
[ -z "$took" ] || ! installed || touch "$stamp"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ "$lock" -nt "$stamp" ]; then
  echo "setup: installing mnistlab ($profile) into .venv (first time: a few minutes)" >&2
  [ ${#constraints[@]} -gt 0 ] || echo "setup: no lock for this platform and Python; taking the newest versions pyproject.toml allows" >&2
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "${constraints[@]}" -e ".$extras" 2>&1 | grep -v "^WARNING: Location" >&2 || true
  if installed; then
    touch "$stamp"
    [ -n "${MNISTLAB_FRESH_ENVIRONMENT:-}" ] || "$python" scripts/environments.py keep "$profile" || true
  fi
fi
# The shared site's browser runtime (onnxruntime-web, pinned and verified; `mnistlab site` fetches it the first
# time too): the site tests use the cached copy and never fetch it themselves.
if [ "$profile" = all ]; then
  .venv/bin/python -c "from mnistlab.web import site_runtime as r
try: r.runtime_files()
except r.RuntimeUnavailable as error: raise SystemExit(f'setup: {error} (mnistlab site needs it; its tests will say so)')" || true
fi

#!/usr/bin/env bash
# Set everything up, then run the default test suite (slow tests excluded:
# add -m slow to run those, or -m "slow or not slow" for everything).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"

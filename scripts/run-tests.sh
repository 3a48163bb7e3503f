#!/usr/bin/env bash
# Set up everything (every extra, the test tools, Chromium), then run the default test
# suite (slow tests excluded: add -m slow to run those, or -m "slow or not slow" for all).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh all
exec .venv/bin/python -m pytest "$@"

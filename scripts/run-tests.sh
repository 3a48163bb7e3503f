#!/usr/bin/env bash
# Set up everything (every extra, the test tools, Chromium), then run EVERY test, the slow
# ones included, in two processes, and print the 25 slowest. Arguments go to pytest; one that chooses by
# marker replaces "all": `bash scripts/run-tests.sh -m "not slow"` is the quick loop
# (what `.venv/bin/python -m pytest` runs by default), `-m slow` the slow tests alone.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh all
marker=(-m "slow or not slow")
for arg in "$@"; do
  case "$arg" in
    -m | -m?* | --markexpr | --markexpr=*) marker=() ;;
  esac
done
# Two test processes (pytest-xdist), a file each at a time: the suite is mostly trainings and
# fresh interpreters, which use about one core each. (Three were tried beside two CPU-bound processes: each
# process loads the frameworks and the session's fixtures again, and the suite took longer, 15 min 27 s against
# 15 min 3 s.) MNISTLAB_TEST_PROCESSES=0 runs in this one. The files are handed out in tests/conftest.py's order,
# heaviest first: left to itself, pytest-xdist hands out the files with the most tests first, and the README tour,
# one test of a minute and a half, started last while the other process had nothing left.
processes=(-n "${MNISTLAB_TEST_PROCESSES:-2}" --dist loadfile --no-loadscope-reorder)
[ "${MNISTLAB_TEST_PROCESSES:-2}" = 0 ] && processes=()
exec .venv/bin/python -m pytest "${marker[@]}" "${processes[@]}" --durations=25 "$@"

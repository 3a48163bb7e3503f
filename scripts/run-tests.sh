#!/usr/bin/env bash
# Set up everything (every extra, the test tools, Chromium), then run EVERY test, the slow
# ones included, in three processes, and print the 25 slowest. Arguments go to pytest; one that chooses by
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
# Three test processes (pytest-xdist), a file each at a time, on a machine of two cores: the suite is mostly
# trainings and fresh interpreters, about one core each, but it also waits (servers starting, a browser, Ray), and
# a third process fills those gaps. On a busy machine it also keeps the suite's share of the cores: beside two
# CPU-bound processes, two test processes got 2 of 4 equal shares (the suite took 15 min 3 s, set-up apart),
# three get 3 of 5. MNISTLAB_TEST_PROCESSES=0 runs in this one.
processes=(-n "${MNISTLAB_TEST_PROCESSES:-3}" --dist loadfile)
[ "${MNISTLAB_TEST_PROCESSES:-3}" = 0 ] && processes=()
exec .venv/bin/python -m pytest "${marker[@]}" "${processes[@]}" --durations=25 "$@"

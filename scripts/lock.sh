#!/usr/bin/env bash
# Write requirements/ci-lock.txt: the exact versions CI installs (core + all extras + test
# tools) on Linux x86_64 with Python 3.11, from a fresh virtual environment. scripts/setup.sh
# installs with it as constraints, so a reader gets the tested set; without it
# (`pip install -e ".[all]"`) pip chooses the newest versions the ranges allow.
# torch is held at 2.13.0, the CPU build this kind of machine keeps on disk: the public
# index's Linux torch is a CUDA build of several GB.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
"$python" -m venv "$scratch/venv"
echo "torch==2.13.0" > "$scratch/torch.txt"
"$scratch/venv/bin/python" -m pip install --quiet --disable-pip-version-check -c "$scratch/torch.txt" ".[all,test]"
{
  echo "# The versions CI installs: Linux x86_64, Python $("$scratch/venv/bin/python" -c 'import platform; print(platform.python_version())'),"
  echo "# written by scripts/lock.sh on $(date -u +%Y-%m-%d) at commit $(git rev-parse --short HEAD). Used as pip constraints by scripts/setup.sh."
  "$scratch/venv/bin/python" -m pip freeze --disable-pip-version-check --exclude-editable | grep -v -i '^mnistlab[ =@]'
} > requirements/ci-lock.txt.part
mv requirements/ci-lock.txt.part requirements/ci-lock.txt
echo "Wrote requirements/ci-lock.txt ($(grep -c '==' requirements/ci-lock.txt) packages)"

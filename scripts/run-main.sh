#!/usr/bin/env bash
# The main job: set up the core package, then train the three book listings on the
# default dataset (MNIST when cached or downloadable, else the built-in mnist-mini)
# and print their test accuracies. Extra arguments go to `mnistlab listings`,
# e.g. --dataset fashion-mnist or --epochs 1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh core
exec .venv/bin/mnistlab listings "$@"

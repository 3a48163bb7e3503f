#!/usr/bin/env bash
# Resolve core and `all` for Linux x86_64/aarch64, macOS arm64 and Windows x86_64 on
# Python 3.11-3.13 (uv resolves for other platforms from here), write docs/install.md,
# and fail when a combination does not resolve. Needs the network to the package index.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" scripts/check_install_matrix.py "$@"

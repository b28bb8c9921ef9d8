#!/usr/bin/env bash
# Install rnnx and everything it needs on a fresh Debian 12 / Python 3.11 machine.
#   bash install.sh          the package and its runtime dependencies
#   bash install.sh --dev    also the test tools
set -euo pipefail
cd "$(dirname "$0")"
pip=(python3 -m pip install --quiet --root-user-action=ignore --disable-pip-version-check)
# torch first and exactly: its CPU wheel is on these machines, while an open range resolves to a
# newer CUDA build of several GB (TOOLCHAIN-NOTES).
"${pip[@]}" torch==2.13.0
"${pip[@]}" -e ".${1:+[dev]}"

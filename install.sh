#!/usr/bin/env bash
# Install rnnx and everything it needs on a fresh Debian 12 / Python 3.11 machine.
#   bash install.sh          the package with everything it compiles with (`.[compile]`), and the edge toolchains
#   bash install.sh --dev    also the test tools, the source frameworks and the examples' datasets (aeon)
set -euo pipefail
cd "$(dirname "$0")"

# Cross compilers and emulators of the edge targets (`rnnx targets`), only those missing.
debian=(g++-aarch64-linux-gnu g++-riscv64-linux-gnu gcc-arm-none-eabi libnewlib-arm-none-eabi
        gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf qemu-user qemu-system-arm make)
missing=()
for p in "${debian[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  sudo=$( ((EUID)) && echo sudo || true)
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

pip=(python3 -m pip install --quiet --root-user-action=ignore --disable-pip-version-check)
# torch first and exactly: its CPU wheel is on these machines, while an open range resolves to a
# newer CUDA build of several GB (TOOLCHAIN-NOTES).
"${pip[@]}" torch==2.13.0
"${pip[@]}" -e ".[compile${1:+,dev}]"
# TVM's runtime libraries for aarch64 boards (PyPI's aarch64 wheels), fetched now, never at run time.
python3 -m rnnx.edge.tvm_runtime aarch64

#!/usr/bin/env bash
# Installs every Debian 12 package attnc's build and tests need. Idempotent:
# quiet and quick when everything is already present. Needs root (or sudo).
set -euo pipefail
packages=(
  cmake ninja-build g++ clang-22 libclang-rt-22-dev    # toolchain; clang for the fuzzer
  llvm-22-dev libmlir-22-dev mlir-22-tools llvm-22-tools libzstd-dev  # MLIR 22, lit, FileCheck
  zlib1g-dev                                           # libz.a (and libzstd.a) for the wheel's static link
  libboost-dev libgtest-dev libcli11-dev               # Spirit X3, GoogleTest, CLI11 (attnc's command line)
  python3 python3-numpy python3-venv                   # lit, numpy cross-checks; venvs for the wheel's build and test
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "setup: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"

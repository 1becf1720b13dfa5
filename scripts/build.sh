#!/usr/bin/env bash
# Configures and builds attnc into build/ (Release, clang-22, Ninja).
# Extra CMake arguments are passed through, e.g. -DATTNC_WITH_MLIR=OFF.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${ATTNC_BUILD_DIR:-$root/build}
cxx=${CXX:-$(command -v clang++-22 || command -v g++)}
cc=${CC:-$(command -v clang-22 || command -v gcc)}
cmake -G Ninja -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_C_COMPILER="$cc" "$@" >/dev/null
jobs=${ATTNC_JOBS:-$(nproc)}
start=$(date +%s)
ninja -C "$build" -j"$jobs"
echo "build: done in $(( $(date +%s) - start )) s ($build)"

#!/usr/bin/env bash
# Builds the attnc wheel (pyproject.toml, docs/runtime.md "Packaging") on a
# Debian 12 machine: the Python package, libattnrt.so with the compiler and
# MLIR/LLVM linked in statically (ATTNC_STATIC_LLVM), and the `attnc`
# command. Installs what it needs (scripts/setup.sh; scikit-build-core from
# PyPI into a build venv), compiles into build-wheel/ (incremental; never
# build/) and writes dist/attnc-VERSION-py3-none-linux_x86_64.whl.
#
#   scripts/build_wheel.sh [OUT_DIR]        (default: dist/)
#
# ATTNC_JOBS: parallel compile jobs (default: nproc). CC, CXX: the compilers
# (default clang-22, else gcc). PYTHON: the interpreter of the build venv
# (default python3). The wheel's path is the last line printed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-$root/dist}" && cd "${1:-$root/dist}" && pwd)
python=${PYTHON:-python3}

"$root/scripts/setup.sh"
# A python3 from somewhere else than Debian may lack venv; Debian's needs python3-venv.
if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
fi

# The build tools, in a venv of their own kept next to the build tree.
tools=$root/build-wheel/venv
if ! "$tools/bin/python" -c 'import scikit_build_core' 2>/dev/null; then
  echo "build_wheel: installing scikit-build-core into $tools"
  rm -rf "$tools"
  "$python" -m venv "$tools"
  "$tools/bin/python" -m pip install -q --disable-pip-version-check "scikit-build-core>=0.10"
fi

export CXX=${CXX:-$(command -v clang++-22 || command -v g++)}
export CC=${CC:-$(command -v clang-22 || command -v gcc)}
export CMAKE_BUILD_PARALLEL_LEVEL=${ATTNC_JOBS:-$(nproc)}
version=$(sed -n 's/^project(attnc VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
wheel=$out/attnc-$version-py3-none-linux_x86_64.whl
rm -f "$wheel"
start=$(date +%s)
# -v shows the compile; no isolation: the venv's scikit-build-core, and
# CMake and Ninja from Debian (scripts/setup.sh).
(cd "$root" && "$tools/bin/python" -m pip wheel -v --no-build-isolation --no-deps --disable-pip-version-check \
  -w "$out" "$root")
[ -f "$wheel" ] || { echo "build_wheel: error: no $wheel after the build" >&2; exit 1; }
echo "build_wheel: done in $(( $(date +%s) - start )) s: $(du -h "$wheel" | cut -f1)"
echo "$wheel"

#!/usr/bin/env bash
# Sets up, builds and runs every test that needs no GPU: unit tests, lit
# tests, the malformed-input and reference cross-checks (ctest), then the
# parser fuzzer for FUZZ_SECONDS (default 60).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${ATTNC_BUILD_DIR:-$root/build}
"$root/scripts/setup.sh"
"$root/scripts/build.sh" -DATTNC_BUILD_TESTS=ON
echo "== ctest"
ctest --test-dir "$build" --output-on-failure -j"$(nproc)"
echo "== fuzz"
"$root/fuzz/run.sh" "$root/build-fuzz"
echo "all tests passed"

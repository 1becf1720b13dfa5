#!/usr/bin/env bash
# Sets up, builds and runs every test that needs no GPU: unit tests, lit
# tests, the malformed-input and reference cross-checks (ctest), then random
# valid programs through the whole compiler for ATTNC_GEN_SECONDS (default
# 60, from ATTNC_GEN_SEED, default 1; docs/codegen.md), the parser fuzzer
# for FUZZ_SECONDS (default 60) and the Python wheel (scripts/test_wheel.sh:
# builds it into build-wheel/, a second build of the compiler, statically
# linked; ATTNC_TEST_WHEEL=0 skips it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${ATTNC_BUILD_DIR:-$root/build}
"$root/scripts/setup.sh"
"$root/scripts/build.sh" -DATTNC_BUILD_TESTS=ON
echo "== ctest"
ctest --test-dir "$build" --output-on-failure -j"$(nproc)"
echo "== generated programs"
gen=$build/unittests/attnc_generated_program_tests
if [ -x "$gen" ]; then
  ATTNC_GEN_OUT=${ATTNC_GEN_OUT:-$build/fuzz-failures} "$gen" --gtest_filter=GeneratedPrograms.Random --gtest_brief=1
else
  echo "(not built: a build without MLIR)"
fi
echo "== fuzz"
"$root/fuzz/run.sh" "$root/build-fuzz"
echo "== wheel"
if [ "${ATTNC_TEST_WHEEL:-1}" != 0 ]; then
  "$root/scripts/test_wheel.sh"
else
  echo "(skipped: ATTNC_TEST_WHEEL=0)"
fi
echo "all tests passed"

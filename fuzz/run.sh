#!/usr/bin/env bash
# Builds the parser fuzz target with clang + ASan/UBSan and runs it for
# FUZZ_SECONDS (default 60) seeded with examples/ and the diagnostic tests.
# Exits non-zero on any finding. Usage: fuzz/run.sh [BUILD_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-fuzz}
seconds=${FUZZ_SECONDS:-60}
cxx=${FUZZ_CXX:-clang++-22}
cc=${FUZZ_CC:-clang-22}
cmake -G Ninja -S "$root" -B "$build" -DATTNC_BUILD_FUZZER=ON -DATTNC_WITH_MLIR=OFF \
  -DATTNC_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_C_COMPILER="$cc" >/dev/null
ninja -C "$build" attnc_parser_fuzzer
corpus=$build/fuzz-corpus
mkdir -p "$corpus"
cp "$root"/examples/*.attn "$root"/test/diagnostics/*.attn "$corpus"/
echo "fuzzing the parser for ${seconds} s (corpus: $(ls "$corpus" | wc -l) files)"
cd "$build"
./fuzz/attnc_parser_fuzzer -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 \
  -max_len=16384 -dict="$root/fuzz/attn.dict" -print_final_stats=1 "$corpus" 2>&1 | tail -25
echo "fuzzing: no finding in ${seconds} s"

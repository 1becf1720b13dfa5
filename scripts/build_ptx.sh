#!/usr/bin/env bash
# Compiles every example (DSA's selection has no kernel yet) to PTX with the
# MLIR build's attnc, and checks each with ptxas: build-ptx/<example>.ptx.
# These are what scripts/gpu_check.sh runs on the GPU machine (carry build-ptx).
# Usage: scripts/build_ptx.sh [--target=sm_90a] [BUILD_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=sm_90a
if [[ ${1:-} == --target=* ]]; then target=${1#--target=}; shift; fi
build=${1:-$root/build}
out=$root/build-ptx
mkdir -p "$out"
ptxas=${PTXAS:-/usr/local/cuda/bin/ptxas}
for f in "$root"/examples/*.attn; do
  name=$(basename "$f" .attn)
  [ "$name" = dsa ] && continue
  start=$(date +%s%N)
  "$build/bin/attnc" "$f" --target="$target" -o "$out/$name.ptx"
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  regs=$("$ptxas" -arch="$target" -v "$out/$name.ptx" -o /dev/null 2>&1 | grep -o "Used [0-9]* registers" | sort -u | tr '\n' ' ')
  echo "$name: compiled in ${ms} ms; ptxas: $regs"
done

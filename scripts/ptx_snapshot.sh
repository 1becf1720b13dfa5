#!/usr/bin/env bash
# Writes the PTX of every example for
# sm_90a and sm_80, and of bench/patterns.attn at the benchmark's tiling,
# into DIR, so a refactor can be checked byte for byte:
#   scripts/ptx_snapshot.sh /tmp/before   # at the base commit
#   scripts/ptx_snapshot.sh /tmp/after    # with the change
#   diff -r /tmp/before /tmp/after && echo byte-identical
# ATTNC (default build/bin/attnc) names the compiler to use.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: ptx_snapshot.sh DIR}
attnc=${ATTNC:-$root/build/bin/attnc}
mkdir -p "$out"
n=0
for f in "$root"/examples/*.attn; do
  name=$(basename "$f" .attn)
  for target in sm_90a sm_80; do
    "$attnc" "$f" --target="$target" -o "$out/$name.$target.ptx"
    n=$((n + 1))
  done
done
"$attnc" "$root/bench/patterns.attn" --target=sm_90a -o "$out/patterns.sm_90a.ptx"
"$attnc" "$root/bench/patterns.attn" --target=sm_90a --tile=64x32 --ctas-per-sm=4 -o "$out/patterns-64x32.sm_90a.ptx"
echo "ptx_snapshot: $((n + 2)) files in $out"

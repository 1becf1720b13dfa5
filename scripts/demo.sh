#!/usr/bin/env bash
# The main job: set up, build, and run attnc on a real model (ModernBERT).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
attnc=${ATTNC_BUILD_DIR:-$root/build}/bin/attnc
cd "$root"
echo
echo "\$ attnc examples/modernbert.attn --emit=check"
"$attnc" examples/modernbert.attn --emit=check
echo
echo "\$ attnc examples/modernbert.attn --emit=tiles --qlen 131072 --klen 131072"
"$attnc" examples/modernbert.attn --emit=tiles --qlen 131072 --klen 131072
out=${ATTNC_BUILD_DIR:-$root/build}/modernbert.ptx
echo
echo "\$ attnc examples/modernbert.attn --time-stages -o $out"
"$attnc" examples/modernbert.attn --time-stages -o "$out"
echo "wrote $out: $(grep -c '^.visible .entry' "$out") kernels ($(wc -c < "$out") bytes), manifest:"
sed -n '/attnc-manifest-begin/,/"variants"/p' "$out"

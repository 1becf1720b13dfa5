#!/usr/bin/env bash
# Compiles every example to PTX with the MLIR build's attnc, and checks each
# with ptxas: build-ptx/<example>.ptx (examples/dsa.attn as build-ptx/dsa/,
# beside test/gpu/dsa_cases.attn: check_kernels.py runs the others).
# These are what scripts/gpu_check.sh runs on the GPU machine (carry build-ptx),
# with a copy of CLI11's headers in build-ptx/third_party/include for its build.
# Usage: scripts/build_ptx.sh [--target=sm_90a] [BUILD_DIR]
# ATTNC_FLAGS adds attnc options for the examples (e.g. --backend=wgmma).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=sm_90a
if [[ ${1:-} == --target=* ]]; then target=${1#--target=}; shift; fi
build=${1:-$root/build}
out=$root/build-ptx
mkdir -p "$out"
# CLI11's headers (attnc's command-line parser) for the GPU machine's build,
# which has no package registry: the GPU scripts pass this copy to cmake.
[ -f /usr/include/CLI/CLI.hpp ] || { echo "build_ptx: no CLI11 in /usr/include/CLI (scripts/setup.sh)" >&2; exit 1; }
rm -rf "$out/third_party/include/CLI"
mkdir -p "$out/third_party/include"
cp -r /usr/include/CLI "$out/third_party/include/CLI"
ptxas=${PTXAS:-/usr/local/cuda/bin/ptxas}
compile() { # SOURCE OUTPUT [attnc flags]
  local f=$1 o=$2 start ms regs
  shift 2
  start=$(date +%s%N)
  "$build/bin/attnc" "$f" --target="$target" "$@" -o "$o"
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  regs=$("$ptxas" -arch="$target" -v "$o" -o /dev/null 2>&1 | grep -o "Used [0-9]* registers" | sort -u | tr '\n' ' ')
  echo "$(basename "$o" .ptx): compiled in ${ms} ms; ptxas: $regs"
}
# Every example but dsa (built below with its own test cases).
examples=()
for f in "$root"/examples/*.attn; do
  [ "$(basename "$f" .attn)" = dsa ] || examples+=("$f")
done
mkdir -p "$out/dsa"
rm -f "$out/dsa.ptx"
for f in "${examples[@]}"; do
  name=$(basename "$f" .attn)
  compile "$f" "$out/$name.ptx" ${ATTNC_FLAGS:-}
done
# Every example with the persistent grid (--persistent=on, experimental): gpu_check's step
# "persistent" runs them through the same matrix.
mkdir -p "$out/persistent"
for f in "${examples[@]}"; do
  name=$(basename "$f" .attn)
  "$build/bin/attnc" "$f" --target="$target" --persistent=on ${ATTNC_FLAGS:-} -o "$out/persistent/$name.ptx"
done
# Every example with its gradient kernels (--backward=on; test/gpu/check_backward.py, gpu_check's
# step "backward"): the variants the backward covers get NAME.backward, the others a warning.
mkdir -p "$out/backward"
for f in "${examples[@]}"; do
  name=$(basename "$f" .attn)
  compile "$f" "$out/backward/$name.ptx" --backward=on --head-dims=64,128,256 ${ATTNC_FLAGS:-}
done
# The gradient kernels with dP's chain under the exp (--overlap=on, opt-in) when
# BENCH_BWD_ALT_BACKENDS names "overlap": every example, packed as
# build-ptx/backward-overlap.tar.gz (the carry limit), which gpu_check's step "backward"
# also checks against the reference.
rm -f "$out/backward-overlap.tar.gz"
if [[ " ${BENCH_BWD_ALT_BACKENDS:-} " == *" overlap "* ]]; then
  tmp=$(mktemp -d)
  for f in "${examples[@]}"; do
    name=$(basename "$f" .attn)
    compile "$f" "$tmp/$name.ptx" --backward=on --head-dims=64,128,256 --overlap=on ${ATTNC_FLAGS:-}
  done
  tar czf "$out/backward-overlap.tar.gz" -C "$tmp" . && rm -rf "$tmp"
fi
# The selecting variants (test/gpu/check_dsa.py, bench/bench_dsa.py).
compile "$root/bench/dsa_bench.attn" "$out/dsa/dsa.ptx" --dtypes=bf16 --head-dims=128
compile "$root/test/gpu/dsa_cases.attn" "$out/dsa/dsa_cases.ptx"
# The benchmark's patterns (bf16, head dims 64, 128 and 256), and the same kernels built other
# ways ($BENCH_ALT_TILES, e.g. "128x64 64x32c3 wgmma wgmma-128x128") that
# bench_attnc.py times side by side (--alt): MxN is --tile, cC adds
# --ctas-per-sm=C, a trailing sS --kv-stages=S (e.g. "s3", "128x128s4"), a
# trailing np --persistent=off (e.g. "np", "s3np"), "persistent" --persistent=on, "serial"
# --overlap=off (the softmax after each GEMM's wait), a wgmma or mma-sync prefix
# --backend=wgmma|mma-sync.
mkdir -p "$out/bench"
rm -f "$out"/bench/patterns*.ptx
"$build/bin/attnc" "$root/bench/patterns.attn" --target="$target" --dtypes=bf16 -o "$out/bench/patterns.ptx"
# The same patterns with their gradient kernels (bench/bench_backward.py).
"$build/bin/attnc" "$root/bench/patterns.attn" --target="$target" --dtypes=bf16 --head-dims=64,128,256 --backward=on \
  -o "$out/bench/patterns_backward.ptx"
# The gradient kernels built other ways ($BENCH_BWD_ALT_BACKENDS: a backend, e.g. "mma-sync",
# or "overlap", --overlap=on: dP's chain under the exp), which bench_backward.py times beside
# (--alt, through scripts/gpu_check.sh).
for alt in ${BENCH_BWD_ALT_BACKENDS:-}; do
  flag=--backend=$alt
  [[ $alt == overlap ]] && flag=--overlap=on
  "$build/bin/attnc" "$root/bench/patterns.attn" --target="$target" --dtypes=bf16 --head-dims=64,128,256 --backward=on \
    "$flag" -o "$out/bench/patterns_backward_$alt.ptx"
done
for alt in ${BENCH_ALT_TILES:-}; do
  flags=()
  spec=$alt
  for backend in wgmma mma-sync; do
    if [[ $spec == $backend* ]]; then
      flags+=(--backend=$backend)
      spec=${spec#$backend}
      spec=${spec#-}
    fi
  done
  if [[ $spec == persistent ]]; then # the persistent grid, --persistent=on
    flags+=(--persistent=on)
    spec=
  fi
  if [[ $spec == serial ]]; then # no softmax/GEMM overlap, --overlap=off
    flags+=(--overlap=off)
    spec=
  fi
  if [[ $spec == *np ]]; then # one CTA a tile: no persistent grid
    flags+=(--persistent=off)
    spec=${spec%np}
    spec=${spec%-}
  fi
  if [[ $spec =~ ^(.*)s([0-9])$ ]]; then
    flags+=(--kv-stages="${BASH_REMATCH[2]}")
    spec=${BASH_REMATCH[1]}
  fi
  if [ -n "$spec" ]; then
    flags+=(--tile="${spec%c*}")
    [[ $spec == *c* ]] && flags+=(--ctas-per-sm="${spec#*c}")
  fi
  "$build/bin/attnc" "$root/bench/patterns.attn" --target="$target" --dtypes=bf16 ${flags[@]+"${flags[@]}"} \
    -o "$out/bench/patterns_$alt.ptx"
done
echo "bench: $(ls "$out/bench" | tr '\n' ' ')"

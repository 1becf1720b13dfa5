#!/usr/bin/env bash
# The build half of the GPU differential test (issue 13): writes GEN_COUNT
# random valid programs without selections and with fp32-friendly scores
# (attnc-gen-programs --no-select --fp32-scores, seeds
# GEN_SEED ..), compiles each for one head dim, dtype and backend picked from
# its seed, and checks the PTX with ptxas:
#   build-gen/gen-<seed>.attn   the program (its first line: seed and -D)
#   build-gen/gen-<seed>.ptx    its kernels
#   build-gen/gen-<seed>.flags  the attnc options it was compiled with
# and packs them as build-ptx/gen.tar.gz (300 programs: ~80 MB of PTX, 14 MB
# packed; what is carried to the GPU machine is limited to 64 MiB), which
# scripts/gpu_check.sh's "generated" step unpacks and runs with
# test/gpu/check_generated.py on the GPU machine (carry build-ptx).
# A program attnc refuses with a located error (exit 1) is listed and
# skipped; an internal error, a crash or a ptxas failure fails the script.
# GEN_RAW_SEEDS adds programs of those seeds as the generator writes them
# without --fp32-scores (raw-<seed>.*): the first run's failures, kept as
# regressions (bench/NOTES.md "Generated programs on the GPU").
# Usage: GEN_COUNT=300 GEN_SEED=1 [GEN_RAW_SEEDS="6 14"] scripts/build_generated_ptx.sh [BUILD_DIR]
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
count=${GEN_COUNT:-300}
seed=${GEN_SEED:-1}
out=$root/build-gen
export ATTNC=$build/bin/attnc PTXAS=${PTXAS:-/usr/local/cuda/bin/ptxas} OUTDIR=$out
rm -rf "$out"
"$build/bin/attnc-gen-programs" --seed "$seed" --count "$count" --out "$out" --no-select --fp32-scores || exit 1
for s in ${GEN_RAW_SEEDS:-}; do
  "$build/bin/attnc-gen-programs" --seed "$s" --count 1 --out "$out/raw" --no-select >/dev/null || exit 1
  mv "$out/raw/gen-$s.attn" "$out/raw-$s.attn"
done
rm -rf "$out/raw"

compile_one() { # compile_one gen-<seed> | raw-<seed>
  local name=$1 s=${1#*-} f=$OUTDIR/$1.attn
  local dims=(64 128 256) dtypes=(bf16 fp16)
  local flags=(--head-dims=${dims[$((s % 3))]} --dtypes=${dtypes[$((s / 3 % 2))]})
  local target=sm_90a
  case $((s / 6 % 4)) in
    2) flags+=(--backend=mma-sync) ;;
    3) target=sm_80 ;;
  esac
  flags+=(--target=$target)
  local defs=() tok
  read -r -a tok < <(head -n 1 "$f")
  for ((i = 0; i < ${#tok[@]}; ++i)); do
    [ "${tok[$i]}" = -D ] && defs+=(-D "${tok[$((i + 1))]}")
  done
  local log rc
  log=$("$ATTNC" "$f" ${defs[@]+"${defs[@]}"} "${flags[@]}" -o "$OUTDIR/$name.ptx" 2>&1)
  rc=$?
  if [ $rc -eq 1 ]; then
    echo "skip $name: $(echo "$log" | grep -m1 error)"
    rm -f "$OUTDIR/$name.ptx"
    return 0
  elif [ $rc -ne 0 ]; then
    echo "FAIL $name: attnc exit $rc: $(echo "$log" | tail -n 3)"
    return 1
  fi
  if ! log=$("$PTXAS" -arch=$target "$OUTDIR/$name.ptx" -o /dev/null 2>&1); then
    echo "FAIL $name: ptxas: $(echo "$log" | head -n 3)"
    return 1
  fi
  echo "${flags[*]}" > "$OUTDIR/$name.flags"
  echo "ok   $name ${flags[*]}"
}
export -f compile_one
start=$(date +%s)
(cd "$out" && ls *.attn) | sed 's/\.attn$//' | xargs -P "${JOBS:-2}" -I{} bash -c 'compile_one {}' > "$out/build.log"
status=$?
grep -v "^ok" "$out/build.log"
echo "generated: $(grep -c '^ok' "$out/build.log") of $(ls "$out"/*.attn | wc -l) programs compiled and pass ptxas," \
  "$(grep -c '^skip' "$out/build.log") refused with a located error, $(grep -c '^FAIL' "$out/build.log") failed" \
  "($(($(date +%s) - start)) s)"
tar czf "$root/build-ptx/gen.tar.gz" -C "$out" . || status=1
exit $status

#!/usr/bin/env bash
# The whole GPU run, in one command on the GPU machine (scripts/gpu_check.sh):
#   1. scripts/gpu_runtime_check.sh: builds attnc (reference executor) and
#      libattnrt without MLIR, runs the unit tests and the runtime's API checks;
#   2. test/gpu/check_kernels.py: every example's kernels against the float64
#      reference executor over the shape matrix (PTX from build-ptx/, compiled
#      beforehand on a build machine by scripts/build_ptx.sh);
#   3. test/gpu/check_apis.py: attnc kernels through the C++ API (attnc run
#      --module), the C API (a C program) and Python, against the reference;
#      compute-sanitizer memcheck and racecheck on a small subset;
#   4. bench/bench_attnc.py: ours vs cuDNN SDPA and FlexAttention;
#   5. test/gpu/check_dsa.py: the selecting variants (build-ptx/dsa/) against
#      the reference, then compute-sanitizer memcheck and racecheck on the fp8
#      indexer and on by_float_close (the topk stage's shared list); bench/bench_dsa.py (GPU_STEPS "dsabench", not by default);
#   6. test/gpu/check_backward.py: the gradient kernels (build-ptx/backward/,
#      --backward=on) against the reference's gradients, then compute-sanitizer
#      (and build-ptx/backward-overlap.tar.gz, --overlap=on, where build_ptx.sh made it);
#      bench/bench_backward.py (GPU_STEPS "bwbench", not by default);
#   7. (GPU_STEPS "generated", not run by default) test/gpu/check_generated.py:
#      the random programs of scripts/build_generated_ptx.sh (build-ptx/gen.tar.gz)
#      against the reference, $GEN_CASES random shapes per variant (default 3).
# Steps can be picked with GPU_STEPS="runtime kernels persistent apis sanitizer bench dsa backward bwbench dsabench
# generated profile wheel torchgrad train" (persistent: build-ptx/persistent/, the examples with --persistent=on,
# through the matrix and racecheck; profile: ncu on the long-context kernels, bench/profile_long.py; wheel: the
# carried dist/ wheel installed by pip into a fresh venv, scripts/wheel_venv_check.sh, and beside
# the machine's torch, test/gpu/check_wheel.py, then attnc.torch through it,
# test/gpu/check_torch.py and check_torch_grad.py; torchgrad: check_torch_grad.py alone with the wheel; train: examples/training/train.py with the wheel,
# TRAIN_ARGS passed to it);
# BENCH_CASES limits the benchmark's cases (comma-separated), BWBENCH_CASES bwbench's.
# Logs and JSON go to $OUT when set. Exits 1 if any step failed.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/build-gpu-logs}
mkdir -p "$out"
steps=${GPU_STEPS:-runtime kernels apis sanitizer bench dsa backward}
build=$root/build-gpu-rt
export ATTNC_LIBRARY=$build/lib/libattnrt.so
export PYTHONUNBUFFERED=1
status=0
has() { [[ " $steps " == *" $1 "* ]]; }
# CLI11's headers (attnc's command line) where none are installed: the copy
# scripts/build_ptx.sh puts in build-ptx/.
cli11=
[ -d "$root/build-ptx/third_party/include" ] && cli11=-DATTNC_CLI11_INCLUDE_DIR=$root/build-ptx/third_party/include
if has runtime; then
  bash "$root/scripts/gpu_runtime_check.sh" > "$out/runtime.log" 2>&1 || status=1
  tail -n 15 "$out/runtime.log"
else
  cmake -G Ninja -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DATTNC_WITH_MLIR=OFF -DATTNC_BUILD_TESTS=OFF \
    ${cli11:+"$cli11"} >/dev/null &&
    ninja -C "$build" attnc attnrt attnc_c_api_run >/dev/null || { echo "build failed"; exit 1; }
fi
if has kernels; then
  echo "== kernels vs reference"
  python3 "$root/test/gpu/check_kernels.py" --ptx-dir "$root/build-ptx" --attnc "$build/bin/attnc" \
    --json "$out/kernels.json" 2>&1 | tee "$out/kernels.log" | grep -v "^ok" || true
  tail -n 1 "$out/kernels.log"
  grep -q "^FAIL\|Traceback" "$out/kernels.log" && status=1
fi
if has persistent; then
  # The examples built with --persistent=on (build-ptx/persistent/), through the same
  # matrix, then racecheck on a subset.
  echo "== kernels vs reference, --persistent=on"
  timeout 300 python3 "$root/test/gpu/check_kernels.py" --ptx-dir "$root/build-ptx/persistent" --attnc "$build/bin/attnc" \
    --json "$out/kernels_persistent.json" 2>&1 | tee "$out/kernels_persistent.log" | grep -v "^ok" || true
  tail -n 1 "$out/kernels_persistent.log"
  grep -q "^FAIL\|Traceback" "$out/kernels_persistent.log" && status=1
  grep -q "cases passed" "$out/kernels_persistent.log" || status=1
  echo "== compute-sanitizer racecheck, --persistent=on"
  timeout 300 compute-sanitizer --tool racecheck --error-exitcode 9 python3 "$root/test/gpu/check_kernels.py" \
    --ptx-dir "$root/build-ptx/persistent" --attnc "$build/bin/attnc" --quick --only mistral,gemma2 \
    > "$out/sanitizer_racecheck_persistent.log" 2>&1 || status=1
  grep -E "SUMMARY|cases passed" "$out/sanitizer_racecheck_persistent.log"
fi
if has apis; then
  echo "== APIs vs reference"
  python3 "$root/test/gpu/check_apis.py" --ptx-dir "$root/build-ptx" --attnc "$build/bin/attnc" \
    --c-api "$build/bin/attnc_c_api_run" 2>&1 | tee "$out/apis.log" | tail -n 22 || status=1
  grep -q "^FAIL\|Traceback" "$out/apis.log" && status=1
fi
if has sanitizer; then
  for tool in memcheck racecheck; do
    echo "== compute-sanitizer $tool"
    compute-sanitizer --tool $tool --error-exitcode 9 python3 "$root/test/gpu/check_kernels.py" \
      --ptx-dir "$root/build-ptx" --attnc "$build/bin/attnc" --quick --only mistral,documents > "$out/sanitizer_$tool.log" 2>&1 \
      || status=1
    grep -E "SUMMARY|cases passed" "$out/sanitizer_$tool.log"
  done
fi
if has dsa; then
  echo "== selecting variants (DSA) vs reference"
  python3 "$root/test/gpu/check_dsa.py" --ptx "$root/build-ptx/dsa/dsa_cases.ptx" --src "$root/test/gpu/dsa_cases.attn" \
    --attnc "$build/bin/attnc" --json "$out/dsa.json" > "$out/dsa.log" 2>&1 || status=1
  grep -v "^ok" "$out/dsa.log" | head -n 40
  for tool in memcheck racecheck; do
    echo "== compute-sanitizer $tool (DSA)"
    compute-sanitizer --tool $tool --error-exitcode 9 python3 "$root/test/gpu/check_dsa.py" \
      --ptx "$root/build-ptx/dsa/dsa_cases.ptx" --src "$root/test/gpu/dsa_cases.attn" --attnc "$build/bin/attnc" \
      --quick --only ix_fp8,by_float_close > "$out/sanitizer_dsa_$tool.log" 2>&1 || status=1
    grep -E "SUMMARY|cases passed" "$out/sanitizer_dsa_$tool.log"
  done
fi
if has backward; then
  echo "== gradient kernels (build-ptx/backward/) vs reference"
  python3 "$root/test/gpu/check_backward.py" --ptx-dir "$root/build-ptx/backward" --attnc "$build/bin/attnc" \
    --json "$out/backward.json" > "$out/backward.log" 2>&1 || status=1
  grep -v "^ok" "$out/backward.log" | head -n 40
  for tool in memcheck racecheck; do
    echo "== compute-sanitizer $tool (gradient kernels)"
    compute-sanitizer --tool $tool --error-exitcode 9 python3 "$root/test/gpu/check_backward.py" \
      --ptx-dir "$root/build-ptx/backward" --attnc "$build/bin/attnc" --quick --only mistral,gptoss,documents,gemma2 \
      > "$out/sanitizer_backward_$tool.log" 2>&1 || status=1
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY|cases passed" "$out/sanitizer_backward_$tool.log"
  done
  if [ -f "$root/build-ptx/backward-overlap.tar.gz" ]; then
    # scripts/build_ptx.sh's --overlap=on gradient kernels (BENCH_BWD_ALT_BACKENDS=overlap).
    echo "== gradient kernels, --overlap=on (build-ptx/backward-overlap.tar.gz) vs reference"
    rm -rf "$root/build-bwd-overlap" && mkdir -p "$root/build-bwd-overlap" &&
      tar xzf "$root/build-ptx/backward-overlap.tar.gz" -C "$root/build-bwd-overlap"
    python3 "$root/test/gpu/check_backward.py" --ptx-dir "$root/build-bwd-overlap" --attnc "$build/bin/attnc" \
      --json "$out/backward_overlap.json" > "$out/backward_overlap.log" 2>&1 || status=1
    grep -v "^ok" "$out/backward_overlap.log" | head -n 40
    compute-sanitizer --tool racecheck --error-exitcode 9 python3 "$root/test/gpu/check_backward.py" \
      --ptx-dir "$root/build-bwd-overlap" --attnc "$build/bin/attnc" --quick --only mistral,documents \
      > "$out/sanitizer_backward_overlap_racecheck.log" 2>&1 || status=1
    grep -E "RACECHECK SUMMARY|cases passed" "$out/sanitizer_backward_overlap_racecheck.log"
  fi
fi
if has bwbench; then
  echo "== gradient kernels vs cuDNN and FlexAttention backward (bench/bench_backward.py)"
  bwalts=() # other builds of the gradient kernels (patterns_backward_LABEL.ptx), timed beside
  for f in "$root"/build-ptx/bench/patterns_backward_*.ptx; do
    [ -e "$f" ] && bwalts+=(--alt "$(basename "$f" .ptx | sed 's/^patterns_backward_//')=$f")
  done
  python3 "$root/bench/bench_backward.py" --ptx "$root/build-ptx/bench/patterns_backward.ptx" \
    ${BWBENCH_CASES:+--cases "$BWBENCH_CASES"} ${bwalts[@]+"${bwalts[@]}"} --json "$out/bench_backward.json" 2>&1 |
    tee "$out/bench_backward.log" | grep -E "^FAIL|^bf16|^case|^[a-z_0-9]+ +[0-9]+ |^backward of|^  [a-z]" || status=1
fi
if has dsabench; then
  echo "== DSA benchmark"
  python3 "$root/bench/bench_dsa.py" --ptx "$root/build-ptx/dsa/dsa.ptx" ${DSA_LENGTHS:+--lengths "$DSA_LENGTHS"} \
    --json "$out/bench_dsa.json" 2>&1 | tee "$out/bench_dsa.log" || status=1
fi
if has generated; then
  echo "== generated programs vs reference"
  rm -rf "$root/build-gen" && mkdir -p "$root/build-gen" && tar xzf "$root/build-ptx/gen.tar.gz" -C "$root/build-gen"
  python3 "$root/test/gpu/check_generated.py" --gen-dir "$root/build-gen" --attnc "$build/bin/attnc" \
    --cases "${GEN_CASES:-3}" --failures "$out/generated-failures" --json "$out/generated.json" \
    > "$out/generated.log" 2>&1 || status=1
  grep "^FAIL\|Traceback\|Error" "$out/generated.log" | head -n 40
  tail -n 1 "$out/generated.log"
fi
if has profile; then
  # Nsight Compute on the long-context kernels (bench/profile_long.py): speed
  # of light, warp stalls, scheduler and occupancy, per kernel.
  echo "== profile (ncu)"
  ncu --kernel-name regex:"^(${PROFILE_CASES:-sliding1024|documents})_d128_bf16\$" \
    --section SpeedOfLight --section WarpStateStats --section SchedulerStats --section Occupancy \
    --section LaunchStats python3 "$root/bench/profile_long.py" --ptx "$root/build-ptx/bench/patterns.ptx" \
    > "$out/profile.log" 2>&1 || status=1
  grep -E "^  [a-z_0-9]+_d128_bf16|Duration|Compute \(SM\) Throughput|Memory Throughput|Stall|Issued Warp|No Eligible|Achieved Occupancy|Registers Per|Grid Size" \
    "$out/profile.log" | head -n 80
fi
site=$root/build-gpu-wheel
# Installs the carried dist/ wheel into $site (once a run); sets $whl.
install_wheel() {
  whl=$(ls "$root"/dist/attnc-*.whl 2>/dev/null | head -n 1)
  if [ -z "$whl" ]; then
    echo "no wheel in dist/ (scripts/build_wheel.sh, then carry dist)"; return 1
  fi
  [ -n "${wheel_installed:-}" ] && return 0
  rm -rf "$site" && python3 -m pip install -q --no-deps --disable-pip-version-check --target "$site" "$whl" \
    > "$out/wheel.log" 2>&1 || return 1
  wheel_installed=1
  echo "wheel $(basename "$whl"): $(du -h "$whl" | cut -f1); installed libattnrt.so: $(du -h "$site/attnc/libattnrt.so" | cut -f1)"
}
if has wheel; then
  # The wheel built here (scripts/build_wheel.sh, dist/ carried), installed
  # with pip into a fresh directory on the path of the machine's python
  # (a venv of its own would not see the environment's torch and numpy);
  # checks run from /tmp.
  echo "== wheel"
  if install_wheel; then
    # A fresh venv of its own first (no torch there: the command and a lazy JIT).
    timeout 300 bash "$root/scripts/wheel_venv_check.sh" "$whl" 2>&1 | tee -a "$out/wheel.log"
    grep -q "wheel_venv: all checks passed" "$out/wheel.log" || status=1
    (cd /tmp && env -u ATTNC_LIBRARY PYTHONPATH="$site" PATH="$site/bin:$PATH" python3 "$root/test/gpu/check_wheel.py" \
      --not-under "$root") 2>&1 | tee -a "$out/wheel.log"
    grep -q "wheel: all checks passed" "$out/wheel.log" || status=1
    echo "== attnc.torch (the wheel's)"
    (cd /tmp && env -u ATTNC_LIBRARY PYTHONPATH="$site" timeout 600 python3 "$root/test/gpu/check_torch.py" \
      --examples "$root/examples") 2>&1 | tee "$out/torch.log"
    grep -q "torch: all checks passed" "$out/torch.log" || status=1
    echo "== attnc.torch autograd (the wheel's)"
    (cd /tmp && env -u ATTNC_LIBRARY PYTHONPATH="$site" timeout 600 python3 "$root/test/gpu/check_torch_grad.py" \
      --examples "$root/examples") 2>&1 | tee "$out/torch_grad.log"
    grep -q "torch grad: all checks passed" "$out/torch_grad.log" || status=1
    echo "== the tutorial (examples/tutorial/lookback.py, the wheel's)"
    (cd /tmp && env -u ATTNC_LIBRARY PYTHONPATH="$site" PATH="$site/bin:$PATH" timeout 600 python3 \
      "$root/examples/tutorial/lookback.py" ${TUTORIAL_LENGTH:+--length "$TUTORIAL_LENGTH"}) 2>&1 | tee "$out/tutorial.log"
    grep -q "lookback: all steps passed" "$out/tutorial.log" || status=1
  else
    status=1
  fi
fi
if has torchgrad && ! has wheel; then
  # The wheel's autograd checks alone (the wheel step runs them after its others).
  echo "== attnc.torch autograd (the wheel's)"
  if install_wheel; then
    (cd /tmp && env -u ATTNC_LIBRARY PYTHONPATH="$site" timeout 600 python3 "$root/test/gpu/check_torch_grad.py" \
      --examples "$root/examples") 2>&1 | tee "$out/torch_grad.log"
    grep -q "torch grad: all checks passed" "$out/torch_grad.log" || status=1
  else
    status=1
  fi
fi
if has train; then
  # A small encoder trained with attnc's kernels and with torch's attention
  # (examples/training/train.py, the wheel's attnc); the loss chart and the
  # run's JSON land in $out.
  echo "== training (examples/training/train.py)"
  if install_wheel; then
    (cd /tmp && env -u ATTNC_LIBRARY PYTHONPATH="$site" timeout 600 python3 "$root/examples/training/train.py" \
      ${TRAIN_ARGS:-} --json "$out/training.json" --svg "$out/training-loss.svg") 2>&1 | tee "$out/train.log"
    grep -q "train: all checks passed" "$out/train.log" || status=1
  else
    status=1
  fi
fi
if has bench; then
  echo "== benchmark"
  alts=()
  for f in "$root"/build-ptx/bench/patterns_*.ptx; do
    case $f in *patterns_backward*) continue ;; esac # the gradient kernels' builds: bench_backward.py's
    [ -e "$f" ] && alts+=(--alt "$(basename "$f" .ptx | sed 's/^patterns_//')=$f")
  done
  python3 "$root/bench/bench_attnc.py" --ptx "$root/build-ptx/bench/patterns.ptx" --json "$out/bench.json" \
    ${BENCH_CASES:+--cases "$BENCH_CASES"} ${alts[@]+"${alts[@]}"} > "$out/bench.log" 2>&1 || status=1
  sed -n '/^case /,$p' "$out/bench.log"
fi
exit $status

#!/usr/bin/env bash
# gpu_runtime_check.sh - build libattnrt on the GPU machine and check loading
# and launching through every API (docs/runtime.md, "Testing").
#
#   scripts/gpu_runtime_check.sh            (on the H200 machine; $OUT optional)
#
# The GPU machine has no LLVM/MLIR, so this configures with
# -DATTNC_WITH_MLIR=OFF (g++, ninja), builds everything, and runs:
#   1. ctest: every unit test (the runtime's included) and the Python API
#      test; the lit suite is excluded when lit/FileCheck are missing there;
#   2. attnrt_smoke_cpp: the C++ API on the runtime test fixtures
#      (runtime/testdata, hand-written kernels, not attnc output), PTX and a
#      cubin built here with nvcc plus its sidecar manifest, against a float64
#      host reference; a bad argument must throw and launch nothing;
#   3. attnrt_smoke_c: the C API from a C program;
#   4. runtime/tools/torch_check.py: the Python package with torch tensors
#      against a float64 torch reference (rel L2 <= 1e-2), a caller's stream,
#      and bad arguments raising attnc.Error without launching;
#   5. compute-sanitizer memcheck over the C++ smoke test, if installed;
#   6. the JIT cache-hit benchmark (information only).
# Logs go to $OUT/gpu_runtime_check/ when $OUT is set (else <build>/logs).
# Prints a summary and exits 1 if any step failed.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${ATTNC_RT_BUILD_DIR:-$root/build-gpu-rt}
logs=${OUT:+$OUT/gpu_runtime_check}
logs=${logs:-$build/logs}
mkdir -p "$logs"
python=${PYTHON:-python3}
jobs=${ATTNC_JOBS:-$(nproc)}
results=()
status=0

step() { # step NAME COMMAND...: runs COMMAND, logging to $logs/NAME.log
  local name=$1
  shift
  echo "== $name: $*"
  local start=$(date +%s)
  "$@" >"$logs/$name.log" 2>&1
  local rc=$?
  tail -n 40 "$logs/$name.log"
  local secs=$(( $(date +%s) - start ))
  if [ $rc -eq 0 ]; then
    results+=("PASS $name (${secs}s)")
  else
    results+=("FAIL $name (exit $rc, ${secs}s; log: $logs/$name.log)")
    status=1
  fi
  return $rc
}

{
  echo "host: $(hostname)"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 || true
  command -v nvcc >/dev/null && nvcc --version | tail -n 2
  g++ --version | head -n 1
  "$python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" 2>&1
} | tee "$logs/environment.log"

cmake_args=(-G Ninja -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DATTNC_WITH_MLIR=OFF
            -DATTNC_BUILD_TESTS=ON -DCMAKE_CXX_COMPILER="${CXX:-g++}" -DCMAKE_C_COMPILER="${CC:-gcc}")
# CLI11's headers (attnc's command line) where none are installed: the copy
# scripts/build_ptx.sh puts in build-ptx/.
if [ -d "$root/build-ptx/third_party/include" ]; then
  cmake_args+=(-DATTNC_CLI11_INCLUDE_DIR="$root/build-ptx/third_party/include")
fi
ctest_exclude=()
# The lit suite needs LLVM's lit and FileCheck, which the GPU machine lacks:
# satisfy the configure-time lookup and leave the lit test out.
if ! command -v FileCheck >/dev/null && [ ! -x /usr/lib/llvm-22/bin/FileCheck ]; then
  cmake_args+=(-DATTNC_LIT=/bin/false -DATTNC_FILECHECK=/bin/false)
  ctest_exclude=(-E '^lit$')
fi
step configure cmake "${cmake_args[@]}" || { printf '%s\n' "${results[@]}"; exit 1; }
step build ninja -C "$build" -j"$jobs" || { printf '%s\n' "${results[@]}"; exit 1; }

step ctest ctest --test-dir "$build" --output-on-failure -j"$jobs" "${ctest_exclude[@]}"

cubin_args=()
if command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ]; then
  NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
  if step fixtures_cubin env NVCC="$NVCC" "$root/runtime/testdata/make_testdata.sh" --cubin "$build/fixtures"; then
    cubin_args=("$build/fixtures/naive_attention_causal.cubin")
  fi
fi

step smoke_cpp "$build/bin/attnrt_smoke_cpp" "$root/runtime/testdata" "${cubin_args[@]}"
step smoke_c "$build/bin/attnrt_smoke_c" "$root/runtime/testdata"
step python_torch env ATTNC_LIBRARY="$build/lib/libattnrt.so" "$python" "$root/runtime/tools/torch_check.py" "${cubin_args[@]}"

sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
if [ -x "$sanitizer" ]; then
  step sanitizer_memcheck timeout 600 "$sanitizer" --tool memcheck --error-exitcode 1 \
    "$build/bin/attnrt_smoke_cpp" "$root/runtime/testdata"
fi

step bench_cache_hit "$build/bin/attnrt_bench_cache_hit"

echo
echo "== summary"
printf '%s\n' "${results[@]}" | tee "$logs/summary.log"
exit $status

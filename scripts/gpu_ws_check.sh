#!/usr/bin/env bash
# A first look at new kernels on the GPU machine, in one command: the runtime
# without MLIR, a quick check of one example (bounded: a hang shows as a
# timeout), its SASS instruction mix, then scripts/gpu_check.sh's steps
# ($GPU_STEPS, default "kernels bench"). PTX from build-ptx/ (build_ptx.sh).
# Usage on the device: ONLY=mistral bash scripts/gpu_ws_check.sh
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$root/build-gpu-logs}
mkdir -p "$out"
build=$root/build-gpu-rt
# CLI11's headers (attnc's command line) where none are installed: the copy
# scripts/build_ptx.sh puts in build-ptx/.
cli11=
[ -d "$root/build-ptx/third_party/include" ] && cli11=-DATTNC_CLI11_INCLUDE_DIR=$root/build-ptx/third_party/include
cmake -G Ninja -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DATTNC_WITH_MLIR=OFF -DATTNC_BUILD_TESTS=OFF \
  ${cli11:+"$cli11"} >/dev/null &&
  ninja -C "$build" attnc attnrt attnc_c_api_run >/dev/null || { echo "build failed"; exit 1; }
export ATTNC_LIBRARY=$build/lib/libattnrt.so
only=${ONLY:-mistral}
ptxas -arch=sm_90a -v "$root/build-ptx/$only.ptx" -o "$out/$only.cubin" 2>&1 | grep -E "Used|spill|warning" | sort | uniq -c
cuobjdump -sass "$out/$only.cubin" > "$out/$only.sass" 2>&1
echo "SASS mix ($only):"; grep -oE "HGMMA[.A-Z0-9]*|UTMALDG[.A-Z0-9]*|SYNCS[.A-Z0-9]*|LDL|STL|USETMAXREG[.A-Z0-9]*" "$out/$only.sass" | sort | uniq -c
echo "== quick $only"
timeout ${QUICK_TIMEOUT:-120} python3 "$root/test/gpu/check_kernels.py" --ptx-dir "$root/build-ptx" --attnc "$build/bin/attnc" \
  --quick --only "$only" > "$out/quick.log" 2>&1
rc=$?
grep -v "^ok" "$out/quick.log" | tail -n 25
[ $rc -ne 0 ] && { echo "quick check failed (rc $rc)"; exit 1; }
GPU_STEPS=${GPU_STEPS:-kernels bench} OUT=$out bash "$root/scripts/gpu_check.sh"

// The named pipelines and every attn pass are registered with attnc-opt,
// and a prefix of the pipeline runs alone.
// REQUIRES: mlir
// RUN: attnc-opt --help | FileCheck %s --check-prefix=HELP
// RUN: attnc-opt %s --pass-pipeline='builtin.module(attn-to-gpu{head-dims=64 dtypes=fp16})' | FileCheck %s --check-prefix=GPU
// RUN: attnc-opt %s --pass-pipeline='builtin.module(attn-to-nvvm{head-dims=64 dtypes=fp16 target=sm_80})' | FileCheck %s --check-prefix=NVVM

// HELP-DAG: --attn-extern-dynamic-shared-memory
// HELP-DAG: --attn-gpu-to-nvvm
// HELP-DAG: --attn-lower-region-ops
// HELP-DAG: --attn-tile-variants
// HELP-DAG: --attn-to-gpu
// HELP-DAG: --attn-to-nvvm
// HELP-DAG: --convert-attn-tile-to-gpu

attn.variant @band mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %0 = arith.subi %q, %k : i64
  %1 = math.absi %0 : i64
  %c64 = arith.constant 64 : i64
  %2 = arith.cmpi sle, %1, %c64 : i64
  attn.yield %2 : i1
}

// GPU: gpu.module @attnc_band_d64_fp16
// GPU-NEXT: gpu.func @band_d64_fp16
// GPU-NOT: attn.tile

// NVVM: gpu.module @attnc_band_d64_fp16 [#nvvm.target<O = 3, chip = "sm_80", features = "+ptx80">]
// NVVM: llvm.mlir.global external @__dynamic_shmem
// NVVM: llvm.func @band_d64_fp16
// NVVM-SAME: nvvm.kernel
// NVVM-NOT: gpu.func

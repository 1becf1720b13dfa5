// REQUIRES: mlir
// attn-extern-dynamic-shared-memory alone: the dynamic shared memory array
// becomes external (PTX's .extern .shared), other globals stay as they are.
// RUN: attnc-opt %s --pass-pipeline='builtin.module(gpu.module(attn-extern-dynamic-shared-memory))' | FileCheck %s

module attributes {gpu.container_module} {
  gpu.module @attnc_k {
    // CHECK: llvm.mlir.global external @__dynamic_shmem__0()
    llvm.mlir.global internal @__dynamic_shmem__0() {addr_space = 3 : i32, alignment = 16 : i64} : !llvm.array<0 x i8>
    // CHECK: llvm.mlir.global internal @table
    llvm.mlir.global internal @table(0 : i32) {addr_space = 1 : i32} : i32
  }
}

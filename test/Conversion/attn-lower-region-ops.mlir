// attn-lower-region-ops alone: the patterns that lower a variant's region
// ops once cloned into a kernel, found by the arguments' attn.arg names.
// Regions still inside their attn.variant are left alone.
// REQUIRES: mlir
// RUN: attnc-opt %s --attn-lower-region-ops | FileCheck %s
// RUN: not attnc-opt %S/Inputs/read-without-input.mlir --attn-lower-region-ops 2>&1 | FileCheck %s --check-prefix=ERR

attn.input @flag : i1[batch, head]

attn.variant @keep mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %0 = attn.floormod %q, %k : i64
  %1 = arith.cmpi eq, %0, %k : i64
  attn.yield %1 : i1
}

// CHECK-LABEL: attn.variant @keep
// CHECK: attn.floormod

// CHECK-LABEL: func.func @kernel(
// CHECK-SAME: %[[FLAG:.*]]: memref<64xi8> {attn.arg = "input:flag"}, %[[SB:.*]]: i64 {attn.arg = "input:flag:stride:batch"}, %[[SH:.*]]: i64 {attn.arg = "input:flag:stride:head"}
func.func @kernel(%flag: memref<64xi8> {attn.arg = "input:flag"}, %sb: i64 {attn.arg = "input:flag:stride:batch"},
                  %sh: i64 {attn.arg = "input:flag:stride:head"}, %b: i64, %h: i64, %x: i64, %d: i64, %s: f32)
    -> (i1, i64, f32, f32, i64) {
  // bool inputs are bytes: load, compare with 0.
  // CHECK: %[[Z:.*]] = arith.constant 0 : i64
  // CHECK-NEXT: %[[A:.*]] = arith.muli %{{.*}}, %[[SB]] : i64
  // CHECK-NEXT: %[[B:.*]] = arith.addi %[[Z]], %[[A]] : i64
  // CHECK-NEXT: %[[C:.*]] = arith.muli %{{.*}}, %[[SH]] : i64
  // CHECK-NEXT: %[[D:.*]] = arith.addi %[[B]], %[[C]] : i64
  // CHECK-NEXT: %[[I:.*]] = arith.index_cast %[[D]] : i64 to index
  // CHECK-NEXT: %[[V:.*]] = memref.load %[[FLAG]][%[[I]]] : memref<64xi8>
  // CHECK-NEXT: %[[Z8:.*]] = arith.constant 0 : i8
  // CHECK-NEXT: arith.cmpi ne, %[[V]], %[[Z8]] : i8
  %0 = attn.read @flag[%b, %h] : i1
  // floor semantics: x - d * floordivsi(x, d)
  // CHECK: %[[FD:.*]] = arith.floordivsi %[[X:.*]], %[[DD:.*]] : i64
  // CHECK-NEXT: %[[MUL:.*]] = arith.muli %[[FD]], %[[DD]] : i64
  // CHECK-NEXT: arith.subi %[[X]], %[[MUL]] : i64
  %1 = attn.floormod %x, %d : i64
  // exp(s) = 2^(s log2 e) on the SFU
  // CHECK: %[[L2E:.*]] = arith.constant 1.44269502 : f32
  // CHECK-NEXT: %[[T:.*]] = arith.mulf %{{.*}}, %[[L2E]] : f32
  // CHECK-NEXT: nvvm.inline_ptx "ex2.approx.ftz.f32 $0, $1;" ro(%[[T]] : f32)
  %2 = math.exp %s : f32
  // CHECK: nvvm.inline_ptx "abs.f32 $0, $1;"
  // CHECK: arith.divf
  // CHECK: arith.negf
  %3 = math.tanh %s : f32
  // CHECK: arith.cmpi slt
  // CHECK-NEXT: arith.subi
  // CHECK-NEXT: arith.select
  %4 = math.absi %x : i64
  // CHECK-NOT: attn.read
  // CHECK-NOT: math.
  return %0, %1, %2, %3, %4 : i1, i64, f32, f32, i64
}

// ERR: error: expected the enclosing function to take input @flag (an argument named input:flag)

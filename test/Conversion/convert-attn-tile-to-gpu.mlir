// convert-attn-tile-to-gpu alone, on a tile-stage kernel: a gpu.module per
// kernel at the kernel's place, the runtime ABI on the arguments, the
// mma.sync backend's loop (cp.async double buffering, ldmatrix + mma.sync),
// and the cloned mask region lowered (no attn op is left in the kernel).
// REQUIRES: mlir
// RUN: attnc-opt %s --convert-attn-tile-to-gpu | FileCheck %s
// RUN: not attnc-opt %s --convert-attn-tile-to-gpu='target=sm_70' 2>&1 | FileCheck %s --check-prefix=TARGET
// The wgmma backend lowers this mask (documents: key tiles classified from
// the summary stage's input ranges, read from the workspace) with wgmma:
// RUN: attnc-opt %s --convert-attn-tile-to-gpu='backend=wgmma' | FileCheck %s --check-prefix=WGMMA

attn.input @doc : i32[batch, token]

attn.variant @docs mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %0 = attn.read @doc[%b, %q] : i32
  %1 = attn.read @doc[%b, %k] : i32
  %2 = arith.cmpi eq, %0, %1 : i32
  attn.yield %2 : i1
}

attn.tile.kernel @docs_d64_bf16 variant(@docs) attributes {block_m = 64 : i64, block_n = 32 : i64, ctas_per_sm = 1 : i64, elem = bf16, head_dim = 64 : i64} {
  %q = attn.tile.load_q : tensor<64x64xbf16>
  %m, %l, %acc = attn.tile.key_loop : tensor<64xf32>, tensor<64xf32>, tensor<64x64xf32> {
  ^bb0(%n: i64, %need: i1, %m0: tensor<64xf32>, %l0: tensor<64xf32>, %a0: tensor<64x64xf32>):
    %k = attn.tile.load_k %n : tensor<32x64xbf16>
    %s = attn.tile.qk %q, %k : tensor<64x64xbf16>, tensor<32x64xbf16> -> tensor<64x32xf32>
    %sm = attn.tile.mask %s, %n, %need by region : tensor<64x32xf32>
    %m1, %l1, %a1 = attn.tile.rescale %sm, %m0, %l0, %a0 {log2_scale = 0.18033688011112042 : f64} : tensor<64x32xf32>, tensor<64xf32>, tensor<64x64xf32>
    %p, %sum = attn.tile.exp %sm, %m1 {log2_scale = 0.18033688011112042 : f64} : tensor<64x32xf32>, tensor<64xf32>
    %v = attn.tile.load_v %n : tensor<32x64xbf16>
    %a2 = attn.tile.pv %p, %v, %a1 : tensor<64x32xf32>, tensor<32x64xbf16>, tensor<64x64xf32>
    %l2 = arith.addf %l1, %sum : tensor<64xf32>
    attn.tile.yield %m1, %l2, %a2 : tensor<64xf32>, tensor<64xf32>, tensor<64x64xf32>
  }
  attn.tile.epilogue %m, %l, %acc : tensor<64xf32>, tensor<64xf32>, tensor<64x64xf32>
}

// CHECK: module attributes {gpu.container_module}
// CHECK: attn.variant @docs
// CHECK-NOT: attn.tile.kernel
// CHECK: gpu.module @attnc_docs_d64_bf16 {
// CHECK-NEXT: gpu.func @docs_d64_bf16(%[[Q:.*]]: memref<1099511627776xbf16, 1> {attn.arg = "q"}, %{{.*}} {attn.arg = "k"},
// CHECK-SAME: {attn.arg = "q_stride_b"}
// CHECK-SAME: {attn.arg = "k_offset"}, %[[WS:.*]]: memref<1099511627776xi64, 1> {attn.arg = "workspace"}, %[[DOC:.*]]: memref<1099511627776xi32, 1> {attn.arg = "input:doc"}, %[[S0:.*]]: i64 {attn.arg = "input:doc:stride:batch"}, %[[S1:.*]]: i64 {attn.arg = "input:doc:stride:token"})
// CHECK-SAME: kernel
// CHECK-SAME: attn.kernel_info = {block_m = 64 : i64, block_n = 32 : i64, elem = bf16, head_dim = 64 : i64, shared_bytes = 28688 : i64, threads = 128 : i64, variant = "docs"}
// CHECK-SAME: known_block_size = array<i32: 128, 1, 1>
// 2 x 8 KB of K, V buffers, 9 KB of Q tile, 1 KB of visit/full bitmaps and 16 bytes
// for the first and last tile they visit (documents).
// The Q tile, then the key loop: prefetch, wait for all but the newest group.
// CHECK: nvgpu.device_async_copy %[[Q]]
// The key loop carries (n, buffer, m x 2, l x 2, acc x 32) per lane.
// CHECK: scf.while {{.*}} : (i64, index, f32, f32, f32, f32, f32,
// CHECK: nvvm.cp.async.commit.group
// CHECK-NEXT: nvvm.cp.async.wait.group 1
// CHECK-NEXT: gpu.barrier
// CHECK: nvgpu.ldmatrix {{.*}} {numTiles = 4 : i32, transpose = false}
// CHECK: nvvm.mma.sync
// The mask region per element: doc[b, q] at b * stride_batch + q * stride_token.
// CHECK: %[[I0:.*]] = arith.muli %{{.*}}, %[[S0]] : i64
// CHECK-NEXT: %[[I1:.*]] = arith.addi %{{.*}}, %[[I0]] : i64
// CHECK-NEXT: %[[I2:.*]] = arith.muli %{{.*}}, %[[S1]] : i64
// CHECK-NEXT: %[[I3:.*]] = arith.addi %[[I1]], %[[I2]] : i64
// CHECK-NEXT: %[[AT:.*]] = arith.index_cast %[[I3]] : i64 to index
// CHECK-NEXT: memref.load %[[DOC]][%[[AT]]]
// The lazy rescale's vote, V by ldmatrix.trans, the epilogue's wait and barrier.
// CHECK: nvvm.vote.sync any
// CHECK: nvgpu.ldmatrix {{.*}} {numTiles = 4 : i32, transpose = true}
// CHECK: nvvm.cp.async.wait.group 0
// CHECK-NEXT: gpu.barrier
// CHECK-NOT: attn.read
// CHECK: gpu.return

// TARGET: error: expected target sm_80 or sm_90a, got 'sm_70'

// 64 rows: one warpgroup loading its own tiles (8 KB of Q, 2 x 4 KB each of
// K and V, swizzled, 1 KB of alignment slack, 1 KB of bitmaps and their ends).
// WGMMA: attn.kernel_info = {block_m = 64 : i64, block_n = 32 : i64, elem = bf16, head_dim = 64 : i64, shared_bytes = 26640 : i64, threads = 128 : i64, variant = "docs"}
// WGMMA-NOT: nvvm.mma.sync
// WGMMA: wgmma.mma_async
// WGMMA-NOT: nvvm.mma.sync

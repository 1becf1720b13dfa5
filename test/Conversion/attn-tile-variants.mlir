// attn-tile-variants alone: one attn.tile.kernel per (variant, head dim,
// dtype) with the backend's tiles; the steps follow the variant (score step
// only when the scale cannot fold, mask by intervals or by region, sink).
// REQUIRES: mlir
// RUN: attnc-opt %s --attn-tile-variants='head-dims=128 dtypes=bf16' | FileCheck %s
// RUN: attnc-opt %s --attn-tile-variants='head-dims=64,128 dtypes=bf16,fp16 target=sm_80' | FileCheck %s --check-prefix=MANY
// RUN: attnc-opt %s --attn-tile-variants='head-dims=128 dtypes=bf16 block-m=64 block-n=32' | FileCheck %s --check-prefix=TUNED
// RUN: not attnc-opt %s --attn-tile-variants='backend=tcgen05' 2>&1 | FileCheck %s --check-prefix=BACKEND
// RUN: not attnc-opt %s --attn-tile-variants='backend=wgmma target=sm_80' 2>&1 | FileCheck %s --check-prefix=WGMMA-SM80
// RUN: attnc-opt %s --attn-tile-variants='backend=wgmma target=sm_90a' | FileCheck %s --check-prefix=WGMMA
// Tiles whose buffers exceed an sm_90a block's shared memory are refused:
// RUN: not attnc-opt %s --attn-tile-variants='backend=wgmma head-dims=256 dtypes=bf16 block-m=128 block-n=128' --convert-attn-tile-to-gpu='backend=wgmma' 2>&1 | FileCheck %s --check-prefix=SMEM

attn.input @doc : i32[batch, token]

attn.variant @causal mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %0 = arith.cmpi sle, %k, %q : i64
  attn.yield %0 : i1
}

attn.variant @capped attributes {scale = 6.250000e-02 : f64, sink} mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %0 = attn.read @doc[%b, %q] : i32
  %1 = attn.read @doc[%b, %k] : i32
  %2 = arith.cmpi eq, %0, %1 : i32
  attn.yield %2 : i1
} score {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64, %s: f32):
  %0 = math.tanh %s : f32
  attn.yield %0 : f32
}

// CHECK-LABEL: attn.tile.kernel @causal_d128_bf16 variant(@causal)
// CHECK-SAME:    block_m = 128 : i64, block_n = 64 : i64, ctas_per_sm = 1 : i64, elem = bf16, head_dim = 128 : i64
// CHECK-NEXT:    %[[Q:.*]] = attn.tile.load_q : tensor<128x128xbf16>
// CHECK-NEXT:    %[[M:.*]], %[[L:.*]], %[[ACC:.*]] = attn.tile.key_loop : tensor<128xf32>, tensor<128xf32>, tensor<128x128xf32> {
// CHECK-NEXT:    ^bb0(%[[N:.*]]: i64, %[[NEED:.*]]: i1, %[[M0:.*]]: tensor<128xf32>, %[[L0:.*]]: tensor<128xf32>, %[[A0:.*]]: tensor<128x128xf32>):
// CHECK-NEXT:      %[[K:.*]] = attn.tile.load_k %[[N]] : tensor<64x128xbf16>
// CHECK-NEXT:      %[[S:.*]] = attn.tile.qk %[[Q]], %[[K]] : tensor<128x128xbf16>, tensor<64x128xbf16> -> tensor<128x64xf32>
// CHECK-NEXT:      %[[SM:.*]] = attn.tile.mask %[[S]], %[[N]], %[[NEED]] by intervals : tensor<128x64xf32>
// 1/sqrt(128) * log2 e
// CHECK-NEXT:      %[[M1:.*]], %[[L1:.*]], %[[A1:.*]] = attn.tile.rescale %[[SM]], %[[M0]], %[[L0]], %[[A0]] {log2_scale = 0.1275174308245986{{[0-9]*}} : f64}
// CHECK-NEXT:      %[[P:.*]], %[[SUM:.*]] = attn.tile.exp %[[SM]], %[[M1]] {log2_scale = 0.1275174308245986{{[0-9]*}} : f64}
// CHECK-NEXT:      %[[V:.*]] = attn.tile.load_v %[[N]] : tensor<64x128xbf16>
// CHECK-NEXT:      %[[A2:.*]] = attn.tile.pv %[[P]], %[[V]], %[[A1]]
// CHECK-NEXT:      %[[L2:.*]] = arith.addf %[[L1]], %[[SUM]] : tensor<128xf32>
// CHECK-NEXT:      attn.tile.yield %[[M1]], %[[L2]], %[[A2]]
// CHECK-NEXT:    }
// CHECK-NEXT:    attn.tile.epilogue %[[M]], %[[L]], %[[ACC]]

// A score rule: scale, rule and log2 e in a score step, the softmax at
// log2_scale 1; unsolved conditions: mask by region; the sink.
// CHECK-LABEL: attn.tile.kernel @capped_d128_bf16 variant(@capped)
// CHECK:         attn.tile.key_loop {sink}
// CHECK:         %[[S:.*]] = attn.tile.qk
// CHECK-NEXT:    %[[T:.*]] = attn.tile.score %[[S]], %{{.*}} {scale = 6.250000e-02 : f64} : tensor<64x64xf32>
// CHECK-NEXT:    %[[SM:.*]] = attn.tile.mask %[[T]], %{{.*}}, %{{.*}} by region
// CHECK-NEXT:    attn.tile.rescale %[[SM]], {{.*}} {log2_scale = 1.000000e+00 : f64}

// Variants in order, then head dims, then dtypes; sm_80's tiles.
// MANY: attn.tile.kernel @causal_d64_bf16 {{.*}}block_m = 128 : i64, block_n = 64 : i64
// MANY-NEXT: attn.tile.load_q : tensor<128x64xbf16>
// MANY: attn.tile.kernel @causal_d64_fp16 {{.*}}elem = f16
// MANY: attn.tile.kernel @causal_d128_bf16 {{.*}}block_m = 128 : i64, block_n = 32 : i64
// MANY: attn.tile.kernel @causal_d128_fp16
// A mask reading an input at token positions: the summary stage first,
// with the attention kernel's tiles, then the attention kernel.
// MANY: attn.tile.kernel @capped_d64_bf16_summary {{.*}}block_m = 64 : i64, block_n = 64 : i64{{.*}}stage = "summary"
// MANY-NEXT: attn.tile.summarize_inputs
// MANY-NEXT: }
// MANY-NEXT: attn.tile.kernel @capped_d64_bf16 {{.*}}block_m = 64 : i64, block_n = 64 : i64
// MANY-NOT: stage
// MANY-SAME: {
// MANY: attn.tile.kernel @capped_d64_fp16_summary
// MANY: attn.tile.kernel @capped_d64_fp16
// MANY: attn.tile.kernel @capped_d128_bf16_summary
// MANY: attn.tile.kernel @capped_d128_bf16
// MANY: attn.tile.kernel @capped_d128_fp16_summary
// MANY: attn.tile.kernel @capped_d128_fp16
// MANY-NOT: attn.tile.kernel

// TUNED: attn.tile.kernel @causal_d128_bf16 {{.*}}block_m = 64 : i64, block_n = 32 : i64, ctas_per_sm = 1 : i64

// BACKEND: error: expected backend mma-sync or wgmma, got 'tcgen05'

// WGMMA-SM80: error: the wgmma backend needs target sm_90a, got 'sm_80'

// wgmma: 128 rows (warp specialised), 128 keys at d <= 128 and 64 at d = 256 (shared memory).
// WGMMA: attn.tile.kernel @causal_d128_bf16 {{.*}}block_m = 128 : i64, block_n = 128 : i64, ctas_per_sm = 1 : i64
// WGMMA: attn.tile.kernel @causal_d256_bf16 {{.*}}block_m = 128 : i64, block_n = 64 : i64, ctas_per_sm = 1 : i64

// SMEM: error: 'attn.tile.kernel' op needs 328776 bytes of shared memory at head dim 256 and 128x128, more than the 232448 an sm_90a block can have (choose a smaller --tile)

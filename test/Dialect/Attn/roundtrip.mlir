// Parse/print round trip of every attn op, in the custom and the generic form.
// REQUIRES: mlir
// RUN: attnc-opt %s | attnc-opt | FileCheck %s
// RUN: attnc-opt %s --mlir-print-op-generic | attnc-opt | FileCheck %s

// CHECK: attn.input @prefix : i32[batch]
// CHECK: attn.input @slope : f32[head]
// CHECK: attn.input @doc : i64[batch, token]
// CHECK: attn.input @global_tok : i1[batch, token]
attn.input @prefix : i32[batch]
attn.input @slope : f32[head]
attn.input @doc : i64[batch, token]
attn.input @global_tok : i1[batch, token]

// A variant with every attribute and a score region. Block arguments are
// printed with their role names.
// CHECK-LABEL: attn.variant @everything
// CHECK-SAME:    attributes {scale = 6.250000e-02 : f64, sink}
// CHECK-SAME:    mask {
// CHECK-NEXT:  ^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
// CHECK:         %[[P:.*]] = attn.read @prefix[%b] : i32
// CHECK:         %[[G:.*]] = attn.read @global_tok[%b, %k] : i1
// CHECK:         %[[M:.*]] = attn.floormod %{{.*}}, %{{.*}} : i64
// CHECK:         attn.yield %{{.*}} : i1
// CHECK-NEXT:  } score {
// CHECK-NEXT:  ^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64, %s: f32):
// CHECK:         %[[SL:.*]] = attn.read @slope[%h] : f32
// CHECK:         attn.yield %{{.*}} : f32
// CHECK-NEXT:  }
attn.variant @everything attributes {scale = 0.0625 : f64, sink} mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %p = attn.read @prefix[%b] : i32
  %p64 = arith.extsi %p : i32 to i64
  %before = arith.cmpi slt, %k, %p64 : i64
  %g = attn.read @global_tok[%b, %k] : i1
  %c2 = arith.constant 2 : i64
  %d = arith.subi %q, %k : i64
  %m = attn.floormod %d, %c2 : i64
  %c0 = arith.constant 0 : i64
  %even = arith.cmpi eq, %m, %c0 : i64
  %0 = arith.ori %before, %g : i1
  %1 = arith.ori %0, %even : i1
  attn.yield %1 : i1
} score {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64, %s: f32):
  %slope = attn.read @slope[%h] : f32
  %d = arith.subi %k, %q : i64
  %df = arith.sitofp %d : i64 to f32
  %bias = arith.mulf %slope, %df : f32
  %0 = arith.addf %s, %bias : f32
  attn.yield %0 : f32
}

// Selection by an expression: the select region has no %h.
// CHECK-LABEL: attn.variant @nearest attributes {topk = 512 : i64} mask {
// CHECK:       } select {
// CHECK-NEXT:  ^bb0(%q: i64, %k: i64, %b: i64, %qlen: i64, %klen: i64):
// CHECK:         attn.yield %{{.*}} : i64
attn.variant @nearest attributes {topk = 512 : i64} mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %0 = arith.cmpi sle, %k, %q : i64
  attn.yield %0 : i1
} select {
^bb0(%q: i64, %k: i64, %b: i64, %qlen: i64, %klen: i64):
  %d = arith.subi %q, %k : i64
  %a = math.absi %d : i64
  %c0 = arith.constant 0 : i64
  %n = arith.subi %c0, %a : i64
  attn.yield %n : i64
}

// A float selection score reading a token-indexed input.
// CHECK-LABEL: attn.variant @by_doc attributes {topk = 8 : i64}
// CHECK:       select {
// CHECK:         attn.read @doc[%b, %k] : i64
// CHECK:         attn.yield %{{.*}} : f32
attn.variant @by_doc attributes {topk = 8 : i64} mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %true = arith.constant true
  attn.yield %true : i1
} select {
^bb0(%q: i64, %k: i64, %b: i64, %qlen: i64, %klen: i64):
  %d = attn.read @doc[%b, %k] : i64
  %f = arith.sitofp %d : i64 to f32
  attn.yield %f : f32
}

// Selection by the DSA lightning indexer.
// CHECK-LABEL: attn.variant @dsa
// CHECK-SAME:    indexer = {dim = 128 : i64, dtype = "fp8", heads = 64 : i64}
// CHECK-SAME:    topk = 2048 : i64
attn.variant @dsa attributes {indexer = {heads = 64 : i64, dim = 128 : i64, dtype = "fp8"}, topk = 2048 : i64} mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %0 = arith.cmpi sle, %k, %q : i64
  attn.yield %0 : i1
}

// CHECK-LABEL: attn.model @schedule layers 4 variants [@everything, @dsa] table [0, 1, 1, 0]
// CHECK-NEXT:  attn.model @one layers 1 variants [@nearest] table [0]
attn.model @schedule layers 4 variants [@everything, @dsa] table [0, 1, 1, 0]
attn.model @one layers 1 variants [@nearest] table [0]

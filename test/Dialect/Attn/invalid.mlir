// Every verifier message of the attn dialect, one case each.
// REQUIRES: mlir
// RUN: attnc-opt %s -split-input-file -verify-diagnostics

//===----------------------------------------------------------------------===//
// attn.input
//===----------------------------------------------------------------------===//

// expected-error @+1 {{expected batch, head or token, got 'seq'}}
attn.input @doc : i32[batch, seq]

// -----

// expected-error @+1 {{expected element type i32, i64, f32 or i1 for input @doc, got f16}}
attn.input @doc : f16[batch, token]

// -----

// expected-error @+1 {{expected axis 1 of input @doc to be batch, head or token, got "seq"}}
"attn.input"() <{axes = ["batch", "seq"], elem = i32, sym_name = "doc"}> : () -> ()

// -----

// expected-error @+1 {{expected at most one batch axis in input @doc, got 2}}
attn.input @doc : i32[batch, batch]

//===----------------------------------------------------------------------===//
// attn.read
//===----------------------------------------------------------------------===//

// -----

attn.variant @v mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  // expected-error @+1 {{expected @nope to name an attn.input}}
  %0 = attn.read @nope[%b] : i1
  attn.yield %0 : i1
}

// -----

attn.input @doc : i32[batch, token]
attn.variant @v mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  // expected-error @+1 {{expected 2 indices for input @doc, got 1}}
  %0 = attn.read @doc[%b] : i32
  %true = arith.constant true
  attn.yield %true : i1
}

// -----

attn.input @doc : i32[batch, token]
attn.variant @v mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  // expected-error @+1 {{expected result type i32 for input @doc, got i64}}
  %0 = attn.read @doc[%b, %q] : i64
  %true = arith.constant true
  attn.yield %true : i1
}

// -----

attn.input @doc : i32[batch, token]
attn.variant @v mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  // expected-error @+1 {{expected index 0 of input @doc (batch axis) to be %b, got %q}}
  %0 = attn.read @doc[%q, %b] : i32
  %true = arith.constant true
  attn.yield %true : i1
}

// -----

attn.input @doc : i32[batch, token]
attn.variant @v mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %c1 = arith.constant 1 : i64
  %prev = arith.subi %q, %c1 : i64
  // expected-error @+1 {{expected index 1 of input @doc (token axis) to be %q or %k, got a computed value}}
  %0 = attn.read @doc[%b, %prev] : i32
  %true = arith.constant true
  attn.yield %true : i1
}

// -----

// The select region has no %h: a selection is shared by all heads.
attn.input @slope : f32[head]
attn.variant @v attributes {topk = 4 : i64} mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %true = arith.constant true
  attn.yield %true : i1
} select {
^bb0(%q: i64, %k: i64, %b: i64, %qlen: i64, %klen: i64):
  // expected-error @+1 {{expected index 0 of input @slope (head axis) to be %h, got %b}}
  %0 = attn.read @slope[%b] : f32
  attn.yield %0 : f32
}

//===----------------------------------------------------------------------===//
// attn.variant: attributes
//===----------------------------------------------------------------------===//

// -----

// expected-error @+1 {{expected a positive finite scale, got -1.0}}
attn.variant @v attributes {scale = -1.0 : f64} mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %true = arith.constant true
  attn.yield %true : i1
}

// -----

// expected-error @+1 {{expected topk >= 1, got 0}}
attn.variant @v attributes {topk = 0 : i64} mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %true = arith.constant true
  attn.yield %true : i1
}

// -----

// expected-error @+1 {{expected a select region or an indexer with topk, got neither}}
attn.variant @v attributes {topk = 16 : i64} mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %true = arith.constant true
  attn.yield %true : i1
}

// -----

// expected-error @+1 {{expected a select region or an indexer, got both}}
attn.variant @v attributes {indexer = {heads = 64 : i64, dim = 128 : i64, dtype = "fp8"}, topk = 16 : i64} mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %true = arith.constant true
  attn.yield %true : i1
} select {
^bb0(%q: i64, %k: i64, %b: i64, %qlen: i64, %klen: i64):
  attn.yield %k : i64
}

// -----

// expected-error @+1 {{expected topk with a select region, got none}}
attn.variant @v mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %true = arith.constant true
  attn.yield %true : i1
} select {
^bb0(%q: i64, %k: i64, %b: i64, %qlen: i64, %klen: i64):
  attn.yield %k : i64
}

// -----

// expected-error @+1 {{expected topk with an indexer, got none}}
attn.variant @v attributes {indexer = {heads = 64 : i64, dim = 128 : i64, dtype = "fp8"}} mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %true = arith.constant true
  attn.yield %true : i1
}

// -----

// expected-error @+1 {{expected indexer heads to be a positive i64, got 0 : i64}}
attn.variant @v attributes {indexer = {heads = 0 : i64, dim = 128 : i64, dtype = "fp8"}, topk = 16 : i64} mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %true = arith.constant true
  attn.yield %true : i1
}

// -----

// expected-error @+1 {{expected indexer dtype "fp8", "bf16", "fp16" or "fp32", got "int4"}}
attn.variant @v attributes {indexer = {heads = 64 : i64, dim = 128 : i64, dtype = "int4"}, topk = 16 : i64} mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %true = arith.constant true
  attn.yield %true : i1
}

// -----

// expected-error @+1 {{expected indexer keys heads, dim and dtype, got 'width'}}
attn.variant @v attributes {indexer = {heads = 64 : i64, dim = 128 : i64, dtype = "fp8", width = 2 : i64}, topk = 16 : i64} mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %true = arith.constant true
  attn.yield %true : i1
}

// -----

// expected-error @+1 {{expected indexer dim, got none}}
attn.variant @v attributes {indexer = {heads = 64 : i64, dtype = "fp8"}, topk = 16 : i64} mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %true = arith.constant true
  attn.yield %true : i1
}

//===----------------------------------------------------------------------===//
// attn.variant: region arguments
//===----------------------------------------------------------------------===//

// -----

// expected-error @+1 {{expected 6 arguments (q, k, h, b, qlen, klen) in the mask region, got 5}}
attn.variant @v mask {
^bb0(%q: i64, %k: i64, %b: i64, %qlen: i64, %klen: i64):
  %true = arith.constant true
  attn.yield %true : i1
}

// -----

// expected-error @+1 {{expected argument %h of the mask region to be i64, got index}}
attn.variant @v mask {
^bb0(%q: i64, %k: i64, %h: index, %b: i64, %qlen: i64, %klen: i64):
  %true = arith.constant true
  attn.yield %true : i1
}

// -----

// expected-error @+1 {{expected argument %s of the score region to be f32, got f64}}
attn.variant @v mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %true = arith.constant true
  attn.yield %true : i1
} score {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64, %s: f64):
  %c = arith.constant 1.0 : f32
  attn.yield %c : f32
}

// -----

// expected-error @+1 {{expected 5 arguments (q, k, b, qlen, klen) in the select region, got 6}}
attn.variant @v attributes {topk = 4 : i64} mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %true = arith.constant true
  attn.yield %true : i1
} select {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  attn.yield %k : i64
}

//===----------------------------------------------------------------------===//
// attn.yield
//===----------------------------------------------------------------------===//

// -----

attn.variant @v mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %true = arith.constant true
  // expected-error @+1 {{expected the mask region to yield 1 value, got 2}}
  attn.yield %true, %true : i1, i1
}

// -----

attn.variant @v mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  // expected-error @+1 {{expected the mask region to yield i1, got i64}}
  attn.yield %q : i64
}

// -----

attn.variant @v mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %true = arith.constant true
  attn.yield %true : i1
} score {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64, %s: f32):
  %c = arith.constant 1.0 : f64
  // expected-error @+1 {{expected the score region to yield f32, got f64}}
  attn.yield %c : f64
}

// -----

attn.variant @v attributes {topk = 4 : i64} mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %true = arith.constant true
  attn.yield %true : i1
} select {
^bb0(%q: i64, %k: i64, %b: i64, %qlen: i64, %klen: i64):
  %0 = arith.cmpi sle, %k, %q : i64
  // expected-error @+1 {{expected the select region to yield i64 or f32, got i1}}
  attn.yield %0 : i1
}

// -----

func.func @f() {
  // expected-error @+1 {{expects parent op 'attn.variant'}}
  attn.yield
}

//===----------------------------------------------------------------------===//
// attn.model
//===----------------------------------------------------------------------===//

// -----

attn.variant @a mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %true = arith.constant true
  attn.yield %true : i1
}
// expected-error @+1 {{expected at least 1 layer, got 0}}
attn.model @m layers 0 variants [@a] table []

// -----

attn.variant @global mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %true = arith.constant true
  attn.yield %true : i1
}
attn.variant @local mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %0 = arith.cmpi sle, %k, %q : i64
  attn.yield %0 : i1
}
// expected-error @+1 {{expected 22 layer entries, got 21}}
attn.model @modernbert layers 22 variants [@global, @local] table [0, 1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1]

// -----

attn.variant @a mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %true = arith.constant true
  attn.yield %true : i1
}
attn.variant @b mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %true = arith.constant true
  attn.yield %true : i1
}
// expected-error @+1 {{expected layer 3 to index one of the 2 variants, got 5}}
attn.model @m layers 4 variants [@a, @b] table [0, 1, 0, 5]

// -----

attn.variant @a mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %true = arith.constant true
  attn.yield %true : i1
}
// expected-error @+1 {{expected each variant listed once, got @a twice}}
attn.model @m layers 2 variants [@a, @a] table [0, 1]

// -----

attn.variant @a mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %true = arith.constant true
  attn.yield %true : i1
}
attn.variant @b mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %true = arith.constant true
  attn.yield %true : i1
}
// expected-error @+1 {{expected every listed variant to be used by a layer, got @b unused}}
attn.model @m layers 2 variants [@a, @b] table [0, 0]

// -----

attn.variant @a mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %true = arith.constant true
  attn.yield %true : i1
}
// expected-error @+1 {{expected @missing to name an attn.variant}}
attn.model @m layers 2 variants [@a, @missing] table [0, 1]

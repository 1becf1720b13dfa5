// The tile stage's verifiers: each says what it expected and what it got.
// REQUIRES: mlir
// RUN: attnc-opt %s -split-input-file -verify-diagnostics

attn.variant @v mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %0 = arith.cmpi sle, %k, %q : i64
  attn.yield %0 : i1
}
// expected-error @below {{expected head_dim 64, 128 or 256, got 96}}
attn.tile.kernel @k variant(@v) attributes {block_m = 128 : i64, block_n = 64 : i64, ctas_per_sm = 1 : i64, elem = bf16, head_dim = 96 : i64} {
}

// -----

// expected-error @below {{expected @missing to name an attn.variant}}
attn.tile.kernel @k variant(@missing) attributes {block_m = 128 : i64, block_n = 64 : i64, ctas_per_sm = 1 : i64, elem = bf16, head_dim = 64 : i64} {
  %q = attn.tile.load_q : tensor<128x64xbf16>
  %m, %l, %acc = attn.tile.key_loop : tensor<128xf32>, tensor<128xf32>, tensor<128x64xf32> {
  ^bb0(%n: i64, %need: i1, %m0: tensor<128xf32>, %l0: tensor<128xf32>, %a0: tensor<128x64xf32>):
    attn.tile.yield %m0, %l0, %a0 : tensor<128xf32>, tensor<128xf32>, tensor<128x64xf32>
  }
  attn.tile.epilogue %m, %l, %acc : tensor<128xf32>, tensor<128xf32>, tensor<128x64xf32>
}

// -----

attn.variant @v mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %0 = arith.cmpi sle, %k, %q : i64
  attn.yield %0 : i1
}
// expected-error @below {{expected the body to be attn.tile.load_q, attn.tile.key_loop, attn.tile.epilogue, got attn.tile.load_q}}
attn.tile.kernel @k variant(@v) attributes {block_m = 128 : i64, block_n = 64 : i64, ctas_per_sm = 1 : i64, elem = bf16, head_dim = 64 : i64} {
  %q = attn.tile.load_q : tensor<128x64xbf16>
}

// -----

attn.variant @v mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %0 = arith.cmpi sle, %k, %q : i64
  attn.yield %0 : i1
}
attn.tile.kernel @k variant(@v) attributes {block_m = 128 : i64, block_n = 64 : i64, ctas_per_sm = 1 : i64, elem = bf16, head_dim = 64 : i64} {
  // expected-error @below {{expected a query tile of shape 128x64, got 64x64}}
  %q = attn.tile.load_q : tensor<64x64xbf16>
  %m, %l, %acc = attn.tile.key_loop : tensor<128xf32>, tensor<128xf32>, tensor<128x64xf32> {
  ^bb0(%n: i64, %need: i1, %m0: tensor<128xf32>, %l0: tensor<128xf32>, %a0: tensor<128x64xf32>):
    attn.tile.yield %m0, %l0, %a0 : tensor<128xf32>, tensor<128xf32>, tensor<128x64xf32>
  }
  attn.tile.epilogue %m, %l, %acc : tensor<128xf32>, tensor<128xf32>, tensor<128x64xf32>
}

// -----

attn.variant @v mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %0 = arith.cmpi sle, %k, %q : i64
  attn.yield %0 : i1
}
attn.tile.kernel @k variant(@v) attributes {block_m = 128 : i64, block_n = 64 : i64, ctas_per_sm = 1 : i64, elem = bf16, head_dim = 64 : i64} {
  %q = attn.tile.load_q : tensor<128x64xbf16>
  %m, %l, %acc = attn.tile.key_loop : tensor<128xf32>, tensor<128xf32>, tensor<128x64xf32> {
  ^bb0(%n: i64, %need: i1, %m0: tensor<128xf32>, %l0: tensor<128xf32>, %a0: tensor<128x64xf32>):
    %k = attn.tile.load_k %n : tensor<64x64xbf16>
    // expected-error @below {{expected scores of shape 128x64, got 128x32}}
    %s = attn.tile.qk %q, %k : tensor<128x64xbf16>, tensor<64x64xbf16> -> tensor<128x32xf32>
    attn.tile.yield %m0, %l0, %a0 : tensor<128xf32>, tensor<128xf32>, tensor<128x64xf32>
  }
  attn.tile.epilogue %m, %l, %acc : tensor<128xf32>, tensor<128xf32>, tensor<128x64xf32>
}

// -----

attn.variant @v mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %0 = arith.cmpi sle, %k, %q : i64
  attn.yield %0 : i1
}
attn.tile.kernel @k variant(@v) attributes {block_m = 128 : i64, block_n = 64 : i64, ctas_per_sm = 1 : i64, elem = bf16, head_dim = 64 : i64} {
  %q = attn.tile.load_q : tensor<128x64xbf16>
  %m, %l, %acc = attn.tile.key_loop : tensor<128xf32>, tensor<128xf32>, tensor<128x64xf32> {
  ^bb0(%n: i64, %need: i1, %m0: tensor<128xf32>, %l0: tensor<128xf32>, %a0: tensor<128x64xf32>):
    %c = arith.constant 3 : i64
    // expected-error @below {{expected the key loop's tile index as the tile to load}}
    %k = attn.tile.load_k %c : tensor<64x64xbf16>
    attn.tile.yield %m0, %l0, %a0 : tensor<128xf32>, tensor<128xf32>, tensor<128x64xf32>
  }
  attn.tile.epilogue %m, %l, %acc : tensor<128xf32>, tensor<128xf32>, tensor<128x64xf32>
}

// -----

attn.variant @v mask {
^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
  %0 = arith.cmpi sle, %k, %q : i64
  attn.yield %0 : i1
}
attn.tile.kernel @k variant(@v) attributes {block_m = 128 : i64, block_n = 64 : i64, ctas_per_sm = 1 : i64, elem = bf16, head_dim = 64 : i64} {
  %q = attn.tile.load_q : tensor<128x64xbf16>
  %m, %l, %acc = attn.tile.key_loop : tensor<128xf32>, tensor<128xf32>, tensor<128x64xf32> {
  ^bb0(%n: i64, %need: i1, %m0: tensor<128xf32>, %l0: tensor<128xf32>, %a0: tensor<128x64xf32>):
    %v = attn.tile.load_v %n : tensor<64x64xbf16>
    %p = arith.constant dense<0.0> : tensor<128x32xf32>
    // expected-error @below {{expected v of 32 rows (p's columns), got 64}}
    %a1 = attn.tile.pv %p, %v, %a0 : tensor<128x32xf32>, tensor<64x64xbf16>, tensor<128x64xf32>
    attn.tile.yield %m0, %l0, %a1 : tensor<128xf32>, tensor<128xf32>, tensor<128x64xf32>
  }
  attn.tile.epilogue %m, %l, %acc : tensor<128xf32>, tensor<128xf32>, tensor<128x64xf32>
}

//===- AttnDialect.td - The attn dialect -------------------*- tablegen -*-===//
//
// The dialect that the front end's MLIRGen produces (`attnc --emit=attn`): one
// op per attention variant, runtime inputs as module-level symbols, and one op
// per model's layer table. Later stages (tile classification, tiling, GPU
// lowering) start from here.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_DIALECT_ATTN_IR_ATTNDIALECT_TD
#define ATTNC_DIALECT_ATTN_IR_ATTNDIALECT_TD

include "mlir/IR/OpBase.td"

def Attn_Dialect : Dialect {
  let name = "attn";
  let cppNamespace = "::attnc::attn";
  let summary = "Attention variants: masks, score rules, selection rules and layer tables";
  let description = [{
    The `attn` dialect is the first IR of attnc. A source file in the attention
    language (docs/language.md) becomes a module holding:

    - one `attn.input` per runtime input tensor (`input doc : i32[batch, token];`),
    - one `attn.variant` per `attention` block, with a `mask` region, an
      optional `score` region and an optional `select` region, each written in
      the `arith` and `math` dialects over the variant's index variables,
    - one `attn.model` per `model` block: its distinct variants and the table
      mapping each layer to one of them.

    Value types inside regions: every integer of the language is `i64`, every
    float is `f32` (the kernel computes scores in fp32), every bool is `i1`.
    Integer `/` and `%` have floor semantics: `arith.floordivsi` and
    `attn.floormod`.

    ```mlir
    // input doc : i32[batch, token];
    // attention documents { mask doc[b, q] == doc[b, k]; }
    attn.input @doc : i32[batch, token]
    attn.variant @documents mask {
    ^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
      %0 = attn.read @doc[%b, %q] : i32
      %1 = arith.extsi %0 : i32 to i64
      %2 = attn.read @doc[%b, %k] : i32
      %3 = arith.extsi %2 : i32 to i64
      %4 = arith.cmpi eq, %1, %3 : i64
      attn.yield %4 : i1
    }
    ```
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::math::MathDialect"
  ];
  let hasConstantMaterializer = 1;
}

/// Base class of every attn op.
class Attn_Op<string mnemonic, list<Trait> traits = []> :
    Op<Attn_Dialect, mnemonic, traits>;

#endif // ATTNC_DIALECT_ATTN_IR_ATTNDIALECT_TD

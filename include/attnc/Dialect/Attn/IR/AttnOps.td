//===- AttnOps.td - Operations of the attn dialect ---------*- tablegen -*-===//
//
// attn.input, attn.read, attn.variant, attn.yield, attn.floormod and
// attn.model. The verifiers (AttnOps.cpp) say what they expected and what
// they found: "expected 2 indices for input @doc, got 1".
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_DIALECT_ATTN_IR_ATTNOPS_TD
#define ATTNC_DIALECT_ATTN_IR_ATTNOPS_TD

include "attnc/Dialect/Attn/IR/AttnDialect.td"
include "mlir/IR/OpAsmInterface.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

//===----------------------------------------------------------------------===//
// attn.input
//===----------------------------------------------------------------------===//

def Attn_InputOp : Attn_Op<"input", [Symbol]> {
  let summary = "declares a runtime input tensor that regions may read";
  let description = [{
    Declares a tensor passed to the kernel at run time, the IR form of
    `input NAME : ELEM[AXIS, ...];`. `axes` lists the tensor's axes in order,
    each `batch` (indexed by `b`), `head` (indexed by `h`) or `token` (indexed
    by the absolute position `q` or `k`). `elem` is the element type: `i32`,
    `i64`, `f32` or `i1` (the language's `bool`).

    The op is a symbol; regions read elements with `attn.read @NAME[...]`.

    ```mlir
    attn.input @prefix : i32[batch]
    attn.input @slope : f32[head]
    attn.input @doc : i32[batch, token]
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name,
                       StrArrayAttr:$axes,
                       TypeAttr:$elem);
  let hasCustomAssemblyFormat = 1;
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The axes as enum values (the verifier guarantees they are valid).
    ::llvm::SmallVector<::attnc::attn::Axis> getAxisKinds();
  }];
}

//===----------------------------------------------------------------------===//
// attn.read
//===----------------------------------------------------------------------===//

def Attn_ReadOp : Attn_Op<"read",
    [Pure, DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "reads one element of a runtime input";
  let description = [{
    Reads the element of the input `@NAME` at one index per axis, the IR form
    of `doc[b, q]`. The result type is the input's element type. Inside an
    `attn.variant`, each index must be the region argument that the axis is
    indexed by: `b` for `batch`, `h` for `head`, `q` or `k` for `token` (the
    language allows nothing else, and the tile analysis relies on it).

    Inputs are immutable while a kernel runs, so the op is pure.

    ```mlir
    %0 = attn.read @doc[%b, %q] : i32
    %1 = attn.read @slope[%h] : f32
    ```
  }];
  let arguments = (ins FlatSymbolRefAttr:$input, Variadic<I64>:$indices);
  let results = (outs AnyTypeOf<[I1, I32, I64, F32]>:$result);
  let assemblyFormat = "$input `[` $indices `]` attr-dict `:` type($result)";
}

//===----------------------------------------------------------------------===//
// attn.variant
//===----------------------------------------------------------------------===//

def Attn_VariantOp : Attn_Op<"variant", [
    Symbol, IsolatedFromAbove,
    DeclareOpInterfaceMethods<OpAsmOpInterface, ["getAsmBlockArgumentNames"]>]> {
  let summary = "one attention variant: its mask, score rule and selection";
  let description = [{
    One `attention NAME { ... }` block of the source. Regions:

    - `mask` (required): block arguments `(q, k, h, b, qlen, klen)`, all `i64`;
      yields the `i1` that says whether query `q` may attend to key `k`. The
      conjunction of every `mask` clause; `true` when the source has none.
    - `score` (optional): block arguments `(q, k, h, b, qlen, klen, s)`, the
      first six `i64` and `s : f32` the scaled score; yields the new score as
      `f32`.
    - `select` (optional): block arguments `(q, k, b, qlen, klen)`, all `i64`
      (no `h`: a selection is shared by all heads of a KV group); yields the
      selection score, `i64` or `f32`.

    `q` and `k` are absolute token positions, `h` the query head, `b` the
    batch entry, `qlen`/`klen` the numbers of queries and keys. Region bodies
    are `arith` and `math` ops, `attn.read` and `attn.floormod`; the regions
    are isolated from above.

    Attributes:
    - `scale` (f64): the softmax scale; absent means `1/sqrt(head_dim)`;
    - `sink` (unit): a learned per-head sink logit joins the denominator;
    - `topk` (i64 >= 1): keep the `topk` allowed keys with the highest
      selection score; needs exactly one of a `select` region or `indexer`;
    - `indexer` (dictionary `{heads: i64, dim: i64, dtype: string}`, dtype
      one of "fp8", "bf16", "fp16", "fp32"): select by the DSA lightning
      indexer instead of a `select` region.

    ```mlir
    attn.variant @local attributes {scale = 6.250000e-02 : f64, sink} mask {
    ^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
      %c64 = arith.constant 64 : i64
      %0 = arith.subi %q, %k : i64
      %1 = math.absi %0 : i64
      %2 = arith.cmpi sle, %1, %c64 : i64
      attn.yield %2 : i1
    }

    attn.variant @dsa attributes {indexer = {dim = 128 : i64, dtype = "fp8", heads = 64 : i64}, topk = 2048 : i64} mask {
    ^bb0(%q: i64, %k: i64, %h: i64, %b: i64, %qlen: i64, %klen: i64):
      %0 = arith.cmpi sle, %k, %q : i64
      attn.yield %0 : i1
    }
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name,
                       OptionalAttr<F64Attr>:$scale,
                       UnitAttr:$sink,
                       OptionalAttr<I64Attr>:$topk,
                       OptionalAttr<DictionaryAttr>:$indexer);
  let regions = (region SizedRegion<1>:$mask,
                        MaxSizedRegion<1>:$score,
                        MaxSizedRegion<1>:$select);
  let assemblyFormat = [{
    $sym_name attr-dict-with-keyword `mask` $mask (`score` $score^)? (`select` $select^)?
  }];
  let hasVerifier = 1;
  let hasRegionVerifier = 1;
  let extraClassDeclaration = [{
    /// Which of the three regions `region` is.
    ::attnc::attn::VariantRegion getVariantRegion(::mlir::Region &region);
    /// The names of the block arguments of a region of this kind, in order:
    /// q k h b qlen klen (mask), plus s (score), q k b qlen klen (select).
    static ::llvm::ArrayRef<::llvm::StringRef> getArgNames(::attnc::attn::VariantRegion kind);
    /// The role of `arg` if it is an entry block argument of one of this
    /// variant's regions ("q", "k", "h", "b", "qlen", "klen" or "s").
    std::optional<::llvm::StringRef> getArgRole(::mlir::Value value);
  }];
}

//===----------------------------------------------------------------------===//
// attn.yield
//===----------------------------------------------------------------------===//

def Attn_YieldOp : Attn_Op<"yield",
    [Pure, Terminator, HasParent<"::attnc::attn::VariantOp">]> {
  let summary = "ends a region of attn.variant with its value";
  let description = [{
    Terminates the `mask`, `score` or `select` region of an `attn.variant`
    with exactly one value: the mask bit (`i1`), the new score (`f32`) or
    the selection score (`i64` or `f32`).

    ```mlir
    attn.yield %allowed : i1
    ```
  }];
  let arguments = (ins Variadic<AnyType>:$values);
  let assemblyFormat = "attr-dict ($values^ `:` type($values))?";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// attn.floormod
//===----------------------------------------------------------------------===//

def Attn_FloorModOp : Attn_Op<"floormod",
    [Pure, SameOperandsAndResultType]> {
  let summary = "signed integer remainder with the sign of the divisor";
  let description = [{
    The language's integer `%` (docs/language.md 8.1): the remainder of the
    floor division, so that `a == floordivsi(a, b) * b + floormod(a, b)`.
    It differs from `arith.remsi`, which truncates: `-7 % 2` is `1` here and
    `-1` with `arith.remsi`; `7 % -2` is `-1` here. A divisor of zero gives
    poison, as in `arith.remsi`. Folds when both operands are constants.

    ```mlir
    %r = attn.floormod %d, %c2 : i64
    ```
  }];
  let arguments = (ins SignlessIntegerLike:$lhs, SignlessIntegerLike:$rhs);
  let results = (outs SignlessIntegerLike:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// attn.model
//===----------------------------------------------------------------------===//

def Attn_ModelOp : Attn_Op<"model",
    [Symbol, DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "a model's layers: its distinct variants and a layer table";
  let description = [{
    One `model NAME { layers N; ... }` block, resolved: `variants` lists the
    distinct `attn.variant`s the model uses, in order of first use, and
    `table` has one entry per layer, the index into `variants` of that
    layer's variant. One kernel is compiled per listed variant, not per layer.

    The verifier checks that there are `layers` entries, that each is a valid
    index, that every listed variant is used and listed once, and that each
    names an `attn.variant`.

    ```mlir
    // ModernBERT: layer i is global when i % 3 == 0.
    attn.model @modernbert layers 22 variants [@global, @local]
        table [0, 1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 0]
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name,
                       I64Attr:$layers,
                       FlatSymbolRefArrayAttr:$variants,
                       DenseI32ArrayAttr:$table);
  let assemblyFormat = [{
    $sym_name `layers` $layers `variants` $variants `table` $table attr-dict
  }];
  let hasVerifier = 1;
}

include "attnc/Dialect/Attn/IR/AttnTileOps.td"

#endif // ATTNC_DIALECT_ATTN_IR_ATTNOPS_TD

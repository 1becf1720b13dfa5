//===- AttnTileOps.td - The tile stage of the attn dialect -*- tablegen -*-===//
//
// The target-neutral tile stage (`attnc --emit=tiled`): one attn.tile.kernel
// per (variant, head dim, dtype), a program over tile-shaped values
// (`tensor<128x64xf32>`: a whole tile, no register layout) built by
// `attn-tile-variants` and lowered by `convert-attn-tile-to-gpu` through an
// MMA backend, which alone decides which thread holds which element, how
// loads are pipelined and when the running maximum moves. Verifiers in
// AttnTileOps.cpp; docs/codegen.md shows a whole kernel at this stage.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_DIALECT_ATTN_IR_ATTNTILEOPS_TD
#define ATTNC_DIALECT_ATTN_IR_ATTNTILEOPS_TD

include "attnc/Dialect/Attn/IR/AttnDialect.td"
include "mlir/IR/EnumAttr.td"
include "mlir/IR/OpAsmInterface.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

/// A tile of the kernel's element type (bf16 or f16), or of fp32 scores,
/// probabilities and accumulators.
def Attn_ElemTile : 2DTensorOf<[BF16, F16]>;
def Attn_F32Tile : 2DTensorOf<[F32]>;
/// One value per query row of the tile (running max, running sum).
def Attn_RowTile : 1DTensorOf<[F32]>;

class Attn_TileOp<string mnemonic, list<Trait> traits = []> :
    Attn_Op<"tile." # mnemonic, traits>;

//===----------------------------------------------------------------------===//
// attn.tile.kernel
//===----------------------------------------------------------------------===//

def Attn_TileKernelOp : Attn_TileOp<"kernel", [
    Symbol, IsolatedFromAbove, SingleBlock, NoTerminator,
    DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "one fused attention kernel as a program over tiles";
  let description = [{
    The kernel of `variant` for one head dim and one element type: one
    instance (a CTA, on a GPU) computes one query tile of `block_m` rows of
    one query head and batch entry, visiting key tiles of `block_n` keys.
    The body holds the tile program: `attn.tile.load_q`, one
    `attn.tile.key_loop` and `attn.tile.epilogue`. `ctas_per_sm` is the
    occupancy the backend allocates registers for.

    A variant that selects (`select topk(K) by ...`) has three kernels per
    head dim and element type, told apart by `stage`:
    - `stage = "select"`: one instance scores every allowed key of
      `block_m` query rows (the indexer or the select expression, per key
      tile of `block_n` keys) into the workspace; the body is one
      `attn.tile.select_scores`;
    - `stage = "topk"`: one instance keeps the top K of the same rows'
      workspace keys; the body is one `attn.tile.select_topk`;
    - `stage = "attention"` (with `selection`): one instance computes the
      query heads of one KV group at one query row (up to `block_m` of
      them) over that row's selected keys; key tile `n` holds selected
      keys `n * block_n ..`, and `attn.tile.mask ... by selection` drops the
      unfilled slots. The body is the ordinary tile program.
    A variant whose mask reads runtime inputs at token positions (packed
    documents: `doc[b, q] == doc[b, k]`) has two, the first with
    `stage = "summary"`: one instance writes, for some query and key tiles
    of one query head and batch entry, the minimum and maximum of each
    input read over the tile's positions into the workspace (the body is
    one `attn.tile.summarize_inputs`); the second, without `stage`, is the
    ordinary kernel, which classifies its key tiles from those summaries.
    A kernel without `stage` is otherwise a variant's only kernel.
    Compiled with backward kernels (`attnc --backward`), a variant also has
    two gradient kernels per head dim and element type, launched after the
    forward pass with its O and LSE (docs/codegen.md "Backward"):
    - `stage = "backward_dq"`: one instance computes dQ for one query tile
      of `block_m` rows over the key tiles the forward pass visits (the body
      is one `attn.tile.backward_dq`), and Delta = rowsum(dO * O) of its
      rows into the workspace;
    - `stage = "backward_dkdv"`: one instance computes dK and dV for one key
      tile of `block_m` keys of one KV head, over every query head of its
      group and every query tile of `block_n` rows that may see it (the body
      is one `attn.tile.backward_dkdv`).
    A variant whose mask reads inputs at token positions has a third before
    them, `stage = "backward_summary"`: the summary stage over the gradient
    kernels' tiles (body: one `attn.tile.summarize_inputs`), whose ranges
    both gradient kernels classify their tiles from.

    The tile sizes are the MMA backend's choice (TilePolicy.h for mma.sync),
    made by `attn-tile-variants`; everything below the tile (threads,
    fragments, shared-memory layout, pipelining) is decided when the kernel
    is lowered.

    ```mlir
    attn.tile.kernel @causal_d128_bf16 variant(@causal) {block_m = 128 : i64,
        block_n = 64 : i64, ctas_per_sm = 1 : i64, elem = bf16, head_dim = 128 : i64} {
      %q = attn.tile.load_q : tensor<128x128xbf16>
      %m, %l, %acc = attn.tile.key_loop : tensor<128xf32>, tensor<128xf32>, tensor<128x128xf32> {
      ^bb0(%n: i64, %need_mask: i1, %m0: tensor<128xf32>, %l0: tensor<128xf32>, %acc0: tensor<128x128xf32>):
        ...
      }
      attn.tile.epilogue %m, %l, %acc : tensor<128xf32>, tensor<128xf32>, tensor<128x128xf32>
    }
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name,
                       FlatSymbolRefAttr:$variant,
                       I64Attr:$head_dim,
                       TypeAttr:$elem,
                       I64Attr:$block_m,
                       I64Attr:$block_n,
                       I64Attr:$ctas_per_sm,
                       OptionalAttr<StrAttr>:$stage);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    $sym_name `variant` `(` $variant `)` attr-dict-with-keyword $body
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The attn.variant this kernel computes (the verifier guarantees it).
    ::attnc::attn::VariantOp getVariantOp();
    /// The select stage of a selecting variant (body: attn.tile.select_scores).
    bool isSelectStage() { return getStage() && *getStage() == "select"; }
    /// The top-k stage of a selecting variant (body: attn.tile.select_topk).
    bool isTopkStage() { return getStage() && *getStage() == "topk"; }
    /// One of the two stages over query rows (select, topk), not the attention.
    bool overRows() { return isSelectStage() || isTopkStage(); }
    /// The attention stage of a selecting variant: over the selected keys.
    bool overSelection() { return getStage() && *getStage() == "attention"; }
    /// The input summaries of a variant whose mask reads inputs at token
    /// positions (body: attn.tile.summarize_inputs).
    bool isSummaryStage() { return getStage() && *getStage() == "summary"; }
    /// The backward pass's dQ kernel (body: attn.tile.backward_dq).
    bool isBackwardDQ() { return getStage() && *getStage() == "backward_dq"; }
    /// The backward pass's dK/dV kernel (body: attn.tile.backward_dkdv).
    bool isBackwardDKDV() { return getStage() && *getStage() == "backward_dkdv"; }
    /// The input summaries over the gradient kernels' tiles (body:
    /// attn.tile.summarize_inputs).
    bool isBackwardSummary() { return getStage() && *getStage() == "backward_summary"; }
    bool isBackward() { return isBackwardDQ() || isBackwardDKDV() || isBackwardSummary(); }
  }];
}

//===----------------------------------------------------------------------===//
// attn.tile.select_topk
//===----------------------------------------------------------------------===//

def Attn_TileSummarizeInputsOp : Attn_TileOp<"summarize_inputs", [HasParent<"TileKernelOp">]> {
  let summary = "the range of each input read at token positions, per query and key tile, into the workspace";
  let description = [{
    The whole program of a summary-stage kernel: for each query tile
    (`block_m` query rows) and key tile (`block_n` keys) of the instance's
    query head and batch entry, the minimum and maximum of every input the
    mask reads at a token position, over the tile's positions, into the
    launch's workspace. The attention kernel reads them back to classify
    its key tiles (visit or skip, mask or not) with two loads per tile and
    input, where it would otherwise read every position of every tile of
    its range: once per call in O(L) instead of once per query tile.

    ```mlir
    attn.tile.summarize_inputs
    ```
  }];
  let assemblyFormat = "attr-dict";
}

def Attn_TileBackwardDQOp : Attn_TileOp<"backward_dq", [HasParent<"TileKernelOp">]> {
  let summary = "dQ of one query tile, and Delta = rowsum(dO * O) of its rows";
  let description = [{
    The whole program of a backward_dq kernel: for the instance's query
    tile, Delta = rowsum(dO * O) (into the workspace, for the dK/dV kernel),
    then over the key tiles the forward pass visits (the same closed forms,
    masks on partial tiles only): S = Q K^T, P = exp(scale S - LSE),
    dP = dO V^T, dS = P (dP - Delta), dQ += scale dS K; dQ out.

    ```mlir
    attn.tile.backward_dq
    ```
  }];
  let assemblyFormat = "attr-dict";
}

def Attn_TileBackwardDKDVOp : Attn_TileOp<"backward_dkdv", [HasParent<"TileKernelOp">]> {
  let summary = "dK and dV of one key tile, over the query tiles that see it";
  let description = [{
    The whole program of a backward_dkdv kernel: for the instance's key
    tile of one KV head, over every query head of the group and every query
    tile whose closed-form classification may allow a pair with it, the
    transposed products S^T = K Q^T, P^T = exp(scale S^T - LSE),
    dV += P^T dO, dP^T = V dO^T, dS^T = P^T (dP^T - Delta), dK += scale
    dS^T Q; dK and dV out. Deterministic: no atomics.

    ```mlir
    attn.tile.backward_dkdv
    ```
  }];
  let assemblyFormat = "attr-dict";
}

def Attn_TileSelectScoresOp : Attn_TileOp<"select_scores", [HasParent<"TileKernelOp">]> {
  let summary = "the selection score of every allowed key of each query row, into the workspace";
  let description = [{
    The whole program of a select-stage kernel: for each of the instance's
    query rows, the selection score of every key the mask allows (the DSA
    indexer `sum_j w[t, j] relu(qI[t, j] . kI[s])` or the variant's select
    region), over the key tiles the mask's closed forms visit, into the
    launch's workspace as order-preserving keys (0 for a key the mask
    excludes).

    ```mlir
    attn.tile.select_scores
    ```
  }];
  let assemblyFormat = "attr-dict";
}

def Attn_TileSelectTopkOp : Attn_TileOp<"select_topk", [HasParent<"TileKernelOp">]> {
  let summary = "the top K allowed keys of each query row, from the workspace";
  let description = [{
    The whole program of a topk-stage kernel: for each of the instance's
    query rows, the K best of the workspace keys attn.tile.select_scores
    wrote for it (higher score, then lower key; NaN last) into
    `indices[b, g, t, :]` for every KV group g, in ascending key order, -1
    after the last when fewer than K keys are allowed.

    ```mlir
    attn.tile.select_topk
    ```
  }];
  let assemblyFormat = "attr-dict";
}

//===----------------------------------------------------------------------===//
// Loads
//===----------------------------------------------------------------------===//

def Attn_TileLoadQOp : Attn_TileOp<"load_q", [HasParent<"TileKernelOp">]> {
  let summary = "this instance's query tile";
  let description = [{
    The `block_m x head_dim` tile of Q this kernel instance computes; rows
    past `qlen` read as zero.

    ```mlir
    %q = attn.tile.load_q : tensor<128x128xbf16>
    ```
  }];
  let results = (outs Attn_ElemTile:$tile);
  let assemblyFormat = "attr-dict `:` type($tile)";
  let hasVerifier = 1;
}

class Attn_TileLoadKeyRowsOp<string mnemonic, string tensor> : Attn_TileOp<mnemonic, [HasParent<"TileKeyLoopOp">]> {
  let summary = "key tile `n` of " # tensor;
  let description = [{
    The `block_n x head_dim` tile of }] # tensor # [{ holding keys
    `n * block_n ..` of this instance's KV head; rows past `klen` read as
    zero. `n` must be the enclosing key loop's tile index: the backend
    pipelines these loads across iterations (double-buffered cp.async on
    sm_80, TMA with mbarriers on sm_90a).

    ```mlir
    %t = attn.tile.}] # mnemonic # [{ %n : tensor<64x128xbf16>
    ```
  }];
  let arguments = (ins I64:$n);
  let results = (outs Attn_ElemTile:$tile);
  let assemblyFormat = "$n attr-dict `:` type($tile)";
  let hasVerifier = 1;
}
def Attn_TileLoadKOp : Attn_TileLoadKeyRowsOp<"load_k", "K">;
def Attn_TileLoadVOp : Attn_TileLoadKeyRowsOp<"load_v", "V">;

//===----------------------------------------------------------------------===//
// attn.tile.key_loop
//===----------------------------------------------------------------------===//

def Attn_TileKeyLoopOp : Attn_TileOp<"key_loop", [
    HasParent<"TileKernelOp">, SingleBlock,
    DeclareOpInterfaceMethods<OpAsmOpInterface, ["getAsmBlockArgumentNames", "getAsmResultNames"]>]> {
  let summary = "the online softmax over the key tiles the query tile visits";
  let description = [{
    Runs its body once per key tile `n` the query tile visits, in ascending
    order, carrying the online-softmax state: the running row maximum `m`
    (log2 units), the running row sum `l` and the output accumulator `acc`.
    The visited tiles and `need_mask` come from the variant's key intervals
    (closed forms over the tile's query positions, TileVisits.cpp): a tile
    no clause can touch is never visited; `need_mask` is false on tiles
    every row's interval covers. For masks reading inputs at token positions
    (documents) the backend may also consult per-tile summaries.

    The state starts at `m = -inf, l = 0, acc = 0`; with `sink`, at `m =
    S_h log2 e, l = 1` (the sink joins as a key of score `S_h` and value 0).
    The results are the state after the last visited tile.

    The body's block arguments are `(n: i64, need_mask: i1, m, l, acc)`; it
    ends with `attn.tile.yield` of the next `(m, l, acc)`.

    ```mlir
    %m, %l, %acc = attn.tile.key_loop : tensor<128xf32>, tensor<128xf32>, tensor<128x128xf32> {
    ^bb0(%n: i64, %need_mask: i1, %m0: tensor<128xf32>, %l0: tensor<128xf32>, %acc0: tensor<128x128xf32>):
      %k = attn.tile.load_k %n : tensor<64x128xbf16>
      %s = attn.tile.qk %q, %k : tensor<128x128xbf16>, tensor<64x128xbf16> -> tensor<128x64xf32>
      %sm = attn.tile.mask %s, %n, %need_mask by intervals : tensor<128x64xf32>
      %m1, %l1, %acc1 = attn.tile.rescale %sm, %m0, %l0, %acc0 {log2_scale = 0.1275 : f64} : ...
      %p, %sum = attn.tile.exp %sm, %m1 {log2_scale = 0.1275 : f64} : ...
      %v = attn.tile.load_v %n : tensor<64x128xbf16>
      %acc2 = attn.tile.pv %p, %v, %acc1 : ...
      %l2 = arith.addf %l1, %sum : tensor<128xf32>
      attn.tile.yield %m1, %l2, %acc2 : tensor<128xf32>, tensor<128xf32>, tensor<128x128xf32>
    }
    ```
  }];
  let arguments = (ins UnitAttr:$sink);
  let results = (outs Attn_RowTile:$m, Attn_RowTile:$l, Attn_F32Tile:$acc);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = "attr-dict `:` type($m) `,` type($l) `,` type($acc) $body";
  let hasRegionVerifier = 1;
  let skipDefaultBuilders = 1;
  let builders = [OpBuilder<(ins "int64_t":$blockM, "int64_t":$headDim, "bool":$sink)>];
  let extraClassDeclaration = [{
    ::mlir::Block &getBodyBlock() { return getBody().front(); }
    ::mlir::Value getTileIndex() { return getBodyBlock().getArgument(0); }
    ::mlir::Value getNeedMask() { return getBodyBlock().getArgument(1); }
  }];
}

def Attn_TileYieldOp : Attn_TileOp<"yield", [Pure, Terminator, HasParent<"TileKeyLoopOp">]> {
  let summary = "the next online-softmax state of a key loop";
  let description = [{
    Ends the body of `attn.tile.key_loop` with the state `(m, l, acc)` for
    the next visited key tile.

    ```mlir
    attn.tile.yield %m1, %l2, %acc2 : tensor<128xf32>, tensor<128xf32>, tensor<128x128xf32>
    ```
  }];
  let arguments = (ins Attn_RowTile:$m, Attn_RowTile:$l, Attn_F32Tile:$acc);
  let assemblyFormat = "$m `,` $l `,` $acc attr-dict `:` type($m) `,` type($l) `,` type($acc)";
}

//===----------------------------------------------------------------------===//
// One key tile
//===----------------------------------------------------------------------===//

def Attn_TileQKOp : Attn_TileOp<"qk", [Pure]> {
  let summary = "S = Q K^T on one tile, in fp32";
  let description = [{
    The raw scores of the query tile against one key tile, accumulated in
    fp32: `s[i, j] = sum_d q[i, d] k[j, d]` (no scale yet).

    ```mlir
    %s = attn.tile.qk %q, %k : tensor<128x128xbf16>, tensor<64x128xbf16> -> tensor<128x64xf32>
    ```
  }];
  let arguments = (ins Attn_ElemTile:$q, Attn_ElemTile:$k);
  let results = (outs Attn_F32Tile:$s);
  let assemblyFormat = "$q `,` $k attr-dict `:` type($q) `,` type($k) `->` type($s)";
  let hasVerifier = 1;
}

def Attn_TileScoreOp : Attn_TileOp<"score", [Pure, AllTypesMatch<["s", "result"]>]> {
  let summary = "scale, score rule and log2 e applied to one tile of scores";
  let description = [{
    `result = rule(s * scale) * log2 e` per element, where `rule` is the
    variant's score region (the identity without one) evaluated at the
    element's absolute query and key positions (key tile `n`). Present when
    the scale cannot be folded into the exponent: with a score rule, or a
    non-positive scale; the scores are then in log2 units and the softmax
    ops take `log2_scale = 1`.

    ```mlir
    %t = attn.tile.score %s, %n {scale = 0.0625 : f64} : tensor<128x64xf32>
    ```
  }];
  let arguments = (ins Attn_F32Tile:$s, I64:$n, F64Attr:$scale);
  let results = (outs Attn_F32Tile:$result);
  let assemblyFormat = "$s `,` $n attr-dict `:` type($s)";
}

def Attn_MaskKindAttr : I32EnumAttr<"MaskKind", "how a partial tile is masked", [
    I32EnumAttrCase<"intervals", 0>, I32EnumAttrCase<"region", 1>, I32EnumAttrCase<"selection", 2>]> {
  let cppNamespace = "::attnc::attn";
}

def Attn_TileMaskOp : Attn_TileOp<"mask", [Pure, AllTypesMatch<["s", "result"]>]> {
  let summary = "-inf where the mask excludes a (query, key) pair of a partial tile";
  let description = [{
    When `need_mask` is true, every element whose key is past `klen` or
    whose pair the variant's mask excludes becomes `-inf`; otherwise `s`
    passes unchanged. `by intervals`: the mask is solved into key intervals
    and each row compares its keys against its bounds; `by region`: the
    variant's mask region is evaluated per element (unsolved conditions);
    `by selection` (the attention stage of a selecting variant): the slots
    of the key tile the selection left unfilled (index -1, or past topk)
    become `-inf` (every selected key is allowed by construction).

    ```mlir
    %t = attn.tile.mask %s, %n, %need_mask by intervals : tensor<128x64xf32>
    ```
  }];
  let arguments = (ins Attn_F32Tile:$s, I64:$n, I1:$need_mask, Attn_MaskKindAttr:$by);
  let results = (outs Attn_F32Tile:$result);
  let assemblyFormat = "$s `,` $n `,` $need_mask `by` $by attr-dict `:` type($s)";
}

def Attn_TileRescaleOp : Attn_TileOp<"rescale", [Pure,
    AllTypesMatch<["m", "m_new", "l", "l_new"]>, AllTypesMatch<["acc", "acc_new"]>]> {
  let summary = "moves the running maximum for a new tile of scores";
  let description = [{
    With `x = s * log2_scale` (log2 units): returns `m_new >= max(m, max_j
    x[i, j]) - slack` for a backend-chosen slack (mma.sync: 8, so that
    probabilities stay below 2^8; the maximum may move lazily, only when
    some row outgrows it), and `l`, `acc` multiplied per row by `2^(m -
    m_new)`. Rows still at `-inf` stay there. O = acc / l and LSE = m +
    log2 l are exact whatever the slack.

    ```mlir
    %m1, %l1, %acc1 = attn.tile.rescale %s, %m, %l, %acc {log2_scale = 0.1275 : f64}
        : tensor<128x64xf32>, tensor<128xf32>, tensor<128x128xf32>
    ```
  }];
  let arguments = (ins Attn_F32Tile:$s, Attn_RowTile:$m, Attn_RowTile:$l, Attn_F32Tile:$acc, F64Attr:$log2_scale);
  let results = (outs Attn_RowTile:$m_new, Attn_RowTile:$l_new, Attn_F32Tile:$acc_new);
  let assemblyFormat = [{
    $s `,` $m `,` $l `,` $acc attr-dict `:` type($s) `,` type($m) `,` type($acc)
  }];
  let hasVerifier = 1;
}

def Attn_TileExpOp : Attn_TileOp<"exp", [Pure, AllTypesMatch<["s", "p"]>, AllTypesMatch<["m", "row_sum"]>]> {
  let summary = "P = 2^(s log2_scale - m) and its row sums";
  let description = [{
    The unnormalised probabilities of one tile against the running maximum
    `m` (log2 units; a row at `-inf` is taken as 0, so masked rows give 0),
    and the sum of each row of `p`.

    ```mlir
    %p, %sum = attn.tile.exp %s, %m {log2_scale = 0.1275 : f64} : tensor<128x64xf32>, tensor<128xf32>
    ```
  }];
  let arguments = (ins Attn_F32Tile:$s, Attn_RowTile:$m, F64Attr:$log2_scale);
  let results = (outs Attn_F32Tile:$p, Attn_RowTile:$row_sum);
  let assemblyFormat = "$s `,` $m attr-dict `:` type($s) `,` type($m)";
  let hasVerifier = 1;
}

def Attn_TilePVOp : Attn_TileOp<"pv", [Pure, AllTypesMatch<["acc", "result"]>]> {
  let summary = "acc += P V on one tile";
  let description = [{
    `result[i, d] = acc[i, d] + sum_j p[i, j] v[j, d]`, with `p` rounded to
    V's element type for the multiply and fp32 accumulation.

    ```mlir
    %acc2 = attn.tile.pv %p, %v, %acc : tensor<128x64xf32>, tensor<64x128xbf16>, tensor<128x128xf32>
    ```
  }];
  let arguments = (ins Attn_F32Tile:$p, Attn_ElemTile:$v, Attn_F32Tile:$acc);
  let results = (outs Attn_F32Tile:$result);
  let assemblyFormat = "$p `,` $v `,` $acc attr-dict `:` type($p) `,` type($v) `,` type($acc)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// attn.tile.epilogue
//===----------------------------------------------------------------------===//

def Attn_TileEpilogueOp : Attn_TileOp<"epilogue", [HasParent<"TileKernelOp">]> {
  let summary = "O = acc / l and LSE = (m + log2 l) ln 2, stored";
  let description = [{
    Normalises the query tile's accumulator and stores O (in the element
    type) and the log-sum-exp (fp32, natural log) of every row below
    `qlen`. A row with `l = 0` (no allowed key, no sink) stores O = 0 and
    LSE = -inf.

    ```mlir
    attn.tile.epilogue %m, %l, %acc : tensor<128xf32>, tensor<128xf32>, tensor<128x128xf32>
    ```
  }];
  let arguments = (ins Attn_RowTile:$m, Attn_RowTile:$l, Attn_F32Tile:$acc);
  let assemblyFormat = "$m `,` $l `,` $acc attr-dict `:` type($m) `,` type($l) `,` type($acc)";
}

#endif // ATTNC_DIALECT_ATTN_IR_ATTNTILEOPS_TD

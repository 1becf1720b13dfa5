//===- TileVariants.cpp - attn-tile-variants: variants -> the tile stage ---===//
//
// One attn.tile.kernel per (variant, head dim, dtype), appended to the
// module in that order, its tiles chosen by the MMA backend. The program is
// the same for every variant; the analysis decides which steps it has:
//   1. a `score` step unless the scale folds into the exponent (no score
//      rule and a positive scale): the softmax steps then take log2_scale =
//      scale * log2 e and S stays raw until the exponent's fma;
//   2. `mask by intervals` when the mask is solved into key intervals,
//      `by region` when unsolved conditions remain;
//   3. `sink` on the key loop when the variant has a sink.
// A variant that selects (topk) gets three kernels per (head dim, dtype):
// the select stage (`attn.tile.select_scores`: the scores of four query rows
// an instance), the topk stage (`attn.tile.select_topk`: their top K) and
// the attention stage, the same program over the
// selected key tiles (`mask by selection`), the query heads of one row an
// instance.
// A variant whose mask reads inputs at token positions (documents) gets two:
// the summary stage (`attn.tile.summarize_inputs`: each input's range per
// query and key tile, once per call) and the ordinary kernel, which reads
// those ranges to classify its key tiles; both with the same tiles.
// With `backward`, a variant without a selection also gets its gradient
// kernels (`attn.tile.backward_dq`, `attn.tile.backward_dkdv`:
// BackwardStage.cpp), 64 x 64 tiles on either backend; a score rule's derivative
// comes from ScoreDerivative.cpp.
//
//===----------------------------------------------------------------------===//
#include "KernelEmitter.h"
#include "ScoreDerivative.h"

#include "attnc/Analysis/TileAnalysis.h"
#include "attnc/Conversion/GenerateKernels.h"
#include "attnc/Conversion/MmaBackend.h"
#include "attnc/Conversion/Passes.h"
#include "attnc/Dialect/Attn/IR/AttnOps.h"

#include <cmath>
#include <tuple>

using namespace mlir;

namespace attnc {

#define GEN_PASS_DEF_ATTNTILEVARIANTS
#include "attnc/Conversion/Passes.h.inc"

namespace {

constexpr double kLog2e = 1.4426950408889634;

/// Why variant v gets no backward kernels, or "" (every head dim has them).
std::string backwardRefusal(attn::VariantOp v) {
  if (v.getTopk())
    return "a selection (topk) has no backward kernels yet";
  if (!v.getScore().empty())
    if (std::string why = scoreDerivativeRefusal(v.getScore()); !why.empty())
      return why;
  return "";
}

/// The tile program of one kernel into `kernel`'s body.
void buildTileProgram(OpBuilder &b, attn::TileKernelOp kernel, attn::VariantOp variant,
                      const analysis::KeyIntervals &intervals) {
  if (kernel.overRows()) {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(&kernel.getBody().front());
    if (kernel.isSelectStage())
      attn::TileSelectScoresOp::create(b, kernel.getLoc());
    else
      attn::TileSelectTopkOp::create(b, kernel.getLoc());
    return;
  }
  if (kernel.isSummaryStage() || kernel.isBackward()) {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(&kernel.getBody().front());
    if (kernel.isBackwardDQ())
      attn::TileBackwardDQOp::create(b, kernel.getLoc());
    else if (kernel.isBackwardDKDV())
      attn::TileBackwardDKDVOp::create(b, kernel.getLoc());
    else
      attn::TileSummarizeInputsOp::create(b, kernel.getLoc());
    return;
  }
  Location loc = kernel.getLoc();
  int64_t d = int64_t(kernel.getHeadDim()), bm = int64_t(kernel.getBlockM()), bn = int64_t(kernel.getBlockN());
  Type elem = kernel.getElem(), f32 = b.getF32Type();
  auto elemTile = [&](int64_t rows) { return RankedTensorType::get({rows, d}, elem); };
  auto scores = RankedTensorType::get({bm, bn}, f32);

  double scale = variant.getScale() ? variant.getScale()->convertToDouble() : 1.0 / std::sqrt(double(d));
  const bool foldScale = variant.getScore().empty() && scale > 0;
  const double log2Scale = foldScale ? scale * kLog2e : 1.0;

  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(&kernel.getBody().front());
  Value q = attn::TileLoadQOp::create(b, loc, elemTile(bm));
  auto loop = attn::TileKeyLoopOp::create(b, loc, bm, d, variant.getSink());
  {
    OpBuilder::InsertionGuard g(b);
    Block &body = loop.getBodyBlock();
    b.setInsertionPointToStart(&body);
    Value n = body.getArgument(0), needMask = body.getArgument(1);
    Value m = body.getArgument(2), l = body.getArgument(3), acc = body.getArgument(4);
    Value k = attn::TileLoadKOp::create(b, loc, elemTile(bn), n);
    Value s = attn::TileQKOp::create(b, loc, scores, q, k);
    if (!foldScale)
      s = attn::TileScoreOp::create(b, loc, scores, s, n, b.getF64FloatAttr(scale));
    attn::MaskKind by = kernel.overSelection() ? attn::MaskKind::selection
                        : intervals.hasRest()    ? attn::MaskKind::region
                                                 : attn::MaskKind::intervals;
    s = attn::TileMaskOp::create(b, loc, scores, s, n, needMask, by);
    FloatAttr l2s = b.getF64FloatAttr(log2Scale);
    auto rescaled = attn::TileRescaleOp::create(b, loc, TypeRange{m.getType(), l.getType(), acc.getType()}, s, m, l,
                                                acc, l2s);
    auto p = attn::TileExpOp::create(b, loc, TypeRange{scores, m.getType()}, s, rescaled.getMNew(), l2s);
    Value v = attn::TileLoadVOp::create(b, loc, elemTile(bn), n);
    Value accNext = attn::TilePVOp::create(b, loc, acc.getType(), p.getP(), v, rescaled.getAccNew());
    Value lNext = arith::AddFOp::create(b, loc, rescaled.getLNew(), p.getRowSum());
    attn::TileYieldOp::create(b, loc, rescaled.getMNew(), lNext, accNext);
  }
  attn::TileEpilogueOp::create(b, loc, loop.getM(), loop.getL(), loop.getAcc());
}

struct AttnTileVariantsPass : impl::AttnTileVariantsBase<AttnTileVariantsPass> {
  using AttnTileVariantsBase::AttnTileVariantsBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    std::unique_ptr<MmaBackend> mma = createMmaBackend(backend, target, module);
    if (!mma)
      return signalPassFailure();
    SmallVector<int64_t> dims(headDims.begin(), headDims.end());
    if (dims.empty())
      dims = {64, 128, 256};
    SmallVector<bool> elems; // true: bf16
    for (const std::string &t : dtypes) {
      if (t != "bf16" && t != "fp16") {
        module.emitError() << "expected dtypes among bf16, fp16, got '" << t << "'";
        return signalPassFailure();
      }
      elems.push_back(t == "bf16");
    }
    if (elems.empty())
      elems = {true, false};
    TileOverrides overrides{blockM, blockN, ctasPerSm};

    OpBuilder b(module.getContext());
    SmallVector<attn::VariantOp> variants(module.getOps<attn::VariantOp>());
    for (attn::VariantOp v : variants) {
      analysis::TileAnalysis analysis(v.getOperation());
      for (int64_t d : dims)
        for (bool bf16 : elems) {
          Type elem = bf16 ? Type(b.getBF16Type()) : Type(b.getF16Type());
          std::string symbol = kernelSymbol(v.getSymName().str(), d, bf16);
          auto add = [&](const std::string &sym, TileChoice t, StringAttr stage) {
            b.setInsertionPointToEnd(module.getBody());
            auto kernel = attn::TileKernelOp::create(
                b, v.getLoc(), b.getStringAttr(sym), FlatSymbolRefAttr::get(v.getSymNameAttr()),
                b.getI64IntegerAttr(d), TypeAttr::get(elem), b.getI64IntegerAttr(t.blockM),
                b.getI64IntegerAttr(t.blockN), b.getI64IntegerAttr(t.ctasPerSm), stage);
            kernel.getBody().push_back(new Block());
            buildTileProgram(b, kernel, v, analysis.keyIntervals());
          };
          if (v.getTopk()) {
            // Four query rows a select instance (a warp each) and a topk
            // instance (four CTAs an SM: its shared list of V3.2's K + 2048
            // keys is 32 KiB, TopkStage.cpp); up to 128
            // query heads of one row an attention instance at d <= 128, 64
            // at d = 256 (mma.sync, 4 warps: the selection gathers its K/V
            // rows, which TMA's tiles cannot).
            add(symbol + "_select", TileChoice{4, 64, 1}, b.getStringAttr("select"));
            add(symbol + "_topk", TileChoice{4, 64, 4}, b.getStringAttr("topk"));
            add(symbol, TileChoice{d <= 128 ? 128 : 64, 64, 1}, b.getStringAttr("attention"));
            continue;
          }
          TileChoice tiles = mma->chooseTiles(v, analysis.keyIntervals(), d, overrides);
          if (flash::needsTileSummaries(analysis.keyIntervals()))
            add(symbol + "_summary", tiles, b.getStringAttr("summary"));
          add(symbol, tiles, StringAttr());
        }
      if (!backward)
        continue;
      // The gradient kernels, after the forward ones of every head dim:
      // 64 x 64 tiles, dQ at two CTAs an SM, dK/dV (two accumulators) at one
      // (and a summary stage before them where the forward has one).
      if (std::string why = backwardRefusal(v); !why.empty()) {
        v.emitWarning() << "variant '" << v.getSymName() << "': " << why;
        continue;
      }
      for (int64_t d : dims) {
        for (bool bf16 : elems) {
          std::string symbol = kernelSymbol(v.getSymName().str(), d, bf16);
          Type elem = bf16 ? Type(b.getBF16Type()) : Type(b.getF16Type());
          // Masks read at token positions: the summary stage over the
          // gradient kernels' 64 x 64 tiles first (both classify from it).
          std::vector<std::tuple<const char *, const char *, int>> stages;
          if (flash::needsTileSummaries(analysis.keyIntervals()))
            stages.push_back({"_bwd_summary", "backward_summary", 2});
          // Head dim 256: dQ at one CTA an SM (shared memory).
          stages.push_back({"_bwd_dq", "backward_dq", d <= 128 ? 2 : 1});
          stages.push_back({"_bwd_dkdv", "backward_dkdv", 1});
          for (auto [suffix, stage, ctas] : stages) {
            b.setInsertionPointToEnd(module.getBody());
            auto kernel = attn::TileKernelOp::create(
                b, v.getLoc(), b.getStringAttr(symbol + suffix), FlatSymbolRefAttr::get(v.getSymNameAttr()),
                b.getI64IntegerAttr(d), TypeAttr::get(elem), b.getI64IntegerAttr(64), b.getI64IntegerAttr(64),
                b.getI64IntegerAttr(ctas), b.getStringAttr(stage));
            kernel.getBody().push_back(new Block());
            buildTileProgram(b, kernel, v, analysis.keyIntervals());
          }
        }
      }
    }
  }
};

} // namespace

} // namespace attnc

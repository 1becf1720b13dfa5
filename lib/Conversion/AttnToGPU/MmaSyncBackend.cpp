//===- MmaSyncBackend.cpp - The mma.sync and wgmma backends ---------------===//
//
// mma-sync, for sm_80 and newer: 4 warps, m16n8k16 fragments (AccLayout),
// padded shared-memory rows, cp.async double buffering of K/V. Tiles from
// TilePolicy.h.
// wgmma, for sm_90a: S = Q K^T and O += P V on warpgroup MMAs from 128-byte
// swizzled shared memory (WgmmaCompute.cpp). At block_m 128, warp
// specialised: a producer warpgroup loads Q, K and V by TMA into a ring of
// mbarrier-guarded buffers for two compute warpgroups (TmaPipeline.cpp); at
// block_m 64, one warpgroup with the cp.async double buffering, as the
// gradient kernels (dQ, dK/dV) are.
// The lowering itself is KernelEmitter (FlashKernel.cpp and its neighbours)
// for both: one template, specialised by EmitterParams.
//
//===----------------------------------------------------------------------===//
#include "KernelEmitter.h"

#include "attnc/Conversion/MmaBackend.h"

using namespace mlir;

namespace attnc {

namespace {

class MmaSyncBackend : public MmaBackend {
public:
  explicit MmaSyncBackend(bool hopper) : hopper_(hopper) {}

  StringRef name() const override { return "mma-sync"; }

  TileChoice chooseTiles(attn::VariantOp variant, const analysis::KeyIntervals &intervals, int64_t headDim,
                         const TileOverrides &o) const override {
    FlashPressure pressure = flashPressure(variant, intervals);
    TileChoice t;
    t.blockM = o.blockM ? o.blockM : flashBlockM(headDim, pressure, hopper_);
    t.blockN = o.blockN ? o.blockN : flashBlockN(headDim, t.blockM, pressure, hopper_);
    // An explicit tile is measured at one CTA an SM unless told otherwise.
    t.ctasPerSm = o.ctasPerSm ? o.ctasPerSm : o.blockM ? 1 : flashCtasPerSm(headDim, pressure);
    return t;
  }

  LogicalResult lowerKernel(attn::TileKernelOp kernel, const analysis::KeyIntervals &intervals,
                            gpu::GPUModuleOp module) const override {
    flash::EmitterParams params;
    if ((!kernel.overRows() && int64_t(kernel.getBlockM()) % (16 * params.warps) != 0) ||
        int64_t(kernel.getBlockN()) % 16 != 0)
      return kernel.emitOpError() << "expected block_m a multiple of " << 16 * params.warps
                                  << " and block_n of 16 for the mma-sync backend, got " << kernel.getBlockM() << "x"
                                  << kernel.getBlockN();
    OpBuilder b(kernel.getContext());
    flash::KernelEmitter emitter(b, kernel, intervals, params);
    emitter.build(module);
    return success();
  }

private:
  bool hopper_; ///< sm_90a: ptxas allocates registers differently, so other tiles pay
};

class WgmmaBackend : public MmaBackend {
public:
  explicit WgmmaBackend(LoweringOverrides o)
      : kvStages_(o.kvStages), persistent_(o.persistent), overlap_(o.overlap) {}
  StringRef name() const override { return "wgmma"; }

  /// The warp-specialised kernel at 128 rows (128 keys a tile at d <= 128,
  /// 64 at d = 256: shared memory); a narrow band (ModernBERT's +-64) keeps
  /// 64 x 64 at two CTAs an SM, whose tiles waste fewer masked-out pairs
  /// (measured against the 128 x 64 warp-specialised kernel with each
  /// warpgroup skipping the key tiles its rows do not reach: 0.92 against
  /// 1.04 ms at L = 131072, bench/NOTES.md v12).
  TileChoice chooseTiles(attn::VariantOp variant, const analysis::KeyIntervals &intervals, int64_t headDim,
                         const TileOverrides &o) const override {
    const bool narrow = flashPressure(variant, intervals).narrowBand;
    TileChoice t;
    t.blockM = o.blockM ? o.blockM : narrow ? 64 : 128;
    t.blockN = o.blockN ? o.blockN : narrow || headDim > 128 ? 64 : 128;
    t.ctasPerSm = o.ctasPerSm ? o.ctasPerSm : (!o.blockM && narrow) ? 2 : 1;
    return t;
  }

  LogicalResult lowerKernel(attn::TileKernelOp kernel, const analysis::KeyIntervals &intervals,
                            gpu::GPUModuleOp module) const override {
    // The gradient kernels (64 x 64 tiles): one warpgroup on wgmma, its
    // tiles copied by cp.async into two swizzled buffers (BackwardStage.cpp).
    // With --overlap=on (not by default: not yet run on a GPU), dP's chain
    // runs under the score rule, mask and exp where the registers allow: in
    // dQ up to d = 128, in dK/dV at d = 64 (beyond, ptxas spilled: d128 dK/dV
    // 44-248 bytes where it spilled 0-136, d256 dQ 32-176 where 12-172).
    if (kernel.isBackwardDQ() || kernel.isBackwardDKDV()) {
      const int64_t d = int64_t(kernel.getHeadDim());
      flash::EmitterParams params;
      params.pad = 0;
      params.wgmma = true;
      params.overlap = overlap_ == 1 && d <= (kernel.isBackwardDQ() ? 128 : 64);
      OpBuilder b(kernel.getContext());
      flash::KernelEmitter emitter(b, kernel, intervals, params);
      emitter.build(module);
      return success();
    }
    // The select stage's indexer on wgmma where its heads and rows fit
    // (IndexerWgmma.cpp): one warpgroup, cp.async into swizzled tiles.
    if (kernel.isSelectStage() && flash::indexerOnWgmma(kernel.getVariantOp())) {
      flash::EmitterParams params;
      params.pad = 0;
      params.wgmma = true;
      OpBuilder b(kernel.getContext());
      flash::KernelEmitter emitter(b, kernel, intervals, params);
      emitter.build(module);
      return success();
    }
    // A selecting variant's other stages gather K/V rows (cp.async, not TMA
    // tiles) or read the workspace, and the gradient kernels' summary stage
    // needs no tensor cores: the mma-sync kernels, for now. (A summary stage
    // takes the parameters of its attention kernel: the same params below.)
    if (kernel.getStage() && !kernel.isSummaryStage())
      return fallback_.lowerKernel(kernel, intervals, module);
    // The swizzled layout takes the head dim in 64-element chunks; a
    // warpgroup holds 64 query rows; an m64nN wgmma takes N <= 256.
    const int64_t d = int64_t(kernel.getHeadDim()), bm = int64_t(kernel.getBlockM()), bn = int64_t(kernel.getBlockN());
    if (d % 64 != 0 || (bm != 64 && bm != 128) || bn % 16 != 0 || bn > 256)
      return kernel.emitOpError() << "expected a head dim that is a multiple of 64, block_m 64 or 128 and block_n a "
                                     "multiple of 16 up to 256 for the wgmma backend, got head dim "
                                  << d << " and " << bm << "x" << bn;
    flash::EmitterParams params;
    params.warps = bm / 16;
    params.pad = 0;
    params.wgmma = true;
    params.producer = bm == 128 && bn % flash::kBoxRows == 0; // TMA boxes of 64 rows
    // Each compute warpgroup's softmax beside its own O += P V
    // (OverlappedKeyLoop.cpp), unless told otherwise.
    params.overlap = params.producer && overlap_ != 0;
    // Q, the K and V buffers, the alignment slack, the mbarriers and the
    // visit/full bitmaps of tile summaries (a bit per tile, 32 per thread)
    // and the first and last tile they visit.
    const bool summaries = flash::needsTileSummaries(intervals);
    const int64_t summaryBytes = summaries ? 8 * params.blockThreads() + 16 : 0;
    const int64_t limit = 227 * 1024;
    auto sharedBytes = [&] {
      return (params.qSlots() * bm + 2 * params.stages * bn) * d * 2 + 1024 + params.barrierBytes() + summaryBytes;
    };

    // The TMA ring: up to kvStages_ slots, as many as fit (cp.async double
    // buffers without a producer).
    if (params.producer && kvStages_) {
      params.stages = kvStages_;
      while (params.stages > 2 && sharedBytes() > limit)
        --params.stages;
    }
    // A persistent grid, when asked for (--persistent=on: experimental, it
    // hung on the H200 in its first runs, bench/NOTES.md), where its second
    // Q slot fits beside the ring (not at d = 256) and no per-CTA tile
    // summaries are filled (documents).
    params.persistent = params.producer && !summaries && persistent_ == 1;
    if (params.persistent && sharedBytes() > limit)
      params.persistent = false;
    // The persistent kernel's compute warpgroups keep 224 registers (its
    // producer 48), where the overlapped key loop spilled (Gemma 2 100
    // bytes, StreamingLLM 236 at d = 128): it keeps the serial loop.
    if (params.persistent)
      params.overlap = false;
    if (sharedBytes() > limit)
      return kernel.emitOpError() << "needs " << sharedBytes() << " bytes of shared memory at head dim " << d
                                  << " and " << bm << "x" << bn << ", more than the " << limit
                                  << " an sm_90a block can have (choose a smaller --tile)";
    OpBuilder b(kernel.getContext());
    flash::KernelEmitter emitter(b, kernel, intervals, params);
    emitter.build(module);
    return success();
  }

private:
  MmaSyncBackend fallback_{/*hopper=*/true};
  int64_t kvStages_ = 0;    ///< LoweringOverrides::kvStages (0: 2)
  int64_t persistent_ = -1; ///< LoweringOverrides::persistent (1: on)
  int64_t overlap_ = -1;    ///< LoweringOverrides::overlap (0: off)
};

} // namespace

std::unique_ptr<MmaBackend> createMmaBackend(StringRef name, StringRef target, Operation *diagnose,
                                             LoweringOverrides overrides) {
  if (overrides.persistent < -1 || overrides.persistent > 1) {
    diagnose->emitError() << "expected persistent -1 (the backend's choice), 0 or 1, got " << overrides.persistent;
    return nullptr;
  }
  if (overrides.overlap < -1 || overrides.overlap > 1) {
    diagnose->emitError() << "expected overlap -1 (the backend's choice), 0 or 1, got " << overrides.overlap;
    return nullptr;
  }
  if (overrides.kvStages != 0 && (overrides.kvStages < 2 || overrides.kvStages > 4)) {
    diagnose->emitError() << "expected kv-stages 2, 3 or 4, got " << overrides.kvStages;
    return nullptr;
  }
  if (target != "sm_80" && target != "sm_90a") {
    diagnose->emitError() << "expected target sm_80 or sm_90a, got '" << target << "'";
    return nullptr;
  }
  if (name == "mma-sync")
    return std::make_unique<MmaSyncBackend>(target == "sm_90a");
  if (name == "wgmma") {
    if (target != "sm_90a") {
      diagnose->emitError() << "the wgmma backend needs target sm_90a, got '" << target << "'";
      return nullptr;
    }
    return std::make_unique<WgmmaBackend>(overrides);
  }
  diagnose->emitError() << "expected backend mma-sync or wgmma, got '" << name << "'";
  return nullptr;
}

} // namespace attnc

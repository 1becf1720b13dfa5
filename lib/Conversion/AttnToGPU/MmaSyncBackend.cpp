//===- MmaSyncBackend.cpp - The mma.sync backend --------------------------===//
//
// The MMA backend for sm_80 and newer (sm_90a until a wgmma backend lands):
// 4 warps, m16n8k16 fragments (AccLayout), padded shared-memory rows,
// cp.async double buffering of K/V. Tiles from TilePolicy.h; the lowering
// itself is KernelEmitter (FlashKernel.cpp and its neighbours).
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
    flash::MmaSyncParams params;
    if (int64_t(kernel.getBlockM()) % (16 * params.warps) != 0 || int64_t(kernel.getBlockN()) % 16 != 0)
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

} // namespace

std::unique_ptr<MmaBackend> createMmaBackend(StringRef name, StringRef target, Operation *diagnose) {
  if (target != "sm_80" && target != "sm_90a") {
    diagnose->emitError() << "expected target sm_80 or sm_90a, got '" << target << "'";
    return nullptr;
  }
  if (name == "mma-sync")
    return std::make_unique<MmaSyncBackend>(target == "sm_90a");
  diagnose->emitError() << "expected backend mma-sync, got '" << name << "'";
  return nullptr;
}

} // namespace attnc

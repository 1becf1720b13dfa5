//===- ConvertTileToGPU.cpp - convert-attn-tile-to-gpu ---------------------===//
//
// Each attn.tile.kernel @K becomes gpu.module @attnc_K holding gpu.func @K,
// built by the chosen MMA backend at the kernel's place in the module (one
// gpu.module per kernel: the later passes and the NVPTX backend then run on
// the kernels in parallel). Then the cloned region ops are lowered by
// attn-lower-region-ops' patterns, in the new function only.
//
//===----------------------------------------------------------------------===//
#include "attnc/Analysis/TileAnalysis.h"
#include "attnc/Conversion/MmaBackend.h"
#include "attnc/Conversion/Passes.h"
#include "attnc/Dialect/Attn/IR/AttnOps.h"

#include "mlir/Transforms/WalkPatternRewriteDriver.h"

#include <map>

using namespace mlir;

namespace attnc {

#define GEN_PASS_DEF_CONVERTATTNTILETOGPU
#include "attnc/Conversion/Passes.h.inc"

namespace {

struct ConvertAttnTileToGPUPass : impl::ConvertAttnTileToGPUBase<ConvertAttnTileToGPUPass> {
  using ConvertAttnTileToGPUBase::ConvertAttnTileToGPUBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    std::unique_ptr<MmaBackend> mma = createMmaBackend(backend, target, module, LoweringOverrides{kvStages, persistent, overlap});
    if (!mma)
      return signalPassFailure();
    SmallVector<attn::TileKernelOp> kernels(module.getOps<attn::TileKernelOp>());
    if (kernels.empty())
      return;
    OpBuilder b(module.getContext());
    module->setAttr(gpu::GPUDialect::getContainerModuleAttrName(), b.getUnitAttr());
    RewritePatternSet patterns(&getContext());
    populateAttnRegionOpLoweringPatterns(patterns);
    FrozenRewritePatternSet regionPatterns(std::move(patterns));
    std::map<Operation *, analysis::TileAnalysis> analyses; // per variant, shared by its kernels
    for (attn::TileKernelOp kernel : kernels) {
      attn::VariantOp variant = kernel.getVariantOp();
      auto it = analyses.try_emplace(variant.getOperation(), variant.getOperation()).first;
      b.setInsertionPoint(kernel);
      auto gpuModule = gpu::GPUModuleOp::create(b, kernel.getLoc(), ("attnc_" + kernel.getSymName()).str());
      if (failed(mma->lowerKernel(kernel, it->second.keyIntervals(), gpuModule)))
        return signalPassFailure();
      walkAndApplyPatterns(gpuModule, regionPatterns);
      kernel.erase();
    }
  }
};

} // namespace

} // namespace attnc

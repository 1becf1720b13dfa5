//===- Pipelines.cpp - attnc's named pass pipelines ------------------------===//
//
// The pipelines from attn.variant to the LLVM + NVVM dialects, built from
// typed pass constructors and registered by name (Passes.h), one line per
// pass with the reason for its place:
//
//   attn-to-gpu:
//     attn-tile-variants            the tile stage (the backend picks tiles)
//     convert-attn-tile-to-gpu      one gpu.module per kernel, regions lowered
//   attn-gpu-to-nvvm:
//     nvvm-attach-target            chip, PTX version and -O level
//     gpu.module(                   per kernel, in parallel:
//       convert-nvgpu-to-nvvm       ldmatrix, cp.async lower on memrefs first
//       convert-scf-to-cf           structured control flow to branches
//       convert-nvvm-to-llvm        inline PTX to LLVM inline asm
//       expand-strided-metadata     memref views to plain offsets
//       convert-arith-to-llvm, convert-index-to-llvm   while memrefs are whole
//       canonicalize, cse
//       convert-gpu-to-nvvm         memrefs too (workgroup memory to address
//                                   space 3; bare pointers: the kernel ABI is
//                                   plain pointers and i64 strides)
//       canonicalize, cse
//       reconcile-unrealized-casts  drop the casts left between
//       attn-extern-dynamic-shared-memory
//       attn-grid-constant-params)  TMA descriptors by value
//
//===----------------------------------------------------------------------===//
#include "attnc/Conversion/Passes.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

namespace attnc {

#define GEN_PASS_DEF_ATTNEXTERNDYNAMICSHAREDMEMORY
#define GEN_PASS_DEF_ATTNGRIDCONSTANTPARAMS
#include "attnc/Conversion/Passes.h.inc"

namespace {

struct AttnExternDynamicSharedMemoryPass
    : impl::AttnExternDynamicSharedMemoryBase<AttnExternDynamicSharedMemoryPass> {
  void runOnOperation() override {
    getOperation().walk([](LLVM::GlobalOp global) {
      if (global.getSymName().starts_with("__dynamic_shmem"))
        global.setLinkage(LLVM::Linkage::External);
    });
  }
};

struct AttnGridConstantParamsPass : impl::AttnGridConstantParamsBase<AttnGridConstantParamsPass> {
  void runOnOperation() override {
    getOperation().walk([](LLVM::LLVMFuncOp func) {
      auto indices = func->getAttrOfType<DenseI64ArrayAttr>("attn.tensormap_args");
      if (!indices)
        return;
      MLIRContext *ctx = func.getContext();
      auto descriptor = LLVM::LLVMArrayType::get(IntegerType::get(ctx, 8), 128);
      for (int64_t i : indices.asArrayRef()) {
        func.setArgAttr(i, LLVM::LLVMDialect::getByValAttrName(), TypeAttr::get(descriptor));
        func.setArgAttr(i, LLVM::LLVMDialect::getAlignAttrName(), IntegerAttr::get(IntegerType::get(ctx, 64), 64));
        func.setArgAttr(i, NVVM::NVVMDialect::getGridConstantAttrName(), UnitAttr::get(ctx));
      }
    });
  }
};

} // namespace

AttnTileVariantsOptions tileVariantsOptions(const AttnPipelineOptions &o) {
  AttnTileVariantsOptions tile;
  tile.headDims.assign(o.headDims.begin(), o.headDims.end());
  tile.dtypes.assign(o.dtypes.begin(), o.dtypes.end());
  tile.backend = o.backend;
  tile.target = o.target;
  tile.blockM = o.blockM;
  tile.blockN = o.blockN;
  tile.ctasPerSm = o.ctasPerSm;
  tile.backward = o.backward;
  return tile;
}

void buildAttnToGpuPipeline(OpPassManager &pm, const AttnPipelineOptions &o) {
  pm.addPass(createAttnTileVariants(tileVariantsOptions(o)));
  pm.addPass(createConvertAttnTileToGPU(ConvertAttnTileToGPUOptions{o.backend, o.target, o.kvStages, o.persistent, o.overlap}));
}

void buildAttnGpuToNvvmPipeline(OpPassManager &pm, const AttnPipelineOptions &o) {
  GpuNVVMAttachTargetOptions attach;
  attach.chip = o.target;
  attach.features = o.features;
  attach.optLevel = unsigned(o.optLevel);
  pm.addPass(createGpuNVVMAttachTarget(attach));
  OpPassManager &kernel = pm.nest<gpu::GPUModuleOp>();
  kernel.addPass(createConvertNVGPUToNVVMPass());
  kernel.addPass(createSCFToControlFlowPass());
  kernel.addPass(createConvertNVVMToLLVMPass());
  kernel.addPass(memref::createExpandStridedMetadataPass());
  kernel.addPass(createArithToLLVMConversionPass());
  kernel.addPass(createConvertIndexToLLVMPass());
  kernel.addPass(createCanonicalizerPass());
  kernel.addPass(createCSEPass());
  ConvertGpuOpsToNVVMOpsOptions gpuToNvvm;
  gpuToNvvm.useBarePtrCallConv = true;
  kernel.addPass(createConvertGpuOpsToNVVMOps(gpuToNvvm));
  kernel.addPass(createCanonicalizerPass());
  kernel.addPass(createCSEPass());
  kernel.addPass(createReconcileUnrealizedCastsPass());
  kernel.addPass(createAttnExternDynamicSharedMemory());
  kernel.addPass(createAttnGridConstantParams());
}

void registerAttnPipelines() {
  registerAttnPasses();
  PassPipelineRegistration<AttnPipelineOptions>(
      "attn-to-gpu", "attn.variant -> one gpu.module kernel per variant, head dim and dtype",
      buildAttnToGpuPipeline);
  PassPipelineRegistration<AttnPipelineOptions>(
      "attn-gpu-to-nvvm", "The kernels' gpu.modules -> the LLVM and NVVM dialects, ready for the NVPTX backend",
      buildAttnGpuToNvvmPipeline);
  PassPipelineRegistration<AttnPipelineOptions>(
      "attn-to-nvvm", "attn-to-gpu, then attn-gpu-to-nvvm", [](OpPassManager &pm, const AttnPipelineOptions &o) {
        buildAttnToGpuPipeline(pm, o);
        buildAttnGpuToNvvmPipeline(pm, o);
      });
}

} // namespace attnc

//===- GenerateKernels.cpp - attn.variant -> gpu.func kernels -------------===//
#include "attnc/Conversion/GenerateKernels.h"

#include "attnc/Analysis/TileAnalysis.h"
#include "attnc/Dialect/Attn/IR/AttnOps.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Pass/PassRegistry.h"

using namespace mlir;

namespace attnc {

std::string kernelSymbol(const std::string &variant, int64_t headDim, bool bf16) {
  return variant + "_d" + std::to_string(headDim) + (bf16 ? "_bf16" : "_fp16");
}

std::vector<GeneratedKernel> generateKernels(ModuleOp module, const GenerateOptions &options) {
  MLIRContext *ctx = module.getContext();
  ctx->loadDialect<gpu::GPUDialect, nvgpu::NVGPUDialect, NVVM::NVVMDialect, LLVM::LLVMDialect, scf::SCFDialect,
                   memref::MemRefDialect, vector::VectorDialect>();
  OpBuilder b(ctx);
  module->setAttr(gpu::GPUDialect::getContainerModuleAttrName(), b.getUnitAttr());

  std::vector<GeneratedKernel> out;
  SmallVector<attn::VariantOp> variants;
  module.walk([&](attn::VariantOp v) { variants.push_back(v); });
  for (attn::VariantOp v : variants) {
    analysis::TileAnalysis analysis(v.getOperation());
    for (int64_t d : options.headDims)
      for (bool bf16 : options.bf16) {
        GeneratedKernel k;
        k.variant = v.getSymName().str();
        k.config.headDim = d;
        k.config.bf16 = bf16;
        k.config.symbol = kernelSymbol(k.variant, d, bf16);
        k.config.blockM = options.blockM;
        k.config.blockN = options.blockN;
        k.config.ctasPerSm = options.ctasPerSm;
        k.config.hopper = options.hopper;
        // One gpu.module per kernel: the lowering and the NVPTX backend then
        // run on the kernels in parallel (the PTX modules are joined after).
        b.setInsertionPointToEnd(module.getBody());
        auto gpuModule = gpu::GPUModuleOp::create(b, module.getLoc(), "attnc_" + k.config.symbol);
        k.info = buildFlashKernel(b, gpuModule, v, analysis.keyIntervals(), k.config);
        out.push_back(std::move(k));
      }
  }
  return out;
}

namespace {

struct GenerateKernelsPass : PassWrapper<GenerateKernelsPass, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(GenerateKernelsPass)
  GenerateKernelsPass() = default;
  GenerateKernelsPass(const GenerateKernelsPass &other) : PassWrapper(other) {}
  explicit GenerateKernelsPass(GenerateOptions o) : options_(std::move(o)) {}

  StringRef getArgument() const override { return "attn-generate-kernels"; }
  StringRef getDescription() const override {
    return "Build one fused attention kernel (gpu.func) per attn.variant, head dim and dtype, specialised by the "
           "tile analysis";
  }
  void getDependentDialects(DialectRegistry &registry) const override {
    registry.insert<gpu::GPUDialect, nvgpu::NVGPUDialect, NVVM::NVVMDialect, LLVM::LLVMDialect, scf::SCFDialect,
                    memref::MemRefDialect, vector::VectorDialect>();
  }
  void runOnOperation() override {
    GenerateOptions o = options_;
    if (!headDims.empty())
      o.headDims.assign(headDims.begin(), headDims.end());
    if (!dtypes.empty()) {
      o.bf16.clear();
      for (const std::string &t : dtypes)
        o.bf16.push_back(t == "bf16");
    }
    generateKernels(getOperation(), o);
  }

  GenerateOptions options_;
  ListOption<int64_t> headDims{*this, "head-dims", llvm::cl::desc("Head dims to specialise for (64, 128, 256)")};
  ListOption<std::string> dtypes{*this, "dtypes", llvm::cl::desc("Element types: bf16, fp16")};
};

} // namespace

std::unique_ptr<Pass> createGenerateKernelsPass(GenerateOptions options) {
  return std::make_unique<GenerateKernelsPass>(std::move(options));
}

void registerGenerateKernelsPass() { PassRegistration<GenerateKernelsPass>(); }

} // namespace attnc

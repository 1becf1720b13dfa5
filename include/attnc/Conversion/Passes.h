//===- Passes.h - attnc's passes and pipelines -------------------*- C++ -*-===//
//
// The passes of Passes.td (create*, register*) and the named pipelines that
// chain them with MLIR's own (Pipelines.cpp):
//   attn-to-gpu        attn-tile-variants, convert-attn-tile-to-gpu
//   attn-gpu-to-nvvm   attach the NVVM target, lower gpu/nvgpu/scf/... to
//                      LLVM + NVVM, attn-extern-dynamic-shared-memory
//   attn-to-nvvm       both
// `attnc-opt --pass-pipeline=...` runs any prefix; `attnc --emit=` prints
// after each.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "attnc/Dialect/Attn/IR/AttnDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassOptions.h"

#include <string>

namespace attnc {

#define GEN_PASS_DECL
#include "attnc/Conversion/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "attnc/Conversion/Passes.h.inc"

/// The patterns of attn-lower-region-ops, for any pass that clones a
/// variant's regions into a function with attn.arg argument names.
void populateAttnRegionOpLoweringPatterns(mlir::RewritePatternSet &patterns);

/// The options of the attn pipelines (`attn-to-nvvm{target=sm_80 ...}`).
struct AttnPipelineOptions : mlir::PassPipelineOptions<AttnPipelineOptions> {
  ListOption<int64_t> headDims{*this, "head-dims", llvm::cl::desc("Head dims (64, 128, 256; default all)")};
  ListOption<std::string> dtypes{*this, "dtypes", llvm::cl::desc("Element types: bf16, fp16 (default both)")};
  Option<std::string> backend{*this, "backend", llvm::cl::desc("The MMA backend"), llvm::cl::init("mma-sync")};
  Option<std::string> target{*this, "target", llvm::cl::desc("sm_80 or sm_90a"), llvm::cl::init("sm_90a")};
  Option<std::string> features{*this, "features", llvm::cl::desc("PTX features of the NVVM target"),
                               llvm::cl::init("+ptx80")};
  Option<int64_t> optLevel{*this, "opt-level", llvm::cl::desc("The NVPTX backend's -O level"), llvm::cl::init(3)};
  Option<int64_t> blockM{*this, "block-m", llvm::cl::desc("Query rows per tile (tuning)"), llvm::cl::init(0)};
  Option<int64_t> blockN{*this, "block-n", llvm::cl::desc("Keys per tile (tuning)"), llvm::cl::init(0)};
  Option<int64_t> ctasPerSm{*this, "ctas-per-sm", llvm::cl::desc("CTAs an SM should hold (tuning)"),
                            llvm::cl::init(0)};
  Option<int64_t> kvStages{*this, "kv-stages",
                           llvm::cl::desc("K/V ring slots of the warp-specialised wgmma kernel (tuning)"),
                           llvm::cl::init(0)};
  Option<int64_t> persistent{*this, "persistent",
                             llvm::cl::desc("A persistent grid for the warp-specialised wgmma kernel: 1 where it "
                                            "applies, 0 never, -1 the backend's choice (off; experimental)"),
                             llvm::cl::init(-1)};
  Option<int64_t> overlap{*this, "overlap",
                          llvm::cl::desc("The warp-specialised wgmma kernel's softmax overlapped with its GEMMs: 1 "
                                         "on, 0 off, -1 the backend's choice (on)"),
                          llvm::cl::init(-1)};
  Option<bool> backward{*this, "backward", llvm::cl::desc("Also the gradient kernels of each variant"),
                        llvm::cl::init(false)};
};

/// The options of attn-tile-variants within a pipeline.
AttnTileVariantsOptions tileVariantsOptions(const AttnPipelineOptions &options);
/// attn.variant -> gpu.module kernels (the stages tile and gpu).
void buildAttnToGpuPipeline(mlir::OpPassManager &pm, const AttnPipelineOptions &options);
/// gpu.module kernels -> LLVM + NVVM dialects, ready for the NVPTX backend.
void buildAttnGpuToNvvmPipeline(mlir::OpPassManager &pm, const AttnPipelineOptions &options);
/// Registers attn-to-gpu, attn-gpu-to-nvvm and attn-to-nvvm (and every
/// pass they use) for attnc-opt.
void registerAttnPipelines();

} // namespace attnc

//===- GenerateKernels.h - attn.variant -> gpu.func kernels ------*- C++ -*-===//
//
// The tiling step of the pipeline (`attnc --emit=tiled`): for every
// attn.variant of a module, the tile analysis, then one fused kernel per
// requested (head dim, dtype), built from the one template (FlashKernel.h)
// into its own `gpu.module @attnc_<kernel>` appended to the module (so the
// lowering and the backend compile kernels in parallel).
//
//===----------------------------------------------------------------------===//
#pragma once

#include "attnc/Conversion/FlashKernel.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

#include <memory>
#include <string>
#include <vector>

namespace attnc {

struct GenerateOptions {
  std::vector<int64_t> headDims = {64, 128, 256};
  std::vector<bool> bf16 = {true, false}; ///< true: bf16, false: fp16
  int64_t blockM = 0, blockN = 0;         ///< tuning overrides (0: the defaults)
  int64_t ctasPerSm = 0;                  ///< tuning override (0: the default)
  bool hopper = true;                     ///< sm_90a (else sm_80): picks the tiles
};

/// One generated kernel.
struct GeneratedKernel {
  std::string variant;
  KernelConfig config;
  KernelInfo info;
};

/// The kernel's symbol: `<variant>_d<head dim>_<bf16|fp16>`.
std::string kernelSymbol(const std::string &variant, int64_t headDim, bool bf16);

/// Adds one `gpu.module @attnc_<kernel>` per kernel (and the
/// gpu.container_module attribute) to `module`; returns what was generated, variants in module order.
std::vector<GeneratedKernel> generateKernels(mlir::ModuleOp module, const GenerateOptions &options);

/// The same as a pass, `attn-generate-kernels`, for attnc-opt and lit tests.
std::unique_ptr<mlir::Pass> createGenerateKernelsPass(GenerateOptions options = {});
void registerGenerateKernelsPass();

} // namespace attnc

//===- GenerateKernels.h - attn.variant -> gpu.func kernels ------*- C++ -*-===//
//
// The driver's view of kernel generation: runs the attn-to-gpu pipeline
// (attn-tile-variants, convert-attn-tile-to-gpu; Passes.h) on a module and
// reads back what each generated kernel needs at run time from the IR
// itself (the gpu.funcs' attn.kernel_info and attn.arg attributes).
//
//===----------------------------------------------------------------------===//
#pragma once

#include "attnc/Conversion/FlashKernel.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassManager.h"

#include <functional>
#include <string>
#include <vector>

namespace attnc {

struct AttnPipelineOptions;

/// One generated kernel, as its gpu.func describes itself.
struct GeneratedKernel {
  std::string variant;
  int64_t headDim = 0;
  bool bf16 = true;
  KernelInfo info;
};

/// The kernel's symbol: `<variant>_d<head dim>_<bf16|fp16>`.
std::string kernelSymbol(const std::string &variant, int64_t headDim, bool bf16);

/// The kernels of `module` (gpu.funcs carrying attn.kernel_info), in module order.
std::vector<GeneratedKernel> collectKernels(mlir::ModuleOp module);

} // namespace attnc

//===- PTX.h - From the tiled form to PTX text --------------------*- C++ -*-===//
//
// The lowering of the generated kernels, as one linear list of named stages
// (each can be printed: `--emit=llvm` stops after stage 2):
//   1. attach the NVVM target (chip, PTX version, -O3);
//   2. nvgpu/gpu/scf/vector/arith/index/memref -> LLVM + NVVM dialects, the
//      bare-pointer calling convention for memref arguments (a kernel takes
//      plain pointers and i64 strides);
//   3. the NVPTX backend, in process, serialises each gpu.module (one per
//      kernel, in parallel) to PTX, and the PTX modules are joined into one.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LogicalResult.h"

#include <string>
#include <vector>

namespace mlir {
class DialectRegistry;
} // namespace mlir

namespace attnc {

struct PtxOptions {
  std::string chip = "sm_90a"; ///< sm_80 or sm_90a
  std::string features = "+ptx80";
  int optLevel = 3;
};

/// Dialects, translations and target interfaces the pipeline needs.
void registerPtxPipelineDialects(mlir::DialectRegistry &registry);

/// Stages 1 and 2: the gpu.modules are left in the LLVM and NVVM dialects.
mlir::LogicalResult lowerKernelsToLLVM(mlir::ModuleOp module, const PtxOptions &options);

/// Stage 3: one PTX text for all of the module's (lowered) gpu.modules.
mlir::FailureOr<std::string> serializeToPtx(mlir::ModuleOp module);

/// PTX modules joined into one: the first keeps its header (.version,
/// .target, .address_size); module-scope declarations repeated verbatim
/// (each module's `.extern .shared` dynamic shared memory array) stay once.
std::string joinPtxModules(const std::vector<std::string> &modules);

} // namespace attnc

//===- PTX.h - From the tiled form to PTX text --------------------*- C++ -*-===//
//
// The last step of the pipeline: after attn-gpu-to-nvvm (Passes.h) has left
// every kernel's gpu.module in the LLVM and NVVM dialects (`--emit=llvm`),
// the NVPTX backend, in process, serialises each gpu.module (one per
// kernel, in parallel) to PTX, and the PTX modules are joined into one.
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

/// Dialects, translations and target interfaces the pipeline needs.
void registerPtxPipelineDialects(mlir::DialectRegistry &registry);

/// One PTX text for all of the module's (lowered) gpu.modules.
mlir::FailureOr<std::string> serializeToPtx(mlir::ModuleOp module);

/// PTX modules joined into one: the first keeps its header (.version,
/// .target, .address_size); module-scope declarations repeated verbatim
/// (each module's `.extern .shared` dynamic shared memory array) stay once.
std::string joinPtxModules(const std::vector<std::string> &modules);

} // namespace attnc

//===- attnc-opt.cpp - mlir-opt for the attn dialect ----------------------===//
//
// Parses, verifies, transforms and prints IR in the attn dialect, the
// dialects its regions use (arith, math; func and builtin for tests) and
// those kernels are lowered to, with attnc's passes and pipelines
// (attn-tile-variants, convert-attn-tile-to-gpu, attn-lower-region-ops,
// attn-to-gpu, attn-gpu-to-nvvm, attn-to-nvvm; Passes.h) and MLIR's
// generic ones (canonicalize, cse, ...). Used by the lit tests:
//   attnc-opt test.mlir | FileCheck test.mlir
//   attnc-opt -split-input-file -verify-diagnostics invalid.mlir
//
//===----------------------------------------------------------------------===//
#include "attnc/Conversion/Passes.h"
#include "attnc/Dialect/Attn/IR/AttnDialect.h"
#include "attnc/Target/PTX.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

int main(int argc, char **argv) {
  mlir::registerTransformsPasses();
  attnc::registerAttnPipelines();

  mlir::DialectRegistry registry;
  attnc::registerPtxPipelineDialects(registry);
  registry.insert<attnc::attn::AttnDialect, mlir::arith::ArithDialect, mlir::math::MathDialect,
                  mlir::func::FuncDialect>();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "attnc-opt: the attn dialect's optimizer driver\n", registry));
}

//===- attnc-opt.cpp - mlir-opt for the attn dialect ----------------------===//
//
// Parses, verifies, transforms and prints IR in the attn dialect and the
// dialects its regions use (arith, math; func and builtin for tests), with
// MLIR's generic passes (canonicalize, cse, ...). Used by the lit tests:
//   attnc-opt test.mlir | FileCheck test.mlir
//   attnc-opt -split-input-file -verify-diagnostics invalid.mlir
//
//===----------------------------------------------------------------------===//
#include "attnc/Dialect/Attn/IR/AttnDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

int main(int argc, char **argv) {
  mlir::registerTransformsPasses();

  mlir::DialectRegistry registry;
  registry.insert<attnc::attn::AttnDialect, mlir::arith::ArithDialect, mlir::math::MathDialect,
                  mlir::func::FuncDialect>();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "attnc-opt: the attn dialect's optimizer driver\n", registry));
}

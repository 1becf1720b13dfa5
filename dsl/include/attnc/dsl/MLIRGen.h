//===- MLIRGen.h - Checked program -> attn dialect --------------*- C++ -*-===//
//
// Turns a checked program into a module in the attn dialect (what
// `attnc --emit=attn` prints): an attn.input per input, an attn.variant per
// attention variant, an attn.model per model. Every op carries the
// FileLineColLoc of the source it came from, so later errors point into the
// .attn file. Part of the attnc_mlirgen library (attnc_dsl stays MLIR-free).
//
//===----------------------------------------------------------------------===//
#pragma once

#include "attnc/dsl/Diagnostics.h"
#include "attnc/dsl/Sema.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

#include <ostream>

namespace mlir {
class DialectRegistry;
class MLIRContext;
} // namespace mlir

namespace attnc::dsl {

/// Adds the dialects that MLIRGen's output uses (attn, arith, math).
void registerMLIRGenDialects(mlir::DialectRegistry &registry);

/// Builds the attn module of `program`. Loads the dialects it needs into
/// `context`. Params are folded to constants, lets are emitted once per
/// region at their first use, and a model becomes the list of its distinct
/// variants plus a layer table. Every variant is emitted, used by a model or
/// not. The module is not verified here; see emitAttn.
mlir::OwningOpRef<mlir::ModuleOp> mlirGen(mlir::MLIRContext &context, const CheckedProgram &program,
                                          const SourceFile &file);

/// How `--emit=attn` prints.
struct EmitAttnOptions {
  bool debugInfo = false; ///< print each op's loc("file":line:col)
};

/// `attnc --emit=attn`: builds the module, verifies it and prints it to `os`.
/// Returns false (after printing an internal error to `err`) if the module
/// fails to verify, which is a bug in MLIRGen, never a user error.
bool emitAttn(std::ostream &os, std::ostream &err, const CheckedProgram &program,
              const SourceFile &file, const EmitAttnOptions &options = {});

} // namespace attnc::dsl

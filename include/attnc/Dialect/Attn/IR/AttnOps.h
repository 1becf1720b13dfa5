//===- AttnOps.h - Operations of the attn dialect ---------------*- C++ -*-===//
//
// Declares attn.input, attn.read, attn.variant, attn.yield, attn.floormod and
// attn.model (AttnOps.td), the tile stage's attn.tile.* ops (AttnTileOps.td),
// and the small enums their accessors return.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_DIALECT_ATTN_IR_ATTNOPS_H
#define ATTNC_DIALECT_ATTN_IR_ATTNOPS_H

#include "attnc/Dialect/Attn/IR/AttnDialect.h"

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include <optional>

namespace attnc::attn {

/// An axis of an input tensor and the variable that indexes it.
enum class Axis { Batch, Head, Token };
/// "batch", "head" or "token".
llvm::StringRef stringifyAxis(Axis axis);
std::optional<Axis> symbolizeAxis(llvm::StringRef name);

/// The three regions of attn.variant.
enum class VariantRegion { Mask, Score, Select };
/// "mask", "score" or "select".
llvm::StringRef stringifyVariantRegion(VariantRegion kind);

} // namespace attnc::attn

#include "attnc/Dialect/Attn/IR/AttnEnums.h.inc"

#define GET_OP_CLASSES
#include "attnc/Dialect/Attn/IR/AttnOps.h.inc"

#endif // ATTNC_DIALECT_ATTN_IR_ATTNOPS_H

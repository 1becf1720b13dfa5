//===- IntervalCodegen.h - Terms as run-time interval arithmetic -*- C++ -*-===//
//
// Emits the interval evaluation of an analysis Term (Term.h's evalRange) as
// arith ops, so a kernel computes a clause's key bounds over its query tile
// from closed forms. Semantics match evalRange: the result encloses every
// value the term takes for q in [qLo, qHi]; boolean terms give 0/1 bounds
// (lo = 1: always true; hi = 0: always false). Bounds saturate at +-kInf.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "attnc/Analysis/Term.h"

#include "mlir/IR/Builders.h"

#include <functional>
#include <utility>

namespace attnc {

/// An i64 interval [lo, hi] of SSA values.
struct ValueRange64 {
  mlir::Value lo, hi;
};

/// What the variables are at run time (all i64 values).
struct IntervalEnv {
  ValueRange64 q, k;
  mlir::Value h, b, qlen, klen;
  /// A point read of an input without a token axis (e.g. prefix[b]); may be
  /// null, in which case reads are unknown.
  std::function<mlir::Value(const analysis::Term &read)> scalarInput;
  /// The range of an input read at a token position (doc[b, k]) over the
  /// positions q or k range over; may be null (unknown).
  std::function<ValueRange64(const analysis::Term &read)> tokenInput;
};

class IntervalCodegen {
public:
  IntervalCodegen(mlir::OpBuilder &b, mlir::Location loc, const IntervalEnv &env) : b_(b), loc_(loc), env_(env) {}
  ValueRange64 emit(const analysis::Term &t);

private:
  mlir::OpBuilder &b_;
  mlir::Location loc_;
  const IntervalEnv &env_;

  mlir::Value c(int64_t v);
  mlir::Value clamp(mlir::Value v);
  ValueRange64 all();
  ValueRange64 boolRange(mlir::Value canBeFalse, mlir::Value canBeTrue);
  ValueRange64 less(ValueRange64 a, ValueRange64 b, bool orEqual);
};

} // namespace attnc

//===- ScoreDerivative.h - A score rule and its derivative, per element -*- C++ -*-===//
//
// The gradient kernels (BackwardStage.cpp) of a variant with a score rule
// s' = f(s, q, k, h, ...) need f'(s) = d s' / d s at every element: dS
// before the rule is dS after it times f'(s). ScoreDerivative clones the
// variant's score region op for op, as the forward does (inlineRegion), and
// after each float op that depends on s emits its derivative (forward mode:
// a dual number per value, the derivative left out where it is zero). Every
// float op the language produces has a rule: + - * / neg, min and max, ?:
// (select), abs, exp, log, sqrt, tanh; values that do not depend on s
// (positions, inputs, constants), or only through a comparison, have
// derivative zero.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "mlir/IR/Builders.h"
#include "mlir/IR/Region.h"

#include <string>
#include <utility>

namespace attnc {

/// Why the score region cannot be differentiated with respect to s (its
/// last block argument), naming the op; "" when it can.
std::string scoreDerivativeRefusal(mlir::Region &score);

/// Clones `score` at b with its block arguments bound to `args` (s last) and
/// returns (f(s), f'(s)), both f32.
std::pair<mlir::Value, mlir::Value> cloneScoreWithDerivative(mlir::OpBuilder &b, mlir::Location loc,
                                                             mlir::Region &score, mlir::ArrayRef<mlir::Value> args);

} // namespace attnc

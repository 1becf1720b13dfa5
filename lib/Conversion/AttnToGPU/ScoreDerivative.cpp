//===- ScoreDerivative.cpp - A score rule and its derivative, per element -===//
//
// Forward-mode differentiation of a score region (ScoreDerivative.h says
// what for). The rules, for y = op(a, b) with derivatives da, db:
//   a + b: da + db        a - b: da - db        -a: -da
//   a * b: da b + a db    a / b: (da - y db) / b
//   max(a, b): a >= b ? da : db     min(a, b): a <= b ? da : db
//   c ? a : b: c ? da : db          abs(a): a < 0 ? -da : da
//   exp(a): y da          log(a): da / a        sqrt(a): da / (2 y)
//   tanh(a): (1 - y^2) da
// The math ops are cloned as they are (attn-lower-region-ops lowers them on
// the SFU later); the derivatives use only arith ops on their results.
//
//===----------------------------------------------------------------------===//
#include "ScoreDerivative.h"

#include "attnc/Dialect/Attn/IR/AttnOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;

namespace attnc {

namespace {

bool hasDerivativeRule(Operation &op) {
  return isa<arith::AddFOp, arith::SubFOp, arith::MulFOp, arith::DivFOp, arith::NegFOp, arith::MaximumFOp,
             arith::MinimumFOp, arith::SelectOp, math::AbsFOp, math::ExpOp, math::LogOp, math::SqrtOp,
             math::TanhOp>(op);
}

/// The derivatives of the region's values, keyed by the region's own values
/// (a missing entry: zero), emitted at b next to the clones.
class Differentiator {
public:
  Differentiator(OpBuilder &b, Location loc) : b_(b), loc_(loc) {}

  DenseMap<Value, Value> d; ///< original value -> its derivative's clone-side value

  /// The derivative of the clone `y` of `op` (operands mapped by `map`), or
  /// a null Value when it is zero.
  Value of(Operation &op, Value y, IRMapping &map) {
    auto da = [&](unsigned i) { return d.lookup(op.getOperand(i)); };
    auto x = [&](unsigned i) { return map.lookup(op.getOperand(i)); };
    return TypeSwitch<Operation *, Value>(&op)
        .Case([&](arith::AddFOp) { return add(da(0), da(1)); })
        .Case([&](arith::SubFOp) { return add(da(0), neg(da(1))); })
        .Case([&](arith::NegFOp) { return neg(da(0)); })
        .Case([&](arith::MulFOp) { return add(mul(da(0), x(1)), mul(x(0), da(1))); })
        .Case([&](arith::DivFOp) {
          Value num = add(da(0), neg(mul(y, da(1))));
          return num ? Value(arith::DivFOp::create(b_, loc_, num, x(1))) : Value();
        })
        .Case([&](arith::MaximumFOp) { return pick(cmp(arith::CmpFPredicate::OGE, x(0), x(1)), da(0), da(1)); })
        .Case([&](arith::MinimumFOp) { return pick(cmp(arith::CmpFPredicate::OLE, x(0), x(1)), da(0), da(1)); })
        .Case([&](arith::SelectOp) { return pick(x(0), da(1), da(2)); })
        .Case([&](math::AbsFOp) {
          Value a = da(0);
          return a ? pick(cmp(arith::CmpFPredicate::OLT, x(0), zero()), neg(a), a) : Value();
        })
        .Case([&](math::ExpOp) { return mul(y, da(0)); })
        .Case([&](math::LogOp) {
          Value a = da(0);
          return a ? Value(arith::DivFOp::create(b_, loc_, a, x(0))) : Value();
        })
        .Case([&](math::SqrtOp) {
          Value a = da(0);
          return a ? Value(arith::DivFOp::create(b_, loc_, a, arith::MulFOp::create(b_, loc_, y, c(2)))) : Value();
        })
        .Case([&](math::TanhOp) {
          Value a = da(0);
          return a ? mul(arith::SubFOp::create(b_, loc_, c(1), arith::MulFOp::create(b_, loc_, y, y)), a) : Value();
        })
        .Default([&](Operation *) { return Value(); });
  }

private:
  OpBuilder &b_;
  Location loc_;
  Value c(double v) { return arith::ConstantFloatOp::create(b_, loc_, b_.getF32Type(), APFloat(float(v))); }
  Value zero() { return c(0); }
  // Null operands are zeros: the helpers fold them away.
  Value add(Value a, Value x) { return !a ? x : !x ? a : Value(arith::AddFOp::create(b_, loc_, a, x)); }
  Value mul(Value a, Value x) { return !a || !x ? Value() : Value(arith::MulFOp::create(b_, loc_, a, x)); }
  Value neg(Value a) { return a ? Value(arith::NegFOp::create(b_, loc_, a)) : Value(); }
  Value cmp(arith::CmpFPredicate p, Value a, Value x) { return arith::CmpFOp::create(b_, loc_, p, a, x); }
  Value pick(Value cond, Value a, Value x) {
    if (!a && !x)
      return Value();
    return arith::SelectOp::create(b_, loc_, cond, a ? a : zero(), x ? x : zero());
  }
};

/// Whether any operand of op depends on s (has an entry in `depends`).
bool readsS(Operation &op, const DenseSet<Value> &depends) {
  return llvm::any_of(op.getOperands(), [&](Value v) { return depends.contains(v); });
}

} // namespace

std::string scoreDerivativeRefusal(Region &score) {
  Block &body = score.front();
  DenseSet<Value> depends{body.getArguments().back()};
  for (Operation &op : body.without_terminator()) {
    if (!readsS(op, depends))
      continue;
    for (Value r : op.getResults())
      depends.insert(r);
    // Comparisons and integer results are piecewise constant in s, and so
    // is an integer converted back to a float: derivative zero.
    bool floatResult = op.getNumResults() == 1 && isa<FloatType>(op.getResult(0).getType());
    if (floatResult && !hasDerivativeRule(op) && !isa<arith::SIToFPOp>(op))
      return "its score rule's op '" + op.getName().getStringRef().str() + "' has no derivative rule";
  }
  return "";
}

std::pair<Value, Value> cloneScoreWithDerivative(OpBuilder &b, Location loc, Region &score, ArrayRef<Value> args) {
  IRMapping map;
  Block &body = score.front();
  for (auto [arg, value] : llvm::zip(body.getArguments(), args))
    map.map(arg, value);
  Differentiator diff(b, loc);
  diff.d[body.getArguments().back()] = arith::ConstantFloatOp::create(b, loc, b.getF32Type(), APFloat(1.0f));
  for (Operation &op : body.without_terminator()) {
    Operation *clone = b.clone(op, map);
    if (hasDerivativeRule(op))
      if (Value dy = diff.of(op, clone->getResult(0), map))
        diff.d[op.getResult(0)] = dy;
  }
  Value yielded = cast<attn::YieldOp>(body.getTerminator()).getValues().front();
  Value slope = diff.d.lookup(yielded);
  if (!slope)
    slope = arith::ConstantFloatOp::create(b, loc, b.getF32Type(), APFloat(0.0f));
  return {map.lookup(yielded), slope};
}

} // namespace attnc

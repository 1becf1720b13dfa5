//===- IntervalCodegen.cpp - Terms as run-time interval arithmetic --------===//
#include "IntervalCodegen.h"

#include "mlir/Dialect/Arith/IR/Arith.h"

using namespace mlir;

namespace attnc {

using analysis::Term;
using analysis::Var;
using K = Term::Kind;

Value IntervalCodegen::c(int64_t v) { return arith::ConstantIntOp::create(b_, loc_, b_.getI64Type(), v); }

Value IntervalCodegen::clamp(Value v) {
  return arith::MaxSIOp::create(b_, loc_, arith::MinSIOp::create(b_, loc_, v, c(analysis::kInf)),
                                c(-analysis::kInf));
}

ValueRange64 IntervalCodegen::all() { return {c(-analysis::kInf), c(analysis::kInf)}; }

/// [canBeFalse ? 0 : 1, canBeTrue ? 1 : 0] from two i1 values.
ValueRange64 IntervalCodegen::boolRange(Value canBeFalse, Value canBeTrue) {
  Value lo = arith::SelectOp::create(b_, loc_, canBeFalse, c(0), c(1));
  Value hi = arith::SelectOp::create(b_, loc_, canBeTrue, c(1), c(0));
  return {lo, hi};
}

ValueRange64 IntervalCodegen::less(ValueRange64 a, ValueRange64 b, bool orEqual) {
  auto pred = orEqual ? arith::CmpIPredicate::sle : arith::CmpIPredicate::slt;
  auto negPred = orEqual ? arith::CmpIPredicate::sgt : arith::CmpIPredicate::sge;
  Value alwaysTrue = arith::CmpIOp::create(b_, loc_, pred, a.hi, b.lo);
  Value alwaysFalse = arith::CmpIOp::create(b_, loc_, negPred, a.lo, b.hi);
  Value one = arith::ConstantIntOp::create(b_, loc_, b_.getI1Type(), 1);
  return boolRange(arith::XOrIOp::create(b_, loc_, alwaysTrue, one), arith::XOrIOp::create(b_, loc_, alwaysFalse, one));
}

ValueRange64 IntervalCodegen::emit(const Term &t) {
  auto minV = [&](Value x, Value y) { return arith::MinSIOp::create(b_, loc_, x, y).getResult(); };
  auto maxV = [&](Value x, Value y) { return arith::MaxSIOp::create(b_, loc_, x, y).getResult(); };
  auto cmp = [&](arith::CmpIPredicate p, Value x, Value y) { return arith::CmpIOp::create(b_, loc_, p, x, y).getResult(); };
  auto sel = [&](Value cnd, Value x, Value y) { return arith::SelectOp::create(b_, loc_, cnd, x, y).getResult(); };
  if (!analysis::arithmeticInLimits(t))
    return all(); // the i64 result may have wrapped: nothing known (as evalRange)
  switch (t.kind) {
  case K::Const:
  case K::BoolConst: {
    Value v = c(t.value);
    return {v, v};
  }
  case K::Var:
    switch (t.var) {
    case Var::Q: return env_.q;
    case Var::K: return env_.k;
    case Var::H: return {env_.h, env_.h};
    case Var::B: return {env_.b, env_.b};
    case Var::QLen: return {env_.qlen, env_.qlen};
    case Var::KLen: return {env_.klen, env_.klen};
    }
    return all();
  case K::Input: {
    bool token = false;
    for (Var v : t.inputIndex)
      token |= v == Var::Q || v == Var::K;
    if (token)
      return env_.tokenInput ? env_.tokenInput(t) : all();
    if (!env_.scalarInput)
      return all();
    Value v = env_.scalarInput(t);
    return {v, v};
  }
  case K::Add: {
    ValueRange64 a = emit(*t.args[0]), x = emit(*t.args[1]);
    return {clamp(arith::AddIOp::create(b_, loc_, a.lo, x.lo)), clamp(arith::AddIOp::create(b_, loc_, a.hi, x.hi))};
  }
  case K::Sub: {
    ValueRange64 a = emit(*t.args[0]), x = emit(*t.args[1]);
    return {clamp(arith::SubIOp::create(b_, loc_, a.lo, x.hi)), clamp(arith::SubIOp::create(b_, loc_, a.hi, x.lo))};
  }
  case K::Neg: {
    ValueRange64 a = emit(*t.args[0]);
    return {arith::SubIOp::create(b_, loc_, c(0), a.hi), arith::SubIOp::create(b_, loc_, c(0), a.lo)};
  }
  case K::Mul: {
    // The analysis only multiplies by constants: a constant side keeps the
    // product monotone (decreasing for negative constants).
    for (int side = 0; side < 2; ++side)
      if (t.args[side]->kind == K::Const) {
        int64_t m = t.args[side]->value;
        ValueRange64 a = emit(*t.args[1 - side]);
        // Bounds are at most 2^60; clamp first so the product cannot overflow.
        int64_t lim = m == 0 ? analysis::kInf : std::max<int64_t>(1, analysis::kInf / (m < 0 ? -m : m));
        Value lo = maxV(minV(a.lo, c(lim)), c(-lim)), hi = maxV(minV(a.hi, c(lim)), c(-lim));
        Value x = arith::MulIOp::create(b_, loc_, lo, c(m)), y = arith::MulIOp::create(b_, loc_, hi, c(m));
        return m >= 0 ? ValueRange64{x, y} : ValueRange64{y, x};
      }
    return all();
  }
  case K::FloorDiv:
  case K::FloorMod: {
    if (t.args[1]->kind != K::Const || t.args[1]->value == 0)
      return all();
    int64_t d = t.args[1]->value;
    ValueRange64 a = emit(*t.args[0]);
    Value qlo = arith::FloorDivSIOp::create(b_, loc_, a.lo, c(d));
    Value qhi = arith::FloorDivSIOp::create(b_, loc_, a.hi, c(d));
    if (t.kind == K::FloorDiv)
      return d > 0 ? ValueRange64{qlo, qhi} : ValueRange64{qhi, qlo};
    // Modulo: exact when both ends fall in one period, else the full period.
    Value same = cmp(arith::CmpIPredicate::eq, qlo, qhi);
    Value rlo = arith::SubIOp::create(b_, loc_, a.lo, arith::MulIOp::create(b_, loc_, qlo, c(d)));
    Value rhi = arith::SubIOp::create(b_, loc_, a.hi, arith::MulIOp::create(b_, loc_, qhi, c(d)));
    Value fullLo = c(d > 0 ? 0 : d + 1), fullHi = c(d > 0 ? d - 1 : 0);
    return {sel(same, rlo, fullLo), sel(same, rhi, fullHi)};
  }
  case K::Min: {
    ValueRange64 a = emit(*t.args[0]), x = emit(*t.args[1]);
    return {minV(a.lo, x.lo), minV(a.hi, x.hi)};
  }
  case K::Max: {
    ValueRange64 a = emit(*t.args[0]), x = emit(*t.args[1]);
    return {maxV(a.lo, x.lo), maxV(a.hi, x.hi)};
  }
  case K::Abs: {
    ValueRange64 a = emit(*t.args[0]);
    Value nonNeg = cmp(arith::CmpIPredicate::sge, a.lo, c(0));
    Value nonPos = cmp(arith::CmpIPredicate::sle, a.hi, c(0));
    Value negLo = arith::SubIOp::create(b_, loc_, c(0), a.lo), negHi = arith::SubIOp::create(b_, loc_, c(0), a.hi);
    Value lo = sel(nonNeg, a.lo, sel(nonPos, negHi, c(0)));
    Value hi = sel(nonNeg, a.hi, sel(nonPos, negLo, maxV(negLo, a.hi)));
    return {lo, hi};
  }
  case K::Select: {
    ValueRange64 cnd = emit(*t.args[0]), a = emit(*t.args[1]), x = emit(*t.args[2]);
    Value isTrue = cmp(arith::CmpIPredicate::eq, cnd.lo, c(1));
    Value isFalse = cmp(arith::CmpIPredicate::eq, cnd.hi, c(0));
    Value lo = sel(isTrue, a.lo, sel(isFalse, x.lo, minV(a.lo, x.lo)));
    Value hi = sel(isTrue, a.hi, sel(isFalse, x.hi, maxV(a.hi, x.hi)));
    return {lo, hi};
  }
  case K::Lt: return less(emit(*t.args[0]), emit(*t.args[1]), false);
  case K::Le: return less(emit(*t.args[0]), emit(*t.args[1]), true);
  case K::Eq:
  case K::Ne: {
    ValueRange64 a = emit(*t.args[0]), x = emit(*t.args[1]);
    Value disjoint = arith::OrIOp::create(b_, loc_, cmp(arith::CmpIPredicate::slt, a.hi, x.lo),
                                          cmp(arith::CmpIPredicate::slt, x.hi, a.lo));
    Value samePoint = arith::AndIOp::create(
        b_, loc_,
        arith::AndIOp::create(b_, loc_, cmp(arith::CmpIPredicate::eq, a.lo, a.hi), cmp(arith::CmpIPredicate::eq, x.lo, x.hi)),
        cmp(arith::CmpIPredicate::eq, a.lo, x.lo));
    Value one = arith::ConstantIntOp::create(b_, loc_, b_.getI1Type(), 1);
    // Eq: can be false unless the same point; can be true unless disjoint.
    ValueRange64 eq = boolRange(arith::XOrIOp::create(b_, loc_, samePoint, one), arith::XOrIOp::create(b_, loc_, disjoint, one));
    if (t.kind == K::Eq)
      return eq;
    return {arith::SubIOp::create(b_, loc_, c(1), eq.hi), arith::SubIOp::create(b_, loc_, c(1), eq.lo)};
  }
  case K::And: {
    ValueRange64 a = emit(*t.args[0]), x = emit(*t.args[1]);
    return {minV(a.lo, x.lo), minV(a.hi, x.hi)};
  }
  case K::Or: {
    ValueRange64 a = emit(*t.args[0]), x = emit(*t.args[1]);
    return {maxV(a.lo, x.lo), maxV(a.hi, x.hi)};
  }
  case K::Not: {
    ValueRange64 a = emit(*t.args[0]);
    return {arith::SubIOp::create(b_, loc_, c(1), a.hi), arith::SubIOp::create(b_, loc_, c(1), a.lo)};
  }
  }
  return all();
}

} // namespace attnc

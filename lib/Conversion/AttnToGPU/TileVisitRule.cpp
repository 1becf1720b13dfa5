//===- TileVisitRule.cpp - Which key tiles a kernel visits, and masks ----===//
//
// See TileVisitRule.h.
//
//===----------------------------------------------------------------------===//
#include "TileVisitRule.h"

namespace attnc {

using mlir::Value;
using analysis::KeyClause;

std::pair<Value, Value> TileVisitRule::visitRange(ValueRange64 q) {
  Value nTiles = mlir::arith::CeilDivSIOp::create(b_, loc_, klen_, ci(blockN_));
  Value first = nTiles, last = ci(-1);
  for (const KeyClause &c : ki_.clauses) {
    IntervalEnv env = envFor_(q, {ci(-analysis::kInf), ci(analysis::kInf)}, false);
    IntervalCodegen gen(b_, loc_, env);
    Value rowsMaybe = cbool(true);
    for (const analysis::TermPtr &r : c.rows)
      rowsMaybe = andB(rowsMaybe, cmpI(Pred::eq, gen.emit(*r).hi, ci(1)));
    Value lo = c.lo ? gen.emit(*c.lo).lo : ci(-analysis::kInf);
    Value hi = c.hi ? gen.emit(*c.hi).hi : ci(analysis::kInf);
    Value colLo = maxI(sub(lo, kOff_), ci(0));
    Value colHi = minI(sub(hi, kOff_), sub(klen_, ci(1)));
    Value some = andB(rowsMaybe, cmpI(Pred::sle, colLo, colHi));
    Value tFirst = mlir::arith::FloorDivSIOp::create(b_, loc_, colLo, ci(blockN_));
    Value tLast = mlir::arith::FloorDivSIOp::create(b_, loc_, colHi, ci(blockN_));
    first = sel(some, minI(first, tFirst), first);
    last = sel(some, maxI(last, tLast), last);
  }
  return {first, last};
}

std::pair<Value, Value> TileVisitRule::classify(Value n, ValueRange64 q, bool tokenRanges) {
  Value colFirst = mul(n, ci(blockN_));
  Value colEnd = minI(add(colFirst, ci(blockN_)), klen_);
  Value k0 = add(colFirst, kOff_), k1 = add(sub(colEnd, ci(1)), kOff_);
  Value visit = cbool(false), full = cbool(false);
  for (const KeyClause &c : ki_.clauses) {
    IntervalEnv env = envFor_(q, {k0, k1}, tokenRanges);
    IntervalCodegen gen(b_, loc_, env);
    Value rowsMaybe = cbool(true), rowsSure = cbool(true);
    for (const analysis::TermPtr &r : c.rows) {
      ValueRange64 t = gen.emit(*r);
      rowsMaybe = andB(rowsMaybe, cmpI(Pred::eq, t.hi, ci(1)));
      rowsSure = andB(rowsSure, cmpI(Pred::eq, t.lo, ci(1)));
    }
    ValueRange64 lo = c.lo ? gen.emit(*c.lo) : ValueRange64{ci(-analysis::kInf), ci(-analysis::kInf)};
    ValueRange64 hi = c.hi ? gen.emit(*c.hi) : ValueRange64{ci(analysis::kInf), ci(analysis::kInf)};
    Value touches = andB(rowsMaybe, cmpI(Pred::sle, maxI(k0, lo.lo), minI(k1, hi.hi)));
    // Unsolved conditions: evaluated over the tile like the analysis does;
    // inputs at token positions are read for their range (tokenRanges) or
    // unknown (they never exclude then).
    Value restMaybe = cbool(true), restSure = cbool(c.rest.empty());
    for (const analysis::TermPtr &r : c.rest)
      restMaybe = andB(restMaybe, cmpI(Pred::eq, gen.emit(*r).hi, ci(1)));
    visit = orB(visit, andB(touches, restMaybe));
    Value covers = andB(cmpI(Pred::sle, lo.hi, k0), cmpI(Pred::sge, hi.lo, k1));
    full = orB(full, andB(andB(rowsSure, restSure), covers));
  }
  Value tail = cmpI(Pred::slt, klen_, add(colFirst, ci(blockN_)));
  Value needMask = orB(notB(full), tail);
  return {visit, needMask};
}

} // namespace attnc

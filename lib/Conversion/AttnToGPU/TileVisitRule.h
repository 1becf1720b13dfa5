//===- TileVisitRule.h - Which key tiles a kernel visits, and masks -*- C++ -*-===//
//
// The kernels' rule for skipping key tiles, emitted as arith ops from the
// key intervals' closed forms (IntervalCodegen), for a query range known
// only at run time:
//   visitRange(Q)     the hull [first, last] of the key tiles any clause can
//                     touch for rows Q (from each clause's lo over Q and hi
//                     over Q, clamped to [0, klen));
//   classify(n, Q)    for key tile n: visit (some clause may allow a pair of
//                     it: row conditions may hold, its bounds meet the tile,
//                     its unsolved conditions may hold over the tile) and
//                     needMask (no clause without unsolved conditions covers
//                     the tile for every row, or the tile runs past klen).
// It is deliberately one round of interval evaluation per tile: cheap at
// run time. The host's TileClassifier (--emit=tiles) refines partial answers
// by halving the rows, so it is at least as precise; the unit test
// TileClassification.KernelRuleAgainstHost runs this rule on constants and
// checks it against the classifier and brute force over every example and
// the generated masks: the kernel visits every non-empty tile and skips the
// mask only on full ones.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "IntArith.h"
#include "IntervalCodegen.h"

#include "attnc/Analysis/KeyIntervals.h"

#include <functional>
#include <utility>

namespace attnc {

class TileVisitRule : IntArith {
public:
  /// The interval environment for query positions q and key positions k;
  /// tokenRanges: inputs read at token positions give their ranges (else
  /// they are unknown and never exclude a tile).
  using EnvFor = std::function<IntervalEnv(ValueRange64 q, ValueRange64 k, bool tokenRanges)>;

  /// klen and kOffset are i64 values: the key length and the absolute
  /// position of key 0.
  TileVisitRule(mlir::OpBuilder &b, mlir::Location loc, const analysis::KeyIntervals &ki, int64_t blockN,
                mlir::Value klen, mlir::Value kOffset, EnvFor envFor)
      : IntArith(b, loc), ki_(ki), blockN_(blockN), klen_(klen), kOff_(kOffset), envFor_(std::move(envFor)) {}

  /// The hull of the key tiles rows q may touch: [first, last] (first >
  /// last when none).
  std::pair<mlir::Value, mlir::Value> visitRange(ValueRange64 q);
  /// (visit, needMask) of key tile n for rows q.
  std::pair<mlir::Value, mlir::Value> classify(mlir::Value n, ValueRange64 q, bool tokenRanges);

private:
  const analysis::KeyIntervals &ki_;
  int64_t blockN_;
  mlir::Value klen_, kOff_;
  EnvFor envFor_;
};

} // namespace attnc

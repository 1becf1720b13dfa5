//===- KeyIntervals.h - A mask as unions of key intervals -------*- C++ -*-===//
//
// The normal form the tile analysis works on. A mask M(q, k) is rewritten,
// exactly, as a disjunction of clauses
//
//     M(q, k)  ==  OR_i ( lo_i(q) <= k <= hi_i(q)  &&  rows_i(q)  &&  rest_i(q, k) )
//
// where lo_i/hi_i are integer terms that do not read k (absent = unbounded),
// rows_i is a conjunction of conditions on the query alone, and rest_i is a
// conjunction of conditions the rewriting could not solve for k (modulo in k,
// inputs read at k, ...), kept verbatim. A mask affine in q and k (windows,
// causal, chunks via floor division, abs/min/max/?:) has no `rest` at all,
// and its key bounds are closed forms a kernel evaluates per query tile.
// Bounds and row conditions are kept only where interval evaluation at one
// query row is exact (Term.h's exactAtPoint); the others (reads at token
// positions, run-time divisors, i64 arithmetic that may wrap) go to `rest`.
//
// Worked example: `k <= q && q - k < 64` gives one clause with lo = q - 63,
// hi = q; `abs(q - k) <= w` gives lo = q - w, hi = q + w; `q / 8192 == k / 8192`
// gives lo = 8192 * (q / 8192), hi = 8192 * (q / 8192) + 8191.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "attnc/Analysis/Term.h"

#include <string>
#include <vector>

namespace attnc::analysis {

/// One disjunct of the normal form.
struct KeyClause {
  TermPtr lo;                  ///< lowest allowed key; null: unbounded
  TermPtr hi;                  ///< highest allowed key; null: unbounded
  std::vector<TermPtr> rows;   ///< conditions on q (and h, b, lengths) only
  std::vector<TermPtr> rest;   ///< conditions left unsolved (read k, or inexact)

  bool exact() const { return rest.empty(); }
  std::string str() const;
};

/// The whole mask: the OR of its clauses (none: the mask is always false).
struct KeyIntervals {
  std::vector<KeyClause> clauses;
  /// True if some clause kept an unsolved condition.
  bool hasRest() const;
  std::string str() const;
};

/// Limits the rewriting so a pathological mask cannot blow up.
struct KeyIntervalLimits {
  unsigned maxClauses = 32;
};

/// Rewrites a boolean mask term into key intervals. Exact: for every point,
/// the result holds iff `mask` holds. When the clause count would exceed the
/// limit, or the mask has i64 arithmetic that may wrap (Term.h's
/// arithmeticInLimits), the mask is kept whole as one clause's `rest` (still
/// exact; only less useful).
KeyIntervals deriveKeyIntervals(const TermPtr &mask, const KeyIntervalLimits &limits = {});

} // namespace attnc::analysis

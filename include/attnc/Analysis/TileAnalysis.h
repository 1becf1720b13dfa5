//===- TileAnalysis.h - Tile classification of an attn.variant --*- C++ -*-===//
//
// The MLIR analysis: constructed from an `attn.variant` op (the analysis
// manager's convention), it turns the variant's mask region into a Term
// (MaskTerms.cpp) and solves it into key intervals (KeyIntervals.h). The
// result is what the kernel generator specialises on and what
// `attnc --emit=tiles` classifies for concrete lengths.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "attnc/Analysis/KeyIntervals.h"
#include "attnc/Analysis/Term.h"

namespace mlir {
class Operation;
} // namespace mlir

namespace attnc::analysis {

class TileAnalysis {
public:
  /// `op` must be an attn.variant.
  explicit TileAnalysis(mlir::Operation *op);

  /// The mask as a term (ops the analysis does not model become opaque
  /// reads that depend on q and k: sound, not exact).
  const TermPtr &maskTerm() const { return mask_; }
  const KeyIntervals &keyIntervals() const { return intervals_; }
  /// True when the mask was solved completely: no mask tensor and no
  /// per-tile metadata are needed at run time.
  bool isAffine() const { return !intervals_.hasRest() && !mask_->readsInput(); }

private:
  TermPtr mask_;
  KeyIntervals intervals_;
};

/// Translates the value yielded by an attn.variant's mask region into a term.
TermPtr maskTermOf(mlir::Operation *variant);

} // namespace attnc::analysis

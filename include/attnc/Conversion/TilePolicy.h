//===- TilePolicy.h - Tile sizes and occupancy of the template -*- C++ -*-===//
//
// The kernel template's tile (query rows x keys) and CTAs per SM, chosen
// from the head dim, the target and what competes with the accumulators
// for registers; the table and its measurements are in docs/codegen.md and
// bench/NOTES.md.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "attnc/Analysis/KeyIntervals.h"

#include <cstdint>

namespace attnc {
namespace attn {
class VariantOp;
} // namespace attn

/// What besides the accumulators competes for registers.
struct FlashPressure {
  bool scoreRule = false; ///< a score region is evaluated per element
  bool rest = false;      ///< the mask region itself is evaluated per element
  int64_t keyBounds = 0;  ///< per-row key bounds and row conditions
  bool narrowBand = false; ///< every clause within a few hundred keys of q
};
FlashPressure flashPressure(attn::VariantOp variant, const analysis::KeyIntervals &intervals);

/// The template's tile sizes for a head dim, register pressure and target.
int64_t flashBlockM(int64_t headDim, const FlashPressure &pressure, bool hopper);
int64_t flashBlockN(int64_t headDim, int64_t blockM, const FlashPressure &pressure, bool hopper);
/// The CTAs an SM should hold (ptxas's register budget: 65536 / (128 x it)).
int64_t flashCtasPerSm(int64_t headDim, const FlashPressure &pressure);

} // namespace attnc

//===- TilePolicy.cpp - Tile sizes and occupancy per mask and target ----===//
//
// Which tiles (query rows x keys) and how many CTAs an SM the template is
// specialised with, from what competes for registers (score rules, unsolved
// conditions, per-row key bounds) and the width of the mask's band.
//
//===----------------------------------------------------------------------===//
#include "attnc/Conversion/TilePolicy.h"

#include "attnc/Dialect/Attn/IR/AttnOps.h"

using namespace mlir;

namespace attnc {

// Tile sizes. Each warp owns block_m / 4 rows; its accumulator (block_m / 4
// x D fp32) and S (block_m / 4 x block_n) live in registers next to the
// per-row mask bounds, so they share the 255 registers a thread has. The
// largest tiles that do not spill (ptxas -v, which allocates differently for
// sm_80 and sm_90a), 128 rows meaning 32 a warp (each K/V fragment then feeds
// two mma):
//   sm_90a, d=64:  128 x 64;
//   sm_90a, d=128: 128 x 64 when the mask has at most two per-row key bounds
//                  and no unsolved condition; 128 x 32 with an unsolved
//                  condition and no score rule (documents); else 64 x 64;
//   sm_80, d<=128: 128 rows when the mask has at most one key bound, no score
//                  rule and no unsolved condition (128 x 64 at d=64, 128 x 32
//                  at d=128), else 64 x 64;
//   d=256: 64 x 32;
// and 64 x 32 with four CTAs an SM (128 registers, 52 KB of shared memory
// at d=128) at any d <= 128 for a narrow band (every clause within a few
// hundred keys of q, as ModernBERT's local layers): a query tile then visits
// a handful of key tiles, 64 rows waste fewer masked-out pairs, and the
// other CTAs hide each one's prologue and epilogue. Elsewhere one CTA an SM
// is enough: ptxas may use up to 255 registers rather than spill.
using analysis::KeyClause;

int64_t flashBlockM(int64_t headDim, const FlashPressure &p, bool hopper) {
  if (headDim > 128 || p.narrowBand)
    return 64;
  if (!hopper)
    return !p.scoreRule && !p.rest && p.keyBounds <= 1 ? 128 : 64;
  if (headDim <= 64)
    return 128;
  if (p.rest)
    return p.scoreRule ? 64 : 128;
  return p.keyBounds <= 2 ? 128 : 64;
}
int64_t flashBlockN(int64_t headDim, int64_t blockM, const FlashPressure &p, bool hopper) {
  if (headDim > 128 || p.narrowBand)
    return 32;
  if (headDim > 64 && blockM == 128 && (!hopper || p.rest))
    return 32;
  return 64;
}

int64_t flashCtasPerSm(int64_t headDim, const FlashPressure &p) { return headDim <= 128 && p.narrowBand ? 4 : 1; }

/// True if the term reads q and nothing else (no key, head, length or input).
static bool readsOnlyQuery(const analysis::Term &t) {
  using analysis::Var;
  return !t.readsInput() && !t.reads(Var::K) && !t.reads(Var::H) && !t.reads(Var::B) && !t.reads(Var::QLen) &&
         !t.reads(Var::KLen);
}

FlashPressure flashPressure(attn::VariantOp variant, const analysis::KeyIntervals &ki) {
  FlashPressure p;
  p.scoreRule = !variant.getScore().empty();
  p.rest = ki.hasRest();
  for (const KeyClause &c : ki.clauses)
    p.keyBounds += (c.lo ? 1 : 0) + (c.hi ? 1 : 0) + int64_t(c.rows.size());
  // A narrow band: every clause's [lo(q), hi(q)] no wider than
  // kNarrowBandKeys at sample positions (a tiling heuristic only).
  constexpr int64_t kNarrowBandKeys = 256;
  p.narrowBand = !ki.clauses.empty();
  for (const KeyClause &c : ki.clauses) {
    if (!c.lo || !c.hi || !readsOnlyQuery(*c.lo) || !readsOnlyQuery(*c.hi)) {
      p.narrowBand = false;
      continue;
    }
    for (int64_t q : {int64_t(0), int64_t(4097), int64_t(1) << 20}) {
      analysis::Box at;
      at.q = analysis::Range::point(q);
      p.narrowBand &= evalPoint(*c.hi, at) - evalPoint(*c.lo, at) < kNarrowBandKeys;
    }
  }
  return p;
}

} // namespace attnc

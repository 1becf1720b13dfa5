//===- TileClassifier.h - Empty / partial / full tiles, no mask tensor -*- C++ -*-===//
//
// Given a mask's key intervals (KeyIntervals.h) and concrete lengths,
// offsets and block sizes, classifies every (query tile, key tile) pair the
// way the kernel does at run time, from closed forms only:
//
//   for query tile m, rows q in Q = [q0, q1] (absolute positions), and one
//   clause lo(q) <= k <= hi(q):
//     [min lo, max hi] over Q   -> the key tiles worth visiting
//     [max lo, min hi] over Q   -> the keys allowed for every row: full tiles
//   (interval evaluation of lo and hi over Q; exact when they are monotone).
//   A tile is full if exact clauses cover it for every row, empty if no
//   clause can touch it, partial otherwise; a partial answer is refined by
//   halving the rows (a single row is decided exactly). Row conditions and unsolved conditions are
//   evaluated over the tile with interval arithmetic, reading input tensors
//   through their per-tile minimum and maximum (the O(L) metadata).
//
// Worked example: window 4 (`k <= q && q - k < 4`), blocks of 4, q_offset 0:
// query tile 2 holds q 8..11; lo = q - 3 ranges 5..8, hi = q ranges 8..11;
// visit keys 5..11 -> key tiles 1..2; full keys 8..8 -> none full; tiles
// 1 and 2 are partial.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "attnc/Analysis/KeyIntervals.h"

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

namespace attnc::analysis {

/// Lengths, offsets and tile sizes of one launch.
struct TileGeometry {
  int64_t qlen = 1, klen = 1;
  int64_t qOffset = 0, kOffset = 0;
  int64_t blockM = 128, blockN = 128;
  int64_t batch = 0, head = 0; ///< the (b, h) the classification is for

  int64_t queryTiles() const { return (qlen + blockM - 1) / blockM; }
  int64_t keyTiles() const { return (klen + blockN - 1) / blockN; }
  /// Absolute positions of query tile m / key tile n (tails are shorter).
  Range queryRange(int64_t m) const;
  Range keyRange(int64_t n) const;
};

enum class TileClass : uint8_t { Empty, Partial, Full };
const char *tileClassName(TileClass c);

/// Values of input tensors, for classifying masks that read them.
class InputValues {
public:
  virtual ~InputValues() = default;
  /// The range of `read` (an Input term) for batch `b`, head `h`, with its
  /// token axis (if any) over the absolute positions `positions`. Return
  /// Range::all() when unknown. The classifier asks only about reads with
  /// at most one token axis (one of several, allow[q, k], is unknown).
  virtual Range range(const Term &read, int64_t b, int64_t h, Range positions) const = 0;
};

struct TileCounts {
  int64_t empty = 0, partial = 0, full = 0;
  int64_t total() const { return empty + partial + full; }
};

class TileClassifier {
public:
  /// `inputs` may be null (nothing known about input values: sound, but
  /// tiles depending on them are partial).
  TileClassifier(const KeyIntervals &mask, const TileGeometry &geometry,
                 const InputValues *inputs = nullptr);

  TileClass classify(int64_t m, int64_t n) const;
  /// The key tiles query tile m visits: ascending, disjoint, inclusive
  /// ranges; every non-empty tile lies in one of them.
  std::vector<std::pair<int64_t, int64_t>> visitRanges(int64_t m) const;
  /// Classifies every tile (visiting only what visitRanges names).
  TileCounts count() const;
  /// Per query tile, the first and last non-empty key tile ({-1, -1} for
  /// a query tile with none).
  std::vector<std::pair<int64_t, int64_t>> rowExtents() const;
  /// Calls `f(m, n, class)` for every non-empty tile, row by row.
  void forEachNonEmpty(const std::function<void(int64_t, int64_t, TileClass)> &f) const;

  const TileGeometry &geometry() const { return geo_; }

private:
  Box boxFor(Range q, Range k) const;
  /// One round of interval reasoning over rows q and keys k.
  TileClass classifyBox(Range q, Range k) const;
  /// classifyBox, halving the rows while the answer is partial.
  TileClass refine(Range q, Range k) const;
  const KeyIntervals &mask_;
  TileGeometry geo_;
  const InputValues *inputs_;
};

/// Bytes of per-tile metadata a kernel needs for this mask and geometry:
/// a min and a max (4 bytes each) per tile, per batch, for every input
/// read at a token position inside an unsolved condition. 0 for masks
/// solved completely into key intervals.
int64_t metadataBytes(const KeyIntervals &mask, const TileGeometry &geometry, int64_t batch = 1);

} // namespace attnc::analysis

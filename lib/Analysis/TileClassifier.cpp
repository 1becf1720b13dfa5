//===- TileClassifier.cpp - Classifying tiles from key intervals ----------===//
#include "attnc/Analysis/TileClassifier.h"

#include <algorithm>
#include <set>

namespace attnc::analysis {

const char *tileClassName(TileClass c) {
  switch (c) {
  case TileClass::Empty: return "empty";
  case TileClass::Partial: return "partial";
  case TileClass::Full: return "full";
  }
  return "?";
}

Range TileGeometry::queryRange(int64_t m) const {
  int64_t first = m * blockM, last = std::min(qlen, first + blockM) - 1;
  return {first + qOffset, last + qOffset};
}

Range TileGeometry::keyRange(int64_t n) const {
  int64_t first = n * blockN, last = std::min(klen, first + blockN) - 1;
  return {first + kOffset, last + kOffset};
}

TileClassifier::TileClassifier(const KeyIntervals &mask, const TileGeometry &geometry,
                               const InputValues *inputs)
    : mask_(mask), geo_(geometry), inputs_(inputs) {}

Box TileClassifier::boxFor(Range q, Range k) const {
  Box box;
  box.q = q;
  box.k = k;
  box.h = Range::point(geo_.head);
  box.b = Range::point(geo_.batch);
  box.qlen = Range::point(geo_.qlen);
  box.klen = Range::point(geo_.klen);
  if (inputs_) {
    const InputValues *inputs = inputs_;
    int64_t b = geo_.batch, h = geo_.head;
    box.input = [inputs, b, h, q, k](const Term &read) {
      // InputValues ranges one token axis; a read of several (allow[q, k])
      // covers a 2-D region that it does not enclose: unknown.
      Range positions = Range::all();
      int tokenAxes = 0;
      for (Var v : read.inputIndex)
        if (v == Var::Q || v == Var::K) {
          positions = v == Var::Q ? q : k;
          ++tokenAxes;
        }
      return tokenAxes > 1 ? Range::all() : inputs->range(read, b, h, positions);
    };
  }
  return box;
}

namespace {

/// hi - lo with the subtraction pushed through min and max, so that each
/// difference is linear and simplifies (q - (q - 64) == 64):
///   min(a, b) - lo == min(a - lo, b - lo),  hi - max(a, b) == min(hi - a, hi - b), ...
TermPtr spread(const TermPtr &hi, const TermPtr &lo, int depth = 0) {
  using K = Term::Kind;
  if (depth < 6) {
    if (hi->kind == K::Min || hi->kind == K::Max) {
      TermPtr a = spread(hi->args[0], lo, depth + 1), b = spread(hi->args[1], lo, depth + 1);
      return hi->kind == K::Min ? T::min(a, b) : T::max(a, b);
    }
    if (lo->kind == K::Min || lo->kind == K::Max) {
      TermPtr a = spread(hi, lo->args[0], depth + 1), b = spread(hi, lo->args[1], depth + 1);
      return lo->kind == K::Max ? T::min(a, b) : T::max(a, b);
    }
  }
  return T::sub(hi, lo);
}

/// The conjunction of `conds` over `box`, as a tri-state range.
Range allOf(const std::vector<TermPtr> &conds, const Box &box) {
  Range r{1, 1};
  for (const TermPtr &c : conds) {
    Range x = evalRange(*c, box);
    r = {std::min(r.lo, x.lo), std::min(r.hi, x.hi)};
    if (r.isFalse())
      break;
  }
  return r;
}

} // namespace

TileClass TileClassifier::classify(int64_t m, int64_t n) const {
  return refine(geo_.queryRange(m), geo_.keyRange(n));
}

TileClass TileClassifier::refine(Range q, Range k) const {
  // Interval bounds over many rows can be loose when lo, hi and the row
  // conditions move with q in different ways; halving the rows tightens
  // them, and a single row is decided exactly (for masks without rest).
  TileClass c = classifyBox(q, k);
  if (c != TileClass::Partial || q.lo == q.hi)
    return c;
  int64_t mid = q.lo + (q.hi - q.lo) / 2;
  TileClass a = refine({q.lo, mid}, k);
  if (a == TileClass::Partial)
    return a;
  TileClass b = refine({mid + 1, q.hi}, k);
  return a == b ? a : TileClass::Partial;
}

TileClass TileClassifier::classifyBox(Range q, Range k) const {
  bool touched = false;
  // Keys allowed for every row of the tile, by some clause: a tile inside
  // their union is full even when no single clause covers it.
  std::vector<Range> everyRow;
  for (const KeyClause &c : mask_.clauses) {
    Box box = boxFor(q, Range::all());
    Range rows = allOf(c.rows, box);
    if (rows.isFalse())
      continue;
    Range lo = c.lo ? evalRange(*c.lo, box) : Range::point(-kInf);
    Range hi = c.hi ? evalRange(*c.hi, box) : Range::point(kInf);
    int64_t touchLo = std::max(k.lo, lo.lo), touchHi = std::min(k.hi, hi.hi);
    if (touchLo > touchHi)
      continue;
    // No row of the tile has lo <= hi: the clause allows nothing here.
    if (c.lo && c.hi && evalRange(*spread(c.hi, c.lo), box).hi < 0)
      continue;
    Range rest = allOf(c.rest, boxFor(q, {touchLo, touchHi}));
    if (rest.isFalse())
      continue;
    touched = true;
    Range inTile{std::max(lo.hi, k.lo), std::min(hi.lo, k.hi)};
    if (rows.isTrue() && !inTile.empty() && allOf(c.rest, boxFor(q, inTile)).isTrue())
      everyRow.push_back(inTile);
  }
  if (!touched)
    return TileClass::Empty;
  std::sort(everyRow.begin(), everyRow.end(), [](Range a, Range b) { return a.lo < b.lo; });
  int64_t covered = k.lo - 1; // keys k.lo .. covered are allowed for every row
  for (Range r : everyRow)
    if (r.lo <= covered + 1)
      covered = std::max(covered, r.hi);
  return covered >= k.hi ? TileClass::Full : TileClass::Partial;
}

std::vector<std::pair<int64_t, int64_t>> TileClassifier::visitRanges(int64_t m) const {
  Range q = geo_.queryRange(m);
  int64_t nTiles = geo_.keyTiles();
  std::vector<std::pair<int64_t, int64_t>> ranges;
  for (const KeyClause &c : mask_.clauses) {
    Box box = boxFor(q, Range::all());
    if (allOf(c.rows, box).isFalse())
      continue;
    if (c.lo && c.hi && evalRange(*spread(c.hi, c.lo), box).hi < 0)
      continue;
    int64_t lo = c.lo ? evalRange(*c.lo, box).lo : -kInf;
    int64_t hi = c.hi ? evalRange(*c.hi, box).hi : kInf;
    // Keys are k = col + kOffset with col in [0, klen).
    int64_t colLo = std::max<int64_t>(lo - geo_.kOffset, 0);
    int64_t colHi = std::min<int64_t>(hi - geo_.kOffset, geo_.klen - 1);
    if (lo <= -kInf)
      colLo = 0;
    if (hi >= kInf)
      colHi = geo_.klen - 1;
    if (colLo > colHi)
      continue;
    ranges.push_back({colLo / geo_.blockN, std::min(colHi / geo_.blockN, nTiles - 1)});
  }
  std::sort(ranges.begin(), ranges.end());
  std::vector<std::pair<int64_t, int64_t>> merged;
  for (auto r : ranges) {
    if (!merged.empty() && r.first <= merged.back().second + 1)
      merged.back().second = std::max(merged.back().second, r.second);
    else
      merged.push_back(r);
  }
  return merged;
}

void TileClassifier::forEachNonEmpty(const std::function<void(int64_t, int64_t, TileClass)> &f) const {
  for (int64_t m = 0; m < geo_.queryTiles(); ++m)
    for (auto [first, last] : visitRanges(m))
      for (int64_t n = first; n <= last; ++n) {
        TileClass c = classify(m, n);
        if (c != TileClass::Empty)
          f(m, n, c);
      }
}

TileCounts TileClassifier::count() const {
  TileCounts counts;
  forEachNonEmpty([&](int64_t, int64_t, TileClass c) { ++(c == TileClass::Full ? counts.full : counts.partial); });
  counts.empty = geo_.queryTiles() * geo_.keyTiles() - counts.full - counts.partial;
  return counts;
}

std::vector<std::pair<int64_t, int64_t>> TileClassifier::rowExtents() const {
  std::vector<std::pair<int64_t, int64_t>> rows(size_t(geo_.queryTiles()), {-1, -1});
  forEachNonEmpty([&](int64_t m, int64_t n, TileClass) {
    auto &r = rows[size_t(m)];
    if (r.first < 0)
      r.first = n;
    r.second = n;
  });
  return rows;
}

namespace {

/// Collects (input, position variable) pairs read inside unsolved conditions.
void collectTokenReads(const Term &t, std::set<std::pair<std::string, Var>> &out) {
  if (t.kind == Term::Kind::Input)
    for (Var v : t.inputIndex)
      if (v == Var::Q || v == Var::K)
        out.insert({t.input, v});
  for (const TermPtr &a : t.args)
    collectTokenReads(*a, out);
}

} // namespace

int64_t metadataBytes(const KeyIntervals &mask, const TileGeometry &geometry, int64_t batch) {
  std::set<std::pair<std::string, Var>> reads;
  for (const KeyClause &c : mask.clauses) {
    for (const TermPtr &bound : {c.lo, c.hi})
      if (bound)
        collectTokenReads(*bound, reads);
    for (const TermPtr &r : c.rest)
      collectTokenReads(*r, reads);
    for (const TermPtr &r : c.rows)
      collectTokenReads(*r, reads);
  }
  int64_t bytes = 0;
  for (auto &[name, v] : reads)
    bytes += 2 * 4 * (v == Var::Q ? geometry.queryTiles() : geometry.keyTiles());
  return bytes * batch;
}

} // namespace attnc::analysis

//===- KeyIntervals.cpp - Solving a mask for its key intervals ------------===//
//
// The rewriting, in order:
//   1. push negations down to comparisons (De Morgan; !(a < b) == b <= a);
//   2. AND multiplies clause lists (intersecting bounds), OR concatenates;
//   3. each comparison is solved for k:
//      a. neither side reads k: a row condition;
//      b. min/max/abs/?: on a side that reads k are split exactly
//         (max(x, y) <= z  ==  x <= z && y <= z; abs(x) = max(x, -x); ...);
//      c. floor((c*k + r) / C) against a k-free side becomes a linear bound
//         (floor(x / C) <= m  ==  x <= C*m + C - 1), also where the floor
//         division is one term of a sum with k-free others
//         (q / C - k / C <= 1  ==  k / C >= q / C - 1);
//      d. c*k + r  {<, <=, ==, !=}  0 with c = +-1 gives lo/hi directly; any
//         other nonzero integer c divides with floor/ceil;
//      e. anything else is kept as `rest`.
//
//===----------------------------------------------------------------------===//
#include "attnc/Analysis/KeyIntervals.h"

#include <algorithm>
#include <optional>

namespace attnc::analysis {

std::string KeyClause::str() const {
  std::string s = (lo ? lo->str() : "-inf") + " <= k <= " + (hi ? hi->str() : "+inf");
  for (const TermPtr &r : rows)
    s += "  if " + r->str();
  for (const TermPtr &r : rest)
    s += "  and " + r->str();
  return s;
}

bool KeyIntervals::hasRest() const {
  for (const KeyClause &c : clauses)
    if (!c.exact())
      return true;
  return false;
}

std::string KeyIntervals::str() const {
  if (clauses.empty())
    return "never";
  std::string s;
  for (size_t i = 0; i < clauses.size(); ++i)
    s += (i ? "\n  or " : "") + clauses[i].str();
  return s;
}

namespace {

using K = Term::Kind;
using Clauses = std::vector<KeyClause>;

/// Thrown when the clause list grows past the limit.
struct TooManyClauses {};

/// A term as c*x + r with r free of k, through +, -, negation and constant
/// factors; x is the term's atom: k itself (AtomKind::Key, where k may occur
/// any number of times, c summing them), or its one floor division of a
/// k-reading term by a positive constant (AtomKind::FloorDiv, held in `atom`).
/// c = 0 and no atom when the term does not read k.
struct Linear {
  int64_t c;
  TermPtr r;
  TermPtr atom = nullptr; ///< AtomKind::FloorDiv: the floor division
};

enum class AtomKind { Key, FloorDiv };

std::optional<Linear> linearize(const TermPtr &t, AtomKind atom = AtomKind::Key) {
  if (!t->reads(Var::K))
    return Linear{0, t};
  switch (t->kind) {
  case K::Var:
    if (atom != AtomKind::Key)
      return std::nullopt; // k outside the floor division
    return Linear{1, T::constant(0)};
  case K::FloorDiv:
    if (atom != AtomKind::FloorDiv || t->args[1]->kind != K::Const || t->args[1]->value <= 0)
      return std::nullopt;
    return Linear{1, T::constant(0), t};
  case K::Add:
  case K::Sub: {
    auto a = linearize(t->args[0], atom), b = linearize(t->args[1], atom);
    if (!a || !b || (a->atom && b->atom))
      return std::nullopt; // two floor divisions reading k
    TermPtr held = a->atom ? a->atom : b->atom;
    if (t->kind == K::Add)
      return Linear{a->c + b->c, T::add(a->r, b->r), held};
    return Linear{a->c - b->c, T::sub(a->r, b->r), held};
  }
  case K::Neg: {
    auto a = linearize(t->args[0], atom);
    if (!a)
      return std::nullopt;
    return Linear{-a->c, T::neg(a->r), a->atom};
  }
  case K::Mul: {
    for (int side = 0; side < 2; ++side) {
      const TermPtr &c = t->args[side];
      if (c->kind != K::Const)
        continue;
      auto x = linearize(t->args[1 - side], atom);
      if (!x)
        return std::nullopt;
      return Linear{x->c * c->value, T::mul(c, x->r), x->atom};
    }
    return std::nullopt;
  }
  default: return std::nullopt;
  }
}

class Deriver {
public:
  explicit Deriver(const KeyIntervalLimits &limits) : limits_(limits) {}

  Clauses derive(const TermPtr &t, bool positive) {
    switch (t->kind) {
    case K::BoolConst: return (t->value != 0) == positive ? Clauses{KeyClause{}} : Clauses{};
    case K::Not: return derive(t->args[0], !positive);
    case K::And:
    case K::Or:
      // Under negation AND and OR swap (De Morgan).
      if ((t->kind == K::And) == positive)
        return conj(derive(t->args[0], positive), derive(t->args[1], positive));
      return disj(derive(t->args[0], positive), derive(t->args[1], positive));
    case K::Select: {
      // c ? a : b  ==  (c && a) || (!c && b), for either polarity of a and b.
      Clauses c = derive(t->args[0], true), nc = derive(t->args[0], false);
      return disj(conj(c, derive(t->args[1], positive)), conj(nc, derive(t->args[2], positive)));
    }
    case K::Lt:
    case K::Le:
    case K::Eq:
    case K::Ne: return compare(t, positive);
    default: return rest(positive ? t : T::lnot(t));
    }
  }

private:
  KeyIntervalLimits limits_;

  Clauses check(Clauses c) {
    if (c.size() > limits_.maxClauses)
      throw TooManyClauses{};
    return c;
  }

  static TermPtr maxOpt(const TermPtr &a, const TermPtr &b) { return !a ? b : !b ? a : T::max(a, b); }
  static TermPtr minOpt(const TermPtr &a, const TermPtr &b) { return !a ? b : !b ? a : T::min(a, b); }

  Clauses conj(const Clauses &a, const Clauses &b) {
    Clauses out;
    for (const KeyClause &x : a)
      for (const KeyClause &y : b) {
        KeyClause c;
        c.lo = maxOpt(x.lo, y.lo);
        c.hi = minOpt(x.hi, y.hi);
        c.rows = x.rows;
        c.rows.insert(c.rows.end(), y.rows.begin(), y.rows.end());
        c.rest = x.rest;
        c.rest.insert(c.rest.end(), y.rest.begin(), y.rest.end());
        out.push_back(std::move(c));
        check(out);
      }
    return out;
  }

  Clauses disj(Clauses a, const Clauses &b) {
    a.insert(a.end(), b.begin(), b.end());
    return check(std::move(a));
  }

  static Clauses rest(const TermPtr &cond) {
    KeyClause c;
    c.rest.push_back(cond);
    return {c};
  }

  static Clauses row(const TermPtr &cond) {
    if (cond->kind == K::BoolConst)
      return cond->value ? Clauses{KeyClause{}} : Clauses{};
    KeyClause c;
    c.rows.push_back(cond);
    return {c};
  }

  static Clauses bounds(TermPtr lo, TermPtr hi) {
    KeyClause c;
    c.lo = std::move(lo);
    c.hi = std::move(hi);
    return {c};
  }

  /// A comparison with its polarity applied, as a (kind, lhs, rhs) triple
  /// over Lt, Le, Eq, Ne.
  Clauses compare(const TermPtr &t, bool positive) {
    K kind = t->kind;
    TermPtr a = t->args[0], b = t->args[1];
    if (!positive) {
      switch (kind) {
      case K::Lt: kind = K::Le; std::swap(a, b); break;  // !(a < b) == b <= a
      case K::Le: kind = K::Lt; std::swap(a, b); break;  // !(a <= b) == b < a
      case K::Eq: kind = K::Ne; break;
      case K::Ne: kind = K::Eq; break;
      default: break;
      }
    }
    return solve(kind, a, b);
  }

  TermPtr build(K kind, const TermPtr &a, const TermPtr &b) {
    switch (kind) {
    case K::Lt: return T::lt(a, b);
    case K::Le: return T::le(a, b);
    case K::Eq: return T::eq(a, b);
    default: return T::ne(a, b);
    }
  }

  Clauses solve(K kind, const TermPtr &a, const TermPtr &b) {
    if (!a->reads(Var::K) && !b->reads(Var::K))
      return row(build(kind, a, b));
    bool stuck = (a->reads(Var::K) && !solvable(a)) || (b->reads(Var::K) && !solvable(b));
    if ((kind == K::Eq || kind == K::Ne) && stuck)
      return rest(build(kind, a, b)); // e.g. doc[b, q] == doc[b, k]: keep it whole
    if (kind == K::Eq) // a == b  ==  a <= b && b <= a
      return conj(solve(K::Le, a, b), solve(K::Le, b, a));
    if (kind == K::Ne) // a != b  ==  a < b || b < a
      return disj(solve(K::Lt, a, b), solve(K::Lt, b, a));
    // From here: a < b or a <= b.
    bool strict = kind == K::Lt;
    if (auto split = splitSide(kind, a, b, /*left=*/true))
      return *split;
    if (auto split = splitSide(kind, b, a, /*left=*/false))
      return *split;
    if (auto div = solveFloorDiv(strict, a, b))
      return *div;
    if (auto lin = solveLinear(strict, a, b))
      return *lin;
    if (auto sum = solveFloorDivSum(strict, a, b))
      return *sum;
    return rest(build(kind, a, b));
  }

  /// True if the comparison rules can make progress on `t` (a k-free term,
  /// a term linear in k, or one of the shapes splitSide/solveFloorDiv take).
  static bool solvable(const TermPtr &t) {
    switch (t->kind) {
    case K::Abs:
    case K::Max:
    case K::Min:
    case K::Select:
    case K::FloorDiv: return true;
    default: return linearize(t).has_value() || linearize(t, AtomKind::FloorDiv).has_value();
    }
  }

  /// Splits min/max/abs/?: at the top of side `x` (compared with `y`; `left`
  /// says whether x is the left operand).
  std::optional<Clauses> splitSide(K kind, const TermPtr &x, const TermPtr &y, bool left) {
    auto cmp = [&](const TermPtr &side) { return left ? solve(kind, side, y) : solve(kind, y, side); };
    switch (x->kind) {
    case K::Abs: return cmp(T::max(x->args[0], T::neg(x->args[0])));
    case K::Max:
      // max(u, v) < y == u < y && v < y ; y < max(u, v) == y < u || y < v
      return left ? conj(cmp(x->args[0]), cmp(x->args[1])) : disj(cmp(x->args[0]), cmp(x->args[1]));
    case K::Min:
      return left ? disj(cmp(x->args[0]), cmp(x->args[1])) : conj(cmp(x->args[0]), cmp(x->args[1]));
    case K::Select: {
      Clauses c = derive(x->args[0], true), nc = derive(x->args[0], false);
      return disj(conj(c, cmp(x->args[1])), conj(nc, cmp(x->args[2])));
    }
    default: return std::nullopt;
    }
  }

  /// floor(x / C) compared with a k-free y, C a positive constant:
  ///   floor(x/C) <  y  ==  x <= C*y - 1        y <  floor(x/C)  ==  C*y + C <= x
  ///   floor(x/C) <= y  ==  x <= C*y + C - 1    y <= floor(x/C)  ==  C*y <= x
  std::optional<Clauses> solveFloorDiv(bool strict, const TermPtr &a, const TermPtr &b) {
    for (int side = 0; side < 2; ++side) {
      const TermPtr &d = side == 0 ? a : b, &y = side == 0 ? b : a;
      if (d->kind != K::FloorDiv || d->args[1]->kind != K::Const || d->args[1]->value <= 0 ||
          y->reads(Var::K))
        continue;
      TermPtr c = d->args[1], x = d->args[0];
      TermPtr cy = T::mul(c, y);
      if (side == 0) // floor(x/C) < y  or  <= y
        return solve(K::Le, x, strict ? T::sub(cy, T::constant(1)) : T::add(cy, T::sub(c, T::constant(1))));
      return solve(K::Le, strict ? T::add(cy, c) : cy, x); // y < floor(x/C)  or  y <= floor(x/C)
    }
    return std::nullopt;
  }

  /// a < b (or <=) with a - b = c*d + r, d a floor division reading k and r
  /// k-free: the bound on d, then solveFloorDiv's rule. c*d <= rhs with
  /// rhs = -r - strict gives d <= floor(rhs / c) for c > 0, and
  /// d >= ceil(rhs / c) = -floor(rhs / -c) for c < 0. Example:
  /// q / 1024 - k / 1024 <= 1 -> c = -1, rhs = 1 - q / 1024 -> k / 1024 >= q / 1024 - 1.
  std::optional<Clauses> solveFloorDivSum(bool strict, const TermPtr &a, const TermPtr &b) {
    auto la = linearize(a, AtomKind::FloorDiv), lb = linearize(b, AtomKind::FloorDiv);
    if (!la || !lb || (la->atom && lb->atom) || (!la->atom && !lb->atom))
      return std::nullopt;
    int64_t c = la->atom ? la->c : -lb->c;
    const TermPtr &d = la->atom ? la->atom : lb->atom;
    if (c == 0)
      return std::nullopt;
    TermPtr rhs = T::sub(T::neg(T::sub(la->r, lb->r)), T::constant(strict ? 1 : 0));
    if (c > 0)
      return solveFloorDiv(false, d, c == 1 ? rhs : T::floorDiv(rhs, T::constant(c)));
    return solveFloorDiv(false, c == -1 ? T::neg(rhs) : T::neg(T::floorDiv(rhs, T::constant(-c))), d);
  }

  /// a < b (or <=) with a - b = c*k + r: a bound on k.
  std::optional<Clauses> solveLinear(bool strict, const TermPtr &a, const TermPtr &b) {
    auto la = linearize(a), lb = linearize(b);
    if (!la || !lb)
      return std::nullopt;
    int64_t c = la->c - lb->c;
    TermPtr r = T::sub(la->r, lb->r);
    if (c == 0) // k cancels out
      return row(strict ? T::lt(r, T::constant(0)) : T::le(r, T::constant(0)));
    // c*k + r <= -strict, i.e. c*k <= rhs with rhs = -r - strict.
    //   c > 0: k <= floor(rhs / c).
    //   c < 0: k >= ceil(-rhs / -c) = -floor(rhs / -c).
    // Example: q - k < 64 -> c = -1, rhs = 63 - q -> k >= q - 63.
    TermPtr rhs = T::sub(T::neg(r), T::constant(strict ? 1 : 0));
    if (c > 0)
      return bounds(nullptr, T::floorDiv(rhs, T::constant(c)));
    return bounds(T::neg(T::floorDiv(rhs, T::constant(-c))), nullptr);
  }
};

} // namespace

namespace {

/// Kernels evaluate a clause's bounds and row conditions per query row by
/// interval arithmetic at that row (TileCompute.cpp's maskByIntervals). A
/// bound or condition that is not exact there (a read at a token position,
/// a run-time divisor, i64 arithmetic that may wrap) becomes the condition
/// it stands for in `rest`, which partial tiles evaluate as the mask itself.
void keepPointExactBounds(KeyClause &c) {
  if (c.lo && !exactAtPoint(*c.lo)) {
    c.rest.push_back(T::le(c.lo, T::var(Var::K)));
    c.lo = nullptr;
  }
  if (c.hi && !exactAtPoint(*c.hi)) {
    c.rest.push_back(T::le(T::var(Var::K), c.hi));
    c.hi = nullptr;
  }
  auto inexact = [](const TermPtr &r) { return !exactAtPoint(*r); };
  for (const TermPtr &r : c.rows)
    if (inexact(r))
      c.rest.push_back(r);
  c.rows.erase(std::remove_if(c.rows.begin(), c.rows.end(), inexact), c.rows.end());
}

/// True if no arithmetic node of `t` can wrap (Term.h's arithmeticInLimits).
/// The rewriting's identities (min(q, q + c) = q + c for c < 0, comparing
/// offsets) hold for integers, not for wrapping i64: a mask with arithmetic
/// that may wrap is kept whole.
bool arithmeticInLimitsEverywhere(const Term &t) {
  if (!arithmeticInLimits(t))
    return false;
  for (const TermPtr &a : t.args)
    if (!arithmeticInLimitsEverywhere(*a))
      return false;
  return true;
}

} // namespace

KeyIntervals deriveKeyIntervals(const TermPtr &mask, const KeyIntervalLimits &limits) {
  KeyClause whole; // the mask kept as it is: exact, only less useful
  whole.rest.push_back(mask);
  KeyIntervals out;
  if (!arithmeticInLimitsEverywhere(*mask)) {
    out.clauses = {whole};
    return out;
  }
  try {
    out.clauses = Deriver(limits).derive(mask, true);
  } catch (TooManyClauses &) {
    out.clauses = {whole};
  }
  for (KeyClause &c : out.clauses)
    keepPointExactBounds(c);
  return out;
}

} // namespace attnc::analysis

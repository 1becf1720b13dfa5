//===- Term.cpp - Symbolic terms, folding and interval evaluation ----------===//
#include "attnc/Analysis/Term.h"
#include "support/FloorDiv.h"

#include <algorithm>
#include <cassert>

namespace attnc::analysis {

const char *varName(Var v) {
  switch (v) {
  case Var::Q: return "q";
  case Var::K: return "k";
  case Var::H: return "h";
  case Var::B: return "b";
  case Var::QLen: return "qlen";
  case Var::KLen: return "klen";
  }
  return "?";
}

int64_t floorDivInt(int64_t a, int64_t b) { return support::floorDiv(a, b); }
int64_t floorModInt(int64_t a, int64_t b) { return support::floorMod(a, b); }

bool Term::reads(Var v) const {
  if (kind == Kind::Var && var == v)
    return true;
  if (kind == Kind::Input)
    for (Var i : inputIndex)
      if (i == v)
        return true;
  for (const TermPtr &a : args)
    if (a->reads(v))
      return true;
  return false;
}

bool Term::readsInput() const {
  if (kind == Kind::Input)
    return true;
  for (const TermPtr &a : args)
    if (a->readsInput())
      return true;
  return false;
}

namespace {

int precedence(Term::Kind k) {
  using K = Term::Kind;
  switch (k) {
  case K::Or: return 1;
  case K::And: return 2;
  case K::Eq:
  case K::Ne: return 3;
  case K::Lt:
  case K::Le: return 4;
  case K::Add:
  case K::Sub: return 5;
  case K::Mul:
  case K::FloorDiv:
  case K::FloorMod: return 6;
  case K::Neg:
  case K::Not: return 7;
  default: return 8;
  }
}

std::string wrap(const Term &t, int min) {
  std::string s = t.str();
  return precedence(t.kind) < min ? "(" + s + ")" : s;
}

} // namespace

std::string Term::str() const {
  using K = Kind;
  auto bin = [&](const char *op) {
    int p = precedence(kind);
    return wrap(*args[0], p) + " " + op + " " + wrap(*args[1], p + 1);
  };
  switch (kind) {
  case K::Const: return std::to_string(value);
  case K::BoolConst: return value ? "true" : "false";
  case K::Var: return varName(var);
  case K::Input: {
    std::string s = input + "[";
    for (size_t i = 0; i < inputIndex.size(); ++i)
      s += std::string(i ? ", " : "") + varName(inputIndex[i]);
    return s + "]";
  }
  case K::Add: return bin("+");
  case K::Sub: return bin("-");
  case K::Mul: return bin("*");
  case K::FloorDiv: return bin("/");
  case K::FloorMod: return bin("%");
  case K::Lt: return bin("<");
  case K::Le: return bin("<=");
  case K::Eq: return bin("==");
  case K::Ne: return bin("!=");
  case K::And: return bin("&&");
  case K::Or: return bin("||");
  case K::Neg: return "-" + wrap(*args[0], 7);
  case K::Not: return "!" + wrap(*args[0], 7);
  case K::Min: return "min(" + args[0]->str() + ", " + args[1]->str() + ")";
  case K::Max: return "max(" + args[0]->str() + ", " + args[1]->str() + ")";
  case K::Abs: return "abs(" + args[0]->str() + ")";
  case K::Select: return wrap(*args[0], 2) + " ? " + wrap(*args[1], 2) + " : " + wrap(*args[2], 1);
  }
  return "?";
}

Range Box::of(Var v) const {
  switch (v) {
  case Var::Q: return q;
  case Var::K: return k;
  case Var::H: return h;
  case Var::B: return b;
  case Var::QLen: return qlen;
  case Var::KLen: return klen;
  }
  return Range::all();
}

//===----------------------------------------------------------------------===//
// Interval arithmetic (saturating at +-kInf).
//===----------------------------------------------------------------------===//
namespace {

int64_t sat(__int128 v) {
  if (v > kInf)
    return kInf;
  if (v < -kInf)
    return -kInf;
  return int64_t(v);
}

Range boolRange(bool canBeFalse, bool canBeTrue) { return {canBeFalse ? 0 : 1, canBeTrue ? 1 : 0}; }

Range unionOf(Range a, Range b) { return {std::min(a.lo, b.lo), std::max(a.hi, b.hi)}; }

/// Interval of floor(x / c) for a constant c != 0.
Range divRange(Range x, int64_t c) {
  if (x.lo <= -kInf || x.hi >= kInf) {
    // Unbounded ends stay unbounded (in the direction the sign gives).
    int64_t lo = x.lo <= -kInf ? -kInf : floorDivInt(x.lo, c);
    int64_t hi = x.hi >= kInf ? kInf : floorDivInt(x.hi, c);
    if (c < 0)
      return {x.hi >= kInf ? -kInf : floorDivInt(x.hi, c), x.lo <= -kInf ? kInf : floorDivInt(x.lo, c)};
    return {lo, hi};
  }
  int64_t a = floorDivInt(x.lo, c), b = floorDivInt(x.hi, c);
  return {std::min(a, b), std::max(a, b)};
}

Range modRange(Range x, int64_t c) {
  if (x.lo > -kInf && x.hi < kInf && c > 0 && floorDivInt(x.lo, c) == floorDivInt(x.hi, c))
    return {floorModInt(x.lo, c), floorModInt(x.hi, c)};
  return c > 0 ? Range{0, c - 1} : Range{c + 1, 0};
}

/// Tri-state of a < b (strict) or a <= b over ranges.
Range less(Range a, Range b, bool orEqual) {
  bool alwaysTrue = orEqual ? a.hi <= b.lo : a.hi < b.lo;
  bool alwaysFalse = orEqual ? a.lo > b.hi : a.lo >= b.hi;
  return boolRange(!alwaysTrue, !alwaysFalse);
}

} // namespace

//===----------------------------------------------------------------------===//
// The run-time limits: where i64 arithmetic could wrap.
//===----------------------------------------------------------------------===//

uint64_t magnitude(const Term &t) {
  using K = Term::Kind;
  constexpr uint64_t kTop = uint64_t(1) << 63;
  auto sum = [kTop](uint64_t a, uint64_t b) { return a >= kTop - b ? kTop : a + b; };
  auto product = [kTop](uint64_t a, uint64_t b) { return a && b > kTop / a ? kTop : std::min(kTop, a * b); };
  auto arg = [&](size_t i) { return magnitude(*t.args[i]); };
  if (t.isBool())
    return 1;
  switch (t.kind) {
  case K::Const: return t.value < 0 ? uint64_t(0) - uint64_t(t.value) : uint64_t(t.value);
  case K::Var:
    return t.var == Var::Q || t.var == Var::K ? uint64_t(2 * kLengthLimit)
           : t.var == Var::H || t.var == Var::B ? uint64_t(1) << 31
                                                : uint64_t(kLengthLimit);
  case K::Input: return t.inputBits <= 1 ? 1 : t.inputBits >= 64 ? kTop : uint64_t(1) << (t.inputBits - 1);
  case K::Add:
  case K::Sub: return sum(arg(0), arg(1));
  case K::Mul: return product(arg(0), arg(1));
  case K::Neg:
  case K::Abs: return arg(0);
  case K::FloorDiv: return arg(0);
  case K::FloorMod: return std::min(arg(0), arg(1));
  case K::Min:
  case K::Max: return std::max(arg(0), arg(1));
  case K::Select: return std::max(arg(1), arg(2));
  default: return 1;
  }
}

bool arithmeticInLimits(const Term &t) {
  using K = Term::Kind;
  switch (t.kind) {
  case K::Add:
  case K::Sub:
  case K::Mul:
  case K::Neg:
  case K::Abs:
  case K::FloorDiv:
  case K::FloorMod:
    if (magnitude(t) >= uint64_t(kInf))
      return false;
    for (const TermPtr &a : t.args)
      if (magnitude(*a) >= uint64_t(kInf))
        return false;
    return true;
  default: return true;
  }
}

bool exactAtPoint(const Term &t) {
  using K = Term::Kind;
  if (!arithmeticInLimits(t))
    return false;
  switch (t.kind) {
  case K::Input:
    for (Var v : t.inputIndex)
      if (v == Var::Q || v == Var::K)
        return false;
    return true;
  case K::FloorDiv:
  case K::FloorMod:
    if (t.args[1]->kind != K::Const || t.args[1]->value == 0)
      return false;
    break;
  case K::Mul:
    if (t.args[0]->kind != K::Const && t.args[1]->kind != K::Const)
      return false;
    break;
  default: break;
  }
  for (const TermPtr &a : t.args)
    if (!exactAtPoint(*a))
      return false;
  return true;
}

Range evalRange(const Term &t, const Box &box) {
  using K = Term::Kind;
  if (!arithmeticInLimits(t))
    return Range::all(); // the i64 result may have wrapped: nothing known
  switch (t.kind) {
  case K::Const:
  case K::BoolConst: return Range::point(t.value);
  case K::Var: return box.of(t.var);
  case K::Input: return box.input ? box.input(t) : Range::all();
  case K::Add: {
    Range a = evalRange(*t.args[0], box), b = evalRange(*t.args[1], box);
    return {sat(__int128(a.lo) + b.lo), sat(__int128(a.hi) + b.hi)};
  }
  case K::Sub: {
    Range a = evalRange(*t.args[0], box), b = evalRange(*t.args[1], box);
    return {sat(__int128(a.lo) - b.hi), sat(__int128(a.hi) - b.lo)};
  }
  case K::Neg: {
    Range a = evalRange(*t.args[0], box);
    return {sat(-__int128(a.hi)), sat(-__int128(a.lo))};
  }
  case K::Mul: {
    Range a = evalRange(*t.args[0], box), b = evalRange(*t.args[1], box);
    __int128 c[4] = {__int128(a.lo) * b.lo, __int128(a.lo) * b.hi, __int128(a.hi) * b.lo,
                     __int128(a.hi) * b.hi};
    return {sat(*std::min_element(c, c + 4)), sat(*std::max_element(c, c + 4))};
  }
  case K::FloorDiv:
  case K::FloorMod: {
    Range a = evalRange(*t.args[0], box), b = evalRange(*t.args[1], box);
    if (b.lo != b.hi || b.lo == 0)
      return Range::all(); // a non-constant divisor: nothing known
    return t.kind == K::FloorDiv ? divRange(a, b.lo) : modRange(a, b.lo);
  }
  case K::Min: {
    Range a = evalRange(*t.args[0], box), b = evalRange(*t.args[1], box);
    return {std::min(a.lo, b.lo), std::min(a.hi, b.hi)};
  }
  case K::Max: {
    Range a = evalRange(*t.args[0], box), b = evalRange(*t.args[1], box);
    return {std::max(a.lo, b.lo), std::max(a.hi, b.hi)};
  }
  case K::Abs: {
    Range a = evalRange(*t.args[0], box);
    if (a.lo >= 0)
      return a;
    if (a.hi <= 0)
      return {-a.hi, -a.lo};
    return {0, std::max(-a.lo, a.hi)};
  }
  case K::Select: {
    Range c = evalRange(*t.args[0], box);
    if (c.isTrue())
      return evalRange(*t.args[1], box);
    if (c.isFalse())
      return evalRange(*t.args[2], box);
    return unionOf(evalRange(*t.args[1], box), evalRange(*t.args[2], box));
  }
  case K::Lt: return less(evalRange(*t.args[0], box), evalRange(*t.args[1], box), false);
  case K::Le: return less(evalRange(*t.args[0], box), evalRange(*t.args[1], box), true);
  case K::Eq:
  case K::Ne: {
    Range a = evalRange(*t.args[0], box), b = evalRange(*t.args[1], box);
    bool disjoint = a.hi < b.lo || b.hi < a.lo;
    bool samePoint = a.lo == a.hi && b.lo == b.hi && a.lo == b.lo;
    Range eq = boolRange(!samePoint, !disjoint);
    return t.kind == K::Eq ? eq : Range{1 - eq.hi, 1 - eq.lo};
  }
  case K::And: {
    Range a = evalRange(*t.args[0], box);
    if (a.isFalse())
      return a;
    Range b = evalRange(*t.args[1], box);
    return {std::min(a.lo, b.lo), std::min(a.hi, b.hi)};
  }
  case K::Or: {
    Range a = evalRange(*t.args[0], box);
    if (a.isTrue())
      return a;
    Range b = evalRange(*t.args[1], box);
    return {std::max(a.lo, b.lo), std::max(a.hi, b.hi)};
  }
  case K::Not: {
    Range a = evalRange(*t.args[0], box);
    return {1 - a.hi, 1 - a.lo};
  }
  }
  return Range::all();
}

int64_t evalPoint(const Term &t, const Box &box) {
  Range r = evalRange(t, box);
  assert(r.lo == r.hi && "evalPoint needs every variable fixed");
  return r.lo;
}

//===----------------------------------------------------------------------===//
// Factories with folding.
//===----------------------------------------------------------------------===//
namespace T {
namespace {

TermPtr make(Term::Kind k, std::vector<TermPtr> args) {
  auto t = std::make_shared<Term>();
  t->kind = k;
  t->args = std::move(args);
  return t;
}

bool isConst(const TermPtr &t, int64_t v) { return t->kind == Term::Kind::Const && t->value == v; }

} // namespace

TermPtr constant(int64_t v) {
  auto t = std::make_shared<Term>();
  t->kind = Term::Kind::Const;
  t->value = v;
  return t;
}

TermPtr boolean(bool v) {
  auto t = std::make_shared<Term>();
  t->kind = Term::Kind::BoolConst;
  t->value = v;
  return t;
}

TermPtr var(Var v) {
  auto t = std::make_shared<Term>();
  t->kind = Term::Kind::Var;
  t->var = v;
  return t;
}

TermPtr input(std::string name, std::vector<Var> index, unsigned bits) {
  auto t = std::make_shared<Term>();
  t->kind = Term::Kind::Input;
  t->input = std::move(name);
  t->inputIndex = std::move(index);
  t->inputBits = bits;
  return t;
}

namespace {

/// A linear combination sum(coef * atom) + constant; atoms are the
/// non-linear subterms (variables, reads, divisions, ...).
struct Linear {
  std::vector<std::pair<TermPtr, int64_t>> terms;
  int64_t constant = 0;
};

Linear toLinear(const TermPtr &t) {
  Linear l;
  switch (t->kind) {
  case Term::Kind::Const: l.constant = t->value; return l;
  case Term::Kind::Add:
  case Term::Kind::Sub: {
    Linear a = toLinear(t->args[0]), b = toLinear(t->args[1]);
    int64_t sign = t->kind == Term::Kind::Add ? 1 : -1;
    for (auto &[atom, c] : b.terms)
      a.terms.push_back({atom, sign * c});
    a.constant += sign * b.constant;
    return a;
  }
  case Term::Kind::Neg: {
    Linear a = toLinear(t->args[0]);
    for (auto &term : a.terms)
      term.second = -term.second;
    a.constant = -a.constant;
    return a;
  }
  case Term::Kind::Mul:
    for (int side = 0; side < 2; ++side)
      if (t->args[side]->kind == Term::Kind::Const) {
        Linear a = toLinear(t->args[1 - side]);
        for (auto &term : a.terms)
          term.second *= t->args[side]->value;
        a.constant *= t->args[side]->value;
        return a;
      }
    break;
  default: break;
  }
  l.terms.push_back({t, 1});
  return l;
}

/// Rebuilds a canonical term: like atoms merged, positive terms first, the
/// constant last ("q - k + 3", "64 - q").
TermPtr fromLinear(Linear l) {
  std::vector<std::pair<TermPtr, int64_t>> merged;
  for (auto &[atom, c] : l.terms) {
    std::string key = atom->str();
    auto it = std::find_if(merged.begin(), merged.end(), [&](auto &m) { return m.first->str() == key; });
    if (it != merged.end())
      it->second += c;
    else
      merged.push_back({atom, c});
  }
  // a*x - a*C*(x / C)  ==  a*(x % C) for a constant C > 0: keeps the two
  // halves together, so interval evaluation sees the range [0, C-1].
  for (auto &[atom, c] : merged) {
    if (atom->kind != Term::Kind::FloorDiv || atom->args[1]->kind != Term::Kind::Const || c == 0)
      continue;
    int64_t C = atom->args[1]->value;
    std::string x = atom->args[0]->str();
    for (auto &[other, oc] : merged)
      if (C > 0 && oc != 0 && other->str() == x && -oc * C == c) {
        TermPtr mod = make(Term::Kind::FloorMod, {atom->args[0], atom->args[1]});
        other = mod;
        c = 0;
        break;
      }
  }
  merged.erase(std::remove_if(merged.begin(), merged.end(), [](auto &m) { return m.second == 0; }), merged.end());
  std::stable_partition(merged.begin(), merged.end(), [](auto &m) { return m.second > 0; });
  auto scaled = [](const TermPtr &atom, int64_t c) {
    return c == 1 ? atom : make(Term::Kind::Mul, {constant(c), atom});
  };
  TermPtr out;
  if (merged.empty())
    return constant(l.constant);
  if (merged.front().second > 0) {
    out = scaled(merged.front().first, merged.front().second);
    merged.erase(merged.begin());
  } else if (l.constant != 0) {
    out = constant(l.constant);
    l.constant = 0;
  } else {
    out = make(Term::Kind::Neg, {scaled(merged.front().first, -merged.front().second)});
    merged.erase(merged.begin());
  }
  for (auto &[atom, c] : merged)
    out = c > 0 ? make(Term::Kind::Add, {out, scaled(atom, c)}) : make(Term::Kind::Sub, {out, scaled(atom, -c)});
  if (l.constant > 0)
    out = make(Term::Kind::Add, {out, constant(l.constant)});
  else if (l.constant < 0)
    out = make(Term::Kind::Sub, {out, constant(-l.constant)});
  return out;
}

TermPtr combine(const TermPtr &a, const TermPtr &b, int64_t sign) {
  Linear la = toLinear(a), lb = toLinear(b);
  for (auto &[atom, c] : lb.terms)
    la.terms.push_back({atom, sign * c});
  la.constant += sign * lb.constant;
  return fromLinear(std::move(la));
}

} // namespace

TermPtr add(TermPtr a, TermPtr b) { return combine(a, b, 1); }
TermPtr sub(TermPtr a, TermPtr b) { return combine(a, b, -1); }
TermPtr neg(TermPtr a) { return combine(constant(0), a, -1); }

TermPtr mul(TermPtr a, TermPtr b) {
  if (a->kind == Term::Kind::Const || b->kind == Term::Kind::Const)
    return fromLinear(toLinear(make(Term::Kind::Mul, {a, b})));
  return make(Term::Kind::Mul, {a, b});
}

TermPtr floorDiv(TermPtr a, TermPtr b) {
  if (a->kind == Term::Kind::Const && b->kind == Term::Kind::Const && b->value != 0)
    return constant(floorDivInt(a->value, b->value));
  if (isConst(b, 1))
    return a;
  return make(Term::Kind::FloorDiv, {a, b});
}

TermPtr floorMod(TermPtr a, TermPtr b) {
  if (a->kind == Term::Kind::Const && b->kind == Term::Kind::Const && b->value != 0)
    return constant(floorModInt(a->value, b->value));
  if (isConst(b, 1) || isConst(b, -1))
    return constant(0);
  return make(Term::Kind::FloorMod, {a, b});
}

TermPtr min(TermPtr a, TermPtr b) {
  if (a->kind == Term::Kind::Const && b->kind == Term::Kind::Const)
    return constant(std::min(a->value, b->value));
  // Terms a constant apart: the min is known (min(q - 1, q) == q - 1).
  TermPtr d = sub(a, b);
  if (d->kind == Term::Kind::Const)
    return (d->value <= 0) == (true) ? a : b;
  if (isConst(a, kInf) || isConst(b, -kInf))
    return b;
  if (isConst(b, kInf) || isConst(a, -kInf))
    return a;
  return make(Term::Kind::Min, {a, b});
}

TermPtr max(TermPtr a, TermPtr b) {
  if (a->kind == Term::Kind::Const && b->kind == Term::Kind::Const)
    return constant(std::max(a->value, b->value));
  // Terms a constant apart: the max is known (max(q - 1, q) == q).
  TermPtr d = sub(a, b);
  if (d->kind == Term::Kind::Const)
    return (d->value <= 0) == (false) ? a : b;
  if (isConst(a, -kInf) || isConst(b, kInf))
    return b;
  if (isConst(b, -kInf) || isConst(a, kInf))
    return a;
  return make(Term::Kind::Max, {a, b});
}

TermPtr abs(TermPtr a) {
  if (a->kind == Term::Kind::Const)
    return constant(a->value < 0 ? -a->value : a->value);
  return make(Term::Kind::Abs, {a});
}

TermPtr select(TermPtr c, TermPtr a, TermPtr b) {
  if (c->kind == Term::Kind::BoolConst)
    return c->value ? a : b;
  if (a->isBool() && a->kind == Term::Kind::BoolConst && b->kind == Term::Kind::BoolConst)
    return a->value == b->value ? a : (a->value ? c : lnot(c));
  return make(Term::Kind::Select, {c, a, b});
}

#define ATTNC_CMP(NAME, KIND, OP)                                                                  \
  TermPtr NAME(TermPtr a, TermPtr b) {                                                             \
    if (a->kind == Term::Kind::Const && b->kind == Term::Kind::Const)                              \
      return boolean(a->value OP b->value);                                                        \
    return make(Term::Kind::KIND, {a, b});                                                         \
  }
ATTNC_CMP(lt, Lt, <)
ATTNC_CMP(le, Le, <=)
ATTNC_CMP(eq, Eq, ==)
ATTNC_CMP(ne, Ne, !=)
#undef ATTNC_CMP

TermPtr land(TermPtr a, TermPtr b) {
  if (a->kind == Term::Kind::BoolConst)
    return a->value ? b : a;
  if (b->kind == Term::Kind::BoolConst)
    return b->value ? a : b;
  return make(Term::Kind::And, {a, b});
}

TermPtr lor(TermPtr a, TermPtr b) {
  if (a->kind == Term::Kind::BoolConst)
    return a->value ? a : b;
  if (b->kind == Term::Kind::BoolConst)
    return b->value ? b : a;
  return make(Term::Kind::Or, {a, b});
}

TermPtr lnot(TermPtr a) {
  if (a->kind == Term::Kind::BoolConst)
    return boolean(!a->value);
  if (a->kind == Term::Kind::Not)
    return a->args[0];
  return make(Term::Kind::Not, {a});
}

} // namespace T
} // namespace attnc::analysis

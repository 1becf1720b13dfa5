//===- ProgramGenerator.cpp - Random valid .attn programs -----------------===//
//
// See ProgramGenerator.h. The generator, in order:
//   1. params (int, float, bool), each a constant expression of literals and
//      earlier params, its value computed here with the language's semantics
//      (wrapping 64-bit ints, floor division, int/float promotion);
//   2. inputs: an element type and 1-3 axes (batch and head at most once,
//      token any number of times, any order);
//   3. variants: lets, masks, score, scale, sink and select in a random
//      order (a let before its uses), each expression typed and scoped as
//      sema requires (no float in a mask, no `s` outside the score, no `h`
//      in a selection or, when the variant selects, in its masks);
//   4. models: `layers N`, a rule covering every layer, then overrides;
//   5. the top-level items shuffled (params keep their order), and -D
//      overrides for params that nothing constant depends on.
//
//===----------------------------------------------------------------------===//
#include "ProgramGenerator.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <optional>
#include <random>
#include <set>

namespace attnc::testgen {
namespace {

enum class Ty { Int, Float, Bool };

/// A constant value, as sema's evaluator computes it.
struct CV {
  Ty ty = Ty::Int;
  int64_t i = 0;
  double f = 0;
  bool b = false;
  double d() const { return ty == Ty::Float ? f : double(i); }
  static CV ofInt(int64_t v) { CV c; c.ty = Ty::Int; c.i = v; return c; }
  static CV ofFloat(double v) { CV c; c.ty = Ty::Float; c.f = v; return c; }
  static CV ofBool(bool v) { CV c; c.ty = Ty::Bool; c.b = v; return c; }
};

/// A generated expression: its text, type, and what it reads.
struct E {
  std::string t;
  Ty ty = Ty::Int;
  std::optional<CV> cv;   ///< set iff it reads only literals and params
  bool atomic = true;     ///< needs no parentheses as an operand
  bool readsH = false;    ///< reads h (directly, through a let or an input)
  bool hasFloat = false;  ///< a float appears somewhere inside
  uint64_t params = 0;    ///< bit i: reads param i
};

/// Operand text: parenthesised unless atomic.
std::string op(const E &e) { return e.atomic ? e.t : "(" + e.t + ")"; }

E combine(std::string text, Ty ty, std::initializer_list<const E *> parts, bool atomic = false) {
  E r;
  r.t = std::move(text);
  r.ty = ty;
  r.atomic = atomic;
  r.hasFloat = ty == Ty::Float;
  for (const E *p : parts) {
    r.readsH |= p->readsH;
    r.hasFloat |= p->hasFloat;
    r.params |= p->params;
  }
  return r;
}

bool allConst(std::initializer_list<const E *> parts) {
  for (const E *p : parts)
    if (!p->cv)
      return false;
  return true;
}

// --- the language's arithmetic on constants (Eval.cpp) -----------------------

int64_t floorDivI(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0)))
    --q;
  return q;
}
int64_t floorModI(int64_t a, int64_t b) {
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0)))
    r += b;
  return r;
}

CV arith(char opc, const CV &a, const CV &b) {
  if (a.ty == Ty::Int && b.ty == Ty::Int) {
    uint64_t x = uint64_t(a.i), y = uint64_t(b.i);
    switch (opc) {
    case '+': return CV::ofInt(int64_t(x + y));
    case '-': return CV::ofInt(int64_t(x - y));
    case '*': return CV::ofInt(int64_t(x * y));
    case '/':
    case '%':
      if (a.i == INT64_MIN && b.i == -1)
        return CV::ofInt(opc == '/' ? INT64_MIN : 0);
      return CV::ofInt(opc == '/' ? floorDivI(a.i, b.i) : floorModI(a.i, b.i));
    }
  }
  double x = a.d(), y = b.d();
  switch (opc) {
  case '+': return CV::ofFloat(x + y);
  case '-': return CV::ofFloat(x - y);
  case '*': return CV::ofFloat(x * y);
  default: return CV::ofFloat(x / y);
  }
}

/// Comparison ops: "<", "<=", ">", ">=", "==", "!=".
bool compare(const std::string &o, const CV &a, const CV &b) {
  if (a.ty == Ty::Bool || b.ty == Ty::Bool) {
    bool eq = a.b == b.b;
    return o == "==" ? eq : !eq;
  }
  if (a.ty == Ty::Int && b.ty == Ty::Int) {
    if (o == "<") return a.i < b.i;
    if (o == "<=") return a.i <= b.i;
    if (o == ">") return a.i > b.i;
    if (o == ">=") return a.i >= b.i;
    if (o == "==") return a.i == b.i;
    return a.i != b.i;
  }
  double x = a.d(), y = b.d();
  if (o == "<") return x < y;
  if (o == "<=") return x <= y;
  if (o == ">") return x > y;
  if (o == ">=") return x >= y;
  if (o == "==") return x == y;
  return x != y;
}

CV toTy(const CV &v, Ty ty) { return ty == Ty::Float && v.ty != Ty::Float ? CV::ofFloat(v.d()) : v; }

// --- names -----------------------------------------------------------------

/// Words the language gives a meaning but does not reserve (language.md §1).
const char *const kUnreservedWords[] = {"topk", "by", "indexer", "batch", "head", "token", "i32", "i64", "f32",
                                        "bool", "abs", "min", "max", "clamp", "tanh", "exp", "log", "sqrt",
                                        "dtype", "heads", "dim", "fp8", "bf16"};

enum Elem { I32, I64, F32, Bool };
enum AxisKind { Batch, Head, Token };

struct Param {
  std::string name;
  Ty ty;
  CV value;
  bool pinned = false; ///< something constant depends on its value: never overridden
};

struct Input {
  std::string name;
  Elem elem;
  std::vector<AxisKind> axes;
  bool hasHead() const { return std::count(axes.begin(), axes.end(), Head) > 0; }
  bool hasToken() const { return std::count(axes.begin(), axes.end(), Token) > 0; }
  bool hasBatch() const { return std::count(axes.begin(), axes.end(), Batch) > 0; }
  Ty ty() const { return elem == F32 ? Ty::Float : elem == Bool ? Ty::Bool : Ty::Int; }
};

struct Let {
  std::string name;
  Ty ty;
  bool readsH, hasFloat;
  uint64_t params;
};

/// What an expression may read where it stands.
struct Ctx {
  bool positions = false, head = false, batch = false, score = false, inputs = false, lets = false;
  bool floats = true;
  bool hiddenFloatLets = true; ///< int/bool lets computed with floats inside
  bool hLets = true;           ///< lets that read h
  bool runtimeDivisors = true; ///< may divide by a value that is zero at run time
  std::string layerVar;        ///< in a `layer i:` rule
  size_t visibleParams = SIZE_MAX;
};

class Generator {
public:
  Generator(uint64_t seed, const GeneratorOptions &options) : rng_(seed), options_(options) {}

  GeneratedProgram run() {
    std::vector<std::string> paramItems, otherItems;
    int nParams = int(pick(0, 5)), nInputs = int(pick(0, 5)), nVariants = int(pick(1, 4)),
        nModels = chance(0.45) ? int(pick(1, 2)) : 0;
    for (int i = 0; i < nParams; ++i)
      paramItems.push_back(genParam(i));
    for (int i = 0; i < nInputs; ++i)
      otherItems.push_back(genInput(i));
    // Every top-level name before the first let (a let may not reuse one).
    for (int i = 0; i < nVariants; ++i)
      variantNames_.push_back(freshTopName("a" + std::to_string(i)));
    std::vector<std::string> modelNames;
    for (int i = 0; i < nModels; ++i)
      modelNames.push_back(freshTopName("m" + std::to_string(i)));
    for (int i = 0; i < nVariants; ++i)
      otherItems.push_back(genVariant(variantNames_[size_t(i)]));
    for (const std::string &m : modelNames)
      otherItems.push_back(genModel(m));
    // Interleave: params keep their relative order (a param may read only
    // earlier ones); everything else may stand anywhere.
    std::shuffle(otherItems.begin(), otherItems.end(), rng_);
    std::vector<std::string> items;
    size_t pi = 0, oi = 0;
    while (pi < paramItems.size() || oi < otherItems.size()) {
      bool takeParam = oi == otherItems.size() || (pi < paramItems.size() && chance(0.5));
      items.push_back(takeParam ? paramItems[pi++] : otherItems[oi++]);
    }
    GeneratedProgram out;
    for (const std::string &it : items) {
      out.text += it;
      if (chance(0.1))
        out.text += chance(0.5) ? "// a comment\n" : "/* a block\n   comment */\n";
      out.text += chance(0.2) ? "\n\n" : "\n";
    }
    // -D overrides for params nothing constant depends on.
    for (const Param &p : params_) {
      if (p.pinned || !chance(0.25))
        continue;
      std::string v;
      switch (p.ty) {
      case Ty::Int: v = std::to_string(chance(0.2) ? -pick(0, 50) : pick(0, 5000)); break;
      case Ty::Float: {
        static const char *const fs[] = {"2.5", "30", "0.125", "1e-2", "-3.5", "50.0", "7"};
        v = fs[pick(0, 6)];
        break;
      }
      case Ty::Bool: {
        static const char *const bs[] = {"true", "false", "1", "0"};
        v = bs[pick(0, 3)];
        break;
      }
      }
      out.overrides.emplace_back(p.name, v);
    }
    return out;
  }

private:
  std::mt19937_64 rng_;
  GeneratorOptions options_;
  std::vector<Param> params_;
  std::vector<Input> inputs_;
  std::vector<Let> lets_; ///< the current variant's, declared so far
  std::vector<std::string> variantNames_;
  std::set<std::string> topNames_, letNames_;

  int64_t pick(int64_t lo, int64_t hi) { return lo + int64_t(rng_() % uint64_t(hi - lo + 1)); }
  bool chance(double p) { return double(rng_() % 1000000) < p * 1000000.0; }
  template <class T> const T &any(const std::vector<T> &v) { return v[size_t(pick(0, int64_t(v.size()) - 1))]; }

  // --- names -----------------------------------------------------------------

  bool reserved(const std::string &n) {
    static const std::set<std::string> words = {"param", "input", "attention", "model", "let", "mask", "score",
                                                "scale", "sink", "select", "layers", "layer", "true", "false",
                                                "q", "k", "h", "b", "qlen", "klen", "s"};
    return words.count(n) > 0;
  }

  /// `base`, or now and then a word the language uses but does not reserve.
  std::string freshTopName(const std::string &base) {
    std::string n = base;
    if (chance(0.06)) {
      n = kUnreservedWords[pick(0, int64_t(std::size(kUnreservedWords)) - 1)];
      if (topNames_.count(n))
        n = base;
    }
    while (topNames_.count(n) || reserved(n))
      n += "_";
    topNames_.insert(n);
    return n;
  }

  std::string freshLetName(int i) {
    std::string n = "l" + std::to_string(i);
    if (chance(0.05))
      n = kUnreservedWords[pick(0, int64_t(std::size(kUnreservedWords)) - 1)];
    while (topNames_.count(n) || letNames_.count(n) || reserved(n))
      n += "_";
    letNames_.insert(n);
    return n;
  }

  // --- literals --------------------------------------------------------------

  static std::string grouped(const std::string &digits) {
    std::string out;
    for (size_t i = 0; i < digits.size(); ++i) {
      if (i && (digits.size() - i) % 3 == 0)
        out += '_';
      out += digits[i];
    }
    return out;
  }

  E intLit(int64_t lo = 0, int64_t hi = -1) {
    int64_t v;
    if (hi >= lo)
      v = pick(lo, hi);
    else {
      int64_t r = pick(0, 99);
      v = r < 70 ? pick(0, 64) : r < 90 ? pick(65, 5000) : r < 98 ? pick(5001, 1000000)
                                                         : (chance(0.5) ? INT64_MAX : int64_t(1) << 62);
    }
    E e;
    e.ty = Ty::Int;
    std::string digits = std::to_string(v);
    e.t = v >= 1000 && chance(0.15) ? grouped(digits) : digits;
    e.cv = CV::ofInt(v);
    return e;
  }

  E floatLit(bool small = false) {
    std::string t;
    switch (pick(0, small ? 1 : 5)) {
    case 0: t = std::to_string(pick(0, 9)) + "." + std::to_string(pick(0, 99)); break;
    case 1: t = std::to_string(pick(1, 60)) + ".0"; break;
    case 2: t = std::to_string(pick(1, 9)) + (chance(0.5) ? "e" : "E") + (chance(0.5) ? "-" : "") +
                std::to_string(pick(0, 3));
      break;
    case 3: t = std::to_string(pick(1, 9)) + "." + std::to_string(pick(0, 9)) + "e+" + std::to_string(pick(0, 2)); break;
    case 4: t = grouped(std::to_string(pick(1000, 99999))) + "." + std::to_string(pick(0, 9)); break;
    default: t = "0." + std::to_string(pick(0, 9)) + std::to_string(pick(1, 9)); break;
    }
    std::string plain;
    for (char c : t)
      if (c != '_')
        plain += c;
    E e;
    e.t = t;
    e.ty = Ty::Float;
    e.hasFloat = true;
    e.cv = CV::ofFloat(std::strtod(plain.c_str(), nullptr));
    return e;
  }

  // --- leaves ----------------------------------------------------------------

  E paramRef(size_t i) {
    E e;
    e.t = params_[i].name;
    e.ty = params_[i].ty;
    e.cv = params_[i].value;
    e.hasFloat = e.ty == Ty::Float;
    e.params = uint64_t(1) << i;
    return e;
  }

  std::vector<size_t> paramsOf(Ty ty, const Ctx &c) {
    std::vector<size_t> out;
    for (size_t i = 0; i < params_.size() && i < c.visibleParams; ++i)
      if (params_[i].ty == ty && (ty != Ty::Float || c.floats))
        out.push_back(i);
    return out;
  }

  bool letUsable(const Let &l, const Ctx &c) {
    if (!c.lets)
      return false;
    if (l.ty == Ty::Float && !c.floats)
      return false;
    if (l.hasFloat && !c.floats && !c.hiddenFloatLets)
      return false;
    if (l.readsH && (!c.head || !c.hLets))
      return false;
    return true;
  }

  std::vector<size_t> letsOf(Ty ty, const Ctx &c) {
    std::vector<size_t> out;
    for (size_t i = 0; i < lets_.size(); ++i)
      if (lets_[i].ty == ty && letUsable(lets_[i], c))
        out.push_back(i);
    return out;
  }

  E letRef(size_t i) {
    E e;
    e.t = lets_[i].name;
    e.ty = lets_[i].ty;
    e.readsH = lets_[i].readsH;
    e.hasFloat = lets_[i].hasFloat;
    e.params = lets_[i].params;
    return e;
  }

  bool inputUsable(const Input &in, const Ctx &c) {
    if (!c.inputs)
      return false;
    if (in.hasHead() && !c.head)
      return false;
    if (in.hasToken() && !c.positions)
      return false;
    if (in.hasBatch() && !c.batch)
      return false;
    if (in.elem == F32 && !c.floats)
      return false;
    return true;
  }

  std::vector<size_t> inputsOf(Ty ty, const Ctx &c, int needToken = -1) {
    std::vector<size_t> out;
    for (size_t i = 0; i < inputs_.size(); ++i)
      if (inputs_[i].ty() == ty && inputUsable(inputs_[i], c) && (needToken < 0 || inputs_[i].hasToken() == bool(needToken)))
        out.push_back(i);
    return out;
  }

  /// `name[b, h, q/k...]`; tokenVar(): 'q' or 'k' per token axis.
  E readOf(size_t i, const std::function<char()> &tokenVar) {
    const Input &in = inputs_[i];
    E e;
    e.t = in.name + "[";
    for (size_t a = 0; a < in.axes.size(); ++a) {
      if (a)
        e.t += chance(0.8) ? ", " : ",";
      e.t += in.axes[a] == Batch ? "b" : in.axes[a] == Head ? "h" : std::string(1, tokenVar());
    }
    e.t += "]";
    e.ty = in.ty();
    e.readsH = in.hasHead();
    e.hasFloat = in.elem == F32;
    return e;
  }
  E readRandom(size_t i) { return readOf(i, [&] { return chance(0.5) ? 'q' : 'k'; }); }

  E var(const std::string &name, bool isH = false) {
    E e;
    e.t = name;
    e.ty = Ty::Int;
    e.readsH = isH;
    return e;
  }

  // --- expressions -----------------------------------------------------------

  E genNum(int depth, const Ctx &c) { return c.floats && chance(0.35) ? genFloat(depth, c) : genInt(depth, c); }

  /// An int divisor that is never a constant zero (and, unless allowed,
  /// never zero at run time either).
  E divisor(int depth, const Ctx &c) {
    E d = genInt(depth, c);
    if (d.cv) {
      if (d.cv->i == 0) {
        E one = intLit(1, 1);
        E r = combine(op(d) + " + " + one.t, Ty::Int, {&d, &one});
        r.cv = CV::ofInt(1);
        d = r;
      }
      return d;
    }
    if (!c.runtimeDivisors || chance(0.7)) {
      if (chance(0.5)) {
        E r = combine("max(" + d.t + ", 1)", Ty::Int, {&d}, true);
        return r;
      }
      return combine("abs(" + d.t + ") + 1", Ty::Int, {&d});
    }
    return d;
  }

  E intLeaf(const Ctx &c) {
    std::vector<std::function<E()>> opts;
    opts.push_back([&] { return intLit(); });
    if (c.positions) {
      opts.push_back([&] { return var(chance(0.5) ? "q" : "k"); });
      opts.push_back([&] { return var(chance(0.5) ? "q" : "k"); });
      opts.push_back([&] { return var(chance(0.5) ? "qlen" : "klen"); });
    }
    if (c.head)
      opts.push_back([&] { return var("h", true); });
    if (c.batch)
      opts.push_back([&] { return var("b"); });
    if (!c.layerVar.empty()) {
      opts.push_back([&] { return var(c.layerVar); });
      opts.push_back([&] { return var(c.layerVar); });
    }
    if (auto ps = paramsOf(Ty::Int, c); !ps.empty())
      opts.push_back([&, ps] { return paramRef(any(ps)); });
    if (auto ls = letsOf(Ty::Int, c); !ls.empty())
      opts.push_back([&, ls] { return letRef(any(ls)); });
    if (auto is = inputsOf(Ty::Int, c); !is.empty())
      opts.push_back([&, is] { return readRandom(any(is)); });
    return any(opts)();
  }

  E genInt(int depth, const Ctx &c) {
    if (depth <= 0 || chance(0.3))
      return intLeaf(c);
    switch (pick(0, 11)) {
    case 0:
    case 1:
    case 2: {
      static const char ops[] = {'+', '-', '*'};
      char o = ops[pick(0, 2)];
      E a = genInt(depth - 1, c), b = genInt(depth - 1, c);
      E r = combine(op(a) + " " + o + " " + op(b), Ty::Int, {&a, &b});
      if (allConst({&a, &b}))
        r.cv = arith(o, *a.cv, *b.cv);
      return r;
    }
    case 3:
    case 4: {
      char o = chance(0.5) ? '/' : '%';
      E a = genInt(depth - 1, c), d = divisor(depth - 1, c);
      E r = combine(op(a) + " " + o + " " + op(d), Ty::Int, {&a, &d});
      if (d.cv)
        for (size_t i = 0; i < params_.size(); ++i)
          if (d.params >> i & 1)
            params_[i].pinned = true; // its value decides whether this divides by zero
      if (allConst({&a, &d}))
        r.cv = arith(o, *a.cv, *d.cv);
      return r;
    }
    case 5: {
      E a = genInt(depth - 1, c);
      E r = combine(a.t[0] == '-' || !a.atomic ? "-(" + a.t + ")" : "-" + a.t, Ty::Int, {&a});
      if (a.cv)
        r.cv = CV::ofInt(int64_t(0 - uint64_t(a.cv->i)));
      return r;
    }
    case 6: {
      E a = genInt(depth - 1, c);
      E r = combine("abs(" + a.t + ")", Ty::Int, {&a}, true);
      if (a.cv)
        r.cv = CV::ofInt(a.cv->i < 0 ? int64_t(0 - uint64_t(a.cv->i)) : a.cv->i);
      return r;
    }
    case 7:
    case 8: {
      bool isMin = chance(0.5);
      E a = genInt(depth - 1, c), b = genInt(depth - 1, c);
      E r = combine(std::string(isMin ? "min(" : "max(") + a.t + ", " + b.t + ")", Ty::Int, {&a, &b}, true);
      if (allConst({&a, &b}))
        r.cv = CV::ofInt(isMin ? std::min(a.cv->i, b.cv->i) : std::max(a.cv->i, b.cv->i));
      return r;
    }
    case 9: {
      E x = genInt(depth - 1, c), lo = genInt(depth - 1, c), hi = genInt(depth - 1, c);
      E r = combine("clamp(" + x.t + ", " + lo.t + ", " + hi.t + ")", Ty::Int, {&x, &lo, &hi}, true);
      if (allConst({&x, &lo, &hi}))
        r.cv = CV::ofInt(std::min(std::max(x.cv->i, lo.cv->i), hi.cv->i));
      return r;
    }
    default: return cond(depth, c, Ty::Int);
    }
  }

  /// `cnd ? a : b` of type `ty` (a float one may mix an int branch).
  E cond(int depth, const Ctx &c, Ty ty) {
    E cnd = genBool(depth - 1, c);
    E a, b;
    if (ty == Ty::Float) {
      bool intFirst = chance(0.3), intSecond = !intFirst && chance(0.3);
      a = intFirst ? genInt(depth - 1, c) : genFloat(depth - 1, c);
      b = intSecond ? genInt(depth - 1, c) : genFloat(depth - 1, c);
    } else {
      a = gen(ty, depth - 1, c);
      b = gen(ty, depth - 1, c);
    }
    E r = combine(op(cnd) + " ? " + op(a) + " : " + op(b), ty, {&cnd, &a, &b});
    if (allConst({&cnd, &a, &b}))
      r.cv = toTy(cnd.cv->b ? *a.cv : *b.cv, ty);
    return r;
  }

  E gen(Ty ty, int depth, const Ctx &c) {
    switch (ty) {
    case Ty::Int: return genInt(depth, c);
    case Ty::Float: return genFloat(depth, c);
    default: return genBool(depth, c);
    }
  }

  E floatLeaf(const Ctx &c) {
    std::vector<std::function<E()>> opts;
    opts.push_back([&] { return floatLit(); });
    if (c.score) {
      opts.push_back([&] { E e; e.t = "s"; e.ty = Ty::Float; e.hasFloat = true; return e; });
      opts.push_back([&] { E e; e.t = "s"; e.ty = Ty::Float; e.hasFloat = true; return e; });
    }
    if (auto ps = paramsOf(Ty::Float, c); !ps.empty())
      opts.push_back([&, ps] { return paramRef(any(ps)); });
    if (auto ls = letsOf(Ty::Float, c); !ls.empty())
      opts.push_back([&, ls] { return letRef(any(ls)); });
    if (auto is = inputsOf(Ty::Float, c); !is.empty())
      opts.push_back([&, is] { return readRandom(any(is)); });
    return any(opts)();
  }

  E genFloat(int depth, const Ctx &c) {
    if (depth <= 0 || chance(0.3))
      return floatLeaf(c);
    switch (pick(0, 9)) {
    case 0:
    case 1:
    case 2: {
      static const char ops[] = {'+', '-', '*', '/'};
      char o = ops[pick(0, 3)];
      bool floatLeft = chance(0.5);
      E a = floatLeft ? genFloat(depth - 1, c) : genNum(depth - 1, c);
      E b = floatLeft ? genNum(depth - 1, c) : genFloat(depth - 1, c);
      E r = combine(op(a) + " " + o + " " + op(b), Ty::Float, {&a, &b});
      if (allConst({&a, &b}))
        r.cv = arith(o, *a.cv, *b.cv);
      return r;
    }
    case 3: {
      E a = genFloat(depth - 1, c);
      E r = combine(a.t[0] == '-' || !a.atomic ? "-(" + a.t + ")" : "-" + a.t, Ty::Float, {&a});
      if (a.cv)
        r.cv = CV::ofFloat(-a.cv->f);
      return r;
    }
    case 4:
    case 5: {
      static const char *const fns[] = {"tanh", "exp", "log", "sqrt"};
      int fi = int(pick(0, 3));
      E a = genNum(depth - 1, c);
      E r = combine(std::string(fns[fi]) + "(" + a.t + ")", Ty::Float, {&a}, true);
      if (a.cv) {
        double x = a.cv->d();
        r.cv = CV::ofFloat(fi == 0 ? std::tanh(x) : fi == 1 ? std::exp(x) : fi == 2 ? std::log(x) : std::sqrt(x));
      }
      return r;
    }
    case 6: {
      E a = genFloat(depth - 1, c);
      E r = combine("abs(" + a.t + ")", Ty::Float, {&a}, true);
      if (a.cv)
        r.cv = CV::ofFloat(std::fabs(a.cv->f));
      return r;
    }
    case 7: {
      bool isMin = chance(0.5);
      bool floatLeft = chance(0.5);
      E a = floatLeft ? genFloat(depth - 1, c) : genNum(depth - 1, c);
      E b = floatLeft ? genNum(depth - 1, c) : genFloat(depth - 1, c);
      E r = combine(std::string(isMin ? "min(" : "max(") + a.t + ", " + b.t + ")", Ty::Float, {&a, &b}, true);
      if (allConst({&a, &b})) {
        bool less = compare("<", *a.cv, *b.cv);
        r.cv = CV::ofFloat((isMin == less ? *a.cv : *b.cv).d());
      }
      return r;
    }
    case 8: {
      int floatArg = int(pick(0, 2));
      E x = floatArg == 0 ? genFloat(depth - 1, c) : genNum(depth - 1, c);
      E lo = floatArg == 1 ? genFloat(depth - 1, c) : genNum(depth - 1, c);
      E hi = floatArg == 2 ? genFloat(depth - 1, c) : genNum(depth - 1, c);
      E r = combine("clamp(" + x.t + ", " + lo.t + ", " + hi.t + ")", Ty::Float, {&x, &lo, &hi}, true);
      if (allConst({&x, &lo, &hi})) {
        CV v = compare("<", *x.cv, *lo.cv) ? *lo.cv : *x.cv;
        v = compare(">", v, *hi.cv) ? *hi.cv : v;
        r.cv = CV::ofFloat(v.d());
      }
      return r;
    }
    default: return cond(depth, c, Ty::Float);
    }
  }

  E boolLeaf(const Ctx &c) {
    std::vector<std::function<E()>> opts;
    opts.push_back([&] {
      E e;
      bool v = chance(0.7);
      e.t = v ? "true" : "false";
      e.ty = Ty::Bool;
      e.cv = CV::ofBool(v);
      return e;
    });
    if (auto ps = paramsOf(Ty::Bool, c); !ps.empty())
      opts.push_back([&, ps] { return paramRef(any(ps)); });
    if (auto ls = letsOf(Ty::Bool, c); !ls.empty())
      opts.push_back([&, ls] { return letRef(any(ls)); });
    if (auto is = inputsOf(Ty::Bool, c); !is.empty())
      opts.push_back([&, is] { return readRandom(any(is)); });
    return any(opts)();
  }

  E genBool(int depth, const Ctx &c) {
    if (depth <= 0 || chance(0.2))
      return boolLeaf(c);
    switch (pick(0, 10)) {
    case 0:
    case 1:
    case 2:
    case 3: {
      static const char *const cmps[] = {"<", "<=", ">", ">=", "==", "!="};
      std::string o = cmps[pick(0, 5)];
      E a = genNum(depth - 1, c), b = genNum(depth - 1, c);
      E r = combine(op(a) + " " + o + " " + op(b), Ty::Bool, {&a, &b});
      if (allConst({&a, &b}))
        r.cv = CV::ofBool(compare(o, *a.cv, *b.cv));
      return r;
    }
    case 4: {
      std::string o = chance(0.5) ? "==" : "!=";
      E a = genBool(depth - 1, c), b = genBool(depth - 1, c);
      E r = combine(op(a) + " " + o + " " + op(b), Ty::Bool, {&a, &b});
      if (allConst({&a, &b}))
        r.cv = CV::ofBool(compare(o, *a.cv, *b.cv));
      return r;
    }
    case 5:
    case 6:
    case 7: {
      bool isAnd = chance(0.5);
      E a = genBool(depth - 1, c), b = genBool(depth - 1, c);
      E r = combine(op(a) + (isAnd ? " && " : " || ") + op(b), Ty::Bool, {&a, &b});
      if (allConst({&a, &b}))
        r.cv = CV::ofBool(isAnd ? a.cv->b && b.cv->b : a.cv->b || b.cv->b);
      return r;
    }
    case 8: {
      E a = genBool(depth - 1, c);
      E r = combine("!" + op(a), Ty::Bool, {&a});
      if (a.cv)
        r.cv = CV::ofBool(!a.cv->b);
      return r;
    }
    default: return cond(depth, c, Ty::Bool);
    }
  }

  /// A constant int: a literal or an int param.
  E constInt(int64_t lo, int64_t hi, const Ctx &c) {
    std::vector<size_t> ps;
    for (size_t i : paramsOf(Ty::Int, c))
      if (params_[i].value.i >= lo && params_[i].value.i <= hi)
        ps.push_back(i);
    if (!ps.empty() && chance(0.4))
      return paramRef(any(ps));
    return intLit(lo, hi);
  }

  // --- params and inputs -------------------------------------------------------

  std::string genParam(int i) {
    Param p;
    p.name = freshTopName(i % 2 ? "w" + std::to_string(i) : "p" + std::to_string(i));
    int64_t r = pick(0, 99);
    p.ty = r < 60 ? Ty::Int : r < 85 ? Ty::Float : Ty::Bool;
    Ctx c;
    c.visibleParams = params_.size();
    c.floats = true;
    E e;
    for (int attempt = 0;; ++attempt) {
      if (attempt > 20) { // fall back to a plain literal
        e = p.ty == Ty::Int ? intLit(1, 4096) : p.ty == Ty::Float ? floatLit(true) : boolLeaf(Ctx{});
        if (!e.cv) {
          e.t = "true";
          e.cv = CV::ofBool(true);
        }
        break;
      }
      if (chance(0.5))
        e = p.ty == Ty::Int ? intLit() : p.ty == Ty::Float ? floatLit() : boolLeaf(c);
      else
        e = gen(p.ty, int(pick(1, 3)), c);
      if (!e.cv)
        continue; // cannot happen with params only, but be safe
      if (p.ty == Ty::Float && !std::isfinite(e.cv->f))
        continue;
      break;
    }
    p.value = *e.cv;
    for (size_t j = 0; j < params_.size(); ++j)
      if (e.params >> j & 1)
        params_[j].pinned = true; // p's value follows from it
    params_.push_back(p);
    return "param " + p.name + " = " + e.t + ";";
  }

  std::string genInput(int i) {
    Input in;
    in.elem = Elem(pick(0, 3));
    static const char *const bases[] = {"doc", "prefix", "slope", "glob", "x"};
    in.name = freshTopName(std::string(bases[pick(0, 4)]) + std::to_string(i));
    int n = int(pick(1, 3));
    bool batch = false, head = false, token = false;
    for (int a = 0; a < n; ++a) {
      int64_t r = pick(0, 2);
      if (r == 0 && !batch) {
        in.axes.push_back(Batch);
        batch = true;
      } else if (r == 1 && !head) {
        in.axes.push_back(Head);
        head = true;
      } else if (!token || options_.repeatedTokenAxes) {
        in.axes.push_back(Token);
        token = true;
      }
    }
    inputs_.push_back(in);
    static const char *const elems[] = {"i32", "i64", "f32", "bool"};
    std::string s = "input " + in.name + " : " + elems[in.elem] + "[";
    for (size_t a = 0; a < in.axes.size(); ++a)
      s += std::string(a ? ", " : "") + (in.axes[a] == Batch ? "batch" : in.axes[a] == Head ? "head" : "token");
    return s + "];";
  }

  // --- masks -------------------------------------------------------------------

  /// A mask shaped like a real pattern (windows, chunks, documents, prefixes).
  E maskAtom(const Ctx &c) {
    // Windows and offsets: mostly realistic, now and then extreme (2^62,
    // INT64_MAX, negative), which the analysis must saturate, not overflow.
    auto W = [&] {
      if (chance(0.05)) {
        static const char *const big[] = {"4611686018427387904", "9223372036854775807", "1099511627776",
                                          "2147483648", "-(4611686018427387904)", "-(1)"};
        E e = combine(big[pick(0, 5)], Ty::Int, {}, false);
        return e;
      }
      return constInt(0, 3000, c);
    };
    // Divisors: a param there is pinned (an override to 0 would divide by zero).
    auto C = [&] { E d = constInt(1, 3000, c); pinAll(d); return d; };
    auto text = [&](std::string t, std::initializer_list<const E *> parts) {
      E r = combine(std::move(t), Ty::Bool, parts);
      return r;
    };
    std::vector<std::function<E()>> opts = {
        [&] { return text("k <= q", {}); },
        [&] { return text("k < q", {}); },
        [&] { E w = W(); return text("q - k < " + op(w), {&w}); },
        [&] { E w = W(); return text("k <= q && q - k < " + op(w), {&w}); },
        [&] { E w = W(); return text("abs(q - k) <= " + op(w), {&w}); },
        [&] { E w = W(); return text("k >= q - " + op(w), {&w}); },
        [&] { E d = C(); return text("q / " + op(d) + " == k / " + op(d), {&d}); },
        [&] { E d = C(); return text("k / " + op(d) + " <= q / " + op(d), {&d}); },
        [&] { E w = W(); return text("k < " + op(w), {&w}); },
        [&] { E w = W(); return text("k >= " + op(w) + " || k <= q", {&w}); },
        [&] { E d = constInt(1, 5, c); pinAll(d); return text("(q - k) % " + op(d) + " == 0", {&d}); },
        [&] { E w = W(); return text("max(q - " + op(w) + ", 0) <= k", {&w}); },
        [&] { E w = W(), x = W(); return text("min(q + " + op(w) + ", " + op(x) + ") >= k", {&w, &x}); },
        [&] { E w = W(); return text("q - k == " + op(w), {&w}); },
        [&] { return text("k != q", {}); },
        [&] { E w = W(), x = W(); return text("clamp(k, " + w.t + ", " + x.t + ") == k", {&w, &x}); },
        [&] { E w = W(); return text("(q < " + op(w) + " ? k <= q : k >= q)", {&w}); },
        [&] { E d = constInt(1, 4, c), w = W(); return text(op(d) + " * k <= q + " + op(w), {&d, &w}); },
        [&] { E w = W(); return text("k < klen - " + op(w) + " && q < qlen", {&w}); },
        [&] { E w = W(); return text("k < " + op(w) + " || (k <= q && q - k < 2000)", {&w}); },
    };
    // Inputs: documents, prefixes, globals, pair tables.
    for (size_t i = 0; i < inputs_.size(); ++i) {
      const Input &in = inputs_[i];
      if (!inputUsable(in, c))
        continue;
      if (in.ty() == Ty::Int && in.hasToken()) {
        opts.push_back([&, i] {
          E a = readOf(i, [] { return 'q'; }), b = readOf(i, [] { return 'k'; });
          return text(a.t + " == " + b.t + (chance(0.5) ? " && k <= q" : ""), {&a, &b});
        });
        opts.push_back([&, i] {
          E a = readRandom(i);
          return text("k <= q + " + a.t, {&a});
        });
      }
      if (in.ty() == Ty::Int && !in.hasToken())
        opts.push_back([&, i] {
          E a = readOf(i, [] { return 'q'; });
          return text("k < " + a.t + " || k <= q", {&a});
        });
      if (in.ty() == Ty::Bool) {
        opts.push_back([&, i] {
          E a = readOf(i, [] { return 'k'; }), b = readOf(i, [] { return 'q'; });
          return text(a.t + " || " + b.t, {&a, &b}); // issue 13's shape
        });
        opts.push_back([&, i] {
          E a = readRandom(i);
          return text(a.t + (chance(0.5) ? " || k <= q" : " && k <= q"), {&a});
        });
        opts.push_back([&, i] {
          E a = readRandom(i);
          return text("!" + a.t, {&a});
        });
      }
    }
    return any(opts)();
  }

  E genMask(const Ctx &c) {
    int64_t r = pick(0, 9);
    if (r < 4)
      return maskAtom(c);
    if (r < 6) {
      E a = maskAtom(c), b = chance(0.5) ? maskAtom(c) : genBool(2, c);
      std::string o = chance(0.6) ? " && " : " || ";
      return combine(op(a) + o + op(b), Ty::Bool, {&a, &b});
    }
    if (r < 7) {
      E a = genBool(1, c), b = maskAtom(c), d = maskAtom(c);
      return combine(op(a) + " ? " + op(b) + " : " + op(d), Ty::Bool, {&a, &b, &d});
    }
    return genBool(int(pick(1, 4)), c);
  }

  // --- variants ------------------------------------------------------------------

  E genScore(const Ctx &c) {
    std::vector<std::function<E()>> opts = {
        [&] { E e = floatLeaf(c); return e; },
        [&] {
          E cap = floatLit(true);
          if (cap.cv->f == 0.0)
            cap = floatLit(true);
          E r = combine(op(cap) + " * tanh(s / " + op(cap) + ")", Ty::Float, {&cap});
          return r;
        },
        [&] { E r = combine("s + 0.5 * (k - q)", Ty::Float, {}); return r; },
        [&] { E r = combine("q == k ? s : s - 1.0", Ty::Float, {}); return r; },
        [&] { E r = combine("q - k", Ty::Int, {}); return r; },
        [&] { return genNum(int(pick(1, 4)), c); },
        [&] { return genFloat(int(pick(1, 4)), c); },
    };
    if (options_.fp32Scores) // the s-based rules and q - k (the first is a random leaf)
      opts = std::vector<std::function<E()>>(opts.begin() + 1, opts.begin() + 5);
    for (size_t i = 0; i < inputs_.size(); ++i)
      if (inputs_[i].elem == F32 && inputUsable(inputs_[i], c))
        opts.push_back([&, i] {
          E a = readRandom(i);
          return combine("s + " + a.t + " * (k - q)", Ty::Float, {&a});
        });
    return any(opts)();
  }

  /// A positive finite constant for `scale`.
  E genScale(const Ctx &c) {
    for (int attempt = 0; attempt < 10; ++attempt) {
      E e;
      switch (options_.fp32Scores ? pick(1, 2) : pick(0, 4)) {
      case 0: e = floatLit(); break;
      case 1: {
        E d = intLit(1, 256);
        e = combine("1.0 / sqrt(" + d.t + ".0)", Ty::Float, {&d});
        e.cv = CV::ofFloat(1.0 / std::sqrt(double(d.cv->i)));
        break;
      }
      case 2: e = intLit(1, 8); break;
      default: e = genNum(2, c); break;
      }
      if (e.cv && e.cv->ty != Ty::Bool && std::isfinite(e.cv->d()) && e.cv->d() > 0) {
        pinAll(e);
        return e;
      }
    }
    E fallback = combine("0.125", Ty::Float, {}, true);
    fallback.cv = CV::ofFloat(0.125);
    return fallback;
  }

  void pinAll(const E &e) {
    for (size_t i = 0; i < params_.size(); ++i)
      if (e.params >> i & 1)
        params_[i].pinned = true;
  }

  /// A constant int expression with a value in [lo, hi].
  E constIn(int64_t lo, int64_t hi, const Ctx &c) {
    E e = constInt(lo, hi, c);
    if (chance(0.2)) {
      E one = intLit(0, 0);
      E r = combine(op(e) + " + " + one.t, Ty::Int, {&e, &one});
      r.cv = e.cv;
      e = r;
    }
    pinAll(e);
    return e;
  }

  std::string genSelect(const Ctx &cSel) {
    Ctx constCtx;
    E K = constIn(1, 64, constCtx);
    std::string s = "select topk(" + K.t + ") by ";
    if (chance(0.5)) {
      std::vector<std::string> settings = {"heads = " + constIn(1, 8, constCtx).t, "dim = " + constIn(1, 16, constCtx).t};
      if (chance(0.6)) {
        static const char *const dts[] = {"fp8", "bf16", "fp16", "fp32"};
        settings.push_back(std::string("dtype = ") + dts[pick(0, 3)]);
      }
      std::shuffle(settings.begin(), settings.end(), rng_);
      s += "indexer(";
      for (size_t i = 0; i < settings.size(); ++i)
        s += (i ? ", " : "") + settings[i];
      return s + ");";
    }
    std::vector<std::function<E()>> opts = {
        [&] { return combine("-abs(q - k)", Ty::Int, {}); },
        [&] { return combine("k", Ty::Int, {}, true); },
        [&] { return genNum(int(pick(1, 3)), cSel); },
    };
    for (size_t i = 0; i < inputs_.size(); ++i)
      if (inputs_[i].ty() != Ty::Bool && inputUsable(inputs_[i], cSel))
        opts.push_back([&, i] { return readRandom(i); });
    return s + any(opts)().t + ";";
  }

  std::string genLet(int index) {
    Ctx c;
    c.positions = c.head = c.batch = c.inputs = c.lets = true;
    Let l;
    l.name = freshLetName(index);
    int64_t r = pick(0, 99);
    Ty ty = r < 45 ? Ty::Int : r < 80 ? Ty::Bool : Ty::Float;
    E e = ty == Ty::Bool && chance(0.4) ? maskAtom(c) : gen(ty, int(pick(0, 3)), c);
    l.ty = e.ty;
    l.readsH = e.readsH;
    l.hasFloat = e.hasFloat;
    l.params = e.params;
    lets_.push_back(l);
    return "let " + l.name + " = " + e.t + ";";
  }

  std::string genVariant(const std::string &name) {
    lets_.clear();
    letNames_.clear();
    bool selects = chance(0.08) && options_.selections; // a program with one gets no kernels (select has none yet)
    // Masks: no floats; no h when the variant selects.
    Ctx mask;
    mask.positions = mask.batch = mask.inputs = mask.lets = true;
    mask.head = !selects;
    mask.floats = false;
    mask.hiddenFloatLets = false; // an int or bool let computed from floats is a float in the mask
    Ctx score = Ctx{};
    score.positions = score.head = score.batch = score.inputs = score.lets = score.score = true;
    Ctx sel;
    sel.positions = sel.batch = sel.inputs = sel.lets = true;
    sel.hLets = false;

    std::vector<std::string> clauses;
    int nMasks = int(pick(0, 3));
    for (int i = 0; i < nMasks; ++i)
      clauses.push_back("mask");
    if (chance(0.4))
      clauses.push_back("score");
    if (chance(0.25))
      clauses.push_back("scale");
    if (chance(0.3))
      clauses.push_back("sink");
    if (selects)
      clauses.push_back("select");
    std::shuffle(clauses.begin(), clauses.end(), rng_);
    int nLets = int(pick(0, 3)), lets = 0;
    std::vector<std::string> body;
    for (const std::string &cl : clauses) {
      while (lets < nLets && chance(0.5))
        body.push_back(genLet(lets++));
      if (cl == "mask")
        body.push_back("mask " + genMask(mask).t + ";");
      else if (cl == "score")
        body.push_back("score " + genScore(score).t + ";");
      else if (cl == "scale")
        body.push_back("scale " + genScale(Ctx{}).t + ";");
      else if (cl == "sink")
        body.push_back("sink;");
      else
        body.push_back(genSelect(sel));
    }
    while (lets < nLets)
      body.push_back(genLet(lets++));
    std::string s = "attention " + name + " {";
    if (body.empty())
      return s + " }";
    bool multiline = chance(0.7);
    for (const std::string &b : body)
      s += (multiline ? "\n  " : " ") + b;
    return s + (multiline ? "\n}" : " }");
  }

  // --- models ---------------------------------------------------------------------

  /// A layer rule's value: a variant, or `cond ? value : value`.
  std::string layerValue(int depth, const Ctx &c) {
    if (depth <= 0 || chance(0.35))
      return any(variantNames_);
    E cnd = genBool(int(pick(1, 2)), c);
    std::string a = layerValue(depth - 1, c), b = layerValue(depth - 1, c);
    if (a.find('?') != std::string::npos)
      a = "(" + a + ")";
    return op(cnd) + " ? " + a + " : " + b;
  }

  std::string genModel(const std::string &name) {
    Ctx constCtx;
    constCtx.floats = chance(0.2);
    constCtx.runtimeDivisors = false;
    E n = constIn(1, 40, constCtx);
    int64_t N = n.cv->i;
    std::string s = "model " + name + " {\n  layers " + n.t + ";\n";
    auto forAll = [&] {
      std::string v;
      for (const char *cand : {"i", "j", "L", "n", "idx"})
        if (!topNames_.count(cand)) {
          v = cand;
          break;
        }
      if (v.empty())
        v = "layer_var";
      Ctx c = constCtx;
      c.layerVar = v;
      // Conditions over the layer variable: `i % 3 == 0`, `(i + 1) % 6 == 0`, ...
      std::string value;
      if (chance(0.5)) {
        E m = constInt(1, 6, constCtx), r = intLit(0, 5);
        value = "(" + v + (chance(0.5) ? "" : " + 1") + ") % " + op(m) + " == " + r.t + " ? " + any(variantNames_) +
                " : " + layerValue(1, c);
        pinAll(m);
      } else {
        value = layerValue(3, c);
      }
      return "  layer " + v + ": " + value + ";\n";
    };
    if (chance(0.6))
      s += forAll();
    else
      s += "  layer 0.." + std::to_string(N - 1) + ": " + any(variantNames_) + ";\n";
    int overrides = int(pick(0, 3));
    for (int r = 0; r < overrides; ++r) {
      switch (pick(0, 3)) {
      case 0: s += forAll(); break;
      case 1: {
        int64_t a = pick(0, N - 1), b = pick(a, N - 1);
        s += "  layer " + std::to_string(a) + ".." + std::to_string(b) + ": " + any(variantNames_) + ";\n";
        break;
      }
      case 2: {
        // A single layer, maybe through a param: `layer (p): v;`.
        E a = constIn(0, N - 1, Ctx{});
        std::string idx = a.params && chance(0.7) ? "(" + a.t + ")" : std::to_string(a.cv->i);
        s += "  layer " + idx + ": " + any(variantNames_) + ";\n";
        break;
      }
      default: {
        // A constant condition: `layer 2: flag ? a : b;`.
        E cnd = genBool(1, Ctx{});
        int64_t a = pick(0, N - 1);
        s += "  layer " + std::to_string(a) + ": " + op(cnd) + " ? " + any(variantNames_) + " : " +
             any(variantNames_) + ";\n";
        break;
      }
      }
    }
    return s + "}";
  }
};

} // namespace

GeneratedProgram generateProgram(uint64_t seed, const GeneratorOptions &options) {
  return Generator(seed, options).run();
}

} // namespace attnc::testgen

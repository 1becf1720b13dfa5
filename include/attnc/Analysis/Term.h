//===- Term.h - Symbolic integer/boolean terms of a mask --------*- C++ -*-===//
//
// The tile analysis reasons about a mask as a small symbolic term over the
// variables q, k, h, b, qlen, klen and input reads. Terms are immutable and
// shared (a normal form reuses subterms), built through the `T::` factory
// functions which fold constants as they go. Every term can be evaluated
// over a box of variable ranges with interval arithmetic (`evalRange`): the
// result is a sound enclosure, exact for monotone terms. Boolean terms
// evaluate to [0,0] (false), [1,1] (true) or [0,1] (unknown).
//
// This file knows nothing about MLIR: MaskTerms.cpp builds terms from the
// attn dialect's mask region; the kernel generator materialises the bound
// terms the analysis derives as arith ops.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace attnc::analysis {

/// The index variables a mask can read.
enum class Var { Q, K, H, B, QLen, KLen };
const char *varName(Var v);

struct Term;
using TermPtr = std::shared_ptr<const Term>;

/// A term. Integer kinds: Const .. Select; boolean kinds: BoolConst .. Not.
struct Term {
  enum class Kind {
    Const, Var, Input, Add, Sub, Mul, FloorDiv, FloorMod, Min, Max, Abs, Neg, Select,
    BoolConst, Lt, Le, Eq, Ne, And, Or, Not
  };
  Kind kind;
  int64_t value = 0;            ///< Const; BoolConst (0/1)
  Var var = Var::Q;             ///< Var
  std::string input;            ///< Input: the tensor's name
  std::vector<Var> inputIndex;  ///< Input: the variable indexing each axis
  unsigned inputBits = 64;      ///< Input: the element's width (1: bool, 32: i32, 64: i64)
  std::vector<TermPtr> args;

  bool isBool() const { return kind >= Kind::BoolConst; }
  bool isConst() const { return kind == Kind::Const || kind == Kind::BoolConst; }
  /// True if the term reads `v` (directly or through an input index).
  bool reads(Var v) const;
  /// True if the term reads any input tensor.
  bool readsInput() const;
  /// Source-like rendering, e.g. "max(q - 63, 0)".
  std::string str() const;
};

/// Saturating "infinity" for interval bounds (far beyond any position).
constexpr int64_t kInf = int64_t(1) << 60;

/// A closed integer interval [lo, hi]; empty when lo > hi.
struct Range {
  int64_t lo = -kInf, hi = kInf;
  static Range point(int64_t v) { return {v, v}; }
  static Range all() { return {-kInf, kInf}; }
  bool empty() const { return lo > hi; }
  bool isTrue() const { return lo == 1 && hi == 1; }
  bool isFalse() const { return lo == 0 && hi == 0; }
};

/// Ranges of the variables and inputs for one evaluation.
struct Box {
  Range q = Range::all(), k = Range::all(), h{0, kInf}, b{0, kInf}, qlen{1, kInf}, klen{1, kInf};
  /// The range of an input's values over the box's positions. Unset: the
  /// whole value range (nothing known).
  std::function<Range(const Term &read)> input;
  Range of(Var v) const;
};

/// What the analysis may assume of the run-time values (the runtime checks
/// positions and lengths: ArgCheck.cpp): positions q and k within +-2^41
/// (offsets and lengths within 2^40), h and b below 2^31, input values
/// within their element type.
constexpr int64_t kLengthLimit = int64_t(1) << 40;

/// The largest |value| an integer term can take within those limits,
/// saturating at 2^63 (i64 inputs, huge constants, products that may wrap).
uint64_t magnitude(const Term &t);

/// True if an arithmetic node (+ - * neg abs / %) cannot leave +-kInf: its
/// value and its operands' values stay below 2^60 in magnitude, so the
/// language's wrapping i64 arithmetic never wraps and interval arithmetic
/// (which saturates at kInf) is exact. A node that fails is evaluated as
/// unknown by evalRange and the kernels' interval code (a sound enclosure
/// whatever the i64 result); leaves, comparisons, min/max/select and the
/// logic never fail (they only move values).
bool arithmeticInLimits(const Term &t);

/// True if interval evaluation at a single point (q, h, b, lengths and
/// inputs without a token axis fixed) gives the term's exact value: every
/// arithmetic node within limits, divisors and one factor of each product
/// constant, and no input read at a token position.
bool exactAtPoint(const Term &t);

/// Interval evaluation: a sound enclosure of the term's values over `box`.
Range evalRange(const Term &t, const Box &box);

/// Exact evaluation at a point (every variable a single value; inputs via
/// `box.input` returning a point).
int64_t evalPoint(const Term &t, const Box &box);

/// Factory functions; they fold constants and simple identities.
namespace T {
TermPtr constant(int64_t v);
TermPtr boolean(bool v);
TermPtr var(Var v);
TermPtr input(std::string name, std::vector<Var> index, unsigned bits = 64);
TermPtr add(TermPtr a, TermPtr b);
TermPtr sub(TermPtr a, TermPtr b);
TermPtr mul(TermPtr a, TermPtr b);
TermPtr neg(TermPtr a);
TermPtr floorDiv(TermPtr a, TermPtr b);
TermPtr floorMod(TermPtr a, TermPtr b);
TermPtr min(TermPtr a, TermPtr b);
TermPtr max(TermPtr a, TermPtr b);
TermPtr abs(TermPtr a);
TermPtr select(TermPtr c, TermPtr a, TermPtr b);
TermPtr lt(TermPtr a, TermPtr b);
TermPtr le(TermPtr a, TermPtr b);
TermPtr eq(TermPtr a, TermPtr b);
TermPtr ne(TermPtr a, TermPtr b);
TermPtr land(TermPtr a, TermPtr b);
TermPtr lor(TermPtr a, TermPtr b);
TermPtr lnot(TermPtr a);
} // namespace T

/// Floor division and modulo (b != 0), as the language defines them.
int64_t floorDivInt(int64_t a, int64_t b);
int64_t floorModInt(int64_t a, int64_t b);

} // namespace attnc::analysis

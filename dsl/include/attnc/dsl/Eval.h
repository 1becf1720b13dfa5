//===- Eval.h - Evaluate checked expressions --------------------*- C++ -*-===//
//
// A plain interpreter over checked expressions, with the language's exact
// semantics (floor division and modulo, int/float promotion). It is the
// single definition of meaning shared by the reference executor, the
// brute-force checks of tile classification and `--emit=mask`; it knows
// nothing about tiles or kernels.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "attnc/dsl/Sema.h"

#include <cstdint>
#include <stdexcept>

namespace attnc::dsl {

/// Reading an input tensor element failed (index out of range, ...).
struct EvalError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Supplies input tensor elements to the evaluator.
class InputReader {
public:
  virtual ~InputReader() = default;
  /// Element of input `input` (index into Program::inputs) at `indices`
  /// (one per declared axis, already the values of b/h/position). Throws
  /// EvalError when out of range.
  virtual Value read(int input, const int64_t *indices) const = 0;
};

/// The values of the index variables for one (b, h, q, k) pair.
struct EvalEnv {
  int64_t q = 0, k = 0, h = 0, b = 0, qlen = 1, klen = 1;
  int64_t layer = 0;   ///< the `layer i:` variable
  double s = 0.0;      ///< the score, inside `score`
  const CheckedProgram *program = nullptr;
  const AttentionDecl *variant = nullptr; ///< for `let` references
  const InputReader *inputs = nullptr;
};

/// Floor division and modulo as the language defines them (b != 0).
int64_t floorDiv(int64_t a, int64_t b);
int64_t floorMod(int64_t a, int64_t b);

/// Evaluates a checked expression. Throws EvalError on a bad input read or a
/// division by zero at run time.
Value evaluate(const Expr &e, const EvalEnv &env);

/// The mask of `variant` (AND of its clauses; true with none).
bool evalMask(const AttentionDecl &variant, const EvalEnv &env);
/// The rewritten score for raw score `s` (s itself without a score clause).
double evalScore(const AttentionDecl &variant, const EvalEnv &env, double s);
/// The selection score of `select topk(K) by EXPR`, as a double.
double evalSelectScore(const AttentionDecl &variant, const EvalEnv &env);

/// The rewritten score and its derivative d(score)/ds at raw score `s`, by
/// forward-mode dual numbers over the same expression (for the reference's
/// gradients). `value` equals evalScore(variant, env, s) exactly: the value
/// half reuses evaluate()'s arithmetic and branch choices. Rules: + - * /
/// and unary - as usual; tanh' = 1 - tanh^2, exp' = exp, log' = 1/x,
/// sqrt' = 1/(2 sqrt x), abs' = sign (+1 at 0); min/max/clamp and ?: take
/// the derivative of the branch evaluate() picks; comparisons, bools, ints,
/// inputs, params and q/k/h/b have derivative 0. Without a score clause:
/// {s, 1}.
struct ScoreDerivative {
  double value, dds;
};
ScoreDerivative evalScoreDerivative(const AttentionDecl &variant, const EvalEnv &env, double s);

} // namespace attnc::dsl

//===- Eval.cpp - The reference interpreter for checked expressions --------===//
#include "attnc/dsl/Eval.h"
#include "support/FloorDiv.h"

#include <cmath>
#include <string>

namespace attnc::dsl {

int64_t floorDiv(int64_t a, int64_t b) { return support::floorDiv(a, b); }
int64_t floorMod(int64_t a, int64_t b) { return support::floorMod(a, b); }

namespace {

Value numeric(double f, bool isFloat) { return isFloat ? Value::ofFloat(f) : Value::ofInt(int64_t(f)); }

Value arith(Op op, const Value &a, const Value &b) {
  if (a.type == Type::Int && b.type == Type::Int) {
    // Wrap-around on overflow, without undefined behaviour.
    uint64_t x = uint64_t(a.i), y = uint64_t(b.i);
    switch (op) {
    case Op::Add: return Value::ofInt(int64_t(x + y));
    case Op::Sub: return Value::ofInt(int64_t(x - y));
    case Op::Mul: return Value::ofInt(int64_t(x * y));
    case Op::Div:
    case Op::Mod:
      if (b.i == 0)
        throw EvalError(op == Op::Div ? "integer division by zero" : "integer modulo by zero");
      if (a.i == INT64_MIN && b.i == -1)
        return Value::ofInt(op == Op::Div ? INT64_MIN : 0);
      return Value::ofInt(op == Op::Div ? floorDiv(a.i, b.i) : floorMod(a.i, b.i));
    default: break;
    }
  }
  double x = a.asDouble(), y = b.asDouble();
  switch (op) {
  case Op::Add: return Value::ofFloat(x + y);
  case Op::Sub: return Value::ofFloat(x - y);
  case Op::Mul: return Value::ofFloat(x * y);
  case Op::Div: return Value::ofFloat(x / y);
  default: break;
  }
  throw EvalError(std::string("bad arithmetic operator ") + opSpelling(op));
}

bool compare(Op op, const Value &a, const Value &b) {
  if (a.type == Type::Bool || b.type == Type::Bool) {
    bool eq = a.b == b.b;
    return op == Op::Eq ? eq : !eq;
  }
  if (a.type == Type::Int && b.type == Type::Int) {
    switch (op) {
    case Op::Lt: return a.i < b.i;
    case Op::Le: return a.i <= b.i;
    case Op::Gt: return a.i > b.i;
    case Op::Ge: return a.i >= b.i;
    case Op::Eq: return a.i == b.i;
    case Op::Ne: return a.i != b.i;
    default: break;
    }
  }
  double x = a.asDouble(), y = b.asDouble();
  switch (op) {
  case Op::Lt: return x < y;
  case Op::Le: return x <= y;
  case Op::Gt: return x > y;
  case Op::Ge: return x >= y;
  case Op::Eq: return x == y;
  case Op::Ne: return x != y;
  default: break;
  }
  return false;
}

Value call(Builtin fn, const Expr &e, const EvalEnv &env) {
  Value a = evaluate(*e.operands[0], env);
  bool isFloat = e.type == Type::Float;
  switch (fn) {
  case Builtin::Abs:
    if (a.type == Type::Int)
      return Value::ofInt(a.i < 0 ? int64_t(0 - uint64_t(a.i)) : a.i);
    return Value::ofFloat(std::fabs(a.f));
  case Builtin::Min:
  case Builtin::Max: {
    Value b = evaluate(*e.operands[1], env);
    bool less = compare(Op::Lt, a, b);
    const Value &pick = (fn == Builtin::Min) == less ? a : b;
    return isFloat ? Value::ofFloat(pick.asDouble()) : pick;
  }
  case Builtin::Clamp: {
    Value lo = evaluate(*e.operands[1], env), hi = evaluate(*e.operands[2], env);
    Value r = compare(Op::Lt, a, lo) ? lo : a;
    r = compare(Op::Gt, r, hi) ? hi : r;
    return isFloat ? Value::ofFloat(r.asDouble()) : r;
  }
  case Builtin::Tanh: return Value::ofFloat(std::tanh(a.asDouble()));
  case Builtin::Exp: return Value::ofFloat(std::exp(a.asDouble()));
  case Builtin::Log: return Value::ofFloat(std::log(a.asDouble()));
  case Builtin::Sqrt: return Value::ofFloat(std::sqrt(a.asDouble()));
  }
  return numeric(0, isFloat);
}

} // namespace

Value evaluate(const Expr &e, const EvalEnv &env) {
  switch (e.kind) {
  case Expr::Kind::IntLit: return Value::ofInt(e.intValue);
  case Expr::Kind::FloatLit: return Value::ofFloat(e.floatValue);
  case Expr::Kind::BoolLit: return Value::ofBool(e.boolValue);
  case Expr::Kind::Name:
    switch (e.ref) {
    case RefKind::VarQ: return Value::ofInt(env.q);
    case RefKind::VarK: return Value::ofInt(env.k);
    case RefKind::VarH: return Value::ofInt(env.h);
    case RefKind::VarB: return Value::ofInt(env.b);
    case RefKind::VarQLen: return Value::ofInt(env.qlen);
    case RefKind::VarKLen: return Value::ofInt(env.klen);
    case RefKind::VarScore: return Value::ofFloat(env.s);
    case RefKind::LayerVar: return Value::ofInt(env.layer);
    case RefKind::Param:
      if (!env.program || e.refIndex < 0 || size_t(e.refIndex) >= env.program->params.size())
        throw EvalError("param '" + e.name + "' has no value");
      return env.program->params[e.refIndex];
    case RefKind::Let:
      if (!env.variant)
        throw EvalError("'" + e.name + "' evaluated outside its variant");
      return evaluate(*env.variant->lets[e.refIndex].value, env);
    case RefKind::Variant:
    case RefKind::Unresolved: break;
    }
    throw EvalError("'" + e.name + "' has no value here");
  case Expr::Kind::Index: {
    if (!env.inputs || !env.program)
      throw EvalError("input '" + e.name + "' is not available");
    int64_t idx[8];
    size_t n = std::min<size_t>(e.operands.size(), 8);
    for (size_t i = 0; i < n; ++i)
      idx[i] = evaluate(*e.operands[i], env).i;
    return env.inputs->read(e.refIndex, idx);
  }
  case Expr::Kind::Call: return call(e.builtin, e, env);
  case Expr::Kind::Unary: {
    Value a = evaluate(*e.operands[0], env);
    if (e.op == Op::Not)
      return Value::ofBool(!a.b);
    return a.type == Type::Int ? Value::ofInt(int64_t(0 - uint64_t(a.i))) : Value::ofFloat(-a.f);
  }
  case Expr::Kind::Cond: {
    Value c = evaluate(*e.operands[0], env);
    Value r = evaluate(*e.operands[c.b ? 1 : 2], env);
    return e.type == Type::Float ? Value::ofFloat(r.asDouble()) : r;
  }
  case Expr::Kind::Binary: {
    if (e.op == Op::And || e.op == Op::Or) {
      bool a = evaluate(*e.operands[0], env).b;
      if (e.op == Op::And ? !a : a)
        return Value::ofBool(a);
      return Value::ofBool(evaluate(*e.operands[1], env).b);
    }
    Value a = evaluate(*e.operands[0], env), b = evaluate(*e.operands[1], env);
    switch (e.op) {
    case Op::Lt:
    case Op::Le:
    case Op::Gt:
    case Op::Ge:
    case Op::Eq:
    case Op::Ne: return Value::ofBool(compare(e.op, a, b));
    default: return arith(e.op, a, b);
    }
  }
  }
  throw EvalError("unknown expression");
}

bool evalMask(const AttentionDecl &variant, const EvalEnv &env) {
  for (const ExprPtr &m : variant.masks)
    if (!evaluate(*m, env).b)
      return false;
  return true;
}

double evalScore(const AttentionDecl &variant, const EvalEnv &env, double s) {
  if (!variant.score)
    return s;
  EvalEnv withScore = env;
  withScore.s = s;
  return evaluate(*variant.score, withScore).asDouble();
}

double evalSelectScore(const AttentionDecl &variant, const EvalEnv &env) {
  if (!variant.select || !variant.select->byExpr)
    throw EvalError("the variant has no 'select ... by EXPR'");
  return evaluate(*variant.select->byExpr, env).asDouble();
}

//===----------------------------------------------------------------------===//
// d(score)/ds by forward-mode dual numbers (Eval.h: evalScoreDerivative).
// The value half of every node is computed with the same helpers as
// evaluate() (arith, compare, the same branch choices), so branches taken
// here are exactly evaluate()'s; nodes that cannot depend on `s` (ints,
// bools, inputs, q/k/h/b, params) go through evaluate() with derivative 0.
//===----------------------------------------------------------------------===//

namespace {

struct Dual {
  Value v;
  double d = 0.0;
};

Dual dual(const Expr &e, const EvalEnv &env);

Dual constant(const Expr &e, const EvalEnv &env) { return {evaluate(e, env), 0.0}; }

Dual dualCall(const Expr &e, const EvalEnv &env) {
  bool isFloat = e.type == Type::Float;
  Dual a = dual(*e.operands[0], env);
  switch (e.builtin) {
  case Builtin::Abs:
    if (a.v.type == Type::Int)
      return {Value::ofInt(a.v.i < 0 ? int64_t(0 - uint64_t(a.v.i)) : a.v.i), 0.0};
    return {Value::ofFloat(std::fabs(a.v.f)), a.v.f < 0 ? -a.d : a.d};
  case Builtin::Min:
  case Builtin::Max: {
    Dual b = dual(*e.operands[1], env);
    bool less = compare(Op::Lt, a.v, b.v);
    const Dual &pick = (e.builtin == Builtin::Min) == less ? a : b;
    return {isFloat ? Value::ofFloat(pick.v.asDouble()) : pick.v, isFloat ? pick.d : 0.0};
  }
  case Builtin::Clamp: {
    Dual lo = dual(*e.operands[1], env), hi = dual(*e.operands[2], env);
    Dual r = compare(Op::Lt, a.v, lo.v) ? lo : a;
    r = compare(Op::Gt, r.v, hi.v) ? hi : r;
    return {isFloat ? Value::ofFloat(r.v.asDouble()) : r.v, isFloat ? r.d : 0.0};
  }
  case Builtin::Tanh: {
    double t = std::tanh(a.v.asDouble());
    return {Value::ofFloat(t), (1.0 - t * t) * a.d};
  }
  case Builtin::Exp: {
    double x = std::exp(a.v.asDouble());
    return {Value::ofFloat(x), x * a.d};
  }
  case Builtin::Log: {
    double x = a.v.asDouble();
    return {Value::ofFloat(std::log(x)), a.d / x};
  }
  case Builtin::Sqrt: {
    double r = std::sqrt(a.v.asDouble());
    return {Value::ofFloat(r), a.d / (2.0 * r)};
  }
  }
  return constant(e, env);
}

Dual dual(const Expr &e, const EvalEnv &env) {
  switch (e.kind) {
  case Expr::Kind::Name:
    if (e.ref == RefKind::VarScore)
      return {Value::ofFloat(env.s), 1.0};
    if (e.ref == RefKind::Let && env.variant)
      return dual(*env.variant->lets[e.refIndex].value, env);
    return constant(e, env);
  case Expr::Kind::Call: return dualCall(e, env);
  case Expr::Kind::Unary: {
    if (e.op == Op::Not)
      return constant(e, env);
    Dual a = dual(*e.operands[0], env);
    if (a.v.type == Type::Int)
      return {Value::ofInt(int64_t(0 - uint64_t(a.v.i))), 0.0};
    return {Value::ofFloat(-a.v.f), -a.d};
  }
  case Expr::Kind::Cond: {
    Value c = evaluate(*e.operands[0], env);
    Dual r = dual(*e.operands[c.b ? 1 : 2], env);
    return e.type == Type::Float ? Dual{Value::ofFloat(r.v.asDouble()), r.d} : Dual{r.v, 0.0};
  }
  case Expr::Kind::Binary: {
    if (e.op == Op::And || e.op == Op::Or)
      return constant(e, env);
    switch (e.op) {
    case Op::Lt:
    case Op::Le:
    case Op::Gt:
    case Op::Ge:
    case Op::Eq:
    case Op::Ne: return constant(e, env);
    default: break;
    }
    Dual a = dual(*e.operands[0], env), b = dual(*e.operands[1], env);
    Value r = arith(e.op, a.v, b.v);
    if (r.type != Type::Float)
      return {r, 0.0};
    double x = a.v.asDouble(), y = b.v.asDouble(), d = 0.0;
    switch (e.op) {
    case Op::Add: d = a.d + b.d; break;
    case Op::Sub: d = a.d - b.d; break;
    case Op::Mul: d = a.d * y + x * b.d; break;
    case Op::Div: d = (a.d - (x / y) * b.d) / y; break;
    default: break;
    }
    return {r, d};
  }
  default: return constant(e, env);
  }
}

} // namespace

ScoreDerivative evalScoreDerivative(const AttentionDecl &variant, const EvalEnv &env, double s) {
  if (!variant.score)
    return {s, 1.0};
  EvalEnv withScore = env;
  withScore.s = s;
  Dual r = dual(*variant.score, withScore);
  return {r.v.asDouble(), r.d};
}

} // namespace attnc::dsl

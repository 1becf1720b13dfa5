//===- Sema.cpp - Names, types, constants and schedules -------------------===//
//
// The checker walks the program once, in source order:
//   1. declarations: one namespace for params, inputs, variants and models;
//      built-in variable names (q, k, h, b, qlen, klen, s) cannot be reused;
//   2. params: constant expressions of earlier params, then -D overrides;
//   3. variants: lets, masks, score, scale, select, each in its own scope
//      (what names it may read) with types checked bottom-up;
//   4. models: layer count, rules, and the resolved layer table;
//   5. warnings: unused params, masks that are always false.
//
//===----------------------------------------------------------------------===//
#include "attnc/dsl/Sema.h"
#include "attnc/dsl/Eval.h"
#include "attnc/dsl/Parser.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

namespace attnc::dsl {

std::string Value::str() const {
  switch (type) {
  case Type::Int: return std::to_string(i);
  case Type::Float: {
    // The shortest decimal that reads back as the same double.
    char buf[64];
    for (int prec = 6; prec <= 17; ++prec) {
      std::snprintf(buf, sizeof buf, "%.*g", prec, f);
      if (std::strtod(buf, nullptr) == f)
        break;
    }
    std::string s = buf;
    if (s.find_first_of(".einf") == std::string::npos)
      s += ".0";
    return s;
  }
  case Type::Bool: return b ? "true" : "false";
  case Type::Unknown: break;
  }
  return "<unknown>";
}

int CheckedProgram::findVariant(const std::string &name) const {
  for (size_t i = 0; i < ast.attentions.size(); ++i)
    if (ast.attentions[i].name == name)
      return int(i);
  return -1;
}
int CheckedProgram::findModel(const std::string &name) const {
  for (size_t i = 0; i < ast.models.size(); ++i)
    if (ast.models[i].name == name)
      return int(i);
  return -1;
}
int CheckedProgram::findInput(const std::string &name) const {
  for (size_t i = 0; i < ast.inputs.size(); ++i)
    if (ast.inputs[i].name == name)
      return int(i);
  return -1;
}

namespace {

/// What an expression may read, by where it appears.
struct Scope {
  const char *what;            ///< "a mask", "a score", ... for messages
  bool positions = false;      ///< q k qlen klen
  bool head = false;           ///< h
  bool batch = false;          ///< b
  bool score = false;          ///< s
  bool inputs = false;         ///< input tensors
  bool lets = false;           ///< the variant's lets
  bool floatMath = true;       ///< tanh exp log sqrt and float values
  bool variants = false;       ///< variant names (layer rules)
  const std::string *layerVar = nullptr;
  uint32_t before = UINT32_MAX; ///< lets/params must be declared before this offset
};

/// Facts gathered while checking one expression.
struct Uses {
  bool head = false, batch = false, vars = false;
  bool floats = false; ///< some part is a float (a literal, param, input, function or let)
  std::set<int> inputs;
};

const std::vector<std::string> kBuiltinVars = {"q", "k", "h", "b", "qlen", "klen", "s"};
const std::vector<std::string> kBuiltinFns = {"abs", "min", "max", "clamp", "tanh", "exp", "log", "sqrt"};

bool isNumeric(Type t) { return t == Type::Int || t == Type::Float; }

class Checker {
public:
  Checker(Program &p, DiagnosticEngine &d) : prog_(p), diags_(d) {}

  std::optional<CheckedProgram> run(const std::vector<ParamOverride> &overrides) {
    declareNames();
    checkParams(overrides);
    variants_.resize(prog_.attentions.size());
    for (size_t i = 0; i < prog_.attentions.size(); ++i)
      checkVariant(int(i));
    models_.resize(prog_.models.size());
    for (size_t i = 0; i < prog_.models.size(); ++i)
      checkModel(int(i));
    if (prog_.attentions.empty() && diags_.errorCount() == 0)
      diags_.error({0, 0}, "expected at least one 'attention' variant in the file");
    warnUnusedParams();
    if (diags_.errorCount() > 0)
      return std::nullopt;
    CheckedProgram out;
    out.ast = std::move(prog_);
    out.params = std::move(params_);
    out.paramOverridden = std::move(overridden_);
    out.variants = std::move(variants_);
    out.models = std::move(models_);
    return out;
  }

private:
  Program &prog_;
  DiagnosticEngine &diags_;
  std::vector<Value> params_;
  std::vector<bool> overridden_, paramUsed_, paramChecked_;
  std::vector<VariantInfo> variants_;
  std::vector<ModelInfo> models_;
  std::map<std::string, SourceRange> declared_;
  const AttentionDecl *curVariant_ = nullptr;
  std::vector<Uses> letUses_;
  CheckedProgram standIn_; ///< holds param values for constant evaluation

  // --- 1. declarations ------------------------------------------------------

  void declare(const std::string &name, SourceRange r, const char *kind) {
    if (std::find(kBuiltinVars.begin(), kBuiltinVars.end(), name) != kBuiltinVars.end()) {
      diags_.error(r, std::string("'") + name + "' is a built-in variable and cannot name a " + kind);
      return;
    }
    auto [it, inserted] = declared_.emplace(name, r);
    if (!inserted) {
      diags_.error(r, std::string("redefinition of '") + name + "'");
      diags_.note(it->second, "previously defined here");
    }
  }

  void declareNames() {
    for (auto &p : prog_.params)
      declare(p.name, p.nameRange, "param");
    for (auto &in : prog_.inputs) {
      declare(in.name, in.nameRange, "input");
      for (size_t i = 0; i < in.axes.size(); ++i)
        for (size_t j = 0; j < i; ++j)
          if (in.axes[i] == in.axes[j] && in.axes[i] != Axis::Token)
            diags_.error(in.axisRanges[i], std::string("input '") + in.name + "' has two '" +
                                               axisName(in.axes[i]) + "' axes");
    }
    for (auto &a : prog_.attentions)
      declare(a.name, a.nameRange, "variant");
    for (auto &m : prog_.models)
      declare(m.name, m.nameRange, "model");
  }

  // --- 2. params --------------------------------------------------------------

  void checkParams(const std::vector<ParamOverride> &overrides) {
    size_t n = prog_.params.size();
    params_.assign(n, Value{});
    overridden_.assign(n, false);
    paramUsed_.assign(n, false);
    paramChecked_.assign(n, false);
    // Overrides, by param; unknown names are reported up front.
    std::map<size_t, const ParamOverride *> byParam;
    for (const ParamOverride &o : overrides) {
      auto it = std::find_if(prog_.params.begin(), prog_.params.end(),
                             [&](const ParamDecl &p) { return p.name == o.name; });
      if (it == prog_.params.end()) {
        std::vector<std::string> names;
        for (auto &p : prog_.params)
          names.push_back(p.name);
        std::string hint = closestMatch(o.name, names);
        diags_.errorUnlocated("-D " + o.name + "=" + o.value + ": no param named '" + o.name +
                              "' in " + diags_.file().name() +
                              (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
        continue;
      }
      byParam[size_t(it - prog_.params.begin())] = &o;
    }
    // In source order, so a param computed from an overridden one
    // (`param half = window / 2`) sees the override.
    for (size_t i = 0; i < n; ++i) {
      ParamDecl &p = prog_.params[i];
      Scope s{"a param's value"};
      s.before = p.range.begin;
      Uses u;
      Type t = check(*p.value, s, u);
      if (t != Type::Unknown)
        if (auto v = constant(*p.value, "a param's value")) {
          if (v->type == Type::Float && !std::isfinite(v->f))
            diags_.error(p.value->range, "the value of param '" + p.name + "' is not finite (" + v->str() + ")");
          params_[i] = *v;
        }
      paramChecked_[i] = true;
      auto o = byParam.find(i);
      if (o == byParam.end())
        continue;
      Value &v = params_[i];
      std::optional<Value> parsed = parseValue(o->second->value, v.type);
      if (!parsed) {
        const char *article = v.type == Type::Int ? "an " : "a ";
        diags_.errorUnlocated("-D " + o->second->name + "=" + o->second->value + ": expected " +
                              (v.type == Type::Unknown ? "a value" : article + std::string(typeName(v.type))) +
                              " value for param '" + p.name + "'");
        continue;
      }
      v = *parsed;
      overridden_[i] = true;
    }
  }

  static std::optional<Value> parseValue(const std::string &text, Type t) {
    if (t == Type::Bool) {
      if (text == "true" || text == "1")
        return Value::ofBool(true);
      if (text == "false" || text == "0")
        return Value::ofBool(false);
      return std::nullopt;
    }
    if (text.empty())
      return std::nullopt;
    char *end = nullptr;
    errno = 0;
    if (t == Type::Int) {
      long long v = std::strtoll(text.c_str(), &end, 10);
      if (errno || *end)
        return std::nullopt;
      return Value::ofInt(v);
    }
    if (t == Type::Float) {
      double v = std::strtod(text.c_str(), &end);
      if (errno || *end || !std::isfinite(v))
        return std::nullopt;
      return Value::ofFloat(v);
    }
    return std::nullopt;
  }

  /// Evaluates a checked expression that reads no variables.
  std::optional<Value> constant(const Expr &e, const char *what) {
    try {
      return evalConstant(e);
    } catch (EvalError &err) {
      diags_.error(e.range, std::string("cannot evaluate ") + what + ": " + err.what());
      return std::nullopt;
    }
  }

  /// Constant evaluation needs param values; Eval reads them through a
  /// CheckedProgram, so this evaluates against a lightweight stand-in.
  Value evalConstant(const Expr &e, int64_t layer = 0) {
    standIn_.params = params_;
    EvalEnv env;
    env.program = &standIn_;
    env.layer = layer;
    return evaluate(e, env);
  }

  // --- 3. expressions ---------------------------------------------------------

  Type fail(const Expr &e, const std::string &msg) {
    diags_.error(e.range, msg);
    return Type::Unknown;
  }

  Type resolveName(Expr &e, const Scope &s, Uses &u) {
    const std::string &n = e.name;
    auto var = [&](bool allowed, RefKind ref, Type t, const char *where) -> Type {
      if (!allowed)
        return fail(e, "'" + n + "' cannot be used in " + s.what + where);
      e.ref = ref;
      u.vars = true;
      return t;
    };
    if (s.layerVar && n == *s.layerVar) {
      e.ref = RefKind::LayerVar;
      u.vars = true;
      return Type::Int;
    }
    if (n == "q")
      return var(s.positions, RefKind::VarQ, Type::Int, "");
    if (n == "k")
      return var(s.positions, RefKind::VarK, Type::Int, "");
    if (n == "qlen")
      return var(s.positions, RefKind::VarQLen, Type::Int, "");
    if (n == "klen")
      return var(s.positions, RefKind::VarKLen, Type::Int, "");
    if (n == "h") {
      u.head = true;
      return var(s.head, RefKind::VarH, Type::Int,
                 s.positions ? " (a selection is shared by all heads of a KV group)" : "");
    }
    if (n == "b") {
      u.batch = true;
      return var(s.batch, RefKind::VarB, Type::Int, "");
    }
    if (n == "s")
      return var(s.score, RefKind::VarScore, Type::Float, " ('s' is the score, only in 'score')");
    // Lets of the current variant.
    if (s.lets && curVariant_)
      for (size_t i = 0; i < curVariant_->lets.size(); ++i) {
        const LetDecl &l = curVariant_->lets[i];
        if (l.name != n)
          continue;
        if (l.range.begin >= s.before)
          return fail(e, "'" + n + "' is used before its 'let'");
        e.ref = RefKind::Let;
        e.refIndex = int(i);
        const Uses &lu = letUses_[i];
        if (lu.head && !s.head)
          return fail(e, "'" + n + "' reads 'h', which cannot be used in " + s.what);
        u.head |= lu.head;
        u.batch |= lu.batch;
        u.vars |= lu.vars;
        u.floats |= lu.floats;
        u.inputs.insert(lu.inputs.begin(), lu.inputs.end());
        Type t = l.value ? l.value->type : Type::Unknown;
        if (t == Type::Float && !s.floatMath)
          return fail(e, "'" + n + "' is a float; " + s.what + " works on int and bool values only");
        // An int or bool let computed from floats (`let big = slope[h] > 0.5;`)
        // still brings floats into a mask (language.md §5.3, §7).
        if (lu.floats && !s.floatMath)
          return fail(e, "'" + n + "' is computed from floats; " + s.what +
                             " works on int and bool values only (floats may be used in lets that a score or a "
                             "selection reads)");
        return t;
      }
    for (size_t i = 0; i < prog_.params.size(); ++i) {
      if (prog_.params[i].name != n)
        continue;
      if (!paramChecked_[i] && prog_.params[i].range.begin >= s.before)
        return fail(e, "param '" + n + "' is used before it is defined");
      e.ref = RefKind::Param;
      e.refIndex = int(i);
      paramUsed_[i] = true;
      Type t = params_[i].type;
      if (t == Type::Float && !s.floatMath)
        return fail(e, "param '" + n + "' is a float; " + s.what + " works on int and bool values only");
      return t;
    }
    if (s.variants)
      for (size_t i = 0; i < prog_.attentions.size(); ++i)
        if (prog_.attentions[i].name == n) {
          e.ref = RefKind::Variant;
          e.refIndex = int(i);
          return Type::Unknown; // variant-valued; checked by checkLayerValue
        }
    for (auto &in : prog_.inputs)
      if (in.name == n)
        return fail(e, "input '" + n + "' must be indexed, e.g. '" + n + "[" + axisHint(in) + "]'");
    for (auto &a : prog_.attentions)
      if (a.name == n)
        return fail(e, "variant '" + n + "' cannot be used in " + s.what);
    // Unknown: suggest among what this scope could read.
    std::vector<std::string> cands;
    if (s.positions)
      cands.insert(cands.end(), {"q", "k", "qlen", "klen"});
    if (s.head)
      cands.push_back("h");
    if (s.batch)
      cands.push_back("b");
    if (s.score)
      cands.push_back("s");
    if (s.layerVar)
      cands.push_back(*s.layerVar);
    for (auto &p : prog_.params)
      cands.push_back(p.name);
    if (s.lets && curVariant_)
      for (auto &l : curVariant_->lets)
        cands.push_back(l.name);
    if (s.inputs)
      for (auto &in : prog_.inputs)
        cands.push_back(in.name);
    if (s.variants)
      for (auto &a : prog_.attentions)
        cands.push_back(a.name);
    std::string hint = closestMatch(n, cands);
    return fail(e, "unknown name '" + n + "'" + (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
  }

  static std::string axisHint(const InputDecl &in) {
    std::string s;
    for (size_t i = 0; i < in.axes.size(); ++i) {
      if (i)
        s += ", ";
      s += in.axes[i] == Axis::Batch ? "b" : in.axes[i] == Axis::Head ? "h" : "q";
    }
    return s;
  }

  Type checkIndex(Expr &e, const Scope &s, Uses &u) {
    int idx = -1;
    for (size_t i = 0; i < prog_.inputs.size(); ++i)
      if (prog_.inputs[i].name == e.name)
        idx = int(i);
    if (idx < 0) {
      std::vector<std::string> names;
      for (auto &in : prog_.inputs)
        names.push_back(in.name);
      std::string hint = closestMatch(e.name, names);
      diags_.error(e.nameRange, "unknown input '" + e.name + "'" +
                                    (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
      return Type::Unknown;
    }
    const InputDecl &in = prog_.inputs[idx];
    if (!s.inputs)
      return fail(e, "input '" + in.name + "' cannot be used in " + s.what);
    e.refIndex = idx;
    if (e.operands.size() != in.axes.size())
      return fail(e, "input '" + in.name + "' has " + std::to_string(in.axes.size()) + " axes [" +
                         axisList(in) + "], got " + std::to_string(e.operands.size()) + " indices");
    bool ok = true;
    for (size_t i = 0; i < in.axes.size(); ++i) {
      Expr &a = *e.operands[i];
      bool isName = a.kind == Expr::Kind::Name;
      const char *want = in.axes[i] == Axis::Batch ? "'b'" : in.axes[i] == Axis::Head ? "'h'" : "'q' or 'k'";
      bool match = isName && ((in.axes[i] == Axis::Batch && a.name == "b") ||
                              (in.axes[i] == Axis::Head && a.name == "h") ||
                              (in.axes[i] == Axis::Token && (a.name == "q" || a.name == "k")));
      if (!match) {
        diags_.error(a.range, "axis " + std::to_string(i) + " of input '" + in.name + "' is '" +
                                  axisName(in.axes[i]) + "', indexed by " + want + "; got '" +
                                  exprText(a) + "'");
        ok = false;
        continue;
      }
      check(a, s, u);
    }
    if (!ok)
      return Type::Unknown;
    u.inputs.insert(idx);
    u.batch = true; // inputs differ per batch in general
    u.vars = true;
    switch (in.elem) {
    case ElemType::I32:
    case ElemType::I64: return Type::Int;
    case ElemType::Bool: return Type::Bool;
    case ElemType::F32:
      if (!s.floatMath)
        return fail(e, "input '" + in.name + "' holds floats; " + s.what + " works on int and bool values only");
      return Type::Float;
    }
    return Type::Unknown;
  }

  std::string axisList(const InputDecl &in) {
    std::string s;
    for (size_t i = 0; i < in.axes.size(); ++i)
      s += std::string(i ? ", " : "") + axisName(in.axes[i]);
    return s;
  }

  std::string exprText(const Expr &e) {
    const std::string &t = diags_.file().text();
    if (e.range.end > t.size() || e.range.begin >= e.range.end)
      return "?";
    return t.substr(e.range.begin, std::min<uint32_t>(e.range.end - e.range.begin, 40));
  }

  Type checkCall(Expr &e, const Scope &s, Uses &u) {
    static const std::pair<const char *, Builtin> fns[] = {
        {"abs", Builtin::Abs}, {"min", Builtin::Min}, {"max", Builtin::Max}, {"clamp", Builtin::Clamp},
        {"tanh", Builtin::Tanh}, {"exp", Builtin::Exp}, {"log", Builtin::Log}, {"sqrt", Builtin::Sqrt}};
    bool known = false;
    for (auto &[n, b] : fns)
      if (e.name == n) {
        e.builtin = b;
        known = true;
      }
    if (!known) {
      std::string hint = closestMatch(e.name, kBuiltinFns);
      diags_.error(e.nameRange, "unknown function '" + e.name + "'" +
                                    (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
      return Type::Unknown;
    }
    size_t want = e.builtin == Builtin::Clamp ? 3 : (e.builtin == Builtin::Min || e.builtin == Builtin::Max) ? 2 : 1;
    if (e.operands.size() != want)
      return fail(e, "'" + e.name + "' expects " + std::to_string(want) + " argument" + (want > 1 ? "s" : "") +
                         ", got " + std::to_string(e.operands.size()));
    bool floatFn = e.builtin == Builtin::Tanh || e.builtin == Builtin::Exp || e.builtin == Builtin::Log ||
                   e.builtin == Builtin::Sqrt;
    if (floatFn && !s.floatMath)
      return fail(e, "'" + e.name + "' is float math and cannot be used in " + s.what);
    Type result = Type::Int;
    bool ok = true;
    for (auto &a : e.operands) {
      Type t = check(*a, s, u);
      if (t == Type::Unknown) {
        ok = false;
        continue;
      }
      if (!isNumeric(t)) {
        diags_.error(a->range, "'" + e.name + "' expects an int or float argument, got " + typeName(t));
        ok = false;
      } else if (t == Type::Float)
        result = Type::Float;
    }
    if (!ok)
      return Type::Unknown;
    return floatFn ? Type::Float : result;
  }

  /// Types `e` bottom-up in scope `s`; records what it reads in `u`.
  Type check(Expr &e, const Scope &s, Uses &u) {
    Type t = checkNode(e, s, u);
    e.type = t;
    u.floats |= t == Type::Float;
    if (t == Type::Float && !s.floatMath && e.kind != Expr::Kind::Name && e.kind != Expr::Kind::Index) {
      diags_.error(e.range, std::string("float value in ") + s.what + "; it works on int and bool values only");
      e.type = Type::Unknown;
      return Type::Unknown;
    }
    return e.type;
  }

  Type checkNode(Expr &e, const Scope &s, Uses &u) {
    switch (e.kind) {
    case Expr::Kind::IntLit: return Type::Int;
    case Expr::Kind::FloatLit: return Type::Float;
    case Expr::Kind::BoolLit: return Type::Bool;
    case Expr::Kind::Name: return resolveName(e, s, u);
    case Expr::Kind::Index: return checkIndex(e, s, u);
    case Expr::Kind::Call: return checkCall(e, s, u);
    case Expr::Kind::Unary: {
      Type t = check(*e.operands[0], s, u);
      if (t == Type::Unknown)
        return t;
      if (e.op == Op::Not && t != Type::Bool)
        return fail(e, std::string("'!' expects a bool operand, got ") + typeName(t));
      if (e.op == Op::Neg && !isNumeric(t))
        return fail(e, std::string("'-' expects an int or float operand, got ") + typeName(t));
      return t;
    }
    case Expr::Kind::Cond: {
      Type c = check(*e.operands[0], s, u);
      Type a = check(*e.operands[1], s, u);
      Type b = check(*e.operands[2], s, u);
      if (c == Type::Unknown || a == Type::Unknown || b == Type::Unknown)
        return Type::Unknown;
      if (c != Type::Bool)
        return fail(*e.operands[0], std::string("the condition of '?:' must be bool, got ") + typeName(c));
      if (a == b)
        return a;
      if (isNumeric(a) && isNumeric(b))
        return Type::Float;
      return fail(e, std::string("the branches of '?:' have different types: ") + typeName(a) + " and " +
                         typeName(b));
    }
    case Expr::Kind::Binary: return checkBinary(e, s, u);
    }
    return Type::Unknown;
  }

  Type checkBinary(Expr &e, const Scope &s, Uses &u) {
    Type a = check(*e.operands[0], s, u);
    Type b = check(*e.operands[1], s, u);
    if (a == Type::Unknown || b == Type::Unknown)
      return Type::Unknown;
    std::string op = opSpelling(e.op);
    switch (e.op) {
    case Op::And:
    case Op::Or:
      if (a != Type::Bool || b != Type::Bool)
        return fail(e, "'" + op + "' expects bool operands, got " + typeName(a) + " and " + typeName(b));
      return Type::Bool;
    case Op::Eq:
    case Op::Ne:
      if (a == b || (isNumeric(a) && isNumeric(b)))
        return Type::Bool;
      return fail(e, "'" + op + "' compares values of one kind, got " + typeName(a) + " and " + typeName(b));
    case Op::Lt:
    case Op::Le:
    case Op::Gt:
    case Op::Ge:
      if (!isNumeric(a) || !isNumeric(b))
        return fail(e, "'" + op + "' expects int or float operands, got " + typeName(a) + " and " + typeName(b));
      return Type::Bool;
    case Op::Mod:
      if (a != Type::Int || b != Type::Int)
        return fail(e, "'%' expects int operands, got " + std::string(typeName(a)) + " and " + typeName(b));
      checkDivisor(e);
      return Type::Int;
    case Op::Div:
      if (!isNumeric(a) || !isNumeric(b))
        return fail(e, "'/' expects int or float operands, got " + std::string(typeName(a)) + " and " + typeName(b));
      if (a == Type::Int && b == Type::Int)
        checkDivisor(e);
      return a == Type::Int && b == Type::Int ? Type::Int : Type::Float;
    default:
      if (!isNumeric(a) || !isNumeric(b))
        return fail(e, "'" + op + "' expects int or float operands, got " + typeName(a) + " and " + typeName(b));
      return a == Type::Int && b == Type::Int ? Type::Int : Type::Float;
    }
  }

  /// An integer divisor that is a constant must not be zero.
  void checkDivisor(const Expr &e) {
    const Expr &d = *e.operands[1];
    if (readsVariables(d))
      return;
    try {
      Value v = evalConstant(d);
      if (v.type == Type::Int && v.i == 0)
        diags_.error(d.range, std::string("division by constant zero in '") + opSpelling(e.op) + "'");
    } catch (EvalError &) {
      // Reported where the divisor itself is evaluated.
    }
  }

  static bool readsVariables(const Expr &e) {
    if (e.kind == Expr::Kind::Name && e.ref != RefKind::Param)
      return true;
    if (e.kind == Expr::Kind::Index)
      return true;
    for (auto &o : e.operands)
      if (readsVariables(*o))
        return true;
    return false;
  }

  /// Checks an expression that must be a compile-time constant of type `want`.
  std::optional<Value> constantOf(Expr &e, Type want, const char *what, uint32_t before = UINT32_MAX) {
    Scope s{what};
    s.before = before;
    Uses u;
    Type t = check(e, s, u);
    if (t == Type::Unknown)
      return std::nullopt;
    if (want == Type::Float ? !isNumeric(t) : t != want) {
      diags_.error(e.range, std::string("expected ") + (want == Type::Float ? "a number" : typeName(want)) +
                                " for " + what + ", got " + typeName(t));
      return std::nullopt;
    }
    return constant(e, what);
  }

  // --- variants -----------------------------------------------------------------

  void checkVariant(int vi) {
    AttentionDecl &a = prog_.attentions[vi];
    VariantInfo &info = variants_[vi];
    curVariant_ = &a;
    letUses_.assign(a.lets.size(), Uses{});
    std::set<std::string> letNames;
    std::set<int> inputs;
    for (size_t i = 0; i < a.lets.size(); ++i) {
      LetDecl &l = a.lets[i];
      if (std::find(kBuiltinVars.begin(), kBuiltinVars.end(), l.name) != kBuiltinVars.end())
        diags_.error(l.nameRange, "'" + l.name + "' is a built-in variable and cannot be redefined");
      else if (!letNames.insert(l.name).second)
        diags_.error(l.nameRange, "redefinition of '" + l.name + "' in attention '" + a.name + "'");
      else if (declared_.count(l.name))
        diags_.error(l.nameRange, "'" + l.name + "' is already defined at the top level");
      Scope s{"a let"};
      s.positions = s.head = s.batch = s.inputs = s.lets = true;
      s.before = l.range.begin;
      check(*l.value, s, letUses_[i]);
    }
    for (ExprPtr &m : a.masks) {
      Scope s{"a mask"};
      s.positions = s.head = s.batch = s.inputs = s.lets = true;
      s.floatMath = false;
      s.before = m->range.begin;
      Uses u;
      Type t = check(*m, s, u);
      if (t != Type::Unknown && t != Type::Bool)
        diags_.error(m->range, std::string("a mask must be bool, got ") + typeName(t));
      info.maskUsesHead |= u.head;
      info.maskUsesBatch |= u.batch;
      inputs.insert(u.inputs.begin(), u.inputs.end());
    }
    if (a.score) {
      Scope s{"a score"};
      s.positions = s.head = s.batch = s.inputs = s.lets = s.score = true;
      s.before = a.score->range.begin;
      Uses u;
      Type t = check(*a.score, s, u);
      if (t != Type::Unknown && !isNumeric(t))
        diags_.error(a.score->range, std::string("a score must be a number, got ") + typeName(t));
      info.scoreUsesHead = u.head;
      inputs.insert(u.inputs.begin(), u.inputs.end());
    }
    if (a.scale)
      if (auto v = constantOf(*a.scale, Type::Float, "'scale'")) {
        double f = v->asDouble();
        if (!std::isfinite(f) || f <= 0)
          diags_.error(a.scale->range, "'scale' must be a positive finite number, got " + v->str());
        else
          info.scale = f;
      }
    if (a.select) {
      checkSelect(a, info, inputs);
      if (info.maskUsesHead)
        diags_.error(a.select->range, "a variant that selects cannot have a mask that reads 'h': one "
                                      "selection is shared by all heads of a KV group");
    }
    info.inputsUsed.assign(inputs.begin(), inputs.end());
    info.maskConstantFalse = maskAlwaysFalse(a);
    if (info.maskConstantFalse && diags_.errorCount() == 0)
      diags_.warning(a.masks.empty() ? a.nameRange : a.masks.front()->range,
                     "the mask of attention '" + a.name + "' is always false: every row is empty");
    curVariant_ = nullptr;
  }

  void checkSelect(AttentionDecl &a, VariantInfo &info, std::set<int> &inputs) {
    SelectClause &sel = *a.select;
    if (auto v = constantOf(*sel.k, Type::Int, "'topk'")) {
      if (v->i < 1)
        diags_.error(sel.k->range, "topk(K) needs K >= 1, got " + v->str());
      else
        info.topk = v->i;
    }
    if (sel.byIndexer) {
      if (auto v = constantOf(*sel.indexerHeads, Type::Int, "indexer 'heads'")) {
        if (v->i < 1)
          diags_.error(sel.indexerHeads->range, "indexer 'heads' must be >= 1, got " + v->str());
        info.indexerHeads = v->i;
      }
      if (auto v = constantOf(*sel.indexerDim, Type::Int, "indexer 'dim'")) {
        if (v->i < 1)
          diags_.error(sel.indexerDim->range, "indexer 'dim' must be >= 1, got " + v->str());
        info.indexerDim = v->i;
      }
      return;
    }
    Scope s{"a selection score"};
    s.positions = s.batch = s.inputs = s.lets = true;
    s.before = sel.byExpr->range.begin;
    Uses u;
    Type t = check(*sel.byExpr, s, u);
    if (t != Type::Unknown && !isNumeric(t))
      diags_.error(sel.byExpr->range, std::string("a selection score must be a number, got ") + typeName(t));
    inputs.insert(u.inputs.begin(), u.inputs.end());
  }

  // --- masks that are always false ---------------------------------------------

  /// Tri-state truth: -1 false, 0 unknown, 1 true.
  struct Interval {
    double lo = -INFINITY, hi = INFINITY;
  };

  int truth(const Expr &e) {
    switch (e.kind) {
    case Expr::Kind::BoolLit: return e.boolValue ? 1 : -1;
    case Expr::Kind::Name:
      if (e.ref == RefKind::Param && params_[e.refIndex].type == Type::Bool)
        return params_[e.refIndex].b ? 1 : -1;
      if (e.ref == RefKind::Let && curVariant_)
        return truth(*curVariant_->lets[e.refIndex].value);
      return 0;
    case Expr::Kind::Unary:
      return e.op == Op::Not ? -truth(*e.operands[0]) : 0;
    case Expr::Kind::Binary: {
      if (e.op == Op::And) {
        int a = truth(*e.operands[0]), b = truth(*e.operands[1]);
        return (a < 0 || b < 0) ? -1 : (a > 0 && b > 0) ? 1 : 0;
      }
      if (e.op == Op::Or) {
        int a = truth(*e.operands[0]), b = truth(*e.operands[1]);
        return (a > 0 || b > 0) ? 1 : (a < 0 && b < 0) ? -1 : 0;
      }
      if (e.operands[0]->type == Type::Bool)
        return 0;
      Interval a = range(*e.operands[0]), b = range(*e.operands[1]);
      switch (e.op) {
      case Op::Lt: return a.hi < b.lo ? 1 : a.lo >= b.hi ? -1 : 0;
      case Op::Le: return a.hi <= b.lo ? 1 : a.lo > b.hi ? -1 : 0;
      case Op::Gt: return a.lo > b.hi ? 1 : a.hi <= b.lo ? -1 : 0;
      case Op::Ge: return a.lo >= b.hi ? 1 : a.hi < b.lo ? -1 : 0;
      case Op::Eq: return (a.hi < b.lo || b.hi < a.lo) ? -1 : (a.lo == a.hi && b.lo == b.hi && a.lo == b.lo) ? 1 : 0;
      case Op::Ne: return (a.hi < b.lo || b.hi < a.lo) ? 1 : (a.lo == a.hi && b.lo == b.hi && a.lo == b.lo) ? -1 : 0;
      default: return 0;
      }
    }
    case Expr::Kind::Cond: {
      int c = truth(*e.operands[0]);
      if (c > 0)
        return truth(*e.operands[1]);
      if (c < 0)
        return truth(*e.operands[2]);
      int a = truth(*e.operands[1]), b = truth(*e.operands[2]);
      return a == b ? a : 0;
    }
    default: return 0;
    }
  }

  /// A sound interval for an int/float expression (positions unbounded,
  /// lengths >= 1, heads and batches >= 0).
  Interval range(const Expr &e) {
    Interval all;
    switch (e.kind) {
    case Expr::Kind::IntLit: return {double(e.intValue), double(e.intValue)};
    case Expr::Kind::FloatLit: return {e.floatValue, e.floatValue};
    case Expr::Kind::Name:
      switch (e.ref) {
      case RefKind::VarQLen:
      case RefKind::VarKLen: return {1, INFINITY};
      case RefKind::VarH:
      case RefKind::VarB: return {0, INFINITY};
      case RefKind::Param: {
        double v = params_[e.refIndex].asDouble();
        return {v, v};
      }
      case RefKind::Let:
        return curVariant_ ? range(*curVariant_->lets[e.refIndex].value) : all;
      default: return all;
      }
    case Expr::Kind::Unary:
      if (e.op == Op::Neg) {
        Interval a = range(*e.operands[0]);
        return {-a.hi, -a.lo};
      }
      return all;
    case Expr::Kind::Binary: {
      Interval a = range(*e.operands[0]), b = range(*e.operands[1]);
      switch (e.op) {
      case Op::Add: return {a.lo + b.lo, a.hi + b.hi};
      case Op::Sub: return {a.lo - b.hi, a.hi - b.lo};
      case Op::Mod:
        if (b.lo == b.hi && b.lo > 0)
          return {0, b.lo - 1};
        if (b.lo == b.hi && b.lo < 0)
          return {b.lo + 1, 0};
        return all;
      default: return all;
      }
    }
    case Expr::Kind::Call: {
      std::vector<Interval> a;
      for (auto &o : e.operands)
        a.push_back(range(*o));
      switch (e.builtin) {
      case Builtin::Abs:
        if (a[0].lo >= 0)
          return a[0];
        if (a[0].hi <= 0)
          return {-a[0].hi, -a[0].lo};
        return {0, std::max(-a[0].lo, a[0].hi)};
      case Builtin::Min: return {std::min(a[0].lo, a[1].lo), std::min(a[0].hi, a[1].hi)};
      case Builtin::Max: return {std::max(a[0].lo, a[1].lo), std::max(a[0].hi, a[1].hi)};
      case Builtin::Clamp:
        return {std::min(std::max(a[0].lo, a[1].lo), a[2].hi), std::max(std::min(a[0].hi, a[2].hi), a[1].lo)};
      default: return all;
      }
    }
    case Expr::Kind::Cond: {
      Interval a = range(*e.operands[1]), b = range(*e.operands[2]);
      return {std::min(a.lo, b.lo), std::max(a.hi, b.hi)};
    }
    default: return all;
    }
  }

  bool maskAlwaysFalse(const AttentionDecl &a) {
    for (auto &m : a.masks)
      if (m->type == Type::Bool && truth(*m) < 0)
        return true;
    return false;
  }

  // --- 4. models -----------------------------------------------------------------

  /// A layer rule's value: a variant name, or `cond ? value : value`.
  bool checkLayerValue(Expr &e, const Scope &s) {
    if (e.kind == Expr::Kind::Cond) {
      Uses u;
      Type c = check(*e.operands[0], s, u);
      if (c != Type::Unknown && c != Type::Bool) {
        diags_.error(e.operands[0]->range, std::string("the condition of '?:' must be bool, got ") + typeName(c));
        return false;
      }
      bool a = checkLayerValue(*e.operands[1], s);
      bool b = checkLayerValue(*e.operands[2], s);
      return c == Type::Bool && a && b;
    }
    if (e.kind == Expr::Kind::Name) {
      for (size_t i = 0; i < prog_.attentions.size(); ++i)
        if (prog_.attentions[i].name == e.name) {
          e.ref = RefKind::Variant;
          e.refIndex = int(i);
          return true;
        }
      std::vector<std::string> names;
      for (auto &a : prog_.attentions)
        names.push_back(a.name);
      std::string hint = closestMatch(e.name, names);
      diags_.error(e.range, "no attention variant named '" + e.name + "'" +
                                (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
      return false;
    }
    diags_.error(e.range, "expected the name of an attention variant (or 'cond ? a : b'), got '" +
                              exprText(e) + "'");
    return false;
  }

  int evalLayerValue(const Expr &e, int64_t layer) {
    if (e.kind == Expr::Kind::Cond)
      return evalLayerValue(*e.operands[evalConstant(*e.operands[0], layer).b ? 1 : 2], layer);
    return e.refIndex;
  }

  void checkModel(int mi) {
    ModelDecl &m = prog_.models[mi];
    ModelInfo &info = models_[mi];
    if (!m.layers) {
      diags_.error(m.nameRange, "model '" + m.name + "' needs 'layers N;'");
      return;
    }
    auto n = constantOf(*m.layers, Type::Int, "'layers'");
    if (!n)
      return;
    constexpr int64_t kMaxLayers = 100000;
    if (n->i < 1 || n->i > kMaxLayers) {
      diags_.error(m.layers->range, "'layers' must be between 1 and " + std::to_string(kMaxLayers) + ", got " +
                                        n->str());
      return;
    }
    info.layers = n->i;
    info.layerVariant.assign(size_t(n->i), -1);
    std::string lastLayer = std::to_string(n->i - 1);
    unsigned errorsBefore = diags_.errorCount();
    for (LayerRule &r : m.rules) {
      Scope s{"a layer rule"};
      s.variants = false;
      int64_t first = 0, last = n->i - 1;
      if (r.kind != LayerRule::Kind::ForAll) {
        auto f = constantOf(*r.first, Type::Int, "a layer index");
        std::optional<Value> l = f;
        if (r.kind == LayerRule::Kind::Range)
          l = constantOf(*r.last, Type::Int, "a layer index");
        if (!f || !l)
          continue;
        first = f->i;
        last = l->i;
        bool bad = false;
        for (auto [v, ex] : {std::pair{first, r.first.get()}, std::pair{last, r.last ? r.last.get() : r.first.get()}})
          if (v < 0 || v >= n->i) {
            diags_.error(ex->range, "layer " + std::to_string(v) + " is out of range: model '" + m.name + "' has " +
                                        n->str() + " layers (0.." + lastLayer + ")");
            bad = true;
            break;
          }
        if (bad)
          continue;
        if (first > last) {
          diags_.error(r.range, "empty layer range " + std::to_string(first) + ".." + std::to_string(last) +
                                    " (ranges are inclusive and ascending)");
          continue;
        }
      } else {
        s.layerVar = &r.var;
        auto isParam = std::find_if(prog_.params.begin(), prog_.params.end(),
                                    [&](const ParamDecl &p) { return p.name == r.var; });
        if (isParam != prog_.params.end()) {
          diags_.error(r.varRange, "'" + r.var + "' is a param, and 'layer " + r.var +
                                       ":' binds a layer variable of that name for every layer; write 'layer (" +
                                       r.var + "):' for that one layer, or name the variable otherwise");
          continue;
        }
        if (std::find(kBuiltinVars.begin(), kBuiltinVars.end(), r.var) != kBuiltinVars.end()) {
          diags_.error(r.varRange, "'" + r.var + "' is a built-in variable; name the layer variable otherwise");
          continue;
        }
      }
      if (!checkLayerValue(*r.value, s))
        continue;
      try {
        for (int64_t i = first; i <= last; ++i)
          info.layerVariant[size_t(i)] = evalLayerValue(*r.value, i);
      } catch (EvalError &e) {
        diags_.error(r.value->range, std::string("cannot evaluate the layer rule: ") + e.what());
      }
    }
    if (diags_.errorCount() != errorsBefore)
      return; // uncovered layers would only repeat the rule's error
    std::string missing;
    unsigned nMissing = 0;
    for (int64_t i = 0; i < n->i; ++i)
      if (info.layerVariant[size_t(i)] < 0 && nMissing++ < 8)
        missing += (missing.empty() ? "" : ", ") + std::to_string(i);
    if (nMissing) {
      diags_.error(m.nameRange, "model '" + m.name + "': " + std::to_string(nMissing) + " layer" +
                                    (nMissing > 1 ? "s have" : " has") + " no variant (" + missing +
                                    (nMissing > 8 ? ", ..." : "") + ")");
      return;
    }
    for (int v : info.layerVariant)
      if (std::find(info.distinctVariants.begin(), info.distinctVariants.end(), v) == info.distinctVariants.end())
        info.distinctVariants.push_back(v);
  }

  // --- 5. warnings -------------------------------------------------------------

  void warnUnusedParams() {
    if (diags_.errorCount())
      return;
    for (size_t i = 0; i < prog_.params.size(); ++i)
      if (!paramUsed_[i])
        diags_.warning(prog_.params[i].nameRange, "param '" + prog_.params[i].name + "' is never used");
  }
};

} // namespace

std::optional<CheckedProgram> checkProgram(Program program, DiagnosticEngine &diags,
                                           const std::vector<ParamOverride> &overrides) {
  Checker c(program, diags);
  return c.run(overrides);
}

std::optional<CheckedProgram> parseAndCheck(const SourceFile &file, DiagnosticEngine &diags,
                                            const std::vector<ParamOverride> &overrides) {
  Program p = parseProgram(file, diags);
  if (diags.errorCount())
    return std::nullopt;
  return checkProgram(std::move(p), diags, overrides);
}

} // namespace attnc::dsl

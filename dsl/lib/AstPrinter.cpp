//===- AstPrinter.cpp - Readable renderings of a checked program ----------===//
#include "attnc/dsl/AstPrinter.h"

#include <sstream>

namespace attnc::dsl {
namespace {

class TreePrinter {
public:
  TreePrinter(std::ostream &os, const SourceFile &file) : os_(os), file_(file) {}

  void line(const std::string &text, SourceRange r) {
    auto [l, c] = file_.lineCol(r.begin);
    os_ << prefix_ << text << " <" << l << ":" << c << ">\n";
  }

  /// Runs `body` with the children indented one level.
  template <typename F> void nest(F body) {
    prefix_ += "  ";
    body();
    prefix_.resize(prefix_.size() - 2);
  }

  void expr(const std::string &label, const Expr &e) {
    std::string head = label.empty() ? "" : label + ": ";
    std::string t = e.type == Type::Unknown ? "" : std::string(" : ") + typeName(e.type);
    switch (e.kind) {
    case Expr::Kind::IntLit: line(head + "Int " + std::to_string(e.intValue), e.range); return;
    case Expr::Kind::FloatLit: line(head + "Float " + Value::ofFloat(e.floatValue).str(), e.range); return;
    case Expr::Kind::BoolLit: line(head + "Bool " + (e.boolValue ? "true" : "false"), e.range); return;
    case Expr::Kind::Name: line(head + "Name " + e.name + " (" + refName(e.ref) + ")" + t, e.range); return;
    case Expr::Kind::Unary: line(head + "Unary '" + opSpelling(e.op) + "'" + t, e.range); break;
    case Expr::Kind::Binary: line(head + "Binary '" + opSpelling(e.op) + "'" + t, e.range); break;
    case Expr::Kind::Cond: line(head + "Cond" + t, e.range); break;
    case Expr::Kind::Call: line(head + "Call " + e.name + t, e.range); break;
    case Expr::Kind::Index: line(head + "Index " + e.name + t, e.range); break;
    }
    nest([&] {
      for (const ExprPtr &o : e.operands)
        expr("", *o);
    });
  }

  static const char *refName(RefKind r) {
    switch (r) {
    case RefKind::Unresolved: return "unresolved";
    case RefKind::VarQ: return "query position";
    case RefKind::VarK: return "key position";
    case RefKind::VarH: return "query head";
    case RefKind::VarB: return "batch";
    case RefKind::VarQLen: return "query length";
    case RefKind::VarKLen: return "key length";
    case RefKind::VarScore: return "score";
    case RefKind::LayerVar: return "layer";
    case RefKind::Param: return "param";
    case RefKind::Let: return "let";
    case RefKind::Variant: return "variant";
    }
    return "?";
  }

private:
  std::ostream &os_;
  const SourceFile &file_;
  std::string prefix_;
};

/// The layer table with runs merged: "0 global, 1..2 local, 3 global".
std::string joinLayerTable(const CheckedProgram &p, const ModelInfo &m) {
  std::string s;
  size_t n = m.layerVariant.size();
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j + 1 < n && m.layerVariant[j + 1] == m.layerVariant[i])
      ++j;
    s += (i ? ", " : "") + std::to_string(i) + (j > i ? ".." + std::to_string(j) : "") + " " +
         p.ast.attentions[m.layerVariant[i]].name;
    i = j + 1;
  }
  return s;
}

int precedence(const Expr &e) {
  if (e.kind == Expr::Kind::Cond)
    return 1;
  if (e.kind == Expr::Kind::Unary)
    return 8;
  if (e.kind != Expr::Kind::Binary)
    return 9;
  switch (e.op) {
  case Op::Or: return 2;
  case Op::And: return 3;
  case Op::Eq:
  case Op::Ne: return 4;
  case Op::Lt:
  case Op::Le:
  case Op::Gt:
  case Op::Ge: return 5;
  case Op::Add:
  case Op::Sub: return 6;
  default: return 7;
  }
}

} // namespace

std::string exprToString(const Expr &e) {
  auto sub = [&](const Expr &c, int min) {
    std::string s = exprToString(c);
    return precedence(c) < min ? "(" + s + ")" : s;
  };
  switch (e.kind) {
  case Expr::Kind::IntLit: return std::to_string(e.intValue);
  case Expr::Kind::FloatLit: return Value::ofFloat(e.floatValue).str();
  case Expr::Kind::BoolLit: return e.boolValue ? "true" : "false";
  case Expr::Kind::Name: return e.name;
  case Expr::Kind::Unary: return std::string(opSpelling(e.op)) + sub(*e.operands[0], 8);
  case Expr::Kind::Binary: {
    int p = precedence(e);
    return sub(*e.operands[0], p) + " " + opSpelling(e.op) + " " + sub(*e.operands[1], p + 1);
  }
  case Expr::Kind::Cond:
    return sub(*e.operands[0], 2) + " ? " + sub(*e.operands[1], 2) + " : " + sub(*e.operands[2], 1);
  case Expr::Kind::Call:
  case Expr::Kind::Index: {
    std::string s = e.name + (e.kind == Expr::Kind::Call ? "(" : "[");
    for (size_t i = 0; i < e.operands.size(); ++i)
      s += (i ? ", " : "") + exprToString(*e.operands[i]);
    return s + (e.kind == Expr::Kind::Call ? ")" : "]");
  }
  }
  return "?";
}

void printAst(std::ostream &os, const CheckedProgram &p, const SourceFile &file) {
  TreePrinter t(os, file);
  os << "Program " << file.name() << "\n";
  t.nest([&] {
    for (size_t i = 0; i < p.ast.params.size(); ++i) {
      const ParamDecl &d = p.ast.params[i];
      t.line("Param " + d.name + " : " + typeName(p.params[i].type) + " = " + p.params[i].str() +
                 (p.paramOverridden[i] ? " (overridden by -D)" : ""),
             d.range);
      t.nest([&] { t.expr("default", *d.value); });
    }
    for (const InputDecl &d : p.ast.inputs) {
      std::string axes;
      for (size_t i = 0; i < d.axes.size(); ++i)
        axes += std::string(i ? ", " : "") + axisName(d.axes[i]);
      t.line("Input " + d.name + " : " + elemTypeName(d.elem) + "[" + axes + "]", d.range);
    }
    for (size_t vi = 0; vi < p.ast.attentions.size(); ++vi) {
      const AttentionDecl &a = p.ast.attentions[vi];
      const VariantInfo &info = p.variants[vi];
      t.line("Attention " + a.name, a.range);
      t.nest([&] {
        for (const LetDecl &l : a.lets) {
          t.line("Let " + l.name, l.range);
          t.nest([&] { t.expr("", *l.value); });
        }
        if (a.masks.empty())
          t.line("Mask (none: full attention)", a.range);
        for (const ExprPtr &m : a.masks)
          t.expr("Mask", *m);
        if (a.score)
          t.expr("Score", *a.score);
        t.line(info.scale ? "Scale " + Value::ofFloat(*info.scale).str() : std::string("Scale 1/sqrt(head_dim)"),
               a.scale ? a.scaleRange : a.range);
        if (a.sink)
          t.line("Sink per query head", a.sinkRange);
        if (a.select) {
          const SelectClause &s = *a.select;
          if (s.byIndexer)
            t.line("Select topk(" + std::to_string(*info.topk) + ") by indexer(heads = " +
                       std::to_string(info.indexerHeads) + ", dim = " + std::to_string(info.indexerDim) +
                       ", dtype = " + indexerDTypeName(s.indexerDType) + ")",
                   s.range);
          else {
            t.line("Select topk(" + std::to_string(*info.topk) + ") by", s.range);
            t.nest([&] { t.expr("", *s.byExpr); });
          }
        }
      });
    }
    for (size_t mi = 0; mi < p.ast.models.size(); ++mi) {
      const ModelDecl &m = p.ast.models[mi];
      const ModelInfo &info = p.models[mi];
      t.line("Model " + m.name + " layers=" + std::to_string(info.layers), m.range);
      t.nest([&] {
        for (const LayerRule &r : m.rules) {
          std::string head = r.kind == LayerRule::Kind::ForAll ? "Rule for every layer " + r.var
                             : r.kind == LayerRule::Kind::Range
                                 ? "Rule layers " + exprToString(*r.first) + ".." + exprToString(*r.last)
                                 : "Rule layer " + exprToString(*r.first);
          t.line(head + ": " + exprToString(*r.value), r.range);
        }
        t.line("LayerTable " + joinLayerTable(p, info), m.range);
      });
    }
  });
}

void printSummary(std::ostream &os, const CheckedProgram &p, const SourceFile &file) {
  os << file.name() << ": " << p.ast.attentions.size() << " attention variant"
     << (p.ast.attentions.size() == 1 ? "" : "s") << ", " << p.ast.models.size() << " model"
     << (p.ast.models.size() == 1 ? "" : "s") << "\n";
  for (size_t i = 0; i < p.ast.params.size(); ++i)
    os << "  param " << p.ast.params[i].name << " = " << p.params[i].str()
       << (p.paramOverridden[i] ? "   (from -D)" : "") << "\n";
  for (const InputDecl &d : p.ast.inputs) {
    os << "  input " << d.name << " : " << elemTypeName(d.elem) << "[";
    for (size_t i = 0; i < d.axes.size(); ++i)
      os << (i ? ", " : "") << axisName(d.axes[i]);
    os << "]\n";
  }
  for (size_t vi = 0; vi < p.ast.attentions.size(); ++vi) {
    const AttentionDecl &a = p.ast.attentions[vi];
    const VariantInfo &info = p.variants[vi];
    os << "  attention " << a.name << "\n";
    std::string mask;
    for (const ExprPtr &m : a.masks)
      mask += (mask.empty() ? "" : " && ") + (a.masks.size() > 1 ? "(" + exprToString(*m) + ")" : exprToString(*m));
    os << "    mask:   " << (mask.empty() ? "none (full attention)" : mask) << "\n";
    if (a.score)
      os << "    score:  " << exprToString(*a.score) << "\n";
    os << "    scale:  " << (info.scale ? Value::ofFloat(*info.scale).str() : "1/sqrt(head_dim)") << "\n";
    if (a.sink)
      os << "    sink:   per query head\n";
    if (a.select) {
      os << "    select: top " << *info.topk << " keys by ";
      if (a.select->byIndexer)
        os << "the lightning indexer (" << info.indexerHeads << " heads x " << info.indexerDim << ", "
           << indexerDTypeName(a.select->indexerDType) << ")\n";
      else
        os << exprToString(*a.select->byExpr) << "\n";
    }
    if (!info.inputsUsed.empty()) {
      os << "    reads:  ";
      for (size_t i = 0; i < info.inputsUsed.size(); ++i)
        os << (i ? ", " : "") << p.ast.inputs[info.inputsUsed[i]].name;
      os << "\n";
    }
  }
  for (size_t mi = 0; mi < p.ast.models.size(); ++mi) {
    const ModelInfo &info = p.models[mi];
    os << "  model " << p.ast.models[mi].name << ": " << info.layers << " layers -> "
       << info.distinctVariants.size() << " distinct variant" << (info.distinctVariants.size() == 1 ? "" : "s")
       << " (";
    for (size_t i = 0; i < info.distinctVariants.size(); ++i) {
      int v = info.distinctVariants[i];
      size_t count = 0;
      for (int lv : info.layerVariant)
        count += lv == v;
      os << (i ? ", " : "") << p.ast.attentions[v].name << " x" << count;
    }
    os << ")\n    layers: " << joinLayerTable(p, info) << "\n";
  }
}

} // namespace attnc::dsl

//===- Parser.cpp - The .attn grammar (Boost.Spirit X3) -------------------===//
//
// Parsing happens in three steps:
//   1. A pre-scan blanks comments (keeping every byte offset), rejects bytes
//      that cannot appear in a program, unterminated comments, and nesting
//      deep enough to exhaust the stack of a recursive-descent parser.
//   2. Statements are recognised by their leading keyword in C++ (see the
//      grammar productions on each parse* function). A statement that fails
//      is reported and skipped up to its `;` (or its closing `}`), so several
//      independent errors surface in one run.
//   3. Expressions are parsed by the X3 grammar below; its semantic actions
//      build the AST on a stack, recording each node's source range. Every
//      expectation failure becomes "expected X, found Y" at the failing byte.
//
//===----------------------------------------------------------------------===//
#include "attnc/dsl/Parser.h"

#include <boost/spirit/home/x3.hpp>

#include <algorithm>
#include <cstring>
#include <functional>

namespace x3 = boost::spirit::x3;

namespace attnc::dsl {
namespace {

using It = const char *;

/// Thrown when an expression exceeds ParseLimits.
struct TooComplex {
  It where;
  std::string what;
};

/// Builds expression nodes on a stack as X3's semantic actions fire.
struct ExprBuilder {
  It base = nullptr;
  ParseLimits limits;
  struct Entry {
    ExprPtr node;
    unsigned depth;
  };
  std::vector<Entry> stack;
  std::vector<unsigned> argCounts; // open call/index argument lists
  unsigned nodes = 0;

  uint32_t off(It p) const { return uint32_t(p - base); }

  void push(ExprPtr e, unsigned depth, It at) {
    if (++nodes > limits.maxExprNodes)
      throw TooComplex{at, "expression has more than " + std::to_string(limits.maxExprNodes) +
                               " nodes"};
    if (depth > limits.maxNesting)
      throw TooComplex{at, "expression nests more than " + std::to_string(limits.maxNesting) +
                               " levels deep"};
    stack.push_back({std::move(e), depth});
  }
  Entry pop() {
    Entry e = std::move(stack.back());
    stack.pop_back();
    return e;
  }
  void reset() {
    stack.clear();
    argCounts.clear();
    nodes = 0;
  }

  void number(It b, It e) {
    std::string text;
    for (It p = b; p != e; ++p)
      if (*p != '_')
        text += *p;
    bool isFloat = text.find_first_of(".eE") != std::string::npos;
    auto node = std::make_unique<Expr>(isFloat ? Expr::Kind::FloatLit : Expr::Kind::IntLit);
    node->range = {off(b), off(e)};
    if (isFloat) {
      node->floatValue = std::strtod(text.c_str(), nullptr);
    } else {
      errno = 0;
      unsigned long long v = std::strtoull(text.c_str(), nullptr, 10);
      if (errno == ERANGE || v > uint64_t(INT64_MAX))
        throw TooComplex{b, "integer literal '" + text + "' does not fit in 64 bits"};
      node->intValue = int64_t(v);
    }
    push(std::move(node), 1, b);
  }

  void name(It b, It e) {
    std::string text(b, e);
    ExprPtr node;
    if (text == "true" || text == "false") {
      node = std::make_unique<Expr>(Expr::Kind::BoolLit);
      node->boolValue = text == "true";
    } else {
      node = std::make_unique<Expr>(Expr::Kind::Name);
      node->name = std::move(text);
    }
    node->range = {off(b), off(e)};
    push(std::move(node), 1, b);
  }

  void openArgs() { argCounts.push_back(0); }
  void countArg() { ++argCounts.back(); }

  /// Pops the arguments of the innermost argument list and the name under
  /// them; pushes a Call or Index node spanning up to `e`.
  void closeArgs(Expr::Kind kind, It e) {
    unsigned n = argCounts.back();
    argCounts.pop_back();
    std::vector<ExprPtr> args(n);
    unsigned depth = 1;
    for (unsigned i = n; i-- > 0;) {
      Entry a = pop();
      depth = std::max(depth, a.depth + 1);
      args[i] = std::move(a.node);
    }
    Entry callee = pop();
    auto node = std::make_unique<Expr>(kind);
    node->name = callee.node->name;
    node->nameRange = callee.node->range;
    node->range = {callee.node->range.begin, off(e)};
    node->operands = std::move(args);
    if (callee.node->kind != Expr::Kind::Name)
      throw TooComplex{base + callee.node->range.begin,
                       std::string("'") + (callee.node->boolValue ? "true" : "false") +
                           "' cannot be called or indexed"};
    It at = base + node->range.begin;
    push(std::move(node), depth, at);
  }

  /// Wraps the top node in parentheses' range.
  void paren(It b, It e) { stack.back().node->range = {off(b), off(e)}; }

  /// Applies prefix operators (in `ops`, outermost first) to the top node.
  void unary(const std::string &ops, It b) {
    for (size_t i = ops.size(); i-- > 0;) {
      Entry operand = pop();
      auto node = std::make_unique<Expr>(Expr::Kind::Unary);
      node->op = ops[i] == '-' ? Op::Neg : Op::Not;
      node->range = {off(b), operand.node->range.end};
      node->operands.push_back(std::move(operand.node));
      push(std::move(node), operand.depth + 1, b);
    }
  }

  void binary(Op op) {
    Entry rhs = pop(), lhs = pop();
    auto node = std::make_unique<Expr>(Expr::Kind::Binary);
    node->op = op;
    node->range = {lhs.node->range.begin, rhs.node->range.end};
    unsigned depth = std::max(lhs.depth, rhs.depth) + 1;
    node->operands.push_back(std::move(lhs.node));
    node->operands.push_back(std::move(rhs.node));
    It at = base + node->range.end;
    push(std::move(node), depth, at);
  }

  void conditional() {
    Entry f = pop(), t = pop(), c = pop();
    auto node = std::make_unique<Expr>(Expr::Kind::Cond);
    node->op = Op::Cond;
    node->range = {c.node->range.begin, f.node->range.end};
    unsigned depth = std::max({c.depth, t.depth, f.depth}) + 1;
    node->operands.push_back(std::move(c.node));
    node->operands.push_back(std::move(t.node));
    node->operands.push_back(std::move(f.node));
    It at = base + node->range.begin;
    push(std::move(node), depth, at);
  }
};

//===----------------------------------------------------------------------===//
// The expression grammar.
//===----------------------------------------------------------------------===//
namespace grammar {

struct builder_tag;
template <typename Ctx> ExprBuilder &builder(Ctx &ctx) { return x3::get<builder_tag>(ctx).get(); }

// identifier ::= [A-Za-z_][A-Za-z0-9_]*
auto const identifier = x3::raw[x3::lexeme[(x3::ascii::alpha | x3::char_('_')) >>
                                            *(x3::ascii::alnum | x3::char_('_'))]];
// number ::= digits ('_' digits)* ('.' digits)? ([eE] [+-]? digits)?
auto const digits = +x3::ascii::digit;
auto const number = x3::raw[x3::lexeme[digits >> *('_' >> digits) >> -('.' >> digits) >>
                                       -(x3::char_("eE") >> -x3::char_("+-") >> digits) >>
                                       !(x3::ascii::alnum | '_')]];

x3::rule<class expr_r> const expr = "expression";
x3::rule<class or_r> const or_expr = "expression";
x3::rule<class and_r> const and_expr = "expression";
x3::rule<class eq_r> const eq_expr = "expression";
x3::rule<class rel_r> const rel_expr = "expression";
x3::rule<class add_r> const add_expr = "expression";
x3::rule<class mul_r> const mul_expr = "expression";
x3::rule<class unary_r> const unary_expr = "expression";
x3::rule<class primary_r> const primary = "expression";
x3::rule<class prefix_ops_r> const prefix_ops = "operator";

auto on_number = [](auto &ctx) {
  auto r = x3::_attr(ctx);
  builder(ctx).number(r.begin(), r.end());
};
auto on_name = [](auto &ctx) {
  auto r = x3::_attr(ctx);
  builder(ctx).name(r.begin(), r.end());
};
auto on_open = [](auto &ctx) { builder(ctx).openArgs(); };
auto on_arg = [](auto &ctx) { builder(ctx).countArg(); };
// Note: in X3 an action's _where(ctx) is [end of the match, end of input),
// so a match's end is _where(ctx).begin(); starts come from x3::raw[].
auto on_call = [](auto &ctx) { builder(ctx).closeArgs(Expr::Kind::Call, x3::_where(ctx).begin()); };
auto on_index = [](auto &ctx) { builder(ctx).closeArgs(Expr::Kind::Index, x3::_where(ctx).begin()); };
auto on_paren = [](auto &ctx) {
  auto r = x3::_attr(ctx);
  builder(ctx).paren(r.begin(), r.end());
};
// The attribute is the whole unary expression's text; its prefix operators
// are its leading '-' and '!' (a primary never starts with either).
auto on_unary = [](auto &ctx) {
  auto r = x3::_attr(ctx);
  std::string ops;
  for (char c : r) {
    if (c == '-' || c == '!')
      ops += c;
    else if (!std::isspace((unsigned char)c))
      break;
  }
  builder(ctx).unary(ops, r.begin());
};
auto on_cond = [](auto &ctx) { builder(ctx).conditional(); };
template <Op op> auto on_binary = [](auto &ctx) { builder(ctx).binary(op); };

template <Op op, typename P> auto binop(P p, const x3::rule<class primary_r> &) { return p; }

// expr     ::= or_expr ('?' expr ':' expr)?
auto const expr_def = or_expr >> -((x3::lit('?') > expr > ':' > expr)[on_cond]);
// or_expr  ::= and_expr ('||' and_expr)*
auto const or_expr_def = and_expr >> *((x3::lit("||") > and_expr)[on_binary<Op::Or>]);
// and_expr ::= eq_expr ('&&' eq_expr)*
auto const and_expr_def = eq_expr >> *((x3::lit("&&") > eq_expr)[on_binary<Op::And>]);
// eq_expr  ::= rel_expr (('==' | '!=') rel_expr)*
auto const eq_expr_def = rel_expr >> *((x3::lit("==") > rel_expr)[on_binary<Op::Eq>] |
                                       (x3::lit("!=") > rel_expr)[on_binary<Op::Ne>]);
// rel_expr ::= add_expr (('<=' | '>=' | '<' | '>') add_expr)*
auto const rel_expr_def = add_expr >> *((x3::lit("<=") > add_expr)[on_binary<Op::Le>] |
                                        (x3::lit(">=") > add_expr)[on_binary<Op::Ge>] |
                                        (x3::lit('<') > add_expr)[on_binary<Op::Lt>] |
                                        (x3::lit('>') > add_expr)[on_binary<Op::Gt>]);
// add_expr ::= mul_expr (('+' | '-') mul_expr)*
auto const add_expr_def = mul_expr >> *((x3::lit('+') > mul_expr)[on_binary<Op::Add>] |
                                        (x3::lit('-') > mul_expr)[on_binary<Op::Sub>]);
// mul_expr ::= unary_expr (('*' | '/' | '%') unary_expr)*
auto const mul_expr_def = unary_expr >> *((x3::lit('*') > unary_expr)[on_binary<Op::Mul>] |
                                          (x3::lit('/') > unary_expr)[on_binary<Op::Div>] |
                                          (x3::lit('%') > unary_expr)[on_binary<Op::Mod>]);
// unary_expr ::= ('-' | '!')* primary
auto const prefix_ops_def = *(x3::lit('-') | (x3::lit('!') >> !x3::lit('=')));
auto const unary_expr_def = x3::raw[prefix_ops >> primary][on_unary];
// primary ::= number | '(' expr ')' | identifier ('(' (expr (',' expr)*)? ')' | '[' expr (',' expr)* ']')?
auto const primary_def =
    number[on_number] | x3::raw[x3::lit('(') > expr > ')'][on_paren] |
    (identifier[on_name] >>
     -(((x3::lit('(')[on_open] >> -(expr[on_arg] % ',')) > ')')[on_call] |
       (x3::lit('[')[on_open] > (expr[on_arg] % ',') > ']')[on_index]));

BOOST_SPIRIT_DEFINE(expr, or_expr, and_expr, eq_expr, rel_expr, add_expr, mul_expr, prefix_ops,
                    unary_expr, primary)

} // namespace grammar

bool isIdentStart(char c) { return std::isalpha((unsigned char)c) || c == '_'; }
bool isIdentChar(char c) { return std::isalnum((unsigned char)c) || c == '_'; }

const char *const kKeywords[] = {"param", "input", "attention", "model", "let",    "mask",  "score",
                                 "scale", "sink",  "select",    "layers", "layer", "true", "false"};
bool isKeyword(const std::string &w) {
  for (const char *k : kKeywords)
    if (w == k)
      return true;
  return false;
}

/// Thrown to abandon the current statement after a diagnostic was reported.
struct StatementFailed {};

//===----------------------------------------------------------------------===//
// The statement parser.
//===----------------------------------------------------------------------===//
class ParserImpl {
public:
  ParserImpl(const SourceFile &file, DiagnosticEngine &diags, const ParseLimits &limits)
      : diags_(diags), limits_(limits), clean_(file.text()) {
    begin_ = clean_.data();
    end_ = begin_ + clean_.size();
    cur_ = begin_;
    builder_.base = begin_;
    builder_.limits = limits;
  }

  Program run() {
    if (!prescan())
      return std::move(program_);
    // program ::= item*
    while (skipSpace(), cur_ != end_) {
      if (diags_.errorCount() > DiagnosticEngine::kMaxErrors)
        break;
      It start = cur_;
      std::string w = peekWord();
      try {
        if (w == "param")
          parseParam();
        else if (w == "input")
          parseInput();
        else if (w == "attention")
          parseAttention();
        else if (w == "model")
          parseModel();
        else {
          std::string hint = closestMatch(w, {"param", "input", "attention", "model"});
          fail(cur_, "expected 'param', 'input', 'attention' or 'model', found " + describe(cur_) +
                         (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
        }
      } catch (StatementFailed &) {
        recoverTopLevel(start);
      }
    }
    return std::move(program_);
  }

private:
  DiagnosticEngine &diags_;
  ParseLimits limits_;
  std::string clean_; // the source with comments blanked
  It begin_, end_, cur_;
  ExprBuilder builder_;
  Program program_;

  uint32_t off(It p) const { return uint32_t(p - begin_); }
  SourceRange rangeAt(It p, size_t len = 1) const {
    return {off(p), off(std::min(end_, p + std::max<size_t>(len, 1)))};
  }

  [[noreturn]] void fail(It at, const std::string &msg) {
    diags_.error(rangeAt(at, tokenLength(at)), msg);
    throw StatementFailed{};
  }

  /// Step 1: blank comments, reject impossible bytes and deep nesting.
  bool prescan() {
    unsigned before = diags_.errorCount();
    int depth = 0;
    unsigned questions = 0, prefixRun = 0;
    unsigned lastBadLine = 0;
    for (size_t i = 0; i < clean_.size(); ++i) {
      char c = clean_[i];
      if (c == '/' && i + 1 < clean_.size() && clean_[i + 1] == '/') {
        while (i < clean_.size() && clean_[i] != '\n')
          clean_[i++] = ' ';
        continue;
      }
      if (c == '/' && i + 1 < clean_.size() && clean_[i + 1] == '*') {
        size_t close = clean_.find("*/", i + 2);
        if (close == std::string::npos) {
          diags_.error({uint32_t(i), uint32_t(i + 2)}, "unterminated '/*' comment");
          return false;
        }
        for (size_t j = i; j < close + 2; ++j)
          if (clean_[j] != '\n')
            clean_[j] = ' ';
        i = close + 1;
        continue;
      }
      unsigned char u = (unsigned char)c;
      bool ok = (u >= 0x20 && u < 0x7f) || c == '\n' || c == '\t' || c == '\r' || c == '\f' ||
                c == '\v';
      if (!ok) {
        unsigned line = diags_.file().lineCol(uint32_t(i)).first;
        if (line != lastBadLine) { // one report per line is enough
          lastBadLine = line;
          char hex[8];
          std::snprintf(hex, sizeof hex, "0x%02x", u);
          diags_.error({uint32_t(i), uint32_t(i + 1)},
                       std::string("unexpected byte ") + hex +
                           (u >= 0x80 ? " (non-ASCII text is allowed only in comments)" : ""));
          if (diags_.errorCount() > DiagnosticEngine::kMaxErrors)
            return false;
        }
        clean_[i] = ' ';
        continue;
      }
      if (c == '-' || c == '!') {
        // A long run of prefix operators would be slow to parse and too
        // deep to evaluate; reject it here, cheaply.
        if (++prefixRun > limits_.maxNesting) {
          diags_.error({uint32_t(i), uint32_t(i + 1)},
                       "more than " + std::to_string(limits_.maxNesting) + " prefix operators in a row");
          return false;
        }
      } else if (!std::isspace(u)) {
        prefixRun = 0;
      }
      if (c == '(' || c == '[' || c == '{') {
        if (++depth > int(limits_.maxNesting)) {
          diags_.error({uint32_t(i), uint32_t(i + 1)},
                       "brackets nest more than " + std::to_string(limits_.maxNesting) +
                           " levels deep");
          return false;
        }
      } else if (c == ')' || c == ']' || c == '}') {
        depth = std::max(0, depth - 1);
      } else if (c == ';') {
        questions = 0;
      } else if (c == '?' && ++questions > limits_.maxNesting) {
        diags_.error({uint32_t(i), uint32_t(i + 1)},
                     "more than " + std::to_string(limits_.maxNesting) +
                         " '?:' in one statement");
        return false;
      }
    }
    return diags_.errorCount() == before;
  }

  void skipSpace() {
    while (cur_ != end_ && std::isspace((unsigned char)*cur_))
      ++cur_;
  }

  std::string peekWord() {
    skipSpace();
    It p = cur_;
    if (p == end_ || !isIdentStart(*p))
      return {};
    while (p != end_ && isIdentChar(*p))
      ++p;
    return std::string(cur_, p);
  }

  size_t tokenLength(It p) const {
    if (p >= end_)
      return 1;
    It q = p;
    if (isIdentChar(*q)) {
      while (q != end_ && (isIdentChar(*q) || *q == '.'))
        ++q;
      return q - p;
    }
    static const char *twos[] = {"<=", ">=", "==", "!=", "&&", "||", ".."};
    for (const char *t : twos)
      if (end_ - p >= 2 && std::strncmp(p, t, 2) == 0)
        return 2;
    return 1;
  }

  /// "'foo'", "';'" or "end of file": what stands at `p`, for messages.
  std::string describe(It p) const {
    while (p != end_ && std::isspace((unsigned char)*p))
      ++p;
    if (p == end_)
      return "end of file";
    size_t n = std::min<size_t>(tokenLength(p), 40);
    return "'" + std::string(p, p + n) + "'";
  }

  // --- Small token helpers ------------------------------------------------

  void expectWord(const char *w) {
    std::string got = peekWord();
    if (got != w)
      fail(cur_, std::string("expected '") + w + "', found " + describe(cur_));
    cur_ += got.size();
  }

  bool acceptPunct(const char *p) {
    skipSpace();
    size_t n = std::strlen(p);
    if (size_t(end_ - cur_) >= n && std::strncmp(cur_, p, n) == 0) {
      cur_ += n;
      return true;
    }
    return false;
  }

  void expectPunct(const char *p, const char *context = nullptr) {
    if (!acceptPunct(p))
      fail(cur_, std::string("expected '") + p + "'" + (context ? context : "") + ", found " +
                     describe(cur_));
  }

  /// identifier, not a keyword. `what` names it in messages ("param name").
  std::string expectIdent(const char *what, SourceRange &range) {
    skipSpace();
    std::string w = peekWord();
    if (w.empty())
      fail(cur_, std::string("expected ") + what + ", found " + describe(cur_));
    if (isKeyword(w))
      fail(cur_, std::string("expected ") + what + ", found keyword '" + w + "'");
    range = rangeAt(cur_, w.size());
    cur_ += w.size();
    return w;
  }

  /// Parses one expression with the X3 grammar.
  ExprPtr parseExpr() {
    skipSpace();
    builder_.reset();
    It p = cur_;
    try {
      bool ok = x3::phrase_parse(p, end_, x3::with<grammar::builder_tag>(std::ref(builder_))[grammar::expr],
                                 x3::ascii::space);
      if (!ok || builder_.stack.size() != 1) {
        builder_.reset();
        fail(cur_, "expected expression, found " + describe(cur_));
      }
    } catch (x3::expectation_failure<It> &e) {
      builder_.reset();
      std::string which = e.which();
      if (which.size() >= 2 && (which.front() == '"' || which.front() == '\''))
        which = "'" + which.substr(1, which.size() - 2) + "'";
      It at = e.where();
      while (at != end_ && std::isspace((unsigned char)*at))
        ++at;
      fail(at, "expected " + which + ", found " + describe(at));
    } catch (TooComplex &e) {
      builder_.reset();
      fail(e.where, e.what);
    }
    cur_ = p;
    ExprPtr result = std::move(builder_.stack.back().node);
    builder_.reset();
    return result;
  }

  /// Skips the rest of a failed top-level item: to just after its `;`, or
  /// past a balanced `{...}` block, whichever comes first.
  void recoverTopLevel(It start) {
    if (cur_ < start)
      cur_ = start;
    It p = std::max(cur_, start + 1);
    int depth = 0;
    // Resume from the failing statement's start if the error was before `{`.
    for (p = start; p < end_; ++p) {
      if (*p == '{')
        ++depth;
      else if (*p == '}') {
        if (--depth <= 0) {
          ++p;
          break;
        }
      } else if (*p == ';' && depth == 0) {
        ++p;
        break;
      }
    }
    cur_ = std::min(p, end_);
  }

  /// Inside a block: skips to just after the failing clause's `;`, or to the
  /// block's closing `}` (not consumed).
  void recoverInBlock(It start) {
    int depth = 0;
    It p = start;
    for (; p < end_; ++p) {
      if (*p == '{' || *p == '(' || *p == '[')
        ++depth;
      else if (*p == '}' || *p == ')' || *p == ']') {
        if (depth == 0 && *p == '}')
          break;
        depth = std::max(0, depth - 1);
      } else if (*p == ';' && depth == 0) {
        ++p;
        break;
      }
    }
    cur_ = p;
  }

  // --- Statements -----------------------------------------------------------

  // param ::= 'param' identifier '=' expr ';'
  void parseParam() {
    It start = cur_;
    expectWord("param");
    ParamDecl d;
    d.name = expectIdent("param name", d.nameRange);
    expectPunct("=");
    d.value = parseExpr();
    expectPunct(";", " after param");
    d.range = {off(start), off(cur_)};
    program_.params.push_back(std::move(d));
  }

  // input ::= 'input' identifier ':' elem '[' axis (',' axis)* ']' ';'
  // elem  ::= 'i32' | 'i64' | 'f32' | 'bool'
  // axis  ::= 'batch' | 'head' | 'token'
  void parseInput() {
    It start = cur_;
    expectWord("input");
    InputDecl d;
    d.name = expectIdent("input name", d.nameRange);
    expectPunct(":");
    skipSpace();
    It elemAt = cur_;
    std::string elem = peekWord();
    static const std::pair<const char *, ElemType> elems[] = {
        {"i32", ElemType::I32}, {"i64", ElemType::I64}, {"f32", ElemType::F32}, {"bool", ElemType::Bool}};
    bool found = false;
    for (auto &[n, t] : elems)
      if (elem == n) {
        d.elem = t;
        found = true;
      }
    if (!found) {
      std::string hint = closestMatch(elem, {"i32", "i64", "f32", "bool"});
      fail(elemAt, "expected an element type ('i32', 'i64', 'f32' or 'bool'), found " + describe(elemAt) +
                       (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
    }
    cur_ += elem.size();
    expectPunct("[", " to start the input's axes");
    do {
      skipSpace();
      It axisAt = cur_;
      std::string axis = peekWord();
      static const std::pair<const char *, Axis> axes[] = {
          {"batch", Axis::Batch}, {"head", Axis::Head}, {"token", Axis::Token}};
      bool ok = false;
      for (auto &[n, a] : axes)
        if (axis == n) {
          d.axes.push_back(a);
          d.axisRanges.push_back(rangeAt(axisAt, axis.size()));
          ok = true;
        }
      if (!ok) {
        std::string hint = closestMatch(axis, {"batch", "head", "token"});
        fail(axisAt, "expected an axis ('batch', 'head' or 'token'), found " + describe(axisAt) +
                         (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
      }
      cur_ += axis.size();
    } while (acceptPunct(","));
    expectPunct("]", " to close the input's axes");
    expectPunct(";", " after input");
    d.range = {off(start), off(cur_)};
    program_.inputs.push_back(std::move(d));
  }

  // attention ::= 'attention' identifier '{' clause* '}'
  void parseAttention() {
    It start = cur_;
    expectWord("attention");
    AttentionDecl d;
    d.name = expectIdent("attention name", d.nameRange);
    skipSpace();
    It open = cur_;
    expectPunct("{", " to open the attention body");
    while (skipSpace(), cur_ != end_ && *cur_ != '}') {
      It clauseStart = cur_;
      try {
        parseClause(d);
      } catch (StatementFailed &) {
        recoverInBlock(clauseStart);
      }
      if (diags_.errorCount() > DiagnosticEngine::kMaxErrors)
        throw StatementFailed{};
    }
    if (cur_ == end_) {
      diags_.error(rangeAt(end_ - (end_ > begin_), 1),
                   "expected '}' to close attention '" + d.name + "', found end of file");
      diags_.note(rangeAt(open), "the body opened here");
      throw StatementFailed{};
    }
    ++cur_; // '}'
    d.range = {off(start), off(cur_)};
    program_.attentions.push_back(std::move(d));
  }

  // clause ::= 'let' identifier '=' expr ';' | 'mask' expr ';' | 'score' expr ';'
  //          | 'scale' expr ';' | 'sink' ';' | select
  void parseClause(AttentionDecl &d) {
    It start = cur_;
    std::string w = peekWord();
    if (w == "let") {
      expectWord("let");
      LetDecl l;
      l.name = expectIdent("name after 'let'", l.nameRange);
      expectPunct("=");
      l.value = parseExpr();
      expectPunct(";", " after let");
      l.range = {off(start), off(cur_)};
      d.lets.push_back(std::move(l));
    } else if (w == "mask") {
      expectWord("mask");
      d.masks.push_back(parseExpr());
      expectPunct(";", " after mask");
    } else if (w == "score" || w == "scale") {
      ExprPtr &slot = w == "score" ? d.score : d.scale;
      SourceRange &where = w == "score" ? d.scoreRange : d.scaleRange;
      expectWord(w.c_str());
      ExprPtr e = parseExpr();
      expectPunct(";", w == "score" ? " after score" : " after scale");
      if (slot) {
        diags_.error({off(start), off(start) + uint32_t(w.size())},
                     "duplicate '" + w + "' clause in attention '" + d.name + "'");
        diags_.note(where, "the first one is here");
        return;
      }
      slot = std::move(e);
      where = {off(start), off(cur_)};
    } else if (w == "sink") {
      expectWord("sink");
      expectPunct(";", " after sink");
      if (d.sink) {
        diags_.error(rangeAt(start, 4), "duplicate 'sink' clause in attention '" + d.name + "'");
        return;
      }
      d.sink = true;
      d.sinkRange = {off(start), off(cur_)};
    } else if (w == "select") {
      parseSelect(d, start);
    } else {
      std::string hint = closestMatch(w, {"let", "mask", "score", "scale", "sink", "select"});
      fail(cur_, "expected a clause ('let', 'mask', 'score', 'scale', 'sink' or 'select'), found " +
                     describe(cur_) + (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
    }
  }

  // select  ::= 'select' 'topk' '(' expr ')' 'by' (indexer | expr) ';'
  // indexer ::= 'indexer' '(' setting (',' setting)* ')'
  // setting ::= ('heads' | 'dim') '=' expr | 'dtype' '=' ('fp8' | 'bf16' | 'fp16' | 'fp32')
  void parseSelect(AttentionDecl &d, It start) {
    expectWord("select");
    SelectClause s;
    skipSpace();
    if (peekWord() == "topk_blocks")
      fail(cur_, "'topk_blocks' (block selection) is not supported yet; use 'topk'");
    expectWord("topk");
    expectPunct("(");
    s.k = parseExpr();
    expectPunct(")", " to close topk(");
    expectWord("by");
    skipSpace();
    It byAt = cur_;
    std::string by = peekWord();
    bool indexerCall = false;
    if (by == "indexer") {
      It p = cur_ + by.size();
      while (p != end_ && std::isspace((unsigned char)*p))
        ++p;
      indexerCall = p != end_ && *p == '(';
    }
    if (indexerCall) {
      s.byIndexer = true;
      cur_ += by.size();
      expectPunct("(");
      bool haveDType = false;
      do {
        skipSpace();
        It keyAt = cur_;
        std::string key = peekWord();
        if (key != "heads" && key != "dim" && key != "dtype") {
          std::string hint = closestMatch(key, {"heads", "dim", "dtype"});
          fail(keyAt, "expected an indexer setting ('heads', 'dim' or 'dtype'), found " + describe(keyAt) +
                          (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
        }
        cur_ += key.size();
        expectPunct("=");
        if (key == "dtype") {
          skipSpace();
          It valAt = cur_;
          std::string v = peekWord();
          static const std::pair<const char *, IndexerDType> types[] = {
              {"fp8", IndexerDType::FP8}, {"bf16", IndexerDType::BF16},
              {"fp16", IndexerDType::FP16}, {"fp32", IndexerDType::FP32}};
          bool ok = false;
          for (auto &[n, t] : types)
            if (v == n) {
              s.indexerDType = t;
              ok = true;
            }
          if (!ok)
            fail(valAt, "expected an indexer dtype ('fp8', 'bf16', 'fp16' or 'fp32'), found " + describe(valAt));
          if (haveDType)
            fail(keyAt, "duplicate indexer setting 'dtype'");
          cur_ += v.size();
          haveDType = true;
        } else {
          ExprPtr &slot = key == "heads" ? s.indexerHeads : s.indexerDim;
          ExprPtr e = parseExpr();
          if (slot)
            fail(keyAt, "duplicate indexer setting '" + key + "'");
          slot = std::move(e);
        }
      } while (acceptPunct(","));
      expectPunct(")", " to close indexer(");
      s.indexerRange = {off(byAt), off(cur_)};
      if (!s.indexerHeads || !s.indexerDim)
        fail(byAt, std::string("indexer needs '") + (!s.indexerHeads ? "heads" : "dim") + " = N'");
    } else {
      s.byExpr = parseExpr();
    }
    expectPunct(";", " after select");
    s.range = {off(start), off(cur_)};
    if (d.select) {
      diags_.error(rangeAt(start, 6), "duplicate 'select' clause in attention '" + d.name + "'");
      diags_.note(d.select->range, "the first one is here");
      return;
    }
    d.select = std::move(s);
  }

  // model ::= 'model' identifier '{' ('layers' expr ';' | rule)* '}'
  void parseModel() {
    It start = cur_;
    expectWord("model");
    ModelDecl m;
    m.name = expectIdent("model name", m.nameRange);
    skipSpace();
    It open = cur_;
    expectPunct("{", " to open the model body");
    while (skipSpace(), cur_ != end_ && *cur_ != '}') {
      It ruleStart = cur_;
      try {
        parseModelItem(m);
      } catch (StatementFailed &) {
        recoverInBlock(ruleStart);
      }
      if (diags_.errorCount() > DiagnosticEngine::kMaxErrors)
        throw StatementFailed{};
    }
    if (cur_ == end_) {
      diags_.error(rangeAt(end_ - (end_ > begin_), 1),
                   "expected '}' to close model '" + m.name + "', found end of file");
      diags_.note(rangeAt(open), "the body opened here");
      throw StatementFailed{};
    }
    ++cur_;
    m.range = {off(start), off(cur_)};
    program_.models.push_back(std::move(m));
  }

  // rule ::= 'layer' identifier ':' expr ';'          (every layer, i bound)
  //        | 'layer' expr ('..' expr)? ':' expr ';'   (one layer, or an inclusive range)
  void parseModelItem(ModelDecl &m) {
    It start = cur_;
    std::string w = peekWord();
    if (w == "layers") {
      expectWord("layers");
      ExprPtr n = parseExpr();
      expectPunct(";", " after layers");
      if (m.layers) {
        diags_.error(rangeAt(start, 6), "duplicate 'layers' in model '" + m.name + "'");
        return;
      }
      m.layers = std::move(n);
      return;
    }
    if (w != "layer") {
      std::string hint = closestMatch(w, {"layers", "layer"});
      fail(cur_, "expected 'layers N;' or a 'layer' rule, found " + describe(cur_) +
                     (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
    }
    expectWord("layer");
    LayerRule r;
    skipSpace();
    // `layer IDENT :` binds a variable for every layer.
    std::string var = peekWord();
    It afterVar = cur_ + var.size();
    while (afterVar != end_ && std::isspace((unsigned char)*afterVar))
      ++afterVar;
    if (!var.empty() && !isKeyword(var) && afterVar != end_ && *afterVar == ':') {
      r.kind = LayerRule::Kind::ForAll;
      r.var = var;
      r.varRange = rangeAt(cur_, var.size());
      cur_ += var.size();
    } else {
      r.first = parseExpr();
      r.kind = LayerRule::Kind::Single;
      if (acceptPunct("..")) {
        r.kind = LayerRule::Kind::Range;
        r.last = parseExpr();
      }
    }
    expectPunct(":", " after the layers a rule applies to");
    r.value = parseExpr();
    expectPunct(";", " after layer rule");
    r.range = {off(start), off(cur_)};
    m.rules.push_back(std::move(r));
  }
};

} // namespace

Program parseProgram(const SourceFile &file, DiagnosticEngine &diags, const ParseLimits &limits) {
  ParserImpl parser(file, diags, limits);
  return parser.run();
}

} // namespace attnc::dsl

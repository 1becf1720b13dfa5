//===- Ast.h - The attention language's syntax tree -------------*- C++ -*-===//
//
// What the parser produces and semantic analysis annotates: a program of
// params, inputs, attention variants and models. Every node carries the byte
// range it was parsed from, so every later error can point into the source.
// Sema fills the `type` and `ref` fields of expressions; nothing else mutates
// the tree after parsing.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace attnc::dsl {

/// A half-open byte range [begin, end) into the source buffer.
struct SourceRange {
  uint32_t begin = 0;
  uint32_t end = 0;
};

/// The three value types of the language.
enum class Type { Unknown, Int, Float, Bool };
const char *typeName(Type t);

/// Operators, unary and binary, and the conditional `?:`.
enum class Op {
  Neg, Not,                         // unary
  Add, Sub, Mul, Div, Mod,          // arithmetic (int / and % are floor)
  Lt, Le, Gt, Ge, Eq, Ne,           // comparison
  And, Or,                          // logic
  Cond                              // c ? a : b
};
const char *opSpelling(Op op);

/// Built-in functions.
enum class Builtin { Abs, Min, Max, Clamp, Tanh, Exp, Log, Sqrt };
const char *builtinName(Builtin b);

/// What a name in an expression refers to (filled by sema).
enum class RefKind {
  Unresolved,
  VarQ, VarK, VarH, VarB, VarQLen, VarKLen, VarScore, // index variables and s
  LayerVar,  // the variable of a `layer i:` rule
  Param,     // refIndex: Program::params
  Let,       // refIndex: AttentionDecl::lets
  Variant,   // refIndex: Program::attentions (a leaf of a layer rule)
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

/// One expression node. A plain tagged struct: small to walk and to print.
struct Expr {
  enum class Kind { IntLit, FloatLit, BoolLit, Name, Unary, Binary, Cond, Call, Index };
  Kind kind;
  SourceRange range;
  int64_t intValue = 0;     // IntLit
  double floatValue = 0.0;  // FloatLit
  bool boolValue = false;   // BoolLit
  std::string name;         // Name; Call: callee as written; Index: tensor name
  SourceRange nameRange;    // Call/Index: range of the callee / tensor name
  Op op = Op::Add;          // Unary, Binary, Cond
  Builtin builtin = Builtin::Abs; // Call (valid after parsing a known name)
  std::vector<ExprPtr> operands;  // Unary 1, Binary 2, Cond 3, Call/Index args

  // Filled by sema.
  Type type = Type::Unknown;
  RefKind ref = RefKind::Unresolved;
  int refIndex = -1;        // Param/Let/Variant index; Index: Program::inputs

  explicit Expr(Kind k) : kind(k) {}
};

/// `param NAME = EXPR;`
struct ParamDecl {
  std::string name;
  SourceRange nameRange, range;
  ExprPtr value;
};

enum class ElemType { I32, I64, F32, Bool };
const char *elemTypeName(ElemType t);
enum class Axis { Batch, Head, Token };
const char *axisName(Axis a);

/// `input NAME : ELEM[AXIS, ...];`
struct InputDecl {
  std::string name;
  SourceRange nameRange, range;
  ElemType elem = ElemType::I32;
  std::vector<Axis> axes;
  std::vector<SourceRange> axisRanges;
};

/// `let NAME = EXPR;` inside an attention variant.
struct LetDecl {
  std::string name;
  SourceRange nameRange, range;
  ExprPtr value;
};

enum class IndexerDType { FP8, BF16, FP16, FP32 };
const char *indexerDTypeName(IndexerDType t);

/// `select topk(K) by indexer(...)` or `select topk(K) by EXPR`.
struct SelectClause {
  SourceRange range;
  ExprPtr k;                 // a constant int expression, >= 1
  bool byIndexer = false;
  // Indexer settings (when byIndexer).
  ExprPtr indexerHeads, indexerDim;
  IndexerDType indexerDType = IndexerDType::FP8;
  SourceRange indexerRange;
  ExprPtr byExpr;            // when !byIndexer
};

/// `attention NAME { ... }`
struct AttentionDecl {
  std::string name;
  SourceRange nameRange, range;
  std::vector<LetDecl> lets;
  std::vector<ExprPtr> masks;     // ANDed
  ExprPtr score;                  // may be null
  SourceRange scoreRange;
  ExprPtr scale;                  // may be null
  SourceRange scaleRange;
  bool sink = false;
  SourceRange sinkRange;
  std::optional<SelectClause> select;
};

/// One rule of a model: `layer 3: v;`, `layer 0..47: v;` or `layer i: EXPR;`.
struct LayerRule {
  enum class Kind { Single, Range, ForAll };
  Kind kind = Kind::Single;
  SourceRange range;
  ExprPtr first, last;       // Single: first; Range: first..last (inclusive)
  std::string var;           // ForAll: the layer variable
  SourceRange varRange;
  ExprPtr value;             // names a variant, possibly through ?:
};

/// `model NAME { layers N; rules... }`
struct ModelDecl {
  std::string name;
  SourceRange nameRange, range;
  ExprPtr layers;            // null if missing (an error sema reports)
  std::vector<LayerRule> rules;
};

/// A whole .attn file.
struct Program {
  std::vector<ParamDecl> params;
  std::vector<InputDecl> inputs;
  std::vector<AttentionDecl> attentions;
  std::vector<ModelDecl> models;
};

} // namespace attnc::dsl

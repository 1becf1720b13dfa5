//===- MLIRGen.cpp - Checked program -> attn dialect ----------------------===//
//
// One linear walk over the checked program, in source order:
//   1. each `input` becomes an attn.input symbol;
//   2. each `attention` becomes an attn.variant: its mask clauses ANDed into
//      the mask region (`true` without any), the score and the selection
//      expression into the score and select regions; scale, sink, topk and
//      the indexer become attributes, with the values sema computed;
//   3. each `model` becomes an attn.model: its distinct variants (in order of
//      first use) and a table of indices into them, one per layer.
//
// Expressions: int -> i64, float -> f32, bool -> i1. Mixed arithmetic
// promotes the int side with arith.sitofp; int `/` is arith.floordivsi and
// int `%` is attn.floormod (floor semantics, language.md 8.1). Params are
// folded to arith.constant with their final value (after -D). A let is
// emitted once per region, at its first use, and reused after that.
// Every op gets the FileLineColLoc of the start of its source range.
//
//===----------------------------------------------------------------------===//
#include "attnc/dsl/MLIRGen.h"

#include "attnc/Dialect/Attn/IR/AttnDialect.h"
#include "attnc/Dialect/Attn/IR/AttnOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/raw_ostream.h"

#include <cassert>
#include <functional>

namespace attnc::dsl {

using namespace mlir;
namespace arith = mlir::arith;
namespace math = mlir::math;
using attnc::attn::VariantRegion;

namespace {

// The front end has its own `Value` (a compile-time constant) and
// `Diagnostic`; here Value means mlir::Value and the front end's is dsl::Value.
using mlir::Value;

/// Builds the body of one region of an attn.variant from checked expressions.
class RegionGen {
public:
  RegionGen(OpBuilder &builder, const CheckedProgram &program, const AttentionDecl &variant,
            VariantRegion kind, Block &block, std::function<Location(SourceRange)> loc)
      : b_(builder), program_(program), variant_(variant), loc_(std::move(loc)) {
    for (auto [arg, name] :
         llvm::zip(block.getArguments(), attn::VariantOp::getArgNames(kind)))
      args_[name] = arg;
  }

  /// The value of `e`, typed by sema: int -> i64, float -> f32, bool -> i1.
  Value gen(const Expr &e) {
    Location l = loc_(e.range);
    switch (e.kind) {
    case Expr::Kind::IntLit: return intConst(e.intValue, l);
    case Expr::Kind::FloatLit: return floatConst(e.floatValue, l);
    case Expr::Kind::BoolLit: return boolConst(e.boolValue, l);
    case Expr::Kind::Name: return genName(e, l);
    case Expr::Kind::Index: return genRead(e, l);
    case Expr::Kind::Call: return genCall(e, l);
    case Expr::Kind::Unary: return genUnary(e, l);
    case Expr::Kind::Binary: return genBinary(e, l);
    case Expr::Kind::Cond: {
      Value c = gen(*e.operands[0]);
      Value a = as(e.type, gen(*e.operands[1]), l);
      Value x = as(e.type, gen(*e.operands[2]), l);
      return arith::SelectOp::create(b_, l, c, a, x);
    }
    }
    llvm_unreachable("unknown expression kind");
  }

  /// `v` converted to the type of language type `t` (only int -> float
  /// promotes; everything else already has its type).
  Value as(Type t, Value v, Location l) {
    if (t == Type::Float && v.getType().isInteger(64))
      return arith::SIToFPOp::create(b_, l, b_.getF32Type(), v);
    return v;
  }

  Value intConst(int64_t v, Location l) { return arith::ConstantIntOp::create(b_, l, b_.getI64Type(), v); }
  Value floatConst(double v, Location l) {
    return arith::ConstantOp::create(b_, l, b_.getF32FloatAttr(float(v)));
  }
  Value boolConst(bool v, Location l) { return arith::ConstantIntOp::create(b_, l, b_.getI1Type(), v); }

private:
  OpBuilder &b_;
  const CheckedProgram &program_;
  const AttentionDecl &variant_;
  std::function<Location(SourceRange)> loc_;
  llvm::StringMap<Value> args_;          ///< q k h b qlen klen s -> block argument
  llvm::DenseMap<int, Value> lets_;      ///< let index -> its value in this region

  Value arg(StringRef name) {
    Value v = args_.lookup(name);
    assert(v && "sema let a variable into a region that has no such argument");
    return v;
  }

  Value genName(const Expr &e, Location l) {
    switch (e.ref) {
    case RefKind::VarQ: return arg("q");
    case RefKind::VarK: return arg("k");
    case RefKind::VarH: return arg("h");
    case RefKind::VarB: return arg("b");
    case RefKind::VarQLen: return arg("qlen");
    case RefKind::VarKLen: return arg("klen");
    case RefKind::VarScore: return arg("s");
    case RefKind::Param: {
      const dsl::Value &p = program_.params[e.refIndex];
      switch (p.type) {
      case Type::Int: return intConst(p.i, l);
      case Type::Float: return floatConst(p.f, l);
      case Type::Bool: return boolConst(p.b, l);
      case Type::Unknown: break;
      }
      llvm_unreachable("a checked param has a type");
    }
    case RefKind::Let: {
      // Emitted at the first use in this region; the ops keep the let's own
      // source locations.
      auto it = lets_.find(e.refIndex);
      if (it != lets_.end())
        return it->second;
      Value v = gen(*variant_.lets[e.refIndex].value);
      lets_[e.refIndex] = v;
      return v;
    }
    case RefKind::LayerVar:
    case RefKind::Variant:
    case RefKind::Unresolved: break;
    }
    llvm_unreachable("name kind cannot appear in a variant's expression");
  }

  Value genRead(const Expr &e, Location l) {
    const InputDecl &in = program_.ast.inputs[e.refIndex];
    SmallVector<Value> indices;
    for (const ExprPtr &index : e.operands)
      indices.push_back(gen(*index));
    mlir::Type elem;
    switch (in.elem) {
    case ElemType::I32: elem = b_.getI32Type(); break;
    case ElemType::I64: elem = b_.getI64Type(); break;
    case ElemType::F32: elem = b_.getF32Type(); break;
    case ElemType::Bool: elem = b_.getI1Type(); break;
    }
    Value v = attn::ReadOp::create(b_, l, elem, FlatSymbolRefAttr::get(b_.getContext(), in.name), indices);
    if (in.elem == ElemType::I32)
      v = arith::ExtSIOp::create(b_, l, b_.getI64Type(), v);
    return v;
  }

  Value genCall(const Expr &e, Location l) {
    SmallVector<Value> args;
    for (const ExprPtr &a : e.operands)
      args.push_back(as(e.type, gen(*a), l));
    bool isFloat = e.type == Type::Float;
    switch (e.builtin) {
    case Builtin::Abs:
      return isFloat ? Value(math::AbsFOp::create(b_, l, args[0])) : Value(math::AbsIOp::create(b_, l, args[0]));
    case Builtin::Min: return minOf(args[0], args[1], isFloat, l);
    case Builtin::Max: return maxOf(args[0], args[1], isFloat, l);
    case Builtin::Clamp: return minOf(maxOf(args[0], args[1], isFloat, l), args[2], isFloat, l);
    case Builtin::Tanh: return math::TanhOp::create(b_, l, args[0]);
    case Builtin::Exp: return math::ExpOp::create(b_, l, args[0]);
    case Builtin::Log: return math::LogOp::create(b_, l, args[0]);
    case Builtin::Sqrt: return math::SqrtOp::create(b_, l, args[0]);
    }
    llvm_unreachable("unknown builtin");
  }

  Value minOf(Value a, Value x, bool isFloat, Location l) {
    return isFloat ? Value(arith::MinimumFOp::create(b_, l, a, x)) : Value(arith::MinSIOp::create(b_, l, a, x));
  }
  Value maxOf(Value a, Value x, bool isFloat, Location l) {
    return isFloat ? Value(arith::MaximumFOp::create(b_, l, a, x)) : Value(arith::MaxSIOp::create(b_, l, a, x));
  }

  Value genUnary(const Expr &e, Location l) {
    // There are no negative literals in the language: `-1` is Neg(1). Emit
    // it as the constant -1 rather than 0 - 1.
    const Expr &operand = *e.operands[0];
    if (e.op == Op::Neg && operand.kind == Expr::Kind::IntLit)
      return intConst(int64_t(0 - uint64_t(operand.intValue)), l);
    if (e.op == Op::Neg && operand.kind == Expr::Kind::FloatLit)
      return floatConst(-operand.floatValue, l);
    Value v = gen(operand);
    if (e.op == Op::Not)
      return arith::XOrIOp::create(b_, l, v, boolConst(true, l));
    if (e.type == Type::Float)
      return arith::NegFOp::create(b_, l, v);
    return arith::SubIOp::create(b_, l, intConst(0, l), v);
  }

  Value genBinary(const Expr &e, Location l) {
    const Expr &lhs = *e.operands[0], &rhs = *e.operands[1];
    Value a = gen(lhs), x = gen(rhs);
    switch (e.op) {
    case Op::And: return arith::AndIOp::create(b_, l, a, x);
    case Op::Or: return arith::OrIOp::create(b_, l, a, x);
    case Op::Lt:
    case Op::Le:
    case Op::Gt:
    case Op::Ge:
    case Op::Eq:
    case Op::Ne: return genCompare(e.op, lhs.type, a, rhs.type, x, l);
    default: break;
    }
    if (e.type == Type::Int) {
      switch (e.op) {
      case Op::Add: return arith::AddIOp::create(b_, l, a, x);
      case Op::Sub: return arith::SubIOp::create(b_, l, a, x);
      case Op::Mul: return arith::MulIOp::create(b_, l, a, x);
      case Op::Div: return arith::FloorDivSIOp::create(b_, l, a, x);
      case Op::Mod: return attn::FloorModOp::create(b_, l, a, x);
      default: break;
      }
      llvm_unreachable("not an int arithmetic operator");
    }
    a = as(Type::Float, a, l);
    x = as(Type::Float, x, l);
    switch (e.op) {
    case Op::Add: return arith::AddFOp::create(b_, l, a, x);
    case Op::Sub: return arith::SubFOp::create(b_, l, a, x);
    case Op::Mul: return arith::MulFOp::create(b_, l, a, x);
    case Op::Div: return arith::DivFOp::create(b_, l, a, x);
    default: break;
    }
    llvm_unreachable("not a float arithmetic operator");
  }

  /// Int/int and bool/bool compare as integers (signed); anything with a
  /// float compares as f32 with ordered predicates, except `!=`, which is
  /// unordered (true for NaN, as in the reference evaluator).
  Value genCompare(Op op, Type ta, Value a, Type tx, Value x, Location l) {
    if (ta != Type::Float && tx != Type::Float) {
      arith::CmpIPredicate p;
      switch (op) {
      case Op::Lt: p = arith::CmpIPredicate::slt; break;
      case Op::Le: p = arith::CmpIPredicate::sle; break;
      case Op::Gt: p = arith::CmpIPredicate::sgt; break;
      case Op::Ge: p = arith::CmpIPredicate::sge; break;
      case Op::Eq: p = arith::CmpIPredicate::eq; break;
      default: p = arith::CmpIPredicate::ne; break;
      }
      return arith::CmpIOp::create(b_, l, p, a, x);
    }
    arith::CmpFPredicate p;
    switch (op) {
    case Op::Lt: p = arith::CmpFPredicate::OLT; break;
    case Op::Le: p = arith::CmpFPredicate::OLE; break;
    case Op::Gt: p = arith::CmpFPredicate::OGT; break;
    case Op::Ge: p = arith::CmpFPredicate::OGE; break;
    case Op::Eq: p = arith::CmpFPredicate::OEQ; break;
    default: p = arith::CmpFPredicate::UNE; break;
    }
    return arith::CmpFOp::create(b_, l, p, as(Type::Float, a, l), as(Type::Float, x, l));
  }
};

/// Builds the module, one top-level item at a time.
class ModuleGen {
public:
  ModuleGen(MLIRContext &context, const CheckedProgram &program, const SourceFile &file)
      : ctx_(context), b_(&context), program_(program), file_(file),
        fileName_(StringAttr::get(&context, file.name())) {}

  OwningOpRef<ModuleOp> run() {
    OwningOpRef<ModuleOp> module = ModuleOp::create(loc({0, 0}));
    b_.setInsertionPointToEnd(module->getBody());
    for (const InputDecl &in : program_.ast.inputs)
      genInput(in);
    for (size_t i = 0; i < program_.ast.attentions.size(); ++i)
      genVariant(program_.ast.attentions[i], program_.variants[i]);
    for (size_t i = 0; i < program_.ast.models.size(); ++i)
      genModel(program_.ast.models[i], program_.models[i]);
    return module;
  }

private:
  MLIRContext &ctx_;
  OpBuilder b_;
  const CheckedProgram &program_;
  const SourceFile &file_;
  StringAttr fileName_;

  /// file:line:col of the start of `r`.
  Location loc(SourceRange r) {
    auto [line, col] = file_.lineCol(r.begin);
    return FileLineColLoc::get(fileName_, line, col);
  }

  void genInput(const InputDecl &in) {
    SmallVector<StringRef> axes;
    for (Axis a : in.axes)
      axes.push_back(axisName(a));
    mlir::Type elem = in.elem == ElemType::I32   ? b_.getI32Type()
                      : in.elem == ElemType::I64 ? b_.getI64Type()
                      : in.elem == ElemType::F32 ? mlir::Type(b_.getF32Type())
                                                 : b_.getI1Type();
    attn::InputOp::create(b_, loc(in.nameRange), b_.getStringAttr(in.name), b_.getStrArrayAttr(axes),
                          TypeAttr::get(elem));
  }

  /// Adds the entry block of a region of `kind` and returns it.
  Block &addRegionBlock(Region &region, VariantRegion kind, Location l) {
    Block &block = region.emplaceBlock();
    for (StringRef name : attn::VariantOp::getArgNames(kind))
      block.addArgument(name == "s" ? mlir::Type(b_.getF32Type()) : mlir::Type(b_.getI64Type()), l);
    return block;
  }

  void genVariant(const AttentionDecl &a, const VariantInfo &info) {
    Location l = loc(a.nameRange);
    FloatAttr scale = info.scale ? b_.getF64FloatAttr(*info.scale) : FloatAttr();
    UnitAttr sink = a.sink ? b_.getUnitAttr() : UnitAttr();
    IntegerAttr topk = info.topk ? b_.getI64IntegerAttr(*info.topk) : IntegerAttr();
    DictionaryAttr indexer;
    if (a.select && a.select->byIndexer)
      indexer = b_.getDictionaryAttr({
          b_.getNamedAttr("heads", b_.getI64IntegerAttr(info.indexerHeads)),
          b_.getNamedAttr("dim", b_.getI64IntegerAttr(info.indexerDim)),
          b_.getNamedAttr("dtype", b_.getStringAttr(indexerDTypeName(a.select->indexerDType))),
      });
    auto op = attn::VariantOp::create(b_, l, b_.getStringAttr(a.name), scale, sink, topk, indexer);
    OpBuilder::InsertionGuard guard(b_);
    auto locFn = [this](SourceRange r) { return loc(r); };

    // mask: the conjunction of every clause; true without any.
    {
      Block &block = addRegionBlock(op.getMask(), VariantRegion::Mask, l);
      b_.setInsertionPointToStart(&block);
      RegionGen gen(b_, program_, a, VariantRegion::Mask, block, locFn);
      Value all;
      Location last = l;
      for (const ExprPtr &m : a.masks) {
        Value v = gen.gen(*m);
        last = loc(m->range);
        all = all ? Value(arith::AndIOp::create(b_, last, all, v)) : v;
      }
      if (!all)
        all = gen.boolConst(true, l);
      attn::YieldOp::create(b_, last, all);
    }
    if (a.score) {
      Block &block = addRegionBlock(op.getScore(), VariantRegion::Score, l);
      b_.setInsertionPointToStart(&block);
      RegionGen gen(b_, program_, a, VariantRegion::Score, block, locFn);
      Location sl = loc(a.score->range);
      attn::YieldOp::create(b_, sl, gen.as(Type::Float, gen.gen(*a.score), sl));
    }
    if (a.select && !a.select->byIndexer) {
      Block &block = addRegionBlock(op.getSelect(), VariantRegion::Select, l);
      b_.setInsertionPointToStart(&block);
      RegionGen gen(b_, program_, a, VariantRegion::Select, block, locFn);
      attn::YieldOp::create(b_, loc(a.select->byExpr->range), gen.gen(*a.select->byExpr));
    }
  }

  void genModel(const ModelDecl &m, const ModelInfo &info) {
    SmallVector<Attribute> variants;
    llvm::DenseMap<int, int32_t> position; // variant index -> position in `variants`
    for (int v : info.distinctVariants) {
      position[v] = int32_t(variants.size());
      variants.push_back(FlatSymbolRefAttr::get(&ctx_, program_.ast.attentions[v].name));
    }
    SmallVector<int32_t> table;
    for (int v : info.layerVariant)
      table.push_back(position.lookup(v));
    attn::ModelOp::create(b_, loc(m.nameRange), b_.getStringAttr(m.name), b_.getI64IntegerAttr(info.layers),
                          b_.getArrayAttr(variants), b_.getDenseI32ArrayAttr(table));
  }
};

} // namespace

void registerMLIRGenDialects(DialectRegistry &registry) {
  registry.insert<attn::AttnDialect, arith::ArithDialect, math::MathDialect>();
}

OwningOpRef<ModuleOp> mlirGen(MLIRContext &context, const CheckedProgram &program, const SourceFile &file) {
  context.getOrLoadDialect<attn::AttnDialect>();
  context.getOrLoadDialect<arith::ArithDialect>();
  context.getOrLoadDialect<math::MathDialect>();
  return ModuleGen(context, program, file).run();
}

bool emitAttn(std::ostream &os, std::ostream &err, const CheckedProgram &program, const SourceFile &file,
              const EmitAttnOptions &options) {
  MLIRContext context;
  std::string diagnostics;
  llvm::raw_string_ostream diagOS(diagnostics);
  ScopedDiagnosticHandler handler(&context, [&](mlir::Diagnostic &d) {
    diagOS << d.getLocation() << ": " << d << "\n";
    return success();
  });
  OwningOpRef<ModuleOp> module = mlirGen(context, program, file);
  if (failed(verify(*module))) {
    err << "attnc: internal error: the attn module of " << file.name()
        << " does not verify (a bug in MLIRGen):\n"
        << diagnostics;
    return false;
  }
  OpPrintingFlags flags;
  if (options.debugInfo)
    flags.enableDebugInfo(/*enable=*/true, /*prettyForm=*/false).useLocalScope();
  std::string text;
  llvm::raw_string_ostream textOS(text);
  module->print(textOS, flags);
  os << text;
  return true;
}

} // namespace attnc::dsl

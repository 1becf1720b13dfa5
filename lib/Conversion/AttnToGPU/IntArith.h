//===- IntArith.h - Shorthands for i64/i1 arith ops at one location -*- C++ -*-===//
//
// The kernel builders (KernelEmitter, TileVisitRule) emit a great deal of
// scalar integer arithmetic: tile bounds, positions, predicates. IntArith
// names the ops they use, created at one location through one builder, so
// `minI(add(colFirst, ci(BN)), klen)` reads like the formula it is. Ops are
// created exactly as written (no folding): the kernels' IR, and so their
// PTX, follow the builders' code op for op.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/Builders.h"

namespace attnc {

class IntArith {
protected:
  IntArith(mlir::OpBuilder &b, mlir::Location loc) : b_(b), loc_(loc), i1_(b.getI1Type()), i64_(b.getI64Type()) {}

  mlir::OpBuilder &b_;
  mlir::Location loc_;
  mlir::Type i1_, i64_;

  using Value = mlir::Value;
  using Pred = mlir::arith::CmpIPredicate;
  Value ci(int64_t v) { return mlir::arith::ConstantIntOp::create(b_, loc_, i64_, v); }
  Value cbool(bool v) { return mlir::arith::ConstantIntOp::create(b_, loc_, i1_, v); }
  Value add(Value a, Value x) { return mlir::arith::AddIOp::create(b_, loc_, a, x); }
  Value sub(Value a, Value x) { return mlir::arith::SubIOp::create(b_, loc_, a, x); }
  Value mul(Value a, Value x) { return mlir::arith::MulIOp::create(b_, loc_, a, x); }
  Value minI(Value a, Value x) { return mlir::arith::MinSIOp::create(b_, loc_, a, x); }
  Value maxI(Value a, Value x) { return mlir::arith::MaxSIOp::create(b_, loc_, a, x); }
  Value cmpI(Pred p, Value a, Value x) { return mlir::arith::CmpIOp::create(b_, loc_, p, a, x); }
  Value sel(Value c, Value a, Value x) { return mlir::arith::SelectOp::create(b_, loc_, c, a, x); }
  Value andB(Value a, Value x) { return mlir::arith::AndIOp::create(b_, loc_, a, x); }
  Value orB(Value a, Value x) { return mlir::arith::OrIOp::create(b_, loc_, a, x); }
  Value notB(Value a) { return mlir::arith::XOrIOp::create(b_, loc_, a, cbool(true)); }
};

} // namespace attnc

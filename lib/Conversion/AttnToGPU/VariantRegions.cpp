//===- VariantRegions.cpp - Mask and score regions per element ----------===//
//
// The variant's mask and score regions cloned into the kernel per element:
// attn.read becomes a global load, attn.floormod floor arithmetic, and math
// ops SFU instructions (no libdevice).
//
//===----------------------------------------------------------------------===//
#include "KernelEmitter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Dialect/Math/IR/Math.h"

using namespace mlir;

namespace attnc::flash {

//===----------------------------------------------------------------------===//
// The variant's regions, cloned per element.
//===----------------------------------------------------------------------===//
Value KernelEmitter::readInput(attn::ReadOp read, ArrayRef<Value> indices) {
  for (InputArg &in : inputs_) {
    if (in.name != read.getInput())
      continue;
    Value idx = ci(0);
    for (size_t a = 0; a < indices.size(); ++a)
      idx = add(idx, mul(indices[a], in.strides[a]));
    Value v = memref::LoadOp::create(b_, loc_, in.ptr, ValueRange{toIndex(idx)});
    if (in.storage.isInteger(8))
      return cmpI(arith::CmpIPredicate::ne, v, arith::ConstantIntOp::create(b_, loc_, in.storage, 0));
    return v;
  }
  llvm_unreachable("an attn.read of an input the kernel does not take");
}

/// Clones the body of `region` with its block arguments bound to `args` and
/// returns the yielded value. attn.read becomes a global load; attn.floormod
/// becomes x - d * floor(x / d).
Value KernelEmitter::inlineRegion(Region &region, ArrayRef<Value> args) {
  IRMapping map;
  Block &body = region.front();
  for (auto [arg, value] : llvm::zip(body.getArguments(), args))
    map.map(arg, value);
  for (Operation &op : body.without_terminator()) {
    if (auto read = dyn_cast<attn::ReadOp>(op)) {
      SmallVector<Value> idx;
      for (Value i : read.getIndices())
        idx.push_back(map.lookup(i));
      map.map(read.getResult(), readInput(read, idx));
    } else if (auto mod = dyn_cast<attn::FloorModOp>(op)) {
      Value x = map.lookup(mod->getOperand(0)), d = map.lookup(mod->getOperand(1));
      Value q = arith::FloorDivSIOp::create(b_, loc_, x, d);
      map.map(mod->getResult(0), sub(x, mul(q, d)));
    } else if (Value v = lowerMath(op, map)) {
      map.map(op.getResult(0), v);
    } else {
      b_.clone(op, map);
    }
  }
  return map.lookup(cast<attn::YieldOp>(body.getTerminator()).getValues().front());
}

/// math ops of score and mask regions, on the SFU and without libdevice:
///   exp(x) = 2^(x log2 e), log(x) = log2(x) ln 2, sqrt by sqrt.rn,
///   tanh(x) = sign(x) (1 - 2 / (e^(2|x|) + 1)) (absolute error ~1e-7),
///   abs on ints by a select.
Value KernelEmitter::lowerMath(Operation &op, IRMapping &map) {
  auto in = [&]() { return map.lookup(op.getOperand(0)); };
  if (isa<math::ExpOp>(op))
    return exp2F(mulF(in(), cf(kLog2e)));
  if (isa<math::LogOp>(op))
    return mulF(log2F(in()), cf(1.0 / kLog2e));
  if (isa<math::SqrtOp>(op))
    return ptxUnary("sqrt.rn.f32 $0, $1;", in());
  if (isa<math::AbsFOp>(op))
    return ptxUnary("abs.f32 $0, $1;", in());
  if (isa<math::TanhOp>(op)) {
    Value x = in();
    Value ax = ptxUnary("abs.f32 $0, $1;", x);
    Value e = exp2F(mulF(ax, cf(2 * kLog2e)));
    Value t = subF(cf(1), arith::DivFOp::create(b_, loc_, cf(2), addF(e, cf(1))));
    Value neg = arith::CmpFOp::create(b_, loc_, arith::CmpFPredicate::OLT, x, cf(0));
    return arith::SelectOp::create(b_, loc_, neg, arith::NegFOp::create(b_, loc_, t), t);
  }
  if (auto abs = dyn_cast<math::AbsIOp>(op)) {
    Value x = in();
    Value zero = arith::ConstantIntOp::create(b_, loc_, x.getType(), 0);
    Value neg = cmpI(arith::CmpIPredicate::slt, x, zero);
    return sel(neg, arith::SubIOp::create(b_, loc_, zero, x), x);
  }
  return Value();
}

Value KernelEmitter::maskOf(Value q, Value k) {
  return inlineRegion(variant_.getMask(), {q, k, hIdx_, bIdx_, qlen_, klen_});
}

Value KernelEmitter::scoreOf(Value s, Value q, Value k) {
  if (variant_.getScore().empty())
    return s;
  return inlineRegion(variant_.getScore(), {q, k, hIdx_, bIdx_, qlen_, klen_, s});
}

} // namespace attnc::flash

//===- VariantRegions.cpp - Mask and score regions per element ----------===//
//
// The variant's mask and score regions cloned into the kernel per element,
// op for op; RegionOpLowering.cpp's patterns then turn attn.read into a
// global load, attn.floormod into floor arithmetic and math ops into SFU
// instructions (no libdevice).
//
//===----------------------------------------------------------------------===//
#include "KernelEmitter.h"
#include "ScoreDerivative.h"

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
/// Clones the body of `region` with its block arguments bound to `args` and
/// returns the yielded value. attn.read, attn.floormod and math ops are
/// cloned as they are: attn-lower-region-ops' patterns lower them once the
/// whole kernel is built.
Value KernelEmitter::inlineRegion(Region &region, ArrayRef<Value> args) {
  IRMapping map;
  Block &body = region.front();
  for (auto [arg, value] : llvm::zip(body.getArguments(), args))
    map.map(arg, value);
  for (Operation &op : body.without_terminator())
    b_.clone(op, map);
  return map.lookup(cast<attn::YieldOp>(body.getTerminator()).getValues().front());
}

Value KernelEmitter::maskOf(Value q, Value k) {
  return inlineRegion(variant_.getMask(), {q, k, hIdx_, bIdx_, qlen_, klen_});
}

Value KernelEmitter::scoreOf(Value s, Value q, Value k, Value h) {
  if (variant_.getScore().empty())
    return s;
  return inlineRegion(variant_.getScore(), {q, k, h ? h : hIdx_, bIdx_, qlen_, klen_, s});
}

std::pair<Value, Value> KernelEmitter::scoreAndSlopeOf(Value s, Value q, Value k, Value h) {
  return cloneScoreWithDerivative(b_, loc_, variant_.getScore(), {q, k, h ? h : hIdx_, bIdx_, qlen_, klen_, s});
}

Value KernelEmitter::selectScoreOf(Value q, Value k) {
  return inlineRegion(variant_.getSelect(), {q, k, bIdx_, qlen_, klen_});
}

} // namespace attnc::flash

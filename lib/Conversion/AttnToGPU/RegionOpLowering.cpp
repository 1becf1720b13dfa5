//===- RegionOpLowering.cpp - attn-lower-region-ops ------------------------===//
//
// Rewrite patterns for the ops of a variant's mask and score regions once
// they are cloned into a kernel (KernelEmitter::inlineRegion), and the pass
// that applies them alone (lit tests). The kernel's arguments say which is
// which by their `attn.arg` names (docs/runtime.md): input `doc` is the
// pointer `input:doc`, followed by one i64 stride per axis.
//   attn.read @doc[%b, %k]  ->  load input:doc[b * stride0 + k * stride1]
//   attn.floormod %x, %d    ->  x - d * floordivsi(x, d)
//   math.exp %x             ->  ex2.approx.ftz(x * log2 e)        (SFU, no libdevice)
//
//===----------------------------------------------------------------------===//
#include "attnc/Conversion/Passes.h"
#include "attnc/Dialect/Attn/IR/AttnOps.h"

#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Interfaces/FunctionInterfaces.h"
#include "mlir/Transforms/WalkPatternRewriteDriver.h"

#include <cmath>

using namespace mlir;

namespace attnc {

#define GEN_PASS_DEF_ATTNLOWERREGIONOPS
#include "attnc/Conversion/Passes.h.inc"

namespace {

constexpr double kLog2e = 1.4426950408889634;

/// The argument of the enclosing function named `name` by attn.arg, or -1.
int64_t argNamed(FunctionOpInterface func, StringRef name) {
  for (unsigned i = 0; i < func.getNumArguments(); ++i)
    if (auto a = func.getArgAttrOfType<StringAttr>(i, "attn.arg"); a && a.getValue() == name)
      return i;
  return -1;
}

/// Regions still inside their attn.variant are the source of truth: only
/// their clones are lowered.
bool inVariant(Operation *op) { return op->getParentOfType<attn::VariantOp>() != nullptr; }

struct LowerRead : OpRewritePattern<attn::ReadOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(attn::ReadOp read, PatternRewriter &rw) const override {
    if (inVariant(read))
      return failure();
    auto func = read->getParentOfType<FunctionOpInterface>();
    if (!func)
      return rw.notifyMatchFailure(read, "not inside a function");
    int64_t ptrArg = argNamed(func, ("input:" + read.getInput()).str());
    if (ptrArg < 0)
      return rw.notifyMatchFailure(read, "the function takes no such input");
    Location loc = read.getLoc();
    Value ptr = func.getArgument(ptrArg);
    Type i64 = rw.getI64Type();
    Value idx = arith::ConstantIntOp::create(rw, loc, i64, 0);
    for (auto [a, index] : llvm::enumerate(read.getIndices())) {
      Value stride = func.getArgument(ptrArg + 1 + a); // the strides follow the pointer, in axis order
      idx = arith::AddIOp::create(rw, loc, idx, arith::MulIOp::create(rw, loc, index, stride));
    }
    Value at = arith::IndexCastOp::create(rw, loc, rw.getIndexType(), idx);
    Value v = memref::LoadOp::create(rw, loc, ptr, ValueRange{at});
    Type storage = cast<MemRefType>(ptr.getType()).getElementType();
    if (storage.isInteger(8)) // bool inputs are stored as bytes
      v = arith::CmpIOp::create(rw, loc, arith::CmpIPredicate::ne, v, arith::ConstantIntOp::create(rw, loc, storage, 0));
    rw.replaceOp(read, v);
    return success();
  }
};

struct LowerFloorMod : OpRewritePattern<attn::FloorModOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(attn::FloorModOp mod, PatternRewriter &rw) const override {
    if (inVariant(mod))
      return failure();
    Location loc = mod.getLoc();
    Value x = mod.getLhs(), d = mod.getRhs();
    Value q = arith::FloorDivSIOp::create(rw, loc, x, d);
    rw.replaceOpWithNewOp<arith::SubIOp>(mod, x, arith::MulIOp::create(rw, loc, q, d));
    return success();
  }
};

/// One f32 instruction as inline PTX.
Value ptxUnary(PatternRewriter &rw, Location loc, const char *code, Value x) {
  return NVVM::InlinePtxOp::create(rw, loc, TypeRange{rw.getF32Type()}, ValueRange{x}, ValueRange{}, code, Value())
      .getResult(0);
}
Value cf(PatternRewriter &rw, Location loc, double v) {
  return arith::ConstantFloatOp::create(rw, loc, rw.getF32Type(), APFloat(float(v)));
}

/// math ops on the SFU, without libdevice:
///   exp(x) = 2^(x log2 e), log(x) = log2(x) ln 2, sqrt by sqrt.rn,
///   tanh(x) = sign(x) (1 - 2 / (e^(2|x|) + 1)) (absolute error ~1e-7),
///   abs on ints by a select.
template <typename MathOp>
struct LowerMath : OpRewritePattern<MathOp> {
  using OpRewritePattern<MathOp>::OpRewritePattern;
  LogicalResult matchAndRewrite(MathOp op, PatternRewriter &rw) const override {
    if (inVariant(op))
      return failure();
    Location loc = op.getLoc();
    Value x = op->getOperand(0), out;
    if constexpr (std::is_same_v<MathOp, math::AbsIOp>) {
      Value zero = arith::ConstantIntOp::create(rw, loc, x.getType(), 0);
      Value neg = arith::CmpIOp::create(rw, loc, arith::CmpIPredicate::slt, x, zero);
      out = arith::SelectOp::create(rw, loc, neg, arith::SubIOp::create(rw, loc, zero, x), x);
    } else {
      if (!x.getType().isF32())
        return rw.notifyMatchFailure(op, "not f32");
      if constexpr (std::is_same_v<MathOp, math::ExpOp>)
        out = ptxUnary(rw, loc, "ex2.approx.ftz.f32 $0, $1;", arith::MulFOp::create(rw, loc, x, cf(rw, loc, kLog2e)));
      else if constexpr (std::is_same_v<MathOp, math::LogOp>)
        out = arith::MulFOp::create(rw, loc, ptxUnary(rw, loc, "lg2.approx.ftz.f32 $0, $1;", x),
                                    cf(rw, loc, 1.0 / kLog2e));
      else if constexpr (std::is_same_v<MathOp, math::SqrtOp>)
        out = ptxUnary(rw, loc, "sqrt.rn.f32 $0, $1;", x);
      else if constexpr (std::is_same_v<MathOp, math::AbsFOp>)
        out = ptxUnary(rw, loc, "abs.f32 $0, $1;", x);
      else {
        static_assert(std::is_same_v<MathOp, math::TanhOp>);
        Value ax = ptxUnary(rw, loc, "abs.f32 $0, $1;", x);
        Value e = ptxUnary(rw, loc, "ex2.approx.ftz.f32 $0, $1;",
                           arith::MulFOp::create(rw, loc, ax, cf(rw, loc, 2 * kLog2e)));
        Value t = arith::SubFOp::create(
            rw, loc, cf(rw, loc, 1),
            arith::DivFOp::create(rw, loc, cf(rw, loc, 2), arith::AddFOp::create(rw, loc, e, cf(rw, loc, 1))));
        Value neg = arith::CmpFOp::create(rw, loc, arith::CmpFPredicate::OLT, x, cf(rw, loc, 0));
        out = arith::SelectOp::create(rw, loc, neg, arith::NegFOp::create(rw, loc, t), t);
      }
    }
    rw.replaceOp(op, out);
    return success();
  }
};

struct AttnLowerRegionOpsPass : impl::AttnLowerRegionOpsBase<AttnLowerRegionOpsPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateAttnRegionOpLoweringPatterns(patterns);
    walkAndApplyPatterns(getOperation(), std::move(patterns));
    WalkResult left = getOperation()->walk([](Operation *op) {
      if (isa<attn::ReadOp>(op) && op->getParentOfType<attn::VariantOp>() == nullptr) {
        op->emitError() << "expected the enclosing function to take input @" << cast<attn::ReadOp>(op).getInput()
                        << " (an argument named input:" << cast<attn::ReadOp>(op).getInput() << ")";
        return WalkResult::interrupt();
      }
      return WalkResult::advance();
    });
    if (left.wasInterrupted())
      signalPassFailure();
  }
};

} // namespace

void populateAttnRegionOpLoweringPatterns(RewritePatternSet &patterns) {
  patterns.add<LowerRead, LowerFloorMod, LowerMath<math::ExpOp>, LowerMath<math::LogOp>, LowerMath<math::SqrtOp>,
               LowerMath<math::AbsFOp>, LowerMath<math::TanhOp>, LowerMath<math::AbsIOp>>(patterns.getContext());
}

} // namespace attnc

//===- AttnTileOps.cpp - The tile stage's ops: verifiers and builders -----===//
//
// Shapes are checked against the enclosing attn.tile.kernel (block_m x
// head_dim query tiles, block_n x head_dim key tiles, block_m x block_n
// scores), in the dialect's "expected X, got Y" style:
//   'attn.tile.qk' op expected scores of shape 128x64, got 128x32
//
//===----------------------------------------------------------------------===//
#include "attnc/Dialect/Attn/IR/AttnOps.h"

#include "mlir/IR/Builders.h"

#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace attnc::attn;

#include "attnc/Dialect/Attn/IR/AttnEnums.cpp.inc"

namespace {

/// "128x64" for a ranked shape.
std::string shapeStr(ArrayRef<int64_t> shape) {
  std::string s;
  llvm::raw_string_ostream os(s);
  llvm::interleave(shape, os, "x");
  return s;
}

/// Checks `value`'s shape against `expected`; `what` names it in the message.
LogicalResult expectShape(Operation *op, Value value, ArrayRef<int64_t> expected, const char *what) {
  auto type = cast<RankedTensorType>(value.getType());
  if (type.getShape() == expected)
    return success();
  return op->emitOpError() << "expected " << what << " of shape " << shapeStr(expected) << ", got "
                           << shapeStr(type.getShape());
}

LogicalResult expectElem(Operation *op, Value value, Type elem, const char *what) {
  Type got = cast<RankedTensorType>(value.getType()).getElementType();
  if (got == elem)
    return success();
  return op->emitOpError() << "expected " << what << " of element type " << elem << ", got " << got;
}

TileKernelOp kernelOf(Operation *op) { return op->getParentOfType<TileKernelOp>(); }

} // namespace

//===----------------------------------------------------------------------===//
// attn.tile.kernel
//===----------------------------------------------------------------------===//

LogicalResult TileKernelOp::verify() {
  int64_t d = getHeadDim();
  if (d != 64 && d != 128 && d != 256)
    return emitOpError() << "expected head_dim 64, 128 or 256, got " << d;
  if (!getElem().isBF16() && !getElem().isF16())
    return emitOpError() << "expected elem bf16 or f16, got " << getElem();
  for (auto [name, v] : {std::pair{"block_m", getBlockM()}, std::pair{"block_n", getBlockN()}})
    if (v <= 0 || (v % 16 != 0 && !(overRows() && StringRef(name) == "block_m"))) // select/topk: block_m query rows
      return emitOpError() << "expected " << name << " a positive multiple of 16, got " << v;
  if (getCtasPerSm() < 1)
    return emitOpError() << "expected ctas_per_sm >= 1, got " << getCtasPerSm();
  if (getStage() && !overRows() && !overSelection() && !isSummaryStage() && !isBackward())
    return emitOpError() << "expected stage \"select\", \"topk\", \"attention\", \"summary\", \"backward_summary\", "
                            "\"backward_dq\" or \"backward_dkdv\", got \""
                         << *getStage() << "\"";
  // The tile program: load_q, key_loop, epilogue, in this order; a select
  // stage's is attn.tile.select_topk alone.
  SmallVector<StringRef> expected = {TileLoadQOp::getOperationName(), TileKeyLoopOp::getOperationName(),
                                     TileEpilogueOp::getOperationName()};
  if (isSelectStage())
    expected = {TileSelectScoresOp::getOperationName()};
  if (isTopkStage())
    expected = {TileSelectTopkOp::getOperationName()};
  if (isSummaryStage() || isBackwardSummary())
    expected = {TileSummarizeInputsOp::getOperationName()};
  if (isBackwardDQ())
    expected = {TileBackwardDQOp::getOperationName()};
  if (isBackwardDKDV())
    expected = {TileBackwardDKDVOp::getOperationName()};
  SmallVector<StringRef> got;
  for (Operation &op : getBody().front())
    got.push_back(op.getName().getStringRef());
  if (got != expected) {
    std::string s, e;
    llvm::raw_string_ostream os(s), es(e);
    llvm::interleaveComma(got, os);
    llvm::interleaveComma(expected, es);
    return emitOpError() << "expected the body to be " << e << ", got " << (got.empty() ? std::string("nothing") : s);
  }
  return success();
}

LogicalResult TileKernelOp::verifySymbolUses(SymbolTableCollection &symbols) {
  if (!symbols.lookupNearestSymbolFrom<VariantOp>(*this, getVariantAttr()))
    return emitOpError() << "expected " << getVariantAttr() << " to name an attn.variant";
  return success();
}

VariantOp TileKernelOp::getVariantOp() {
  return SymbolTable::lookupNearestSymbolFrom<VariantOp>(*this, getVariantAttr());
}

//===----------------------------------------------------------------------===//
// Loads
//===----------------------------------------------------------------------===//

LogicalResult TileLoadQOp::verify() {
  TileKernelOp k = kernelOf(*this);
  if (failed(expectShape(*this, getTile(), {int64_t(k.getBlockM()), int64_t(k.getHeadDim())}, "a query tile")))
    return failure();
  return expectElem(*this, getTile(), k.getElem(), "a query tile");
}

/// load_k and load_v: block_n x head_dim of the kernel's element type, at
/// the key loop's own tile index.
static LogicalResult verifyKeyRowsLoad(Operation *op, Value n, Value tile) {
  auto loop = op->getParentOfType<TileKeyLoopOp>();
  if (n != loop.getTileIndex())
    return op->emitOpError() << "expected the key loop's tile index as the tile to load";
  TileKernelOp k = kernelOf(op);
  if (failed(expectShape(op, tile, {int64_t(k.getBlockN()), int64_t(k.getHeadDim())}, "a key tile")))
    return failure();
  return expectElem(op, tile, k.getElem(), "a key tile");
}

LogicalResult TileLoadKOp::verify() { return verifyKeyRowsLoad(*this, getN(), getTile()); }
LogicalResult TileLoadVOp::verify() { return verifyKeyRowsLoad(*this, getN(), getTile()); }

//===----------------------------------------------------------------------===//
// attn.tile.key_loop
//===----------------------------------------------------------------------===//

void TileKeyLoopOp::build(OpBuilder &builder, OperationState &state, int64_t blockM, int64_t headDim, bool sink) {
  Type f32 = builder.getF32Type();
  auto row = RankedTensorType::get({blockM}, f32);
  auto acc = RankedTensorType::get({blockM, headDim}, f32);
  state.addTypes({row, row, acc});
  if (sink)
    state.addAttribute(getSinkAttrName(state.name), builder.getUnitAttr());
  Region *body = state.addRegion();
  Block *block = new Block();
  body->push_back(block);
  block->addArguments({builder.getI64Type(), builder.getI1Type(), row, row, acc},
                      SmallVector<Location>(5, state.location));
}

/// The body's arguments print as %n, %need_mask, %m0, %l0, %acc0.
void TileKeyLoopOp::getAsmBlockArgumentNames(Region &region, OpAsmSetValueNameFn setName) {
  static const char *names[] = {"n", "need_mask", "m0", "l0", "acc0"};
  for (auto [arg, name] : llvm::zip(region.front().getArguments(), names))
    setName(arg, name);
}

void TileKeyLoopOp::getAsmResultNames(OpAsmSetValueNameFn setName) {
  setName(getM(), "m");
  setName(getL(), "l");
  setName(getAcc(), "acc");
}

LogicalResult TileKeyLoopOp::verifyRegions() {
  Block &body = getBodyBlock();
  SmallVector<Type> expected = {IntegerType::get(getContext(), 64), IntegerType::get(getContext(), 1)};
  llvm::append_range(expected, getResultTypes());
  if (TypeRange(body.getArgumentTypes()) != TypeRange(expected))
    return emitOpError() << "expected the body's arguments to be (i64, i1, " << getM().getType() << ", "
                         << getL().getType() << ", " << getAcc().getType() << ")";
  auto yield = dyn_cast<TileYieldOp>(body.getTerminator());
  if (!yield)
    return emitOpError() << "expected the body to end with attn.tile.yield";
  if (yield->getOperandTypes() != getResultTypes())
    return emitOpError() << "expected attn.tile.yield of the loop's result types";
  TileKernelOp k = kernelOf(*this);
  if (failed(expectShape(*this, getM(), {int64_t(k.getBlockM())}, "a running maximum")))
    return failure();
  return expectShape(*this, getAcc(), {int64_t(k.getBlockM()), int64_t(k.getHeadDim())}, "an accumulator");
}

//===----------------------------------------------------------------------===//
// One key tile
//===----------------------------------------------------------------------===//

static ArrayRef<int64_t> shapeOf(Value v) { return cast<RankedTensorType>(v.getType()).getShape(); }

LogicalResult TileQKOp::verify() {
  ArrayRef<int64_t> q = shapeOf(getQ()), k = shapeOf(getK());
  if (q[1] != k[1])
    return emitOpError() << "expected q and k of the same head dim, got " << q[1] << " and " << k[1];
  return expectShape(*this, getS(), {q[0], k[0]}, "scores");
}

LogicalResult TileRescaleOp::verify() {
  int64_t rows = shapeOf(getM())[0];
  if (shapeOf(getS())[0] != rows || shapeOf(getAcc())[0] != rows)
    return emitOpError() << "expected scores and accumulator of " << rows << " rows, got "
                         << shapeOf(getS())[0] << " and " << shapeOf(getAcc())[0];
  return success();
}

LogicalResult TileExpOp::verify() {
  if (shapeOf(getS())[0] != shapeOf(getM())[0])
    return emitOpError() << "expected scores of " << shapeOf(getM())[0] << " rows, got " << shapeOf(getS())[0];
  return success();
}

LogicalResult TilePVOp::verify() {
  ArrayRef<int64_t> p = shapeOf(getP()), v = shapeOf(getV());
  if (p[1] != v[0])
    return emitOpError() << "expected v of " << p[1] << " rows (p's columns), got " << v[0];
  return expectShape(*this, getAcc(), {p[0], v[1]}, "an accumulator");
}

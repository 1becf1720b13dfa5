//===- BackwardStage.cpp - The gradient kernels: dQ, then dK and dV -------===//
//
// The backward pass of a variant (docs/codegen.md "Backward"), two kernels
// launched after the forward pass, from its O and LSE, with 64 x 64 tiles
// on either backend: mma.sync (the forward's scoresQK and accumulatePV:
// TileCompute.cpp), or wgmma (one warpgroup, swizzled tiles, wgmmaABt and
// wgmmaPB: WgmmaCompute.cpp; gradProductABt/PB choose); the same
// closed-form tile classification and masks as the forward kernel:
//   backward_dq    one CTA a query tile (the forward grid): Delta =
//                  rowsum(dO * O) of its rows (into the workspace, for the
//                  next kernel), then over the key tiles the forward pass
//                  visits: S = Q K^T, P = exp(scale S - LSE), dP = dO V^T,
//                  dS = P (dP - Delta), dQ += dS K; dQ = scale dQ out;
//   backward_dkdv  one CTA a key tile of one KV head: over every query head
//                  of the group and every query tile the classification
//                  may pair with the key tile, the transposed products (the
//                  key rows are the A operand, so every product stays in
//                  registers): S^T = K Q^T, P^T from the query columns' LSE,
//                  dV += P^T dO, dP^T = V dO^T, dS^T = P^T (dP^T - Delta),
//                  dK += dS^T Q; dK = scale dK and dV out.
// A score rule f (softcap, ALiBi, any expression) enters both as in the
// forward: P = exp(f(scale S) - LSE), and dS is multiplied by f'(scale S)
// (ScoreDerivative.cpp), zero where P is.
// The dK/dV kernel classifies its (head, query tile) pairs into the visit
// and full bitmaps up front (TileVisits.cpp), every thread a pair; masks
// read at token positions (documents) classify from the backward_summary
// stage's ranges, which the workspace holds ahead of Delta. At head dim 256
// the dK/dV kernel walks its pairs twice, dV then dK (one accumulator
// each: two do not fit the registers).
// No atomics: each gradient is written once, by one CTA, so the result is
// deterministic. Each recomputes S and dP (seven products a pair against
// five for a dQ by atomics).
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

using namespace mlir;

namespace attnc::flash {

namespace {
/// A loop over the visited tiles of [n0, last] with the next tile's copies
/// in flight while this one is computed (two shared buffers): `load(n, buf)`
/// issues tile n's cp.async copies into buffer buf, `next(n)` is the visited
/// tile after n (> last: none), `body(n, buf, state)` returns the next state.
struct PipelinedTiles {
  std::function<Value(Value)> next;
  std::function<void(Value, Value)> load;
  std::function<SmallVector<Value>(Value, Value, ArrayRef<Value>)> body;
  /// After this tile's copies have landed, before the CTA barrier (wgmma:
  /// the fence that shows them to the async proxy).
  std::function<void()> landed;
};
} // namespace

double KernelEmitter::softmaxScale() {
  return variant_.getScale() ? variant_.getScale()->convertToDouble() : 1.0 / std::sqrt(double(D_));
}

/// Runs the pipelined loop; returns the final state.
static SmallVector<Value> runPipelined(OpBuilder &b, Location loc, Value n0, Value last, ValueRange init,
                                       const PipelinedTiles &t) {
  Type index = b.getIndexType();
  auto le = [&](Value x) { return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sle, x, last).getResult(); };
  auto ifThen = [&](Value cond, const std::function<void()> &fn) {
    auto op = scf::IfOp::create(b, loc, TypeRange{}, cond, false);
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPointToStart(&op.getThenRegion().front());
    fn();
  };
  Value zero = arith::ConstantIndexOp::create(b, loc, 0), one = arith::ConstantIndexOp::create(b, loc, 1);
  ifThen(le(n0), [&] { t.load(n0, zero); });
  NVVM::CpAsyncCommitGroupOp::create(b, loc);
  SmallVector<Value> carried = {n0, zero};
  llvm::append_range(carried, init);
  SmallVector<Type> types = llvm::to_vector(TypeRange(ValueRange(carried)));
  SmallVector<Location> locs(types.size(), loc);
  auto loop = scf::WhileOp::create(b, loc, types, carried);
  {
    OpBuilder::InsertionGuard g(b);
    Block *before = b.createBlock(&loop.getBefore(), {}, types, locs);
    b.setInsertionPointToStart(before);
    scf::ConditionOp::create(b, loc, le(before->getArgument(0)), before->getArguments());
    Block *after = b.createBlock(&loop.getAfter(), {}, types, locs);
    b.setInsertionPointToStart(after);
    Value n = after->getArgument(0), buf = after->getArgument(1);
    Value nn = t.next(n);
    Value other = arith::SubIOp::create(b, loc, one, buf);
    ifThen(le(nn), [&] { t.load(nn, other); });
    NVVM::CpAsyncCommitGroupOp::create(b, loc);
    NVVM::CpAsyncWaitGroupOp::create(b, loc, 1); // all but the next tile's copies have landed
    if (t.landed)
      t.landed();
    gpu::BarrierOp::create(b, loc);
    SmallVector<Value> state(after->getArguments().begin() + 2, after->getArguments().end());
    SmallVector<Value> next = {nn, other};
    llvm::append_range(next, t.body(n, buf, state));
    gpu::BarrierOp::create(b, loc); // this buffer is refilled two tiles from now
    scf::YieldOp::create(b, loc, next);
  }
  (void)index;
  NVVM::CpAsyncWaitGroupOp::create(b, loc, 0);
  gpu::BarrierOp::create(b, loc);
  return SmallVector<Value>(loop.getResults().begin() + 2, loop.getResults().end());
}

/// The backward variant's workspace: Delta (f32 [B, Hq, Lq]) alone, or
/// with tile summaries first their (min, max) pairs (i64, as the
/// backward_summary stage writes them: summaryEntry over 64 x 64 tiles),
/// then Delta (docs/runtime.md "Backward": the runtime sizes it so).
void KernelEmitter::splitBackwardWorkspace() {
  if (!summaries_) {
    deltaWorkspace_ = workspace_;
    return;
  }
  Value tiles = add(arith::CeilDivSIOp::create(b_, loc_, qlen_, ci(BM_)),
                    arith::CeilDivSIOp::create(b_, loc_, klen_, ci(BN_)));
  Value summaryWords = mul(mul(mul(ci(2 * int64_t(summaryReads_.size())), batch_), headsQ_), tiles);
  Value bytes = workspace_;
  workspace_ = memref::ViewOp::create(b_, loc_, globalType(i64_), bytes, cidx(0), ValueRange{});
  deltaWorkspace_ = memref::ViewOp::create(b_, loc_, globalType(f32_), bytes, toIndex(mul(summaryWords, ci(8))),
                                           ValueRange{});
}

/// Delta = rowsum(dO * O) of this warp's rows, each row's D / 8 chunks of
/// 16 bytes on as many lanes, summed by shuffles: into deltaShared[row]
/// and workspace[b, h, row] (rows < qlen). The warp reads back only its
/// own rows, so a warp barrier orders it.
Value KernelEmitter::rowDelta(Value oBase, Value doBase, Value deltaShared) {
  const int64_t chunks = D_ / 8, rowsPerPass = 32 / chunks, rowsPerWarp = 16 * MT_;
  auto vec = VectorType::get({8}, elem_), vecF = VectorType::get({8}, f32_);
  Value rowInPass = arith::DivUIOp::create(b_, loc_, lane_, ci(chunks));
  Value chunk = arith::RemUIOp::create(b_, loc_, lane_, ci(chunks));
  Value col = mul(chunk, ci(8));
  Value deltaBase = mul(add(mul(bIdx_, headsQ_), hIdx_), qlen_);
  for (int64_t pass = 0; pass < rowsPerWarp / rowsPerPass; ++pass) {
    Value row = add(mul(warp_, ci(rowsPerWarp)), add(ci(pass * rowsPerPass), rowInPass));
    Value g = add(rowBase_, row);
    Value valid = cmpI(Pred::slt, g, qlen_);
    Value gc = sel(valid, g, ci(0));
    auto load = [&](Value ptr, Value base, Value stride) {
      Value at = add(add(base, mul(gc, stride)), col);
      Value x = vector::LoadOp::create(b_, loc_, vec, ptr, ValueRange{toIndex(at)}, false, llvm::MaybeAlign(16));
      return Value(arith::ExtFOp::create(b_, loc_, vecF, x));
    };
    Value prod = arith::MulFOp::create(b_, loc_, load(o_, oBase, osl_), load(dout_, doBase, dosl_));
    Value sum = vector::ReductionOp::create(b_, loc_, vector::CombiningKind::ADD, prod);
    for (int32_t offset = 1; offset < chunks; offset *= 2)
      sum = addF(sum, gpu::ShuffleOp::create(b_, loc_, sum, offset, 32, gpu::ShuffleMode::XOR).getShuffleResult());
    auto ifLead = scf::IfOp::create(b_, loc_, TypeRange{}, cmpI(Pred::eq, chunk, ci(0)), false);
    OpBuilder::InsertionGuard g2(b_);
    b_.setInsertionPointToStart(&ifLead.getThenRegion().front());
    memref::StoreOp::create(b_, loc_, sum, deltaShared, ValueRange{toIndex(row)});
    auto ifValid = scf::IfOp::create(b_, loc_, TypeRange{}, valid, false);
    b_.setInsertionPointToStart(&ifValid.getThenRegion().front());
    memref::StoreOp::create(b_, loc_, sum, deltaWorkspace_, ValueRange{toIndex(add(deltaBase, g))});
  }
  NVVM::SyncWarpOp::create(b_, loc_, ci32(-1));
  return deltaBase;
}

/// acc * factor as elem into this warp's rows of `smem` (a tile of BM_ rows,
/// padded or swizzled as the backend's, no other warp reads now), then
/// those rows to dst[base + row * rowStride], 16 bytes a lane, rows below
/// rowLimit.
void KernelEmitter::storeRows(ArrayRef<Value> acc, double factor, Value smem, Value dst, Value base, Value rowBase,
                              Value rowLimit, Value rowStride) {
  const int64_t nTilesD = D_ / 8, chunksPerRow = D_ / 8, rowsPerWarp = 16 * MT_;
  const AccLayout layout = accLayout();
  for (int64_t r = 0; r < 2 * MT_; ++r)
    for (int64_t t = 0; t < nTilesD; ++t) {
      int64_t i = layout.index(r / 2, t, 2 * (r % 2));
      Value pair = vector::FromElementsOp::create(b_, loc_, VectorType::get({2}, f32_),
                                                  ValueRange{mulF(acc[i], cf(factor)), mulF(acc[i + 1], cf(factor))});
      Value packed = arith::TruncFOp::create(b_, loc_, VectorType::get({2}, elem_), pair);
      Value col = add(ci(t * 8), mul(inQuad_, ci(2)));
      vector::StoreOp::create(b_, loc_, packed, smem, tileIndex(Value(), rows_[r], col, BM_), false,
                              llvm::MaybeAlign(4));
    }
  NVVM::SyncWarpOp::create(b_, loc_, ci32(-1));
  auto chunk = VectorType::get({8}, elem_);
  for (int64_t i = 0; i < rowsPerWarp * chunksPerRow / 32; ++i) {
    Value c = add(lane_, ci(32 * i));
    Value row = add(mul(warp_, ci(rowsPerWarp)), arith::DivUIOp::create(b_, loc_, c, ci(chunksPerRow)));
    Value col = mul(arith::RemUIOp::create(b_, loc_, c, ci(chunksPerRow)), ci(8));
    Value g = add(rowBase, row);
    auto ifValid = scf::IfOp::create(b_, loc_, TypeRange{}, cmpI(Pred::slt, g, rowLimit), false);
    OpBuilder::InsertionGuard g2(b_);
    b_.setInsertionPointToStart(&ifValid.getThenRegion().front());
    Value x = vector::LoadOp::create(b_, loc_, chunk, smem, tileIndex(Value(), row, col, BM_), false,
                                     llvm::MaybeAlign(16));
    vector::StoreOp::create(b_, loc_, x, dst, ValueRange{toIndex(add(add(base, mul(g, rowStride)), col))}, false,
                            llvm::MaybeAlign(16));
  }
}

SmallVector<Value> KernelEmitter::gradProductABt(SharedTile a, SharedTile b) {
  if (!wgmma_)
    return scoresQK(a, b);
  return wgmmaABt(tileAddress(a, a.offsetBytes, a.bufBytes), BM_, tileAddress(b, b.offsetBytes, b.bufBytes),
                  /*stepsInAsm=*/true);
}

SmallVector<Value> KernelEmitter::gradProductPB(ArrayRef<Value> p, SharedTile b, SmallVector<Value> &acc) {
  if (!wgmma_) {
    accumulatePV(p, b, acc);
    return {};
  }
  SmallVector<Value> a = packPOperands(p);
  wgmmaPBPacked(a, [&] { return tileAddress(b, b.offsetBytes, b.bufBytes); }, acc);
  return a;
}

//===----------------------------------------------------------------------===//
// backward_dq: one CTA a query tile.
//===----------------------------------------------------------------------===//
void KernelEmitter::emitBackwardDQ() {
  setupBlock(); // the forward grid: Q, K and V buffers as the forward kernel's
  const int64_t rowsPerThread = 2 * MT_;
  auto dyn = gpu::DynamicSharedMemoryOp::create(
      b_, loc_, MemRefType::get({ShapedType::kDynamic}, b_.getI8Type(), MemRefLayoutAttrInterface{}, workgroup()));
  Value dOs;
  int64_t dOOffset = 0; // wgmma: dO's bytes from smemBase_ (1024-aligned, past everything so far)
  if (wgmma_) {
    dOOffset = (info_.sharedBytes + 1023) / 1024 * 1024;
    auto flat = MemRefType::get({BM_ * D_}, elem_, MemRefLayoutAttrInterface{}, workgroup());
    dOs = memref::ViewOp::create(b_, loc_, flat, dyn, toIndex(add(smemPad_, ci(dOOffset))), ValueRange{});
    info_.sharedBytes = dOOffset + BM_ * D_ * 2 + 1024; // the alignment slack again
  } else {
    auto tileType = MemRefType::get({BM_, LD_}, elem_, MemRefLayoutAttrInterface{}, workgroup());
    dOs = memref::ViewOp::create(b_, loc_, tileType, dyn, cidx(info_.sharedBytes), ValueRange{});
    info_.sharedBytes += BM_ * LD_ * 2;
  }
  auto rowsF32 = MemRefType::get({BM_}, f32_, MemRefLayoutAttrInterface{}, workgroup());
  Value deltaS = memref::ViewOp::create(b_, loc_, rowsF32, dyn, cidx(info_.sharedBytes), ValueRange{});
  info_.sharedBytes += BM_ * 4;
  // The tiles as the products address them.
  const SharedTile qTile{Qs_, Value()}, doTile{dOs, Value(), dOOffset};
  auto kTile = [&](Value buf) { return SharedTile{Ks_, buf, kOffsetBytes(), kvTileBytes()}; };
  auto vTile = [&](Value buf) { return SharedTile{Vs_, buf, vOffsetBytes(), kvTileBytes()}; };
  emitPrologue();
  Value doBase = add(mul(bIdx_, dosb_), mul(hIdx_, dosh_));
  Value dqBase = add(mul(bIdx_, dqsb_), mul(hIdx_, dqsh_));
  loadTile(Qs_, Value(), BM_, q_, qBase_, rowBase_, qlen_, qsl_);
  loadTile(dOs, Value(), BM_, dout_, doBase, rowBase_, qlen_, dosl_);
  NVVM::CpAsyncCommitGroupOp::create(b_, loc_);
  rowDelta(oBase_, doBase, deltaS);

  // Per row slot: Delta, and the LSE in log2 units (+inf for an empty row:
  // every P of it is then 0).
  SmallVector<Value> delta, lse2;
  for (int64_t r = 0; r < rowsPerThread; ++r) {
    delta.push_back(memref::LoadOp::create(b_, loc_, deltaS, ValueRange{toIndex(rows_[r])}));
    Value g = add(rowBase_, rows_[r]);
    Value gc = sel(cmpI(Pred::slt, g, qlen_), g, ci(0));
    Value lse = memref::LoadOp::create(b_, loc_, lse_, ValueRange{toIndex(add(lseBase_, gc))});
    Value empty = arith::CmpFOp::create(b_, loc_, arith::CmpFPredicate::OEQ, lse, negInf());
    lse2.push_back(sel(empty, cf(INFINITY), mulF(lse, cf(kLog2e))));
  }

  const double scale = softmaxScale();
  const bool hasScoreRule = !variant_.getScore().empty();
  const attn::MaskKind by = ki_.hasRest() ? attn::MaskKind::region : attn::MaskKind::intervals;
  Value first, last;
  std::tie(first, last) = visitRange();
  if (summaries_) { // the key tiles classified from the summaries, as the forward kernel's
    computeQRanges(mIdx_);
    fillSummaries(first, last, [&](Value n) { return classifyTile(n, /*tokenRanges=*/true); });
    std::tie(first, last) = visitedRange();
  }
  PipelinedTiles tiles;
  if (wgmma_) // the tensor cores read shared memory through the async proxy
    tiles.landed = [&] { ptxStatement("fence.proxy.async.shared::cta;"); };
  tiles.next = [&](Value n) { return nextVisited(n, last); };
  tiles.load = [&](Value n, Value buf) {
    Value colFirst = mul(n, ci(BN_));
    loadTile(Ks_, buf, BN_, k_, kBase_, colFirst, klen_, ksl_);
    loadTile(Vs_, buf, BN_, v_, vBase_, colFirst, klen_, vsl_);
  };
  tiles.body = [&](Value n, Value buf, ArrayRef<Value> acc) {
    colFirst_ = mul(n, ci(BN_));
    Value needMask = andB(windowNeedMask(n, classifyTile(n).second), classifyTile(n, false, warpRows_).second);
    SmallVector<Value> s = gradProductABt(qTile, kTile(buf));
    SmallVector<Value> dp;
    if (overlapChains()) { // dP = dO V^T runs under the score rule, mask and exp
      s = waitWgmma(s);
      dp = gradProductABt(doTile, vTile(buf));
    }
    SmallVector<Value> slopes; // a score rule's derivative per element
    if (hasScoreRule)
      applyScore(s, scale, colFirst_, &slopes);
    else
      for (Value &x : s)
        x = mulF(x, cf(scale * kLog2e)); // log2 units, before the mask (any sign of scale)
    SmallVector<Value> p = maskTile(s, needMask, by, colFirst_);
    expTile(p, lse2, 1.0);
    dp = overlapChains() ? waitWgmma(dp) : gradProductABt(doTile, vTile(buf));
    const AccLayout layout = scoreLayout();
    for (int64_t i = 0; i < layout.size(); ++i) {
      Value ds = mulF(p[i], subF(dp[i], delta[AccLayout::rowSlot(i / (layout.blocks * 4), i % 4)]));
      p[i] = hasScoreRule ? throughScoreRule(ds, p[i], slopes[i]) : ds;
    }
    SmallVector<Value> next(acc.begin(), acc.end());
    SmallVector<Value> dsA = gradProductPB(p, kTile(buf), next); // dQ += dS K
    return overlapChains() ? waitWgmma(next, 0, dsA) : next;
  };
  SmallVector<Value> init(accLayout().size(), cf(0));
  SmallVector<Value> dq = runPipelined(b_, loc_, firstVisited(first, last), last, init, tiles);
  storeRows(dq, scale, Qs_, dq_, dqBase, rowBase_, qlen_, dqsl_);
}

//===----------------------------------------------------------------------===//
// backward_dkdv: one CTA a key tile of one KV head.
//===----------------------------------------------------------------------===//
/// The mask of partial tiles with the key rows as rows: element (mt, j, e)
/// pairs query colFirst + its column with key kPos[row slot]; query
/// columns past qlen and keys past klen are excluded.
SmallVector<Value> KernelEmitter::maskTransposed(ArrayRef<Value> s, Value colFirst, ArrayRef<Value> kPos) {
  const AccLayout layout = scoreLayout();
  SmallVector<Value> out(s.begin(), s.end());
  for (int64_t mt = 0; mt < MT_; ++mt)
    for (int64_t j = 0; j < BN_ / 8; ++j)
      for (int64_t e = 0; e < 4; ++e) {
        Value qRel = add(colFirst, add(ci(j * 8 + (e & 1)), mul(inQuad_, ci(2))));
        Value k = kPos[AccLayout::rowSlot(mt, e)];
        Value allowed = andB(cmpI(Pred::slt, qRel, qlen_), cmpI(Pred::slt, sub(k, kOff_), klen_));
        if (!variant_.getMask().empty())
          allowed = andB(allowed, maskOf(add(qRel, qOff_), k));
        int64_t i = layout.index(mt, j, e);
        out[i] = sel(allowed, s[i], negInf());
      }
  return out;
}

/// The score rule on S^T (key rows, query columns, as maskTransposed pairs
/// them), in log2 units like applyScore; returns its derivative per element.
SmallVector<Value> KernelEmitter::scoreRuleTransposed(SmallVector<Value> &s, double scale, Value colFirst,
                                                      ArrayRef<Value> kPos) {
  const AccLayout layout = scoreLayout();
  SmallVector<Value> slopes(s.size());
  for (int64_t mt = 0; mt < MT_; ++mt)
    for (int64_t j = 0; j < BN_ / 8; ++j)
      for (int64_t e = 0; e < 4; ++e) {
        Value q = add(add(colFirst, add(ci(j * 8 + (e & 1)), mul(inQuad_, ci(2)))), qOff_);
        int64_t i = layout.index(mt, j, e);
        auto [y, dy] = scoreAndSlopeOf(mulF(s[i], cf(scale)), q, kPos[AccLayout::rowSlot(mt, e)], hIdx_);
        s[i] = mulF(y, cf(kLog2e));
        slopes[i] = dy;
      }
  return slopes;
}

/// dS through the score rule: dS * its slope, and 0 where P is (masked
/// elements, whose slope may be anything, an infinity included).
Value KernelEmitter::throughScoreRule(Value ds, Value p, Value slope) {
  Value zero = cf(0);
  Value masked = arith::CmpFOp::create(b_, loc_, arith::CmpFPredicate::OEQ, p, zero);
  return sel(masked, zero, mulF(ds, slope));
}

void KernelEmitter::emitBackwardDKDV() {
  mIdx_ = toI64(gpu::BlockIdOp::create(b_, loc_, gpu::Dimension::x)); // the key tile
  Value group = toI64(gpu::BlockIdOp::create(b_, loc_, gpu::Dimension::y));
  bIdx_ = toI64(gpu::BlockIdOp::create(b_, loc_, gpu::Dimension::z));
  tid_ = toI64(gpu::ThreadIdOp::create(b_, loc_, gpu::Dimension::x));
  warp_ = arith::DivUIOp::create(b_, loc_, tid_, ci(32));
  lane_ = arith::RemUIOp::create(b_, loc_, tid_, ci(32));
  laneGeometry();
  const int64_t rowsPerThread = 2 * MT_;
  rowBase_ = mul(mIdx_, ci(BM_));
  SmallVector<Value> kPos;
  for (int64_t r = 0; r < rowsPerThread; ++r) {
    rows_.push_back(add(add(mul(warp_, ci(16 * MT_)), ci((r / 2) * 16 + (r % 2) * 8)), quad_));
    kPos.push_back(add(add(rowBase_, rows_.back()), kOff_));
  }

  // Shared memory: this CTA's K and V rows; two buffers each of the query
  // tiles' Q and dO rows and of their LSE and Delta.
  auto dyn = gpu::DynamicSharedMemoryOp::create(
      b_, loc_, MemRefType::get({ShapedType::kDynamic}, b_.getI8Type(), MemRefLayoutAttrInterface{}, workgroup()));
  // wgmma: swizzled tiles (flat, a buffer index first where double
  // buffered) from the first 1024-byte boundary; else padded rows.
  int64_t offset = 0;
  if (wgmma_)
    alignDynamicShared(dyn);
  auto view = [&](ArrayRef<int64_t> shape, Type t, int64_t bytes) {
    Value at = wgmma_ ? toIndex(add(smemPad_, ci(offset))) : cidx(offset);
    Value v = memref::ViewOp::create(b_, loc_, MemRefType::get(shape, t, MemRefLayoutAttrInterface{}, workgroup()),
                                     dyn, at, ValueRange{});
    offset += bytes;
    return v;
  };
  auto tileShape = [&](int64_t bufs, int64_t rows) {
    SmallVector<int64_t> shape = wgmma_ ? SmallVector<int64_t>{rows * D_} : SmallVector<int64_t>{rows, LD_};
    if (bufs > 1)
      shape.insert(shape.begin(), bufs);
    return shape;
  };
  const int64_t keyTileBytes = BM_ * LD_ * 2, queryTileBytes = BN_ * LD_ * 2;
  Value Kr = view(tileShape(1, BM_), elem_, keyTileBytes);
  Value Vr = view(tileShape(1, BM_), elem_, keyTileBytes);
  const int64_t qringOffset = offset;
  Value Qring = view(tileShape(2, BN_), elem_, 2 * queryTileBytes);
  Value dOring = view(tileShape(2, BN_), elem_, 2 * queryTileBytes);
  Value lseS = view({2, BN_}, f32_, 2 * BN_ * 4), deltaS = view({2, BN_}, f32_, 2 * BN_ * 4);
  info_.sharedBytes = offset + (wgmma_ ? 1024 : 0); // the alignment slack
  // The tiles as the products address them.
  const SharedTile kTile{Kr, Value(), 0}, vTile{Vr, Value(), keyTileBytes};
  auto qTile = [&](Value buf) { return SharedTile{Qring, buf, qringOffset, queryTileBytes}; };
  auto doTile = [&](Value buf) { return SharedTile{dOring, buf, qringOffset + 2 * queryTileBytes, queryTileBytes}; };
  visitBitmaps_ = true; // the (head, query tile) pairs classified up front, every thread one
  allocateSummaryBitmaps(dyn);

  Value groupSize = arith::DivSIOp::create(b_, loc_, headsQ_, headsKv_);
  kBase_ = add(mul(bIdx_, ksb_), mul(group, ksh_));
  vBase_ = add(mul(bIdx_, vsb_), mul(group, vsh_));
  loadTile(Kr, Value(), BM_, k_, kBase_, rowBase_, klen_, ksl_);
  loadTile(Vr, Value(), BM_, v_, vBase_, rowBase_, klen_, vsl_);
  NVVM::CpAsyncCommitGroupOp::create(b_, loc_);

  // Tile i: query head group * G + i / nQ, query tile i % nQ.
  Value nQ = arith::CeilDivSIOp::create(b_, loc_, qlen_, ci(BN_));
  Value last = sub(mul(groupSize, nQ), ci(1));
  auto bindQueryTile = [&](Value i) {
    hIdx_ = add(mul(group, groupSize), arith::DivSIOp::create(b_, loc_, i, nQ));
    return mul(arith::RemSIOp::create(b_, loc_, i, nQ), ci(BN_)); // its first row
  };
  // (visit, needMask) of this key tile for tile i's query rows; with
  // tokenRanges, from the summaries of both tiles (query tile i % nQ of
  // head hIdx_, key tile mIdx_).
  auto classify = [&](Value i, bool tokenRanges) {
    Value qFirst = bindQueryTile(i);
    if (tokenRanges)
      computeQRanges(arith::RemSIOp::create(b_, loc_, i, nQ));
    Value qEnd = minI(add(qFirst, ci(BN_)), qlen_);
    auto [visit, needMask] =
        visitRule().classify(mIdx_, {add(qFirst, qOff_), add(sub(qEnd, ci(1)), qOff_)}, tokenRanges);
    return std::pair<Value, Value>{visit, orB(needMask, cmpI(Pred::slt, qlen_, add(qFirst, ci(BN_))))};
  };
  // The pairs of the window into the bitmaps (the closed forms, with
  // summaries also the inputs' ranges), the CTA's threads in parallel; where
  // the bitmaps do not answer, beyond their window (more than kSummaryTiles
  // pairs over the group), the same classification one pair at a time.
  VisitOf visitOf = [&](Value i) { return classify(i, summaries_).first; };
  fillSummaries(ci(0), last, [&](Value i) { return classify(i, summaries_); });
  // The walk ends at the last pair the bitmaps mark, unless pairs lie
  // beyond the window.
  last = sel(cmpI(Pred::sge, last, ci(kSummaryTiles)), last, minI(last, windowLastVisited_));

  const double scale = softmaxScale();
  const bool hasScoreRule = !variant_.getScore().empty();
  // What the loop accumulates: dK and dV in one pass, or (head dim 256, whose
  // two accumulators do not fit the registers) dV, then dK in a second pass.
  bool wantDK = true, wantDV = true;
  PipelinedTiles tiles;
  if (wgmma_)
    tiles.landed = [&] { ptxStatement("fence.proxy.async.shared::cta;"); };
  tiles.next = [&](Value i) { return nextVisited(i, last, visitOf); };
  tiles.load = [&](Value i, Value buf) {
    Value qFirst = bindQueryTile(i);
    Value qBase = add(mul(bIdx_, qsb_), mul(hIdx_, qsh_));
    Value doBase = add(mul(bIdx_, dosb_), mul(hIdx_, dosh_));
    loadTile(Qring, buf, BN_, q_, qBase, qFirst, qlen_, qsl_);
    loadTile(dOring, buf, BN_, dout_, doBase, qFirst, qlen_, dosl_);
    // The rows' LSE and Delta, 4 bytes a thread (zero past qlen: masked).
    Value lseBase = add(mul(bIdx_, lsb_), mul(hIdx_, lsh_));
    Value deltaBase = mul(add(mul(bIdx_, headsQ_), hIdx_), qlen_);
    for (int64_t c = 0; c < BN_; c += kThreads) {
      Value r = add(tid_, ci(c));
      auto ifRow = scf::IfOp::create(b_, loc_, TypeRange{}, cmpI(Pred::slt, r, ci(BN_)), false);
      OpBuilder::InsertionGuard g2(b_);
      b_.setInsertionPointToStart(&ifRow.getThenRegion().front());
      Value g = add(qFirst, r);
      Value valid = cmpI(Pred::slt, g, qlen_);
      Value count = toIndex(sel(valid, ci(1), ci(0)));
      Value rc = toIndex(r);
      auto token = nvgpu::DeviceAsyncTokenType::get(b_.getContext());
      nvgpu::DeviceAsyncCopyOp::create(b_, loc_, token, lseS, ValueRange{buf, rc}, lse_,
                                       ValueRange{toIndex(sel(valid, add(lseBase, g), ci(0)))}, b_.getIndexAttr(1),
                                       count, UnitAttr());
      if (wantDK) // dS needs Delta; dV does not
        nvgpu::DeviceAsyncCopyOp::create(b_, loc_, token, deltaS, ValueRange{buf, rc}, deltaWorkspace_,
                                         ValueRange{toIndex(sel(valid, add(deltaBase, g), ci(0)))},
                                         b_.getIndexAttr(1), count, UnitAttr());
    }
  };
  tiles.body = [&](Value i, Value buf, ArrayRef<Value> state) {
    // The full bitmap's answer in its window (which starts at pair 0), the
    // closed forms' beyond it.
    auto ifInWindow = scf::IfOp::create(b_, loc_, TypeRange{i1_}, cmpI(Pred::slt, i, ci(kSummaryTiles)), true);
    {
      OpBuilder::InsertionGuard g(b_);
      b_.setInsertionPointToStart(&ifInWindow.getThenRegion().front());
      scf::YieldOp::create(b_, loc_, ValueRange{notB(summaryBit(fullBits_, i))});
      b_.setInsertionPointToStart(&ifInWindow.getElseRegion().front());
      scf::YieldOp::create(b_, loc_, ValueRange{classify(i, false).second});
    }
    Value needMask = ifInWindow.getResult(0);
    Value qFirst = bindQueryTile(i);
    const AccLayout layout = scoreLayout();
    const int64_t accSize = accLayout().size();
    // The lane's query columns' LSE (log2 units, +inf for an empty row) and Delta.
    // (wgmma: Delta read after dP's product, 16 registers fewer live through it.)
    SmallVector<Value> lse2, delta;
    auto columnIndex = [&](int64_t j, int64_t c) { return toIndex(add(ci(j * 8 + c), mul(inQuad_, ci(2)))); };
    for (int64_t j = 0; j < BN_ / 8; ++j)
      for (int64_t c = 0; c < 2; ++c) {
        Value col = columnIndex(j, c);
        Value lse = memref::LoadOp::create(b_, loc_, lseS, ValueRange{buf, col});
        Value empty = arith::CmpFOp::create(b_, loc_, arith::CmpFPredicate::OEQ, lse, negInf());
        lse2.push_back(sel(empty, cf(INFINITY), mulF(lse, cf(kLog2e))));
        if (wantDK && !wgmma_)
          delta.push_back(memref::LoadOp::create(b_, loc_, deltaS, ValueRange{buf, col}));
      }
    auto column = [&](int64_t i) { return (i / 4 % layout.blocks) * 2 + (i % 4 & 1); }; // index into lse2, delta
    SmallVector<Value> s = gradProductABt(kTile, qTile(buf)); // S^T: key rows, query columns
    SmallVector<Value> dp;
    if (overlapChains()) { // dP^T = V dO^T runs under the score rule, mask and exp
      s = waitWgmma(s);
      if (wantDK)
        dp = gradProductABt(vTile, doTile(buf));
    }
    SmallVector<Value> slopes; // a score rule's derivative per element
    if (hasScoreRule)
      slopes = scoreRuleTransposed(s, scale, qFirst, kPos);
    else
      for (Value &x : s)
        x = mulF(x, cf(scale * kLog2e));
    auto ifMask = scf::IfOp::create(b_, loc_, TypeRange(ValueRange(s)), needMask, true);
    {
      OpBuilder::InsertionGuard g(b_);
      b_.setInsertionPointToStart(&ifMask.getThenRegion().front());
      scf::YieldOp::create(b_, loc_, maskTransposed(s, qFirst, kPos));
      b_.setInsertionPointToStart(&ifMask.getElseRegion().front());
      scf::YieldOp::create(b_, loc_, s);
    }
    SmallVector<Value> p(ifMask.getResults());
    for (int64_t e = 0; e < layout.size(); ++e)
      p[e] = exp2F(subF(p[e], lse2[column(e)]));
    // The state: dK's accumulators (wantDK), then dV's (wantDV).
    const int64_t dvFirst = wantDK ? accSize : 0;
    SmallVector<Value> dk(state.begin(), state.begin() + dvFirst), dv(state.begin() + dvFirst, state.end());
    if (wantDV) { // dV += P^T dO
      SmallVector<Value> pA = gradProductPB(p, doTile(buf), dv);
      if (overlapChains()) // waited for in place: running under dS, its P^T would spill at d = 128
        dv = waitWgmma(dv, 0, pA);
    }
    if (wantDK) {
      // dP^T = V dO^T (overlapped: issued before the exp, done by now)
      dp = overlapChains() ? waitWgmma(dp) : gradProductABt(vTile, doTile(buf));
      if (wgmma_)
        for (int64_t j = 0; j < BN_ / 8; ++j)
          for (int64_t c = 0; c < 2; ++c)
            delta.push_back(memref::LoadOp::create(b_, loc_, deltaS, ValueRange{buf, columnIndex(j, c)}));
      for (int64_t e = 0; e < layout.size(); ++e) {
        Value ds = mulF(p[e], subF(dp[e], delta[column(e)]));
        p[e] = hasScoreRule ? throughScoreRule(ds, p[e], slopes[e]) : ds;
      }
      SmallVector<Value> dsA = gradProductPB(p, qTile(buf), dk); // dK += dS^T Q
      if (overlapChains())
        dk = waitWgmma(dk, 0, dsA);
    }
    SmallVector<Value> next(dk);
    llvm::append_range(next, dv);
    return next;
  };
  auto runPass = [&] {
    const int64_t accSize = accLayout().size();
    SmallVector<Value> init((int64_t(wantDK) + int64_t(wantDV)) * accSize, cf(0));
    SmallVector<Value> grads = runPipelined(b_, loc_, firstVisited(ci(0), last, visitOf), last, init, tiles);
    const int64_t dvFirst = wantDK ? accSize : 0;
    SmallVector<Value> dk(grads.begin(), grads.begin() + dvFirst), dv(grads.begin() + dvFirst, grads.end());
    // Each warp stages its own rows through shared memory no warp reads
    // any more: K's and V's tiles after the last pass, else Q's first buffer.
    if (wantDK)
      storeRows(dk, scale, Kr, dk_, add(mul(bIdx_, dksb_), mul(group, dksh_)), rowBase_, klen_, dksl_);
    if (wantDV) {
      Value stage = Vr;
      if (!wantDK) {
        offset = qringOffset;
        stage = view(tileShape(1, BM_), elem_, keyTileBytes);
      }
      storeRows(dv, 1.0, stage, dv_, add(mul(bIdx_, dvsb_), mul(group, dvsh_)), rowBase_, klen_, dvsl_);
    }
  };
  if (D_ <= 128) {
    runPass();
    return;
  }
  wantDK = false;
  runPass();
  barrier(); // every warp's dV rows are out of Q's buffer before the second pass loads into it
  wantDK = true;
  wantDV = false;
  runPass();
}

} // namespace attnc::flash

//===- SelectStage.cpp - A selecting variant's select stage ---------------===//
//
// The first kernel of a variant with `select topk(K) by ...` (the DSA issue;
// docs/codegen.md "Selection (DSA)"), on mma.sync (sm_90a's wgmma indexer:
// IndexerWgmma.cpp), and the workspace it leaves the second. One CTA (4 warps) takes the 4
// query rows t0 .. t0 + 3 of batch entry b (row block block_first +
// blockIdx.x, grid chunked_row_blocks, block_m 4; the runtime launches the
// two stages chunk by chunk on one workspace):
//   1. the select stage scores every key the mask's closed forms visit (the
//      hull of the rows' key tiles; the mask region on partial tiles), tile
//      by tile:
//      - by the indexer, on tensor cores: warp w holds row t0 + w's HI
//        indexer heads (qI[b, t, j, :], zero rows up to a multiple of 16)
//        as its m-tiles of the Q tile, so one kI tile serves 4 rows; S = Q
//        kI^T (ldmatrix + mma.sync, TileCompute.cpp's scoresQK), then
//        sum_j w[b, t, j] relu(S[j, s]) down each warp's columns (in
//        registers, then across the lanes of a column by shuffles). fp8
//        (e4m3) is widened exactly to f16 in shared memory by moving its
//        bits (an e4m3 value is 2^8 times the f16 of the same sign,
//        exponent and mantissa bits shifted left by 7), and the sums are
//        scaled back by 2^16. The kI tiles are double buffered;
//      - by the select region, per (row, key);
//      into the workspace (slot 4 blockIdx.x + w: klen keys) as
//      order-preserving unsigned keys: 0 for a key the mask excludes, 1 for
//      a NaN score (last, as the reference orders them), else the score's
//      bits mapped so that unsigned order is score order (-0 as +0). i64
//      scores become 64-bit keys (INT64_MIN then ties with INT64_MIN + 1).
//   2. the topk stage: the K best of each row's keys (TopkStage.cpp).
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

#include <limits>

using namespace mlir;

namespace attnc::flash {

namespace {
constexpr double kFp8Rescale = 65536.0; ///< both widened operands carry 2^-8
} // namespace

Type KernelEmitter::selectKeyType() {
  if (!indexer_ && !variant_.getSelect().empty()) {
    Type t = cast<attn::YieldOp>(variant_.getSelect().front().getTerminator()).getValues().front().getType();
    if (t.isInteger(64))
      return i64_;
  }
  return i32_;
}

Type KernelEmitter::indexerStorageType() {
  if (!indexer_ || indexer_->dtype == "fp8")
    return b_.getI8Type();
  return indexer_->dtype == "bf16" ? Type(b_.getBF16Type()) : Type(b_.getF16Type());
}

/// The workspace key of an allowed key's selection score (see the header).
Value KernelEmitter::orderedKey(Value score) {
  if (score.getType().isInteger(64)) {
    Value u = arith::XOrIOp::create(b_, loc_, score, ci(std::numeric_limits<int64_t>::min()));
    return sel(cmpI(Pred::eq, u, ci(0)), ci(1), u);
  }
  Value x = addF(score, cf(0.0)); // -0 + 0 = +0: the reference's -0 == +0
  Value bits = arith::BitcastOp::create(b_, loc_, i32_, x);
  Value negative = cmpI(Pred::slt, bits, ci32(0));
  Value key = sel(negative, arith::XOrIOp::create(b_, loc_, bits, ci32(-1)),
                  arith::OrIOp::create(b_, loc_, bits, ci32(std::numeric_limits<int32_t>::min())));
  Value nan = arith::CmpFOp::create(b_, loc_, arith::CmpFPredicate::UNO, x, x);
  return sel(nan, ci32(1), key);
}

/// Whether key column `col` (< klen) may be selected by the row at query
/// position q: the mask region on a partial tile, else allowed.
Value KernelEmitter::allowedAt(Value q, Value col, Value needMask) {
  auto ifMask = scf::IfOp::create(b_, loc_, TypeRange{i1_}, needMask, true);
  OpBuilder::InsertionGuard g(b_);
  b_.setInsertionPointToStart(&ifMask.getThenRegion().front());
  scf::YieldOp::create(b_, loc_, ValueRange{maskOf(q, add(col, kOff_))});
  b_.setInsertionPointToStart(&ifMask.getElseRegion().front());
  scf::YieldOp::create(b_, loc_, ValueRange{cbool(true)});
  return ifMask.getResult(0);
}

/// Starts copying `rows` indexer rows (row r at base + r * rowStride) into
/// rows smemRow0 .. of `smem` [..][LD]; rows at or past rowLimit are zero.
/// bf16/f16: cp.async, to be committed by the caller; returns nothing. fp8:
/// 16-byte loads into registers, returned for landIndexerRows to widen into
/// shared memory (so they can be in flight while the tensor cores work).
SmallVector<Value> KernelEmitter::issueIndexerRows(Value smem, Value smemRow0, Value global, Value base, int64_t rows,
                                                   Value rowLimit, Value rowStride) {
  const bool fp8 = indexer_->dtype == "fp8";
  const int64_t perChunk = fp8 ? 16 : 8, chunksPerRow = D_ / perChunk, total = rows * chunksPerRow;
  auto bytesType = VectorType::get({16}, b_.getI8Type());
  SmallVector<Value> pending;
  for (int64_t i = 0; i * kThreads < total; ++i) {
    Value chunk = add(tid_, ci(i * kThreads));
    Value r = arith::DivUIOp::create(b_, loc_, chunk, ci(chunksPerRow));
    Value col = mul(arith::RemUIOp::create(b_, loc_, chunk, ci(chunksPerRow)), ci(perChunk));
    Value valid = andB(cmpI(Pred::slt, chunk, ci(total)), cmpI(Pred::slt, r, rowLimit));
    Value src = sel(valid, add(add(base, mul(r, rowStride)), col), ci(0));
    if (!fp8) {
      auto ifIn = scf::IfOp::create(b_, loc_, TypeRange{}, cmpI(Pred::slt, chunk, ci(total)), false);
      OpBuilder::InsertionGuard g(b_);
      b_.setInsertionPointToStart(&ifIn.getThenRegion().front());
      nvgpu::DeviceAsyncCopyOp::create(b_, loc_, nvgpu::DeviceAsyncTokenType::get(b_.getContext()), smem,
                                       ValueRange{toIndex(add(r, smemRow0)), toIndex(col)}, global,
                                       ValueRange{toIndex(src)}, b_.getIndexAttr(8),
                                       toIndex(sel(valid, ci(8), ci(0))), b_.getUnitAttr());
      continue;
    }
    auto ifValid = scf::IfOp::create(b_, loc_, TypeRange{bytesType}, valid, true);
    OpBuilder::InsertionGuard g(b_);
    b_.setInsertionPointToStart(&ifValid.getThenRegion().front());
    scf::YieldOp::create(b_, loc_, ValueRange{vector::LoadOp::create(b_, loc_, bytesType, global,
                                                                      ValueRange{toIndex(src)}, false,
                                                                      llvm::MaybeAlign(16))});
    b_.setInsertionPointToStart(&ifValid.getElseRegion().front());
    scf::YieldOp::create(b_, loc_, ValueRange{zeroBytes()});
    pending.push_back(ifValid.getResult(0));
  }
  return pending;
}

Value KernelEmitter::zeroBytes() {
  auto bytesType = VectorType::get({16}, b_.getI8Type());
  return arith::ConstantOp::create(b_, loc_, DenseElementsAttr::get(bytesType, b_.getI8IntegerAttr(0)));
}

/// fp8: widens issueIndexerRows' chunks to f16 (the bits moved: see the
/// header) into rows smemRow0 .. of `smem`.
void KernelEmitter::landIndexerRows(ArrayRef<Value> pending, Value smem, Value smemRow0, int64_t rows) {
  const int64_t chunksPerRow = D_ / 16, total = rows * chunksPerRow;
  auto wideType = VectorType::get({16}, b_.getI16Type());
  auto splat = [&](int64_t v) {
    return arith::ConstantOp::create(b_, loc_, DenseElementsAttr::get(wideType, b_.getI16IntegerAttr(int16_t(v))))
        .getResult();
  };
  for (auto [i, bytes] : llvm::enumerate(pending)) {
    Value chunk = add(tid_, ci(int64_t(i) * kThreads));
    auto ifIn = scf::IfOp::create(b_, loc_, TypeRange{}, cmpI(Pred::slt, chunk, ci(total)), false);
    OpBuilder::InsertionGuard g(b_);
    b_.setInsertionPointToStart(&ifIn.getThenRegion().front());
    Value r = arith::DivUIOp::create(b_, loc_, chunk, ci(chunksPerRow));
    Value col = mul(arith::RemUIOp::create(b_, loc_, chunk, ci(chunksPerRow)), ci(16));
    Value x = arith::ExtUIOp::create(b_, loc_, wideType, bytes);
    Value sign = arith::ShLIOp::create(b_, loc_, arith::AndIOp::create(b_, loc_, x, splat(0x80)), splat(8));
    Value mag = arith::ShLIOp::create(b_, loc_, arith::AndIOp::create(b_, loc_, x, splat(0x7F)), splat(7));
    Value half = vector::BitCastOp::create(b_, loc_, VectorType::get({16}, b_.getF16Type()),
                                           arith::OrIOp::create(b_, loc_, sign, mag));
    vector::StoreOp::create(b_, loc_, half, smem, ValueRange{toIndex(add(r, smemRow0)), toIndex(col)}, false,
                            llvm::MaybeAlign(16));
  }
}

/// issueIndexerRows and landIndexerRows at once; waits for the copies.
void KernelEmitter::loadIndexerRows(Value smem, int64_t smemRow0, Value global, Value base, int64_t rows,
                                    Value rowLimit, Value rowStride) {
  SmallVector<Value> pending = issueIndexerRows(smem, ci(smemRow0), global, base, rows, rowLimit, rowStride);
  landIndexerRows(pending, smem, ci(smemRow0), rows);
  NVVM::CpAsyncCommitGroupOp::create(b_, loc_);
  NVVM::CpAsyncWaitGroupOp::create(b_, loc_, 0);
  barrier();
}

/// Key tile n of the rows by the indexer: warp w's scores into its
/// workspace row wsRows[w]; `w` holds w[b, t, j] of each of the lane's row
/// slots (0 past HI and past qlen).
void KernelEmitter::indexerScores(Value n, Value buf, ArrayRef<Value> wsRows, Value needMask, ArrayRef<Value> w) {
  const int64_t nTilesN = BN_ / 8;
  const AccLayout layout = scoreLayout();
  Value colFirst = mul(n, ci(BN_));
  SmallVector<Value> s = scoresQK({Qs_, Value()}, {Ks_, toIndex(buf)});
  // This warp's row: the select-stage rows are one per warp.
  Value q = add(add(rowBase_, warp_), qOff_);
  Value wsRow = wsRows[0];
  for (int64_t wi = 1; wi < kWarps; ++wi)
    wsRow = sel(cmpI(Pred::eq, warp_, ci(wi)), wsRows[wi], wsRow);
  // Column (j, c) of the lane's quad: after the butterfly every lane of the
  // column holds its sum; the lanes of quad j % 8 store those of block j.
  SmallVector<Value> mine(2 * ((nTilesN + 7) / 8), cf(0));
  for (int64_t j = 0; j < nTilesN; ++j)
    for (int64_t c = 0; c < 2; ++c) {
      Value sum = cf(0);
      for (int64_t mt = 0; mt < MT_; ++mt)
        for (int64_t e = c; e < 4; e += 2)
          sum = LLVM::FMAOp::create(b_, loc_, maxF(s[layout.index(mt, j, e)], cf(0)), w[AccLayout::rowSlot(mt, e)], sum);
      for (int32_t offset : {4, 8, 16}) // the lanes holding other rows of this column
        sum = addF(sum, gpu::ShuffleOp::create(b_, loc_, sum, offset, 32, gpu::ShuffleMode::XOR).getShuffleResult());
      Value &slot = mine[2 * (j / 8) + c];
      slot = sel(cmpI(Pred::eq, quad_, ci(j % 8)), sum, slot);
    }
  for (int64_t i = 0; i < int64_t(mine.size()); ++i) {
    int64_t j8 = i / 2, c = i % 2; // block 8 j8 + quad, column c
    Value sum = indexer_->dtype == "fp8" ? mulF(mine[i], cf(kFp8Rescale)) : mine[i];
    Value j = add(ci(8 * j8), quad_);
    Value key = add(colFirst, add(add(mul(j, ci(8)), ci(c)), mul(inQuad_, ci(2))));
    auto ifIn = scf::IfOp::create(b_, loc_, TypeRange{},
                                  andB(cmpI(Pred::slt, j, ci(nTilesN)), cmpI(Pred::slt, key, klen_)), false);
    OpBuilder::InsertionGuard g(b_);
    b_.setInsertionPointToStart(&ifIn.getThenRegion().front());
    Value ordered = sel(allowedAt(q, key, needMask), orderedKey(sum), ci32(0));
    memref::StoreOp::create(b_, loc_, ordered, workspace_, ValueRange{toIndex(add(wsRow, key))});
  }
}

/// Key tile n of the rows by the select region: one (row, key) a thread.
void KernelEmitter::regionScores(Value n, ArrayRef<Value> wsRows, Value needMask) {
  Value colFirst = mul(n, ci(BN_));
  Type keyType = selectKeyType();
  for (int64_t r = 0; r < int64_t(wsRows.size()); ++r)
    for (int64_t i = 0; i * kThreads < BN_; ++i) {
      Value col = add(tid_, ci(i * kThreads));
      Value key = add(colFirst, col);
      Value q = add(add(rowBase_, ci(r)), qOff_);
      auto ifIn = scf::IfOp::create(b_, loc_, TypeRange{},
                                    andB(cmpI(Pred::slt, col, ci(BN_)), cmpI(Pred::slt, key, klen_)), false);
      OpBuilder::InsertionGuard g(b_);
      b_.setInsertionPointToStart(&ifIn.getThenRegion().front());
      // The score only where allowed (the reference evaluates nothing else:
      // a division by zero or an input read elsewhere must not matter).
      auto ifAllowed = scf::IfOp::create(b_, loc_, TypeRange{keyType}, allowedAt(q, key, needMask), true);
      b_.setInsertionPointToStart(&ifAllowed.getThenRegion().front());
      scf::YieldOp::create(b_, loc_, ValueRange{orderedKey(selectScoreOf(q, add(key, kOff_)))});
      b_.setInsertionPointToStart(&ifAllowed.getElseRegion().front());
      scf::YieldOp::create(b_, loc_, ValueRange{arith::ConstantIntOp::create(b_, loc_, keyType, 0).getResult()});
      b_.setInsertionPointAfter(ifAllowed);
      memref::StoreOp::create(b_, loc_, ifAllowed.getResult(0), workspace_,
                              ValueRange{toIndex(add(wsRows[r], key))});
    }
}

void KernelEmitter::emitSelectStage() {
  const int64_t rows = kSelectRows; // a warp each
  tid_ = toI64(gpu::ThreadIdOp::create(b_, loc_, gpu::Dimension::x));
  warp_ = arith::DivUIOp::create(b_, loc_, tid_, ci(32));
  lane_ = arith::RemUIOp::create(b_, loc_, tid_, ci(32));
  Value block = toI64(gpu::BlockIdOp::create(b_, loc_, gpu::Dimension::x));
  // Row block f = block_first + blockIdx.x: rows t0 .. t0 + 3 of batch b.
  Value f = add(blockFirst_, block);
  Value blocksPerBatch = arith::DivSIOp::create(b_, loc_, add(qlen_, ci(rows - 1)), ci(rows));
  bIdx_ = arith::DivSIOp::create(b_, loc_, f, blocksPerBatch);
  rowBase_ = mul(arith::RemSIOp::create(b_, loc_, f, blocksPerBatch), ci(rows));
  hIdx_ = ci(0); // a selecting variant's mask and select region do not read h
  q0_ = add(rowBase_, qOff_);
  q1_ = add(sub(minI(add(rowBase_, ci(rows)), qlen_), ci(1)), qOff_);
  SmallVector<Value> wsRows;
  for (int64_t r = 0; r < rows; ++r)
    wsRows.push_back(mul(add(mul(block, ci(rows)), ci(r)), klen_));

  if (topkStage_) {
    emitTopkStage(block);
    return;
  }
  if (indexerWgmma_) {
    emitIndexerWgmma(wsRows);
    return;
  }

  // Shared memory: the indexer's Q and K tiles.
  auto dynType = MemRefType::get({ShapedType::kDynamic}, b_.getI8Type(), MemRefLayoutAttrInterface{}, workgroup());
  Value dyn = gpu::DynamicSharedMemoryOp::create(b_, loc_, dynType);
  int64_t offset = 0;
  auto alias = [&](ArrayRef<int64_t> shape, Type t) { // at the next offset, which stays
    return memref::ViewOp::create(b_, loc_, MemRefType::get(shape, t, MemRefLayoutAttrInterface{}, workgroup()), dyn,
                                  cidx(offset), ValueRange{})
        .getResult();
  };
  auto view = [&](ArrayRef<int64_t> shape, Type t) {
    Value v = alias(shape, t);
    int64_t bytes = t.getIntOrFloatBitWidth() / 8;
    for (int64_t s : shape)
      bytes *= s;
    offset += (bytes + 15) / 16 * 16;
    return v;
  };
  const bool mma = indexer_ != std::nullopt; // the indexer on tensor cores
  if (mma) {
    elem_ = bf16_ ? Type(b_.getBF16Type()) : Type(b_.getF16Type());
    Qs_ = view({BM_, LD_}, elem_);
    selK_ = alias({2 * BN_, LD_}, elem_); // the loads' view of both K buffers
    Ks_ = view({2, BN_, LD_}, elem_);
  }
  info_.sharedBytes = offset;
  auto [first, last] = visitRange();
  SmallVector<Value> w;
  if (mma) {
    laneGeometry();
    // Warp r's m-tiles: row t0 + r's heads (none past qlen).
    const int64_t headRows = BM_ / rows;
    for (int64_t r = 0; r < rows; ++r) {
      Value row = add(rowBase_, ci(r));
      Value inRange = cmpI(Pred::slt, row, qlen_);
      Value qBase = add(mul(bIdx_, iqsb_), mul(sel(inRange, row, ci(0)), iqsl_));
      loadIndexerRows(Qs_, r * headRows, iq_, qBase, headRows, sel(inRange, ci(indexer_->heads), ci(0)), iqsh_);
    }
    // w[b, t, j] for the lane's rows j of its warp's row t (0 past the
    // heads and past qlen: zero rows add nothing).
    Value row = add(rowBase_, warp_);
    Value rowValid = cmpI(Pred::slt, row, qlen_);
    Value wBase = add(mul(bIdx_, iwsb_), mul(sel(rowValid, row, ci(0)), iwsl_));
    for (int64_t r = 0; r < 2 * MT_; ++r) {
      Value head = add(ci((r / 2) * 16 + (r % 2) * 8), quad_);
      Value valid = andB(rowValid, cmpI(Pred::slt, head, ci(indexer_->heads)));
      Value wv = memref::LoadOp::create(b_, loc_, iw_, ValueRange{toIndex(add(wBase, sel(valid, head, ci(0))))});
      w.push_back(sel(valid, wv, cf(0)));
    }
  }

  // 1. The visited tiles' scores; tiles inside the hull that the rule
  // skips are written as excluded. The indexer's kI tiles are double
  // buffered: tile n + 1's copy is in flight while tile n is on the
  // tensor cores (fp8: its bytes in registers, widened after).
  auto kTileBase = [&](Value n) { return add(mul(bIdx_, iksb_), mul(mul(n, ci(BN_)), iksl_)); };
  auto kTileRows = [&](Value n) { return sub(klen_, mul(n, ci(BN_))); };
  if (mma) {
    auto ifAny = scf::IfOp::create(b_, loc_, TypeRange{}, cmpI(Pred::sle, first, last), false);
    OpBuilder::InsertionGuard g(b_);
    b_.setInsertionPointToStart(&ifAny.getThenRegion().front());
    SmallVector<Value> pending = issueIndexerRows(selK_, ci(0), ik_, kTileBase(first), BN_, kTileRows(first), iksl_);
    landIndexerRows(pending, selK_, ci(0), BN_);
  }
  NVVM::CpAsyncCommitGroupOp::create(b_, loc_);
  auto tiles = scf::ForOp::create(b_, loc_, toIndex(first), toIndex(add(last, ci(1))), cidx(1));
  {
    OpBuilder::InsertionGuard g(b_);
    b_.setInsertionPointToStart(tiles.getBody());
    Value n = toI64(tiles.getInductionVar());
    Value buf, next;
    SmallVector<Value> pending;
    if (mma) {
      buf = arith::RemSIOp::create(b_, loc_, sub(n, first), ci(2));
      Value nextRow0 = mul(sub(ci(1), buf), ci(BN_));
      next = add(n, ci(1));
      SmallVector<Type> types(indexer_->dtype == "fp8" ? (BN_ * D_ / 16 + kThreads - 1) / kThreads : 0,
                              VectorType::get({16}, b_.getI8Type()));
      auto ifNext = scf::IfOp::create(b_, loc_, types, cmpI(Pred::sle, next, last), true);
      {
        OpBuilder::InsertionGuard g2(b_);
        b_.setInsertionPointToStart(&ifNext.getThenRegion().front());
        SmallVector<Value> p = issueIndexerRows(selK_, nextRow0, ik_, kTileBase(next), BN_, kTileRows(next), iksl_);
        if (!types.empty() || !ifNext.getThenRegion().front().mightHaveTerminator())
          scf::YieldOp::create(b_, loc_, p);
        b_.setInsertionPointToStart(&ifNext.getElseRegion().front());
        SmallVector<Value> zeros(types.size(), Value());
        for (Value &z : zeros)
          z = zeroBytes();
        if (!types.empty() || !ifNext.getElseRegion().front().mightHaveTerminator())
          scf::YieldOp::create(b_, loc_, zeros);
      }
      pending.assign(ifNext.getResults().begin(), ifNext.getResults().end());
      NVVM::CpAsyncCommitGroupOp::create(b_, loc_);
      NVVM::CpAsyncWaitGroupOp::create(b_, loc_, 1); // tile n's copies (the group before this one)
      barrier();
    }
    auto [visit, needMask] = classifyTile(n);
    auto ifVisit = scf::IfOp::create(b_, loc_, TypeRange{}, visit, true);
    b_.setInsertionPointToStart(&ifVisit.getThenRegion().front());
    if (mma)
      indexerScores(n, buf, wsRows, needMask, w);
    else
      regionScores(n, wsRows, needMask);
    b_.setInsertionPointAfter(ifVisit);
    if (mma) {
      if (!pending.empty()) {
        auto ifNext = scf::IfOp::create(b_, loc_, TypeRange{}, cmpI(Pred::sle, next, last), false);
        OpBuilder::InsertionGuard g2(b_);
        b_.setInsertionPointToStart(&ifNext.getThenRegion().front());
        landIndexerRows(pending, selK_, mul(sub(ci(1), buf), ci(BN_)), BN_);
      }
      barrier(); // tile n's buffer is refilled by the next iteration
    }
    b_.setInsertionPointToStart(&ifVisit.getElseRegion().front());
    writeExcludedTile(n, wsRows);
  }
}

} // namespace attnc::flash

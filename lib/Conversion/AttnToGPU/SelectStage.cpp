//===- SelectStage.cpp - A selecting variant's select stage ---------------===//
//
// The first kernel of a variant with `select topk(K) by ...` (the DSA
// issue; docs/codegen.md "Selection"). One CTA (4 warps) takes one query
// row t of batch entry b (row block block_first + blockIdx.x, grid
// chunked_row_blocks) and:
//   1. scores every key the mask's closed forms visit (the hull of the
//      row's key tiles; the mask region on partial tiles), tile by tile:
//      - by the indexer, on tensor cores: the Q tile is the row's HI
//        indexer heads (qI[b, t, j, :]), S = Q kI^T (ldmatrix + mma.sync,
//        TileCompute.cpp's scoresQK), then sum_j w[b, t, j] relu(S[j, s])
//        down the columns (lanes, then warps through shared memory). fp8
//        (e4m3) is widened exactly to f16 in shared memory by moving its
//        bits (an e4m3 value is 2^8 times the f16 of the same sign,
//        exponent and mantissa bits shifted left by 7), and the sums are
//        scaled back by 2^16;
//      - by the select region, per key;
//      into the workspace (slot blockIdx.x: klen keys) as order-preserving
//      unsigned keys: 0 for a key the mask excludes, 1 for a NaN score
//      (last, as the reference orders them), else the score's bits mapped
//      so that unsigned order is score order (-0 as +0). i64 scores become
//      64-bit keys (INT64_MIN then ties with INT64_MIN + 1).
//   2. radix-selects the K-th largest key, 8 bits a pass from the top (a
//      shared-memory histogram of the keys that match the digits chosen so
//      far, one thread finding the bin that holds the K-th), then writes
//      every key above it and the first (by column) of those equal to it
//      into indices[b, g, t, :] for every KV group g, in ascending column
//      order (two block-wide counts per chunk of keys keep the order), -1
//      in the slots after the last.
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
constexpr int64_t kRadixBins = 256; ///< 8 bits a pass
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

/// `rows` indexer rows (row r at base + (rowStart... ) r * rowStride) into
/// `smem` [rows][LD]: bf16/f16 by cp.async, fp8 through registers, widened
/// to f16; rows at or past rowLimit are zero. Waits for its copies.
void KernelEmitter::loadIndexerRows(Value smem, Value global, Value base, int64_t rows, Value rowLimit,
                                    Value rowStride) {
  const bool fp8 = indexer_->dtype == "fp8";
  const int64_t perChunk = fp8 ? 16 : 8, chunksPerRow = D_ / perChunk, total = rows * chunksPerRow;
  for (int64_t i = 0; i * kThreads < total; ++i) {
    Value chunk = add(tid_, ci(i * kThreads));
    auto ifIn = scf::IfOp::create(b_, loc_, TypeRange{}, cmpI(Pred::slt, chunk, ci(total)), false);
    OpBuilder::InsertionGuard g(b_);
    b_.setInsertionPointToStart(&ifIn.getThenRegion().front());
    Value r = arith::DivUIOp::create(b_, loc_, chunk, ci(chunksPerRow));
    Value col = mul(arith::RemUIOp::create(b_, loc_, chunk, ci(chunksPerRow)), ci(perChunk));
    Value valid = cmpI(Pred::slt, r, rowLimit);
    Value src = sel(valid, add(add(base, mul(r, rowStride)), col), ci(0));
    SmallVector<Value> dst = {toIndex(r), toIndex(col)};
    if (!fp8) {
      nvgpu::DeviceAsyncCopyOp::create(b_, loc_, nvgpu::DeviceAsyncTokenType::get(b_.getContext()), smem, dst,
                                       global, ValueRange{toIndex(src)}, b_.getIndexAttr(8),
                                       toIndex(sel(valid, ci(8), ci(0))), b_.getUnitAttr());
      continue;
    }
    auto bytesType = VectorType::get({16}, b_.getI8Type());
    auto wideType = VectorType::get({16}, b_.getI16Type());
    auto ifValid = scf::IfOp::create(b_, loc_, TypeRange{bytesType}, valid, true);
    b_.setInsertionPointToStart(&ifValid.getThenRegion().front());
    scf::YieldOp::create(b_, loc_, ValueRange{vector::LoadOp::create(b_, loc_, bytesType, global,
                                                                      ValueRange{toIndex(src)}, false,
                                                                      llvm::MaybeAlign(16))});
    b_.setInsertionPointToStart(&ifValid.getElseRegion().front());
    Value zeros = arith::ConstantOp::create(b_, loc_, DenseElementsAttr::get(bytesType, b_.getI8IntegerAttr(0)));
    scf::YieldOp::create(b_, loc_, ValueRange{zeros});
    b_.setInsertionPointAfter(ifValid);
    auto splat = [&](int64_t v) {
      return arith::ConstantOp::create(b_, loc_, DenseElementsAttr::get(wideType, b_.getI16IntegerAttr(int16_t(v))))
          .getResult();
    };
    Value x = arith::ExtUIOp::create(b_, loc_, wideType, ifValid.getResult(0));
    Value sign = arith::ShLIOp::create(b_, loc_, arith::AndIOp::create(b_, loc_, x, splat(0x80)), splat(8));
    Value mag = arith::ShLIOp::create(b_, loc_, arith::AndIOp::create(b_, loc_, x, splat(0x7F)), splat(7));
    Value half = vector::BitCastOp::create(b_, loc_, VectorType::get({16}, b_.getF16Type()),
                                           arith::OrIOp::create(b_, loc_, sign, mag));
    vector::StoreOp::create(b_, loc_, half, smem, dst, false, llvm::MaybeAlign(16));
  }
  NVVM::CpAsyncCommitGroupOp::create(b_, loc_);
  NVVM::CpAsyncWaitGroupOp::create(b_, loc_, 0);
  barrier();
}

/// Key tile n of the row by the indexer: scores into the workspace row
/// `wsRow`; `w` holds w[b, t, j] of each of the lane's row slots (0 past HI).
void KernelEmitter::indexerScores(Value n, Value wsRow, Value needMask, ArrayRef<Value> w) {
  const int64_t nTilesN = BN_ / 8;
  const AccLayout layout = scoreLayout();
  Value colFirst = mul(n, ci(BN_));
  // kI rows colFirst .. into the K tile (selK_: the same shared memory as Ks_, 2-D).
  Value kBase = add(mul(bIdx_, iksb_), mul(colFirst, iksl_));
  loadIndexerRows(selK_, ik_, kBase, BN_, sub(klen_, colFirst), iksl_);
  SmallVector<Value> s = scoresQK({Qs_, Value()}, {Ks_, cidx(0)});
  auto red = [&](Value w8, Value col) { return SmallVector<Value>{toIndex(w8), toIndex(col)}; };
  for (int64_t j = 0; j < nTilesN; ++j)
    for (int64_t c = 0; c < 2; ++c) {
      Value sum = cf(0);
      for (int64_t mt = 0; mt < MT_; ++mt)
        for (int64_t e = c; e < 4; e += 2)
          sum = LLVM::FMAOp::create(b_, loc_, maxF(s[layout.index(mt, j, e)], cf(0)), w[AccLayout::rowSlot(mt, e)], sum);
      for (int32_t offset : {4, 8, 16}) // the lanes holding other rows of these columns
        sum = addF(sum, gpu::ShuffleOp::create(b_, loc_, sum, offset, 32, gpu::ShuffleMode::XOR).getShuffleResult());
      auto ifLead = scf::IfOp::create(b_, loc_, TypeRange{}, cmpI(Pred::eq, quad_, ci(0)), false);
      OpBuilder::InsertionGuard g(b_);
      b_.setInsertionPointToStart(&ifLead.getThenRegion().front());
      memref::StoreOp::create(b_, loc_, sum, selRed_, red(warp_, add(ci(j * 8 + c), mul(inQuad_, ci(2)))));
    }
  barrier();
  for (int64_t i = 0; i * kThreads < BN_; ++i) {
    Value col = add(tid_, ci(i * kThreads));
    Value key = add(colFirst, col);
    auto ifIn = scf::IfOp::create(b_, loc_, TypeRange{},
                                  andB(cmpI(Pred::slt, col, ci(BN_)), cmpI(Pred::slt, key, klen_)), false);
    OpBuilder::InsertionGuard g(b_);
    b_.setInsertionPointToStart(&ifIn.getThenRegion().front());
    Value total = cf(0);
    for (int64_t wi = 0; wi < kWarps; ++wi)
      total = addF(total, memref::LoadOp::create(b_, loc_, selRed_, red(ci(wi), col)));
    if (indexer_->dtype == "fp8")
      total = mulF(total, cf(kFp8Rescale));
    Value ordered = sel(allowedAt(q0_, key, needMask), orderedKey(total), ci32(0));
    memref::StoreOp::create(b_, loc_, ordered, workspace_, ValueRange{toIndex(add(wsRow, key))});
  }
  barrier(); // the K tile and the sums are refilled by the next tile
}

/// Key tile n of the row by the select region: one key a thread.
void KernelEmitter::regionScores(Value n, Value wsRow, Value needMask) {
  Value colFirst = mul(n, ci(BN_));
  Type keyType = selectKeyType();
  for (int64_t i = 0; i * kThreads < BN_; ++i) {
    Value col = add(tid_, ci(i * kThreads));
    Value key = add(colFirst, col);
    auto ifIn = scf::IfOp::create(b_, loc_, TypeRange{},
                                  andB(cmpI(Pred::slt, col, ci(BN_)), cmpI(Pred::slt, key, klen_)), false);
    OpBuilder::InsertionGuard g(b_);
    b_.setInsertionPointToStart(&ifIn.getThenRegion().front());
    // The score only where allowed (the reference evaluates nothing else:
    // a division by zero or an input read elsewhere must not matter).
    auto ifAllowed = scf::IfOp::create(b_, loc_, TypeRange{keyType}, allowedAt(q0_, key, needMask), true);
    b_.setInsertionPointToStart(&ifAllowed.getThenRegion().front());
    scf::YieldOp::create(b_, loc_, ValueRange{orderedKey(selectScoreOf(q0_, add(key, kOff_)))});
    b_.setInsertionPointToStart(&ifAllowed.getElseRegion().front());
    scf::YieldOp::create(b_, loc_, ValueRange{arith::ConstantIntOp::create(b_, loc_, keyType, 0).getResult()});
    b_.setInsertionPointAfter(ifAllowed);
    memref::StoreOp::create(b_, loc_, ifAllowed.getResult(0), workspace_, ValueRange{toIndex(add(wsRow, key))});
  }
}

/// For a per-thread flag: (the number of threads before this one, in thread
/// order, whose flag is set; the number in the block), as i64.
std::pair<Value, Value> KernelEmitter::blockCount(Value flag, Value counts) {
  Value ballot = NVVM::VoteSyncOp::create(b_, loc_, i32_, ci32(-1), flag, NVVM::VoteSyncKind::ballot);
  Value lane32 = arith::TruncIOp::create(b_, loc_, i32_, lane_);
  Value below = sub(arith::ShLIOp::create(b_, loc_, ci32(1), lane32), ci32(1));
  auto popc = [&](Value x) {
    return arith::ExtUIOp::create(b_, loc_, i64_, LLVM::CtPopOp::create(b_, loc_, i32_, x)).getResult();
  };
  Value inWarp = popc(arith::AndIOp::create(b_, loc_, ballot, below));
  Value warpTotal = popc(ballot);
  {
    auto ifLead = scf::IfOp::create(b_, loc_, TypeRange{}, cmpI(Pred::eq, lane_, ci(0)), false);
    OpBuilder::InsertionGuard g(b_);
    b_.setInsertionPointToStart(&ifLead.getThenRegion().front());
    memref::StoreOp::create(b_, loc_, warpTotal, counts, ValueRange{toIndex(warp_)});
  }
  barrier();
  Value before = inWarp, total = ci(0);
  for (int64_t w = 0; w < kWarps; ++w) {
    Value c = memref::LoadOp::create(b_, loc_, counts, ValueRange{cidx(w)});
    total = add(total, c);
    before = add(before, sel(cmpI(Pred::slt, ci(w), warp_), c, ci(0)));
  }
  barrier(); // counts are rewritten by the next call
  return {before, total};
}

/// Step 2 of the header over workspace keys [begin, end) of row `row`.
void KernelEmitter::radixTopK(Value wsRow, Value begin, Value end, Value row) {
  Type keyType = selectKeyType();
  const int64_t bits = keyType.getIntOrFloatBitWidth(), topk = *variant_.getTopk();
  auto key64 = [&](Value k) { return bits == 64 ? k : arith::ExtUIOp::create(b_, loc_, i64_, k).getResult(); };
  auto loadKey = [&](Value i) {
    return key64(memref::LoadOp::create(b_, loc_, workspace_, ValueRange{toIndex(add(wsRow, i))}));
  };
  auto scratch = [&](int64_t i) { return memref::LoadOp::create(b_, loc_, selScratch_, ValueRange{cidx(i)}).getResult(); };
  auto setScratch = [&](int64_t i, Value v) { memref::StoreOp::create(b_, loc_, v, selScratch_, ValueRange{cidx(i)}); };
  auto forEach = [&](Value from, Value to, int64_t step, const std::function<void(Value)> &body) {
    auto loop = scf::ForOp::create(b_, loc_, toIndex(from), toIndex(to), cidx(step));
    OpBuilder::InsertionGuard g(b_);
    b_.setInsertionPointToStart(loop.getBody());
    body(toI64(loop.getInductionVar()));
  };
  auto onThread0 = [&](const std::function<void()> &body) {
    auto ifZero = scf::IfOp::create(b_, loc_, TypeRange{}, cmpI(Pred::eq, tid_, ci(0)), false);
    OpBuilder::InsertionGuard g(b_);
    b_.setInsertionPointToStart(&ifZero.getThenRegion().front());
    body();
  };
  // scratch: 0 the chosen digits (prefix), 1 their mask, 2 how many keys
  // equal to the prefix are still to take, 3 done (every allowed key fits).
  onThread0([&] {
    setScratch(0, ci(0));
    setScratch(1, ci(0));
    setScratch(2, ci(topk));
    setScratch(3, ci(0));
  });
  barrier();
  for (int64_t pass = 0; pass < bits / 8; ++pass) {
    const int64_t shift = bits - 8 * (pass + 1);
    auto ifOpen = scf::IfOp::create(b_, loc_, TypeRange{}, cmpI(Pred::eq, scratch(3), ci(0)), false);
    OpBuilder::InsertionGuard g(b_);
    b_.setInsertionPointToStart(&ifOpen.getThenRegion().front());
    Value prefix = scratch(0), mask = scratch(1), remaining = scratch(2);
    forEach(tid_, ci(kRadixBins), kThreads,
            [&](Value i) { memref::StoreOp::create(b_, loc_, ci32(0), selHist_, ValueRange{toIndex(i)}); });
    barrier();
    forEach(add(begin, tid_), end, kThreads, [&](Value i) {
      Value key = loadKey(i);
      Value match = andB(cmpI(Pred::ne, key, ci(0)), cmpI(Pred::eq, andB(key, mask), prefix));
      auto ifMatch = scf::IfOp::create(b_, loc_, TypeRange{}, match, false);
      OpBuilder::InsertionGuard g2(b_);
      b_.setInsertionPointToStart(&ifMatch.getThenRegion().front());
      Value digit = andB(arith::ShRUIOp::create(b_, loc_, key, ci(shift)), ci(kRadixBins - 1));
      memref::AtomicRMWOp::create(b_, loc_, arith::AtomicRMWKind::addi, ci32(1), selHist_, ValueRange{toIndex(digit)});
    });
    barrier();
    onThread0([&] {
      // From the top bin down: the first whose count reaches `remaining`.
      auto scan = scf::ForOp::create(b_, loc_, cidx(0), cidx(kRadixBins), cidx(1), ValueRange{ci(0), ci(-1)});
      {
        OpBuilder::InsertionGuard g3(b_);
        b_.setInsertionPointToStart(scan.getBody());
        Value bin = sub(ci(kRadixBins - 1), toI64(scan.getInductionVar()));
        Value cum = scan.getRegionIterArgs()[0], chosen = scan.getRegionIterArgs()[1];
        Value count = arith::ExtUIOp::create(b_, loc_, i64_,
                                             memref::LoadOp::create(b_, loc_, selHist_, ValueRange{toIndex(bin)}));
        Value open = cmpI(Pred::slt, chosen, ci(0));
        Value reaches = andB(open, cmpI(Pred::sge, add(cum, count), remaining));
        Value cumNext = sel(andB(open, notB(reaches)), add(cum, count), cum);
        scf::YieldOp::create(b_, loc_, ValueRange{cumNext, sel(reaches, bin, chosen)});
      }
      Value above = scan.getResult(0), chosen = scan.getResult(1);
      Value fits = cmpI(Pred::slt, chosen, ci(0)); // fewer matching keys than remaining: only on the first pass
      setScratch(0, sel(fits, ci(0), orB(prefix, arith::ShLIOp::create(b_, loc_, sel(fits, ci(0), chosen), ci(shift)))));
      setScratch(1, orB(mask, ci(int64_t(uint64_t(kRadixBins - 1) << shift))));
      setScratch(2, sel(fits, ci(0), sub(remaining, above)));
      setScratch(3, sel(fits, ci(1), ci(0)));
    });
    barrier();
  }
  // Every key above the threshold, and the first `need` equal to it.
  Value threshold = scratch(0), need = scratch(2);
  Value chunks = arith::DivSIOp::create(b_, loc_, add(sub(end, begin), ci(kThreads - 1)), ci(kThreads));
  Value groups = headsKv_;
  auto storeIndex = [&](Value slot, Value column) {
    forEach(ci(0), groups, 1, [&](Value g) {
      Value at = add(add(add(mul(bIdx_, isb_), mul(g, ish_)), mul(row, isl_)), slot);
      memref::StoreOp::create(b_, loc_, arith::TruncIOp::create(b_, loc_, i32_, column), indices_,
                              ValueRange{toIndex(at)});
    });
  };
  auto out = scf::ForOp::create(b_, loc_, cidx(0), toIndex(sel(cmpI(Pred::sgt, chunks, ci(0)), chunks, ci(0))),
                                cidx(1), ValueRange{ci(0), ci(0)});
  {
    OpBuilder::InsertionGuard g(b_);
    b_.setInsertionPointToStart(out.getBody());
    Value taken = out.getRegionIterArgs()[0], equalSeen = out.getRegionIterArgs()[1];
    Value i = add(add(begin, mul(toI64(out.getInductionVar()), ci(kThreads))), tid_);
    Value inRange = cmpI(Pred::slt, i, end);
    auto ifLoad = scf::IfOp::create(b_, loc_, TypeRange{i64_}, inRange, true);
    b_.setInsertionPointToStart(&ifLoad.getThenRegion().front());
    scf::YieldOp::create(b_, loc_, ValueRange{loadKey(i)});
    b_.setInsertionPointToStart(&ifLoad.getElseRegion().front());
    scf::YieldOp::create(b_, loc_, ValueRange{ci(0)});
    b_.setInsertionPointAfter(ifLoad);
    Value key = ifLoad.getResult(0);
    Value above = cmpI(Pred::ugt, key, threshold);
    Value equal = andB(cmpI(Pred::eq, key, threshold), cmpI(Pred::ne, key, ci(0)));
    auto [equalBefore, equalTotal] = blockCount(equal, selCounts_);
    Value take = orB(above, andB(equal, cmpI(Pred::slt, add(equalSeen, equalBefore), need)));
    auto [takeBefore, takeTotal] = blockCount(take, selCounts_);
    {
      auto ifTake = scf::IfOp::create(b_, loc_, TypeRange{}, take, false);
      OpBuilder::InsertionGuard g2(b_);
      b_.setInsertionPointToStart(&ifTake.getThenRegion().front());
      storeIndex(add(taken, takeBefore), i);
    }
    scf::YieldOp::create(b_, loc_, ValueRange{add(taken, takeTotal), add(equalSeen, equalTotal)});
  }
  forEach(add(out.getResult(0), tid_), ci(topk), kThreads, [&](Value slot) { storeIndex(slot, ci(-1)); });
}

void KernelEmitter::emitSelectStage() {
  tid_ = toI64(gpu::ThreadIdOp::create(b_, loc_, gpu::Dimension::x));
  warp_ = arith::DivUIOp::create(b_, loc_, tid_, ci(32));
  lane_ = arith::RemUIOp::create(b_, loc_, tid_, ci(32));
  Value block = toI64(gpu::BlockIdOp::create(b_, loc_, gpu::Dimension::x));
  // Row block f = block_first + blockIdx.x: one query row (block_m 1).
  Value f = add(blockFirst_, block);
  bIdx_ = arith::DivSIOp::create(b_, loc_, f, qlen_);
  Value row = arith::RemSIOp::create(b_, loc_, f, qlen_);
  hIdx_ = ci(0); // a selecting variant's mask and select region do not read h
  rowBase_ = row;
  q0_ = q1_ = add(row, qOff_);
  Value wsRow = mul(block, klen_);

  // Shared memory: the indexer's Q and K tiles, the column sums of each
  // warp, the radix histogram, the block counts and the select scratch.
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
  if (indexer_) {
    elem_ = bf16_ ? Type(b_.getBF16Type()) : Type(b_.getF16Type());
    Qs_ = view({BM_, LD_}, elem_);
    selK_ = alias({BN_, LD_}, elem_);
    Ks_ = view({1, BN_, LD_}, elem_); // scoresQK's view: buffer 0 of one
    selRed_ = view({kWarps, BN_}, f32_);
  }
  selHist_ = view({kRadixBins}, i32_);
  selCounts_ = view({kWarps}, i64_);
  selScratch_ = view({4}, i64_);
  info_.sharedBytes = offset;

  SmallVector<Value> w;
  if (indexer_) {
    quad_ = arith::DivUIOp::create(b_, loc_, lane_, ci(4));
    inQuad_ = arith::RemUIOp::create(b_, loc_, lane_, ci(4));
    laneRow16_ = arith::RemUIOp::create(b_, loc_, lane_, ci(16));
    laneHalf_ = arith::DivUIOp::create(b_, loc_, lane_, ci(16));
    lane8_ = arith::RemUIOp::create(b_, loc_, lane_, ci(8));
    laneOct_ = arith::RemUIOp::create(b_, loc_, arith::DivUIOp::create(b_, loc_, lane_, ci(8)), ci(2));
    Value qBase = add(mul(bIdx_, iqsb_), mul(row, iqsl_));
    loadIndexerRows(Qs_, iq_, qBase, BM_, ci(indexer_->heads), iqsh_);
    // w[b, t, j] for the lane's rows j (0 past the heads: zero rows add nothing).
    Value wBase = add(mul(bIdx_, iwsb_), mul(row, iwsl_));
    for (int64_t r = 0; r < 2 * MT_; ++r) {
      Value head = add(add(mul(warp_, ci(16 * MT_)), ci((r / 2) * 16 + (r % 2) * 8)), quad_);
      Value valid = cmpI(Pred::slt, head, ci(indexer_->heads));
      Value wv = memref::LoadOp::create(b_, loc_, iw_, ValueRange{toIndex(add(wBase, sel(valid, head, ci(0))))});
      w.push_back(sel(valid, wv, cf(0)));
    }
  }

  // 1. The visited tiles' scores; tiles inside the hull that the rule
  // skips are written as excluded.
  auto [first, last] = visitRange();
  auto tiles = scf::ForOp::create(b_, loc_, toIndex(first), toIndex(add(last, ci(1))), cidx(1));
  {
    OpBuilder::InsertionGuard g(b_);
    b_.setInsertionPointToStart(tiles.getBody());
    Value n = toI64(tiles.getInductionVar());
    auto [visit, needMask] = classifyTile(n);
    auto ifVisit = scf::IfOp::create(b_, loc_, TypeRange{}, visit, true);
    b_.setInsertionPointToStart(&ifVisit.getThenRegion().front());
    if (indexer_)
      indexerScores(n, wsRow, needMask, w);
    else
      regionScores(n, wsRow, needMask);
    b_.setInsertionPointToStart(&ifVisit.getElseRegion().front());
    for (int64_t i = 0; i * kThreads < BN_; ++i) {
      Value key = add(mul(n, ci(BN_)), add(tid_, ci(i * kThreads)));
      auto ifIn = scf::IfOp::create(b_, loc_, TypeRange{},
                                    andB(cmpI(Pred::slt, add(tid_, ci(i * kThreads)), ci(BN_)),
                                         cmpI(Pred::slt, key, klen_)),
                                    false);
      OpBuilder::InsertionGuard g2(b_);
      b_.setInsertionPointToStart(&ifIn.getThenRegion().front());
      memref::StoreOp::create(b_, loc_, arith::ConstantIntOp::create(b_, loc_, selectKeyType(), 0).getResult(),
                              workspace_, ValueRange{toIndex(add(wsRow, key))});
    }
  }
  barrier(); // every key of the row is in the workspace

  // 2. The top K of keys [first * BN, min((last + 1) * BN, klen)).
  Value some = cmpI(Pred::sle, first, last);
  Value begin = sel(some, mul(first, ci(BN_)), ci(0));
  Value end = sel(some, minI(mul(add(last, ci(1)), ci(BN_)), klen_), ci(0));
  radixTopK(wsRow, begin, end, row);
}

} // namespace attnc::flash

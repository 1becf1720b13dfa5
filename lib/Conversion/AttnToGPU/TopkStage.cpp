//===- TopkStage.cpp - A selecting variant's topk stage -------------------===//
//
// The second kernel of a variant with `select topk(K) by ...` (the DSA
// issue; docs/codegen.md "Selection (DSA)"): per query row, the K largest of
// the workspace keys the select stage wrote (SelectStage.cpp's header:
// order-preserving unsigned keys, 0 for a key the mask excludes), into
// indices[b, g, t, :] for every KV group g in ascending column order, -1 in
// the slots after the last. The tie rule is the language's: higher score,
// then lower key.
//
// One CTA (4 warps) takes the select stage CTA's 4 rows, one after the
// other. A row's K-th largest key is found digit by digit from the top (12
// bits: an f32 score's sign, exponent and 3 mantissa bits; then 10 a digit):
// a shared-memory histogram of the keys that match the digits chosen so
// far, then a block scan over the bins from the top finds the bin that
// holds the K-th. As soon as the keys at or above the chosen digits fit in
// shared memory (K + kTieRoom of them; 32-bit keys), one ordered pass copies
// them, key and column, into a list there, and the remaining digits and the
// output read the list instead of the workspace: two passes over a row's
// workspace where each digit took one. Rows with at most K allowed keys take
// them all after the first histogram; more ties than the list holds (and
// 64-bit keys) stay on the workspace to the last digit.
//
// The output (from the list or the workspace) and the list's copy are
// ordered compactions: a thread takes kUnroll consecutive keys a step and
// block scans of the per-thread counts place every taken key; the output
// takes every key above the threshold and the first `need` (by column)
// equal to it.
//
//===----------------------------------------------------------------------===//
#include "KernelEmitter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;

namespace attnc::flash {

namespace {
constexpr int64_t kFirstDigitBits = 12; ///< an f32 score's sign, exponent and 3 mantissa bits
constexpr int64_t kDigitBits = 10;      ///< the digits after the first
constexpr int64_t kUnroll = 16;         ///< keys a thread loads a step of a pass (in flight together)
constexpr int64_t kTieRoom = 2048;      ///< list entries beyond K: the keys of the threshold's digit
constexpr int64_t kListBytesMax = 96 * 1024; ///< a larger K keeps the keys in the workspace

/// The row's progress, in the scratch's slots.
enum TopkState : int64_t { kOpen = 0, kTakeAll = 1, kListed = 2 };
enum TopkScratchSlot : int64_t { kPrefix, kMask, kRemaining, kState, kChosenCount, kListCount, kScratchSlots };

struct Digit {
  int64_t shift, width;
};
/// The digits of a `bits`-bit key, from the top.
SmallVector<Digit> digitsOf(int64_t bits) {
  SmallVector<Digit> digits{{bits - kFirstDigitBits, kFirstDigitBits}};
  while (digits.back().shift > 0) {
    int64_t width = std::min(kDigitBits, digits.back().shift);
    digits.push_back({digits.back().shift - width, width});
  }
  return digits;
}
} // namespace

/// The keys a pass reads: `count` of them; keyAt(i) as i64 (0 at and past
/// count), columnAt(i) the key column of key i < count.
struct KernelEmitter::TopkKeys {
  Value count;
  std::function<Value(Value)> keyAt, columnAt;
};

Value KernelEmitter::topkScratch(int64_t slot) {
  return memref::LoadOp::create(b_, loc_, selScratch_, ValueRange{cidx(slot)});
}

void KernelEmitter::setTopkScratch(int64_t slot, Value v) {
  memref::StoreOp::create(b_, loc_, v, selScratch_, ValueRange{cidx(slot)});
}

void KernelEmitter::forRange(Value from, Value to, int64_t step, const std::function<void(Value)> &body) {
  auto loop = scf::ForOp::create(b_, loc_, toIndex(from), toIndex(to), cidx(step));
  OpBuilder::InsertionGuard g(b_);
  b_.setInsertionPointToStart(loop.getBody());
  body(toI64(loop.getInductionVar()));
}

void KernelEmitter::ifThen(Value cond, const std::function<void()> &body) {
  auto ifOp = scf::IfOp::create(b_, loc_, TypeRange{}, cond, false);
  OpBuilder::InsertionGuard g(b_);
  b_.setInsertionPointToStart(&ifOp.getThenRegion().front());
  body();
}

/// For a per-thread count (small, >= 0): (the sum over the threads before
/// this one, the sum over the block), as i64: a warp scan by shuffles, then
/// the warps' totals through shared memory.
std::pair<Value, Value> KernelEmitter::blockScan(Value count, Value totals) {
  Value x = arith::TruncIOp::create(b_, loc_, i32_, count);
  Value lane32 = arith::TruncIOp::create(b_, loc_, i32_, lane_);
  for (int32_t offset = 1; offset < 32; offset *= 2) { // inclusive
    Value up = gpu::ShuffleOp::create(b_, loc_, x, offset, 32, gpu::ShuffleMode::UP).getShuffleResult();
    x = sel(cmpI(Pred::sge, lane32, ci32(offset)), arith::AddIOp::create(b_, loc_, x, up), x);
  }
  Value inclusive = arith::ExtUIOp::create(b_, loc_, i64_, x);
  ifThen(cmpI(Pred::eq, lane_, ci(31)),
         [&] { memref::StoreOp::create(b_, loc_, inclusive, totals, ValueRange{toIndex(warp_)}); });
  barrier();
  Value before = sub(inclusive, count), total = ci(0);
  for (int64_t w = 0; w < kWarps; ++w) {
    Value c = memref::LoadOp::create(b_, loc_, totals, ValueRange{cidx(w)});
    total = add(total, c);
    before = add(before, sel(cmpI(Pred::slt, ci(w), warp_), c, ci(0)));
  }
  barrier(); // the totals are rewritten by the next call
  return {before, total};
}

/// One digit (bits shift .. shift + width - 1) of the K-th largest key: the
/// histogram of the keys that match the digits so far (prefix under mask),
/// then the bin that holds the remaining-th largest of them; updates the
/// scratch (or marks the row kTakeAll: fewer allowed keys than K).
void KernelEmitter::topkDigit(const TopkKeys &keys, int64_t shift, int64_t width) {
  const int64_t bins = int64_t(1) << width, perThread = std::max<int64_t>(1, bins / kThreads);
  Value prefix = topkScratch(kPrefix), mask = topkScratch(kMask), remaining = topkScratch(kRemaining);
  auto quad = VectorType::get({4}, i32_);
  Value zeros = arith::ConstantOp::create(b_, loc_, DenseElementsAttr::get(quad, b_.getI32IntegerAttr(0)));
  forRange(mul(tid_, ci(4)), ci(bins), 4 * kThreads, [&](Value i) {
    vector::StoreOp::create(b_, loc_, zeros, selHist_, ValueRange{toIndex(i)}, false, llvm::MaybeAlign(16));
  });
  barrier();
  // kUnroll keys a thread a step, coalesced, loaded first.
  const int64_t step = kThreads * kUnroll;
  Value steps = arith::DivSIOp::create(b_, loc_, add(keys.count, ci(step - 1)), ci(step));
  forRange(ci(0), steps, 1, [&](Value c) {
    SmallVector<Value> loaded;
    for (int64_t u = 0; u < kUnroll; ++u)
      loaded.push_back(keys.keyAt(add(mul(c, ci(step)), add(ci(u * kThreads), tid_))));
    for (Value key : loaded) {
      Value match = andB(cmpI(Pred::ne, key, ci(0)), cmpI(Pred::eq, andB(key, mask), prefix));
      ifThen(match, [&] {
        Value digit = andB(arith::ShRUIOp::create(b_, loc_, key, ci(shift)), ci(bins - 1));
        memref::AtomicRMWOp::create(b_, loc_, arith::AtomicRMWKind::addi, ci32(1), selHist_,
                                    ValueRange{toIndex(digit)});
      });
    }
  });
  barrier();
  // Thread t owns bins top - perThread + 1 .. top, top = bins - 1 - t perThread.
  Value owner = cmpI(Pred::slt, tid_, ci(bins / perThread));
  Value top = sub(ci(bins - 1), mul(minI(tid_, ci(bins / perThread - 1)), ci(perThread)));
  Value low = sub(top, ci(perThread - 1));
  Value mine = ci(0);
  if (perThread % 4 == 0) {
    for (int64_t i = 0; i < perThread; i += 4) {
      Value v = vector::LoadOp::create(b_, loc_, quad, selHist_, ValueRange{toIndex(add(low, ci(i)))}, false,
                                       llvm::MaybeAlign(16));
      Value s = vector::ReductionOp::create(b_, loc_, vector::CombiningKind::ADD, v);
      mine = add(mine, arith::ExtUIOp::create(b_, loc_, i64_, s));
    }
  } else {
    for (int64_t i = 0; i < perThread; ++i)
      mine = add(mine, arith::ExtUIOp::create(b_, loc_, i64_,
                                              memref::LoadOp::create(b_, loc_, selHist_,
                                                                     ValueRange{toIndex(add(low, ci(i)))})));
  }
  mine = sel(owner, mine, ci(0));
  auto [before, total] = blockScan(mine, selCounts_);
  // The thread whose bins hold the remaining-th walks them from the top.
  Value holds = andB(owner, andB(cmpI(Pred::slt, before, remaining), cmpI(Pred::sle, remaining, add(before, mine))));
  ifThen(holds, [&] {
    auto walk = scf::ForOp::create(b_, loc_, cidx(0), cidx(perThread), cidx(1),
                                   ValueRange{before, ci(-1), ci(0), ci(0)});
    {
      OpBuilder::InsertionGuard g(b_);
      b_.setInsertionPointToStart(walk.getBody());
      Value bin = sub(top, toI64(walk.getInductionVar()));
      auto args = walk.getRegionIterArgs();
      Value cum = args[0], chosen = args[1], chosenCount = args[2], above = args[3];
      Value count = arith::ExtUIOp::create(b_, loc_, i64_,
                                           memref::LoadOp::create(b_, loc_, selHist_, ValueRange{toIndex(bin)}));
      Value reaches = andB(cmpI(Pred::slt, chosen, ci(0)), cmpI(Pred::sge, add(cum, count), remaining));
      scf::YieldOp::create(b_, loc_,
                           ValueRange{add(cum, count), sel(reaches, bin, chosen), sel(reaches, count, chosenCount),
                                      sel(reaches, cum, above)});
    }
    Value chosen = walk.getResult(1);
    setTopkScratch(kPrefix, orB(prefix, arith::ShLIOp::create(b_, loc_, chosen, ci(shift))));
    setTopkScratch(kMask, orB(mask, ci(int64_t(uint64_t(bins - 1) << shift))));
    setTopkScratch(kRemaining, sub(remaining, walk.getResult(3)));
    setTopkScratch(kChosenCount, walk.getResult(2));
  });
  ifThen(andB(cmpI(Pred::eq, tid_, ci(0)), cmpI(Pred::slt, total, remaining)), [&] {
    setTopkScratch(kState, ci(kTakeAll)); // every allowed key: those above 0
    setTopkScratch(kPrefix, ci(0));
    setTopkScratch(kRemaining, ci(0));
  });
  barrier();
}

/// An ordered compaction of `keys`: every key above `threshold` (unsigned)
/// and, with `ties`, the first `need` equal to it, each passed to
/// emit(slot, position, key) with its slot in position order. Returns how
/// many it took.
Value KernelEmitter::topkOrdered(const TopkKeys &keys, Value threshold, Value need, bool ties,
                                 const std::function<void(Value, Value, Value)> &emit) {
  const int64_t step = kThreads * kUnroll;
  Value steps = arith::DivSIOp::create(b_, loc_, add(keys.count, ci(step - 1)), ci(step));
  auto loop = scf::ForOp::create(b_, loc_, cidx(0), toIndex(maxI(steps, ci(0))), cidx(1), ValueRange{ci(0), ci(0)});
  OpBuilder::InsertionGuard g(b_);
  b_.setInsertionPointToStart(loop.getBody());
  // kUnroll consecutive keys a thread, threads in order: key order is
  // (thread, then position) order, so block scans place every taken key.
  Value taken = loop.getRegionIterArgs()[0], equalSeen = loop.getRegionIterArgs()[1];
  Value first = add(mul(toI64(loop.getInductionVar()), ci(step)), mul(tid_, ci(kUnroll)));
  SmallVector<Value> loaded, above, equal;
  Value equalCount = ci(0);
  for (int64_t u = 0; u < kUnroll; ++u) {
    loaded.push_back(keys.keyAt(add(first, ci(u))));
    above.push_back(cmpI(Pred::ugt, loaded.back(), threshold));
    equal.push_back(ties ? andB(cmpI(Pred::eq, loaded.back(), threshold), cmpI(Pred::ne, loaded.back(), ci(0)))
                         : cbool(false));
    equalCount = add(equalCount, arith::ExtUIOp::create(b_, loc_, i64_, equal.back()));
  }
  Value equalBefore = ci(0), equalTotal = ci(0);
  if (ties)
    std::tie(equalBefore, equalTotal) = blockScan(equalCount, selCounts_);
  SmallVector<Value> take;
  Value rank = add(equalSeen, equalBefore), takeCount = ci(0);
  for (int64_t u = 0; u < kUnroll; ++u) {
    take.push_back(ties ? orB(above[u], andB(equal[u], cmpI(Pred::slt, rank, need))) : above[u]);
    if (ties)
      rank = add(rank, arith::ExtUIOp::create(b_, loc_, i64_, equal[u]));
    takeCount = add(takeCount, arith::ExtUIOp::create(b_, loc_, i64_, take.back()));
  }
  auto [takeBefore, takeTotal] = blockScan(takeCount, selCounts_);
  Value slot = add(taken, takeBefore);
  for (int64_t u = 0; u < kUnroll; ++u) {
    Value position = add(first, ci(u)), at = slot;
    ifThen(take[u], [&] { emit(at, position, loaded[u]); });
    slot = add(slot, arith::ExtUIOp::create(b_, loc_, i64_, take[u]));
  }
  scf::YieldOp::create(b_, loc_, ValueRange{add(taken, takeTotal), add(equalSeen, equalTotal)});
  return loop.getResult(0);
}

/// The header's steps for row `row` over its workspace keys [begin, end)
/// at wsRow.
void KernelEmitter::topkOfRow(Value wsRow, Value begin, Value end, Value row) {
  const int64_t bits = selectKeyType().getIntOrFloatBitWidth(), topk = *variant_.getTopk();
  // Branch-free loads (the index clamped into the row, the key then 0 past
  // it), so that a thread's loads of a step are all in flight together.
  TopkKeys workspace{sub(end, begin),
                     [&](Value i) {
                       Value count = sub(end, begin);
                       Value at = add(wsRow, add(begin, minI(i, sub(maxI(count, ci(1)), ci(1)))));
                       Value key = memref::LoadOp::create(b_, loc_, workspace_, ValueRange{toIndex(at)});
                       if (bits != 64)
                         key = arith::ExtUIOp::create(b_, loc_, i64_, key);
                       return sel(cmpI(Pred::slt, i, count), key, ci(0));
                     },
                     [&](Value i) { return add(begin, i); }};
  auto listed = [&] {
    Value n = topkScratch(kListCount);
    auto at = [this, n](Value list, Value i) {
      return memref::LoadOp::create(b_, loc_, list, ValueRange{toIndex(minI(i, sub(maxI(n, ci(1)), ci(1))))})
          .getResult();
    };
    return TopkKeys{n,
                    [this, n, at](Value i) {
                      Value key = arith::ExtUIOp::create(b_, loc_, i64_, at(topkListKeys_, i));
                      return sel(cmpI(Pred::slt, i, n), key, ci(0));
                    },
                    [this, at](Value i) {
                      return arith::ExtUIOp::create(b_, loc_, i64_, at(topkListColumns_, i)).getResult();
                    }};
  };
  barrier(); // the previous row's last reads of the scratch
  ifThen(cmpI(Pred::eq, tid_, ci(0)), [&] {
    setTopkScratch(kPrefix, ci(0));
    setTopkScratch(kMask, ci(0));
    setTopkScratch(kRemaining, ci(topk));
    setTopkScratch(kState, ci(kOpen));
  });
  barrier();
  const SmallVector<Digit> digits = digitsOf(bits);
  for (size_t d = 0; d < digits.size(); ++d) {
    auto ifOpen = scf::IfOp::create(b_, loc_, TypeRange{}, cmpI(Pred::eq, topkScratch(kState), ci(kOpen)),
                                    topkListCap_ > 0);
    OpBuilder::InsertionGuard g(b_);
    b_.setInsertionPointToStart(&ifOpen.getThenRegion().front());
    topkDigit(workspace, digits[d].shift, digits[d].width);
    if (topkListCap_ > 0 && d + 1 < digits.size()) {
      // The keys at or above the chosen digits into the list, if they fit.
      Value taking = add(sub(ci(topk), topkScratch(kRemaining)), topkScratch(kChosenCount));
      ifThen(andB(cmpI(Pred::eq, topkScratch(kState), ci(kOpen)), cmpI(Pred::sle, taking, ci(topkListCap_))), [&] {
        Value lowest = topkScratch(kPrefix); // 0 only where keys of the digit 0 remain: 0 itself is excluded
        Value n = topkOrdered(workspace, sub(maxI(lowest, ci(1)), ci(1)), ci(0), false,
                              [&](Value slot, Value position, Value key) {
                                ifThen(cmpI(Pred::slt, slot, ci(topkListCap_)), [&] {
                                  memref::StoreOp::create(b_, loc_, arith::TruncIOp::create(b_, loc_, i32_, key),
                                                          topkListKeys_, ValueRange{toIndex(slot)});
                                  memref::StoreOp::create(
                                      b_, loc_, arith::TruncIOp::create(b_, loc_, i32_, workspace.columnAt(position)),
                                      topkListColumns_, ValueRange{toIndex(slot)});
                                });
                              });
        ifThen(cmpI(Pred::eq, tid_, ci(0)), [&] {
          setTopkScratch(kState, ci(kListed));
          setTopkScratch(kListCount, minI(n, ci(topkListCap_)));
        });
        barrier();
      });
    }
    if (topkListCap_ > 0) {
      b_.setInsertionPointToStart(&ifOpen.getElseRegion().front());
      ifThen(cmpI(Pred::eq, topkScratch(kState), ci(kListed)),
             [&] { topkDigit(listed(), digits[d].shift, digits[d].width); });
    }
  }
  // Every key above the threshold, and the first `need` equal to it.
  Value threshold = topkScratch(kPrefix), need = topkScratch(kRemaining);
  auto storeIndex = [&](Value slot, Value column) {
    forRange(ci(0), headsKv_, 1, [&](Value g) {
      Value at = add(add(add(mul(bIdx_, isb_), mul(g, ish_)), mul(row, isl_)), slot);
      memref::StoreOp::create(b_, loc_, arith::TruncIOp::create(b_, loc_, i32_, column), indices_,
                              ValueRange{toIndex(at)});
    });
  };
  auto output = [&](const TopkKeys &keys) {
    return topkOrdered(keys, threshold, need, true,
                       [&](Value slot, Value position, Value) { storeIndex(slot, keys.columnAt(position)); });
  };
  Value taken;
  if (topkListCap_ > 0) {
    auto fromList = scf::IfOp::create(b_, loc_, TypeRange{i64_}, cmpI(Pred::eq, topkScratch(kState), ci(kListed)),
                                      true);
    OpBuilder::InsertionGuard g(b_);
    b_.setInsertionPointToStart(&fromList.getThenRegion().front());
    scf::YieldOp::create(b_, loc_, ValueRange{output(listed())});
    b_.setInsertionPointToStart(&fromList.getElseRegion().front());
    scf::YieldOp::create(b_, loc_, ValueRange{output(workspace)});
    taken = fromList.getResult(0);
  } else {
    taken = output(workspace);
  }
  forRange(add(taken, tid_), ci(topk), kThreads, [&](Value slot) { storeIndex(slot, ci(-1)); });
}

/// The topk stage's kernel body: shared memory, then each of the CTA's rows.
void KernelEmitter::emitTopkStage(Value block) {
  const int64_t rows = kSelectRows, topk = *variant_.getTopk();
  const bool narrowKeys = selectKeyType().getIntOrFloatBitWidth() == 32;
  topkListCap_ = narrowKeys && 8 * (topk + kTieRoom) <= kListBytesMax ? topk + kTieRoom : 0;
  auto dynType = MemRefType::get({ShapedType::kDynamic}, b_.getI8Type(), MemRefLayoutAttrInterface{}, workgroup());
  Value dyn = gpu::DynamicSharedMemoryOp::create(b_, loc_, dynType);
  int64_t offset = 0;
  auto view = [&](int64_t n, Type t) {
    Value v = memref::ViewOp::create(b_, loc_, MemRefType::get({n}, t, MemRefLayoutAttrInterface{}, workgroup()), dyn,
                                     cidx(offset), ValueRange{});
    offset += (n * t.getIntOrFloatBitWidth() / 8 + 15) / 16 * 16;
    return v;
  };
  selHist_ = view(int64_t(1) << kFirstDigitBits, i32_);
  selCounts_ = view(kWarps, i64_);
  selScratch_ = view(kScratchSlots, i64_);
  if (topkListCap_ > 0) {
    topkListKeys_ = view(topkListCap_, i32_);
    topkListColumns_ = view(topkListCap_, i32_);
  }
  info_.sharedBytes = offset;
  // Each row's top K of keys [first * BN, min((last + 1) * BN, klen)): the
  // select stage wrote them all.
  auto [first, last] = visitRange();
  Value some = cmpI(Pred::sle, first, last);
  Value begin = sel(some, mul(first, ci(BN_)), ci(0));
  Value end = sel(some, minI(mul(add(last, ci(1)), ci(BN_)), klen_), ci(0));
  forRange(ci(0), ci(rows), 1, [&](Value r) {
    Value row = add(rowBase_, r);
    ifThen(cmpI(Pred::slt, row, qlen_), [&] { topkOfRow(mul(add(mul(block, ci(rows)), r), klen_), begin, end, row); });
  });
}

} // namespace attnc::flash

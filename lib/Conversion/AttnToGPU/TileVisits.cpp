//===- TileVisits.cpp - Which key tiles to visit, masked or not ---------===//
//
// The key tiles a query tile (or one warp's rows) visits and whether each
// needs the mask: the kernel's environment for TileVisitRule (lengths,
// offsets, input reads); for masks that read inputs at token positions
// (documents), the summary stage (each input's range per query and key
// tile, once per call) and the per-CTA bitmaps classified from those
// ranges in shared memory; the walk to the next visited tile.
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

//===----------------------------------------------------------------------===//
// Tile bounds from the key intervals.
//===----------------------------------------------------------------------===//
namespace {

/// The kernel's tensor for input `name`, or null: the analysis' "<opaque>"
/// stand-in for an op it does not model (MaskTerms.cpp) is no tensor.
InputArg *findInput(std::vector<InputArg> &inputs, const std::string &name) {
  for (InputArg &in : inputs)
    if (in.name == name)
      return &in;
  return nullptr;
}

/// The one token axis of a read (doc[b, q]: 1), or -1 when it has none or
/// several (allow[q, k]: a 2-D region, which a range over one axis does not
/// enclose).
int64_t singleTokenAxis(const Term &read) {
  int64_t axis = -1;
  for (size_t a = 0; a < read.inputIndex.size(); ++a)
    if (read.inputIndex[a] == analysis::Var::Q || read.inputIndex[a] == analysis::Var::K) {
      if (axis >= 0)
        return -1;
      axis = int64_t(a);
    }
  return axis;
}

/// A read whose range the kernel can take: an input it has a tensor for,
/// indexed by exactly one token position.
bool rangeable(std::vector<InputArg> &inputs, const Term &read) {
  return findInput(inputs, read.input) && singleTokenAxis(read) >= 0;
}

} // namespace

IntervalEnv KernelEmitter::intervalEnv(ValueRange64 q, ValueRange64 k, bool tokenRanges) {
  IntervalEnv env;
  if (tokenRanges)
    env.tokenInput = [this, k](const Term &read) -> ValueRange64 {
      auto unknown = [this] { return ValueRange64{ci(-analysis::kInf), ci(analysis::kInf)}; };
      if (!rangeable(inputs_, read))
        return unknown(); // never excludes a tile
      // Read at k: asked by classify() for one whole key tile, which starts
      // at k.lo; its summary follows the query tiles'.
      if (read.inputIndex[size_t(singleTokenAxis(read))] == analysis::Var::K) {
        Value n = arith::DivSIOp::create(b_, loc_, sub(k.lo, kOff_), ci(BN_));
        return summaryRange(read, add(arith::CeilDivSIOp::create(b_, loc_, qlen_, ci(BM_)), n));
      }
      // Read at q: its range over the CTA's rows, loaded once (computeQRanges).
      auto it = qRanges_.find(read.str());
      assert(it != qRanges_.end() && "computeQRanges missed a read at q");
      return it == qRanges_.end() ? unknown() : it->second;
    };
  env.q = q;
  env.k = k;
  env.h = hIdx_;
  env.b = bIdx_;
  env.qlen = qlen_;
  env.klen = klen_;
  env.scalarInput = [this](const Term &read) -> Value {
    for (InputArg &in : inputs_) {
      if (in.name != read.input)
        continue;
      Value idx = ci(0);
      for (size_t a = 0; a < read.inputIndex.size(); ++a) {
        Value i = read.inputIndex[a] == analysis::Var::H ? hIdx_ : bIdx_;
        idx = add(idx, mul(i, in.strides[a]));
      }
      if (!in.value.isInteger(1) && !in.value.isInteger(32) && !in.value.isInteger(64))
        return Value(); // float inputs do not bound keys
      return inputValueI64(in, memref::LoadOp::create(b_, loc_, in.ptr, ValueRange{toIndex(idx)}));
    }
    return Value();
  };
  return env;
}

/// The kernel's visit rule (TileVisitRule.h) over this kernel's lengths,
/// offsets and inputs.
TileVisitRule KernelEmitter::visitRule() {
  return TileVisitRule(b_, loc_, ki_, BN_, klen_, kOff_,
                       [this](ValueRange64 q, ValueRange64 k, bool tokenRanges) { return intervalEnv(q, k, tokenRanges); });
}

/// The hull of the key tiles this query tile may touch: [first, last].
std::pair<Value, Value> KernelEmitter::visitRange() { return visitRule().visitRange({q0_, q1_}); }

/// For key tile n: (visit, needMask) over the query tile's positions, or
/// over `rows` (one warp's).
std::pair<Value, Value> KernelEmitter::classifyTile(Value n, bool tokenRanges, std::optional<ValueRange64> rows) {
  return visitRule().classify(n, rows ? *rows : ValueRange64{q0_, q1_}, tokenRanges);
}

//===----------------------------------------------------------------------===//
// Tile summaries of inputs read at token positions.
//===----------------------------------------------------------------------===//
bool needsTileSummaries(const analysis::KeyIntervals &ki) {
  std::function<bool(const Term &)> readsToken = [&](const Term &t) {
    if (t.kind == Term::Kind::Input)
      for (analysis::Var v : t.inputIndex)
        if (v == analysis::Var::Q || v == analysis::Var::K)
          return true;
    for (const analysis::TermPtr &a : t.args)
      if (readsToken(*a))
        return true;
    return false;
  };
  for (const KeyClause &c : ki.clauses)
    for (const analysis::TermPtr &r : c.rest)
      if (readsToken(*r))
        return true;
  return false;
}

/// Calls `fn` on every rangeable input read (a tensor, one token axis) in
/// every part of every clause (bounds, row conditions, unsolved
/// conditions: classify() evaluates them all with token ranges), in order.
void KernelEmitter::forEachRangeableRead(const std::function<void(const Term &)> &fn) {
  std::function<void(const Term &)> visit = [&](const Term &t) {
    if (t.kind == Term::Kind::Input && rangeable(inputs_, t))
      fn(t);
    for (const analysis::TermPtr &a : t.args)
      visit(*a);
  };
  for (const KeyClause &c : ki_.clauses) {
    for (const analysis::TermPtr &bound : {c.lo, c.hi})
      if (bound)
        visit(*bound);
    for (const analysis::TermPtr &r : c.rows)
      visit(*r);
    for (const analysis::TermPtr &r : c.rest)
      visit(*r);
  }
}

/// The input reads the summary stage ranges (rangeable reads at q or k in
/// any part of any clause: classify() evaluates them all with token
/// ranges), one per input and index pattern: doc[b, q] and doc[b, k] are
/// the same function of the position, so one summary serves both.
std::vector<KernelEmitter::SummaryRead> KernelEmitter::summaryReads() {
  std::vector<SummaryRead> out;
  forEachRangeableRead([&](const Term &t) {
    SummaryRead r;
    r.input = findInput(inputs_, t.input);
    r.tokenAxis = singleTokenAxis(t);
    r.index = t.inputIndex;
    r.index[size_t(r.tokenAxis)] = analysis::Var::Q; // the position, whichever side reads it
    r.key = t.input;
    for (analysis::Var v : r.index) {
      r.key += v == analysis::Var::H ? ",h" : v == analysis::Var::B ? ",b" : ",t";
      r.usesHead = r.usesHead || v == analysis::Var::H;
    }
    if (std::none_of(out.begin(), out.end(), [&](const SummaryRead &o) { return o.key == r.key; }))
      out.push_back(r);
  });
  return out;
}

/// The summary of `read` a term of the mask names (nullptr if none).
const KernelEmitter::SummaryRead *KernelEmitter::summaryOf(const Term &read) {
  for (const SummaryRead &r : summaryReads_)
    if (r.input->name == read.input && r.tokenAxis == singleTokenAxis(read)) {
      bool same = true;
      for (size_t a = 0; a < r.index.size(); ++a)
        same = same && (int64_t(a) == r.tokenAxis || r.index[a] == read.inputIndex[a]);
      if (same)
        return &r;
    }
  return nullptr;
}

/// The workspace's i64 element of (min, max) of summary `r` over tile t
/// (query tiles first, then key tiles) of this CTA's batch entry and query
/// head (head 0 for a read without h):
/// (((r * batch + b) * heads_q + h) * tiles + t) * 2.
Value KernelEmitter::summaryEntry(const SummaryRead &r, Value tile) {
  Value tiles = add(arith::CeilDivSIOp::create(b_, loc_, qlen_, ci(BM_)),
                    arith::CeilDivSIOp::create(b_, loc_, klen_, ci(BN_)));
  Value which = ci(int64_t(&r - summaryReads_.data()));
  Value slot = add(mul(add(mul(which, batch_), bIdx_), headsQ_), r.usesHead ? hIdx_ : ci(0));
  return mul(add(mul(slot, tiles), tile), ci(2));
}

/// The summary stage (attn.tile.summarize_inputs; grid tiles_heads_batch):
/// warp w of CTA x ranges tile x * warps + w of query head blockIdx.y and
/// batch entry blockIdx.z: query tile t (rows t * BM ..) for t below
/// ceil(qlen / BM), else key tile t - ceil(qlen / BM) (keys n * BN ..),
/// each lane reading every 32nd position, then a butterfly of min and max.
/// Positions below 0 are skipped (an empty range is (kInf, -kInf), as the
/// interval evaluation's "no value").
void KernelEmitter::emitSummaryStage() {
  tid_ = toI64(gpu::ThreadIdOp::create(b_, loc_, gpu::Dimension::x));
  warp_ = arith::DivUIOp::create(b_, loc_, tid_, ci(32));
  lane_ = arith::RemUIOp::create(b_, loc_, tid_, ci(32));
  hIdx_ = toI64(gpu::BlockIdOp::create(b_, loc_, gpu::Dimension::y));
  bIdx_ = toI64(gpu::BlockIdOp::create(b_, loc_, gpu::Dimension::z));
  Value tilesQ = arith::CeilDivSIOp::create(b_, loc_, qlen_, ci(BM_));
  Value tiles = add(tilesQ, arith::CeilDivSIOp::create(b_, loc_, klen_, ci(BN_)));
  Value tile = add(mul(toI64(gpu::BlockIdOp::create(b_, loc_, gpu::Dimension::x)), ci(params_.blockThreads() / 32)),
                   warp_);
  auto ifTile = scf::IfOp::create(b_, loc_, TypeRange{}, cmpI(arith::CmpIPredicate::slt, tile, tiles), false);
  OpBuilder::InsertionGuard g(b_);
  b_.setInsertionPointToStart(&ifTile.getThenRegion().front());
  Value isQuery = cmpI(arith::CmpIPredicate::slt, tile, tilesQ);
  Value n = sub(tile, tilesQ);
  Value first = sel(isQuery, add(mul(tile, ci(BM_)), qOff_), add(mul(n, ci(BN_)), kOff_));
  Value end = sel(isQuery, add(minI(add(mul(tile, ci(BM_)), ci(BM_)), qlen_), qOff_),
                  add(minI(add(mul(n, ci(BN_)), ci(BN_)), klen_), kOff_));
  for (const SummaryRead &r : summaryReads_) {
    Value lo = ci(analysis::kInf), hi = ci(-analysis::kInf);
    for (int64_t i = 0; i < (std::max(BM_, BN_) + 31) / 32; ++i) {
      Value pos = add(first, add(lane_, ci(32 * i)));
      Value valid = andB(cmpI(arith::CmpIPredicate::slt, pos, end), cmpI(arith::CmpIPredicate::sge, pos, ci(0)));
      Value v = readAtPosition(r, sel(valid, pos, ci(0)));
      lo = sel(valid, minI(lo, v), lo);
      hi = sel(valid, maxI(hi, v), hi);
    }
    for (int32_t offset : {1, 2, 4, 8, 16}) {
      lo = minI(lo, shuffleXorI64(lo, offset));
      hi = maxI(hi, shuffleXorI64(hi, offset));
    }
    // A read without h has one summary per batch entry: head 0 writes it.
    Value writes = cmpI(arith::CmpIPredicate::eq, lane_, ci(0));
    if (!r.usesHead)
      writes = andB(writes, cmpI(arith::CmpIPredicate::eq, hIdx_, ci(0)));
    auto ifWrite = scf::IfOp::create(b_, loc_, TypeRange{}, writes, false);
    OpBuilder::InsertionGuard gw(b_);
    b_.setInsertionPointToStart(&ifWrite.getThenRegion().front());
    Value at = summaryEntry(r, tile);
    memref::StoreOp::create(b_, loc_, lo, workspace_, ValueRange{toIndex(at)});
    memref::StoreOp::create(b_, loc_, hi, workspace_, ValueRange{toIndex(add(at, ci(1)))});
  }
}

/// A 64-bit XOR shuffle as two 32-bit ones.
Value KernelEmitter::shuffleXorI64(Value v, int32_t offset) {
  Value lo = arith::TruncIOp::create(b_, loc_, i32_, v);
  Value hi = arith::TruncIOp::create(b_, loc_, i32_, arith::ShRUIOp::create(b_, loc_, v, ci(32)));
  auto shfl = [&](Value x) { return gpu::ShuffleOp::create(b_, loc_, x, offset, 32, gpu::ShuffleMode::XOR).getShuffleResult(); };
  Value l = arith::ExtUIOp::create(b_, loc_, i64_, shfl(lo));
  Value h = arith::ShLIOp::create(b_, loc_, arith::ExtUIOp::create(b_, loc_, i64_, shfl(hi)), ci(32));
  return arith::OrIOp::create(b_, loc_, h, l);
}

/// Summary read r at token position pos of this CTA's batch entry and head,
/// as the mask sees it (i64; bool as 0 or 1).
Value KernelEmitter::readAtPosition(const SummaryRead &r, Value pos) {
  Value idx = mul(pos, r.input->strides[size_t(r.tokenAxis)]);
  for (size_t a = 0; a < r.index.size(); ++a)
    if (int64_t(a) != r.tokenAxis)
      idx = add(idx, mul(r.index[a] == analysis::Var::H ? hIdx_ : bIdx_, r.input->strides[a]));
  return inputValueI64(*r.input, memref::LoadOp::create(b_, loc_, r.input->ptr, ValueRange{toIndex(idx)}));
}

/// An integer input's element as the mask reads it, in i64 (bool: 0 or 1).
Value KernelEmitter::inputValueI64(const InputArg &in, Value loaded) {
  if (in.storage.isInteger(8))
    return arith::ExtUIOp::create(b_, loc_, i64_, cmpI(arith::CmpIPredicate::ne, loaded,
                                                       arith::ConstantIntOp::create(b_, loc_, in.storage, 0)));
  if (in.value.isInteger(32))
    return arith::ExtSIOp::create(b_, loc_, i64_, loaded);
  return loaded;
}

/// The (min, max) the summary stage wrote for `read` over tile t.
ValueRange64 KernelEmitter::summaryRange(const Term &read, Value tile) {
  const SummaryRead *r = summaryOf(read);
  assert(r && "a read without a summary");
  Value at = summaryEntry(*r, tile);
  return {memref::LoadOp::create(b_, loc_, workspace_, ValueRange{toIndex(at)}),
          memref::LoadOp::create(b_, loc_, workspace_, ValueRange{toIndex(add(at, ci(1)))})};
}

/// The ranges of every input read at q over query tile `queryTile` (from
/// the summaries), which the classification then takes for the query rows:
/// the CTA's tile (mIdx_), or the dK/dV kernel's query tile at hand.
void KernelEmitter::computeQRanges(Value queryTile) {
  qRanges_.clear();
  forEachRangeableRead([&](const Term &t) {
    if (t.inputIndex[size_t(singleTokenAxis(t))] == analysis::Var::Q && !qRanges_.count(t.str()))
      qRanges_[t.str()] = summaryRange(t, queryTile);
  });
}

/// The two bitmaps (visit, full) of kSummaryTiles bits and visitedEnds_ at
/// info_.sharedBytes of the dynamic shared memory.
void KernelEmitter::allocateSummaryBitmaps(Value dynShared) {
  auto bitsType = MemRefType::get({kSummaryTiles / 32}, i32_, MemRefLayoutAttrInterface{}, workgroup());
  visitBits_ = memref::ViewOp::create(b_, loc_, bitsType, dynShared, cidx(info_.sharedBytes), ValueRange{});
  fullBits_ = memref::ViewOp::create(b_, loc_, bitsType, dynShared, cidx(info_.sharedBytes + kSummaryTiles / 8),
                                     ValueRange{});
  info_.sharedBytes += 2 * (kSummaryTiles / 8);
  auto endsType = MemRefType::get({2}, i64_, MemRefLayoutAttrInterface{}, workgroup());
  visitedEnds_ = memref::ViewOp::create(b_, loc_, endsType, dynShared, cidx(info_.sharedBytes), ValueRange{});
  info_.sharedBytes += 16;
}

/// Classifies the tiles first .. first + kSummaryTiles - 1 (up to last)
/// with `classify` (the forward and dQ kernels' key tiles, the dK/dV
/// kernel's (head, query tile) pairs) into the two bitmaps, every thread of
/// the CTA: in round i, thread t takes tile first + i * threads + t, and its warp's 32
/// bits (a ballot) are word i * threads / 32 + warp. Rounds past `last`
/// are not run: the walk reads no word beyond it. Each warp also folds the
/// first and last tile it marks visited into visitedEnds_ (shared atomics),
/// so that the key loop starts and ends there without walking the words.
void KernelEmitter::fillSummaries(Value first, Value last, const Classify &classify) {
  windowFirst_ = first;
  const int64_t threads = params_.blockThreads();
  {
    auto ifThread0 = scf::IfOp::create(b_, loc_, TypeRange{}, cmpI(arith::CmpIPredicate::eq, tid_, ci(0)), false);
    OpBuilder::InsertionGuard g(b_);
    b_.setInsertionPointToStart(&ifThread0.getThenRegion().front());
    memref::StoreOp::create(b_, loc_, ci(analysis::kInf), visitedEnds_, ValueRange{cidx(0)});
    memref::StoreOp::create(b_, loc_, ci(-1), visitedEnds_, ValueRange{cidx(1)});
  }
  barrier();
  Value count = maxI(add(sub(last, first), ci(1)), ci(0));
  Value rounds = minI(arith::CeilDivSIOp::create(b_, loc_, count, ci(threads)), ci(32));
  auto loop = scf::ForOp::create(b_, loc_, cidx(0), toIndex(rounds), cidx(1));
  {
    OpBuilder::InsertionGuard g(b_);
    b_.setInsertionPointToStart(loop.getBody());
    Value round = toI64(loop.getInductionVar());
    Value n = add(first, add(mul(round, ci(threads)), tid_));
    Value inRange = cmpI(arith::CmpIPredicate::sle, n, last);
    auto [visit, needMask] = classify(minI(n, last));
    auto ballot = [&](Value bit) {
      return NVVM::VoteSyncOp::create(b_, loc_, i32_, ci32(-1), andB(inRange, bit), NVVM::VoteSyncKind::ballot)
          .getResult();
    };
    Value visitWord = ballot(visit), fullWord = ballot(notB(needMask));
    auto ifLane0 = scf::IfOp::create(b_, loc_, TypeRange{}, cmpI(arith::CmpIPredicate::eq, lane_, ci(0)), false);
    b_.setInsertionPointToStart(&ifLane0.getThenRegion().front());
    Value word = add(mul(round, ci(threads / 32)), warp_);
    memref::StoreOp::create(b_, loc_, visitWord, visitBits_, ValueRange{toIndex(word)});
    memref::StoreOp::create(b_, loc_, fullWord, fullBits_, ValueRange{toIndex(word)});
    auto ifAny = scf::IfOp::create(b_, loc_, TypeRange{}, cmpI(arith::CmpIPredicate::ne, visitWord, ci32(0)), false);
    b_.setInsertionPointToStart(&ifAny.getThenRegion().front());
    Value wordFirst = add(first, mul(word, ci(32)));
    // The highest set bit (bfind), and the lowest: the highest of w & -w.
    auto highestBit = [&](Value w) {
      Value bit = NVVM::InlinePtxOp::create(b_, loc_, TypeRange{i32_}, ValueRange{w}, ValueRange{},
                                            "bfind.u32 $0, $1;", Value())
                      .getResult(0);
      return Value(arith::ExtUIOp::create(b_, loc_, i64_, bit));
    };
    Value low = highestBit(arith::AndIOp::create(b_, loc_, visitWord, arith::SubIOp::create(b_, loc_, ci32(0), visitWord)));
    Value high = highestBit(visitWord);
    memref::AtomicRMWOp::create(b_, loc_, arith::AtomicRMWKind::mins, add(wordFirst, low), visitedEnds_,
                                ValueRange{cidx(0)});
    memref::AtomicRMWOp::create(b_, loc_, arith::AtomicRMWKind::maxs, add(wordFirst, high), visitedEnds_,
                                ValueRange{cidx(1)});
  }
  barrier();
  windowFirstVisited_ = memref::LoadOp::create(b_, loc_, visitedEnds_, ValueRange{cidx(0)});
  windowLastVisited_ = memref::LoadOp::create(b_, loc_, visitedEnds_, ValueRange{cidx(1)});
}

/// visitRange(), and with summaries ends at the last tile the bitmaps mark
/// visited, unless the range runs past their window (whose tiles beyond
/// are classified by the closed forms alone).
std::pair<Value, Value> KernelEmitter::visitedRange() {
  auto [first, last] = visitRange();
  if (!visitBitmaps_)
    return {first, last};
  Value beyond = cmpI(arith::CmpIPredicate::sge, sub(last, first), ci(kSummaryTiles));
  return {first, sel(beyond, last, minI(last, windowLastVisited_))};
}

/// The first key tile of [first, last] the query tile visits (last + 1 if
/// none): with summaries, the first the bitmaps mark, else (none in the
/// window) the walk on from the window's end.
Value KernelEmitter::firstVisited(Value first, Value last, const VisitOf &visitOf) {
  if (!visitBitmaps_)
    return nextVisited(sub(first, ci(1)), last, visitOf);
  Value found = cmpI(arith::CmpIPredicate::slt, windowFirstVisited_, ci(analysis::kInf));
  auto ifFound = scf::IfOp::create(b_, loc_, TypeRange{i64_}, found, true);
  OpBuilder::InsertionGuard g(b_);
  b_.setInsertionPointToStart(&ifFound.getThenRegion().front());
  scf::YieldOp::create(b_, loc_, ValueRange{windowFirstVisited_});
  b_.setInsertionPointToStart(&ifFound.getElseRegion().front());
  Value windowLast = add(first, ci(kSummaryTiles - 1));
  Value beyond = cmpI(arith::CmpIPredicate::sgt, last, windowLast);
  Value walked = nextVisited(sel(beyond, windowLast, last), last, visitOf); // last + 1 when not beyond
  scf::YieldOp::create(b_, loc_, ValueRange{walked});
  b_.setInsertionPointAfter(ifFound);
  return ifFound.getResult(0);
}

/// Bit n of a summary bitmap (n within the window).
Value KernelEmitter::summaryBit(Value bits, Value n) {
  Value rel = sub(n, windowFirst_);
  Value word = memref::LoadOp::create(b_, loc_, bits, ValueRange{toIndex(arith::DivUIOp::create(b_, loc_, rel, ci(32)))});
  Value shift = arith::TruncIOp::create(b_, loc_, i32_, arith::RemUIOp::create(b_, loc_, rel, ci(32)));
  Value bit = arith::AndIOp::create(b_, loc_, arith::ShRUIOp::create(b_, loc_, word, shift), ci32(1));
  return cmpI(arith::CmpIPredicate::ne, bit, ci32(0));
}


//===----------------------------------------------------------------------===//
// The next visited key tile.
//===----------------------------------------------------------------------===//
/// needMask of key tile n: inside the summaries' window the full bitmap's
/// (the closed forms' `needMask` beyond it), and a tile past klen's tail.
Value KernelEmitter::windowNeedMask(Value n, Value needMask) {
  if (!visitBitmaps_)
    return needMask;
  Value inWindow = cmpI(arith::CmpIPredicate::slt, sub(n, windowFirst_), ci(kSummaryTiles));
  // (The bit of a tile beyond the window is not read: the bitmap ends there.)
  needMask = sel(inWindow, notB(summaryBit(fullBits_, sel(inWindow, n, windowFirst_))), needMask);
  // A full tile still needs the mask on its tail columns past klen.
  Value tail = cmpI(arith::CmpIPredicate::slt, klen_, add(mul(n, ci(BN_)), ci(BN_)));
  return orB(needMask, tail);
}

/// The first tile after `n` that the CTA visits (last + 1 if none): key
/// tiles of the query tile, or (visitOf) the dK/dV kernel's query tiles.
Value KernelEmitter::nextVisited(Value n, Value last, const VisitOf &visitOf) {
  auto fallback = [&](Value cand) { return visitOf ? visitOf(cand) : classifyTile(cand).first; };
  if (overSelection_) {
    // The selection fills its slots in ascending key order from the first:
    // the tiles after n hold keys until one whose first slot is empty.
    Value next = add(n, ci(1));
    Value inRange = cmpI(arith::CmpIPredicate::sle, next, last);
    Value first = selectedKey(mul(sel(inRange, next, ci(0)), ci(BN_)));
    return sel(andB(inRange, cmpI(arith::CmpIPredicate::sge, first, ci(0))), next, add(last, ci(1)));
  }
  auto loop = scf::WhileOp::create(b_, loc_, TypeRange{i64_}, ValueRange{add(n, ci(1))});
  Block *before = b_.createBlock(&loop.getBefore(), {}, {i64_}, {loc_});
  {
    OpBuilder::InsertionGuard g(b_);
    b_.setInsertionPointToStart(before);
    Value cand = before->getArgument(0);
    Value inRange = cmpI(arith::CmpIPredicate::sle, cand, last);
    // Classify only in range (the closed forms are cheap, but need a tile).
    auto ifIn = scf::IfOp::create(b_, loc_, TypeRange{i1_}, inRange, true);
    b_.setInsertionPointToStart(&ifIn.getThenRegion().front());
    Value visit;
    if (visitBitmaps_) {
      // Inside the summarised window the bitmap answers; beyond it, the
      // closed forms alone (conservative).
      Value inWindow = cmpI(arith::CmpIPredicate::slt, sub(cand, windowFirst_), ci(kSummaryTiles));
      auto ifWin = scf::IfOp::create(b_, loc_, TypeRange{i1_}, inWindow, true);
      b_.setInsertionPointToStart(&ifWin.getThenRegion().front());
      scf::YieldOp::create(b_, loc_, ValueRange{summaryBit(visitBits_, cand)});
      b_.setInsertionPointToStart(&ifWin.getElseRegion().front());
      scf::YieldOp::create(b_, loc_, ValueRange{fallback(cand)});
      b_.setInsertionPointAfter(ifWin);
      visit = ifWin.getResult(0);
    } else {
      visit = fallback(cand);
    }
    scf::YieldOp::create(b_, loc_, ValueRange{notB(visit)});
    b_.setInsertionPointToStart(&ifIn.getElseRegion().front());
    scf::YieldOp::create(b_, loc_, ValueRange{cbool(false)});
    b_.setInsertionPointAfter(ifIn);
    scf::ConditionOp::create(b_, loc_, ifIn.getResult(0), ValueRange{cand});
  }
  Block *after = b_.createBlock(&loop.getAfter(), {}, {i64_}, {loc_});
  {
    OpBuilder::InsertionGuard g(b_);
    b_.setInsertionPointToStart(after);
    Value cand = after->getArgument(0);
    Value next = add(cand, ci(1));
    if (visitBitmaps_) {
      // cand is not visited; if no later bit of its bitmap word is set
      // either, skip to the next word.
      Value rel = sub(cand, windowFirst_);
      Value inWindow = cmpI(arith::CmpIPredicate::slt, rel, ci(kSummaryTiles));
      Value safeRel = sel(inWindow, rel, ci(0));
      Value bitInWord = arith::RemUIOp::create(b_, loc_, safeRel, ci(32));
      Value word = memref::LoadOp::create(
          b_, loc_, visitBits_, ValueRange{toIndex(arith::DivUIOp::create(b_, loc_, safeRel, ci(32)))});
      Value shift = arith::TruncIOp::create(b_, loc_, i32_, bitInWord);
      // (word >> shift) >> 1: the bits above cand (a shift by 32 is undefined).
      Value above = arith::ShRUIOp::create(b_, loc_, arith::ShRUIOp::create(b_, loc_, word, shift), ci32(1));
      Value none = andB(inWindow, cmpI(arith::CmpIPredicate::eq, above, ci32(0)));
      next = sel(none, add(cand, sub(ci(32), bitInWord)), next);
    }
    scf::YieldOp::create(b_, loc_, ValueRange{next});
  }
  b_.setInsertionPointAfter(loop);
  return loop.getResult(0);
}

} // namespace attnc::flash

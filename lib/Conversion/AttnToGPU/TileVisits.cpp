//===- TileVisits.cpp - Which key tiles to visit, masked or not ---------===//
//
// The key tiles a query tile (or one warp's rows) visits and whether each
// needs the mask: the kernel's environment for TileVisitRule (lengths,
// offsets, input reads); for masks that read inputs at token positions
// (documents), per-CTA bitmaps of the tiles' input ranges in shared memory;
// the walk to the next visited tile.
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
      if (read.inputIndex[size_t(singleTokenAxis(read))] == analysis::Var::K)
        return tokenRange(read, k.lo, k.hi);
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
      Value v = memref::LoadOp::create(b_, loc_, in.ptr, ValueRange{toIndex(idx)});
      if (in.storage.isInteger(8))
        return arith::ExtUIOp::create(b_, loc_, i64_, cmpI(arith::CmpIPredicate::ne, v,
                                                            arith::ConstantIntOp::create(b_, loc_, in.storage, 0)));
      if (in.value.isInteger(32))
        return arith::ExtSIOp::create(b_, loc_, i64_, v);
      if (in.value.isInteger(64))
        return v;
      return Value(); // float inputs do not bound keys
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

/// Minimum and maximum of `read` (an input indexed by q or k) over the
/// positions [posLo, posHi] (clamped to >= 0), by a loop of loads.
ValueRange64 KernelEmitter::tokenRange(const Term &read, Value posLo, Value posHi) {
  InputArg *in = findInput(inputs_, read.input);
  int64_t tokenAxis = singleTokenAxis(read);
  assert(in && tokenAxis >= 0 && "a token range of a read the kernel cannot range");
  Value fixed = ci(0);
  for (size_t a = 0; a < read.inputIndex.size(); ++a)
    if (int64_t(a) != tokenAxis)
      fixed = add(fixed, mul(read.inputIndex[a] == analysis::Var::H ? hIdx_ : bIdx_, in->strides[a]));
  Value lo = maxI(posLo, ci(0));
  Value hiExcl = add(maxI(posHi, sub(lo, ci(1))), ci(1));
  auto loop = scf::ForOp::create(b_, loc_, toIndex(lo), toIndex(hiExcl), cidx(1),
                                 ValueRange{ci(analysis::kInf), ci(-analysis::kInf)});
  {
    OpBuilder::InsertionGuard g(b_);
    b_.setInsertionPointToStart(loop.getBody());
    Value pos = toI64(loop.getInductionVar());
    Value idx = add(fixed, mul(pos, in->strides[size_t(tokenAxis)]));
    Value v = memref::LoadOp::create(b_, loc_, in->ptr, ValueRange{toIndex(idx)});
    if (in->storage.isInteger(8))
      v = arith::ExtUIOp::create(b_, loc_, i64_, cmpI(arith::CmpIPredicate::ne, v,
                                                      arith::ConstantIntOp::create(b_, loc_, in->storage, 0)));
    else if (in->value.isInteger(32))
      v = arith::ExtSIOp::create(b_, loc_, i64_, v);
    scf::YieldOp::create(b_, loc_, ValueRange{minI(loop.getRegionIterArg(0), v), maxI(loop.getRegionIterArg(1), v)});
  }
  return {loop.getResult(0), loop.getResult(1)};
}

/// The ranges of every input read at q over this CTA's query positions:
/// the reads of every part of every clause (its row conditions and bounds,
/// e.g. g[b, q] in `g[b, k] || g[b, q]`, as well as its unsolved
/// conditions), since classify() evaluates them all with token ranges.
void KernelEmitter::computeQRanges() {
  std::function<void(const Term &)> visit = [&](const Term &t) {
    if (t.kind == Term::Kind::Input && rangeable(inputs_, t) &&
        t.inputIndex[size_t(singleTokenAxis(t))] == analysis::Var::Q && !qRanges_.count(t.str()))
      qRanges_[t.str()] = tokenRange(t, q0_, q1_);
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

/// Classifies the key tiles first .. first + kSummaryTiles - 1 (up to last)
/// with input ranges: thread t owns the 32 tiles of bitmap word t.
void KernelEmitter::fillSummaries(Value first, Value last) {
  windowFirst_ = first;
  Value visitWord = arith::ConstantIntOp::create(b_, loc_, i32_, 0), fullWord = visitWord;
  for (int64_t bit = 0; bit < 32; ++bit) {
    Value n = add(first, add(mul(tid_, ci(32)), ci(bit)));
    auto ifIn = scf::IfOp::create(b_, loc_, TypeRange{i32_, i32_}, cmpI(arith::CmpIPredicate::sle, n, last), true);
    {
      OpBuilder::InsertionGuard g(b_);
      b_.setInsertionPointToStart(&ifIn.getThenRegion().front());
      auto [visit, needMask] = classifyTile(n, /*tokenRanges=*/true);
      Value one = ci32(int64_t(1) << bit);
      Value zero = ci32(0);
      Value v = arith::OrIOp::create(b_, loc_, visitWord, sel(visit, one, zero));
      Value f = arith::OrIOp::create(b_, loc_, fullWord, sel(notB(needMask), one, zero));
      scf::YieldOp::create(b_, loc_, ValueRange{v, f});
      b_.setInsertionPointToStart(&ifIn.getElseRegion().front());
      scf::YieldOp::create(b_, loc_, ValueRange{visitWord, fullWord});
    }
    visitWord = ifIn.getResult(0);
    fullWord = ifIn.getResult(1);
  }
  memref::StoreOp::create(b_, loc_, visitWord, visitBits_, ValueRange{toIndex(tid_)});
  memref::StoreOp::create(b_, loc_, fullWord, fullBits_, ValueRange{toIndex(tid_)});
  barrier();
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
/// The first key tile after `n` that the query tile visits (last + 1 if none).
Value KernelEmitter::nextVisited(Value n, Value last) {
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
    if (summaries_) {
      // Inside the summarised window the bitmap answers; beyond it, the
      // closed forms alone (conservative).
      Value inWindow = cmpI(arith::CmpIPredicate::slt, sub(cand, windowFirst_), ci(kSummaryTiles));
      auto ifWin = scf::IfOp::create(b_, loc_, TypeRange{i1_}, inWindow, true);
      b_.setInsertionPointToStart(&ifWin.getThenRegion().front());
      scf::YieldOp::create(b_, loc_, ValueRange{summaryBit(visitBits_, cand)});
      b_.setInsertionPointToStart(&ifWin.getElseRegion().front());
      scf::YieldOp::create(b_, loc_, ValueRange{classifyTile(cand).first});
      b_.setInsertionPointAfter(ifWin);
      visit = ifWin.getResult(0);
    } else {
      visit = classifyTile(cand).first;
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
    if (summaries_) {
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

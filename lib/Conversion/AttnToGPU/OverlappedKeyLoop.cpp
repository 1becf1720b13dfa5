//===- OverlappedKeyLoop.cpp - Softmax overlapped with the GEMMs ----------===//
//
// The key loop of the warp-specialised wgmma kernel with each compute
// warpgroup's softmax overlapped with its own GEMMs (EmitterParams::overlap;
// FlashAttention-3's intra-warpgroup pipelining). Per compute warpgroup:
//
//   first tile n0:  S = Q K^T; wait; K free; softmax -> P, m, l
//   each next j:    issue S_j = Q K_j^T, then O += P_{j-1} V_{j-1}
//                   wait for S_j only; K_j free
//                   softmax(S_j) -> P_j, m, l and O's factor (decided, not applied)
//                   wait for O += P V; V_{j-1} free; O times the factor where a row rescaled
//   after the last: O += P V of the last tile; wait; its V free
//
// The two issues are one turn of the ping-pong (TmaPipeline.cpp), so the
// tensor cores see one warpgroup's two chains, then the other's, while each
// warpgroup's softmax runs beside its own O += P V. P is carried from one
// iteration to the next as the A registers of wgmma (packPOperands), which
// the wait of O += P V reads, so nothing reuses them while the chain runs.
//
// The body of the tile program's key loop is lowered op by op as in
// lowerKeyLoop (FlashKernel.cpp), except attn.tile.qk (the chain issued
// with the previous tile's O += P V beside it), attn.tile.rescale (O's
// factor deferred: rescale()'s `alpha`) and attn.tile.load_v/pv (issued in
// the next iteration). The ring frees a slot's K and V apart (kvBarrier 2
// and 3), so with two slots tile j+1's K loads while tile j computes.
//
//===----------------------------------------------------------------------===//
#include "KernelEmitter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

#include <type_traits>

using namespace mlir;

namespace attnc::flash {

/// Whether the key loop's body has the shape the overlapped lowering
/// reorders: one S = Q K^T, and O's only path rescale -> O += P V -> yield.
bool KernelEmitter::overlappable(attn::TileKeyLoopOp keyLoop) {
  Block &body = keyLoop.getBodyBlock();
  attn::TileQKOp qk;
  attn::TileRescaleOp rescaleOp;
  attn::TilePVOp pv;
  attn::TileLoadVOp loadV;
  bool eachOnce = true;
  auto take = [&](auto &slot, Operation &op) { // slot = op where op is of slot's type
    if (auto x = dyn_cast<std::decay_t<decltype(slot)>>(op)) {
      eachOnce = eachOnce && !slot;
      slot = x;
    }
  };
  for (Operation &op : body.without_terminator()) {
    take(qk, op);
    take(rescaleOp, op);
    take(pv, op);
    take(loadV, op);
  }
  if (!eachOnce || !qk || !rescaleOp || !pv || !loadV)
    return false;
  auto yield = cast<attn::TileYieldOp>(body.getTerminator());
  return rescaleOp.getAcc() == body.getArgument(4) && body.getArgument(4).hasOneUse() &&
         pv.getAcc() == rescaleOp.getAccNew() && rescaleOp.getAccNew().hasOneUse() && pv.getV() == loadV.getTile() &&
         loadV.getTile().hasOneUse() && yield->getOperand(2) == pv.getResult() && pv.getResult().hasOneUse();
}

/// Key tile n's scores and softmax on the state (m, l), its K in ring slot
/// stage_ (parity phase_): the S chain issued, then `issueBeside` (the
/// previous tile's O += P V, `besideChains` commit groups) in the same
/// turn; S waited for alone, K's slot released.
KernelEmitter::ScorePhase KernelEmitter::lowerScorePhase(attn::TileKeyLoopOp keyLoop, Value n, ArrayRef<Value> m,
                                                         ArrayRef<Value> l, const std::function<void()> &issueBeside,
                                                         int64_t besideChains) {
  const int64_t rows = 2 * MT_;
  Block &body = keyLoop.getBodyBlock();
  scalars_.map(keyLoop.getTileIndex(), stage_); // load_k: which slot
  scalars_.map(keyLoop.getNeedMask(), tileNeedMask(n));
  regs_[body.getArgument(2)] = SmallVector<Value>(m);
  regs_[body.getArgument(3)] = SmallVector<Value>(l);
  colFirst_ = mul(n, ci(BN_));
  ScorePhase out;
  for (Operation &op : body.without_terminator()) {
    if (isa<attn::TileLoadVOp>(op))
      continue;
    if (auto pv = dyn_cast<attn::TilePVOp>(op)) { // issued beside the next tile's S
      out.pA = packPOperands(regsOf(pv.getP()));
      continue;
    }
    if (auto qk = dyn_cast<attn::TileQKOp>(op)) {
      if (pingPong())
        waitTurn();
      SmallVector<Value> s = issueScoresQK(shared_.at(qk.getQ()), shared_.at(qk.getK()));
      issueBeside();
      if (pingPong())
        passTurn(Value());
      regs_[qk.getS()] = waitWgmma(s, besideChains);
      arriveBarrier(kvBarrier(2, stage_)); // S has read K
      continue;
    }
    if (auto r = dyn_cast<attn::TileRescaleOp>(op)) {
      SmallVector<Value> state(regsOf(r.getM()));
      llvm::append_range(state, regsOf(r.getL()));
      SmallVector<Value> ml = rescale(regsOf(r.getS()), state, r.getLog2Scale().convertToDouble(), &out.alpha,
                                      &out.rescaled);
      regs_[r.getMNew()] = SmallVector<Value>(ml.begin(), ml.begin() + rows);
      regs_[r.getLNew()] = SmallVector<Value>(ml.begin() + rows, ml.end());
      continue;
    }
    lowerOp(op);
  }
  auto yield = cast<attn::TileYieldOp>(body.getTerminator());
  out.m = regsOf(yield->getOperand(0));
  out.l = regsOf(yield->getOperand(1));
  return out;
}

void KernelEmitter::lowerKeyLoopOverlapped(attn::TileKeyLoopOp keyLoop) {
  const int64_t rows = 2 * MT_, accRegs = accLayout().size(), aRegs = BN_ / 4;
  auto [first, last] = visitedRange();
  Value n0 = firstVisited(first, last);
  Value any = cmpI(Pred::sle, n0, last);
  if (pingPong())
    openTurns(any);
  auto [m0, l0] = initialRowState(keyLoop);
  Value stage0 = ringStage_ ? ringStage_ : cidx(0), phase0 = ringPhase_ ? ringPhase_ : ci(0);
  auto vTile = [&](Value stage) { return tileAddress(SharedTile{Vs_, stage}, vOffsetBytes(), kvTileBytes()); };
  // The state as the loop carries it: m, l, acc, P's A registers.
  auto state = [&](ArrayRef<Value> m, ArrayRef<Value> l, ArrayRef<Value> acc, ArrayRef<Value> pA) {
    SmallVector<Value> v(m);
    llvm::append_range(v, l);
    llvm::append_range(v, acc);
    llvm::append_range(v, pA);
    return v;
  };
  auto slice = [](ValueRange v, int64_t from, int64_t count) {
    return SmallVector<Value>(v.begin() + from, v.begin() + from + count);
  };
  const SmallVector<Value> acc0(accRegs, cf(0));

  // The first tile: scores and softmax, nothing beside (O is zero).
  SmallVector<Value> start = {n0};
  llvm::append_range(start, state(m0, SmallVector<Value>(rows, l0), acc0, SmallVector<Value>(aRegs, ci32(0))));
  auto ifFirst = scf::IfOp::create(b_, loc_, TypeRange(ValueRange(start)), any, true);
  {
    OpBuilder::InsertionGuard g(b_);
    b_.setInsertionPointToStart(&ifFirst.getThenRegion().front());
    stage_ = stage0;
    phase_ = phase0;
    ScorePhase sp = lowerScorePhase(keyLoop, n0, m0, SmallVector<Value>(rows, l0), [] {}, 0);
    SmallVector<Value> next = {nextVisited(n0, last)};
    llvm::append_range(next, state(sp.m, sp.l, acc0, sp.pA));
    scf::YieldOp::create(b_, loc_, next);
    b_.setInsertionPointToStart(&ifFirst.getElseRegion().front());
    scf::YieldOp::create(b_, loc_, start);
  }

  // Loop-carried: the tile n, the previous tile's ring slot and parity, the state.
  SmallVector<Value> init = {ifFirst.getResult(0), stage0, phase0};
  llvm::append_range(init, ValueRange(ifFirst.getResults()).drop_front());
  constexpr int64_t lead = 3;
  scf::WhileOp loop;
  {
    OpBuilder::InsertionGuard g(b_);
    loop = beginWhile(init, Pred::sle, last);
    Block *after = loop.getAfterBody();
    ValueRange args = after->getArguments();
    Value n = args[0], prevStage = args[1], prevPhase = args[2];
    SmallVector<Value> m = slice(args, lead, rows), l = slice(args, lead + rows, rows);
    SmallVector<Value> acc = slice(args, lead + 2 * rows, accRegs), pA = slice(args, lead + 2 * rows + accRegs, aRegs);
    SmallVector<Value> slot = nextSlot(prevStage, prevPhase);
    stage_ = slot[0];
    phase_ = slot[1];
    waitBarrier(kvBarrier(1, prevStage), prevPhase); // the previous tile's V
    ScorePhase sp = lowerScorePhase(
        keyLoop, n, m, l, [&] { wgmmaPBPacked(pA, [&] { return vTile(prevStage); }, acc); }, pvChains());
    acc = waitWgmma(acc, 0, pA);
    arriveBarrier(kvBarrier(3, prevStage)); // O += P V has read V
    acc = scaleRows(acc, sp.alpha, sp.rescaled);
    SmallVector<Value> next = {nextVisited(n, last), stage_, phase_};
    llvm::append_range(next, state(sp.m, sp.l, acc, sp.pA));
    scf::YieldOp::create(b_, loc_, next);
  }
  b_.setInsertionPointAfter(loop);
  ValueRange results = loop.getResults();
  Value lastStage = results[1], lastPhase = results[2];
  SmallVector<Value> acc = slice(results, lead + 2 * rows, accRegs), pA = slice(results, lead + 2 * rows + accRegs, aRegs);

  // The last tile's O += P V.
  auto ifLast = scf::IfOp::create(b_, loc_, TypeRange(ValueRange(acc)), any, true);
  {
    OpBuilder::InsertionGuard g(b_);
    b_.setInsertionPointToStart(&ifLast.getThenRegion().front());
    waitBarrier(kvBarrier(1, lastStage), lastPhase);
    SmallVector<Value> out(acc);
    if (pingPong())
      waitTurn();
    wgmmaPBPacked(pA, [&] { return vTile(lastStage); }, out);
    if (pingPong())
      passTurn(cbool(true));
    out = waitWgmma(out, 0, pA);
    arriveBarrier(kvBarrier(3, lastStage));
    scf::YieldOp::create(b_, loc_, out);
    b_.setInsertionPointToStart(&ifLast.getElseRegion().front());
    scf::YieldOp::create(b_, loc_, acc);
  }
  if (ringStage_) { // persistent: the next tile's key loop goes on round the ring after the last slot used
    SmallVector<Value> after = nextSlot(lastStage, lastPhase);
    ringStage_ = arith::SelectOp::create(b_, loc_, any, after[0], stage0);
    ringPhase_ = sel(any, after[1], phase0);
  }
  regs_[keyLoop.getM()] = slice(results, lead, rows);
  regs_[keyLoop.getL()] = slice(results, lead + rows, rows);
  regs_[keyLoop.getAcc()] = SmallVector<Value>(ifLast.getResults());
}

} // namespace attnc::flash

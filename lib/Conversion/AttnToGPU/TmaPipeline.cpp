//===- TmaPipeline.cpp - The producer warpgroup and its mbarrier ring -----===//
//
// The warp-specialised wgmma kernel (EmitterParams::producer, sm_90a):
//
//   warpgroup 0 (producer)   gives back registers (setmaxnreg.dec); one thread
//                            loads the Q tile, then for each visited key tile
//                            (the consumers' sequence, from the same closed
//                            forms) waits for a free ring slot and loads K and V
//                            into it by TMA (cp.async.bulk.tensor), each copy
//                            completing on that slot's "full" mbarrier;
//   warpgroups 1.. (compute) take the registers (setmaxnreg.inc), wait on Q's
//                            barrier, and per key tile on the slot's K and V
//                            barriers (TileLoadK/V), then arrive on its "empty"
//                            barrier once O += P V has read V.
//
// TMA writes the 128-byte swizzle that wgmma reads (WgmmaCompute.cpp), in
// D / 64 column chunks of R rows, one box [R, 64] a chunk; rows past qlen or
// klen arrive as zeros. The descriptors are kernel parameters the runtime
// encodes at launch (tmap:q/k/v, docs/runtime.md).
//
// Barriers, 8 bytes each, after the V ring (persistent: after the second Q
// slot, which follows the V ring): Q full; K full, V full and empty per slot
// (overlapped, EmitterParams::overlap: K full, V full, K empty, V empty);
// persistent, then the second Q slot's full and each Q slot's empty (tile i
// uses slot i % 2, parity (i / 2) % 2; the producer waits for the slot's
// empty barrier before each Q copy, the 256 compute threads arrive after
// their epilogue). Slot s is used for the i-th time on visited tile i * stages + s;
// its full barriers complete once per use (phase parity i % 2), the consumers
// wait on that parity, and the producer waits on the empty barrier's previous
// parity (a fresh barrier counts as having completed it: the first round
// does not wait).
//
//===----------------------------------------------------------------------===//
#include "KernelEmitter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

#include <string>

using namespace mlir;

namespace attnc::flash {

namespace {
constexpr int64_t kChunkCols = 64;         ///< one 128-byte swizzle row of 16-bit elements
constexpr int64_t kBarrierBytes = 8;       ///< one mbarrier
/// What the producer warpgroup keeps: 40, so that the compute warpgroups get
/// 232 of the 168 x 384 a CTA starts with (the overlapped key loop holds two
/// tiles' accumulators and P: at 232 documents and Gemma 2 at d = 128 spill 4
/// bytes; 24, compute 240, spilled none but is not yet run on a GPU).
constexpr int64_t kProducerRegisters = 40;
/// ... in a persistent kernel: its tile loop holds more (at 40 the two-interval
/// patterns, prefixlm and streamingllm, spilled 4 bytes); the compute
/// warpgroups get 224 of the 168 x 384 a CTA starts with.
constexpr int64_t kPersistentProducerRegisters = 48;
} // namespace

/// One inline PTX statement with operands and side effects.
void KernelEmitter::ptxOperands(StringRef code, StringRef constraints, ValueRange operands) {
  LLVM::InlineAsmOp::create(b_, loc_, TypeRange{}, operands, code, constraints, /*has_side_effects=*/true,
                            /*is_align_stack=*/false, LLVM::tailcallkind::TailCallKind::None,
                            LLVM::AsmDialectAttr(), ArrayAttr());
}

/// A shared-memory address as the 32-bit operand PTX's shared state space takes.
static Value shared32(OpBuilder &b, Location loc, Value address) {
  return arith::TruncIOp::create(b, loc, b.getI32Type(), address);
}

Value KernelEmitter::kvBarrier(int64_t which, Value stage) {
  return add(barriers_, mul(add(ci(1 + which * stages_), toI64(stage)), ci(kBarrierBytes)));
}

/// Thread 0 sets up every barrier; the fence makes the set-up visible to
/// the copy engine, the CTA barrier after it (in build) to every thread.
void KernelEmitter::initBarriers() {
  auto ifFirst = scf::IfOp::create(b_, loc_, TypeRange{}, cmpI(Pred::eq, tid_, ci(0)), false);
  OpBuilder::InsertionGuard g(b_);
  b_.setInsertionPointToStart(&ifFirst.getThenRegion().front());
  auto init = [&](Value bar, int64_t count) {
    ptxOperands("mbarrier.init.shared::cta.b64 [$0], " + std::to_string(count) + ";", "r",
                ValueRange{shared32(b_, loc_, bar)});
  };
  init(qBarrier(), 1);
  for (int64_t s = 0; s < stages_; ++s) {
    init(kvBarrier(0, cidx(s)), 1);
    init(kvBarrier(1, cidx(s)), 1);
    init(kvBarrier(2, cidx(s)), kThreads); // every compute thread releases the slot (overlapped: its K)
    if (params_.overlap)
      init(kvBarrier(3, cidx(s)), kThreads); // ... and its V
  }
  if (params_.persistent) { // the second Q slot's full barrier, each slot's empty one
    init(add(barriers_, ci(8 * (1 + ringBarriers()))), 1);
    init(add(barriers_, ci(8 * (2 + ringBarriers()))), kThreads);
    init(add(barriers_, ci(8 * (3 + ringBarriers()))), kThreads);
  }
  ptxStatement("fence.mbarrier_init.release.cluster;");
}

/// Spins until the barrier's phase of this parity has completed.
void KernelEmitter::waitBarrier(Value bar, Value parity) {
  ptxOperands("{\n.reg .pred done;\nattn_wait:\nmbarrier.try_wait.parity.shared::cta.b64 done, [$0], $1;\n"
              "@!done bra attn_wait;\n}",
              "r,r", ValueRange{shared32(b_, loc_, bar), arith::TruncIOp::create(b_, loc_, i32_, parity)});
}

void KernelEmitter::arriveBarrier(Value bar) {
  ptxOperands("mbarrier.arrive.shared::cta.b64 _, [$0];", "r", ValueRange{shared32(b_, loc_, bar)});
}

/// The producer's arrival on a full barrier, announcing the bytes its copies will deliver.
void KernelEmitter::expectBytes(Value bar, int64_t bytes) {
  ptxOperands("mbarrier.arrive.expect_tx.shared::cta.b64 _, [$0], " + std::to_string(bytes) + ";", "r",
              ValueRange{shared32(b_, loc_, bar)});
}

/// `rows` rows from `row` on of head `head` (this CTA's batch entry) into
/// the swizzled tile at `dstOffset` bytes after the Q tile, completing on
/// `bar`: one TMA box of 64 rows x 64 columns (kBoxRows x kChunkCols) per
/// 64 rows of each 64-column chunk. One box for every tile and head dim,
/// since a variant's kernels share one parameter list (and so one
/// descriptor per tensor).
void KernelEmitter::tmaLoadRows(Value tmap, Value dstOffset, int64_t rows, Value row, Value head, Value bar) {
  auto i32 = [&](Value v) { return Value(arith::TruncIOp::create(b_, loc_, i32_, v)); };
  for (int64_t c = 0; c < D_ / kChunkCols; ++c)
    for (int64_t r = 0; r < rows; r += kBoxRows) {
      Value dst = add(add(smemBase_, dstOffset), ci((c * rows + r) * 2 * kChunkCols));
      ptxOperands("cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [$0], [$1, "
                  "{$2, $3, $4, $5}], [$6];",
                  "r,l,r,r,r,r,r",
                  ValueRange{shared32(b_, loc_, dst), tmap, ci32(c * kChunkCols), i32(add(row, ci(r))), i32(head),
                             i32(bIdx_), shared32(b_, loc_, bar)});
    }
}

/// The KV head of this CTA's query head (GQA: heads_q / heads_kv query heads a group).
Value KernelEmitter::kvHead() {
  return arith::DivSIOp::create(b_, loc_, hIdx_, arith::DivSIOp::create(b_, loc_, headsQ_, headsKv_));
}

/// This warpgroup's 128 threads meet (named barrier 1 + warpgroup; 0 is the CTA's).
void KernelEmitter::warpgroupBarrier() {
  Value id = arith::TruncIOp::create(b_, loc_, i32_, add(computeWarpgroup(), ci(1)));
  ptxOperands("bar.sync $0, 128;", "r", ValueRange{id});
}

Value KernelEmitter::computeWarpgroup() { return arith::DivUIOp::create(b_, loc_, warp_, ci(4)); }

//===----------------------------------------------------------------------===//
// Ping-pong: the two compute warpgroups take turns on the tensor cores, so
// that one's softmax runs while the other's GEMM does. Warpgroup w waits on
// named barrier kTurnBarrier + w (its turn: 256 threads, its own 128 and the
// other's 128 arriving) before each GEMM and hands the turn over after it.
// Warpgroup 1 opens (its first hand-over lets warpgroup 0 start) and skips
// its last one, so every arrival is waited for: both warpgroups visit the
// same key tiles, 2 GEMMs each. Not at d = 64: its GEMMs are short and the
// turn-taking costs more than it overlaps (bench/NOTES.md v9: 373 TF/s with
// it, 393 without, dense d64 at 16K).
//===----------------------------------------------------------------------===//
namespace {
constexpr int64_t kTurnBarrier = 3; ///< 1 and 2: warpgroupBarrier
} // namespace

bool KernelEmitter::pingPong() const { return params_.producer && kWarps == 8 && D_ > 64; }

void KernelEmitter::turnBarrier(bool wait, Value warpgroup) {
  Value id = arith::TruncIOp::create(b_, loc_, i32_, add(warpgroup, ci(kTurnBarrier)));
  ptxOperands(wait ? "bar.sync $0, 256;" : "bar.arrive $0, 256;", "r", ValueRange{id});
}

/// Before the first key tile: warpgroup 1 gives warpgroup 0 the first turn (if there is a tile).
void KernelEmitter::openTurns(Value anyTile) {
  Value wg = computeWarpgroup();
  auto ifOpen = scf::IfOp::create(b_, loc_, TypeRange{}, andB(anyTile, cmpI(Pred::eq, wg, ci(1))), false);
  OpBuilder::InsertionGuard g(b_);
  b_.setInsertionPointToStart(&ifOpen.getThenRegion().front());
  turnBarrier(false, ci(0));
}

void KernelEmitter::waitTurn() { turnBarrier(true, computeWarpgroup()); }

/// After a GEMM: the turn to the other warpgroup, unless this was warpgroup
/// 1's last (`last`: the tile's O += P V, and no tile follows).
void KernelEmitter::passTurn(Value last) {
  Value wg = computeWarpgroup();
  Value give = last ? orB(notB(last), cmpI(Pred::eq, wg, ci(0))) : cbool(true);
  auto ifGive = scf::IfOp::create(b_, loc_, TypeRange{}, give, false);
  OpBuilder::InsertionGuard g(b_);
  b_.setInsertionPointToStart(&ifGive.getThenRegion().front());
  turnBarrier(false, sub(ci(1), wg));
}

/// The Q tile by TMA, completing on the Q barrier (thread 0).
void KernelEmitter::loadQByTma() {
  expectBytes(qBarrier(), BM_ * D_ * 2);
  tmaLoadRows(tmapQ_, qOffset_ ? qOffset_ : ci(0), BM_, rowBase_, hIdx_, qBarrier());
}

/// Warpgroup 0: registers back, then one thread issues every load.
void KernelEmitter::emitProducer() {
  if (computeRegisters())
    ptxStatement("setmaxnreg.dec.sync.aligned.u32 " + std::to_string(producerRegisters()) + ";");
  auto ifLeader = scf::IfOp::create(b_, loc_, TypeRange{}, cmpI(Pred::eq, tid_, ci(0)), false);
  OpBuilder::InsertionGuard g(b_);
  b_.setInsertionPointToStart(&ifLeader.getThenRegion().front());
  if (params_.persistent) {
    emitTileLoop([&](Value t) {
      bindTile(t);
      // The slot's previous tile has written its O (a fresh slot passes).
      waitBarrier(qEmptyBarrier(), arith::XOrIOp::create(b_, loc_, qParity_, ci(1)));
      loadQByTma();
      produceKeyTiles();
    });
    return;
  }
  if (!summaries_) // else issued before the summaries (FlashKernel.cpp)
    loadQByTma();
  produceKeyTiles();
}

/// The producer's loads of every visited K/V tile of the current query tile.
void KernelEmitter::produceKeyTiles() {
  Value hkv = kvHead();
  auto [first, last] = visitedRange();
  Value n0 = firstVisited(first, last);
  SmallVector<Value> init = {n0, ringStage_ ? ringStage_ : cidx(0), ringPhase_ ? ringPhase_ : ci(0)};
  auto loop = beginWhile(init, Pred::sle, last);
  Block *after = loop.getAfterBody();
  Value n = after->getArgument(0), stage = after->getArgument(1), phase = after->getArgument(2);
  Value emptyK = kvBarrier(2, stage);
  Value previousUse = arith::XOrIOp::create(b_, loc_, phase, ci(1));
  waitBarrier(emptyK, previousUse);
  Value slot = mul(toI64(stage), ci(kvTileBytes()));
  Value keyRow = mul(n, ci(BN_));
  expectBytes(kvBarrier(0, stage), kvTileBytes());
  tmaLoadRows(tmapK_, add(ci(kOffsetBytes()), slot), BN_, keyRow, hkv, kvBarrier(0, stage));
  if (params_.overlap) // the slot's V is read a tile later than its K
    waitBarrier(kvBarrier(3, stage), previousUse);
  expectBytes(kvBarrier(1, stage), kvTileBytes());
  tmaLoadRows(tmapV_, add(ci(vOffsetBytes()), slot), BN_, keyRow, hkv, kvBarrier(1, stage));
  SmallVector<Value> next = {nextVisited(n, last)};
  llvm::append_range(next, nextSlot(stage, phase));
  scf::YieldOp::create(b_, loc_, next);
  b_.setInsertionPointAfter(loop);
  if (ringStage_) { // persistent: the next tile goes on round the ring
    ringStage_ = loop.getResult(1);
    ringPhase_ = loop.getResult(2);
  }
}

/// The ring slot after `stage`, and its parity (flipped on wrapping round).
SmallVector<Value> KernelEmitter::nextSlot(Value stage, Value phase) {
  Value succ = arith::AddIOp::create(b_, loc_, stage, cidx(1));
  Value wraps = arith::CmpIOp::create(b_, loc_, Pred::eq, succ, cidx(stages_));
  return {arith::SelectOp::create(b_, loc_, wraps, cidx(0), succ),
          sel(wraps, arith::XOrIOp::create(b_, loc_, phase, ci(1)), phase)};
}

/// The registers a compute thread asks for once the producer has given
/// its back (setmaxnreg: multiples of 8, at most 240 here), or 0 when that
/// is no more than the kernel starts with (65536 / (CTAs an SM x threads),
/// a multiple of 8). The CTA's pool is what it started with: setmaxnreg.inc
/// waits until the pool holds the registers asked for, so asking for more
/// than the entry allocation less the producer's share never returns.
int64_t KernelEmitter::computeRegisters() const {
  const int64_t entryCap = std::min<int64_t>(255, 65536 / (ctasPerSm_ * params_.blockThreads())) / 8 * 8;
  const int64_t pool = entryCap * params_.blockThreads();
  const int64_t wanted = std::min<int64_t>(240, (pool - 128 * producerRegisters()) / kThreads / 8 * 8);
  return wanted > entryCap ? wanted : 0;
}

int64_t KernelEmitter::producerRegisters() const {
  return params_.persistent ? kPersistentProducerRegisters : kProducerRegisters;
}

/// The compute warpgroups take their share of the registers the producer gave back.
void KernelEmitter::takeRegisters() {
  if (int64_t regs = computeRegisters())
    ptxStatement("setmaxnreg.inc.sync.aligned.u32 " + std::to_string(regs) + ";");
}

} // namespace attnc::flash

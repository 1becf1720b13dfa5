//===- KernelEmitter.h - The mma.sync backend's kernel builder -*- C++ -*-===//
//
// KernelEmitter lowers one attn.tile.kernel to a gpu.func for the mma.sync
// and wgmma backends (MmaSyncBackend.cpp): it walks the tile program in order and
// lowers each tile op on register fragments (AccLayout). Its parts live in:
//   FlashKernel.cpp    the signature, block set-up, the tile program walk,
//                      the key loop (K/V double buffering) and the epilogue;
//   TileVisits.cpp     which key tiles a query tile (or warp) visits, with or
//                      without the mask (the rule itself: TileVisitRule.h),
//                      and the per-CTA input summaries;
//   TileCompute.cpp    one key tile: S on tensor cores, score, mask, rescale,
//                      exp, O += P V;
//   WgmmaCompute.cpp   the wgmma path of S and O += P V (sm_90a) and its
//                      swizzled shared-memory layout;
//   TmaPipeline.cpp    the warp-specialised kernel's producer warpgroup (TMA
//                      loads into an mbarrier ring) and the consumers' waits;
//   OverlappedKeyLoop.cpp  its key loop with the softmax overlapped with the
//                      GEMMs inside each compute warpgroup;
//   VariantRegions.cpp the variant's mask and score regions cloned per element
//                      (lowered after by attn-lower-region-ops' patterns);
//   SelectStage.cpp    the select stage of a selecting variant: selection
//                      scores (indexer on tensor cores, or the select
//                      region) into the workspace, then a radix top-k;
//   IndexerWgmma.cpp   sm_90a's select stage with the indexer on wgmma;
//   BackwardStage.cpp  the gradient kernels (dQ by query tile, dK/dV by key
//                      tile), from the same products and masks.
// The attention stage of a selecting variant is the ordinary kernel with its
// rows remapped (one query row, the query heads of one KV group) and its key
// tiles gathered from the selected indices (overSelection_).
//
//===----------------------------------------------------------------------===//
#pragma once

#include "IntArith.h"
#include "IntervalCodegen.h"
#include "TileVisitRule.h"
#include "attnc/Conversion/FlashKernel.h"
#include "attnc/Conversion/TilePolicy.h"

#include "attnc/Dialect/Attn/IR/AttnOps.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"

#include <cmath>
#include <functional>
#include <map>
#include <optional>

namespace attnc::flash {

using namespace mlir;
using analysis::KeyClause;

inline constexpr double kRescaleSlack = 8.0;         ///< log2 units m may lag the row maximum (P <= 256)
inline constexpr int64_t kHugeLen = int64_t(1) << 40; ///< static length of the flat global memrefs
inline constexpr double kLog2e = 1.4426950408889634;
inline constexpr int64_t kSelectRows = 4; ///< query rows of a select-stage CTA: one a warp (SelectStage.cpp)
/// Whether sm_90a's select stage runs the variant's indexer on wgmma
/// (IndexerWgmma.cpp): an indexer of at most 64 heads with rows of a
/// multiple of 128 bytes; else mma.sync (SelectStage.cpp).
bool indexerOnWgmma(attn::VariantOp variant);
inline constexpr int64_t kBoxRows = 64; ///< rows of one TMA box (TmaPipeline.cpp): the TMA kernel's tiles are multiples of it

using analysis::Term;

/// Whether a kernel for these key intervals classifies its key tiles up
/// front with input ranges (TileVisits.cpp): some unsolved condition reads an
/// input at a token position (documents: doc[b, q] == doc[b, k]).
bool needsTileSummaries(const analysis::KeyIntervals &ki);

/// What a backend fixes about the CTA and its tensor-core path.
struct EmitterParams {
  int64_t warps = 4; ///< each holds block_m / warps query rows
  int64_t pad = 8;   ///< elements of padding per shared-memory row (no bank conflicts for ldmatrix)
  /// Warpgroup MMAs (sm_90a; WgmmaCompute.cpp): S = Q K^T with Q and K from
  /// shared memory, O += P V with P from registers, Q/K/V tiles in 128-byte
  /// swizzled shared memory (no padding) and warps = block_m / 16, so each
  /// warp holds one 16-row m-tile (the wgmma accumulator layout is then
  /// AccLayout with mTiles = 1). Else mma.sync m16n8k16 with ldmatrix.
  bool wgmma = false;
  /// Warp specialisation (wgmma only; TmaPipeline.cpp): one more warpgroup,
  /// the first, loads Q and every visited K/V tile by TMA into a ring of
  /// `stages` shared buffers, each guarded by mbarriers, and gives its
  /// registers to the `warps` compute warps (setmaxnreg). Else every warp
  /// loads by cp.async into two buffers between CTA barriers.
  bool producer = false;
  int64_t stages = 2; ///< K/V shared buffers (2 without a producer)
  /// A persistent grid (warp specialised only; FlashKernel.cpp): one CTA an
  /// SM strides over every (query tile, head, batch) tile, longest rows
  /// first; two Q slots, so the producer loads the next tile's Q (and its
  /// first K/V tiles) while this one computes and writes its O.
  bool persistent = false;
  /// Softmax overlapped with the GEMMs inside each compute warpgroup (warp
  /// specialised only; OverlappedKeyLoop.cpp): key tile j's S = Q K^T and
  /// tile j-1's O += P V are issued together, and tile j's softmax runs
  /// while O += P V does. Its ring frees K and V of a slot apart.
  bool overlap = false;
  int64_t threads() const { return 32 * warps; } ///< the compute warps' threads
  int64_t blockThreads() const { return threads() + (producer ? 128 : 0); }
  /// The ring's mbarriers per slot: K full, V full and empty (both read),
  /// or overlapped K full, V full, K empty and V empty.
  int64_t kvBarrierKinds() const { return overlap ? 4 : 3; }
  /// The mbarriers' shared memory: Q full, then the ring's per slot
  /// (kvBarrierKinds); persistent: then the second Q slot's full, and each
  /// Q slot's empty.
  int64_t barrierBytes() const {
    return producer ? 8 * (1 + kvBarrierKinds() * stages + (persistent ? 3 : 0)) : 0;
  }
  int64_t qSlots() const { return persistent ? 2 : 1; }
};

/// The register layout of an fp32 tile (scores, probabilities, accumulator)
/// in m16n8k16 C fragments: each warp holds `mTiles` 16-row m-tiles of its
/// rows, `blocks` 8-wide column blocks each, 4 registers per (m-tile,
/// block); lane t holds rows t/4 (e = 0, 1) and t/4 + 8 (e = 2, 3) and
/// columns 2 (t % 4) + (e & 1). A lane's rows are numbered r = 2 mt + half,
/// its row tiles (m, l) hold one register per r.
/// Example: mTiles 2, blocks 8 (a 128x64 tile over 4 warps): 64 registers;
/// register (mt 1, j 3, e 2) is index 46, row slot 3, column 24 + 2 (t % 4).
struct AccLayout {
  int64_t mTiles = 0, blocks = 0;
  int64_t size() const { return mTiles * blocks * 4; }
  int64_t index(int64_t mt, int64_t j, int64_t e) const { return (mt * blocks + j) * 4 + e; }
  /// The lane's row slot of element e of m-tile mt.
  static int64_t rowSlot(int64_t mt, int64_t e) { return 2 * mt + (e < 2 ? 0 : 1); }
  /// The lane's row slots: 2 per m-tile.
  int64_t rowSlots() const { return 2 * mTiles; }
};

/// A tile in shared memory: a view, and the buffer index of a double-buffered one.
struct SharedTile {
  Value smem, buf;
  /// The gradient kernels on wgmma: the tile's byte offset from smemBase_
  /// and each buffer's bytes (the forward's tiles lie where kOffsetBytes()
  /// and vOffsetBytes() say).
  int64_t offsetBytes = 0, bufBytes = 0;
};

/// One input tensor the variant reads: its pointer and per-axis strides.
struct InputArg {
  std::string name;
  Value ptr;
  SmallVector<Value> strides;
  Type storage; ///< element type in memory (i8 for bool)
  Type value;   ///< element type the region reads
};

class KernelEmitter : IntArith {
public:
  KernelEmitter(OpBuilder &b, attn::TileKernelOp kernel, const analysis::KeyIntervals &ki, EmitterParams params)
      : IntArith(b, kernel.getLoc()), kernel_(kernel), variant_(kernel.getVariantOp()), ki_(ki), params_(params) {
    D_ = int64_t(kernel.getHeadDim());
    bf16_ = kernel.getElem().isBF16();
    BM_ = int64_t(kernel.getBlockM());
    BN_ = int64_t(kernel.getBlockN());
    ctasPerSm_ = int64_t(kernel.getCtasPerSm());
    kWarps = params.warps;
    kThreads = params.threads();
    kSummaryTiles = 32 * params.blockThreads();
    wgmma_ = params.wgmma;
    stages_ = params.stages;
    LD_ = wgmma_ ? D_ : D_ + params.pad;
    MT_ = BM_ / (16 * kWarps);
    summaries_ = needsTileSummaries(ki);
    summaryStage_ = kernel.isSummaryStage() || kernel.isBackwardSummary();
    selects_ = bool(variant_.getTopk());
    selectStage_ = kernel.isSelectStage();
    topkStage_ = kernel.isTopkStage();
    overSelection_ = kernel.overSelection();
    if (overSelection_)
      summaries_ = false; // its key tiles are the selection's: no mask to summarise
    backward_ = kernel.isBackward(); // with tile summaries, the backward_summary stage writes them
    if (DictionaryAttr ix = variant_.getIndexerAttr())
      indexer_ = IndexerInfo{cast<IntegerAttr>(ix.get("heads")).getInt(), cast<IntegerAttr>(ix.get("dim")).getInt(),
                             cast<StringAttr>(ix.get("dtype")).str()};
    if (selectStage_ || topkStage_) {
      // The Q tile holds the indexer heads of kSelectRows query rows, one
      // warp's m-tiles each (zero rows up to a multiple of 16); fp8 is
      // widened to f16 in shared memory (SelectStage.cpp). Without an
      // indexer the select region needs no tiles.
      // The topk stage reads the workspace alone.
      // On wgmma (IndexerWgmma.cpp) the Q tile is the B operand: the heads
      // of each row rounded up to 8, no padding.
      const bool mma = indexer_ && selectStage_;
      indexerWgmma_ = mma && wgmma_;
      D_ = mma ? indexer_->dim : 16;
      bf16_ = mma && indexer_->dtype == "bf16";
      BM_ = indexerWgmma_ ? (indexer_->heads + 7) / 8 * 8 * kSelectRows
            : mma         ? (indexer_->heads + 15) / 16 * 16 * kWarps
                          : 16 * kWarps;
      LD_ = D_ + params.pad;
      MT_ = BM_ / (16 * kWarps);
      summaries_ = false; // the select stage classifies its tiles by the closed forms (or visits them all)
    }
    visitBitmaps_ = summaries_; // and the dK/dV kernel's (emitBackwardDKDV)
  }

  /// Builds the gpu.func into `module`.
  void build(gpu::GPUModuleOp module);

private:
  attn::TileKernelOp kernel_;
  attn::VariantOp variant_;
  const analysis::KeyIntervals &ki_;
  EmitterParams params_;
  int64_t kWarps, kThreads; ///< the CTA's warps and threads (params_)
  int64_t D_, BM_, BN_, LD_, MT_; ///< MT_: 16-row m-tiles per warp
  bool bf16_ = true;
  bool wgmma_ = false; ///< EmitterParams::wgmma
  int64_t stages_ = 2; ///< EmitterParams::stages
  KernelInfo info_;

  // Selection (SelectStage.cpp; docs/runtime.md's DSA stages).
  struct IndexerInfo {
    int64_t heads = 0, dim = 0;
    std::string dtype; ///< "fp8", "bf16", "fp16" (the code generator refuses "fp32")
  };
  bool selects_ = false;      ///< the variant selects (topk): both stages take the selection's arguments
  bool selectStage_ = false;  ///< this kernel is the select stage
  bool topkStage_ = false;    ///< this kernel is the topk stage
  bool overSelection_ = false; ///< this kernel is the attention stage over the selected keys
  std::optional<IndexerInfo> indexer_;
  Value indices_, isb_, ish_, isl_, blockFirst_;
  Value workspace_; ///< selection: the scores' keys; tile summaries: their (min, max) in i64
  Value iq_, iw_, ik_, iqsb_, iqsl_, iqsh_, iwsb_, iwsl_, iksb_, iksl_;
  Value selBase_; ///< overSelection_: indices[b, g, row, 0]'s offset
  Type selectKeyType();      ///< the workspace's element: i32 keys of f32 scores, i64 keys of i64 ones
  Type indexerStorageType(); ///< qI and kI in memory (i8 for fp8)
  void setKernelInfo(gpu::GPUFuncOp func);
  void emitSelectStage(); ///< the select or the topk stage
  void indexerScores(Value n, Value buf, ArrayRef<Value> wsRows, Value needMask, ArrayRef<Value> w);
  SmallVector<Value> issueIndexerRows(Value smem, Value smemRow0, Value global, Value base, int64_t rows,
                                      Value rowLimit, Value rowStride);
  void landIndexerRows(ArrayRef<Value> pending, Value smem, Value smemRow0, int64_t rows);
  Value zeroBytes();
  void regionScores(Value n, ArrayRef<Value> wsRows, Value needMask);
  void writeExcludedTile(Value n, ArrayRef<Value> wsRows);
  // The indexer on wgmma (IndexerWgmma.cpp; indexerWgmma_).
  bool indexerWgmma_ = false;
  int64_t indexerElemBytes() const;
  void emitIndexerWgmma(ArrayRef<Value> wsRows);
  void copyIndexerRowsSwizzled(Value tiles, Value tileOffset, int64_t tileRows, int64_t row0, Value global, Value base,
                               int64_t rows, Value rowLimit, Value rowStride);
  void indexerScoresWgmma(Value n, ArrayRef<Value> acc, ArrayRef<Value> wsRows, Value needMask, ArrayRef<Value> w);
  Value orderedKey(Value score);
  Value allowedAt(Value q, Value col, Value needMask);
  void loadIndexerRows(Value smem, int64_t smemRow0, Value global, Value base, int64_t rows, Value rowLimit,
                       Value rowStride);
  Value selScratch_, selCounts_, selHist_, selRed_, selK_;
  // The topk stage (TopkStage.cpp).
  struct TopkKeys; ///< the keys one of its passes reads (the workspace's or the list's)
  void emitTopkStage(Value block);
  void topkOfRow(Value wsRow, Value begin, Value end, Value row);
  void topkDigit(const TopkKeys &keys, int64_t shift, int64_t width);
  Value topkOrdered(const TopkKeys &keys, Value threshold, Value need, bool ties,
                    const std::function<void(Value, Value, Value)> &emit);
  Value topkScratch(int64_t slot);
  void setTopkScratch(int64_t slot, Value v);
  std::pair<Value, Value> blockScan(Value count, Value totals);
  void forRange(Value from, Value to, int64_t step, const std::function<void(Value)> &body); ///< an scf.for on i64
  void ifThen(Value cond, const std::function<void()> &body);                               ///< an scf.if, no else
  int64_t topkListCap_ = 0;                  ///< keys the shared list holds (0: none, the workspace's passes)
  Value topkListKeys_, topkListColumns_;     ///< the list: keys (i32) and their columns
  // overSelection_: the gathered K/V rows and the remapped rows.
  Value selectedKey(Value slot); ///< the key column in selection slot `slot` of this row (-1: none)
  SmallVector<Value> loadSelectedTile(Value smem, Value buf, Value global, Value base, Value n, Value rowStride);
  Value headAt(int64_t mt, int64_t e); ///< the query head of element e of m-tile mt
  Value rowLimit_, qRowStride_, oRowStride_, lseRowStride_; ///< rows: query positions, or heads (overSelection_)

  // The gradient kernels (BackwardStage.cpp; docs/codegen.md "Backward").
  bool backward_ = false; ///< this kernel is backward_dq or backward_dkdv
  Value dout_, dq_, dk_, dv_; ///< dO (read), dQ, dK, dV (written)
  Value deltaWorkspace_; ///< Delta, f32 [B, Hq, Lq]: the workspace, after the tile summaries if any
  void splitBackwardWorkspace();
  Value dosb_, dosh_, dosl_, dqsb_, dqsh_, dqsl_, dksb_, dksh_, dksl_, dvsb_, dvsh_, dvsl_;
  double softmaxScale();
  void emitBackwardDQ();
  void emitBackwardDKDV();
  Value rowDelta(Value oBase, Value doBase, Value deltaShared); ///< Delta of this warp's rows
  SmallVector<Value> maskTransposed(ArrayRef<Value> s, Value colFirst, ArrayRef<Value> kPos);
  SmallVector<Value> scoreRuleTransposed(SmallVector<Value> &s, double scale, Value colFirst, ArrayRef<Value> kPos);
  Value throughScoreRule(Value ds, Value p, Value slope); ///< dS through a score rule
  void storeRows(ArrayRef<Value> acc, double factor, Value smem, Value dst, Value base, Value rowBase,
                 Value rowLimit, Value rowStride);
  /// The products on this kernel's tensor-core path (mma.sync, or wgmma
  /// with the tiles' shared addresses): A B^T with A's BM_ and B's BN_ rows,
  /// and acc += P B with P from registers (wgmma: returns P's A registers).
  /// With overlapChains() the wgmma chains are committed, not waited for:
  /// the caller waits (waitWgmma), so that elementwise work runs under them.
  SmallVector<Value> gradProductABt(SharedTile a, SharedTile b);
  SmallVector<Value> gradProductPB(ArrayRef<Value> p, SharedTile b, SmallVector<Value> &acc);
  bool overlapChains() const { return wgmma_ && params_.overlap; }

  // The tile program's values as this backend holds them.
  DenseMap<Value, SmallVector<Value>> regs_; ///< fp32 tiles and row tiles: registers in AccLayout order
  DenseMap<Value, SharedTile> shared_;       ///< element tiles: in shared memory
  IRMapping scalars_;                        ///< the key loop's tile index and need_mask
  Value colFirst_;                           ///< the current key tile's first column
  Value qBase_, kBase_, vBase_, oBase_, lseBase_;
  SmallVector<Value> rows_; ///< the tile rows of this lane's row slots
  ValueRange64 warpRows_;   ///< this warp's query positions
  AccLayout scoreLayout() const { return {MT_, BN_ / 8}; }
  AccLayout accLayout() const { return {MT_, D_ / 8}; }

  Type i32_, f32_, elem_, index_; ///< i1_, i64_: IntArith
  Value q_, k_, v_, o_, lse_, sinks_;
  Value qsb_, qsh_, qsl_, ksb_, ksh_, ksl_, vsb_, vsh_, vsl_, osb_, osh_, osl_, lsb_, lsh_;
  Value batch_, headsQ_, headsKv_, qlen_, klen_, qOff_, kOff_;
  std::vector<InputArg> inputs_;

  Value bIdx_, hIdx_, mIdx_, tid_, warp_, lane_;
  Value rowBase_, q0_, q1_;
  int64_t ctasPerSm_ = 1; ///< the occupancy ptxas allocates registers for
  Value quad_, inQuad_, laneRow16_, laneHalf_, lane8_, laneOct_;
  SmallVector<Value> qPos_; ///< absolute query position of each row a lane holds
  Value Qs_, Ks_, Vs_;
  Value smemBase_; ///< wgmma: the shared address (i64) of the Q tile, 1024-byte aligned; K and V follow

  // The warp-specialised kernel (EmitterParams::producer; TmaPipeline.cpp).
  Value tmapQ_, tmapK_, tmapV_; ///< the TMA descriptors' generic addresses (i64)
  Value barriers_;              ///< shared address (i64) of the mbarriers: Q full, then per stage K full, V full, K/V empty
  Value stage_, phase_;         ///< the consumers' current ring slot (index) and its parity (i64)
  /// which: 0 K full, 1 V full, 2 empty (overlapped: K empty), 3 V empty (overlapped only).
  Value kvBarrier(int64_t which, Value stage);
  int64_t ringBarriers() const { return params_.kvBarrierKinds() * stages_; }
  /// The Q slot's full barrier (the second one's after the ring's barriers).
  Value qBarrier() { return qSlot_ ? add(barriers_, mul(qSlot_, ci(8 * (1 + ringBarriers())))) : barriers_; }
  /// Persistent: the Q slot's empty barrier (every compute thread arrives after its epilogue).
  Value qEmptyBarrier() { return add(barriers_, mul(add(qSlot_, ci(2 + ringBarriers())), ci(8))); }
  // Persistent (EmitterParams::persistent): this CTA's current tile and Q slot.
  Value qSlot_;   ///< the Q slot of the current tile (i64: 0, 1), null: one slot
  Value qParity_; ///< the parity of the slot's current use (i64)
  Value qOffset_; ///< bytes from smemBase_ to the current Q slot (i64), null: 0
  Value ringStage_, ringPhase_; ///< the ring slot and parity the next key tile takes (null: 0)
  Value dynShared_, smemPad_;   ///< the dynamic shared memory and the pad to its 1024-byte boundary
  void emitTileLoop(const std::function<void(Value)> &body);
  scf::WhileOp beginWhile(ValueRange init, Pred pred, Value bound);
  void bindTile(Value t);
  void bindTileRows();
  int64_t qSecondOffsetBytes() const { return vOffsetBytes() + stages_ * kvTileBytes(); } ///< after the V ring
  void ptxOperands(StringRef code, StringRef constraints, ValueRange operands);
  void initBarriers();
  void waitBarrier(Value bar, Value parity);
  void arriveBarrier(Value bar);
  void expectBytes(Value bar, int64_t bytes);
  void tmaLoadRows(Value tmap, Value dstOffset, int64_t rows, Value row, Value head, Value bar);
  void emitProducer();
  void produceKeyTiles();
  void loadQByTma();
  SmallVector<Value> nextSlot(Value stage, Value phase);
  int64_t computeRegisters() const;
  int64_t producerRegisters() const; ///< what the producer warpgroup keeps (setmaxnreg.dec)
  void takeRegisters();
  void warpgroupBarrier();
  Value computeWarpgroup(); ///< this warp's warpgroup among the compute warps (warp_ / 4)
  bool pingPong() const;
  void turnBarrier(bool wait, Value warpgroup);
  void openTurns(Value anyTile);
  void waitTurn();
  void passTurn(Value last);
  /// Waits until at most `pending` of this warpgroup's committed chains
  /// run, `acc` tied through; `keepAlive` (a chain's A registers) stays
  /// untouched until then.
  SmallVector<Value> waitWgmma(ArrayRef<Value> acc, int64_t pending = 0, ValueRange keepAlive = {});
  std::string chainEnd() const;
  Value lastTile_; ///< ping-pong: whether the key loop's current tile is its last (i1)
  Value kvHead();

  // --- small helpers -----------------------------------------------------------
  Value ci32(int64_t v) { return arith::ConstantIntOp::create(b_, loc_, i32_, v); }
  Value cidx(int64_t v) { return arith::ConstantIndexOp::create(b_, loc_, v); }
  Value cf(double v) { return arith::ConstantFloatOp::create(b_, loc_, cast<FloatType>(f32_), APFloat(float(v))); }
  Value toIndex(Value v) { return arith::IndexCastOp::create(b_, loc_, index_, v); }
  Value toI64(Value v) { return arith::IndexCastOp::create(b_, loc_, i64_, v); }
  Value addF(Value a, Value x) { return arith::AddFOp::create(b_, loc_, a, x); }
  Value subF(Value a, Value x) { return arith::SubFOp::create(b_, loc_, a, x); }
  Value mulF(Value a, Value x) { return arith::MulFOp::create(b_, loc_, a, x); }
  Value maxF(Value a, Value x) { return arith::MaximumFOp::create(b_, loc_, a, x); }
  /// 2^x and log2(x) by the SFU's approximations (ex2/lg2.approx.ftz: a
  /// relative error near 2^-22, far below bf16's).
  Value ptxUnary(const char *code, Value x) {
    return NVVM::InlinePtxOp::create(b_, loc_, TypeRange{f32_}, ValueRange{x}, ValueRange{}, code, Value())
        .getResult(0);
  }
  Value exp2F(Value x) { return ptxUnary("ex2.approx.ftz.f32 $0, $1;", x); }
  Value log2F(Value x) { return ptxUnary("lg2.approx.ftz.f32 $0, $1;", x); }
  Value negInf() { return cf(-INFINITY); }

  MemRefType globalType(Type t) { return MemRefType::get({kHugeLen}, t, MemRefLayoutAttrInterface{}, b_.getI64IntegerAttr(1)); }
  Attribute workgroup() { return gpu::AddressSpaceAttr::get(b_.getContext(), gpu::AddressSpace::Workgroup); }

  // --- the parts of the kernel ---------------------------------------------------
  gpu::GPUFuncOp declare(gpu::GPUModuleOp module);
  void setupBlock();
  void setupShared();
  void emitPrologue();
  void laneGeometry();
  void lowerOp(Operation &op);
  void lowerKeyLoop(attn::TileKeyLoopOp loop);
  std::pair<SmallVector<Value>, Value> initialRowState(attn::TileKeyLoopOp loop); ///< m0 per row slot, l0
  Value tileNeedMask(Value n); ///< whether key tile n needs the mask on this warp's rows
  // The overlapped key loop (EmitterParams::overlap; OverlappedKeyLoop.cpp).
  bool overlappable(attn::TileKeyLoopOp loop);
  void lowerKeyLoopOverlapped(attn::TileKeyLoopOp loop);
  struct ScorePhase {
    SmallVector<Value> m, l, alpha, pA; ///< the new state, the rescale factors, P's A registers
    Value rescaled;                     ///< i1: some lane's rows rescale (alpha != 1)
  };
  ScorePhase lowerScorePhase(attn::TileKeyLoopOp loop, Value n, ArrayRef<Value> m, ArrayRef<Value> l,
                             const std::function<void()> &issueBeside, int64_t besideChains);
  SmallVector<Value> scaleRows(ArrayRef<Value> acc, ArrayRef<Value> alpha, Value rescaled);
  SmallVector<Value> &regsOf(Value tileValue);
  SmallVector<Value> loadTile(Value smem, Value buf, int64_t rows, Value global, Value base, Value rowStart,
                              Value rowLimit, Value rowStride);
  /// The indices of element (row, col) of a tile of `rows` rows in its
  /// shared view (`buf`: the buffer of a double-buffered one, or null):
  /// [row][col] in padded rows, or the 128-byte swizzled position (wgmma).
  SmallVector<Value> tileIndex(Value buf, Value row, Value col, int64_t rows);
  // The wgmma path (WgmmaCompute.cpp).
  Value swizzledIndex(Value row, Value col, int64_t rows);
  Value alignDynamicShared(Value dyn);
  Value tileAddress(SharedTile t, int64_t offsetBytes, int64_t tileBytes);
  Value wgmmaDescriptor(Value address, int64_t leadingBytes, int64_t strideBytes);
  void ptxStatement(StringRef code);
  SmallVector<Value> scoresQKWgmma(SharedTile q, SharedTile k);
  SmallVector<Value> issueScoresQK(SharedTile q, SharedTile k); ///< the chain of scoresQKWgmma, not waited for
  void accumulatePVWgmma(ArrayRef<Value> p, SharedTile v, SmallVector<Value> &acc);
  SmallVector<Value> wgmmaABt(Value aAddr, int64_t aRows, Value bAddr, bool stepsInAsm = false);
  enum class WgmmaInput { F16, BF16, E4M3 }; ///< both operands' element type
  /// A shared operand of a wgmma chain: step 0's address, its descriptor's
  /// leading byte offset, its operand number at step 0, the operands between
  /// steps, and the PTX register of its later steps' descriptors.
  struct ChainOperand {
    Value base;
    int64_t leadingBytes, firstOperand, stride;
    const char *reg;
  };
  std::string stepDescriptor(const ChainOperand &o, int64_t step, int64_t stepBytes, bool stepsInAsm,
                             SmallVector<Value> &operands, std::string &asmText);
  SmallVector<Value> wgmmaKMajor(Value aAddr, int64_t aRows, Value bAddr, int64_t bRows, int64_t rowBytes,
                                 WgmmaInput input, bool stepsInAsm);
  void wgmmaPB(ArrayRef<Value> p, function_ref<Value()> bAddress, SmallVector<Value> &acc);
  /// P's A registers of wgmmaPB (4 i32 per 16 keys), and the product on them.
  SmallVector<Value> packPOperands(ArrayRef<Value> p);
  void wgmmaPBPacked(ArrayRef<Value> a, function_ref<Value()> bAddress, SmallVector<Value> &acc);
  int64_t pvChains() const; ///< the commit groups of one O += P V (a group per 128 columns of O)
  Value packPairI32(Value x, Value y);
  // The tile ops of one key tile (TileCompute.cpp).
  Value keyAt(Value colFirst, int64_t j, int64_t e);
  Value queryAt(int64_t mt, int64_t e);
  SmallVector<Value> scoresQK(SharedTile q, SharedTile k);
  /// slopes (gradient kernels): each element's d rule / d s, in s's layout.
  void applyScore(SmallVector<Value> &s, double scale, Value colFirst, SmallVector<Value> *slopes = nullptr);
  SmallVector<Value> maskTile(ArrayRef<Value> s, Value needMask, attn::MaskKind by, Value colFirst);
  SmallVector<Value> maskByIntervals(ArrayRef<Value> s, Value colFirst);
  SmallVector<Value> maskByRegion(ArrayRef<Value> s, Value colFirst);
  SmallVector<Value> maskBySelection(ArrayRef<Value> s, Value colFirst);
  /// state: m, l, acc; with `alpha`, m and l only: acc is scaled later
  /// (scaleRows), by the factors it returns there (1 where a lane's rows do
  /// not rescale), and `rescaled` says whether any lane's do.
  SmallVector<Value> rescale(ArrayRef<Value> s, ArrayRef<Value> state, double log2Scale,
                             SmallVector<Value> *alpha = nullptr, Value *rescaled = nullptr);
  SmallVector<Value> expTile(SmallVector<Value> &s, ArrayRef<Value> m, double log2Scale);
  void accumulatePV(ArrayRef<Value> p, SharedTile v, SmallVector<Value> &acc);
  void barrier() { gpu::BarrierOp::create(b_, loc_); }
  int64_t kvTileBytes() const { return BN_ * D_ * 2; }
  int64_t kOffsetBytes() const { return BM_ * D_ * 2; }                       ///< K ring after the Q tile
  int64_t vOffsetBytes() const { return kOffsetBytes() + stages_ * kvTileBytes(); } ///< V ring after K's

  IntervalEnv intervalEnv(ValueRange64 q, ValueRange64 k, bool tokenRanges = false);
  TileVisitRule visitRule();
  std::pair<Value, Value> visitRange();
  std::pair<Value, Value> visitedRange(); ///< visitRange(), narrowed by the summaries' bitmaps
  /// Whether tile n is visited where the summaries' bitmaps do not answer
  /// (none, or beyond their window); default: classifyTile(n).first.
  using VisitOf = std::function<Value(Value)>;
  Value firstVisited(Value first, Value last, const VisitOf &visitOf = {});
  Value nextVisited(Value n, Value last, const VisitOf &visitOf = {});
  Value windowNeedMask(Value n, Value needMask); ///< needMask of key tile n from the full bitmap in its window
  std::pair<Value, Value> classifyTile(Value n, bool tokenRanges = false, std::optional<ValueRange64> rows = {});

  // Tile summaries: for masks whose unsolved conditions read inputs at token
  // positions (documents), the summary stage writes each input's minimum and
  // maximum per query and key tile into the workspace, once per call; each
  // CTA of the attention kernel classifies the key tiles of its visit range
  // from them up front into two bitmaps in shared memory (visit, full).
  struct SummaryRead {
    InputArg *input = nullptr;
    int64_t tokenAxis = 0;                 ///< the axis indexed by the position
    std::vector<analysis::Var> index;      ///< the read's index vars (the token axis: Q)
    std::string key;                       ///< input and index pattern, e.g. "doc,b,t"
    bool usesHead = false;                 ///< indexed by h: one summary per query head
  };
  int64_t kSummaryTiles; ///< tiles per bitmap: 32 per thread of the CTA
  bool summaries_ = false;
  /// The visit and full bitmaps are filled (fillSummaries) and answer the
  /// walk inside their window: with summaries, and in every dK/dV kernel.
  bool visitBitmaps_ = false;
  bool summaryStage_ = false; ///< this kernel is the summary stage
  std::vector<SummaryRead> summaryReads_;
  Value visitBits_, fullBits_, windowFirst_;
  Value visitedEnds_; ///< shared i64[2]: the first and last tile the bitmaps mark visited (kInf, -1: none)
  Value windowFirstVisited_, windowLastVisited_; ///< read back from visitedEnds_ after the fill
  std::map<std::string, ValueRange64> qRanges_;
  void forEachRangeableRead(const std::function<void(const Term &)> &fn);
  std::vector<SummaryRead> summaryReads();
  const SummaryRead *summaryOf(const Term &read);
  Value summaryEntry(const SummaryRead &r, Value tile);
  ValueRange64 summaryRange(const Term &read, Value tile);
  void emitSummaryStage();
  Value shuffleXorI64(Value v, int32_t offset);
  Value readAtPosition(const SummaryRead &r, Value pos);
  Value inputValueI64(const InputArg &in, Value loaded);
  void computeQRanges(Value queryTile);
  void allocateSummaryBitmaps(Value dynShared);
  using Classify = std::function<std::pair<Value, Value>(Value)>; ///< tile -> (visit, needMask)
  void fillSummaries(Value first, Value last, const Classify &classify);
  Value summaryBit(Value bits, Value n);

  SmallVector<Value> operandsOf(Value fragment, int64_t regs);
  SmallVector<Value> mma(ArrayRef<Value> a, ArrayRef<Value> bOps, ArrayRef<Value> c);
  void mmaBlockPair(ArrayRef<SmallVector<Value>> a, ArrayRef<Value> bOps, SmallVector<Value> &accum, int64_t blocks,
                    int64_t j);
  Value packPair(Value x, Value y);
  Value quadReduce(Value v, bool isMax);

  Value inlineRegion(Region &region, ArrayRef<Value> args);
  Value scoreOf(Value s, Value q, Value k, Value h = Value());
  /// The score rule at s and its derivative d rule / d s (ScoreDerivative.h).
  std::pair<Value, Value> scoreAndSlopeOf(Value s, Value q, Value k, Value h = Value());
  Value selectScoreOf(Value q, Value k);
  Value maskOf(Value q, Value k);

  void emitEpilogue(ArrayRef<Value> m, ArrayRef<Value> l, ArrayRef<Value> acc);
};

} // namespace attnc::flash

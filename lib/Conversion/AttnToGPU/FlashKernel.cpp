//===- FlashKernel.cpp - The mma.sync kernel: set-up, program, loop -------===//
//
// The kernel, top to bottom (one CTA = query tile m of head h, batch b;
// query tiles in reverse order); this file holds the signature, the set-up,
// the walk over the tile program, the key loop and the epilogue,
// KernelEmitter.h says where the rest lives:
//   1. positions and base offsets; attn.tile.load_q: the Q tile -> shared
//      memory (cp.async);
//   2. the key tiles to visit, from the key intervals' closed forms over this
//      tile's query positions (TileVisits.cpp);
//   3. attn.tile.key_loop: for each key tile in that range that is not empty (empty: skipped;
//      full: no mask; partial: mask per element, per warp): the next visited
//      tile's K and V stream into the other shared buffer (cp.async) while
//      this one is computed (TileCompute.cpp): S on tensor cores (ldmatrix +
//      mma.sync), score rule, mask, online softmax in fp32 on exp2, O += P V
//      with P kept in registers as the A operand;
//   4. attn.tile.epilogue: O / l and LSE = m + log(l) (empty rows: O = 0, LSE = -inf; a sink
//      starts every row with m = S_h, l = 1), O out through shared memory.
// The warp-specialised wgmma kernel (EmitterParams::producer) splits the CTA
// at the start: warpgroup 0 issues the loads of 1 and 3 by TMA
// (TmaPipeline.cpp), the others run 3 and 4 waiting on its mbarriers
// instead of cp.async groups and CTA barriers. Its persistent form
// (EmitterParams::persistent, --persistent=on) runs 1-4 in a loop over the
// tiles (emitTileLoop, bindTile), both roles alike.
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

#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;

namespace attnc::flash {

//===----------------------------------------------------------------------===//
// Signature: the runtime's vocabulary (docs/runtime.md), in this order.
//===----------------------------------------------------------------------===//
gpu::GPUFuncOp KernelEmitter::declare(gpu::GPUModuleOp module) {
  MLIRContext *ctx = b_.getContext();
  i1_ = b_.getI1Type();
  i32_ = b_.getI32Type();
  i64_ = b_.getI64Type();
  f32_ = b_.getF32Type();
  index_ = b_.getIndexType();
  elem_ = bf16_ ? Type(b_.getBF16Type()) : Type(b_.getF16Type());

  SmallVector<Type> types;
  auto arg = [&](const std::string &name, KernelArg::Kind kind, Type t) {
    info_.args.push_back({name, kind});
    types.push_back(t);
  };
  for (const char *t : {"q", "k", "v", "o"})
    arg(t, KernelArg::Ptr, globalType(elem_));
  arg("lse", KernelArg::Ptr, globalType(f32_));
  for (const char *t : {"q", "k", "v", "o"})
    for (const char *a : {"b", "h", "l"})
      arg(std::string(t) + "_stride_" + a, KernelArg::I64, i64_);
  arg("lse_stride_b", KernelArg::I64, i64_);
  arg("lse_stride_h", KernelArg::I64, i64_);
  for (const char *s : {"batch", "heads_q", "heads_kv", "qlen", "klen", "q_offset", "k_offset"})
    arg(s, KernelArg::I64, i64_);
  if (params_.producer) {
    // TMA descriptors (TmaPipeline.cpp): a 128-byte CUtensorMap each, passed
    // by value in parameter space and used in place (grid constants).
    for (const char *t : {"q", "k", "v"}) {
      arg(std::string("tmap:") + t, KernelArg::TensorMap, LLVM::LLVMPointerType::get(ctx));
      KernelArg &a = info_.args.back();
      a.tensor = t;
      a.box = {kBoxRows, 64}; // 64 rows of one 128-byte swizzled chunk
      a.swizzleBytes = 128;
    }
  }
  if (variant_.getSink() && !backward_) // the gradient kernels read the sinks' share in the LSE
    arg("sinks", KernelArg::Ptr, globalType(f32_));
  if (selects_) {
    // Both stages of a selecting variant take the same list (SelectStage.cpp).
    arg("indices", KernelArg::Ptr, globalType(i32_));
    for (const char *a : {"b", "h", "l"})
      arg(std::string("indices_stride_") + a, KernelArg::I64, i64_);
    arg("workspace", KernelArg::Ptr, globalType(selectKeyType()));
    arg("block_first", KernelArg::I64, i64_);
    if (indexer_) {
      arg("indexer.qI", KernelArg::Ptr, globalType(indexerStorageType()));
      arg("indexer.w", KernelArg::Ptr, globalType(f32_));
      arg("indexer.kI", KernelArg::Ptr, globalType(indexerStorageType()));
      for (const char *a : {"indexer.qI_stride_b", "indexer.qI_stride_l", "indexer.qI_stride_h",
                            "indexer.w_stride_b", "indexer.w_stride_l", "indexer.kI_stride_b", "indexer.kI_stride_l"})
        arg(a, KernelArg::I64, i64_);
    }
  }
  if (summaries_ && !backward_) // the summary stage's (min, max) per tile and input (TileVisits.cpp)
    arg("workspace", KernelArg::Ptr, globalType(i64_));
  if (backward_) { // BackwardStage.cpp: dO in, the gradients out, Delta in the workspace
    for (const char *t : {"dout", "dq", "dk", "dv"})
      arg(t, KernelArg::Ptr, globalType(elem_));
    for (const char *t : {"dout", "dq", "dk", "dv"})
      for (const char *a : {"b", "h", "l"})
        arg(std::string(t) + "_stride_" + a, KernelArg::I64, i64_);
    // Delta; with tile summaries, after them (bytes: splitBackwardWorkspace).
    arg("workspace", KernelArg::Ptr, globalType(summaries_ ? b_.getI8Type() : f32_));
  }

  // Inputs the mask or score regions read, in first-use order.
  std::vector<std::string> names;
  variant_.walk([&](attn::ReadOp r) {
    std::string n = r.getInput().str();
    if (std::find(names.begin(), names.end(), n) == names.end())
      names.push_back(n);
  });
  for (const std::string &n : names) {
    auto decl = SymbolTable::lookupNearestSymbolFrom<attn::InputOp>(variant_, StringAttr::get(ctx, n));
    InputArg in;
    in.name = n;
    in.value = decl.getElem();
    in.storage = in.value.isInteger(1) ? Type(b_.getI8Type()) : in.value;
    arg("input:" + n, KernelArg::Ptr, globalType(in.storage));
    for (attn::Axis axis : decl.getAxisKinds())
      arg("input:" + n + ":stride:" + attn::stringifyAxis(axis).str(), KernelArg::I64, i64_);
    inputs_.push_back(in);
  }

  auto fnType = FunctionType::get(ctx, types, {});
  OpBuilder::InsertionGuard guard(b_);
  b_.setInsertionPointToEnd(module.getBody());
  auto func = gpu::GPUFuncOp::create(b_, loc_, kernel_.getSymName(), fnType);
  func->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), b_.getUnitAttr());
  // The runtime ABI, in the IR: each argument's name (attn-lower-region-ops
  // finds the inputs by them; the driver reads them back for the manifest).
  SmallVector<int64_t> tensorMaps; // passed by value (attn-grid-constant-params)
  for (auto [i, a] : llvm::enumerate(info_.args)) {
    func.setArgAttr(i, "attn.arg", b_.getStringAttr(a.name));
    if (a.kind != KernelArg::TensorMap)
      continue;
    tensorMaps.push_back(i);
    NamedAttrList tmap;
    tmap.append("tensor", b_.getStringAttr(a.tensor));
    tmap.append("box", b_.getDenseI64ArrayAttr(a.box));
    tmap.append("swizzle", b_.getI64IntegerAttr(a.swizzleBytes));
    func.setArgAttr(i, "attn.tensormap", tmap.getDictionary(ctx));
  }
  if (!tensorMaps.empty())
    func->setAttr("attn.tensormap_args", b_.getDenseI64ArrayAttr(tensorMaps));
  func.setKnownBlockSizeAttr(b_.getDenseI32ArrayAttr({int32_t(params_.blockThreads()), 1, 1}));
  func->setAttr(NVVM::NVVMDialect::getMinctasmAttrName(), b_.getI32IntegerAttr(ctasPerSm_));
  return func;
}

//===----------------------------------------------------------------------===//
// Block set-up: indices, base offsets, shared memory views.
//===----------------------------------------------------------------------===//
void KernelEmitter::setupBlock() {
  // Query tiles in reverse order: under a causal mask the last tiles visit
  // the most key tiles, and starting them first keeps the short ones for
  // the tail of the grid. (Persistent: bindTile, per tile.)
  if (!params_.persistent) {
    Value tilesM = toI64(gpu::GridDimOp::create(b_, loc_, gpu::Dimension::x));
    mIdx_ = sub(sub(tilesM, ci(1)), toI64(gpu::BlockIdOp::create(b_, loc_, gpu::Dimension::x)));
    hIdx_ = toI64(gpu::BlockIdOp::create(b_, loc_, gpu::Dimension::y));
    bIdx_ = toI64(gpu::BlockIdOp::create(b_, loc_, gpu::Dimension::z));
  }
  tid_ = toI64(gpu::ThreadIdOp::create(b_, loc_, gpu::Dimension::x));
  warp_ = arith::DivUIOp::create(b_, loc_, tid_, ci(32));
  lane_ = arith::RemUIOp::create(b_, loc_, tid_, ci(32));
  if (!params_.persistent)
    bindTileRows();
  setupShared();
}

/// The persistent kernel's tile t: the query tile varies fastest (from the
/// last), then the head, then the batch, as the one-CTA-a-tile grid's x, y,
/// z: the CTAs at work at once are then mostly one head's query tiles,
/// reading the same K/V through L2. (Numbered with the head fastest, the
/// 132 CTAs streamed up to 132 heads' K/V at once and ran 13-16% slower
/// than one CTA a tile: bench/NOTES.md v13.)
void KernelEmitter::bindTile(Value t) {
  Value tilesM = arith::CeilDivSIOp::create(b_, loc_, qlen_, ci(BM_));
  mIdx_ = sub(sub(tilesM, ci(1)), arith::RemSIOp::create(b_, loc_, t, tilesM));
  Value hb = arith::DivSIOp::create(b_, loc_, t, tilesM);
  hIdx_ = arith::RemSIOp::create(b_, loc_, hb, headsQ_);
  bIdx_ = arith::DivSIOp::create(b_, loc_, hb, headsQ_);
  bindTileRows();
  qOffset_ = mul(qSlot_, ci(qSecondOffsetBytes()));
  auto qType = MemRefType::get({BM_ * D_}, elem_, MemRefLayoutAttrInterface{}, workgroup());
  Qs_ = memref::ViewOp::create(b_, loc_, qType, dynShared_, toIndex(add(smemPad_, qOffset_)), ValueRange{});
}

/// Every tile of the persistent grid this CTA takes: t = blockIdx.x, then
/// every gridDim.x-th, carrying the K/V ring's slot and parity and the
/// count of tiles done (whose parity picks the Q slot).
void KernelEmitter::emitTileLoop(const std::function<void(Value)> &body) {
  // The tile and the count as i32 (the runtime refuses 2^31 tiles or more):
  // the producer's one thread has 40 registers for its whole loop.
  auto toI32 = [&](Value v) { return Value(arith::TruncIOp::create(b_, loc_, i32_, v)); };
  Value total = toI32(mul(mul(arith::CeilDivSIOp::create(b_, loc_, qlen_, ci(BM_)), headsQ_), batch_));
  Value stride = arith::IndexCastOp::create(b_, loc_, i32_, gpu::GridDimOp::create(b_, loc_, gpu::Dimension::x));
  SmallVector<Value> init = {arith::IndexCastOp::create(b_, loc_, i32_, gpu::BlockIdOp::create(b_, loc_, gpu::Dimension::x)),
                             cidx(0), ci(0), ci32(0)};
  OpBuilder::InsertionGuard g(b_);
  auto loop = beginWhile(init, Pred::slt, total);
  Block *after = loop.getAfterBody();
  Value t = after->getArgument(0), done = after->getArgument(3);
  ringStage_ = after->getArgument(1);
  ringPhase_ = after->getArgument(2);
  Value done64 = arith::ExtUIOp::create(b_, loc_, i64_, done);
  qSlot_ = arith::AndIOp::create(b_, loc_, done64, ci(1));
  qParity_ = arith::AndIOp::create(b_, loc_, arith::ShRUIOp::create(b_, loc_, done64, ci(1)), ci(1));
  // The thread's index, opaque to LLVM in each iteration: else every
  // address and fragment offset derived from it alone (the epilogue's
  // swizzled stores, say) is hoisted out of the tile loop and held in
  // registers through every key loop (spills at d = 128).
  // The same for the lengths and offsets (the key bounds' terms).
  auto opaque = [&](Value v) {
    return LLVM::InlineAsmOp::create(b_, loc_, i64_, ValueRange{v}, "mov.b64 $0, $1;", "=l,l",
                                     /*has_side_effects=*/true, /*is_align_stack=*/false,
                                     LLVM::tailcallkind::TailCallKind::None, LLVM::AsmDialectAttr(), ArrayAttr())
        .getResult(0);
  };
  Value *perTile[] = {&tid_, &qlen_, &klen_, &qOff_, &kOff_};
  SmallVector<Value> outer;
  for (Value *v : perTile) {
    outer.push_back(*v);
    *v = opaque(*v);
  }
  Value warp = warp_, lane = lane_;
  warp_ = arith::DivUIOp::create(b_, loc_, tid_, ci(32));
  lane_ = arith::RemUIOp::create(b_, loc_, tid_, ci(32));
  body(arith::ExtUIOp::create(b_, loc_, i64_, t));
  for (auto [v, o] : llvm::zip_equal(perTile, outer))
    *v = o;
  warp_ = warp;
  lane_ = lane;
  scf::YieldOp::create(b_, loc_,
                       ValueRange{arith::AddIOp::create(b_, loc_, t, stride), ringStage_, ringPhase_,
                                  arith::AddIOp::create(b_, loc_, done, ci32(1))});
}

/// The rows of tile (mIdx_, hIdx_, bIdx_): positions and strides.
void KernelEmitter::bindTileRows() {
  rowLimit_ = qlen_;
  qRowStride_ = qsl_;
  oRowStride_ = osl_;
  if (overSelection_) {
    // Grid rows_kvheads_batch: x = query row * ceil(G / BM) + the part of
    // the KV group's G query heads, y = the KV group. The tile's rows are
    // those heads (hIdx_ the first); every row has the query position of
    // mIdx_, the query row.
    Value groupSize = arith::DivSIOp::create(b_, loc_, headsQ_, headsKv_);
    Value parts = arith::DivSIOp::create(b_, loc_, add(groupSize, ci(BM_ - 1)), ci(BM_));
    Value x = toI64(gpu::BlockIdOp::create(b_, loc_, gpu::Dimension::x));
    mIdx_ = arith::DivSIOp::create(b_, loc_, x, parts);
    Value group = hIdx_;
    hIdx_ = add(mul(group, groupSize), mul(arith::RemSIOp::create(b_, loc_, x, parts), ci(BM_)));
    rowBase_ = hIdx_;
    rowLimit_ = mul(add(group, ci(1)), groupSize);
    qRowStride_ = qsh_;
    oRowStride_ = osh_;
    lseRowStride_ = lsh_;
    q0_ = q1_ = add(mIdx_, qOff_);
  } else {
    rowBase_ = mul(mIdx_, ci(BM_));
    q0_ = add(rowBase_, qOff_);
    q1_ = add(sub(minI(add(rowBase_, ci(BM_)), qlen_), ci(1)), qOff_);
  }
}

void KernelEmitter::setupShared() {
  // Shared memory: the Q tile, and two buffers each of K and V (the next
  // key tile streams in while this one is computed); rows padded to LD.
  auto dynType = MemRefType::get({ShapedType::kDynamic}, b_.getI8Type(), MemRefLayoutAttrInterface{}, workgroup());
  Value dyn = gpu::DynamicSharedMemoryOp::create(b_, loc_, dynType);
  int64_t elemBytes = 2;
  int64_t qBytes = BM_ * LD_ * elemBytes, kvBytes = stages_ * BN_ * LD_ * elemBytes;
  if (wgmma_) {
    // Swizzled tiles, flat, from the first 1024-byte boundary of the dynamic
    // shared memory (the swizzle pattern follows address bits 4-9).
    auto qType = MemRefType::get({BM_ * D_}, elem_, MemRefLayoutAttrInterface{}, workgroup());
    auto kvType = MemRefType::get({stages_, BN_ * D_}, elem_, MemRefLayoutAttrInterface{}, workgroup());
    Value pad = alignDynamicShared(dyn);
    Qs_ = memref::ViewOp::create(b_, loc_, qType, dyn, toIndex(pad), ValueRange{});
    Ks_ = memref::ViewOp::create(b_, loc_, kvType, dyn, toIndex(add(pad, ci(qBytes))), ValueRange{});
    Vs_ = memref::ViewOp::create(b_, loc_, kvType, dyn, toIndex(add(pad, ci(qBytes + kvBytes))), ValueRange{});
    info_.sharedBytes = params_.qSlots() * qBytes + 2 * kvBytes + 1024;
    if (params_.producer) { // the mbarriers: Q full, then K full, V full, empty per slot (persistent: Q's second slot first)
      barriers_ = add(smemBase_, ci(params_.qSlots() * qBytes + 2 * kvBytes));
      info_.sharedBytes += params_.barrierBytes();
    }
  } else {
    auto qType = MemRefType::get({BM_, LD_}, elem_, MemRefLayoutAttrInterface{}, workgroup());
    auto kvType = MemRefType::get({2, BN_, LD_}, elem_, MemRefLayoutAttrInterface{}, workgroup());
    Qs_ = memref::ViewOp::create(b_, loc_, qType, dyn, cidx(0), ValueRange{});
    Ks_ = memref::ViewOp::create(b_, loc_, kvType, dyn, cidx(qBytes), ValueRange{});
    Vs_ = memref::ViewOp::create(b_, loc_, kvType, dyn, cidx(qBytes + kvBytes), ValueRange{});
    info_.sharedBytes = qBytes + 2 * kvBytes;
  }
  if (summaries_)
    allocateSummaryBitmaps(dyn);
}

/// Sets smemBase_ (the shared address of the first 1024-byte boundary of the
/// dynamic shared memory `dyn`, where the swizzled tiles start), dynShared_
/// and smemPad_ (its byte offset in `dyn`); returns smemPad_.
Value KernelEmitter::alignDynamicShared(Value dyn) {
  Value raw = toI64(memref::ExtractAlignedPointerAsIndexOp::create(b_, loc_, dyn));
  Value pad = arith::RemUIOp::create(b_, loc_, sub(ci(1024), arith::RemUIOp::create(b_, loc_, raw, ci(1024))),
                                     ci(1024));
  smemBase_ = add(raw, pad);
  dynShared_ = dyn;
  smemPad_ = pad;
  return pad;
}

/// Copies `rows` x D elements (row r of the tile is global row rowStart + r,
/// at base + row * rowStride) into `smem`, 16 bytes per cp.async; rows at or
/// beyond rowLimit are zero-filled. Returns the copies' tokens.
SmallVector<Value> KernelEmitter::loadTile(Value smem, Value buf, int64_t rows, Value global, Value base,
                                           Value rowStart, Value rowLimit, Value rowStride) {
  int64_t chunksPerRow = D_ / 8, perThread = rows * chunksPerRow / kThreads;
  SmallVector<Value> tokens;
  for (int64_t i = 0; i < perThread; ++i) {
    Value chunk = add(tid_, ci(i * kThreads));
    Value r = arith::DivUIOp::create(b_, loc_, chunk, ci(chunksPerRow));
    Value col = mul(arith::RemUIOp::create(b_, loc_, chunk, ci(chunksPerRow)), ci(8));
    Value row = add(rowStart, r);
    Value valid = cmpI(arith::CmpIPredicate::slt, row, rowLimit);
    Value src = sel(valid, add(add(base, mul(row, rowStride)), col), ci(0));
    Value count = toIndex(sel(valid, ci(8), ci(0)));
    SmallVector<Value> dst = tileIndex(buf, r, col, rows);
    auto copy = nvgpu::DeviceAsyncCopyOp::create(b_, loc_, nvgpu::DeviceAsyncTokenType::get(b_.getContext()), smem,
                                                 dst, global, ValueRange{toIndex(src)},
                                                 b_.getIndexAttr(8), count, b_.getUnitAttr());
    tokens.push_back(copy);
  }
  return tokens;
}

SmallVector<Value> KernelEmitter::tileIndex(Value buf, Value row, Value col, int64_t rows) {
  SmallVector<Value> idx;
  if (buf)
    idx.push_back(buf);
  if (wgmma_) {
    idx.push_back(toIndex(swizzledIndex(row, col, rows)));
  } else {
    idx.push_back(toIndex(row));
    idx.push_back(toIndex(col));
  }
  return idx;
}

//===----------------------------------------------------------------------===//
// The tile program.
//===----------------------------------------------------------------------===//
/// Base offsets of this CTA's tensors and each lane's place in the fragments.
void KernelEmitter::emitPrologue() {
  const int64_t rowsPerThread = 2 * MT_;
  Value groupSize = arith::DivSIOp::create(b_, loc_, headsQ_, headsKv_);
  Value hkv = arith::DivSIOp::create(b_, loc_, hIdx_, groupSize);
  qBase_ = add(mul(bIdx_, qsb_), mul(hIdx_, qsh_));
  kBase_ = add(mul(bIdx_, ksb_), mul(hkv, ksh_));
  vBase_ = add(mul(bIdx_, vsb_), mul(hkv, vsh_));
  oBase_ = add(mul(bIdx_, osb_), mul(hIdx_, osh_));
  lseBase_ = add(mul(bIdx_, lsb_), mul(hIdx_, lsh_));
  if (overSelection_) { // rows are heads: the bases are those of query row mIdx_
    qBase_ = add(mul(bIdx_, qsb_), mul(mIdx_, qsl_));
    oBase_ = add(mul(bIdx_, osb_), mul(mIdx_, osl_));
    lseBase_ = add(mul(bIdx_, lsb_), mIdx_);
    selBase_ = add(add(mul(bIdx_, isb_), mul(hkv, ish_)), mul(mIdx_, isl_));
  }

  laneGeometry();
  for (int64_t r = 0; r < rowsPerThread; ++r) {
    Value row = add(add(mul(warp_, ci(16 * MT_)), ci((r / 2) * 16 + (r % 2) * 8)), quad_);
    rows_.push_back(row);
    qPos_.push_back(overSelection_ ? q0_ : add(add(rowBase_, row), qOff_));
  }

  // This warp's query positions (empty past qlen).
  Value warpFirst = add(rowBase_, mul(warp_, ci(16 * MT_)));
  warpRows_ = {add(warpFirst, qOff_), add(sub(minI(add(warpFirst, ci(16 * MT_)), qlen_), ci(1)), qOff_)};
}

/// Each lane's place in the fragments: lane t holds rows t/4 and t/4 + 8 of
/// each of its warp's 16-row m-tiles, columns 2*(t%4) + {0, 1} of each
/// 8-wide block; ldmatrix addresses take the rest.
void KernelEmitter::laneGeometry() {
  quad_ = arith::DivUIOp::create(b_, loc_, lane_, ci(4));
  inQuad_ = arith::RemUIOp::create(b_, loc_, lane_, ci(4));
  laneRow16_ = arith::RemUIOp::create(b_, loc_, lane_, ci(16));
  laneHalf_ = arith::DivUIOp::create(b_, loc_, lane_, ci(16));
  lane8_ = arith::RemUIOp::create(b_, loc_, lane_, ci(8));
  laneOct_ = arith::RemUIOp::create(b_, loc_, arith::DivUIOp::create(b_, loc_, lane_, ci(8)), ci(2));
}

SmallVector<Value> &KernelEmitter::regsOf(Value tileValue) {
  auto it = regs_.find(tileValue);
  assert(it != regs_.end() && "a tile value lowered before its definition");
  return it->second;
}

/// Lowers one op of the tile program (in program order: the backend's
/// emission order is the program's).
void KernelEmitter::lowerOp(Operation &op) {
  llvm::TypeSwitch<Operation *>(&op)
      .Case([&](attn::TileLoadQOp load) {
        if (params_.producer) { // the producer's TMA copy (TmaPipeline.cpp)
          waitBarrier(qBarrier(), qParity_ ? qParity_ : ci(0));
        } else {
          loadTile(Qs_, Value(), BM_, q_, qBase_, rowBase_, rowLimit_, qRowStride_);
          NVVM::CpAsyncCommitGroupOp::create(b_, loc_);
        }
        shared_[load.getTile()] = {Qs_, Value()};
      })
      .Case([&](attn::TileKeyLoopOp loop) { lowerKeyLoop(loop); })
      // K and V of the current key tile are already in shared memory (the
      // key loop streams them in: double buffering), or on their way into
      // ring slot stage_ (the producer's TMA copies: wait for them).
      .Case([&](attn::TileLoadKOp load) {
        if (params_.producer)
          waitBarrier(kvBarrier(0, stage_), phase_);
        shared_[load.getTile()] = {Ks_, scalars_.lookup(load.getN())};
      })
      .Case([&](attn::TileLoadVOp load) {
        if (params_.producer)
          waitBarrier(kvBarrier(1, stage_), phase_);
        shared_[load.getTile()] = {Vs_, scalars_.lookup(load.getN())};
      })
      .Case([&](attn::TileQKOp qk) {
        SharedTile q = shared_.at(qk.getQ()), k = shared_.at(qk.getK());
        if (pingPong())
          waitTurn();
        regs_[qk.getS()] = wgmma_ ? scoresQKWgmma(q, k) : scoresQK(q, k); // wgmma: passes the turn
      })
      .Case([&](attn::TileScoreOp score) {
        SmallVector<Value> s = regsOf(score.getS());
        applyScore(s, score.getScale().convertToDouble(), colFirst_);
        regs_[score.getResult()] = s;
      })
      .Case([&](attn::TileMaskOp mask) {
        regs_[mask.getResult()] =
            maskTile(regsOf(mask.getS()), scalars_.lookup(mask.getNeedMask()), mask.getBy(), colFirst_);
      })
      .Case([&](attn::TileRescaleOp r) {
        SmallVector<Value> state(regsOf(r.getM()));
        llvm::append_range(state, regsOf(r.getL()));
        llvm::append_range(state, regsOf(r.getAcc()));
        SmallVector<Value> out = rescale(regsOf(r.getS()), state, r.getLog2Scale().convertToDouble());
        const int64_t rows = 2 * MT_;
        regs_[r.getMNew()] = SmallVector<Value>(out.begin(), out.begin() + rows);
        regs_[r.getLNew()] = SmallVector<Value>(out.begin() + rows, out.begin() + 2 * rows);
        regs_[r.getAccNew()] = SmallVector<Value>(out.begin() + 2 * rows, out.end());
      })
      .Case([&](attn::TileExpOp e) {
        SmallVector<Value> p = regsOf(e.getS());
        regs_[e.getRowSum()] = expTile(p, regsOf(e.getM()), e.getLog2Scale().convertToDouble());
        regs_[e.getP()] = p;
      })
      .Case([&](attn::TilePVOp pv) {
        SmallVector<Value> acc = regsOf(pv.getAcc());
        if (pingPong())
          waitTurn();
        if (wgmma_)
          accumulatePVWgmma(regsOf(pv.getP()), shared_.at(pv.getV()), acc); // passes the turn
        else
          accumulatePV(regsOf(pv.getP()), shared_.at(pv.getV()), acc);
        regs_[pv.getResult()] = acc;
      })
      .Case([&](arith::AddFOp a) { // elementwise on fp32 tiles: register by register
        SmallVector<Value> out;
        for (auto [x, y] : llvm::zip_equal(regsOf(a.getLhs()), regsOf(a.getRhs())))
          out.push_back(addF(x, y));
        regs_[a.getResult()] = out;
      })
      .Case([&](attn::TileEpilogueOp e) { emitEpilogue(regsOf(e.getM()), regsOf(e.getL()), regsOf(e.getAcc())); })
      .Default([&](Operation *other) {
        llvm::report_fatal_error(llvm::Twine("the mma-sync backend cannot lower ") +
                                 other->getName().getStringRef());
      });
}

/// An scf.while over `init` that goes on while pred(its first value,
/// bound); leaves the insertion point at the start of its body, whose
/// arguments are the iteration's values (the caller yields the next ones).
scf::WhileOp KernelEmitter::beginWhile(ValueRange init, Pred pred, Value bound) {
  SmallVector<Type> types = llvm::to_vector(TypeRange(init));
  SmallVector<Location> locs(types.size(), loc_);
  auto loop = scf::WhileOp::create(b_, loc_, types, init);
  Block *before = b_.createBlock(&loop.getBefore(), {}, types, locs);
  b_.setInsertionPointToStart(before);
  scf::ConditionOp::create(b_, loc_, cmpI(pred, before->getArgument(0), bound), before->getArguments());
  Block *after = b_.createBlock(&loop.getAfter(), {}, types, locs);
  b_.setInsertionPointToStart(after);
  return loop;
}

/// The key loop's running state before its first tile, per row slot: m
/// (log2 units) and l (this lane's partial sum); acc starts at zero.
std::pair<SmallVector<Value>, Value> KernelEmitter::initialRowState(attn::TileKeyLoopOp keyLoop) {
  const int64_t rowsPerThread = 2 * MT_;
  SmallVector<Value> m0(rowsPerThread, negInf());
  Value l0 = cf(0);
  if (keyLoop.getSink()) {
    // The sink joins as if it were a key with score S_h and a zero value:
    // m starts at S_h and l at exp(S_h - m) = 1, once per row (quad lane 0).
    // Over a selection the rows are heads (past the group's: any head's).
    auto sinkOf = [&](Value h) {
      return mulF(memref::LoadOp::create(b_, loc_, sinks_, ValueRange{toIndex(h)}), cf(kLog2e));
    };
    if (overSelection_)
      for (int64_t r = 0; r < rowsPerThread; ++r)
        m0[r] = sinkOf(minI(add(hIdx_, rows_[r]), sub(headsQ_, ci(1))));
    else
      m0.assign(rowsPerThread, sinkOf(hIdx_));
    l0 = sel(cmpI(arith::CmpIPredicate::eq, inQuad_, ci(0)), cf(1), cf(0));
  }
  return {m0, l0};
}

/// Whether visited key tile n needs the mask on this warp's rows: the
/// CTA's classification (or the summaries' full bitmap in its window),
/// and again over the warp's own rows (the closed forms only: a warp whose
/// rows the tile covers drops the mask). Over a selection: a tile with
/// unfilled slots (the last one, or one past topk).
Value KernelEmitter::tileNeedMask(Value n) {
  Value needMask = overSelection_ ? Value() : classifyTile(n).second;
  if (overSelection_) {
    Value end = add(mul(n, ci(BN_)), ci(BN_));
    needMask = orB(cmpI(arith::CmpIPredicate::sgt, end, ci(*variant_.getTopk())),
                   cmpI(arith::CmpIPredicate::slt, selectedKey(sub(minI(end, ci(*variant_.getTopk())), ci(1))), ci(0)));
  }
  needMask = windowNeedMask(n, needMask);
  if (!overSelection_)
    needMask = andB(needMask, classifyTile(n, false, warpRows_).second);
  return needMask;
}

/// attn.tile.key_loop: the visited key tiles, each prefetching the next
/// one's K and V into the other shared buffer while it is computed.
void KernelEmitter::lowerKeyLoop(attn::TileKeyLoopOp keyLoop) {
  if (params_.overlap && overlappable(keyLoop))
    return lowerKeyLoopOverlapped(keyLoop);
  const int64_t nTilesD = D_ / 8, rowsPerThread = 2 * MT_;
  auto [first, last] = overSelection_ ? std::pair<Value, Value>{ci(0), ci((*variant_.getTopk() + BN_ - 1) / BN_ - 1)}
                                      : visitedRange();
  auto loadKV = [&](Value n, Value buf) {
    if (overSelection_) { // the rows of the selected keys
      loadSelectedTile(Ks_, buf, k_, kBase_, n, ksl_);
      loadSelectedTile(Vs_, buf, v_, vBase_, n, vsl_);
      return;
    }
    Value colFirst = mul(n, ci(BN_));
    loadTile(Ks_, buf, BN_, k_, kBase_, colFirst, klen_, ksl_);
    loadTile(Vs_, buf, BN_, v_, vBase_, colFirst, klen_, vsl_);
  };
  Value n0 = overSelection_ ? nextVisited(sub(first, ci(1)), last) : firstVisited(first, last);
  const bool producer = params_.producer; // else this loop loads K and V itself
  if (!producer) {
    auto ifAny = scf::IfOp::create(b_, loc_, TypeRange{}, cmpI(arith::CmpIPredicate::sle, n0, last), false);
    {
      OpBuilder::InsertionGuard g(b_);
      b_.setInsertionPointToStart(&ifAny.getThenRegion().front());
      loadKV(n0, cidx(0));
    }
    NVVM::CpAsyncCommitGroupOp::create(b_, loc_);
  }
  if (pingPong())
    openTurns(cmpI(arith::CmpIPredicate::sle, n0, last));

  auto [m0, l0] = initialRowState(keyLoop);
  // Loop-carried: the tile n, its shared buffer (or ring slot and parity), the state.
  SmallVector<Value> init = {n0, ringStage_ ? ringStage_ : cidx(0)};
  if (producer)
    init.push_back(ringPhase_ ? ringPhase_ : ci(0));
  const int64_t lead = init.size();
  llvm::append_range(init, m0);
  for (int64_t r = 0; r < rowsPerThread; ++r)
    init.push_back(l0);
  for (int64_t i = 0; i < accLayout().size(); ++i)
    init.push_back(cf(0));
  (void)nTilesD;

  scf::WhileOp loop;
  {
    OpBuilder::InsertionGuard g(b_);
    loop = beginWhile(init, Pred::sle, last);
    Block *after = loop.getAfterBody();
    Value n = after->getArgument(0), buf = after->getArgument(1);
    Value nn = nextVisited(n, last);
    Value other;
    if (producer) {
      stage_ = buf;
      phase_ = after->getArgument(2);
      lastTile_ = cmpI(arith::CmpIPredicate::sgt, nn, last);
    } else {
      other = arith::SubIOp::create(b_, loc_, cidx(1), buf);
      {
        auto ifNext = scf::IfOp::create(b_, loc_, TypeRange{}, cmpI(arith::CmpIPredicate::sle, nn, last), false);
        OpBuilder::InsertionGuard g2(b_);
        b_.setInsertionPointToStart(&ifNext.getThenRegion().front());
        loadKV(nn, other);
      }
      NVVM::CpAsyncCommitGroupOp::create(b_, loc_);
      // Everything but the group just committed (the next tile) has landed.
      NVVM::CpAsyncWaitGroupOp::create(b_, loc_, 1);
      if (wgmma_) // the tensor cores read shared memory through the async proxy
        ptxStatement("fence.proxy.async.shared::cta;");
      barrier();
    }
    Value needMask = tileNeedMask(n);

    // The body: n, need_mask and the state are this iteration's; K and V
    // of tile n are in shared buffer (or ring slot) `buf`.
    Block &body = keyLoop.getBodyBlock();
    scalars_.map(keyLoop.getTileIndex(), buf); // load_k/load_v: which buffer
    scalars_.map(keyLoop.getNeedMask(), needMask);
    auto argRegs = [&](unsigned arg, int64_t from, int64_t count) {
      regs_[body.getArgument(arg)] =
          SmallVector<Value>(after->getArguments().begin() + from, after->getArguments().begin() + from + count);
    };
    argRegs(2, lead, rowsPerThread);
    argRegs(3, lead + rowsPerThread, rowsPerThread);
    argRegs(4, lead + 2 * rowsPerThread, accLayout().size());
    colFirst_ = mul(n, ci(BN_));
    for (Operation &op : body.without_terminator())
      lowerOp(op);
    auto yield = cast<attn::TileYieldOp>(body.getTerminator());
    SmallVector<Value> next = {nn};
    if (producer)
      llvm::append_range(next, nextSlot(buf, phase_));
    else
      next.push_back(other);
    for (Value v : yield->getOperands())
      llvm::append_range(next, regsOf(v));
    if (producer) // O += P V has read V (its wgmma waited): the slot is free
      arriveBarrier(kvBarrier(2, buf));
    else
      barrier(); // this buffer is refilled two tiles from now
    scf::YieldOp::create(b_, loc_, next);
  }
  b_.setInsertionPointAfter(loop);
  if (ringStage_) { // persistent: the next tile's key loop goes on round the ring
    ringStage_ = loop.getResult(1);
    ringPhase_ = loop.getResult(2);
  }
  auto result = [&](int64_t from, int64_t count) {
    return SmallVector<Value>(loop.getResults().begin() + from, loop.getResults().begin() + from + count);
  };
  regs_[keyLoop.getM()] = result(lead, rowsPerThread);
  regs_[keyLoop.getL()] = result(lead + rowsPerThread, rowsPerThread);
  regs_[keyLoop.getAcc()] = result(lead + 2 * rowsPerThread, accLayout().size());
}

/// O = acc / l into the Q tile's shared memory, each warp its own rows, then
/// those rows to global memory 16 bytes a lane, coalesced; LSE = (m + log2 l)
/// ln 2 from each quad's first lane. The Q tile is free once every copy into
/// it has landed (a query tile that visits no key tile never waited for its
/// Q) and every warp has done reading it. (m, l, acc) is the key loop's
/// final state.
void KernelEmitter::emitEpilogue(ArrayRef<Value> mRegs, ArrayRef<Value> lRegs, ArrayRef<Value> acc) {
  const int64_t nTilesD = D_ / 8, rowsPerThread = 2 * MT_;
  const AccLayout layout = accLayout();
  ArrayRef<Value> rows = rows_;
  Value oBase = oBase_, lseBase = lseBase_;
  if (params_.producer) {
    warpgroupBarrier(); // Q arrived by TMA (load_q waited); this warpgroup's wgmmas are done with it
  } else {
    NVVM::CpAsyncWaitGroupOp::create(b_, loc_, 0);
    barrier();
  }
  for (int64_t r = 0; r < rowsPerThread; ++r) {
    int64_t mt = r / 2, half = r % 2;
    Value m = mRegs[r];
    Value l = quadReduce(lRegs[r], false);
    Value empty = arith::CmpFOp::create(b_, loc_, arith::CmpFPredicate::OEQ, l, cf(0));
    Value inv = arith::SelectOp::create(b_, loc_, empty, cf(0), arith::DivFOp::create(b_, loc_, cf(1), l));
    for (int64_t t = 0; t < nTilesD; ++t) {
      int64_t base = layout.index(mt, t, 2 * half);
      Value x = mulF(acc[base], inv), y = mulF(acc[base + 1], inv);
      Value pair = vector::FromElementsOp::create(b_, loc_, VectorType::get({2}, f32_), ValueRange{x, y});
      Value packed = arith::TruncFOp::create(b_, loc_, VectorType::get({2}, elem_), pair);
      Value col = add(ci(t * 8), mul(inQuad_, ci(2)));
      vector::StoreOp::create(b_, loc_, packed, Qs_, tileIndex(Value(), rows[r], col, BM_), false,
                              llvm::MaybeAlign(4));
    }
    Value row = add(rowBase_, rows[r]);
    Value lead = andB(cmpI(arith::CmpIPredicate::slt, row, rowLimit_), cmpI(arith::CmpIPredicate::eq, inQuad_, ci(0)));
    auto ifLead = scf::IfOp::create(b_, loc_, TypeRange{}, lead, false);
    OpBuilder::InsertionGuard g4(b_);
    b_.setInsertionPointToStart(&ifLead.getThenRegion().front());
    Value lse = arith::SelectOp::create(b_, loc_, empty, negInf(), mulF(addF(m, log2F(l)), cf(1.0 / kLog2e)));
    Value at = add(lseBase, lseRowStride_ ? mul(row, lseRowStride_) : row);
    memref::StoreOp::create(b_, loc_, lse, lse_, ValueRange{toIndex(at)});
  }
  NVVM::SyncWarpOp::create(b_, loc_, ci32(-1));
  const int64_t chunksPerRow = D_ / 8, rowsPerWarp = 16 * MT_;
  auto chunk = VectorType::get({8}, elem_);
  for (int64_t i = 0; i < rowsPerWarp * chunksPerRow / 32; ++i) {
    Value c = add(lane_, ci(32 * i));
    Value row = add(mul(warp_, ci(rowsPerWarp)), arith::DivUIOp::create(b_, loc_, c, ci(chunksPerRow)));
    Value col = mul(arith::RemUIOp::create(b_, loc_, c, ci(chunksPerRow)), ci(8));
    Value globalRow = add(rowBase_, row);
    auto ifValid = scf::IfOp::create(b_, loc_, TypeRange{}, cmpI(arith::CmpIPredicate::slt, globalRow, rowLimit_), false);
    OpBuilder::InsertionGuard g5(b_);
    b_.setInsertionPointToStart(&ifValid.getThenRegion().front());
    Value x = vector::LoadOp::create(b_, loc_, chunk, Qs_, tileIndex(Value(), row, col, BM_), false,
                                     llvm::MaybeAlign(16));
    Value at = add(add(oBase, mul(globalRow, oRowStride_)), col);
    vector::StoreOp::create(b_, loc_, x, o_, ValueRange{toIndex(at)}, false, llvm::MaybeAlign(16));
  }
}

void KernelEmitter::build(gpu::GPUModuleOp module) {
  gpu::GPUFuncOp func = declare(module);
  OpBuilder::InsertionGuard guard(b_);
  Block &entry = func.getBody().front();
  b_.setInsertionPointToStart(&entry);
  // Bind the arguments in declaration order.
  unsigned i = 0;
  auto next = [&]() { return entry.getArgument(i++); };
  q_ = next();
  k_ = next();
  v_ = next();
  o_ = next();
  lse_ = next();
  qsb_ = next(); qsh_ = next(); qsl_ = next();
  ksb_ = next(); ksh_ = next(); ksl_ = next();
  vsb_ = next(); vsh_ = next(); vsl_ = next();
  osb_ = next(); osh_ = next(); osl_ = next();
  lsb_ = next(); lsh_ = next();
  batch_ = next(); headsQ_ = next(); headsKv_ = next(); qlen_ = next(); klen_ = next(); qOff_ = next(); kOff_ = next();
  if (params_.producer) { // the descriptors' generic addresses
    auto address = [&](Value p) { return Value(LLVM::PtrToIntOp::create(b_, loc_, i64_, p)); };
    tmapQ_ = address(next());
    tmapK_ = address(next());
    tmapV_ = address(next());
  }
  if (variant_.getSink() && !backward_)
    sinks_ = next();
  if (selects_) {
    indices_ = next();
    isb_ = next(); ish_ = next(); isl_ = next();
    workspace_ = next();
    blockFirst_ = next();
    if (indexer_) {
      iq_ = next(); iw_ = next(); ik_ = next();
      iqsb_ = next(); iqsl_ = next(); iqsh_ = next();
      iwsb_ = next(); iwsl_ = next();
      iksb_ = next(); iksl_ = next();
    }
  }
  if (summaries_ && !backward_)
    workspace_ = next();
  if (backward_) {
    dout_ = next(); dq_ = next(); dk_ = next(); dv_ = next();
    dosb_ = next(); dosh_ = next(); dosl_ = next();
    dqsb_ = next(); dqsh_ = next(); dqsl_ = next();
    dksb_ = next(); dksh_ = next(); dksl_ = next();
    dvsb_ = next(); dvsh_ = next(); dvsl_ = next();
    workspace_ = next();
  }
  for (InputArg &in : inputs_) {
    in.ptr = next();
    auto decl = SymbolTable::lookupNearestSymbolFrom<attn::InputOp>(variant_, StringAttr::get(b_.getContext(), in.name));
    for (size_t a = 0; a < decl.getAxisKinds().size(); ++a)
      in.strides.push_back(next());
  }
  if (selectStage_ || topkStage_) {
    emitSelectStage();
    gpu::ReturnOp::create(b_, loc_);
    setKernelInfo(func);
    return;
  }
  if (summaries_)
    summaryReads_ = summaryReads();
  if (backward_)
    splitBackwardWorkspace();
  if (backward_ && !summaryStage_) {
    if (kernel_.isBackwardDQ())
      emitBackwardDQ();
    else
      emitBackwardDKDV();
    gpu::ReturnOp::create(b_, loc_);
    setKernelInfo(func);
    return;
  }
  if (summaryStage_) {
    emitSummaryStage();
    gpu::ReturnOp::create(b_, loc_);
    setKernelInfo(func);
    return;
  }
  setupBlock();
  if (params_.producer) {
    initBarriers();
    barrier();
  }
  if (summaries_) {
    // Every thread of the CTA classifies the visit range's tiles (the
    // producer walks the same bitmaps); Q's copy, which needs none of it,
    // is on its way meanwhile.
    if (params_.producer) {
      auto ifLeader = scf::IfOp::create(b_, loc_, TypeRange{}, cmpI(Pred::eq, tid_, ci(0)), false);
      OpBuilder::InsertionGuard g(b_);
      b_.setInsertionPointToStart(&ifLeader.getThenRegion().front());
      loadQByTma();
    }
    auto [first, last] = visitRange();
    computeQRanges(mIdx_);
    fillSummaries(first, last, [&](Value n) { return classifyTile(n, /*tokenRanges=*/true); });
  }
  if (params_.producer) {
    // Warpgroup 0 loads, the others compute (TmaPipeline.cpp); the compute
    // warps count their threads and warps from 0.
    auto roles = scf::IfOp::create(b_, loc_, TypeRange{}, cmpI(Pred::ult, warp_, ci(4)), true);
    b_.setInsertionPointToStart(&roles.getThenRegion().front());
    emitProducer();
    b_.setInsertionPointToStart(&roles.getElseRegion().front());
    takeRegisters();
    tid_ = sub(tid_, ci(128));
    warp_ = sub(warp_, ci(4));
  }
  auto computeTile = [&] {
    emitPrologue();
    for (Operation &op : kernel_.getBody().front())
      lowerOp(op);
  };
  if (params_.persistent) {
    emitTileLoop([&](Value t) {
      bindTile(t);
      computeTile();
      // O went out through the Q slot (generic writes, before the next TMA
      // copy into it): the slot is free.
      ptxStatement("fence.proxy.async.shared::cta;");
      arriveBarrier(qEmptyBarrier());
    });
  } else {
    computeTile();
  }
  if (params_.producer)
    b_.setInsertionPointToEnd(&entry);
  gpu::ReturnOp::create(b_, loc_);
  setKernelInfo(func);
}

/// What the runtime needs to launch it (read back into the manifest).
void KernelEmitter::setKernelInfo(gpu::GPUFuncOp func) {
  NamedAttrList kinfo;
  kinfo.append("variant", variant_.getSymNameAttr());
  kinfo.append("head_dim", b_.getI64IntegerAttr(int64_t(kernel_.getHeadDim())));
  kinfo.append("elem", TypeAttr::get(kernel_.getElem())); // a select stage's elem_ is the indexer's
  kinfo.append("block_m", b_.getI64IntegerAttr(int64_t(kernel_.getBlockM())));
  kinfo.append("block_n", b_.getI64IntegerAttr(BN_));
  kinfo.append("threads", b_.getI64IntegerAttr(params_.blockThreads()));
  kinfo.append("shared_bytes", b_.getI64IntegerAttr(info_.sharedBytes));
  if (params_.persistent) // docs/runtime.md: one CTA an SM strides over the tiles
    kinfo.append("grid", b_.getStringAttr("persistent"));
  if (summaryStage_) { // docs/runtime.md: the summary stage's grid and workspace
    kinfo.append("stage", kernel_.getStageAttr()); // summary, or backward_summary
    kinfo.append("grid", b_.getStringAttr("tiles_heads_batch"));
    kinfo.append("workspace_per_tile", b_.getI64IntegerAttr(16 * int64_t(summaryReads_.size())));
  }
  if (backward_) { // docs/runtime.md: the gradient kernels' grids; Delta in the workspace
    if (!summaryStage_) {
      kinfo.append("stage", kernel_.getStageAttr());
      kinfo.append("grid", b_.getStringAttr(kernel_.isBackwardDQ() ? "qtiles_heads_batch" : "ktiles_kvheads_batch"));
    }
    kinfo.append("workspace_per_row", b_.getI64IntegerAttr(4));
  }
  if (selects_) { // docs/runtime.md: the two stages' grids
    kinfo.append("stage", b_.getStringAttr(selectStage_ ? "select" : topkStage_ ? "topk" : "attention"));
    kinfo.append("grid", b_.getStringAttr(selectStage_ || topkStage_ ? "chunked_row_blocks" : "rows_kvheads_batch"));
    if (selectStage_ || topkStage_)
      kinfo.append("workspace_per_key", b_.getI64IntegerAttr(selectKeyType().getIntOrFloatBitWidth() / 8));
  }
  func->setAttr("attn.kernel_info", kinfo.getDictionary(b_.getContext()));
}

} // namespace attnc::flash

//===- IndexerWgmma.cpp - The select stage's indexer on warpgroup MMAs ---===//
//
// sm_90a's select stage for `select topk(K) by indexer(...)` (the DSA issue;
// docs/codegen.md "Selection (DSA)"), where indexerOnWgmma() holds: at most
// 64 indexer heads, rows of a multiple of 128 bytes (dim 128, 256 in fp8;
// 64, 128, 256 in bf16/fp16). The CTA is one warpgroup and takes the same 4
// query rows t0 .. t0 + 3 as the mma.sync stage (SelectStage.cpp), so the
// workspace, the grid and the topk stage are unchanged. Per key tile of 64
// keys:
//   I^T = kI Q^T on one m64nNk wgmma chain, both operands K-major from
//     128-byte swizzled shared memory (WgmmaCompute.cpp's layout): A is the
//     kI tile (64 keys, warp w's 16 keys 16 w ..), B the CTA's Q tile of N =
//     4 x HI8 rows (row r's indexer heads qI[b, t0 + r, j, :] at rows
//     r HI8 .., zero up to HI8 = HI rounded up to 8). fp8 (e4m3) runs on the
//     fp8 wgmma (k32) itself, into fp32 accumulators (its accumulation keeps
//     about 14 bits: test/gpu/check_dsa.py's fp8 tolerance); bf16/fp16 on
//     k16.
//   sum_j w[b, t, j] relu(S[s, j]): each thread's accumulators hold two keys
//     (lane / 4 and lane / 4 + 8 of its warp's 16) by N / 8 column pairs, so
//     the sum over the heads is in-thread (one partial per key and row), then
//     across the lane's quad by a reduce-scatter of 6 shuffles: lane l ends
//     with the sums of row 2 (l % 2) + (l / 2) % 2 for its two keys.
//   Each goes into the workspace as SelectStage.cpp's ordered key (0 where
//     the mask excludes it).
// kI tiles: kIndexerStages buffers by cp.async (16 bytes a copy, rows past
// klen zero-filled), one CTA barrier a tile; Q with the first tile.
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

using namespace mlir;

namespace attnc::flash {

namespace {
constexpr int64_t kIndexerStages = 2;  ///< kI tile buffers (3 and 4 measured slower: bench/NOTES.md DSA v8)
constexpr int64_t kMaxWgmmaHeads = 64; ///< 4 rows x 64 heads: an m64n256 wgmma's N
constexpr int64_t kRowChunkBytes = 128; ///< the swizzle's row: a multiple of it per indexer row
} // namespace

bool indexerOnWgmma(attn::VariantOp variant) {
  DictionaryAttr ix = variant.getIndexerAttr();
  if (!ix)
    return false;
  const int64_t heads = cast<IntegerAttr>(ix.get("heads")).getInt(), dim = cast<IntegerAttr>(ix.get("dim")).getInt();
  const StringRef dtype = cast<StringAttr>(ix.get("dtype")).getValue();
  const int64_t elemBytes = dtype == "fp8" ? 1 : 2;
  return dtype != "fp32" && heads <= kMaxWgmmaHeads && (dim * elemBytes) % kRowChunkBytes == 0;
}

int64_t KernelEmitter::indexerElemBytes() const { return indexer_->dtype == "fp8" ? 1 : 2; }

/// cp.async of `rows` indexer rows (row i at base + i * rowStride; rows at or
/// past rowLimit zero-filled) into rows row0 .. of the swizzled tile at byte
/// tileOffset of `tiles` (a flat view of the storage type), a tile of
/// tileRows rows of D_ elements. The caller commits.
void KernelEmitter::copyIndexerRowsSwizzled(Value tiles, Value tileOffset, int64_t tileRows, int64_t row0,
                                            Value global, Value base, int64_t rows, Value rowLimit, Value rowStride) {
  const int64_t elemBytes = indexerElemBytes(), rowBytes = D_ * elemBytes, piecesPerRow = rowBytes / 16,
                total = rows * piecesPerRow, perPiece = 16 / elemBytes;
  for (int64_t i = 0; i * kThreads < total; ++i) {
    Value piece = add(tid_, ci(i * kThreads));
    auto ifIn = scf::IfOp::create(b_, loc_, TypeRange{}, cmpI(Pred::slt, piece, ci(total)), false);
    OpBuilder::InsertionGuard g(b_);
    b_.setInsertionPointToStart(&ifIn.getThenRegion().front());
    Value r = arith::DivUIOp::create(b_, loc_, piece, ci(piecesPerRow));
    Value p = arith::RemUIOp::create(b_, loc_, piece, ci(piecesPerRow));
    Value valid = cmpI(Pred::slt, r, rowLimit);
    Value src = sel(valid, add(add(base, mul(r, rowStride)), mul(p, ci(perPiece))), ci(0));
    // Byte (row, 16 p) of the tile: column chunk p / 8, its 16-byte piece p % 8 XOR row % 8.
    Value row = add(r, ci(row0));
    Value chunk = arith::DivUIOp::create(b_, loc_, p, ci(8));
    Value swizzled = arith::XOrIOp::create(b_, loc_, arith::RemUIOp::create(b_, loc_, p, ci(8)),
                                           arith::RemUIOp::create(b_, loc_, row, ci(8)));
    Value byte = add(add(tileOffset, mul(chunk, ci(tileRows * kRowChunkBytes))),
                     add(mul(row, ci(kRowChunkBytes)), mul(swizzled, ci(16))));
    Value dst = arith::DivUIOp::create(b_, loc_, byte, ci(elemBytes));
    nvgpu::DeviceAsyncCopyOp::create(b_, loc_, nvgpu::DeviceAsyncTokenType::get(b_.getContext()), tiles,
                                     ValueRange{toIndex(dst)}, global, ValueRange{toIndex(src)},
                                     b_.getIndexAttr(perPiece), toIndex(sel(valid, ci(perPiece), ci(0))),
                                     b_.getUnitAttr());
  }
}

/// Zero keys (excluded) for every row of key tile n (a tile of the rows'
/// hull that the mask's closed forms skip).
void KernelEmitter::writeExcludedTile(Value n, ArrayRef<Value> wsRows) {
  for (Value wsRow : wsRows)
    for (int64_t i = 0; i * kThreads < BN_; ++i) {
      Value col = add(tid_, ci(i * kThreads));
      Value key = add(mul(n, ci(BN_)), col);
      auto ifIn = scf::IfOp::create(b_, loc_, TypeRange{},
                                    andB(cmpI(Pred::slt, col, ci(BN_)), cmpI(Pred::slt, key, klen_)), false);
      OpBuilder::InsertionGuard g(b_);
      b_.setInsertionPointToStart(&ifIn.getThenRegion().front());
      memref::StoreOp::create(b_, loc_, arith::ConstantIntOp::create(b_, loc_, selectKeyType(), 0).getResult(),
                              workspace_, ValueRange{toIndex(add(wsRow, key))});
    }
}

/// The select stage on wgmma (the header): Q and the weights once, then the
/// rows' hull of key tiles.
void KernelEmitter::emitIndexerWgmma(ArrayRef<Value> wsRows) {
  const int64_t rows = kSelectRows, headRows = BM_ / rows, elemBytes = indexerElemBytes();
  const int64_t rowBytes = D_ * elemBytes, qBytes = BM_ * rowBytes, kTileBytes = BN_ * rowBytes;
  const int64_t tileBytes = qBytes + kIndexerStages * kTileBytes;
  auto dyn = gpu::DynamicSharedMemoryOp::create(
      b_, loc_, MemRefType::get({ShapedType::kDynamic}, b_.getI8Type(), MemRefLayoutAttrInterface{}, workgroup()));
  alignDynamicShared(dyn);
  Type storage = indexerStorageType();
  Value tiles = memref::ViewOp::create(
      b_, loc_, MemRefType::get({tileBytes / elemBytes}, storage, MemRefLayoutAttrInterface{}, workgroup()), dyn,
      toIndex(smemPad_), ValueRange{});
  info_.sharedBytes = tileBytes + 1024; // the alignment slack
  laneGeometry();

  // Q: row r's heads at rows r * headRows .. (none past qlen).
  for (int64_t r = 0; r < rows; ++r) {
    Value row = add(rowBase_, ci(r));
    Value inRange = cmpI(Pred::slt, row, qlen_);
    Value qBase = add(mul(bIdx_, iqsb_), mul(sel(inRange, row, ci(0)), iqsl_));
    copyIndexerRowsSwizzled(tiles, ci(0), BM_, r * headRows, iq_, qBase, headRows,
                            sel(inRange, ci(indexer_->heads), ci(0)), iqsh_);
  }
  // w[b, t, j] of the lane's columns 8 jb + 2 (lane % 4) + e: row
  // 8 jb / headRows, head the rest (0 past the heads and past qlen).
  const int64_t blocks = BM_ / 8;
  SmallVector<Value> w;
  for (int64_t jb = 0; jb < blocks; ++jb)
    for (int64_t e = 0; e < 2; ++e) {
      const int64_t r = 8 * jb / headRows;
      Value row = add(rowBase_, ci(r));
      Value head = add(ci(8 * jb - r * headRows + e), mul(inQuad_, ci(2)));
      Value valid = andB(cmpI(Pred::slt, row, qlen_), cmpI(Pred::slt, head, ci(indexer_->heads)));
      Value at = sel(valid, add(add(mul(bIdx_, iwsb_), mul(row, iwsl_)), head), ci(0));
      w.push_back(sel(valid, memref::LoadOp::create(b_, loc_, iw_, ValueRange{toIndex(at)}).getResult(), cf(0)));
    }

  Value first, last;
  std::tie(first, last) = visitRange();
  auto kTileOffset = [&](Value i) { // tile first + i's buffer
    return add(ci(qBytes), mul(arith::RemSIOp::create(b_, loc_, i, ci(kIndexerStages)), ci(kTileBytes)));
  };
  // Tile first + i's copies (none past the last tile), one commit group.
  auto issueTile = [&](Value i) {
    Value n = add(first, i);
    auto ifIn = scf::IfOp::create(b_, loc_, TypeRange{}, cmpI(Pred::sle, n, last), false);
    {
      OpBuilder::InsertionGuard g(b_);
      b_.setInsertionPointToStart(&ifIn.getThenRegion().front());
      copyIndexerRowsSwizzled(tiles, kTileOffset(i), BN_, 0, ik_, add(mul(bIdx_, iksb_), mul(mul(n, ci(BN_)), iksl_)),
                              BN_, sub(klen_, mul(n, ci(BN_))), iksl_);
    }
    NVVM::CpAsyncCommitGroupOp::create(b_, loc_);
  };
  for (int64_t i = 0; i + 1 < kIndexerStages; ++i)
    issueTile(ci(i)); // the first with Q's copies
  const WgmmaInput input = indexer_->dtype == "fp8"    ? WgmmaInput::E4M3
                           : indexer_->dtype == "bf16" ? WgmmaInput::BF16
                                                       : WgmmaInput::F16;
  auto loop = scf::ForOp::create(b_, loc_, toIndex(first), toIndex(add(last, ci(1))), cidx(1));
  OpBuilder::InsertionGuard g(b_);
  b_.setInsertionPointToStart(loop.getBody());
  Value n = toI64(loop.getInductionVar());
  Value i = sub(n, first);
  // Tile n has landed (the later groups may be in flight); the tensor cores
  // read it through the async proxy; every thread is past tile n - 1, whose
  // buffer the next copies refill.
  NVVM::CpAsyncWaitGroupOp::create(b_, loc_, kIndexerStages - 2);
  ptxStatement("fence.proxy.async.shared::cta;");
  barrier();
  issueTile(add(i, ci(kIndexerStages - 1)));
  auto [visit, needMask] = classifyTile(n);
  auto ifVisit = scf::IfOp::create(b_, loc_, TypeRange{}, visit, true);
  b_.setInsertionPointToStart(&ifVisit.getThenRegion().front());
  SmallVector<Value> acc = wgmmaKMajor(add(smemBase_, kTileOffset(i)), BN_, smemBase_, BM_, rowBytes, input,
                                       /*stepsInAsm=*/false);
  indexerScoresWgmma(n, acc, wsRows, needMask, w);
  b_.setInsertionPointToStart(&ifVisit.getElseRegion().front());
  writeExcludedTile(n, wsRows);
  // No copy outlives the CTA (without tiles to visit, Q's were never waited for).
  b_.setInsertionPointAfter(loop);
  NVVM::CpAsyncWaitGroupOp::create(b_, loc_, 0);
}

/// Key tile n's scores from its accumulators (the header): the lane's two
/// keys of the row its quad position picks.
void KernelEmitter::indexerScoresWgmma(Value n, ArrayRef<Value> acc, ArrayRef<Value> wsRows, Value needMask,
                                       ArrayRef<Value> w) {
  static_assert(kSelectRows == 4, "the quad's reduce-scatter leaves one row a lane");
  const int64_t rows = kSelectRows, blocksPerRow = BM_ / rows / 8;
  // partial[half][r]: key lane / 4 + 8 half against row r, over the lane's heads.
  Value partial[2][kSelectRows];
  for (int64_t half = 0; half < 2; ++half)
    for (int64_t r = 0; r < rows; ++r) {
      Value sum = cf(0);
      for (int64_t jb = r * blocksPerRow; jb < (r + 1) * blocksPerRow; ++jb)
        for (int64_t e = 0; e < 2; ++e)
          sum = LLVM::FMAOp::create(b_, loc_, maxF(acc[4 * jb + 2 * half + e], cf(0)), w[2 * jb + e], sum);
      partial[half][r] = sum;
    }
  // Reduce-scatter over the quad: lanes differing in bit 0 trade rows
  // {0, 1} against {2, 3}, then those differing in bit 1 the two left.
  auto shuffleXor = [&](Value v, int32_t mask) {
    return gpu::ShuffleOp::create(b_, loc_, v, mask, 32, gpu::ShuffleMode::XOR).getShuffleResult();
  };
  Value bit0 = cmpI(Pred::ne, arith::AndIOp::create(b_, loc_, inQuad_, ci(1)), ci(0));
  Value bit1 = cmpI(Pred::ne, arith::AndIOp::create(b_, loc_, inQuad_, ci(2)), ci(0));
  Value mine[2];
  for (int64_t half = 0; half < 2; ++half) {
    Value pair[2];
    for (int64_t k = 0; k < 2; ++k) {
      Value keep = sel(bit0, partial[half][2 + k], partial[half][k]);
      Value send = sel(bit0, partial[half][k], partial[half][2 + k]);
      pair[k] = addF(keep, shuffleXor(send, 1));
    }
    mine[half] = addF(sel(bit1, pair[1], pair[0]), shuffleXor(sel(bit1, pair[0], pair[1]), 2));
  }
  Value r = add(mul(arith::AndIOp::create(b_, loc_, inQuad_, ci(1)), ci(2)),
                arith::ShRUIOp::create(b_, loc_, arith::AndIOp::create(b_, loc_, inQuad_, ci(2)), ci(1)));
  Value wsRow = wsRows[0];
  for (int64_t k = 1; k < rows; ++k)
    wsRow = sel(cmpI(Pred::eq, r, ci(k)), wsRows[k], wsRow);
  Value row = add(rowBase_, r);
  Value q = add(row, qOff_);
  for (int64_t half = 0; half < 2; ++half) {
    Value key = add(add(mul(n, ci(BN_)), mul(warp_, ci(16))), add(quad_, ci(8 * half)));
    auto ifIn = scf::IfOp::create(b_, loc_, TypeRange{},
                                  andB(cmpI(Pred::slt, key, klen_), cmpI(Pred::slt, row, qlen_)), false);
    OpBuilder::InsertionGuard g(b_);
    b_.setInsertionPointToStart(&ifIn.getThenRegion().front());
    Value ordered = sel(allowedAt(q, key, needMask), orderedKey(mine[half]), ci32(0));
    memref::StoreOp::create(b_, loc_, ordered, workspace_, ValueRange{toIndex(add(wsRow, key))});
  }
}

} // namespace attnc::flash

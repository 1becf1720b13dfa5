//===- TileCompute.cpp - The tile ops of one key tile on tensor cores ---===//
//
// The mma.sync lowering of attn.tile.qk (ldmatrix + mma.sync m16n8k16),
// attn.tile.score (scale and score rule), attn.tile.mask (partial tiles),
// attn.tile.rescale (lazily, by a warp vote), attn.tile.exp (exp2 on the
// SFU), attn.tile.pv (P kept in registers as the A operand), and over a
// selection the gathered K/V rows and `mask by selection`. Register
// layouts follow PTX's m16n8k16 fragments (AccLayout in KernelEmitter.h):
// lane t holds rows t/4 and t/4 + 8 of each 16-row m-tile and columns
// 2*(t%4) + {0, 1} of each 8-wide column block.
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
// Tensor-core fragments.
//===----------------------------------------------------------------------===//
/// The mma operands in an ldmatrix result vector<regs x 2 x elem>.
SmallVector<Value> KernelEmitter::operandsOf(Value fragment, int64_t regs) {
  SmallVector<Value> out;
  for (int64_t i = 0; i < regs; ++i) {
    Value pair = vector::ExtractOp::create(b_, loc_, fragment, ArrayRef<int64_t>{i});
    if (bf16_) {
      Value asInt = vector::BitCastOp::create(b_, loc_, VectorType::get({1}, i32_), pair);
      pair = vector::ExtractOp::create(b_, loc_, asInt, ArrayRef<int64_t>{0});
    }
    out.push_back(pair);
  }
  return out;
}

/// Two fp32 values as one packed operand (2 x elem).
Value KernelEmitter::packPair(Value x, Value y) {
  Value v = vector::FromElementsOp::create(b_, loc_, VectorType::get({2}, f32_), ValueRange{x, y});
  Value t = arith::TruncFOp::create(b_, loc_, VectorType::get({2}, elem_), v);
  if (!bf16_)
    return t;
  Value asInt = vector::BitCastOp::create(b_, loc_, VectorType::get({1}, i32_), t);
  return vector::ExtractOp::create(b_, loc_, asInt, ArrayRef<int64_t>{0});
}

/// D = A B + C on one m16n8k16 tile; returns the four fp32 results.
SmallVector<Value> KernelEmitter::mma(ArrayRef<Value> a, ArrayRef<Value> bOps, ArrayRef<Value> c) {
  auto resType = LLVM::LLVMStructType::getLiteral(b_.getContext(), {f32_, f32_, f32_, f32_});
  NVVM::MMATypes t = bf16_ ? NVVM::MMATypes::bf16 : NVVM::MMATypes::f16;
  auto op = NVVM::MmaOp::create(b_, loc_, resType, a, bOps, c, ArrayRef<int64_t>{16, 8, 16}, std::nullopt,
                                std::nullopt, std::array<NVVM::MMATypes, 2>{t, t},
                                std::array<NVVM::MMALayout, 2>{NVVM::MMALayout::row, NVVM::MMALayout::col});
  SmallVector<Value> out;
  for (int64_t i = 0; i < 4; ++i)
    out.push_back(LLVM::ExtractValueOp::create(b_, loc_, op, ArrayRef<int64_t>{i}));
  return out;
}

/// For every m-tile: accum's 8-wide column blocks j and j+1 += A x B, where
/// `bOps` holds the B operands of both blocks (one ldmatrix.x4) and accum is
/// laid out as AccLayout{MT, blocks}.
void KernelEmitter::mmaBlockPair(ArrayRef<SmallVector<Value>> a, ArrayRef<Value> bOps, SmallVector<Value> &accum,
                                 int64_t blocks, int64_t j) {
  const AccLayout layout{MT_, blocks};
  for (int64_t mt = 0; mt < MT_; ++mt)
    for (int64_t h = 0; h < 2; ++h) {
      int64_t base = layout.index(mt, j + h, 0);
      SmallVector<Value> c(accum.begin() + base, accum.begin() + base + 4);
      SmallVector<Value> d = mma(a[mt], {bOps[2 * h], bOps[2 * h + 1]}, c);
      std::copy(d.begin(), d.end(), accum.begin() + base);
    }
}

/// Max or sum over the four lanes of a quad (the lanes sharing a row).
Value KernelEmitter::quadReduce(Value v, bool isMax) {
  for (int32_t offset : {1, 2}) {
    auto shfl = gpu::ShuffleOp::create(b_, loc_, v, offset, 32, gpu::ShuffleMode::XOR);
    v = isMax ? maxF(v, shfl.getShuffleResult()) : addF(v, shfl.getShuffleResult());
  }
  return v;
}


//===----------------------------------------------------------------------===//
// One key tile.
//===----------------------------------------------------------------------===//
/// The key of element e of column block j (absolute position): over a
/// selection, the key in that slot of the row's selection.
Value KernelEmitter::keyAt(Value colFirst, int64_t j, int64_t e) {
  Value col = add(colFirst, add(ci(j * 8 + (e & 1)), mul(inQuad_, ci(2))));
  return add(overSelection_ ? selectedKey(col) : col, kOff_);
}

/// The query head of element e of m-tile mt: the CTA's, or over a
/// selection (rows are heads) the row's; rows past the last head (padding,
/// never stored) read the last head's inputs, never past the tensor.
Value KernelEmitter::headAt(int64_t mt, int64_t e) {
  if (!overSelection_)
    return hIdx_;
  return minI(add(hIdx_, rows_[AccLayout::rowSlot(mt, e)]), sub(headsQ_, ci(1)));
}

/// Selection slot `slot` of this CTA's query row: a key column, or -1 when
/// the selection left it unfilled or it is past topk.
Value KernelEmitter::selectedKey(Value slot) {
  int64_t topk = *variant_.getTopk();
  Value inRange = cmpI(arith::CmpIPredicate::slt, slot, ci(topk));
  Value at = add(selBase_, sel(inRange, slot, ci(0)));
  Value key = arith::ExtSIOp::create(b_, loc_, i64_, memref::LoadOp::create(b_, loc_, indices_, ValueRange{toIndex(at)}));
  return sel(inRange, key, ci(-1));
}

/// K or V rows of the selected keys of tile n (slots n*BN ..) into `smem`,
/// 16 bytes per cp.async; unfilled slots and keys outside [0, klen) are
/// zero-filled.
SmallVector<Value> KernelEmitter::loadSelectedTile(Value smem, Value buf, Value global, Value base, Value n,
                                                   Value rowStride) {
  int64_t chunksPerRow = D_ / 8, perThread = BN_ * chunksPerRow / kThreads;
  SmallVector<Value> tokens;
  for (int64_t i = 0; i < perThread; ++i) {
    Value chunk = add(tid_, ci(i * kThreads));
    Value r = arith::DivUIOp::create(b_, loc_, chunk, ci(chunksPerRow));
    Value col = mul(arith::RemUIOp::create(b_, loc_, chunk, ci(chunksPerRow)), ci(8));
    Value key = selectedKey(add(mul(n, ci(BN_)), r));
    Value valid = andB(cmpI(arith::CmpIPredicate::sge, key, ci(0)), cmpI(arith::CmpIPredicate::slt, key, klen_));
    Value src = sel(valid, add(add(base, mul(key, rowStride)), col), ci(0));
    Value count = toIndex(sel(valid, ci(8), ci(0)));
    auto copy = nvgpu::DeviceAsyncCopyOp::create(b_, loc_, nvgpu::DeviceAsyncTokenType::get(b_.getContext()), smem,
                                                 tileIndex(buf, r, col, BN_), global, ValueRange{toIndex(src)},
                                                 b_.getIndexAttr(8), count, b_.getUnitAttr());
    tokens.push_back(copy);
  }
  return tokens;
}

/// Partial tiles over a selection: unfilled slots (and those past topk) -inf.
SmallVector<Value> KernelEmitter::maskBySelection(ArrayRef<Value> s, Value colFirst) {
  const int64_t nTilesN = BN_ / 8;
  const AccLayout layout = scoreLayout();
  SmallVector<Value> masked(s.begin(), s.end());
  for (int64_t j = 0; j < nTilesN; ++j)
    for (int64_t c = 0; c < 2; ++c) { // the lane's two columns of block j, for all its rows
      Value slot = add(colFirst, add(ci(j * 8 + c), mul(inQuad_, ci(2))));
      Value filled = cmpI(arith::CmpIPredicate::sge, selectedKey(slot), ci(0));
      for (int64_t mt = 0; mt < MT_; ++mt)
        for (int64_t e = c; e < 4; e += 2)
          masked[layout.index(mt, j, e)] = sel(filled, s[layout.index(mt, j, e)], negInf());
    }
  return masked;
}

/// The query of element e of m-tile mt (absolute position).
Value KernelEmitter::queryAt(int64_t mt, int64_t e) { return qPos_[AccLayout::rowSlot(mt, e)]; }

/// attn.tile.qk: S = Q K^T for the key tile in `k`, fp32 in scoreLayout().
SmallVector<Value> KernelEmitter::scoresQK(SharedTile q, SharedTile k) {
  const int64_t nTilesN = BN_ / 8, kChunksD = D_ / 16;
  auto frag4 = VectorType::get({4, 2}, elem_);
  Value Qs = q.smem, Ks = k.smem, buf = k.buf;
  SmallVector<Value> s(scoreLayout().size(), cf(0));
  for (int64_t kk = 0; kk < kChunksD; ++kk) {
    SmallVector<SmallVector<Value>> a;
    for (int64_t mt = 0; mt < MT_; ++mt) {
      // A: rows warp*16*MT + mt*16 + lane%16, columns kk*16 + (lane/16)*8.
      Value aRow = add(add(mul(warp_, ci(16 * MT_)), ci(mt * 16)), laneRow16_);
      Value aCol = add(ci(kk * 16), mul(laneHalf_, ci(8)));
      a.push_back(operandsOf(
          nvgpu::LdMatrixOp::create(b_, loc_, frag4, Qs, ValueRange{toIndex(aRow), toIndex(aCol)}, false, 4), 4));
    }
    for (int64_t j = 0; j < nTilesN; j += 2) {
      // B for column blocks j, j+1: key rows (j + lane/16)*8 + lane%8,
      // columns kk*16 + ((lane/8)%2)*8; one load serves every m-tile.
      Value bRow = add(mul(add(ci(j), laneHalf_), ci(8)), lane8_);
      Value bCol = add(ci(kk * 16), mul(laneOct_, ci(8)));
      SmallVector<Value> bo = operandsOf(
          nvgpu::LdMatrixOp::create(b_, loc_, frag4, Ks, ValueRange{buf, toIndex(bRow), toIndex(bCol)}, false, 4),
          4);
      mmaBlockPair(a, bo, s, nTilesN, j);
    }
  }
  return s;
}

/// Partial tiles of a mask solved into key intervals: per row, each
/// clause's [lo, hi] relative to the tile's first column (clamped, in i32),
/// then per element two compares against the column index.
SmallVector<Value> KernelEmitter::maskByIntervals(ArrayRef<Value> s, Value colFirst) {
  const int64_t nTilesN = BN_ / 8;
  const AccLayout layout = scoreLayout();
  SmallVector<Value> masked;
  Value tileStart = add(colFirst, kOff_);
  Value cols = arith::TruncIOp::create(b_, loc_, i32_, sub(minI(klen_, add(colFirst, ci(BN_))), colFirst));
  Value col0 = arith::TruncIOp::create(b_, loc_, i32_, mul(inQuad_, ci(2)));
  for (int64_t r = 0; r < 2 * MT_; ++r) {
    SmallVector<std::array<Value, 2>> bounds;
    for (const KeyClause &c : ki_.clauses) {
      IntervalEnv env = intervalEnv({qPos_[r], qPos_[r]}, {ci(0), ci(0)});
      IntervalCodegen gen(b_, loc_, env);
      Value lo = c.lo ? gen.emit(*c.lo).lo : ci(-analysis::kInf);
      Value hi = c.hi ? gen.emit(*c.hi).lo : ci(analysis::kInf);
      for (const analysis::TermPtr &row : c.rows) // a row that fails: an empty interval
        hi = sel(cmpI(arith::CmpIPredicate::eq, gen.emit(*row).lo, ci(1)), hi, ci(-analysis::kInf));
      auto rel = [&](Value v) {
        Value x = maxI(minI(sub(v, tileStart), ci(BN_)), ci(-1));
        return arith::TruncIOp::create(b_, loc_, i32_, x).getResult();
      };
      bounds.push_back({rel(lo), rel(hi)});
    }
    int64_t mt = r / 2, half = r % 2;
    for (int64_t j = 0; j < nTilesN; ++j)
      for (int64_t e = 2 * half; e < 2 * half + 2; ++e) {
        Value col = arith::AddIOp::create(b_, loc_, col0, ci32(j * 8 + (e & 1)));
        Value allowed = cmpI(arith::CmpIPredicate::slt, col, cols);
        Value any = cbool(false);
        for (auto &[lo, hi] : bounds)
          any = orB(any, andB(cmpI(arith::CmpIPredicate::sle, lo, col), cmpI(arith::CmpIPredicate::sle, col, hi)));
        masked.push_back(sel(andB(allowed, any), s[layout.index(mt, j, e)], negInf()));
      }
  }
  // `masked` is in (row, j, e) order; restore the (mt, j, e) layout.
  SmallVector<Value> ordered(s.size());
  size_t i = 0;
  for (int64_t r = 0; r < 2 * MT_; ++r)
    for (int64_t j = 0; j < nTilesN; ++j)
      for (int64_t e = 2 * (r % 2); e < 2 * (r % 2) + 2; ++e)
        ordered[layout.index(r / 2, j, e)] = masked[i++];
  return ordered;
}

/// Partial tiles of a mask with unsolved conditions: the mask region per element.
SmallVector<Value> KernelEmitter::maskByRegion(ArrayRef<Value> s, Value colFirst) {
  const int64_t nTilesN = BN_ / 8;
  const AccLayout layout = scoreLayout();
  SmallVector<Value> masked;
  for (int64_t mt = 0; mt < MT_; ++mt)
    for (int64_t j = 0; j < nTilesN; ++j)
      for (int64_t e = 0; e < 4; ++e) {
        Value k = keyAt(colFirst, j, e);
        Value inRange = cmpI(arith::CmpIPredicate::slt, sub(k, kOff_), klen_);
        Value allowed = andB(inRange, maskOf(queryAt(mt, e), k));
        masked.push_back(sel(allowed, s[layout.index(mt, j, e)], negInf()));
      }
  return masked;
}

/// attn.tile.rescale, lazily, rows r = 2 mt + half (elements e in {2 half,
/// 2 half + 1}): m moves (and acc and l are rescaled) only when some row of
/// the warp sees a maximum above m + kRescaleSlack, so P = 2^(x - m) stays
/// at most 2^kRescaleSlack; O = acc / l and LSE = m + log2 l are exact for
/// any m not below the true maximum minus the slack. `s` holds the scores
/// (times log2Scale in log2 units), `state` (m, l, acc); returns (m, l,
/// acc) after rescaling.
SmallVector<Value> KernelEmitter::rescale(ArrayRef<Value> s, ArrayRef<Value> state, double log2Scale,
                                          SmallVector<Value> *alpha, Value *rescaled) {
  const int64_t nTilesN = BN_ / 8, rowsPerThread = 2 * MT_;
  const AccLayout layout = scoreLayout(), acc = accLayout();
  SmallVector<Value> rowMax(rowsPerThread);
  Value anyRow = cbool(false);
  for (int64_t r = 0; r < rowsPerThread; ++r) {
    int64_t mt = r / 2, half = r % 2;
    Value mx = negInf();
    for (int64_t j = 0; j < nTilesN; ++j)
      for (int64_t e = 2 * half; e < 2 * half + 2; ++e)
        mx = maxF(mx, s[layout.index(mt, j, e)]);
    mx = quadReduce(mx, true);
    rowMax[r] = mulF(mx, cf(log2Scale));
    Value grows = arith::CmpFOp::create(b_, loc_, arith::CmpFPredicate::OGT, rowMax[r],
                                        addF(state[r], cf(kRescaleSlack)));
    anyRow = orB(anyRow, grows);
  }
  Value anyLane = NVVM::VoteSyncOp::create(b_, loc_, i1_, ci32(-1), anyRow, NVVM::VoteSyncKind::any);
  SmallVector<Value> carried(state.begin(), state.end()); // m, l, acc (deferred: m, l; then the factors)
  if (alpha)
    carried.append(rowsPerThread, cf(1));
  auto ifRescale = scf::IfOp::create(b_, loc_, TypeRange(ValueRange(carried)), anyLane, true);
  {
    OpBuilder::InsertionGuard g(b_);
    b_.setInsertionPointToStart(&ifRescale.getThenRegion().front());
    SmallVector<Value> out(carried);
    for (int64_t r = 0; r < rowsPerThread; ++r) {
      Value mNew = maxF(state[r], rowMax[r]);
      Value isInf = arith::CmpFOp::create(b_, loc_, arith::CmpFPredicate::OEQ, mNew, negInf());
      Value factor = exp2F(subF(state[r], sel(isInf, cf(0), mNew)));
      out[r] = mNew;
      out[rowsPerThread + r] = mulF(state[rowsPerThread + r], factor);
      if (alpha) {
        out[2 * rowsPerThread + r] = factor;
        continue;
      }
      for (int64_t i = 0; i < acc.size(); ++i)
        if (AccLayout::rowSlot(i / (acc.blocks * 4), i % 4) == r)
          out[2 * rowsPerThread + i] = mulF(state[2 * rowsPerThread + i], factor);
    }
    scf::YieldOp::create(b_, loc_, out);
    b_.setInsertionPointToStart(&ifRescale.getElseRegion().front());
    scf::YieldOp::create(b_, loc_, carried);
  }
  SmallVector<Value> results(ifRescale.getResults());
  if (alpha) {
    alpha->assign(results.begin() + 2 * rowsPerThread, results.end());
    results.resize(2 * rowsPerThread);
    *rescaled = anyLane;
  }
  return results;
}

/// The deferred half of a rescale (overlapped key loop): acc's rows times
/// their factors, where some lane's rows rescaled.
SmallVector<Value> KernelEmitter::scaleRows(ArrayRef<Value> acc, ArrayRef<Value> alpha, Value rescaled) {
  const AccLayout layout = accLayout();
  SmallVector<Value> carried(acc.begin(), acc.end());
  auto ifRescale = scf::IfOp::create(b_, loc_, TypeRange(ValueRange(carried)), rescaled, true);
  OpBuilder::InsertionGuard g(b_);
  b_.setInsertionPointToStart(&ifRescale.getThenRegion().front());
  SmallVector<Value> out(carried);
  for (int64_t i = 0; i < layout.size(); ++i)
    out[i] = mulF(carried[i], alpha[AccLayout::rowSlot(i / (layout.blocks * 4), i % 4)]);
  scf::YieldOp::create(b_, loc_, out);
  b_.setInsertionPointToStart(&ifRescale.getElseRegion().front());
  scf::YieldOp::create(b_, loc_, carried);
  return SmallVector<Value>(ifRescale.getResults());
}

/// attn.tile.exp: `s` becomes P = 2^(s log2Scale - m) (a row at -inf takes
/// m as 0); returns the lane's partial row sums of P (one per row slot).
SmallVector<Value> KernelEmitter::expTile(SmallVector<Value> &s, ArrayRef<Value> m, double log2Scale) {
  const int64_t nTilesN = BN_ / 8, rowsPerThread = 2 * MT_;
  const AccLayout layout = scoreLayout();
  SmallVector<Value> negM(rowsPerThread);
  SmallVector<Value> rowSum(rowsPerThread, cf(0));
  for (int64_t r = 0; r < rowsPerThread; ++r) {
    Value isInf = arith::CmpFOp::create(b_, loc_, arith::CmpFPredicate::OEQ, m[r], negInf());
    negM[r] = sel(isInf, cf(0), arith::NegFOp::create(b_, loc_, m[r]));
  }
  for (int64_t mt = 0; mt < MT_; ++mt)
    for (int64_t j = 0; j < nTilesN; ++j)
      for (int64_t e = 0; e < 4; ++e) {
        int64_t r = AccLayout::rowSlot(mt, e);
        Value &x = s[layout.index(mt, j, e)];
        x = exp2F(LLVM::FMAOp::create(b_, loc_, x, cf(log2Scale), negM[r]));
        rowSum[r] = addF(rowSum[r], x);
      }
  return rowSum;
}

/// acc += P V: P's C fragments of column blocks 2c, 2c+1 are the A fragment
/// of k-step c; V^T comes from ldmatrix.trans, one load per two column blocks
/// of O serving every m-tile.
void KernelEmitter::accumulatePV(ArrayRef<Value> p, SharedTile v, SmallVector<Value> &acc) {
  const int64_t nTilesD = D_ / 8, kChunksN = BN_ / 16;
  const AccLayout layout = scoreLayout();
  auto frag4 = VectorType::get({4, 2}, elem_);
  Value Vs = v.smem, buf = v.buf;
  for (int64_t c = 0; c < kChunksN; ++c) {
    SmallVector<SmallVector<Value>> a;
    for (int64_t mt = 0; mt < MT_; ++mt) {
      auto P = [&](int64_t j, int64_t e) { return p[layout.index(mt, j, e)]; };
      a.push_back({packPair(P(2 * c, 0), P(2 * c, 1)), packPair(P(2 * c, 2), P(2 * c, 3)),
                   packPair(P(2 * c + 1, 0), P(2 * c + 1, 1)), packPair(P(2 * c + 1, 2), P(2 * c + 1, 3))});
    }
    for (int64_t t = 0; t < nTilesD; t += 2) {
      // Key rows 16c + lane%8 + ((lane/8)%2)*8, columns (t + lane/16)*8.
      Value vRow = add(ci(16 * c), add(lane8_, mul(laneOct_, ci(8))));
      Value vCol = mul(add(ci(t), laneHalf_), ci(8));
      SmallVector<Value> bo = operandsOf(
          nvgpu::LdMatrixOp::create(b_, loc_, frag4, Vs, ValueRange{buf, toIndex(vRow), toIndex(vCol)}, true, 4),
          4);
      mmaBlockPair(a, bo, acc, nTilesD, t);
    }
  }
}

/// attn.tile.score: S * scale, the score rule if any, then log2 e, per
/// element (the scores are then in log2 units). With `slopes` (a score rule
/// only), also the rule's derivative at each element.
void KernelEmitter::applyScore(SmallVector<Value> &s, double scale, Value colFirst, SmallVector<Value> *slopes) {
  const int64_t nTilesN = BN_ / 8;
  const AccLayout layout = scoreLayout();
  bool hasScore = !variant_.getScore().empty();
  if (slopes)
    slopes->assign(s.size(), Value());
  for (int64_t mt = 0; mt < MT_; ++mt)
    for (int64_t j = 0; j < nTilesN; ++j)
      for (int64_t e = 0; e < 4; ++e) {
        int64_t i = layout.index(mt, j, e);
        Value &x = s[i];
        if (!hasScore) {
          x = mulF(x, cf(scale * kLog2e));
        } else if (slopes) {
          auto [y, dy] = scoreAndSlopeOf(mulF(x, cf(scale)), queryAt(mt, e), keyAt(colFirst, j, e), headAt(mt, e));
          x = mulF(y, cf(kLog2e));
          (*slopes)[i] = dy;
        } else {
          x = mulF(scoreOf(mulF(x, cf(scale)), queryAt(mt, e), keyAt(colFirst, j, e), headAt(mt, e)), cf(kLog2e));
        }
      }
}

/// attn.tile.mask: when needMask, the mask on every element, else s as is.
SmallVector<Value> KernelEmitter::maskTile(ArrayRef<Value> s, Value needMask, attn::MaskKind by, Value colFirst) {
  auto ifMask = scf::IfOp::create(b_, loc_, TypeRange(ValueRange(s)), needMask, true);
  {
    OpBuilder::InsertionGuard g(b_);
    b_.setInsertionPointToStart(&ifMask.getThenRegion().front());
    scf::YieldOp::create(b_, loc_,
                         by == attn::MaskKind::selection ? maskBySelection(s, colFirst)
                         : by == attn::MaskKind::region  ? maskByRegion(s, colFirst)
                                                         : maskByIntervals(s, colFirst));
    b_.setInsertionPointToStart(&ifMask.getElseRegion().front());
    scf::YieldOp::create(b_, loc_, s);
  }
  return SmallVector<Value>(ifMask.getResults());
}

} // namespace attnc::flash

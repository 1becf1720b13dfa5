//===- WgmmaCompute.cpp - S = Q K^T and O += P V on warpgroup MMAs -------===//
//
// The wgmma path of attn.tile.qk and attn.tile.pv (sm_90a), taken when
// EmitterParams::wgmma is set. Each warpgroup (4 consecutive warps) owns 64
// query rows; warp w of it the 16 rows 16 w .. 16 w + 15, so the wgmma
// accumulator of an m64nN tile is AccLayout{1, N / 8} in each thread (lane t:
// rows t/4 and t/4 + 8, columns 8 j + 2 (t % 4) + {0, 1}) and every softmax
// step of TileCompute.cpp applies unchanged.
//
// Shared memory: each tile of R rows and D columns (D a multiple of 64) is
// D / 64 column chunks of R rows x 128 bytes, each row's eight 16-byte
// pieces permuted by XOR with (row % 8): the 128-byte swizzle that TMA
// writes and wgmma reads (the tiles start 1024-byte aligned).
//   S = Q K^T: both operands K-major from shared memory; the descriptor of
//     k-step kk (16 columns) starts at chunk kk / 4, byte 32 (kk % 4) of the
//     row; 8-row groups 1024 bytes apart.
//   O += P V: P from registers (the m16n8k16 A fragment, per warp), V
//     N-major (transposed B): the descriptor of key step c starts at row
//     16 c; column chunks R x 128 bytes apart, 8-row groups 1024 bytes apart.
// Checked on the H200 against a float64 product before use (the layouts,
// both descriptors and the register A operand).
//
// MLIR 22's nvvm.wgmma.mma_async takes no register A operand (llvm-project
// issue 133733), and a chain of wgmmas must not let anything touch its
// accumulators between issue and wait: each GEMM is therefore one inline
// PTX block (fence, the k-steps, commit, wait).
//
//===----------------------------------------------------------------------===//
#include "KernelEmitter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include <string>

using namespace mlir;

namespace attnc::flash {

namespace {
constexpr int64_t kSwizzleBytes = 128;                   ///< one row of a column chunk
constexpr int64_t kChunkCols = kSwizzleBytes / 2;        ///< 64 16-bit elements
constexpr int64_t kGroupBytes = 8 * kSwizzleBytes;       ///< 8 rows: the swizzle's period
constexpr int64_t kMaxPvN = 128;                         ///< O columns per wgmma block (64 accumulators)

/// "{$first, $first+1, ..., $first+n-1}".
std::string operandList(int64_t first, int64_t n) {
  std::string s = "{";
  for (int64_t i = 0; i < n; ++i)
    s += (i ? ", $" : "$") + std::to_string(first + i);
  return s + "}";
}
} // namespace

/// Element (row, col) of a swizzled tile of `rows` rows.
Value KernelEmitter::swizzledIndex(Value row, Value col, int64_t rows) {
  auto shr = [&](Value v, int64_t bits) { return Value(arith::ShRUIOp::create(b_, loc_, v, ci(bits))); };
  auto andI = [&](Value v, int64_t mask) { return Value(arith::AndIOp::create(b_, loc_, v, ci(mask))); };
  Value piece = shr(col, 3); // 16-byte pieces
  Value chunk = shr(piece, 3), inChunk = andI(piece, 7);
  Value swizzled = arith::XOrIOp::create(b_, loc_, inChunk, andI(row, 7));
  return add(add(mul(chunk, ci(rows * kChunkCols)), mul(row, ci(kChunkCols))),
             add(mul(swizzled, ci(8)), andI(col, 7)));
}

/// The shared address of tile `t` (its buffer, if double-buffered), which
/// starts `offsetBytes` after the Q tile, each buffer `tileBytes` long.
Value KernelEmitter::tileAddress(SharedTile t, int64_t offsetBytes, int64_t tileBytes) {
  Value a = add(smemBase_, ci(offsetBytes));
  if (t.buf)
    a = add(a, mul(toI64(t.buf), ci(tileBytes)));
  return a;
}

/// A wgmma shared-memory matrix descriptor: start address, leading and
/// stride byte offsets (each in 16-byte units, 14 bits), 128-byte swizzle.
Value KernelEmitter::wgmmaDescriptor(Value address, int64_t leadingBytes, int64_t strideBytes) {
  Value start = arith::AndIOp::create(b_, loc_, arith::ShRUIOp::create(b_, loc_, address, ci(4)), ci(0x3FFF));
  int64_t fixed = ((leadingBytes >> 4) << 16) | ((strideBytes >> 4) << 32) | (int64_t(1) << 62);
  return arith::OrIOp::create(b_, loc_, start, ci(fixed));
}

/// One PTX statement with no operands and side effects (a fence).
void KernelEmitter::ptxStatement(StringRef code) {
  LLVM::InlineAsmOp::create(b_, loc_, TypeRange{}, ValueRange{}, code, "", /*has_side_effects=*/true,
                            /*is_align_stack=*/false, LLVM::tailcallkind::TailCallKind::None,
                            LLVM::AsmDialectAttr(), ArrayAttr());
}

/// Two fp32 values as one 32-bit register of two 16-bit elements.
Value KernelEmitter::packPairI32(Value x, Value y) {
  Value p = packPair(x, y); // i32 for bf16, vector<2xf16> for fp16
  if (p.getType() == i32_)
    return p;
  Value asInt = vector::BitCastOp::create(b_, loc_, VectorType::get({1}, i32_), p);
  return vector::ExtractOp::create(b_, loc_, asInt, ArrayRef<int64_t>{0});
}

/// The end of a wgmma chain's PTX block: commit, and wait unless the
/// ping-pong hand-over or the overlapped softmax comes between (then
/// waitWgmma waits).
std::string KernelEmitter::chainEnd() const {
  return pingPong() || params_.overlap ? "wgmma.commit_group.sync.aligned;\n}"
                    : "wgmma.commit_group.sync.aligned;\nwgmma.wait_group.sync.aligned 0;\n}";
}

/// attn.tile.qk: this warpgroup's 64 rows of S = Q K^T, m64n{BN}k16 per 16
/// columns of the head dim, in scoreLayout().
SmallVector<Value> KernelEmitter::scoresQKWgmma(SharedTile q, SharedTile k) {
  SmallVector<Value> s = issueScoresQK(q, k);
  if (pingPong()) { // the other warpgroup's turn while this chain runs
    passTurn(Value());
    s = waitWgmma(s);
  }
  return s;
}

SmallVector<Value> KernelEmitter::issueScoresQK(SharedTile q, SharedTile k) {
  Value warpgroup = computeWarpgroup();
  Value qTile = qOffset_ ? add(tileAddress(q, 0, 0), qOffset_) : tileAddress(q, 0, 0); // persistent: its Q slot
  Value qAddr = add(qTile, mul(warpgroup, ci(64 * kSwizzleBytes)));
  Value kAddr = tileAddress(k, kOffsetBytes(), kvTileBytes());
  // Overlapped, the chain's descriptors would live beside two tiles of
  // accumulators and P: the k-steps' offsets are added in the PTX.
  return wgmmaABt(qAddr, BM_, kAddr, /*stepsInAsm=*/params_.overlap);
}

/// Operand `o`'s descriptor at k-step `step` of a chain's PTX block,
/// stepBytes past step 0's address: its own 64-bit operand (pushed to
/// `operands`: number o.firstOperand + step * o.stride), or with stepsInAsm
/// past step 0, step 0's operand plus the offset, added in the PTX into
/// register o.reg (the start address is the descriptor's low field, in
/// 16-byte units, and stays below its 14 bits inside shared memory).
std::string KernelEmitter::stepDescriptor(const ChainOperand &o, int64_t step, int64_t stepBytes, bool stepsInAsm,
                                          SmallVector<Value> &operands, std::string &asmText) {
  if (!stepsInAsm || step == 0) {
    operands.push_back(wgmmaDescriptor(add(o.base, ci(stepBytes)), o.leadingBytes, kGroupBytes));
    return "$" + std::to_string(o.firstOperand + (stepsInAsm ? 0 : step * o.stride));
  }
  asmText += std::string("add.s64 ") + o.reg + ", $" + std::to_string(o.firstOperand) + ", " +
             std::to_string(stepBytes >> 4) + ";\n";
  return o.reg;
}

/// A B^T for the 64 rows of A at shared address aAddr (a swizzled tile of
/// aRows rows, this warpgroup's rows first) against the BN_ rows of B at
/// bAddr, both K-major over the head dim: BN_ / 2 fp32 a thread in
/// scoreLayout() (the forward's S = Q K^T; the gradient kernels' S, dP and
/// their transposes).
SmallVector<Value> KernelEmitter::wgmmaABt(Value aAddr, int64_t aRows, Value bAddr, bool stepsInAsm) {
  return wgmmaKMajor(aAddr, aRows, bAddr, BN_, 2 * D_, bf16_ ? WgmmaInput::BF16 : WgmmaInput::F16, stepsInAsm);
}

/// A B^T for the 64 rows of A at shared address aAddr (a swizzled tile of
/// aRows rows) against the bRows rows of B at bAddr, both K-major with
/// rowBytes bytes a row (a multiple of 128: rowBytes / 128 column chunks):
/// bRows / 2 fp32 a thread (AccLayout{1, bRows / 8}). A k-step is 32 bytes of
/// the row: 16 elements of 16 bits (k16), 32 of e4m3 (k32).
/// With stepsInAsm, the block takes only the first k-step's two descriptors
/// and adds each later step's offset to them inside the PTX (stepDescriptor):
/// 2 live 64-bit registers instead of 2 D / 16 (at head dim 256, 64
/// registers), which the gradient kernels' two accumulators cannot spare.
/// Else one descriptor operand a step (the forward kernels, as measured).
SmallVector<Value> KernelEmitter::wgmmaKMajor(Value aAddr, int64_t aRows, Value bAddr, int64_t bRows,
                                              int64_t rowBytes, WgmmaInput input, bool stepsInAsm) {
  const int64_t n = bRows / 2, steps = rowBytes / 32;
  // The shape's k and the types; 16-bit inputs take the (K-major) transpose flags too.
  const char *shape = input == WgmmaInput::E4M3 ? "k32" : "k16";
  const char *types = input == WgmmaInput::E4M3  ? ".f32.e4m3.e4m3"
                      : input == WgmmaInput::BF16 ? ".f32.bf16.bf16"
                                                  : ".f32.f16.f16";
  const char *flags = input == WgmmaInput::E4M3 ? ", p, 1, 1;\n" : ", p, 1, 1, 0, 0;\n";
  auto offsets = [&](int64_t kk) { // bytes from step 0's A and B rows to step kk's
    int64_t inRow = (kk % 4) * 32; // 32 bytes of the 128-byte row
    return std::pair<int64_t, int64_t>{(kk / 4) * aRows * kSwizzleBytes + inRow, (kk / 4) * bRows * kSwizzleBytes + inRow};
  };
  SmallVector<Value> operands;
  std::string asmText = "{\n.reg .pred p;\nsetp.ne.b32 p, 0, 0;\nwgmma.fence.sync.aligned;\n";
  if (stepsInAsm)
    asmText += ".reg .b64 da, db;\n";
  // A's and B's descriptors alternate after the accumulators.
  const ChainOperand a{aAddr, 16, n, 2, "da"}, b{bAddr, 16, n + 1, 2, "db"};
  for (int64_t kk = 0; kk < steps; ++kk) {
    auto [aOffset, bOffset] = offsets(kk);
    std::string descA = stepDescriptor(a, kk, aOffset, stepsInAsm, operands, asmText);
    std::string descB = stepDescriptor(b, kk, bOffset, stepsInAsm, operands, asmText);
    if (kk == 1)
      asmText += "setp.eq.b32 p, 0, 0;\n"; // accumulate from the second step on
    asmText += "wgmma.mma_async.sync.aligned.m64n" + std::to_string(bRows) + shape + types + " " + operandList(0, n) +
               ", " + descA + ", " + descB + flags;
  }
  asmText += chainEnd();
  std::string constraints;
  for (int64_t i = 0; i < n; ++i)
    constraints += "=f,";
  for (size_t i = 0; i < operands.size(); ++i)
    constraints += i + 1 < operands.size() ? "l," : "l";
  SmallVector<Type> fields(n, f32_);
  auto resType = LLVM::LLVMStructType::getLiteral(b_.getContext(), fields);
  auto op = LLVM::InlineAsmOp::create(b_, loc_, resType, operands, asmText, constraints, /*has_side_effects=*/true,
                                      /*is_align_stack=*/false, LLVM::tailcallkind::TailCallKind::None,
                                      LLVM::AsmDialectAttr(), ArrayAttr());
  SmallVector<Value> s;
  for (int64_t i = 0; i < n; ++i)
    s.push_back(LLVM::ExtractValueOp::create(b_, loc_, op.getResult(0), ArrayRef<int64_t>{i}));
  return s;
}

/// Ping-pong and the overlapped key loop: waits for this warpgroup's
/// committed chains but the last `pending`, the accumulators tied through
/// (nothing may touch them in between), and the A registers of a chain
/// still running (`keepAlive`) read by the wait, so that nothing reuses
/// them before.
SmallVector<Value> KernelEmitter::waitWgmma(ArrayRef<Value> acc, int64_t pending, ValueRange keepAlive) {
  const int64_t n = acc.size();
  std::string constraints;
  for (int64_t i = 0; i < n; ++i)
    constraints += "=f,";
  for (int64_t i = 0; i < n; ++i)
    constraints += std::to_string(i) + (i + 1 < n ? "," : "");
  for (size_t i = 0; i < keepAlive.size(); ++i)
    constraints += ",r";
  SmallVector<Value> operands(acc.begin(), acc.end());
  llvm::append_range(operands, keepAlive);
  SmallVector<Type> fields(n, f32_);
  auto resType = LLVM::LLVMStructType::getLiteral(b_.getContext(), fields);
  const std::string wait = "wgmma.wait_group.sync.aligned " + std::to_string(pending) + ";";
  auto op = LLVM::InlineAsmOp::create(b_, loc_, resType, operands, wait, constraints, /*has_side_effects=*/true,
                                      /*is_align_stack=*/false, LLVM::tailcallkind::TailCallKind::None,
                                      LLVM::AsmDialectAttr(), ArrayAttr());
  SmallVector<Value> out;
  for (int64_t i = 0; i < n; ++i)
    out.push_back(LLVM::ExtractValueOp::create(b_, loc_, op.getResult(0), ArrayRef<int64_t>{i}));
  return out;
}

/// attn.tile.pv: acc += P V for this warpgroup's rows, m64n{<=128}k16 per
/// 16 keys with P (scoreLayout(), fp32) packed into A fragments.
void KernelEmitter::accumulatePVWgmma(ArrayRef<Value> p, SharedTile v, SmallVector<Value> &acc) {
  wgmmaPB(p, [&] { return tileAddress(v, vOffsetBytes(), kvTileBytes()); }, acc);
  if (pingPong()) { // the other warpgroup's turn while the chains run
    passTurn(lastTile_);
    acc = waitWgmma(acc);
  }
}

/// acc += P B for this warpgroup's 64 rows: P (scoreLayout(), fp32, BN_
/// columns) from registers, B the BN_ x D swizzled tile at the shared
/// address bAddress() returns (asked for after P is packed), N-major (the
/// forward's O += P V; the gradient kernels' dQ += dS K, dV += P^T dO,
/// dK += dS^T Q).
void KernelEmitter::wgmmaPB(ArrayRef<Value> p, function_ref<Value()> bAddress, SmallVector<Value> &acc) {
  wgmmaPBPacked(packPOperands(p), bAddress, acc);
}

/// P (scoreLayout(), fp32) as the A registers of wgmmaPB: per 16 keys, the
/// m16n8k16 A fragment's 4 registers of two 16-bit elements.
SmallVector<Value> KernelEmitter::packPOperands(ArrayRef<Value> p) {
  const AccLayout layout = scoreLayout();
  SmallVector<Value> a; // 4 registers per key step
  for (int64_t c = 0; c < BN_ / 16; ++c) {
    auto P = [&](int64_t j, int64_t e) { return p[layout.index(0, j, e)]; };
    llvm::append_range(a, SmallVector<Value>{packPairI32(P(2 * c, 0), P(2 * c, 1)), packPairI32(P(2 * c, 2), P(2 * c, 3)),
                                             packPairI32(P(2 * c + 1, 0), P(2 * c + 1, 1)),
                                             packPairI32(P(2 * c + 1, 2), P(2 * c + 1, 3))});
  }
  return a;
}

int64_t KernelEmitter::pvChains() const { return D_ / std::min(D_, kMaxPvN); }

/// wgmmaPB on P's A registers (packPOperands), one chain (commit group) per
/// 128 columns of O.
void KernelEmitter::wgmmaPBPacked(ArrayRef<Value> a, function_ref<Value()> bAddress, SmallVector<Value> &acc) {
  const int64_t keySteps = BN_ / 16, pieceN = std::min(D_, kMaxPvN), pieces = D_ / pieceN, n = pieceN / 2;
  const char *types = bf16_ ? ".f32.bf16.bf16" : ".f32.f16.f16";
  Value vAddr = bAddress();
  for (int64_t piece = 0; piece < pieces; ++piece) {
    // Operands: n accumulators (tied to the outputs), the A registers, one
    // descriptor per key step; overlapped, only the first step's, the later
    // steps' offsets added in the PTX (as wgmmaABt's stepsInAsm: this chain
    // is issued beside the next tile's S).
    SmallVector<Value> operands(acc.begin() + piece * n, acc.begin() + (piece + 1) * n);
    llvm::append_range(operands, a);
    const int64_t firstA = 2 * n, firstDesc = firstA + 4 * keySteps;
    const bool stepsInAsm = params_.overlap;
    std::string asmText = "{\n.reg .pred p;\nsetp.eq.b32 p, 0, 0;\nwgmma.fence.sync.aligned;\n";
    if (stepsInAsm)
      asmText += ".reg .b64 dv;\n";
    const ChainOperand v{add(vAddr, ci((piece * pieceN / kChunkCols) * BN_ * kSwizzleBytes)), BN_ * kSwizzleBytes,
                         firstDesc, 1, "dv"};
    for (int64_t c = 0; c < keySteps; ++c) {
      std::string desc = stepDescriptor(v, c, c * 16 * kSwizzleBytes, stepsInAsm, operands, asmText);
      asmText += "wgmma.mma_async.sync.aligned.m64n" + std::to_string(pieceN) + "k16" + types + " " +
                 operandList(0, n) + ", " + operandList(firstA + 4 * c, 4) + ", " + desc + ", p, 1, 1, 1;\n";
    }
    asmText += chainEnd();
    std::string constraints;
    for (int64_t i = 0; i < n; ++i)
      constraints += "=f,";
    for (int64_t i = 0; i < n; ++i)
      constraints += std::to_string(i) + ",";
    for (int64_t i = 0; i < 4 * keySteps; ++i)
      constraints += "r,";
    const int64_t descriptors = stepsInAsm ? 1 : keySteps;
    for (int64_t c = 0; c < descriptors; ++c)
      constraints += c + 1 < descriptors ? "l," : "l";
    SmallVector<Type> fields(n, f32_);
    auto resType = LLVM::LLVMStructType::getLiteral(b_.getContext(), fields);
    auto op = LLVM::InlineAsmOp::create(b_, loc_, resType, operands, asmText, constraints, /*has_side_effects=*/true,
                                        /*is_align_stack=*/false, LLVM::tailcallkind::TailCallKind::None,
                                        LLVM::AsmDialectAttr(), ArrayAttr());
    for (int64_t i = 0; i < n; ++i)
      acc[piece * n + i] = LLVM::ExtractValueOp::create(b_, loc_, op.getResult(0), ArrayRef<int64_t>{i});
  }
}

} // namespace attnc::flash

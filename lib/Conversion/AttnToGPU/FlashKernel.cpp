//===- FlashKernel.cpp - Building the fused attention kernel --------------===//
//
// The kernel, top to bottom (one CTA = query tile m of head h, batch b):
//   1. positions and base offsets; Q tile -> shared memory (cp.async);
//   2. the key tiles to visit, from the key intervals' closed forms over this
//      tile's query positions (IntervalCodegen);
//   3. for each key tile in that range that is not empty (empty: skipped;
//      full: no mask; partial: mask per element): the next visited tile's K
//      and V stream into the other shared buffer (cp.async) while this one
//      is computed: S on tensor cores (ldmatrix + mma.sync), scale, score
//      rule, mask, online softmax in fp32 on exp2 (quad shuffles), O += P V
//      with P kept in registers as the A operand;
//   4. O / l and LSE = m + log(l) (empty rows: O = 0, LSE = -inf; a sink
//      starts every row with m = S_h, l = 1).
//
// Register layouts follow PTX's m16n8k16 fragments: lane t holds rows
// t/4 and t/4 + 8 of its warp's 16, and columns 2*(t%4) + {0, 1} of each
// 8-wide column block.
//
//===----------------------------------------------------------------------===//
#include "attnc/Conversion/FlashKernel.h"
#include "IntervalCodegen.h"

#include "attnc/Dialect/Attn/IR/AttnOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/IRMapping.h"

#include <cmath>
#include <functional>
#include <map>
#include <optional>

using namespace mlir;

namespace attnc {

// Tile sizes. Each warp owns block_m / 4 rows; its accumulator (block_m / 4
// x D fp32) and S (block_m / 4 x block_n) live in registers next to the
// per-row mask bounds, so they share the 255 registers a thread has. The
// largest tiles that do not spill (ptxas -v, which allocates differently for
// sm_80 and sm_90a), 128 rows meaning 32 a warp (each K/V fragment then feeds
// two mma):
//   sm_90a, d=64:  128 x 64;
//   sm_90a, d=128: 128 x 64 when the mask has at most two per-row key bounds
//                  and no unsolved condition; 128 x 32 with an unsolved
//                  condition and no score rule (documents); else 64 x 64;
//   sm_80, d<=128: 128 rows when the mask has at most one key bound, no score
//                  rule and no unsolved condition (128 x 64 at d=64, 128 x 32
//                  at d=128), else 64 x 64;
//   d=256: 64 x 32;
// and 64 x 32 with four CTAs an SM (128 registers, 52 KB of shared memory
// at d=128) at any d <= 128 for a narrow band (every clause within a few
// hundred keys of q, as ModernBERT's local layers): a query tile then visits
// a handful of key tiles, 64 rows waste fewer masked-out pairs, and the
// other CTAs hide each one's prologue and epilogue. Elsewhere one CTA an SM
// is enough: ptxas may use up to 255 registers rather than spill.
using analysis::KeyClause;

int64_t flashBlockM(int64_t headDim, const FlashPressure &p, bool hopper) {
  if (headDim > 128 || p.narrowBand)
    return 64;
  if (!hopper)
    return !p.scoreRule && !p.rest && p.keyBounds <= 1 ? 128 : 64;
  if (headDim <= 64)
    return 128;
  if (p.rest)
    return p.scoreRule ? 64 : 128;
  return p.keyBounds <= 2 ? 128 : 64;
}
int64_t flashBlockN(int64_t headDim, int64_t blockM, const FlashPressure &p, bool hopper) {
  if (headDim > 128 || p.narrowBand)
    return 32;
  if (headDim > 64 && blockM == 128 && (!hopper || p.rest))
    return 32;
  return 64;
}

int64_t flashCtasPerSm(int64_t headDim, const FlashPressure &p) { return headDim <= 128 && p.narrowBand ? 4 : 1; }

/// True if the term reads q and nothing else (no key, head, length or input).
static bool readsOnlyQuery(const analysis::Term &t) {
  using analysis::Var;
  return !t.readsInput() && !t.reads(Var::K) && !t.reads(Var::H) && !t.reads(Var::B) && !t.reads(Var::QLen) &&
         !t.reads(Var::KLen);
}

FlashPressure flashPressure(attn::VariantOp variant, const analysis::KeyIntervals &ki) {
  FlashPressure p;
  p.scoreRule = !variant.getScore().empty();
  p.rest = ki.hasRest();
  for (const KeyClause &c : ki.clauses)
    p.keyBounds += (c.lo ? 1 : 0) + (c.hi ? 1 : 0) + int64_t(c.rows.size());
  // A narrow band: every clause's [lo(q), hi(q)] no wider than
  // kNarrowBandKeys at sample positions (a tiling heuristic only).
  constexpr int64_t kNarrowBandKeys = 256;
  p.narrowBand = !ki.clauses.empty();
  for (const KeyClause &c : ki.clauses) {
    if (!c.lo || !c.hi || !readsOnlyQuery(*c.lo) || !readsOnlyQuery(*c.hi)) {
      p.narrowBand = false;
      continue;
    }
    for (int64_t q : {int64_t(0), int64_t(4097), int64_t(1) << 20}) {
      analysis::Box at;
      at.q = analysis::Range::point(q);
      p.narrowBand &= evalPoint(*c.hi, at) - evalPoint(*c.lo, at) < kNarrowBandKeys;
    }
  }
  return p;
}

namespace {

constexpr int64_t kWarps = 4, kThreads = 32 * kWarps;
constexpr double kRescaleSlack = 8.0;            ///< log2 units m may lag the row maximum (P <= 256)
constexpr int64_t kPad = 8;                       ///< elements of padding per shared row (bank conflicts)
constexpr int64_t kHugeLen = int64_t(1) << 40;    ///< static length of the flat global memrefs
constexpr double kLog2e = 1.4426950408889634;

using analysis::Term;

/// One input tensor the variant reads: its pointer and per-axis strides.
struct InputArg {
  std::string name;
  Value ptr;
  SmallVector<Value> strides;
  Type storage; ///< element type in memory (i8 for bool)
  Type value;   ///< element type the region reads
};

class KernelEmitter {
public:
  KernelEmitter(OpBuilder &b, attn::VariantOp variant, const analysis::KeyIntervals &ki, const KernelConfig &cfg)
      : b_(b), loc_(variant.getLoc()), variant_(variant), ki_(ki), cfg_(cfg) {
    D_ = cfg.headDim;
    FlashPressure pressure = flashPressure(variant, ki);
    BM_ = cfg.blockM ? cfg.blockM : flashBlockM(D_, pressure, cfg.hopper);
    BN_ = cfg.blockN ? cfg.blockN : flashBlockN(D_, BM_, pressure, cfg.hopper);
    ctasPerSm_ = cfg.ctasPerSm ? cfg.ctasPerSm : cfg.blockM ? 1 : flashCtasPerSm(D_, pressure);
    LD_ = D_ + kPad;
    MT_ = BM_ / (16 * kWarps);
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
        summaries_ |= readsToken(*r);
  }

  KernelInfo build(gpu::GPUModuleOp module);

private:
  OpBuilder &b_;
  Location loc_;
  attn::VariantOp variant_;
  const analysis::KeyIntervals &ki_;
  KernelConfig cfg_;
  int64_t D_, BM_, BN_, LD_, MT_; ///< MT_: 16-row m-tiles per warp
  KernelInfo info_;

  Type i1_, i32_, i64_, f32_, elem_, index_;
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

  // --- small helpers -----------------------------------------------------------
  Value ci(int64_t v) { return arith::ConstantIntOp::create(b_, loc_, i64_, v); }
  Value ci32(int64_t v) { return arith::ConstantIntOp::create(b_, loc_, i32_, v); }
  Value cidx(int64_t v) { return arith::ConstantIndexOp::create(b_, loc_, v); }
  Value cf(double v) { return arith::ConstantFloatOp::create(b_, loc_, cast<FloatType>(f32_), APFloat(float(v))); }
  Value cbool(bool v) { return arith::ConstantIntOp::create(b_, loc_, i1_, v); }
  Value add(Value a, Value x) { return arith::AddIOp::create(b_, loc_, a, x); }
  Value sub(Value a, Value x) { return arith::SubIOp::create(b_, loc_, a, x); }
  Value mul(Value a, Value x) { return arith::MulIOp::create(b_, loc_, a, x); }
  Value minI(Value a, Value x) { return arith::MinSIOp::create(b_, loc_, a, x); }
  Value maxI(Value a, Value x) { return arith::MaxSIOp::create(b_, loc_, a, x); }
  Value cmpI(arith::CmpIPredicate p, Value a, Value x) { return arith::CmpIOp::create(b_, loc_, p, a, x); }
  Value sel(Value c, Value a, Value x) { return arith::SelectOp::create(b_, loc_, c, a, x); }
  Value andB(Value a, Value x) { return arith::AndIOp::create(b_, loc_, a, x); }
  Value orB(Value a, Value x) { return arith::OrIOp::create(b_, loc_, a, x); }
  Value notB(Value a) { return arith::XOrIOp::create(b_, loc_, a, cbool(true)); }
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
  SmallVector<Value> loadTile(Value smem, Value buf, int64_t rows, Value global, Value base, Value rowStart,
                              Value rowLimit, Value rowStride);
  Value nextVisited(Value n, Value last);
  void computeTile(Value n, Value needMask, Value buf, ArrayRef<Value> state, SmallVector<Value> &next);
  void barrier() { gpu::BarrierOp::create(b_, loc_); }

  IntervalEnv intervalEnv(ValueRange64 q, ValueRange64 k, bool tokenRanges = false);
  std::pair<Value, Value> visitRange();
  std::pair<Value, Value> classifyTile(Value n, bool tokenRanges = false, std::optional<ValueRange64> rows = {});

  // Tile summaries: for masks whose unsolved conditions read inputs at token
  // positions (documents), each CTA classifies the key tiles of its visit
  // range up front, reading each tile's inputs for their minimum and
  // maximum, into two bitmaps in shared memory (visit, full).
  static constexpr int64_t kSummaryTiles = 32 * kThreads; ///< tiles per bitmap
  bool summaries_ = false;
  Value visitBits_, fullBits_, windowFirst_;
  std::map<std::string, ValueRange64> qRanges_;
  ValueRange64 tokenRange(const Term &read, Value posLo, Value posHi);
  void computeQRanges();
  void fillSummaries(Value first, Value last);
  Value summaryBit(Value bits, Value n);

  SmallVector<Value> operandsOf(Value fragment, int64_t regs);
  SmallVector<Value> mma(ArrayRef<Value> a, ArrayRef<Value> bOps, ArrayRef<Value> c);
  void mmaBlockPair(ArrayRef<SmallVector<Value>> a, ArrayRef<Value> bOps, SmallVector<Value> &accum, int64_t blocks,
                    int64_t j);
  Value packPair(Value x, Value y);
  Value quadReduce(Value v, bool isMax);

  Value inlineRegion(Region &region, ArrayRef<Value> args);
  Value lowerMath(Operation &op, IRMapping &map);
  Value readInput(attn::ReadOp read, ArrayRef<Value> indices);
  Value scoreOf(Value s, Value q, Value k);
  Value maskOf(Value q, Value k);

  void emitBody();
};

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
  elem_ = cfg_.bf16 ? Type(b_.getBF16Type()) : Type(b_.getF16Type());

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
  if (variant_.getSink())
    arg("sinks", KernelArg::Ptr, globalType(f32_));

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
  auto func = gpu::GPUFuncOp::create(b_, loc_, cfg_.symbol, fnType);
  func->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), b_.getUnitAttr());
  func.setKnownBlockSizeAttr(b_.getDenseI32ArrayAttr({int32_t(kThreads), 1, 1}));
  func->setAttr(NVVM::NVVMDialect::getMinctasmAttrName(), b_.getI32IntegerAttr(ctasPerSm_));
  return func;
}

//===----------------------------------------------------------------------===//
// Block set-up: indices, base offsets, shared memory views.
//===----------------------------------------------------------------------===//
void KernelEmitter::setupBlock() {
  // Query tiles in reverse order: under a causal mask the last tiles visit
  // the most key tiles, and starting them first keeps the short ones for
  // the tail of the grid.
  Value tilesM = toI64(gpu::GridDimOp::create(b_, loc_, gpu::Dimension::x));
  mIdx_ = sub(sub(tilesM, ci(1)), toI64(gpu::BlockIdOp::create(b_, loc_, gpu::Dimension::x)));
  hIdx_ = toI64(gpu::BlockIdOp::create(b_, loc_, gpu::Dimension::y));
  bIdx_ = toI64(gpu::BlockIdOp::create(b_, loc_, gpu::Dimension::z));
  tid_ = toI64(gpu::ThreadIdOp::create(b_, loc_, gpu::Dimension::x));
  warp_ = arith::DivUIOp::create(b_, loc_, tid_, ci(32));
  lane_ = arith::RemUIOp::create(b_, loc_, tid_, ci(32));
  rowBase_ = mul(mIdx_, ci(BM_));
  q0_ = add(rowBase_, qOff_);
  q1_ = add(sub(minI(add(rowBase_, ci(BM_)), qlen_), ci(1)), qOff_);

  // Shared memory: the Q tile, and two buffers each of K and V (the next
  // key tile streams in while this one is computed); rows padded to LD.
  auto dynType = MemRefType::get({ShapedType::kDynamic}, b_.getI8Type(), MemRefLayoutAttrInterface{}, workgroup());
  Value dyn = gpu::DynamicSharedMemoryOp::create(b_, loc_, dynType);
  int64_t elemBytes = 2;
  int64_t qBytes = BM_ * LD_ * elemBytes, kvBytes = 2 * BN_ * LD_ * elemBytes;
  auto qType = MemRefType::get({BM_, LD_}, elem_, MemRefLayoutAttrInterface{}, workgroup());
  auto kvType = MemRefType::get({2, BN_, LD_}, elem_, MemRefLayoutAttrInterface{}, workgroup());
  Qs_ = memref::ViewOp::create(b_, loc_, qType, dyn, cidx(0), ValueRange{});
  Ks_ = memref::ViewOp::create(b_, loc_, kvType, dyn, cidx(qBytes), ValueRange{});
  Vs_ = memref::ViewOp::create(b_, loc_, kvType, dyn, cidx(qBytes + kvBytes), ValueRange{});
  info_.sharedBytes = qBytes + 2 * kvBytes;
  if (summaries_) {
    auto bitsType = MemRefType::get({kSummaryTiles / 32}, i32_, MemRefLayoutAttrInterface{}, workgroup());
    visitBits_ = memref::ViewOp::create(b_, loc_, bitsType, dyn, cidx(info_.sharedBytes), ValueRange{});
    fullBits_ = memref::ViewOp::create(b_, loc_, bitsType, dyn, cidx(info_.sharedBytes + kSummaryTiles / 8),
                                       ValueRange{});
    info_.sharedBytes += 2 * (kSummaryTiles / 8);
  }
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
    SmallVector<Value> dst = {toIndex(r), toIndex(col)};
    if (buf)
      dst.insert(dst.begin(), buf);
    auto copy = nvgpu::DeviceAsyncCopyOp::create(b_, loc_, nvgpu::DeviceAsyncTokenType::get(b_.getContext()), smem,
                                                 dst, global, ValueRange{toIndex(src)},
                                                 b_.getIndexAttr(8), count, b_.getUnitAttr());
    tokens.push_back(copy);
  }
  return tokens;
}

//===----------------------------------------------------------------------===//
// Tile bounds from the key intervals.
//===----------------------------------------------------------------------===//
IntervalEnv KernelEmitter::intervalEnv(ValueRange64 q, ValueRange64 k, bool tokenRanges) {
  IntervalEnv env;
  if (tokenRanges)
    env.tokenInput = [this, k](const Term &read) -> ValueRange64 {
      for (analysis::Var v : read.inputIndex) {
        if (v == analysis::Var::Q)
          return qRanges_.at(read.str());
        if (v == analysis::Var::K)
          return tokenRange(read, k.lo, k.hi);
      }
      return {ci(-analysis::kInf), ci(analysis::kInf)};
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

/// The hull of the key tiles this query tile may touch: [first, last].
std::pair<Value, Value> KernelEmitter::visitRange() {
  Value nTiles = arith::CeilDivSIOp::create(b_, loc_, klen_, ci(BN_));
  Value first = nTiles, last = ci(-1);
  for (const KeyClause &c : ki_.clauses) {
    IntervalEnv env = intervalEnv({q0_, q1_}, {ci(-analysis::kInf), ci(analysis::kInf)});
    IntervalCodegen gen(b_, loc_, env);
    Value rowsMaybe = cbool(true);
    for (const analysis::TermPtr &r : c.rows)
      rowsMaybe = andB(rowsMaybe, cmpI(arith::CmpIPredicate::eq, gen.emit(*r).hi, ci(1)));
    Value lo = c.lo ? gen.emit(*c.lo).lo : ci(-analysis::kInf);
    Value hi = c.hi ? gen.emit(*c.hi).hi : ci(analysis::kInf);
    Value colLo = maxI(sub(lo, kOff_), ci(0));
    Value colHi = minI(sub(hi, kOff_), sub(klen_, ci(1)));
    Value some = andB(rowsMaybe, cmpI(arith::CmpIPredicate::sle, colLo, colHi));
    Value tFirst = arith::FloorDivSIOp::create(b_, loc_, colLo, ci(BN_));
    Value tLast = arith::FloorDivSIOp::create(b_, loc_, colHi, ci(BN_));
    first = sel(some, minI(first, tFirst), first);
    last = sel(some, maxI(last, tLast), last);
  }
  return {first, last};
}

/// For key tile n: (visit, needMask) over the query tile's positions, or
/// over `rows` (one warp's). A tile is skipped when no clause can touch it;
/// it is computed without the mask when one clause with no rest covers it
/// for every row and it holds no keys past klen.
std::pair<Value, Value> KernelEmitter::classifyTile(Value n, bool tokenRanges, std::optional<ValueRange64> rows) {
  ValueRange64 q = rows ? *rows : ValueRange64{q0_, q1_};
  Value colFirst = mul(n, ci(BN_));
  Value colEnd = minI(add(colFirst, ci(BN_)), klen_);
  Value k0 = add(colFirst, kOff_), k1 = add(sub(colEnd, ci(1)), kOff_);
  Value visit = cbool(false), full = cbool(false);
  for (const KeyClause &c : ki_.clauses) {
    IntervalEnv env = intervalEnv(q, {k0, k1}, tokenRanges);
    IntervalCodegen gen(b_, loc_, env);
    Value rowsMaybe = cbool(true), rowsSure = cbool(true);
    for (const analysis::TermPtr &r : c.rows) {
      ValueRange64 t = gen.emit(*r);
      rowsMaybe = andB(rowsMaybe, cmpI(arith::CmpIPredicate::eq, t.hi, ci(1)));
      rowsSure = andB(rowsSure, cmpI(arith::CmpIPredicate::eq, t.lo, ci(1)));
    }
    ValueRange64 lo = c.lo ? gen.emit(*c.lo) : ValueRange64{ci(-analysis::kInf), ci(-analysis::kInf)};
    ValueRange64 hi = c.hi ? gen.emit(*c.hi) : ValueRange64{ci(analysis::kInf), ci(analysis::kInf)};
    Value touches = andB(rowsMaybe, cmpI(arith::CmpIPredicate::sle, maxI(k0, lo.lo), minI(k1, hi.hi)));
    // Unsolved conditions: evaluated over the tile like the analysis does;
    // inputs at token positions are read for their range (tokenRanges) or
    // unknown (they never exclude then).
    Value restMaybe = cbool(true), restSure = cbool(c.rest.empty());
    for (const analysis::TermPtr &r : c.rest)
      restMaybe = andB(restMaybe, cmpI(arith::CmpIPredicate::eq, gen.emit(*r).hi, ci(1)));
    visit = orB(visit, andB(touches, restMaybe));
    Value covers = andB(cmpI(arith::CmpIPredicate::sle, lo.hi, k0), cmpI(arith::CmpIPredicate::sge, hi.lo, k1));
    full = orB(full, andB(andB(rowsSure, restSure), covers));
  }
  Value tail = cmpI(arith::CmpIPredicate::slt, klen_, add(colFirst, ci(BN_)));
  Value needMask = orB(notB(full), tail);
  return {visit, needMask};
}

//===----------------------------------------------------------------------===//
// Tile summaries of inputs read at token positions.
//===----------------------------------------------------------------------===//
/// Minimum and maximum of `read` (an input indexed by q or k) over the
/// positions [posLo, posHi] (clamped to >= 0), by a loop of loads.
ValueRange64 KernelEmitter::tokenRange(const Term &read, Value posLo, Value posHi) {
  InputArg *in = nullptr;
  for (InputArg &i : inputs_)
    if (i.name == read.input)
      in = &i;
  assert(in && "a token read of an input the kernel does not take");
  Value fixed = ci(0);
  int64_t tokenAxis = -1;
  for (size_t a = 0; a < read.inputIndex.size(); ++a) {
    analysis::Var v = read.inputIndex[a];
    if (v == analysis::Var::Q || v == analysis::Var::K)
      tokenAxis = int64_t(a);
    else
      fixed = add(fixed, mul(v == analysis::Var::H ? hIdx_ : bIdx_, in->strides[a]));
  }
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

/// The ranges of every input read at q over this CTA's query positions.
void KernelEmitter::computeQRanges() {
  std::function<void(const Term &)> visit = [&](const Term &t) {
    if (t.kind == Term::Kind::Input)
      for (analysis::Var v : t.inputIndex)
        if (v == analysis::Var::Q && !qRanges_.count(t.str()))
          qRanges_[t.str()] = tokenRange(t, q0_, q1_);
    for (const analysis::TermPtr &a : t.args)
      visit(*a);
  };
  for (const KeyClause &c : ki_.clauses)
    for (const analysis::TermPtr &r : c.rest)
      visit(*r);
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
// Tensor-core fragments.
//===----------------------------------------------------------------------===//
/// The mma operands in an ldmatrix result vector<regs x 2 x elem>.
SmallVector<Value> KernelEmitter::operandsOf(Value fragment, int64_t regs) {
  SmallVector<Value> out;
  for (int64_t i = 0; i < regs; ++i) {
    Value pair = vector::ExtractOp::create(b_, loc_, fragment, ArrayRef<int64_t>{i});
    if (cfg_.bf16) {
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
  if (!cfg_.bf16)
    return t;
  Value asInt = vector::BitCastOp::create(b_, loc_, VectorType::get({1}, i32_), t);
  return vector::ExtractOp::create(b_, loc_, asInt, ArrayRef<int64_t>{0});
}

/// D = A B + C on one m16n8k16 tile; returns the four fp32 results.
SmallVector<Value> KernelEmitter::mma(ArrayRef<Value> a, ArrayRef<Value> bOps, ArrayRef<Value> c) {
  auto resType = LLVM::LLVMStructType::getLiteral(b_.getContext(), {f32_, f32_, f32_, f32_});
  NVVM::MMATypes t = cfg_.bf16 ? NVVM::MMATypes::bf16 : NVVM::MMATypes::f16;
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
/// laid out [m-tile][block][4] with `blocks` blocks per m-tile.
void KernelEmitter::mmaBlockPair(ArrayRef<SmallVector<Value>> a, ArrayRef<Value> bOps, SmallVector<Value> &accum,
                                 int64_t blocks, int64_t j) {
  for (int64_t mt = 0; mt < MT_; ++mt)
    for (int64_t h = 0; h < 2; ++h) {
      int64_t base = (mt * blocks + j + h) * 4;
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
// The variant's regions, cloned per element.
//===----------------------------------------------------------------------===//
Value KernelEmitter::readInput(attn::ReadOp read, ArrayRef<Value> indices) {
  for (InputArg &in : inputs_) {
    if (in.name != read.getInput())
      continue;
    Value idx = ci(0);
    for (size_t a = 0; a < indices.size(); ++a)
      idx = add(idx, mul(indices[a], in.strides[a]));
    Value v = memref::LoadOp::create(b_, loc_, in.ptr, ValueRange{toIndex(idx)});
    if (in.storage.isInteger(8))
      return cmpI(arith::CmpIPredicate::ne, v, arith::ConstantIntOp::create(b_, loc_, in.storage, 0));
    return v;
  }
  llvm_unreachable("an attn.read of an input the kernel does not take");
}

/// Clones the body of `region` with its block arguments bound to `args` and
/// returns the yielded value. attn.read becomes a global load; attn.floormod
/// becomes x - d * floor(x / d).
Value KernelEmitter::inlineRegion(Region &region, ArrayRef<Value> args) {
  IRMapping map;
  Block &body = region.front();
  for (auto [arg, value] : llvm::zip(body.getArguments(), args))
    map.map(arg, value);
  for (Operation &op : body.without_terminator()) {
    if (auto read = dyn_cast<attn::ReadOp>(op)) {
      SmallVector<Value> idx;
      for (Value i : read.getIndices())
        idx.push_back(map.lookup(i));
      map.map(read.getResult(), readInput(read, idx));
    } else if (auto mod = dyn_cast<attn::FloorModOp>(op)) {
      Value x = map.lookup(mod->getOperand(0)), d = map.lookup(mod->getOperand(1));
      Value q = arith::FloorDivSIOp::create(b_, loc_, x, d);
      map.map(mod->getResult(0), sub(x, mul(q, d)));
    } else if (Value v = lowerMath(op, map)) {
      map.map(op.getResult(0), v);
    } else {
      b_.clone(op, map);
    }
  }
  return map.lookup(cast<attn::YieldOp>(body.getTerminator()).getValues().front());
}

/// math ops of score and mask regions, on the SFU and without libdevice:
///   exp(x) = 2^(x log2 e), log(x) = log2(x) ln 2, sqrt by sqrt.rn,
///   tanh(x) = sign(x) (1 - 2 / (e^(2|x|) + 1)) (absolute error ~1e-7),
///   abs on ints by a select.
Value KernelEmitter::lowerMath(Operation &op, IRMapping &map) {
  auto in = [&]() { return map.lookup(op.getOperand(0)); };
  if (isa<math::ExpOp>(op))
    return exp2F(mulF(in(), cf(kLog2e)));
  if (isa<math::LogOp>(op))
    return mulF(log2F(in()), cf(1.0 / kLog2e));
  if (isa<math::SqrtOp>(op))
    return ptxUnary("sqrt.rn.f32 $0, $1;", in());
  if (isa<math::AbsFOp>(op))
    return ptxUnary("abs.f32 $0, $1;", in());
  if (isa<math::TanhOp>(op)) {
    Value x = in();
    Value ax = ptxUnary("abs.f32 $0, $1;", x);
    Value e = exp2F(mulF(ax, cf(2 * kLog2e)));
    Value t = subF(cf(1), arith::DivFOp::create(b_, loc_, cf(2), addF(e, cf(1))));
    Value neg = arith::CmpFOp::create(b_, loc_, arith::CmpFPredicate::OLT, x, cf(0));
    return arith::SelectOp::create(b_, loc_, neg, arith::NegFOp::create(b_, loc_, t), t);
  }
  if (auto abs = dyn_cast<math::AbsIOp>(op)) {
    Value x = in();
    Value zero = arith::ConstantIntOp::create(b_, loc_, x.getType(), 0);
    Value neg = cmpI(arith::CmpIPredicate::slt, x, zero);
    return sel(neg, arith::SubIOp::create(b_, loc_, zero, x), x);
  }
  return Value();
}

Value KernelEmitter::maskOf(Value q, Value k) {
  return inlineRegion(variant_.getMask(), {q, k, hIdx_, bIdx_, qlen_, klen_});
}

Value KernelEmitter::scoreOf(Value s, Value q, Value k) {
  if (variant_.getScore().empty())
    return s;
  return inlineRegion(variant_.getScore(), {q, k, hIdx_, bIdx_, qlen_, klen_, s});
}

//===----------------------------------------------------------------------===//
// The kernel body.
//===----------------------------------------------------------------------===//
/// The first key tile after `n` that the query tile visits (last + 1 if none).
Value KernelEmitter::nextVisited(Value n, Value last) {
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

/// One key tile: S = Q K^T, scale, score, mask (if needMask), online
/// softmax, O += P V. `state` is (m[2 MT], l[2 MT], acc[MT][D/8][4]); m in
/// log2 units. Appends the new state to `next`.
void KernelEmitter::computeTile(Value n, Value needMask, Value buf, ArrayRef<Value> state,
                                 SmallVector<Value> &next) {
  const int64_t nTilesN = BN_ / 8, nTilesD = D_ / 8, kChunksD = D_ / 16, kChunksN = BN_ / 16;
  const int64_t rowsPerThread = 2 * MT_;
  double scale = variant_.getScale() ? variant_.getScale()->convertToDouble() : 1.0 / std::sqrt(double(D_));
  bool hasScore = !variant_.getScore().empty();
  Value colFirst = mul(n, ci(BN_));
  auto frag4 = VectorType::get({4, 2}, elem_);

  // S = Q K^T. s[(mt * nTilesN + j) * 4 + e].
  SmallVector<Value> s(MT_ * nTilesN * 4, cf(0));
  for (int64_t kk = 0; kk < kChunksD; ++kk) {
    SmallVector<SmallVector<Value>> a;
    for (int64_t mt = 0; mt < MT_; ++mt) {
      // A: rows warp*16*MT + mt*16 + lane%16, columns kk*16 + (lane/16)*8.
      Value aRow = add(add(mul(warp_, ci(16 * MT_)), ci(mt * 16)), laneRow16_);
      Value aCol = add(ci(kk * 16), mul(laneHalf_, ci(8)));
      a.push_back(operandsOf(
          nvgpu::LdMatrixOp::create(b_, loc_, frag4, Qs_, ValueRange{toIndex(aRow), toIndex(aCol)}, false, 4), 4));
    }
    for (int64_t j = 0; j < nTilesN; j += 2) {
      // B for column blocks j, j+1: key rows (j + lane/16)*8 + lane%8,
      // columns kk*16 + ((lane/8)%2)*8; one load serves every m-tile.
      Value bRow = add(mul(add(ci(j), laneHalf_), ci(8)), lane8_);
      Value bCol = add(ci(kk * 16), mul(laneOct_, ci(8)));
      SmallVector<Value> bo = operandsOf(
          nvgpu::LdMatrixOp::create(b_, loc_, frag4, Ks_, ValueRange{buf, toIndex(bRow), toIndex(bCol)}, false, 4),
          4);
      mmaBlockPair(a, bo, s, nTilesN, j);
    }
  }

  // Scale (and log2 e, so the softmax runs on exp2), score rule, mask.
  auto keyOf = [&](int64_t j, int64_t e) {
    return add(add(colFirst, add(ci(j * 8 + (e & 1)), mul(inQuad_, ci(2)))), kOff_);
  };
  auto queryOf = [&](int64_t mt, int64_t e) { return qPos_[2 * mt + (e < 2 ? 0 : 1)]; };
  // Without a score rule and with a positive scale, S stays unscaled: the
  // row maximum commutes with the scale, which then joins the exponent's
  // subtraction in one fma.
  const bool foldScale = !hasScore && scale > 0;
  const double log2Scale = foldScale ? scale * kLog2e : 1.0;
  if (!foldScale)
    for (int64_t mt = 0; mt < MT_; ++mt)
      for (int64_t j = 0; j < nTilesN; ++j)
        for (int64_t e = 0; e < 4; ++e) {
          Value &x = s[(mt * nTilesN + j) * 4 + e];
          x = hasScore ? mulF(scoreOf(mulF(x, cf(scale)), queryOf(mt, e), keyOf(j, e)), cf(kLog2e))
                       : mulF(x, cf(scale * kLog2e));
        }
  auto ifMask = scf::IfOp::create(b_, loc_, TypeRange(ValueRange(s)), needMask, true);
  {
    OpBuilder::InsertionGuard g(b_);
    b_.setInsertionPointToStart(&ifMask.getThenRegion().front());
    SmallVector<Value> masked;
    if (!ki_.hasRest()) {
      // The mask is solved into key intervals: per row, each clause's
      // [lo, hi] relative to this tile's first column (clamped, in i32),
      // then per element two compares against the column index.
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
            Value &x = s[(mt * nTilesN + j) * 4 + e];
            masked.push_back(sel(andB(allowed, any), x, negInf()));
          }
      }
      // `masked` is in (row, j, e) order; restore the (mt, j, e) layout.
      SmallVector<Value> ordered(s.size());
      size_t i = 0;
      for (int64_t r = 0; r < 2 * MT_; ++r)
        for (int64_t j = 0; j < nTilesN; ++j)
          for (int64_t e = 2 * (r % 2); e < 2 * (r % 2) + 2; ++e)
            ordered[((r / 2) * nTilesN + j) * 4 + e] = masked[i++];
      masked = std::move(ordered);
    } else {
      for (int64_t mt = 0; mt < MT_; ++mt)
        for (int64_t j = 0; j < nTilesN; ++j)
          for (int64_t e = 0; e < 4; ++e) {
            Value k = keyOf(j, e);
            Value inRange = cmpI(arith::CmpIPredicate::slt, sub(k, kOff_), klen_);
            Value allowed = andB(inRange, maskOf(queryOf(mt, e), k));
            masked.push_back(sel(allowed, s[(mt * nTilesN + j) * 4 + e], negInf()));
          }
    }
    scf::YieldOp::create(b_, loc_, masked);
    b_.setInsertionPointToStart(&ifMask.getElseRegion().front());
    scf::YieldOp::create(b_, loc_, s);
  }
  for (size_t i = 0; i < s.size(); ++i)
    s[i] = ifMask.getResult(i);

  // Online softmax, rows r = 2 mt + half (elements e in {2 half, 2 half + 1}),
  // rescaled lazily: m moves (and acc and l are rescaled) only when some row
  // of the warp sees a maximum above m + kRescaleSlack, so P = 2^(x - m) stays
  // at most 2^kRescaleSlack; O = acc / l and LSE = m + log2 l are exact for
  // any m not below the true maximum minus the slack.
  SmallVector<Value> rowMax(rowsPerThread);
  Value anyRow = cbool(false);
  for (int64_t r = 0; r < rowsPerThread; ++r) {
    int64_t mt = r / 2, half = r % 2;
    Value mx = negInf();
    for (int64_t j = 0; j < nTilesN; ++j)
      for (int64_t e = 2 * half; e < 2 * half + 2; ++e)
        mx = maxF(mx, s[(mt * nTilesN + j) * 4 + e]);
    mx = quadReduce(mx, true);
    rowMax[r] = foldScale ? mulF(mx, cf(log2Scale)) : mx;
    Value grows = arith::CmpFOp::create(b_, loc_, arith::CmpFPredicate::OGT, rowMax[r],
                                        addF(state[r], cf(kRescaleSlack)));
    anyRow = orB(anyRow, grows);
  }
  Value anyLane = NVVM::VoteSyncOp::create(b_, loc_, i1_, ci32(-1), anyRow, NVVM::VoteSyncKind::any);
  SmallVector<Value> carried(state.begin(), state.end()); // m, l, acc
  auto ifRescale = scf::IfOp::create(b_, loc_, TypeRange(ValueRange(carried)), anyLane, true);
  {
    OpBuilder::InsertionGuard g(b_);
    b_.setInsertionPointToStart(&ifRescale.getThenRegion().front());
    SmallVector<Value> out(carried);
    for (int64_t r = 0; r < rowsPerThread; ++r) {
      Value mNew = maxF(state[r], rowMax[r]);
      Value isInf = arith::CmpFOp::create(b_, loc_, arith::CmpFPredicate::OEQ, mNew, negInf());
      Value alpha = exp2F(subF(state[r], sel(isInf, cf(0), mNew)));
      out[r] = mNew;
      out[rowsPerThread + r] = mulF(state[rowsPerThread + r], alpha);
      for (int64_t i = 0; i < MT_ * nTilesD * 4; ++i) {
        int64_t mt = i / (nTilesD * 4), e = i % 4;
        if (2 * mt + (e < 2 ? 0 : 1) == r)
          out[2 * rowsPerThread + i] = mulF(state[2 * rowsPerThread + i], alpha);
      }
    }
    scf::YieldOp::create(b_, loc_, out);
    b_.setInsertionPointToStart(&ifRescale.getElseRegion().front());
    scf::YieldOp::create(b_, loc_, carried);
  }
  SmallVector<Value> negM(rowsPerThread), rowSum(rowsPerThread, cf(0));
  for (int64_t r = 0; r < rowsPerThread; ++r) {
    Value m = ifRescale.getResult(r);
    Value isInf = arith::CmpFOp::create(b_, loc_, arith::CmpFPredicate::OEQ, m, negInf());
    negM[r] = sel(isInf, cf(0), arith::NegFOp::create(b_, loc_, m));
  }
  for (int64_t mt = 0; mt < MT_; ++mt)
    for (int64_t j = 0; j < nTilesN; ++j)
      for (int64_t e = 0; e < 4; ++e) {
        int64_t r = 2 * mt + (e < 2 ? 0 : 1);
        Value &x = s[(mt * nTilesN + j) * 4 + e];
        x = exp2F(LLVM::FMAOp::create(b_, loc_, x, cf(log2Scale), negM[r]));
        rowSum[r] = addF(rowSum[r], x);
      }
  SmallVector<Value> acc(ifRescale.getResults().begin() + 2 * rowsPerThread, ifRescale.getResults().end());

  // O += P V: P's C fragments of column blocks 2c, 2c+1 are the A fragment of
  // k-step c; V^T comes from ldmatrix.trans, one load per two column blocks
  // of O serving every m-tile.
  for (int64_t c = 0; c < kChunksN; ++c) {
    SmallVector<SmallVector<Value>> a;
    for (int64_t mt = 0; mt < MT_; ++mt) {
      auto P = [&](int64_t j, int64_t e) { return s[(mt * nTilesN + j) * 4 + e]; };
      a.push_back({packPair(P(2 * c, 0), P(2 * c, 1)), packPair(P(2 * c, 2), P(2 * c, 3)),
                   packPair(P(2 * c + 1, 0), P(2 * c + 1, 1)), packPair(P(2 * c + 1, 2), P(2 * c + 1, 3))});
    }
    for (int64_t t = 0; t < nTilesD; t += 2) {
      // Key rows 16c + lane%8 + ((lane/8)%2)*8, columns (t + lane/16)*8.
      Value vRow = add(ci(16 * c), add(lane8_, mul(laneOct_, ci(8))));
      Value vCol = mul(add(ci(t), laneHalf_), ci(8));
      SmallVector<Value> bo = operandsOf(
          nvgpu::LdMatrixOp::create(b_, loc_, frag4, Vs_, ValueRange{buf, toIndex(vRow), toIndex(vCol)}, true, 4),
          4);
      mmaBlockPair(a, bo, acc, nTilesD, t);
    }
  }
  for (int64_t r = 0; r < rowsPerThread; ++r)
    next.push_back(ifRescale.getResult(r));
  for (int64_t r = 0; r < rowsPerThread; ++r)
    next.push_back(addF(ifRescale.getResult(rowsPerThread + r), rowSum[r]));
  next.append(acc.begin(), acc.end());
}

void KernelEmitter::emitBody() {
  const int64_t nTilesD = D_ / 8, rowsPerThread = 2 * MT_;
  Value groupSize = arith::DivSIOp::create(b_, loc_, headsQ_, headsKv_);
  Value hkv = arith::DivSIOp::create(b_, loc_, hIdx_, groupSize);
  Value qBase = add(mul(bIdx_, qsb_), mul(hIdx_, qsh_));
  Value kBase = add(mul(bIdx_, ksb_), mul(hkv, ksh_));
  Value vBase = add(mul(bIdx_, vsb_), mul(hkv, vsh_));
  Value oBase = add(mul(bIdx_, osb_), mul(hIdx_, osh_));
  Value lseBase = add(mul(bIdx_, lsb_), mul(hIdx_, lsh_));

  // Per-thread geometry: lane t holds rows t/4 and t/4 + 8 of each of its
  // warp's 16-row m-tiles, columns 2*(t%4) + {0, 1} of each 8-wide block.
  quad_ = arith::DivUIOp::create(b_, loc_, lane_, ci(4));
  inQuad_ = arith::RemUIOp::create(b_, loc_, lane_, ci(4));
  laneRow16_ = arith::RemUIOp::create(b_, loc_, lane_, ci(16));
  laneHalf_ = arith::DivUIOp::create(b_, loc_, lane_, ci(16));
  lane8_ = arith::RemUIOp::create(b_, loc_, lane_, ci(8));
  laneOct_ = arith::RemUIOp::create(b_, loc_, arith::DivUIOp::create(b_, loc_, lane_, ci(8)), ci(2));
  SmallVector<Value> rows;
  for (int64_t r = 0; r < rowsPerThread; ++r) {
    Value row = add(add(mul(warp_, ci(16 * MT_)), ci((r / 2) * 16 + (r % 2) * 8)), quad_);
    rows.push_back(row);
    qPos_.push_back(add(add(rowBase_, row), qOff_));
  }

  // This warp's query positions (empty past qlen).
  Value warpFirst = add(rowBase_, mul(warp_, ci(16 * MT_)));
  ValueRange64 warpRows{add(warpFirst, qOff_),
                        add(sub(minI(add(warpFirst, ci(16 * MT_)), qlen_), ci(1)), qOff_)};

  // 1. The Q tile, then the first visited K/V tile, into shared memory.
  loadTile(Qs_, Value(), BM_, q_, qBase, rowBase_, qlen_, qsl_);
  NVVM::CpAsyncCommitGroupOp::create(b_, loc_);
  auto [first, last] = visitRange();
  if (summaries_) {
    computeQRanges();
    fillSummaries(first, last);
  }
  auto loadKV = [&](Value n, Value buf) {
    Value colFirst = mul(n, ci(BN_));
    loadTile(Ks_, buf, BN_, k_, kBase, colFirst, klen_, ksl_);
    loadTile(Vs_, buf, BN_, v_, vBase, colFirst, klen_, vsl_);
  };
  Value n0 = nextVisited(sub(first, ci(1)), last);
  {
    auto ifAny = scf::IfOp::create(b_, loc_, TypeRange{}, cmpI(arith::CmpIPredicate::sle, n0, last), false);
    OpBuilder::InsertionGuard g(b_);
    b_.setInsertionPointToStart(&ifAny.getThenRegion().front());
    loadKV(n0, cidx(0));
  }
  NVVM::CpAsyncCommitGroupOp::create(b_, loc_);

  // 2. Running state: m (log2 units), l (this lane's partial sum), acc.
  Value m0 = negInf(), l0 = cf(0);
  if (variant_.getSink()) {
    // The sink joins as if it were a key with score S_h and a zero value:
    // m starts at S_h and l at exp(S_h - m) = 1, once per row (quad lane 0).
    m0 = mulF(memref::LoadOp::create(b_, loc_, sinks_, ValueRange{toIndex(hIdx_)}), cf(kLog2e));
    l0 = sel(cmpI(arith::CmpIPredicate::eq, inQuad_, ci(0)), cf(1), cf(0));
  }
  SmallVector<Value> init = {n0, cidx(0)};
  for (int64_t r = 0; r < rowsPerThread; ++r)
    init.push_back(m0);
  for (int64_t r = 0; r < rowsPerThread; ++r)
    init.push_back(l0);
  for (int64_t i = 0; i < MT_ * nTilesD * 4; ++i)
    init.push_back(cf(0));

  // 3. The visited key tiles, each prefetching the next one.
  SmallVector<Type> types = llvm::to_vector(TypeRange(ValueRange(init)));
  SmallVector<Location> locs(types.size(), loc_);
  auto loop = scf::WhileOp::create(b_, loc_, types, init);
  {
    OpBuilder::InsertionGuard g(b_);
    Block *before = b_.createBlock(&loop.getBefore(), {}, types, locs);
    b_.setInsertionPointToStart(before);
    scf::ConditionOp::create(b_, loc_, cmpI(arith::CmpIPredicate::sle, before->getArgument(0), last),
                             before->getArguments());
    Block *after = b_.createBlock(&loop.getAfter(), {}, types, locs);
    b_.setInsertionPointToStart(after);
    Value n = after->getArgument(0), buf = after->getArgument(1);
    SmallVector<Value> state(after->getArguments().begin() + 2, after->getArguments().end());
    Value nn = nextVisited(n, last);
    Value other = arith::SubIOp::create(b_, loc_, cidx(1), buf);
    {
      auto ifNext = scf::IfOp::create(b_, loc_, TypeRange{}, cmpI(arith::CmpIPredicate::sle, nn, last), false);
      OpBuilder::InsertionGuard g2(b_);
      b_.setInsertionPointToStart(&ifNext.getThenRegion().front());
      loadKV(nn, other);
    }
    NVVM::CpAsyncCommitGroupOp::create(b_, loc_);
    // Everything but the group just committed (the next tile) has landed.
    NVVM::CpAsyncWaitGroupOp::create(b_, loc_, 1);
    barrier();
    Value needMask = classifyTile(n).second;
    if (summaries_) {
      Value inWindow = cmpI(arith::CmpIPredicate::slt, sub(n, windowFirst_), ci(kSummaryTiles));
      needMask = sel(inWindow, notB(summaryBit(fullBits_, n)), needMask);
      // A full tile still needs the mask on its tail columns past klen.
      Value tail = cmpI(arith::CmpIPredicate::slt, klen_, add(mul(n, ci(BN_)), ci(BN_)));
      needMask = orB(needMask, tail);
    }
    // Each warp classifies the tile again over its own rows (the closed
    // forms only): a warp whose rows the tile covers drops the mask.
    needMask = andB(needMask, classifyTile(n, false, warpRows).second);
    SmallVector<Value> next = {nn, other};
    computeTile(n, needMask, buf, state, next);
    barrier(); // this buffer is refilled two tiles from now
    scf::YieldOp::create(b_, loc_, next);
  }
  b_.setInsertionPointAfter(loop);

  // 4. Epilogue: O = acc / l into the Q tile's shared memory, each warp its
  // own rows, then those rows to global memory 16 bytes a lane, coalesced;
  // LSE = (m + log2 l) ln 2 from each quad's first lane. The Q tile is free
  // once every copy into it has landed (a query tile that visits no key
  // tile never waited for its Q) and every warp has done reading it.
  NVVM::CpAsyncWaitGroupOp::create(b_, loc_, 0);
  barrier();
  SmallVector<Value> fin(loop.getResults().begin() + 2, loop.getResults().end());
  for (int64_t r = 0; r < rowsPerThread; ++r) {
    int64_t mt = r / 2, half = r % 2;
    Value m = fin[r];
    Value l = quadReduce(fin[rowsPerThread + r], false);
    Value empty = arith::CmpFOp::create(b_, loc_, arith::CmpFPredicate::OEQ, l, cf(0));
    Value inv = arith::SelectOp::create(b_, loc_, empty, cf(0), arith::DivFOp::create(b_, loc_, cf(1), l));
    for (int64_t t = 0; t < nTilesD; ++t) {
      int64_t base = 2 * rowsPerThread + (mt * nTilesD + t) * 4 + 2 * half;
      Value x = mulF(fin[base], inv), y = mulF(fin[base + 1], inv);
      Value pair = vector::FromElementsOp::create(b_, loc_, VectorType::get({2}, f32_), ValueRange{x, y});
      Value packed = arith::TruncFOp::create(b_, loc_, VectorType::get({2}, elem_), pair);
      Value col = add(ci(t * 8), mul(inQuad_, ci(2)));
      vector::StoreOp::create(b_, loc_, packed, Qs_, ValueRange{toIndex(rows[r]), toIndex(col)}, false,
                              llvm::MaybeAlign(4));
    }
    Value row = add(rowBase_, rows[r]);
    Value lead = andB(cmpI(arith::CmpIPredicate::slt, row, qlen_), cmpI(arith::CmpIPredicate::eq, inQuad_, ci(0)));
    auto ifLead = scf::IfOp::create(b_, loc_, TypeRange{}, lead, false);
    OpBuilder::InsertionGuard g4(b_);
    b_.setInsertionPointToStart(&ifLead.getThenRegion().front());
    Value lse = arith::SelectOp::create(b_, loc_, empty, negInf(), mulF(addF(m, log2F(l)), cf(1.0 / kLog2e)));
    memref::StoreOp::create(b_, loc_, lse, lse_, ValueRange{toIndex(add(lseBase, row))});
  }
  NVVM::SyncWarpOp::create(b_, loc_, ci32(-1));
  const int64_t chunksPerRow = D_ / 8, rowsPerWarp = 16 * MT_;
  auto chunk = VectorType::get({8}, elem_);
  for (int64_t i = 0; i < rowsPerWarp * chunksPerRow / 32; ++i) {
    Value c = add(lane_, ci(32 * i));
    Value row = add(mul(warp_, ci(rowsPerWarp)), arith::DivUIOp::create(b_, loc_, c, ci(chunksPerRow)));
    Value col = mul(arith::RemUIOp::create(b_, loc_, c, ci(chunksPerRow)), ci(8));
    Value globalRow = add(rowBase_, row);
    auto ifValid = scf::IfOp::create(b_, loc_, TypeRange{}, cmpI(arith::CmpIPredicate::slt, globalRow, qlen_), false);
    OpBuilder::InsertionGuard g5(b_);
    b_.setInsertionPointToStart(&ifValid.getThenRegion().front());
    Value x = vector::LoadOp::create(b_, loc_, chunk, Qs_, ValueRange{toIndex(row), toIndex(col)}, false,
                                     llvm::MaybeAlign(16));
    Value at = add(add(oBase, mul(globalRow, osl_)), col);
    vector::StoreOp::create(b_, loc_, x, o_, ValueRange{toIndex(at)}, false, llvm::MaybeAlign(16));
  }
}
KernelInfo KernelEmitter::build(gpu::GPUModuleOp module) {
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
  if (variant_.getSink())
    sinks_ = next();
  for (InputArg &in : inputs_) {
    in.ptr = next();
    auto decl = SymbolTable::lookupNearestSymbolFrom<attn::InputOp>(variant_, StringAttr::get(b_.getContext(), in.name));
    for (size_t a = 0; a < decl.getAxisKinds().size(); ++a)
      in.strides.push_back(next());
  }
  setupBlock();
  emitBody();
  gpu::ReturnOp::create(b_, loc_);
  info_.symbol = cfg_.symbol;
  info_.blockM = BM_;
  info_.blockN = BN_;
  info_.threads = kThreads;
  return info_;
}

} // namespace

KernelInfo buildFlashKernel(OpBuilder &builder, gpu::GPUModuleOp module, attn::VariantOp variant,
                            const analysis::KeyIntervals &intervals, const KernelConfig &config) {
  KernelEmitter emitter(builder, variant, intervals, config);
  return emitter.build(module);
}

} // namespace attnc

//===- FlashKernel.cpp - Building the fused attention kernel --------------===//
//
// The kernel, top to bottom (one CTA = query tile m of head h, batch b):
//   1. positions and base offsets; Q tile -> shared memory (cp.async);
//   2. the key tiles to visit, from the key intervals' closed forms over this
//      tile's query positions (IntervalCodegen);
//   3. for each key tile in that range: classify it (empty: skip; full: no
//      mask; partial: mask per element), load K and V (cp.async; V's copy
//      overlaps S = Q K^T), S on tensor cores (ldmatrix + mma.sync), scale,
//      score rule, mask, online softmax in fp32 (quad shuffles), O += P V
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

using namespace mlir;

namespace attnc {

int64_t flashBlockM(int64_t) { return 64; }
int64_t flashBlockN(int64_t headDim) { return headDim > 128 ? 32 : 64; }

namespace {

constexpr int64_t kWarps = 4, kThreads = 32 * kWarps;
constexpr int64_t kPad = 8;                       ///< elements of padding per shared row (bank conflicts)
constexpr int64_t kHugeLen = int64_t(1) << 40;    ///< static length of the flat global memrefs
constexpr double kLog2e = 1.4426950408889634;

using analysis::KeyClause;
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
    BM_ = flashBlockM(D_);
    BN_ = flashBlockN(D_);
    LD_ = D_ + kPad;
  }

  KernelInfo build(gpu::GPUModuleOp module);

private:
  OpBuilder &b_;
  Location loc_;
  attn::VariantOp variant_;
  const analysis::KeyIntervals &ki_;
  KernelConfig cfg_;
  int64_t D_, BM_, BN_, LD_;
  KernelInfo info_;

  Type i1_, i32_, i64_, f32_, elem_, index_;
  Value q_, k_, v_, o_, lse_, sinks_;
  Value qsb_, qsh_, qsl_, ksb_, ksh_, ksl_, vsb_, vsh_, vsl_, osb_, osh_, osl_, lsb_, lsh_;
  Value batch_, headsQ_, headsKv_, qlen_, klen_, qOff_, kOff_;
  std::vector<InputArg> inputs_;

  Value bIdx_, hIdx_, mIdx_, tid_, warp_, lane_;
  Value rowBase_, q0_, q1_;
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
  SmallVector<Value> loadTile(Value smem, int64_t rows, Value global, Value base, Value rowStart, Value rowLimit,
                              Value rowStride);
  Value asyncGroup(ArrayRef<Value> tokens) {
    return nvgpu::DeviceAsyncCreateGroupOp::create(b_, loc_, nvgpu::DeviceAsyncTokenType::get(b_.getContext()), tokens);
  }
  void asyncWait(Value group, int32_t pending) {
    nvgpu::DeviceAsyncWaitOp::create(b_, loc_, group, b_.getI32IntegerAttr(pending));
  }
  void barrier() { gpu::BarrierOp::create(b_, loc_); }

  IntervalEnv intervalEnv(ValueRange64 q, ValueRange64 k);
  std::pair<Value, Value> visitRange();
  std::pair<Value, Value> classifyTile(Value n);

  SmallVector<Value> operandsOf(Value fragment, int64_t regs);
  SmallVector<Value> mma(ArrayRef<Value> a, ArrayRef<Value> bOps, ArrayRef<Value> c);
  Value packPair(Value x, Value y);
  Value quadReduce(Value v, bool isMax);

  Value inlineRegion(Region &region, ArrayRef<Value> args);
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
  auto moduleOp = variant_->getParentOfType<ModuleOp>();
  for (const std::string &n : names) {
    auto decl = SymbolTable::lookupNearestSymbolFrom<attn::InputOp>(variant_, StringAttr::get(ctx, n));
    (void)moduleOp;
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
  return func;
}

//===----------------------------------------------------------------------===//
// Block set-up: indices, base offsets, shared memory views.
//===----------------------------------------------------------------------===//
void KernelEmitter::setupBlock() {
  mIdx_ = toI64(gpu::BlockIdOp::create(b_, loc_, gpu::Dimension::x));
  hIdx_ = toI64(gpu::BlockIdOp::create(b_, loc_, gpu::Dimension::y));
  bIdx_ = toI64(gpu::BlockIdOp::create(b_, loc_, gpu::Dimension::z));
  tid_ = toI64(gpu::ThreadIdOp::create(b_, loc_, gpu::Dimension::x));
  warp_ = arith::DivUIOp::create(b_, loc_, tid_, ci(32));
  lane_ = arith::RemUIOp::create(b_, loc_, tid_, ci(32));
  rowBase_ = mul(mIdx_, ci(BM_));
  q0_ = add(rowBase_, qOff_);
  q1_ = add(sub(minI(add(rowBase_, ci(BM_)), qlen_), ci(1)), qOff_);

  // Shared memory: Q, K, V tiles, rows padded to LD elements.
  auto dynType = MemRefType::get({ShapedType::kDynamic}, b_.getI8Type(), MemRefLayoutAttrInterface{}, workgroup());
  Value dyn = gpu::DynamicSharedMemoryOp::create(b_, loc_, dynType);
  int64_t elemBytes = 2;
  auto view = [&](int64_t rows, int64_t byteOffset) {
    auto t = MemRefType::get({rows, LD_}, elem_, MemRefLayoutAttrInterface{}, workgroup());
    return memref::ViewOp::create(b_, loc_, t, dyn, cidx(byteOffset), ValueRange{}).getResult();
  };
  int64_t qBytes = BM_ * LD_ * elemBytes, kvBytes = BN_ * LD_ * elemBytes;
  Qs_ = view(BM_, 0);
  Ks_ = view(BN_, qBytes);
  Vs_ = view(BN_, qBytes + kvBytes);
  info_.sharedBytes = qBytes + 2 * kvBytes;
}

/// Copies `rows` x D elements (row r of the tile is global row rowStart + r,
/// at base + row * rowStride) into `smem`, 16 bytes per cp.async; rows at or
/// beyond rowLimit are zero-filled. Returns the copies' tokens.
SmallVector<Value> KernelEmitter::loadTile(Value smem, int64_t rows, Value global, Value base, Value rowStart,
                                           Value rowLimit, Value rowStride) {
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
    auto copy = nvgpu::DeviceAsyncCopyOp::create(b_, loc_, nvgpu::DeviceAsyncTokenType::get(b_.getContext()), smem,
                                                 ValueRange{toIndex(r), toIndex(col)}, global, ValueRange{toIndex(src)},
                                                 b_.getIndexAttr(8), count, b_.getUnitAttr());
    tokens.push_back(copy);
  }
  return tokens;
}

//===----------------------------------------------------------------------===//
// Tile bounds from the key intervals.
//===----------------------------------------------------------------------===//
IntervalEnv KernelEmitter::intervalEnv(ValueRange64 q, ValueRange64 k) {
  IntervalEnv env;
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

/// For key tile n: (visit, needMask). A tile is skipped when no clause can
/// touch it; it is computed without the mask when one clause with no rest
/// covers it for every row and it holds no keys past klen.
std::pair<Value, Value> KernelEmitter::classifyTile(Value n) {
  Value colFirst = mul(n, ci(BN_));
  Value colEnd = minI(add(colFirst, ci(BN_)), klen_);
  Value k0 = add(colFirst, kOff_), k1 = add(sub(colEnd, ci(1)), kOff_);
  Value visit = cbool(false), full = cbool(false);
  for (const KeyClause &c : ki_.clauses) {
    IntervalEnv env = intervalEnv({q0_, q1_}, {k0, k1});
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
    // Unsolved conditions: evaluated over the tile like the analysis does
    // (inputs at token positions are unknown here: they never exclude).
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
    } else {
      b_.clone(op, map);
    }
  }
  return map.lookup(cast<attn::YieldOp>(body.getTerminator()).getValues().front());
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
void KernelEmitter::emitBody() {
  const int64_t nTilesN = BN_ / 8;   // 8-wide column blocks of S per warp
  const int64_t nTilesD = D_ / 8;    // 8-wide column blocks of O per warp
  const int64_t kChunksD = D_ / 16;  // k-steps of S = Q K^T
  const int64_t kChunksN = BN_ / 16; // k-steps of O += P V
  double scale = variant_.getScale() ? variant_.getScale()->convertToDouble() : 1.0 / std::sqrt(double(D_));

  Value groupSize = arith::DivSIOp::create(b_, loc_, headsQ_, headsKv_);
  Value hkv = arith::DivSIOp::create(b_, loc_, hIdx_, groupSize);
  Value qBase = add(mul(bIdx_, qsb_), mul(hIdx_, qsh_));
  Value kBase = add(mul(bIdx_, ksb_), mul(hkv, ksh_));
  Value vBase = add(mul(bIdx_, vsb_), mul(hkv, vsh_));
  Value oBase = add(mul(bIdx_, osb_), mul(hIdx_, osh_));
  Value lseBase = add(mul(bIdx_, lsb_), mul(hIdx_, lsh_));

  // 1. Q tile -> shared memory.
  Value qGroup = asyncGroup(loadTile(Qs_, BM_, q_, qBase, rowBase_, qlen_, qsl_));
  asyncWait(qGroup, 0);
  barrier();

  // Per-thread geometry: rows rowA = warp*16 + lane/4 and rowA + 8 of the tile.
  Value quad = arith::DivUIOp::create(b_, loc_, lane_, ci(4));
  Value inQuad = arith::RemUIOp::create(b_, loc_, lane_, ci(4));
  Value rowA = add(mul(warp_, ci(16)), quad);
  Value rowB = add(rowA, ci(8));
  Value qA = add(add(rowBase_, rowA), qOff_), qB = add(add(rowBase_, rowB), qOff_);

  // 2. Running state: m (max, natural units), l (this lane's partial sum),
  // acc (O, 4 values per 8-wide column block).
  Value m0 = negInf(), l0 = cf(0);
  if (variant_.getSink()) {
    Value sink = memref::LoadOp::create(b_, loc_, sinks_, ValueRange{toIndex(hIdx_)});
    m0 = sink;
    // exp(S_h - m) = 1 joins the sum once per row: in lane 0 of the quad.
    l0 = sel(cmpI(arith::CmpIPredicate::eq, inQuad, ci(0)), cf(1), cf(0));
  }
  SmallVector<Value> init = {m0, m0, l0, l0};
  for (int64_t i = 0; i < nTilesD * 4; ++i)
    init.push_back(cf(0));

  auto [first, last] = visitRange();
  Value lastPlusOne = add(last, ci(1));
  Value lb = toIndex(first), ub = toIndex(maxI(lastPlusOne, first));
  auto loop = scf::ForOp::create(b_, loc_, lb, ub, cidx(1), init);
  {
    OpBuilder::InsertionGuard guard(b_);
    b_.setInsertionPointToStart(loop.getBody());
    Value n = toI64(loop.getInductionVar());
    SmallVector<Value> state(loop.getRegionIterArgs().begin(), loop.getRegionIterArgs().end());
    auto [visit, needMask] = classifyTile(n);
    auto ifVisit = scf::IfOp::create(b_, loc_, TypeRange(ValueRange(state)), visit, /*withElse=*/true);
    {
      OpBuilder::InsertionGuard g2(b_);
      b_.setInsertionPointToStart(&ifVisit.getElseRegion().front());
      scf::YieldOp::create(b_, loc_, state);
    }
    b_.setInsertionPointToStart(&ifVisit.getThenRegion().front());

    // 3a. K and V tiles -> shared memory (two groups: V overlaps S).
    Value colFirst = mul(n, ci(BN_));
    barrier();
    Value kGroup = asyncGroup(loadTile(Ks_, BN_, k_, kBase, colFirst, klen_, ksl_));
    Value vGroup = asyncGroup(loadTile(Vs_, BN_, v_, vBase, colFirst, klen_, vsl_));
    asyncWait(kGroup, 1);
    barrier();

    // 3b. S = Q K^T: per warp 16 x BN.
    SmallVector<SmallVector<Value>> s(nTilesN, SmallVector<Value>(4, cf(0)));
    Value laneRow16 = arith::RemUIOp::create(b_, loc_, lane_, ci(16));
    Value laneHalf = arith::DivUIOp::create(b_, loc_, lane_, ci(16));
    Value lane8 = arith::RemUIOp::create(b_, loc_, lane_, ci(8));
    Value laneOct = arith::RemUIOp::create(b_, loc_, arith::DivUIOp::create(b_, loc_, lane_, ci(8)), ci(2));
    auto frag4 = VectorType::get({4, 2}, elem_);
    for (int64_t kk = 0; kk < kChunksD; ++kk) {
      // A: rows warp*16 + lane%16, columns kk*16 + (lane/16)*8.
      Value aRow = add(mul(warp_, ci(16)), laneRow16);
      Value aCol = add(ci(kk * 16), mul(laneHalf, ci(8)));
      Value aFrag = nvgpu::LdMatrixOp::create(b_, loc_, frag4, Qs_, ValueRange{toIndex(aRow), toIndex(aCol)}, false, 4);
      SmallVector<Value> a = operandsOf(aFrag, 4);
      for (int64_t j = 0; j < nTilesN; j += 2) {
        // B for column blocks j and j+1: key rows (j + lane/16)*8 + lane%8,
        // columns kk*16 + ((lane/8)%2)*8.
        Value bRow = add(mul(add(ci(j), laneHalf), ci(8)), lane8);
        Value bCol = add(ci(kk * 16), mul(laneOct, ci(8)));
        Value bFrag = nvgpu::LdMatrixOp::create(b_, loc_, frag4, Ks_, ValueRange{toIndex(bRow), toIndex(bCol)}, false, 4);
        SmallVector<Value> bo = operandsOf(bFrag, 4);
        s[j] = mma(a, {bo[0], bo[1]}, s[j]);
        s[j + 1] = mma(a, {bo[2], bo[3]}, s[j + 1]);
      }
    }

    // 3c. Scale, score rule, mask (partial tiles only).
    SmallVector<Value> flat;
    for (int64_t j = 0; j < nTilesN; ++j)
      for (int64_t e = 0; e < 4; ++e)
        flat.push_back(mulF(s[j][e], cf(scale)));
    auto keyOf = [&](int64_t j, int64_t e) {
      return add(add(colFirst, add(ci(j * 8 + (e & 1)), mul(inQuad, ci(2)))), kOff_);
    };
    if (!variant_.getScore().empty())
      for (int64_t j = 0; j < nTilesN; ++j)
        for (int64_t e = 0; e < 4; ++e)
          flat[j * 4 + e] = scoreOf(flat[j * 4 + e], e < 2 ? qA : qB, keyOf(j, e));
    auto ifMask = scf::IfOp::create(b_, loc_, TypeRange(ValueRange(flat)), needMask, true);
    {
      OpBuilder::InsertionGuard g3(b_);
      b_.setInsertionPointToStart(&ifMask.getThenRegion().front());
      SmallVector<Value> masked;
      for (int64_t j = 0; j < nTilesN; ++j)
        for (int64_t e = 0; e < 4; ++e) {
          Value k = keyOf(j, e);
          Value inRange = cmpI(arith::CmpIPredicate::slt, sub(k, kOff_), klen_);
          Value allowed = andB(inRange, maskOf(e < 2 ? qA : qB, k));
          masked.push_back(sel(allowed, flat[j * 4 + e], negInf()));
        }
      scf::YieldOp::create(b_, loc_, masked);
      b_.setInsertionPointToStart(&ifMask.getElseRegion().front());
      scf::YieldOp::create(b_, loc_, flat);
    }
    for (int64_t i = 0; i < int64_t(flat.size()); ++i)
      flat[i] = ifMask.getResult(i);

    // 3d. Online softmax, two rows per lane.
    Value mOld[2] = {state[0], state[1]}, lOld[2] = {state[2], state[3]};
    Value mUse[2], alpha[2], lNew[2], mNew[2];
    for (int r = 0; r < 2; ++r) {
      Value mx = negInf();
      for (int64_t j = 0; j < nTilesN; ++j)
        for (int64_t e = 2 * r; e < 2 * r + 2; ++e)
          mx = maxF(mx, flat[j * 4 + e]);
      mx = quadReduce(mx, true);
      mNew[r] = maxF(mOld[r], mx);
      Value isInf = arith::CmpFOp::create(b_, loc_, arith::CmpFPredicate::OEQ, mNew[r], negInf());
      mUse[r] = arith::SelectOp::create(b_, loc_, isInf, cf(0), mNew[r]);
      alpha[r] = exp2F(mulF(subF(mOld[r], mUse[r]), cf(kLog2e)));
    }
    SmallVector<Value> p(flat.size());
    Value rowSum[2] = {cf(0), cf(0)};
    for (int64_t j = 0; j < nTilesN; ++j)
      for (int64_t e = 0; e < 4; ++e) {
        int r = e < 2 ? 0 : 1;
        Value x = exp2F(mulF(subF(flat[j * 4 + e], mUse[r]), cf(kLog2e)));
        p[j * 4 + e] = x;
        rowSum[r] = addF(rowSum[r], x);
      }
    for (int r = 0; r < 2; ++r)
      lNew[r] = addF(mulF(lOld[r], alpha[r]), rowSum[r]);
    SmallVector<Value> acc;
    for (int64_t t = 0; t < nTilesD; ++t)
      for (int64_t e = 0; e < 4; ++e)
        acc.push_back(mulF(state[4 + t * 4 + e], alpha[e < 2 ? 0 : 1]));

    // 3e. O += P V. P's C fragments of column blocks 2c, 2c+1 are the A
    // fragment of k-step c; V^T comes from ldmatrix.trans.
    asyncWait(vGroup, 0);
    barrier();
    for (int64_t c = 0; c < kChunksN; ++c) {
      SmallVector<Value> a = {packPair(p[(2 * c) * 4 + 0], p[(2 * c) * 4 + 1]),
                              packPair(p[(2 * c) * 4 + 2], p[(2 * c) * 4 + 3]),
                              packPair(p[(2 * c + 1) * 4 + 0], p[(2 * c + 1) * 4 + 1]),
                              packPair(p[(2 * c + 1) * 4 + 2], p[(2 * c + 1) * 4 + 3])};
      for (int64_t t = 0; t < nTilesD; t += 2) {
        // Key rows 16c + lane%8 + ((lane/8)%2)*8, columns (t + lane/16)*8.
        Value vRow = add(ci(16 * c), add(lane8, mul(laneOct, ci(8))));
        Value vCol = mul(add(ci(t), laneHalf), ci(8));
        Value vFrag = nvgpu::LdMatrixOp::create(b_, loc_, frag4, Vs_, ValueRange{toIndex(vRow), toIndex(vCol)}, true, 4);
        SmallVector<Value> bo = operandsOf(vFrag, 4);
        SmallVector<Value> c0(acc.begin() + t * 4, acc.begin() + t * 4 + 4);
        SmallVector<Value> c1(acc.begin() + (t + 1) * 4, acc.begin() + (t + 1) * 4 + 4);
        SmallVector<Value> d0 = mma(a, {bo[0], bo[1]}, c0), d1 = mma(a, {bo[2], bo[3]}, c1);
        std::copy(d0.begin(), d0.end(), acc.begin() + t * 4);
        std::copy(d1.begin(), d1.end(), acc.begin() + (t + 1) * 4);
      }
    }
    SmallVector<Value> next = {mNew[0], mNew[1], lNew[0], lNew[1]};
    next.append(acc.begin(), acc.end());
    scf::YieldOp::create(b_, loc_, next);

    b_.setInsertionPointToEnd(loop.getBody());
    scf::YieldOp::create(b_, loc_, ifVisit.getResults());
  }

  // 4. Epilogue: O = acc / l, LSE = m + log(l).
  SmallVector<Value> fin(loop.getResults().begin(), loop.getResults().end());
  Value rows[2] = {rowA, rowB};
  for (int r = 0; r < 2; ++r) {
    Value m = fin[r];
    Value l = quadReduce(fin[2 + r], false);
    Value empty = arith::CmpFOp::create(b_, loc_, arith::CmpFPredicate::OEQ, l, cf(0));
    Value inv = arith::SelectOp::create(b_, loc_, empty, cf(0), arith::DivFOp::create(b_, loc_, cf(1), l));
    Value row = add(rowBase_, rows[r]);
    Value valid = cmpI(arith::CmpIPredicate::slt, row, qlen_);
    auto ifValid = scf::IfOp::create(b_, loc_, TypeRange{}, valid, false);
    OpBuilder::InsertionGuard g4(b_);
    b_.setInsertionPointToStart(&ifValid.getThenRegion().front());
    Value oRow = add(oBase, mul(row, osl_));
    for (int64_t t = 0; t < nTilesD; ++t) {
      Value x = mulF(fin[4 + t * 4 + 2 * r], inv), y = mulF(fin[4 + t * 4 + 2 * r + 1], inv);
      Value pair = vector::FromElementsOp::create(b_, loc_, VectorType::get({2}, f32_), ValueRange{x, y});
      Value packed = arith::TruncFOp::create(b_, loc_, VectorType::get({2}, elem_), pair);
      Value col = add(ci(t * 8), mul(inQuad, ci(2)));
      vector::StoreOp::create(b_, loc_, packed, o_, ValueRange{toIndex(add(oRow, col))});
    }
    auto ifLead = scf::IfOp::create(b_, loc_, TypeRange{}, cmpI(arith::CmpIPredicate::eq, inQuad, ci(0)), false);
    b_.setInsertionPointToStart(&ifLead.getThenRegion().front());
    Value logL = mulF(log2F(l), cf(1.0 / kLog2e));
    Value lse = arith::SelectOp::create(b_, loc_, empty, negInf(), addF(m, logL));
    memref::StoreOp::create(b_, loc_, lse, lse_, ValueRange{toIndex(add(lseBase, row))});
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

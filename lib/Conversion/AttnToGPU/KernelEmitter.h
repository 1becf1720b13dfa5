//===- KernelEmitter.h - The kernel template's builder -------*- C++ -*-===//
//
// KernelEmitter builds one fused attention kernel (gpu.func) for one
// attn.variant, head dim and dtype. Its parts live in:
//   FlashKernel.cpp   the signature, block set-up, the key-tile loop, the epilogue;
//   TileVisits.cpp    which key tiles a query tile (or warp) visits, with or
//                     without the mask, and the per-CTA input summaries;
//   TileCompute.cpp   one key tile: S on tensor cores, mask, online softmax, O += P V;
//   VariantRegions.cpp the variant's mask and score regions cloned per element.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "IntervalCodegen.h"
#include "attnc/Conversion/FlashKernel.h"

#include "attnc/Dialect/Attn/IR/AttnOps.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"

#include <cmath>
#include <functional>
#include <map>
#include <optional>

namespace attnc::flash {

using namespace mlir;
using analysis::KeyClause;

inline constexpr int64_t kWarps = 4, kThreads = 32 * kWarps;
inline constexpr double kRescaleSlack = 8.0;         ///< log2 units m may lag the row maximum (P <= 256)
inline constexpr int64_t kPad = 8;                   ///< elements of padding per shared row (bank conflicts)
inline constexpr int64_t kHugeLen = int64_t(1) << 40; ///< static length of the flat global memrefs
inline constexpr double kLog2e = 1.4426950408889634;

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
  // The parts of one key tile (TileCompute.cpp).
  Value keyAt(Value colFirst, int64_t j, int64_t e);
  Value queryAt(int64_t mt, int64_t e);
  SmallVector<Value> scoresQK(Value buf);
  SmallVector<Value> maskByIntervals(ArrayRef<Value> s, Value colFirst);
  SmallVector<Value> maskByRegion(ArrayRef<Value> s, Value colFirst);
  SmallVector<Value> softmaxStep(SmallVector<Value> &s, ArrayRef<Value> state, double log2Scale,
                                 SmallVector<Value> &rowSum);
  void accumulatePV(ArrayRef<Value> p, Value buf, SmallVector<Value> &acc);
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
  void emitEpilogue(ArrayRef<Value> fin, Value oBase, Value lseBase, ArrayRef<Value> rows);
};

} // namespace attnc::flash

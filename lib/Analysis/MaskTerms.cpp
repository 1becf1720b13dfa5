//===- MaskTerms.cpp - From an attn.variant's mask region to a Term -------===//
//
// Walks the use-def chain of the mask region's yielded i1 back to the block
// arguments (q, k, h, b, qlen, klen), constants and attn.read ops, one
// arith/math op at a time. i1 values become boolean terms; i32/i64 values
// integer terms. An op outside the modelled set becomes an opaque input
// read indexed by q and k, so the analysis stays sound.
//
//===----------------------------------------------------------------------===//
#include "attnc/Analysis/TileAnalysis.h"
#include "attnc/Dialect/Attn/IR/AttnOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;

namespace attnc::analysis {
namespace {

class TermBuilder {
public:
  explicit TermBuilder(attn::VariantOp variant) : variant_(variant) {}

  TermPtr get(Value v) {
    auto it = memo_.find(v);
    if (it != memo_.end())
      return it->second;
    TermPtr t = build(v);
    memo_[v] = t;
    return t;
  }

private:
  attn::VariantOp variant_;
  llvm::DenseMap<Value, TermPtr> memo_;

  static bool isBool(Value v) { return v.getType().isInteger(1); }

  TermPtr opaque(Value v) {
    TermPtr read = T::input("<opaque>", {Var::Q, Var::K});
    return isBool(v) ? T::ne(read, T::constant(0)) : read;
  }

  std::optional<Var> roleOf(Value v) {
    std::optional<StringRef> role = variant_.getArgRole(v);
    if (!role)
      return std::nullopt;
    return llvm::StringSwitch<std::optional<Var>>(*role)
        .Case("q", Var::Q)
        .Case("k", Var::K)
        .Case("h", Var::H)
        .Case("b", Var::B)
        .Case("qlen", Var::QLen)
        .Case("klen", Var::KLen)
        .Default(std::nullopt);
  }

  TermPtr build(Value v) {
    if (auto var = roleOf(v))
      return T::var(*var);
    Operation *op = v.getDefiningOp();
    if (!op)
      return opaque(v);
    auto bin = [&](auto fn) { return fn(get(op->getOperand(0)), get(op->getOperand(1))); };
    return llvm::TypeSwitch<Operation *, TermPtr>(op)
        .Case([&](arith::ConstantOp c) -> TermPtr {
          if (auto attr = dyn_cast<IntegerAttr>(c.getValue()))
            return isBool(v) ? T::boolean(attr.getValue().getBoolValue())
                             : T::constant(attr.getValue().getSExtValue());
          return opaque(v);
        })
        .Case([&](arith::AddIOp) { return bin(T::add); })
        .Case([&](arith::SubIOp) { return bin(T::sub); })
        .Case([&](arith::MulIOp) { return bin(T::mul); })
        .Case([&](arith::FloorDivSIOp) { return bin(T::floorDiv); })
        .Case([&](attn::FloorModOp) { return bin(T::floorMod); })
        .Case([&](arith::MaxSIOp) { return bin(T::max); })
        .Case([&](arith::MinSIOp) { return bin(T::min); })
        .Case([&](math::AbsIOp) { return T::abs(get(op->getOperand(0))); })
        .Case([&](arith::ExtSIOp e) { return get(e.getIn()); })
        .Case([&](arith::ExtUIOp e) {
          // A bool widened to an integer: 1 or 0.
          TermPtr in = get(e.getIn());
          return isBool(e.getIn()) ? T::select(in, T::constant(1), T::constant(0)) : in;
        })
        .Case([&](arith::SelectOp s) {
          return T::select(get(s.getCondition()), get(s.getTrueValue()), get(s.getFalseValue()));
        })
        .Case([&](arith::AndIOp) -> TermPtr {
          return isBool(v) ? bin(T::land) : opaque(v);
        })
        .Case([&](arith::OrIOp) -> TermPtr { return isBool(v) ? bin(T::lor) : opaque(v); })
        .Case([&](arith::XOrIOp) -> TermPtr {
          if (!isBool(v))
            return opaque(v);
          TermPtr a = get(op->getOperand(0)), b = get(op->getOperand(1));
          if (b->kind == Term::Kind::BoolConst)
            return b->value ? T::lnot(a) : a;
          if (a->kind == Term::Kind::BoolConst)
            return a->value ? T::lnot(b) : b;
          return T::lor(T::land(a, T::lnot(b)), T::land(T::lnot(a), b));
        })
        .Case([&](arith::CmpIOp c) -> TermPtr {
          TermPtr a = get(c.getLhs()), b = get(c.getRhs());
          if (isBool(c.getLhs())) {
            // Booleans compared as 0/1.
            a = T::select(a, T::constant(1), T::constant(0));
            b = T::select(b, T::constant(1), T::constant(0));
          }
          switch (c.getPredicate()) {
          case arith::CmpIPredicate::eq: return T::eq(a, b);
          case arith::CmpIPredicate::ne: return T::ne(a, b);
          case arith::CmpIPredicate::slt: return T::lt(a, b);
          case arith::CmpIPredicate::sle: return T::le(a, b);
          case arith::CmpIPredicate::sgt: return T::lt(b, a);
          case arith::CmpIPredicate::sge: return T::le(b, a);
          default: return opaque(v); // unsigned comparisons are not produced
          }
        })
        .Case([&](attn::ReadOp r) -> TermPtr {
          std::vector<Var> index;
          for (Value i : r.getIndices()) {
            auto role = roleOf(i);
            if (!role)
              return opaque(v);
            index.push_back(*role);
          }
          TermPtr read = T::input(r.getInput().str(), index, v.getType().getIntOrFloatBitWidth());
          return isBool(v) ? T::ne(read, T::constant(0)) : read;
        })
        .Default([&](Operation *) { return opaque(v); });
  }
};

} // namespace

TermPtr maskTermOf(Operation *op) {
  auto variant = cast<attn::VariantOp>(op);
  Block &body = variant.getMask().front();
  auto yield = cast<attn::YieldOp>(body.getTerminator());
  TermBuilder builder(variant);
  return builder.get(yield.getValues().front());
}

TileAnalysis::TileAnalysis(Operation *op) : mask_(maskTermOf(op)), intervals_(deriveKeyIntervals(mask_)) {}

} // namespace attnc::analysis

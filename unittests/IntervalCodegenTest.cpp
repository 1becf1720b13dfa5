//===- IntervalCodegenTest.cpp - Kernel closed forms against evalRange ----===//
//
// The kernels decide which key tiles to skip and which to compute without the
// mask from IntervalCodegen's arith ops; the analysis (and its brute-force
// tests) use Term.h's evalRange. This checks that the two agree: every term
// of every example's mask and of masks exercising each term kind is emitted
// with constant inputs for random boxes (query and key ranges, head, batch,
// lengths), folded to constants by the canonicalizer, and compared with
// evalRange over the same box; and both enclose evalPoint at random points.
//
//===----------------------------------------------------------------------===//
#include "../lib/Conversion/AttnToGPU/IntervalCodegen.h"

#include "attnc/Analysis/KeyIntervals.h"
#include "attnc/Analysis/TileAnalysis.h"
#include "attnc/Dialect/Attn/IR/AttnOps.h"
#include "attnc/dsl/Diagnostics.h"
#include "attnc/dsl/MLIRGen.h"
#include "attnc/dsl/Sema.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"

#include "ExampleSources.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <sstream>

using namespace attnc;
using analysis::Box;
using analysis::Range;
using analysis::Term;
using analysis::TermPtr;
using analysis::Var;

namespace {

/// `t` and all of its subterms, each once.
void collect(const TermPtr &t, std::vector<TermPtr> &out, std::set<const Term *> &seen) {
  if (!seen.insert(t.get()).second)
    return;
  out.push_back(t);
  for (const TermPtr &a : t->args)
    collect(a, out, seen);
}

/// Every term the kernels emit for a variant (the whole mask, and each
/// clause's bounds, row conditions and unsolved conditions) with all their
/// subterms, so that an error a comparison would hide still shows.
std::vector<TermPtr> termsOf(const std::string &src, std::string &error) {
  dsl::SourceFile file("t.attn", src);
  dsl::DiagnosticEngine diags(file);
  auto p = dsl::parseAndCheck(file, diags, {});
  if (!p) {
    std::ostringstream os;
    diags.print(os);
    error = os.str();
    return {};
  }
  mlir::MLIRContext context;
  auto module = dsl::mlirGen(context, *p, file);
  std::vector<TermPtr> roots, out;
  module->walk([&](attn::VariantOp v) {
    analysis::TileAnalysis analysis(v.getOperation());
    roots.push_back(analysis.maskTerm());
    for (const analysis::KeyClause &c : analysis.keyIntervals().clauses) {
      for (const TermPtr &t : {c.lo, c.hi})
        if (t)
          roots.push_back(t);
      roots.insert(roots.end(), c.rows.begin(), c.rows.end());
      roots.insert(roots.end(), c.rest.begin(), c.rest.end());
    }
  });
  std::set<const Term *> seen;
  for (const TermPtr &t : roots)
    collect(t, out, seen);
  return out;
}

/// IntervalCodegen's range of `t` over `box`, folded to constants.
std::optional<Range> emitted(mlir::MLIRContext &ctx, const Term &t, const Box &box) {
  mlir::OpBuilder b(&ctx);
  auto loc = b.getUnknownLoc();
  auto module = mlir::ModuleOp::create(loc);
  b.setInsertionPointToEnd(module.getBody());
  auto i64 = b.getI64Type();
  auto fn = mlir::func::FuncOp::create(b, loc, "f", b.getFunctionType({}, {i64, i64}));
  b.setInsertionPointToStart(fn.addEntryBlock());
  auto c = [&](int64_t v) { return mlir::arith::ConstantIntOp::create(b, loc, i64, v).getResult(); };
  IntervalEnv env;
  env.q = {c(box.q.lo), c(box.q.hi)};
  env.k = {c(box.k.lo), c(box.k.hi)};
  env.h = c(box.h.lo);
  env.b = c(box.b.lo);
  env.qlen = c(box.qlen.lo);
  env.klen = c(box.klen.lo);
  IntervalCodegen gen(b, loc, env);
  ValueRange64 r = gen.emit(t);
  mlir::func::ReturnOp::create(b, loc, mlir::ValueRange{r.lo, r.hi});
  mlir::PassManager pm(&ctx);
  pm.addPass(mlir::createCanonicalizerPass());
  std::optional<Range> out;
  if (mlir::succeeded(pm.run(module))) {
    auto ret = llvm::cast<mlir::func::ReturnOp>(fn.getBody().front().getTerminator());
    auto lo = ret.getOperand(0).getDefiningOp<mlir::arith::ConstantIntOp>();
    auto hi = ret.getOperand(1).getDefiningOp<mlir::arith::ConstantIntOp>();
    if (lo && hi)
      out = Range{lo.value(), hi.value()};
  }
  module->erase();
  return out;
}

TEST(IntervalCodegen, MatchesEvalRangeOnEveryMaskTerm) {
  std::vector<std::string> sources = attnc::testing::exampleSources();
  // Every term kind: floor division and modulo (negative operands too),
  // min/max/abs, select, negation, products, comparisons and connectives.
  sources.push_back("attention a { mask q / 64 == k / 64 || k % 7 == q % 5 - 3 || (q - 900) / 13 >= k / -7; }");
  sources.push_back("attention a { mask k >= min(q - 100, max(q / 3, 17)) && abs(q - 2 * k) <= 50; }");
  sources.push_back("attention a { mask (h < 2 ? k <= q : k >= q) && !(k == q - 1) && -k <= 10 - q; }");
  sources.push_back("attention a { mask k * 2 < q + klen - qlen || q * 3 >= k * 2 + b; }");
  mlir::MLIRContext ctx;
  ctx.loadDialect<mlir::arith::ArithDialect, mlir::func::FuncDialect>();
  std::mt19937_64 rng(7);
  auto pick = [&](int64_t lo, int64_t hi) { return lo + int64_t(rng() % uint64_t(hi - lo + 1)); };
  int64_t checked = 0;
  for (const std::string &src : sources) {
    std::string error;
    std::vector<TermPtr> terms = termsOf(src, error);
    ASSERT_FALSE(terms.empty()) << src << "\n" << error;
    for (const TermPtr &t : terms)
      for (int trial = 0; trial < 12; ++trial) {
        Box box;
        int64_t q0 = pick(-300, 5000), k0 = pick(-300, 5000);
        box.q = {q0, q0 + pick(0, 300)};
        box.k = {k0, k0 + pick(0, 300)};
        box.h = Range::point(pick(0, 7));
        box.b = Range::point(pick(0, 1));
        box.qlen = Range::point(pick(1, 5000));
        box.klen = Range::point(pick(1, 5000));
        Range want = analysis::evalRange(*t, box);
        std::optional<Range> got = emitted(ctx, *t, box);
        ASSERT_TRUE(got) << t->str() << ": did not fold to constants";
        EXPECT_EQ(got->lo, want.lo) << t->str() << " over q [" << box.q.lo << ", " << box.q.hi << "], k ["
                                    << box.k.lo << ", " << box.k.hi << "]";
        EXPECT_EQ(got->hi, want.hi) << t->str() << " over q [" << box.q.lo << ", " << box.q.hi << "], k ["
                                    << box.k.lo << ", " << box.k.hi << "]";
        // Both enclose the term's values at points of the box (terms that
        // read inputs are unknown here: their ranges are the whole line).
        if (t->readsInput())
          continue;
        for (int p = 0; p < 8; ++p) {
          Box at = box;
          at.q = Range::point(pick(box.q.lo, box.q.hi));
          at.k = Range::point(pick(box.k.lo, box.k.hi));
          int64_t v = analysis::evalPoint(*t, at);
          EXPECT_LE(got->lo, v) << t->str();
          EXPECT_GE(got->hi, v) << t->str();
        }
        ++checked;
      }
  }
  EXPECT_GT(checked, 2000);
}

TEST(IntervalCodegen, ClauseBoundsAreExactAtOneQueryRow) {
  // Partial tiles of an interval mask (TileCompute.cpp's maskByIntervals)
  // evaluate each clause's bounds and row conditions by IntervalCodegen at
  // one query row: they must come out as single, exact values there. The
  // masks are the GPU differential test's first failures (issue 13): a
  // quotient and a product of variables, i64 arithmetic that wraps, a 2^31
  // constant, a key bound read at q; their inexact parts must have moved to
  // `rest`, where partial tiles evaluate the mask itself.
  std::vector<std::string> sources = attnc::testing::exampleSources();
  const std::vector<std::string> inexact = {
      "attention a { mask klen / max(qlen, 1) > h / (abs(h) + 1); }",
      "attention a { mask k != q * h && k <= q; }",
      "attention a { mask (h / max(h, 1)) == max(b, h) && q - k < 2147483648; }",
      "attention a { mask min(q + 9223372036854775807, 1037) >= k; }",
      "input x : i32[token]; attention a { mask k <= q + x[q] && !(x[q] > 3); }",
  };
  sources.insert(sources.end(), inexact.begin(), inexact.end());
  mlir::MLIRContext ctx;
  ctx.loadDialect<mlir::arith::ArithDialect, mlir::func::FuncDialect>();
  std::mt19937_64 rng(11);
  auto pick = [&](int64_t lo, int64_t hi) { return lo + int64_t(rng() % uint64_t(hi - lo + 1)); };
  int64_t checked = 0;
  for (const std::string &src : sources) {
    dsl::SourceFile file("t.attn", src);
    dsl::DiagnosticEngine diags(file);
    auto p = dsl::parseAndCheck(file, diags, {});
    ASSERT_TRUE(p) << src;
    mlir::MLIRContext mctx;
    auto module = dsl::mlirGen(mctx, *p, file);
    bool hasRest = false;
    module->walk([&](attn::VariantOp v) {
      analysis::TileAnalysis analysis(v.getOperation());
      hasRest |= analysis.keyIntervals().hasRest();
      for (const analysis::KeyClause &c : analysis.keyIntervals().clauses) {
        std::vector<TermPtr> bounds = c.rows;
        for (const TermPtr &t : {c.lo, c.hi})
          if (t)
            bounds.push_back(t);
        for (const TermPtr &t : bounds) {
          EXPECT_TRUE(analysis::exactAtPoint(*t)) << src << ": " << t->str();
          if (t->readsInput()) // scalar reads (prefix[b]): this test has no values for them
            continue;
          for (int trial = 0; trial < 20; ++trial) {
            Box at;
            at.q = Range::point(pick(-3000, 5000));
            at.k = Range::point(0);
            at.h = Range::point(pick(0, 7));
            at.b = Range::point(pick(0, 3));
            at.qlen = Range::point(pick(1, 5000));
            at.klen = Range::point(pick(1, 5000));
            std::optional<Range> got = emitted(ctx, *t, at);
            ASSERT_TRUE(got) << t->str();
            int64_t want = analysis::evalPoint(*t, at);
            EXPECT_EQ(got->lo, want) << src << ": " << t->str() << " at q = " << at.q.lo;
            EXPECT_EQ(got->hi, want) << src << ": " << t->str() << " at q = " << at.q.lo;
            ++checked;
          }
        }
      }
    });
    if (std::find(inexact.begin(), inexact.end(), src) != inexact.end())
      EXPECT_TRUE(hasRest) << src << ": its inexact bound should be in rest";
  }
  EXPECT_GT(checked, 400);
}

} // namespace

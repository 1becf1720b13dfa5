//===- ScoreDerivativeTest.cpp - Score rules' derivatives against differences ===//
//
// The gradient kernels multiply dS by the score rule's derivative, emitted by
// ScoreDerivative.cpp. This checks it against central differences of the
// rule itself: every example's score rule without inputs and rules
// exercising each derivative rule (+ - * / neg, min, max, ?:, abs, exp, log,
// sqrt, tanh, positions converted to floats) are cloned with constant
// arguments at points away from their kinks, folded to constants by the
// canonicalizer, and f'(s) compared with (f(s + h) - f(s - h)) / 2h. And a
// rule with an op that has no derivative rule is refused, by name.
//
//===----------------------------------------------------------------------===//
#include "../lib/Conversion/AttnToGPU/ScoreDerivative.h"

#include "attnc/Dialect/Attn/IR/AttnOps.h"
#include "attnc/dsl/Diagnostics.h"
#include "attnc/dsl/MLIRGen.h"
#include "attnc/dsl/Sema.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"

#include "ExampleSources.h"

#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <sstream>

using namespace attnc;

namespace {

struct Point {
  int64_t q, k, h;
  double s;
};

/// (f(s), f'(s)) of `score` at p, folded to constants (nullopt if they did not fold).
std::optional<std::pair<double, double>> evaluate(mlir::MLIRContext &ctx, mlir::Region &score, const Point &p) {
  mlir::OpBuilder b(&ctx);
  auto loc = b.getUnknownLoc();
  auto module = mlir::ModuleOp::create(loc);
  b.setInsertionPointToEnd(module.getBody());
  auto f32 = b.getF32Type();
  auto fn = mlir::func::FuncOp::create(b, loc, "f", b.getFunctionType({}, {f32, f32}));
  b.setInsertionPointToStart(fn.addEntryBlock());
  auto c = [&](int64_t v) { return mlir::arith::ConstantIntOp::create(b, loc, b.getI64Type(), v).getResult(); };
  mlir::Value s = mlir::arith::ConstantFloatOp::create(b, loc, f32, llvm::APFloat(float(p.s)));
  auto [y, dy] = cloneScoreWithDerivative(b, loc, score, {c(p.q), c(p.k), c(p.h), c(0), c(4096), c(4096), s});
  mlir::func::ReturnOp::create(b, loc, mlir::ValueRange{y, dy});
  mlir::PassManager pm(&ctx);
  pm.addPass(mlir::createCanonicalizerPass());
  std::optional<std::pair<double, double>> out;
  if (mlir::succeeded(pm.run(module))) {
    auto ret = llvm::cast<mlir::func::ReturnOp>(fn.getBody().front().getTerminator());
    auto fy = ret.getOperand(0).getDefiningOp<mlir::arith::ConstantFloatOp>();
    auto fdy = ret.getOperand(1).getDefiningOp<mlir::arith::ConstantFloatOp>();
    if (fy && fdy)
      out = std::pair{fy.value().convertToDouble(), fdy.value().convertToDouble()};
  }
  module->erase();
  return out;
}

/// The module of `src`, or null with the diagnostics in `error`.
mlir::OwningOpRef<mlir::ModuleOp> compile(mlir::MLIRContext &ctx, const std::string &src, std::string &error) {
  dsl::SourceFile file("t.attn", src);
  dsl::DiagnosticEngine diags(file);
  auto p = dsl::parseAndCheck(file, diags, {});
  if (!p) {
    std::ostringstream os;
    diags.print(os);
    error = os.str();
    return {};
  }
  return dsl::mlirGen(ctx, *p, file);
}

bool readsInput(mlir::Region &r) {
  bool reads = false;
  r.walk([&](attn::ReadOp) { reads = true; });
  return reads;
}

TEST(ScoreDerivative, MatchesCentralDifferences) {
  std::vector<std::string> sources = attnc::testing::exampleSources();
  // Every derivative rule; the sample points below keep off the kinks (s = -2, 0, 3).
  sources.push_back("attention a { mask k <= q; score 30 * tanh(s / 30) + 0.25 * (k - q); }");
  sources.push_back("attention a { mask k <= q; score exp(s / 8) - log(abs(s) + 2) + sqrt(s * s + 1); }");
  sources.push_back("attention a { mask k <= q; score max(s, -2) * min(s, 3) - -s / (1 + abs(s)); }");
  sources.push_back("attention a { mask k <= q; score q - k > 3 ? s * 2 - h : -s; }");
  sources.push_back("attention a { mask k <= q; score s > 0 ? s : 0.5 * s; }");
  sources.push_back("attention a { mask k <= q; score (s - q) / (k + 1 + s * s); }");
  sources.push_back("attention a { mask k <= q; score s * 0 + 7; }"); // constant: f' = 0
  mlir::MLIRContext ctx;
  ctx.loadDialect<mlir::arith::ArithDialect, mlir::func::FuncDialect, mlir::math::MathDialect,
                  attn::AttnDialect>();
  const std::vector<Point> points = {{100, 40, 0, -7.3}, {100, 99, 1, -2.6}, {5, 5, 2, -0.7},
                                     {900, 17, 3, 0.45}, {12, 3, 0, 1.9},    {3000, 2999, 5, 4.4},
                                     {64, 0, 7, 11.2}};
  int64_t checked = 0, rules = 0;
  for (const std::string &src : sources) {
    std::string error;
    auto module = compile(ctx, src, error);
    ASSERT_TRUE(module) << src << "\n" << error;
    module->walk([&](attn::VariantOp v) {
      if (v.getScore().empty() || readsInput(v.getScore()))
        return;
      ++rules;
      EXPECT_EQ(scoreDerivativeRefusal(v.getScore()), "") << src;
      for (const Point &p : points) {
        auto at = evaluate(ctx, v.getScore(), p);
        ASSERT_TRUE(at) << src << ": did not fold to constants";
        const double h = 1e-2;
        auto up = evaluate(ctx, v.getScore(), {p.q, p.k, p.h, p.s + h});
        auto down = evaluate(ctx, v.getScore(), {p.q, p.k, p.h, p.s - h});
        ASSERT_TRUE(up && down);
        double numeric = (up->first - down->first) / (2 * h);
        EXPECT_NEAR(at->second, numeric, 2e-3 * std::max(1.0, std::abs(numeric)))
            << src << " at s = " << p.s << ", q = " << p.q << ", k = " << p.k << ", h = " << p.h;
        ++checked;
      }
    });
  }
  EXPECT_GE(rules, 9); // gemma2's two and the seven above
  EXPECT_GE(checked, 63);
}

TEST(ScoreDerivative, RefusesAnOpWithoutARule) {
  mlir::MLIRContext ctx;
  ctx.loadDialect<mlir::arith::ArithDialect, mlir::math::MathDialect, attn::AttnDialect>();
  std::string error;
  auto module = compile(ctx, "attention a { mask k <= q; score 50 * tanh(s / 50); }", error);
  ASSERT_TRUE(module) << error;
  module->walk([&](attn::VariantOp v) {
    EXPECT_EQ(scoreDerivativeRefusal(v.getScore()), "");
    // The language has no cos; an op without a rule, put in tanh's place.
    v.getScore().walk([&](mlir::math::TanhOp t) {
      mlir::OpBuilder b(t);
      t.replaceAllUsesWith(mlir::math::CosOp::create(b, t.getLoc(), t.getOperand()).getResult());
      t.erase();
    });
    EXPECT_EQ(scoreDerivativeRefusal(v.getScore()), "its score rule's op 'math.cos' has no derivative rule");
  });
}

} // namespace

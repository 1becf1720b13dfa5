//===- SemaTest.cpp - Unit tests for sema and the evaluator ---------------===//
#include "attnc/dsl/Eval.h"
#include "attnc/dsl/Sema.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

using namespace attnc::dsl;

namespace {

/// Parses and checks `src`; the diagnostics text lands in `diagText`.
struct Checked {
  std::unique_ptr<SourceFile> file;
  std::unique_ptr<DiagnosticEngine> diags;
  std::optional<CheckedProgram> program;
  std::string diagText;
};

Checked check(const std::string &src, const std::vector<ParamOverride> &overrides = {}) {
  Checked c;
  c.file = std::make_unique<SourceFile>("test.attn", src);
  c.diags = std::make_unique<DiagnosticEngine>(*c.file);
  c.program = parseAndCheck(*c.file, *c.diags, overrides);
  std::ostringstream os;
  c.diags->print(os);
  c.diagText = os.str();
  return c;
}

bool maskAt(const CheckedProgram &p, int variant, int64_t q, int64_t k) {
  EvalEnv env;
  env.program = &p;
  env.variant = &p.ast.attentions[variant];
  env.q = q;
  env.k = k;
  return evalMask(p.ast.attentions[variant], env);
}

TEST(Sema, ParamsAndOverrides) {
  const char *src = "param w = 4; param f = 0.5; param on = true; param half = w / 2;\n"
                    "attention a { mask on && q - k < half; score s * f; }";
  auto c = check(src);
  ASSERT_TRUE(c.program) << c.diagText;
  EXPECT_EQ(c.program->params[0].i, 4);
  EXPECT_EQ(c.program->params[1].type, Type::Float);
  EXPECT_EQ(c.program->params[3].i, 2);
  auto o = check(src, {{"w", "10"}, {"f", "2"}, {"on", "false"}});
  ASSERT_TRUE(o.program) << o.diagText;
  EXPECT_EQ(o.program->params[0].i, 10);
  EXPECT_DOUBLE_EQ(o.program->params[1].f, 2.0);
  EXPECT_FALSE(o.program->params[2].b);
  EXPECT_TRUE(o.program->paramOverridden[0]);
}

TEST(Sema, OverrideErrors) {
  const char *src = "param window = 4; attention a { mask q - k < window; }";
  auto unknown = check(src, {{"windw", "3"}});
  EXPECT_FALSE(unknown.program);
  EXPECT_NE(unknown.diagText.find("no param named 'windw'"), std::string::npos) << unknown.diagText;
  EXPECT_NE(unknown.diagText.find("did you mean 'window'"), std::string::npos) << unknown.diagText;
  auto badType = check(src, {{"window", "2.5"}});
  EXPECT_FALSE(badType.program);
  EXPECT_NE(badType.diagText.find("expected an int value"), std::string::npos) << badType.diagText;
}

TEST(Sema, OverridesReachDependentParams) {
  auto c = check("param window = 64; param half = window / 2; attention a { mask q - k < half; }", {{"window", "128"}});
  ASSERT_TRUE(c.program) << c.diagText;
  EXPECT_EQ(c.program->params[1].i, 64);
}

TEST(Sema, NonFiniteParamsAreErrors) {
  auto c = check("param a = 1e400; attention x { scale a; }");
  EXPECT_FALSE(c.program);
  EXPECT_NE(c.diagText.find("the value of param 'a' is not finite"), std::string::npos) << c.diagText;
}

TEST(Sema, LayerVariableNamedLikeAParam) {
  auto c = check("param g = 2; attention a { } attention l { mask k <= q; }\n"
                 "model m { layers 4; layer i: l; layer g: a; }");
  EXPECT_FALSE(c.program);
  EXPECT_NE(c.diagText.find("'g' is a param"), std::string::npos) << c.diagText;
  auto ok = check("param g = 2; attention a { } attention l { mask k <= q; }\n"
                  "model m { layers 4; layer i: l; layer (g): a; }");
  ASSERT_TRUE(ok.program) << ok.diagText;
  EXPECT_EQ(ok.program->models[0].layerVariant, (std::vector<int>{1, 1, 0, 1}));
}

TEST(Sema, VariantFacts) {
  auto c = check("input doc : i32[batch, token]; input slope : f32[head];\n"
                 "attention a { mask doc[b, q] == doc[b, k] && k <= q; score s + slope[h] * (k - q); sink; }\n"
                 "attention c { mask h % 2 == 0; }\n"
                 "attention d { select topk(16) by q - k; }");
  ASSERT_TRUE(c.program) << c.diagText;
  const VariantInfo &a = c.program->variants[0];
  EXPECT_FALSE(a.maskUsesHead);
  EXPECT_TRUE(a.maskUsesBatch);
  EXPECT_TRUE(a.scoreUsesHead);
  EXPECT_EQ(a.inputsUsed, (std::vector<int>{0, 1}));
  EXPECT_FALSE(a.topk);
  EXPECT_TRUE(c.program->variants[1].maskUsesHead);
  const VariantInfo &v = c.program->variants[2];
  ASSERT_TRUE(v.topk);
  EXPECT_EQ(*v.topk, 16);
  EXPECT_TRUE(c.program->ast.attentions[0].sink);
}

TEST(Sema, ModelLayerTable) {
  auto c = check("attention g { } attention l { mask abs(q - k) <= 64; }\n"
                 "model m { layers 22; layer i: i % 3 == 0 ? g : l; }\n"
                 "model n { layers 6; layer 0..5: l; layer 2: g; layer 4..5: g; }");
  ASSERT_TRUE(c.program) << c.diagText;
  const ModelInfo &m = c.program->models[0];
  EXPECT_EQ(m.layers, 22);
  EXPECT_EQ(m.distinctVariants, (std::vector<int>{0, 1}));
  for (int i = 0; i < 22; ++i)
    EXPECT_EQ(m.layerVariant[i], i % 3 == 0 ? 0 : 1) << "layer " << i;
  // Later rules override earlier ones.
  EXPECT_EQ(c.program->models[1].layerVariant, (std::vector<int>{1, 1, 0, 1, 0, 0}));
  EXPECT_EQ(c.program->models[1].distinctVariants, (std::vector<int>{1, 0}));
}

TEST(Sema, TypesAreAnnotated) {
  auto c = check("attention a { let d = q - k; mask d >= 0 && d < 8; score s * 2; }");
  ASSERT_TRUE(c.program) << c.diagText;
  const AttentionDecl &a = c.program->ast.attentions[0];
  EXPECT_EQ(a.lets[0].value->type, Type::Int);
  EXPECT_EQ(a.masks[0]->type, Type::Bool);
  EXPECT_EQ(a.score->type, Type::Float);
  EXPECT_EQ(a.masks[0]->operands[0]->operands[0]->ref, RefKind::Let);
}

TEST(Sema, ConstantFalseMaskWarns) {
  auto c = check("attention a { mask abs(q - k) < 0; }");
  ASSERT_TRUE(c.program);
  EXPECT_TRUE(c.program->variants[0].maskConstantFalse);
  EXPECT_NE(c.diagText.find("warning: the mask of attention 'a' is always false"), std::string::npos);
  auto ok = check("attention a { mask abs(q - k) <= 0; }");
  ASSERT_TRUE(ok.program);
  EXPECT_FALSE(ok.program->variants[0].maskConstantFalse);
}

TEST(Sema, SeveralErrorsInOneRun) {
  auto c = check("attention a { mask foo < 1; mask q + 1; score tanh(true); }");
  EXPECT_FALSE(c.program);
  EXPECT_EQ(c.diags->errorCount(), 3u) << c.diagText;
}

TEST(Eval, FloorDivisionAndModulo) {
  EXPECT_EQ(floorDiv(-7, 2), -4);
  EXPECT_EQ(floorMod(-7, 2), 1);
  EXPECT_EQ(floorDiv(7, -2), -4);
  EXPECT_EQ(floorMod(7, -2), -1);
  EXPECT_EQ(floorDiv(6, 3), 2);
  EXPECT_EQ(floorMod(-6, 3), 0);
  auto c = check("attention a { mask q / 4 == k / 4; }");
  ASSERT_TRUE(c.program);
  EXPECT_TRUE(maskAt(*c.program, 0, -1, -4)); // both in chunk -1
  EXPECT_FALSE(maskAt(*c.program, 0, -1, 0));
  EXPECT_TRUE(maskAt(*c.program, 0, 7, 4));
}

TEST(Eval, MasksOfExamplesMeanWhatTheySay) {
  auto c = check("param window = 3;\n"
                 "attention sw { mask k <= q && q - k < window; }\n"
                 "attention sl { mask k <= q && (k < 4 || q - k < 2000); }");
  ASSERT_TRUE(c.program) << c.diagText;
  // window 3, q 10 -> keys 8..10.
  for (int k = 0; k < 14; ++k)
    EXPECT_EQ(maskAt(*c.program, 0, 10, k), k >= 8 && k <= 10) << k;
  EXPECT_TRUE(maskAt(*c.program, 1, 5000, 3));
  EXPECT_FALSE(maskAt(*c.program, 1, 5000, 4));
  EXPECT_TRUE(maskAt(*c.program, 1, 5000, 3001));
}

TEST(Eval, RuntimeDivisionByZeroIsAnError) {
  auto c = check("attention a { mask q / (k - 1) > 0; }");
  ASSERT_TRUE(c.program);
  EXPECT_THROW(maskAt(*c.program, 0, 3, 1), EvalError);
}

TEST(Examples, AllCheckWithoutDiagnostics) {
  namespace fs = std::filesystem;
  int seen = 0;
  for (const auto &entry : fs::directory_iterator(ATTNC_EXAMPLES_DIR)) {
    if (entry.path().extension() != ".attn")
      continue;
    std::ifstream in(entry.path());
    std::stringstream ss;
    ss << in.rdbuf();
    auto c = check(ss.str());
    EXPECT_TRUE(c.program) << entry.path() << "\n" << c.diagText;
    EXPECT_EQ(c.diags->warningCount(), 0u) << entry.path() << "\n" << c.diagText;
    ++seen;
  }
  EXPECT_GE(seen, 11);
}

} // namespace

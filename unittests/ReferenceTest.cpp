//===- ReferenceTest.cpp - The float64 reference executor -----------------===//
//
// Hand-computed tiny cases (1 query, 2 keys with a known O), invariants that
// must hold for any inputs (V = 1 gives O = 1, or 1 minus the sink's share;
// a window wider than the sequence is causal; topk(K) with K >= the allowed
// keys is the mask alone; one document is causal; GQA equals MHA with
// repeated K/V; offsets translate), empty rows, the topk tie rule, the DSA
// indexer, and every argument error. Programs come from source strings
// through dsl::parseAndCheck, as in the driver.
//
//===----------------------------------------------------------------------===//
#include "reference/Reference.h"

#include "attnc/dsl/Diagnostics.h"
#include "attnc/dsl/Eval.h"
#include "attnc/dsl/Sema.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <random>
#include <sstream>

using namespace attnc;
using reference::ReferenceError;
using reference::Request;
using reference::Result;
using reference::Tensor;

namespace {

const double kInf = std::numeric_limits<double>::infinity();

/// A checked program that outlives the test's requests.
struct Prog {
  std::unique_ptr<dsl::SourceFile> file;
  std::unique_ptr<dsl::DiagnosticEngine> diags;
  std::optional<dsl::CheckedProgram> p;
  int variant(const std::string &name) const {
    int v = p->findVariant(name);
    EXPECT_GE(v, 0) << name;
    return v;
  }
};

std::unique_ptr<Prog> compile(const std::string &src) {
  auto out = std::make_unique<Prog>();
  out->file = std::make_unique<dsl::SourceFile>("test.attn", src);
  out->diags = std::make_unique<dsl::DiagnosticEngine>(*out->file);
  out->p = dsl::parseAndCheck(*out->file, *out->diags);
  if (!out->p || out->diags->errorCount()) {
    std::ostringstream os;
    out->diags->print(os);
    ADD_FAILURE() << "program does not check:\n" << src << "\n" << os.str();
    return nullptr;
  }
  return out;
}

Tensor random(std::vector<int64_t> shape, uint64_t seed, double lo = -1, double hi = 1) {
  Tensor t;
  t.shape = std::move(shape);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  t.data.resize(size_t(t.numel()));
  for (double &x : t.data)
    x = dist(rng);
  return t;
}

Tensor filled(std::vector<int64_t> shape, double v) {
  Tensor t;
  t.shape = std::move(shape);
  t.data.assign(size_t(t.numel()), v);
  return t;
}

Tensor fromValues(std::vector<int64_t> shape, std::vector<double> v) {
  Tensor t;
  t.shape = std::move(shape);
  t.data = std::move(v);
  EXPECT_EQ(int64_t(t.data.size()), t.numel());
  return t;
}

/// A request with random Q [B,Hq,Lq,D], K/V [B,Hkv,Lk,D].
Request makeRequest(const Prog &p, const std::string &variant, int64_t B, int64_t Hq, int64_t Hkv,
                    int64_t Lq, int64_t Lk, int64_t D, uint64_t seed = 1) {
  Request r;
  r.program = &*p.p;
  r.variant = p.variant(variant);
  r.q = random({B, Hq, Lq, D}, seed);
  r.k = random({B, Hkv, Lk, D}, seed + 1);
  r.v = random({B, Hkv, Lk, D}, seed + 2);
  return r;
}

/// Slices rows [r0, r1) of the third axis of a [B, H, L, X] tensor.
Tensor rows(const Tensor &t, int64_t r0, int64_t r1) {
  Tensor out;
  int64_t B = t.shape[0], H = t.shape[1], L = t.shape[2], X = t.shape.size() > 3 ? t.shape[3] : 1;
  out.shape = t.shape;
  out.shape[2] = r1 - r0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t x = 0; x < X; ++x)
          out.data.push_back(t.data[size_t(((b * H + h) * L + r) * X + x)]);
  return out;
}

/// Head h of a [B, H, L, X] tensor, as [B, 1, L, X].
Tensor head(const Tensor &t, int64_t h) {
  Tensor out;
  int64_t B = t.shape[0], H = t.shape[1], L = t.shape[2], X = t.shape.size() > 3 ? t.shape[3] : 1;
  out.shape = t.shape;
  out.shape[1] = 1;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < L * X; ++i)
      out.data.push_back(t.data[size_t((b * H + h) * L * X + i)]);
  return out;
}

void expectNear(const std::vector<double> &a, const std::vector<double> &b, double tol = 1e-13) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isinf(b[i]))
      EXPECT_EQ(a[i], b[i]) << "at " << i;
    else
      EXPECT_NEAR(a[i], b[i], tol * (1 + std::fabs(b[i]))) << "at " << i;
  }
}

/// The error a request raises: its argument and message.
std::pair<std::string, std::string> errorOf(const Request &r) {
  try {
    reference::run(r);
  } catch (const ReferenceError &e) {
    return {e.arg, e.what()};
  }
  return {"", "(no error)"};
}

bool contains(const std::string &s, const std::string &sub) { return s.find(sub) != std::string::npos; }

/// A naive softmax attention for one head given per-pair score and mask.
void naiveRow(const Request &r, int64_t b, int64_t h, int64_t row,
              const std::function<bool(int64_t q, int64_t k)> &allowed,
              const std::function<double(int64_t q, int64_t k, double s)> &score, double scale,
              std::vector<double> &o, double &lse) {
  int64_t Hq = r.q.shape[1], Lq = r.q.shape[2], D = r.q.shape[3];
  int64_t Hkv = r.k.shape[1], Lk = r.k.shape[2], g = h / (Hq / Hkv);
  int64_t qpos = row + Lk - Lq;
  std::vector<double> s;
  std::vector<int64_t> ks;
  for (int64_t k = 0; k < Lk; ++k) {
    if (!allowed(qpos, k))
      continue;
    double dot = 0;
    for (int64_t x = 0; x < D; ++x)
      dot += r.q.data[size_t(((b * Hq + h) * Lq + row) * D + x)] *
             r.k.data[size_t(((b * Hkv + g) * Lk + k) * D + x)];
    s.push_back(score(qpos, k, scale * dot));
    ks.push_back(k);
  }
  o.assign(size_t(D), 0.0);
  if (s.empty()) {
    lse = -kInf;
    return;
  }
  double m = *std::max_element(s.begin(), s.end()), den = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    double p = std::exp(s[i] - m);
    den += p;
    for (int64_t x = 0; x < D; ++x)
      o[size_t(x)] += p * r.v.data[size_t(((b * Hkv + g) * Lk + ks[i]) * D + x)];
  }
  for (double &x : o)
    x /= den;
  lse = m + std::log(den);
}

} // namespace

//===----------------------------------------------------------------------===//
// Hand-computed cases
//===----------------------------------------------------------------------===//

TEST(Reference, OneQueryTwoKeys) {
  auto p = compile("attention full { scale 1.0; }");
  ASSERT_TRUE(p);
  Request r;
  r.program = &*p->p;
  r.variant = 0;
  r.q = fromValues({1, 1, 1, 2}, {1, 0});
  r.k = fromValues({1, 1, 2, 2}, {1, 0, 0, 0}); // s = 1, 0
  r.v = fromValues({1, 1, 2, 2}, {1, 2, 3, 4});
  Result out = reference::run(r);
  double e = std::exp(1.0);
  expectNear(out.o.data, {(e * 1 + 3) / (e + 1), (e * 2 + 4) / (e + 1)}, 1e-15);
  expectNear(out.lse.data, {std::log(e + 1)}, 1e-15);
  EXPECT_EQ(out.o.shape, (std::vector<int64_t>{1, 1, 1, 2}));
  EXPECT_EQ(out.lse.shape, (std::vector<int64_t>{1, 1, 1}));
  EXPECT_TRUE(out.indices.empty());
}

TEST(Reference, CausalTwoByTwoDefaultScale) {
  auto p = compile("attention causal { mask k <= q; }");
  ASSERT_TRUE(p);
  Request r;
  r.program = &*p->p;
  r.variant = 0;
  r.q = fromValues({1, 1, 2, 4}, {1, 0, 0, 0, 0, 2, 0, 0});
  r.k = fromValues({1, 1, 2, 4}, {1, 1, 0, 0, 0, 1, 0, 0});
  r.v = fromValues({1, 1, 2, 4}, {1, 2, 3, 4, 5, 6, 7, 8});
  Result out = reference::run(r);
  // scale 1/sqrt(4): row 0 sees key 0 (s = 0.5); row 1 sees both (s = 1, 1).
  expectNear(out.o.data, {1, 2, 3, 4, 3, 4, 5, 6}, 1e-15);
  expectNear(out.lse.data, {0.5, 1 + std::log(2.0)}, 1e-15);
}

TEST(Reference, SinkHandComputed) {
  auto p = compile("attention sk { sink; scale 1.0; }");
  ASSERT_TRUE(p);
  Request r;
  r.program = &*p->p;
  r.variant = 0;
  r.q = fromValues({1, 1, 1, 1}, {0});
  r.k = fromValues({1, 1, 1, 1}, {5});
  r.v = fromValues({1, 1, 1, 1}, {8});
  r.sinks = fromValues({1}, {std::log(3.0)}); // P = 1 / (3 + 1)
  Result out = reference::run(r);
  expectNear(out.o.data, {2.0}, 1e-15);
  expectNear(out.lse.data, {std::log(4.0)}, 1e-15);
}

TEST(Reference, ScoreRulesMatchFormulas) {
  auto p = compile(R"(
    input slope : f32[head];
    attention softcap { mask k <= q; score 2.0 * tanh(s / 2.0); }
    attention alibi { mask k <= q; score s + slope[h] * (k - q); }
  )");
  ASSERT_TRUE(p);
  for (const char *name : {"softcap", "alibi"}) {
    Request r = makeRequest(*p, name, 2, 3, 3, 5, 9, 4, 7);
    r.q = random({2, 3, 5, 4}, 7, -3, 3);
    std::vector<double> slope = {0.5, 0.25, 0.125};
    if (std::string(name) == "alibi")
      r.inputs["slope"] = {{3}, {}, slope};
    Result out = reference::run(r);
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t h = 0; h < 3; ++h)
        for (int64_t row = 0; row < 5; ++row) {
          std::vector<double> o;
          double lse;
          naiveRow(
              r, b, h, row, [](int64_t q, int64_t k) { return k <= q; },
              [&](int64_t q, int64_t k, double s) {
                return std::string(name) == "alibi" ? s + slope[size_t(h)] * double(k - q)
                                                    : 2.0 * std::tanh(s / 2.0);
              },
              0.5, o, lse);
          size_t at = size_t((b * 3 + h) * 5 + row);
          EXPECT_NEAR(out.lse.data[at], lse, 1e-13) << name;
          for (size_t x = 0; x < 4; ++x)
            EXPECT_NEAR(out.o.data[at * 4 + x], o[x], 1e-13) << name;
        }
  }
}

//===----------------------------------------------------------------------===//
// Invariants
//===----------------------------------------------------------------------===//

TEST(Reference, OnesGiveOneOrOneMinusSinkShare) {
  auto p = compile(R"(
    param window = 3;
    input slope : f32[head];
    attention causal { mask k <= q; }
    attention sw { mask k <= q && q - k < window; score 5.0 * tanh(s / 5.0); }
    attention alibi { mask k <= q; score s + slope[h] * (k - q); }
    attention band { mask abs(q - k) <= 2; sink; }
    attention full { sink; scale 0.3; }
  )");
  ASSERT_TRUE(p);
  for (const char *name : {"causal", "sw", "alibi", "band", "full"}) {
    Request r = makeRequest(*p, name, 2, 4, 2, 6, 11, 8, 3);
    r.v = filled({2, 2, 11, 8}, 1.0);
    r.inputs["slope"] = {{4}, {}, {0.5, -0.25, 1, 2}};
    bool sink = std::string(name) == "band" || std::string(name) == "full";
    if (sink)
      r.sinks = fromValues({4}, {-1, 0, 2, 10});
    Result out = reference::run(r);
    for (size_t i = 0; i < out.lse.data.size(); ++i) {
      ASSERT_TRUE(std::isfinite(out.lse.data[i])) << name;
      double expect = 1.0;
      if (sink) {
        int64_t h = int64_t(i / 6) % 4;
        expect = 1.0 - std::exp(r.sinks->data[size_t(h)] - out.lse.data[i]);
      }
      for (size_t x = 0; x < 8; ++x)
        EXPECT_NEAR(out.o.data[i * 8 + x], expect, 1e-14) << name << " row " << i;
    }
  }
}

TEST(Reference, WindowWiderThanSequenceIsCausal) {
  auto p = compile(R"(
    param window = 1000;
    attention sw { mask k <= q && q - k < window; }
    attention causal { mask k <= q; }
  )");
  ASSERT_TRUE(p);
  Result a = reference::run(makeRequest(*p, "sw", 2, 2, 2, 37, 37, 16));
  Result b = reference::run(makeRequest(*p, "causal", 2, 2, 2, 37, 37, 16));
  EXPECT_EQ(a.o.data, b.o.data);
  EXPECT_EQ(a.lse.data, b.lse.data);
}

TEST(Reference, TopkWithLargeKIsTheMaskAlone) {
  auto p = compile(R"(
    attention causal { mask k <= q; }
    attention t1 { mask k <= q; select topk(64) by q - k; }
    attention t2 { mask k <= q; select topk(40) by 1.0 * k; }
  )");
  ASSERT_TRUE(p);
  Result base = reference::run(makeRequest(*p, "causal", 1, 4, 2, 40, 40, 8));
  for (const char *name : {"t1", "t2"}) {
    Result t = reference::run(makeRequest(*p, name, 1, 4, 2, 40, 40, 8));
    EXPECT_EQ(t.o.data, base.o.data) << name;
    EXPECT_EQ(t.lse.data, base.lse.data) << name;
  }
  Result t1 = reference::run(makeRequest(*p, "t1", 1, 4, 2, 40, 40, 8));
  ASSERT_EQ(t1.indicesShape, (std::vector<int64_t>{1, 2, 40, 64}));
  for (int64_t g = 0; g < 2; ++g)
    for (int64_t row = 0; row < 40; ++row)
      for (int64_t j = 0; j < 64; ++j) // q - k is highest for the lowest k
        ASSERT_EQ(t1.indices[size_t((g * 40 + row) * 64 + j)], j <= row ? j : -1);
  Result t2 = reference::run(makeRequest(*p, "t2", 1, 4, 2, 40, 40, 8));
  for (int64_t j = 0; j < 40; ++j) // by k: highest k first
    EXPECT_EQ(t2.indices[size_t(39 * 40 + j)], 39 - j);
  EXPECT_EQ(t2.indices[size_t(2 * 40 + 0)], 2);
  EXPECT_EQ(t2.indices[size_t(2 * 40 + 3)], -1);
}

TEST(Reference, OneDocumentIsCausalAndDocumentsAreIndependent) {
  auto p = compile(R"(
    input doc : i32[batch, token];
    attention docs { mask doc[b, q] == doc[b, k] && k <= q; }
    attention causal { mask k <= q; }
  )");
  ASSERT_TRUE(p);
  Request d = makeRequest(*p, "docs", 1, 2, 2, 12, 12, 8);
  d.inputs["doc"] = {{1, 12}, std::vector<int64_t>(12, 3), {}};
  Result one = reference::run(d);
  Result causal = reference::run(makeRequest(*p, "causal", 1, 2, 2, 12, 12, 8));
  EXPECT_EQ(one.o.data, causal.o.data);
  EXPECT_EQ(one.lse.data, causal.lse.data);

  // Two documents: [0, 5) and [5, 12). Rows of the second one equal causal
  // attention over the second document alone.
  d.inputs["doc"].ints = {0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1};
  Result two = reference::run(d);
  Request sub = makeRequest(*p, "causal", 1, 2, 2, 7, 7, 8);
  sub.q = rows(d.q, 5, 12);
  sub.k = rows(d.k, 5, 12);
  sub.v = rows(d.v, 5, 12);
  Result alone = reference::run(sub);
  EXPECT_EQ(rows(two.o, 5, 12).data, alone.o.data);
}

TEST(Reference, GqaEqualsMhaWithRepeatedKv) {
  auto p = compile("attention sw { mask k <= q && q - k < 5; }");
  ASSERT_TRUE(p);
  Request gqa = makeRequest(*p, "sw", 2, 6, 2, 9, 9, 8);
  Request mha = gqa;
  mha.k.shape[1] = mha.v.shape[1] = 6;
  mha.k.data.clear();
  mha.v.data.clear();
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t h = 0; h < 6; ++h)
      for (int64_t i = 0; i < 9 * 8; ++i) {
        size_t at = size_t((b * 2 + h / 3) * 9 * 8 + i);
        mha.k.data.push_back(gqa.k.data[at]);
        mha.v.data.push_back(gqa.v.data[at]);
      }
  Result a = reference::run(gqa), b = reference::run(mha);
  EXPECT_EQ(a.o.data, b.o.data);
  EXPECT_EQ(a.lse.data, b.lse.data);
}

TEST(Reference, OffsetsDefaultAndTranslated) {
  auto p = compile("attention causal { mask k <= q; }");
  ASSERT_TRUE(p);
  // qlen < klen: default q_offset = klen - qlen = 5 -> the last 3 rows.
  Request full = makeRequest(*p, "causal", 1, 2, 1, 8, 8, 4);
  Request decode = full;
  decode.q = rows(full.q, 5, 8);
  Result f = reference::run(full), dd = reference::run(decode);
  EXPECT_EQ(dd.o.data, rows(f.o, 5, 8).data);
  EXPECT_EQ(dd.lse.data, rows(f.lse, 5, 8).data);
  // Shifting both offsets by the same amount changes nothing for a mask of
  // q - k; negative positions are fine without token-axis inputs.
  for (int64_t shift : {int64_t(100), int64_t(-8), int64_t(1) << 39}) {
    Request t = decode;
    t.qOffset = 5 + shift;
    t.kOffset = shift;
    EXPECT_EQ(reference::run(t).o.data, dd.o.data) << shift;
  }
  // Explicit q_offset 0 with 3 queries and 8 keys: row r sees keys 0..r.
  Request early = decode;
  early.q = rows(full.q, 0, 3);
  early.qOffset = 0;
  Result e = reference::run(early);
  Result first = reference::run([&] {
    Request x = full;
    x.q = rows(full.q, 0, 3);
    x.k = rows(full.k, 0, 3);
    x.v = rows(full.v, 0, 3);
    return x;
  }());
  EXPECT_EQ(e.o.data, first.o.data);
}

TEST(Reference, EmptyRowsGiveZeroAndMinusInfinity) {
  auto p = compile(R"(
    attention anti { mask k > q; }
    attention antisink { mask k > q; sink; }
    attention none { mask q < 0; }
  )");
  ASSERT_TRUE(p);
  Result a = reference::run(makeRequest(*p, "anti", 1, 2, 2, 5, 5, 4));
  for (int64_t h = 0; h < 2; ++h) {
    size_t last = size_t(h * 5 + 4);
    EXPECT_EQ(a.lse.data[last], -kInf);
    for (size_t x = 0; x < 4; ++x)
      EXPECT_EQ(a.o.data[last * 4 + x], 0.0);
    EXPECT_TRUE(std::isfinite(a.lse.data[last - 1]));
  }
  Request s = makeRequest(*p, "antisink", 1, 2, 2, 5, 5, 4);
  s.sinks = fromValues({2}, {0.75, -2});
  Result b = reference::run(s);
  EXPECT_EQ(b.lse.data[4], 0.75);
  EXPECT_EQ(b.lse.data[9], -2.0);
  for (size_t x = 0; x < 4; ++x)
    EXPECT_EQ(b.o.data[4 * 4 + x], 0.0);
  Result c = reference::run(makeRequest(*p, "none", 2, 2, 1, 3, 4, 4));
  for (double l : c.lse.data)
    EXPECT_EQ(l, -kInf);
  for (double o : c.o.data)
    EXPECT_EQ(o, 0.0);
}

TEST(Reference, NanAndPlusInfinityScoresMakeTheRowNan) {
  // language.md §5.4: a NaN or +inf score at an allowed key makes the row's O
  // and LSE NaN, also when every score of the row is NaN (b == 0 here: 0/0),
  // while a disallowed pair's score never matters (row 0 of `inf`).
  auto p = compile(R"(
    attention nan { mask k <= q; score (s - s) / (1.0 * b); }
    attention inf { mask k <= q; score k == 1 ? 1.0 / 0.0 : s; }
  )");
  ASSERT_TRUE(p);
  Result a = reference::run(makeRequest(*p, "nan", 2, 1, 1, 3, 3, 4));
  for (size_t row = 0; row < 3; ++row) {
    EXPECT_TRUE(std::isnan(a.lse.data[row])) << row;
    EXPECT_TRUE(std::isnan(a.o.data[row * 4])) << row;
    EXPECT_TRUE(std::isfinite(a.lse.data[3 + row])) << row; // b = 1: scores 0
  }
  Result b = reference::run(makeRequest(*p, "inf", 1, 1, 1, 3, 3, 4));
  EXPECT_TRUE(std::isfinite(b.lse.data[0]));
  EXPECT_TRUE(std::isnan(b.lse.data[1]) && std::isnan(b.lse.data[2]));
  EXPECT_TRUE(std::isnan(b.o.data[1 * 4]) && std::isfinite(b.o.data[0]));
}

TEST(Reference, MaskReadingTheHead) {
  auto p = compile(R"(
    attention mixed { mask h == 0 || k <= q; }
    attention full { }
    attention causal { mask k <= q; }
  )");
  ASSERT_TRUE(p);
  Request m = makeRequest(*p, "mixed", 1, 2, 1, 6, 6, 4);
  Result r = reference::run(m);
  Request f = m, c = m;
  f.variant = p->variant("full");
  c.variant = p->variant("causal");
  EXPECT_EQ(head(r.o, 0).data, head(reference::run(f).o, 0).data);
  EXPECT_EQ(head(r.o, 1).data, head(reference::run(c).o, 1).data);
}

TEST(Reference, ThreadCountDoesNotChangeResults) {
  auto p = compile(R"(
    attention sw { mask k <= q && q - k < 7; score 30.0 * tanh(s / 30.0); }
    attention t { mask k <= q; select topk(5) by (k * 7) % 11; }
  )");
  ASSERT_TRUE(p);
  for (const char *name : {"sw", "t"})
    for (int64_t Lq : {1, 33}) {
      Request r = makeRequest(*p, name, 2, 8, 2, Lq, 40, 16);
      r.threads = 1;
      Result one = reference::run(r);
      r.threads = 7;
      Result many = reference::run(r);
      EXPECT_EQ(one.o.data, many.o.data);
      EXPECT_EQ(one.lse.data, many.lse.data);
      EXPECT_EQ(one.indices, many.indices);
    }
  // One row alone (split per head: too few rows for the threads) equals the
  // same row of a long run (split per row).
  for (const char *name : {"sw", "t"}) {
    Request all = makeRequest(*p, name, 1, 8, 2, 33, 40, 16);
    all.threads = 2;
    Request one = all;
    one.q = rows(all.q, 20, 21);
    one.qOffset = 20 + 7;
    Result a = reference::run(all), o = reference::run(one);
    EXPECT_EQ(rows(a.o, 20, 21).data, o.o.data) << name;
    if (std::string(name) == "t") {
      Tensor ai{a.indicesShape, std::vector<double>(a.indices.begin(), a.indices.end())};
      EXPECT_EQ(rows(ai, 20, 21).data, std::vector<double>(o.indices.begin(), o.indices.end()));
    }
  }
}

//===----------------------------------------------------------------------===//
// Selection
//===----------------------------------------------------------------------===//

TEST(Reference, TopkTieRuleHigherScoreThenLowerKey) {
  auto p = compile(R"(
    attention t { mask k <= q; select topk(4) by k % 2; }
    attention picked { mask k <= q && (k % 2 == 1 || k == 0); }
  )");
  ASSERT_TRUE(p);
  Request r = makeRequest(*p, "t", 1, 2, 1, 8, 8, 4);
  Result t = reference::run(r);
  auto idx = [&](int64_t row) {
    return std::vector<int64_t>(t.indices.begin() + row * 4, t.indices.begin() + row * 4 + 4);
  };
  EXPECT_EQ(idx(0), (std::vector<int64_t>{0, -1, -1, -1}));
  EXPECT_EQ(idx(1), (std::vector<int64_t>{1, 0, -1, -1}));
  EXPECT_EQ(idx(5), (std::vector<int64_t>{1, 3, 5, 0}));
  EXPECT_EQ(idx(7), (std::vector<int64_t>{1, 3, 5, 7}));
  // Row 5 attends to exactly {0, 1, 3, 5}.
  Request q = r;
  q.variant = p->variant("picked");
  Result pk = reference::run(q);
  for (int64_t h = 0; h < 2; ++h)
    for (size_t x = 0; x < 4; ++x) {
      size_t at = size_t((h * 8 + 5) * 4) + x;
      EXPECT_EQ(t.o.data[at], pk.o.data[at]);
    }
}

TEST(Reference, IndexerSelectionHandComputed) {
  auto p = compile(R"(
    attention dsa { mask k <= q; select topk(2) by indexer(heads = 2, dim = 2, dtype = fp32); }
  )");
  ASSERT_TRUE(p);
  Request r = makeRequest(*p, "dsa", 1, 4, 2, 3, 3, 4);
  reference::IndexerTensors ix;
  // Row 2: I[2,0] = 1*relu(1) + 2*relu(0) = 1; I[2,1] = 1*relu(-1) + 2*relu(1)
  // = 2; I[2,2] = 1*relu(0) + 2*relu(1) = 2 -> tie, lower key first: [1, 2].
  ix.qI = fromValues({1, 3, 2, 2}, {0, 0, 0, 0, /*row 1*/ 0, 0, 0, 0, /*row 2*/ 1, -1, 0, 1});
  ix.w = fromValues({1, 3, 2}, {1, 1, 1, 1, 1, 2});
  ix.kI = fromValues({1, 3, 2}, {1, 0, 0, 1, 1, 1});
  r.indexer = ix;
  Result t = reference::run(r);
  ASSERT_EQ(t.indicesShape, (std::vector<int64_t>{1, 2, 3, 2}));
  for (int64_t g = 0; g < 2; ++g) { // shared by both KV groups
    const int64_t *row = &t.indices[size_t(g * 6)];
    EXPECT_EQ(std::vector<int64_t>(row, row + 6), (std::vector<int64_t>{0, -1, 0, 1, 1, 2}));
  }
  // Row 2's O is attention over keys {1, 2} only.
  auto c = compile("attention c { mask k <= q && k >= 1; }");
  ASSERT_TRUE(c);
  Request cr = r;
  cr.program = &*c->p;
  cr.variant = 0;
  cr.indexer.reset();
  Result cc = reference::run(cr);
  for (int64_t h = 0; h < 4; ++h)
    for (size_t x = 0; x < 4; ++x) {
      size_t at = size_t((h * 3 + 2) * 4) + x;
      EXPECT_EQ(t.o.data[at], cc.o.data[at]);
    }
}

TEST(Reference, GivenSelectionReplacesTopk) {
  auto p = compile(R"(
    attention t { mask k <= q; select topk(4) by k % 2; }
  )");
  ASSERT_TRUE(p);
  Request r = makeRequest(*p, "t", 1, 2, 1, 8, 8, 4);
  Result own = reference::run(r);
  // The reference's own selection, given back in another order: the same O.
  Request g = r;
  reference::InputTensor sel;
  sel.shape = own.indicesShape;
  sel.ints = own.indices;
  for (size_t row = 0; row < 8; ++row)
    std::reverse(sel.ints.begin() + row * 4, sel.ints.begin() + row * 4 + 4);
  g.selection = sel;
  Result given = reference::run(g);
  EXPECT_EQ(given.o.data, own.o.data);
  EXPECT_EQ(given.lse.data, own.lse.data);
  // Another selection: row 7 over keys {2, 6} only is the mask k == 2 || k == 6 there.
  sel.ints.assign(sel.ints.size(), -1);
  sel.ints[7 * 4 + 1] = 6;
  sel.ints[7 * 4 + 3] = 2;
  g.selection = sel;
  Result two = reference::run(g);
  auto c = compile("attention c { mask k == 2 || k == 6; }");
  ASSERT_TRUE(c);
  Request cr = r;
  cr.program = &*c->p;
  cr.variant = 0;
  Result cc = reference::run(cr);
  for (int64_t h = 0; h < 2; ++h)
    for (size_t x = 0; x < 4; ++x) {
      size_t at = size_t((h * 8 + 7) * 4) + x;
      EXPECT_EQ(two.o.data[at], cc.o.data[at]);
    }
  EXPECT_EQ(two.lse.data[0], -kInf); // row 0: nothing given
  // Errors name the selection: a disallowed key, a duplicate, a bad shape.
  sel.ints[0] = 5; // row 0 allows key 0 only
  g.selection = sel;
  try {
    reference::run(g);
    ADD_FAILURE() << "a disallowed key was accepted";
  } catch (const reference::ReferenceError &e) {
    EXPECT_EQ(e.arg, "selection");
    EXPECT_NE(std::string(e.what()).find("not allowed by the mask"), std::string::npos) << e.what();
  }
  sel.ints[0] = -1;
  sel.ints[7 * 4] = 6;
  g.selection = sel;
  try {
    reference::run(g);
    ADD_FAILURE() << "a duplicate key was accepted";
  } catch (const reference::ReferenceError &e) {
    EXPECT_NE(std::string(e.what()).find("appears twice"), std::string::npos) << e.what();
  }
  sel.shape = {1, 1, 8, 3};
  g.selection = sel;
  EXPECT_THROW(reference::run(g), reference::ReferenceError);
}

TEST(Reference, ModelLayerPicksItsVariant) {
  auto p = compile(R"(
    attention g { }
    attention l { mask abs(q - k) <= 1; }
    model m { layers 4; layer i: i % 2 == 0 ? g : l; }
  )");
  ASSERT_TRUE(p);
  const dsl::ModelInfo &m = p->p->models.at(0);
  ASSERT_EQ(m.layerVariant.size(), 4u);
  EXPECT_EQ(m.layerVariant[1], p->variant("l"));
  Request r = makeRequest(*p, "g", 1, 1, 1, 4, 4, 4);
  r.variant = m.layerVariant[3];
  r.layer = 3;
  Request l = r;
  l.variant = p->variant("l");
  EXPECT_EQ(reference::run(r).o.data, reference::run(l).o.data);
}

//===----------------------------------------------------------------------===//
// Bad input
//===----------------------------------------------------------------------===//

TEST(ReferenceErrors, Shapes) {
  auto p = compile("attention c { mask k <= q; }");
  ASSERT_TRUE(p);
  Request r = makeRequest(*p, "c", 2, 4, 2, 5, 7, 8);
  Request bad = r;
  bad.k = random({2, 2, 7, 16}, 1);
  auto [arg, msg] = errorOf(bad);
  EXPECT_EQ(arg, "k");
  EXPECT_TRUE(contains(msg, "D=8") && contains(msg, "[2, 2, 7, 16]")) << msg;

  bad = r;
  bad.q = random({2, 3, 5, 8}, 1);
  std::tie(arg, msg) = errorOf(bad);
  EXPECT_EQ(arg, "k");
  EXPECT_TRUE(contains(msg, "Hq=3") && contains(msg, "Hkv=2")) << msg;

  bad = r;
  bad.v = random({2, 2, 6, 8}, 1);
  std::tie(arg, msg) = errorOf(bad);
  EXPECT_EQ(arg, "v");
  EXPECT_TRUE(contains(msg, "expected shape [B=2, Hkv=2, Lk=7, Dv]") && contains(msg, "got [2, 2, 6, 8]"))
      << msg;

  bad = r;
  bad.q = random({2, 4, 5}, 1);
  std::tie(arg, msg) = errorOf(bad);
  EXPECT_EQ(arg, "q");
  EXPECT_TRUE(contains(msg, "expected shape [B, Hq, Lq, D]")) << msg;

  bad = r;
  bad.k = random({1, 2, 7, 8}, 1);
  EXPECT_EQ(errorOf(bad).first, "k");

  bad = r;
  bad.q = random({2, 4, 0, 8}, 1);
  EXPECT_EQ(errorOf(bad).first, "q");

  // Dv may differ from D.
  Request dv = r;
  dv.v = random({2, 2, 7, 3}, 1);
  EXPECT_EQ(reference::run(dv).o.shape, (std::vector<int64_t>{2, 4, 5, 3}));
}

TEST(ReferenceErrors, SinksIndexerAndInputs) {
  auto p = compile(R"(
    input doc : i32[batch, token];
    input slope : f32[head];
    attention docs { mask doc[b, q] == doc[b, k]; }
    attention sk { sink; }
    attention dsa { mask k <= q; select topk(2) by indexer(heads = 2, dim = 4, dtype = bf16); }
  )");
  ASSERT_TRUE(p);
  Request r = makeRequest(*p, "sk", 1, 2, 1, 3, 3, 4);
  EXPECT_EQ(errorOf(r).first, "sinks");
  r.sinks = fromValues({3}, {0, 0, 0});
  auto [arg, msg] = errorOf(r);
  EXPECT_EQ(arg, "sinks");
  EXPECT_TRUE(contains(msg, "[Hq=2]") && contains(msg, "[3]")) << msg;

  Request d = makeRequest(*p, "docs", 1, 2, 1, 3, 3, 4);
  std::tie(arg, msg) = errorOf(d);
  EXPECT_EQ(arg, "input:doc");
  EXPECT_TRUE(contains(msg, "doc : i32[batch, token]")) << msg;
  d.inputs["doc"] = {{2, 3}, {0, 0, 0, 0, 0, 0}, {}};
  std::tie(arg, msg) = errorOf(d);
  EXPECT_EQ(arg, "input:doc");
  EXPECT_TRUE(contains(msg, "got [2, 3]")) << msg;
  d.inputs["doc"] = {{1, 3}, {0, 0, 0}, {}};
  d.inputs["dco"] = {{1, 3}, {0, 0, 0}, {}};
  EXPECT_EQ(errorOf(d).first, "input:dco");
  d.inputs.erase("dco");
  EXPECT_NO_THROW(reference::run(d));
  d.inputs["slope"] = {{2}, {}, {1, 2}}; // declared but unused: fine
  EXPECT_NO_THROW(reference::run(d));
  d.sinks = fromValues({2}, {0, 0});
  EXPECT_EQ(errorOf(d).first, "sinks"); // no `sink;` clause

  Request x = makeRequest(*p, "dsa", 1, 2, 1, 3, 3, 4);
  EXPECT_EQ(errorOf(x).first, "indexer");
  x.indexer = reference::IndexerTensors{random({1, 3, 3, 4}, 1), random({1, 3, 2}, 2), random({1, 3, 4}, 3)};
  std::tie(arg, msg) = errorOf(x);
  EXPECT_EQ(arg, "indexer.qI");
  EXPECT_TRUE(contains(msg, "HI=2")) << msg;
  x.indexer->qI = random({1, 3, 2, 4}, 1);
  EXPECT_NO_THROW(reference::run(x));
}

TEST(ReferenceErrors, OffsetsAgainstTokenAxes) {
  auto p = compile(R"(
    input doc : i32[batch, token];
    attention docs { mask doc[b, q] == doc[b, k] && k <= q; }
  )");
  ASSERT_TRUE(p);
  Request r = makeRequest(*p, "docs", 1, 1, 1, 4, 8, 4);
  r.inputs["doc"] = {{1, 8}, std::vector<int64_t>(8, 0), {}};
  EXPECT_NO_THROW(reference::run(r)); // q in [4, 8), k in [0, 8)
  r.qOffset = 5;
  auto [arg, msg] = errorOf(r);
  EXPECT_EQ(arg, "q_offset");
  EXPECT_TRUE(contains(msg, "[5, 9)") && contains(msg, "[0, 8)")) << msg;
  r.qOffset = 4;
  r.kOffset = -1;
  EXPECT_EQ(errorOf(r).first, "k_offset");
  r.kOffset.reset();
  r.qOffset = int64_t(1) << 41;
  EXPECT_EQ(errorOf(r).first, "q_offset");
  // A longer token axis covers global positions (context parallelism).
  r.inputs["doc"] = {{1, 100}, std::vector<int64_t>(100, 0), {}};
  r.qOffset = 90;
  r.kOffset = 92;
  EXPECT_NO_THROW(reference::run(r));
}

//===----------------------------------------------------------------------===//
// Gradients: central finite differences of L = sum(O * dO)
//===----------------------------------------------------------------------===//

namespace {

double lossOf(const Request &r) {
  Request f = r;
  f.gradOut.reset();
  Result out = reference::run(f);
  double l = 0;
  for (size_t i = 0; i < out.o.data.size(); ++i)
    l += out.o.data[i] * r.gradOut->data[i];
  return l;
}

/// Checks every element of dq, dk, dv (and dsinks) against central
/// differences with step 1e-6.
void checkGradients(Request r, uint64_t seed = 99) {
  r.gradOut = random({r.q.shape[0], r.q.shape[1], r.q.shape[2], r.v.shape[3]}, seed);
  Result g = reference::run(r);
  ASSERT_TRUE(g.dq && g.dk && g.dv);
  EXPECT_EQ(g.dq->shape, r.q.shape);
  EXPECT_EQ(g.dk->shape, r.k.shape);
  EXPECT_EQ(g.dv->shape, r.v.shape);
  ASSERT_EQ(bool(g.dsinks), bool(r.sinks));
  const double h = 1e-6;
  auto fd = [&](Tensor &t, const Tensor &grad, const char *name) {
    for (size_t i = 0; i < t.data.size(); ++i) {
      double x = t.data[i];
      t.data[i] = x + h;
      double lp = lossOf(r);
      t.data[i] = x - h;
      double lm = lossOf(r);
      t.data[i] = x;
      double num = (lp - lm) / (2 * h);
      EXPECT_NEAR(grad.data[i], num, 1e-6 * std::max(1.0, std::fabs(num))) << name << "[" << i << "]";
    }
  };
  fd(r.q, *g.dq, "dq");
  fd(r.k, *g.dk, "dk");
  fd(r.v, *g.dv, "dv");
  if (r.sinks)
    fd(*r.sinks, *g.dsinks, "dsinks");
}

} // namespace

TEST(ReferenceGradients, Causal) {
  auto p = compile("attention causal { mask k <= q; }");
  ASSERT_TRUE(p);
  checkGradients(makeRequest(*p, "causal", 2, 2, 2, 5, 5, 4, 3));
}

TEST(ReferenceGradients, SlidingWindowWithOffsets) {
  auto p = compile("param window = 3; attention sw { mask k <= q && q - k < window; }");
  ASSERT_TRUE(p);
  Request r = makeRequest(*p, "sw", 1, 2, 2, 4, 7, 3, 5);
  r.v = random({1, 2, 7, 5}, 17); // Dv != D
  r.qOffset = 2;
  r.kOffset = -1;
  checkGradients(r);
}

TEST(ReferenceGradients, Gqa) {
  auto p = compile("attention causal { mask k <= q; }");
  ASSERT_TRUE(p);
  checkGradients(makeRequest(*p, "causal", 1, 4, 2, 4, 6, 4, 11));
}

TEST(ReferenceGradients, Softcap) {
  auto p = compile("attention sc { mask k <= q; score 30.0 * tanh(s / 30.0); scale 4.0; }");
  ASSERT_TRUE(p);
  checkGradients(makeRequest(*p, "sc", 1, 2, 1, 4, 4, 4, 13));
}

TEST(ReferenceGradients, AlibiWithInputSlope) {
  auto p = compile(R"(
    input slope : f32[head];
    attention alibi { mask k <= q; score s + slope[h] * (k - q); }
  )");
  ASSERT_TRUE(p);
  Request r = makeRequest(*p, "alibi", 1, 2, 2, 5, 5, 4, 19);
  r.inputs["slope"] = {{2}, {}, {0.5, 0.25}};
  checkGradients(r);
}

TEST(ReferenceGradients, ExpLogSqrtMinMaxCond) {
  // Kinks at s = 0 (?:) and s = -2 (max); random points avoid them.
  auto p = compile(R"(
    attention r {
      mask k <= q;
      scale 1.0;
      score s > 0.0 ? log(1.0 + exp(s)) : min(s, sqrt(abs(s) + 1.0)) - max(s * 0.5, -1.0) / 2.0;
    }
  )");
  ASSERT_TRUE(p);
  Request r = makeRequest(*p, "r", 1, 2, 2, 5, 5, 3, 23);
  r.q = random({1, 2, 5, 3}, 23, -2, 2);
  checkGradients(r);
  // The derivative evaluator's value is evalScore's, exactly.
  const dsl::AttentionDecl &v = p->p->ast.attentions[0];
  dsl::EvalEnv env;
  env.program = &*p->p;
  env.variant = &v;
  for (double s : {-3.0, -2.5, -1.0, -0.25, 0.5, 2.0}) {
    dsl::ScoreDerivative d = dsl::evalScoreDerivative(v, env, s);
    EXPECT_EQ(d.value, dsl::evalScore(v, env, s));
    double num = (dsl::evalScore(v, env, s + 1e-6) - dsl::evalScore(v, env, s - 1e-6)) / 2e-6;
    EXPECT_NEAR(d.dds, num, 1e-8) << s;
  }
}

TEST(ReferenceGradients, Sinks) {
  auto p = compile("param window = 2; attention sk { mask k <= q && q - k < window; sink; }");
  ASSERT_TRUE(p);
  Request r = makeRequest(*p, "sk", 2, 2, 1, 4, 4, 4, 29);
  r.sinks = fromValues({2}, {0.3, -1.2});
  checkGradients(r);
}

TEST(ReferenceGradients, EmptyRowsHaveZeroGradients) {
  auto p = compile("attention anti { mask k > q; } attention antisink { mask k > q; sink; }");
  ASSERT_TRUE(p);
  for (const char *name : {"anti", "antisink"}) {
    Request r = makeRequest(*p, name, 1, 2, 2, 5, 5, 4, 31);
    if (std::string(name) == "antisink")
      r.sinks = fromValues({2}, {0.5, -0.5});
    checkGradients(r);
    r.gradOut = random({1, 2, 5, 4}, 3);
    Result g = reference::run(r);
    for (int64_t h = 0; h < 2; ++h) // the last row attends nothing
      for (int64_t x = 0; x < 4; ++x)
        EXPECT_EQ(g.dq->data[size_t((h * 5 + 4) * 4 + x)], 0.0) << name;
    for (int64_t h = 0; h < 2; ++h) // key 0 is attended by no row
      for (int64_t x = 0; x < 4; ++x) {
        EXPECT_EQ(g.dk->data[size_t((h * 5 + 0) * 4 + x)], 0.0) << name;
        EXPECT_EQ(g.dv->data[size_t((h * 5 + 0) * 4 + x)], 0.0) << name;
      }
  }
}

TEST(ReferenceGradients, SelectionGradientsOnlyThroughSelectedKeys) {
  auto p = compile("attention sel { mask k <= q; select topk(3) by -abs(q - k); }");
  ASSERT_TRUE(p);
  Request r = makeRequest(*p, "sel", 1, 2, 1, 6, 6, 4, 37);
  checkGradients(r);
  // The last row selects keys 3..5 only: with dO zero elsewhere, keys 0..2
  // get no gradient.
  r.gradOut = filled({1, 2, 6, 4}, 0.0);
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t x = 0; x < 4; ++x)
      r.gradOut->data[size_t((h * 6 + 5) * 4 + x)] = 1.0 + x;
  Result g = reference::run(r);
  for (int64_t c = 0; c < 6; ++c)
    for (int64_t x = 0; x < 4; ++x) {
      double dk = g.dk->data[size_t(c * 4 + x)], dv = g.dv->data[size_t(c * 4 + x)];
      if (c < 3) {
        EXPECT_EQ(dk, 0.0) << c;
        EXPECT_EQ(dv, 0.0) << c;
      } else {
        EXPECT_NE(dv, 0.0) << c;
      }
    }
}

TEST(ReferenceGradients, GivenSelection) {
  auto p = compile("attention sel { mask k <= q; select topk(2) by 1.0 * k; }");
  ASSERT_TRUE(p);
  Request r = makeRequest(*p, "sel", 1, 2, 2, 3, 3, 4, 41);
  reference::InputTensor sel;
  sel.shape = {1, 2, 3, 2};
  sel.ints = {0, -1, 1, 0, 0, 2, /* group 1 */ -1, 0, 1, -1, 2, 1};
  r.selection = sel;
  checkGradients(r);
}

TEST(ReferenceErrors, GradOutShape) {
  auto p = compile("attention causal { mask k <= q; }");
  ASSERT_TRUE(p);
  Request r = makeRequest(*p, "causal", 1, 2, 2, 3, 3, 4);
  r.gradOut = filled({1, 2, 3, 5}, 0.0);
  auto [arg, msg] = errorOf(r);
  EXPECT_EQ(arg, "grad_out");
  EXPECT_TRUE(contains(msg, "grad_out: expected shape [B=1, Hq=2, Lq=3, Dv=4], got [1, 2, 3, 5]")) << msg;
  r.gradOut.reset();
  EXPECT_FALSE(reference::run(r).dq);
}

TEST(ReferenceGradients, IndexerSelectionIsConstant) {
  // IndexerSelectionHandComputed's selection: row 0 {0}, row 1 {0, 1}, row 2
  // {1, 2}. The gradients are those of the mask that allows exactly these
  // keys; the indexer tensors get none.
  auto p = compile(R"(
    attention dsa { mask k <= q; select topk(2) by indexer(heads = 2, dim = 2, dtype = fp32); }
    attention same { mask k <= q && (q < 2 || k >= 1); }
  )");
  ASSERT_TRUE(p);
  Request r = makeRequest(*p, "dsa", 1, 4, 2, 3, 3, 4, 43);
  reference::IndexerTensors ix;
  ix.qI = fromValues({1, 3, 2, 2}, {0, 0, 0, 0, 0, 0, 0, 0, 1, -1, 0, 1});
  ix.w = fromValues({1, 3, 2}, {1, 1, 1, 1, 1, 2});
  ix.kI = fromValues({1, 3, 2}, {1, 0, 0, 1, 1, 1});
  r.indexer = ix;
  checkGradients(r);
  r.gradOut = random({1, 4, 3, 4}, 5);
  Result a = reference::run(r);
  Request m = r;
  m.variant = p->variant("same");
  m.indexer.reset();
  Result b = reference::run(m);
  EXPECT_EQ(a.dq->data, b.dq->data);
  EXPECT_EQ(a.dk->data, b.dk->data);
  EXPECT_EQ(a.dv->data, b.dv->data);
}

TEST(ReferenceGradients, NanRowPropagates) {
  auto p = compile("attention n { mask k <= q; score q == 1 ? s / 0.0 * 0.0 : s; }");
  ASSERT_TRUE(p);
  Request r = makeRequest(*p, "n", 1, 1, 1, 3, 3, 4, 47);
  r.gradOut = random({1, 1, 3, 4}, 6);
  Result g = reference::run(r);
  for (int64_t x = 0; x < 4; ++x) {
    EXPECT_TRUE(std::isnan(g.dq->data[size_t(4 + x)])); // row 1 (q = 1) is NaN
    EXPECT_TRUE(std::isfinite(g.dq->data[size_t(8 + x)]));
    EXPECT_TRUE(std::isnan(g.dv->data[size_t(x)])); // key 0 is attended by row 1
    EXPECT_TRUE(std::isfinite(g.dv->data[size_t(8 + x)])); // key 2 is not
  }
}

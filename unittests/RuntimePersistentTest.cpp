//===- RuntimePersistentTest.cpp - Persistent grids in the runtime -------===//
//
// libattnrt tests that need no GPU for kernels with the grid rule
// 'persistent' (the warp-specialised wgmma kernel at d <= 128: one CTA an
// SM strides over every (query tile, head, batch) tile): the manifest name,
// the plan's x (the tile count, y = z = 1) at qlen != klen, batch > 1 and
// GQA, a non-persistent kernel of the same variant keeping its grid, the
// launch's clamp to the device's SMs, and the grid limit naming q.
//
//===----------------------------------------------------------------------===//
#include "attnc/Runtime.h"
#include "RuntimeTestSupport.h"

#include <gtest/gtest.h>

#include <string>

using namespace attnc;

namespace {

const char kCausal[] = R"({
  "format": "attnc-module",
  "format_version": 1,
  "attnc_version": "0.1.0",
  "target": "sm_90a",
  "kind": "variants",
  "variants": [
    {
      "name": "causal",
      "head_dims": [128, 256],
      "dtypes": ["bf16"],
      "kernels": [
        {"head_dim": 128, "dtype": "bf16", "symbol": "causal_d128", "block_m": 128, "block_n": 128,
         "threads": 384, "shared_bytes": 197712, "grid": "persistent"},
        {"head_dim": 256, "dtype": "bf16", "symbol": "causal_d256", "block_m": 128, "block_n": 64,
         "threads": 384, "shared_bytes": 197704}
      ],
      "grid": "qtiles_heads_batch",
      "sink": false,
      "inputs": [],
      "args": [
        {"name": "q", "kind": "ptr"},
        {"name": "k", "kind": "ptr"},
        {"name": "v", "kind": "ptr"},
        {"name": "o", "kind": "ptr"},
        {"name": "lse", "kind": "ptr"},
        {"name": "batch", "kind": "i64"},
        {"name": "heads_q", "kind": "i64"},
        {"name": "heads_kv", "kind": "i64"},
        {"name": "qlen", "kind": "i64"},
        {"name": "klen", "kind": "i64"}
      ]
    }
  ]
})";

const VariantSpec &causal() {
  static Manifest m = parseManifest(kCausal);
  return m.variants[0];
}

LaunchArgs args(int64_t B, int64_t Hq, int64_t Hkv, int64_t Lq, int64_t Lk, int64_t D) {
  return attnc::testing::attentionArgs(B, Hq, Hkv, Lq, Lk, D);
}

std::string geometry(const uint32_t (&g)[3]) {
  return "[" + std::to_string(g[0]) + ", " + std::to_string(g[1]) + ", " + std::to_string(g[2]) + "]";
}

} // namespace

TEST(RuntimePersistent, ManifestNamesTheRule) {
  EXPECT_STREQ(gridRuleName(GridRule::PersistentTiles), "persistent");
  EXPECT_EQ(causal().kernels[0].grid, GridRule::PersistentTiles);
  EXPECT_EQ(causal().gridOf(causal().kernels[0]), GridRule::PersistentTiles);
  EXPECT_EQ(causal().gridOf(causal().kernels[1]), GridRule::QTilesHeadsBatch);
}

TEST(RuntimePersistent, PlanCountsTilesAndTheLaunchClampsToTheSMs) {
  struct Case {
    int64_t b, hq, hkv, qlen, klen;
    std::string plan;     ///< x = ceil(qlen / 128) * heads_q * batch
    std::string launch;   ///< on 132 SMs
  } cases[] = {
      {1, 16, 16, 16384, 16384, "[2048, 1, 1]", "[132, 1, 1]"},
      {2, 32, 8, 5000, 5000, "[2560, 1, 1]", "[132, 1, 1]"}, // GQA, odd length: 40 tiles a head
      {1, 2, 1, 100, 7000, "[2, 1, 1]", "[2, 1, 1]"},        // fewer tiles than SMs
      {3, 4, 4, 129, 64, "[24, 1, 1]", "[24, 1, 1]"},        // qlen != klen, one past a tile
  };
  for (const Case &c : cases) {
    SCOPED_TRACE("batch " + std::to_string(c.b) + ", heads_q " + std::to_string(c.hq) + ", qlen " +
                 std::to_string(c.qlen));
    LaunchPlan p = checkArguments(causal(), args(c.b, c.hq, c.hkv, c.qlen, c.klen, 128));
    ASSERT_EQ(p.stages.size(), 1u);
    const StagePlan &s = p.stages[0];
    EXPECT_TRUE(s.persistent);
    EXPECT_EQ(geometry(s.grid), c.plan);
    EXPECT_EQ(geometry(p.grid), c.plan);
    int64_t first = -1;
    uint32_t g[3];
    s.launchGeometry(0, first, g, 132);
    EXPECT_EQ(first, 0);
    EXPECT_EQ(geometry(g), c.launch);
    s.launchGeometry(0, first, g); // no SM count known: the plan's
    EXPECT_EQ(geometry(g), c.plan);
  }
  // The d256 kernel of the same variant: one CTA a tile, never clamped.
  LaunchPlan p = checkArguments(causal(), args(2, 8, 8, 1000, 1000, 256));
  EXPECT_FALSE(p.stages[0].persistent);
  EXPECT_EQ(geometry(p.stages[0].grid), "[8, 8, 2]");
  int64_t first = -1;
  uint32_t g[3];
  p.stages[0].launchGeometry(0, first, g, 132);
  EXPECT_EQ(geometry(g), "[8, 8, 2]");
}

TEST(RuntimePersistent, TooManyTilesNameQ) {
  // 2^24 query tiles a head x 128 heads: past the grid's x limit.
  LaunchArgs a = args(1, 128, 1, int64_t(1) << 31, 1, 128);
  try {
    checkArguments(causal(), a);
    ADD_FAILURE() << "no error";
  } catch (const Error &e) {
    EXPECT_EQ(e.arg(), "q");
    EXPECT_NE(std::string(e.what()).find("query tiles (ceil(qlen / block_m) x heads_q x batch)"), std::string::npos)
        << e.what();
  }
}

//===- RuntimeSummaryTest.cpp - Tile-summary stages in the runtime --------===//
//
// libattnrt tests that need no GPU, for variants whose mask reads runtime
// inputs at token positions (packed documents: doc[b, q] == doc[b, k]): a
// stage "summary" with the grid rule tiles_heads_batch, one warp per query
// tile and per key tile, writing each tile's summary into the workspace,
// then the ordinary attention kernel. The manifest field
// workspace_per_tile with round trips and every validation error (the
// field both ways, threads, the workspace argument, a variant mixing
// chunked and tiled stages); plans: the grid and the workspace bytes at
// qlen != klen, batch > 1, per head dim, qlen = 0 refused, the grid limits
// and the 2^62-byte bound naming the stage, describe(); a caller's
// workspace (too small: the message names the stage and the formula); and
// the lazy module and the C API (attnrt_kernel_workspace_bytes).
//
//===----------------------------------------------------------------------===//
#include "attnc/Runtime.h"
#include "attnc/attnrt.h"
#include "runtime/CudaDriver.h"

#include "RuntimeTestSupport.h"

#include <gtest/gtest.h>

#include <string>

using namespace attnc;
using namespace attnc::testing;

namespace {

/// A packed-documents variant as the code generator writes it: per head dim
/// a summary kernel (min and max of doc per tile: 8 bytes at d128, 16 at
/// d64, with block sizes and warps of its own) and the attention kernel.
const char kPacked[] = R"({
  "format": "attnc-module",
  "format_version": 1,
  "attnc_version": "0.1.0",
  "target": "sm_90a",
  "kind": "variants",
  "variants": [
    {
      "name": "packed",
      "head_dims": [64, 128],
      "dtypes": ["bf16"],
      "kernels": [
        {"head_dim": 64, "dtype": "bf16", "symbol": "packed_summary_d64", "block_m": 64, "block_n": 64,
         "threads": 256, "shared_bytes": 0, "stage": "summary", "grid": "tiles_heads_batch", "workspace_per_tile": 16},
        {"head_dim": 64, "dtype": "bf16", "symbol": "packed_d64", "block_m": 64, "block_n": 64,
         "threads": 128, "shared_bytes": 32768, "stage": "attention"},
        {"head_dim": 128, "dtype": "bf16", "symbol": "packed_summary_d128", "block_m": 128, "block_n": 64,
         "threads": 128, "shared_bytes": 0, "stage": "summary", "grid": "tiles_heads_batch", "workspace_per_tile": 8},
        {"head_dim": 128, "dtype": "bf16", "symbol": "packed_d128", "block_m": 128, "block_n": 64,
         "threads": 256, "shared_bytes": 98304, "stage": "attention"}
      ],
      "grid": "qtiles_heads_batch",
      "sink": false,
      "inputs": [{"name": "doc", "elem": "i32", "axes": ["batch", "token"]}],
      "args": [
        {"name": "q", "kind": "ptr"},
        {"name": "k", "kind": "ptr"},
        {"name": "v", "kind": "ptr"},
        {"name": "o", "kind": "ptr"},
        {"name": "lse", "kind": "ptr"},
        {"name": "input:doc", "kind": "ptr"},
        {"name": "input:doc:stride:batch", "kind": "i64"},
        {"name": "workspace", "kind": "ptr"},
        {"name": "batch", "kind": "i32"},
        {"name": "heads_q", "kind": "i32"},
        {"name": "heads_kv", "kind": "i32"},
        {"name": "qlen", "kind": "i32"},
        {"name": "klen", "kind": "i32"},
        {"name": "q_offset", "kind": "i64"},
        {"name": "k_offset", "kind": "i64"},
        {"name": "scale", "kind": "f32"}
      ]
    }
  ]
})";

const VariantSpec &packed() {
  static Manifest m = parseManifest(kPacked);
  return m.variants[0];
}


/// Valid arguments for packed(): q [B, Hq, Lq, D] bf16, k and v [B, Hkv,
/// Lk, D], doc [B, max(Lq, Lk)] with q_offset = k_offset = 0.
LaunchArgs packedArgs(int64_t B, int64_t Hq, int64_t Hkv, int64_t Lq, int64_t Lk, int64_t D = 128) {
  LaunchArgs a = attnc::testing::attentionArgs(B, Hq, Hkv, Lq, Lk, D);
  a.inputs["doc"] = TensorRef::contiguous(addr(5), DType::I32, {B, std::max<int64_t>(1, std::max(Lq, Lk))});
  a.qOffset = 0;
  a.kOffset = 0;
  return a;
}

std::string geometry(const uint32_t (&g)[3]) {
  return "[" + std::to_string(g[0]) + ", " + std::to_string(g[1]) + ", " + std::to_string(g[2]) + "]";
}

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

} // namespace

//===----------------------------------------------------------------------===//
// The manifest
//===----------------------------------------------------------------------===//

TEST(RuntimeSummaryManifest, FieldsAreReadAndRoundTrip) {
  const VariantSpec &v = packed();
  ASSERT_EQ(v.kernels.size(), 4u);
  EXPECT_EQ(v.kernels[0].stage, "summary");
  EXPECT_EQ(v.gridOf(v.kernels[0]), GridRule::TilesHeadsBatch);
  EXPECT_EQ(v.kernels[0].workspacePerTile, 16);
  EXPECT_FALSE(v.kernels[0].workspacePerKey);
  EXPECT_EQ(v.kernels[2].workspacePerTile, 8);
  EXPECT_EQ(v.kernels[3].stage, "attention");
  EXPECT_EQ(v.gridOf(v.kernels[3]), GridRule::QTilesHeadsBatch);
  EXPECT_FALSE(v.kernels[3].workspacePerTile);
  EXPECT_EQ(v.findKernel(128, DType::BF16), &v.kernels[3]);
  ASSERT_EQ(v.findStages(64, DType::BF16).size(), 2u);
  EXPECT_EQ(v.findStages(64, DType::BF16)[0], &v.kernels[0]);
  EXPECT_STREQ(gridRuleName(GridRule::TilesHeadsBatch), "tiles_heads_batch");

  Manifest m = parseManifest(kPacked);
  std::string written = manifestToJson(m);
  EXPECT_EQ(manifestToJson(parseManifest(written)), written);
  // workspace_per_tile follows the kernel's grid, and only where present.
  EXPECT_NE(written.find("          \"stage\": \"summary\",\n"
                         "          \"grid\": \"tiles_heads_batch\",\n"
                         "          \"workspace_per_tile\": 8\n"
                         "        },"),
            std::string::npos)
      << written;
  EXPECT_NE(written.find("          \"stage\": \"attention\"\n"
                         "        }\n"),
            std::string::npos)
      << written;
  EXPECT_EQ(written.find("workspace_per_key"), std::string::npos);
  Manifest back = parseManifest(written);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(back.variants[0].kernels[i].workspacePerTile, m.variants[0].kernels[i].workspacePerTile) << i;
    EXPECT_EQ(back.variants[0].kernels[i].grid, m.variants[0].kernels[i].grid) << i;
  }
  // A spec built in C++ (as the code generator does) writes what it holds,
  // up to the range's ends.
  for (int64_t bytes : {1, 65536}) {
    m.variants[0].kernels[2].workspacePerTile = bytes;
    EXPECT_EQ(parseManifest(manifestToJson(m)).variants[0].kernels[2].workspacePerTile, bytes);
  }
  // Through the PTX block and the .entry cross-check.
  std::string ptx = embedManifestInPtx(ptxFor(back), back);
  EXPECT_EQ(*extractManifestFromPtx(ptx), written);
  checkManifestAgainstPtx(parseManifest(*extractManifestFromPtx(ptx)), ptx);
}

TEST(RuntimeSummaryManifest, MalformedFieldsGiveTheirMessage) {
  const std::string m = kPacked;
  const std::string wpt = R"(, "workspace_per_tile": 16})";
  const std::string att64 = R"("threads": 128, "shared_bytes": 32768, "stage": "attention"})";
  const std::string ws = R"({"name": "workspace", "kind": "ptr"},)";
  const std::string tiles16 = R"("grid": "tiles_heads_batch", "workspace_per_tile": 16})";
  const std::string tiles8 = R"("grid": "tiles_heads_batch", "workspace_per_tile": 8})";
  // Both summary kernels made ordinary ones: no kernel sizes a workspace.
  const std::string untiled = replaced(replaced(m, tiles16, R"("grid": "qtiles_heads_batch"})"), tiles8,
                                       R"("grid": "qtiles_heads_batch"})");
  struct Case {
    std::string text, message;
  } cases[] = {
      // workspace_per_tile: required on a tiled kernel, by its grid or the variant's.
      {replaced(m, wpt, "}"),
       "manifest: variants[0].kernels[0]: missing required field 'workspace_per_tile' (the grid is "
       "'tiles_heads_batch', the kernel's)"},
      {replaced(m, R"("grid": "qtiles_heads_batch")", R"("grid": "tiles_heads_batch")"),
       "manifest: variants[0].kernels[1]: missing required field 'workspace_per_tile' (the grid is "
       "'tiles_heads_batch', the variant's)"},
      // Its range and type.
      {replaced(m, wpt, R"(, "workspace_per_tile": 0})"),
       "manifest: variants[0].kernels[0].workspace_per_tile: expected an integer in [1, 65536], got 0"},
      {replaced(m, wpt, R"(, "workspace_per_tile": 65537})"),
       "manifest: variants[0].kernels[0].workspace_per_tile: expected an integer in [1, 65536], got 65537"},
      {replaced(m, wpt, R"(, "workspace_per_tile": 4.5})"),
       "manifest: variants[0].kernels[0].workspace_per_tile: expected an integer, got 4.5"},
      {replaced(m, wpt, R"(, "workspace_per_tile": "16"})"),
       "manifest: variants[0].kernels[0].workspace_per_tile: expected an integer, got '16'"},
      // An error on any other kernel.
      {replaced(m, att64, R"("threads": 128, "shared_bytes": 32768, "stage": "attention", "workspace_per_tile": 8})"),
       "manifest: variants[0].kernels[1].workspace_per_tile: only a kernel with grid "
       "'tiles_heads_batch' has a workspace per tile, but the grid is 'qtiles_heads_batch' (the "
       "variant's)"},
      {replaced(m, att64,
                R"("threads": 128, "shared_bytes": 32768, "stage": "attention", "grid": "qtiles_kvheads_batch", "workspace_per_tile": 8})"),
       "manifest: variants[0].kernels[1].workspace_per_tile: only a kernel with grid "
       "'tiles_heads_batch' has a workspace per tile, but the grid is 'qtiles_kvheads_batch'"},
      // A tiled kernel is not sized per key.
      {replaced(m, wpt, R"(, "workspace_per_tile": 16, "workspace_per_key": 4})"),
       "manifest: variants[0].kernels[0].workspace_per_key: only a kernel with grid "
       "'chunked_row_blocks' has a workspace per key, but the grid is 'tiles_heads_batch'"},
      // Whole warps: the grid counts threads / 32 tiles per CTA.
      {replaced(m, R"("threads": 256, "shared_bytes": 0)", R"("threads": 48, "shared_bytes": 0)"),
       "manifest: variants[0].kernels[0].threads: a kernel with grid 'tiles_heads_batch' runs one warp "
       "per tile: expected a multiple of 32, got 48"},
      {replaced(m, R"("threads": 256, "shared_bytes": 0)", R"("threads": 16, "shared_bytes": 0)"),
       "manifest: variants[0].kernels[0].threads: a kernel with grid 'tiles_heads_batch' runs one warp "
       "per tile: expected a multiple of 32, got 16"},
      // The workspace argument: required iff a tiled (or chunked) kernel exists.
      {replaced(m, ws, ""),
       "manifest: variants[0].args: kernel 'packed_summary_d64' has grid 'tiles_heads_batch', but "
       "'workspace' is not among the arguments"},
      {untiled,
       "manifest: variants[0].args: 'workspace' is an argument, but the variant has no select and no "
       "kernel with grid 'tiles_heads_batch'"},
      // block_first belongs to chunked stages only.
      {replaced(m, ws, ws + R"({"name": "block_first", "kind": "i64"},)"),
       "manifest: variants[0].args: 'block_first' is an argument, but no kernel of the variant has "
       "grid 'chunked_row_blocks'"},
      // A chunked and a tiled stage would share the variant's one workspace.
      {replaced(m, att64,
                R"("threads": 128, "shared_bytes": 32768, "stage": "attention", "grid": "chunked_row_blocks", "workspace_per_key": 4})"),
       "manifest: variants[0].kernels[1]: kernel 'packed_summary_d64' has grid 'tiles_heads_batch' and "
       "kernel 'packed_d64' has grid 'chunked_row_blocks', but a variant has one workspace, which a "
       "chunked and a tiled stage cannot share"},
      {replaced(m, tiles16, R"("grid": "chunked_row_blocks", "workspace_per_key": 4})"),
       "manifest: variants[0].kernels[2]: kernel 'packed_summary_d128' has grid 'tiles_heads_batch' and "
       "kernel 'packed_summary_d64' has grid 'chunked_row_blocks', but a variant has one workspace, "
       "which a chunked and a tiled stage cannot share"},
      {replaced(m, R"("grid": "tiles_heads_batch")", R"("grid": "tile_heads_batch")"),
       "manifest: variants[0].kernels[0].grid: expected one of qtiles_heads_batch, "
       "qtiles_kvheads_batch, chunked_row_blocks, rows_kvheads_batch, tiles_heads_batch, persistent, ktiles_kvheads_batch, got "
       "'tile_heads_batch'"},
  };
  for (const auto &c : cases)
    EXPECT_EQ(manifestError(c.text), c.message);
  // A variant whose only kernels are tiled by the variant's grid is valid.
  const std::string allTiled =
      replaced(replaced(replaced(replaced(untiled, R"("grid": "qtiles_heads_batch"},)",
                                          R"("workspace_per_tile": 4},)"),
                                 R"("grid": "qtiles_heads_batch"},)", R"("workspace_per_tile": 4},)"),
                        R"("stage": "attention"},)", R"("stage": "attention", "workspace_per_tile": 4},)"),
               R"("stage": "attention"})", R"("stage": "attention", "workspace_per_tile": 4})");
  EXPECT_EQ(manifestError(replaced(allTiled, R"("grid": "qtiles_heads_batch")", R"("grid": "tiles_heads_batch")")),
            "(accepted)");
  // The writer validates like the reader.
  Manifest bad = parseManifest(kPacked);
  bad.variants[0].kernels[1].workspacePerTile = 8;
  try {
    manifestToJson(bad);
    ADD_FAILURE() << "wrote workspace_per_tile on a qtiles_heads_batch kernel";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("only a kernel with grid 'tiles_heads_batch' has a workspace per tile"),
              std::string::npos)
        << e.what();
  }
  bad = parseManifest(kPacked);
  bad.variants[0].kernels[2].workspacePerTile.reset();
  try {
    manifestToJson(bad);
    ADD_FAILURE() << "wrote a tiles_heads_batch kernel without workspace_per_tile";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("missing required field 'workspace_per_tile'"), std::string::npos)
        << e.what();
  }
}

//===----------------------------------------------------------------------===//
// Plans
//===----------------------------------------------------------------------===//

TEST(RuntimeSummaryPlan, GridAndWorkspaceBytes) {
  // d128: summary block_m 128, block_n 64, 4 warps, 8 bytes per tile;
  // d64: block_m 64, block_n 64, 8 warps, 16 bytes per tile.
  struct Case {
    int64_t d, b, hq, hkv, qlen, klen;
    int64_t tiles;
    std::string grid;
    uint64_t workspace;
    std::string attention;
  } cases[] = {
      // 8 query tiles + 16 key tiles = 24, 6 CTAs of 4 warps.
      {128, 1, 8, 8, 1000, 1000, 24, "[6, 8, 1]", 8ull * 1 * 8 * 24, "[8, 8, 1]"},
      // qlen != klen, batch 2, GQA: 1 + 79 tiles, 20 CTAs.
      {128, 2, 16, 4, 100, 5000, 80, "[20, 16, 2]", 8ull * 2 * 16 * 80, "[1, 16, 2]"},
      // qlen > klen: 32 + 2 tiles.
      {128, 3, 4, 1, 4096, 100, 34, "[9, 4, 3]", 8ull * 3 * 4 * 34, "[32, 4, 3]"},
      // Decode: one query row, 1 + 64 tiles, a last CTA with one warp busy.
      {128, 4, 32, 8, 1, 4096, 65, "[17, 32, 4]", 8ull * 4 * 32 * 65, "[1, 32, 4]"},
      // Exact multiples: one tile each, one CTA.
      {128, 1, 1, 1, 128, 64, 2, "[1, 1, 1]", 16, "[1, 1, 1]"},
      // One past: a partial tile of each.
      {128, 1, 1, 1, 129, 65, 4, "[1, 1, 1]", 32, "[2, 1, 1]"},
      // d64's own kernel: 16 + 16 tiles over 8 warps, 16 bytes per tile.
      {64, 2, 8, 2, 1000, 1000, 32, "[4, 8, 2]", 16ull * 2 * 8 * 32, "[16, 8, 2]"},
      {64, 1, 2, 2, 65, 1, 3, "[1, 2, 1]", 16ull * 1 * 2 * 3, "[2, 2, 1]"},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE("d " + std::to_string(c.d) + ", batch " + std::to_string(c.b) + ", heads_q " +
                 std::to_string(c.hq) + ", qlen " + std::to_string(c.qlen) + ", klen " +
                 std::to_string(c.klen));
    LaunchPlan p = checkArguments(packed(), packedArgs(c.b, c.hq, c.hkv, c.qlen, c.klen, c.d));
    ASSERT_EQ(p.stages.size(), 2u);
    const StagePlan &sum = p.stages[0];
    const KernelSpec &sk = packed().kernels[sum.kernelIndex];
    EXPECT_EQ(sk.symbol, "packed_summary_d" + std::to_string(c.d));
    EXPECT_TRUE(sum.tiled());
    EXPECT_FALSE(sum.chunked());
    EXPECT_EQ(sum.tiles, c.tiles);
    // The table agrees with the documented formula.
    EXPECT_EQ(sum.tiles, ceilDiv(c.qlen, sk.blockM) + ceilDiv(c.klen, sk.blockN));
    EXPECT_EQ(c.workspace, uint64_t(*sk.workspacePerTile * c.b * c.hq * c.tiles));
    EXPECT_EQ(geometry(sum.grid), c.grid);
    EXPECT_EQ(sum.grid[0], uint32_t(ceilDiv(c.tiles, sk.threads / 32)));
    EXPECT_EQ(sum.block[0], uint32_t(sk.threads));
    EXPECT_EQ(sum.sharedBytes, 0u);
    EXPECT_EQ(sum.workspaceBytes, c.workspace);
    // One launch, no block_first.
    EXPECT_EQ(sum.launches(), 1);
    int64_t first = -1;
    uint32_t g[3];
    sum.launchGeometry(0, first, g);
    EXPECT_EQ(first, 0);
    EXPECT_EQ(geometry(g), c.grid);
    // The attention stage: the variant's grid with its own block_m, no workspace.
    const StagePlan &att = p.stages[1];
    EXPECT_FALSE(att.tiled());
    EXPECT_EQ(att.tiles, 0);
    EXPECT_EQ(att.workspaceBytes, 0u);
    EXPECT_EQ(geometry(att.grid), c.attention);
    EXPECT_EQ(p.kernelIndex, att.kernelIndex); // the primary kernel
    EXPECT_EQ(geometry(p.grid), c.attention);
    // The launch's workspace is the summary's, allocated at launch.
    EXPECT_EQ(p.workspaceBytes, c.workspace);
    EXPECT_TRUE(p.allocateWorkspace);
    EXPECT_EQ(p.workspaceSlot, packed().findArg("workspace"));
    EXPECT_EQ(p.values[size_t(p.workspaceSlot)], 0u);
    EXPECT_EQ(p.blockFirstSlot, -1);
  }
  // qlen = 0 (and klen = 0) never reach the grid: q and k need every size
  // >= 1, so a summary stage always has T >= 2 tiles.
  expectExactError([&] { checkArguments(packed(), packedArgs(1, 8, 8, 0, 100)); },
                   ErrorCode::InvalidArgument, "q",
                   "q: expected every size >= 1 [batch, heads_q, qlen, head_dim], got [1, 8, 0, 128]");
  expectExactError([&] { checkArguments(packed(), packedArgs(1, 8, 8, 100, 0)); },
                   ErrorCode::InvalidArgument, "k",
                   "k: expected every size >= 1 [batch, heads_kv, klen, head_dim], got [1, 8, 0, 128]");
}

TEST(RuntimeSummaryPlan, SeveralTiledStagesShareTheLargestWorkspace) {
  // A second tiled stage of its own sizes: the workspace is the larger one's.
  Manifest m = parseManifest(kPacked);
  VariantSpec v = m.variants[0];
  KernelSpec extra = v.kernels[2];
  extra.symbol = "packed_bounds_d128";
  extra.stage = "bounds";
  extra.blockM = 64;
  extra.blockN = 128;
  extra.threads = 64;
  extra.workspacePerTile = 12;
  v.kernels.insert(v.kernels.begin() + 3, extra);
  KernelSpec extra64 = v.kernels[0];
  extra64.symbol = "packed_bounds_d64";
  extra64.stage = "bounds";
  v.kernels.insert(v.kernels.begin() + 1, extra64);
  Manifest mv = m;
  mv.variants[0] = v;
  v = parseManifest(manifestToJson(mv)).variants[0]; // valid, and read back as written
  LaunchPlan p = checkArguments(v, packedArgs(2, 8, 8, 1000, 1000));
  ASSERT_EQ(p.stages.size(), 3u);
  EXPECT_EQ(v.kernels[p.stages[1].kernelIndex].stage, "bounds");
  EXPECT_EQ(p.stages[0].workspaceBytes, 8ull * 2 * 8 * 24);  // 8 + 16 tiles
  EXPECT_EQ(p.stages[1].tiles, 16 + 8);                       // 64-row and 128-key tiles
  EXPECT_EQ(geometry(p.stages[1].grid), "[12, 8, 2]");        // 2 warps per CTA
  EXPECT_EQ(p.stages[1].workspaceBytes, 12ull * 2 * 8 * 24);
  EXPECT_EQ(p.workspaceBytes, 12ull * 2 * 8 * 24);
  // Too small: the message names the stage that needs the most.
  LaunchArgs a = packedArgs(2, 8, 8, 1000, 1000);
  a.workspace = TensorRef::contiguous(addr(9), DType::U8, {4607});
  expectExactError([&] { checkArguments(v, a); }, ErrorCode::InvalidArgument, "workspace",
                   "workspace: expected at least 4608 bytes (stage 'bounds': batch 2 x heads_q 8 x 24 "
                   "tiles (ceil(qlen 1000 / block_m 64) + ceil(klen 1000 / block_n 128)) x 12 bytes "
                   "per tile), got 4607 bytes (4607 x u8)");
}

TEST(RuntimeSummaryPlan, GridLimitsNameTheStage) {
  // y: heads_q.
  expectExactError([&] { checkArguments(packed(), packedArgs(1, 70000, 1, 100, 100)); },
                   ErrorCode::InvalidArgument, "q",
                   "q: heads_q = 70000 exceeds the launch grid's y limit (65535) (stage 'summary', "
                   "kernel 'packed_summary_d128')");
  // z: batch.
  expectExactError([&] { checkArguments(packed(), packedArgs(70000, 1, 1, 100, 100)); },
                   ErrorCode::InvalidArgument, "q",
                   "q: batch = 70000 exceeds the launch grid's z limit (65535) (stage 'summary', "
                   "kernel 'packed_summary_d128')");
  // x: 1 + 2^33 tiles over 4 warps per CTA; klen counts as much as qlen.
  expectExactError([&] { checkArguments(packed(), packedArgs(1, 1, 1, 1, (int64_t(1) << 39) + 1)); },
                   ErrorCode::InvalidArgument, "q",
                   "q: qlen = 1 and klen = 549755813889 need 2147483649 CTAs (ceil((ceil(qlen / "
                   "block_m) + ceil(klen / block_n)) / (threads / 32))), more than the launch grid's "
                   "x limit (2147483647) (stage 'summary', kernel 'packed_summary_d128')");
  // Just below: 4 * (2^31 - 1) tiles fit.
  const int64_t klen = 64 * (4 * ((int64_t(1) << 31) - 1) - 1);
  try {
    checkArguments(packed(), packedArgs(1, 1, 1, 1, klen));
    ADD_FAILURE() << "the i32 klen should not fit";
  } catch (const Error &e) {
    EXPECT_EQ(e.arg(), "klen") << e.what(); // past the grids: only the parameter's range fails
  }
  // More than 2^62 bytes of workspace.
  expectExactError([&] { checkArguments(packed(), packedArgs(65535, 65535, 1, 1, int64_t(1) << 34)); },
                   ErrorCode::InvalidArgument, "q",
                   "q: batch = 65535, heads_q = 65535, qlen = 1 and klen = 17179869184 need more than "
                   "2^62 bytes of workspace (batch x heads_q x 268435457 tiles x 8 bytes per tile) "
                   "(stage 'summary', kernel 'packed_summary_d128')");
  // Just below 2^62 bytes: accepted by the workspace sizing.
  try {
    checkArguments(packed(), packedArgs(65535, 65535, 1, 1, int64_t(1) << 33));
    ADD_FAILURE() << "the i32 klen should not fit";
  } catch (const Error &e) {
    EXPECT_EQ(e.arg(), "klen") << e.what();
  }
}

TEST(RuntimeSummaryPlan, Describe) {
  LaunchArgs a = packedArgs(2, 16, 4, 100, 5000);
  std::string d = checkArguments(packed(), a).describe(packed());
  EXPECT_EQ(d.substr(0, d.find("\n  q=")),
            "packed_d128 grid=[1, 16, 2] block=[256, 1, 1] shared=98304\n"
            "  stage summary: packed_summary_d128 grid=[20, 16, 2] (80 tiles, 4 per CTA) "
            "block=[128, 1, 1] shared=0 workspace=20480\n"
            "  stage attention: packed_d128 grid=[1, 16, 2] block=[256, 1, 1] shared=98304");
  EXPECT_NE(d.find("\n  workspace=(allocated at launch, 20480 bytes)\n"), std::string::npos) << d;
  a.workspace = TensorRef::contiguous(addr(9), DType::U8, {20480});
  d = checkArguments(packed(), a).describe(packed());
  EXPECT_NE(d.find("\n  workspace=0x880000000000\n"), std::string::npos) << d;
}

//===----------------------------------------------------------------------===//
// The workspace argument
//===----------------------------------------------------------------------===//

TEST(RuntimeSummaryWorkspace, CallerGivenWorkspace) {
  const VariantSpec &v = packed();
  LaunchArgs a = packedArgs(2, 16, 4, 100, 5000);
  // Exactly the bytes needed, as u8 or as f32.
  a.workspace = TensorRef::contiguous(addr(9), DType::U8, {20480});
  LaunchPlan p = checkArguments(v, a);
  EXPECT_FALSE(p.allocateWorkspace);
  EXPECT_EQ(p.workspaceBytes, 20480u);
  EXPECT_EQ(p.values[size_t(p.workspaceSlot)], addr(9));
  a.workspace = TensorRef::contiguous(addr(9), DType::F32, {5120});
  EXPECT_FALSE(checkArguments(v, a).allocateWorkspace);
  // Too small: the message names the stage and the formula.
  a.workspace = TensorRef::contiguous(addr(9), DType::U8, {20479});
  expectExactError([&] { checkArguments(v, a); }, ErrorCode::InvalidArgument, "workspace",
                   "workspace: expected at least 20480 bytes (stage 'summary': batch 2 x heads_q 16 x "
                   "80 tiles (ceil(qlen 100 / block_m 128) + ceil(klen 5000 / block_n 64)) x 8 bytes "
                   "per tile), got 20479 bytes (20479 x u8)");
  a.workspace = TensorRef::contiguous(addr(9), DType::F32, {5119});
  expectExactError([&] { checkArguments(v, a); }, ErrorCode::InvalidArgument, "workspace",
                   "workspace: expected at least 20480 bytes (stage 'summary': batch 2 x heads_q 16 x "
                   "80 tiles (ceil(qlen 100 / block_m 128) + ceil(klen 5000 / block_n 64)) x 8 bytes "
                   "per tile), got 20476 bytes (5119 x f32)");
  // d64: the other kernel's sizes.
  LaunchArgs b = packedArgs(1, 2, 2, 65, 1, 64);
  b.workspace = TensorRef::contiguous(addr(9), DType::U8, {95});
  expectExactError([&] { checkArguments(v, b); }, ErrorCode::InvalidArgument, "workspace",
                   "workspace: expected at least 96 bytes (stage 'summary': batch 1 x heads_q 2 x 3 "
                   "tiles (ceil(qlen 65 / block_m 64) + ceil(klen 1 / block_n 64)) x 16 bytes per "
                   "tile), got 95 bytes (95 x u8)");
  // Layout, as for any workspace.
  a.workspace = TensorRef::contiguous(addr(9) + 8, DType::U8, {20480});
  expectExactError([&] { checkArguments(v, a); }, ErrorCode::InvalidArgument, "workspace",
                   "workspace: data pointer 0x880000000008 is not 16-byte aligned");
}

//===----------------------------------------------------------------------===//
// Modules and the C API without a GPU
//===----------------------------------------------------------------------===//

TEST(RuntimeSummaryModule, LazyModuleAndTheCApi) {
  Manifest m = parseManifest(kPacked);
  std::string ptx = embedManifestInPtx(ptxFor(m), m);
  LoadOptions lazy;
  lazy.lazy = true;
  Module mod = Module::loadData(ptx, "", lazy, "packed.ptx");
  Kernel k = mod.variant("packed");
  EXPECT_EQ(k.check(packedArgs(2, 16, 4, 100, 5000)).workspaceBytes, 20480u);
  // A launch checks first (a too-small workspace stays an argument error),
  // then needs the driver.
  rt::cu::resetDriverForTesting("/nonexistent/libcuda.so.1");
  LaunchArgs bad = packedArgs(2, 16, 4, 100, 5000);
  bad.workspace = TensorRef::contiguous(addr(9), DType::U8, {16});
  try {
    k.launch(bad);
    ADD_FAILURE();
  } catch (const Error &e) {
    EXPECT_EQ(int(e.code()), int(ErrorCode::InvalidArgument)) << e.what();
    EXPECT_EQ(e.arg(), "workspace");
  }
  try {
    k.launch(packedArgs(2, 16, 4, 100, 5000));
    ADD_FAILURE();
  } catch (const Error &e) {
    EXPECT_EQ(int(e.code()), int(ErrorCode::NoDriver)) << e.what();
  }
  rt::cu::resetDriverForTesting("");

  // attnrt_kernel_workspace_bytes, which python/attnc allocates by.
  attnrt_module *cm = nullptr;
  ASSERT_EQ(attnrt_module_load_data(ptx.data(), ptx.size(), nullptr, ATTNRT_LOAD_LAZY, "packed.ptx", &cm),
            ATTNRT_OK)
      << attnrt_last_error();
  attnrt_kernel *ck = nullptr;
  ASSERT_EQ(attnrt_module_variant(cm, "packed", &ck), ATTNRT_OK) << attnrt_last_error();
  LaunchArgs a = packedArgs(2, 16, 4, 100, 5000);
  attnrt_tensor q = cTensor(a.q), kk = cTensor(a.k), vv = cTensor(a.v), o = cTensor(a.o),
                lse = cTensor(a.lse);
  attnrt_input in{};
  in.name = "doc";
  in.tensor = cTensor(a.inputs.at("doc"));
  attnrt_launch_args ca{};
  ca.struct_size = sizeof ca;
  ca.q = &q;
  ca.k = &kk;
  ca.v = &vv;
  ca.o = &o;
  ca.lse = &lse;
  ca.inputs = &in;
  ca.num_inputs = 1;
  ca.flags = ATTNRT_HAS_Q_OFFSET | ATTNRT_HAS_K_OFFSET;
  uint64_t bytes = 0;
  ASSERT_EQ(attnrt_kernel_workspace_bytes(ck, &ca, &bytes), ATTNRT_OK) << attnrt_last_error();
  EXPECT_EQ(bytes, 20480u);
  attnrt_launch_plan plan{};
  ASSERT_EQ(attnrt_kernel_check(ck, &ca, &plan), ATTNRT_OK) << attnrt_last_error();
  EXPECT_EQ(plan.grid[0], 1u); // the primary (attention) kernel's
  EXPECT_EQ(plan.grid[1], 16u);
  attnrt_tensor wsp = cTensor(TensorRef::contiguous(addr(9), DType::U8, {20479}));
  ca.workspace = &wsp;
  EXPECT_EQ(attnrt_kernel_check(ck, &ca, &plan), ATTNRT_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(attnrt_last_error_arg(), "workspace");
  EXPECT_EQ(std::string(attnrt_last_error()).rfind("workspace: expected at least 20480 bytes (stage 'summary': ", 0),
            0u)
      << attnrt_last_error();
  attnrt_kernel_free(ck);
  attnrt_module_free(cm);
}

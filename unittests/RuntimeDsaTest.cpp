//===- RuntimeDsaTest.cpp - DSA's two-stage variants in the runtime -------===//
//
// libattnrt tests that need no GPU, for DeepSeek sparse attention variants
// (`select topk(K) by ...`): a stage "select" with the grid rule
// chunked_row_blocks, which the runtime launches in chunks of row blocks
// over a bounded workspace, and a stage "attention" with rows_kvheads_batch.
// The manifest fields (workspace_per_key, the grid names, the arguments
// workspace and block_first) with round trips and every validation error;
// plans: chunk sizes and counts against kWorkspaceBudget at several klen,
// each launch's block_first and grid, workspace bytes, describe(); the
// workspace argument's rules; rows_kvheads_batch at several GQA ratios; and
// the C API (attnrt_launch_args.workspace, attnrt_kernel_workspace_bytes,
// callers of the older, shorter struct). The launches themselves are
// exercised on a GPU (docs/runtime.md, "Testing").
//
//===----------------------------------------------------------------------===//
#include "attnc/Runtime.h"
#include "attnc/attnrt.h"
#include "runtime/CudaDriver.h"

#include "RuntimeTestSupport.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <string>

using namespace attnc;
using namespace attnc::testing;

namespace {

/// A DSA variant as the code generator writes it: per (head dim, dtype) a
/// selection kernel (indexer scores of 64 query rows over all keys into the
/// workspace, f32 = 4 bytes per key, then the top 2048) and a sparse
/// attention kernel over the selected keys.
const char kDsa[] = R"({
  "format": "attnc-module",
  "format_version": 1,
  "attnc_version": "0.1.0",
  "target": "sm_90a",
  "kind": "variants",
  "variants": [
    {
      "name": "dsa",
      "head_dims": [128],
      "dtypes": ["bf16"],
      "kernels": [
        {"head_dim": 128, "dtype": "bf16", "symbol": "dsa_select_d128", "block_m": 64, "block_n": 64,
         "threads": 256, "shared_bytes": 16384, "stage": "select", "grid": "chunked_row_blocks", "workspace_per_key": 4},
        {"head_dim": 128, "dtype": "bf16", "symbol": "dsa_attention_d128", "block_m": 64, "block_n": 64,
         "threads": 128, "shared_bytes": 65536, "stage": "attention", "grid": "rows_kvheads_batch"}
      ],
      "grid": "qtiles_heads_batch",
      "sink": false,
      "select": {"topk": 2048, "indexer": {"heads": 64, "dim": 128, "dtype": "fp8_e4m3"}},
      "args": [
        {"name": "q", "kind": "ptr"},
        {"name": "k", "kind": "ptr"},
        {"name": "v", "kind": "ptr"},
        {"name": "o", "kind": "ptr"},
        {"name": "lse", "kind": "ptr"},
        {"name": "indexer.qI", "kind": "ptr"},
        {"name": "indexer.w", "kind": "ptr"},
        {"name": "indexer.kI", "kind": "ptr"},
        {"name": "indices", "kind": "ptr"},
        {"name": "workspace", "kind": "ptr"},
        {"name": "block_first", "kind": "i64"},
        {"name": "batch", "kind": "i32"},
        {"name": "heads_q", "kind": "i32"},
        {"name": "heads_kv", "kind": "i32"},
        {"name": "qlen", "kind": "i32"},
        {"name": "klen", "kind": "i32"},
        {"name": "topk", "kind": "i32"},
        {"name": "scale", "kind": "f32"}
      ]
    }
  ]
})";

const VariantSpec &dsa() {
  static Manifest m = parseManifest(kDsa);
  return m.variants[0];
}


/// Valid arguments for dsa(): q [B, Hq, Lq, 128] bf16, k and v [B, Hkv, Lk,
/// 128], the indexer (64 heads of dim 128, fp8) and indices [B, Hkv, Lq, 2048].
LaunchArgs dsaArgs(int64_t B, int64_t Hq, int64_t Hkv, int64_t Lq, int64_t Lk) {
  LaunchArgs a = attnc::testing::attentionArgs(B, Hq, Hkv, Lq, Lk, 128);
  a.indexer = IndexerTensors{TensorRef::contiguous(addr(5), DType::F8E4M3, {B, Lq, 64, 128}),
                             TensorRef::contiguous(addr(6), DType::F32, {B, Lq, 64}),
                             TensorRef::contiguous(addr(7), DType::F8E4M3, {B, Lk, 128})};
  a.indices = TensorRef::contiguous(addr(8), DType::I32, {B, Hkv, Lq, 2048});
  return a;
}

std::string geometry(const uint32_t (&g)[3]) {
  return "[" + std::to_string(g[0]) + ", " + std::to_string(g[1]) + ", " + std::to_string(g[2]) + "]";
}

} // namespace

//===----------------------------------------------------------------------===//
// The manifest
//===----------------------------------------------------------------------===//

TEST(RuntimeDsaManifest, FieldsAreReadAndRoundTrip) {
  const VariantSpec &v = dsa();
  ASSERT_EQ(v.kernels.size(), 2u);
  EXPECT_EQ(v.kernels[0].stage, "select");
  EXPECT_EQ(v.gridOf(v.kernels[0]), GridRule::ChunkedRowBlocks);
  EXPECT_EQ(v.kernels[0].workspacePerKey, 4);
  EXPECT_EQ(v.kernels[1].stage, "attention");
  EXPECT_EQ(v.gridOf(v.kernels[1]), GridRule::RowsKvHeadsBatch);
  EXPECT_FALSE(v.kernels[1].workspacePerKey);
  EXPECT_EQ(v.findKernel(128, DType::BF16), &v.kernels[1]);
  EXPECT_STREQ(gridRuleName(GridRule::ChunkedRowBlocks), "chunked_row_blocks");
  EXPECT_STREQ(gridRuleName(GridRule::RowsKvHeadsBatch), "rows_kvheads_batch");
  EXPECT_EQ(v.args[size_t(v.findArg("workspace"))].kind, ArgKind::Ptr);
  EXPECT_EQ(v.args[size_t(v.findArg("block_first"))].kind, ArgKind::I64);

  Manifest m = parseManifest(kDsa);
  std::string written = manifestToJson(m);
  EXPECT_EQ(manifestToJson(parseManifest(written)), written);
  // workspace_per_key follows the kernel's grid, and only where present.
  EXPECT_NE(written.find("          \"stage\": \"select\",\n"
                         "          \"grid\": \"chunked_row_blocks\",\n"
                         "          \"workspace_per_key\": 4\n"
                         "        },"),
            std::string::npos)
      << written;
  EXPECT_NE(written.find("          \"stage\": \"attention\",\n"
                         "          \"grid\": \"rows_kvheads_batch\"\n"
                         "        }\n"),
            std::string::npos)
      << written;
  EXPECT_EQ(written.find("workspace_per_key"), written.rfind("workspace_per_key"));
  Manifest back = parseManifest(written);
  EXPECT_EQ(back.variants[0].kernels[0].workspacePerKey, 4);
  EXPECT_EQ(back.variants[0].kernels[0].grid, GridRule::ChunkedRowBlocks);
  EXPECT_EQ(back.variants[0].kernels[1].grid, GridRule::RowsKvHeadsBatch);
  // 8 bytes per key (score and index) round-trips too.
  m.variants[0].kernels[0].workspacePerKey = 8;
  EXPECT_EQ(parseManifest(manifestToJson(m)).variants[0].kernels[0].workspacePerKey, 8);
  // Through the PTX block and the .entry cross-check.
  std::string ptx = embedManifestInPtx(ptxFor(back), back);
  EXPECT_EQ(*extractManifestFromPtx(ptx), written);
  checkManifestAgainstPtx(parseManifest(*extractManifestFromPtx(ptx)), ptx);
  // Single-stage manifests are written byte for byte as before.
  for (const char *name : {"naive_attention_causal", "naive_attention_model"}) {
    std::string text = readFile(kTestdata + "/" + name + ".manifest.json");
    EXPECT_EQ(manifestToJson(parseManifest(text)), text) << name;
  }
}

TEST(RuntimeDsaManifest, MalformedFieldsGiveTheirMessage) {
  const std::string m = kDsa;
  const std::string wpk = R"(, "workspace_per_key": 4})";
  const std::string att = R"("stage": "attention", "grid": "rows_kvheads_batch"})";
  const std::string ws = R"({"name": "workspace", "kind": "ptr"},)";
  const std::string bf = R"({"name": "block_first", "kind": "i64"},)";
  // The fixture's causal variant (no select) with a workspace argument.
  std::string causal = readFile(kTestdata + "/naive_attention_causal.manifest.json");
  std::string noSelect = replaced(causal, R"("name": "q",)", R"("name": "workspace",
          "kind": "ptr"
        },
        {
          "name": "q",)");
  struct Case {
    std::string text, message;
  } cases[] = {
      // workspace_per_key.
      {replaced(m, wpk, "}"),
       "manifest: variants[0].kernels[0]: missing required field 'workspace_per_key' (the grid is "
       "'chunked_row_blocks', the kernel's)"},
      {replaced(m, wpk, R"(, "workspace_per_key": 0})"),
       "manifest: variants[0].kernels[0].workspace_per_key: expected an integer in [1, 65536], got 0"},
      {replaced(m, wpk, R"(, "workspace_per_key": 4.5})"),
       "manifest: variants[0].kernels[0].workspace_per_key: expected an integer, got 4.5"},
      {replaced(m, wpk, R"(, "workspace_per_key": "4"})"),
       "manifest: variants[0].kernels[0].workspace_per_key: expected an integer, got '4'"},
      {replaced(m, att, R"("stage": "attention", "grid": "rows_kvheads_batch", "workspace_per_key": 4})"),
       "manifest: variants[0].kernels[1].workspace_per_key: only a kernel with grid "
       "'chunked_row_blocks' has a workspace per key, but the grid is 'rows_kvheads_batch'"},
      {replaced(m, att, R"("stage": "attention", "workspace_per_key": 8})"),
       "manifest: variants[0].kernels[1].workspace_per_key: only a kernel with grid "
       "'chunked_row_blocks' has a workspace per key, but the grid is 'qtiles_heads_batch' (the "
       "variant's)"},
      // A chunked stage right after another shares its workspace chunk by chunk.
      {replaced(m, R"("workspace_per_key": 4},)", R"("workspace_per_key": 4},
        {"head_dim": 128, "dtype": "bf16", "symbol": "dsa_topk_d128", "block_m": 32, "block_n": 64,
         "threads": 128, "shared_bytes": 0, "stage": "topk", "grid": "chunked_row_blocks", "workspace_per_key": 4},)"),
       "manifest: variants[0].kernels[1]: stage 'topk' follows the chunked stage 'select', which shares its "
       "workspace chunk by chunk: expected block_m 64 and workspace_per_key 4, got 32 and 4"},
      // The variant's grid makes every kernel without its own chunked.
      {replaced(replaced(m, R"("grid": "qtiles_heads_batch")", R"("grid": "chunked_row_blocks")"), att,
                R"("stage": "attention"})"),
       "manifest: variants[0].kernels[1]: missing required field 'workspace_per_key' (the grid is "
       "'chunked_row_blocks', the variant's)"},
      // The arguments of a chunked stage.
      {replaced(m, bf, ""),
       "manifest: variants[0].args: kernel 'dsa_select_d128' has grid 'chunked_row_blocks', but "
       "'block_first' is not among the arguments"},
      {replaced(m, ws, ""),
       "manifest: variants[0].args: kernel 'dsa_select_d128' has grid 'chunked_row_blocks', but "
       "'workspace' is not among the arguments"},
      {replaced(replaced(m, R"("grid": "chunked_row_blocks", "workspace_per_key": 4})",
                         R"("grid": "qtiles_kvheads_batch"})"),
                ws, ""),
       "manifest: variants[0].args: 'block_first' is an argument, but no kernel of the variant has "
       "grid 'chunked_row_blocks'"},
      {replaced(m, R"("grid": "chunked_row_blocks", "workspace_per_key": 4})", R"("grid": "qtiles_kvheads_batch"})"),
       "manifest: variants[0].args: 'block_first' is an argument, but no kernel of the variant has "
       "grid 'chunked_row_blocks'"},
      {replaced(replaced(m, R"("grid": "chunked_row_blocks", "workspace_per_key": 4})",
                         R"("grid": "qtiles_kvheads_batch"})"),
                bf, ""),
       "manifest: variants[0].args: 'workspace' is an argument, but no kernel of the variant has "
       "grid 'chunked_row_blocks' or 'tiles_heads_batch'"},
      {noSelect, "manifest: variants[0].args: 'workspace' is an argument, but the variant has no "
                 "select and no kernel with grid 'tiles_heads_batch'"},
      {replaced(m, bf, R"({"name": "block_first", "kind": "ptr"},)"),
       "manifest: variants[0].args[10].kind: 'block_first' is an integer argument: expected i32 or "
       "i64, got 'ptr'"},
      {replaced(m, ws, R"({"name": "workspace", "kind": "i64"},)"),
       "manifest: variants[0].args[9].kind: 'workspace' is a pointer argument: expected ptr, got 'i64'"},
      {replaced(m, ws, R"({"name": "workspace_stride_b", "kind": "i64"},)"),
       "manifest: variants[0].args[9].name: unknown argument 'workspace_stride_b': not in the "
       "argument vocabulary (see docs/runtime.md: q, k, v, o, lse, sinks, indices, "
       "indexer.qI/w/kI, workspace, X_stride_A, batch, heads_q, heads_kv, qlen, klen, head_dim, "
       "q_offset, k_offset, topk, block_first, scale, input:NAME[:stride|size:AXIS], tmap:NAME)"},
      {replaced(m, R"("grid": "rows_kvheads_batch")", R"("grid": "rows_heads_batch")"),
       "manifest: variants[0].kernels[1].grid: expected one of qtiles_heads_batch, "
       "qtiles_kvheads_batch, chunked_row_blocks, rows_kvheads_batch, tiles_heads_batch, persistent, ktiles_kvheads_batch, got "
       "'rows_heads_batch'"},
  };
  for (const auto &c : cases)
    EXPECT_EQ(manifestError(c.text), c.message);
  // The writer validates like the reader.
  Manifest bad = parseManifest(kDsa);
  bad.variants[0].kernels[1].workspacePerKey = 4;
  try {
    manifestToJson(bad);
    ADD_FAILURE() << "wrote workspace_per_key on a rows_kvheads_batch kernel";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("only a kernel with grid 'chunked_row_blocks' has a workspace"),
              std::string::npos)
        << e.what();
  }
}

//===----------------------------------------------------------------------===//
// Plans
//===----------------------------------------------------------------------===//

TEST(RuntimeDsaPlan, ChunksFollowTheWorkspaceBudget) {
  EXPECT_EQ(kWorkspaceBudget, 1073741824u);
  // B = 2, 128 query heads over one KV head (MLA-like, G = 128).
  struct Case {
    int64_t qlen, klen;
    int64_t total, chunk, launches;
    uint64_t workspace;
  } cases[] = {
      // 64 rows x 32768 keys x 4 bytes = 8 MiB per row block: 128 fit.
      {8192, 32768, 256, 128, 2, 1073741824},
      // 131072 keys: 32 MiB per row block, 32 per launch, 128 launches.
      {131072, 131072, 4096, 32, 128, 1073741824},
      // 20000 keys: 209 row blocks per launch; the last of 3 has 626 - 418 = 208.
      {20000, 20000, 626, 209, 3, 209ull * 64 * 20000 * 4},
      // Everything fits: one launch of all row blocks, the workspace only as large as needed.
      {100, 1000, 4, 4, 1, 4ull * 64 * 1000 * 4},
      {3000, 3000, 94, 94, 1, 94ull * 64 * 3000 * 4},
      // One row block alone exceeds the budget: chunks of 1.
      {64, int64_t(1) << 23, 2, 1, 2, uint64_t(1) << 31},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE("qlen " + std::to_string(c.qlen) + ", klen " + std::to_string(c.klen));
    LaunchPlan p = checkArguments(dsa(), dsaArgs(2, 128, 1, c.qlen, c.klen));
    ASSERT_EQ(p.stages.size(), 2u);
    const StagePlan &sel = p.stages[0];
    EXPECT_EQ(dsa().kernels[sel.kernelIndex].symbol, "dsa_select_d128");
    EXPECT_TRUE(sel.chunked());
    EXPECT_EQ(sel.totalBlocks, c.total);
    EXPECT_EQ(sel.chunkBlocks, c.chunk);
    EXPECT_EQ(sel.launches(), c.launches);
    EXPECT_EQ(sel.workspaceBytes, c.workspace);
    EXPECT_EQ(geometry(sel.grid), "[" + std::to_string(c.chunk) + ", 1, 1]");
    EXPECT_EQ(sel.block[0], 256u);
    EXPECT_EQ(sel.sharedBytes, 16384u);
    EXPECT_EQ(p.workspaceBytes, c.workspace);
    EXPECT_TRUE(p.allocateWorkspace);
    // Every launch: consecutive chunks covering each row block once.
    int64_t covered = 0;
    for (int64_t i = 0; i < sel.launches(); ++i) {
      int64_t first = -1;
      uint32_t g[3];
      sel.launchGeometry(i, first, g);
      EXPECT_EQ(first, covered);
      EXPECT_EQ(g[0], uint32_t(std::min(c.chunk, c.total - first)));
      EXPECT_EQ(g[1], 1u);
      EXPECT_EQ(g[2], 1u);
      covered += g[0];
    }
    EXPECT_EQ(covered, c.total);
    // The attention stage: one launch, block_first 0, x = qlen * ceil(128 / 64).
    const StagePlan &att = p.stages[1];
    EXPECT_FALSE(att.chunked());
    EXPECT_EQ(att.launches(), 1);
    EXPECT_EQ(att.workspaceBytes, 0u);
    int64_t first = -1;
    uint32_t g[3];
    att.launchGeometry(0, first, g);
    EXPECT_EQ(first, 0);
    EXPECT_EQ(geometry(g), "[" + std::to_string(c.qlen * 2) + ", 1, 2]");
    EXPECT_EQ(p.kernelIndex, att.kernelIndex); // the primary kernel
  }
  // The last chunk of the 20000-key case.
  LaunchPlan p = checkArguments(dsa(), dsaArgs(2, 128, 1, 20000, 20000));
  int64_t first = 0;
  uint32_t g[3];
  p.stages[0].launchGeometry(2, first, g);
  EXPECT_EQ(first, 418);
  EXPECT_EQ(geometry(g), "[208, 1, 1]");
  // workspace_per_key 8 halves the chunk.
  Manifest m8 = parseManifest(kDsa);
  m8.variants[0].kernels[0].workspacePerKey = 8;
  p = checkArguments(m8.variants[0], dsaArgs(2, 128, 1, 8192, 32768));
  EXPECT_EQ(p.stages[0].chunkBlocks, 64);
  EXPECT_EQ(p.stages[0].launches(), 4);
  EXPECT_EQ(p.workspaceBytes, 1073741824u);
  // A partial last row block of each batch entry: rows 8192 .. 8199 make a block of their own.
  p = checkArguments(dsa(), dsaArgs(3, 128, 1, 8200, 32768));
  EXPECT_EQ(p.stages[0].totalBlocks, 3 * 129);
  EXPECT_EQ(p.stages[0].chunkBlocks, 128);
  EXPECT_EQ(p.stages[0].launches(), 4);
}

TEST(RuntimeDsaPlan, RowsKvHeadsBatchGrid) {
  // block_m 64: x = qlen * ceil(G / 64), y = heads_kv, z = batch.
  struct Case {
    int64_t hq, hkv;
    std::string grid;
  } cases[] = {
      {16, 16, "[100, 16, 2]"},  // G = 1
      {16, 1, "[100, 1, 2]"},    // G = 16
      {128, 1, "[200, 1, 2]"},   // G = 128
      {256, 2, "[200, 2, 2]"},   // G = 128
      {100, 1, "[200, 1, 2]"},   // G = 100: a second CTA for heads 64 .. 99
      {64, 1, "[100, 1, 2]"},    // G = 64: exactly one
  };
  for (const Case &c : cases) {
    LaunchPlan p = checkArguments(dsa(), dsaArgs(2, c.hq, c.hkv, 100, 1000));
    EXPECT_EQ(geometry(p.stages[1].grid), c.grid) << "G = " << c.hq / c.hkv;
    EXPECT_EQ(geometry(p.grid), c.grid); // the primary kernel's
  }
  // The grid limits name the stage.
  LaunchArgs a = dsaArgs(1, 1, 1, 100, 1000);
  a.k = TensorRef::contiguous(addr(1), DType::BF16, {1, 70000, 1000, 128});
  a.v = TensorRef::contiguous(addr(2), DType::BF16, {1, 70000, 1000, 128});
  a.q = TensorRef::contiguous(addr(0), DType::BF16, {1, 70000, 100, 128});
  a.o = TensorRef::contiguous(addr(3), DType::BF16, {1, 70000, 100, 128});
  a.lse = TensorRef::contiguous(addr(4), DType::F32, {1, 70000, 100});
  a.indices = TensorRef::contiguous(addr(8), DType::I32, {1, 70000, 100, 2048});
  expectExactError([&] { checkArguments(dsa(), a); }, ErrorCode::InvalidArgument, "k",
                   "k: heads_kv = 70000 exceeds the launch grid's y limit (65535) (stage "
                   "'attention', kernel 'dsa_attention_d128')");
  // The select stage's grid is (n, 1, 1): batch is not limited by it.
  LaunchPlan p = checkArguments(dsa(), dsaArgs(1, 1, 1, 100, 1000));
  EXPECT_EQ(geometry(p.stages[0].grid), "[2, 1, 1]");
}

TEST(RuntimeDsaPlan, DescribeAndTheBlockFirstSlot) {
  LaunchPlan p = checkArguments(dsa(), dsaArgs(2, 128, 1, 8192, 32768));
  const int bf = dsa().findArg("block_first"), ws = dsa().findArg("workspace");
  EXPECT_EQ(p.blockFirstSlot, bf);
  EXPECT_EQ(p.workspaceSlot, ws);
  EXPECT_EQ(p.names[size_t(bf)], "block_first");
  EXPECT_EQ(p.kinds[size_t(bf)], ArgKind::I64);
  EXPECT_EQ(p.values[size_t(bf)], 0u);
  EXPECT_EQ(p.values[size_t(ws)], 0u); // allocated at launch
  EXPECT_EQ(p.values.size(), dsa().args.size());
  p.setBlockFirst(128);
  EXPECT_EQ(p.values[size_t(bf)], 128u);
  std::string d = p.describe(dsa());
  EXPECT_EQ(d.substr(0, d.find("\n  q=")),
            "dsa_attention_d128 grid=[16384, 1, 2] block=[128, 1, 1] shared=65536\n"
            "  stage select: dsa_select_d128 grid=[128, 1, 1] x 2 launches (256 row blocks, chunks "
            "of 128) block=[256, 1, 1] shared=16384 workspace=1073741824\n"
            "  stage attention: dsa_attention_d128 grid=[16384, 1, 2] block=[128, 1, 1] shared=65536");
  EXPECT_NE(d.find("\n  workspace=(allocated at launch, 1073741824 bytes)\n"), std::string::npos) << d;
  EXPECT_NE(d.find("\n  block_first=(per launch: the chunk's first row block; 0 for stages that are "
                   "not chunked)\n"),
            std::string::npos)
      << d;
  // One launch: "1 launch".
  d = checkArguments(dsa(), dsaArgs(2, 128, 1, 100, 1000)).describe(dsa());
  EXPECT_NE(d.find("\n  stage select: dsa_select_d128 grid=[4, 1, 1] x 1 launch (4 row blocks, "
                   "chunks of 4) block=[256, 1, 1] shared=16384 workspace=1024000\n"),
            std::string::npos)
      << d;
  // A given workspace is printed as its pointer.
  LaunchArgs a = dsaArgs(2, 128, 1, 100, 1000);
  a.workspace = TensorRef::contiguous(addr(9), DType::U8, {1024000});
  d = checkArguments(dsa(), a).describe(dsa());
  EXPECT_NE(d.find("\n  workspace=0x880000000000\n"), std::string::npos) << d;

  // An i32 block_first: set in the low 4 bytes.
  Manifest m = parseManifest(kDsa);
  VariantSpec v = m.variants[0];
  v.args[size_t(bf)].kind = ArgKind::I32;
  p = checkArguments(v, dsaArgs(2, 128, 1, 8192, 32768));
  EXPECT_EQ(p.kinds[size_t(bf)], ArgKind::I32);
  p.setBlockFirst(-1);
  EXPECT_EQ(p.values[size_t(bf)], 0xffffffffu);
  p.setBlockFirst(128);
  EXPECT_EQ(p.values[size_t(bf)], 128u);
  // A plan without block_first ignores setBlockFirst.
  LaunchPlan plain;
  plain.setBlockFirst(5);
  EXPECT_TRUE(plain.values.empty());
}

TEST(RuntimeDsaPlan, ConsecutiveChunkedStagesShareTheChunks) {
  // select, topk and attention: the two chunked stages get the same chunks
  // (Kernel::launch runs them chunk by chunk) and one workspace.
  Manifest m = parseManifest(replaced(kDsa, R"("workspace_per_key": 4},)", R"("workspace_per_key": 4},
        {"head_dim": 128, "dtype": "bf16", "symbol": "dsa_topk_d128", "block_m": 64, "block_n": 64,
         "threads": 128, "shared_bytes": 1024, "stage": "topk", "grid": "chunked_row_blocks", "workspace_per_key": 4},)"));
  LaunchPlan p = checkArguments(m.variants[0], dsaArgs(2, 128, 1, 8192, 32768));
  ASSERT_EQ(p.stages.size(), 3u);
  EXPECT_TRUE(p.stages[0].chunked() && p.stages[1].chunked() && !p.stages[2].chunked());
  EXPECT_EQ(p.stages[0].chunkBlocks, p.stages[1].chunkBlocks);
  EXPECT_EQ(p.stages[0].launches(), 2);
  EXPECT_EQ(p.stages[1].launches(), 2);
  EXPECT_EQ(p.workspaceBytes, 1073741824u);
}

TEST(RuntimeDsaPlan, SelectOnlyVariantAndLimits) {
  // Without an attention stage the chunked select kernel is the primary one.
  Manifest m = parseManifest(kDsa);
  VariantSpec v = m.variants[0];
  v.kernels.pop_back();
  EXPECT_EQ(v.findKernel(128, DType::BF16), &v.kernels[0]);
  LaunchPlan p = checkArguments(v, dsaArgs(2, 128, 1, 8192, 32768));
  ASSERT_EQ(p.stages.size(), 1u);
  EXPECT_EQ(p.describe(v).substr(0, p.describe(v).find('\n')),
            "dsa_select_d128 grid=[128, 1, 1] x 2 launches (256 row blocks, chunks of 128) "
            "block=[256, 1, 1] shared=16384 workspace=1073741824");
  // An i32 block_first must hold the last chunk's first row block: 2^31 + 1
  // row blocks in chunks of 1 (one block needs 2^30 bytes).
  v.args[size_t(v.findArg("block_first"))].kind = ArgKind::I32;
  const int64_t rows = 64 * ((int64_t(1) << 31) + 1);
  expectExactError([&] { checkArguments(v, dsaArgs(1, 1, 1, rows, int64_t(1) << 22)); },
                   ErrorCode::InvalidArgument, "block_first",
                   "block_first: the last chunk launch starts at row block 2147483648, which does "
                   "not fit the kernel's i32 parameter 'block_first'");
  // One row block needing more than 2^62 bytes of workspace.
  v.kernels[0].blockM = 65536;
  v.kernels[0].workspacePerKey = 65536;
  expectExactError([&] { checkArguments(v, dsaArgs(1, 1, 1, 100, int64_t(1) << 31)); },
                   ErrorCode::InvalidArgument, "k",
                   "k: klen = 2147483648 needs more than 2^62 bytes of workspace per row block "
                   "(block_m 65536 x klen x 65536 bytes per key)");
}

//===----------------------------------------------------------------------===//
// The workspace argument
//===----------------------------------------------------------------------===//

TEST(RuntimeDsaWorkspace, Rules) {
  const VariantSpec &v = dsa();
  LaunchArgs a = dsaArgs(2, 128, 1, 8192, 32768);
  // Exactly the bytes needed, as u8 or as f32.
  a.workspace = TensorRef::contiguous(addr(9), DType::U8, {1073741824});
  LaunchPlan p = checkArguments(v, a);
  EXPECT_FALSE(p.allocateWorkspace);
  EXPECT_EQ(p.values[size_t(p.workspaceSlot)], addr(9));
  a.workspace = TensorRef::contiguous(addr(9), DType::F32, {1073741824 / 4 + 10});
  EXPECT_FALSE(checkArguments(v, a).allocateWorkspace);
  // Too small.
  a.workspace = TensorRef::contiguous(addr(9), DType::U8, {1073741823});
  expectExactError([&] { checkArguments(v, a); }, ErrorCode::InvalidArgument, "workspace",
                   "workspace: expected at least 1073741824 bytes (stage 'select': 128 row blocks per "
                   "launch x block_m 64 x klen 32768 x 4 bytes per key), got 1073741823 bytes "
                   "(1073741823 x u8)");
  a.workspace = TensorRef::contiguous(addr(9), DType::F32, {1 << 20});
  expectExactError([&] { checkArguments(v, a); }, ErrorCode::InvalidArgument, "workspace",
                   "workspace: expected at least 1073741824 bytes (stage 'select': 128 row blocks per "
                   "launch x block_m 64 x klen 32768 x 4 bytes per key), got 4194304 bytes "
                   "(1048576 x f32)");
  // Layout.
  a.workspace = TensorRef::contiguous(addr(9), DType::U8, {16384, 16384});
  expectExactError([&] { checkArguments(v, a); }, ErrorCode::InvalidArgument, "workspace",
                   "workspace: expected rank 1 [elements], got rank 2 [16384, 16384]");
  a.workspace = TensorRef::contiguous(addr(9) + 8, DType::U8, {1073741824});
  expectExactError([&] { checkArguments(v, a); }, ErrorCode::InvalidArgument, "workspace",
                   "workspace: data pointer 0x880000000008 is not 16-byte aligned");
  a.workspace = TensorRef::contiguous(addr(9), DType::U8, {1073741824});
  a.workspace->strides = {2};
  expectExactError([&] { checkArguments(v, a); }, ErrorCode::InvalidArgument, "workspace",
                   "workspace: the last dimension (elements) must be contiguous (stride 1), got "
                   "strides [2]");
  a.workspace = TensorRef::contiguous(0, DType::U8, {1073741824});
  expectExactError([&] { checkArguments(v, a); }, ErrorCode::InvalidArgument, "workspace",
                   "workspace: null data pointer");
  // A variant without a workspace.
  Manifest causal = parseManifest(readFile(kTestdata + "/naive_attention_causal.manifest.json"));
  LaunchArgs c;
  c.q = TensorRef::contiguous(addr(0), DType::BF16, {2, 8, 100, 128});
  c.k = TensorRef::contiguous(addr(1), DType::BF16, {2, 4, 1000, 128});
  c.v = TensorRef::contiguous(addr(2), DType::BF16, {2, 4, 1000, 128});
  c.o = TensorRef::contiguous(addr(3), DType::BF16, {2, 8, 100, 128});
  c.lse = TensorRef::contiguous(addr(4), DType::F32, {2, 8, 100});
  p = checkArguments(causal.variants[0], c);
  EXPECT_EQ(p.workspaceBytes, 0u);
  EXPECT_FALSE(p.allocateWorkspace);
  EXPECT_EQ(p.workspaceSlot, -1);
  EXPECT_EQ(p.blockFirstSlot, -1);
  c.workspace = TensorRef::contiguous(addr(9), DType::U8, {1024});
  expectExactError([&] { checkArguments(causal.variants[0], c); }, ErrorCode::InvalidArgument,
                   "workspace", "workspace: variant 'causal' takes no workspace, but one was given");
}

//===----------------------------------------------------------------------===//
// Modules and the C API without a GPU
//===----------------------------------------------------------------------===//

TEST(RuntimeDsaModule, LazyModuleAndTheCApi) {
  Manifest m = parseManifest(kDsa);
  std::string ptx = embedManifestInPtx(ptxFor(m), m);
  LoadOptions lazy;
  lazy.lazy = true;
  Module mod = Module::loadData(ptx, "", lazy, "dsa.ptx");
  Kernel k = mod.variant("dsa");
  EXPECT_EQ(k.check(dsaArgs(2, 128, 1, 8192, 32768)).workspaceBytes, 1073741824u);
  // A launch checks first (a too-small workspace stays an argument error),
  // then needs the driver.
  rt::cu::resetDriverForTesting("/nonexistent/libcuda.so.1");
  LaunchArgs bad = dsaArgs(2, 128, 1, 8192, 32768);
  bad.workspace = TensorRef::contiguous(addr(9), DType::U8, {16});
  try {
    k.launch(bad);
    ADD_FAILURE();
  } catch (const Error &e) {
    EXPECT_EQ(int(e.code()), int(ErrorCode::InvalidArgument)) << e.what();
    EXPECT_EQ(e.arg(), "workspace");
  }
  try {
    k.launch(dsaArgs(2, 128, 1, 8192, 32768));
    ADD_FAILURE();
  } catch (const Error &e) {
    EXPECT_EQ(int(e.code()), int(ErrorCode::NoDriver)) << e.what();
  }
  rt::cu::resetDriverForTesting("");

  // The C API. The layout is also python/attnc's ctypes struct (checked by
  // test/runtime/test_python_api.py).
  EXPECT_GE(ATTNRT_API_VERSION, 2); // version 2 added the workspace
  EXPECT_EQ(attnrt_api_version(), ATTNRT_API_VERSION);
  EXPECT_EQ(sizeof(attnrt_launch_args), 160u); // version 4 added dout, dq, dk, dv
  EXPECT_EQ(offsetof(attnrt_launch_args, workspace), 120u);
  EXPECT_EQ(offsetof(attnrt_launch_args, dout), 128u);
  attnrt_module *cm = nullptr;
  ASSERT_EQ(attnrt_module_load_data(ptx.data(), ptx.size(), nullptr, ATTNRT_LOAD_LAZY, "dsa.ptx", &cm),
            ATTNRT_OK)
      << attnrt_last_error();
  attnrt_kernel *ck = nullptr;
  ASSERT_EQ(attnrt_module_variant(cm, "dsa", &ck), ATTNRT_OK) << attnrt_last_error();
  LaunchArgs a = dsaArgs(2, 128, 1, 8192, 32768);
  attnrt_tensor q = cTensor(a.q), kk = cTensor(a.k), vv = cTensor(a.v), o = cTensor(a.o),
                lse = cTensor(a.lse), qi = cTensor(a.indexer->qI), w = cTensor(a.indexer->w),
                ki = cTensor(a.indexer->kI), idx = cTensor(*a.indices);
  attnrt_launch_args ca{};
  ca.struct_size = sizeof ca;
  ca.q = &q;
  ca.k = &kk;
  ca.v = &vv;
  ca.o = &o;
  ca.lse = &lse;
  ca.indexer_q = &qi;
  ca.indexer_w = &w;
  ca.indexer_k = &ki;
  ca.indices = &idx;
  uint64_t bytes = 0;
  ASSERT_EQ(attnrt_kernel_workspace_bytes(ck, &ca, &bytes), ATTNRT_OK) << attnrt_last_error();
  EXPECT_EQ(bytes, 1073741824u);
  EXPECT_EQ(attnrt_kernel_workspace_bytes(ck, &ca, nullptr), ATTNRT_ERROR_USAGE);
  EXPECT_EQ(attnrt_kernel_workspace_bytes(nullptr, &ca, &bytes), ATTNRT_ERROR_USAGE);
  attnrt_launch_plan plan{};
  ASSERT_EQ(attnrt_kernel_check(ck, &ca, &plan), ATTNRT_OK) << attnrt_last_error();
  EXPECT_EQ(plan.grid[0], 16384u); // the primary (attention) kernel's
  char buf[8192];
  ASSERT_EQ(attnrt_kernel_describe_launch(ck, &ca, buf, sizeof buf), ATTNRT_OK);
  EXPECT_EQ(std::string(buf), checkArguments(dsa(), a).describe(dsa()));
  // A workspace through the struct: checked, and passed.
  attnrt_tensor wsp = cTensor(TensorRef::contiguous(addr(9), DType::U8, {1024}));
  ca.workspace = &wsp;
  EXPECT_EQ(attnrt_kernel_check(ck, &ca, &plan), ATTNRT_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(attnrt_last_error_arg(), "workspace");
  EXPECT_EQ(std::string(attnrt_last_error()).rfind("workspace: expected at least 1073741824 bytes", 0), 0u)
      << attnrt_last_error();
  wsp.sizes[0] = 1073741824;
  ASSERT_EQ(attnrt_kernel_describe_launch(ck, &ca, buf, sizeof buf), ATTNRT_OK) << attnrt_last_error();
  EXPECT_NE(std::string(buf).find("\n  workspace=0x880000000000\n"), std::string::npos) << buf;
  wsp.rank = 9;
  EXPECT_EQ(attnrt_kernel_check(ck, &ca, &plan), ATTNRT_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(attnrt_last_error(), "workspace: rank 9 is out of range [0, 8]");
  // A caller built before the workspace field (struct_size without it): the
  // field is not read, so whatever lies there is ignored.
  ca.struct_size = uint32_t(ATTNRT_LAUNCH_ARGS_SIZE_V1);
  EXPECT_EQ(ATTNRT_LAUNCH_ARGS_SIZE_V1 + sizeof(void *), offsetof(attnrt_launch_args, dout));
  ASSERT_EQ(attnrt_kernel_workspace_bytes(ck, &ca, &bytes), ATTNRT_OK) << attnrt_last_error();
  EXPECT_EQ(bytes, 1073741824u);
  ca.struct_size = uint32_t(ATTNRT_LAUNCH_ARGS_SIZE_V1 - 8);
  EXPECT_EQ(attnrt_kernel_check(ck, &ca, &plan), ATTNRT_ERROR_USAGE);
  attnrt_kernel_free(ck);
  attnrt_module_free(cm);
}

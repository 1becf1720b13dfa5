//===- RuntimeBackwardTest.cpp - Gradient variants in the runtime ---------===//
//
// libattnrt tests that need no GPU, for the gradient kernels of a variant
// (attnc --backward=on): the manifest variant NAME.backward with
// backward_of, its two stages backward_dq (grid qtiles_heads_batch) and
// backward_dkdv (grid ktiles_kvheads_batch), workspace_per_row, and the
// arguments dout, dq, dk, dv. Round trips and validation errors; plans (both
// grids at qlen != klen and GQA, the workspace of B x Hq x Lq rows); the
// argument errors (a missing gradient, dK shaped like a query head's, a
// dtype mismatch, gradients given to a forward variant); the C API's
// struct_size (a version-3 caller cannot launch a backward variant) and
// attnrt_kernel_workspace_bytes.
//
//===----------------------------------------------------------------------===//
#include "attnc/Runtime.h"
#include "attnc/attnrt.h"

#include "RuntimeTestSupport.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <string>

using namespace attnc;
using namespace attnc::testing;

namespace {

/// The arguments both variants share, as the code generator writes them.
std::string sharedArgs() {
  std::string s;
  for (const char *t : {"q", "k", "v", "o", "lse"})
    s += std::string(R"({"name": ")") + t + R"(", "kind": "ptr"},)";
  for (const char *t : {"q", "k", "v", "o"})
    for (const char *ax : {"b", "h", "l"})
      s += std::string(R"({"name": ")") + t + "_stride_" + ax + R"(", "kind": "i64"},)";
  s += R"({"name": "lse_stride_b", "kind": "i64"}, {"name": "lse_stride_h", "kind": "i64"},)";
  for (const char *n : {"batch", "heads_q", "heads_kv", "qlen", "klen", "q_offset", "k_offset"})
    s += std::string(R"({"name": ")") + n + R"(", "kind": "i64"},)";
  return s;
}

/// The gradients' arguments of the backward variant.
std::string gradientArgs() {
  std::string s;
  for (const char *t : {"dout", "dq", "dk", "dv"})
    s += std::string(R"({"name": ")") + t + R"(", "kind": "ptr"},)";
  for (const char *t : {"dout", "dq", "dk", "dv"})
    for (const char *ax : {"b", "h", "l"})
      s += std::string(R"({"name": ")") + t + "_stride_" + ax + R"(", "kind": "i64"},)";
  return s + R"({"name": "workspace", "kind": "ptr"})";
}

/// A causal variant at d 64 bf16 and its backward, as `attnc --backward=on`
/// writes them (the shared-memory sizes are the generator's).
std::string causalManifest() {
  std::string shared = sharedArgs();
  shared.pop_back(); // the trailing comma
  return R"({
  "format": "attnc-module", "format_version": 1, "attnc_version": "0.1.0", "target": "sm_90a",
  "kind": "variants",
  "variants": [
    {"name": "causal", "head_dims": [64], "dtypes": ["bf16"],
     "kernels": [{"head_dim": 64, "dtype": "bf16", "symbol": "causal_d64_bf16", "block_m": 128,
                  "block_n": 128, "threads": 256, "shared_bytes": 49152}],
     "grid": "qtiles_heads_batch", "scale": null, "sink": false, "inputs": [], "select": null,
     "args": [)" + shared + R"(]},
    {"name": "causal.backward", "head_dims": [64], "dtypes": ["bf16"],
     "kernels": [
       {"head_dim": 64, "dtype": "bf16", "symbol": "causal_d64_bf16_bwd_dq", "block_m": 64, "block_n": 64,
        "threads": 128, "shared_bytes": 55552, "stage": "backward_dq", "grid": "qtiles_heads_batch",
        "workspace_per_row": 4},
       {"head_dim": 64, "dtype": "bf16", "symbol": "causal_d64_bf16_bwd_dkdv", "block_m": 64, "block_n": 64,
        "threads": 128, "shared_bytes": 56320, "stage": "backward_dkdv", "grid": "ktiles_kvheads_batch",
        "workspace_per_row": 4}],
     "grid": "qtiles_heads_batch", "scale": null, "sink": false, "backward_of": "causal", "inputs": [],
     "select": null,
     "args": [)" + sharedArgs() + gradientArgs() + R"(]}
  ]
})";
}

const Manifest &causal() {
  static Manifest m = parseManifest(causalManifest());
  return m;
}

/// Valid arguments for the backward: attentionArgs plus dO and the
/// gradients, each shaped like the tensor it is the gradient of.
LaunchArgs backwardArgs(int64_t B, int64_t Hq, int64_t Hkv, int64_t Lq, int64_t Lk, int64_t D = 64) {
  LaunchArgs a = attentionArgs(B, Hq, Hkv, Lq, Lk, D);
  a.dout = TensorRef::contiguous(addr(5), DType::BF16, {B, Hq, Lq, D});
  a.dq = TensorRef::contiguous(addr(6), DType::BF16, {B, Hq, Lq, D});
  a.dk = TensorRef::contiguous(addr(7), DType::BF16, {B, Hkv, Lk, D});
  a.dv = TensorRef::contiguous(addr(8), DType::BF16, {B, Hkv, Lk, D});
  a.workspace = TensorRef::contiguous(addr(9), DType::U8, {1 << 20});
  return a;
}

} // namespace

//===----------------------------------------------------------------------===//
// The manifest
//===----------------------------------------------------------------------===//

TEST(RuntimeBackwardManifest, FieldsAreReadAndRoundTrip) {
  const Manifest &m = causal();
  ASSERT_EQ(m.variants.size(), 2u);
  const VariantSpec &fwd = m.variants[0], &bw = m.variants[1];
  EXPECT_TRUE(fwd.backwardOf.empty());
  EXPECT_EQ(bw.backwardOf, "causal");
  ASSERT_EQ(bw.kernels.size(), 2u);
  EXPECT_EQ(bw.kernels[0].stage, "backward_dq");
  EXPECT_EQ(bw.gridOf(bw.kernels[0]), GridRule::QTilesHeadsBatch);
  EXPECT_EQ(bw.kernels[1].stage, "backward_dkdv");
  EXPECT_EQ(bw.gridOf(bw.kernels[1]), GridRule::KTilesKvHeadsBatch);
  EXPECT_EQ(bw.kernels[1].workspacePerRow, 4);
  EXPECT_FALSE(fwd.kernels[0].workspacePerRow);
  EXPECT_STREQ(gridRuleName(GridRule::KTilesKvHeadsBatch), "ktiles_kvheads_batch");

  std::string written = manifestToJson(m);
  EXPECT_EQ(manifestToJson(parseManifest(written)), written);
  EXPECT_NE(written.find("\"backward_of\": \"causal\""), std::string::npos) << written;
  EXPECT_NE(written.find("          \"grid\": \"ktiles_kvheads_batch\",\n"
                         "          \"workspace_per_row\": 4\n"),
            std::string::npos)
      << written;
  // Through the PTX block and the .entry cross-check.
  std::string ptx = embedManifestInPtx(ptxFor(m), m);
  checkManifestAgainstPtx(parseManifest(*extractManifestFromPtx(ptx)), ptx);
}

TEST(RuntimeBackwardManifest, MalformedFieldsGiveTheirMessage) {
  const std::string m = causalManifest();
  const std::string of = R"("backward_of": "causal")";
  const std::string row = R"("stage": "backward_dq", "grid": "qtiles_heads_batch",
        "workspace_per_row": 4})";
  struct Case {
    std::string text, message;
  } cases[] = {
      {replaced(m, R"("name": "causal.backward")", R"("name": "causal_grad")"),
       "manifest: variants[1].name: the gradient kernels of 'causal' are named 'causal.backward', got "
       "'causal_grad'"},
      {replaced(m, of, R"("backward_of": "causal.x")"),
       "manifest: variants[1].backward_of: expected an identifier, got 'causal.x'"},
      {replaced(replaced(m, of, R"("backward_of": "dense")"), R"("name": "causal.backward")",
                R"("name": "dense.backward")"),
       "manifest: variants[1].backward_of: expected the name of a forward variant of the module, got "
       "'dense'"},
      {replaced(m, row, R"("stage": "backward_dq", "grid": "qtiles_heads_batch"})"),
       "manifest: variants[1].kernels[0]: missing required field 'workspace_per_row' (the variant is the "
       "backward of 'causal')"},
      {replaced(m, R"("shared_bytes": 49152})", R"("shared_bytes": 49152, "workspace_per_row": 4})"),
       "manifest: variants[0].kernels[0].workspace_per_row: only the kernels of a backward variant "
       "(backward_of) have a workspace per row"},
      {replaced(replaced(replaced(replaced(m, R"({"name": "dq", "kind": "ptr"},)", ""),
                                          R"({"name": "dq_stride_b", "kind": "i64"},)", ""),
                                 R"({"name": "dq_stride_h", "kind": "i64"},)", ""),
                        R"({"name": "dq_stride_l", "kind": "i64"},)", ""),
       "manifest: variants[1].args: the variant is the backward of 'causal', but 'dq' is not among the "
       "arguments"},
      {replaced(m, R"({"name": "lse", "kind": "ptr"},)", R"({"name": "lse", "kind": "ptr"}, {"name": "dv", "kind": "ptr"},)"),
       "manifest: variants[0].args: 'dv' is an argument, but the variant is not a backward variant"},
  };
  for (const auto &c : cases)
    EXPECT_EQ(manifestError(c.text), c.message);
}

//===----------------------------------------------------------------------===//
// Plans and argument errors
//===----------------------------------------------------------------------===//

TEST(RuntimeBackwardPlan, BothGridsAndTheWorkspace) {
  const VariantSpec &bw = causal().variants[1];
  // GQA 4:1, qlen != klen, batch 2.
  LaunchPlan p = checkArguments(bw, backwardArgs(2, 8, 2, 300, 1000));
  ASSERT_EQ(p.stages.size(), 2u);
  EXPECT_EQ(bw.kernels[p.stages[0].kernelIndex].stage, "backward_dq");
  EXPECT_EQ(p.stages[0].grid[0], 5u); // ceil(300 / 64) query tiles
  EXPECT_EQ(p.stages[0].grid[1], 8u); // heads_q
  EXPECT_EQ(p.stages[0].grid[2], 2u);
  EXPECT_EQ(bw.kernels[p.stages[1].kernelIndex].stage, "backward_dkdv");
  EXPECT_EQ(p.stages[1].grid[0], 16u); // ceil(1000 / 64) key tiles
  EXPECT_EQ(p.stages[1].grid[1], 2u);  // heads_kv
  EXPECT_EQ(p.stages[1].grid[2], 2u);
  EXPECT_EQ(p.workspaceBytes, 2u * 8 * 300 * 4); // Delta: f32 per query row
  // One query, one KV head.
  LaunchPlan one = checkArguments(bw, backwardArgs(1, 4, 1, 1, 77));
  EXPECT_EQ(one.stages[1].grid[0], 2u);
  EXPECT_EQ(one.workspaceBytes, 16u);
}

// A mask read at token positions (documents): the backward_summary stage
// before the gradient kernels, and the workspace holds its ranges ahead of
// Delta (the kernels place Delta after them).
TEST(RuntimeBackwardPlan, SummaryStageAndDeltaShareTheWorkspace) {
  const std::string summary =
      R"({"head_dim": 64, "dtype": "bf16", "symbol": "causal_d64_bf16_bwd_summary", "block_m": 64, "block_n": 64,
        "threads": 128, "shared_bytes": 0, "stage": "backward_summary", "grid": "tiles_heads_batch",
        "workspace_per_tile": 16, "workspace_per_row": 4},
       )";
  const std::string dq = R"({"head_dim": 64, "dtype": "bf16", "symbol": "causal_d64_bf16_bwd_dq")";
  Manifest m = parseManifest(replaced(causalManifest(), dq, summary + dq));
  const VariantSpec &bw = m.variants[1];
  LaunchArgs a = backwardArgs(2, 8, 2, 300, 1000);
  LaunchPlan p = checkArguments(bw, a);
  ASSERT_EQ(p.stages.size(), 3u);
  EXPECT_EQ(bw.kernels[p.stages[0].kernelIndex].stage, "backward_summary");
  EXPECT_EQ(p.stages[0].grid[0], 6u); // ceil((ceil(300 / 64) + ceil(1000 / 64)) / 4 warps)
  EXPECT_EQ(p.stages[0].grid[1], 8u); // heads_q
  EXPECT_EQ(bw.kernels[p.stages[1].kernelIndex].stage, "backward_dq");
  EXPECT_EQ(bw.kernels[p.stages[2].kernelIndex].stage, "backward_dkdv");
  const uint64_t ranges = 2u * 8 * 21 * 16, delta = 2u * 8 * 300 * 4;
  EXPECT_EQ(p.workspaceBytes, ranges + delta);
  a.workspace = TensorRef::contiguous(addr(9), DType::U8, {int64_t(ranges + delta - 1)});
  expectExactError([&] { checkArguments(bw, a); }, ErrorCode::InvalidArgument, "workspace",
                   "workspace: expected at least 24576 bytes (stage 'backward_summary': batch 2 x heads_q 8 x 21 "
                   "tiles (ceil(qlen 300 / block_m 64) + ceil(klen 1000 / block_n 64)) x 16 bytes per tile, then "
                   "batch 2 x heads_q 8 x qlen 300 x 4 bytes per row (Delta)), got 24575 bytes (24575 x u8)");
}

TEST(RuntimeBackwardPlan, ArgumentErrorsNameTheTensor) {
  const Manifest &m = causal();
  const VariantSpec &fwd = m.variants[0], &bw = m.variants[1];
  LaunchArgs a = backwardArgs(1, 4, 2, 100, 100);
  a.dq.reset();
  expectExactError([&] { checkArguments(bw, a); }, ErrorCode::InvalidArgument, "dq",
                   "dq: the backward of 'causal' takes 'dq': expected a tensor of shape [1, 4, 100, 64] "
                   "(batch, heads_q, qlen, head_dim), got none");
  a = backwardArgs(1, 4, 2, 100, 100);
  a.dk = TensorRef::contiguous(addr(7), DType::BF16, {1, 4, 100, 64}); // per query head
  EXPECT_THROW(checkArguments(bw, a), Error);
  try {
    checkArguments(bw, a);
  } catch (const Error &e) {
    EXPECT_EQ(e.arg(), "dk");
    EXPECT_NE(std::string(e.what()).find("heads_kv"), std::string::npos) << e.what();
  }
  a = backwardArgs(1, 4, 2, 100, 100);
  a.dv = TensorRef::contiguous(addr(8), DType::F16, {1, 2, 100, 64});
  try {
    checkArguments(bw, a);
    ADD_FAILURE() << "an fp16 dv with bf16 q was accepted";
  } catch (const Error &e) {
    EXPECT_EQ(e.arg(), "dv") << e.what();
  }
  // A gradient sharing memory with what the kernels read, or with another
  // gradient; views that only touch end to end are fine.
  a = backwardArgs(1, 4, 2, 100, 100);
  a.dq = a.dout;
  expectExactError([&] { checkArguments(bw, a); }, ErrorCode::InvalidArgument, "dq",
                   "dq: the kernels write this tensor, but its memory overlaps 'dout' (data 0x840000000000 and "
                   "0x840000000000): give the gradients buffers of their own");
  a = backwardArgs(1, 4, 2, 100, 100);
  a.dv = TensorRef::contiguous(a.dk->data + 2 * 100 * 64 * 2 - 16, DType::BF16, {1, 2, 100, 64});
  try {
    checkArguments(bw, a);
    ADD_FAILURE() << "dv overlapping dk by 16 bytes was accepted";
  } catch (const Error &e) {
    EXPECT_EQ(e.arg(), "dk") << e.what();
  }
  a.dv = TensorRef::contiguous(a.dk->data + 2 * 100 * 64 * 2, DType::BF16, {1, 2, 100, 64});
  EXPECT_NO_THROW(checkArguments(bw, a));
  a = backwardArgs(1, 4, 2, 100, 100);
  a.dk = a.k;
  expectExactError([&] { checkArguments(bw, a); }, ErrorCode::InvalidArgument, "dk",
                   "dk: the kernels write this tensor, but its memory overlaps 'k' (data 0x800000000000 and "
                   "0x800000000000): give the gradients buffers of their own");
  // Gradients given to the forward variant.
  LaunchArgs f = attentionArgs(1, 4, 2, 100, 100, 64);
  f.dout = TensorRef::contiguous(addr(5), DType::BF16, {1, 4, 100, 64});
  expectExactError([&] { checkArguments(fwd, f); }, ErrorCode::InvalidArgument, "dout",
                   "dout: variant 'causal' computes no gradients, but 'dout' was given (its backward is "
                   "variant 'causal.backward', compiled with --backward=on)");
}

//===----------------------------------------------------------------------===//
// The C API
//===----------------------------------------------------------------------===//

TEST(RuntimeBackwardCApi, GradientFieldsSinceVersion4) {
  const Manifest &m = causal();
  std::string ptx = embedManifestInPtx(ptxFor(m), m);
  attnrt_module *mod = nullptr;
  ASSERT_EQ(attnrt_module_load_data(ptx.data(), ptx.size(), nullptr, ATTNRT_LOAD_LAZY, "bw", &mod), ATTNRT_OK)
      << attnrt_last_error();
  attnrt_kernel *k = nullptr;
  ASSERT_EQ(attnrt_module_variant(mod, "causal.backward", &k), ATTNRT_OK) << attnrt_last_error();

  LaunchArgs r = backwardArgs(2, 8, 2, 300, 1000);
  attnrt_tensor q = cTensor(r.q), kk = cTensor(r.k), v = cTensor(r.v), o = cTensor(r.o), lse = cTensor(r.lse);
  attnrt_tensor dout = cTensor(*r.dout), dq = cTensor(*r.dq), dk = cTensor(*r.dk), dv = cTensor(*r.dv);
  attnrt_launch_args a{};
  a.struct_size = sizeof a;
  a.q = &q;
  a.k = &kk;
  a.v = &v;
  a.o = &o;
  a.lse = &lse;
  a.dout = &dout;
  a.dq = &dq;
  a.dk = &dk;
  a.dv = &dv;
  uint64_t bytes = 0;
  EXPECT_EQ(attnrt_kernel_workspace_bytes(k, &a, &bytes), ATTNRT_OK) << attnrt_last_error();
  EXPECT_EQ(bytes, 2u * 8 * 300 * 4);
  attnrt_launch_plan plan{};
  EXPECT_EQ(attnrt_kernel_check(k, &a, &plan), ATTNRT_OK) << attnrt_last_error();
  EXPECT_EQ(plan.kernel_index, 1); // the last stage: backward_dkdv
  EXPECT_EQ(plan.grid[0], 16u);

  // A caller built against API version 3 passes a struct ending before dout:
  // the fields past it are not read, so the gradients count as not given.
  a.struct_size = uint32_t(offsetof(attnrt_launch_args, dout));
  EXPECT_EQ(attnrt_kernel_check(k, &a, nullptr), ATTNRT_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(attnrt_last_error_arg(), "dout");
  a.struct_size = sizeof a;
  a.dv = nullptr;
  EXPECT_EQ(attnrt_kernel_check(k, &a, nullptr), ATTNRT_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(attnrt_last_error_arg(), "dv");
  attnrt_kernel_free(k);
  attnrt_module_free(mod);
}

//===- RuntimeTensorMapTest.cpp - TMA descriptors and staged variants -----===//
//
// libattnrt tests that need no GPU, for kernel arguments of kind tensormap
// (TMA descriptors) and variants of several kernels (stages):
// tensorMapParams() on contiguous and strided tensors and each of its rules
// with its exact message; tensorMapBoxProblem(); the descriptor cache (hits,
// misses, eviction order, capacity, failing encodes, threads) with a fake
// encode function; the manifest reader and writer (round trips, single-stage
// manifests written as before, every new error), the PTX cross-check of
// `.param .align 64 .b8 NAME[128]`; checkArguments() filling plan.stages
// with per-stage grids and plan.tensorMaps, describe(), and the module and
// C API paths. Launches on a GPU: runtime/tools/smoke_*.c* (see
// docs/runtime.md, "Testing").
//
//===----------------------------------------------------------------------===//
#include "attnc/Runtime.h"
#include "attnc/attnrt.h"
#include "runtime/CudaDriver.h"
#include "runtime/TensorMap.h"

#include "RuntimeTestSupport.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

using namespace attnc;
using namespace attnc::testing;

namespace {

constexpr uint64_t kBase = 0x7f0000000000ull;

ArgSpec tmap(const std::string &name, const std::string &tensor, std::vector<int64_t> box,
             Swizzle swizzle) {
  ArgSpec a;
  a.name = name;
  a.kind = ArgKind::TensorMap;
  a.tensor = tensor;
  a.box = std::move(box);
  a.swizzle = swizzle;
  return a;
}

/// Expects tensorMapParams(a, t) to fail with `message` (after "q: tensormap
/// 'tmap:q': "), naming the tensor.
void expectTmapError(const ArgSpec &a, const TensorRef &t, const std::string &message) {
  expectExactError([&] { tensorMapParams(a, t); }, ErrorCode::InvalidArgument, a.tensor,
                   a.tensor + ": tensormap '" + a.name + "': " + message);
}

} // namespace

//===----------------------------------------------------------------------===//
// tensorMapParams: the encode parameters and the TMA rules
//===----------------------------------------------------------------------===//

TEST(RuntimeTensorMap, ParamsOfAContiguousBf16Tensor) {
  // q [batch 2, heads 3, rows 100, head_dim 128], bf16, C order.
  const TensorRef q = TensorRef::contiguous(kBase, DType::BF16, {2, 3, 100, 128});
  TensorMapParams p = tensorMapParams(tmap("tmap:q", "q", {32, 64}, Swizzle::B128), q);
  EXPECT_EQ(p.dataType, 9); // CU_TENSOR_MAP_DATA_TYPE_BFLOAT16
  EXPECT_EQ(p.rank, 4u);
  EXPECT_EQ(p.globalAddress, kBase);
  // Innermost first: head_dim, rows, heads, batch.
  EXPECT_EQ(p.globalDim, (std::array<uint64_t, 5>{128, 100, 3, 2, 0}));
  // Bytes, of rows, heads, batch.
  EXPECT_EQ(p.globalStrides, (std::array<uint64_t, 4>{256, 100 * 256, 3 * 100 * 256, 0}));
  // The box [32 rows, 64 columns] reversed, 1 for heads and batch.
  EXPECT_EQ(p.boxDim, (std::array<uint32_t, 5>{64, 32, 1, 1, 0}));
  EXPECT_EQ(p.elementStrides, (std::array<uint32_t, 5>{1, 1, 1, 1, 0}));
  EXPECT_EQ(p.interleave, 0); // CU_TENSOR_MAP_INTERLEAVE_NONE
  EXPECT_EQ(p.swizzle, 3);    // CU_TENSOR_MAP_SWIZZLE_128B
  EXPECT_EQ(p.l2Promotion, 2); // CU_TENSOR_MAP_L2_PROMOTION_L2_128B
  EXPECT_EQ(p.oobFill, 0);    // CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE (zeros)
  EXPECT_EQ(rt::tensorMapSummary(p),
            "0x7f0000000000, bf16, dims [128, 100, 3, 2], strides [256, 25600, 76800] bytes, "
            "box [64, 32, 1, 1], swizzle 128b");

  // A full box of every axis, and the other swizzles (at their span).
  p = tensorMapParams(tmap("tmap:q", "q", {1, 2, 128, 128}, Swizzle::None), q);
  EXPECT_EQ(p.boxDim, (std::array<uint32_t, 5>{128, 128, 2, 1, 0}));
  EXPECT_EQ(p.swizzle, 0);
  EXPECT_EQ(tensorMapParams(tmap("tmap:q", "q", {64, 16}, Swizzle::B32), q).swizzle, 1);
  EXPECT_EQ(tensorMapParams(tmap("tmap:q", "q", {64, 32}, Swizzle::B64), q).swizzle, 2);
  EXPECT_EQ(rt::cuSwizzleName(1), std::string("32b"));
  EXPECT_EQ(rt::cuSwizzleName(2), std::string("64b"));
  EXPECT_EQ(rt::cuSwizzleName(3), std::string("128b"));
  EXPECT_EQ(rt::cuSwizzleName(0), std::string("none"));
  EXPECT_EQ(rt::cuSwizzleName(7), std::string("?"));

  // Other element types.
  EXPECT_EQ(tensorMapParams(tmap("tmap:q", "q", {64, 64}, Swizzle::B128),
                            TensorRef::contiguous(kBase, DType::F16, {2, 3, 100, 128}))
                .dataType,
            6); // FLOAT16
  TensorMapParams f32 = tensorMapParams(tmap("tmap:q", "q", {64, 32}, Swizzle::B128),
                                        TensorRef::contiguous(kBase, DType::F32, {2, 3, 100, 128}));
  EXPECT_EQ(f32.dataType, 7); // FLOAT32
  EXPECT_EQ(f32.globalStrides[0], 512u);

  // Equal inputs, equal parameters (the cache key); any change, another key.
  const ArgSpec a = tmap("tmap:q", "q", {32, 64}, Swizzle::B128);
  EXPECT_EQ(tensorMapParams(a, q), tensorMapParams(a, q));
  TensorRef moved = q;
  moved.data += 16;
  EXPECT_NE(tensorMapParams(a, moved), tensorMapParams(a, q));
  EXPECT_NE(tensorMapParams(tmap("tmap:q", "q", {32, 64}, Swizzle::None), q), tensorMapParams(a, q));
  EXPECT_NE(tensorMapParams(tmap("tmap:q", "q", {64, 64}, Swizzle::B128), q), tensorMapParams(a, q));
}

TEST(RuntimeTensorMap, ParamsOfAStridedTensor) {
  // q viewed as [B, H, L, D] over [B, L, H, D] memory: heads are not
  // contiguous, and the heads stride is below the rows stride.
  TensorRef q = TensorRef::contiguous(kBase, DType::BF16, {2, 3, 100, 128});
  q.strides = {100 * 3 * 128, 128, 3 * 128, 1};
  TensorMapParams p = tensorMapParams(tmap("tmap:q", "q", {64, 64}, Swizzle::B128), q);
  EXPECT_EQ(p.globalDim, (std::array<uint64_t, 5>{128, 100, 3, 2, 0}));
  EXPECT_EQ(p.globalStrides, (std::array<uint64_t, 4>{3 * 256, 256, 100 * 3 * 256, 0}));
  EXPECT_EQ(p.boxDim, (std::array<uint32_t, 5>{64, 64, 1, 1, 0}));

  // Every other head of a [2, 6, 100, 64] fp16 tensor, from head 1.
  TensorRef k = TensorRef::contiguous(kBase + 100 * 64 * 2, DType::F16, {2, 3, 100, 64});
  k.strides = {6 * 100 * 64, 2 * 100 * 64, 64, 1};
  p = tensorMapParams(tmap("tmap:k", "k", {128, 64}, Swizzle::B128), k);
  EXPECT_EQ(p.globalAddress, kBase + 12800);
  EXPECT_EQ(p.globalDim, (std::array<uint64_t, 5>{64, 100, 3, 2, 0}));
  EXPECT_EQ(p.globalStrides, (std::array<uint64_t, 4>{128, 2 * 12800, 6 * 12800, 0}));
  EXPECT_EQ(p.boxDim, (std::array<uint32_t, 5>{64, 128, 1, 1, 0}));

  // A zero (broadcast) heads stride is accepted: the driver takes it.
  q.strides = {100 * 128, 0, 128, 1};
  EXPECT_EQ(tensorMapParams(tmap("tmap:q", "q", {64, 64}, Swizzle::B128), q).globalStrides[1], 0u);
}

TEST(RuntimeTensorMap, EachRuleGivesItsMessage) {
  const ArgSpec a = tmap("tmap:q", "q", {64, 64}, Swizzle::B128);
  const TensorRef good = TensorRef::contiguous(kBase, DType::BF16, {2, 3, 100, 128});
  TensorRef t;

  t = good;
  t.data = kBase + 8;
  expectTmapError(a, t, "expected a non-null, 16-byte aligned base address, got 0x7f0000000008");
  t.data = 0;
  expectTmapError(a, t, "expected a non-null, 16-byte aligned base address, got 0x0");

  t = good;
  t.strides[3] = 2;
  expectTmapError(a, t, "expected head_dim to be contiguous (stride 1), got strides [38400, 12800, 128, 2]");

  t = TensorRef::contiguous(kBase, DType::BF16, {2, 3, 100, 1004});
  t.sizes[3] = 128; // rows 1004 elements (2008 bytes) apart
  expectTmapError(a, t, "expected the stride of rows to be a multiple of 16 bytes, got 1004 (2008 bytes)");

  t = good;
  t.strides[1] = -12800;
  expectTmapError(a, t, "expected the stride of heads to be >= 0, got -12800");

  t = good;
  t.strides[0] = int64_t(1) << 39; // bf16: 2^40 bytes
  expectTmapError(a, t, "expected the stride of batch to be below 2^40 bytes, got 549755813888 (1099511627776 bytes)");
  t.strides[0] = (int64_t(1) << 39) - 8; // 2^40 - 16 bytes: fine
  EXPECT_EQ(tensorMapParams(a, t).globalStrides[2], (uint64_t(1) << 40) - 16);

  t = TensorRef::contiguous(kBase, DType::I64, {2, 3, 100, 128});
  t.strides[0] = int64_t(1) << 62; // 2^65 bytes
  expectTmapError(tmap("tmap:q", "q", {64, 16}, Swizzle::B128), t,
                  "expected the stride of batch to be below 2^40 bytes, got 4611686018427387904 "
                  "(4611686018427387904 x 8 bytes)");

  t = good;
  t.sizes[0] = (int64_t(1) << 32) + 1;
  expectTmapError(a, t, "expected the size of batch in [1, 2^32], got 4294967297");
  t.sizes[0] = int64_t(1) << 32;
  EXPECT_EQ(tensorMapParams(a, t).globalDim[3], uint64_t(1) << 32);
  t = good;
  t.sizes[2] = 0;
  expectTmapError(a, t, "expected the size of rows in [1, 2^32], got 0");

  t = TensorRef::contiguous(kBase, DType::BF16, {3, 100, 128});
  expectTmapError(a, t, "expected rank 4 [batch, heads, rows, head_dim] with 4 strides, got sizes "
                        "[3, 100, 128] and strides [12800, 128, 1]");

  // The box.
  expectTmapError(tmap("tmap:q", "q", {64, 128}, Swizzle::B128), good,
                  "expected the box's inner extent (128 bf16 elements, 256 bytes) to be at most "
                  "the 128b swizzle span (128 bytes)");
  expectTmapError(tmap("tmap:q", "q", {64, 4}, Swizzle::None), good,
                  "expected the box's inner extent (4 bf16 elements, 8 bytes) to be a multiple of 16 bytes");
  expectTmapError(tmap("tmap:q", "q", {257, 64}, Swizzle::None), good,
                  "expected box sizes in [1, 256], got 257");
  expectTmapError(tmap("tmap:q", "q", {1, 1, 1, 64, 64}, Swizzle::None), good,
                  "expected a box of 1 to 4 sizes (outermost first, e.g. [64, 128]), got 5");

  // The error names the tensor the descriptor is of.
  t = good;
  t.data = kBase + 4;
  expectTmapError(tmap("tmap:kv", "k", {64, 64}, Swizzle::B128), t,
                  "expected a non-null, 16-byte aligned base address, got 0x7f0000000004");

  // Not a tensormap argument: API misuse.
  ArgSpec ptr;
  ptr.name = "q";
  expectExactError([&] { tensorMapParams(ptr, good); }, ErrorCode::Usage, "",
                   "tensorMapParams: expected a tensormap argument, got 'q' of kind ptr");
}

TEST(RuntimeTensorMap, BoxProblem) {
  using rt::tensorMapBoxProblem;
  EXPECT_EQ(tensorMapBoxProblem({64, 64}, Swizzle::B128, DType::BF16), "");
  EXPECT_EQ(tensorMapBoxProblem({256, 16}, Swizzle::B32, DType::BF16), ""); // 32 bytes: the span
  EXPECT_EQ(tensorMapBoxProblem({1, 32}, Swizzle::B64, DType::F16), "");
  EXPECT_EQ(tensorMapBoxProblem({128, 256}, Swizzle::None, DType::BF16), ""); // no span limit
  EXPECT_EQ(tensorMapBoxProblem({16}, Swizzle::None, DType::U8), "");
  EXPECT_EQ(tensorMapBoxProblem({2, 2, 2, 8}, Swizzle::None, DType::BF16), "");
  EXPECT_EQ(tensorMapBoxProblem({64, 64}, Swizzle::B128, DType::F32),
            "expected the box's inner extent (64 f32 elements, 256 bytes) to be at most the 128b "
            "swizzle span (128 bytes)");
  EXPECT_EQ(tensorMapBoxProblem({64, 32}, Swizzle::B32, DType::F16),
            "expected the box's inner extent (32 fp16 elements, 64 bytes) to be at most the 32b "
            "swizzle span (32 bytes)");
  EXPECT_EQ(tensorMapBoxProblem({64, 64}, Swizzle::B64, DType::BF16),
            "expected the box's inner extent (64 bf16 elements, 128 bytes) to be at most the 64b "
            "swizzle span (64 bytes)");
  EXPECT_EQ(tensorMapBoxProblem({8}, Swizzle::None, DType::U8),
            "expected the box's inner extent (8 u8 elements, 8 bytes) to be a multiple of 16 bytes");
  EXPECT_EQ(tensorMapBoxProblem({64, 12}, Swizzle::B128, DType::BF16),
            "expected the box's inner extent (12 bf16 elements, 24 bytes) to be a multiple of 16 bytes");
  EXPECT_EQ(tensorMapBoxProblem({0, 64}, Swizzle::None, DType::BF16), "expected box sizes in [1, 256], got 0");
  EXPECT_EQ(tensorMapBoxProblem({}, Swizzle::None, DType::BF16),
            "expected a box of 1 to 4 sizes (outermost first, e.g. [64, 128]), got 0");
}

//===----------------------------------------------------------------------===//
// The descriptor cache
//===----------------------------------------------------------------------===//

namespace {

/// Encode parameters that differ by address.
TensorMapParams key(uint64_t address) {
  return tensorMapParams(tmap("tmap:q", "q", {64, 64}, Swizzle::B128),
                         TensorRef::contiguous(address, DType::BF16, {2, 3, 100, 128}));
}

/// A fake encode: the descriptor's first word is the address, the second a
/// call number.
struct FakeEncode {
  int calls = 0;
  rt::cu::CUtensorMap operator()(const TensorMapParams &p) {
    rt::cu::CUtensorMap m{};
    m.opaque[0] = p.globalAddress;
    m.opaque[1] = uint64_t(++calls);
    return m;
  }
};

} // namespace

TEST(RuntimeTensorMap, CacheHitMissEvictionAndCapacity) {
  rt::TensorMapCache cache(3);
  EXPECT_EQ(cache.capacity(), 3u);
  FakeEncode enc;
  auto get = [&](uint64_t a) { return cache.get(key(a), std::ref(enc)); };
  const uint64_t A = kBase, B = kBase + 0x1000, C = kBase + 0x2000, D = kBase + 0x3000,
                 E = kBase + 0x4000;
  EXPECT_EQ(get(A).opaque[0], A); // miss
  EXPECT_EQ(enc.calls, 1);
  rt::cu::CUtensorMap hit = get(A); // hit: the same descriptor, no encode
  EXPECT_EQ(enc.calls, 1);
  EXPECT_EQ(hit.opaque[1], 1u);
  get(B);
  get(C);
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(enc.calls, 3);
  // Full: the oldest (A) goes.
  get(D);
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_FALSE(cache.contains(key(A)));
  EXPECT_TRUE(cache.contains(key(B)) && cache.contains(key(C)) && cache.contains(key(D)));
  // A hit does not refresh: B, the oldest inserted, goes next.
  get(B);
  EXPECT_EQ(enc.calls, 4);
  get(E);
  EXPECT_FALSE(cache.contains(key(B)));
  EXPECT_TRUE(cache.contains(key(C)) && cache.contains(key(D)) && cache.contains(key(E)));
  // An evicted key encodes again.
  EXPECT_EQ(get(A).opaque[1], 6u);
  EXPECT_FALSE(cache.contains(key(C)));
  // Keys differing only by box or swizzle are distinct.
  TensorMapParams other = key(A);
  other.swizzle = 2;
  cache.get(other, std::ref(enc));
  EXPECT_EQ(enc.calls, 7);
  // A capacity of 0 means 1.
  rt::TensorMapCache one(0);
  EXPECT_EQ(one.capacity(), 1u);
  one.get(key(A), std::ref(enc));
  one.get(key(B), std::ref(enc));
  EXPECT_EQ(one.size(), 1u);
  EXPECT_TRUE(one.contains(key(B)));
}

TEST(RuntimeTensorMap, CacheEncodeThatThrowsCachesNothing) {
  rt::TensorMapCache cache(2);
  FakeEncode enc;
  cache.get(key(kBase), std::ref(enc));
  cache.get(key(kBase + 0x1000), std::ref(enc));
  auto throwing = [](const TensorMapParams &) -> rt::cu::CUtensorMap {
    throw Error(ErrorCode::Cuda, "encode failed");
  };
  // The cache is full: a failing encode neither inserts nor evicts.
  EXPECT_THROW(cache.get(key(kBase + 0x2000), throwing), Error);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_FALSE(cache.contains(key(kBase + 0x2000)));
  EXPECT_TRUE(cache.contains(key(kBase)));
  // Other exceptions pass through as they are.
  EXPECT_THROW(cache.get(key(kBase + 0x2000),
                         [](const TensorMapParams &) -> rt::cu::CUtensorMap {
                           throw std::runtime_error("x");
                         }),
               std::runtime_error);
  // The next get of that key encodes.
  cache.get(key(kBase + 0x2000), std::ref(enc));
  EXPECT_EQ(enc.calls, 3);
  EXPECT_TRUE(cache.contains(key(kBase + 0x2000)));
  EXPECT_FALSE(cache.contains(key(kBase)));
}

TEST(RuntimeTensorMap, CacheEncodesOnceForConcurrentMisses) {
  rt::TensorMapCache cache;
  std::atomic<int> calls{0};
  auto slow = [&](const TensorMapParams &p) {
    ++calls;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    rt::cu::CUtensorMap m{};
    m.opaque[0] = p.globalAddress;
    return m;
  };
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&, i] {
      for (int j = 0; j < 4; ++j) {
        uint64_t a = kBase + 0x1000 * uint64_t((i + j) % 4);
        if (cache.get(key(a), slow).opaque[0] != a)
          ++wrong;
      }
    });
  for (auto &t : threads)
    t.join();
  EXPECT_EQ(calls.load(), 4);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(cache.size(), 4u);
}

TEST(RuntimeTensorMap, EncodeNeedsTheDriver) {
  rt::cu::resetDriverForTesting("/nonexistent/libcuda.so.1");
  try {
    rt::encodeTensorMap(key(kBase), "'tmap:q'");
    ADD_FAILURE() << "encoded without a driver";
  } catch (const Error &e) {
    EXPECT_EQ(int(e.code()), int(ErrorCode::NoDriver));
    EXPECT_EQ(std::string(e.what()).rfind("no CUDA driver found", 0), 0u) << e.what();
  }
  rt::cu::resetDriverForTesting("");
}

//===----------------------------------------------------------------------===//
// The manifest: tensormap arguments and stages
//===----------------------------------------------------------------------===//

namespace {

/// A valid manifest with a tensormap argument (args[7]) and, for head dims
/// 64 and 128, three stages (the first with its own grid rule).
const char kStaged[] = R"({
  "format": "attnc-module",
  "format_version": 1,
  "attnc_version": "0.1.0",
  "target": "sm_90a",
  "kind": "variants",
  "variants": [
    {
      "name": "dsa",
      "head_dims": [64, 128],
      "dtypes": ["bf16"],
      "kernels": [
        {"head_dim": 64, "dtype": "bf16", "symbol": "ix64", "block_m": 64, "block_n": 64,
         "threads": 128, "shared_bytes": 1024, "stage": "indexer", "grid": "qtiles_kvheads_batch"},
        {"head_dim": 64, "dtype": "bf16", "symbol": "tk64", "block_m": 32, "block_n": 64,
         "threads": 256, "shared_bytes": 0, "stage": "topk"},
        {"head_dim": 64, "dtype": "bf16", "symbol": "at64", "block_m": 128, "block_n": 64,
         "threads": 256, "shared_bytes": 49152, "stage": "attention"},
        {"head_dim": 128, "dtype": "bf16", "symbol": "ix128", "block_m": 64, "block_n": 64,
         "threads": 128, "shared_bytes": 1024, "stage": "indexer", "grid": "qtiles_kvheads_batch"},
        {"head_dim": 128, "dtype": "bf16", "symbol": "tk128", "block_m": 32, "block_n": 64,
         "threads": 256, "shared_bytes": 0, "stage": "topk"},
        {"head_dim": 128, "dtype": "bf16", "symbol": "at128", "block_m": 128, "block_n": 64,
         "threads": 256, "shared_bytes": 98304, "stage": "attention"}
      ],
      "grid": "qtiles_heads_batch",
      "sink": false,
      "args": [
        {"name": "q", "kind": "ptr"},
        {"name": "k", "kind": "ptr"},
        {"name": "v", "kind": "ptr"},
        {"name": "o", "kind": "ptr"},
        {"name": "lse", "kind": "ptr"},
        {"name": "qlen", "kind": "i32"},
        {"name": "scale", "kind": "f32"},
        {"name": "tmap:q", "kind": "tensormap", "tensor": "q", "box": [64, 64], "swizzle": "128b"}
      ]
    }
  ]
})";

/// One `.entry` with parameters for `args` (nvcc's forms; a tensormap as
/// `.param .align ALIGN .b8 NAME[128]`).
std::string ptxEntry(const std::string &symbol, const std::vector<ArgSpec> &args, int align = 64) {
  std::string s = ".visible .entry " + symbol + "(\n";
  for (size_t i = 0; i < args.size(); ++i) {
    std::string name = symbol + "_param_" + std::to_string(i);
    switch (args[i].kind) {
    case ArgKind::Ptr:
    case ArgKind::I64: s += "\t.param .u64 " + name; break;
    case ArgKind::I32: s += "\t.param .u32 " + name; break;
    case ArgKind::F32: s += "\t.param .f32 " + name; break;
    case ArgKind::TensorMap:
      s += "\t.param " + (align ? ".align " + std::to_string(align) + " " : std::string()) +
           ".b8 " + name + "[128]";
      break;
    }
    s += i + 1 < args.size() ? ",\n" : "\n";
  }
  return s + ")\n{\n\tret;\n}\n";
}

std::string tensorMapPtxFor(const Manifest &m) {
  std::string ptx = ".version 8.0\n.target sm_90a\n.address_size 64\n";
  for (const auto &v : m.variants)
    for (const auto &k : v.kernels)
      ptx += ptxEntry(k.symbol, v.args);
  return ptx;
}

} // namespace

TEST(RuntimeManifestStages, TensorMapArgumentAndStagesAreRead) {
  Manifest m = parseManifest(kStaged);
  const VariantSpec &v = m.variants[0];
  const ArgSpec &a = v.args.at(7);
  EXPECT_EQ(a.name, "tmap:q");
  EXPECT_EQ(a.kind, ArgKind::TensorMap);
  EXPECT_EQ(a.tensor, "q");
  EXPECT_EQ(a.box, (std::vector<int64_t>{64, 64}));
  EXPECT_EQ(a.swizzle, Swizzle::B128);
  EXPECT_TRUE(v.args[0].tensor.empty() && v.args[0].box.empty() && v.args[0].swizzle == Swizzle::None);

  std::vector<const KernelSpec *> st = v.findStages(128, DType::BF16);
  ASSERT_EQ(st.size(), 3u);
  EXPECT_EQ(st[0]->symbol, "ix128");
  EXPECT_EQ(st[0]->stage, "indexer");
  EXPECT_EQ(st[0]->grid, GridRule::QTilesKvHeadsBatch);
  EXPECT_EQ(v.gridOf(*st[0]), GridRule::QTilesKvHeadsBatch);
  EXPECT_EQ(st[1]->stage, "topk");
  EXPECT_FALSE(st[1]->grid);
  EXPECT_EQ(v.gridOf(*st[1]), GridRule::QTilesHeadsBatch);
  EXPECT_EQ(st[2]->stage, "attention");
  EXPECT_EQ(v.findKernel(128, DType::BF16), st[2]);
  EXPECT_EQ(v.findKernel(64, DType::BF16)->symbol, "at64");
  EXPECT_TRUE(v.findStages(256, DType::BF16).empty());
  EXPECT_EQ(v.findKernel(64, DType::F16), nullptr);
  // A single-stage variant's kernel is stage "attention" with no grid of its own.
  Manifest fixture = parseManifest(readFile(kTestdata + "/naive_attention_causal.manifest.json"));
  EXPECT_EQ(fixture.variants[0].kernels[0].stage, "attention");
  EXPECT_FALSE(fixture.variants[0].kernels[0].grid);
  EXPECT_EQ(fixture.variants[0].findStages(64, DType::BF16).size(), 1u);
}

TEST(RuntimeManifestStages, WriterRoundTrips) {
  Manifest m = parseManifest(kStaged);
  std::string written = manifestToJson(m);
  EXPECT_EQ(manifestToJson(parseManifest(written)), written);
  // Every kernel of a staged variant carries its stage; a grid only where
  // the kernel has its own; a tensormap argument its tensor, box, swizzle.
  EXPECT_NE(written.find("          \"shared_bytes\": 1024,\n"
                         "          \"stage\": \"indexer\",\n"
                         "          \"grid\": \"qtiles_kvheads_batch\"\n"
                         "        },"),
            std::string::npos)
      << written;
  EXPECT_NE(written.find("          \"shared_bytes\": 0,\n"
                         "          \"stage\": \"topk\"\n"
                         "        },"),
            std::string::npos)
      << written;
  EXPECT_NE(written.find("        {\n"
                         "          \"name\": \"tmap:q\",\n"
                         "          \"kind\": \"tensormap\",\n"
                         "          \"tensor\": \"q\",\n"
                         "          \"box\": [64, 64],\n"
                         "          \"swizzle\": \"128b\"\n"
                         "        }\n"),
            std::string::npos)
      << written;
  Manifest back = parseManifest(written);
  const VariantSpec &v = back.variants[0];
  ASSERT_EQ(v.kernels.size(), 6u);
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(v.kernels[i].stage, m.variants[0].kernels[i].stage);
    EXPECT_EQ(v.kernels[i].grid, m.variants[0].kernels[i].grid);
  }
  EXPECT_EQ(v.args[7].box, m.variants[0].args[7].box);
  EXPECT_EQ(v.args[7].swizzle, Swizzle::B128);
  // Through the PTX block too.
  std::string ptx = embedManifestInPtx(tensorMapPtxFor(m), m);
  EXPECT_EQ(*extractManifestFromPtx(ptx), written);
  checkManifestAgainstPtx(parseManifest(*extractManifestFromPtx(ptx)), ptx);

  // Every swizzle spelling round-trips.
  for (Swizzle s : {Swizzle::None, Swizzle::B32, Swizzle::B64, Swizzle::B128}) {
    Manifest n = m;
    n.variants[0].args[7].box = {64, 16};
    n.variants[0].args[7].swizzle = s;
    EXPECT_EQ(parseManifest(manifestToJson(n)).variants[0].args[7].swizzle, s) << swizzleName(s);
  }
}

TEST(RuntimeManifestStages, SingleStageManifestsAreWrittenAsBefore) {
  // The writer reproduces the committed fixtures byte for byte.
  for (const char *name : {"naive_attention_causal", "naive_attention_model"}) {
    std::string text = readFile(kTestdata + "/" + name + ".manifest.json");
    EXPECT_EQ(manifestToJson(parseManifest(text)), text) << name;
  }
  // An explicit "stage": "attention" on a single-stage variant is the
  // default, and is not written.
  std::string text = readFile(kTestdata + "/naive_attention_causal.manifest.json");
  std::string explicitStage = text;
  size_t p = 0;
  while ((p = explicitStage.find("\"shared_bytes\": ", p)) != std::string::npos) {
    size_t eol = explicitStage.find('\n', p);
    explicitStage.insert(eol, ",\n          \"stage\": \"attention\"");
    p = eol;
  }
  ASSERT_NE(explicitStage, text);
  Manifest m = parseManifest(explicitStage);
  EXPECT_EQ(manifestToJson(m), text);
  // A kernel's own grid rule is written even for a single stage.
  m.variants[0].kernels[0].grid = GridRule::QTilesKvHeadsBatch;
  std::string withGrid = manifestToJson(m);
  EXPECT_NE(withGrid.find("\"shared_bytes\": 32768,\n          \"grid\": \"qtiles_kvheads_batch\"\n"),
            std::string::npos)
      << withGrid;
  EXPECT_EQ(withGrid.find("\"stage\""), std::string::npos);
}

TEST(RuntimeManifestStages, MalformedFieldsGiveTheirMessage) {
  const std::string m = kStaged;
  const std::string tm =
      R"({"name": "tmap:q", "kind": "tensormap", "tensor": "q", "box": [64, 64], "swizzle": "128b"})";
  const std::string ix64 =
      R"({"head_dim": 64, "dtype": "bf16", "symbol": "ix64", "block_m": 64, "block_n": 64,
         "threads": 128, "shared_bytes": 1024, "stage": "indexer", "grid": "qtiles_kvheads_batch"},)";
  struct Case {
    std::string text, message;
  } cases[] = {
      // Tensormap arguments.
      {replaced(m, tm, R"({"name": "tmap:q", "kind": "tensormap", "tensor": "q", "swizzle": "128b"})"),
       "manifest: variants[0].args[7]: missing required field 'box' (kind is 'tensormap')"},
      {replaced(m, tm, R"({"name": "tmap:q", "kind": "tensormap", "box": [64, 64], "swizzle": "128b"})"),
       "manifest: variants[0].args[7]: missing required field 'tensor' (kind is 'tensormap')"},
      {replaced(m, tm, R"({"name": "tmap:q", "kind": "tensormap", "tensor": "q", "box": [64, 64]})"),
       "manifest: variants[0].args[7]: missing required field 'swizzle' (kind is 'tensormap')"},
      {replaced(m, R"({"name": "q", "kind": "ptr"})", R"({"name": "q", "kind": "ptr", "box": [64, 64]})"),
       "manifest: variants[0].args[0].box: only a tensormap argument has 'box', but kind is 'ptr'"},
      {replaced(m, R"({"name": "qlen", "kind": "i32"})", R"({"name": "qlen", "kind": "i32", "swizzle": "none"})"),
       "manifest: variants[0].args[5].swizzle: only a tensormap argument has 'swizzle', but kind is 'i32'"},
      {replaced(m, R"({"name": "q", "kind": "ptr"})", R"({"name": "q", "kind": "ptr", "shape": 1})"),
       "manifest: variants[0].args[0].shape: unknown field (expected one of: name, kind, tensor, box, swizzle)"},
      {replaced(m, R"("tensor": "q")", R"("tensor": "lse")"),
       "manifest: variants[0].args[7].tensor: expected one of q, k, v, o, got 'lse'"},
      {replaced(m, R"("swizzle": "128b")", R"("swizzle": "256b")"),
       "manifest: variants[0].args[7].swizzle: expected one of none, 32b, 64b, 128b, got '256b'"},
      {replaced(m, R"("box": [64, 64])", R"("box": [0, 64])"),
       "manifest: variants[0].args[7].box[0]: expected an integer in [1, 256], got 0"},
      {replaced(m, R"("box": [64, 64])", R"("box": [64, 257])"),
       "manifest: variants[0].args[7].box[1]: expected an integer in [1, 256], got 257"},
      {replaced(m, R"("box": [64, 64])", R"("box": [])"),
       "manifest: variants[0].args[7].box: expected a non-empty array"},
      {replaced(m, R"("box": [64, 64])", R"("box": [1, 1, 1, 64, 64])"),
       "manifest: variants[0].args[7].box: expected a box of 1 to 4 sizes (outermost first, e.g. "
       "[64, 128]), got 5"},
      {replaced(m, R"("box": [64, 64])", R"("box": [64, 128])"),
       "manifest: variants[0].args[7].box: expected the box's inner extent (128 bf16 elements, 256 "
       "bytes) to be at most the 128b swizzle span (128 bytes)"},
      {replaced(m, R"("box": [64, 64], "swizzle": "128b")", R"("box": [64, 4], "swizzle": "none")"),
       "manifest: variants[0].args[7].box: expected the box's inner extent (4 bf16 elements, 8 "
       "bytes) to be a multiple of 16 bytes"},
      {replaced(m, R"("name": "tmap:q")", R"("name": "tmap:1q")"),
       "manifest: variants[0].args[7].name: unknown argument 'tmap:1q': a tensormap argument is "
       "named tmap:NAME with NAME an identifier"},
      {replaced(m, tm, R"({"name": "tmap:q", "kind": "ptr"})"),
       "manifest: variants[0].args[7].kind: 'tmap:q' is a tensormap argument: expected tensormap, got 'ptr'"},
      {replaced(m, R"({"name": "q", "kind": "ptr"})",
                R"({"name": "q", "kind": "tensormap", "tensor": "q", "box": [64, 64], "swizzle": "none"})"),
       "manifest: variants[0].args[0].kind: 'q' is a pointer argument: expected ptr, got 'tensormap'"},
      {replaced(m, R"({"name": "scale", "kind": "f32"},)", R"({"name": "scale", "kind": "f32"}, )" + tm + ","),
       "manifest: variants[0].args[8].name: duplicate argument 'tmap:q'"},
      // Stages.
      {replaced(m, R"("symbol": "tk128", "block_m": 32, "block_n": 64,
         "threads": 256, "shared_bytes": 0, "stage": "topk")",
                R"("symbol": "tk128", "block_m": 32, "block_n": 64,
         "threads": 256, "shared_bytes": 0, "stage": "select")"),
       "manifest: variants[0].kernels: head_dim 128 and dtype bf16 have stages [indexer, select, "
       "attention], but head_dim 64 and dtype bf16 have [indexer, topk, attention] (every pair of "
       "head_dims x dtypes needs the same stages, in launch order)"},
      {replaced(m, ix64, ""),
       "manifest: variants[0].kernels: head_dim 128 and dtype bf16 have stages [indexer, topk, "
       "attention], but head_dim 64 and dtype bf16 have [topk, attention] (every pair of head_dims "
       "x dtypes needs the same stages, in launch order)"},
      // The same stages in another order (ix64 moved after at64).
      {replaced(replaced(m, ix64, ""), R"("stage": "attention"},)", R"("stage": "attention"}, )" + ix64),
       "manifest: variants[0].kernels: head_dim 128 and dtype bf16 have stages [indexer, topk, "
       "attention], but head_dim 64 and dtype bf16 have [topk, attention, indexer] (every pair of "
       "head_dims x dtypes needs the same stages, in launch order)"},
      {replaced(m, R"("symbol": "tk64", "block_m": 32, "block_n": 64,
         "threads": 256, "shared_bytes": 0, "stage": "topk")",
                R"("symbol": "tk64", "block_m": 32, "block_n": 64,
         "threads": 256, "shared_bytes": 0, "stage": "indexer")"),
       "manifest: variants[0].kernels[1]: a second kernel for head_dim 64 and dtype bf16 in stage 'indexer'"},
      {replaced(m, R"("stage": "topk"})", R"("stage": "top k"})"),
       "manifest: variants[0].kernels[1].stage: expected an identifier (e.g. indexer, topk, "
       "attention), got 'top k'"},
      {replaced(m, R"("stage": "topk"})", R"("stage": 2})"),
       "manifest: variants[0].kernels[1].stage: expected a string, got 2"},
      {replaced(m, R"("stage": "topk"})", R"("stage": "topk", "grid": "per_key"})"),
       "manifest: variants[0].kernels[1].grid: expected one of qtiles_heads_batch, "
       "qtiles_kvheads_batch, chunked_row_blocks, rows_kvheads_batch, tiles_heads_batch, persistent, ktiles_kvheads_batch, got 'per_key'"},
      {replaced(m, R"("stage": "topk"})", R"("stage": "topk", "order": 1})"),
       "manifest: variants[0].kernels[1].order: unknown field (expected one of: head_dim, dtype, "
       "symbol, block_m, block_n, threads, shared_bytes, stage, grid, workspace_per_key, "
       "workspace_per_tile, workspace_per_row)"},
      {replaced(m, R"("symbol": "tk128")", R"("symbol": "tk64")"),
       "manifest: variants[0].kernels[4].symbol: symbol 'tk64' is used by another kernel"},
  };
  for (const auto &c : cases)
    EXPECT_EQ(manifestError(c.text), c.message);
}

TEST(RuntimeManifestStages, PtxCrossCheckOfTensorMapParameters) {
  Manifest m = parseManifest(kStaged);
  const std::vector<ArgSpec> &args = m.variants[0].args;
  auto all = [&](int align) {
    std::string ptx;
    for (const auto &k : m.variants[0].kernels)
      ptx += ptxEntry(k.symbol, args, align);
    return ptx;
  };
  checkManifestAgainstPtx(m, all(64));
  checkManifestAgainstPtx(m, all(128)); // nvcc 13: CUtensorMap is alignas(128)
  // nvcc 13's own declaration, verbatim, with the other parameters.
  std::string nv = ".visible .entry ix64(\n\t.param .u64 ix64_param_0,\n\t.param .u64 ix64_param_1,\n"
                   "\t.param .u64 ix64_param_2,\n\t.param .u64 ix64_param_3,\n"
                   "\t.param .u64 ix64_param_4,\n\t.param .u32 ix64_param_5,\n"
                   "\t.param .f32 ix64_param_6,\n\t.param .align 128 .b8 ix64_param_7[128]\n)\n{\n}\n";
  std::string rest;
  for (const auto &k : m.variants[0].kernels)
    if (k.symbol != "ix64")
      rest += ptxEntry(k.symbol, args);
  checkManifestAgainstPtx(m, nv + rest);
  try {
    checkManifestAgainstPtx(m, all(0));
    ADD_FAILURE() << "accepted a tensormap parameter without .align";
  } catch (const Error &e) {
    EXPECT_EQ(std::string(e.what()),
              "manifest: variants[0].args[7]: 'tmap:q' is tensormap (128 bytes), but parameter 7 "
              "of the PTX entry 'ix64' is declared with no .align: expected .align 64 or a "
              "multiple (a CUtensorMap is 64-byte aligned)");
  }
  try {
    checkManifestAgainstPtx(m, all(16));
    ADD_FAILURE() << "accepted .align 16";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("is declared with .align 16: expected .align 64"),
              std::string::npos)
        << e.what();
  }
  // The wrong size: a 64-byte array, or a pointer.
  std::string small = replaced(all(64), "ix64_param_7[128]", "ix64_param_7[64]");
  try {
    checkManifestAgainstPtx(m, small);
    ADD_FAILURE();
  } catch (const Error &e) {
    EXPECT_EQ(std::string(e.what()),
              "manifest: variants[0].args[7]: 'tmap:q' is tensormap (128 bytes), but parameter 7 "
              "of the PTX entry 'ix64' has 64 bytes");
  }
  std::string ptr = replaced(all(64), ".align 64 .b8 tk64_param_7[128]", ".u64 tk64_param_7");
  try {
    checkManifestAgainstPtx(m, ptr);
    ADD_FAILURE();
  } catch (const Error &e) {
    EXPECT_EQ(std::string(e.what()),
              "manifest: variants[0].args[7]: 'tmap:q' is tensormap (128 bytes), but parameter 7 "
              "of the PTX entry 'tk64' has 8 bytes");
  }
  // Every stage's kernel must be in the PTX.
  try {
    checkManifestAgainstPtx(m, replaced(all(64), ".entry tk128(", ".entry tk129("));
    ADD_FAILURE();
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("manifest: variants[0].kernels[4].symbol: the PTX has no .entry 'tk128'"),
              std::string::npos)
        << e.what();
  }
}

//===----------------------------------------------------------------------===//
// Argument checking: stages and tensormaps
//===----------------------------------------------------------------------===//

namespace {

const VariantSpec &fixtureCausal() {
  static Manifest m = parseManifest(readFile(kTestdata + "/naive_attention_model.manifest.json"));
  return m.variants[0];
}

/// The fixture's causal variant with three stages per (head dim, dtype):
/// indexer (block_m 128, its own kvheads grid), topk (block_m 32) and the
/// fixture's kernel as attention. Validated by writing it.
VariantSpec stagedVariant(const std::vector<std::string> &names = {"indexer", "topk", "attention"}) {
  VariantSpec v = fixtureCausal();
  v.name = "staged";
  std::vector<KernelSpec> kernels;
  for (const KernelSpec &k : v.kernels)
    for (const std::string &stage : names) {
      KernelSpec s = k;
      s.stage = stage;
      if (stage == names.back())
        s.symbol = k.symbol;
      else
        s.symbol = k.symbol + "_" + stage;
      if (stage == names.front()) {
        s.blockM = 128;
        s.threads = 128;
        s.sharedBytes = 1024;
        s.grid = GridRule::QTilesKvHeadsBatch;
      } else if (stage != names.back()) {
        s.blockM = 32;
        s.threads = 256;
        s.sharedBytes = 0;
      }
      kernels.push_back(s);
    }
  v.kernels = kernels;
  Manifest m;
  m.target = "sm_90a";
  m.variants.push_back(v);
  manifestToJson(m); // throws if the reader would reject it
  return v;
}

/// The fixture's causal variant with tensormaps over q, k and o.
VariantSpec tmapVariant() {
  VariantSpec v = fixtureCausal();
  v.name = "tma";
  v.args.push_back(tmap("tmap:q", "q", {64, 64}, Swizzle::B128));
  v.args.push_back(tmap("tmap:k", "k", {128, 64}, Swizzle::B128));
  v.args.push_back(tmap("tmap:o", "o", {64, 64}, Swizzle::None));
  Manifest m;
  m.target = "sm_90a";
  m.variants.push_back(v);
  manifestToJson(m);
  return v;
}

/// Valid arguments: B=2, Hq=8, Hkv=4, Lq=100, Lk=1000, D=128, bf16.
LaunchArgs validArgs() {
  LaunchArgs a;
  a.q = TensorRef::contiguous(kBase + 0x000000, DType::BF16, {2, 8, 100, 128});
  a.k = TensorRef::contiguous(kBase + 0x100000, DType::BF16, {2, 4, 1000, 128});
  a.v = TensorRef::contiguous(kBase + 0x200000, DType::BF16, {2, 4, 1000, 128});
  a.o = TensorRef::contiguous(kBase + 0x300000, DType::BF16, {2, 8, 100, 128});
  a.lse = TensorRef::contiguous(kBase + 0x400000, DType::F32, {2, 8, 100});
  return a;
}

std::string geometry(const StagePlan &s) {
  return "grid=[" + std::to_string(s.grid[0]) + ", " + std::to_string(s.grid[1]) + ", " +
         std::to_string(s.grid[2]) + "] block=[" + std::to_string(s.block[0]) + ", " +
         std::to_string(s.block[1]) + ", " + std::to_string(s.block[2]) + "] shared=" +
         std::to_string(s.sharedBytes);
}

} // namespace

TEST(RuntimeArgCheckStages, EachStageHasItsOwnGrid) {
  VariantSpec v = stagedVariant();
  LaunchPlan p = checkArguments(v, validArgs());
  ASSERT_EQ(p.stages.size(), 3u);
  EXPECT_EQ(v.kernels[p.stages[0].kernelIndex].symbol, "attnc_fixture_causal_bf16_d128_indexer");
  EXPECT_EQ(v.kernels[p.stages[1].kernelIndex].symbol, "attnc_fixture_causal_bf16_d128_topk");
  EXPECT_EQ(v.kernels[p.stages[2].kernelIndex].symbol, "attnc_fixture_causal_bf16_d128");
  // indexer: qtiles_kvheads_batch, ceil(100 * 2 / 128) = 2 tiles, 4 KV heads.
  EXPECT_EQ(geometry(p.stages[0]), "grid=[2, 4, 2] block=[128, 1, 1] shared=1024");
  // topk: the variant's qtiles_heads_batch, ceil(100 / 32) = 4 tiles.
  EXPECT_EQ(geometry(p.stages[1]), "grid=[4, 8, 2] block=[256, 1, 1] shared=0");
  EXPECT_EQ(geometry(p.stages[2]), "grid=[2, 8, 2] block=[64, 1, 1] shared=65536");
  // The plan's own geometry is the primary (attention) stage's.
  EXPECT_EQ(p.kernelIndex, p.stages[2].kernelIndex);
  EXPECT_EQ(p.grid[0], 2u);
  EXPECT_EQ(p.grid[1], 8u);
  EXPECT_EQ(p.block[0], 64u);
  EXPECT_EQ(p.sharedBytes, 65536u);
  EXPECT_EQ(p.values.size(), v.args.size()); // one parameter list for every stage
  EXPECT_EQ(p.describe(v).substr(0, p.describe(v).find("\n  q=")),
            "attnc_fixture_causal_bf16_d128 grid=[2, 8, 2] block=[64, 1, 1] shared=65536\n"
            "  stage indexer: attnc_fixture_causal_bf16_d128_indexer grid=[2, 4, 2] block=[128, 1, 1] shared=1024\n"
            "  stage topk: attnc_fixture_causal_bf16_d128_topk grid=[4, 8, 2] block=[256, 1, 1] shared=0\n"
            "  stage attention: attnc_fixture_causal_bf16_d128 grid=[2, 8, 2] block=[64, 1, 1] shared=65536");

  // fp16, head dim 64: that pair's three kernels.
  LaunchArgs a = validArgs();
  a.q = TensorRef::contiguous(kBase, DType::F16, {2, 8, 100, 64});
  a.k = TensorRef::contiguous(kBase + 0x100000, DType::F16, {2, 4, 1000, 64});
  a.v = TensorRef::contiguous(kBase + 0x200000, DType::F16, {2, 4, 1000, 64});
  a.o = TensorRef::contiguous(kBase + 0x300000, DType::F16, {2, 8, 100, 64});
  p = checkArguments(v, a);
  ASSERT_EQ(p.stages.size(), 3u);
  EXPECT_EQ(v.kernels[p.stages[0].kernelIndex].symbol, "attnc_fixture_causal_fp16_d64_indexer");
  EXPECT_EQ(v.kernels[p.kernelIndex].symbol, "attnc_fixture_causal_fp16_d64");

  // Without an "attention" stage the primary kernel is the last.
  VariantSpec bwd = stagedVariant({"preprocess", "dkdv", "dq"});
  p = checkArguments(bwd, validArgs());
  ASSERT_EQ(p.stages.size(), 3u);
  EXPECT_EQ(bwd.kernels[p.kernelIndex].stage, "dq");
  EXPECT_EQ(p.kernelIndex, p.stages[2].kernelIndex);
  EXPECT_EQ(bwd.kernels[p.stages[0].kernelIndex].stage, "preprocess");

  // A single-stage variant: one stage, the plan's geometry, no stage lines.
  p = checkArguments(fixtureCausal(), validArgs());
  ASSERT_EQ(p.stages.size(), 1u);
  EXPECT_EQ(p.stages[0].kernelIndex, p.kernelIndex);
  EXPECT_EQ(geometry(p.stages[0]), "grid=[2, 8, 2] block=[64, 1, 1] shared=65536");
  EXPECT_EQ(p.describe(fixtureCausal()).find("stage"), std::string::npos);

  // A grid limit names the stage that exceeds it.
  a = validArgs();
  a.q = TensorRef::contiguous(kBase, DType::BF16, {1, 70000, 1, 128});
  a.k = TensorRef::contiguous(kBase, DType::BF16, {1, 70000, 1, 128});
  a.v = a.k;
  a.o = TensorRef::contiguous(kBase + 0x100000000ull, DType::BF16, {1, 70000, 1, 128});
  a.lse = TensorRef::contiguous(kBase + 0x200000000ull, DType::F32, {1, 70000, 1});
  expectExactError([&] { checkArguments(v, a); }, ErrorCode::InvalidArgument, "k",
                   "k: heads_kv = 70000 exceeds the launch grid's y limit (65535) (stage 'indexer', "
                   "kernel 'attnc_fixture_causal_bf16_d128_indexer')");
}

TEST(RuntimeArgCheckStages, TensorMapArgumentsArePacked) {
  VariantSpec v = tmapVariant();
  LaunchArgs a = validArgs();
  LaunchPlan p = checkArguments(v, a);
  ASSERT_EQ(p.tensorMaps.size(), 3u);
  const size_t n = v.args.size();
  ASSERT_EQ(p.values.size(), n);
  // A tensormap's slot indexes plan.tensorMaps.
  EXPECT_EQ(p.kinds[n - 3], ArgKind::TensorMap);
  EXPECT_EQ(p.names[n - 3], "tmap:q");
  EXPECT_EQ(p.values[n - 3], 0u);
  EXPECT_EQ(p.values[n - 2], 1u);
  EXPECT_EQ(p.values[n - 1], 2u);
  EXPECT_EQ(p.tensorMaps[0], tensorMapParams(v.args[n - 3], a.q));
  EXPECT_EQ(p.tensorMaps[1], tensorMapParams(v.args[n - 2], a.k));
  EXPECT_EQ(p.tensorMaps[2], tensorMapParams(v.args[n - 1], a.o));
  EXPECT_EQ(p.tensorMaps[1].globalAddress, kBase + 0x100000);
  EXPECT_EQ(p.tensorMaps[1].globalDim, (std::array<uint64_t, 5>{128, 1000, 4, 2, 0}));
  EXPECT_EQ(p.tensorMaps[1].boxDim, (std::array<uint32_t, 5>{64, 128, 1, 1, 0}));
  std::vector<void *> params = p.params();
  ASSERT_EQ(params.size(), n);
  EXPECT_EQ(params[n - 2], &p.values[n - 2]); // Kernel::launch points it at the descriptor
  std::string d = p.describe(v);
  EXPECT_NE(d.find("\n  tmap:q=tensormap(0x7f0000000000, bf16, dims [128, 100, 8, 2], strides [256, "
                   "25600, 204800] bytes, box [64, 64, 1, 1], swizzle 128b)\n"),
            std::string::npos)
      << d;
  EXPECT_NE(d.find("\n  tmap:k=tensormap(0x7f0000100000, bf16, dims [128, 1000, 4, 2], strides [256, "
                   "256000, 1024000] bytes, box [64, 128, 1, 1], swizzle 128b)\n"),
            std::string::npos)
      << d;
  EXPECT_EQ(d.substr(d.rfind('\n') + 1),
            "  tmap:o=tensormap(0x7f0000300000, bf16, dims [128, 100, 8, 2], strides [256, 25600, "
            "204800] bytes, box [64, 64, 1, 1], swizzle none)");

  // A strided q: its descriptor follows the strides.
  a.q.strides = {100 * 8 * 128, 128, 8 * 128, 1};
  p = checkArguments(v, a);
  EXPECT_EQ(p.tensorMaps[0].globalStrides, (std::array<uint64_t, 4>{2048, 256, 204800, 0}));

  // fp16.
  a = validArgs();
  for (TensorRef *t : {&a.q, &a.k, &a.v, &a.o})
    t->dtype = DType::F16;
  EXPECT_EQ(checkArguments(v, a).tensorMaps[2].dataType, 6);

  // The TMA rules are checked with the other arguments: a batch stride of
  // 2^40 bytes passes q's own checks but not the descriptor's.
  a = validArgs();
  a.q.strides[0] = int64_t(1) << 39;
  expectExactError([&] { checkArguments(v, a); }, ErrorCode::InvalidArgument, "q",
                   "q: tensormap 'tmap:q': expected the stride of batch to be below 2^40 bytes, got "
                   "549755813888 (1099511627776 bytes)");
  // A tensormap over a tensor other than q, k, v, o (only a hand-built spec
  // can have one).
  VariantSpec odd = v;
  odd.args.back().tensor = "lse";
  expectExactError([&] { checkArguments(odd, validArgs()); }, ErrorCode::InvalidArgument, "tmap:o",
                   "tmap:o: expected the tensor of tensormap 'tmap:o' to be q, k, v or o, got 'lse'");
}

//===----------------------------------------------------------------------===//
// Modules and the C API without a GPU
//===----------------------------------------------------------------------===//

namespace {

} // namespace

TEST(RuntimeModuleStages, LazyModuleChecksAndTheCApiReportsThePrimaryKernel) {
  // A module with a staged variant taking a tensormap, loaded lazily.
  VariantSpec v = stagedVariant();
  v.args.push_back(tmap("tmap:q", "q", {64, 64}, Swizzle::B128));
  Manifest m;
  m.attncVersion = "0.1.0";
  m.target = "sm_90a";
  m.variants.push_back(v);
  std::string ptx = embedManifestInPtx(tensorMapPtxFor(m), m);
  LoadOptions lazy;
  lazy.lazy = true;
  Module mod = Module::loadData(ptx, "", lazy, "staged.ptx");
  Kernel k = mod.variant("staged");
  LaunchPlan p = k.check(validArgs());
  EXPECT_EQ(p.stages.size(), 3u);
  EXPECT_EQ(p.tensorMaps.size(), 1u);
  // A launch checks first (an argument error stays one), then needs the driver.
  rt::cu::resetDriverForTesting("/nonexistent/libcuda.so.1");
  LaunchArgs bad = validArgs();
  bad.q.data += 8;
  try {
    k.launch(bad);
    ADD_FAILURE();
  } catch (const Error &e) {
    EXPECT_EQ(int(e.code()), int(ErrorCode::InvalidArgument)) << e.what();
  }
  try {
    k.launch(validArgs());
    ADD_FAILURE();
  } catch (const Error &e) {
    EXPECT_EQ(int(e.code()), int(ErrorCode::NoDriver)) << e.what();
  }
  rt::cu::resetDriverForTesting("");
  // A PTX whose tensormap parameter lacks .align is rejected at load.
  std::string noAlign = ptx;
  for (size_t pos; (pos = noAlign.find(".align 64 ")) != std::string::npos;)
    noAlign.erase(pos, 10);
  try {
    Module::loadData(noAlign, "", lazy, "noalign.ptx");
    ADD_FAILURE();
  } catch (const Error &e) {
    EXPECT_EQ(std::string(e.what()).rfind("noalign.ptx: manifest: variants[0].args[", 0), 0u) << e.what();
    EXPECT_NE(std::string(e.what()).find("is declared with no .align"), std::string::npos) << e.what();
  }

  // The C API: the plan is the primary kernel's; describe lists the stages.
  attnrt_module *cm = nullptr;
  ASSERT_EQ(attnrt_module_load_data(ptx.data(), ptx.size(), nullptr, ATTNRT_LOAD_LAZY, "staged.ptx", &cm),
            ATTNRT_OK)
      << attnrt_last_error();
  attnrt_kernel *ck = nullptr;
  ASSERT_EQ(attnrt_module_variant(cm, "staged", &ck), ATTNRT_OK) << attnrt_last_error();
  LaunchArgs a = validArgs();
  attnrt_tensor q = cTensor(a.q), kk = cTensor(a.k), vv = cTensor(a.v), o = cTensor(a.o),
                lse = cTensor(a.lse);
  attnrt_launch_args ca{};
  ca.struct_size = sizeof ca;
  ca.q = &q;
  ca.k = &kk;
  ca.v = &vv;
  ca.o = &o;
  ca.lse = &lse;
  attnrt_launch_plan plan{};
  ASSERT_EQ(attnrt_kernel_check(ck, &ca, &plan), ATTNRT_OK) << attnrt_last_error();
  EXPECT_EQ(size_t(plan.kernel_index), p.kernelIndex);
  EXPECT_EQ(v.kernels[size_t(plan.kernel_index)].stage, "attention");
  EXPECT_EQ(plan.grid[0], 2u);
  EXPECT_EQ(plan.block[0], 64u);
  char buf[4096];
  ASSERT_EQ(attnrt_kernel_describe_launch(ck, &ca, buf, sizeof buf), ATTNRT_OK);
  EXPECT_EQ(std::string(buf), p.describe(v));
  EXPECT_NE(std::string(buf).find("\n  stage indexer: "), std::string::npos) << buf;
  EXPECT_NE(std::string(buf).find("\n  tmap:q=tensormap("), std::string::npos) << buf;
  q.data += 8;
  EXPECT_EQ(attnrt_kernel_check(ck, &ca, &plan), ATTNRT_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(std::string(attnrt_last_error_arg()), "q");
  attnrt_kernel_free(ck);
  attnrt_module_free(cm);
}

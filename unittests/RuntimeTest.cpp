//===- RuntimeTest.cpp - libattnrt tests that need no GPU ------------------===//
//
// The runtime's CI tests (no GPU, no CUDA driver): SHA-256 against the NIST
// vectors, the JSON reader, the manifest (valid fixtures, and every malformed
// field giving its message), the PTX manifest block and the PTX .entry
// cross-check, argument checking (every rule gives its message and names its
// argument, nothing is packed), the no-driver error through the C++ and the
// C API, loading modules lazily, the JIT cache (keys, atomicity, corrupted
// entries, many threads and processes), compile() with and without a
// compiler. GPU launches are tested by runtime/tools/smoke_*.c* and
// scripts/gpu_runtime_check.sh.
//
//===----------------------------------------------------------------------===//
#include "attnc/Runtime.h"
#include "attnc/attnrt.h"
#include "runtime/CudaDriver.h"
#include "runtime/Jit.h"
#include "runtime/JitCache.h"
#include "runtime/Json.h"
#include "runtime/Sha256.h"

#include "RuntimeTestSupport.h"

#include <gtest/gtest.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

using namespace attnc;
using namespace attnc::testing;
namespace json = attnc::rt::json;

namespace {


void writeFile(const std::string &path, const std::string &bytes) {
  std::ofstream f(path, std::ios::binary);
  f << bytes;
}

/// A fresh temporary directory, removed (with its files) at scope exit.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/attnrt-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
  std::vector<std::string> files() const {
    std::vector<std::string> out;
    if (DIR *d = opendir(path.c_str())) {
      while (dirent *e = readdir(d))
        if (std::strcmp(e->d_name, ".") && std::strcmp(e->d_name, ".."))
          out.push_back(e->d_name);
      closedir(d);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
};

/// Sets an environment variable for the scope, restoring the old value.
struct ScopedEnv {
  std::string name;
  std::optional<std::string> old;
  ScopedEnv(const std::string &n, const char *value) : name(n) {
    if (const char *o = std::getenv(n.c_str()))
      old = o;
    if (value)
      setenv(n.c_str(), value, 1);
    else
      unsetenv(n.c_str());
  }
  ~ScopedEnv() {
    if (old)
      setenv(name.c_str(), old->c_str(), 1);
    else
      unsetenv(name.c_str());
  }
};

/// Forces "no driver" for the scope by pointing the loader at a missing file.
struct NoDriver {
  NoDriver() { rt::cu::resetDriverForTesting("/nonexistent/libcuda.so.1"); }
  ~NoDriver() { rt::cu::resetDriverForTesting(""); }
};

/// Expects `f` to throw attnc::Error with `code` and a message containing
/// `substr`; returns the message.
template <typename F>
std::string expectError(F &&f, ErrorCode code, const std::string &substr) {
  try {
    f();
  } catch (const Error &e) {
    EXPECT_EQ(int(e.code()), int(code)) << e.what();
    EXPECT_NE(std::string(e.what()).find(substr), std::string::npos)
        << "message: " << e.what() << "\nexpected to contain: " << substr;
    return e.what();
  }
  ADD_FAILURE() << "no error thrown; expected: " << substr;
  return "";
}

} // namespace

//===----------------------------------------------------------------------===//
// SHA-256 and the checksum
//===----------------------------------------------------------------------===//

TEST(RuntimeSha256, NistVectors) {
  EXPECT_EQ(rt::sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(rt::sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(rt::sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(rt::sha256Hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnop"
                          "jklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  EXPECT_EQ(rt::sha256Hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(RuntimeSha256, IncrementalEqualsOneShot) {
  std::string data;
  for (int i = 0; i < 300; ++i)
    data += char(i * 31 + 7);
  for (size_t len : {0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 299}) {
    std::string s = data.substr(0, len);
    for (size_t split : {size_t(0), size_t(1), len / 2, len}) {
      if (split > len)
        continue;
      rt::Sha256 h;
      h.update(s.substr(0, split));
      h.update(s.substr(split));
      EXPECT_EQ(h.hexDigest(), rt::sha256Hex(s)) << "len " << len << " split " << split;
    }
  }
}

TEST(RuntimeSha256, ChecksumDetectsChanges) {
  std::string s(1000, 'x');
  uint64_t base = rt::checksum64(s.data(), s.size());
  EXPECT_EQ(base, rt::checksum64(s.data(), s.size()));
  for (size_t pos : {0, 7, 8, 31, 32, 500, 999}) {
    std::string t = s;
    t[pos] ^= 1;
    EXPECT_NE(base, rt::checksum64(t.data(), t.size())) << pos;
  }
  EXPECT_NE(base, rt::checksum64(s.data(), s.size() - 1));
  EXPECT_NE(rt::checksum64("", 0), rt::checksum64("\0", 1));
}

//===----------------------------------------------------------------------===//
// JSON
//===----------------------------------------------------------------------===//

TEST(RuntimeJson, ParsesValues) {
  json::Value v = json::parse(R"( {"a": [1, -2, 3.5, 1e3, true, false, null],
                                   "s": "x\"\\\/\n\u00e9\ud83d\ude00", "big": 9007199254740993} )");
  ASSERT_EQ(v.kind, json::Value::Kind::Object);
  const json::Value *a = v.find("a");
  ASSERT_TRUE(a && a->array.size() == 7);
  EXPECT_TRUE(a->array[0].isInteger);
  EXPECT_EQ(a->array[1].integer, -2);
  EXPECT_FALSE(a->array[2].isInteger);
  EXPECT_DOUBLE_EQ(a->array[2].number, 3.5);
  EXPECT_FALSE(a->array[3].isInteger);
  EXPECT_EQ(v.find("s")->string, "x\"\\/\n\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_EQ(v.find("big")->integer, 9007199254740993LL); // exact, not rounded via double
  EXPECT_EQ(json::parse(json::write(v)).find("s")->string, v.find("s")->string);
}

TEST(RuntimeJson, SyntaxErrorsHaveLineAndColumn) {
  struct Case {
    const char *text;
    size_t line, col;
    const char *msg;
  } cases[] = {
      {"{\"a\": 1,}", 1, 9, "expected a member name"},
      {"{\n  \"a\" 1\n}", 2, 7, "expected ':'"},
      {"[1 2]", 1, 4, "expected ',' or ']'"},
      {"{\"a\": 1, \"a\": 2}", 1, 10, "duplicate member name \"a\""},
      {"[01]", 1, 3, "leading zero"},
      {"\"abc", 1, 1, "unterminated string"},
      {"[1] x", 1, 5, "end of the JSON text"},
      {"{\"a\": nul}", 1, 7, "expected a value"},
      {"\"\\q\"", 1, 2, "invalid escape"},
      {"", 1, 1, "expected a value"},
  };
  for (const auto &c : cases) {
    try {
      json::parse(c.text);
      ADD_FAILURE() << "accepted: " << c.text;
    } catch (const json::JsonError &e) {
      EXPECT_EQ(e.line, c.line) << c.text << ": " << e.what();
      EXPECT_EQ(e.column, c.col) << c.text << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find(c.msg), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(json::parse(std::string(100, '[') + std::string(100, ']')), json::JsonError);
}

//===----------------------------------------------------------------------===//
// The manifest
//===----------------------------------------------------------------------===//

namespace {

/// A minimal valid manifest; tests mutate its text.
const char kMinimal[] = R"({
  "format": "attnc-module",
  "format_version": 1,
  "attnc_version": "0.1.0",
  "target": "sm_90a",
  "kind": "variants",
  "variants": [
    {
      "name": "dense",
      "head_dims": [64, 128],
      "dtypes": ["bf16"],
      "kernels": [
        {"head_dim": 64, "dtype": "bf16", "symbol": "k64", "block_m": 128, "block_n": 64,
         "threads": 256, "shared_bytes": 49152},
        {"head_dim": 128, "dtype": "bf16", "symbol": "k128", "block_m": 128, "block_n": 64,
         "threads": 256, "shared_bytes": 98304}
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
        {"name": "scale", "kind": "f32"}
      ]
    }
  ]
})";

} // namespace

TEST(RuntimeManifest, MinimalIsValid) {
  Manifest m = parseManifest(kMinimal);
  EXPECT_EQ(m.target, "sm_90a");
  ASSERT_EQ(m.variants.size(), 1u);
  const VariantSpec &v = m.variants[0];
  EXPECT_EQ(v.headDims, (std::vector<int64_t>{64, 128}));
  ASSERT_NE(v.findKernel(128, DType::BF16), nullptr);
  EXPECT_EQ(v.findKernel(128, DType::BF16)->sharedBytes, 98304);
  EXPECT_EQ(v.findKernel(128, DType::F16), nullptr);
  EXPECT_FALSE(v.scale);
  EXPECT_FALSE(v.select);
  EXPECT_EQ(v.args.size(), 7u);
  EXPECT_EQ(m.kind, ModuleKind::Variants);
}

TEST(RuntimeManifest, FixturesAreValidAndRoundTrip) {
  for (const char *name : {"naive_attention_causal", "naive_attention_model"}) {
    std::string ptx = readFile(kTestdata + "/" + name + ".ptx");
    int64_t line = 0;
    std::optional<std::string> embedded = extractManifestFromPtx(ptx, &line);
    ASSERT_TRUE(embedded) << name;
    EXPECT_EQ(line, 2);
    EXPECT_EQ(*embedded, readFile(kTestdata + "/" + name + ".manifest.json"));
    Manifest m = parseManifest(*embedded);
    checkManifestAgainstPtx(m, ptx);
    // Writing and reading back gives the same JSON.
    std::string written = manifestToJson(m);
    EXPECT_EQ(manifestToJson(parseManifest(written)), written);
    // Embedding replaces the block and extracts to the written JSON.
    std::string re = embedManifestInPtx(ptx, m);
    EXPECT_EQ(*extractManifestFromPtx(re), written);
    checkManifestAgainstPtx(parseManifest(*extractManifestFromPtx(re)), re);
  }
  Manifest model = parseManifest(readFile(kTestdata + "/naive_attention_model.manifest.json"));
  ASSERT_TRUE(model.model);
  EXPECT_EQ(model.model->layers, (std::vector<int64_t>{0, 1, 0, 1}));
  const VariantSpec &doc = model.variants[1];
  EXPECT_TRUE(doc.sink);
  ASSERT_EQ(doc.inputs.size(), 1u);
  EXPECT_EQ(doc.inputs[0].axes, (std::vector<Axis>{Axis::Batch, Axis::Token}));
}

TEST(RuntimeManifest, MalformedFieldsGiveTheirMessage) {
  const std::string m = kMinimal;
  struct Case {
    std::string text, message;
  } cases[] = {
      {replaced(m, R"({"name": "qlen", "kind": "i32"})", R"({"name": "qlen", "kind": "x"})"),
       "manifest: variants[0].args[5].kind: expected one of ptr, i32, i64, f32, tensormap, got 'x'"},
      {replaced(m, R"("target": "sm_90a",)", ""), "manifest: missing required field 'target'"},
      {replaced(m, R"("sink": false,)", R"("sink": false, "foo": 1,)"),
       "manifest: variants[0].foo: unknown field (expected one of: name, head_dims, dtypes, "
       "kernels, grid, args, sink, scale, inputs, select, backward_of)"},
      {replaced(m, R"("format_version": 1)", R"("format_version": 2)"),
       "manifest: format_version: this libattnrt reads format version 1, got 2 (written by a "
       "newer attnc: update libattnrt)"},
      {replaced(m, R"("format_version": 1)", R"("format_version": "1")"),
       "manifest: format_version: expected an integer, got '1'"},
      {replaced(m, R"("format": "attnc-module")", R"("format": "other")"),
       "manifest: format: expected 'attnc-module', got 'other'"},
      {replaced(m, R"("target": "sm_90a")", R"("target": "sm90")"),
       "manifest: target: expected sm_XY or sm_XYa (e.g. sm_80, sm_90a), got 'sm90'"},
      {replaced(m, R"("kind": "variants")", R"("kind": "bundle")"),
       "manifest: kind: expected one of variants, model, got 'bundle'"},
      {replaced(m, R"("variants": [)", R"("variants": 3, "x": [)"),
       "manifest: x: unknown field (expected one of: format, format_version, attnc_version, "
       "target, kind, variants, model)"},
      {replaced(m, R"("name": "dense")", R"("name": "2dense")"),
       "manifest: variants[0].name: expected an identifier ([A-Za-z_][A-Za-z0-9_]*), got '2dense'"},
      {replaced(m, R"("head_dims": [64, 128])", R"("head_dims": [128, 64])"),
       "manifest: variants[0].head_dims[1]: head_dims must be strictly ascending, got 64 after 128"},
      {replaced(m, R"("head_dims": [64, 128])", R"("head_dims": [60, 128])"),
       "manifest: variants[0].head_dims[0]: expected a multiple of 8 (rows of 16 bytes), got 60"},
      {replaced(m, R"("head_dims": [64, 128])", R"("head_dims": [])"),
       "manifest: variants[0].head_dims: expected a non-empty array"},
      {replaced(m, R"("dtypes": ["bf16"])", R"("dtypes": ["f32"])"),
       "manifest: variants[0].dtypes[0]: expected one of bf16, fp16, got 'f32'"},
      {replaced(m, R"("dtypes": ["bf16"])", R"("dtypes": ["bf16", "fp16"])"),
       "manifest: variants[0].kernels: no kernel for head_dim 64 and dtype fp16 (every pair of "
       "head_dims x dtypes needs one)"},
      {replaced(m, R"("head_dim": 128, "dtype": "bf16")", R"("head_dim": 64, "dtype": "bf16")"),
       "manifest: variants[0].kernels[1]: a second kernel for head_dim 64 and dtype bf16"},
      {replaced(m, R"("head_dim": 128, "dtype": "bf16")", R"("head_dim": 256, "dtype": "bf16")"),
       "manifest: variants[0].kernels[1].head_dim: 256 is not among the variant's head_dims"},
      {replaced(m, R"("symbol": "k128")", R"("symbol": "k64")"),
       "manifest: variants[0].kernels[1].symbol: symbol 'k64' is used by another kernel"},
      {replaced(m, R"("symbol": "k128")", R"("symbol": "k 128")"),
       "manifest: variants[0].kernels[1].symbol: expected a PTX identifier, got 'k 128'"},
      {replaced(m, R"("threads": 256, "shared_bytes": 98304)", R"("threads": 2048, "shared_bytes": 98304)"),
       "manifest: variants[0].kernels[1].threads: expected an integer in [1, 1024], got 2048"},
      {replaced(m, R"("shared_bytes": 49152)", R"("shared_bytes": -1)"),
       "manifest: variants[0].kernels[0].shared_bytes: expected an integer in [0, 2147483647], got -1"},
      {replaced(m, R"("shared_bytes": 49152)", R"("shared_bytes": 1.5)"),
       "manifest: variants[0].kernels[0].shared_bytes: expected an integer, got 1.5"},
      {replaced(m, R"("block_m": 128, "block_n": 64,)", R"("block_n": 64,)"),
       "manifest: variants[0].kernels[0]: missing required field 'block_m'"},
      {replaced(m, R"("grid": "qtiles_heads_batch")", R"x("grid": "ceil(qlen/128)")x"),
       "manifest: variants[0].grid: expected one of qtiles_heads_batch, qtiles_kvheads_batch, "
       "chunked_row_blocks, rows_kvheads_batch, tiles_heads_batch, persistent, ktiles_kvheads_batch, got 'ceil(qlen/128)'"},
      {replaced(m, R"("sink": false)", R"("sink": 0)"),
       "manifest: variants[0].sink: expected true or false, got 0"},
      {replaced(m, R"("sink": false)", R"("sink": false, "scale": -1.0)"),
       "manifest: variants[0].scale: expected null or a positive number, got -1.0"},
      {replaced(m, R"({"name": "qlen", "kind": "i32"})", R"({"name": "qq", "kind": "i32"})"),
       "manifest: variants[0].args[5].name: unknown argument 'qq': not in the argument vocabulary"},
      {replaced(m, R"({"name": "q", "kind": "ptr"})", R"({"name": "q", "kind": "i64"})"),
       "manifest: variants[0].args[0].kind: 'q' is a pointer argument: expected ptr, got 'i64'"},
      {replaced(m, R"({"name": "qlen", "kind": "i32"})", R"({"name": "qlen", "kind": "f32"})"),
       "manifest: variants[0].args[5].kind: 'qlen' is an integer argument: expected i32 or i64, got 'f32'"},
      {replaced(m, R"({"name": "scale", "kind": "f32"})", R"({"name": "scale", "kind": "i32"})"),
       "manifest: variants[0].args[6].kind: 'scale' is a float argument: expected f32, got 'i32'"},
      {replaced(m, R"({"name": "lse", "kind": "ptr"},)", ""),
       "manifest: variants[0].args: missing the required pointer argument 'lse'"},
      {replaced(m, R"({"name": "qlen", "kind": "i32"})", R"({"name": "q", "kind": "ptr"})"),
       "manifest: variants[0].args[5].name: duplicate argument 'q'"},
      {replaced(m, R"({"name": "qlen", "kind": "i32"})", R"({"name": "q_stride_d", "kind": "i64"})"),
       "manifest: variants[0].args[5].name: unknown argument 'q_stride_d': 'q' has stride arguments "
       "q_stride_b, q_stride_h, q_stride_l"},
      {replaced(m, R"({"name": "qlen", "kind": "i32"})", R"({"name": "indices_stride_b", "kind": "i64"})"),
       "manifest: variants[0].args[5].name: 'indices_stride_b' describes tensor 'indices', which is "
       "not among the arguments"},
      {replaced(m, R"("sink": false)", R"("sink": true)"),
       "manifest: variants[0].args: the variant has a sink, but 'sinks' is not among the arguments"},
      {replaced(m, R"({"name": "qlen", "kind": "i32"})", R"({"name": "sinks", "kind": "ptr"})"),
       "manifest: variants[0].args: 'sinks' is an argument, but the variant has no sink"},
      {replaced(m, R"({"name": "qlen", "kind": "i32"})", R"({"name": "input:doc", "kind": "ptr"})"),
       "manifest: variants[0].args[5].name: unknown argument 'input:doc': variant 'dense' declares "
       "no input 'doc' in its inputs"},
      {replaced(m, R"("sink": false)", R"("sink": false, "inputs": [{"name": "doc", "elem": "i32", "axes": ["batch", "token"]}])"),
       "manifest: variants[0].args: the variant reads input 'doc', but 'input:doc' is not among the "
       "arguments"},
      {replaced(m, R"("sink": false)", R"("sink": false, "inputs": [{"name": "doc", "elem": "f64", "axes": ["batch"]}])"),
       "manifest: variants[0].inputs[0].elem: expected one of i32, i64, f32, bool, got 'f64'"},
      {replaced(m, R"("sink": false)", R"("sink": false, "inputs": [{"name": "doc", "elem": "i32", "axes": ["token", "token"]}])"),
       "manifest: variants[0].inputs[0].axes[1]: axis 'token' appears twice"},
      {replaced(replaced(m, R"("sink": false)", R"("sink": false, "inputs": [{"name": "doc", "elem": "i32", "axes": ["batch", "token"]}])"),
                R"({"name": "qlen", "kind": "i32"})", R"({"name": "input:doc:stride:head", "kind": "i64"})"),
       "manifest: variants[0].args[5].name: unknown argument 'input:doc:stride:head': input 'doc' "
       "has axes [batch, token], not 'head'"},
      {replaced(m, R"("sink": false)", R"("sink": false, "select": {"topk": 0})"),
       "manifest: variants[0].select.topk: expected an integer in [1, 2147483647], got 0"},
      {replaced(m, R"("sink": false)", R"("sink": false, "select": {"topk": 8, "indexer": {"heads": 64, "dim": 128, "dtype": "fp8_e4m3"}})"),
       "manifest: variants[0].args: the variant selects by indexer, but 'indexer.qI' is not among "
       "the arguments"},
      {replaced(m, R"({"name": "qlen", "kind": "i32"})", R"({"name": "topk", "kind": "i32"})"),
       "manifest: variants[0].args: 'topk' is an argument, but the variant has no select"},
      {replaced(m, R"("kind": "variants")", R"("kind": "model")"),
       "manifest: missing required field 'model' (kind is 'model')"},
      {replaced(m, R"("kind": "variants")", R"("kind": "model", "model": {"name": "m", "layers": [0, 1]})"),
       "manifest: model.layers[1]: expected an integer in [0, 0], got 1"},
      {replaced(m, R"("kind": "variants")", R"("kind": "variants", "model": {"name": "m", "layers": [0]})"),
       "manifest: model: a 'model' field needs kind 'model', but kind is 'variants'"},
      {replaced(m, R"("variants": [)", R"("variants": [{"name": "dense"},)"),
       "manifest: variants[0]: missing required field 'head_dims'"},
      {"[1, 2]", "manifest: expected an object, got an array"},
      {replaced(m, R"("attnc_version": "0.1.0",)", R"("attnc_version": "0.1.0")"),
       "manifest: JSON syntax error at line 5, column 3: expected ',' or '}' after an object member, "
       "got '\"'"},
  };
  for (const auto &c : cases) {
    // The expected text is the message or its beginning.
    std::string got = manifestError(c.text);
    EXPECT_EQ(got.substr(0, c.message.size()), c.message);
  }
  // Syntax errors can name the line of the file the manifest is embedded in.
  EXPECT_EQ(manifestError("{\n\n  x"), "manifest: JSON syntax error at line 3, column 3: expected a member name (a string) in an object, got 'x'");
  try {
    parseManifest("{\n\n  x", 10);
    ADD_FAILURE();
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("(file line 12)"), std::string::npos) << e.what();
  }
  // A duplicate variant (through the writer, which validates too).
  Manifest ok = parseManifest(m);
  ok.variants.push_back(ok.variants[0]);
  ok.variants[1].kernels[0].symbol = "other64";
  ok.variants[1].kernels[1].symbol = "other128";
  expectError([&] { manifestToJson(ok); }, ErrorCode::Manifest,
              "manifest: variants[1].name: duplicate variant 'dense'");
}

TEST(RuntimeManifest, PtxBlock) {
  EXPECT_FALSE(extractManifestFromPtx(".version 8.0\n.target sm_90a\n"));
  expectError([] { extractManifestFromPtx("// attnc-manifest-begin\n// {}\n.version 8.0\n"); },
              ErrorCode::Manifest, "manifest: line 3: inside the manifest block every line must start with '// ', got '.version 8.0'");
  expectError([] { extractManifestFromPtx("// attnc-manifest-begin\n// {}\n"); }, ErrorCode::Manifest,
              "manifest: the block opened on line 1 has no '// attnc-manifest-end' line");
  expectError([] {
    extractManifestFromPtx("// attnc-manifest-begin\n// {}\n// attnc-manifest-end\n"
                           "// attnc-manifest-begin\n// {}\n// attnc-manifest-end\n");
  }, ErrorCode::Manifest, "manifest: line 4: a second '// attnc-manifest-begin' block");
  expectError([] { extractManifestFromPtx("// attnc-manifest-end\n"); }, ErrorCode::Manifest,
              "manifest: line 1: '// attnc-manifest-end' without a begin line");
  // Empty comment lines and CRLF line ends are fine.
  auto j = extractManifestFromPtx("// attnc-manifest-begin\r\n// {\r\n//\r\n// }\r\n// attnc-manifest-end\r\n");
  ASSERT_TRUE(j);
  EXPECT_EQ(*j, "{\n\n}\n");
}

TEST(RuntimeManifest, CrossCheckAgainstPtxEntries) {
  Manifest m = parseManifest(kMinimal);
  auto entry = [](const std::string &name, const std::vector<std::string> &types) {
    std::string s = ".visible .entry " + name + "(\n";
    for (size_t i = 0; i < types.size(); ++i)
      s += "\t.param " + types[i] + " " + name + "_param_" + std::to_string(i) +
           (i + 1 < types.size() ? ",\n" : "\n");
    return s + ")\n{\n\tret;\n}\n";
  };
  std::vector<std::string> good = {".u64", ".u64", ".u64", ".u64", ".u64", ".u32", ".f32"};
  std::string ptx = ".version 8.0\n.target sm_90a\n" + entry("k64", good) + entry("k128", good);
  checkManifestAgainstPtx(m, ptx);
  expectError([&] { checkManifestAgainstPtx(m, ".version 8.0\n" + entry("k64", good)); },
              ErrorCode::Manifest,
              "manifest: variants[0].kernels[1].symbol: the PTX has no .entry 'k128' (its entries: k64)");
  std::vector<std::string> shorter(good.begin(), good.end() - 1);
  expectError([&] { checkManifestAgainstPtx(m, entry("k64", shorter) + entry("k128", good)); },
              ErrorCode::Manifest,
              "the PTX entry 'k64' has 6 parameters, but variant 'dense' lists 7 args");
  std::vector<std::string> wrong = good;
  wrong[5] = ".u64";
  expectError([&] { checkManifestAgainstPtx(m, entry("k64", good) + entry("k128", wrong)); },
              ErrorCode::Manifest,
              "manifest: variants[0].args[5]: 'qlen' is i32 (4 bytes), but parameter 5 of the PTX "
              "entry 'k128' has 8 bytes");
  // nvcc's pointer parameter form and comments are understood.
  std::string nv = ".visible .entry k64(\n .param .u64 .ptr .global .align 16 a, // q\n"
                   " .param .u64 .ptr .align 1 b, .param .u64 c, .param .u64 d, .param .u64 e,\n"
                   " .param .u32 f, /* scale */ .param .f32 g\n)\n" + entry("k128", good);
  checkManifestAgainstPtx(m, nv);
}

//===----------------------------------------------------------------------===//
// Argument checking
//===----------------------------------------------------------------------===//

namespace {

/// The fixture's variants: causal (index 0) and doc_causal_sink (index 1),
/// plus an indexer variant built here.
const Manifest &fixtureManifest() {
  static Manifest m = parseManifest(readFile(kTestdata + "/naive_attention_model.manifest.json"));
  return m;
}

VariantSpec indexerVariant() {
  VariantSpec v = fixtureManifest().variants[0];
  v.name = "dsa";
  v.select = SelectSpec{2048, IndexerSpec{64, 128, DType::F8E4M3}};
  v.args.push_back({"indexer.qI", ArgKind::Ptr});
  v.args.push_back({"indexer.w", ArgKind::Ptr});
  v.args.push_back({"indexer.kI", ArgKind::Ptr});
  v.args.push_back({"indexer.qI_stride_h", ArgKind::I64});
  v.args.push_back({"indices", ArgKind::Ptr});
  v.args.push_back({"indices_stride_l", ArgKind::I32});
  v.args.push_back({"topk", ArgKind::I32});
  return v;
}

constexpr uint64_t kBase = 0x7f0000000000ull;

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

LaunchArgs validDocArgs() {
  LaunchArgs a = validArgs();
  a.sinks = TensorRef::contiguous(kBase + 0x500000, DType::F32, {8});
  a.inputs["doc"] = TensorRef::contiguous(kBase + 0x600000, DType::I32, {2, 1000});
  return a;
}

LaunchArgs validIndexerArgs() {
  LaunchArgs a = validArgs();
  a.indexer = IndexerTensors{TensorRef::contiguous(kBase + 0x700000, DType::F8E4M3, {2, 100, 64, 128}),
                             TensorRef::contiguous(kBase + 0x800000, DType::F32, {2, 100, 64}),
                             TensorRef::contiguous(kBase + 0x900000, DType::F8E4M3, {2, 1000, 128})};
  a.indices = TensorRef::contiguous(kBase + 0xa00000, DType::I32, {2, 4, 100, 2048});
  return a;
}

/// Checks that `a` fails with exactly `message`, naming `arg`.
void expectBad(const VariantSpec &v, const LaunchArgs &a, const std::string &arg,
               const std::string &message) {
  try {
    LaunchPlan p = checkArguments(v, a);
    ADD_FAILURE() << "accepted; expected: " << message << "\n" << p.describe(v);
  } catch (const Error &e) {
    EXPECT_EQ(int(e.code()), int(ErrorCode::InvalidArgument));
    EXPECT_EQ(e.arg(), arg) << e.what();
    EXPECT_EQ(std::string(e.what()), message);
  }
}

int64_t slot(const LaunchPlan &p, const std::string &name) {
  for (size_t i = 0; i < p.names.size(); ++i)
    if (p.names[i] == name)
      return p.kinds[i] == ArgKind::I32 ? int64_t(int32_t(uint32_t(p.values[i]))) : int64_t(p.values[i]);
  ADD_FAILURE() << "no argument " << name;
  return 0;
}

} // namespace

TEST(RuntimeArgCheck, ValidArgumentsArePacked) {
  const VariantSpec &causal = fixtureManifest().variants[0];
  LaunchPlan p = checkArguments(causal, validArgs());
  EXPECT_EQ(causal.kernels[p.kernelIndex].symbol, "attnc_fixture_causal_bf16_d128");
  EXPECT_EQ(p.grid[0], 2u); // ceil(100 / 64)
  EXPECT_EQ(p.grid[1], 8u);
  EXPECT_EQ(p.grid[2], 2u);
  EXPECT_EQ(p.block[0], 64u);
  EXPECT_EQ(p.sharedBytes, 65536u);
  ASSERT_EQ(p.values.size(), causal.args.size());
  EXPECT_EQ(uint64_t(slot(p, "q")), kBase);
  EXPECT_EQ(uint64_t(slot(p, "lse")), kBase + 0x400000);
  EXPECT_EQ(slot(p, "q_stride_b"), 8 * 100 * 128);
  EXPECT_EQ(slot(p, "q_stride_h"), 100 * 128);
  EXPECT_EQ(slot(p, "q_stride_l"), 128);
  EXPECT_EQ(slot(p, "k_stride_b"), 4 * 1000 * 128);
  EXPECT_EQ(slot(p, "lse_stride_b"), 800);
  EXPECT_EQ(slot(p, "lse_stride_h"), 100);
  EXPECT_EQ(slot(p, "batch"), 2);
  EXPECT_EQ(slot(p, "heads_q"), 8);
  EXPECT_EQ(slot(p, "heads_kv"), 4);
  EXPECT_EQ(slot(p, "qlen"), 100);
  EXPECT_EQ(slot(p, "klen"), 1000);
  EXPECT_EQ(slot(p, "q_offset"), 900); // default klen - qlen
  EXPECT_EQ(slot(p, "k_offset"), 0);
  float scale;
  uint32_t bits = uint32_t(p.values.back());
  std::memcpy(&scale, &bits, 4);
  EXPECT_FLOAT_EQ(scale, float(1.0 / std::sqrt(128.0)));
  std::vector<void *> params = p.params();
  EXPECT_EQ(params.size(), p.values.size());
  EXPECT_EQ(*static_cast<uint64_t *>(params[0]), kBase);
  EXPECT_NE(p.describe(causal).find("attnc_fixture_causal_bf16_d128 grid=[2, 8, 2] block=[64, 1, 1] shared=65536"),
            std::string::npos);
  EXPECT_NE(p.describe(causal).find("scale=0.0883883"), std::string::npos) << p.describe(causal);

  // Explicit offsets, fp16, D = 64, a strided (transposed) q, and a compiled-in scale.
  LaunchArgs a = validArgs();
  for (TensorRef *t : {&a.q, &a.k, &a.v, &a.o}) {
    t->dtype = DType::F16;
    t->sizes[3] = 64;
  }
  a.q.strides = {100 * 8 * 64, 64, 8 * 64, 1}; // [B, L, H, D] memory
  a.k = TensorRef::contiguous(a.k.data, DType::F16, {2, 4, 1000, 64});
  a.v = TensorRef::contiguous(a.v.data, DType::F16, {2, 4, 1000, 64});
  a.o = TensorRef::contiguous(a.o.data, DType::F16, {2, 8, 100, 64});
  a.qOffset = -5;
  a.kOffset = 7;
  VariantSpec scaled = causal;
  scaled.scale = 0.25;
  p = checkArguments(scaled, a);
  EXPECT_EQ(scaled.kernels[p.kernelIndex].symbol, "attnc_fixture_causal_fp16_d64");
  EXPECT_EQ(slot(p, "q_stride_h"), 64);
  EXPECT_EQ(slot(p, "q_stride_l"), 512);
  EXPECT_EQ(slot(p, "q_offset"), -5);
  EXPECT_EQ(slot(p, "k_offset"), 7);
  bits = uint32_t(p.values.back());
  std::memcpy(&scale, &bits, 4);
  EXPECT_EQ(scale, 0.25f);

  // The GQA-packing grid rule.
  VariantSpec packed = causal;
  packed.grid = GridRule::QTilesKvHeadsBatch;
  p = checkArguments(packed, validArgs());
  EXPECT_EQ(p.grid[0], 4u); // ceil(100 * 2 / 64)
  EXPECT_EQ(p.grid[1], 4u);
  EXPECT_EQ(p.grid[2], 2u);
}

TEST(RuntimeArgCheck, DocSinkAndIndexerArgumentsArePacked) {
  const VariantSpec &doc = fixtureManifest().variants[1];
  LaunchPlan p = checkArguments(doc, validDocArgs());
  EXPECT_EQ(uint64_t(slot(p, "sinks")), kBase + 0x500000);
  EXPECT_EQ(uint64_t(slot(p, "input:doc")), kBase + 0x600000);
  EXPECT_EQ(slot(p, "input:doc:stride:batch"), 1000);
  EXPECT_EQ(slot(p, "input:doc:size:token"), 1000);
  // bool inputs also take u8 tensors; longer token axes are fine.
  LaunchArgs a = validDocArgs();
  a.inputs["doc"] = TensorRef::contiguous(kBase + 0x600000, DType::I32, {2, 5000});
  EXPECT_EQ(slot(checkArguments(doc, a), "input:doc:size:token"), 5000);

  VariantSpec dsa = indexerVariant();
  p = checkArguments(dsa, validIndexerArgs());
  EXPECT_EQ(uint64_t(slot(p, "indexer.kI")), kBase + 0x900000);
  EXPECT_EQ(slot(p, "indexer.qI_stride_h"), 128);
  EXPECT_EQ(slot(p, "indices_stride_l"), 2048);
  EXPECT_EQ(slot(p, "topk"), 2048);
}

TEST(RuntimeArgCheck, EachRuleGivesItsMessage) {
  const VariantSpec &causal = fixtureManifest().variants[0];
  const VariantSpec &doc = fixtureManifest().variants[1];
  LaunchArgs a;

  a = validArgs();
  a.q.sizes = {2, 4, 128};
  a.q.strides = {512, 128, 1};
  expectBad(causal, a, "q", "q: expected rank 4 [batch, heads_q, qlen, head_dim], got rank 3 [2, 4, 128]");

  a = validArgs();
  a.q.dtype = DType::F32;
  expectBad(causal, a, "q", "q: expected dtype bf16 or fp16 (supported by variant 'causal'), got f32");

  a = validArgs();
  a.q = TensorRef::contiguous(kBase, DType::BF16, {2, 8, 100, 96});
  expectBad(causal, a, "q", "q: head_dim 96 is not supported by variant 'causal' (supported: 64, 128, 256)");

  a = validArgs();
  a.q = TensorRef::contiguous(kBase, DType::BF16, {2, 0, 100, 128});
  expectBad(causal, a, "q", "q: expected every size >= 1 [batch, heads_q, qlen, head_dim], got [2, 0, 100, 128]");

  a = validArgs();
  a.q.strides.pop_back();
  expectBad(causal, a, "q", "q: has 4 sizes but 3 strides");

  a = validArgs();
  a.q.data = 0;
  expectBad(causal, a, "q", "q: null data pointer");

  a = validArgs();
  a.k = TensorRef::contiguous(a.k.data, DType::BF16, {3, 4, 1000, 128});
  expectBad(causal, a, "k", "k: expected shape [2, heads_kv, klen, 128] (batch, heads_kv, klen, head_dim), got [3, 4, 1000, 128]");

  a = validArgs();
  a.v = TensorRef::contiguous(a.v.data, DType::BF16, {2, 4, 999, 128});
  expectBad(causal, a, "v", "v: expected shape [2, 4, 1000, 128] (batch, heads_kv, klen, head_dim), got [2, 4, 999, 128]");

  a = validArgs();
  a.k.dtype = DType::F16;
  expectBad(causal, a, "k", "k: expected dtype bf16 (the dtype of q), got fp16");

  a = validArgs();
  a.q = TensorRef::contiguous(kBase, DType::BF16, {2, 6, 100, 128});
  expectBad(causal, a, "k", "k: heads_kv = 4 does not divide heads_q = 6 (grouped-query attention needs heads_q % heads_kv == 0)");

  a = validArgs();
  a.o = TensorRef::contiguous(a.o.data, DType::BF16, {2, 8, 101, 128});
  expectBad(causal, a, "o", "o: expected shape [2, 8, 100, 128] (batch, heads_q, qlen, head_dim), got [2, 8, 101, 128]");

  a = validArgs();
  a.o.dtype = DType::F16;
  expectBad(causal, a, "o", "o: expected dtype bf16 (the dtype of q), got fp16");

  a = validArgs();
  a.lse.dtype = DType::BF16;
  expectBad(causal, a, "lse", "lse: expected dtype f32, got bf16");

  a = validArgs();
  a.lse = TensorRef::contiguous(a.lse.data, DType::F32, {2, 8, 100, 1});
  expectBad(causal, a, "lse", "lse: expected rank 3 [batch, heads_q, qlen], got rank 4 [2, 8, 100, 1]");

  a = validArgs();
  a.v.strides = {4 * 1000 * 256, 1000 * 256, 256, 2};
  expectBad(causal, a, "v", "v: the last dimension (head_dim) must be contiguous (stride 1), got strides [1024000, 256000, 256, 2]");

  a = validArgs();
  a.q.data = kBase + 2;
  expectBad(causal, a, "q", "q: data pointer 0x7f0000000002 is not 16-byte aligned");

  a = validArgs();
  a.k.strides = {4 * 1000 * 132, 1000 * 132, 132, 1};
  expectBad(causal, a, "k", "k: stride 132 of dimension klen (264 bytes) is not a multiple of 16 bytes (strides [528000, 132000, 132, 1])");

  a = validArgs();
  a.k.strides = {4 * 1000 * 128, -1000 * 128, 128, 1};
  expectBad(causal, a, "k", "k: negative stride -128000 in dimension heads_kv (strides [512000, -128000, 128, 1])");

  a = validArgs();
  a.o.strides = {8 * 100 * 128, 0, 128, 1};
  expectBad(causal, a, "o", "o: the kernel writes this tensor, but its strides [102400, 0, 128, 1] make elements overlap (dimension heads_q, size 8, stride 0)");

  a = validArgs();
  a.lse.strides = {800, 100, 1};
  a.lse.data = kBase + 0x400002;
  expectBad(causal, a, "lse", "lse: data pointer 0x7f0000400002 is not aligned to its element size (4 bytes)");

  a = validArgs();
  a.q.sizes = {4, 8, int64_t(1) << 40, 128};
  a.q.strides = {(int64_t(1) << 61), (int64_t(1) << 58), 128, 1};
  expectBad(causal, a, "q", "q: sizes [4, 8, 1099511627776, 128] and strides [2305843009213693952, 288230376151711744, 128, 1] span more than 2^63 bytes");

  // Sinks.
  a = validDocArgs();
  a.sinks.reset();
  expectBad(doc, a, "sinks", "sinks: variant 'doc_causal_sink' has a sink: expected an f32 tensor of shape [8] (heads_q), got none");
  a = validArgs();
  a.sinks = TensorRef::contiguous(kBase + 0x500000, DType::F32, {8});
  expectBad(causal, a, "sinks", "sinks: variant 'causal' has no sink, but sinks were given");
  a = validDocArgs();
  a.sinks = TensorRef::contiguous(kBase + 0x500000, DType::F32, {4});
  expectBad(doc, a, "sinks", "sinks: expected shape [8] (heads_q), got [4]");
  a = validDocArgs();
  a.sinks->dtype = DType::BF16;
  expectBad(doc, a, "sinks", "sinks: expected dtype f32, got bf16");

  // Inputs.
  a = validDocArgs();
  a.inputs.clear();
  expectBad(doc, a, "input:doc", "input:doc: variant 'doc_causal_sink' reads input 'doc : i32[batch, token]', which was not given");
  a = validDocArgs();
  a.inputs["prefix"] = TensorRef::contiguous(kBase, DType::I32, {2});
  expectBad(doc, a, "input:prefix", "input:prefix: variant 'doc_causal_sink' reads no input 'prefix' (it reads: doc)");
  a = validArgs();
  a.inputs["doc"] = TensorRef::contiguous(kBase, DType::I32, {2, 1000});
  expectBad(causal, a, "input:doc", "input:doc: variant 'causal' reads no input 'doc' (it reads no inputs)");
  a = validDocArgs();
  a.inputs["doc"].dtype = DType::I64;
  expectBad(doc, a, "input:doc", "input:doc: expected dtype i32, got i64");
  a = validDocArgs();
  a.inputs["doc"] = TensorRef::contiguous(kBase + 0x600000, DType::I32, {2, 999});
  expectBad(doc, a, "input:doc", "input:doc: its token axis has 999 positions, but positions 0 .. 999 are read (q_offset + qlen = 1000, k_offset + klen = 1000): expected shape [2, >=1000] (batch, token), got [2, 999]");
  a = validDocArgs();
  a.kOffset = 50;
  expectBad(doc, a, "input:doc", "input:doc: its token axis has 1000 positions, but positions 0 .. 1049 are read (q_offset + qlen = 1000, k_offset + klen = 1050): expected shape [2, >=1050] (batch, token), got [2, 1000]");
  a = validDocArgs();
  a.inputs["doc"] = TensorRef::contiguous(kBase + 0x600000, DType::I32, {3, 1000});
  expectBad(doc, a, "input:doc", "input:doc: expected shape [2, >=1000] (batch, token), got [3, 1000]");
  a = validDocArgs();
  a.inputs["doc"] = TensorRef::contiguous(kBase + 0x600000, DType::I32, {2000});
  expectBad(doc, a, "input:doc", "input:doc: expected rank 2 [batch, token], got rank 1 [2000]");
  a = validDocArgs();
  a.qOffset = -1;
  expectBad(doc, a, "q_offset", "q_offset: -1 is negative, but variant 'doc_causal_sink' reads token-indexed input 'doc' at query positions q_offset .. q_offset + qlen - 1, which must be >= 0");

  // Offsets.
  a = validArgs();
  a.qOffset = (int64_t(1) << 40) + 1;
  expectBad(causal, a, "q_offset", "q_offset: 1099511627777 is out of range [-2^40, 2^40]");
  a = validArgs();
  a.kOffset = -(int64_t(1) << 41);
  expectBad(causal, a, "k_offset", "k_offset: -2199023255552 is out of range [-2^40, 2^40]");

  // The indexer and selected indices.
  VariantSpec dsa = indexerVariant();
  a = validIndexerArgs();
  a.indexer.reset();
  expectBad(dsa, a, "indexer", "indexer: variant 'dsa' selects by the indexer: expected qI [2, 100, 64, 128], w and kI, got none");
  a = validIndexerArgs();
  a.indexer->qI.dtype = DType::BF16;
  expectBad(dsa, a, "indexer.qI", "indexer.qI: expected dtype fp8_e4m3 (the indexer dtype of variant 'dsa'), got bf16");
  a = validIndexerArgs();
  a.indexer->kI = TensorRef::contiguous(kBase + 0x900000, DType::F8E4M3, {2, 999, 128});
  expectBad(dsa, a, "indexer.kI", "indexer.kI: expected shape [2, 1000, 128] (batch, klen, indexer_dim), got [2, 999, 128]");
  a = validIndexerArgs();
  a.indexer->w.dtype = DType::BF16;
  expectBad(dsa, a, "indexer.w", "indexer.w: expected dtype f32, got bf16");
  a = validIndexerArgs();
  a.indices.reset();
  expectBad(dsa, a, "indices", "indices: variant 'dsa' writes the selected key indices: expected an i32 tensor of shape [2, 4, 100, 2048] (batch, heads_kv, qlen, topk), got none");
  a = validArgs();
  a.indexer = validIndexerArgs().indexer;
  expectBad(causal, a, "indexer", "indexer: variant 'causal' does not select by the indexer, but indexer tensors were given");
  a = validArgs();
  a.indices = validIndexerArgs().indices;
  expectBad(causal, a, "indices", "indices: variant 'causal' does not write selected indices, but an indices tensor was given");

  // Grid limits and parameter ranges.
  a = validArgs();
  a.q = TensorRef::contiguous(kBase, DType::BF16, {70000, 8, 100, 128});
  a.k = TensorRef::contiguous(kBase, DType::BF16, {70000, 4, 1000, 128});
  a.v = a.k;
  a.o = TensorRef::contiguous(kBase, DType::BF16, {70000, 8, 100, 128});
  a.lse = TensorRef::contiguous(kBase, DType::F32, {70000, 8, 100});
  expectBad(causal, a, "q", "q: batch = 70000 exceeds the launch grid's z limit (65535)");
  a = validArgs();
  a.k = TensorRef::contiguous(kBase, DType::BF16, {2, 4, 3000000000LL, 128});
  a.v = a.k;
  expectBad(causal, a, "klen", "klen: 3000000000 does not fit the kernel's i32 parameter 'klen'");
}

//===----------------------------------------------------------------------===//
// Modules without a GPU, and the no-driver error
//===----------------------------------------------------------------------===//

TEST(RuntimeModule, LazyLoadReadsTheManifest) {
  LoadOptions lazy;
  lazy.lazy = true;
  Module m = Module::loadFile(kTestdata + "/naive_attention_model.ptx", lazy);
  EXPECT_EQ(m.numLayers(), 4);
  EXPECT_EQ(m.layer(0).name(), "causal");
  EXPECT_EQ(m.layer(1).name(), "doc_causal_sink");
  EXPECT_EQ(m.variant("doc_causal_sink").spec().inputs.size(), 1u);
  expectError([&] { m.layer(4); }, ErrorCode::NotFound,
              "layer 4 is out of range: model 'fixture' has 4 layers (0 .. 3)");
  expectError([&] { m.variant("local"); }, ErrorCode::NotFound,
              "no variant 'local' (the module has: causal, doc_causal_sink)");
  Module c = Module::loadFile(kTestdata + "/naive_attention_causal.ptx", lazy);
  EXPECT_EQ(c.numLayers(), 0);
  expectError([&] { c.layer(0); }, ErrorCode::NotFound, "the module has no model");
  // Checking works without a GPU.
  EXPECT_EQ(c.variant("causal").check(validArgs()).grid[0], 2u);
}

TEST(RuntimeModule, LoadErrors) {
  LoadOptions lazy;
  lazy.lazy = true;
  TempDir dir;
  expectError([&] { Module::loadFile(dir.path + "/missing.ptx", lazy); }, ErrorCode::Io,
              "cannot read module '" + dir.path + "/missing.ptx': No such file or directory");
  std::string ptx = readFile(kTestdata + "/naive_attention_causal.ptx");
  std::string bare = ptx.substr(ptx.find("// attnc-manifest-end\n") + 22);
  writeFile(dir.path + "/bare.ptx", bare);
  expectError([&] { Module::loadFile(dir.path + "/bare.ptx", lazy); }, ErrorCode::Manifest,
              "bare.ptx: no attnc manifest: the PTX has no '// attnc-manifest-begin' block and "
              "there is no sidecar '" + dir.path + "/bare.ptx.json'");
  // A sidecar next to a PTX without a block works.
  writeFile(dir.path + "/bare.ptx.json", readFile(kTestdata + "/naive_attention_causal.manifest.json"));
  EXPECT_EQ(Module::loadFile(dir.path + "/bare.ptx", lazy).variant("causal").name(), "causal");
  // A cubin needs a sidecar.
  writeFile(dir.path + "/k.cubin", std::string("\x7f" "ELF\x02\x01\x01", 7) + std::string(64, '\0'));
  expectError([&] { Module::loadFile(dir.path + "/k.cubin", lazy); }, ErrorCode::Manifest,
              "a cubin or fatbin carries its manifest in a sidecar file, but '" + dir.path +
                  "/k.cubin.json' cannot be read");
  writeFile(dir.path + "/k.cubin.json", readFile(kTestdata + "/naive_attention_causal.manifest.json"));
  EXPECT_EQ(Module::loadFile(dir.path + "/k.cubin", lazy).manifest().variants.size(), 1u);
  // Neither PTX nor ELF.
  writeFile(dir.path + "/junk.bin", "hello");
  expectError([&] { Module::loadFile(dir.path + "/junk.bin", lazy); }, ErrorCode::Manifest,
              "not a PTX text (no .version directive), a cubin (ELF) or a fatbin image");
  // A manifest naming a kernel the PTX lacks.
  std::string renamed = ptx;
  size_t p = renamed.find("\"symbol\": \"attnc_fixture_causal_bf16_d64\"");
  renamed.replace(p, 41, "\"symbol\": \"attnc_fixture_causal_bf16_d63\"");
  expectError([&] { Module::loadData(renamed, "", lazy, "renamed.ptx"); }, ErrorCode::Manifest,
              "renamed.ptx: manifest: variants[0].kernels[0].symbol: the PTX has no .entry "
              "'attnc_fixture_causal_bf16_d63'");
  // From memory, with a NUL terminator, and with the manifest passed alongside.
  EXPECT_EQ(Module::loadData(ptx + std::string(1, '\0'), "", lazy).variant("causal").name(), "causal");
  EXPECT_EQ(Module::loadData(bare, readFile(kTestdata + "/naive_attention_causal.manifest.json"), lazy)
                .manifest()
                .target,
            "sm_90a");
  // Syntax errors in an embedded manifest name the PTX line.
  std::string broken = ptx;
  const std::string targetLine = "//   \"target\": \"sm_90a\",";
  broken.replace(broken.find(targetLine), targetLine.size(), "//   \"target\" \"sm_90a\",");
  expectError([&] { Module::loadData(broken, "", lazy, "broken.ptx"); }, ErrorCode::Manifest,
              "broken.ptx: manifest: JSON syntax error at line 5, column 12 (file line 6)");
}

TEST(RuntimeNoDriver, ClearErrorEverywhere) {
  NoDriver guard;
  std::string msg = expectError([] { rt::cu::driver(); }, ErrorCode::NoDriver,
                                "no CUDA driver found: cannot load '/nonexistent/libcuda.so.1'");
  EXPECT_NE(msg.find("argument checking works without one"), std::string::npos);
  // The failure is remembered.
  expectError([] { rt::cu::driver(); }, ErrorCode::NoDriver, "no CUDA driver found");
  // Eager loading needs the driver; lazy loading and checking do not; a
  // launch checks its arguments first, then needs the driver.
  expectError([] { Module::loadFile(kTestdata + "/naive_attention_causal.ptx"); }, ErrorCode::NoDriver,
              "no CUDA driver found");
  LoadOptions lazy;
  lazy.lazy = true;
  Kernel k = Module::loadFile(kTestdata + "/naive_attention_causal.ptx", lazy).variant("causal");
  LaunchArgs bad = validArgs();
  bad.v.sizes[2] = 999;
  expectError([&] { k.launch(bad); }, ErrorCode::InvalidArgument, "v: expected shape");
  expectError([&] { k.launch(validArgs()); }, ErrorCode::NoDriver, "no CUDA driver found");
  expectError([] { device::alloc(16); }, ErrorCode::NoDriver, "no CUDA driver found");
  expectError([] { device::driverInfo(); }, ErrorCode::NoDriver, "no CUDA driver found");
  // The C API.
  attnrt_module *m = nullptr;
  EXPECT_EQ(attnrt_module_load_file((kTestdata + "/naive_attention_causal.ptx").c_str(), 0, &m),
            ATTNRT_ERROR_NO_DRIVER);
  EXPECT_EQ(m, nullptr);
  EXPECT_EQ(std::string(attnrt_last_error()).rfind("no CUDA driver found", 0), 0u) << attnrt_last_error();
  char buf[64];
  EXPECT_EQ(attnrt_driver_info(buf, sizeof buf), ATTNRT_ERROR_NO_DRIVER);
  uint64_t ptr = 0;
  EXPECT_EQ(attnrt_device_alloc(16, &ptr), ATTNRT_ERROR_NO_DRIVER);
}

TEST(RuntimeNoDriver, EnvironmentVariableNamesTheLibrary) {
  ScopedEnv env("ATTNC_CUDA_DRIVER", "/nonexistent/from-env.so");
  rt::cu::resetDriverForTesting("");
  EXPECT_EQ(rt::cu::driverLibraryName(), "/nonexistent/from-env.so");
  expectError([] { rt::cu::driver(); }, ErrorCode::NoDriver,
              "no CUDA driver found: cannot load '/nonexistent/from-env.so'");
  rt::cu::resetDriverForTesting("");
}

TEST(RuntimeNoDriver, ToolkitStubResolvesEveryEntryPoint) {
  // The CUDA toolkit's stub libcuda.so exports the real driver's symbols but
  // fails cuInit: every entry point the runtime resolves must be found (else
  // the error would be "has no entry point"), and cuInit's error is named.
  std::string stub = "/usr/local/cuda/lib64/stubs/libcuda.so";
  if (const char *home = std::getenv("CUDA_HOME"))
    stub = std::string(home) + "/lib64/stubs/libcuda.so";
  if (access(stub.c_str(), R_OK) != 0)
    GTEST_SKIP() << "no CUDA toolkit stub at " << stub;
  NoDriver guard;
  rt::cu::resetDriverForTesting(stub);
  expectError([] { rt::cu::driver(); }, ErrorCode::Cuda,
              "the CUDA driver '" + stub + "' was found, but cuInit failed with "
              "CUDA_ERROR_STUB_LIBRARY");
}

TEST(RuntimeNoDriver, LibraryWithoutEntryPoints) {
  // A real shared library that is not the CUDA driver.
  NoDriver guard;
  rt::cu::resetDriverForTesting("libm.so.6");
  expectError([] { rt::cu::driver(); }, ErrorCode::NoDriver,
              "no CUDA driver found: 'libm.so.6' was loaded but has no entry point 'cuInit'");
}

//===----------------------------------------------------------------------===//
// The C API without a GPU
//===----------------------------------------------------------------------===//

TEST(RuntimeCApi, CheckDescribeAndErrors) {
  attnrt_module *m = nullptr;
  ASSERT_EQ(attnrt_module_load_file((kTestdata + "/naive_attention_model.ptx").c_str(),
                                    ATTNRT_LOAD_LAZY, &m),
            ATTNRT_OK)
      << attnrt_last_error();
  EXPECT_STREQ(attnrt_last_error(), "");
  EXPECT_EQ(attnrt_module_num_layers(m), 4);
  EXPECT_NE(std::string(attnrt_module_manifest_json(m)).find("\"doc_causal_sink\""), std::string::npos);
  attnrt_kernel *k = nullptr;
  ASSERT_EQ(attnrt_module_layer(m, 1, &k), ATTNRT_OK);
  EXPECT_STREQ(attnrt_kernel_name(k), "doc_causal_sink");
  EXPECT_EQ(json::parse(attnrt_kernel_manifest_json(k)).find("sink")->boolean, true);

  LaunchArgs a = validDocArgs();
  attnrt_tensor q = cTensor(a.q), kk = cTensor(a.k), v = cTensor(a.v), o = cTensor(a.o),
                lse = cTensor(a.lse), sinks = cTensor(*a.sinks);
  attnrt_input doc{"doc", cTensor(a.inputs["doc"])};
  attnrt_launch_args args{};
  args.struct_size = sizeof args;
  args.q = &q;
  args.k = &kk;
  args.v = &v;
  args.o = &o;
  args.lse = &lse;
  args.sinks = &sinks;
  args.inputs = &doc;
  args.num_inputs = 1;
  attnrt_launch_plan plan{};
  ASSERT_EQ(attnrt_kernel_check(k, &args, &plan), ATTNRT_OK) << attnrt_last_error();
  EXPECT_EQ(plan.grid[0], 2u);
  EXPECT_EQ(plan.grid[1], 8u);
  EXPECT_EQ(plan.grid[2], 2u);
  EXPECT_EQ(plan.block[0], 64u);
  EXPECT_EQ(plan.shared_bytes, 65536u);
  char buf[4096];
  ASSERT_EQ(attnrt_kernel_describe_launch(k, &args, buf, sizeof buf), ATTNRT_OK);
  EXPECT_NE(std::string(buf).find("input:doc:stride:batch=1000"), std::string::npos) << buf;
  EXPECT_NE(std::string(buf).find("q_offset=900"), std::string::npos) << buf;
  args.flags = ATTNRT_HAS_Q_OFFSET;
  args.q_offset = 3;
  ASSERT_EQ(attnrt_kernel_describe_launch(k, &args, buf, sizeof buf), ATTNRT_OK);
  EXPECT_NE(std::string(buf).find("q_offset=3\n"), std::string::npos) << buf;
  args.flags = 0;

  // An argument error names the argument; nothing launched (and no driver touched).
  v.sizes[2] = 999;
  EXPECT_EQ(attnrt_kernel_launch(k, &args, nullptr), ATTNRT_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(attnrt_last_error_arg(), "v");
  EXPECT_EQ(std::string(attnrt_last_error()).rfind("v: expected shape [2, 4, 1000, 128]", 0), 0u);
  v.sizes[2] = 1000;
  args.sinks = nullptr;
  EXPECT_EQ(attnrt_kernel_check(k, &args, nullptr), ATTNRT_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(attnrt_last_error_arg(), "sinks");
  args.sinks = &sinks;
  q.rank = 9;
  EXPECT_EQ(attnrt_kernel_check(k, &args, nullptr), ATTNRT_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(attnrt_last_error(), "q: rank 9 is out of range [0, 8]");
  q.rank = 4;
  q.dtype = 42;
  EXPECT_EQ(attnrt_kernel_check(k, &args, nullptr), ATTNRT_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(attnrt_last_error(), "q: unknown dtype code 42");
  q.dtype = ATTNRT_DTYPE_BF16;
  args.lse = nullptr;
  EXPECT_EQ(attnrt_kernel_check(k, &args, nullptr), ATTNRT_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(attnrt_last_error(), "lse: required but not given (NULL)");
  args.lse = &lse;
  args.struct_size = 8;
  EXPECT_EQ(attnrt_kernel_check(k, &args, nullptr), ATTNRT_ERROR_USAGE);
  args.struct_size = sizeof args;
  ASSERT_EQ(attnrt_kernel_check(k, &args, nullptr), ATTNRT_OK);
  EXPECT_STREQ(attnrt_last_error(), "");

  attnrt_kernel *none = nullptr;
  EXPECT_EQ(attnrt_module_variant(m, "local", &none), ATTNRT_ERROR_NOT_FOUND);
  EXPECT_EQ(none, nullptr);
  EXPECT_EQ(attnrt_module_layer(m, -1, &none), ATTNRT_ERROR_NOT_FOUND);
  EXPECT_STREQ(attnrt_status_name(ATTNRT_ERROR_NO_DRIVER), "ATTNRT_ERROR_NO_DRIVER");
  EXPECT_EQ(attnrt_api_version(), ATTNRT_API_VERSION);
  attnrt_kernel_free(k);
  attnrt_module_free(m); // the kernel handle kept the module alive until here

  // Loading from memory.
  std::string ptx = readFile(kTestdata + "/naive_attention_causal.ptx");
  ASSERT_EQ(attnrt_module_load_data(ptx.data(), ptx.size(), nullptr, ATTNRT_LOAD_LAZY, "mem", &m),
            ATTNRT_OK);
  attnrt_module_free(m);
  EXPECT_EQ(attnrt_module_load_data("x", 1, nullptr, ATTNRT_LOAD_LAZY, "mem", &m), ATTNRT_ERROR_MANIFEST);
  EXPECT_STREQ(attnrt_last_error(), "mem: not a PTX text (no .version directive), a cubin (ELF) or a fatbin image");
  EXPECT_EQ(attnrt_module_load_data(ptx.data(), ptx.size(), nullptr, 8, "mem", &m), ATTNRT_ERROR_USAGE);
}

//===----------------------------------------------------------------------===//
// The JIT cache
//===----------------------------------------------------------------------===//

TEST(RuntimeCache, KeyIsStableAndSensitiveToEachComponent) {
  std::map<std::string, std::string> opts = {{"D:window", "4096"}, {"X:opt", "3"}};
  std::string k = rt::cacheKey("attention a { }", opts, "sm_90a", "0.1.0");
  EXPECT_EQ(k.size(), 64u);
  EXPECT_EQ(k, rt::cacheKey("attention a { }", opts, "sm_90a", "0.1.0"));
  // Pinned: a change of the key format must be deliberate (it orphans caches).
  EXPECT_EQ(k, rt::cacheKey("attention a { }", {{"X:opt", "3"}, {"D:window", "4096"}}, "sm_90a", "0.1.0"));
  std::set<std::string> keys = {k};
  keys.insert(rt::cacheKey("attention a {  }", opts, "sm_90a", "0.1.0"));
  keys.insert(rt::cacheKey("attention a { }", {{"D:window", "1024"}, {"X:opt", "3"}}, "sm_90a", "0.1.0"));
  keys.insert(rt::cacheKey("attention a { }", {{"D:windo", "4096"}, {"X:opt", "3"}}, "sm_90a", "0.1.0"));
  keys.insert(rt::cacheKey("attention a { }", {{"D:window", "4096"}}, "sm_90a", "0.1.0"));
  keys.insert(rt::cacheKey("attention a { }", opts, "sm_80", "0.1.0"));
  keys.insert(rt::cacheKey("attention a { }", opts, "sm_90a", "0.1.1"));
  // No ambiguity between where one field ends and the next begins.
  keys.insert(rt::cacheKey("attention a { }", {{"D:a", "bc"}}, "sm_90a", "0.1.0"));
  keys.insert(rt::cacheKey("attention a { }", {{"D:ab", "c"}}, "sm_90a", "0.1.0"));
  keys.insert(rt::cacheKey("x", {}, "sm_90a", "0.1.0"));
  keys.insert(rt::cacheKey("", {}, "sm_90ax", "0.1.0"));
  EXPECT_EQ(keys.size(), 11u);
  // keyedOptions: defines and extra options are kept apart.
  CompileOptions co;
  co.defines["opt"] = "1";
  CompileOptions cx;
  cx.extra["opt"] = "1";
  EXPECT_NE(rt::cacheKey("s", rt::keyedOptions(co), co.target, "v"),
            rt::cacheKey("s", rt::keyedOptions(cx), cx.target, "v"));
}

TEST(RuntimeCache, EntriesAreVerified) {
  std::string key(64, 'a'), payload = "PTX payload\nwith lines\n";
  std::string e = rt::encodeEntry(key, payload);
  EXPECT_EQ(rt::decodeEntry(key, e), payload);
  EXPECT_EQ(rt::decodeEntry(key, rt::encodeEntry(key, "")), std::string());
  EXPECT_FALSE(rt::decodeEntry(std::string(64, 'b'), e));    // another key
  EXPECT_FALSE(rt::decodeEntry(key, e.substr(0, e.size() - 1))); // truncated
  EXPECT_FALSE(rt::decodeEntry(key, e + "x"));                // trailing garbage
  EXPECT_FALSE(rt::decodeEntry(key, e.substr(0, 20)));        // header cut
  EXPECT_FALSE(rt::decodeEntry(key, ""));
  std::string flipped = e;
  flipped[flipped.size() - 3] ^= 0x20;
  EXPECT_FALSE(rt::decodeEntry(key, flipped));                 // corrupted
}

TEST(RuntimeCache, StoreLookupAndRecoverFromATruncatedEntry) {
  TempDir dir;
  rt::JitCache cache(dir.path + "/nested/cache");
  std::string key = rt::cacheKey("src", {}, "sm_90a", "v");
  EXPECT_FALSE(cache.lookup(key));
  std::string err;
  ASSERT_TRUE(cache.store(key, "payload-1", &err)) << err;
  EXPECT_EQ(cache.lookup(key), "payload-1");
  // Truncate the entry, as a crash without atomic writes could: ignored.
  std::string bytes = readFile(cache.entryPath(key));
  writeFile(cache.entryPath(key), bytes.substr(0, bytes.size() - 4));
  EXPECT_FALSE(cache.lookup(key));
  int calls = 0;
  rt::JitCache::Result r = cache.getOrCompute(key, [&] {
    ++calls;
    return std::string("payload-2");
  });
  EXPECT_FALSE(r.hit);
  EXPECT_EQ(r.payload, "payload-2");
  EXPECT_EQ(r.warning, "");
  EXPECT_EQ(calls, 1);
  r = cache.getOrCompute(key, [&] {
    ++calls;
    return std::string("payload-3");
  });
  EXPECT_TRUE(r.hit);
  EXPECT_EQ(r.payload, "payload-2");
  EXPECT_EQ(calls, 1);
  // Only the entry and its lock file remain: no temporary files.
  DIR *d = opendir((dir.path + "/nested/cache").c_str());
  ASSERT_NE(d, nullptr);
  std::vector<std::string> names;
  while (dirent *e = readdir(d))
    if (e->d_name[0] != '.')
      names.push_back(e->d_name);
  closedir(d);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{key + ".entry", key + ".lock"}));
}

TEST(RuntimeCache, ComputeFailureStoresNothing) {
  TempDir dir;
  rt::JitCache cache(dir.path);
  std::string key = rt::cacheKey("bad", {}, "sm_90a", "v");
  EXPECT_THROW(cache.getOrCompute(key, []() -> std::string { throw std::runtime_error("boom"); }),
               std::runtime_error);
  EXPECT_FALSE(cache.lookup(key));
}

TEST(RuntimeCache, UnwritableDirectoryStillComputes) {
  rt::JitCache cache("/proc/attnc-cache-cannot-exist");
  rt::JitCache::Result r = cache.getOrCompute(std::string(64, 'c'), [] { return std::string("ok"); });
  EXPECT_EQ(r.payload, "ok");
  EXPECT_FALSE(r.hit);
  EXPECT_NE(r.warning.find("cannot create the cache directory"), std::string::npos) << r.warning;
}

TEST(RuntimeCache, ManyThreadsCompileOnceAndLeaveOneValidEntry) {
  TempDir dir;
  rt::JitCache cache(dir.path);
  std::string key = rt::cacheKey("shared pattern", {}, "sm_90a", "v");
  std::string payload(200000, 'p');
  std::atomic<int> calls{0};
  std::vector<std::thread> threads;
  std::vector<std::string> results(16);
  for (int t = 0; t < 16; ++t)
    threads.emplace_back([&, t] {
      results[size_t(t)] = cache.getOrCompute(key, [&] {
        ++calls;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        return payload;
      }).payload;
    });
  for (auto &t : threads)
    t.join();
  EXPECT_EQ(calls.load(), 1);
  for (const auto &r : results)
    EXPECT_EQ(r, payload);
  EXPECT_EQ(cache.lookup(key), payload);
  EXPECT_EQ(dir.files(), (std::vector<std::string>{key + ".entry", key + ".lock"}));
}

TEST(RuntimeCache, ConcurrentStoresOfOneKeyLeaveOneValidEntry) {
  TempDir dir;
  rt::JitCache cache(dir.path);
  std::string key = rt::cacheKey("racy", {}, "sm_90a", "v");
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 16; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        // Different payload sizes make a torn or interleaved write detectable.
        if (!cache.store(key, std::string(size_t(1000 + 997 * t), char('a' + t))))
          ++failures;
        if (auto p = cache.lookup(key)) {
          if (p->size() < 1000 || p->find_first_not_of((*p)[0]) != std::string::npos)
            ++failures;
        } else {
          ++failures; // a reader must always see a whole entry once one exists
        }
      }
    });
  for (auto &t : threads)
    t.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_TRUE(cache.lookup(key));
  EXPECT_EQ(dir.files(), (std::vector<std::string>{key + ".entry"}));
}

TEST(RuntimeCache, ManyProcessesCompileOnce) {
  TempDir dir;
  std::string counter = dir.path + "/compiles.log";
  std::string cacheDir = dir.path + "/cache";
  std::string key = rt::cacheKey("multi-process", {}, "sm_90a", "v");
  std::vector<pid_t> kids;
  for (int i = 0; i < 6; ++i) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      rt::JitCache cache(cacheDir);
      rt::JitCache::Result r = cache.getOrCompute(key, [&] {
        int fd = ::open(counter.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
          ssize_t w = ::write(fd, "x\n", 2);
          (void)w;
          ::close(fd);
        }
        usleep(100000);
        return std::string(50000, 'z');
      });
      _exit(r.payload == std::string(50000, 'z') ? 0 : 3);
    }
    kids.push_back(pid);
  }
  for (pid_t pid : kids) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  EXPECT_EQ(readFile(counter), "x\n");
  EXPECT_EQ(rt::JitCache(cacheDir).lookup(key), std::string(50000, 'z'));
}

TEST(RuntimeCache, DefaultDirectory) {
  {
    ScopedEnv a("ATTNC_CACHE_DIR", "/tmp/explicit-attnc-cache");
    EXPECT_EQ(rt::defaultCacheDir(), "/tmp/explicit-attnc-cache");
  }
  ScopedEnv a("ATTNC_CACHE_DIR", nullptr);
  {
    ScopedEnv x("XDG_CACHE_HOME", "/tmp/xdg");
    EXPECT_EQ(rt::defaultCacheDir(), "/tmp/xdg/attnc");
  }
  ScopedEnv x("XDG_CACHE_HOME", nullptr);
  ScopedEnv h("HOME", "/home/someone");
  EXPECT_EQ(rt::defaultCacheDir(), "/home/someone/.cache/attnc");
}

//===----------------------------------------------------------------------===//
// compile()
//===----------------------------------------------------------------------===//

TEST(RuntimeJit, NoCompilerInThisBuild) {
  if (hasCompiler())
    GTEST_SKIP() << "this build has the in-process compiler";
  expectError([] { compile("attention a { }"); }, ErrorCode::NoCompiler, rt::kNoCompilerMessage);
  // "... (built with ATTNC_WITH_MLIR=OFF); load a PTX file instead" in builds without MLIR.
  std::string msg = rt::kNoCompilerMessage;
  EXPECT_EQ(msg.rfind("this build of libattnrt has no compiler (", 0), 0u) << msg;
  EXPECT_EQ(msg.substr(msg.size() - 26), "); load a PTX file instead") << msg;
  attnrt_module *m = nullptr;
  const char *opts[] = {"target=sm_90a", "-Dwindow=1024"};
  EXPECT_EQ(attnrt_compile("attention a { }", opts, 2, &m), ATTNRT_ERROR_NO_COMPILER);
  EXPECT_EQ(attnrt_has_compiler(), 0);
  EXPECT_STREQ(attnrt_last_error(), rt::kNoCompilerMessage);
}

TEST(RuntimeJit, RegisteredCompilerGoesThroughTheCache) {
  if (hasCompiler())
    GTEST_SKIP() << "this build has the in-process compiler; the fake one would replace it";
  TempDir dir;
  std::string ptx = readFile(kTestdata + "/naive_attention_causal.ptx");
  std::atomic<int> calls{0};
  std::string lastWindow;
  rt::registerCompiler(
      [&](const std::string &src, const CompileOptions &o) {
        ++calls;
        if (src == "bad")
          throw std::runtime_error("1:1: error: expected 'attention'");
        auto it = o.defines.find("window");
        lastWindow = it == o.defines.end() ? "" : it->second;
        return ptx;
      },
      "fake-compiler-1");
  CompileOptions o;
  o.cacheDir = dir.path;
  o.load.lazy = true;
  o.defines["window"] = "1024";
  Module a = compile("attention causal { mask k <= q; }", o);
  EXPECT_EQ(a.variant("causal").name(), "causal");
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(lastWindow, "1024");
  CompileReport report;
  Module b = compile("attention causal { mask k <= q; }", o, &report); // a hit
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(a.name(), b.name());
  EXPECT_TRUE(report.cacheUsed);
  EXPECT_TRUE(report.cacheHit);
  EXPECT_EQ(report.key.size(), 64u);
  EXPECT_EQ(a.name(), "<jit " + report.key.substr(0, 16) + ">");
  EXPECT_EQ(report.cacheDir, dir.path);
  EXPECT_EQ(report.ptxBytes, ptx.size());
  EXPECT_GE(report.compileSeconds, 0.0);
  EXPECT_GE(report.loadSeconds, 0.0);
  o.defines["window"] = "2048";
  compile("attention causal { mask k <= q; }", o, &report); // another key
  EXPECT_EQ(calls.load(), 2);
  EXPECT_FALSE(report.cacheHit);
  EXPECT_NE(b.name(), "<jit " + report.key.substr(0, 16) + ">");
  o.useCache = false;
  compile("attention causal { mask k <= q; }", o, &report);
  EXPECT_EQ(calls.load(), 3);
  EXPECT_FALSE(report.cacheUsed);
  EXPECT_FALSE(report.cacheHit);
  EXPECT_EQ(report.cacheDir, "");
  o.useCache = true;
  expectError([&] { compile("bad", o); }, ErrorCode::Compile,
              "compilation failed: 1:1: error: expected 'attention'");
  // The C API's option strings.
  attnrt_module *m = nullptr;
  std::string cacheOpt = "cache_dir=" + dir.path;
  const char *opts[] = {"-Dwindow=1024", cacheOpt.c_str(), "lazy=1", "target=sm_90a"};
  EXPECT_EQ(attnrt_compile("attention causal { mask k <= q; }", opts, 4, &m), ATTNRT_OK)
      << attnrt_last_error();
  EXPECT_EQ(calls.load(), 4); // "bad" counted once; this one was a hit
  std::string json = attnrt_module_compile_report_json(m);
  EXPECT_EQ(json.rfind("{\"cache\": \"hit\", \"key\": \"", 0), 0u) << json;
  EXPECT_NE(json.find("\"cache_dir\": \"" + dir.path + "\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"ptx_bytes\": " + std::to_string(ptx.size()) + "}"), std::string::npos) << json;
  attnrt_module_free(m);
  attnrt_module *loaded = nullptr;
  ASSERT_EQ(attnrt_module_load_file((kTestdata + "/naive_attention_causal.ptx").c_str(),
                                    ATTNRT_LOAD_LAZY, &loaded),
            ATTNRT_OK)
      << attnrt_last_error();
  EXPECT_STREQ(attnrt_module_compile_report_json(loaded), ""); // not compiled
  attnrt_module_free(loaded);
  const char *badOpts[] = {"window"};
  EXPECT_EQ(attnrt_compile("x", badOpts, 1, &m), ATTNRT_ERROR_USAGE);
  rt::registerCompiler(nullptr, "");
  EXPECT_FALSE(hasCompiler());
}

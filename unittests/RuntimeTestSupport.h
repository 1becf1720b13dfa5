//===- RuntimeTestSupport.h - Helpers the runtime's unit tests share -*- C++ -*-===//
//
// For the runtime's unit tests (RuntimeTest.cpp, RuntimeTensorMapTest.cpp,
// RuntimeDsaTest.cpp, RuntimeSummaryTest.cpp, RuntimePersistentTest.cpp): the
// fixtures directory, file reading, one-place text mutation of a manifest,
// the message of the error a manifest throws, exact-error expectations, fake
// device addresses, the attention tensors of a shape, PTX stand-ins for a
// manifest's kernels and C API tensors.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "attnc/Runtime.h"
#include "attnc/attnrt.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

namespace attnc::testing {

inline const std::string kTestdata = ATTNC_RUNTIME_TESTDATA;

inline std::string readFile(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

/// `s` with the first occurrence of `from` replaced by `to` (a test failure
/// if there is none).
inline std::string replaced(std::string s, const std::string &from, const std::string &to) {
  size_t p = s.find(from);
  EXPECT_NE(p, std::string::npos) << "mutation target not found: " << from;
  if (p != std::string::npos)
    s.replace(p, from.size(), to);
  return s;
}

/// The message of the Error(Manifest) that parsing `text` throws, or
/// "(accepted)".
inline std::string manifestError(const std::string &text) {
  try {
    parseManifest(text);
  } catch (const Error &e) {
    EXPECT_EQ(int(e.code()), int(ErrorCode::Manifest)) << e.what();
    return e.what();
  }
  return "(accepted)";
}

/// Fake device address i, 1 TiB apart from the next (argument checking
/// never dereferences them).
inline uint64_t addr(int i) { return 0x7f0000000000ull + (uint64_t(i) << 40); }

/// q [B, Hq, Lq, D], k and v [B, Hkv, Lk, D], o like q (bf16, at addr(0..3))
/// and lse [B, Hq, Lq] (f32, at addr(4)), contiguous; every other argument unset.
inline LaunchArgs attentionArgs(int64_t B, int64_t Hq, int64_t Hkv, int64_t Lq, int64_t Lk, int64_t D) {
  LaunchArgs a;
  a.q = TensorRef::contiguous(addr(0), DType::BF16, {B, Hq, Lq, D});
  a.k = TensorRef::contiguous(addr(1), DType::BF16, {B, Hkv, Lk, D});
  a.v = TensorRef::contiguous(addr(2), DType::BF16, {B, Hkv, Lk, D});
  a.o = TensorRef::contiguous(addr(3), DType::BF16, {B, Hq, Lq, D});
  a.lse = TensorRef::contiguous(addr(4), DType::F32, {B, Hq, Lq});
  return a;
}

/// Expects `f` to throw Error(code) with exactly `message` naming `arg`.
template <typename F>
inline void expectExactError(F &&f, ErrorCode code, const std::string &arg, const std::string &message) {
  try {
    f();
    ADD_FAILURE() << "no error thrown; expected: " << message;
  } catch (const Error &e) {
    EXPECT_EQ(int(e.code()), int(code)) << e.what();
    EXPECT_EQ(e.arg(), arg) << e.what();
    EXPECT_EQ(std::string(e.what()), message);
  }
}

/// One `.entry` per kernel with parameters matching the variant's args.
inline std::string ptxFor(const Manifest &m) {
  std::string ptx = ".version 8.0\n.target sm_90a\n.address_size 64\n";
  for (const auto &v : m.variants)
    for (const auto &k : v.kernels) {
      ptx += ".visible .entry " + k.symbol + "(\n";
      for (size_t i = 0; i < v.args.size(); ++i) {
        const ArgKind kind = v.args[i].kind;
        ptx += std::string("\t.param ") +
               (kind == ArgKind::Ptr || kind == ArgKind::I64 ? ".u64 "
                : kind == ArgKind::F32                       ? ".f32 "
                                                             : ".u32 ") +
               k.symbol + "_param_" + std::to_string(i) + (i + 1 < v.args.size() ? ",\n" : "\n");
      }
      ptx += ")\n{\n\tret;\n}\n";
    }
  return ptx;
}

/// t as the C API's attnrt_tensor.
inline attnrt_tensor cTensor(const TensorRef &t) {
  attnrt_tensor c{};
  c.data = t.data;
  c.dtype = int32_t(t.dtype);
  c.rank = int32_t(t.sizes.size());
  for (size_t i = 0; i < t.sizes.size(); ++i) {
    c.sizes[i] = t.sizes[i];
    c.strides[i] = t.strides[i];
  }
  return c;
}

} // namespace attnc::testing

//===- RuntimeTestSupport.h - Helpers the runtime's unit tests share -*- C++ -*-===//
//
// For RuntimeTest.cpp and RuntimeTensorMapTest.cpp: the fixtures directory,
// file reading, one-place text mutation of a manifest, and the message of
// the error a manifest or a call throws.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "attnc/Runtime.h"

#include <gtest/gtest.h>

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

} // namespace attnc::testing

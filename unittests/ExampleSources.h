//===- ExampleSources.h - The examples' source text, for unit tests -*- C++ -*-===//
//
// exampleSources(): the text of every examples/*.attn (the directory the
// build passes as ATTNC_EXAMPLES_DIR), for the tests that run a check over
// every example and then over sources of their own.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace attnc::testing {

inline std::vector<std::string> exampleSources() {
  std::vector<std::string> sources;
  for (const auto &e : std::filesystem::directory_iterator(ATTNC_EXAMPLES_DIR)) {
    if (e.path().extension() != ".attn")
      continue;
    std::ifstream in(e.path());
    std::stringstream ss;
    ss << in.rdbuf();
    sources.push_back(ss.str());
  }
  return sources;
}

} // namespace attnc::testing

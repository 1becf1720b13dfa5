//===- GenerateProgramsTool.cpp - Random valid programs as files ----------===//
//
//   attnc-gen-programs --seed S --count N --out DIR [--no-select] [--fp32-scores]
//                      [--token-tables]
//
// Writes the programs of ProgramGenerator.h for seeds S .. S+N-1 as
// DIR/gen-<seed>.attn, each headed by the line the regression files use,
// `// attnc-gen: seed=<seed> [-D NAME=VALUE]...`, so that any of them can be
// dropped into test/fuzz-regressions/ as it is. The GPU differential test
// (scripts/build_generated_ptx.sh, test/gpu/check_generated.py) compiles
// these and runs their kernels against the reference executor.
//
//===----------------------------------------------------------------------===//
#include "ProgramGenerator.h"

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

namespace {

int usage(const std::string &msg) {
  std::cerr << "attnc-gen-programs: error: " << msg
            << "\nusage: attnc-gen-programs --seed S --count N --out DIR [--no-select] [--fp32-scores] "
               "[--token-tables]\n";
  return 2;
}

bool parseU64(const char *s, uint64_t &v) {
  char *end = nullptr;
  errno = 0;
  v = std::strtoull(s, &end, 10);
  return *s && *end == '\0' && errno == 0;
}

} // namespace

int main(int argc, char **argv) {
  uint64_t seed = 1, count = 0;
  std::string out;
  attnc::testgen::GeneratorOptions options;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    bool hasValue = i + 1 < argc;
    if (a == "--seed" && hasValue) {
      if (!parseU64(argv[++i], seed))
        return usage("--seed needs a non-negative integer");
    } else if (a == "--count" && hasValue) {
      if (!parseU64(argv[++i], count))
        return usage("--count needs a non-negative integer");
    } else if (a == "--out" && hasValue) {
      out = argv[++i];
    } else if (a == "--no-select") {
      options.selections = false;
    } else if (a == "--fp32-scores") {
      options.fp32Scores = true;
    } else if (a == "--token-tables") {
      options.repeatedTokenAxes = true;
    } else {
      return usage("unexpected argument '" + a + "'");
    }
  }
  if (out.empty() || count == 0)
    return usage("--out and --count are required");
  std::filesystem::create_directories(out);
  for (uint64_t s = seed; s < seed + count; ++s) {
    attnc::testgen::GeneratedProgram g = attnc::testgen::generateProgram(s, options);
    std::string path = out + "/gen-" + std::to_string(s) + ".attn";
    std::ofstream f(path, std::ios::binary);
    f << "// attnc-gen: seed=" << s;
    for (const auto &[name, value] : g.overrides)
      f << " -D " << name << "=" << value;
    f << "\n" << g.text;
    if (!g.text.empty() && g.text.back() != '\n')
      f << "\n";
    if (!f)
      return std::cerr << "attnc-gen-programs: error: cannot write " << path << "\n", 1;
  }
  std::cout << "attnc-gen-programs: wrote " << count << " programs (seeds " << seed << " .. " << seed + count - 1
            << ") to " << out << "\n";
  return 0;
}

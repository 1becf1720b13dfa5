//===- ProgramGenerator.h - Random valid .attn programs ---------*- C++ -*-===//
//
// Generates random programs that are valid by language.md: params of every
// type (computed from earlier params), inputs of every element type and axis
// combination, variants with lets, masks (window, chunk, document, prefix and
// bool-input shapes mixed with random expressions over every operator and
// built-in function), scores, scales, sinks and selections, and models with
// layer rules. The generator tracks the constant value of every expression
// that reads no variable, so it never divides by a constant zero, every
// float param is finite, every `scale` positive, every `topk`/`layers`/layer
// index in range, and `-D` overrides only touch params no such rule depends
// on. A program sema rejects is therefore a bug of the generator or of sema.
//
// The same seed always gives the same program (std::mt19937_64 only).
//
//===----------------------------------------------------------------------===//
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace attnc::testgen {

struct GeneratedProgram {
  std::string text;                                            ///< the .attn source
  std::vector<std::pair<std::string, std::string>> overrides; ///< -D name=value
};

struct GeneratorOptions {
  /// Inputs with several token axes (`allow : bool[token, token]`). Off by
  /// default while the module manifest rejects them (an axis may appear
  /// once there: test/fuzz-regressions/open/token-table-manifest.attn).
  bool repeatedTokenAxes = false;
  /// `select topk(...)` clauses (in about one variant in twelve). The GPU
  /// differential test turns them off: a program that selects has no
  /// kernels yet.
  bool selections = true;
  /// Only score rules and scales whose scores stay within a few thousand
  /// (s-based rules, q - k, 1/sqrt(d) or small integer scales), so a kernel's
  /// fp32 scores (language.md: softmax in fp32) agree with the float64
  /// reference to the GPU test's tolerance; `score 841553 + k` is valid but
  /// its fp32 rounding alone moves the weights by percents.
  bool fp32Scores = false;
};

/// A random valid program for `seed`.
GeneratedProgram generateProgram(uint64_t seed, const GeneratorOptions &options = {});

} // namespace attnc::testgen

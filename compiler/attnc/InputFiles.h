//===- InputFiles.h - Input tensors given as --input name=path --*- C++ -*-===//
//
// Loads the runtime input tensors a mask reads (documents, prefix lengths,
// ...) from .npy files or whitespace-separated text (one line per batch
// entry for [batch, token], one line for a single axis), checks them
// against their declarations, and serves them to the evaluator (exact
// elements) and to the tile classifier (min/max over a range of positions).
//
//===----------------------------------------------------------------------===//
#pragma once

#include "attnc/dsl/Eval.h"

#include <string>
#include <utility>
#include <vector>

namespace attnc {

class InputFiles : public dsl::InputReader {
public:
  /// Loads each `name=path`; throws std::runtime_error with a message naming
  /// the argument on a bad file, shape or dtype.
  InputFiles(const dsl::CheckedProgram &program, const std::vector<std::pair<std::string, std::string>> &specs);

  bool has(int input) const { return input < int(tensors_.size()) && tensors_[input].loaded; }
  dsl::Value read(int input, const int64_t *indices) const override;
  /// Minimum and maximum of input `name` at batch b, head h and token
  /// positions [first, last] (clamped to the tensor); false if not loaded.
  bool range(const std::string &name, int64_t b, int64_t h, int64_t first, int64_t last, int64_t &lo,
             int64_t &hi) const;

private:
  struct Tensor {
    bool loaded = false;
    std::vector<dsl::Axis> axes;
    std::vector<int64_t> shape;
    std::vector<double> values; ///< C order
    dsl::ElemType elem = dsl::ElemType::I32;
  };
  const dsl::CheckedProgram &program_;
  std::vector<Tensor> tensors_;
};

} // namespace attnc

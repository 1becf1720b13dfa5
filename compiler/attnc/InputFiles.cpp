//===- InputFiles.cpp - Loading --input tensors ---------------------------===//
#include "InputFiles.h"

#include "support/Npy.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace attnc {

namespace {

/// Whitespace-separated numbers, one line per row.
void readText(const std::string &path, const std::string &what, std::vector<int64_t> &shape,
              std::vector<double> &values) {
  std::ifstream in(path);
  if (!in)
    throw std::runtime_error(what + ": cannot open '" + path + "'");
  std::string line;
  int64_t rows = 0, cols = -1;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string tok;
    int64_t n = 0;
    while (ls >> tok) {
      char *end = nullptr;
      double v = std::strtod(tok.c_str(), &end);
      if (*end || !std::isfinite(v))
        throw std::runtime_error(what + ": '" + tok + "' in '" + path + "' line " + std::to_string(rows + 1) +
                                 " is not a number");
      values.push_back(v);
      ++n;
    }
    if (n == 0)
      continue;
    if (cols >= 0 && n != cols)
      throw std::runtime_error(what + ": line " + std::to_string(rows + 1) + " of '" + path + "' has " +
                               std::to_string(n) + " values, the first line " + std::to_string(cols));
    cols = n;
    ++rows;
  }
  if (rows == 0)
    throw std::runtime_error(what + ": '" + path + "' holds no numbers");
  shape = rows == 1 ? std::vector<int64_t>{cols} : std::vector<int64_t>{rows, cols};
}

} // namespace

InputFiles::InputFiles(const dsl::CheckedProgram &program,
                       const std::vector<std::pair<std::string, std::string>> &specs)
    : program_(program), tensors_(program.ast.inputs.size()) {
  for (auto &[name, path] : specs) {
    std::string what = "--input " + name;
    int idx = program.findInput(name);
    if (idx < 0)
      throw std::runtime_error(what + ": the program declares no input named '" + name + "'");
    const dsl::InputDecl &decl = program.ast.inputs[idx];
    Tensor t;
    t.axes = decl.axes;
    t.elem = decl.elem;
    bool npy = path.size() >= 4 && path.compare(path.size() - 4, 4, ".npy") == 0;
    if (npy) {
      support::NpyArray a = support::readNpy(path);
      t.shape = a.shape;
      if (decl.elem == dsl::ElemType::Bool) {
        for (uint8_t v : a.toBool(what))
          t.values.push_back(v);
      } else if (decl.elem == dsl::ElemType::F32) {
        t.values = a.toFloat64(what);
      } else {
        for (int64_t v : a.toInt64(what))
          t.values.push_back(double(v));
      }
    } else {
      readText(path, what, t.shape, t.values);
    }
    // A text file of one line for a [batch, token] input is one batch entry.
    if (t.shape.size() + 1 == decl.axes.size())
      t.shape.insert(t.shape.begin(), 1);
    if (t.shape.size() != decl.axes.size())
      throw std::runtime_error(what + ": expected " + std::to_string(decl.axes.size()) + " axes, got shape " +
                               support::shapeString(t.shape));
    t.loaded = true;
    tensors_[idx] = std::move(t);
  }
}

dsl::Value InputFiles::read(int input, const int64_t *indices) const {
  const Tensor &t = tensors_[input];
  const std::string &name = program_.ast.inputs[input].name;
  if (!t.loaded)
    throw dsl::EvalError("input '" + name + "' was not given (use --input " + name + "=FILE)");
  int64_t flat = 0;
  for (size_t i = 0; i < t.shape.size(); ++i) {
    if (indices[i] < 0 || indices[i] >= t.shape[i])
      throw dsl::EvalError("input '" + name + "': index " + std::to_string(indices[i]) + " on the " +
                           dsl::axisName(t.axes[i]) + " axis is outside [0, " + std::to_string(t.shape[i]) + ")");
    flat = flat * t.shape[i] + indices[i];
  }
  double v = t.values[size_t(flat)];
  switch (t.elem) {
  case dsl::ElemType::F32: return dsl::Value::ofFloat(v);
  case dsl::ElemType::Bool: return dsl::Value::ofBool(v != 0);
  default: return dsl::Value::ofInt(int64_t(v));
  }
}

bool InputFiles::range(const std::string &name, int64_t b, int64_t h, int64_t first, int64_t last, int64_t &lo,
                       int64_t &hi) const {
  int idx = program_.findInput(name);
  if (idx < 0 || !tensors_[idx].loaded)
    return false;
  const Tensor &t = tensors_[idx];
  // Iterate the token axis over [first, last]; other axes are fixed.
  std::vector<int64_t> index(t.shape.size(), 0);
  int tokenAxis = -1;
  for (size_t i = 0; i < t.axes.size(); ++i) {
    if (t.axes[i] == dsl::Axis::Batch)
      index[i] = b;
    else if (t.axes[i] == dsl::Axis::Head)
      index[i] = h;
    else
      tokenAxis = int(i);
    if (t.axes[i] != dsl::Axis::Token && (index[i] < 0 || index[i] >= t.shape[i]))
      return false;
  }
  if (tokenAxis >= 0) {
    first = std::max<int64_t>(first, 0);
    last = std::min<int64_t>(last, t.shape[tokenAxis] - 1);
  } else {
    first = last = 0;
  }
  if (first > last)
    return false;
  lo = INT64_MAX;
  hi = INT64_MIN;
  for (int64_t p = first; p <= last; ++p) {
    if (tokenAxis >= 0)
      index[tokenAxis] = p;
    int64_t flat = 0;
    for (size_t i = 0; i < t.shape.size(); ++i)
      flat = flat * t.shape[i] + index[i];
    int64_t v = int64_t(std::floor(t.values[size_t(flat)]));
    lo = std::min(lo, v);
    hi = std::max(hi, int64_t(std::ceil(t.values[size_t(flat)])));
  }
  return true;
}

} // namespace attnc

//===- Npy.h - Read and write NumPy .npy files ------------------*- C++ -*-===//
//
// The tensor exchange format of `attnc run` and the GPU tests: NumPy's .npy,
// versions 1.0, 2.0 and 3.0, C order only, little-endian. Supported dtypes:
//
//   <f2 (fp16)  <f4  <f8  <i4  <i8  |b1 (bool)  |u1  <u2 / <i2 (raw 16-bit)
//
// bf16 has no NumPy dtype; it travels as its raw 16 bits in a <u2 or <i2
// array (PyTorch: `t.view(torch.int16).numpy()`), and toFloat64() reads any
// 16-bit integer array as bf16. Every error is an NpyError whose message
// names the file and says what was expected and what was found.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace attnc::support {

/// A .npy problem: malformed, truncated, unsupported or of the wrong dtype.
struct NpyError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// The element types this reader and writer support.
enum class DType { F16, F32, F64, I32, I64, Bool, U8, U16, I16 };

/// The .npy descr string ("<f4", "|b1", ...).
const char *dtypeDescr(DType t);
/// Bytes per element.
size_t dtypeSize(DType t);
/// A short human name ("float32", "bf16-as-uint16", ...).
const char *dtypeName(DType t);

/// An n-dimensional array in C order, elements stored little-endian in `data`.
struct NpyArray {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;

  int64_t numel() const;
  bool isFloat() const; ///< F16 F32 F64, or U16/I16 read as bf16
  bool isInt() const;   ///< I32 I64 (and U8 / I16 / U16 as plain integers)

  /// Element values as doubles: f2/f4/f8, and <u2/<i2 as bf16 bits. Throws
  /// NpyError (naming `what`) for any other dtype.
  std::vector<double> toFloat64(const std::string &what) const;
  /// Element values as int64: <i4, <i8. Throws for any other dtype.
  std::vector<int64_t> toInt64(const std::string &what) const;
  /// Element values as bools: |b1, |u1 (non-zero is true). Throws otherwise.
  std::vector<uint8_t> toBool(const std::string &what) const;

  static NpyArray fromFloat64(std::vector<int64_t> shape, const std::vector<double> &v);
  static NpyArray fromFloat32(std::vector<int64_t> shape, const std::vector<double> &v);
  static NpyArray fromInt64(std::vector<int64_t> shape, const std::vector<int64_t> &v);
};

/// Formats a shape as "[2, 3, 4]".
std::string shapeString(const std::vector<int64_t> &shape);

/// Parses the bytes of a .npy file; `name` (usually the path) is used in
/// error messages.
NpyArray parseNpy(const std::string &bytes, const std::string &name);
/// Reads and parses a .npy file.
NpyArray readNpy(const std::string &path);
/// Serialises to .npy bytes (version 1.0, or 2.0 for a huge header).
std::string encodeNpy(const NpyArray &a);
/// Writes a .npy file atomically (see writeFileAtomic).
void writeNpy(const std::string &path, const NpyArray &a);

/// Reads a whole file; throws NpyError naming the path on failure.
std::string readFile(const std::string &path);

/// Writes `bytes` to `path` so that no half-written file ever exists under
/// that name: the data goes to a temporary file in the same directory, is
/// flushed, and is then renamed over `path`. Throws std::runtime_error.
void writeFileAtomic(const std::string &path, const std::string &bytes);

/// Writes several files all-or-nothing as far as the file system allows:
/// every temporary file is written first; only when all succeeded are they
/// renamed into place. On a failure no target file has been touched.
void writeFilesAtomic(const std::vector<std::pair<std::string, std::string>> &files);

} // namespace attnc::support

//===- Json.h - A small strict JSON reader and writer -----------*- C++ -*-===//
//
// Internal to libattnrt: the manifest (docs/runtime.md) is JSON, and the
// runtime must build with no external dependency. This is RFC 8259 JSON with
// no extensions: no comments, no trailing commas, no NaN/Infinity, UTF-8
// strings with \uXXXX escapes (surrogate pairs joined), duplicate object keys
// rejected, nesting limited to kMaxDepth. Integers without a fraction or an
// exponent are kept exactly as int64 (the manifest's sizes must not round).
// Every syntax error is a JsonError with a 1-based line and column.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace attnc::rt::json {

/// A syntax error at `line`:`column` (1-based; columns count bytes).
struct JsonError : std::runtime_error {
  JsonError(size_t line, size_t column, const std::string &msg)
      : std::runtime_error(msg), line(line), column(column) {}
  size_t line, column;
};

/// One JSON value. Objects keep their members in source order.
struct Value {
  enum class Kind { Null, Bool, Number, String, Array, Object };
  Kind kind = Kind::Null;
  bool boolean = false;
  double number = 0;
  bool isInteger = false; ///< written without fraction or exponent, fits int64
  int64_t integer = 0;    ///< valid when isInteger
  std::string string;
  std::vector<Value> array;
  std::vector<std::pair<std::string, Value>> object;

  /// The member named `key`, or nullptr (objects only).
  const Value *find(const std::string &key) const;

  static Value makeNull() { return Value(); }
  static Value makeBool(bool b);
  static Value makeInt(int64_t i);
  static Value makeNumber(double d);
  static Value makeString(std::string s);
  static Value makeArray(std::vector<Value> a = {});
  static Value makeObject();
  /// Appends a member to an object (no duplicate check).
  Value &add(std::string key, Value v);
};

/// "null", "a boolean", "a number", "a string", "an array", "an object".
const char *kindName(Value::Kind k);

constexpr int kMaxDepth = 64;

/// Parses a complete JSON text (surrounding whitespace allowed). Throws
/// JsonError.
Value parse(const std::string &text);

/// Serialises. `indent` < 0: compact on one line; otherwise pretty-printed
/// with that many spaces per level, and arrays of scalars on one line.
std::string write(const Value &v, int indent = 2);

/// A JSON string literal for `s` (with quotes and escapes).
std::string quote(const std::string &s);

} // namespace attnc::rt::json

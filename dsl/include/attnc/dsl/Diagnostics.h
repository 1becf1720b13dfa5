//===- Diagnostics.h - Located errors and warnings --------------*- C++ -*-===//
//
// User-facing diagnostics in the form
//   file:line:col: error: message
//     <the source line>
//     ^~~~~
// Internal invariants are asserts, never diagnostics. Long lines are shown as
// a window around the range; control and non-ASCII bytes are escaped.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "attnc/dsl/Ast.h"

#include <ostream>
#include <string>
#include <vector>

namespace attnc::dsl {

/// One source buffer and its name, with a line table for locating offsets.
class SourceFile {
public:
  SourceFile(std::string name, std::string text);
  const std::string &name() const { return name_; }
  const std::string &text() const { return text_; }
  /// 1-based line and column (in bytes) of a byte offset.
  std::pair<unsigned, unsigned> lineCol(uint32_t offset) const;
  /// The text of the 1-based line, without its newline.
  std::string_view line(unsigned line) const;

private:
  std::string name_;
  std::string text_;
  std::vector<uint32_t> lineStarts_;
};

enum class Severity { Error, Warning, Note };

struct Diagnostic {
  Severity severity;
  SourceRange range;
  std::string message;
  bool located = true; // false: about the command line, no source position
};

/// Collects diagnostics; renders them against a source file.
class DiagnosticEngine {
public:
  explicit DiagnosticEngine(const SourceFile &file) : file_(file) {}
  void error(SourceRange r, std::string msg);
  void warning(SourceRange r, std::string msg);
  void note(SourceRange r, std::string msg);
  /// An error with no source position (e.g. a bad -D override).
  void errorUnlocated(std::string msg);
  /// Stop recording after this many errors (a flood of errors helps nobody).
  static constexpr unsigned kMaxErrors = 50;

  unsigned errorCount() const { return errors_; }
  unsigned warningCount() const { return warnings_; }
  const std::vector<Diagnostic> &diagnostics() const { return diags_; }
  const SourceFile &file() const { return file_; }

  /// Prints every diagnostic in the order reported, then a summary line when
  /// there were errors.
  void print(std::ostream &os) const;
  /// Renders one diagnostic with its source line and caret.
  void render(std::ostream &os, const Diagnostic &d) const;

private:
  void add(Severity s, SourceRange r, std::string msg);
  const SourceFile &file_;
  std::vector<Diagnostic> diags_;
  unsigned errors_ = 0, warnings_ = 0;
  bool truncated_ = false;
};

/// The closest candidate to `name` by edit distance, or "" if none is close
/// enough to be a plausible misspelling.
std::string closestMatch(const std::string &name, const std::vector<std::string> &candidates);

} // namespace attnc::dsl

//===- Parser.h - Parse an .attn source into an AST -------------*- C++ -*-===//
//
// The grammar is written in Boost.Spirit X3 (Parser.cpp). Parsing recovers at
// statement boundaries, so independent syntax errors are all reported in one
// run. Inputs that would make a recursive-descent parser overflow its stack
// (deep nesting, long unary chains) are rejected with a located error first.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "attnc/dsl/Ast.h"
#include "attnc/dsl/Diagnostics.h"

namespace attnc::dsl {

/// Limits that keep any input, however malformed, fast and crash-free.
struct ParseLimits {
  unsigned maxNesting = 256;        ///< parentheses, brackets, calls, ?:
  unsigned maxExprNodes = 100000;   ///< nodes in one expression
};

/// Parses `file`; errors go to `diags`. The returned program holds every item
/// that parsed; when diags has errors the program must not be compiled.
Program parseProgram(const SourceFile &file, DiagnosticEngine &diags,
                     const ParseLimits &limits = {});

} // namespace attnc::dsl

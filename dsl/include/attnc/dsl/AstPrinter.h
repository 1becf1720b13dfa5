//===- AstPrinter.h - `attnc --emit=ast` and the check summary --*- C++ -*-===//
#pragma once

#include "attnc/dsl/Diagnostics.h"
#include "attnc/dsl/Sema.h"

#include <ostream>

namespace attnc::dsl {

/// Prints the checked program as an indented tree, one node a line, with
/// types and `line:col` locations (what `--emit=ast` shows).
void printAst(std::ostream &os, const CheckedProgram &p, const SourceFile &file);

/// Prints what a user wants to know at a glance: params, inputs, variants
/// and what each reads, models with their distinct variants and layer table.
void printSummary(std::ostream &os, const CheckedProgram &p, const SourceFile &file);

/// One-line rendering of an expression in source-like syntax.
std::string exprToString(const Expr &e);

} // namespace attnc::dsl

//===- Sema.h - Semantic analysis of an attention program -------*- C++ -*-===//
//
// Checks a parsed program and annotates it: resolves every name (did-you-mean
// on misses), types every expression (int/float/bool), checks inputs are
// indexed by their axes, evaluates params (with -D overrides), `topk(K)`,
// indexer settings, `scale`, and resolves each model into a layer table.
// Warns about masks that are constant false and unused params.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "attnc/dsl/Ast.h"
#include "attnc/dsl/Diagnostics.h"

#include <optional>
#include <string>
#include <vector>

namespace attnc::dsl {

/// A compile-time value.
struct Value {
  Type type = Type::Unknown;
  int64_t i = 0;
  double f = 0.0;
  bool b = false;
  static Value ofInt(int64_t v) { Value x; x.type = Type::Int; x.i = v; return x; }
  static Value ofFloat(double v) { Value x; x.type = Type::Float; x.f = v; return x; }
  static Value ofBool(bool v) { Value x; x.type = Type::Bool; x.b = v; return x; }
  /// Int or float as a double (bool is not numeric).
  double asDouble() const { return type == Type::Float ? f : double(i); }
  std::string str() const;
};

/// `-D name=value` from the command line or JIT options.
struct ParamOverride {
  std::string name;
  std::string value;
};

/// What sema learned about one attention variant.
struct VariantInfo {
  std::optional<double> scale;      ///< unset: 1/sqrt(head_dim)
  std::optional<int64_t> topk;      ///< set when the variant selects
  int64_t indexerHeads = 0, indexerDim = 0; ///< when selecting by indexer
  bool maskUsesHead = false;        ///< the mask reads h
  bool maskUsesBatch = false;       ///< the mask reads b or an input
  bool scoreUsesHead = false;
  std::vector<int> inputsUsed;      ///< indices into Program::inputs, sorted
  bool maskConstantFalse = false;   ///< every row is empty
};

/// A model resolved to its layer table.
struct ModelInfo {
  int64_t layers = 0;
  std::vector<int> layerVariant;    ///< layer -> index into Program::attentions
  std::vector<int> distinctVariants;///< in order of first use
};

/// A program that passed sema, with everything sema computed.
struct CheckedProgram {
  Program ast;
  std::vector<Value> params;        ///< final values, overrides applied
  std::vector<bool> paramOverridden;
  std::vector<VariantInfo> variants;///< parallel to ast.attentions
  std::vector<ModelInfo> models;    ///< parallel to ast.models

  int findVariant(const std::string &name) const;
  int findModel(const std::string &name) const;
  int findInput(const std::string &name) const;
};

/// Checks `program`; on success returns the checked program. Errors and
/// warnings go to `diags`; returns nullopt iff any error was reported.
std::optional<CheckedProgram> checkProgram(Program program, DiagnosticEngine &diags,
                                           const std::vector<ParamOverride> &overrides = {});

/// Parse + check in one step (what the driver, JIT and tests use).
std::optional<CheckedProgram> parseAndCheck(const SourceFile &file, DiagnosticEngine &diags,
                                            const std::vector<ParamOverride> &overrides = {});

} // namespace attnc::dsl

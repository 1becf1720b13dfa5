//===- CommandLine.h - The driver's command lines, parsed by CLI11 -*- C++ -*-===//
//
// The one place where the options of `attnc FILE ...` and `attnc run ...` are
// declared and parsed: each command builds a CLI::App (CLI11) in
// CommandLine.cpp, and `--help` is generated from those definitions. For both:
//   - every option taking a value accepts `--opt=value` and `--opt value`
//     (`-D NAME=VALUE` and `-DNAME=VALUE`, `-o FILE` and `-oFILE`);
//   - values are checked here: integers (64-bit, a clear error on anything
//     else), ranges, choices, NAME=VALUE forms, combinations of options;
//   - `attnc FILE` lets a repeated option's last value win (as compilers do,
//     so scripts can append overrides); `attnc run` refuses a repeat
//     ("--q given twice"). -D and --input are repeatable in both (one per name
//     in run).
// A bad command line is exit 2 with `attnc: error: ...` (`attnc run: error:
// ...`) and a pointer to --help; --help and --version exit 0.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "TileCommands.h"
#ifdef ATTNC_WITH_MLIR
#include "CodegenCommands.h"
#endif
#include "attnc/dsl/Sema.h"

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace attnc {

/// The driver's exit codes (README.md, docs/reference.md).
inline constexpr int kExitOk = 0, kExitInput = 1, kExitUsage = 2, kExitInternal = 3;

/// `attnc FILE [options]`.
struct CompileCommandOptions {
  std::string input;  ///< FILE, "-" for standard input
  std::string output; ///< -o; "" is the stage's default, "-" standard output
#ifdef ATTNC_WITH_MLIR
  std::string emit = "ptx";
  CodegenOptions codegen;
#else
  std::string emit = "check";
#endif
  bool mlirDebugInfo = false; ///< --mlir-print-debuginfo (MLIR builds)
  std::vector<dsl::ParamOverride> overrides;
  TileOptions tiles; ///< --emit=mask and --emit=tiles
};

/// `attnc run [--reference | --module K.ptx] FILE ...`.
struct RunCommandOptions {
  bool reference = false;
  std::string file;
  std::string module; ///< --module k.ptx: the GPU kernels to run (else compiled in-process)
  std::optional<std::string> variant, model;
  std::optional<int64_t> layer;
  std::string q, k, v, sinks, out, lse, indices;
  std::string gradOut, dq, dk, dv, dsinks; ///< --grad-out dO.npy and the gradients (reference only)
  std::string selection; ///< --selection idx.npy (the reference only): attend over these keys
  std::vector<std::string> indexer; ///< qI, w, kI
  std::vector<std::pair<std::string, std::string>> inputs;
  std::optional<int64_t> qOffset, kOffset;
  std::vector<dsl::ParamOverride> overrides;
  bool f64 = false;     ///< --dtype-out f64
  unsigned threads = 0; ///< 0: every core
};

/// Parses `attnc FILE ...` (argv[0] the program). Returns nullopt when the
/// command is to run, else the exit code it ends with: kExitOk after --help
/// or --version (printed to stdout), kExitUsage after a bad command line (the
/// message on stderr).
std::optional<int> parseCompileCommandLine(int argc, char **argv, CompileCommandOptions &options);

/// The same for `attnc run ...` (argv[0] is "run").
std::optional<int> parseRunCommandLine(int argc, char **argv, RunCommandOptions &options);

} // namespace attnc

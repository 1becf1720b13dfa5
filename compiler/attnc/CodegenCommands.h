//===- CodegenCommands.h - `--emit=tiled|llvm|ptx` ---------------*- C++ -*-===//
//
// The code generation stages of the driver (MLIR builds only):
//   tiled  the tile stage: the attn module plus one attn.tile.kernel per
//          variant, head dim and dtype (attn-tile-variants);
//   gpu    one gpu.func kernel each, after the MMA backend
//          (convert-attn-tile-to-gpu);
//   llvm   the kernels as LLVM IR (NVVM intrinsics);
//   ptx    the PTX module with its manifest (the default action).
//
//===----------------------------------------------------------------------===//
#pragma once

#ifdef ATTNC_WITH_MLIR
#include "attnc/dsl/Sema.h"

#include <ostream>
#include <string>
#include <vector>

namespace attnc {

struct CodegenOptions {
  std::string target = "sm_90a";
  std::vector<int64_t> headDims = {64, 128, 256};
  std::vector<std::string> dtypes = {"bf16", "fp16"};
  bool timing = false; ///< print per-stage times to stderr
  int64_t blockM = 0, blockN = 0; ///< --tile=MxN (tuning; 0: the defaults)
  int64_t ctasPerSm = 0;          ///< --ctas-per-sm=N (tuning; 0: the default)
  int64_t kvStages = 0;           ///< --kv-stages=N (tuning; 0: the backend's)
  int64_t persistent = -1;        ///< --persistent=on|off: 1|0 (experimental; -1: the backend's, off)
  int64_t overlap = -1;           ///< --overlap=on|off: 1|0 (-1: the backend's, on)
  bool backward = false;          ///< --backward=on: also each variant's gradient kernels (variant NAME.backward)
  /// --backend=NAME: the MMA backend (MmaBackend.h); "" is the target's
  /// default: wgmma on sm_90a, mma-sync on sm_80.
  std::string backend;
  std::string backendOrDefault() const { return !backend.empty() ? backend : target == "sm_90a" ? "wgmma" : "mma-sync"; }
  bool printIrAfterAll = false;   ///< --mlir-print-ir-after-all (to stderr)
  std::string crashReproducer;    ///< --mlir-pass-pipeline-crash-reproducer=FILE
};

/// Parses "64,128" / "bf16,fp16"; returns an error message or "".
std::string parseHeadDims(const std::string &text, std::vector<int64_t> &out);
std::string parseDtypes(const std::string &text, std::vector<std::string> &out);

/// Sets a tuning option by name, from its value as the driver's flag of the
/// same name takes it: "tile" (--tile=MxN), "ctas_per_sm", "kv_stages",
/// "persistent" (on|off), "overlap" (on|off), "backend" (mma-sync|wgmma), "backward" (on|off). Returns "" or what is
/// wrong with the value ("must be 2, 3 or 4, got '5'"), for the driver's
/// flags and the JIT's options alike; an unknown name is the caller's to
/// report (isTuningOption).
std::string setTuningOption(const std::string &name, const std::string &value, CodegenOptions &cg);
bool isTuningOption(const std::string &name);

/// Returns the exit code (0, 1 for a program the generator cannot compile,
/// 3 for an internal error).
int emitCode(std::ostream &out, std::ostream &err, const dsl::CheckedProgram &program, const dsl::SourceFile &file,
             const std::string &stage, const CodegenOptions &options);

} // namespace attnc
#endif

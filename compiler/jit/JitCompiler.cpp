//===- JitCompiler.cpp - attnc's pipeline as libattnrt's JIT compiler -----===//
//
// In builds with MLIR, libattnrt links this file: at load time it registers
// compileSourceToPtx() with the runtime (runtime/Jit.h), so attnc::compile(),
// attnrt_compile() and Python's attnc.compile() compile in process, through
// the disk cache. Options: `-D NAME=VALUE` param overrides, the target, and
// extra options `head_dims` ("64,128"), `dtypes` ("bf16,fp16") and the
// driver's tuning flags by name (`tile`, `ctas_per_sm`, `kv_stages`,
// `persistent`, `overlap`, `backend`: setTuningOption), all part of the
// cache key. Errors in the source become Error(Compile) carrying the
// located diagnostics.
//
//===----------------------------------------------------------------------===//
#include "CodegenCommands.h"

#include "../../runtime/Jit.h"
#include "attnc/Conversion/FlashKernel.h"
#include "attnc/Manifest.h"
#include "attnc/dsl/Sema.h"

#include <sstream>

namespace attnc {
namespace {

std::string compileSourceToPtx(const std::string &source, const CompileOptions &opts) {
  dsl::SourceFile file("<jit>", source);
  dsl::DiagnosticEngine diags(file);
  std::vector<dsl::ParamOverride> overrides;
  for (const auto &[name, value] : opts.defines)
    overrides.push_back({name, value});
  std::optional<dsl::CheckedProgram> program = dsl::parseAndCheck(file, diags, overrides);
  std::ostringstream messages;
  diags.print(messages);
  if (!program)
    throw Error(ErrorCode::Compile, "attnc: the source has errors:\n" + messages.str());

  CodegenOptions cg;
  if (opts.target != "sm_80" && opts.target != "sm_90a")
    throw Error(ErrorCode::Usage, "attnc: target must be sm_80 or sm_90a, got '" + opts.target + "'");
  cg.target = opts.target;
  for (const auto &[name, value] : opts.extra) {
    std::string problem;
    if (name == "head_dims")
      problem = parseHeadDims(value, cg.headDims);
    else if (name == "dtypes")
      problem = parseDtypes(value, cg.dtypes);
    else if (isTuningOption(name)) {
      if (std::string e = setTuningOption(name, value, cg); !e.empty())
        problem = "compile option " + name + " " + e;
    } else
      problem = "unknown compile option '" + name +
                "' (expected head_dims, dtypes, tile, ctas_per_sm, kv_stages, persistent, overlap or backend)";
    if (!problem.empty())
      throw Error(ErrorCode::Usage, "attnc: " + problem);
  }
  if (cg.backend == "wgmma" && cg.target != "sm_90a")
    throw Error(ErrorCode::Usage, "attnc: compile option backend=wgmma needs target sm_90a, got '" + cg.target + "'");
  std::ostringstream ptx, err;
  if (int rc = emitCode(ptx, err, *program, file, "ptx", cg))
    throw Error(ErrorCode::Compile, "attnc: code generation failed (exit " + std::to_string(rc) + "):\n" + err.str());
  return ptx.str();
}

/// Registers the compiler when libattnrt is loaded.
struct Registrar {
  Registrar() {
    rt::registerCompiler(compileSourceToPtx, std::string(ATTNC_VERSION) + "+mlir" + MLIR_VERSION_STRING + "+kernels" +
                                                 std::to_string(kKernelRevision));
  }
} registrar;

} // namespace
} // namespace attnc

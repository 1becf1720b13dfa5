//===- main.cpp - The attnc driver ----------------------------------------===//
//
//   attnc FILE [-o OUT] [--emit=check|ast|mask|attn|tiles] [-D name=value]... [stage options]
//   attnc run [--reference] FILE ...      (see RunCommand.cpp)
//
// Exit codes: 0 success, 1 errors in the input, 2 bad command line, 3 internal
// error (a bug in attnc; an exception that escapes a command lands here too).
//
//===----------------------------------------------------------------------===//
#include "RunCommand.h"
#include "CodegenCommands.h"
#include "TileCommands.h"

#include "attnc/dsl/AstPrinter.h"
#include "attnc/dsl/Sema.h"
#ifdef ATTNC_WITH_MLIR
#include "attnc/dsl/MLIRGen.h"
#endif

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

using namespace attnc::dsl;

namespace {

constexpr int kExitOk = 0, kExitInput = 1, kExitUsage = 2, kExitInternal = 3;

const char *kHelp = R"(attnc: compile attention masks and selection rules into fused GPU kernels

usage: attnc FILE [options]
       attnc run [--reference | --module K.ptx] FILE ...   (run a variant on .npy
                                  tensors, on the GPU or the reference; attnc run --help)

options:
  -o OUT            write the output to OUT ('-': standard output); by default
                    PTX goes to FILE's name with .ptx, other stages to stdout
  --emit=STAGE      what to produce:
                      check  parse and check; print a summary of params, inputs,
                             variants and each model's layer table (the default
                             in builds without MLIR)
                      ast    the checked syntax tree, with types and locations
)"
R"(                      mask   the exact element mask for --qlen/--klen (<= 4096)
                             as a grid: '#' may attend, '.' may not
)"
#ifdef ATTNC_WITH_MLIR
R"(                      attn   the attn dialect (MLIR), one attn.variant per variant
                      tiled  the tile stage: one attn.tile.kernel per variant,
                             head dim and dtype (target-neutral tile ops)
                      gpu    the kernels after the MMA backend: one gpu.func
                             each, in gpu/scf/nvgpu/nvvm ops
                      llvm   the kernels as LLVM IR
                      ptx    the PTX module with its manifest (the default)
                      tiles  the tile classification (empty/partial/full) for
                             --qlen/--klen, as --format=text|json|svg
  --mlir-print-debuginfo  with --emit=attn: print each op's loc("file":line:col)
  --mlir-print-ir-after-all  print the IR after every pass to standard error
  --mlir-pass-pipeline-crash-reproducer=FILE
                          when a pass fails, write the IR before it and the
                          pipeline to FILE (replay with attnc-opt --run-reproducer)
  --target=sm_80|sm_90a   the GPU to compile for (default sm_90a)
  --head-dims=64,128,256  head dims to specialise kernels for (default all three)
  --dtypes=bf16,fp16      element types (default both)
  --time-stages           print the time each compilation stage takes
  --backend=mma-sync|wgmma  the tensor-core path: warpgroup MMAs (wgmma, the
                          default on sm_90a) or mma.sync (sm_80's; on sm_90a
                          also the kernel of masks that read inputs at token
                          positions, such as documents)
  --tile=MxN              kernel tile (query rows x keys): 64x64, 64x32, 128x128,
                          128x64, 128x32 (tuning; default by head dim, mask and
                          backend; wgmma at 128 rows: warp specialised, TMA)
  --ctas-per-sm=N         CTAs an SM should hold, 1-4: caps ptxas's registers
                          at 65536 / (128 N) (tuning; default 4 for narrow bands
                          such as |q - k| <= 64, else 1: up to 255 registers)
)"
#endif
R"(  -D NAME=VALUE     override `param NAME` (int, float or bool, as declared)

options of --emit=mask and --emit=tiles:
  --qlen N --klen N        query and key lengths (required)
  --q-offset N             absolute position of the first query (default klen - qlen)
  --k-offset N             absolute position of the first key (default 0)
  --variant NAME           the variant to show (default: a model's distinct variants,
                           or every variant; --emit=mask needs exactly one)
  --layer I                the variant of layer I of the file's model
  --model NAME             the model, when the file has several (default: the first)
  --batch B --head H       the batch entry and query head (default 0)
  --input NAME=PATH        an input tensor: .npy, or text (one line per batch entry)
  --block-m M --block-n N  tile sizes, 16 to 256 (--emit=tiles; default 128)
  --format=text|json|svg   (--emit=tiles; default text)
  --rows                   JSON: each query tile's first and last non-empty key tile

  --help            show this help
  --version         show the version

exit codes:
  0  success (warnings may have been printed)
  1  errors in the input (reported as file:line:col: error: ...)
  2  bad command line
  3  internal error (a bug in attnc: please report it with the input)
)";

int usageError(const std::string &msg) {
  std::cerr << "attnc: error: " << msg << "\n(run 'attnc --help' for usage)\n";
  return kExitUsage;
}

/// `attnc FILE ...`: everything but `attnc run`.
int compileCommand(int argc, char **argv) {

#ifdef ATTNC_WITH_MLIR
  std::string input, output, emit = "ptx";
  attnc::CodegenOptions codegen;
#else
  std::string input, output, emit = "check";
#endif
  [[maybe_unused]] bool mlirDebugInfo = false; // --mlir-print-debuginfo (MLIR builds)
  std::vector<ParamOverride> overrides;
  attnc::TileOptions tileOptions;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char *flag) -> const char * {
      if (i + 1 >= argc)
        return nullptr;
      (void)flag;
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::cout << kHelp;
      return kExitOk;
    } else if (a == "--version") {
      std::cout << "attnc " << ATTNC_VERSION << "\n";
      return kExitOk;
    } else if (a == "-o") {
      const char *v = value("-o");
      if (!v)
        return usageError("-o needs a file name");
      output = v;
    } else if (a.rfind("--emit=", 0) == 0) {
      emit = a.substr(7);
#ifdef ATTNC_WITH_MLIR
      static const char *stages[] = {"check", "ast", "mask", "attn", "tiles", "tiled", "gpu", "llvm", "ptx"};
      if (std::find(std::begin(stages), std::end(stages), emit) == std::end(stages))
        return usageError("unknown --emit stage '" + emit +
                          "' (expected check, ast, mask, attn, tiles, tiled, gpu, llvm or ptx)");
    } else if (a == "--mlir-print-debuginfo") {
      mlirDebugInfo = true;
    } else if (a == "--mlir-print-ir-after-all") {
      codegen.printIrAfterAll = true;
    } else if (a.rfind("--mlir-pass-pipeline-crash-reproducer=", 0) == 0) {
      codegen.crashReproducer = a.substr(38);
      if (codegen.crashReproducer.empty())
        return usageError("--mlir-pass-pipeline-crash-reproducer needs a file name");
    } else if (a.rfind("--target=", 0) == 0 || a == "--target") {
      std::string t = a == "--target" ? (i + 1 < argc ? argv[++i] : "") : a.substr(9);
      if (t != "sm_80" && t != "sm_90a")
        return usageError("--target must be sm_80 or sm_90a, got '" + t + "'");
      codegen.target = t;
    } else if (a.rfind("--head-dims=", 0) == 0) {
      if (std::string e = attnc::parseHeadDims(a.substr(12), codegen.headDims); !e.empty())
        return usageError("--head-dims: " + e);
    } else if (a.rfind("--dtypes=", 0) == 0) {
      if (std::string e = attnc::parseDtypes(a.substr(9), codegen.dtypes); !e.empty())
        return usageError("--dtypes: " + e);
    } else if (a == "--time-stages") {
      codegen.timing = true;
    } else if (a.rfind("--tile=", 0) == 0) {
      std::string t = a.substr(7);
      if (t != "64x64" && t != "64x32" && t != "128x128" && t != "128x64" && t != "128x32")
        return usageError("--tile must be 64x64, 64x32, 128x128, 128x64 or 128x32, got '" + t + "'");
      codegen.blockM = std::stoll(t.substr(0, t.find('x')));
      codegen.blockN = std::stoll(t.substr(t.find('x') + 1));
    } else if (a.rfind("--ctas-per-sm=", 0) == 0) {
      std::string n = a.substr(14);
      if (n != "1" && n != "2" && n != "3" && n != "4")
        return usageError("--ctas-per-sm must be 1, 2, 3 or 4, got '" + n + "'");
      codegen.ctasPerSm = std::stoll(n);
    } else if (a.rfind("--backend=", 0) == 0) {
      codegen.backend = a.substr(10);
      if (codegen.backend != "mma-sync" && codegen.backend != "wgmma")
        return usageError("--backend must be mma-sync or wgmma, got '" + codegen.backend + "'");
#else
      if (emit == "attn" || emit == "tiles")
        return usageError("--emit=" + emit + " needs a build with MLIR (ATTNC_WITH_MLIR=ON)");
      if (emit != "check" && emit != "ast" && emit != "mask")
        return usageError("unknown --emit stage '" + emit + "' (expected check, ast or mask)");
#endif
    } else if (int64_t *slot = a == "--qlen" ? &tileOptions.qlen.emplace()
                               : a == "--klen" ? &tileOptions.klen.emplace()
                               : a == "--q-offset" ? &tileOptions.qOffset.emplace()
                               : a == "--k-offset" ? &tileOptions.kOffset.emplace()
                               : a == "--layer" ? &tileOptions.layer.emplace()
                               : a == "--block-m" ? &tileOptions.blockM
                               : a == "--block-n" ? &tileOptions.blockN
                               : a == "--batch" ? &tileOptions.batch
                               : a == "--head" ? &tileOptions.head
                                                : nullptr) {
      const char *v = value(a.c_str());
      char *end = nullptr;
      errno = 0;
      long long n = v ? std::strtoll(v, &end, 10) : 0;
      if (!v || *end || errno)
        return usageError(a + " needs an integer" + (v ? std::string(", got '") + v + "'" : std::string()));
      *slot = n;
    } else if (a == "--variant" || a == "--model") {
      const char *v = value(a.c_str());
      if (!v)
        return usageError(a + " needs a name");
      (a == "--model" ? tileOptions.model : tileOptions.variant) = v;
    } else if (a.rfind("--format=", 0) == 0) {
      tileOptions.format = a.substr(9);
    } else if (a == "--rows") {
      tileOptions.rows = true;
    } else if (a == "--input") {
      const char *v = value("--input");
      std::string spec = v ? v : "";
      size_t eq = spec.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
        return usageError("--input expects NAME=PATH, got '" + spec + "'");
      tileOptions.inputs.push_back({spec.substr(0, eq), spec.substr(eq + 1)});
    } else if (a == "-D" || (a.rfind("-D", 0) == 0 && a.size() > 2)) {
      std::string def = a.size() > 2 ? a.substr(2) : "";
      if (def.empty()) {
        const char *v = value("-D");
        if (!v)
          return usageError("-D needs NAME=VALUE");
        def = v;
      }
      size_t eq = def.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == def.size())
        return usageError("-D expects NAME=VALUE, got '" + def + "'");
      overrides.push_back({def.substr(0, eq), def.substr(eq + 1)});
    } else if (!a.empty() && a[0] == '-' && a != "-") {
      return usageError("unknown option '" + a + "'");
    } else if (input.empty()) {
      input = a;
    } else {
      return usageError("more than one input file ('" + input + "' and '" + a + "')");
    }
  }
  if (input.empty())
    return usageError("no input file");
#ifdef ATTNC_WITH_MLIR
  if (codegen.backend == "wgmma" && codegen.target != "sm_90a")
    return usageError("--backend=wgmma needs --target=sm_90a, got '" + codegen.target + "'");
#endif

  std::string text;
  {
    std::ifstream in;
    std::istream *is = &std::cin;
    if (input != "-") {
      in.open(input, std::ios::binary);
      if (!in) {
        std::cerr << "attnc: error: cannot open '" << input << "': " << std::strerror(errno) << "\n";
        return kExitInput;
      }
      is = &in;
    }
    std::ostringstream ss;
    ss << is->rdbuf();
    text = ss.str();
  }
  SourceFile file(input == "-" ? "<stdin>" : input, std::move(text));
  DiagnosticEngine diags(file);
  std::optional<CheckedProgram> program = parseAndCheck(file, diags, overrides);
  diags.print(std::cerr);
  if (!program)
    return kExitInput;

  std::ostringstream out;
  if (emit == "ast")
    printAst(out, *program, file);
  else if (emit == "mask") {
    if (int rc = attnc::emitMask(out, std::cerr, *program, tileOptions))
      return rc;
  }
#ifdef ATTNC_WITH_MLIR
  else if (emit == "tiled" || emit == "gpu" || emit == "llvm" || emit == "ptx") {
    if (int rc = attnc::emitCode(out, std::cerr, *program, file, emit, codegen))
      return rc;
  } else if (emit == "tiles") {
    if (int rc = attnc::emitTiles(out, std::cerr, *program, file, tileOptions))
      return rc;
  } else if (emit == "attn") {
    // MLIRGen built IR that does not verify: a bug.
    if (!emitAttn(out, std::cerr, *program, file, {mlirDebugInfo}))
      return kExitInternal;
  }
#endif
  else
    printSummary(out, *program, file);
  // PTX, the default action, goes to FILE's stem + ".ptx" unless -o says
  // otherwise (`-o -`: standard output); the text stages print by default.
  bool announce = false;
  if (emit == "ptx" && output.empty()) {
    std::string base = input == "-" ? "stdin.attn" : input.substr(input.find_last_of('/') + 1);
    size_t dot = base.rfind('.');
    output = (dot == std::string::npos || dot == 0 ? base : base.substr(0, dot)) + ".ptx";
    announce = true;
  }
  if (output.empty() || output == "-") {
    std::cout << out.str();
  } else {
    std::ofstream f(output, std::ios::binary);
    if (!(f << out.str())) {
      std::cerr << "attnc: error: cannot write '" << output << "'\n";
      return kExitInput;
    }
    if (announce)
      std::cerr << "attnc: wrote " << output << "\n";
  }
  return kExitOk;
}

} // namespace

int main(int argc, char **argv) {
  // An exception that escapes a command is a bug in attnc, never the
  // input's fault: exit 3 with its message rather than abort.
  try {
    if (argc >= 2 && std::strcmp(argv[1], "run") == 0)
      return runCommand(argc - 1, argv + 1);
    return compileCommand(argc, argv);
  } catch (const std::exception &e) {
    std::cerr << "attnc: internal error: " << e.what() << " (please report it with the input)\n";
  } catch (...) {
    std::cerr << "attnc: internal error: an unknown exception (please report it with the input)\n";
  }
  return kExitInternal;
}

//===- Driver.cpp - The attnc driver --------------------------------------===//
//
//   attnc FILE [-o OUT] [--emit=STAGE] [-D NAME=VALUE]... [options]
//   attnc run [--reference | --module K.ptx] FILE ...   (RunCommand.cpp)
//
// CommandLine.cpp declares and checks every option (`attnc --help`). This
// file reads FILE ('-': standard input), parses and checks it with the -D
// overrides and produces the stage --emit names:
//   check  a summary of params, inputs, variants and models (the default in
//          builds without MLIR);
//   ast    the checked syntax tree;
//   mask   the exact element mask (TileCommands.h);
// and in builds with MLIR:
//   attn   the attn dialect (MLIRGen.h);
//   tiles  the tile classification (TileCommands.h);
//   tiled, gpu, llvm, ptx  code generation (CodegenCommands.h); ptx, the
//          default, goes to FILE's stem + ".ptx" unless -o says otherwise.
// Every other stage prints to standard output unless -o names a file.
//
// Exit codes: 0 success, 1 errors in the input (or a file that cannot be
// read or written), 2 bad command line, 3 internal error (a bug in attnc; an
// exception that escapes either command lands here too).
//
// attnc::driverMain() is the whole driver: the attnc executable (main.cpp)
// and libattnrt.so's attnrt_cli_main() (CliMain.cpp, the Python wheel's
// `attnc` command) both call it.
//
//===----------------------------------------------------------------------===//
#include "Driver.h"
#include "CommandLine.h"
#include "RunCommand.h"
#include "CodegenCommands.h"
#include "TileCommands.h"

#include "attnc/dsl/AstPrinter.h"
#include "attnc/dsl/Sema.h"
#ifdef ATTNC_WITH_MLIR
#include "attnc/dsl/MLIRGen.h"
#endif

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

using namespace attnc::dsl;
using attnc::kExitInput, attnc::kExitInternal, attnc::kExitOk;

namespace {

/// `attnc FILE ...`: everything but `attnc run`.
int compileCommand(int argc, char **argv) {
  attnc::CompileCommandOptions o;
  if (std::optional<int> rc = attnc::parseCompileCommandLine(argc, argv, o))
    return *rc;
  const std::string &input = o.input, &emit = o.emit;
  std::string output = o.output;

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
  std::optional<CheckedProgram> program = parseAndCheck(file, diags, o.overrides);
  diags.print(std::cerr);
  if (!program)
    return kExitInput;

  std::ostringstream out;
  if (emit == "ast")
    printAst(out, *program, file);
  else if (emit == "mask") {
    if (int rc = attnc::emitMask(out, std::cerr, *program, o.tiles))
      return rc;
  }
#ifdef ATTNC_WITH_MLIR
  else if (emit == "tiled" || emit == "gpu" || emit == "llvm" || emit == "ptx") {
    if (int rc = attnc::emitCode(out, std::cerr, *program, file, emit, o.codegen))
      return rc;
  } else if (emit == "tiles") {
    if (int rc = attnc::emitTiles(out, std::cerr, *program, file, o.tiles))
      return rc;
  } else if (emit == "attn") {
    // MLIRGen built IR that does not verify: a bug.
    if (!emitAttn(out, std::cerr, *program, file, {o.mlirDebugInfo}))
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

int attnc::driverMain(int argc, char **argv) {
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

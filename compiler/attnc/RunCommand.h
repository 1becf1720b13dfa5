//===- RunCommand.h - `attnc run`: execute a variant on .npy tensors -*- C++ -*-===//
//
// The `run` subcommand of the driver: one attention variant of a .attn file
// on .npy tensors, with the float64 reference executor (`--reference`) or on
// the GPU through libattnrt (`--module K.ptx`, or the file compiled in
// process in builds with MLIR). docs/reference.md documents the command line
// (CommandLine.cpp parses it), the .npy conventions and the exit codes:
//   0 success; 1 bad input (source errors, shapes, dtypes, files, offsets);
//   2 bad command line; 3 internal error (a bug in attnc).
//
//===----------------------------------------------------------------------===//
#pragma once

/// Runs `attnc run ...`; argv[0] is "run". Returns the process exit code.
int runCommand(int argc, char **argv);

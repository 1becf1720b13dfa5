//===- RunCommand.h - `attnc run`: execute a variant on .npy tensors -*- C++ -*-===//
//
// The `run` subcommand of the driver. Today it runs the float64 reference
// executor (`--reference`); GPU execution is a later addition. docs/reference.md
// documents the command line, the .npy conventions and the exit codes:
//   0 success; 1 bad input (source errors, shapes, dtypes, files, offsets);
//   2 bad command line, or GPU execution requested (not available yet).
//
//===----------------------------------------------------------------------===//
#pragma once

/// Runs `attnc run ...`; argv[0] is "run". Returns the process exit code.
int runCommand(int argc, char **argv);

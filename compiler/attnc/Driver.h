//===- Driver.h - The attnc driver as a function ---------------*- C++ -*-===//
//
// The attnc command line (`attnc FILE ...`, `attnc run ...`) as one function,
// shared by the attnc executable (main.cpp) and libattnrt.so's C entry point
// attnrt_cli_main() (CliMain.cpp), which the Python package's `attnc` command
// calls.
//
//===----------------------------------------------------------------------===//
#pragma once

namespace attnc {

/// Runs the driver on a main()-style argument vector (argv[0] is the program
/// name) and returns its exit code (0 success, 1 errors in the input, 2 bad
/// command line, 3 internal error). Writes to std::cout and std::cerr.
int driverMain(int argc, char **argv);

} // namespace attnc

//===- CliMain.cpp - attnrt_cli_main(): the attnc driver in libattnrt.so --===//
//
// Linked into libattnrt.so in builds with MLIR (runtime/CMakeLists.txt) next
// to the JIT compiler: the C entry point of attnrt_cli.h, which the Python
// package's `attnc` command calls (python/attnc/cli.py).
//
//===----------------------------------------------------------------------===//
#include "attnc/attnrt_cli.h"

#include "Driver.h"

#include <cstdio>
#include <iostream>

extern "C" int attnrt_cli_main(int argc, char **argv) {
  int rc = attnc::driverMain(argc, argv);
  // The caller (Python) goes on running: everything written is out before
  // it prints or exits.
  std::cout.flush();
  std::cerr.flush();
  std::fflush(stdout);
  std::fflush(stderr);
  return rc;
}

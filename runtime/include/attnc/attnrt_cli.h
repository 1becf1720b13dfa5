/*===- attnrt_cli.h - The attnc command line inside libattnrt -----*- C -*-===//
 *
 * libattnrt.so of builds with MLIR (the one that carries the compiler, such
 * as the Python wheel's) also carries the attnc driver, so that a program
 * holding the library runs `attnc ...` without an attnc executable: the
 * Python package's `attnc` command (python/attnc/cli.py) calls it through
 * ctypes. Not in libattnrt.a, nor in builds with ATTNC_WITH_MLIR=OFF.
 *
 *===----------------------------------------------------------------------===*/
#ifndef ATTNC_ATTNRT_CLI_H
#define ATTNC_ATTNRT_CLI_H

#ifdef __cplusplus
extern "C" {
#endif

/* Runs the attnc driver on a main()-style argument vector (argv[0] is the
 * program's name, argv[argc] NULL) exactly as the attnc executable does:
 * `attnc FILE [options]`, `attnc run ...`, `attnc --help`, `attnc
 * --version`. Writes to the process's standard output and error (flushed
 * before it returns) and returns attnc's exit code: 0 success, 1 errors in
 * the input, 2 bad command line, 3 internal error. It may be called again
 * in the same process, but not from two threads at once. */
int attnrt_cli_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif

#endif /* ATTNC_ATTNRT_CLI_H */

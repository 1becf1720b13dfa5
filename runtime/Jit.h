//===- Jit.h - In-process compilation through the disk cache ----*- C++ -*-===//
//
// Internal to libattnrt. attnc::compile() (Runtime.h) needs the compiler
// pipeline, which exists only in MLIR builds. The pipeline plugs itself in
// with registerCompiler(); without it compile() fails with a clear
// Error(NoCompiler). compileToPtx() is the cache-aware core, usable with any
// CompileFn (the tests pass a fake compiler).
//
//===----------------------------------------------------------------------===//
#pragma once

#include "attnc/Runtime.h"

#include <functional>
#include <string>

namespace attnc::rt {

/// Compiles attnc source to PTX with an embedded manifest.
using CompileFn = std::function<std::string(const std::string &source, const CompileOptions &)>;

/// Installs the in-process compiler; `version` (e.g. attnc's version plus a
/// build id) is part of every cache key. An empty fn uninstalls it.
void registerCompiler(CompileFn fn, std::string version);

/// The registered compiler's version string (empty if none).
std::string registeredCompilerVersion();

/// The message of Error(NoCompiler).
extern const char *const kNoCompilerMessage;

/// The options that enter the cache key (defines as "D:NAME", extra as
/// "X:NAME"; the target is keyed separately).
std::map<std::string, std::string> keyedOptions(const CompileOptions &opts);

/// The PTX for `source`: from the cache when possible, else from `fn`
/// (stored afterwards). `hit` (optional) tells which. Compiler exceptions
/// that are not attnc::Error become Error(Compile).
std::string compileToPtx(const std::string &source, const CompileOptions &opts, const CompileFn &fn,
                         const std::string &compilerVersion, bool *hit = nullptr,
                         std::string *key = nullptr);

} // namespace attnc::rt

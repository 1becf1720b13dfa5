//===- Jit.cpp - attnc::compile(): in-process compilation with a cache ----===//
//
// See Jit.h. The registered compiler (if any) is called under the JIT
// cache's per-key lock; the resulting PTX is loaded like a file would be.
//
//===----------------------------------------------------------------------===//
#include "runtime/Jit.h"
#include "runtime/JitCache.h"

#include <chrono>
#include <mutex>

namespace attnc {

namespace rt {

#ifdef ATTNRT_WITH_MLIR
const char *const kNoCompilerMessage =
    "this build of libattnrt has no compiler (the attnc code generator has not registered "
    "itself); load a PTX file instead";
#else
const char *const kNoCompilerMessage =
    "this build of libattnrt has no compiler (built with ATTNC_WITH_MLIR=OFF); load a PTX file "
    "instead";
#endif

namespace {
struct Registry {
  std::mutex mu;
  CompileFn fn;
  std::string version;
};
Registry &registry() {
  static Registry *r = new Registry;
  return *r;
}
} // namespace

void registerCompiler(CompileFn fn, std::string version) {
  Registry &r = registry();
  std::lock_guard<std::mutex> g(r.mu);
  r.fn = std::move(fn);
  r.version = std::move(version);
}

std::string registeredCompilerVersion() {
  Registry &r = registry();
  std::lock_guard<std::mutex> g(r.mu);
  return r.version;
}

std::map<std::string, std::string> keyedOptions(const CompileOptions &opts) {
  std::map<std::string, std::string> m;
  for (const auto &[k, v] : opts.defines)
    m["D:" + k] = v;
  for (const auto &[k, v] : opts.extra)
    m["X:" + k] = v;
  return m;
}

std::string compileToPtx(const std::string &source, const CompileOptions &opts, const CompileFn &fn,
                         const std::string &compilerVersion, bool *hit, std::string *keyOut) {
  auto run = [&]() -> std::string {
    try {
      return fn(source, opts);
    } catch (const Error &) {
      throw;
    } catch (const std::exception &e) {
      throw Error(ErrorCode::Compile, std::string("compilation failed: ") + e.what());
    }
  };
  std::string key = cacheKey(source, keyedOptions(opts), opts.target, compilerVersion);
  if (keyOut)
    *keyOut = key;
  if (!opts.useCache) {
    if (hit)
      *hit = false;
    return run();
  }
  JitCache cache(opts.cacheDir.empty() ? defaultCacheDir() : opts.cacheDir);
  JitCache::Result r = cache.getOrCompute(key, run);
  if (hit)
    *hit = r.hit;
  return std::move(r.payload);
}

} // namespace rt

bool hasCompiler() {
  rt::Registry &r = rt::registry();
  std::lock_guard<std::mutex> g(r.mu);
  return bool(r.fn);
}

Module compile(const std::string &source, const CompileOptions &opts, CompileReport *report) {
  rt::CompileFn fn;
  std::string version;
  {
    rt::Registry &r = rt::registry();
    std::lock_guard<std::mutex> g(r.mu);
    fn = r.fn;
    version = r.version;
  }
  if (!fn)
    throw Error(ErrorCode::NoCompiler, rt::kNoCompilerMessage);
  using Clock = std::chrono::steady_clock;
  auto seconds = [](Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
  };
  std::string key;
  bool hit = false;
  Clock::time_point start = Clock::now();
  std::string ptx = rt::compileToPtx(source, opts, fn, version, &hit, &key);
  Clock::time_point compiled = Clock::now();
  Module m = Module::loadData(ptx, "", opts.load, "<jit " + key.substr(0, 16) + ">");
  if (report) {
    report->cacheUsed = opts.useCache;
    report->cacheHit = hit;
    report->key = key;
    report->cacheDir = opts.useCache ? (opts.cacheDir.empty() ? rt::defaultCacheDir() : opts.cacheDir) : "";
    report->compileSeconds = seconds(start, compiled);
    report->loadSeconds = seconds(compiled, Clock::now());
    report->ptxBytes = ptx.size();
  }
  return m;
}

} // namespace attnc

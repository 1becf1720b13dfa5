//===- bench_cache_hit.cpp - How long a JIT cache hit takes ---------------===//
//
//   attnrt_bench_cache_hit [PAYLOAD_BYTES] [LOOKUPS]
//
// A benchmark, not a test. Two measurements, each over LOOKUPS (default 1000)
// cache hits in a fresh cache directory, printing the median, p90 and max:
//  1. the cache alone: computing the SHA-256 key of a 4 KiB source with
//     options, reading an entry of PAYLOAD_BYTES (default 256 KiB, a large
//     multi-kernel PTX) and verifying its header, length and checksum;
//  2. attnc::compile() end to end on a hit, with a stand-in compiler that
//     returns the runtime's model test fixture (164 KiB of PTX): key, cache
//     read, manifest parse and PTX cross-check, and a lazy Module (no GPU).
// The target (docs/runtime.md) is a median under 1 ms.
//
//===----------------------------------------------------------------------===//
#include "runtime/Jit.h"
#include "runtime/JitCache.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

using namespace attnc::rt;

int main(int argc, char **argv) {
  size_t payloadBytes = argc > 1 ? size_t(std::atoll(argv[1])) : 256 * 1024;
  int lookups = argc > 2 ? std::atoi(argv[2]) : 1000;
  if (lookups < 1)
    lookups = 1;
  char tmpl[] = "/tmp/attnc-bench-cache-XXXXXX";
  if (!mkdtemp(tmpl)) {
    std::perror("mkdtemp");
    return 1;
  }
  std::string dir = tmpl;
  std::string source(4096, ' ');
  for (size_t i = 0; i < source.size(); ++i)
    source[i] = "attention local { mask q - k < window; }\n"[i % 42];
  std::map<std::string, std::string> options = {{"D:window", "4096"}, {"X:opt", "3"}};
  std::string payload(payloadBytes, '\0');
  for (size_t i = 0; i < payload.size(); ++i)
    payload[i] = char('a' + (i * 7919) % 26);

  JitCache cache(dir);
  std::string key = cacheKey(source, options, "sm_90a", "attnc 0.1.0");
  std::string err;
  if (!cache.store(key, payload, &err)) {
    std::fprintf(stderr, "store failed: %s\n", err.c_str());
    return 1;
  }
  std::vector<double> us;
  us.reserve(size_t(lookups));
  size_t check = 0;
  for (int i = 0; i < lookups; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    std::string k = cacheKey(source, options, "sm_90a", "attnc 0.1.0");
    JitCache::Result r = cache.getOrCompute(k, [] { return std::string("miss"); });
    auto t1 = std::chrono::steady_clock::now();
    if (!r.hit || r.payload.size() != payloadBytes) {
      std::fprintf(stderr, "lookup %d was not a hit\n", i);
      return 1;
    }
    check += r.payload.size();
    us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  auto summary = [](std::vector<double> &v) {
    std::sort(v.begin(), v.end());
    std::printf("  median %.1f us, p90 %.1f us, max %.1f us (%s the 1 ms target)\n", v[v.size() / 2],
                v[v.size() * 9 / 10], v.back(), v[v.size() / 2] < 1000.0 ? "under" : "OVER");
  };
  std::printf("cache hit (key + read + verify), payload %zu bytes, %d lookups:\n", payloadBytes,
              lookups);
  summary(us);
  (void)check;
  unlink(cache.entryPath(key).c_str());
  unlink(cache.lockPath(key).c_str());

  // 2. compile() on a hit.
  std::ifstream f(std::string(ATTNC_RUNTIME_TESTDATA) + "/naive_attention_model.ptx", std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  std::string ptx = ss.str();
  if (ptx.empty()) {
    std::fprintf(stderr, "cannot read the test fixture under %s\n", ATTNC_RUNTIME_TESTDATA);
    return 1;
  }
  int compiles = 0;
  registerCompiler(
      [&](const std::string &, const attnc::CompileOptions &) {
        ++compiles;
        return ptx;
      },
      "bench-compiler");
  attnc::CompileOptions opts;
  opts.cacheDir = dir;
  opts.defines["window"] = "4096";
  opts.load.lazy = true;
  attnc::compile(source, opts); // the miss that fills the cache
  us.clear();
  for (int i = 0; i < lookups; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    attnc::Module m = attnc::compile(source, opts);
    auto t1 = std::chrono::steady_clock::now();
    if (m.manifest().variants.size() != 2)
      return 1;
    us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  if (compiles != 1) {
    std::fprintf(stderr, "expected one compilation, got %d\n", compiles);
    return 1;
  }
  std::printf("attnc::compile() hit (key + read + verify + manifest + lazy module), %zu bytes of "
              "PTX, %d calls:\n",
              ptx.size(), lookups);
  summary(us);
  std::string key2 = cacheKey(source, keyedOptions(opts), opts.target, "bench-compiler");
  unlink(cache.entryPath(key2).c_str());
  unlink(cache.lockPath(key2).c_str());
  rmdir(dir.c_str());
  return 0;
}

//===- JitCache.h - The on-disk cache of JIT-compiled modules ---*- C++ -*-===//
//
// Internal to libattnrt (unittests/RuntimeTest.cpp tests it directly).
//
// Key: SHA-256 over a length-prefixed serialisation of (compiler version,
// target, sorted options including -D overrides, source) - see cacheKey().
// Directory: $ATTNC_CACHE_DIR, else $XDG_CACHE_HOME/attnc, else
// ~/.cache/attnc. Files, for a key K (64 hex digits):
//   K.entry   "ATTNC-JIT-CACHE 1 K <payload bytes> <checksum64 hex>\n" + payload
//   K.lock    an empty file flock()ed while K is being compiled
//   K.tmp.*   a write in progress (renamed over K.entry when complete)
// An entry is written to a temporary file in the same directory, fsync'ed and
// rename()d into place, so a reader sees either no entry or a whole one. An
// entry whose header does not match (wrong key, wrong length: truncated,
// wrong checksum: corrupted) is treated as absent and rewritten. Concurrent
// compiles of one key, from threads or processes, serialise on K.lock: the
// first compiles and stores, the others then find the entry. The cache is
// best-effort: when its directory cannot be written, results are computed
// and returned uncached.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>

namespace attnc::rt {

/// The cache key (64 lowercase hex digits). `options` holds every option
/// that can change the output (defines as "D:NAME", others as "X:NAME").
std::string cacheKey(const std::string &source, const std::map<std::string, std::string> &options,
                     const std::string &target, const std::string &compilerVersion);

/// The default cache directory ("" if none can be determined).
std::string defaultCacheDir();

/// The bytes of a cache entry file for `payload` under `key`.
std::string encodeEntry(const std::string &key, const std::string &payload);
/// The payload of an entry file's bytes, or nullopt when the header is
/// malformed, names another key, or the length or checksum does not match.
std::optional<std::string> decodeEntry(const std::string &key, const std::string &bytes);

class JitCache {
public:
  explicit JitCache(std::string dir) : dir_(std::move(dir)) {}
  const std::string &dir() const { return dir_; }
  std::string entryPath(const std::string &key) const;
  std::string lockPath(const std::string &key) const;

  /// The payload of a valid entry, or nullopt (absent, truncated, corrupt).
  std::optional<std::string> lookup(const std::string &key) const;

  /// Writes the entry atomically (temporary file, fsync, rename). Returns
  /// false and sets `error` when it cannot.
  bool store(const std::string &key, const std::string &payload, std::string *error = nullptr) const;

  struct Result {
    std::string payload;
    bool hit = false;     ///< found in the cache (no compute call)
    std::string warning;  ///< why the result could not be cached, if so
  };
  /// lookup(), else compute() under the key's lock and store(). Exceptions
  /// from compute() propagate (nothing is stored).
  Result getOrCompute(const std::string &key, const std::function<std::string()> &compute) const;

private:
  std::string dir_;
};

} // namespace attnc::rt

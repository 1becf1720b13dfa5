//===- JitCache.cpp - The on-disk cache of JIT-compiled modules -----------===//
//
// See JitCache.h for the key, the file layout and the guarantees. POSIX only
// (open/flock/mkstemp/fsync/rename), like the rest of the runtime.
//
//===----------------------------------------------------------------------===//
#include "runtime/JitCache.h"
#include "runtime/Sha256.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace attnc::rt {

namespace {

constexpr const char kMagic[] = "ATTNC-JIT-CACHE";
constexpr int kEntryVersion = 1;

void addField(std::string &s, const char *tag, const std::string &v) {
  s += tag;
  s += ' ';
  s += std::to_string(v.size());
  s += ':';
  s += v;
  s += '\n';
}

/// mkdir -p. Returns false with errno set on failure.
bool makeDirs(const std::string &path) {
  if (path.empty())
    return false;
  std::string cur;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string::npos)
      next = path.size();
    cur = path.substr(0, next);
    if (!cur.empty() && ::mkdir(cur.c_str(), 0777) != 0 && errno != EEXIST)
      return false;
    pos = next + 1;
  }
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool writeAll(int fd, const std::string &s) {
  size_t done = 0;
  while (done < s.size()) {
    ssize_t w = ::write(fd, s.data() + done, s.size() - done);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return false;
    done += size_t(w);
  }
  return true;
}

/// Closes and unlocks a lock file descriptor on scope exit.
struct LockGuard {
  int fd = -1;
  ~LockGuard() {
    if (fd >= 0) {
      ::flock(fd, LOCK_UN);
      ::close(fd);
    }
  }
};

} // namespace

std::string cacheKey(const std::string &source, const std::map<std::string, std::string> &options,
                     const std::string &target, const std::string &compilerVersion) {
  std::string s = "attnc-jit-key 1\n";
  addField(s, "compiler", compilerVersion);
  addField(s, "target", target);
  for (const auto &[k, v] : options) {
    addField(s, "option-name", k);
    addField(s, "option-value", v);
  }
  addField(s, "source", source);
  return sha256Hex(s);
}

std::string defaultCacheDir() {
  if (const char *d = std::getenv("ATTNC_CACHE_DIR"); d && *d)
    return d;
  if (const char *x = std::getenv("XDG_CACHE_HOME"); x && x[0] == '/')
    return std::string(x) + "/attnc";
  const char *home = std::getenv("HOME");
  if (!home || !*home) {
    if (struct passwd *pw = ::getpwuid(::getuid()))
      home = pw->pw_dir;
  }
  if (home && *home)
    return std::string(home) + "/.cache/attnc";
  return "";
}

std::string encodeEntry(const std::string &key, const std::string &payload) {
  char sum[17];
  std::snprintf(sum, sizeof sum, "%016" PRIx64, checksum64(payload.data(), payload.size()));
  std::string s = std::string(kMagic) + " " + std::to_string(kEntryVersion) + " " + key + " " +
                  std::to_string(payload.size()) + " " + sum + "\n";
  return s + payload;
}

namespace {

/// The parsed first line of an entry file.
struct Header {
  size_t headerBytes = 0; ///< including the newline
  uint64_t length = 0;
  std::string checksum;
};

/// Parses and checks the header at the start of `bytes` (which may be just
/// the first few hundred bytes of the file).
std::optional<Header> parseHeader(const std::string &key, const char *bytes, size_t n) {
  const char *nl = static_cast<const char *>(std::memchr(bytes, '\n', n < 256 ? n : 256));
  if (!nl)
    return std::nullopt;
  std::string header(bytes, size_t(nl - bytes));
  char magic[32] = {0}, k[80] = {0}, sum[24] = {0};
  int version = 0;
  unsigned long long len = 0;
  int consumed = 0;
  if (std::sscanf(header.c_str(), "%31s %d %79s %llu %23s%n", magic, &version, k, &len, sum,
                  &consumed) != 5 ||
      size_t(consumed) != header.size())
    return std::nullopt;
  if (std::strcmp(magic, kMagic) != 0 || version != kEntryVersion || key != k)
    return std::nullopt;
  Header h;
  h.headerBytes = header.size() + 1;
  h.length = len;
  h.checksum = sum;
  return h;
}

bool checksumMatches(const Header &h, const char *payload, size_t n) {
  char want[17];
  std::snprintf(want, sizeof want, "%016" PRIx64, checksum64(payload, n));
  return h.checksum == want;
}

} // namespace

std::optional<std::string> decodeEntry(const std::string &key, const std::string &bytes) {
  std::optional<Header> h = parseHeader(key, bytes.data(), bytes.size());
  if (!h || bytes.size() - h->headerBytes != h->length)
    return std::nullopt; // malformed, another key, truncated or trailing garbage
  if (!checksumMatches(*h, bytes.data() + h->headerBytes, size_t(h->length)))
    return std::nullopt;
  return bytes.substr(h->headerBytes);
}

std::string JitCache::entryPath(const std::string &key) const { return dir_ + "/" + key + ".entry"; }
std::string JitCache::lockPath(const std::string &key) const { return dir_ + "/" + key + ".lock"; }

std::optional<std::string> JitCache::lookup(const std::string &key) const {
  // Read the header, then the payload straight into the result: a cache hit
  // costs one open, two reads and one checksum pass, no extra copies.
  if (dir_.empty())
    return std::nullopt;
  int fd = ::open(entryPath(key).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return std::nullopt;
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0)
    return std::nullopt;
  char head[256];
  ssize_t got = ::pread(fd, head, sizeof head, 0);
  if (got <= 0)
    return std::nullopt;
  std::optional<Header> h = parseHeader(key, head, size_t(got));
  if (!h || uint64_t(st.st_size) != h->headerBytes + h->length)
    return std::nullopt;
  std::string payload(size_t(h->length), '\0');
  size_t done = 0;
  while (done < payload.size()) {
    ssize_t r = ::pread(fd, &payload[done], payload.size() - done, off_t(h->headerBytes + done));
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return std::nullopt;
    done += size_t(r);
  }
  if (!checksumMatches(*h, payload.data(), payload.size()))
    return std::nullopt;
  return payload;
}

bool JitCache::store(const std::string &key, const std::string &payload, std::string *error) const {
  auto failWith = [&](const std::string &what) {
    if (error)
      *error = what + ": " + std::strerror(errno);
    return false;
  };
  if (dir_.empty()) {
    errno = ENOENT;
    return failWith("no cache directory (set ATTNC_CACHE_DIR)");
  }
  if (!makeDirs(dir_))
    return failWith("cannot create the cache directory '" + dir_ + "'");
  std::string tmpl = dir_ + "/" + key + ".tmp.XXXXXX";
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  int fd = ::mkstemp(name.data());
  if (fd < 0)
    return failWith("cannot create a temporary file in '" + dir_ + "'");
  std::string tmp = name.data();
  std::string bytes = encodeEntry(key, payload);
  if (!writeAll(fd, bytes) || ::fsync(fd) != 0) {
    int e = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    errno = e;
    return failWith("cannot write '" + tmp + "'");
  }
  ::fchmod(fd, 0644);
  if (::close(fd) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    errno = e;
    return failWith("cannot write '" + tmp + "'");
  }
  if (::rename(tmp.c_str(), entryPath(key).c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    errno = e;
    return failWith("cannot rename '" + tmp + "' to '" + entryPath(key) + "'");
  }
  // Make the rename durable (best effort).
  int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return true;
}

JitCache::Result JitCache::getOrCompute(const std::string &key,
                                        const std::function<std::string()> &compute) const {
  Result r;
  if (auto p = lookup(key)) {
    r.payload = std::move(*p);
    r.hit = true;
    return r;
  }
  LockGuard lock;
  if (dir_.empty()) {
    r.warning = "no cache directory (set ATTNC_CACHE_DIR)";
  } else if (!makeDirs(dir_)) {
    r.warning = "cannot create the cache directory '" + dir_ + "': " + std::strerror(errno);
  } else {
    lock.fd = ::open(lockPath(key).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock.fd < 0) {
      r.warning = "cannot open the lock file '" + lockPath(key) + "': " + std::strerror(errno);
    } else {
      while (::flock(lock.fd, LOCK_EX) != 0 && errno == EINTR) {
      }
      // Another thread or process may have stored the entry while we waited.
      if (auto p = lookup(key)) {
        r.payload = std::move(*p);
        r.hit = true;
        return r;
      }
    }
  }
  r.payload = compute();
  if (r.warning.empty()) {
    std::string err;
    if (!store(key, r.payload, &err))
      r.warning = err;
  }
  return r;
}

} // namespace attnc::rt

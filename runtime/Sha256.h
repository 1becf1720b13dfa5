//===- Sha256.h - SHA-256 (FIPS 180-4) and a fast checksum ------*- C++ -*-===//
//
// Internal to libattnrt. SHA-256 names JIT cache entries (the key of a
// compilation is the hash of its source, options, target and compiler
// version); unittests/RuntimeTest.cpp checks it against the FIPS/NIST test
// vectors. checksum64() is a fast non-cryptographic 64-bit hash that guards
// cache entries against truncation and torn or corrupted writes without
// costing a SHA-256 pass over a large PTX on every cache hit.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace attnc::rt {

/// Incremental SHA-256.
class Sha256 {
public:
  Sha256();
  void update(const void *data, size_t n);
  void update(const std::string &s) { update(s.data(), s.size()); }
  /// The 32-byte digest; the object must not be updated afterwards.
  std::string digest();
  /// The digest as 64 lowercase hex digits.
  std::string hexDigest();

private:
  void block(const unsigned char *p);
  uint32_t h_[8];
  unsigned char buf_[64];
  size_t bufLen_ = 0;
  uint64_t total_ = 0;
};

/// SHA-256 of `s` as 64 lowercase hex digits.
std::string sha256Hex(const std::string &s);

/// A fast 64-bit checksum (not cryptographic), stable across platforms.
uint64_t checksum64(const void *data, size_t n);

} // namespace attnc::rt

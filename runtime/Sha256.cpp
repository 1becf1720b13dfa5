//===- Sha256.cpp - SHA-256 (FIPS 180-4) and a fast checksum --------------===//
//
// A plain, portable implementation of SHA-256 (see Sha256.h), and
// checksum64(): 8-byte words mixed with multiply/rotate steps (in the style
// of MurmurHash3's finaliser), which runs at several GB/s.
//
//===----------------------------------------------------------------------===//
#include "runtime/Sha256.h"

#include <cstring>

namespace attnc::rt {

namespace {

constexpr uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

} // namespace

Sha256::Sha256()
    : h_{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
         0x5be0cd19} {}

void Sha256::block(const unsigned char *p) {
  uint32_t w[64];
  for (int i = 0; i < 16; ++i)
    w[i] = uint32_t(p[4 * i]) << 24 | uint32_t(p[4 * i + 1]) << 16 | uint32_t(p[4 * i + 2]) << 8 |
           uint32_t(p[4 * i + 3]);
  for (int i = 16; i < 64; ++i) {
    uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6], h = h_[7];
  for (int i = 0; i < 64; ++i) {
    uint32_t S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
    uint32_t ch = (e & f) ^ (~e & g);
    uint32_t t1 = h + S1 + ch + K[i] + w[i];
    uint32_t S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
    uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
    uint32_t t2 = S0 + maj;
    h = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h_[0] += a;
  h_[1] += b;
  h_[2] += c;
  h_[3] += d;
  h_[4] += e;
  h_[5] += f;
  h_[6] += g;
  h_[7] += h;
}

void Sha256::update(const void *data, size_t n) {
  const unsigned char *p = static_cast<const unsigned char *>(data);
  total_ += n;
  if (bufLen_) {
    size_t take = n < 64 - bufLen_ ? n : 64 - bufLen_;
    std::memcpy(buf_ + bufLen_, p, take);
    bufLen_ += take;
    p += take;
    n -= take;
    if (bufLen_ == 64) {
      block(buf_);
      bufLen_ = 0;
    }
  }
  while (n >= 64) {
    block(p);
    p += 64;
    n -= 64;
  }
  if (n) {
    std::memcpy(buf_, p, n);
    bufLen_ = n;
  }
}

std::string Sha256::digest() {
  uint64_t bits = total_ * 8;
  unsigned char pad[72] = {0x80};
  size_t padLen = bufLen_ < 56 ? 56 - bufLen_ : 120 - bufLen_;
  update(pad, padLen);
  unsigned char len[8];
  for (int i = 0; i < 8; ++i)
    len[i] = static_cast<unsigned char>(bits >> (56 - 8 * i));
  update(len, 8);
  std::string out(32, '\0');
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 4; ++j)
      out[size_t(4 * i + j)] = char(h_[i] >> (24 - 8 * j));
  return out;
}

std::string Sha256::hexDigest() {
  static const char *digits = "0123456789abcdef";
  std::string d = digest(), out;
  for (unsigned char c : d) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string sha256Hex(const std::string &s) {
  Sha256 h;
  h.update(s);
  return h.hexDigest();
}

uint64_t checksum64(const void *data, size_t n) {
  const unsigned char *p = static_cast<const unsigned char *>(data);
  const uint64_t c1 = 0x87c37b91114253d5ull, c2 = 0x4cf5ad432745937full;
  auto rotl = [](uint64_t x, int r) { return (x << r) | (x >> (64 - r)); };
  auto mix = [&](uint64_t h, uint64_t w) {
    w *= c1;
    w = rotl(w, 31);
    w *= c2;
    h ^= w;
    return rotl(h, 27) * 5 + 0x52dce729;
  };
  auto load = [&](size_t i) {
    uint64_t w;
    std::memcpy(&w, p + i, 8); // little-endian hosts (the runtime's targets)
    return w;
  };
  // Four independent lanes over 32-byte blocks, then 8-byte words, then the tail.
  uint64_t h[4] = {0x9e3779b97f4a7c15ull ^ (uint64_t(n) * c2), 0x6a09e667f3bcc908ull,
                   0xbb67ae8584caa73bull, 0x3c6ef372fe94f82bull};
  size_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int l = 0; l < 4; ++l)
      h[l] = mix(h[l], load(i + 8 * size_t(l)));
  uint64_t r = h[0];
  for (int l = 1; l < 4; ++l)
    r = mix(r, h[l]);
  for (; i + 8 <= n; i += 8)
    r = mix(r, load(i));
  uint64_t tail = 0;
  for (size_t j = 0; i + j < n; ++j)
    tail |= uint64_t(p[i + j]) << (8 * j);
  r = mix(r, tail);
  r ^= r >> 33;
  r *= 0xff51afd7ed558ccdull;
  r ^= r >> 33;
  r *= 0xc4ceb9fe1a85ec53ull;
  r ^= r >> 33;
  return r;
}

} // namespace attnc::rt

//===- Half.h - fp16 and bf16 <-> float conversions -------------*- C++ -*-===//
//
// Bit-exact conversions between IEEE binary16 (fp16), bfloat16 (bf16) and
// binary32 (float). Widening (16 -> 32 bit) is exact. Narrowing (32 -> 16 bit)
// rounds to nearest, ties to even, as CUDA's __float2half_rn and
// __float2bfloat16_rn do; overflow goes to infinity, NaN stays NaN (quiet).
// Header-only and dependency-free, so the runtime and the tests can use it.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <cstdint>
#include <cstring>

namespace attnc::support {

inline uint32_t floatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

inline float bitsToFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

/// fp16 bits -> float, exact (subnormals, infinities and NaN payloads kept).
inline float halfToFloat(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) // inf / NaN
    return bitsToFloat(sign | 0x7f800000u | (mant << 13));
  if (exp == 0) {
    // Zero or subnormal: mant * 2^-24, exact in float.
    float v = float(mant) * (1.0f / 16777216.0f);
    return sign ? -v : v;
  }
  return bitsToFloat(sign | ((exp + 112u) << 23) | (mant << 13));
}

/// float -> fp16 bits, round to nearest even.
/// Worked example: 65519.0f -> 0x7bff (65504); 65520.0f is halfway to 65536
/// and 65504's mantissa is odd, so it ties to the even side: +inf (0x7c00).
inline uint16_t floatToHalf(float f) {
  uint32_t x = floatBits(f);
  uint16_t sign = uint16_t((x >> 16) & 0x8000u);
  x &= 0x7fffffffu;
  if (x >= 0x7f800000u) { // inf or NaN (keep NaN quiet and non-zero)
    if (x == 0x7f800000u)
      return sign | 0x7c00u;
    return uint16_t(sign | 0x7e00u | ((x >> 13) & 0x3ffu));
  }
  if (x >= 0x477ff000u) // >= 65520: rounds to infinity
    return sign | 0x7c00u;
  uint32_t exp = x >> 23;
  if (exp < 113) {
    // Result is subnormal (or zero) in fp16: count units of 2^-24.
    if (exp < 102) // value < 2^-25: rounds to zero
      return sign;
    uint32_t mant = (x & 0x7fffffu) | 0x800000u; // exp >= 102 > 0: normal float
    uint32_t shift = 126 - exp;                  // 14..24
    uint32_t q = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (q & 1u)))
      ++q; // may carry into the smallest normal (0x400): still correct
    return uint16_t(sign | q);
  }
  // Normal: rebias exponent (127 -> 15) and round 23 -> 10 mantissa bits.
  uint32_t r = x - (112u << 23);
  r += 0xfffu + ((r >> 13) & 1u);
  return uint16_t(sign | (r >> 13));
}

/// bf16 bits -> float, exact.
inline float bf16ToFloat(uint16_t b) { return bitsToFloat(uint32_t(b) << 16); }

/// float -> bf16 bits, round to nearest even; NaN stays a quiet NaN.
inline uint16_t floatToBf16(float f) {
  uint32_t x = floatBits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u)
    return uint16_t((x >> 16) | 0x40u);
  x += 0x7fffu + ((x >> 16) & 1u);
  return uint16_t(x >> 16);
}

} // namespace attnc::support

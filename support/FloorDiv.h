//===- FloorDiv.h - The language's integer division and modulo ---*- C++ -*-===//
//
// Floor division and modulo (the sign of the divisor), as the attention
// language defines `/` and `%` on ints; shared by the evaluator and the tile
// analysis so that both mean the same thing. b must not be 0.
//   -7 / 2 == -4 (C++ gives -3),  -7 % 2 == 1 (C++ gives -1).
//
//===----------------------------------------------------------------------===//
#pragma once

#include <cstdint>

namespace attnc::support {

inline int64_t floorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0)))
    --q;
  return q;
}

inline int64_t floorMod(int64_t a, int64_t b) {
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0)))
    r += b;
  return r;
}

} // namespace attnc::support

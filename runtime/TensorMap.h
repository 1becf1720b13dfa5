//===- TensorMap.h - TMA descriptors: rules, encoding, cache ---*- C++ -*-===//
//
// Internal to libattnrt. A kernel parameter of kind tensormap is a 128-byte
// CUtensorMap that the runtime builds at launch: checkArguments() computes
// its encode parameters (tensorMapParams(), Runtime.h, checked against the
// TMA rules of cuTensorMapEncodeTiled), the launch looks them up in its
// module's TensorMapCache and, on a miss, encodes them with the driver's
// cuTensorMapEncodeTiled. The box rules live here because the manifest
// reader checks them too (for every dtype of the variant).
//
//===----------------------------------------------------------------------===//
#pragma once

#include "attnc/Runtime.h"
#include "runtime/CudaDriver.h"

#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace attnc::rt {

/// The rank of every tensor a tensormap describes: [batch, heads, rows,
/// head_dim], given to the driver innermost first.
constexpr size_t kTensorMapRank = 4;
/// The largest box size along any axis (cuTensorMapEncodeTiled's limit).
constexpr int64_t kTensorMapMaxBox = 256;

/// What is wrong with a TMA box of `box` elements (outermost first) of
/// `dtype` under `swizzle`, or "" if nothing: 1 to kTensorMapRank entries,
/// each in [1, 256]; the inner extent (the last entry times the element
/// size) a multiple of 16 bytes and, when swizzled, at most the swizzle
/// span. For example
///   expected the box's inner extent (128 bf16 elements, 256 bytes) to be at most the 128b swizzle span (128 bytes)
std::string tensorMapBoxProblem(const std::vector<int64_t> &box, Swizzle swizzle, DType dtype);

/// CU_TENSOR_MAP_SWIZZLE_* of a manifest swizzle (NONE 0, 32B 1, 64B 2, 128B 3).
int cuSwizzle(Swizzle s);
/// The manifest spelling of a CU_TENSOR_MAP_SWIZZLE_* value ("none", "32b",
/// "64b", "128b"), or "?" for any other.
const char *cuSwizzleName(int cuSwizzle);

/// One line describing encode parameters, driver order (innermost first):
///   0x7f0000000000, bf16, dims [128, 100, 3, 2], strides [256, 25600, 76800] bytes, box [64, 64, 1, 1], swizzle 128b
std::string tensorMapSummary(const TensorMapParams &p);

/// Encodes `p` with the driver's cuTensorMapEncodeTiled; `what` says whose
/// descriptor it is, for messages. Throws Error(NoDriver) when there is no
/// driver or it has no cuTensorMapEncodeTiled (before CUDA 12.0), Error(Cuda)
/// when the call fails (the message includes tensorMapSummary(p)).
cu::CUtensorMap encodeTensorMap(const TensorMapParams &p, const std::string &what);

/// Encoded descriptors by their encode parameters (address, sizes, strides,
/// dtype, box, swizzle, ...; equal parameters give equal descriptors, and a
/// descriptor stays valid as long as its memory is at that address):
/// thread-safe, at most `capacity` entries, the oldest inserted evicted
/// first (a hit does not refresh an entry).
class TensorMapCache {
public:
  using Encode = std::function<cu::CUtensorMap(const TensorMapParams &)>;
  explicit TensorMapCache(size_t capacity = 256) : capacity_(capacity ? capacity : 1) {}

  /// The descriptor for `p`: cached, else `encode(p)` (under the lock, so
  /// concurrent misses on one key encode once), then cached. An encode that
  /// throws caches nothing; the exception propagates.
  cu::CUtensorMap get(const TensorMapParams &p, const Encode &encode);
  /// Whether `p` is cached (for tests).
  bool contains(const TensorMapParams &p) const;
  size_t size() const;
  size_t capacity() const { return capacity_; }

private:
  mutable std::mutex mu_;
  const size_t capacity_;
  std::map<TensorMapParams, cu::CUtensorMap> entries_;
  std::deque<TensorMapParams> order_; ///< keys of entries_, oldest first
};

} // namespace attnc::rt

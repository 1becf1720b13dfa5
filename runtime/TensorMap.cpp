//===- TensorMap.cpp - TMA descriptors: rules, encoding, cache -----------===//
//
// See TensorMap.h. The encode parameters themselves are computed by
// tensorMapParams() in ArgCheck.cpp, with the other argument checks.
//
//===----------------------------------------------------------------------===//
#include "runtime/TensorMap.h"

#include <cinttypes>
#include <cstdio>

namespace attnc::rt {

std::string tensorMapBoxProblem(const std::vector<int64_t> &box, Swizzle swizzle, DType dtype) {
  if (box.empty() || box.size() > kTensorMapRank)
    return "expected a box of 1 to " + std::to_string(kTensorMapRank) +
           " sizes (outermost first, e.g. [64, 128]), got " + std::to_string(box.size());
  for (int64_t b : box)
    if (b < 1 || b > kTensorMapMaxBox)
      return "expected box sizes in [1, " + std::to_string(kTensorMapMaxBox) + "], got " +
             std::to_string(b);
  const int64_t inner = box.back(), bytes = inner * int64_t(dtypeSize(dtype));
  const std::string extent = "the box's inner extent (" + std::to_string(inner) + " " +
                             dtypeName(dtype) + " elements, " + std::to_string(bytes) + " bytes)";
  if (bytes % 16 != 0)
    return "expected " + extent + " to be a multiple of 16 bytes";
  if (swizzle != Swizzle::None && bytes > swizzleBytes(swizzle))
    return "expected " + extent + " to be at most the " + swizzleName(swizzle) + " swizzle span (" +
           std::to_string(swizzleBytes(swizzle)) + " bytes)";
  return "";
}

int cuSwizzle(Swizzle s) {
  switch (s) {
  case Swizzle::None: return cu::CU_TENSOR_MAP_SWIZZLE_NONE;
  case Swizzle::B32: return cu::CU_TENSOR_MAP_SWIZZLE_32B;
  case Swizzle::B64: return cu::CU_TENSOR_MAP_SWIZZLE_64B;
  case Swizzle::B128: return cu::CU_TENSOR_MAP_SWIZZLE_128B;
  }
  return cu::CU_TENSOR_MAP_SWIZZLE_NONE;
}

const char *cuSwizzleName(int s) {
  for (Swizzle z : {Swizzle::None, Swizzle::B32, Swizzle::B64, Swizzle::B128})
    if (cuSwizzle(z) == s)
      return swizzleName(z);
  return "?";
}

namespace {

/// The attnc spelling of a CU_TENSOR_MAP_DATA_TYPE_* value tensorMapParams()
/// produces.
const char *cuDataTypeName(int t) {
  switch (t) {
  case cu::CU_TENSOR_MAP_DATA_TYPE_UINT8: return "u8";
  case cu::CU_TENSOR_MAP_DATA_TYPE_INT32: return "i32";
  case cu::CU_TENSOR_MAP_DATA_TYPE_INT64: return "i64";
  case cu::CU_TENSOR_MAP_DATA_TYPE_FLOAT16: return "fp16";
  case cu::CU_TENSOR_MAP_DATA_TYPE_FLOAT32: return "f32";
  case cu::CU_TENSOR_MAP_DATA_TYPE_BFLOAT16: return "bf16";
  }
  return "?";
}

template <typename A> std::string list(const A &a, size_t n) {
  std::string s = "[";
  for (size_t i = 0; i < n && i < a.size(); ++i)
    s += (i ? ", " : "") + std::to_string(a[i]);
  return s + "]";
}

} // namespace

std::string tensorMapSummary(const TensorMapParams &p) {
  char addr[32];
  std::snprintf(addr, sizeof addr, "0x%" PRIx64, p.globalAddress);
  const size_t rank = p.rank;
  return std::string(addr) + ", " + cuDataTypeName(p.dataType) + ", dims " + list(p.globalDim, rank) +
         ", strides " + list(p.globalStrides, rank ? rank - 1 : 0) + " bytes, box " +
         list(p.boxDim, rank) + ", swizzle " + cuSwizzleName(p.swizzle);
}

cu::CUtensorMap encodeTensorMap(const TensorMapParams &p, const std::string &what) {
  const cu::Driver &d = cu::driver();
  if (!d.cuTensorMapEncodeTiled)
    throw Error(ErrorCode::NoDriver,
                what + ": the CUDA driver '" + d.library + "' (version " + std::to_string(d.version) +
                    ") has no entry point 'cuTensorMapEncodeTiled', which TMA descriptors need "
                    "(CUDA 12.0 or newer)");
  cu::CUtensorMap m{};
  cu::check(d.cuTensorMapEncodeTiled(&m, p.dataType, p.rank,
                                     reinterpret_cast<void *>(uintptr_t(p.globalAddress)),
                                     p.globalDim.data(), p.globalStrides.data(), p.boxDim.data(),
                                     p.elementStrides.data(), p.interleave, p.swizzle,
                                     p.l2Promotion, p.oobFill),
            "cuTensorMapEncodeTiled",
            "encoding the TMA descriptor of " + what + " (" + tensorMapSummary(p) + ")");
  return m;
}

cu::CUtensorMap TensorMapCache::get(const TensorMapParams &p, const Encode &encode) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = entries_.find(p);
  if (it != entries_.end())
    return it->second;
  cu::CUtensorMap m = encode(p); // may throw: nothing changed yet
  if (entries_.size() >= capacity_) {
    entries_.erase(order_.front());
    order_.pop_front();
  }
  entries_.emplace(p, m);
  order_.push_back(p);
  return m;
}

bool TensorMapCache::contains(const TensorMapParams &p) const {
  std::lock_guard<std::mutex> g(mu_);
  return entries_.count(p) != 0;
}

size_t TensorMapCache::size() const {
  std::lock_guard<std::mutex> g(mu_);
  return entries_.size();
}

} // namespace attnc::rt

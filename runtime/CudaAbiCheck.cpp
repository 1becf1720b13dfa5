//===- CudaAbiCheck.cpp - Build-time check of CudaDriver.h against cuda.h -===//
//
// CudaDriver.h declares the few CUDA driver types, constants and function
// signatures the runtime uses, so that libattnrt builds without CUDA headers.
// Where cuda.h exists at build time, this file (compiled, never linked) checks
// with static_asserts that those declarations match it; a mismatch fails the
// build.
//
//===----------------------------------------------------------------------===//
#include <cuda.h>

#include "runtime/CudaDriver.h"

#include <type_traits>

namespace cu = attnc::rt::cu;

static_assert(cu::CUDA_SUCCESS == CUDA_SUCCESS, "");
static_assert(cu::CUDA_ERROR_DEINITIALIZED == CUDA_ERROR_DEINITIALIZED, "");
static_assert(cu::CUDA_ERROR_NOT_SUPPORTED == CUDA_ERROR_NOT_SUPPORTED, "");
static_assert(cu::CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X == CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X, "");
static_assert(cu::CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y == CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y, "");
static_assert(cu::CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z == CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z, "");
static_assert(cu::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR ==
                  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, "");
static_assert(cu::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR ==
                  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, "");
static_assert(cu::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN ==
                  CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, "");
static_assert(cu::CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK == CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, "");
static_assert(cu::CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES == CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, "");
static_assert(cu::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES ==
                  CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, "");
static_assert(cu::CU_JIT_INFO_LOG_BUFFER == CU_JIT_INFO_LOG_BUFFER, "");
static_assert(cu::CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES == CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES, "");
static_assert(cu::CU_JIT_ERROR_LOG_BUFFER == CU_JIT_ERROR_LOG_BUFFER, "");
static_assert(cu::CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES == CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES, "");
static_assert(sizeof(cu::CUdeviceptr) == sizeof(CUdeviceptr), "");
static_assert(sizeof(cu::CUdevice) == sizeof(CUdevice), "");
static_assert(sizeof(cu::CUresult) == sizeof(CUresult), "");
static_assert(sizeof(cu::CUjit_option) == sizeof(CUjit_option), "");
static_assert(sizeof(cu::CUtensorMap) == sizeof(CUtensorMap), "");
static_assert(alignof(cu::CUtensorMap) >= alignof(CUtensorMap), "at least cuda.h's alignment");
static_assert(cu::CU_TENSOR_MAP_DATA_TYPE_UINT8 == CU_TENSOR_MAP_DATA_TYPE_UINT8, "");
static_assert(cu::CU_TENSOR_MAP_DATA_TYPE_INT32 == CU_TENSOR_MAP_DATA_TYPE_INT32, "");
static_assert(cu::CU_TENSOR_MAP_DATA_TYPE_INT64 == CU_TENSOR_MAP_DATA_TYPE_INT64, "");
static_assert(cu::CU_TENSOR_MAP_DATA_TYPE_FLOAT16 == CU_TENSOR_MAP_DATA_TYPE_FLOAT16, "");
static_assert(cu::CU_TENSOR_MAP_DATA_TYPE_FLOAT32 == CU_TENSOR_MAP_DATA_TYPE_FLOAT32, "");
static_assert(cu::CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 == CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, "");
static_assert(cu::CU_TENSOR_MAP_INTERLEAVE_NONE == CU_TENSOR_MAP_INTERLEAVE_NONE, "");
static_assert(cu::CU_TENSOR_MAP_SWIZZLE_NONE == CU_TENSOR_MAP_SWIZZLE_NONE, "");
static_assert(cu::CU_TENSOR_MAP_SWIZZLE_32B == CU_TENSOR_MAP_SWIZZLE_32B, "");
static_assert(cu::CU_TENSOR_MAP_SWIZZLE_64B == CU_TENSOR_MAP_SWIZZLE_64B, "");
static_assert(cu::CU_TENSOR_MAP_SWIZZLE_128B == CU_TENSOR_MAP_SWIZZLE_128B, "");
static_assert(cu::CU_TENSOR_MAP_L2_PROMOTION_L2_128B == CU_TENSOR_MAP_L2_PROMOTION_L2_128B, "");
static_assert(cu::CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE == CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE, "");

// Each function pointer must have the signature of the cuda.h function (with
// the runtime's stand-in types replaced by cuda.h's).
template <typename T> struct Map { using type = T; };
template <> struct Map<cu::CUcontext> { using type = CUcontext; };
template <> struct Map<cu::CUcontext *> { using type = CUcontext *; };
template <> struct Map<cu::CUmodule> { using type = CUmodule; };
template <> struct Map<cu::CUmodule *> { using type = CUmodule *; };
template <> struct Map<cu::CUfunction> { using type = CUfunction; };
template <> struct Map<cu::CUfunction *> { using type = CUfunction *; };
template <> struct Map<cu::CUstream> { using type = CUstream; };
template <> struct Map<cu::CUtensorMap *> { using type = CUtensorMap *; };
template <typename F> struct Sig;
template <typename R, typename... A> struct Sig<R (*)(A...)> {
  using type = CUresult (*)(typename Map<A>::type...);
};
template <typename Ours, typename Theirs> constexpr bool sameSignature() {
  return std::is_same<typename Sig<Ours>::type, Theirs>::value;
}
// Functions with enum parameters (CUdevice_attribute, CUfunction_attribute,
// CUjit_option, CUresult) are declared with int in CudaDriver.h and are
// checked through the constants above instead.
#define ATTNC_SAME(field, fn)                                                                      \
  static_assert(sameSignature<decltype(cu::Driver::field), decltype(&fn)>(), #fn)
ATTNC_SAME(cuInit, cuInit);
ATTNC_SAME(cuDriverGetVersion, cuDriverGetVersion);
ATTNC_SAME(cuDeviceGetCount, cuDeviceGetCount);
ATTNC_SAME(cuDevicePrimaryCtxRetain, cuDevicePrimaryCtxRetain);
ATTNC_SAME(cuCtxGetCurrent, cuCtxGetCurrent);
ATTNC_SAME(cuCtxSetCurrent, cuCtxSetCurrent);
ATTNC_SAME(cuCtxGetDevice, cuCtxGetDevice);
ATTNC_SAME(cuCtxPushCurrent, cuCtxPushCurrent_v2);
ATTNC_SAME(cuCtxPopCurrent, cuCtxPopCurrent_v2);
ATTNC_SAME(cuModuleUnload, cuModuleUnload);
ATTNC_SAME(cuModuleGetFunction, cuModuleGetFunction);
ATTNC_SAME(cuLaunchKernel, cuLaunchKernel);
ATTNC_SAME(cuStreamSynchronize, cuStreamSynchronize);
ATTNC_SAME(cuCtxSynchronize, cuCtxSynchronize);
ATTNC_SAME(cuMemAlloc, cuMemAlloc_v2);
ATTNC_SAME(cuMemFree, cuMemFree_v2);
ATTNC_SAME(cuMemcpyHtoD, cuMemcpyHtoD_v2);
ATTNC_SAME(cuMemcpyDtoH, cuMemcpyDtoH_v2);
ATTNC_SAME(cuMemsetD8, cuMemsetD8_v2);
ATTNC_SAME(cuMemAllocAsync, cuMemAllocAsync);
ATTNC_SAME(cuMemFreeAsync, cuMemFreeAsync);
#undef ATTNC_SAME

// cuTensorMapEncodeTiled's enum parameters are ints here: compare the
// signature with them mapped.
using EncodeTiled = CUresult (*)(CUtensorMap *, int, cuuint32_t, void *, const cuuint64_t *,
                                 const cuuint64_t *, const cuuint32_t *, const cuuint32_t *, int,
                                 int, int, int);
static_assert(std::is_same<Sig<decltype(cu::Driver::cuTensorMapEncodeTiled)>::type, EncodeTiled>::value,
              "cuTensorMapEncodeTiled");
static_assert(sizeof(CUtensorMapDataType) == sizeof(int) && sizeof(CUtensorMapSwizzle) == sizeof(int),
              "the enum parameters of cuTensorMapEncodeTiled are passed as int");

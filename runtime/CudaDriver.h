//===- CudaDriver.h - The CUDA driver API, loaded with dlopen ---*- C++ -*-===//
//
// Internal to libattnrt. The runtime has no link-time CUDA dependency: the
// driver (libcuda.so.1, or the file named by ATTNC_CUDA_DRIVER) is opened with
// dlopen on first use and the few cu* entry points it needs are resolved by
// name (cuTensorMapEncodeTiled optionally: drivers before CUDA 12.0 lack
// it; so, optionally, the stream-ordered allocator's cuMemAllocAsync and
// cuMemFreeAsync, CUDA 11.2+). The types and constants below are declared here, in their own
// namespace, so the runtime builds on machines without CUDA headers
// (runtime/CudaAbiCheck.cpp checks them against cuda.h where it exists).
// Every call goes through check(), which turns a failure into an
// attnc::Error carrying the CUDA error name, its description and what was
// being done.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "attnc/Manifest.h"

#include <cstdint>
#include <string>

namespace attnc::rt::cu {

using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
struct CUctx_st;
using CUcontext = CUctx_st *;
struct CUmod_st;
using CUmodule = CUmod_st *;
struct CUfunc_st;
using CUfunction = CUfunc_st *;
struct CUstream_st;
using CUstream = CUstream_st *;
using CUjit_option = int;
using CUfunction_attribute = int;
using CUdevice_attribute = int;
using cuuint32_t = uint32_t;
using cuuint64_t = uint64_t;

/// A TMA descriptor (cuda.h's CUtensorMap: 16 opaque 64-bit words). The
/// driver needs it 64-byte aligned; cuda.h declares 64 (CUDA 12) or 128
/// (CUDA 13) bytes, so this takes the larger.
struct alignas(128) CUtensorMap {
  cuuint64_t opaque[16];
};
static_assert(sizeof(CUtensorMap) == 128, "a CUtensorMap is 128 bytes");

constexpr CUresult CUDA_SUCCESS = 0;
constexpr CUresult CUDA_ERROR_DEINITIALIZED = 4;
constexpr CUresult CUDA_ERROR_NOT_SUPPORTED = 801;

constexpr CUdevice_attribute CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X = 5;
constexpr CUdevice_attribute CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y = 6;
constexpr CUdevice_attribute CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z = 7;
constexpr CUdevice_attribute CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
constexpr CUdevice_attribute CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
constexpr CUdevice_attribute CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
constexpr CUdevice_attribute CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97;

constexpr CUfunction_attribute CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 0;
constexpr CUfunction_attribute CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES = 1;
constexpr CUfunction_attribute CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;

constexpr CUjit_option CU_JIT_INFO_LOG_BUFFER = 3;
constexpr CUjit_option CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES = 4;
constexpr CUjit_option CU_JIT_ERROR_LOG_BUFFER = 5;
constexpr CUjit_option CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6;

// CUtensorMapDataType, CUtensorMapInterleave, CUtensorMapSwizzle,
// CUtensorMapL2promotion, CUtensorMapFloatOOBfill (the values used).
constexpr int CU_TENSOR_MAP_DATA_TYPE_UINT8 = 0;
constexpr int CU_TENSOR_MAP_DATA_TYPE_INT32 = 3;
constexpr int CU_TENSOR_MAP_DATA_TYPE_INT64 = 5;
constexpr int CU_TENSOR_MAP_DATA_TYPE_FLOAT16 = 6;
constexpr int CU_TENSOR_MAP_DATA_TYPE_FLOAT32 = 7;
constexpr int CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 = 9;
constexpr int CU_TENSOR_MAP_INTERLEAVE_NONE = 0;
constexpr int CU_TENSOR_MAP_SWIZZLE_NONE = 0;
constexpr int CU_TENSOR_MAP_SWIZZLE_32B = 1;
constexpr int CU_TENSOR_MAP_SWIZZLE_64B = 2;
constexpr int CU_TENSOR_MAP_SWIZZLE_128B = 3;
constexpr int CU_TENSOR_MAP_L2_PROMOTION_L2_128B = 2;
constexpr int CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE = 0;

/// The resolved entry points (the _v2 names where cuda.h maps to them).
struct Driver {
  std::string library; ///< what was dlopen'ed
  int version = 0;     ///< cuDriverGetVersion
  CUresult (*cuInit)(unsigned);
  CUresult (*cuDriverGetVersion)(int *);
  CUresult (*cuGetErrorName)(CUresult, const char **);
  CUresult (*cuGetErrorString)(CUresult, const char **);
  CUresult (*cuDeviceGet)(CUdevice *, int);
  CUresult (*cuDeviceGetCount)(int *);
  CUresult (*cuDeviceGetName)(char *, int, CUdevice);
  CUresult (*cuDeviceGetAttribute)(int *, CUdevice_attribute, CUdevice);
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *, CUdevice);
  CUresult (*cuCtxGetCurrent)(CUcontext *);
  CUresult (*cuCtxSetCurrent)(CUcontext);
  CUresult (*cuCtxGetDevice)(CUdevice *);
  CUresult (*cuCtxPushCurrent)(CUcontext);
  CUresult (*cuCtxPopCurrent)(CUcontext *);
  CUresult (*cuModuleLoadDataEx)(CUmodule *, const void *, unsigned, CUjit_option *, void **);
  CUresult (*cuModuleUnload)(CUmodule);
  CUresult (*cuModuleGetFunction)(CUfunction *, CUmodule, const char *);
  CUresult (*cuFuncGetAttribute)(int *, CUfunction_attribute, CUfunction);
  CUresult (*cuFuncSetAttribute)(CUfunction, CUfunction_attribute, int);
  CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned,
                             unsigned, unsigned, CUstream, void **, void **);
  CUresult (*cuStreamSynchronize)(CUstream);
  CUresult (*cuCtxSynchronize)();
  CUresult (*cuMemAlloc)(CUdeviceptr *, size_t);
  CUresult (*cuMemFree)(CUdeviceptr);
  CUresult (*cuMemcpyHtoD)(CUdeviceptr, const void *, size_t);
  CUresult (*cuMemcpyDtoH)(void *, CUdeviceptr, size_t);
  CUresult (*cuMemsetD8)(CUdeviceptr, unsigned char, size_t);
  /// Optional (CUDA 12.0+): nullptr when the driver lacks it.
  CUresult (*cuTensorMapEncodeTiled)(CUtensorMap *, int, cuuint32_t, void *, const cuuint64_t *,
                                     const cuuint64_t *, const cuuint32_t *, const cuuint32_t *,
                                     int, int, int, int) = nullptr;
  /// Optional (CUDA 11.2+, the stream-ordered allocator): nullptr when the
  /// driver lacks them; Kernel::launch then allocates a workspace with
  /// cuMemAlloc and frees it after a cuStreamSynchronize.
  CUresult (*cuMemAllocAsync)(CUdeviceptr *, size_t, CUstream) = nullptr;
  CUresult (*cuMemFreeAsync)(CUdeviceptr, CUstream) = nullptr;
};

/// The driver, loaded and initialised (cuInit) on first use, thread-safely.
/// Throws Error(NoDriver) when the library cannot be opened or lacks an entry
/// point ("no CUDA driver found: ..."), Error(Cuda) when cuInit fails.
const Driver &driver();

/// The library name dlopen'ed by driver(): $ATTNC_CUDA_DRIVER if set and
/// non-empty, else "libcuda.so.1".
std::string driverLibraryName();

/// Forgets a loaded (or failed) driver so that the next driver() call tries
/// again, with `library` instead of the default when non-empty. For tests.
void resetDriverForTesting(const std::string &library = "");

/// "CUDA_ERROR_INVALID_VALUE (invalid argument)", from the driver when it is
/// loaded, else "CUDA error <n>".
std::string errorName(CUresult r);

/// Throws Error(Cuda, "<what>: <cuFunction> failed with CUDA_ERROR_X (...)")
/// when r != CUDA_SUCCESS.
void check(CUresult r, const char *call, const std::string &what);

/// The context current on this thread; if there is none, device
/// $ATTNC_DEVICE (default 0)'s primary context, retained and made current.
CUcontext ensureContext();

/// Information about the device of the current context (queried each call).
struct DeviceInfo {
  CUdevice device = 0;
  std::string name;
  int ccMajor = 0, ccMinor = 0;
  int maxSharedOptin = 0;
  int maxGrid[3] = {0, 0, 0};
  int smCount = 0; ///< streaming multiprocessors (a persistent kernel's CTAs)
};
DeviceInfo currentDeviceInfo();

} // namespace attnc::rt::cu

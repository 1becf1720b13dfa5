//===- CudaDriver.cpp - dlopen the CUDA driver and resolve cu* ------------===//
//
// See CudaDriver.h. The driver is opened once per process (or again after
// resetDriverForTesting); a failure is remembered so that every later call
// reports the same clear error without retrying dlopen.
//
//===----------------------------------------------------------------------===//
#include "runtime/CudaDriver.h"

#include <dlfcn.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <vector>

namespace attnc::rt::cu {

namespace {

struct State {
  std::mutex mu;
  std::atomic<const Driver *> loaded{nullptr};
  bool failed = false;
  ErrorCode failCode = ErrorCode::NoDriver;
  std::string failMessage;
  std::string overrideLibrary;
  // Drivers are never freed: callers may hold references to them.
  std::vector<std::unique_ptr<Driver>> all;
};

State &state() {
  static State *s = new State; // never destroyed: used from static destructors
  return *s;
}

/// Names of the errors cuInit can return, for when the driver cannot name
/// them itself (a stub library's cuGetErrorName fails too).
const char *fallbackErrorName(CUresult r) {
  switch (r) {
  case 3: return "CUDA_ERROR_NOT_INITIALIZED (initialisation failed)";
  case 34: return "CUDA_ERROR_STUB_LIBRARY (this is the toolkit's stub libcuda.so, not a real driver)";
  case 35: return "CUDA_ERROR_INSUFFICIENT_DRIVER (the driver is older than the CUDA version required)";
  case 46: return "CUDA_ERROR_DEVICE_UNAVAILABLE (the devices are busy or unavailable)";
  case 100: return "CUDA_ERROR_NO_DEVICE (no CUDA-capable device is detected)";
  case 304: return "CUDA_ERROR_OPERATING_SYSTEM (an OS call failed)";
  case 800: return "CUDA_ERROR_NOT_PERMITTED";
  case 802: return "CUDA_ERROR_SYSTEM_NOT_READY (the driver's system components are not ready)";
  case 803: return "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH (the kernel driver and libcuda versions differ)";
  case 804: return "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE";
  case 999: return "CUDA_ERROR_UNKNOWN";
  }
  return nullptr;
}

template <typename F> bool resolve(void *h, const char *name, F &fn) {
  fn = reinterpret_cast<F>(dlsym(h, name));
  return fn != nullptr;
}

std::unique_ptr<Driver> open(const std::string &lib) {
  void *h = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char *e = dlerror();
    throw Error(ErrorCode::NoDriver,
                "no CUDA driver found: cannot load '" + lib + "' (" + (e ? e : "unknown error") +
                    "). Loading and launching kernels needs an NVIDIA GPU with its driver; "
                    "argument checking works without one. Set ATTNC_CUDA_DRIVER to the path of "
                    "libcuda.so.1 if it is installed in an unusual place.");
  }
  auto d = std::make_unique<Driver>();
  d->library = lib;
  const char *missing = nullptr;
#define ATTNC_RESOLVE(field, symbol)                                                              \
  if (!missing && !resolve(h, symbol, d->field))                                                  \
    missing = symbol;
  ATTNC_RESOLVE(cuInit, "cuInit")
  ATTNC_RESOLVE(cuDriverGetVersion, "cuDriverGetVersion")
  ATTNC_RESOLVE(cuGetErrorName, "cuGetErrorName")
  ATTNC_RESOLVE(cuGetErrorString, "cuGetErrorString")
  ATTNC_RESOLVE(cuDeviceGet, "cuDeviceGet")
  ATTNC_RESOLVE(cuDeviceGetCount, "cuDeviceGetCount")
  ATTNC_RESOLVE(cuDeviceGetName, "cuDeviceGetName")
  ATTNC_RESOLVE(cuDeviceGetAttribute, "cuDeviceGetAttribute")
  ATTNC_RESOLVE(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain")
  ATTNC_RESOLVE(cuCtxGetCurrent, "cuCtxGetCurrent")
  ATTNC_RESOLVE(cuCtxSetCurrent, "cuCtxSetCurrent")
  ATTNC_RESOLVE(cuCtxGetDevice, "cuCtxGetDevice")
  ATTNC_RESOLVE(cuCtxPushCurrent, "cuCtxPushCurrent_v2")
  ATTNC_RESOLVE(cuCtxPopCurrent, "cuCtxPopCurrent_v2")
  ATTNC_RESOLVE(cuModuleLoadDataEx, "cuModuleLoadDataEx")
  ATTNC_RESOLVE(cuModuleUnload, "cuModuleUnload")
  ATTNC_RESOLVE(cuModuleGetFunction, "cuModuleGetFunction")
  ATTNC_RESOLVE(cuFuncGetAttribute, "cuFuncGetAttribute")
  ATTNC_RESOLVE(cuFuncSetAttribute, "cuFuncSetAttribute")
  ATTNC_RESOLVE(cuLaunchKernel, "cuLaunchKernel")
  ATTNC_RESOLVE(cuStreamSynchronize, "cuStreamSynchronize")
  ATTNC_RESOLVE(cuCtxSynchronize, "cuCtxSynchronize")
  ATTNC_RESOLVE(cuMemAlloc, "cuMemAlloc_v2")
  ATTNC_RESOLVE(cuMemFree, "cuMemFree_v2")
  ATTNC_RESOLVE(cuMemcpyHtoD, "cuMemcpyHtoD_v2")
  ATTNC_RESOLVE(cuMemcpyDtoH, "cuMemcpyDtoH_v2")
  ATTNC_RESOLVE(cuMemsetD8, "cuMemsetD8_v2")
#undef ATTNC_RESOLVE
  resolve(h, "cuTensorMapEncodeTiled", d->cuTensorMapEncodeTiled); // optional: checked at use
  // Optional as a pair: without either, workspaces are allocated synchronously.
  if (!resolve(h, "cuMemAllocAsync", d->cuMemAllocAsync) ||
      !resolve(h, "cuMemFreeAsync", d->cuMemFreeAsync)) {
    d->cuMemAllocAsync = nullptr;
    d->cuMemFreeAsync = nullptr;
  }
  if (missing)
    throw Error(ErrorCode::NoDriver, "no CUDA driver found: '" + lib +
                                         "' was loaded but has no entry point '" + missing +
                                         "' (is it really the CUDA driver library, and is it "
                                         "recent enough?)");
  CUresult r = d->cuInit(0);
  if (r != CUDA_SUCCESS) {
    const char *name = nullptr, *desc = nullptr;
    std::string what;
    if (d->cuGetErrorName(r, &name) == CUDA_SUCCESS && name) {
      what = name;
      if (d->cuGetErrorString(r, &desc) == CUDA_SUCCESS && desc)
        what += std::string(" (") + desc + ")";
    } else if (const char *fb = fallbackErrorName(r)) {
      what = fb;
    } else {
      what = "CUDA error " + std::to_string(r);
    }
    throw Error(ErrorCode::Cuda,
                "the CUDA driver '" + lib + "' was found, but cuInit failed with " + what);
  }
  d->cuDriverGetVersion(&d->version);
  return d;
}

} // namespace

std::string driverLibraryName() {
  State &s = state();
  {
    std::lock_guard<std::mutex> g(s.mu);
    if (!s.overrideLibrary.empty())
      return s.overrideLibrary;
  }
  const char *env = std::getenv("ATTNC_CUDA_DRIVER");
  return env && *env ? env : "libcuda.so.1";
}

const Driver &driver() {
  State &s = state();
  if (const Driver *d = s.loaded.load(std::memory_order_acquire))
    return *d;
  std::string lib = driverLibraryName();
  std::lock_guard<std::mutex> g(s.mu);
  if (const Driver *d = s.loaded.load(std::memory_order_acquire))
    return *d;
  if (s.failed)
    throw Error(s.failCode, s.failMessage);
  try {
    s.all.push_back(open(lib));
  } catch (const Error &e) {
    s.failed = true;
    s.failCode = e.code();
    s.failMessage = e.what();
    throw;
  }
  s.loaded.store(s.all.back().get(), std::memory_order_release);
  return *s.all.back();
}

void resetDriverForTesting(const std::string &library) {
  State &s = state();
  std::lock_guard<std::mutex> g(s.mu);
  s.loaded.store(nullptr, std::memory_order_release);
  s.failed = false;
  s.failMessage.clear();
  s.overrideLibrary = library;
}

std::string errorName(CUresult r) {
  const Driver *d = state().loaded.load(std::memory_order_acquire);
  const char *name = nullptr, *desc = nullptr;
  if (d && d->cuGetErrorName(r, &name) == CUDA_SUCCESS && name) {
    std::string s = name;
    if (d->cuGetErrorString(r, &desc) == CUDA_SUCCESS && desc)
      s += std::string(" (") + desc + ")";
    return s;
  }
  if (const char *fb = fallbackErrorName(r))
    return fb;
  return "CUDA error " + std::to_string(r);
}

void check(CUresult r, const char *call, const std::string &what) {
  if (r == CUDA_SUCCESS)
    return;
  throw Error(ErrorCode::Cuda, what + ": " + call + " failed with " + errorName(r));
}

CUcontext ensureContext() {
  const Driver &d = driver();
  CUcontext ctx = nullptr;
  check(d.cuCtxGetCurrent(&ctx), "cuCtxGetCurrent", "getting the current CUDA context");
  if (ctx)
    return ctx;
  int ordinal = 0;
  if (const char *env = std::getenv("ATTNC_DEVICE"); env && *env) {
    char *end = nullptr;
    long v = std::strtol(env, &end, 10);
    if (*end != '\0' || v < 0)
      throw Error(ErrorCode::Usage, "ATTNC_DEVICE: expected a device ordinal (0, 1, ...), got '" +
                                        std::string(env) + "'");
    ordinal = int(v);
  }
  int count = 0;
  check(d.cuDeviceGetCount(&count), "cuDeviceGetCount", "counting CUDA devices");
  if (ordinal >= count)
    throw Error(ErrorCode::Cuda, "no CUDA device " + std::to_string(ordinal) + ": the driver sees " +
                                     std::to_string(count) + " device(s)");
  CUdevice dev = 0;
  check(d.cuDeviceGet(&dev, ordinal), "cuDeviceGet", "getting CUDA device " + std::to_string(ordinal));
  check(d.cuDevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain",
        "retaining the primary context of CUDA device " + std::to_string(ordinal));
  check(d.cuCtxSetCurrent(ctx), "cuCtxSetCurrent",
        "making the primary context of CUDA device " + std::to_string(ordinal) + " current");
  return ctx;
}

DeviceInfo currentDeviceInfo() {
  const Driver &d = driver();
  DeviceInfo info;
  check(d.cuCtxGetDevice(&info.device), "cuCtxGetDevice", "getting the device of the current context");
  char name[256] = {0};
  check(d.cuDeviceGetName(name, int(sizeof name) - 1, info.device), "cuDeviceGetName",
        "getting the device name");
  info.name = name;
  auto attr = [&](int &out, CUdevice_attribute a, const char *what) {
    check(d.cuDeviceGetAttribute(&out, a, info.device), "cuDeviceGetAttribute",
          std::string("querying the device's ") + what);
  };
  attr(info.ccMajor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, "compute capability");
  attr(info.ccMinor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, "compute capability");
  attr(info.maxSharedOptin, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
       "shared memory per block (opt-in)");
  attr(info.maxGrid[0], CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X, "grid size limit");
  attr(info.maxGrid[1], CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y, "grid size limit");
  attr(info.maxGrid[2], CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z, "grid size limit");
  attr(info.smCount, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, "multiprocessor count");
  return info;
}

} // namespace attnc::rt::cu

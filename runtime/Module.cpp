//===- Module.cpp - attnc::Module, attnc::Kernel and the device helpers ---===//
//
// Loading: read the image, find its manifest (embedded PTX comment block, or
// the sidecar `<file>.json`), validate it and cross-check it against the PTX
// entries. The CUDA module itself is loaded per CUDA context on first use
// (or at load time unless LoadOptions::lazy): the device's compute capability
// is checked against the manifest's target, every kernel symbol is resolved,
// the dynamic shared-memory limit is raised where a kernel needs more than
// 48 KiB, and the block size is checked against what the compiled kernel
// allows. Launching: checkArguments(), the TMA descriptors of tensormap
// arguments (from the module's cache, encoded on a miss), the workspace of a
// chunked or tiled stage if the caller gave none (stream-ordered where the
// driver can), then one cuLaunchKernel per stage, or per chunk of a chunked
// stage, on the caller's stream.
//
//===----------------------------------------------------------------------===//
#include "attnc/Runtime.h"
#include "runtime/CudaDriver.h"
#include "runtime/TensorMap.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>

namespace attnc {

using namespace rt::cu;

const char *runtimeVersion() {
#ifdef ATTNC_VERSION
  return ATTNC_VERSION;
#else
  return "unknown";
#endif
}

namespace {

enum class ImageKind { Ptx, Cubin, Fatbin };

ImageKind classify(const std::string &image, const std::string &name) {
  if (image.size() >= 4 && image.compare(0, 4, "\x7f" "ELF") == 0)
    return ImageKind::Cubin;
  if (image.size() >= 4 && static_cast<unsigned char>(image[0]) == 0x50 &&
      static_cast<unsigned char>(image[1]) == 0xed && static_cast<unsigned char>(image[2]) == 0x55 &&
      static_cast<unsigned char>(image[3]) == 0xba)
    return ImageKind::Fatbin;
  // PTX is text; a C string's terminating NULs are allowed at the end.
  size_t last = image.find_last_not_of('\0');
  if (image.find(".version") != std::string::npos &&
      (last == std::string::npos || image.find('\0') > last))
    return ImageKind::Ptx;
  (void)name;
  throw Error(ErrorCode::Manifest,
              "not a PTX text (no .version directive), a cubin (ELF) or a fatbin image");
}

bool readWholeFile(const std::string &path, std::string &out, std::string &err) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    err = std::strerror(errno);
    return false;
  }
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) {
    err = "read error";
    return false;
  }
  out = ss.str();
  return true;
}

/// Re-throws a manifest error with the module's name in front.
[[noreturn]] void rethrowNamed(const Error &e, const std::string &name) {
  throw Error(e.code(), name + ": " + e.what(), e.arg());
}

struct Target {
  int major = 0, minor = 0;
  char suffix = 0; // 0, 'a' or 'f'
};

Target parseTarget(const std::string &t) {
  // Validated by the manifest reader: sm_<digits>[a|f], at least two digits.
  Target r;
  size_t i = 3;
  std::string digits;
  while (i < t.size() && t[i] >= '0' && t[i] <= '9')
    digits += t[i++];
  r.minor = digits.back() - '0';
  r.major = std::atoi(digits.substr(0, digits.size() - 1).c_str());
  r.suffix = i < t.size() ? t[i] : 0;
  return r;
}

} // namespace

struct ModuleImpl {
  std::string name;
  std::string image; ///< PTX text (NUL-terminated copy below) or binary
  ImageKind kind = ImageKind::Ptx;
  Manifest manifest;

  struct Loaded {
    CUcontext ctx = nullptr;
    CUmodule mod = nullptr;
    std::vector<std::vector<CUfunction>> funcs; // [variant][kernel]
    uint32_t smCount = 0;                       // the device's SMs (persistent grids)
  };
  std::mutex mu;
  std::vector<std::unique_ptr<Loaded>> loaded;
  /// The TMA descriptors of tensormap arguments, by encode parameters.
  rt::TensorMapCache tensorMaps;

  ~ModuleImpl() {
    const Driver *d = nullptr;
    try {
      d = &driver();
    } catch (...) {
      return;
    }
    for (auto &l : loaded) {
      // Unload in the module's own context; errors (e.g. the driver being
      // torn down at process exit) are ignored.
      if (d->cuCtxPushCurrent(l->ctx) == CUDA_SUCCESS) {
        d->cuModuleUnload(l->mod);
        CUcontext popped;
        d->cuCtxPopCurrent(&popped);
      }
    }
  }

  void checkTarget(const DeviceInfo &dev) const {
    Target t = parseTarget(manifest.target);
    bool ok;
    std::string rule;
    std::string tv = std::to_string(t.major) + "." + std::to_string(t.minor);
    if (t.suffix == 'a') {
      ok = dev.ccMajor == t.major && dev.ccMinor == t.minor;
      rule = "runs only on compute capability " + tv;
    } else if (t.suffix == 'f' || kind != ImageKind::Ptx) {
      ok = dev.ccMajor == t.major && dev.ccMinor >= t.minor;
      rule = "runs on compute capability " + tv + " to " + std::to_string(t.major) + ".x";
    } else {
      ok = dev.ccMajor > t.major || (dev.ccMajor == t.major && dev.ccMinor >= t.minor);
      rule = "runs on compute capability " + tv + " or newer";
    }
    if (!ok)
      throw Error(ErrorCode::Cuda, name + ": the module targets " + manifest.target + ", which " +
                                       rule + ", but device " + std::to_string(dev.device) + " (" +
                                       dev.name + ") has compute capability " +
                                       std::to_string(dev.ccMajor) + "." + std::to_string(dev.ccMinor));
  }

  std::unique_ptr<Loaded> load(CUcontext ctx) {
    const Driver &d = driver();
    DeviceInfo dev = currentDeviceInfo();
    checkTarget(dev);
    auto l = std::make_unique<Loaded>();
    l->ctx = ctx;
    l->smCount = uint32_t(std::max(0, dev.smCount));
    std::string errBuf(16384, '\0'), infoBuf(4096, '\0');
    CUjit_option opts[] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES,
                           CU_JIT_INFO_LOG_BUFFER, CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES};
    void *vals[] = {errBuf.data(), reinterpret_cast<void *>(uintptr_t(errBuf.size() - 1)),
                    infoBuf.data(), reinterpret_cast<void *>(uintptr_t(infoBuf.size() - 1))};
    CUresult r = d.cuModuleLoadDataEx(&l->mod, image.c_str(), 4, opts, vals);
    if (r != CUDA_SUCCESS) {
      std::string log = errBuf.c_str();
      throw Error(ErrorCode::Cuda, "loading module '" + name + "' (" + manifest.target +
                                       ") on device " + std::to_string(dev.device) + " (" + dev.name +
                                       "): cuModuleLoadDataEx failed with " + errorName(r) +
                                       (log.empty() ? "" : "; JIT log: " + log));
    }
    try {
      for (const auto &v : manifest.variants) {
        std::vector<CUfunction> fs;
        for (const auto &k : v.kernels) {
          std::string what = "kernel '" + k.symbol + "' (variant '" + v.name + "', head_dim " +
                             std::to_string(k.headDim) + ", " + dtypeName(k.dtype) + ") of module '" +
                             name + "'";
          CUfunction f = nullptr;
          check(d.cuModuleGetFunction(&f, l->mod, k.symbol.c_str()), "cuModuleGetFunction",
                "looking up " + what);
          int maxThreads = 0, staticShared = 0;
          check(d.cuFuncGetAttribute(&maxThreads, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, f),
                "cuFuncGetAttribute", "querying the block size limit of " + what);
          check(d.cuFuncGetAttribute(&staticShared, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, f),
                "cuFuncGetAttribute", "querying the static shared memory of " + what);
          if (k.threads > maxThreads)
            throw Error(ErrorCode::Cuda, what + ": the manifest launches " + std::to_string(k.threads) +
                                             " threads per block, but the compiled kernel allows at most " +
                                             std::to_string(maxThreads) + " on " + dev.name);
          if (k.sharedBytes + staticShared > dev.maxSharedOptin)
            throw Error(ErrorCode::Cuda, what + " needs " + std::to_string(k.sharedBytes) +
                                             " bytes of dynamic (+ " + std::to_string(staticShared) +
                                             " static) shared memory per block, but device " +
                                             std::to_string(dev.device) + " (" + dev.name +
                                             ") allows at most " + std::to_string(dev.maxSharedOptin));
          if (k.sharedBytes > 48 * 1024)
            check(d.cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                       int(k.sharedBytes)),
                  "cuFuncSetAttribute",
                  "raising the dynamic shared memory limit of " + what + " to " +
                      std::to_string(k.sharedBytes) + " bytes");
          fs.push_back(f);
        }
        l->funcs.push_back(std::move(fs));
      }
    } catch (...) {
      d.cuModuleUnload(l->mod);
      throw;
    }
    return l;
  }

  const Loaded &forCurrentContext() {
    CUcontext ctx = ensureContext();
    std::lock_guard<std::mutex> g(mu);
    for (const auto &l : loaded)
      if (l->ctx == ctx)
        return *l;
    loaded.push_back(load(ctx));
    return *loaded.back();
  }
};

//===----------------------------------------------------------------------===//
// Module
//===----------------------------------------------------------------------===//

Module Module::loadFile(const std::string &path, const LoadOptions &opts) {
  auto impl = std::make_shared<ModuleImpl>();
  impl->name = path;
  std::string err;
  if (!readWholeFile(path, impl->image, err))
    throw Error(ErrorCode::Io, "cannot read module '" + path + "': " + err);
  std::string sidecar = path + ".json";
  std::optional<std::string> json;
  int64_t firstLine = 0;
  try {
    impl->kind = classify(impl->image, path);
    if (impl->kind == ImageKind::Ptx)
      json = extractManifestFromPtx(impl->image, &firstLine);
    if (!json) {
      std::string text;
      if (!readWholeFile(sidecar, text, err)) {
        throw Error(ErrorCode::Manifest,
                    impl->kind == ImageKind::Ptx
                        ? "no attnc manifest: the PTX has no '// attnc-manifest-begin' block and "
                          "there is no sidecar '" + sidecar + "' (" + err + ")"
                        : "no attnc manifest: a cubin or fatbin carries its manifest in a sidecar "
                          "file, but '" + sidecar + "' cannot be read (" + err + ")");
      }
      json = text;
      firstLine = 0;
      impl->name = path;
    }
    impl->manifest = parseManifest(*json, firstLine);
    if (impl->kind == ImageKind::Ptx)
      checkManifestAgainstPtx(impl->manifest, impl->image);
  } catch (const Error &e) {
    rethrowNamed(e, path);
  }
  return finish(std::move(impl), opts);
}

Module Module::loadData(const std::string &image, const std::string &manifestJson,
                        const LoadOptions &opts, const std::string &name) {
  auto impl = std::make_shared<ModuleImpl>();
  impl->name = name;
  impl->image = image;
  try {
    impl->kind = classify(impl->image, name);
    int64_t firstLine = 0;
    std::optional<std::string> json;
    if (!manifestJson.empty())
      json = manifestJson;
    else if (impl->kind == ImageKind::Ptx)
      json = extractManifestFromPtx(impl->image, &firstLine);
    if (!json)
      throw Error(ErrorCode::Manifest,
                  impl->kind == ImageKind::Ptx
                      ? "no attnc manifest: the PTX has no '// attnc-manifest-begin' block and no "
                        "manifest JSON was given"
                      : "no attnc manifest: a cubin or fatbin image needs its manifest JSON passed "
                        "alongside");
    impl->manifest = parseManifest(*json, firstLine);
    if (impl->kind == ImageKind::Ptx)
      checkManifestAgainstPtx(impl->manifest, impl->image);
  } catch (const Error &e) {
    rethrowNamed(e, name);
  }
  return finish(std::move(impl), opts);
}

Module Module::finish(std::shared_ptr<ModuleImpl> impl, const LoadOptions &opts) {
  if (impl->kind == ImageKind::Ptx && (impl->image.empty() || impl->image.back() != '\0'))
    impl->image.push_back('\0'); // cuModuleLoadDataEx reads PTX as a C string
  Module m(std::move(impl));
  if (!opts.lazy)
    m.ensureLoaded();
  return m;
}

const Manifest &Module::manifest() const { return impl_->manifest; }
const std::string &Module::name() const { return impl_->name; }

Kernel Module::variant(const std::string &name) const {
  int i = impl_->manifest.findVariant(name);
  if (i < 0) {
    std::string names;
    for (const auto &v : impl_->manifest.variants)
      names += (names.empty() ? "" : ", ") + v.name;
    throw Error(ErrorCode::NotFound,
                impl_->name + ": no variant '" + name + "' (the module has: " + names + ")");
  }
  return Kernel(impl_, size_t(i));
}

Kernel Module::layer(int64_t i) const {
  const Manifest &m = impl_->manifest;
  if (!m.model)
    throw Error(ErrorCode::NotFound,
                impl_->name + ": the module has no model (kind 'variants'), so it has no layers; "
                              "pick a kernel by variant name");
  int64_t n = int64_t(m.model->layers.size());
  if (i < 0 || i >= n)
    throw Error(ErrorCode::NotFound, impl_->name + ": layer " + std::to_string(i) +
                                         " is out of range: model '" + m.model->name + "' has " +
                                         std::to_string(n) + " layers (0 .. " +
                                         std::to_string(n - 1) + ")");
  return Kernel(impl_, size_t(m.model->layers[size_t(i)]));
}

int64_t Module::numLayers() const {
  return impl_->manifest.model ? int64_t(impl_->manifest.model->layers.size()) : 0;
}

void Module::ensureLoaded() const { impl_->forCurrentContext(); }

//===----------------------------------------------------------------------===//
// Kernel
//===----------------------------------------------------------------------===//

const VariantSpec &Kernel::spec() const { return module_->manifest.variants[variant_]; }

LaunchPlan Kernel::check(const LaunchArgs &a) const { return checkArguments(spec(), a); }

void Kernel::launch(const LaunchArgs &a, void *stream) const {
  LaunchPlan plan = checkArguments(spec(), a);
  const ModuleImpl::Loaded &l = module_->forCurrentContext();
  auto what = [&](const KernelSpec &k) {
    return "kernel '" + k.symbol + "' (variant '" + spec().name + "', head_dim " +
           std::to_string(k.headDim) + ", " + dtypeName(k.dtype) + ") of module '" +
           module_->name + "'";
  };
  // Tensormap arguments are passed by value: their slots point at 64-byte
  // aligned descriptors instead.
  std::vector<void *> params = plan.params();
  std::vector<rt::cu::CUtensorMap> maps(plan.tensorMaps.size());
  for (size_t i = 0; i < plan.values.size(); ++i) {
    if (plan.kinds[i] != ArgKind::TensorMap)
      continue;
    size_t m = size_t(plan.values[i]);
    std::string whose = "'" + plan.names[i] + "' of " + what(spec().kernels[plan.kernelIndex]);
    maps[m] = module_->tensorMaps.get(
        plan.tensorMaps[m], [&](const TensorMapParams &p) { return rt::encodeTensorMap(p, whose); });
    params[i] = &maps[m];
  }
  const Driver &d = driver();
  CUstream st = reinterpret_cast<CUstream>(stream);

  // The workspace the caller did not give: allocated in stream order, so
  // that it is ready for the first stage and reusable by the driver's pool
  // as soon as the last one is done, without a synchronisation; without the
  // stream-ordered allocator (old drivers, devices without memory pools),
  // allocated now and freed after waiting for the stream.
  struct Workspace {
    const Driver &d;
    CUstream st;
    CUdeviceptr ptr = 0;
    bool async = false;
    ~Workspace() { release(); }
    /// Frees after the work enqueued so far; returns the failure, if any.
    CUresult release() {
      if (!ptr)
        return CUDA_SUCCESS;
      CUdeviceptr p = ptr;
      ptr = 0;
      if (async)
        return d.cuMemFreeAsync(p, st);
      CUresult r = d.cuStreamSynchronize(st);
      CUresult f = d.cuMemFree(p);
      return r != CUDA_SUCCESS ? r : f;
    }
  } ws{d, st};
  if (plan.allocateWorkspace && plan.workspaceBytes > 0) {
    const std::string why = "allocating the " + std::to_string(plan.workspaceBytes) +
                            "-byte workspace of " + what(spec().kernels[plan.kernelIndex]);
    CUresult r = CUDA_ERROR_NOT_SUPPORTED;
    if (d.cuMemAllocAsync && d.cuMemFreeAsync)
      r = d.cuMemAllocAsync(&ws.ptr, size_t(plan.workspaceBytes), st);
    if (r == CUDA_SUCCESS) {
      ws.async = true;
    } else if (r == CUDA_ERROR_NOT_SUPPORTED) {
      ws.ptr = 0;
      rt::cu::check(d.cuMemAlloc(&ws.ptr, size_t(plan.workspaceBytes)), "cuMemAlloc", why);
    } else {
      ws.ptr = 0;
      rt::cu::check(r, "cuMemAllocAsync", why);
    }
    plan.values.at(size_t(plan.workspaceSlot)) = ws.ptr; // params[] points at the slot
  }

  // Stages in order; a run of consecutive chunked stages chunk by chunk
  // (chunk i of each of them, then chunk i + 1: they share the workspace,
  // so a later one reads what an earlier one wrote for the same row blocks).
  for (size_t run = 0; run < plan.stages.size();) {
    size_t runEnd = run + 1;
    while (plan.stages[run].chunked() && runEnd < plan.stages.size() && plan.stages[runEnd].chunked())
      ++runEnd;
    const int64_t launches = plan.stages[run].launches();
    for (int64_t i = 0; i < launches; ++i)
    for (size_t si = run; si < runEnd; ++si) {
      const StagePlan &s = plan.stages[si];
      const KernelSpec &k = spec().kernels[s.kernelIndex];
      int64_t first = 0;
      uint32_t g[3];
      s.launchGeometry(i, first, g, l.smCount);
      plan.setBlockFirst(first); // cuLaunchKernel copies the parameters
      CUresult r = d.cuLaunchKernel(l.funcs[variant_][s.kernelIndex], g[0], g[1], g[2],
                                    s.block[0], s.block[1], s.block[2], s.sharedBytes, st,
                                    params.data(), nullptr);
      if (r != CUDA_SUCCESS)
        rt::cu::check(r, "cuLaunchKernel",
                      "launching " + what(k) +
                          (plan.stages.size() > 1 ? " (stage '" + k.stage + "')" : "") +
                          (s.chunked() ? " for row blocks " + std::to_string(first) + " .. " +
                                             std::to_string(first + g[0] - 1) + " (launch " +
                                             std::to_string(i + 1) + " of " +
                                             std::to_string(launches) + ")"
                                       : std::string()) +
                          " with grid [" + std::to_string(g[0]) + ", " + std::to_string(g[1]) +
                          ", " + std::to_string(g[2]) + "], block [" + std::to_string(s.block[0]) +
                          ", 1, 1] and " + std::to_string(s.sharedBytes) +
                          " bytes of dynamic shared memory");
    }
    run = runEnd;
  }
  rt::cu::check(ws.release(), ws.async ? "cuMemFreeAsync" : "cuMemFree",
                "freeing the workspace of " + what(spec().kernels[plan.kernelIndex]));
}

//===----------------------------------------------------------------------===//
// Device helpers
//===----------------------------------------------------------------------===//

namespace device {

uint64_t alloc(size_t bytes) {
  ensureContext();
  CUdeviceptr p = 0;
  rt::cu::check(driver().cuMemAlloc(&p, bytes), "cuMemAlloc",
                "allocating " + std::to_string(bytes) + " bytes of device memory");
  return p;
}

void free(uint64_t ptr) {
  if (!ptr)
    return;
  ensureContext();
  rt::cu::check(driver().cuMemFree(ptr), "cuMemFree", "freeing device memory");
}

void copyToDevice(uint64_t dst, const void *src, size_t bytes) {
  ensureContext();
  rt::cu::check(driver().cuMemcpyHtoD(dst, src, bytes), "cuMemcpyHtoD",
                "copying " + std::to_string(bytes) + " bytes to the device");
}

void copyToHost(void *dst, uint64_t src, size_t bytes) {
  ensureContext();
  rt::cu::check(driver().cuMemcpyDtoH(dst, src, bytes), "cuMemcpyDtoH",
                "copying " + std::to_string(bytes) + " bytes to the host");
}

void memset(uint64_t dst, unsigned char value, size_t bytes) {
  ensureContext();
  rt::cu::check(driver().cuMemsetD8(dst, value, bytes), "cuMemsetD8",
                "setting " + std::to_string(bytes) + " bytes of device memory");
}

void synchronize(void *stream) {
  ensureContext();
  if (stream)
    rt::cu::check(driver().cuStreamSynchronize(reinterpret_cast<CUstream>(stream)),
                  "cuStreamSynchronize", "waiting for the stream");
  else
    rt::cu::check(driver().cuCtxSynchronize(), "cuCtxSynchronize", "waiting for the device");
}

std::string driverInfo() {
  const Driver &d = driver();
  return d.library + ", driver version " + std::to_string(d.version);
}

} // namespace device

} // namespace attnc

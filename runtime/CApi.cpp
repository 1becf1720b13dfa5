//===- CApi.cpp - libattnrt's C API over the C++ API ----------------------===//
//
// Implements attnrt.h: opaque handles wrapping attnc::Module / attnc::Kernel,
// conversion of the C structs to LaunchArgs (with their own checks of the C
// representation: ranks, dtype codes, null pointers), and translation of
// every exception into a status code plus a thread-local message.
//
//===----------------------------------------------------------------------===//
#include "attnc/attnrt.h"
#include "attnc/Runtime.h"
#include "runtime/Json.h"

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>

struct attnrt_module {
  attnc::Module module;
  std::string manifestJson;
  std::string compileReportJson; ///< attnrt_compile's report; "" for loaded modules
};

struct attnrt_kernel {
  attnc::Kernel kernel;
  std::string manifestJson;
};

namespace {

using attnc::DType;
using attnc::Error;
using attnc::ErrorCode;

static_assert(int(DType::BF16) == ATTNRT_DTYPE_BF16 && int(DType::F16) == ATTNRT_DTYPE_F16 &&
                  int(DType::F32) == ATTNRT_DTYPE_F32 && int(DType::I32) == ATTNRT_DTYPE_I32 &&
                  int(DType::I64) == ATTNRT_DTYPE_I64 && int(DType::Bool) == ATTNRT_DTYPE_BOOL &&
                  int(DType::U8) == ATTNRT_DTYPE_U8 && int(DType::F8E4M3) == ATTNRT_DTYPE_F8E4M3 &&
                  int(DType::F8E5M2) == ATTNRT_DTYPE_F8E5M2,
              "attnrt_dtype and attnc::DType must agree");
static_assert(int(ErrorCode::InvalidArgument) == ATTNRT_ERROR_INVALID_ARGUMENT &&
                  int(ErrorCode::Manifest) == ATTNRT_ERROR_MANIFEST &&
                  int(ErrorCode::NoDriver) == ATTNRT_ERROR_NO_DRIVER &&
                  int(ErrorCode::Cuda) == ATTNRT_ERROR_CUDA && int(ErrorCode::Io) == ATTNRT_ERROR_IO &&
                  int(ErrorCode::NotFound) == ATTNRT_ERROR_NOT_FOUND &&
                  int(ErrorCode::NoCompiler) == ATTNRT_ERROR_NO_COMPILER &&
                  int(ErrorCode::Compile) == ATTNRT_ERROR_COMPILE &&
                  int(ErrorCode::Internal) == ATTNRT_ERROR_INTERNAL &&
                  int(ErrorCode::Usage) == ATTNRT_ERROR_USAGE,
              "attnrt_status and attnc::ErrorCode must agree");

thread_local std::string tlsError;
thread_local std::string tlsArg;

int setError(int code, const std::string &msg, const std::string &arg = "") {
  tlsError = msg;
  tlsArg = arg;
  return code;
}

/// Runs f, mapping exceptions to status codes.
template <typename F> int guarded(F &&f) {
  try {
    tlsError.clear();
    tlsArg.clear();
    f();
    return ATTNRT_OK;
  } catch (const Error &e) {
    return setError(int(e.code()), e.what(), e.arg());
  } catch (const std::bad_alloc &) {
    return setError(ATTNRT_ERROR_INTERNAL, "out of host memory");
  } catch (const std::exception &e) {
    return setError(ATTNRT_ERROR_INTERNAL, std::string("internal error: ") + e.what());
  } catch (...) {
    return setError(ATTNRT_ERROR_INTERNAL, "internal error: unknown exception");
  }
}

[[noreturn]] void usage(const std::string &msg) { throw Error(ErrorCode::Usage, msg); }

attnc::TensorRef toRef(const char *arg, const attnrt_tensor &t) {
  if (t.rank < 0 || t.rank > ATTNRT_MAX_RANK)
    throw Error(ErrorCode::InvalidArgument,
                std::string(arg) + ": rank " + std::to_string(t.rank) + " is out of range [0, " +
                    std::to_string(ATTNRT_MAX_RANK) + "]",
                arg);
  if (t.dtype < ATTNRT_DTYPE_BF16 || t.dtype > ATTNRT_DTYPE_F8E5M2)
    throw Error(ErrorCode::InvalidArgument,
                std::string(arg) + ": unknown dtype code " + std::to_string(t.dtype), arg);
  attnc::TensorRef r;
  r.data = t.data;
  r.dtype = DType(t.dtype);
  r.sizes.assign(t.sizes, t.sizes + t.rank);
  r.strides.assign(t.strides, t.strides + t.rank);
  return r;
}

attnc::LaunchArgs toArgs(const attnrt_launch_args *a) {
  if (!a)
    usage("attnrt_launch_args is NULL");
  // Callers built against an older attnrt.h pass a shorter struct: the
  // fields past their struct_size are not read (they default to absent).
  if (a->struct_size < ATTNRT_LAUNCH_ARGS_SIZE_V1)
    usage("attnrt_launch_args.struct_size is " + std::to_string(a->struct_size) + ", expected " +
          std::to_string(sizeof(attnrt_launch_args)) + " (set it to sizeof(attnrt_launch_args))");
  auto has = [&](size_t offset, size_t size) { return a->struct_size >= offset + size; };
  attnc::LaunchArgs r;
  auto required = [&](const char *name, const attnrt_tensor *t, attnc::TensorRef &dst) {
    if (!t)
      throw Error(ErrorCode::InvalidArgument, std::string(name) + ": required but not given (NULL)",
                  name);
    dst = toRef(name, *t);
  };
  required("q", a->q, r.q);
  required("k", a->k, r.k);
  required("v", a->v, r.v);
  required("o", a->o, r.o);
  required("lse", a->lse, r.lse);
  if (a->sinks)
    r.sinks = toRef("sinks", *a->sinks);
  if (a->indices)
    r.indices = toRef("indices", *a->indices);
  int given = (a->indexer_q != nullptr) + (a->indexer_w != nullptr) + (a->indexer_k != nullptr);
  if (given != 0 && given != 3)
    throw Error(ErrorCode::InvalidArgument,
                "indexer: give all three indexer tensors (indexer_q, indexer_w, indexer_k) or none",
                "indexer");
  if (given == 3)
    r.indexer = attnc::IndexerTensors{toRef("indexer.qI", *a->indexer_q),
                                      toRef("indexer.w", *a->indexer_w),
                                      toRef("indexer.kI", *a->indexer_k)};
  if (a->num_inputs < 0 || (a->num_inputs > 0 && !a->inputs))
    usage("attnrt_launch_args: num_inputs is " + std::to_string(a->num_inputs) +
          " but inputs is " + (a->inputs ? "set" : "NULL"));
  for (int32_t i = 0; i < a->num_inputs; ++i) {
    const attnrt_input &in = a->inputs[i];
    if (!in.name || !*in.name)
      usage("attnrt_launch_args: inputs[" + std::to_string(i) + "] has no name");
    std::string arg = std::string("input:") + in.name;
    if (r.inputs.count(in.name))
      throw Error(ErrorCode::InvalidArgument, arg + ": given twice", arg);
    r.inputs[in.name] = toRef(arg.c_str(), in.tensor);
  }
  if (a->flags & ATTNRT_HAS_Q_OFFSET)
    r.qOffset = a->q_offset;
  if (a->flags & ATTNRT_HAS_K_OFFSET)
    r.kOffset = a->k_offset;
  if (has(offsetof(attnrt_launch_args, workspace), sizeof a->workspace) && a->workspace)
    r.workspace = toRef("workspace", *a->workspace);
  // API version 4: the gradients of a backward variant.
  const std::pair<const char *, std::pair<const attnrt_tensor *const *, std::optional<attnc::TensorRef> *>>
      grads[] = {{"dout", {&a->dout, &r.dout}}, {"dq", {&a->dq, &r.dq}}, {"dk", {&a->dk, &r.dk}},
                 {"dv", {&a->dv, &r.dv}}};
  for (const auto &[name, field] : grads) {
    const auto *src = field.first;
    size_t offset = reinterpret_cast<const char *>(src) - reinterpret_cast<const char *>(a);
    if (has(offset, sizeof *src) && *src)
      *field.second = toRef(name, **src);
  }
  return r;
}

attnc::LoadOptions loadOptions(uint32_t flags) {
  if (flags & ~uint32_t(ATTNRT_LOAD_LAZY))
    usage("unknown load flags " + std::to_string(flags));
  attnc::LoadOptions o;
  o.lazy = flags & ATTNRT_LOAD_LAZY;
  return o;
}

std::string compileReportToJson(const attnc::CompileReport &r) {
  using attnc::rt::json::quote;
  char seconds[96];
  std::snprintf(seconds, sizeof seconds, "\"compile_seconds\": %.6f, \"load_seconds\": %.6f",
                r.compileSeconds, r.loadSeconds);
  return std::string("{\"cache\": ") + (r.cacheUsed ? (r.cacheHit ? "\"hit\"" : "\"miss\"") : "\"off\"") +
         ", \"key\": " + quote(r.key) + ", \"cache_dir\": " + quote(r.cacheDir) + ", " + seconds +
         ", \"ptx_bytes\": " + std::to_string(r.ptxBytes) + "}";
}

attnrt_module *wrap(attnc::Module m) {
  std::string json = attnc::manifestToJson(m.manifest());
  return new attnrt_module{std::move(m), std::move(json)};
}

attnrt_kernel *wrap(attnc::Kernel k) {
  std::string json = attnc::variantToJson(k.spec());
  return new attnrt_kernel{std::move(k), std::move(json)};
}

void copyOut(const std::string &s, char *buf, size_t size) {
  if (!buf || size == 0)
    return;
  size_t n = s.size() < size - 1 ? s.size() : size - 1;
  std::memcpy(buf, s.data(), n);
  buf[n] = '\0';
}

} // namespace

extern "C" {

const char *attnrt_last_error(void) { return tlsError.c_str(); }
const char *attnrt_last_error_arg(void) { return tlsArg.c_str(); }

const char *attnrt_status_name(int status) {
  switch (status) {
  case ATTNRT_OK: return "ATTNRT_OK";
  case ATTNRT_ERROR_INVALID_ARGUMENT: return "ATTNRT_ERROR_INVALID_ARGUMENT";
  case ATTNRT_ERROR_MANIFEST: return "ATTNRT_ERROR_MANIFEST";
  case ATTNRT_ERROR_NO_DRIVER: return "ATTNRT_ERROR_NO_DRIVER";
  case ATTNRT_ERROR_CUDA: return "ATTNRT_ERROR_CUDA";
  case ATTNRT_ERROR_IO: return "ATTNRT_ERROR_IO";
  case ATTNRT_ERROR_NOT_FOUND: return "ATTNRT_ERROR_NOT_FOUND";
  case ATTNRT_ERROR_NO_COMPILER: return "ATTNRT_ERROR_NO_COMPILER";
  case ATTNRT_ERROR_COMPILE: return "ATTNRT_ERROR_COMPILE";
  case ATTNRT_ERROR_INTERNAL: return "ATTNRT_ERROR_INTERNAL";
  case ATTNRT_ERROR_USAGE: return "ATTNRT_ERROR_USAGE";
  }
  return "ATTNRT_UNKNOWN_STATUS";
}

const char *attnrt_version(void) { return attnc::runtimeVersion(); }
int attnrt_api_version(void) { return ATTNRT_API_VERSION; }

int attnrt_module_load_file(const char *path, uint32_t flags, attnrt_module **out) {
  return guarded([&] {
    if (!path || !out)
      usage("attnrt_module_load_file: path and out must not be NULL");
    *out = nullptr;
    *out = wrap(attnc::Module::loadFile(path, loadOptions(flags)));
  });
}

int attnrt_module_load_data(const void *image, size_t size, const char *manifest_json,
                            uint32_t flags, const char *name, attnrt_module **out) {
  return guarded([&] {
    if (!image || !out)
      usage("attnrt_module_load_data: image and out must not be NULL");
    *out = nullptr;
    std::string img(static_cast<const char *>(image), size);
    *out = wrap(attnc::Module::loadData(img, manifest_json ? manifest_json : "", loadOptions(flags),
                                        name && *name ? name : "<memory>"));
  });
}

void attnrt_module_free(attnrt_module *m) { delete m; }

const char *attnrt_module_manifest_json(const attnrt_module *m) {
  return m ? m->manifestJson.c_str() : "";
}

int64_t attnrt_module_num_layers(const attnrt_module *m) { return m ? m->module.numLayers() : 0; }

int attnrt_module_variant(const attnrt_module *m, const char *name, attnrt_kernel **out) {
  return guarded([&] {
    if (!m || !name || !out)
      usage("attnrt_module_variant: module, name and out must not be NULL");
    *out = nullptr;
    *out = wrap(m->module.variant(name));
  });
}

int attnrt_module_layer(const attnrt_module *m, int64_t layer, attnrt_kernel **out) {
  return guarded([&] {
    if (!m || !out)
      usage("attnrt_module_layer: module and out must not be NULL");
    *out = nullptr;
    *out = wrap(m->module.layer(layer));
  });
}

void attnrt_kernel_free(attnrt_kernel *k) { delete k; }

const char *attnrt_kernel_name(const attnrt_kernel *k) { return k ? k->kernel.name().c_str() : ""; }

const char *attnrt_kernel_manifest_json(const attnrt_kernel *k) {
  return k ? k->manifestJson.c_str() : "";
}

int attnrt_kernel_check(const attnrt_kernel *k, const attnrt_launch_args *args,
                        attnrt_launch_plan *plan) {
  return guarded([&] {
    if (!k)
      usage("attnrt_kernel_check: kernel is NULL");
    attnc::LaunchPlan p = k->kernel.check(toArgs(args));
    if (plan) {
      for (int i = 0; i < 3; ++i) {
        plan->grid[i] = p.grid[i];
        plan->block[i] = p.block[i];
      }
      plan->shared_bytes = p.sharedBytes;
      plan->kernel_index = int32_t(p.kernelIndex);
    }
  });
}

int attnrt_kernel_describe_launch(const attnrt_kernel *k, const attnrt_launch_args *args,
                                  char *buf, size_t size) {
  return guarded([&] {
    if (!k)
      usage("attnrt_kernel_describe_launch: kernel is NULL");
    attnc::LaunchPlan p = k->kernel.check(toArgs(args));
    copyOut(p.describe(k->kernel.spec()), buf, size);
  });
}

int attnrt_kernel_workspace_bytes(const attnrt_kernel *k, const attnrt_launch_args *args,
                                  uint64_t *bytes) {
  return guarded([&] {
    if (!k || !bytes)
      usage("attnrt_kernel_workspace_bytes: kernel and bytes must not be NULL");
    *bytes = k->kernel.check(toArgs(args)).workspaceBytes;
  });
}

int attnrt_kernel_launch(const attnrt_kernel *k, const attnrt_launch_args *args, void *stream) {
  return guarded([&] {
    if (!k)
      usage("attnrt_kernel_launch: kernel is NULL");
    k->kernel.launch(toArgs(args), stream);
  });
}

int attnrt_compile(const char *source, const char *const *options, int32_t num_options,
                   attnrt_module **out) {
  return guarded([&] {
    if (!source || !out || num_options < 0 || (num_options > 0 && !options))
      usage("attnrt_compile: source and out must not be NULL, and options must hold num_options "
            "strings");
    *out = nullptr;
    attnc::CompileOptions o;
    for (int32_t i = 0; i < num_options; ++i) {
      if (!options[i])
        usage("attnrt_compile: options[" + std::to_string(i) + "] is NULL");
      std::string opt = options[i];
      bool define = opt.rfind("-D", 0) == 0;
      std::string body = define ? opt.substr(2) : opt;
      size_t eq = body.find('=');
      if (eq == std::string::npos || eq == 0)
        usage("attnrt_compile: option '" + opt + "' is not of the form name=value or -DNAME=VALUE");
      std::string name = body.substr(0, eq), value = body.substr(eq + 1);
      if (define)
        o.defines[name] = value;
      else if (name == "target")
        o.target = value;
      else if (name == "cache_dir")
        o.cacheDir = value;
      else if (name == "cache")
        o.useCache = value != "0" && value != "false";
      else if (name == "lazy")
        o.load.lazy = value != "0" && value != "false";
      else
        o.extra[name] = value;
    }
    attnc::CompileReport report;
    attnrt_module *m = wrap(attnc::compile(source, o, &report));
    m->compileReportJson = compileReportToJson(report);
    *out = m;
  });
}

const char *attnrt_module_compile_report_json(const attnrt_module *m) {
  return m ? m->compileReportJson.c_str() : "";
}

int attnrt_has_compiler(void) { return attnc::hasCompiler() ? 1 : 0; }

int attnrt_driver_info(char *buf, size_t size) {
  return guarded([&] { copyOut(attnc::device::driverInfo(), buf, size); });
}

int attnrt_device_alloc(size_t bytes, uint64_t *out) {
  return guarded([&] {
    if (!out)
      usage("attnrt_device_alloc: out is NULL");
    *out = attnc::device::alloc(bytes);
  });
}

int attnrt_device_free(uint64_t ptr) {
  return guarded([&] { attnc::device::free(ptr); });
}

int attnrt_memcpy_htod(uint64_t dst, const void *src, size_t bytes) {
  return guarded([&] { attnc::device::copyToDevice(dst, src, bytes); });
}

int attnrt_memcpy_dtoh(void *dst, uint64_t src, size_t bytes) {
  return guarded([&] { attnc::device::copyToHost(dst, src, bytes); });
}

int attnrt_memset(uint64_t dst, unsigned char value, size_t bytes) {
  return guarded([&] { attnc::device::memset(dst, value, bytes); });
}

int attnrt_synchronize(void *stream) {
  return guarded([&] { attnc::device::synchronize(stream); });
}

} // extern "C"

/*===- attnrt.h - libattnrt's stable C API -------------------------*- C -*-===//
 *
 * The C interface of the attnc runtime, for FFI (the Python package uses it
 * through ctypes) and C programs. Handles are opaque; every function returns
 * an attnrt_status (ATTNRT_OK = 0) and, on failure, leaves a message in
 * attnrt_last_error() (thread-local, valid until the next call on the same
 * thread). Argument errors also name the argument: attnrt_last_error_arg().
 * Nothing here needs a GPU except loading (unless ATTNRT_LOAD_LAZY),
 * launching and the device helpers; without a driver those fail with
 * ATTNRT_ERROR_NO_DRIVER ("no CUDA driver found: ...").
 *
 * ABI: structs are only ever extended at the end; attnrt_launch_args starts
 * with its size so that older callers keep working (fields past their
 * struct_size read as NULL / 0). Output structs without a size field
 * (attnrt_launch_plan) are never extended; new results get new functions.
 * ATTNRT_API_VERSION counts such additions. docs/runtime.md has the full
 * reference.
 *
 *===----------------------------------------------------------------------===*/
#ifndef ATTNC_ATTNRT_H
#define ATTNC_ATTNRT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 1: the first API; 2: attnrt_launch_args.workspace and
 * attnrt_kernel_workspace_bytes (DSA's chunked selection stage);
 * 3: attnrt_module_compile_report_json; 4: attnrt_launch_args.dout, dq, dk
 * and dv (a backward variant, NAME.backward). */
#define ATTNRT_API_VERSION 4
#define ATTNRT_MAX_RANK 8

typedef enum attnrt_status {
  ATTNRT_OK = 0,
  ATTNRT_ERROR_INVALID_ARGUMENT = 1, /* a launch argument failed checking; nothing launched */
  ATTNRT_ERROR_MANIFEST = 2,         /* the module's self-description is missing or malformed */
  ATTNRT_ERROR_NO_DRIVER = 3,        /* no CUDA driver could be loaded */
  ATTNRT_ERROR_CUDA = 4,             /* a CUDA driver call failed */
  ATTNRT_ERROR_IO = 5,               /* a file could not be read */
  ATTNRT_ERROR_NOT_FOUND = 6,        /* no such variant or layer */
  ATTNRT_ERROR_NO_COMPILER = 7,      /* this build cannot compile (load PTX instead) */
  ATTNRT_ERROR_COMPILE = 8,          /* the compiler rejected the source */
  ATTNRT_ERROR_INTERNAL = 9,         /* a bug in libattnrt */
  ATTNRT_ERROR_USAGE = 10            /* API misuse: null handle, bad option, ... */
} attnrt_status;

typedef enum attnrt_dtype {
  ATTNRT_DTYPE_BF16 = 1,
  ATTNRT_DTYPE_F16 = 2,
  ATTNRT_DTYPE_F32 = 3,
  ATTNRT_DTYPE_I32 = 4,
  ATTNRT_DTYPE_I64 = 5,
  ATTNRT_DTYPE_BOOL = 6,
  ATTNRT_DTYPE_U8 = 7,
  ATTNRT_DTYPE_F8E4M3 = 8,
  ATTNRT_DTYPE_F8E5M2 = 9
} attnrt_dtype;

/* A device tensor. Strides are in elements; only the first `rank` entries
 * of sizes and strides are read. */
typedef struct attnrt_tensor {
  uint64_t data; /* device address */
  int32_t dtype; /* attnrt_dtype */
  int32_t rank;
  int64_t sizes[ATTNRT_MAX_RANK];
  int64_t strides[ATTNRT_MAX_RANK];
} attnrt_tensor;

/* A runtime input tensor (`input NAME : ...` in the source). */
typedef struct attnrt_input {
  const char *name;
  attnrt_tensor tensor;
} attnrt_input;

#define ATTNRT_HAS_Q_OFFSET 1u
#define ATTNRT_HAS_K_OFFSET 2u

typedef struct attnrt_launch_args {
  uint32_t struct_size; /* sizeof(attnrt_launch_args) */
  uint32_t flags;       /* ATTNRT_HAS_Q_OFFSET | ATTNRT_HAS_K_OFFSET */
  const attnrt_tensor *q;   /* [B, Hq, Lq, D] */
  const attnrt_tensor *k;   /* [B, Hkv, Lk, D] */
  const attnrt_tensor *v;   /* [B, Hkv, Lk, D] */
  const attnrt_tensor *o;   /* [B, Hq, Lq, D], written */
  const attnrt_tensor *lse; /* [B, Hq, Lq] f32, written */
  const attnrt_tensor *sinks;     /* [Hq] f32, or NULL */
  const attnrt_tensor *indexer_q; /* qI [B, Lq, HI, dI], or NULL */
  const attnrt_tensor *indexer_w; /* w [B, Lq, HI] f32, or NULL */
  const attnrt_tensor *indexer_k; /* kI [B, Lk, dI], or NULL */
  const attnrt_tensor *indices;   /* [B, Hkv, Lq, topk] i32, written, or NULL */
  const attnrt_input *inputs;
  int32_t num_inputs;
  int32_t reserved0;
  int64_t q_offset; /* read iff flags & ATTNRT_HAS_Q_OFFSET; default klen - qlen */
  int64_t k_offset; /* read iff flags & ATTNRT_HAS_K_OFFSET; default 0 */
  /* Since API version 2 (read only if struct_size covers it): the scratch of
   * a variant taking 'workspace' (a chunked selection stage or a tiled
   * summary stage), 1-D, contiguous, any dtype, 16-byte aligned, at least
   * attnrt_kernel_workspace_bytes bytes;
   * or NULL: the launch allocates it on the stream (cuMemAllocAsync) and
   * frees it after the last stage. */
  const attnrt_tensor *workspace;
  /* Since API version 4: for a backward variant ("NAME.backward", compiled
   * with --backward=on; q, k, v, o and lse are then the forward call's, all
   * read): dO in, the gradients of sum(O * dO) out, each shaped, typed and
   * laid out like the tensor it is the gradient of (dk and dv summed over a
   * KV group's query heads). NULL for a forward variant. A backward variant
   * takes a workspace too (f32 row statistics). */
  const attnrt_tensor *dout; /* [B, Hq, Lq, D] */
  const attnrt_tensor *dq;   /* [B, Hq, Lq, D], written */
  const attnrt_tensor *dk;   /* [B, Hkv, Lk, D], written */
  const attnrt_tensor *dv;   /* [B, Hkv, Lk, D], written */
} attnrt_launch_args;

/* The struct_size of an attnrt_launch_args from before API version 2 (no
 * workspace field): the smallest size accepted. */
#define ATTNRT_LAUNCH_ARGS_SIZE_V1 offsetof(attnrt_launch_args, workspace)

/* The launch geometry chosen by checking (see attnrt_kernel_check). For a
 * variant of several kernels (stages, launched in manifest order) this is
 * the primary kernel's: the stage "attention", else the last;
 * attnrt_kernel_describe_launch lists every stage's geometry. */
typedef struct attnrt_launch_plan {
  uint32_t grid[3];
  uint32_t block[3];
  uint32_t shared_bytes;
  int32_t kernel_index; /* into the variant's kernels in the manifest */
} attnrt_launch_plan;

typedef struct attnrt_module attnrt_module;
typedef struct attnrt_kernel attnrt_kernel;

#define ATTNRT_LOAD_LAZY 1u /* read the manifest only; load into CUDA at first launch */

/* Errors */
const char *attnrt_last_error(void);     /* "" if the last call succeeded */
const char *attnrt_last_error_arg(void); /* the argument named by an INVALID_ARGUMENT error, or "" */
const char *attnrt_status_name(int status); /* "ATTNRT_ERROR_NO_DRIVER", ... */

/* Versions */
const char *attnrt_version(void);  /* libattnrt's version, e.g. "0.1.0" */
int attnrt_api_version(void);      /* ATTNRT_API_VERSION of the library */

/* Modules. Free with attnrt_module_free (kernels keep their module alive). */
int attnrt_module_load_file(const char *path, uint32_t flags, attnrt_module **out);
/* image: PTX (size bytes, NUL not required) or cubin/fatbin; manifest_json:
 * NULL or "" for PTX with an embedded manifest. name: for messages, may be NULL. */
int attnrt_module_load_data(const void *image, size_t size, const char *manifest_json,
                            uint32_t flags, const char *name, attnrt_module **out);
void attnrt_module_free(attnrt_module *m);
/* The manifest as JSON (owned by the module). */
const char *attnrt_module_manifest_json(const attnrt_module *m);
int64_t attnrt_module_num_layers(const attnrt_module *m); /* 0 without a model */
int attnrt_module_variant(const attnrt_module *m, const char *name, attnrt_kernel **out);
int attnrt_module_layer(const attnrt_module *m, int64_t layer, attnrt_kernel **out);

/* Kernels (one attention variant). Free with attnrt_kernel_free. */
void attnrt_kernel_free(attnrt_kernel *k);
const char *attnrt_kernel_name(const attnrt_kernel *k);
/* The variant's manifest entry as JSON (owned by the kernel). */
const char *attnrt_kernel_manifest_json(const attnrt_kernel *k);
/* Checks the arguments without launching (no GPU needed); plan may be NULL. */
int attnrt_kernel_check(const attnrt_kernel *k, const attnrt_launch_args *args,
                        attnrt_launch_plan *plan);
/* Like check, and writes a description of the launch (kernel, grid, every
 * packed parameter) into buf (truncated to size, NUL-terminated). */
int attnrt_kernel_describe_launch(const attnrt_kernel *k, const attnrt_launch_args *args,
                                  char *buf, size_t size);
/* Checks the arguments like attnrt_kernel_check and writes the bytes of
 * workspace the launch needs to *bytes (0 if the variant takes none; needed
 * whether or not args->workspace is given, so it may be NULL here). */
int attnrt_kernel_workspace_bytes(const attnrt_kernel *k, const attnrt_launch_args *args,
                                  uint64_t *bytes);
/* Checks, then launches on stream (a CUstream; NULL: the legacy default stream). */
int attnrt_kernel_launch(const attnrt_kernel *k, const attnrt_launch_args *args, void *stream);

/* JIT: options are "name=value" strings: "target=sm_90a", "cache_dir=/path",
 * "cache=0" (no cache), "-DNAME=VALUE" (a param override), "lazy=1"; other
 * "name=value" pairs are passed to the compiler and keyed. */
int attnrt_compile(const char *source, const char *const *options, int32_t num_options,
                   attnrt_module **out);
int attnrt_has_compiler(void); /* 1 if this build can compile */
/* What attnrt_compile did for module m, as one JSON object: {"cache": "hit" |
 * "miss" | "off", "key": the cache key, "cache_dir", "compile_seconds" (the
 * compilation, or reading the cache), "load_seconds", "ptx_bytes"}; "" for a
 * module loaded from a file or memory. Valid while m lives. */
const char *attnrt_module_compile_report_json(const attnrt_module *m);

/* Device helpers (current context, made current as for launches). */
int attnrt_driver_info(char *buf, size_t size); /* ATTNRT_OK if a driver can be loaded */
int attnrt_device_alloc(size_t bytes, uint64_t *out);
int attnrt_device_free(uint64_t ptr);
int attnrt_memcpy_htod(uint64_t dst, const void *src, size_t bytes);
int attnrt_memcpy_dtoh(void *dst, uint64_t src, size_t bytes);
int attnrt_memset(uint64_t dst, unsigned char value, size_t bytes);
int attnrt_synchronize(void *stream); /* NULL: the whole context */

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* ATTNC_ATTNRT_H */

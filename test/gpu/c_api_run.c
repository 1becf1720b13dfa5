/* c_api_run.c - run one attnc kernel through libattnrt's C API, from C.
 *
 *   c_api_run MODULE.ptx VARIANT DTYPE B HQ HKV LQ LK D DIR
 *
 * Reads DIR/q.bin, k.bin, v.bin (raw 16-bit bf16 or fp16, C order), loads
 * the module with attnrt_module_load_file, launches the variant with
 * attnrt_kernel_launch on device buffers from attnrt_device_alloc, and writes
 * DIR/o.bin (same dtype) and DIR/lse.bin (f32). test/gpu/check_apis.py
 * compares them with the reference executor. Exit 1 with the runtime's
 * message on any error. */
#include "attnc/attnrt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check(int status, const char *what) {
  if (status != ATTNRT_OK) {
    fprintf(stderr, "c_api_run: %s: %s (%s)\n", what, attnrt_last_error(), attnrt_status_name(status));
    exit(1);
  }
  return status;
}

static void *read_file(const char *dir, const char *name, size_t bytes) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "c_api_run: cannot open %s\n", path);
    exit(1);
  }
  void *buf = malloc(bytes);
  if (fread(buf, 1, bytes, f) != bytes) {
    fprintf(stderr, "c_api_run: %s is shorter than %zu bytes\n", path, bytes);
    exit(1);
  }
  fclose(f);
  return buf;
}

static void write_file(const char *dir, const char *name, const void *buf, size_t bytes) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(buf, 1, bytes, f) != bytes) {
    fprintf(stderr, "c_api_run: cannot write %s\n", path);
    exit(1);
  }
  fclose(f);
}

static attnrt_tensor tensor(uint64_t data, int dtype, int rank, const int64_t *sizes) {
  attnrt_tensor t;
  memset(&t, 0, sizeof t);
  t.data = data;
  t.dtype = dtype;
  t.rank = rank;
  int64_t stride = 1;
  for (int i = rank - 1; i >= 0; --i) {
    t.sizes[i] = sizes[i];
    t.strides[i] = stride;
    stride *= sizes[i];
  }
  return t;
}

int main(int argc, char **argv) {
  if (argc != 11) {
    fprintf(stderr, "usage: c_api_run MODULE VARIANT bf16|fp16 B HQ HKV LQ LK D DIR\n");
    return 2;
  }
  int dtype = strcmp(argv[3], "bf16") == 0 ? ATTNRT_DTYPE_BF16 : ATTNRT_DTYPE_F16;
  int64_t B = atoll(argv[4]), HQ = atoll(argv[5]), HKV = atoll(argv[6]), LQ = atoll(argv[7]), LK = atoll(argv[8]),
          D = atoll(argv[9]);
  const char *dir = argv[10];
  size_t qn = (size_t)(B * HQ * LQ * D), kn = (size_t)(B * HKV * LK * D), ln = (size_t)(B * HQ * LQ);

  attnrt_module *module = NULL;
  attnrt_kernel *kernel = NULL;
  check(attnrt_module_load_file(argv[1], 0, &module), "loading the module");
  check(attnrt_module_variant(module, argv[2], &kernel), "finding the variant");

  void *hq = read_file(dir, "q.bin", qn * 2), *hk = read_file(dir, "k.bin", kn * 2), *hv = read_file(dir, "v.bin", kn * 2);
  uint64_t dq, dk, dv, dout, dlse;
  check(attnrt_device_alloc(qn * 2, &dq), "alloc q");
  check(attnrt_device_alloc(kn * 2, &dk), "alloc k");
  check(attnrt_device_alloc(kn * 2, &dv), "alloc v");
  check(attnrt_device_alloc(qn * 2, &dout), "alloc o");
  check(attnrt_device_alloc(ln * 4, &dlse), "alloc lse");
  check(attnrt_memcpy_htod(dq, hq, qn * 2), "copy q");
  check(attnrt_memcpy_htod(dk, hk, kn * 2), "copy k");
  check(attnrt_memcpy_htod(dv, hv, kn * 2), "copy v");
  check(attnrt_memset(dout, 0xff, qn * 2), "poison o");

  int64_t qs[4] = {B, HQ, LQ, D}, ks[4] = {B, HKV, LK, D}, ls[3] = {B, HQ, LQ};
  attnrt_tensor tq = tensor(dq, dtype, 4, qs), tk = tensor(dk, dtype, 4, ks), tv = tensor(dv, dtype, 4, ks),
                to = tensor(dout, dtype, 4, qs), tl = tensor(dlse, ATTNRT_DTYPE_F32, 3, ls);
  attnrt_launch_args args;
  memset(&args, 0, sizeof args);
  args.struct_size = sizeof args;
  args.q = &tq;
  args.k = &tk;
  args.v = &tv;
  args.o = &to;
  args.lse = &tl;
  check(attnrt_kernel_launch(kernel, &args, NULL), "launching");
  check(attnrt_synchronize(NULL), "synchronizing");

  void *ho = malloc(qn * 2), *hl = malloc(ln * 4);
  check(attnrt_memcpy_dtoh(ho, dout, qn * 2), "copy o back");
  check(attnrt_memcpy_dtoh(hl, dlse, ln * 4), "copy lse back");
  write_file(dir, "o.bin", ho, qn * 2);
  write_file(dir, "lse.bin", hl, ln * 4);
  attnrt_device_free(dq);
  attnrt_device_free(dk);
  attnrt_device_free(dv);
  attnrt_device_free(dout);
  attnrt_device_free(dlse);
  attnrt_kernel_free(kernel);
  attnrt_module_free(module);
  free(hq);
  free(hk);
  free(hv);
  free(ho);
  free(hl);
  printf("c_api_run: %s %s ok\n", argv[1], argv[2]);
  return 0;
}

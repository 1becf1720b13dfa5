/*===- smoke_c.c - GPU smoke test of libattnrt's C API ---------------------===//
 *
 *   attnrt_smoke_c TESTDATA_DIR
 *
 * Needs a GPU (run by scripts/gpu_runtime_check.sh). A plain C program
 * linked against libattnrt.so: loads the runtime test fixture
 * naive_attention_causal.ptx (hand-written kernel, not attnc output) through
 * the C API, launches the causal variant on random bf16 data (GQA 4/2,
 * qlen 100, klen 130, head dim 128), compares O and LSE with a double
 * precision reference (rel L2 <= 1e-2), and checks the error paths: a wrong
 * shape gives ATTNRT_ERROR_INVALID_ARGUMENT naming the argument, and
 * layer() on a module without a model gives ATTNRT_ERROR_NOT_FOUND.
 * Prints one line per check and "N passed, M failed"; exits 1 on a failure.
 *
 *===----------------------------------------------------------------------===*/
#include "attnc/attnrt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed = 0, failed = 0;

static void report(int ok, const char *what, const char *detail) {
  if (ok)
    passed++;
  else
    failed++;
  printf("%s %s%s%s\n", ok ? "PASS" : "FAIL", what, detail && *detail ? ": " : "",
         detail ? detail : "");
  fflush(stdout);
}

static uint16_t to_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  u += 0x7fff + ((u >> 16) & 1); /* round to nearest even (finite inputs) */
  return (uint16_t)(u >> 16);
}

static double from_bf16(uint16_t b) {
  uint32_t u = (uint32_t)b << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static uint32_t rng_state = 12345u;
static float rnd(void) { /* uniform in [-1, 1) */
  rng_state = rng_state * 1664525u + 1013904223u;
  return (float)((rng_state >> 8) & 0xffffff) / 8388608.0f - 1.0f;
}

static void contiguous(attnrt_tensor *t, uint64_t data, int dtype, int rank, const int64_t *sizes) {
  int i;
  memset(t, 0, sizeof *t);
  t->data = data;
  t->dtype = dtype;
  t->rank = rank;
  for (i = 0; i < rank; ++i)
    t->sizes[i] = sizes[i];
  t->strides[rank - 1] = 1;
  for (i = rank - 1; i > 0; --i)
    t->strides[i - 1] = t->strides[i] * sizes[i];
}

#define CHECK(call)                                                                                \
  do {                                                                                             \
    int st_ = (call);                                                                              \
    if (st_ != ATTNRT_OK) {                                                                        \
      printf("FAIL %s: %s: %s\n", #call, attnrt_status_name(st_), attnrt_last_error());          \
      printf("%d passed, %d failed\n", passed, failed + 1);                                        \
      return 1;                                                                                    \
    }                                                                                              \
  } while (0)

int main(int argc, char **argv) {
  enum { B = 2, HQ = 4, HKV = 2, LQ = 100, LK = 130, D = 128 };
  char path[4096], info[256], detail[512];
  attnrt_module *mod = NULL;
  attnrt_kernel *kern = NULL, *none = NULL;
  attnrt_tensor q, k, v, o, lse, vbad;
  attnrt_launch_args args;
  attnrt_launch_plan plan;
  uint64_t dq, dk, dv, dout, dlse;
  size_t nq = (size_t)B * HQ * LQ * D, nk = (size_t)B * HKV * LK * D, i;
  uint16_t *hq = malloc(nq * 2), *hk = malloc(nk * 2), *hv = malloc(nk * 2), *hout = malloc(nq * 2);
  float *hlse = malloc((size_t)B * HQ * LQ * 4);
  double *s = malloc(LK * sizeof(double)), num = 0, den = 0, lse_err = 0;
  int64_t qs[4] = {B, HQ, LQ, D}, ks[4] = {B, HKV, LK, D}, ls[3] = {B, HQ, LQ},
          vbs[4] = {B, HKV, LK - 1, D};
  int b, h, r, c, d, st;

  if (argc < 2) {
    fprintf(stderr, "usage: %s TESTDATA_DIR\n", argv[0]);
    return 2;
  }
  if (attnrt_driver_info(info, sizeof info) != ATTNRT_OK) {
    printf("FAIL driver: %s\n0 passed, 1 failed\n", attnrt_last_error());
    return 1;
  }
  printf("driver: %s; libattnrt %s (C API %d)\n", info, attnrt_version(), attnrt_api_version());
  snprintf(path, sizeof path, "%s/naive_attention_causal.ptx", argv[1]);
  CHECK(attnrt_module_load_file(path, 0, &mod));
  CHECK(attnrt_module_variant(mod, "causal", &kern));

  for (i = 0; i < nq; ++i)
    hq[i] = to_bf16(rnd() * 2.0f);
  for (i = 0; i < nk; ++i) {
    hk[i] = to_bf16(rnd() * 2.0f);
    hv[i] = to_bf16(rnd());
  }
  CHECK(attnrt_device_alloc(nq * 2, &dq));
  CHECK(attnrt_device_alloc(nk * 2, &dk));
  CHECK(attnrt_device_alloc(nk * 2, &dv));
  CHECK(attnrt_device_alloc(nq * 2, &dout));
  CHECK(attnrt_device_alloc((size_t)B * HQ * LQ * 4, &dlse));
  CHECK(attnrt_memcpy_htod(dq, hq, nq * 2));
  CHECK(attnrt_memcpy_htod(dk, hk, nk * 2));
  CHECK(attnrt_memcpy_htod(dv, hv, nk * 2));

  contiguous(&q, dq, ATTNRT_DTYPE_BF16, 4, qs);
  contiguous(&k, dk, ATTNRT_DTYPE_BF16, 4, ks);
  contiguous(&v, dv, ATTNRT_DTYPE_BF16, 4, ks);
  contiguous(&o, dout, ATTNRT_DTYPE_BF16, 4, qs);
  contiguous(&lse, dlse, ATTNRT_DTYPE_F32, 3, ls);
  memset(&args, 0, sizeof args);
  args.struct_size = sizeof args;
  args.q = &q;
  args.k = &k;
  args.v = &v;
  args.o = &o;
  args.lse = &lse;

  CHECK(attnrt_kernel_check(kern, &args, &plan));
  snprintf(detail, sizeof detail, "grid [%u, %u, %u], block %u, %u bytes shared", plan.grid[0],
           plan.grid[1], plan.grid[2], plan.block[0], plan.shared_bytes);
  report(plan.grid[0] == 2 && plan.grid[1] == HQ && plan.grid[2] == B && plan.shared_bytes == 65536,
         "attnrt_kernel_check plan", detail);

  CHECK(attnrt_kernel_launch(kern, &args, NULL));
  CHECK(attnrt_synchronize(NULL));
  CHECK(attnrt_memcpy_dtoh(hout, dout, nq * 2));
  CHECK(attnrt_memcpy_dtoh(hlse, dlse, (size_t)B * HQ * LQ * 4));

  for (b = 0; b < B; ++b)
    for (h = 0; h < HQ; ++h)
      for (r = 0; r < LQ; ++r) {
        int hk2 = h / (HQ / HKV);
        long qpos = r + (LK - LQ);
        double mx = -INFINITY, sum = 0, acc[D], ref_lse;
        size_t row = ((size_t)b * HQ + h) * LQ + r;
        for (c = 0; c < LK; ++c) {
          double dot = 0;
          if (c > qpos) {
            s[c] = -INFINITY;
            continue;
          }
          for (d = 0; d < D; ++d)
            dot += from_bf16(hq[row * D + d]) * from_bf16(hk[(((size_t)b * HKV + hk2) * LK + c) * D + d]);
          s[c] = dot / sqrt((double)D);
          if (s[c] > mx)
            mx = s[c];
        }
        for (d = 0; d < D; ++d)
          acc[d] = 0;
        for (c = 0; c < LK; ++c) {
          double p;
          if (isinf(s[c]))
            continue;
          p = exp(s[c] - mx);
          sum += p;
          for (d = 0; d < D; ++d)
            acc[d] += p * from_bf16(hv[(((size_t)b * HKV + hk2) * LK + c) * D + d]);
        }
        ref_lse = mx + log(sum);
        if (fabs(ref_lse - hlse[row]) > lse_err)
          lse_err = fabs(ref_lse - hlse[row]);
        for (d = 0; d < D; ++d) {
          double ref = acc[d] / sum, got = from_bf16(hout[row * D + d]);
          num += (got - ref) * (got - ref);
          den += ref * ref;
        }
      }
  snprintf(detail, sizeof detail, "rel L2(O) = %.2e, max |dLSE| = %.2e", sqrt(num / den), lse_err);
  report(sqrt(num / den) <= 1e-2 && lse_err <= 1e-2, "C API launch causal bf16 D=128 GQA 4/2", detail);

  /* A bad argument: v with klen - 1 rows. */
  contiguous(&vbad, dv, ATTNRT_DTYPE_BF16, 4, vbs);
  args.v = &vbad;
  st = attnrt_kernel_launch(kern, &args, NULL);
  snprintf(detail, sizeof detail, "%s [arg '%s']", attnrt_last_error(), attnrt_last_error_arg());
  report(st == ATTNRT_ERROR_INVALID_ARGUMENT && strcmp(attnrt_last_error_arg(), "v") == 0,
         "bad argument -> ATTNRT_ERROR_INVALID_ARGUMENT", detail);
  args.v = &v;

  st = attnrt_module_layer(mod, 0, &none);
  report(st == ATTNRT_ERROR_NOT_FOUND && none == NULL, "layer() without a model -> NOT_FOUND",
         attnrt_last_error());

  attnrt_device_free(dq);
  attnrt_device_free(dk);
  attnrt_device_free(dv);
  attnrt_device_free(dout);
  attnrt_device_free(dlse);
  attnrt_kernel_free(kern);
  attnrt_module_free(mod);
  free(hq);
  free(hk);
  free(hv);
  free(hout);
  free(hlse);
  free(s);
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}

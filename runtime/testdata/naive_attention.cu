// naive_attention.cu - RUNTIME TEST FIXTURE ONLY. NOT attnc's code generator.
//
// A deliberately simple CUDA attention kernel, written by hand, so that
// libattnrt's loading, manifest, argument packing and launching can be tested
// on a GPU before the real code generator exists. It follows the manifest's
// argument vocabulary (docs/runtime.md) and nothing else about attnc's
// kernels: one thread per query row, fp32 math (rows kept in local memory: the
// loops are not unrolled, which keeps the PTX small), keys streamed through dynamic
// shared memory as fp32 tiles (so head dims 128 and 256 need more than 48 KiB
// and exercise the runtime's shared-memory limit raise), online softmax.
//
// Two variants, each for bf16/fp16 x head dims 64/128/256:
//   causal           mask k <= q
//   doc_causal_sink  mask doc[b, q] == doc[b, k] && k <= q, with per-head sinks;
//                    input doc : i32[batch, token]
// with q = row + q_offset, k = col + k_offset. An empty row writes O = 0 and
// LSE = -inf (LSE = the sink logit with a sink), as language.md specifies.
//
// runtime/testdata/make_testdata.sh compiles this to PTX (nvcc -ptx, sm_90a)
// and prepends the manifest block; the results are committed next to it.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace {

constexpr int kBlockM = 64; // query rows per block = threads per block

__device__ __forceinline__ float toFloat(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float toFloat(__half x) { return __half2float(x); }
template <typename T> __device__ __forceinline__ T fromFloat(float x);
template <> __device__ __forceinline__ __nv_bfloat16 fromFloat<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}
template <> __device__ __forceinline__ __half fromFloat<__half>(float x) { return __float2half_rn(x); }

template <typename T, int D, int BN, bool kDocSink>
__device__ __forceinline__ void attend(const T *__restrict__ q, const T *__restrict__ k,
                                       const T *__restrict__ v, T *__restrict__ o,
                                       float *__restrict__ lse, long long qsb, long long qsh,
                                       long long qsl, long long ksb, long long ksh, long long ksl,
                                       long long vsb, long long vsh, long long vsl, long long osb,
                                       long long osh, long long osl, long long lsb, long long lsh,
                                       int batch, int heads_q, int heads_kv, int qlen, int klen,
                                       long long q_offset, long long k_offset, float scale,
                                       const float *__restrict__ sinks, const int *__restrict__ doc,
                                       long long doc_sb, long long doc_len) {
  extern __shared__ float smem[]; // K tile [BN][D], then V tile [BN][D]
  float *ks = smem, *vs = smem + BN * D;
  (void)batch;
  (void)doc_len;
  const int b = blockIdx.z, h = blockIdx.y;
  const int hk = h / (heads_q / heads_kv);
  const int row = blockIdx.x * kBlockM + threadIdx.x;
  const bool active = row < qlen;
  const long long qpos = (long long)row + q_offset;
  // The block's last query position bounds the causal key range.
  const int lastRow = min(qlen - 1, (int)(blockIdx.x * kBlockM + kBlockM - 1));
  const long long maxQpos = (long long)lastRow + q_offset;
  long long colEnd = maxQpos - k_offset + 1; // keys with col < colEnd may be allowed
  if (colEnd > klen)
    colEnd = klen;

  float qv[D], acc[D];
  float m = -INFINITY, l = 0.f;
  int qdoc = 0;
  if (active) {
    const T *qr = q + b * qsb + h * qsh + row * qsl;
#pragma unroll 1
    for (int d = 0; d < D; ++d) {
      qv[d] = toFloat(qr[d]) * scale;
      acc[d] = 0.f;
    }
    if (kDocSink)
      qdoc = doc[b * doc_sb + qpos];
  }

  for (long long c0 = 0; c0 < colEnd; c0 += BN) {
    __syncthreads();
#pragma unroll 1
    for (int i = threadIdx.x; i < BN * D; i += kBlockM) {
      int j = i / D, d = i % D;
      long long col = c0 + j;
      float kx = 0.f, vx = 0.f;
      if (col < klen) {
        kx = toFloat(k[b * ksb + hk * ksh + col * ksl + d]);
        vx = toFloat(v[b * vsb + hk * vsh + col * vsl + d]);
      }
      ks[i] = kx;
      vs[i] = vx;
    }
    __syncthreads();
    if (!active)
      continue;
#pragma unroll 1
    for (int j = 0; j < BN; ++j) {
      long long col = c0 + j;
      if (col >= klen)
        break;
      long long kpos = col + k_offset;
      if (kpos > qpos)
        break; // causal: later keys are all masked for this row
      if (kDocSink && doc[b * doc_sb + kpos] != qdoc)
        continue;
      float s = 0.f;
#pragma unroll 1
      for (int d = 0; d < D; ++d)
        s += qv[d] * ks[j * D + d];
      float mNew = fmaxf(m, s);
      float alpha = __expf(m - mNew); // 0 when m = -inf
      float p = __expf(s - mNew);
      l = l * alpha + p;
#pragma unroll 1
      for (int d = 0; d < D; ++d)
        acc[d] = acc[d] * alpha + p * vs[j * D + d];
      m = mNew;
    }
  }
  if (!active)
    return;
  if (kDocSink) {
    float sk = sinks[h];
    float mNew = fmaxf(m, sk);
    float alpha = (m == -INFINITY) ? 0.f : __expf(m - mNew);
    l = l * alpha + __expf(sk - mNew);
#pragma unroll 1
    for (int d = 0; d < D; ++d)
      acc[d] *= alpha;
    m = mNew;
  }
  T *orow = o + b * osb + h * osh + row * osl;
  if (l == 0.f) {
#pragma unroll 1
    for (int d = 0; d < D; ++d)
      orow[d] = fromFloat<T>(0.f);
    lse[b * lsb + h * lsh + row] = -INFINITY;
    return;
  }
  float inv = 1.f / l;
#pragma unroll 1
  for (int d = 0; d < D; ++d)
    orow[d] = fromFloat<T>(acc[d] * inv);
  lse[b * lsb + h * lsh + row] = m + logf(l);
}

} // namespace

#define ATTNC_FIXTURE_PARAMS(T)                                                                   \
  const T *q, const T *k, const T *v, T *o, float *lse, long long qsb, long long qsh,             \
      long long qsl, long long ksb, long long ksh, long long ksl, long long vsb, long long vsh,    \
      long long vsl, long long osb, long long osh, long long osl, long long lsb, long long lsh,    \
      int batch, int heads_q, int heads_kv, int qlen, int klen, long long q_offset,               \
      long long k_offset, float scale
#define ATTNC_FIXTURE_ARGS                                                                        \
  q, k, v, o, lse, qsb, qsh, qsl, ksb, ksh, ksl, vsb, vsh, vsl, osb, osh, osl, lsb, lsh, batch,  \
      heads_q, heads_kv, qlen, klen, q_offset, k_offset, scale

#define ATTNC_FIXTURE_CAUSAL(NAME, T, D, BN)                                                      \
  extern "C" __global__ void __launch_bounds__(kBlockM) NAME(ATTNC_FIXTURE_PARAMS(T)) {            \
    attend<T, D, BN, false>(ATTNC_FIXTURE_ARGS, nullptr, nullptr, 0, 0);                          \
  }
#define ATTNC_FIXTURE_DOC_SINK(NAME, T, D, BN)                                                    \
  extern "C" __global__ void __launch_bounds__(kBlockM)                                           \
      NAME(ATTNC_FIXTURE_PARAMS(T), const float *sinks, const int *doc, long long doc_sb,         \
           long long doc_len) {                                                                   \
    attend<T, D, BN, true>(ATTNC_FIXTURE_ARGS, sinks, doc, doc_sb, doc_len);                      \
  }

ATTNC_FIXTURE_CAUSAL(attnc_fixture_causal_bf16_d64, __nv_bfloat16, 64, 64)
ATTNC_FIXTURE_CAUSAL(attnc_fixture_causal_bf16_d128, __nv_bfloat16, 128, 64)
ATTNC_FIXTURE_CAUSAL(attnc_fixture_causal_bf16_d256, __nv_bfloat16, 256, 32)
ATTNC_FIXTURE_CAUSAL(attnc_fixture_causal_fp16_d64, __half, 64, 64)
ATTNC_FIXTURE_CAUSAL(attnc_fixture_causal_fp16_d128, __half, 128, 64)
ATTNC_FIXTURE_CAUSAL(attnc_fixture_causal_fp16_d256, __half, 256, 32)

#ifndef ATTNC_FIXTURE_CAUSAL_ONLY
ATTNC_FIXTURE_DOC_SINK(attnc_fixture_doc_causal_sink_bf16_d64, __nv_bfloat16, 64, 64)
ATTNC_FIXTURE_DOC_SINK(attnc_fixture_doc_causal_sink_bf16_d128, __nv_bfloat16, 128, 64)
ATTNC_FIXTURE_DOC_SINK(attnc_fixture_doc_causal_sink_bf16_d256, __nv_bfloat16, 256, 32)
ATTNC_FIXTURE_DOC_SINK(attnc_fixture_doc_causal_sink_fp16_d64, __half, 64, 64)
ATTNC_FIXTURE_DOC_SINK(attnc_fixture_doc_causal_sink_fp16_d128, __half, 128, 64)
ATTNC_FIXTURE_DOC_SINK(attnc_fixture_doc_causal_sink_fp16_d256, __half, 256, 32)
#endif

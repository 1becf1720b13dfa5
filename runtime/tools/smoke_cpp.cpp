//===- smoke_cpp.cpp - GPU smoke test of libattnrt's C++ API --------------===//
//
//   attnrt_smoke_cpp TESTDATA_DIR [CUBIN_PATH]
//
// Needs a GPU (run by scripts/gpu_runtime_check.sh). Loads the runtime test
// fixtures (runtime/testdata/naive_attention_{causal,model}.ptx, hand-written
// kernels, not attnc output), launches them through attnc::Module /
// attnc::Kernel on random bf16/fp16 data over a matrix of shapes (GQA, qlen !=
// klen, decode, every head dim, strided q, explicit offsets, empty rows, the
// model's layer table, sinks and a token-indexed input) and compares O and
// LSE with a float64 host reference: rel L2 of O <= 1e-2, LSE within 1e-2
// (and -inf exactly where the row is empty). Also checks that a bad argument
// throws before anything is launched (the output buffer stays untouched),
// and, given CUBIN_PATH, loads a cubin with its sidecar manifest.
// Prints one line per check and "N passed, M failed"; exits 1 on a failure.
//
//===----------------------------------------------------------------------===//
#include "attnc/Runtime.h"
#include "support/Half.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

using namespace attnc;

namespace {

int passed = 0, failed = 0;

void report(bool ok, const std::string &what, const std::string &detail = "") {
  (ok ? passed : failed)++;
  std::printf("%s %s%s%s\n", ok ? "PASS" : "FAIL", what.c_str(), detail.empty() ? "" : ": ",
              detail.c_str());
  std::fflush(stdout);
}

uint16_t toBits(float x, DType dt) {
  return dt == DType::BF16 ? support::floatToBf16(x) : support::floatToHalf(x);
}
double fromBits(uint16_t b, DType dt) {
  return dt == DType::BF16 ? support::bf16ToFloat(b) : support::halfToFloat(b);
}

/// A device buffer freed on scope exit.
struct DevBuf {
  uint64_t ptr = 0;
  size_t bytes = 0;
  explicit DevBuf(size_t n) : ptr(device::alloc(n)), bytes(n) {}
  ~DevBuf() {
    try {
      device::free(ptr);
    } catch (...) {
    }
  }
  DevBuf(const DevBuf &) = delete;
  DevBuf &operator=(const DevBuf &) = delete;
};

struct Case {
  std::string name;
  int layer = -1; ///< >= 0: run the model's layer; else the variant below
  std::string variant = "causal";
  int64_t B = 1, Hq = 1, Hkv = 1, Lq = 1, Lk = 1, D = 64;
  DType dt = DType::BF16;
  std::optional<int64_t> qOff, kOff;
  bool stridedQ = false; ///< q stored as [B, Lq, Hq, D] memory (a transposed view)
};

bool runCase(const Module &m, const Case &c, std::mt19937 &rng) {
  Kernel kern = c.layer >= 0 ? m.layer(c.layer) : m.variant(c.variant);
  const VariantSpec &spec = kern.spec();
  const bool docSink = spec.sink;
  std::normal_distribution<float> nd(0.f, 1.f);
  auto randomHalf = [&](size_t n) {
    std::vector<uint16_t> v(n);
    for (auto &x : v)
      x = toBits(nd(rng), c.dt);
    return v;
  };
  const int64_t B = c.B, Hq = c.Hq, Hkv = c.Hkv, Lq = c.Lq, Lk = c.Lk, D = c.D;
  std::vector<uint16_t> q = randomHalf(size_t(B * Hq * Lq * D));
  std::vector<uint16_t> k = randomHalf(size_t(B * Hkv * Lk * D));
  std::vector<uint16_t> v = randomHalf(size_t(B * Hkv * Lk * D));
  const int64_t qOff = c.qOff.value_or(Lk - Lq), kOff = c.kOff.value_or(0);
  const int64_t T = std::max(qOff + Lq, kOff + Lk); // token axis length for doc
  std::vector<int32_t> doc(static_cast<size_t>(B * T));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      doc[size_t(b * T + t)] = int32_t((t + b) / 37); // documents of 37 tokens
  std::vector<float> sinks(static_cast<size_t>(Hq));
  for (auto &s : sinks)
    s = nd(rng);

  // q's logical index (b, h, l, d) -> memory offset.
  int64_t qs[4];
  if (c.stridedQ) {
    qs[0] = Lq * Hq * D;
    qs[1] = D;
    qs[2] = Hq * D;
    qs[3] = 1;
  } else {
    qs[0] = Hq * Lq * D;
    qs[1] = Lq * D;
    qs[2] = D;
    qs[3] = 1;
  }
  std::vector<uint16_t> qMem(q.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h)
      for (int64_t l = 0; l < Lq; ++l)
        for (int64_t d = 0; d < D; ++d)
          qMem[size_t(b * qs[0] + h * qs[1] + l * qs[2] + d)] =
              q[size_t(((b * Hq + h) * Lq + l) * D + d)];

  DevBuf dq(qMem.size() * 2), dk(k.size() * 2), dv(v.size() * 2), dout(q.size() * 2),
      dlse(size_t(B * Hq * Lq) * 4), ddoc(doc.size() * 4), dsinks(sinks.size() * 4);
  device::copyToDevice(dq.ptr, qMem.data(), dq.bytes);
  device::copyToDevice(dk.ptr, k.data(), dk.bytes);
  device::copyToDevice(dv.ptr, v.data(), dv.bytes);
  device::copyToDevice(ddoc.ptr, doc.data(), ddoc.bytes);
  device::copyToDevice(dsinks.ptr, sinks.data(), dsinks.bytes);
  device::memset(dout.ptr, 0xff, dout.bytes);

  LaunchArgs a;
  a.q.data = dq.ptr;
  a.q.dtype = c.dt;
  a.q.sizes = {B, Hq, Lq, D};
  a.q.strides = {qs[0], qs[1], qs[2], qs[3]};
  a.k = TensorRef::contiguous(dk.ptr, c.dt, {B, Hkv, Lk, D});
  a.v = TensorRef::contiguous(dv.ptr, c.dt, {B, Hkv, Lk, D});
  a.o = TensorRef::contiguous(dout.ptr, c.dt, {B, Hq, Lq, D});
  a.lse = TensorRef::contiguous(dlse.ptr, DType::F32, {B, Hq, Lq});
  a.qOffset = c.qOff;
  a.kOffset = c.kOff;
  if (docSink) {
    a.sinks = TensorRef::contiguous(dsinks.ptr, DType::F32, {Hq});
    a.inputs["doc"] = TensorRef::contiguous(ddoc.ptr, DType::I32, {B, T});
  }
  kern.launch(a, nullptr);
  device::synchronize(nullptr);
  std::vector<uint16_t> out(q.size());
  std::vector<float> lse(static_cast<size_t>(B * Hq * Lq));
  device::copyToHost(out.data(), dout.ptr, dout.bytes);
  device::copyToHost(lse.data(), dlse.ptr, dlse.bytes);

  // float64 reference.
  const double scale = 1.0 / std::sqrt(double(D));
  double num = 0, den = 0, lseErr = 0;
  bool infOk = true;
  std::vector<double> s(static_cast<size_t>(Lk)), acc(static_cast<size_t>(D));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h)
      for (int64_t r = 0; r < Lq; ++r) {
        const int64_t hk = h / (Hq / Hkv), qpos = r + qOff;
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t col = 0; col < Lk; ++col) {
          const int64_t kpos = col + kOff;
          bool allowed = kpos <= qpos;
          if (allowed && docSink)
            allowed = doc[size_t(b * T + qpos)] == doc[size_t(b * T + kpos)];
          if (!allowed) {
            s[size_t(col)] = -std::numeric_limits<double>::infinity();
            continue;
          }
          double dot = 0;
          for (int64_t d = 0; d < D; ++d)
            dot += fromBits(q[size_t(((b * Hq + h) * Lq + r) * D + d)], c.dt) *
                   fromBits(k[size_t(((b * Hkv + hk) * Lk + col) * D + d)], c.dt);
          s[size_t(col)] = dot * scale;
          mx = std::max(mx, s[size_t(col)]);
        }
        if (docSink)
          mx = std::max(mx, double(sinks[size_t(h)]));
        double sum = docSink ? std::exp(double(sinks[size_t(h)]) - mx) : 0.0;
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t col = 0; col < Lk; ++col) {
          if (std::isinf(s[size_t(col)]))
            continue;
          double p = std::exp(s[size_t(col)] - mx);
          sum += p;
          for (int64_t d = 0; d < D; ++d)
            acc[size_t(d)] += p * fromBits(v[size_t(((b * Hkv + hk) * Lk + col) * D + d)], c.dt);
        }
        const size_t row = size_t((b * Hq + h) * Lq + r);
        double refLse = sum == 0 ? -std::numeric_limits<double>::infinity() : mx + std::log(sum);
        double gotLse = lse[row];
        if (std::isinf(refLse) || std::isinf(gotLse))
          infOk &= std::isinf(refLse) && std::isinf(gotLse) && gotLse < 0;
        else
          lseErr = std::max(lseErr, std::fabs(refLse - gotLse));
        for (int64_t d = 0; d < D; ++d) {
          double ref = sum == 0 ? 0.0 : acc[size_t(d)] / sum;
          double got = fromBits(out[row * size_t(D) + size_t(d)], c.dt);
          num += (got - ref) * (got - ref);
          den += ref * ref;
        }
      }
  double rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  bool ok = rel <= 1e-2 && lseErr <= 1e-2 && infOk && std::isfinite(rel);
  char detail[256];
  std::snprintf(detail, sizeof detail, "%s via %s, rel L2(O) = %.2e, max |dLSE| = %.2e%s",
                spec.kernels[spec.findKernel(D, c.dt) - spec.kernels.data()].symbol.c_str(),
                c.layer >= 0 ? ("layer(" + std::to_string(c.layer) + ")").c_str() : "variant()",
                rel, lseErr, infOk ? "" : ", -inf LSE mismatch");
  report(ok, "launch " + c.name, detail);
  return ok;
}

void checkBadArgumentDoesNotLaunch(const Module &m) {
  Kernel kern = m.variant("causal");
  const int64_t B = 1, H = 2, L = 16, D = 64;
  DevBuf dq(size_t(B * H * L * D) * 2), dout(size_t(B * H * L * D) * 2), dlse(size_t(B * H * L) * 4);
  device::memset(dq.ptr, 0, dq.bytes);
  device::memset(dout.ptr, 0xab, dout.bytes);
  LaunchArgs a;
  a.q = TensorRef::contiguous(dq.ptr, DType::BF16, {B, H, L, D});
  a.k = TensorRef::contiguous(dq.ptr, DType::BF16, {B, H, L, D});
  a.v = TensorRef::contiguous(dq.ptr, DType::BF16, {B, H, L - 1, D}); // wrong klen
  a.o = TensorRef::contiguous(dout.ptr, DType::BF16, {B, H, L, D});
  a.lse = TensorRef::contiguous(dlse.ptr, DType::F32, {B, H, L});
  std::string msg;
  bool threw = false;
  try {
    kern.launch(a, nullptr);
  } catch (const Error &e) {
    threw = e.code() == ErrorCode::InvalidArgument && e.arg() == "v";
    msg = e.what();
  }
  device::synchronize(nullptr);
  std::vector<unsigned char> out(dout.bytes);
  device::copyToHost(out.data(), dout.ptr, dout.bytes);
  bool untouched = true;
  for (unsigned char b : out)
    untouched &= b == 0xab;
  report(threw && untouched, "bad argument raises and launches nothing", msg);
}

} // namespace

int main(int argc, char **argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s TESTDATA_DIR [CUBIN_PATH]\n", argv[0]);
    return 2;
  }
  std::string dir = argv[1];
  try {
    std::printf("driver: %s\n", device::driverInfo().c_str());
    Module causal = Module::loadFile(dir + "/naive_attention_causal.ptx");
    Module model = Module::loadFile(dir + "/naive_attention_model.ptx");
    report(model.numLayers() == 4 && model.layer(1).name() == "doc_causal_sink" &&
               model.layer(2).name() == "causal",
           "model layer table", "layers: " + model.layer(0).name() + ", " + model.layer(1).name() +
                                    ", " + model.layer(2).name() + ", " + model.layer(3).name());
    std::mt19937 rng(1234);
    std::vector<Case> cases;
    auto add = [&](Case c) { cases.push_back(std::move(c)); };
    add({"causal bf16 D=64 B=2 H=4 L=100", -1, "causal", 2, 4, 4, 100, 100, 64});
    add({"causal bf16 D=128 GQA 8/2 Lq=77 Lk=200", -1, "causal", 1, 8, 2, 77, 200, 128});
    add({"causal bf16 D=256 MQA 4/1 L=65", -1, "causal", 1, 4, 1, 65, 65, 256});
    add({"causal fp16 D=128 decode Lq=1 Lk=333", -1, "causal", 3, 4, 2, 1, 333, 128, DType::F16});
    add({"causal bf16 D=64 strided q", -1, "causal", 2, 3, 3, 50, 50, 64, DType::BF16, {}, {}, true});
    add({"causal bf16 D=64 offsets q=-20 (empty rows)", -1, "causal", 1, 2, 1, 40, 40, 64,
         DType::BF16, int64_t(-20), int64_t(0)});
    add({"causal fp16 D=64 offsets q=1000 k=990", -1, "causal", 1, 2, 2, 30, 45, 64, DType::F16,
         int64_t(1000), int64_t(990)});
    Case l1{"model layer 1 (doc_causal_sink) bf16 D=128", 1, "", 2, 4, 2, 90, 120, 128};
    add(l1);
    Case l3{"model layer 3 (doc_causal_sink) fp16 D=64 offsets", 3, "", 1, 2, 1, 20, 64, 64,
            DType::F16, int64_t(30), int64_t(0)};
    add(l3);
    Case l0{"model layer 0 (causal) bf16 D=256", 0, "", 1, 2, 2, 33, 33, 256};
    add(l0);
    for (const Case &c : cases) {
      try {
        runCase(c.layer >= 0 ? model : causal, c, rng);
      } catch (const Error &e) {
        report(false, "launch " + c.name, e.what());
      }
    }
    checkBadArgumentDoesNotLaunch(causal);
    if (argc >= 3) {
      try {
        Module cub = Module::loadFile(argv[2]);
        runCase(cub, {"cubin causal bf16 D=128", -1, "causal", 1, 4, 4, 70, 70, 128}, rng);
      } catch (const Error &e) {
        report(false, "cubin load and launch", e.what());
      }
    }
  } catch (const Error &e) {
    report(false, "setup", e.what());
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}

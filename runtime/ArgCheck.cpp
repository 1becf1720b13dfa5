//===- ArgCheck.cpp - Check launch arguments and pack kernel parameters ---===//
//
// checkArguments(): the pure function from (variant manifest, tensors,
// offsets) to a LaunchPlan or an Error(InvalidArgument) naming the argument,
// with the expected and the actual value. It runs before every launch and
// needs no GPU. The rules are listed in docs/runtime.md ("Argument checking");
// the order here is the order errors are reported in: q, k, v, o, lse, sinks,
// indexer, indices, inputs, offsets, grid limits (per stage, which also
// sizes the chunks of chunked stages and the workspace of tiled ones), the
// workspace, then in argument order the i32 parameter ranges and the TMA
// rules of tensormap arguments.
// tensorMapParams(): the encode parameters of a TMA descriptor, checked
// against cuTensorMapEncodeTiled's rules.
//
//===----------------------------------------------------------------------===//
#include "attnc/Runtime.h"
#include "runtime/CudaDriver.h"
#include "runtime/TensorMap.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <set>
#include <sstream>

namespace attnc {

namespace {

constexpr int64_t kMaxOffset = int64_t(1) << 40;
constexpr int64_t kMaxGridX = 2147483647;
constexpr int64_t kMaxGridYZ = 65535;
/// The most workspace one chunked launch may need (a single row block over
/// every key): far beyond any device, and small enough for 64-bit sums.
constexpr unsigned __int128 kMaxWorkspace = (unsigned __int128)1 << 62;

[[noreturn]] void bad(const std::string &arg, const std::string &msg) {
  throw Error(ErrorCode::InvalidArgument, arg + ": " + msg, arg);
}

std::string shapeStr(const std::vector<int64_t> &s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i)
    out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

std::string hex(uint64_t p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, p);
  return buf;
}

std::string join(const std::vector<std::string> &v, const char *sep = ", ") {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i)
    s += (i ? sep : "") + v[i];
  return s;
}

/// One expected dimension: a name and, if known, the value.
struct Dim {
  std::string name;
  int64_t value = -1; ///< -1: any value >= 1
  bool atLeast = false; ///< value is a minimum
};

std::string expectedShape(const std::vector<Dim> &dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    s += i ? ", " : "";
    if (dims[i].value < 0)
      s += dims[i].name;
    else
      s += (dims[i].atLeast ? ">=" : "") + std::to_string(dims[i].value);
  }
  s += "] (";
  for (size_t i = 0; i < dims.size(); ++i)
    s += (i ? ", " : "") + dims[i].name;
  return s + ")";
}

std::string dimNames(const std::vector<Dim> &dims) {
  std::vector<std::string> n;
  for (const auto &d : dims)
    n.push_back(d.name);
  return "[" + join(n) + "]";
}

/// ceil(a / b) for a >= 0, b >= 1.
int64_t ceilDiv(int64_t a, int64_t b) { return a / b + (a % b != 0); }

/// The workspace of tiled stage `k` (grid tiles_heads_batch): its bytes per
/// tile for each of the `tiles` tiles of each (batch entry, query head). B
/// and Hq are within the grid's y and z limits and tiles within 2^31 CTAs
/// of at most 32 warps, so the product fits 128 bits.
uint64_t tileWorkspace(const KernelSpec &k, int64_t B, int64_t Hq, int64_t Lq, int64_t Lk,
                       int64_t tiles, const std::string &ofStage) {
  const int64_t perTile = k.workspacePerTile.value_or(1);
  const unsigned __int128 bytes = (unsigned __int128)B * (unsigned __int128)Hq *
                                  (unsigned __int128)tiles * (unsigned __int128)perTile;
  if (bytes > kMaxWorkspace)
    bad("q", "batch = " + std::to_string(B) + ", heads_q = " + std::to_string(Hq) + ", qlen = " +
                 std::to_string(Lq) + " and klen = " + std::to_string(Lk) +
                 " need more than 2^62 bytes of workspace (batch x heads_q x " + std::to_string(tiles) +
                 " tiles x " + std::to_string(perTile) + " bytes per tile)" + ofStage);
  return uint64_t(bytes);
}

/// How the workspace of stage `s` (kernel `k`) is sized, for the message of
/// a too small one, e.g. "stage 'select': 128 row blocks per launch x
/// block_m 64 x klen 32768 x 4 bytes per key".
std::string workspaceFormula(const StagePlan &s, const KernelSpec &k, int64_t B, int64_t Hq,
                             int64_t Lq, int64_t Lk) {
  std::string f = "stage '" + k.stage + "': ";
  const std::string rows = k.workspacePerRow ? "batch " + std::to_string(B) + " x heads_q " + std::to_string(Hq) +
                                                   " x qlen " + std::to_string(Lq) + " x " +
                                                   std::to_string(*k.workspacePerRow) + " bytes per row (Delta)"
                                             : "";
  if (s.tiled())
    return f + "batch " + std::to_string(B) + " x heads_q " + std::to_string(Hq) + " x " +
           std::to_string(s.tiles) + " tiles (ceil(qlen " + std::to_string(Lq) + " / block_m " +
           std::to_string(k.blockM) + ") + ceil(klen " + std::to_string(Lk) + " / block_n " +
           std::to_string(k.blockN) + ")) x " + std::to_string(k.workspacePerTile.value_or(0)) +
           " bytes per tile" + (rows.empty() ? "" : ", then " + rows);
  if (k.workspacePerRow)
    return f + rows;
  return f + std::to_string(s.chunkBlocks) + " row blocks per launch x block_m " +
         std::to_string(k.blockM) + " x klen " + std::to_string(Lk) + " x " +
         std::to_string(k.workspacePerKey.value_or(0)) + " bytes per key";
}

/// How strictly a tensor's memory must be aligned.
enum class Align {
  Vector16, ///< base and every non-last stride 16-byte aligned (q, k, v, o, qI, kI)
  Element,  ///< base aligned to the element size
};

/// Checks rank, sizes, strides, pointer, alignment and (for outputs) that
/// distinct elements do not overlap. Does not check dtype.
void checkTensor(const std::string &arg, const TensorRef &t, const std::vector<Dim> &dims,
                 Align align, bool output, DType dtype) {
  if (t.sizes.size() != dims.size())
    bad(arg, "expected rank " + std::to_string(dims.size()) + " " + dimNames(dims) + ", got rank " +
                 std::to_string(t.sizes.size()) + " " + shapeStr(t.sizes));
  if (t.strides.size() != t.sizes.size())
    bad(arg, "has " + std::to_string(t.sizes.size()) + " sizes but " +
                 std::to_string(t.strides.size()) + " strides");
  bool shapeOk = true, positive = true;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (t.sizes[i] < 1)
      positive = false;
    if (dims[i].value >= 0 &&
        (dims[i].atLeast ? t.sizes[i] < dims[i].value : t.sizes[i] != dims[i].value))
      shapeOk = false;
  }
  if (!shapeOk)
    bad(arg, "expected shape " + expectedShape(dims) + ", got " + shapeStr(t.sizes));
  if (!positive)
    bad(arg, "expected every size >= 1 " + dimNames(dims) + ", got " + shapeStr(t.sizes));
  if (t.data == 0)
    bad(arg, "null data pointer");
  size_t es = dtypeSize(dtype);
  size_t last = dims.size() - 1;
  if (t.strides[last] != 1)
    bad(arg, "the last dimension (" + dims[last].name + ") must be contiguous (stride 1), got strides " +
                 shapeStr(t.strides));
  for (size_t i = 0; i < dims.size(); ++i)
    if (t.strides[i] < 0)
      bad(arg, "negative stride " + std::to_string(t.strides[i]) + " in dimension " + dims[i].name +
                   " (strides " + shapeStr(t.strides) + ")");
  // The extent must fit in 63 bits of bytes.
  __int128 extent = 0;
  for (size_t i = 0; i < dims.size(); ++i)
    extent += __int128(t.sizes[i] - 1) * t.strides[i];
  extent = (extent + 1) * __int128(es);
  if (extent > __int128(std::numeric_limits<int64_t>::max()))
    bad(arg, "sizes " + shapeStr(t.sizes) + " and strides " + shapeStr(t.strides) +
                 " span more than 2^63 bytes");
  if (align == Align::Vector16) {
    if (t.data % 16 != 0)
      bad(arg, "data pointer " + hex(t.data) + " is not 16-byte aligned");
    for (size_t i = 0; i < last; ++i)
      if ((t.strides[i] * int64_t(es)) % 16 != 0)
        bad(arg, "stride " + std::to_string(t.strides[i]) + " of dimension " + dims[i].name + " (" +
                     std::to_string(t.strides[i] * int64_t(es)) +
                     " bytes) is not a multiple of 16 bytes (strides " + shapeStr(t.strides) + ")");
  } else if (t.data % es != 0) {
    bad(arg, "data pointer " + hex(t.data) + " is not aligned to its element size (" +
                 std::to_string(es) + " bytes)");
  }
  if (output) {
    // Every index must own its element: no zero stride over a real extent,
    // and (sorting dimensions by stride) each stride must step over the
    // whole extent of the dimensions below it.
    std::vector<size_t> order;
    for (size_t i = 0; i < dims.size(); ++i)
      if (t.sizes[i] > 1)
        order.push_back(i);
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return t.strides[a] < t.strides[b]; });
    int64_t covered = 1; // elements spanned by the dimensions so far
    for (size_t i : order) {
      if (t.strides[i] < covered)
        bad(arg, "the kernel writes this tensor, but its strides " + shapeStr(t.strides) +
                     " make elements overlap (dimension " + dims[i].name + ", size " +
                     std::to_string(t.sizes[i]) + ", stride " + std::to_string(t.strides[i]) + ")");
      covered = t.strides[i] * t.sizes[i];
    }
  }
}

/// Whether the byte spans of a and b (from the first element to one past
/// the last, their extents already checked) intersect.
bool bytesOverlap(const TensorRef &a, const TensorRef &b) {
  auto end = [](const TensorRef &t) {
    __int128 last = 0;
    for (size_t i = 0; i < t.sizes.size(); ++i)
      last += __int128(t.sizes[i] - 1) * t.strides[i];
    return __int128(t.data) + (last + 1) * __int128(dtypeSize(t.dtype));
  };
  return __int128(a.data) < end(b) && __int128(b.data) < end(a);
}

void checkDType(const std::string &arg, const TensorRef &t, DType want, const std::string &why = "") {
  if (t.dtype != want)
    bad(arg, std::string("expected dtype ") + dtypeName(want) + (why.empty() ? "" : " (" + why + ")") +
                 ", got " + dtypeName(t.dtype));
}

/// The stride index of an axis letter for each stride-carrying tensor.
int strideAxis(const std::string &tensor, const std::string &axis) {
  if (tensor == "indexer.qI")
    return axis == "b" ? 0 : axis == "l" ? 1 : 2;
  if (tensor == "indexer.w" || tensor == "indexer.kI")
    return axis == "b" ? 0 : 1;
  return axis == "b" ? 0 : axis == "h" ? 1 : 2; // q k v o lse indices
}

} // namespace

TensorRef TensorRef::contiguous(uint64_t data, DType dtype, std::vector<int64_t> sizes) {
  TensorRef t;
  t.data = data;
  t.dtype = dtype;
  t.strides.assign(sizes.size(), 1);
  for (size_t i = sizes.size(); i-- > 1;)
    t.strides[i - 1] = t.strides[i] * sizes[i];
  t.sizes = std::move(sizes);
  return t;
}

TensorMapParams tensorMapParams(const ArgSpec &arg, const TensorRef &t) {
  if (arg.kind != ArgKind::TensorMap)
    throw Error(ErrorCode::Usage, "tensorMapParams: expected a tensormap argument, got '" + arg.name +
                                      "' of kind " + argKindName(arg.kind));
  // Errors name the tensor the caller gave (q, k, v or o), and the argument.
  const std::string who = arg.tensor.empty() ? arg.name : arg.tensor;
  auto fail = [&](const std::string &msg) { bad(who, "tensormap '" + arg.name + "': " + msg); };
  constexpr size_t rank = rt::kTensorMapRank;
  const char *const dimName[rank] = {"batch", "heads", "rows", "head_dim"};
  if (t.sizes.size() != rank || t.strides.size() != rank)
    fail("expected rank 4 [batch, heads, rows, head_dim] with 4 strides, got sizes " +
         shapeStr(t.sizes) + " and strides " + shapeStr(t.strides));
  TensorMapParams p;
  switch (t.dtype) {
  case DType::BF16: p.dataType = rt::cu::CU_TENSOR_MAP_DATA_TYPE_BFLOAT16; break;
  case DType::F16: p.dataType = rt::cu::CU_TENSOR_MAP_DATA_TYPE_FLOAT16; break;
  case DType::F32: p.dataType = rt::cu::CU_TENSOR_MAP_DATA_TYPE_FLOAT32; break;
  case DType::I32: p.dataType = rt::cu::CU_TENSOR_MAP_DATA_TYPE_INT32; break;
  case DType::I64: p.dataType = rt::cu::CU_TENSOR_MAP_DATA_TYPE_INT64; break;
  case DType::Bool:
  case DType::U8:
  case DType::F8E4M3:
  case DType::F8E5M2: p.dataType = rt::cu::CU_TENSOR_MAP_DATA_TYPE_UINT8; break; // bytes
  }
  const int64_t es = int64_t(dtypeSize(t.dtype));
  // cuTensorMapEncodeTiled's rules (cuda.h), checked here so that a bad
  // tensor is an argument error naming it rather than CUDA_ERROR_INVALID_VALUE
  // at launch. The driver accepts a null base and ignores the innermost
  // stride (it assumes 1); both would be wrong here, so they are rejected.
  if (t.data == 0 || t.data % 16 != 0)
    fail("expected a non-null, 16-byte aligned base address, got " + hex(t.data));
  if (t.strides[rank - 1] != 1)
    fail("expected head_dim to be contiguous (stride 1), got strides " + shapeStr(t.strides));
  for (size_t i = 0; i < rank; ++i)
    if (t.sizes[i] < 1 || t.sizes[i] > (int64_t(1) << 32))
      fail(std::string("expected the size of ") + dimName[i] + " in [1, 2^32], got " +
           std::to_string(t.sizes[i]));
  for (size_t i = 0; i + 1 < rank; ++i) {
    const std::string what = std::string("the stride of ") + dimName[i];
    if (t.strides[i] < 0)
      fail("expected " + what + " to be >= 0, got " + std::to_string(t.strides[i]));
    // A stride of up to 2^63 elements of 8 bytes: its byte count may need more
    // than 64 bits.
    const unsigned __int128 bytes = (unsigned __int128)(t.strides[i]) * uint64_t(es);
    std::string got = std::to_string(t.strides[i]) + " (";
    if (bytes >> 64)
      got += std::to_string(t.strides[i]) + " x " + std::to_string(es);
    else
      got += std::to_string(uint64_t(bytes));
    got += " bytes)";
    if (bytes >= ((unsigned __int128)1 << 40))
      fail("expected " + what + " to be below 2^40 bytes, got " + got);
    if (bytes % 16 != 0)
      fail("expected " + what + " to be a multiple of 16 bytes, got " + got);
  }
  if (std::string why = rt::tensorMapBoxProblem(arg.box, arg.swizzle, t.dtype); !why.empty())
    fail(why);
  // The driver's order is innermost first: (head_dim, rows, heads, batch),
  // strides of (rows, heads, batch) in bytes, the box reversed and padded
  // with 1 for the outer axes it omits.
  p.rank = uint32_t(rank);
  p.globalAddress = t.data;
  for (size_t i = 0; i < rank; ++i) {
    p.globalDim[i] = uint64_t(t.sizes[rank - 1 - i]);
    p.boxDim[i] = i < arg.box.size() ? uint32_t(arg.box[arg.box.size() - 1 - i]) : 1;
    p.elementStrides[i] = 1;
  }
  for (size_t i = 0; i + 1 < rank; ++i)
    p.globalStrides[i] = uint64_t(t.strides[rank - 2 - i] * es);
  p.interleave = rt::cu::CU_TENSOR_MAP_INTERLEAVE_NONE;
  p.swizzle = rt::cuSwizzle(arg.swizzle);
  p.l2Promotion = rt::cu::CU_TENSOR_MAP_L2_PROMOTION_L2_128B;
  p.oobFill = rt::cu::CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE;
  return p;
}

std::vector<void *> LaunchPlan::params() {
  std::vector<void *> p;
  for (auto &v : values)
    p.push_back(&v);
  return p;
}

void LaunchPlan::setBlockFirst(int64_t blockFirst) {
  if (blockFirstSlot < 0)
    return;
  uint64_t &slot = values.at(size_t(blockFirstSlot));
  slot = kinds.at(size_t(blockFirstSlot)) == ArgKind::I32 ? uint64_t(uint32_t(int32_t(blockFirst)))
                                                          : uint64_t(blockFirst);
}

std::string LaunchPlan::describe(const VariantSpec &v) const {
  std::ostringstream os;
  auto geometry = [&](const StagePlan &s) {
    const uint32_t *g = s.grid, *b = s.block;
    os << v.kernels.at(s.kernelIndex).symbol << " grid=[" << g[0] << ", " << g[1] << ", " << g[2]
       << "]";
    if (s.chunked())
      os << " x " << s.launches() << (s.launches() == 1 ? " launch" : " launches") << " ("
         << s.totalBlocks << " row blocks, chunks of " << s.chunkBlocks << ")";
    if (s.tiled())
      os << " (" << s.tiles << " tiles, " << std::max<uint32_t>(1, b[0] / 32) << " per CTA)";
    os << " block=[" << b[0] << ", " << b[1] << ", " << b[2] << "] shared=" << s.sharedBytes;
    if (s.chunked() || s.tiled())
      os << " workspace=" << s.workspaceBytes;
  };
  // The primary kernel's line: its stage's (a plan built by hand may have
  // no stages; then the plan's own geometry).
  StagePlan primary;
  primary.kernelIndex = kernelIndex;
  std::copy(grid, grid + 3, primary.grid);
  std::copy(block, block + 3, primary.block);
  primary.sharedBytes = sharedBytes;
  for (const StagePlan &s : stages)
    if (s.kernelIndex == kernelIndex)
      primary = s;
  geometry(primary);
  if (stages.size() > 1)
    for (const StagePlan &s : stages) {
      os << "\n  stage " << v.kernels.at(s.kernelIndex).stage << ": ";
      geometry(s);
    }
  for (size_t i = 0; i < values.size(); ++i) {
    os << "\n  " << names[i] << "=";
    if (int(i) == workspaceSlot && allocateWorkspace) {
      os << "(allocated at launch, " << workspaceBytes << " bytes)";
      continue;
    }
    if (int(i) == blockFirstSlot) {
      os << "(per launch: the chunk's first row block; 0 for stages that are not chunked)";
      continue;
    }
    switch (kinds[i]) {
    case ArgKind::Ptr: os << hex(values[i]); break;
    case ArgKind::TensorMap: // the slot indexes tensorMaps
      os << "tensormap(" << rt::tensorMapSummary(tensorMaps.at(size_t(values[i]))) << ")";
      break;
    case ArgKind::I64: os << int64_t(values[i]); break;
    case ArgKind::I32: os << int32_t(uint32_t(values[i])); break;
    case ArgKind::F32: {
      float f;
      uint32_t b = uint32_t(values[i]);
      std::memcpy(&f, &b, 4);
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.9g", double(f));
      os << buf;
      break;
    }
    }
  }
  return os.str();
}

LaunchPlan checkArguments(const VariantSpec &v, const LaunchArgs &a) {
  LaunchPlan plan;
  const std::string vname = "variant '" + v.name + "'";

  // q: rank, dtype and head dim first, so later messages can use B, Hq, Lq, D.
  std::vector<Dim> qdims = {{"batch"}, {"heads_q"}, {"qlen"}, {"head_dim"}};
  if (a.q.sizes.size() != 4)
    bad("q", "expected rank 4 " + dimNames(qdims) + ", got rank " + std::to_string(a.q.sizes.size()) +
                 " " + shapeStr(a.q.sizes));
  {
    std::vector<std::string> ok;
    for (DType t : v.dtypes)
      ok.push_back(dtypeName(t));
    if (std::find(v.dtypes.begin(), v.dtypes.end(), a.q.dtype) == v.dtypes.end())
      bad("q", "expected dtype " + join(ok, " or ") + " (supported by " + vname + "), got " +
                   dtypeName(a.q.dtype));
  }
  checkTensor("q", a.q, qdims, Align::Vector16, false, a.q.dtype);
  const DType dt = a.q.dtype;
  const int64_t B = a.q.sizes[0], Hq = a.q.sizes[1], Lq = a.q.sizes[2], D = a.q.sizes[3];
  {
    std::vector<std::string> ok;
    for (int64_t d : v.headDims)
      ok.push_back(std::to_string(d));
    if (std::find(v.headDims.begin(), v.headDims.end(), D) == v.headDims.end())
      bad("q", "head_dim " + std::to_string(D) + " is not supported by " + vname + " (supported: " +
                   join(ok) + ")");
  }
  const KernelSpec *kernel = v.findKernel(D, dt);
  if (!kernel) // cannot happen for a validated manifest
    bad("q", "no kernel for head_dim " + std::to_string(D) + " and dtype " + dtypeName(dt));

  // k: batch and head dim known; heads_kv and klen free.
  std::string qdt = std::string("the dtype of q");
  checkTensor("k", a.k, {{"batch", B}, {"heads_kv"}, {"klen"}, {"head_dim", D}}, Align::Vector16,
              false, a.k.dtype);
  checkDType("k", a.k, dt, qdt);
  const int64_t Hkv = a.k.sizes[1], Lk = a.k.sizes[2];
  if (Hq % Hkv != 0)
    bad("k", "heads_kv = " + std::to_string(Hkv) + " does not divide heads_q = " +
                 std::to_string(Hq) + " (grouped-query attention needs heads_q % heads_kv == 0)");
  checkTensor("v", a.v, {{"batch", B}, {"heads_kv", Hkv}, {"klen", Lk}, {"head_dim", D}},
              Align::Vector16, false, a.v.dtype);
  checkDType("v", a.v, dt, qdt);
  checkTensor("o", a.o, {{"batch", B}, {"heads_q", Hq}, {"qlen", Lq}, {"head_dim", D}},
              Align::Vector16, true, a.o.dtype);
  checkDType("o", a.o, dt, qdt);
  checkTensor("lse", a.lse, {{"batch", B}, {"heads_q", Hq}, {"qlen", Lq}}, Align::Element, true,
              DType::F32);
  checkDType("lse", a.lse, DType::F32);

  // The gradients (a backward variant, docs/runtime.md "Backward"): dO in,
  // dQ, dK and dV out, each shaped and typed as the tensor it is the
  // gradient of; q, k, v, o and lse are the forward call's.
  const bool backward = v.findArg("dout") >= 0;
  const std::vector<std::pair<std::string, const std::optional<TensorRef> *>> grads = {
      {"dout", &a.dout}, {"dq", &a.dq}, {"dk", &a.dk}, {"dv", &a.dv}};
  for (const auto &[name, t] : grads) {
    if (!backward) {
      if (*t)
        bad(name, vname + " computes no gradients, but '" + name + "' was given (its backward is variant '" +
                      v.name + ".backward', compiled with --backward=on)");
      continue;
    }
    const bool ofQ = name == "dout" || name == "dq";
    std::vector<Dim> dims = ofQ ? std::vector<Dim>{{"batch", B}, {"heads_q", Hq}, {"qlen", Lq}, {"head_dim", D}}
                                : std::vector<Dim>{{"batch", B}, {"heads_kv", Hkv}, {"klen", Lk}, {"head_dim", D}};
    if (!*t)
      bad(name, "the backward of '" + v.backwardOf + "' takes '" + name + "': expected a tensor of shape " +
                    expectedShape(dims) + ", got none");
    checkTensor(name, **t, dims, Align::Vector16, name != "dout", (*t)->dtype);
    checkDType(name, **t, dt, qdt);
  }
  // A gradient shares no byte with the tensors the kernels read or with
  // another gradient (the kernels read q, k, v, o, lse and dO throughout).
  if (backward) {
    const std::vector<std::pair<std::string, const TensorRef *>> all = {
        {"q", &a.q},       {"k", &a.k},     {"v", &a.v},     {"o", &a.o},    {"lse", &a.lse},
        {"dout", &*a.dout}, {"dq", &*a.dq}, {"dk", &*a.dk}, {"dv", &*a.dv}};
    for (size_t i = 6; i < all.size(); ++i)
      for (size_t j = 0; j < all.size(); ++j)
        if (j != i && bytesOverlap(*all[i].second, *all[j].second))
          bad(all[i].first, "the kernels write this tensor, but its memory overlaps '" + all[j].first +
                                "' (data " + hex(all[i].second->data) + " and " + hex(all[j].second->data) +
                                "): give the gradients buffers of their own");
  }

  // Sinks.
  if (v.sink) {
    if (!a.sinks)
      bad("sinks", vname + " has a sink: expected an f32 tensor of shape [" + std::to_string(Hq) +
                       "] (heads_q), got none");
    checkTensor("sinks", *a.sinks, {{"heads_q", Hq}}, Align::Element, false, DType::F32);
    checkDType("sinks", *a.sinks, DType::F32);
  } else if (a.sinks) {
    bad("sinks", vname + " has no sink, but sinks were given");
  }

  // The indexer.
  const bool byIndexer = v.select && v.select->indexer;
  if (byIndexer) {
    const IndexerSpec &ix = *v.select->indexer;
    if (!a.indexer)
      bad("indexer", vname + " selects by the indexer: expected qI [" + std::to_string(B) + ", " +
                         std::to_string(Lq) + ", " + std::to_string(ix.heads) + ", " +
                         std::to_string(ix.dim) + "], w and kI, got none");
    checkTensor("indexer.qI", a.indexer->qI,
                {{"batch", B}, {"qlen", Lq}, {"indexer_heads", ix.heads}, {"indexer_dim", ix.dim}},
                Align::Vector16, false, a.indexer->qI.dtype);
    checkDType("indexer.qI", a.indexer->qI, ix.dtype, "the indexer dtype of " + vname);
    checkTensor("indexer.w", a.indexer->w, {{"batch", B}, {"qlen", Lq}, {"indexer_heads", ix.heads}},
                Align::Element, false, DType::F32);
    checkDType("indexer.w", a.indexer->w, DType::F32);
    checkTensor("indexer.kI", a.indexer->kI, {{"batch", B}, {"klen", Lk}, {"indexer_dim", ix.dim}},
                Align::Vector16, false, a.indexer->kI.dtype);
    checkDType("indexer.kI", a.indexer->kI, ix.dtype, "the indexer dtype of " + vname);
  } else if (a.indexer) {
    bad("indexer", vname + " does not select by the indexer, but indexer tensors were given");
  }

  // Selected indices (an output of kernels that take them).
  if (v.findArg("indices") >= 0) {
    int64_t K = v.select->topk;
    if (!a.indices)
      bad("indices", vname + " writes the selected key indices: expected an i32 tensor of shape [" +
                         std::to_string(B) + ", " + std::to_string(Hkv) + ", " + std::to_string(Lq) +
                         ", " + std::to_string(K) + "] (batch, heads_kv, qlen, topk), got none");
    checkTensor("indices", *a.indices, {{"batch", B}, {"heads_kv", Hkv}, {"qlen", Lq}, {"topk", K}},
                Align::Element, true, DType::I32);
    checkDType("indices", *a.indices, DType::I32);
  } else if (a.indices) {
    bad("indices", vname + " does not write selected indices, but an indices tensor was given");
  }

  // Offsets.
  const int64_t qOff = a.qOffset ? *a.qOffset : Lk - Lq;
  const int64_t kOff = a.kOffset ? *a.kOffset : 0;
  if (qOff < -kMaxOffset || qOff > kMaxOffset)
    bad("q_offset", std::to_string(qOff) + " is out of range [-2^40, 2^40]");
  if (kOff < -kMaxOffset || kOff > kMaxOffset)
    bad("k_offset", std::to_string(kOff) + " is out of range [-2^40, 2^40]");

  // Runtime inputs.
  std::vector<std::string> declared;
  for (const auto &in : v.inputs)
    declared.push_back(in.name);
  for (const auto &[name, t] : a.inputs) {
    (void)t;
    if (!v.findInput(name))
      bad("input:" + name, vname + " reads no input '" + name + "' (" +
                               (declared.empty() ? std::string("it reads no inputs")
                                                 : "it reads: " + join(declared)) +
                               ")");
  }
  for (const auto &in : v.inputs) {
    std::string arg = "input:" + in.name;
    std::vector<std::string> axes;
    for (Axis ax : in.axes)
      axes.push_back(axisName(ax));
    auto it = a.inputs.find(in.name);
    if (it == a.inputs.end())
      bad(arg, vname + " reads input '" + in.name + " : " + dtypeName(in.elem) + "[" + join(axes) +
                   "]', which was not given");
    const TensorRef &t = it->second;
    bool dtypeOk = t.dtype == in.elem || (in.elem == DType::Bool && t.dtype == DType::U8);
    if (!dtypeOk)
      bad(arg, std::string("expected dtype ") + dtypeName(in.elem) +
                   (in.elem == DType::Bool ? " (or u8)" : "") + ", got " + dtypeName(t.dtype));
    bool hasToken = false;
    for (Axis ax : in.axes)
      hasToken |= ax == Axis::Token;
    int64_t tokens = 0;
    if (hasToken) {
      if (qOff < 0)
        bad("q_offset", std::to_string(qOff) + " is negative, but " + vname +
                            " reads token-indexed input '" + in.name +
                            "' at query positions q_offset .. q_offset + qlen - 1, which must be >= 0");
      if (kOff < 0)
        bad("k_offset", std::to_string(kOff) + " is negative, but " + vname +
                            " reads token-indexed input '" + in.name +
                            "' at key positions k_offset .. k_offset + klen - 1, which must be >= 0");
      tokens = std::max(qOff + Lq, kOff + Lk);
    }
    std::vector<Dim> dims;
    for (Axis ax : in.axes)
      dims.push_back(ax == Axis::Batch  ? Dim{"batch", B}
                     : ax == Axis::Head ? Dim{"head", Hq}
                                        : Dim{"token", tokens, true});
    if (t.sizes.size() == dims.size() && hasToken) {
      for (size_t i = 0; i < dims.size(); ++i)
        if (in.axes[i] == Axis::Token && t.sizes[i] < tokens)
          bad(arg, "its token axis has " + std::to_string(t.sizes[i]) +
                       " positions, but positions 0 .. " + std::to_string(tokens - 1) +
                       " are read (q_offset + qlen = " + std::to_string(qOff + Lq) +
                       ", k_offset + klen = " + std::to_string(kOff + Lk) + "): expected shape " +
                       expectedShape(dims) + ", got " + shapeStr(t.sizes));
    }
    checkTensor(arg, t, dims, Align::Element, false, t.dtype);
  }

  // Grid, per stage (a kernel's own grid rule, else the variant's), in
  // launch order; the primary kernel's geometry is also the plan's.
  const int64_t G = Hq / Hkv;
  const std::vector<const KernelSpec *> stages = v.findStages(D, dt);
  for (const KernelSpec *k : stages) {
    const GridRule rule = v.gridOf(*k);
    const std::string ofStage =
        stages.size() > 1 ? " (stage '" + k->stage + "', kernel '" + k->symbol + "')" : "";
    StagePlan s;
    int64_t gx = 0, gy = 0, gz = B;
    std::string xunits = "query tiles", xneeds = "qlen = " + std::to_string(Lq) + " needs";
    switch (rule) {
    case GridRule::QTilesHeadsBatch:
      gx = (Lq + k->blockM - 1) / k->blockM;
      gy = Hq;
      break;
    case GridRule::QTilesKvHeadsBatch:
      gx = (Lq * G + k->blockM - 1) / k->blockM;
      gy = Hkv;
      break;
    case GridRule::RowsKvHeadsBatch:
      // One CTA per query row and block_m query heads of a KV group.
      gx = Lq * ((G + k->blockM - 1) / k->blockM);
      gy = Hkv;
      xunits = "CTAs (qlen x ceil(heads_q / heads_kv / block_m))";
      break;
    case GridRule::ChunkedRowBlocks: {
      // Row blocks over batch and rows, launched in chunks whose scores
      // (block_m rows x klen keys x workspace_per_key bytes per row block)
      // fit kWorkspaceBudget; at least one row block per launch.
      s.totalBlocks = B * ((Lq + k->blockM - 1) / k->blockM);
      const unsigned __int128 perBlock = (unsigned __int128)k->blockM * (unsigned __int128)Lk *
                                         (unsigned __int128)k->workspacePerKey.value_or(1);
      if (perBlock > kMaxWorkspace)
        bad("k", "klen = " + std::to_string(Lk) + " needs more than 2^62 bytes of workspace per row "
                     "block (block_m " + std::to_string(k->blockM) + " x klen x " +
                     std::to_string(k->workspacePerKey.value_or(1)) + " bytes per key)" + ofStage);
      const unsigned __int128 fit = kWorkspaceBudget / perBlock;
      s.chunkBlocks = std::max<int64_t>(
          1, int64_t(std::min<unsigned __int128>((unsigned __int128)s.totalBlocks, fit)));
      s.workspaceBytes = uint64_t(perBlock * (unsigned __int128)s.chunkBlocks);
      gx = s.chunkBlocks; // <= 2^28: the budget over at least 1 byte per block
      gy = 1;
      gz = 1;
      break;
    }
    case GridRule::PersistentTiles:
      // Every (query tile, head, batch entry); the launch runs at most one
      // CTA an SM of them (StagePlan::persistent).
      gx = int64_t(std::min<unsigned __int128>((unsigned __int128)ceilDiv(Lq, k->blockM) * (unsigned __int128)Hq *
                                                   (unsigned __int128)B,
                                               (unsigned __int128)kMaxGridX + 1)); // past the limit: refused below
      gy = 1;
      gz = 1;
      s.persistent = true;
      xunits = "query tiles (ceil(qlen / block_m) x heads_q x batch)";
      break;
    case GridRule::KTilesKvHeadsBatch:
      gx = ceilDiv(Lk, k->blockM);
      gy = Hkv;
      xunits = "key tiles";
      xneeds = "klen = " + std::to_string(Lk) + " needs";
      break;
    case GridRule::TilesHeadsBatch:
      // One warp per tile, the query tiles and the key tiles of each
      // (batch entry, query head). T >= 2, as qlen and klen are >= 1 (q
      // and k have every size >= 1), so the grid is never empty; the
      // workspace is sized below, once the grid limits bound B, Hq and T.
      s.tiles = ceilDiv(Lq, k->blockM) + ceilDiv(Lk, k->blockN);
      gx = ceilDiv(s.tiles, std::max<int64_t>(1, k->threads / 32)); // a multiple of 32 (the manifest)
      gy = Hq;
      xunits = "CTAs (ceil((ceil(qlen / block_m) + ceil(klen / block_n)) / (threads / 32)))";
      xneeds = "qlen = " + std::to_string(Lq) + " and klen = " + std::to_string(Lk) + " need";
      break;
    }
    if (gx > kMaxGridX)
      bad("q", xneeds + " " + std::to_string(gx) + " " + xunits +
                   ", more than the launch grid's x limit (" + std::to_string(kMaxGridX) + ")" +
                   ofStage);
    const bool yIsKv = rule == GridRule::QTilesKvHeadsBatch || rule == GridRule::RowsKvHeadsBatch ||
                       rule == GridRule::KTilesKvHeadsBatch;
    if (gy > kMaxGridYZ)
      bad(yIsKv ? "k" : "q", std::string(yIsKv ? "heads_kv" : "heads_q") + " = " +
                                 std::to_string(gy) + " exceeds the launch grid's y limit (" +
                                 std::to_string(kMaxGridYZ) + ")" + ofStage);
    if (gz > kMaxGridYZ)
      bad("q", "batch = " + std::to_string(gz) + " exceeds the launch grid's z limit (" +
                   std::to_string(kMaxGridYZ) + ")" + ofStage);
    if (s.tiled())
      s.workspaceBytes = tileWorkspace(*k, B, Hq, Lq, Lk, s.tiles, ofStage);
    // Delta per row after the tile summaries, if any (a backward variant's
    // summary stage spans both, docs/runtime.md "Backward"). B, Hq within
    // the grid limits, Lq validated by q's extent: fits 64 bits.
    if (k->workspacePerRow)
      s.workspaceBytes += uint64_t(B) * uint64_t(Hq) * uint64_t(Lq) * uint64_t(*k->workspacePerRow);
    s.kernelIndex = size_t(k - v.kernels.data());
    s.grid[0] = uint32_t(gx);
    s.grid[1] = uint32_t(gy);
    s.grid[2] = uint32_t(gz);
    s.block[0] = uint32_t(k->threads);
    s.sharedBytes = uint32_t(k->sharedBytes);
    plan.stages.push_back(s);
    if (k == kernel) {
      plan.kernelIndex = s.kernelIndex;
      std::copy(s.grid, s.grid + 3, plan.grid);
      std::copy(s.block, s.block + 3, plan.block);
      plan.sharedBytes = s.sharedBytes;
    }
  }

  // The workspace of the chunked stages or of the tiled ones (the manifest
  // allows one kind in a variant): the largest one's. Checked after the
  // grids, which size it.
  const StagePlan *widest = nullptr;
  for (const StagePlan &s : plan.stages)
    if (s.workspaceBytes > 0 && (!widest || s.workspaceBytes > widest->workspaceBytes))
      widest = &s;
  if (v.findArg("workspace") >= 0) {
    plan.workspaceBytes = widest ? widest->workspaceBytes : 0;
    if (a.workspace) {
      const TensorRef &w = *a.workspace;
      checkTensor("workspace", w, {{"elements"}}, Align::Vector16, true, w.dtype);
      const unsigned __int128 given = (unsigned __int128)w.sizes[0] * dtypeSize(w.dtype);
      if (given < plan.workspaceBytes)
        bad("workspace", "expected at least " + std::to_string(plan.workspaceBytes) + " bytes (" +
                             workspaceFormula(*widest, v.kernels[widest->kernelIndex], B, Hq, Lq, Lk) +
                             "), got " + std::to_string(uint64_t(given)) + " bytes (" +
                             std::to_string(w.sizes[0]) + " x " + dtypeName(w.dtype) + ")");
    } else {
      plan.allocateWorkspace = true;
    }
  } else if (a.workspace) {
    bad("workspace", vname + " takes no workspace, but one was given");
  }

  plan.batch = B;
  plan.headsQ = Hq;
  plan.headsKv = Hkv;
  plan.qlen = Lq;
  plan.klen = Lk;
  plan.headDim = D;
  plan.qOffset = qOff;
  plan.kOffset = kOff;

  // Pack the parameters in the manifest's order.
  auto tensorOf = [&](const std::string &n) -> const TensorRef * {
    if (n == "q") return &a.q;
    if (n == "k") return &a.k;
    if (n == "v") return &a.v;
    if (n == "o") return &a.o;
    if (n == "lse") return &a.lse;
    if (n == "sinks") return a.sinks ? &*a.sinks : nullptr;
    if (n == "indices") return a.indices ? &*a.indices : nullptr;
    if (n == "indexer.qI") return a.indexer ? &a.indexer->qI : nullptr;
    if (n == "indexer.w") return a.indexer ? &a.indexer->w : nullptr;
    if (n == "indexer.kI") return a.indexer ? &a.indexer->kI : nullptr;
    if (n == "workspace") return a.workspace ? &*a.workspace : nullptr;
    if (n == "dout") return a.dout ? &*a.dout : nullptr;
    if (n == "dq") return a.dq ? &*a.dq : nullptr;
    if (n == "dk") return a.dk ? &*a.dk : nullptr;
    if (n == "dv") return a.dv ? &*a.dv : nullptr;
    if (n.rfind("input:", 0) == 0) {
      auto it = a.inputs.find(n.substr(6));
      return it == a.inputs.end() ? nullptr : &it->second;
    }
    return nullptr;
  };
  for (const ArgSpec &arg : v.args) {
    const std::string &n = arg.name;
    uint64_t slot = 0;
    int64_t ivalue = 0;
    bool isInt = true;
    if (n == "workspace") {
      // 0 until Kernel::launch allocates it, if the caller gave none.
      plan.workspaceSlot = int(plan.values.size());
      slot = a.workspace ? a.workspace->data : 0;
      isInt = false;
    } else if (arg.kind == ArgKind::Ptr) {
      const TensorRef *t = tensorOf(n);
      if (!t)
        bad(n, "the kernel takes '" + n + "', but it was not given");
      slot = t->data;
      isInt = false;
    } else if (arg.kind == ArgKind::TensorMap) {
      const TensorRef *t = arg.tensor.size() == 1 ? tensorOf(arg.tensor) : nullptr; // q, k, v, o
      if (!t)
        bad(n, "expected the tensor of tensormap '" + n + "' to be q, k, v or o, got '" +
                   arg.tensor + "'");
      slot = plan.tensorMaps.size();
      plan.tensorMaps.push_back(tensorMapParams(arg, *t));
      isInt = false;
    } else if (arg.kind == ArgKind::F32) {
      float s = v.scale ? float(*v.scale) : float(1.0 / std::sqrt(double(D)));
      uint32_t bits;
      std::memcpy(&bits, &s, 4);
      slot = bits;
      isInt = false;
    } else if (n == "batch") ivalue = B;
    else if (n == "heads_q") ivalue = Hq;
    else if (n == "heads_kv") ivalue = Hkv;
    else if (n == "qlen") ivalue = Lq;
    else if (n == "klen") ivalue = Lk;
    else if (n == "head_dim") ivalue = D;
    else if (n == "q_offset") ivalue = qOff;
    else if (n == "k_offset") ivalue = kOff;
    else if (n == "topk") ivalue = v.select ? v.select->topk : 0;
    else if (n == "block_first") {
      // Set per launch; 0 here. An i32 slot must hold the last chunk's.
      plan.blockFirstSlot = int(plan.values.size());
      int64_t last = 0;
      for (const StagePlan &s : plan.stages)
        if (s.chunked())
          last = std::max(last, (s.launches() - 1) * s.chunkBlocks);
      if (arg.kind == ArgKind::I32 && last > std::numeric_limits<int32_t>::max())
        bad(n, "the last chunk launch starts at row block " + std::to_string(last) +
                   ", which does not fit the kernel's i32 parameter '" + n + "'");
    }
    else if (n.rfind("input:", 0) == 0) {
      // input:NAME:stride:AXIS or input:NAME:size:AXIS
      std::string rest = n.substr(6);
      size_t c1 = rest.find(':'), c2 = rest.find(':', c1 + 1);
      std::string in = rest.substr(0, c1), what = rest.substr(c1 + 1, c2 - c1 - 1),
                  axis = rest.substr(c2 + 1);
      const InputSpec *spec = v.findInput(in);
      const TensorRef *t = tensorOf("input:" + in);
      size_t ai = 0;
      while (ai < spec->axes.size() && axis != axisName(spec->axes[ai]))
        ++ai;
      ivalue = what == "stride" ? t->strides[ai] : t->sizes[ai];
    } else {
      size_t s = n.rfind("_stride_");
      std::string tensor = n.substr(0, s), axis = n.substr(s + 8);
      const TensorRef *t = tensorOf(tensor);
      if (!t)
        bad(tensor, "the kernel takes '" + n + "', but '" + tensor + "' was not given");
      ivalue = t->strides[size_t(strideAxis(tensor, axis))];
    }
    if (isInt) {
      if (arg.kind == ArgKind::I32) {
        if (ivalue < std::numeric_limits<int32_t>::min() || ivalue > std::numeric_limits<int32_t>::max())
          bad(n, std::to_string(ivalue) + " does not fit the kernel's i32 parameter '" + n + "'");
        slot = uint64_t(uint32_t(int32_t(ivalue)));
      } else {
        slot = uint64_t(ivalue);
      }
    }
    plan.values.push_back(slot);
    plan.kinds.push_back(arg.kind);
    plan.names.push_back(n);
  }
  return plan;
}

} // namespace attnc

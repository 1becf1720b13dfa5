//===- Runtime.h - libattnrt's C++ API --------------------------*- C++ -*-===//
//
// Load an attnc module (PTX or cubin), pick a kernel by variant name or by a
// model's layer index, check the arguments and launch on the caller's stream:
//
//   attnc::Module m = attnc::Module::loadFile("mistral.ptx");
//   attnc::Kernel k = m.variant("local");          // or m.layer(3)
//   attnc::LaunchArgs a;
//   a.q = attnc::TensorRef::contiguous(qPtr, attnc::DType::BF16, {B, Hq, Lq, D});
//   ... k, v, o, lse ...
//   k.launch(a, stream);                            // throws attnc::Error
//
// No link-time CUDA dependency: the driver is dlopen'ed on first use (see
// docs/runtime.md). Everything that does not need a GPU (loading with
// lazy = true, reading the manifest, checkArguments, Kernel::check) works on
// machines without one. Every failure is an attnc::Error (Manifest.h); an
// argument error names the argument and says what was expected and what was
// given, and nothing is launched.
//
// Thread-safety: Module and Kernel are cheap handles to shared immutable
// state plus a mutex-protected per-context cache of loaded CUDA modules, so
// they may be used from several threads at once.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "attnc/Manifest.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace attnc {

/// The version of libattnrt (and of the attnc release it belongs to).
const char *runtimeVersion();

//===----------------------------------------------------------------------===//
// Tensors and launch arguments
//===----------------------------------------------------------------------===//

/// A view of a device tensor. Strides are in elements.
struct TensorRef {
  uint64_t data = 0; ///< device address
  DType dtype = DType::BF16;
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;

  /// A C-order (row-major) tensor.
  static TensorRef contiguous(uint64_t data, DType dtype, std::vector<int64_t> sizes);
};

/// The DSA indexer's tensors: qI [B, Lq, HI, dI], w [B, Lq, HI] f32,
/// kI [B, Lk, dI].
struct IndexerTensors {
  TensorRef qI, w, kI;
};

/// Everything one launch needs besides the stream.
struct LaunchArgs {
  TensorRef q;   ///< [B, Hq, Lq, D]
  TensorRef k;   ///< [B, Hkv, Lk, D]
  TensorRef v;   ///< [B, Hkv, Lk, D]
  TensorRef o;   ///< [B, Hq, Lq, D], written
  TensorRef lse; ///< [B, Hq, Lq] f32, written
  std::optional<TensorRef> sinks;            ///< [Hq] f32, iff the variant has a sink
  std::optional<IndexerTensors> indexer;     ///< iff the variant selects by indexer
  std::optional<TensorRef> indices;          ///< [B, Hkv, Lq, topk] i32, iff the kernel takes 'indices'
  /// The scratch of a chunked selection stage or of a tiled summary stage
  /// (argument 'workspace'):
  /// 1-D, contiguous, any dtype, 16-byte aligned, at least
  /// LaunchPlan::workspaceBytes bytes. Optional: without it Kernel::launch
  /// allocates one on the stream and frees it after the last stage.
  std::optional<TensorRef> workspace;
  /// The backward variant's (NAME.backward; its q, k, v, o and lse are the
  /// forward call's, read): dO [B, Hq, Lq, D] read, dQ like q, dK and dV
  /// like k and v, written; the workspace then holds Delta = rowsum(dO * O).
  std::optional<TensorRef> dout, dq, dk, dv;
  std::map<std::string, TensorRef> inputs;   ///< by input name, every input the variant reads
  std::optional<int64_t> qOffset;            ///< default klen - qlen
  std::optional<int64_t> kOffset;            ///< default 0
};

/// The arguments of cuTensorMapEncodeTiled for one tensormap parameter, as
/// tensorMapParams() computes them (no GPU needed). Arrays are innermost
/// dimension first, as the driver takes them; entries past `rank` (past
/// rank - 1 for the strides) are 0. Equal parameters give equal descriptors,
/// so this is also the key of the module's descriptor cache.
struct TensorMapParams {
  int dataType = 0;           ///< CUtensorMapDataType (FLOAT16 = 6, BFLOAT16 = 9, ...)
  uint32_t rank = 0;          ///< 4: (head_dim, rows, heads, batch)
  uint64_t globalAddress = 0; ///< the tensor's data pointer
  std::array<uint64_t, 5> globalDim{};     ///< sizes: D, L, H, B
  std::array<uint64_t, 4> globalStrides{}; ///< bytes, of dims 1 .. rank - 1 (rows, heads, batch)
  std::array<uint32_t, 5> boxDim{};        ///< the ArgSpec's box reversed, 1 for the axes it omits
  std::array<uint32_t, 5> elementStrides{}; ///< 1 each: every element of the box
  int interleave = 0;  ///< CU_TENSOR_MAP_INTERLEAVE_NONE
  int swizzle = 0;     ///< CU_TENSOR_MAP_SWIZZLE_NONE, _32B, _64B, _128B (0 .. 3)
  int l2Promotion = 2; ///< CU_TENSOR_MAP_L2_PROMOTION_L2_128B
  int oobFill = 0;     ///< CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE: rows past the end read as zero

  /// Every field, for comparisons.
  auto tie() const {
    return std::tie(dataType, rank, globalAddress, globalDim, globalStrides, boxDim,
                    elementStrides, interleave, swizzle, l2Promotion, oobFill);
  }
  bool operator==(const TensorMapParams &o) const { return tie() == o.tie(); }
  bool operator!=(const TensorMapParams &o) const { return !(*this == o); }
  bool operator<(const TensorMapParams &o) const { return tie() < o.tie(); }
};

/// The encode parameters of tensormap argument `arg` (kind TensorMap) for
/// tensor `t` (its ArgSpec::tensor, [batch, heads, rows, head_dim]), after
/// checking cuTensorMapEncodeTiled's rules: rank 4; base non-null and
/// 16-byte aligned; head_dim contiguous; sizes in [1, 2^32]; the other
/// strides >= 0, multiples of 16 bytes and below 2^40 bytes; box entries in
/// [1, 256], the box's inner extent a multiple of 16 bytes and, swizzled, at
/// most the swizzle span. Throws Error(InvalidArgument) naming the tensor
/// (Error::arg() is ArgSpec::tensor), e.g.
///   q: tensormap 'tmap:q': expected the stride of rows to be a multiple of 16 bytes, got 1004 (2008 bytes)
/// Error(Usage) if `arg` is not a tensormap. A pure function, no GPU needed.
TensorMapParams tensorMapParams(const ArgSpec &arg, const TensorRef &t);

/// The most workspace a chunked stage (grid chunked_row_blocks) is sized to:
/// the runtime picks the number of row blocks per launch as
///   chunk = max(1, min(total, floor(kWorkspaceBudget / (block_m * klen * workspace_per_key))))
/// so that one launch's scores fit 1 GiB (more only when a single row
/// block needs more). Smaller chunks mean more launches; larger ones more
/// memory and fewer, fuller launches.
inline constexpr uint64_t kWorkspaceBudget = uint64_t(1) << 30;

/// One kernel of a launch (a variant has one per stage): its own grid rule
/// and block_m give its grid, its threads and shared_bytes the rest. A
/// chunked stage (grid chunked_row_blocks) is launched launches() times,
/// over consecutive chunks of row blocks; a tiled stage (tiles_heads_batch)
/// once, over all its tiles.
struct StagePlan {
  size_t kernelIndex = 0; ///< into VariantSpec::kernels
  /// The grid; for a chunked stage, its first launch's (chunkBlocks, 1, 1).
  uint32_t grid[3] = {1, 1, 1};
  uint32_t block[3] = {1, 1, 1};
  uint32_t sharedBytes = 0;
  // For a chunked stage only (0 otherwise):
  int64_t totalBlocks = 0;     ///< row blocks: batch * ceil(qlen / block_m)
  int64_t chunkBlocks = 0;     ///< row blocks per launch (the last may have fewer)
  /// For a tiled stage only (0 otherwise): tiles per (batch entry, query
  /// head), ceil(qlen / block_m) + ceil(klen / block_n).
  int64_t tiles = 0;
  /// The stage's workspace (0 for a stage that is neither chunked nor
  /// tiled nor a gradient kernel): chunked, chunkBlocks * block_m * klen *
  /// workspace_per_key; tiled, batch * heads_q * tiles * workspace_per_tile;
  /// plus, with workspace_per_row (a backward variant's kernels: Delta
  /// after the summaries), batch * heads_q * qlen * workspace_per_row.
  uint64_t workspaceBytes = 0;

  /// A persistent stage (grid 'persistent'): grid[0] is its query tiles;
  /// the launch runs min(grid[0], the device's SMs) CTAs, which stride over them.
  bool persistent = false;

  bool chunked() const { return chunkBlocks > 0; }
  bool tiled() const { return tiles > 0; }
  /// ceil(totalBlocks / chunkBlocks) for a chunked stage, else 1.
  int64_t launches() const { return chunked() ? (totalBlocks + chunkBlocks - 1) / chunkBlocks : 1; }
  /// Launch i (0 <= i < launches()): its first row block (the block_first
  /// argument; 0 for a stage that is not chunked) and its grid, (n, 1, 1)
  /// with n = min(chunkBlocks, totalBlocks - blockFirst) when chunked.
  /// A persistent stage's x is min(grid[0], smCount).
  void launchGeometry(int64_t i, int64_t &blockFirst, uint32_t (&g)[3], uint32_t smCount = 0) const {
    blockFirst = chunked() ? i * chunkBlocks : 0;
    g[0] = chunked() ? uint32_t(std::min(chunkBlocks, totalBlocks - blockFirst)) : grid[0];
    if (persistent && smCount > 0)
      g[0] = std::min(g[0], smCount);
    g[1] = grid[1];
    g[2] = grid[2];
  }
};

/// The result of checking: which kernels, the launch geometry, and the packed
/// kernel parameters in the manifest's order (every stage takes the same).
struct LaunchPlan {
  // The primary kernel (VariantSpec::findKernel: the "attention" stage, else
  // the last, for a single-stage variant the only one); stages[] repeats it.
  size_t kernelIndex = 0; ///< into VariantSpec::kernels
  uint32_t grid[3] = {1, 1, 1};
  uint32_t block[3] = {1, 1, 1};
  uint32_t sharedBytes = 0;
  /// Every kernel to launch, in order (one for a single-stage variant).
  std::vector<StagePlan> stages;
  /// Bytes of workspace the launch needs: the largest of the stages'
  /// workspaceBytes (those of the chunked stages, or of the tiled ones and
  /// the gradient kernels: a variant has one kind or the other); 0 if the
  /// variant takes no 'workspace'.
  uint64_t workspaceBytes = 0;
  /// The caller gave no workspace although the variant takes one: the slot
  /// of 'workspace' holds 0 and Kernel::launch allocates workspaceBytes.
  bool allocateWorkspace = false;
  /// Indices into `values` of the 'workspace' and 'block_first' arguments,
  /// or -1. The launch sets block_first per chunk launch (0 for stages that
  /// are not chunked).
  int workspaceSlot = -1;
  int blockFirstSlot = -1;
  /// One 8-byte slot per argument: a pointer or i64 as 64 bits, an i32 in the
  /// low 4 bytes, an f32's bits in the low 4 bytes, for a tensormap the index
  /// of its parameters in `tensorMaps` (the launch passes the 128-byte
  /// descriptor encoded from them).
  std::vector<uint64_t> values;
  std::vector<ArgKind> kinds;
  std::vector<std::string> names;
  /// The encode parameters of each tensormap argument, in argument order.
  std::vector<TensorMapParams> tensorMaps;
  // The resolved problem.
  int64_t batch = 0, headsQ = 0, headsKv = 0, qlen = 0, klen = 0, headDim = 0;
  int64_t qOffset = 0, kOffset = 0;

  /// Pointers to each slot, for cuLaunchKernel (valid while `values` is).
  /// A tensormap's entry points at its slot; the launch replaces it with
  /// the descriptor's address.
  std::vector<void *> params();
  /// Sets the block_first slot (if any) to `blockFirst`, as its kind (i32
  /// or i64) wants.
  void setBlockFirst(int64_t blockFirst);
  /// Human-readable: "symbol grid=[x, y, z] block=[t, 1, 1] shared=N", one
  /// such line per stage for a variant of several, and one "name=value" per
  /// argument (pointers in hex). A chunked stage's line reads
  /// "symbol grid=[n, 1, 1] x L launches (T row blocks, chunks of n)
  /// block=[t, 1, 1] shared=N workspace=BYTES" (n = chunkBlocks, the first
  /// launch's grid; "1 launch" when L is 1), a tiled stage's
  /// "symbol grid=[x, y, z] (T tiles, W per CTA) block=[t, 1, 1] shared=N
  /// workspace=BYTES" (W = t / 32).
  std::string describe(const VariantSpec &v) const;
};

/// Checks every argument of a launch of variant `v` against its manifest and
/// packs the kernel parameters, and sizes the workspace of chunked stages
/// (kWorkspaceBudget) or tiled ones. A pure function: no GPU or driver needed.
/// Throws Error(InvalidArgument) naming the argument, e.g.
///   k: expected shape [2, 4, 1000, 128] (batch, heads_kv, klen, head_dim), got [2, 4, 999, 128]
/// docs/runtime.md lists every rule.
LaunchPlan checkArguments(const VariantSpec &v, const LaunchArgs &a);

//===----------------------------------------------------------------------===//
// Modules and kernels
//===----------------------------------------------------------------------===//

struct ModuleImpl;
class Kernel;

struct LoadOptions {
  /// false: load the CUDA module into the current context now, so that PTX
  /// or driver problems surface at load time. true: only read the manifest;
  /// the CUDA module is loaded at the first launch (works without a GPU).
  bool lazy = false;
};

/// A loaded attnc module: its manifest and, per CUDA context it is used in,
/// the loaded CUDA module with one function per kernel.
class Module {
public:
  /// Loads PTX (manifest embedded, or in `<path>.json`) or a cubin/fatbin
  /// (manifest in `<path>.json`).
  static Module loadFile(const std::string &path, const LoadOptions &opts = {});
  /// Loads an image from memory. `manifestJson` empty: the image must be PTX
  /// with an embedded manifest. `name` is used in messages.
  static Module loadData(const std::string &image, const std::string &manifestJson = "",
                         const LoadOptions &opts = {}, const std::string &name = "<memory>");

  const Manifest &manifest() const;
  /// The name used in messages: the path, or the name given to loadData.
  const std::string &name() const;

  /// The kernel of the variant named `name`. Throws Error(NotFound).
  Kernel variant(const std::string &name) const;
  /// The kernel of a model's layer i. Throws Error(NotFound) for a module
  /// without a model or an i out of range.
  Kernel layer(int64_t i) const;
  /// Number of layers of the model (0 for a module without a model).
  int64_t numLayers() const;

  /// Loads the CUDA module into the current context now (a no-op if done).
  void ensureLoaded() const;

private:
  explicit Module(std::shared_ptr<ModuleImpl> impl) : impl_(std::move(impl)) {}
  static Module finish(std::shared_ptr<ModuleImpl> impl, const LoadOptions &opts);
  std::shared_ptr<ModuleImpl> impl_;
  friend class Kernel;
};

/// One attention variant of a module (all its head-dim/dtype/stage kernels).
class Kernel {
public:
  const VariantSpec &spec() const;
  const std::string &name() const { return spec().name; }
  /// checkArguments() for this variant.
  LaunchPlan check(const LaunchArgs &a) const;
  /// Checks the arguments, then launches on `stream` (a CUstream; nullptr is
  /// the legacy default stream) of the current context: each stage's kernel
  /// in order (a chunked stage as its chunk launches, each with its
  /// block_first), with the tensormap arguments' descriptors (cached by the
  /// module). Asynchronous, like any kernel launch. A workspace the variant
  /// needs but the caller did not give is allocated with cuMemAllocAsync on
  /// the stream and freed with cuMemFreeAsync after the last stage (drivers
  /// or devices without the stream-ordered allocator: cuMemAlloc, and
  /// cuStreamSynchronize + cuMemFree after the last stage, which makes the
  /// launch synchronous).
  void launch(const LaunchArgs &a, void *stream = nullptr) const;

private:
  Kernel(std::shared_ptr<ModuleImpl> m, size_t variant) : module_(std::move(m)), variant_(variant) {}
  std::shared_ptr<ModuleImpl> module_;
  size_t variant_;
  friend class Module;
};

//===----------------------------------------------------------------------===//
// JIT
//===----------------------------------------------------------------------===//

struct CompileOptions {
  std::string target = "sm_90a";
  /// `param` overrides, as `attnc -D NAME=VALUE`.
  std::map<std::string, std::string> defines;
  /// Other compiler options by name (part of the cache key).
  std::map<std::string, std::string> extra;
  /// The cache directory; empty: $ATTNC_CACHE_DIR, else $XDG_CACHE_HOME/attnc,
  /// else ~/.cache/attnc.
  std::string cacheDir;
  bool useCache = true;
  LoadOptions load;
};

/// What one compile() call did: for the first-call report that the Python
/// package prints on request (attnc.compile(..., verbose=True)).
struct CompileReport {
  bool cacheUsed = true;      ///< false with CompileOptions::useCache = false
  bool cacheHit = false;      ///< the PTX came from the disk cache
  std::string key;            ///< the cache key (64 hex digits)
  std::string cacheDir;       ///< the cache's directory ("" without a cache)
  double compileSeconds = 0;  ///< obtaining the PTX: compiling, or reading the cache
  double loadSeconds = 0;     ///< loading it (manifest, and the CUDA module unless lazy)
  size_t ptxBytes = 0;
};

/// Compiles `source` in-process (through the disk cache) and loads the
/// result; `report` (optional) says what was done and how long it took.
/// Builds without the compiler (ATTNC_WITH_MLIR=OFF) throw
/// Error(NoCompiler): "this build of libattnrt has no compiler (built with
/// ATTNC_WITH_MLIR=OFF); load a PTX file instead".
Module compile(const std::string &source, const CompileOptions &opts = {},
               CompileReport *report = nullptr);

/// Whether this build has an in-process compiler.
bool hasCompiler();

//===----------------------------------------------------------------------===//
// Device helpers (for programs that do not link the CUDA runtime: tests, C)
//===----------------------------------------------------------------------===//

namespace device {
/// cuMemAlloc in the current context (made current as for launches).
uint64_t alloc(size_t bytes);
void free(uint64_t ptr);
void copyToDevice(uint64_t dst, const void *src, size_t bytes);
void copyToHost(void *dst, uint64_t src, size_t bytes);
void memset(uint64_t dst, unsigned char value, size_t bytes);
/// cuStreamSynchronize(stream); nullptr: the whole current context.
void synchronize(void *stream = nullptr);
/// Throws Error(NoDriver/Cuda) if the driver cannot be loaded; otherwise
/// returns a one-line description ("libcuda.so.1, driver 13000").
std::string driverInfo();
} // namespace device

} // namespace attnc

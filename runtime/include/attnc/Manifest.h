//===- Manifest.h - The self-description of an attnc module -----*- C++ -*-===//
//
// Part of libattnrt's public C++ API. A module that attnc emits describes
// itself: which kernels it holds, their parameter order, tile sizes, shared
// memory, grid rule, the tensors each variant reads, the TMA descriptors its
// kernels take, the stages a variant launches and, for a model, the layer
// table. The description is a JSON object ("the manifest") embedded in
// the PTX as a comment block, or in a sidecar file `<module>.json` next to a
// cubin. docs/runtime.md is the normative definition of the schema; this
// header is its C++ form, and parseManifest() is its strict reader (every
// violation is an attnc::Error naming the JSON path, expected vs actual).
//
// The code generator fills a Manifest and writes it with manifestToJson() /
// embedManifestInPtx(), so the writer and the reader cannot drift apart.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace attnc {

/// What went wrong, for callers that branch on it (the C API's error codes
/// have the same values).
enum class ErrorCode : int {
  InvalidArgument = 1, ///< a launch argument failed checking; nothing was launched
  Manifest = 2,        ///< a module's self-description is missing or malformed
  NoDriver = 3,        ///< no CUDA driver could be loaded
  Cuda = 4,            ///< a CUDA driver call failed
  Io = 5,              ///< a file could not be read or written
  NotFound = 6,        ///< no such variant, layer or kernel
  NoCompiler = 7,      ///< this build has no compiler (load PTX instead)
  Compile = 8,         ///< the compiler rejected the source
  Internal = 9,        ///< a bug in libattnrt
  Usage = 10,          ///< an API misuse (null handle, bad option, ...)
};

/// Every error libattnrt reports. For InvalidArgument, arg() names the
/// argument ("q", "k", "input:doc", "q_offset", ...).
class Error : public std::runtime_error {
public:
  Error(ErrorCode code, const std::string &msg, std::string arg = "")
      : std::runtime_error(msg), code_(code), arg_(std::move(arg)) {}
  ErrorCode code() const { return code_; }
  const std::string &arg() const { return arg_; }

private:
  ErrorCode code_;
  std::string arg_;
};

/// Element types of tensors. The values are part of the C ABI (attnrt.h).
enum class DType : int32_t {
  BF16 = 1,
  F16 = 2,
  F32 = 3,
  I32 = 4,
  I64 = 5,
  Bool = 6,
  U8 = 7,
  F8E4M3 = 8,
  F8E5M2 = 9,
};

/// The manifest spelling: "bf16", "fp16", "f32", "i32", "i64", "bool", "u8",
/// "fp8_e4m3", "fp8_e5m2".
const char *dtypeName(DType t);
/// Bytes per element.
size_t dtypeSize(DType t);
/// Parses a manifest spelling; nullopt if unknown.
std::optional<DType> dtypeFromName(const std::string &s);

/// The kind of one kernel parameter.
enum class ArgKind {
  Ptr,
  I32,
  I64,
  F32,
  /// A 128-byte CUtensorMap (TMA descriptor) passed by value: in PTX
  /// `.param .align 64 .b8 NAME[128]`, in CUDA `const __grid_constant__
  /// CUtensorMap`. The runtime encodes it at launch from ArgSpec::tensor,
  /// box and swizzle.
  TensorMap,
};
const char *argKindName(ArgKind k); ///< "ptr", "i32", "i64", "f32", "tensormap"

/// The shared-memory swizzle of a TMA descriptor (CU_TENSOR_MAP_SWIZZLE_*).
enum class Swizzle { None, B32, B64, B128 };
const char *swizzleName(Swizzle s); ///< "none", "32b", "64b", "128b"
/// The swizzle span in bytes: 0 for None, else 32, 64 or 128.
int64_t swizzleBytes(Swizzle s);

/// How the launch grid follows from the shapes (blocks of `threads` threads).
enum class GridRule {
  /// x = ceil(qlen / block_m), y = heads_q, z = batch
  QTilesHeadsBatch,
  /// GQA packing: the G = heads_q / heads_kv query heads of a KV group share
  /// a tile. x = ceil(qlen * G / block_m), y = heads_kv, z = batch
  QTilesKvHeadsBatch,
  /// DSA's selection stage: one CTA per "row block" of block_m query rows of
  /// one batch entry, numbered over batch and rows together (block f covers
  /// batch f / ceil(qlen / block_m), rows (f % ceil(qlen / block_m)) *
  /// block_m ..., clipped to qlen). The runtime launches the stage in chunks
  /// of row blocks so that the scores fit a bounded workspace: launch c
  /// covers blocks [block_first, block_first + n), grid (n, 1, 1), and the
  /// kernel uses workspace slot blockIdx.x (see LaunchPlan, docs/runtime.md).
  /// Needs KernelSpec::workspacePerKey and the args block_first, workspace.
  ChunkedRowBlocks,
  /// DSA's sparse attention stage: one CTA per query row and KV group (up to
  /// block_m of the group's G = heads_q / heads_kv query heads).
  /// x = qlen * ceil(G / block_m), y = heads_kv, z = batch
  RowsKvHeadsBatch,
  /// The summary stage of a variant reading runtime inputs at token
  /// positions: one warp per tile, T = ceil(qlen / block_m) query tiles +
  /// ceil(klen / block_n) key tiles per (batch entry, query head), each
  /// writing its tile's summary (e.g. the min and max of each input read)
  /// into the workspace for the attention stage to read.
  /// x = ceil(T / (threads / 32)), y = heads_q, z = batch. Needs
  /// KernelSpec::workspacePerTile, threads a multiple of 32, and the arg
  /// workspace (workspace_per_tile * batch * heads_q * T bytes, one launch).
  TilesHeadsBatch,
  /// A persistent kernel: its CTAs stride over the T = ceil(qlen / block_m) *
  /// heads_q * batch query tiles (tile t, t + gridDim.x, ...). The plan's
  /// x is T; the launch takes min(T, the device's SM count), one CTA an SM.
  /// y = z = 1.
  PersistentTiles,
  /// A variant's backward_dkdv kernel: one CTA per key tile of block_m keys
  /// of one KV head. x = ceil(klen / block_m), y = heads_kv, z = batch
  KTilesKvHeadsBatch,
};
/// "qtiles_heads_batch", "qtiles_kvheads_batch", "chunked_row_blocks",
/// "rows_kvheads_batch", "tiles_heads_batch", "persistent", "ktiles_kvheads_batch"
const char *gridRuleName(GridRule g);

/// The stage of a single-kernel variant, and the stage findKernel() prefers.
inline constexpr const char *kAttentionStage = "attention";

/// Axes of a runtime input tensor (the language's `input NAME : ELEM[AXES]`).
enum class Axis { Batch, Head, Token };
const char *axisName(Axis a); ///< "batch", "head", "token"

/// One compiled kernel: the specialisation of a variant for one head dim and
/// one dtype, and (for a variant of several kernels) one stage.
struct KernelSpec {
  std::string symbol;      ///< the PTX .entry name
  int64_t headDim = 0;     ///< D
  DType dtype = DType::BF16; ///< of q, k, v, o
  int64_t blockM = 0;      ///< query rows per tile
  int64_t blockN = 0;      ///< key rows per tile
  int64_t threads = 0;     ///< threads per block (blockDim.x; y = z = 1)
  int64_t sharedBytes = 0; ///< dynamic shared memory per block
  /// Which step of the variant this kernel is ("indexer", "topk",
  /// "attention", ...; the manifest's optional kernels[].stage, default
  /// "attention"). The kernels of one (head dim, dtype) are launched in the
  /// order they are listed, one per stage; every (head dim, dtype) has the
  /// same stages in the same order.
  std::string stage = kAttentionStage;
  std::optional<GridRule> grid; ///< kernels[].grid; absent: the variant's grid
  /// kernels[].workspace_per_key: bytes of workspace per key and query row
  /// (4 for f32 scores, 8 for score and index); present iff the kernel's
  /// grid is chunked_row_blocks.
  std::optional<int64_t> workspacePerKey;
  /// kernels[].workspace_per_tile: bytes of workspace per (batch entry,
  /// query head, tile); present iff the kernel's grid is tiles_heads_batch.
  std::optional<int64_t> workspacePerTile;
  /// kernels[].workspace_per_row: bytes of workspace per (batch entry,
  /// query head, query row): the gradient kernels' Delta = rowsum(dO * O)
  /// (f32, [batch, heads_q, qlen] contiguous), written by backward_dq and
  /// read by backward_dkdv.
  std::optional<int64_t> workspacePerRow;
};

/// One kernel parameter, in order.
struct ArgSpec {
  std::string name; ///< from the fixed vocabulary of docs/runtime.md
  ArgKind kind = ArgKind::Ptr;
  // For kind TensorMap only (empty / None otherwise). The name is
  // tmap:NAME; the descriptor covers the whole tensor as rank 4 [batch,
  // heads, rows, head_dim], and the kernel loads or stores one box of it at
  // a time.
  std::string tensor;       ///< the tensor described: "q", "k", "v" or "o"
  std::vector<int64_t> box; ///< the tile in elements, outermost first, e.g. {64, 128} (rows, head_dim)
  Swizzle swizzle = Swizzle::None;
};

/// A runtime input tensor a variant reads.
struct InputSpec {
  std::string name;
  DType elem = DType::I32; ///< i32, i64, f32 or bool
  std::vector<Axis> axes;
};

/// The DSA lightning indexer of `select topk(K) by indexer(...)`.
struct IndexerSpec {
  int64_t heads = 0; ///< HI
  int64_t dim = 0;   ///< dI
  DType dtype = DType::BF16; ///< of qI and kI (fp8_e4m3, bf16, fp16 or f32); w is f32
};

/// `select topk(K) by ...`.
struct SelectSpec {
  int64_t topk = 0;
  std::optional<IndexerSpec> indexer; ///< absent: selection by an expression
};

/// One attention variant.
struct VariantSpec {
  std::string name;
  std::vector<int64_t> headDims; ///< supported head dims, ascending
  std::vector<DType> dtypes;     ///< supported dtypes of q/k/v/o
  /// One per (head dim, dtype, stage); every (head dim, dtype) has the same
  /// stages in the same (launch) order.
  std::vector<KernelSpec> kernels;
  std::vector<ArgSpec> args;     ///< the kernels' common parameter list (every stage's)
  GridRule grid = GridRule::QTilesHeadsBatch;
  std::optional<double> scale;   ///< absent: 1/sqrt(head_dim)
  bool sink = false;
  std::vector<InputSpec> inputs; ///< the runtime inputs this variant reads
  std::optional<SelectSpec> select;
  /// The manifest's optional backward_of: for the gradient kernels of
  /// variant X (stages backward_dq, backward_dkdv), "X", and this variant
  /// is named "X.backward"; "" for a forward variant. docs/runtime.md
  /// "Backward".
  std::string backwardOf;

  /// The primary kernel for (headDim, dtype), or nullptr: the one of stage
  /// "attention" if there is one, else the last stage (the only kernel of a
  /// single-stage variant).
  const KernelSpec *findKernel(int64_t headDim, DType dtype) const;
  /// Every kernel for (headDim, dtype), one per stage, in launch order (empty
  /// if none).
  std::vector<const KernelSpec *> findStages(int64_t headDim, DType dtype) const;
  /// The grid rule of kernel `k`: its own, else the variant's.
  GridRule gridOf(const KernelSpec &k) const { return k.grid.value_or(grid); }
  /// Index of the argument named `name` in args, or -1.
  int findArg(const std::string &name) const;
  const InputSpec *findInput(const std::string &name) const;
};

enum class ModuleKind { Variants, Model };

/// A model's layer table: layers[i] indexes Manifest::variants.
struct ModelSpec {
  std::string name;
  std::vector<int64_t> layers;
};

/// The whole self-description.
struct Manifest {
  static constexpr int64_t kFormatVersion = 1;
  int64_t formatVersion = kFormatVersion;
  std::string attncVersion;
  std::string target;  ///< "sm_80", "sm_90a", ... ("sm_" digits, optional 'a')
  ModuleKind kind = ModuleKind::Variants;
  std::vector<VariantSpec> variants;
  std::optional<ModelSpec> model; ///< present iff kind == Model

  /// Index of the variant named `name`, or -1.
  int findVariant(const std::string &name) const;
};

/// Parses and validates manifest JSON. `fileLineOffset` (if > 0) is the line
/// of the source file on which the JSON's first line stands, so that syntax
/// errors can also name the file line. Throws Error(ErrorCode::Manifest) with
/// messages such as
///   manifest: variants[0].args[3].kind: expected one of ptr, i32, i64, f32, tensormap, got 'x'
Manifest parseManifest(const std::string &json, int64_t fileLineOffset = 0);

/// Serialises a manifest (pretty JSON, the field order of docs/runtime.md).
/// Validates it first: writing an invalid manifest throws like parsing it.
std::string manifestToJson(const Manifest &m);

/// One variant's entry of the manifest, as JSON (no validation).
std::string variantToJson(const VariantSpec &v);

/// The manifest block of a PTX text: the JSON between the lines
/// "// attnc-manifest-begin" and "// attnc-manifest-end", each line prefixed
/// "// ". Returns nullopt if the text has no begin line; throws
/// Error(Manifest) for an unterminated block, a second block or a line
/// without the prefix. `jsonFirstLine` receives the file line (1-based) of
/// the JSON's first line.
std::optional<std::string> extractManifestFromPtx(const std::string &ptx,
                                                  int64_t *jsonFirstLine = nullptr);

/// Returns `ptx` with the manifest block for `m` inserted at the top
/// (replacing an existing block).
std::string embedManifestInPtx(const std::string &ptx, const Manifest &m);

/// Checks a manifest against the PTX it describes: every kernel symbol is a
/// `.entry` of the PTX, and each entry's parameters match the variant's args
/// in number and size (ptr/i64: 8 bytes, i32/f32: 4, tensormap: 128 bytes
/// declared `.align 64`). Throws Error(Manifest).
void checkManifestAgainstPtx(const Manifest &m, const std::string &ptx);

} // namespace attnc
